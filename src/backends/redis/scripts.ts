// The Lua scripts of Redis mode: each is one atomic step. Every key shares the hash tag of the
// namespace (`{jobshell}:...`), so a script may build any key from the prefix it is given (a record's,
// another worker's Backup) and still touch one cluster slot only.
// Record hash fields: task expire createdAt status attempt startedAt completedAt results warning owner
// (the taskid is the key's last part). `task` is what a worker needs of the task besides its times, as
// JSON: {topic, content, job?}. `owner` is the id of the worker that started it, for operators (the lease
// that fences finishing is the taskid's place in that worker's Backup list, see finish). `warning` is there
// only if the outcome has one. Every field a script touches per task costs Redis time, the bottleneck of a
// busy queue: hence no taskid field, no empty warning, and no attempt until the task is first started
// (absent means 0).

/** Lua: `addTaken(parts, id, attempt, task, expire, createdAt)` appends a task to the parts of the text that
 *  tells a worker what it was given (see take): as pieces, joined once at the end. A text of its own per
 *  task (a row) cost Redis a tenth of a take (bench/redis-scripts.js: taking 3.9 to 3.6-3.8 µs a task). */
const addTakenText = `
local function addTaken(parts, id, attempt, task, expire, createdAt)
  local n = #parts
  parts[n + 1], parts[n + 2], parts[n + 3], parts[n + 4], parts[n + 5] = ',"', id, '",', attempt, ','
  parts[n + 6], parts[n + 7], parts[n + 8], parts[n + 9], parts[n + 10] = task, ',', expire, ',', createdAt
end`;

/** Lua: `forDeletion(ids)` lists ended records, by taskid, to be deleted once task_record_ttl has passed:
 *  in the deletions list of the time `due` they are due (the end of this moment's bucket of time, plus
 *  task_record_ttl), that time being in the deletions set (KEYS[deletions]; see sweep). A record has no
 *  time to live of its own: a PEXPIRE a record, and the entry each takes in Redis's table of expiring
 *  keys, cost Redis a tenth of its time per task. Expects `prefix` and `due` to be defined. */
const forDeletionText = (deletions: string) => `
local function forDeletion(ids)
  redis.call('RPUSH', prefix .. 'deletions:' .. due, unpack(ids))
  redis.call('ZADD', ${deletions}, 'NX', due, due)
end`;

/** Lua: every worker listed in the idle hash `idle` is told to look again (a handover of no tasks) and
 *  unlisted: tasks were put where only a take finds them. Expects `prefix` to be defined. */
const wakeIdleWorkers = (idle: string) => `
local listed = redis.call('HGETALL', ${idle})
for k = 1, #listed, 2 do
  redis.call('PUBLISH', prefix .. 'inbox:' .. listed[k], '[' .. string.match(listed[k + 1], ':(%d+)$') .. ']')
end
redis.call('DEL', ${idle})`;

/** KEYS[1] Normal, KEYS[2] the idle workers (a hash: worker id → `<free slots>:<listing number>`),
 *  KEYS[3] the deletions set. ARGV: key prefix, limit, now (ms), the pushing process's worker id (or
 *  ''), how many tasks that worker claimed, its listing number, the ended channel, when records ended
 *  now are due for deletion, then per task 4 values: taskid, task (JSON), expire, createdAt.
 *  Creates the records of the tasks, in order. The first tasks were claimed by the pushing process's
 *  own worker, idle, which runs them without waiting for this answer: they are started (attempt 1,
 *  owned by it) and put in its Backup, and its listing (if still that one) loses their slots. Else, if
 *  that worker is listed idle, the first tasks, as many as it has free slots, are handed over to it:
 *  started at once, put in its Backup and returned as `[listing number, startedAt, tasks...]` as the
 *  take script tells them, so they start without a take round trip; it stays listed with the slots it
 *  has left. Only the pushing process's own worker is handed tasks: it is alive, as it pushes. A worker
 *  of another process may have died since it listed itself (its heartbeat outlives it by up to its
 *  ttl), and a task started for it would neither run nor expire until rescued: those workers are woken
 *  to take the tasks, and a take starts them. The rest are appended to Normal, as many as fit under
 *  `limit`, and idle workers are woken for them. If they do not all fit, the tasks at Normal's head that
 *  expired waiting leave it first, ended `expired` as a take would end them (and those ended otherwise):
 *  they wait no longer, and with no worker running they would fill the queue for good. Returns how many
 *  tasks were accepted, with the own
 *  handover if any: {accepted, handover}. The rest are refused, with nothing written: concurrent
 *  producers never overfill Normal.
 *  A record has no time to live while its taskid is in a list (so at most job_queue_size of them wait,
 *  and none vanishes under a running task): it is listed for deletion when its task ends, expired too. */
