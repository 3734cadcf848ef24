-- take.lua decides one request for one key across every window of a policy,
-- in one round trip. It mirrors window.Log (SlidingLog) and window.Counter
-- (SlidingCounter) bit for bit; see docs/redis.md for the state encoding.
--
-- KEYS[1]  <prefix>:{<32 hex>}:m
-- ARGV[1]  now in ms, or "" to read the server's TIME
-- ARGV[2]  cost (>= 1)
-- ARGV[3]  "1" for SlidingCounter, "0" for SlidingLog
-- ARGV[4]  "1" to record (Take), "0" to only look (Peek; writes nothing)
-- ARGV[5]  TTL slack in ms, added to the state's lifetime on every write
-- ARGV[6], ARGV[7], ...  length (ms) and limit of each window, in policy order
--
-- Returns {allowed 0|1, limiting (0-based), retry-after ms,
--          remaining_1, reset_1 ms, remaining_2, reset_2 ms, ...}.
--
-- Numbers are Lua doubles: every value here is an integer below 2^53, so the
-- arithmetic is exact; SlidingCounter's products of a count and a length,
-- which can exceed 2^53, go through muldiv.

local byte, char, sub, floor = string.byte, string.char, string.sub, math.floor
local U32 = 4294967296

local key = KEYS[1]
local t = tonumber(ARGV[1])
if not t then
  local tm = redis.call('TIME')
  t = tonumber(tm[1]) * 1000 + floor(tonumber(tm[2]) / 1000)
