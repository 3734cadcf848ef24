-- ratekit concurrency lease: take one of ARGV[1] slots for KEYS[1].
--
-- KEYS[1]  <prefix>:{<hex>}:s, a sorted set of lease IDs scored by the
--          millisecond at which each lease expires.
-- ARGV[1]  limit (slots), ARGV[2] lease TTL in ms, ARGV[3] lease ID,
-- ARGV[4]  now in ms, or "" to read the server's TIME.
--
-- Returns 1 when the lease was granted, 0 when limit leases are held.
local now
if ARGV[4] ~= '' then
  now = tonumber(ARGV[4])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local ttl = tonumber(ARGV[2])
-- Leases of crashed or stuck holders expire here.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
-- Every lease expires within ttl, so the set may go one second after.
redis.call('PEXPIRE', KEYS[1], ttl + 1000)
return 1
