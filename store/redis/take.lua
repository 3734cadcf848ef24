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
--
-- The script runs once per decision: it is all the work ratekit gives a
-- shared Redis, so it is written for Lua 5.1's interpreter. Calls into C
-- (string.byte, math.floor, ...) cost more than arithmetic, so bytes are read
-- several per call and integer division uses %; per-window tables start
-- with room for three windows instead of growing; searches start where the
-- answer usually is. BenchmarkScript measures its cost per decision.

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
local lens, lims = { 0, 0, 0 }, { 0, 0, 0 }
local longest = 0
for i = 1, nw do
  lens[i] = tonumber(ARGV[4 + 2 * i])
  lims[i] = tonumber(ARGV[5 + 2 * i])
  if lens[i] > longest then longest = lens[i] end
end

-- getn reads a w-byte (2, 4 or 6) big-endian unsigned integer at 1-based
-- position p.
local function getn(s, p, w)
  if w == 2 then
    local a, b = byte(s, p, p + 1)
    return a * 256 + b
  end
  local a, b, c, d, e, f = byte(s, p, p + w - 1)
  local v = ((a * 256 + b) * 256 + c) * 256 + d
  if w == 6 then v = (v * 256 + e) * 256 + f end
  return v
end

-- putn encodes v mod 256^w as w (2, 4 or 6) big-endian bytes, for an
-- integer v >= 0; with w = 6, the byte lead (if given) comes first.
local function putn(v, w, lead)
  local b6 = v % 256
  v = (v - b6) / 256
  local b5 = v % 256
  if w == 2 then return char(b5, b6) end
  v = (v - b5) / 256
  local b4 = v % 256
  v = (v - b4) / 256
  local b3 = v % 256
  if w == 4 then return char(b3, b4, b5, b6) end
  v = (v - b3) / 256
  local b2 = v % 256
  v = (v - b2) / 256
  if lead then return char(lead, v % 256, b2, b3, b4, b5, b6) end
  return char(v % 256, b2, b3, b4, b5, b6)
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
  local prev, curr, epoch = { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 }
  local changed = false
  local rejecting, waits = { false, false, false }, { 0, 0, 0 }
  local allowed = true
  for i = 1, nw do
    local len = lens[i]
    local e, p, c = 0, 0, 0
    if valid then
      e = (last - last % len) / len
      p = getn(s, 8 + 8 * (i - 1), 4)
      c = getn(s, 12 + 8 * (i - 1), 4)
    end
    -- rollTo: a slot before the current one (clock stepped back) re-anchors
    -- at t and keeps its counts. Rolling a window that counts something is
    -- written back even when the request is rejected, as window.Counter
    -- does: after a later backward step the re-anchored counts differ.
    local k = (t - t % len) / len
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
    local al = a % 65536
    local ah = (a - al) / 65536
    local x = ah * b
    local r1 = x % d
    local y = r1 * 65536 + al * b
    local r2 = y % d
    return (x - r1) / d * 65536 + (y - r2) / d, r2
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
    local state = putn(t, 6, 4)
    for i = 1, nw do
      state = state .. putn(prev[i] % U32, 4) .. putn(curr[i] % U32, 4)
    end
    redis.call('SET', key, state, 'PX', 2 * longest + slack)
  end
  local rem, res = { 0, 0, 0 }, { 0, 0, 0 }
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
    out[2 * i + 2], out[2 * i + 3] = rem[i], res[i]
  end
  return out
end

-- SlidingLog. State: a flags byte (1 = 4-byte instants, 2 = running cost
-- totals present), the newest instant (6 bytes), the running total after
-- the newest entry (4 bytes, only with totals), then the entries oldest
-- first: the instant mod 2^16 or 2^32, followed by the running total before
-- it (4 bytes, only with totals). Where admissions merge (see below),
-- entries are at distinct milliseconds, so a huge limit cannot make the
-- state longer than the longest window spans milliseconds (its length plus
-- one). Instants decode relative to the last entry's stored value and the
-- newest instant, so moving every entry back (clock stepped back) rewrites
-- only the header.
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

-- at returns the instant of entry i (0-based).
local at
if wide then
  at = function(i)
    local p = hdr + i * es
    local a, b, c, d = byte(s, p, p + 3)
    return newest - ((rlast - (((a * 256 + b) * 256 + c) * 256 + d)) % M)
  end
else
  at = function(i)
    local p = hdr + i * es
    local a, b = byte(s, p, p + 1)
    return newest - ((rlast - (a * 256 + b)) % M)
  end
