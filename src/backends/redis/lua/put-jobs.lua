-- put-jobs: stores job definitions in the shared job hash, all or nothing.
-- KEYS[1] the job hash (name -> JSON)
-- ARGV[1] the jobs-changed channel; ARGV[2] replace ('1' or '0'); ARGV[3..] name, JSON pairs
-- Returns the names that exist already (without replace), or an empty list once written.
-- Atomically: without replace, a name that exists already means nothing is written; else every
-- definition is written and the change published.
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
