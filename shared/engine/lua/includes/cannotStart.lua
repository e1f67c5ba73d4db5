--[[
  Why a job of generation `gen` may not start its task (in state `st`, at generation
  `current`) in a build in state `bstate`: 'missing', 'build-<state>', 'stale' (a job of an
  older generation) or the task's terminal state; false when it may start.
]]

local function cannotStart(bstate, st, gen, current)
  if not bstate or not st then return 'missing' end
  if bstate ~= 'running' then return 'build-' .. bstate end
  if current ~= gen then return 'stale' end
  if st ~= 'queued' and st ~= 'running' then return st end
  return false
end
