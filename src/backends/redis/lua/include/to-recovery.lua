-- toRecovery(from, recovery, keep, idle, why): moves every taskid of list `from` that is not a key of
-- table `keep` to the head of list `recovery`, and wakes the idle workers of hash `idle` for them.
-- Returns how many. A started record goes back to queued without an owner, so that another worker can
-- start it: with `why` nil (the task was never run: its start is undone, the attempt not counted), or
-- as a try that ended as `why` says (see endTry: tried max_attempts times it ends failed instead, and
-- stays out of `recovery`). Expects the local `prefix`, and with `why` what endTry expects.
--@include wake-idle-workers
local function toRecovery(from, recovery, keep, idle, why)
  local n = 0
  for _, id in ipairs(redis.call('LRANGE', from, 0, -1)) do
    if not keep[id] then
      local key = prefix .. 'task:' .. id
      local again = true
      local f = redis.call('HMGET', key, 'status', 'attempt')
      if f[1] == 'started' then
        if why then
          again = endTry(key, id, why)
        else
          redis.call('HSET', key, 'status', 'queued', 'attempt', tonumber(f[2]) - 1)
          redis.call('HDEL', key, 'owner', 'startedAt')
        end
      end
      redis.call('LREM', from, 1, id)
      if again then
        redis.call('LPUSH', recovery, id)
        n = n + 1
      end
    end
  end
  if n > 0 then wakeIdleWorkers(idle) end
  return n
end
