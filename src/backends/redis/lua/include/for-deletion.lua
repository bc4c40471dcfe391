-- forDeletion(deletions, ids): lists ended records, by taskid, to be deleted once task_record_ttl has
-- passed: in the deletions list of the time `due` they are due (the end of this moment's bucket of
-- time, plus task_record_ttl), that time being in the deletions set `deletions` (see
-- sweep-ended-records.lua). A record has no time to live of its own: a PEXPIRE a record, and the entry
-- each takes in Redis's table of expiring keys, cost Redis a tenth of its time per task.
-- Expects the locals `prefix` and `due`.
local function forDeletion(deletions, ids)
  redis.call('RPUSH', prefix .. 'deletions:' .. due, unpack(ids))
  redis.call('ZADD', deletions, 'NX', due, due)
end
