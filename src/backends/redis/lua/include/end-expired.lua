-- endExpired(key, id, at, task): ends the queued task `id` (record `key`), never started and past its
-- expire, `expired` at `at` (ms, as text), and tells it: on the ended channel, for waiters, and as a task
-- event (include/task-events.lua). `task` is the record's task field when read already (else nil). The
-- caller lists the record for deletion.
-- Expects the locals `prefix` and `channel` (the ended channel).
--@include task-events
local function endExpired(key, id, at, task)
  redis.call('HSET', key, 'status', 'expired', 'completedAt', at)
  redis.call('PUBLISH', channel, id)
  taskEvent('ended', id, 'expired', at, task)
end