end
local cost = tonumber(ARGV[2])
local counter = ARGV[3] == '1'
local record = ARGV[4] == '1'
local slack = tonumber(ARGV[5])
local nw = (#ARGV - 5) / 2
local lens, lims = {}, {}
local longest = 0
for i = 1, nw do
  lens[i] = tonumber(ARGV[4 + 2 * i])
  lims[i] = tonumber(ARGV[5 + 2 * i])
  if lens[i] > longest then longest = lens[i] end
end

-- getn reads a w-byte big-endian unsigned integer at 1-based position p.
local function getn(s, p, w)
  local v = 0
  for i = p, p + w - 1 do v = v * 256 + byte(s, i) end
  return v
end

-- putn encodes a non-negative integer v as w big-endian bytes.
local function putn(v, w)
  local b = {}
  for i = w, 1, -1 do
    b[i] = v % 256
    v = floor(v / 256)
  end
  return char(unpack(b))
end

-- pick returns the 1-based binding window, as window.Decision.pickLimiting.
local function pick(allowed, rem, rejecting, waits)
  local best = 0
  for i = 1, nw do
    if allowed then
      if best == 0 or rem[i] < rem[best] or (rem[i] == rem[best] and lens[i] > lens[best]) then
        best = i
      end
    elseif rejecting[i] then
      if best == 0 or waits[i] > waits[best] or (waits[i] == waits[best] and lens[i] > lens[best]) then
        best = i
      end
    end
  end
  return best
end

local s = redis.call('GET', key)
if not s then s = '' end

if counter then
  -- State: byte 4, the instant of the last write (6 bytes), then per window
  -- the previous and current fixed-slot counts (4 bytes each). Every write
  -- rolls every window to the same instant, so each window's slot index is
  -- floor(last / length) and need not be stored.
  local valid = #s == 7 + 8 * nw and byte(s, 1) == 4
  local last = valid and getn(s, 2, 6) or 0
  local prev, curr, epoch = {}, {}, {}
  local changed = false
  local rejecting, waits = {}, {}
  local allowed = true
  for i = 1, nw do
    local len = lens[i]
    local e, p, c = 0, 0, 0
    if valid then
      e = floor(last / len)
      p = getn(s, 8 + 8 * (i - 1), 4)
      c = getn(s, 12 + 8 * (i - 1), 4)
    end
    -- rollTo: a slot before the current one (clock stepped back) re-anchors
    -- at t and keeps its counts. Rolling a window that counts something is
    -- written back even when the request is rejected, as window.Counter
    -- does: after a later backward step the re-anchored counts differ.
    local k = floor(t / len)
    if k ~= e and (p > 0 or c > 0) then changed = true end
    if k == e + 1 then
      p, c = c, 0
    elseif k > e + 1 then
      p, c = 0, 0
    end
    prev[i], curr[i], epoch[i] = p, c, k
  end
  -- muldiv returns floor(a * b / d) and the remainder, exactly, for
  -- integers 0 <= a, b < 2^32 and 0 < d < 2^32: a * b may exceed 2^53
  -- (limit 2^31 over a day), so a is split in 16-bit halves and every
  -- intermediate stays below 2^49.
  local function muldiv(a, b, d)
    local ah = floor(a / 65536)
    local x = ah * b
    local q1 = floor(x / d)
    local y = (x - q1 * d) * 65536 + (a - ah * 65536) * b
    local q2 = floor(y / d)
    return q1 * 65536 + q2, y - q2 * d
  end
  -- carried returns ceil(prev * (length - el) / length): the previous
  -- slot's weighted share, rounded up. The estimate rounded up to whole
  -- units (window.Counter's used) is curr + carried.
  local function carried(i, el)
    local q, r = muldiv(prev[i], lens[i] - el, lens[i])
    if r > 0 then q = q + 1 end
    return q
  end
  -- waitFor mirrors window.slot.waitFor: how long until the estimate is at
  -- most room. estimate <= room  <=>  curr + carried <= room.
  local function waitFor(i, room, el)
    local len = lens[i]
    if curr[i] <= room and carried(i, el) <= room - curr[i] then return 0 end
    if curr[i] <= room and prev[i] > 0 then
      local at = len - muldiv(room - curr[i], len, prev[i])
      if at < len then return at - el end
    end
    local at = 0
    if curr[i] > 0 then
      at = len - muldiv(room, len, curr[i])
      if at < 0 then at = 0 end
    end
    return len - el + at
  end
  for i = 1, nw do
    local el = t - epoch[i] * lens[i]
    local room = lims[i] - cost
    if room < 0 then
      rejecting[i], waits[i], allowed = true, longest, false
    else
      local w = waitFor(i, room, el)
      if w > 0 then rejecting[i], waits[i], allowed = true, w, false end
    end
  end
  if allowed and record then
    for i = 1, nw do curr[i] = curr[i] + cost end
    changed = true
  end
  if record and changed then
    local parts = { char(4), putn(t, 6) }
    for i = 1, nw do
      parts[#parts + 1] = putn(prev[i] % U32, 4)
      parts[#parts + 1] = putn(curr[i] % U32, 4)
    end
    redis.call('SET', key, table.concat(parts), 'PX', 2 * longest + slack)
  end
  local rem, res = {}, {}
  for i = 1, nw do
    local len = lens[i]
    local el = t - epoch[i] * len
    local used = curr[i] + carried(i, el)
    rem[i] = lims[i] - used
    if rem[i] < 0 then rem[i] = 0 end
    res[i] = 0
    if used > 0 then res[i] = waitFor(i, used - 1, el) end
  end
  local best = pick(allowed, rem, rejecting, waits)
  local out = { allowed and 1 or 0, best - 1, allowed and 0 or waits[best] }
  for i = 1, nw do
    out[#out + 1] = rem[i]
    out[#out + 1] = res[i]
  end
  return out
end

-- SlidingLog. State: a flags byte (1 = 4-byte instants, 2 = running cost
-- totals present), the newest instant (6 bytes), the running total after
-- the newest entry (4 bytes, only with totals), then the entries oldest
-- first: the instant mod 2^16 or 2^32, followed by the running total before
-- it (4 bytes, only with totals). Where admissions merge (see below),
-- entries are at distinct milliseconds, so a huge limit cannot make the
-- state longer than the longest window has milliseconds. Instants decode relative to the last
-- entry's stored value and the newest instant, so moving every entry back
-- (clock stepped back) rewrites only the header.
local n, newest, wide, costs, total, hdr, sw, es = 0, 0, false, false, 0, 8, 2, 2
if #s >= 7 and byte(s, 1) < 4 then
  local f = byte(s, 1)
  wide = f % 2 == 1
  costs = f >= 2
  newest = getn(s, 2, 6)
  if costs then
    total = getn(s, 8, 4)
    hdr = 12
  end
  if wide then sw = 4 end
  es = sw + (costs and 4 or 0)
  n = floor((#s - hdr + 1) / es)
end
local M = wide and U32 or 65536
local rlast = 0
if n > 0 then rlast = getn(s, hdr + (n - 1) * es, sw) end

local function at(i)
  return newest - ((rlast - getn(s, hdr + i * es, sw)) % M)
end
local function cb(i)
  if not costs then return i end
  if i == n then return total end
  return getn(s, hdr + i * es + sw, 4)
end
local function firstAfter(cut)
  local lo, hi = 0, n
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    if at(mid) > cut then hi = mid else lo = mid + 1 end
  end
  return lo
end
local function firstCumAtLeast(from, need)
  local base = cb(from)
  local want = (need - base) % U32
  local lo, hi = from, n - 1
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    if (cb(mid + 1) - base) % U32 >= want then hi = mid else lo = mid + 1 end
  end
  return lo
end

local shifted = false
if n > 0 and t < newest then
  if record then
    -- Every entry keeps its age: the newest moves back to t.
    newest, shifted = t, true
  else
    t = newest
  end
end

local ctot = cb(n)
local rejecting, waits, firsts, rem = {}, {}, {}, {}
local allowed = true
for i = 1, nw do
  local len, lim = lens[i], lims[i]
  local first = firstAfter(t - len)
  firsts[i] = first
  local used = (ctot - cb(first)) % U32
  if cost > lim then
    rejecting[i], waits[i], allowed = true, longest, false
  elseif used + cost > lim then
    rejecting[i], allowed = true, false
    local j = firstCumAtLeast(first, (ctot + cost - lim) % U32)
    waits[i] = at(j) + len - t
  end
  rem[i] = lim - used
end

local admit = allowed and record
local res = {}
for i = 1, nw do
  if admit then rem[i] = rem[i] - cost end
  if rem[i] < 0 then rem[i] = 0 end
  res[i] = 0
  if firsts[i] < n then
    res[i] = at(firsts[i]) + lens[i] - t
  elseif admit then
    res[i] = lens[i]
  end
end

if admit then
  local cut = 0
  if n > 0 and t - at(0) >= longest then cut = firstAfter(t - longest) end
  -- An admission in the newest entry's millisecond joins that entry (its
  -- cost grows) when running totals exist anyway, or when some limit is
  -- larger than the longest window has milliseconds: then merging is what
  -- bounds the state, to one entry per millisecond of the longest window.
  -- window.Log applies the same rule; decisions cannot tell merged entries
  -- apart, since every window counts both or neither.
  local maxlim = 0
  for i = 1, nw do
    if lims[i] > maxlim then maxlim = lims[i] end
  end
  local merge = n > 0 and t == newest and (costs or maxlim > longest)
  local nwide = longest > 65535
  local ncosts = costs or cost ~= 1 or merge
  local nsw = nwide and 4 or 2
  local nM = nwide and U32 or 65536
  local flags = (nwide and 1 or 0) + (ncosts and 2 or 0)
  local parts = { char(flags), putn(t, 6) }
  if ncosts then parts[3] = putn((ctot + cost) % U32, 4) end
  local stamp
  if nwide == wide and ncosts == costs then
    if cut < n then parts[#parts + 1] = sub(s, hdr + cut * es) end
    if n > 0 then stamp = (rlast + (t - newest)) % M else stamp = t % M end
  else
    -- The layout changes (first cost > 1 or first merge, or the longest
    -- window crossed 65535 ms): re-encode the surviving entries.
    for i = cut, n - 1 do
      parts[#parts + 1] = putn(at(i) % nM, nsw)
      if ncosts then parts[#parts + 1] = putn(cb(i) % U32, 4) end
    end
    stamp = t % nM
  end
  if not merge then
    parts[#parts + 1] = putn(stamp, nsw)
    if ncosts then parts[#parts + 1] = putn(ctot % U32, 4) end
  end
  redis.call('SET', key, table.concat(parts), 'PX', longest + slack)
elseif shifted then
  redis.call('SET', key, char(byte(s, 1)) .. putn(newest, 6) .. sub(s, 8), 'PX', longest + slack)
end

local best = pick(allowed, rem, rejecting, waits)
local out = { allowed and 1 or 0, best - 1, allowed and 0 or waits[best] }
for i = 1, nw do
  out[#out + 1] = rem[i]
  out[#out + 1] = res[i]
end
return out
