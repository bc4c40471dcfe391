-- release-orphans: gives back what this worker's Backup holds beyond the tasks it runs.
-- KEYS[1] this worker's Backup
-- KEYS[2] Recovery
-- KEYS[3] the idle workers
-- ARGV[1] key prefix; ARGV[2] this worker's id; ARGV[3..] the taskids it holds
-- Returns how many tasks went to Recovery.
-- Atomically: after a lost connection a reply or a handover may have been lost with it, and on a stop
-- nothing more is taken: a taskid in Backup that the worker does not hold was never run here, so it
-- goes to the head of Recovery (its record, if started by that lost take or handover, goes back to
-- queued, the attempt not counted); the worker is unlisted as idle.
local prefix, held = ARGV[1], {}
--@include to-recovery
for i = 3, #ARGV do held[ARGV[i]] = true end
redis.call('HDEL', KEYS[3], ARGV[2])
return toRecovery(KEYS[1], KEYS[2], held, KEYS[3])
