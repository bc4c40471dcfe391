-- toRecovery(from, recovery, keep, idle): moves every taskid of list `from` that is not a key of table
-- `keep` to the head of list `recovery`, started records back to queued without an owner, so that
-- another worker can start them; then wakes the idle workers of hash `idle` for them. Returns how many.
-- Expects the local `prefix`.
--@include wake-idle-workers
local function toRecovery(from, recovery, keep, idle)
  local n = 0
  for _, id in ipairs(redis.call('LRANGE', from, 0, -1)) do
    if not keep[id] then
      local key = prefix .. 'task:' .. id
      if redis.call('HGET', key, 'status') == 'started' then
        redis.call('HSET', key, 'status', 'queued')
        redis.call('HDEL', key, 'owner')
      end
      redis.call('LREM', from, 1, id)
      redis.call('LPUSH', recovery, id)
      n = n + 1
    end
  end
  if n > 0 then wakeIdleWorkers(idle) end
  return n
end
