--[[
  Records the success of several tasks of one build at once (the completions a worker
  collected in one turn of its event loop), releasing the dependents whose last dependency
  they were. A task with a start time is a first delivery whose start was never recorded (it
  started and finished within one turn), so its start and success are recorded together, as
  one `task.succeeded` event carrying the start; with '' its start is recorded already. Build
  counters and dependents' counters are updated once per batch.

  Input:
    KEYS[1..3], ARGV[1..3] as in includes/dagContext.lua
    ARGV[4...] five values per task: id, generation, worker id, started at (ms) or '', result JSON

  Output:
    {finished, status per task..., id, role, gen, spec, ...released}
      finished: the build's final state if it ended, else ''
      status:   'ok'; 'noop' (a recorded start whose task is no longer open at that
                generation: a duplicate delivery or a cancelled build); or, for an
                unrecorded start, why the task may not run (as startTask answers)
]]
--- @include "includes/dagContext"
--- @include "includes/emit"
--- @include "includes/split"
--- @include "includes/taskStates"
--- @include "includes/cannotStart"
--- @include "includes/release"
--- @include "includes/finishIfDone"

local bstate = redis.call('HGET', buildKey, 'state')
local out = {''}
local decrements, order, succeeded = {}, {}, {}
local ids = {}
for i = 4, #ARGV, 5 do ids[#ids + 1] = ARGV[i] end
local states = redis.call('HMGET', statesKey, unpack(ids))
local done = 0
for n, id in ipairs(ids) do
  local i = 4 + (n - 1) * 5
  local gen, worker, startedAt, result = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local key = prefix .. id
  local f = redis.call('HMGET', key, 'gen', 'role', 'dependents', 'attempts')
  local st = states[n]
  -- The same task twice in one batch (a duplicate delivery): only the first may succeed.
  if succeeded[id] then st = 'succeeded' end
  local why
  if startedAt == '' then
    if (st ~= 'running' and st ~= 'queued') or f[1] ~= gen then why = 'noop' end
  else
    why = cannotStart(bstate, st, gen, f[1])
  end
  if why then
    out[#out + 1] = why
  else
    out[#out + 1] = 'ok'
    done = done + 1
    succeeded[id] = true
    if startedAt == '' then
      redis.call('HSET', key, 'finishedAt', now, 'result', result)
      emit('type', 'task.succeeded', 'task', id, 'role', f[2])
    else
      local attempt = (tonumber(f[4]) or 0) + 1
      redis.call('HSET', key, 'attempts', attempt, 'startedAt', startedAt, 'worker', worker, 'finishedAt', now, 'result', result)
      emit('type', 'task.succeeded', 'task', id, 'role', f[2], 'startedAt', startedAt, 'attempt', attempt, 'worker', worker)
    end
    for _, d in ipairs(split(f[3])) do
      if not decrements[d] then
        decrements[d] = 0
        order[#order + 1] = d
      end
      decrements[d] = decrements[d] + 1
    end
  end
end
if done == 0 then return out end
local set = {}
for id in pairs(succeeded) do
  set[#set + 1] = id
  set[#set + 1] = 'succeeded'
end
redis.call('HSET', statesKey, unpack(set))
redis.call('HINCRBY', buildKey, 'succeeded', done)
local open = redis.call('HINCRBY', buildKey, 'open', -done)
for _, d in ipairs(order) do
  local left = redis.call('HINCRBY', prefix .. d, 'remaining', -decrements[d])
  if left <= 0 and stateOf(d) == 'pending' then release(d, out) end
end
if open <= 0 then out[1] = finishIfDone() end
return out
