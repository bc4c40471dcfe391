-- read-record: reads a task's record, ending it `expired` first if its time to start has passed.
-- KEYS[1] the record
-- KEYS[2] the deletions set
-- ARGV[1] now (ms); ARGV[2] the ended channel; ARGV[3] key prefix
-- ARGV[4] when records ended now are due for deletion; ARGV[5] the taskid
-- Returns the record's fields (as HGETALL), empty if there is no record.
-- Atomically: a record that is queued, never started and past its expire is ended `expired`, listed
-- for deletion and its end published, before it is read.
local prefix, due = ARGV[3], ARGV[4]
--@include for-deletion
local f = redis.call('HMGET', KEYS[1], 'status', 'createdAt', 'expire', 'attempt')
if f[1] == 'queued' and (f[4] or '0') == '0' and tonumber(ARGV[1]) > tonumber(f[2]) + tonumber(f[3]) * 1000 then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'completedAt', ARGV[1])
  forDeletion(KEYS[2], {ARGV[5]})
  redis.call('PUBLISH', ARGV[2], ARGV[5])
end
return redis.call('HGETALL', KEYS[1])
