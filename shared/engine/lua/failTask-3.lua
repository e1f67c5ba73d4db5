--[[
  Fails a task for good and skips every pending transitive dependent. The first failure of a
  build is its reason.

  Input:
    KEYS[1..3], ARGV[1..3] as in includes/dagContext.lua
    ARGV[4] task id
    ARGV[5] generation
    ARGV[6] error

  Output:
    {applied, finished}: applied 1, or 0 when the task was not open at that generation;
    finished the build's final state if it ended, else ''
]]
--- @include "includes/dagContext"
--- @include "includes/emit"
--- @include "includes/split"
--- @include "includes/taskStates"
--- @include "includes/finishIfDone"

local id, gen, err = ARGV[4], ARGV[5], ARGV[6]
local st = stateOf(id)
local key = prefix .. id
if (st ~= 'running' and st ~= 'queued') or redis.call('HGET', key, 'gen') ~= gen then return {0, ''} end
setState(id, 'failed')
redis.call('HSET', key, 'finishedAt', now, 'error', err)
redis.call('HINCRBY', buildKey, 'failed', 1)
redis.call('HINCRBY', buildKey, 'open', -1)
if not redis.call('HGET', buildKey, 'failedTask') then
  redis.call('HSET', buildKey, 'failedTask', id, 'reason', 'task ' .. id .. ' failed: ' .. err, 'failureCode', 'TASK_FAILED')
end
emit('type', 'task.failed', 'task', id, 'role', redis.call('HGET', key, 'role'), 'reason', err)
local queue = split(redis.call('HGET', key, 'dependents'))
local i = 1
while i <= #queue do
  local d = queue[i]
  i = i + 1
  if stateOf(d) == 'pending' then
    setState(d, 'skipped')
    redis.call('HINCRBY', buildKey, 'skipped', 1)
    redis.call('HINCRBY', buildKey, 'open', -1)
    emit('type', 'task.skipped', 'task', d, 'reason', 'dependency ' .. id .. ' failed')
    for _, dd in ipairs(split(redis.call('HGET', prefix .. d, 'dependents'))) do queue[#queue + 1] = dd end
  end
end
return {1, finishIfDone()}
