--[[
  Starts a task for a worker's job. A task found 'running' is a re-delivery after its worker
  died: a new attempt.

  Input:
    KEYS[1..3], ARGV[1..3] as in includes/dagContext.lua
    ARGV[4] task id
    ARGV[5] generation of the job
    ARGV[6] worker id

  Output:
    {'run', spec, attempt} when the worker should execute the task, else {reason}: the task's
    terminal state, 'stale' (a job of an older generation), 'build-<state>' or 'missing'
]]
--- @include "includes/dagContext"
--- @include "includes/emit"
--- @include "includes/taskStates"
--- @include "includes/cannotStart"

local id, gen, worker = ARGV[4], ARGV[5], ARGV[6]
local f = redis.call('HMGET', prefix .. id, 'gen', 'role')
local why = cannotStart(redis.call('HGET', buildKey, 'state'), stateOf(id), gen, f[1])
if why then return {why} end
setState(id, 'running')
local key = prefix .. id
local attempt = redis.call('HINCRBY', key, 'attempts', 1)
redis.call('HSET', key, 'startedAt', now, 'worker', worker)
emit('type', 'task.started', 'task', id, 'role', f[2], 'attempt', attempt, 'worker', worker)
-- A missing spec reads as '', which the caller reports as a corrupt spec.
return {'run', redis.call('HGET', key, 'spec') or '', attempt}
