-- retry-tasks: tasks this worker holds whose try ended before their scripts did (the thread a script
-- ran in was ended) go back to the head of Recovery to be tried again.
-- KEYS[1] this worker's Backup
-- KEYS[2] Recovery
-- KEYS[3] the idle workers
-- KEYS[4] the deletions set
-- ARGV[1] key prefix; ARGV[2] the ended channel; ARGV[3] now (ms); ARGV[4] when records ended now are
-- due for deletion; ARGV[5] max_attempts; ARGV[6..] per task 2 values: taskid, how its try ended
-- Returns how many went back to Recovery.
-- Atomically: fenced by Backup, as finish-tasks is: a task no longer in it (rescued meanwhile) is left
-- alone. Each try is added to the record's `tries`; a task tried max_attempts times ends failed, with
-- a warning listing every try, and waiters are told as finish-tasks tells them. Idle workers are woken.
local prefix, now, due, maxAttempts = ARGV[1], ARGV[3], ARGV[4], tonumber(ARGV[5])
local ended = {ids = {}, outcomes = {}}
--@include for-deletion
--@include end-try
--@include wake-idle-workers
local n = 0
for i = #ARGV - 1, 6, -2 do
  local id = ARGV[i]
  if redis.call('LREM', KEYS[1], 1, id) == 1 then
    local key = prefix .. 'task:' .. id
    if redis.call('HGET', key, 'status') == 'started' and endTry(key, id, ARGV[i + 1]) then
      redis.call('LPUSH', KEYS[2], id)
      n = n + 1
    end
  end
end
publishEnded(ARGV[2], KEYS[4])
publishEvents()
if n > 0 then wakeIdleWorkers(KEYS[3]) end
return n