export const push = `
local prefix, limit, now, self, claimed = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[5])
local channel, due = ARGV[7], ARGV[8]
-- now is stored as given (a Lua number would be written with 14 digits); nowMs is for comparing
local first = 9
local i, last, nowMs = first, #ARGV, tonumber(ARGV[3])
-- A task past its expire is never handed over: a take ends it.
local function fresh() return i <= last and nowMs <= ARGV[i + 3] + ARGV[i + 2] * 1000 end
-- The record of the next task, with its state fields; moves on to the task after it.
local function create(...)
  local id = ARGV[i]
  redis.call('HSET', prefix .. 'task:' .. id, 'task', ARGV[i + 1], 'expire', ARGV[i + 2],
    'createdAt', ARGV[i + 3], ...)
  i = i + 4
  return id
end
${addTakenText}
${forDeletionText("KEYS[3]")}
-- Ends the tasks at Normal's head that no longer wait (at most the number given): stops at the first that waits.
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
      redis.call('HSET', key, 'status', 'expired', 'completedAt', now)
      redis.call('PUBLISH', channel, id)
      ended[#ended + 1] = id
    elseif f[1] == 'started' then
      break
    end
    redis.call('LPOP', KEYS[1])
  end
  if #ended > 0 then forDeletion(ended) end
end
local function handOver(worker, listed)
  local free, listing = string.match(listed, '(%d+):(%d+)')
  free = tonumber(free)
  local ids, parts = {}, {'[', listing, ',', now}
  while #ids < free and fresh() do
    addTaken(parts, ARGV[i], '1', ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
    ids[#ids + 1] = create('status', 'started', 'attempt', '1', 'startedAt', now, 'owner', worker)
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
    ids[#ids + 1] = create('status', 'started', 'attempt', '1', 'startedAt', now, 'owner', self)
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
  while i <= last and #queued < room do queued[#queued + 1] = create('status', 'queued') end
  if #queued > 0 then
    redis.call('RPUSH', KEYS[1], unpack(queued))
    ${wakeIdleWorkers("KEYS[2]")}
  end
end
if own then return {(i - first) / 4, own} end
return (i - first) / 4
`;

/** KEYS[1] Normal, KEYS[2] Recovery, KEYS[3] this worker's Backup, KEYS[4] its heartbeat, KEYS[5] the
 *  worker set, KEYS[6] the idle workers, KEYS[7] the deletions set. ARGV: key prefix, ended channel,
 *  now (ms), worker id, max, heartbeat ttl ms, listing number, when records ended now are due for deletion.
 *  Renews the worker's heartbeat and membership (so a worker wrongly presumed dead is known again before
 *  it holds anything) and unlists it as idle. Moves up to `max` taskids from Recovery first, then
 *  Normal, into Backup, and starts each in the same step; if there were none, lists the worker as idle
 *  with `max` free slots under the listing number given, so that the next push hands tasks straight to it.
 *  Returns one JSON text (one text is read much faster than nested replies), flat: 1 if the worker was
 *  still listed as idle (0 if a push or a wake-up took its listing), the startedAt of this take, then per
 *  task its taskid, code, task, expire and createdAt (task as stored, null if the record is gone):
 *  - queued → started, attempt+1, owned by this worker: code = the attempt;
 *  - queued, never started and past its expire → expired: code 0 (a task started once never expires);
 *  - anything else (ended, or its record gone past task_record_ttl): code -1.
 *  Tasks with code 0 or -1 leave Backup at once. */
export const take = `
local prefix, channel, now, worker, max = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local due = ARGV[8]
${addTakenText}
${forDeletionText("KEYS[7]")}
redis.call('SET', KEYS[4], '1', 'PX', ARGV[6])
redis.call('SADD', KEYS[5], worker)
local listed = redis.call('HDEL', KEYS[6], worker)
-- Attempts as text: Lua formats a number with sprintf, a cost per task.
local nextAttempt = {['0'] = '1', ['1'] = '2', ['2'] = '3'}
local ids, parts = {}, {'[', listed, ',', ARGV[3]}
for _, source in ipairs({KEYS[2], KEYS[1]}) do
  if #ids < max then
    local moved = redis.call('LRANGE', source, 0, max - #ids - 1)
    if #moved > 0 then
      redis.call('LTRIM', source, #moved, -1)
      redis.call('RPUSH', KEYS[3], unpack(moved))
      for _, id in ipairs(moved) do ids[#ids + 1] = id end
    end
  end
end
if #ids == 0 then
  redis.call('HSET', KEYS[6], worker, max .. ':' .. ARGV[7])
  return '[' .. listed .. ']'
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
    redis.call('HSET', key, 'status', 'expired', 'completedAt', ARGV[3])
    expired[#expired + 1] = id
    redis.call('PUBLISH', channel, id)
    redis.call('LREM', KEYS[3], 1, id)
    addTaken(parts, id, '0', f[5], f[3], f[2])
  else
    local code = nextAttempt[attempt] or tostring(tonumber(attempt) + 1)
    redis.call('HSET', key, 'status', 'started', 'startedAt', ARGV[3], 'attempt', code, 'owner', worker)
    addTaken(parts, id, code, f[5], f[3], f[2])
  end
end
if #expired > 0 then forDeletion(expired) end
parts[#parts + 1] = ']'
return table.concat(parts)
`;

