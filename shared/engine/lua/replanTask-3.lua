--[[
  Instead of failing a task for good, starts it over once under a revised spec (next
  generation), in one step so the build never shows a failure it then takes back.

  Input:
    KEYS[1..3], ARGV[1..3] as in includes/dagContext.lua
    ARGV[4] task id
    ARGV[5] generation
    ARGV[6] revised spec JSON
    ARGV[7] why (the error that led to the re-plan)
    ARGV[8] re-plans allowed per task

  Output:
    {'no'} when the task is not open at that generation or has used its re-plans, else
    {'ok', id, role, gen, spec}: the task, queued again
]]
--- @include "includes/dagContext"
--- @include "includes/emit"
--- @include "includes/taskStates"
--- @include "includes/release"

local id, gen = ARGV[4], ARGV[5]
local st = stateOf(id)
local key = prefix .. id
if (st ~= 'running' and st ~= 'queued') or redis.call('HGET', key, 'gen') ~= gen then return {'no'} end
if tonumber(redis.call('HGET', key, 'replans') or '0') >= tonumber(ARGV[8]) then return {'no'} end
redis.call('HINCRBY', key, 'replans', 1)
redis.call('HINCRBY', key, 'gen', 1)
redis.call('HSET', key, 'attempts', 0, 'spec', ARGV[6], 'lastError', ARGV[7])
emit('type', 'task.retried', 'task', id, 'reason', 're-planned after: ' .. ARGV[7])
local out = {'ok'}
release(id, out)
return out
