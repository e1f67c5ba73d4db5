--[[
  Ends a planning or running build: every open task is cancelled and the build takes the
  final state ('cancelled' by a user, 'failed' when the orchestrator stops a build, e.g. its
  token budget is spent).

  Input:
    KEYS[1..3], ARGV[1..3] as in includes/dagContext.lua
    ARGV[4] reason
    ARGV[5] final state: 'cancelled' or 'failed'
    ARGV[6] failure code, or ''

  Output:
    {'err', message} when the build is not planning or running, else
    {'ok', id, role, gen, previous state, ...} for the tasks that had a job (queued or running)
]]
--- @include "includes/dagContext"
--- @include "includes/emit"
--- @include "includes/taskStates"

local bstate = redis.call('HGET', buildKey, 'state')
if bstate ~= 'running' and bstate ~= 'planning' then return {'err', 'build is ' .. tostring(bstate)} end
local final = ARGV[5]
local all = redis.call('HGETALL', statesKey)
local out = {'ok'}
for i = 1, #all, 2 do
  local id, st = all[i], all[i + 1]
  if st == 'pending' or st == 'queued' or st == 'running' then
    setState(id, 'cancelled')
    redis.call('HINCRBY', buildKey, 'cancelled', 1)
    emit('type', 'task.cancelled', 'task', id)
    if st ~= 'pending' then
      local key = prefix .. id
      out[#out + 1] = id
      out[#out + 1] = redis.call('HGET', key, 'role')
      out[#out + 1] = redis.call('HGET', key, 'gen')
      out[#out + 1] = st
    end
  end
end
redis.call('HSET', buildKey, 'state', final, 'open', 0, 'finishedAt', now, 'reason', ARGV[4])
if ARGV[6] ~= '' then redis.call('HSET', buildKey, 'failureCode', ARGV[6]) end
if final == 'cancelled' then
  emit('type', 'build.cancelled', 'state', final, 'reason', ARGV[4])
else
  emit('type', 'build.finished', 'state', final, 'reason', ARGV[4])
end
return out
