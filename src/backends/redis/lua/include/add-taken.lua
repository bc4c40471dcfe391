-- addTaken(parts, id, attempt, task, expire, createdAt): appends one task to the pieces of the text
-- that tells a worker what it was given (see take-tasks.lua), joined once at the end: a text of its
-- own per task costs Redis a tenth of a take (bench/redis-scripts.js).
local function addTaken(parts, id, attempt, task, expire, createdAt)
  local n = #parts
  parts[n + 1], parts[n + 2], parts[n + 3], parts[n + 4], parts[n + 5] = ',"', id, '",', attempt, ','
  parts[n + 6], parts[n + 7], parts[n + 8], parts[n + 9], parts[n + 10] = task, ',', expire, ',', createdAt
end
