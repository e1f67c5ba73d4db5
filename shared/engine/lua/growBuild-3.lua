--[[
  Grows a running build by new tasks, and makes existing pending tasks wait on some of them.
  The caller validated the whole resulting graph at an expected graph version; any growth
  since makes this answer 'conflict' so the caller validates again.

  Input:
    KEYS[1..3], ARGV[1..3] as in includes/dagContext.lua
    ARGV[4] expected graph version
    ARGV[5] JSON array of new tasks {id, role, spec, deps[], depth, origin}
    ARGV[6] JSON array of {id, deps[]}: existing pending tasks that must also wait on new tasks

  Output:
    {'err', message}, {'conflict'}, or {'ok', id, role, gen, spec, ...}: the new tasks ready now
]]
--- @include "includes/dagContext"
--- @include "includes/emit"
--- @include "includes/taskStates"
--- @include "includes/release"

if redis.call('HGET', buildKey, 'state') ~= 'running' then
  return {'err', 'build is ' .. tostring(redis.call('HGET', buildKey, 'state'))}
end
if redis.call('HGET', buildKey, 'graphVersion') ~= ARGV[4] then return {'conflict'} end
local added = cjson.decode(ARGV[5])
local blocks = cjson.decode(ARGV[6])
local total = tonumber(redis.call('HGET', buildKey, 'total'))
local maxTasks = tonumber(redis.call('HGET', buildKey, 'maxTasks'))
if total + #added > maxTasks then
  return {'err', 'task limit reached: ' .. total .. ' + ' .. #added .. ' > ' .. maxTasks}
end
local isNew = {}
for _, t in ipairs(added) do
  if stateOf(t.id) then return {'err', 'task ' .. t.id .. ' already exists'} end
  isNew[t.id] = true
end
for _, t in ipairs(added) do
  for _, d in ipairs(t.deps) do
    if not isNew[d] then
      local ds = stateOf(d)
      if not ds then return {'err', 'task ' .. t.id .. ' depends on unknown task ' .. d} end
      if ds == 'failed' or ds == 'skipped' or ds == 'cancelled' then
        return {'err', 'task ' .. t.id .. ' depends on ' .. d .. ', which is ' .. ds}
      end
    end
  end
end
for _, b in ipairs(blocks) do
  local bs = stateOf(b.id)
  if bs ~= 'pending' then return {'err', 'task ' .. b.id .. ' is ' .. tostring(bs) .. ', only pending tasks can wait on new work'} end
end
local function append(id, field, value)
  local key = prefix .. id
  local cur = redis.call('HGET', key, field)
  if cur == false or cur == '' then cur = value else cur = cur .. ',' .. value end
  redis.call('HSET', key, field, cur)
end
for _, t in ipairs(added) do
  local remaining = 0
  for _, d in ipairs(t.deps) do
    if isNew[d] or stateOf(d) ~= 'succeeded' then remaining = remaining + 1 end
  end
  redis.call('HSET', prefix .. t.id, 'spec', t.spec, 'role', t.role, 'deps', table.concat(t.deps, ','),
    'dependents', '', 'remaining', remaining, 'gen', 0, 'attempts', 0, 'depth', t.depth, 'origin', t.origin)
  setState(t.id, 'pending')
end
for _, t in ipairs(added) do
  for _, d in ipairs(t.deps) do append(d, 'dependents', t.id) end
end
for _, b in ipairs(blocks) do
  for _, n in ipairs(b.deps) do
    append(b.id, 'deps', n)
    append(n, 'dependents', b.id)
    redis.call('HINCRBY', prefix .. b.id, 'remaining', 1)
  end
end
redis.call('HINCRBY', buildKey, 'total', #added)
redis.call('HINCRBY', buildKey, 'open', #added)
redis.call('HINCRBY', buildKey, 'graphVersion', 1)
emit('type', 'build.grown', 'data', tostring(#added))
local out = {'ok'}
for _, t in ipairs(added) do
  if tonumber(redis.call('HGET', prefix .. t.id, 'remaining')) == 0 then release(t.id, out) end
end
return out
