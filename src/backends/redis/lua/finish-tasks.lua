-- finish-tasks: writes the outcomes of tasks this worker still holds, and tells waiters.
-- KEYS[1] this worker's Backup
-- KEYS[2] the deletions set
-- ARGV[1] key prefix; ARGV[2] the ended channel; ARGV[3] when records ended now are due for deletion
-- ARGV[4] this worker's id; ARGV[5] '1' to publish whether or not anybody here subscribes (a cluster: see below)
-- ARGV[6..] per task 7 values: taskid, status, completedAt, results (JSON), warning, startedAt, attempt
-- Returns how many outcomes were written.
-- Atomically: the lease is the Backup list itself: a task is in exactly one list, and a worker presumed
-- dead loses its whole Backup to Recovery in one step. So an outcome is written only for a task that is
-- still in this worker's Backup, which it leaves in the same step; one that was rescued (and may belong
-- to another worker now) is refused, and nothing of it is touched. Reading a lease from each record
-- would cost Redis a call per task, about a tenth of its time per task (bench/redis-scripts.js).
-- The record keeps `owner`: the worker that ran it. A record that lapsed or was deleted meanwhile is
-- not written back as a partial one. Waiters are told with one message for the whole batch on the
-- ended channel, a JSON array of this worker's id (its own process has told its waiters already), then
-- the outcomes written, each [taskid, status, completedAt, startedAt, attempt, results, warning], so
-- they need not read the records back; it is built only while somebody other than this worker's own
-- process subscribes to the channel (a waiter subscribes before it reads the record, so no end slips
-- between the two). That process subscribes to `<ended>:<worker id>` in the same command as to the
-- ended channel (and leaves both in one), so the server counts it on both or on neither: the difference
-- of the two counts is everybody else. PUBSUB NUMSUB counts this server's subscribers only: on a
-- cluster, where a waiter may listen on another node (every node hears every message), the caller asks
-- for the message always.
-- While some process watches, each end is published (include/task-events.lua).
local prefix, channel, due, always = ARGV[1], ARGV[2], ARGV[3], ARGV[5] == '1'
--@include for-deletion
--@include task-events
-- leaving: taskid -> the index of its values (a list holds a taskid once, as a take moves it)
local leaving, n, written, ids = {}, 0, {}, {}
for i = 6, #ARGV, 7 do
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
    taskEvent('ended', id, ARGV[i + 1], ARGV[i + 2], nil, ARGV[i + 5])
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
if #ids > 0 then forDeletion(KEYS[2], ids) end
local function othersListen()
  local counts = redis.call('PUBSUB', 'NUMSUB', channel, channel .. ':' .. ARGV[4])
  return counts[2] > counts[4]
end
if #written > 0 and (always or othersListen()) then
  local ended = {}
  for j, i in ipairs(written) do
    ended[j] = '[' .. cjson.encode(ARGV[i]) .. ',"' .. ARGV[i + 1] .. '",' .. ARGV[i + 2] .. ',' .. ARGV[i + 5] .. ',' ..
      ARGV[i + 6] .. ',' .. ARGV[i + 3] .. ',' .. cjson.encode(ARGV[i + 4]) .. ']'
  end
  redis.call('PUBLISH', channel, '[' .. cjson.encode(ARGV[4]) .. ',' .. table.concat(ended, ',') .. ']')
end
publishEvents()
return #written
