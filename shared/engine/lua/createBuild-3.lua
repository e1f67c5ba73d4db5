--[[
  Stores a build's plan: the build record, one record and one state per task. A submitted
  build (state planning) receives its plan here; any other existing build is refused. The
  roots (tasks with no dependency) are queued; the caller, which has them in hand, adds their
  jobs.

  Creation is the largest part of a wide build's Redis time, so it writes the least it can: a
  record holds only what differs from a fresh task's defaults (no dependencies, attempts,
  depth and origin are read as defaults; see TaskRecordSchema), the states go in a few bulk
  HSETs, and `build.created` stands for the queueing of every root (its data is the task
  count) instead of one `task.queued` event per root.

  Input:
    KEYS[1..3], ARGV[1..3] as in includes/dagContext.lua
    ARGV[4] build id
    ARGV[5] goal
    ARGV[6] max tasks
    ARGV[7] plan summary
    ARGV[8] JSON array of {id, role, spec, deps (csv), dependents (csv), ndeps}

  Output:
    'ok', or 'exists' when the build exists past planning
]]
--- @include "includes/dagContext"
--- @include "includes/emit"

local current = redis.call('HGET', buildKey, 'state')
if current and current ~= 'planning' then return 'exists' end
local tasks = cjson.decode(ARGV[8])
local n = #tasks
redis.call('HSETNX', buildKey, 'createdAt', now)
redis.call('HSET', buildKey, 'id', ARGV[4], 'goal', ARGV[5], 'state', 'running', 'startedAt', now,
  'total', n, 'open', n, 'succeeded', 0, 'failed', 0, 'skipped', 0, 'cancelled', 0,
  'maxTasks', ARGV[6], 'summary', ARGV[7], 'graphVersion', 0)
emit('type', 'build.created', 'data', tostring(n))
local states = {}
for i, t in ipairs(tasks) do
  local fields = {'spec', t.spec, 'role', t.role, 'gen', 0}
  if t.ndeps == 0 then
    fields[#fields + 1] = 'queuedAt'
    fields[#fields + 1] = now
  end
  if t.deps ~= '' then
    fields[#fields + 1] = 'deps'
    fields[#fields + 1] = t.deps
    fields[#fields + 1] = 'remaining'
    fields[#fields + 1] = t.ndeps
  end
  if t.dependents ~= '' then
    fields[#fields + 1] = 'dependents'
    fields[#fields + 1] = t.dependents
  end
  redis.call('HSET', prefix .. t.id, unpack(fields))
  states[#states + 1] = t.id
  states[#states + 1] = t.ndeps == 0 and 'queued' or 'pending'
  -- unpack() is bounded by Lua's C stack: flush the states every 500 tasks.
  if #states >= 1000 or i == n then
    redis.call('HSET', statesKey, unpack(states))
    states = {}
  end
end
return 'ok'
