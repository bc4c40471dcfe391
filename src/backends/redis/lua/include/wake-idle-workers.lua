-- wakeIdleWorkers(idle): every worker listed in the idle hash `idle` is told to look again (a handover
-- of no tasks, `[<its listing number>]` on its inbox channel) and unlisted: tasks were put where only a
-- take finds them. Expects the local `prefix`.
local function wakeIdleWorkers(idle)
  local listed = redis.call('HGETALL', idle)
  for k = 1, #listed, 2 do
    redis.call('PUBLISH', prefix .. 'inbox:' .. listed[k], '[' .. string.match(listed[k + 1], ':(%d+)$') .. ']')
  end
  redis.call('DEL', idle)
end
