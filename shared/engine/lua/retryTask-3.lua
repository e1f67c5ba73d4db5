--[[
  Re-opens a failed task (next generation, so its new job id differs from the failed one) and
  every skipped dependent whose dependencies can all still succeed, re-opening the build if it
  had ended failed.

  Input:
    KEYS[1..3], ARGV[1..3] as in includes/dagContext.lua
    ARGV[4] task id

  Output:
    {'err', message}, or {'ok', id, role, gen, spec}: the task, queued again
]]
--- @include "includes/dagContext"
--- @include "includes/emit"
--- @include "includes/split"
--- @include "includes/taskStates"
--- @include "includes/release"

local id = ARGV[4]
local bstate = redis.call('HGET', buildKey, 'state')
if not bstate then return {'err', 'build not found'} end
if bstate == 'cancelled' then return {'err', 'build is cancelled'} end
local st = stateOf(id)
if not st then return {'err', 'task ' .. id .. ' not found'} end
if st ~= 'failed' then return {'err', 'task ' .. id .. ' is ' .. st .. ', only failed tasks can be retried'} end
local key = prefix .. id
redis.call('HINCRBY', key, 'gen', 1)
redis.call('HSET', key, 'attempts', 0)
redis.call('HDEL', key, 'error', 'finishedAt', 'result')
redis.call('HINCRBY', buildKey, 'failed', -1)
redis.call('HINCRBY', buildKey, 'open', 1)
emit('type', 'task.retried', 'task', id)
if bstate ~= 'running' then
  redis.call('HSET', buildKey, 'state', 'running')
  redis.call('HDEL', buildKey, 'finishedAt')
  emit('type', 'build.reopened', 'state', 'running')
end
local out = {'ok'}
release(id, out)
-- Skipped dependents reachable from the task, re-opened to a fixpoint so that a task is
-- re-opened only once every dependency of it is succeeded or open again.
local candidates, seen = {}, {}
local queue = split(redis.call('HGET', key, 'dependents'))
local i = 1
while i <= #queue do
  local d = queue[i]
  i = i + 1
  if not seen[d] and stateOf(d) == 'skipped' then
    seen[d] = true
    candidates[#candidates + 1] = d
    for _, dd in ipairs(split(redis.call('HGET', prefix .. d, 'dependents'))) do queue[#queue + 1] = dd end
  end
end
local changed = true
while changed do
  changed = false
  for _, d in ipairs(candidates) do
    if stateOf(d) == 'skipped' then
      local ok = true
      for _, dep in ipairs(split(redis.call('HGET', prefix .. d, 'deps'))) do
        local ds = stateOf(dep)
        if ds ~= 'succeeded' and ds ~= 'pending' and ds ~= 'queued' and ds ~= 'running' then ok = false end
      end
      if ok then
        setState(d, 'pending')
        redis.call('HINCRBY', buildKey, 'skipped', -1)
        redis.call('HINCRBY', buildKey, 'open', 1)
        emit('type', 'task.retried', 'task', d, 'state', 'pending')
        changed = true
      end
    end
  end
end
if redis.call('HGET', buildKey, 'failedTask') == id then
  redis.call('HDEL', buildKey, 'failedTask', 'reason', 'failureCode')
  local all = redis.call('HGETALL', statesKey)
  for j = 1, #all, 2 do
    if all[j + 1] == 'failed' then
      local other = all[j]
      local e = redis.call('HGET', prefix .. other, 'error') or ''
      redis.call('HSET', buildKey, 'failedTask', other, 'reason', 'task ' .. other .. ' failed: ' .. e, 'failureCode', 'TASK_FAILED')
      break
    end
  end
end
return out
