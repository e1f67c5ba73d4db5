--[[
  Ends a running build when no task is left open, failed if any task failed, else succeeded.
  Returns the final state, or '' when the build goes on.
]]
--- @include "dagContext"
--- @include "emit"

local function finishIfDone()
  if redis.call('HGET', buildKey, 'state') ~= 'running' then return '' end
  if tonumber(redis.call('HGET', buildKey, 'open')) > 0 then return '' end
  local final = 'succeeded'
  if tonumber(redis.call('HGET', buildKey, 'failed') or '0') > 0 then final = 'failed' end
  redis.call('HSET', buildKey, 'state', final, 'finishedAt', now)
  emit('type', 'build.finished', 'state', final, 'reason', redis.call('HGET', buildKey, 'reason') or '')
  return final
end
