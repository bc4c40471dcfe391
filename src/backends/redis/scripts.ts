// The Lua scripts of Redis mode: each is one atomic step. Record keys are `<prefix>task:<taskid>`
// (the prefix comes in ARGV: this is for a single Redis server, not a cluster).
// Record fields: taskid topic content expire createdAt job status attempt startedAt completedAt
// results warning owner. `owner` is `<worker id>:<attempt>`, the lease that fences finishing.

/** KEYS[1] Normal list, KEYS[2] the record. ARGV: limit, ttl ms, taskid, topic, content, expire, createdAt, job.
 *  Creates the record and appends the taskid to Normal, or does neither when Normal holds `limit`
 *  tasks already (returns 0): concurrent producers can never overfill it. */
export const push = `
if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], 'taskid', ARGV[3], 'topic', ARGV[4], 'content', ARGV[5], 'expire', ARGV[6],
  'createdAt', ARGV[7], 'job', ARGV[8], 'status', 'queued', 'attempt', '0')
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('RPUSH', KEYS[1], ARGV[3])
return 1
`;

/** KEYS[1] Normal, KEYS[2] Recovery, KEYS[3] this worker's Backup. ARGV: record prefix, max, then taskids
 *  already moved into Backup (by a blocking LMOVE). Moves up to `max` taskids in all from Recovery first,
 *  then Normal, into Backup, and returns [taskid, topic, content, expire, createdAt, job] for each.
 *  A taskid whose record is gone (past task_record_ttl) is dropped from Backup. */
export const take = `
local prefix, max = ARGV[1], tonumber(ARGV[2])
local ids = {}
for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
for _, source in ipairs({KEYS[2], KEYS[1]}) do
  while #ids < max do
    local id = redis.call('LMOVE', source, KEYS[3], 'LEFT', 'RIGHT')
    if not id then break end
    ids[#ids + 1] = id
  end
end
local out = {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', prefix .. id, 'topic', 'content', 'expire', 'createdAt', 'job')
  if f[1] then
    out[#out + 1] = {id, f[1], f[2], f[3], f[4], f[5] or ''}
  else
    redis.call('LREM', KEYS[3], 1, id)
  end
end
return out
`;

/** KEYS[1] this worker's Backup. ARGV: record prefix, ended channel, now (ms), worker id, taskids.
 *  Per task, atomically: queued → started with attempt+1 and owner set (returns the attempt), or
 *  queued past its expire → expired (returns 0; a task started once before never expires), or
 *  anything else → gone (returns -1). Expired and gone tasks leave Backup. */
export const start = `
local prefix, channel, now, worker = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local out = {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local key = prefix .. id
  local f = redis.call('HMGET', key, 'status', 'createdAt', 'expire', 'attempt')
  if f[1] ~= 'queued' then
    redis.call('LREM', KEYS[1], 1, id)
    out[#out + 1] = -1
  elseif tonumber(f[4]) == 0 and now > tonumber(f[2]) + tonumber(f[3]) * 1000 then
    redis.call('HSET', key, 'status', 'expired', 'completedAt', ARGV[3])
    redis.call('LREM', KEYS[1], 1, id)
    redis.call('PUBLISH', channel, id)
    out[#out + 1] = 0
  else
    local attempt = tonumber(f[4]) + 1
    redis.call('HSET', key, 'status', 'started', 'startedAt', ARGV[3], 'attempt', attempt, 'owner', worker .. ':' .. attempt)
    out[#out + 1] = attempt
  end
end
return out
`;

/** KEYS[1] this worker's Backup. ARGV: record prefix, ended channel, ttl ms, then per task 6 values:
 *  taskid, owner, status, completedAt, results (JSON), warning. Writes the outcome only if the task is
 *  still `started` under this owner (fencing: a worker presumed dead cannot finish a rescued task),
 *  then removes the taskid from Backup and tells waiters. Returns how many outcomes were written. */
export const finish = `
local prefix, channel, ttl = ARGV[1], ARGV[2], ARGV[3]
local written = 0
for i = 4, #ARGV, 6 do
  local id = ARGV[i]
  local key = prefix .. id
  local f = redis.call('HMGET', key, 'status', 'owner')
  if f[1] == 'started' and f[2] == ARGV[i + 1] then
    redis.call('HSET', key, 'status', ARGV[i + 2], 'completedAt', ARGV[i + 3], 'results', ARGV[i + 4])
    if ARGV[i + 5] ~= '' then redis.call('HSET', key, 'warning', ARGV[i + 5]) end
    redis.call('HDEL', key, 'owner')
    redis.call('PEXPIRE', key, ttl)
    redis.call('PUBLISH', channel, id)
    written = written + 1
  end
  redis.call('LREM', KEYS[1], 1, id)
end
return written
`;

/** KEYS[1] the record. ARGV: now (ms), ended channel. Returns the record's fields (HGETALL), after
 *  ending it `expired` if it is queued, never started and past its expire. */
export const record = `
local f = redis.call('HMGET', KEYS[1], 'status', 'createdAt', 'expire', 'attempt')
if f[1] == 'queued' and tonumber(f[4]) == 0 and tonumber(ARGV[1]) > tonumber(f[2]) + tonumber(f[3]) * 1000 then
  redis.call('HSET', KEYS[1], 'status', 'expired', 'completedAt', ARGV[1])
  redis.call('PUBLISH', ARGV[2], redis.call('HGET', KEYS[1], 'taskid'))
end
return redis.call('HGETALL', KEYS[1])
`;

/** KEYS[1] this worker's Backup, KEYS[2] Normal. ARGV: taskids taken but not started.
 *  Puts them back at the head of Normal, in their order. */
export const giveBack = `
for i = #ARGV, 1, -1 do
  redis.call('LREM', KEYS[1], 1, ARGV[i])
  redis.call('LPUSH', KEYS[2], ARGV[i])
end
return #ARGV
`;

/** KEYS[1] a dead worker's Backup, KEYS[2] Recovery, KEYS[3] its heartbeat key, KEYS[4] the worker set.
 *  ARGV: record prefix, the dead worker's id. If the heartbeat is really gone, moves every task of that
 *  Backup to the head of Recovery (a task is never in two lists, nor in none), sets started ones back to
 *  queued without an owner so that another worker can start them, and forgets the worker.
 *  Returns how many tasks were rescued, or -1 if the worker is alive after all. */
export const rescue = `
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
local n = 0
while true do
  local id = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not id then break end
  local key = ARGV[1] .. id
  if redis.call('HGET', key, 'status') == 'started' then
    redis.call('HSET', key, 'status', 'queued')
    redis.call('HDEL', key, 'owner')
  end
  n = n + 1
end
redis.call('SREM', KEYS[4], ARGV[2])
return n
`;

/** KEYS[1] this worker's Backup, KEYS[2] Recovery. ARGV: the taskids this worker holds.
 *  After a lost connection a reply may have been lost with it: a taskid in Backup that the worker
 *  does not hold was never started here, so it goes to the head of Recovery. Returns how many. */
export const releaseOrphans = `
local held = {}
for i = 1, #ARGV do held[ARGV[i]] = true end
local n = 0
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if not held[id] then
    redis.call('LREM', KEYS[1], 1, id)
    redis.call('LPUSH', KEYS[2], id)
    n = n + 1
  end
end
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
