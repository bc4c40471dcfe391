-- sweep-ended-records: deletes ended records whose task_record_ttl has passed, a bounded batch a call.
-- KEYS[1] the deletions set (due times, in ms)
-- ARGV[1] key prefix; ARGV[2] now (ms); ARGV[3] the most records to delete
-- Returns 0 if no deletions list was due, else 1 + how many records were deleted.
-- Atomically: deletes the records of the earliest deletions list that is due, up to that many (the
-- rest in the next call), and the list, with its entry in the set, once empty; and their taskids from
-- the index (the sorted set `index`, see push-tasks.lua).
local prefix, max = ARGV[1], tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, 1)[1]
if not due then return 0 end
local list = prefix .. 'deletions:' .. due
local ids = redis.call('LRANGE', list, 0, max - 1)
if #ids > 0 then
  local keys = {}
  for i, id in ipairs(ids) do keys[i] = prefix .. 'task:' .. id end
  redis.call('UNLINK', unpack(keys))
  redis.call('ZREM', prefix .. 'index', unpack(ids))
end
if #ids < max then
  redis.call('DEL', list)
  redis.call('ZREM', KEYS[1], due)
else
  redis.call('LTRIM', list, max, -1)
end
return 1 + #ids
