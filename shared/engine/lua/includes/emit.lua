--[[
  Appends an event (field/value pairs after `at`) to the build's stream.
]]
--- @include "dagContext"

local function emit(...)
  redis.call('XADD', eventsKey, 'MAXLEN', '~', maxlen, '*', 'at', now, ...)
end