end
local function cb(i)
  if not costs then return i end
  if i == n then return total end
  return getn(s, hdr + i * es + sw, 4)
end
-- firstAfter returns the first entry after instant cut, or n if none. The
-- entries are in time order, so it is a binary search, which first gallops
-- (steps of 1, 2, 4, ...) from the end where the answer usually is: the
-- oldest entries for the longest window (few have expired since the last
-- admission), the newest for a shorter one (fromBack).
local function firstAfter(cut, fromBack)
  local lo, hi, step = 0, n, 1
  if fromBack then
    while true do
      local i = hi - step
      if i < lo then break end
      if at(i) <= cut then
        lo = i + 1
        break
      end
      hi, step = i, step * 2
    end
  else
    while true do
      local i = lo + step - 1
      if i >= hi then break end
      if at(i) > cut then
        hi = i
        break
      end
      lo, step = i + 1, step * 2
    end
  end
  while lo < hi do
    local mid = lo + hi
    mid = (mid - mid % 2) / 2
    if at(mid) > cut then hi = mid else lo = mid + 1 end
  end
  return lo
end
local function firstCumAtLeast(from, need)
  local base = cb(from)
  local want = (need - base) % U32
  local lo, hi = from, n - 1
  while lo < hi do
    local mid = lo + hi
    mid = (mid - mid % 2) / 2
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
local rejecting, waits, firsts, rem = { false, false, false }, { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 }
local allowed = true
local cut = 0 -- the first entry inside the longest window
-- An entry admitted at millisecond e counts at t while t - e <= len, and
-- leaves at e + len + 1: readings len ms apart may be less than len apart
-- in truth (see window.Window).
for i = 1, nw do
  local len, lim = lens[i], lims[i]
  local first = firstAfter(t - len - 1, len < longest)
  firsts[i] = first
  if len == longest then cut = first end
  local used = (ctot - cb(first)) % U32
  if cost > lim then
    rejecting[i], waits[i], allowed = true, longest, false
  elseif used + cost > lim then
    rejecting[i], allowed = true, false
    local j = firstCumAtLeast(first, (ctot + cost - lim) % U32)
    waits[i] = at(j) + len + 1 - t
  end
  rem[i] = lim - used
end

local admit = allowed and record
local res = { 0, 0, 0 }
for i = 1, nw do
  if admit then rem[i] = rem[i] - cost end
  if rem[i] < 0 then rem[i] = 0 end
  res[i] = 0
  if firsts[i] < n then
    res[i] = at(firsts[i]) + lens[i] + 1 - t
  elseif admit then
    res[i] = lens[i] + 1
  end
end

if admit then
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
  local head = putn(t, 6, flags)
  if ncosts then head = head .. putn((ctot + cost) % U32, 4) end
  local state
  if nwide == wide and ncosts == costs then
    -- The surviving entries keep their bytes: one copy of them.
    local kept = cut < n and sub(s, hdr + cut * es) or ''
    local stamp = t % M
    if n > 0 then stamp = (rlast + (t - newest)) % M end
    if merge then
      state = head .. kept
    elseif ncosts then
      state = head .. kept .. putn(stamp, nsw) .. putn(ctot % U32, 4)
    else
      state = head .. kept .. putn(stamp, nsw)
    end
  else
    -- The layout changes (first cost > 1 or first merge, or the longest
    -- window crossed 65535 ms): re-encode the surviving entries.
    local parts = { head }
    for i = cut, n - 1 do
      parts[#parts + 1] = putn(at(i) % nM, nsw)
      if ncosts then parts[#parts + 1] = putn(cb(i) % U32, 4) end
    end
    if not merge then
      parts[#parts + 1] = putn(t % nM, nsw)
      if ncosts then parts[#parts + 1] = putn(ctot % U32, 4) end
    end
    state = table.concat(parts)
  end
  -- The newest entry counts until newest + longest + 1, a millisecond
  -- past longest; the slack (a second or more) covers it.
  redis.call('SET', key, state, 'PX', longest + slack)
elseif shifted then
  redis.call('SET', key, putn(newest, 6, byte(s, 1)) .. sub(s, 8), 'PX', longest + slack)
end

local best = pick(allowed, rem, rejecting, waits)
local out = { allowed and 1 or 0, best - 1, allowed and 0 or waits[best] }
for i = 1, nw do
  out[2 * i + 2], out[2 * i + 3] = rem[i], res[i]
end
return out
