-- claim-lease: takes a named lease if it is free, or renews it for the owner holding it.
-- KEYS[1] the lease key
-- ARGV[1] owner; ARGV[2] ttl (ms)
-- Returns 1 if `owner` holds the lease now, else 0.
-- Atomically: reads the holder and sets it with its time to live, so two owners never both get it.
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
