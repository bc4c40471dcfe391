-- push-tasks: creates the records of new tasks and queues them, or hands them to an idle worker.
-- KEYS[1] Normal
-- KEYS[2] the idle workers (a hash: worker id -> `<free slots>:<listing number>`)
-- KEYS[3] the deletions set
-- ARGV[1] key prefix; ARGV[2] limit (job_queue_size); ARGV[3] now (ms)
-- ARGV[4] the pushing process's worker id, or ''; ARGV[5] how many tasks that worker claimed
-- ARGV[6] its listing number; ARGV[7] the ended channel; ARGV[8] when records ended now are due for deletion
-- ARGV[9..] per task 4 values: taskid, task (JSON), expire, createdAt
-- Returns how many tasks were accepted, or {accepted, handover} when tasks were handed to the pushing
-- process's own worker (the handover text as take-tasks.lua tells tasks, headed by the listing number).
-- Atomically: creates the records of the tasks, in order. The first tasks were claimed by the pushing
-- process's own worker, idle, which runs them without waiting for this answer: they are started
-- (attempt 1, owned by it) and put in its Backup, and its listing (if still that one) loses their
-- slots. Else, if that worker is listed idle, the first tasks, as many as it has free slots, are handed
-- over to it: started at once, put in its Backup and returned as `[listing number, startedAt, tasks...]`,
-- so they start without a take round trip; it stays listed with the slots it has left (listed with none,
-- it awaits a handover on its way and is only woken). Only the pushing
-- process's own worker is handed tasks: it is alive, as it pushes. A worker of another process may have
-- died since it listed itself (its heartbeat outlives it by up to its ttl), and a task started for it
-- would neither run nor expire until rescued: those workers are woken to take the tasks, and a take
-- starts them. The rest are appended to Normal, as many as fit under `limit`, and idle workers are woken
-- for them. If they do not all fit, the tasks at Normal's head that expired waiting leave it first,
-- ended `expired` as a take would end them (and those ended otherwise): they have stopped waiting, and with
-- no worker running they would fill the queue for good. The rest are refused, with nothing written:
-- concurrent producers never overfill Normal.
-- Each record is added to the index (a sorted set of taskids by createdAt, key `index`) and, while some
-- process watches, its queued (and started, when started here) is published (include/task-events.lua).
-- A record has no time to live while its taskid is in a list (so at most job_queue_size of them wait,
-- and none vanishes under a running task): it is listed for deletion when its task ends, expired too.
local prefix, limit, now, self, claimed = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[5])
local channel, due = ARGV[7], ARGV[8]
-- now is stored as given (a Lua number would be written with 14 digits); nowMs is for comparing
local first = 9
local i, last, nowMs = first, #ARGV, tonumber(ARGV[3])
--@include add-taken
--@include for-deletion
--@include wake-idle-workers
--@include task-events
--@include end-expired
local indexed = {}
-- A task past its expire is never handed over: a take ends it.
local function fresh() return i <= last and nowMs <= ARGV[i + 3] + ARGV[i + 2] * 1000 end
-- The record of the next task, with its state fields; moves on to the task after it.
local function create(status, ...)
  local id = ARGV[i]
  redis.call('HSET', prefix .. 'task:' .. id, 'task', ARGV[i + 1], 'expire', ARGV[i + 2],
    'createdAt', ARGV[i + 3], 'status', status, ...)
  local n = #indexed
  indexed[n + 1], indexed[n + 2] = ARGV[i + 3], id
  if watched then
    taskEvent('queued', id, 'queued', ARGV[i + 3], ARGV[i + 1])
    if status == 'started' then taskEvent('started', id, 'started', now, ARGV[i + 1]) end
  end
  i = i + 4
  return id
end
-- Ends the tasks at Normal's head that have stopped waiting (at most the number given): stops at the first that waits.
local function dropEndedAtHead(most)
  local ended = {}
  for _ = 1, most do
    local id = redis.call('LINDEX', KEYS[1], 0)
    if not id then break end
    local key = prefix .. 'task:' .. id
    local f = redis.call('HMGET', key, 'status', 'createdAt', 'expire', 'attempt')
    if f[1] == 'queued' then
      -- Started once (given back, rescued), or within its expire: it waits.
      if f[4] or nowMs <= f[2] + f[3] * 1000 then break end
      endExpired(key, id, now)
      ended[#ended + 1] = id
    elseif f[1] == 'started' then
      break
    end
    redis.call('LPOP', KEYS[1])
  end
  if #ended > 0 then forDeletion(KEYS[3], ended) end
end
local function handOver(worker, listed)
  local free, listing = string.match(listed, '(%d+):(%d+)')
  free = tonumber(free)
  if free == 0 then return false end
  local ids, parts = {}, {'[', listing, ',', now}
  while #ids < free and fresh() do
    addTaken(parts, ARGV[i], '1', ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
    ids[#ids + 1] = create('started', 'attempt', '1', 'startedAt', now, 'owner', worker)
  end
  parts[#parts + 1] = ']'
  redis.call('RPUSH', prefix .. 'backup:' .. worker, unpack(ids))
  if #ids < free then
    redis.call('HSET', KEYS[2], worker, (free - #ids) .. ':' .. listing)
  else
    redis.call('HDEL', KEYS[2], worker)
  end
  return table.concat(parts)
end
local own = false
if claimed > 0 then
  local ids = {}
  while #ids < claimed do
    ids[#ids + 1] = create('started', 'attempt', '1', 'startedAt', now, 'owner', self)
  end
  redis.call('RPUSH', prefix .. 'backup:' .. self, unpack(ids))
  local listed = redis.call('HGET', KEYS[2], self)
  local free, listing = string.match(listed or '', '(%d+):(%d+)')
  if listing == ARGV[6] then
    if tonumber(free) > claimed then
      redis.call('HSET', KEYS[2], self, (free - claimed) .. ':' .. listing)
    else
      redis.call('HDEL', KEYS[2], self)
    end
  end
elseif self ~= '' and fresh() then
  local listed = redis.call('HGET', KEYS[2], self)
  if listed then own = handOver(self, listed) end
end
if i <= last then
  local room = limit - redis.call('LLEN', KEYS[1])
  if room < (last - i + 1) / 4 then
    dropEndedAtHead(1000)
    room = limit - redis.call('LLEN', KEYS[1])
  end
  local queued = {}
  while i <= last and #queued < room do queued[#queued + 1] = create('queued') end
  if #queued > 0 then
    redis.call('RPUSH', KEYS[1], unpack(queued))
    wakeIdleWorkers(KEYS[2])
  end
end
if #indexed > 0 then redis.call('ZADD', prefix .. 'index', unpack(indexed)) end
publishEvents()
if own then return {(i - first) / 4, own} end
return (i - first) / 4
