--[[
  Releases a task into the queued state and appends id, role, gen, spec to the table `out`:
  the caller adds its job from these (the job carries the spec, so a first delivery can start
  without reading it back).
]]
--- @include "dagContext"
--- @include "emit"
--- @include "taskStates"

local function release(id, out)
  local key = prefix .. id
  setState(id, 'queued')
  redis.call('HSET', key, 'queuedAt', now)
  local f = redis.call('HMGET', key, 'role', 'gen', 'spec')
  emit('type', 'task.queued', 'task', id, 'role', f[1])
  out[#out + 1] = id
  out[#out + 1] = f[1]
  out[#out + 1] = f[2]
  out[#out + 1] = f[3]
end
