-- take-tasks: moves a batch of tasks into this worker's Backup and starts them, or lists it as idle.
-- KEYS[1] Normal
-- KEYS[2] Recovery
-- KEYS[3] this worker's Backup
-- KEYS[4] its heartbeat
-- KEYS[5] the worker set
-- KEYS[6] the idle workers
-- KEYS[7] the deletions set
-- ARGV[1] key prefix; ARGV[2] the ended channel; ARGV[3] now (ms); ARGV[4] worker id; ARGV[5] max
-- ARGV[6] heartbeat ttl (ms); ARGV[7] listing number; ARGV[8] when records ended now are due for deletion
-- ARGV[9] how many of the tasks in Backup the worker knows it holds (those whose finish, retry or
-- give-back it has sent are not counted: sent before on the same connection, they have left Backup)
-- Returns one JSON text (one text is read much faster than nested replies), flat: 1 if the worker was
-- still listed as idle (0 if a push or a wake-up took its listing), the startedAt of this take, then
-- per task its taskid, code, task, expire and createdAt (task as stored, null if the record is gone);
-- finding none, `[listed, free slots it was listed with]`. The codes:
-- - queued -> started, attempt+1, owned by this worker: code = the attempt;
-- - queued, never started and past its expire -> expired: code 0 (a task started once never expires);
-- - anything else (ended, or its record gone past task_record_ttl): code -1.
-- While some process watches, each start and expiry is published (include/task-events.lua).
-- Atomically: renews the worker's heartbeat (its value: now) and membership (so a worker wrongly presumed dead is known
-- again before it holds anything) and unlists it as idle. Tasks in Backup beyond those the worker knows
-- of were handed over by a push of its own process whose reply has not reached it yet: they will run
-- there, so they fill slots too, and `room` = max minus their count (at least 0). Moves up to `room`
-- taskids from Recovery first, then Normal, into Backup, and starts each in the same step; tasks with
-- code 0 or -1 leave Backup at once. If there were none, lists the worker as idle with `room` free slots
-- (0 too: then a push hands it nothing and wakes it instead) under the listing number given, so
-- that the next push hands tasks straight to it.
local prefix, channel, now, worker, max = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local room = max - math.max(0, redis.call('LLEN', KEYS[3]) - tonumber(ARGV[9]))
if room < 0 then room = 0 end
local due = ARGV[8]
--@include add-taken
--@include for-deletion
--@include task-events
--@include end-expired
redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[6])
redis.call('SADD', KEYS[5], worker)
local listed = redis.call('HDEL', KEYS[6], worker)
-- Attempts as text: Lua formats a number with sprintf, a cost per task.
local nextAttempt = {['0'] = '1', ['1'] = '2', ['2'] = '3'}
local ids, parts = {}, {'[', listed, ',', ARGV[3]}
for _, source in ipairs({KEYS[2], KEYS[1]}) do
  if #ids < room then
    local moved = redis.call('LRANGE', source, 0, room - #ids - 1)
    if #moved > 0 then
      redis.call('LTRIM', source, #moved, -1)
      redis.call('RPUSH', KEYS[3], unpack(moved))
      for _, id in ipairs(moved) do ids[#ids + 1] = id end
    end
  end
end
if #ids == 0 then
  redis.call('HSET', KEYS[6], worker, room .. ':' .. ARGV[7])
  return '[' .. listed .. ',' .. room .. ']'
end
local expired = {}
for _, id in ipairs(ids) do
  local key = prefix .. 'task:' .. id
  local f = redis.call('HMGET', key, 'status', 'createdAt', 'expire', 'attempt', 'task')
  local attempt = f[4] or '0'
  if f[1] ~= 'queued' then
    -- Maybe no record at all: the taskid may not be one a push wrote, so it is quoted as JSON.
    parts[#parts + 1] = ',' .. cjson.encode(id) .. ',-1,null,0,0'
    redis.call('LREM', KEYS[3], 1, id)
  -- Arithmetic reads the texts as numbers itself: tonumber() would parse each one twice.
  elseif attempt == '0' and now > f[2] + f[3] * 1000 then
    endExpired(key, id, ARGV[3], f[5])
    expired[#expired + 1] = id
    redis.call('LREM', KEYS[3], 1, id)
    addTaken(parts, id, '0', f[5], f[3], f[2])
  else
    local code = nextAttempt[attempt] or tostring(tonumber(attempt) + 1)
    redis.call('HSET', key, 'status', 'started', 'startedAt', ARGV[3], 'attempt', code, 'owner', worker)
    addTaken(parts, id, code, f[5], f[3], f[2])
    taskEvent('started', id, 'started', ARGV[3], f[5])
  end
end
if #expired > 0 then forDeletion(KEYS[7], expired) end
publishEvents()
parts[#parts + 1] = ']'
return table.concat(parts)