/** KEYS[1] this worker's Backup, KEYS[2] the deletions set. ARGV: key prefix, ended channel, when
 *  records ended now are due for deletion, then per task 7 values:
 *  taskid, status, completedAt, results (JSON), warning, startedAt, attempt.
 *  The lease is the Backup list itself: a task is in exactly one list, and a worker presumed dead loses
 *  its whole Backup to Recovery in one step. So an outcome is written only for a task that is still in
 *  this worker's Backup, which it leaves in the same step; one that was rescued (and may belong to
 *  another worker now) is refused, and nothing of it is touched. Reading each record's lease instead
 *  cost Redis a call per task, about a tenth of its time per task (measured: bench/redis-scripts.js).
 *  The record keeps `owner`: the worker that ran it. A record that lapsed or was deleted meanwhile is
 *  not written back as a partial one.
 *  Waiters are told with one message for the whole batch, a JSON array of the outcomes written, so
 *  they need not read the records back; it is built only while somebody subscribes to the channel (a
 *  waiter subscribes before it reads the record, so no end slips between the two). Returns how many
 *  were written. */
export const finish = `
local prefix, channel, due = ARGV[1], ARGV[2], ARGV[3]
${forDeletionText("KEYS[2]")}
-- leaving: taskid -> the index of its values (a list holds a taskid once, as a take moves it)
local leaving, n, written, ids = {}, 0, {}, {}
for i = 4, #ARGV, 7 do
  leaving[ARGV[i]] = i
  n = n + 1
end
local function write(id, i)
  local key = prefix .. 'task:' .. id
  local added
  if ARGV[i + 4] == '' then
    added = redis.call('HSET', key, 'status', ARGV[i + 1], 'completedAt', ARGV[i + 2], 'results', ARGV[i + 3]) == 3
  else
    added = redis.call('HSET', key, 'status', ARGV[i + 1], 'completedAt', ARGV[i + 2], 'results', ARGV[i + 3],
      'warning', ARGV[i + 4]) == 4
  end
  -- Every field new: there was no record (a started one always has a status).
  if added then
    redis.call('DEL', key)
  else
    written[#written + 1] = i
    ids[#ids + 1] = id
  end
end
-- Tasks mostly end in the order they were taken: those at the head of Backup leave with one LTRIM,
-- the others one LREM each, whose count says whether the task was still there.
local k = 0
if n > 1 then
  for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, n - 1)) do
    local i = leaving[id]
    if not i then break end
    leaving[id] = nil
    k = k + 1
    write(id, i)
  end
  if k > 0 then redis.call('LTRIM', KEYS[1], k, -1) end
end
for id, i in pairs(leaving) do
  if redis.call('LREM', KEYS[1], 1, id) == 1 then write(id, i) end
end
if #ids > 0 then forDeletion(ids) end
if #written > 0 and redis.call('PUBSUB', 'NUMSUB', channel)[2] > 0 then
  local ended = {}
  for j, i in ipairs(written) do
    ended[j] = '[' .. cjson.encode(ARGV[i]) .. ',"' .. ARGV[i + 1] .. '",' .. ARGV[i + 2] .. ',' .. ARGV[i + 5] .. ',' ..
      ARGV[i + 6] .. ',' .. ARGV[i + 3] .. ',' .. cjson.encode(ARGV[i + 4]) .. ']'
  end
  redis.call('PUBLISH', channel, '[' .. table.concat(ended, ',') .. ']')
end
return #written
`;

/** KEYS[1] the record, KEYS[2] the deletions set. ARGV: now (ms), ended channel, key prefix, when records
 *  ended now are due for deletion, the taskid. Returns the record's fields (HGETALL), after ending it
 *  `expired` if it is queued, never started and past its expire. */
export const record = `
local prefix, due = ARGV[3], ARGV[4]
${forDeletionText("KEYS[2]")}
local f = redis.call('HMGET', KEYS[1], 'status', 'createdAt', 'expire', 'attempt')
if f[1] == 'queued' and (f[4] or '0') == '0' and tonumber(ARGV[1]) > tonumber(f[2]) + tonumber(f[3]) * 1000 then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'completedAt', ARGV[1])
  forDeletion({ARGV[5]})
  redis.call('PUBLISH', ARGV[2], ARGV[5])
end
return redis.call('HGETALL', KEYS[1])
`;

