-- taskEvent(kind, id, status, at, task, startedAt): adds a task's queued, started or ended to the
-- events this call publishes on the task-events channel (publishEvents, at its end), as
-- [kind, taskid, topic, status, at, startedAt]; `task` is the record's task field (read if nil). Only
-- while some process watches (the key `watching` exists, renewed by watchers): else it costs one EXISTS
-- a call. The topic is read from the head of the task's JSON, which a push writes first.
-- Expects the local `prefix`.
local watched = redis.call('EXISTS', prefix .. 'watching') == 1
local events = {}
local function taskEvent(kind, id, status, at, task, startedAt)
  if not watched then return end
  task = task or redis.call('HGET', prefix .. 'task:' .. id, 'task')
  local topic = 'null'
  if task then topic = string.match(task, '^{"topic":("[^"\\]*")') or cjson.encode(cjson.decode(task).topic) end
  events[#events + 1] = '["' .. kind .. '",' .. cjson.encode(id) .. ',' .. topic .. ',"' .. status .. '",' .. at .. ',' ..
    (startedAt or 'null') .. ']'
end

-- publishEvents(): publishes the events taskEvent added, one message for the call.
local function publishEvents()
  if #events > 0 then redis.call('PUBLISH', prefix .. 'task-events', '[' .. table.concat(events, ',') .. ']') end
end
