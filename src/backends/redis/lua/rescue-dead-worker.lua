-- rescue-dead-worker: moves the tasks of a worker whose heartbeat lapsed to Recovery.
-- KEYS[1] the dead worker's Backup
-- KEYS[2] Recovery
-- KEYS[3] its heartbeat
-- KEYS[4] the worker set
-- KEYS[5] the idle workers
-- KEYS[6] the deletions set
-- ARGV[1] key prefix; ARGV[2] the dead worker's id; ARGV[3] the ended channel; ARGV[4] now (ms);
-- ARGV[5] when records ended now are due for deletion; ARGV[6] max_attempts
-- Returns how many tasks were rescued, or -1 if the worker is alive after all.
-- Atomically: if the heartbeat is really gone, moves every task of that Backup to the head of Recovery
-- (a task is never in two lists, nor in none; started ones back to queued, their try counted), and
-- forgets the worker, listed as idle too. A task tried max_attempts times ends failed instead.
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local prefix, now, due, maxAttempts = ARGV[1], ARGV[4], ARGV[5], tonumber(ARGV[6])
local ended = {ids = {}, outcomes = {}}
--@include for-deletion
--@include end-try
--@include to-recovery
redis.call('HDEL', KEYS[5], ARGV[2])
local n = toRecovery(KEYS[1], KEYS[2], {}, KEYS[5], 'its worker ' .. ARGV[2] .. ' stopped answering (its heartbeat lapsed)')
publishEnded(ARGV[3], KEYS[6])
publishEvents()
redis.call('SREM', KEYS[4], ARGV[2])
return n
