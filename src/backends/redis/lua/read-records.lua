-- read-records: reads task records, ending each `expired` first if its time to start has passed.
-- KEYS[1] the deletions set
-- ARGV[1] key prefix; ARGV[2] now (ms); ARGV[3] the ended channel
-- ARGV[4] when records ended now are due for deletion; ARGV[5..] the taskids
-- Returns one JSON text (one text is read much faster than nested replies): an array with, per taskid
-- in order, null if there is no record, else [status, attempt, createdAt, expire, startedAt,
-- completedAt, task, results, warning], the texts as stored (task and results are JSON already) and
-- null for a field the record does not have.
-- Atomically, per record: one that is queued, never started and past its expire is ended `expired`,
-- listed for deletion and its end published, before it is read.
-- While some process watches, such an expiry is published (include/task-events.lua).
local prefix, now, channel, due = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
--@include for-deletion
--@include task-events
--@include end-expired
local parts, expired = {'['}, {}
for i = 5, #ARGV do
  local id = ARGV[i]
  local key = prefix .. 'task:' .. id
  local f = redis.call('HMGET', key, 'status', 'attempt', 'createdAt', 'expire', 'startedAt', 'completedAt', 'task', 'results',
    'warning')
  if i > 5 then parts[#parts + 1] = ',' end
  if not f[1] then
    parts[#parts + 1] = 'null'
  else
    local status, attempt, completedAt = f[1], f[2] or '0', f[6]
    if status == 'queued' and attempt == '0' and now > f[3] + f[4] * 1000 then
      status, completedAt = 'expired', ARGV[2]
      endExpired(key, id, ARGV[2], f[7])
      expired[#expired + 1] = id
    end
    parts[#parts + 1] = '["' .. status .. '",' .. attempt .. ',' .. (f[3] or 'null') .. ',' .. (f[4] or 'null') .. ',' ..
      (f[5] or 'null') .. ',' .. (completedAt or 'null') .. ',' .. (f[7] or 'null') .. ',' .. (f[8] or 'null') .. ',' ..
      (f[9] and cjson.encode(f[9]) or 'null') .. ']'
  end
end
if #expired > 0 then forDeletion(KEYS[1], expired) end
publishEvents()
parts[#parts + 1] = ']'
return table.concat(parts)
