-- give-back-tasks: puts tasks this worker took but never ran back at the head of Normal.
-- KEYS[1] this worker's Backup
-- KEYS[2] Normal
-- KEYS[3] the idle workers
-- ARGV[1] key prefix; ARGV[2..] the taskids of tasks taken (and so started) whose jobs were never run
-- Returns how many were given back.
-- Atomically: each task still in Backup (its lease, as for finishing) moves to the head of Normal, in
-- order, and its start is undone (back to queued, the attempt not counted); idle workers are woken for
-- them. A task that left Backup (rescued meanwhile) is left where it is, so it is never in two lists.
local prefix, n = ARGV[1], 0
--@include wake-idle-workers
for i = #ARGV, 2, -1 do
  local id = ARGV[i]
  if redis.call('LREM', KEYS[1], 1, id) == 1 then
    local key = prefix .. 'task:' .. id
    local f = redis.call('HMGET', key, 'status', 'attempt')
    if f[1] == 'started' then
      redis.call('HSET', key, 'status', 'queued', 'attempt', tonumber(f[2]) - 1)
      redis.call('HDEL', key, 'owner', 'startedAt')
    end
    redis.call('LPUSH', KEYS[2], id)
    n = n + 1
  end
end
if n > 0 then wakeIdleWorkers(KEYS[3]) end
return n
