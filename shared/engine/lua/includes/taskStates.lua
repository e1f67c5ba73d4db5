--[[
  Reads and writes one task's state in the build's states hash.
]]
--- @include "dagContext"

local function stateOf(id)
  return redis.call('HGET', statesKey, id)
end

local function setState(id, st)
  redis.call('HSET', statesKey, id, st)
end
