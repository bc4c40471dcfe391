-- release-lease: frees a named lease if the owner given holds it.
-- KEYS[1] the lease key
-- ARGV[1] owner
-- Returns 1 if it was freed, else 0.
-- Atomically: reads the holder and deletes the key, so a lease passed on meanwhile is never freed.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
