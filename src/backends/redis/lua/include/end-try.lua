-- endTry(key, id, why): the try of the started task `id` (record `key`) ended before its scripts did,
-- as `why` says: the try is added to the record's `tries`, and the task goes back to queued without an
-- owner (returns true) or, tried max_attempts times, ends failed with a warning listing every try
-- (returns false; its taskid and its outcome as the ended channel tells it are added to `ended`).
-- Either is a task event (include/task-events.lua: publishEvents() at the end of the script).
-- Expects the locals `now` (ms, as text), `maxAttempts` (a number) and `ended` ({ids = {}, outcomes = {}}).
--@include task-events
local function endTry(key, id, why)
  local f = redis.call('HMGET', key, 'attempt', 'tries', 'startedAt')
  local attempt = tonumber(f[1]) or 1
  local tries = (f[2] and (f[2] .. '; ') or '') .. 'attempt ' .. attempt .. ': ' .. why
  if attempt < maxAttempts then
    redis.call('HSET', key, 'status', 'queued', 'tries', tries)
    redis.call('HDEL', key, 'owner')
    taskEvent('queued', id, 'queued', now)
    return true
  end
  local warning = 'tried ' .. attempt .. ' times (max_attempts ' .. maxAttempts .. '), each try ended before its scripts did: ' .. tries
  redis.call('HSET', key, 'status', 'failed', 'completedAt', now, 'results', '[]', 'warning', warning, 'tries', tries)
  taskEvent('ended', id, 'failed', now, nil, f[3])
  ended.ids[#ended.ids + 1] = id
  ended.outcomes[#ended.outcomes + 1] = '[' .. cjson.encode(id) .. ',"failed",' .. now .. ',' .. (f[3] or now) .. ',' .. attempt ..
    ',[],' .. cjson.encode(warning) .. ']'
  return false
end

-- publishEnded(channel, deletions): the records endTry ended are listed for deletion and told to waiters,
-- in the ended channel's form (lua/finish-tasks.lua) under the worker id "", so that every process,
-- this one's included, tells its waiters.
-- Expects `forDeletion` and the local `due`.
local function publishEnded(channel, deletions)
  if #ended.ids == 0 then return end
  forDeletion(deletions, ended.ids)
  redis.call('PUBLISH', channel, '["",' .. table.concat(ended.outcomes, ',') .. ']')
end