/** KEYS[1] the deletions set. ARGV: key prefix, now (ms), the most records to delete.
 *  Deletes the records of the earliest deletions list that is due, up to that many (the rest in the next
 *  call), and the list once empty. Returns 0 if none was due, else 1 + how many were deleted. */
export const sweep = `
local prefix, max = ARGV[1], tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, 1)[1]
if not due then return 0 end
local list = prefix .. 'deletions:' .. due
local ids = redis.call('LRANGE', list, 0, max - 1)
if #ids > 0 then
  local keys = {}
  for i, id in ipairs(ids) do keys[i] = prefix .. 'task:' .. id end
  redis.call('UNLINK', unpack(keys))
end
if #ids < max then
  redis.call('DEL', list)
  redis.call('ZREM', KEYS[1], due)
else
  redis.call('LTRIM', list, max, -1)
end
return 1 + #ids
`;

/** KEYS[1] this worker's Backup, KEYS[2] Normal, KEYS[3] the idle workers. ARGV: key prefix, then
 *  the taskids of tasks taken (and so started) whose jobs were never run. Each one still in Backup (its
 *  lease, as for finishing) moves to the head of Normal, in order, and its start is undone (back to
 *  queued, the attempt not counted); idle workers are woken for them. A task no longer in Backup
 *  (rescued meanwhile) is left where it is, so it is never in two lists. */
export const giveBack = `
local prefix, n = ARGV[1], 0
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
if n > 0 then ${wakeIdleWorkers("KEYS[3]")} end
return n
`;

/** Lua: moves every taskid of list `from` that is not in table `keep` to the head of Recovery (KEYS[2]),
 *  started records back to queued without an owner, so that another worker can start them; then wakes
 *  the idle workers for them. Sets `n` to how many. Expects `prefix` to be defined. */
const toRecovery = (from: string, keep: string, idle: string) => `
local n = 0
for _, id in ipairs(redis.call('LRANGE', ${from}, 0, -1)) do
  if not ${keep}[id] then
    local key = prefix .. 'task:' .. id
    if redis.call('HGET', key, 'status') == 'started' then
      redis.call('HSET', key, 'status', 'queued')
      redis.call('HDEL', key, 'owner')
    end
    redis.call('LREM', ${from}, 1, id)
    redis.call('LPUSH', KEYS[2], id)
    n = n + 1
  end
end
if n > 0 then ${wakeIdleWorkers(idle)} end`;

/** KEYS[1] a dead worker's Backup, KEYS[2] Recovery, KEYS[3] its heartbeat key, KEYS[4] the worker set,
 *  KEYS[5] the idle workers. ARGV: key prefix, the dead worker's id. If the heartbeat is really gone,
 *  moves every task of that Backup to the head of Recovery (a task is never in two lists, nor in none;
 *  started ones back to queued), and forgets the worker, listed as idle too.
 *  Returns how many tasks were rescued, or -1 if the worker is alive after all. */
export const rescue = `
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local prefix, none = ARGV[1], {}
redis.call('HDEL', KEYS[5], ARGV[2])
${toRecovery("KEYS[1]", "none", "KEYS[5]")}
redis.call('SREM', KEYS[4], ARGV[2])
return n
`;

/** KEYS[1] this worker's Backup, KEYS[2] Recovery, KEYS[3] the idle workers. ARGV: key prefix, this
 *  worker's id, then the taskids it holds.
 *  After a lost connection a reply or a handover may have been lost with it, and on a stop nothing more
 *  is taken: a taskid in Backup that the worker does not hold was never run here, so it goes to the head
 *  of Recovery (its record, if started by that lost take or handover, goes back to queued); the worker
 *  is unlisted as idle. Returns how many. */
export const releaseOrphans = `
local prefix, held = ARGV[1], {}
for i = 3, #ARGV do held[ARGV[i]] = true end
redis.call('HDEL', KEYS[3], ARGV[2])
${toRecovery("KEYS[1]", "held", "KEYS[3]")}
return n
`;

/** KEYS[1] the job hash, ARGV: changed channel, replace ('1' or '0'), then name, JSON pairs.
 *  All or nothing: without replace, returns the names that exist already and writes nothing. */
export const putJobs = `
if ARGV[2] ~= '1' then
  local taken = {}
  for i = 3, #ARGV, 2 do
    if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then taken[#taken + 1] = ARGV[i] end
  end
  if #taken > 0 then return taken end
end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PUBLISH', ARGV[1], 'put')
return {}
`;

/** KEYS[1] the lease key. ARGV: owner, ttl ms. Takes the lease if free, renews it if `owner` holds it. */
export const claim = `
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`;

/** KEYS[1] the lease key. ARGV: owner. Frees the lease if `owner` holds it. */
export const release = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
