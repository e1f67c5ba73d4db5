import { LuaScript } from '../redis/lua-script.js';

/**
 * The DAG state machine of a build, as Lua scripts. Each transition (create, start, complete,
 * fail, cancel, retry, grow) must be atomic: a task is marked done exactly once, and the
 * dependents whose last dependency that was are released by the same script, together with
 * the build's counters and its event stream entry. Two workers finishing the two last
 * dependencies of a task at the same instant therefore release it exactly once, and a crash
 * can never leave a half-applied transition.
 *
 * Every script touches only keys of one build (`P:build:{B}...`, one hash tag), so they run
 * on Redis Cluster too. Keys common to all scripts: KEYS[1] build hash, KEYS[2] states hash,
 * KEYS[3] event stream. ARGV[1] is the task key prefix, ARGV[2] now (ms), ARGV[3] the stream's
 * approximate max length.
 *
 * Invariant kept by all of them: a task's `remaining` equals the number of its dependencies
 * that have not succeeded; `open` counts tasks not in a terminal state.
 */
const PRELUDE = `
local buildKey, statesKey, eventsKey = KEYS[1], KEYS[2], KEYS[3]
local prefix, now, maxlen = ARGV[1], ARGV[2], ARGV[3]

local function emit(...)
  redis.call('XADD', eventsKey, 'MAXLEN', '~', maxlen, '*', 'at', now, ...)
end

local function split(csv)
  local out = {}
  if csv == false or csv == nil or csv == '' then return out end
  for part in string.gmatch(csv, '[^,]+') do out[#out + 1] = part end
  return out
end

local function stateOf(id)
  return redis.call('HGET', statesKey, id)
end

local function setState(id, st)
  redis.call('HSET', statesKey, id, st)
end

-- Ends the build when no task is left open. Failed wins over succeeded.
local function finishIfDone()
  if redis.call('HGET', buildKey, 'state') ~= 'running' then return '' end
  if tonumber(redis.call('HGET', buildKey, 'open')) > 0 then return '' end
  local final = 'succeeded'
  if tonumber(redis.call('HGET', buildKey, 'failed') or '0') > 0 then final = 'failed' end
  redis.call('HSET', buildKey, 'state', final, 'finishedAt', now)
  emit('type', 'build.finished', 'state', final, 'reason', redis.call('HGET', buildKey, 'reason') or '')
  return final
end

-- Releases task id into the queued state; appends id, role, gen, spec to out (the job
-- carries the spec so a first delivery can start without reading it back).
local function release(id, out)
  local key = prefix .. id
  setState(id, 'queued')
  redis.call('HSET', key, 'queuedAt', now)
  local f = redis.call('HMGET', key, 'role', 'gen', 'spec')
  emit('type', 'task.queued', 'task', id, 'role', f[1])
  out[#out + 1] = id
  out[#out + 1] = f[1]
  out[#out + 1] = f[2]
  out[#out + 1] = f[3]
end

-- Why a job of generation gen may not start its task (state st, generation current) in a
-- build in state bstate, or false when it may.
local function cannotStart(bstate, st, gen, current)
  if not bstate or not st then return 'missing' end
  if bstate ~= 'running' then return 'build-' .. bstate end
  if current ~= gen then return 'stale' end
  if st ~= 'queued' and st ~= 'running' then return st end
  return false
end
`;

const script = (name: string, body: string) => new LuaScript(name, PRELUDE + body);

/**
 * ARGV[4] build id, [5] goal, [6] max tasks, [7] summary, [8] JSON array of
 * {id, role, spec, deps, dependents, ndeps}. Returns 'exists' or 'ok'. The roots (tasks with
 * no dependency) are queued by it; the caller, which has them in hand, adds their jobs.
 *
 * Creation is the largest part of a wide build's Redis time, so it writes the least it can:
 * a record holds only what differs from a fresh task's defaults (no dependencies, attempts,
 * depth and origin are read as defaults; see TaskRecordSchema), the states go in a few bulk
 * HSETs, and `build.created` stands for the queueing of every root (its data is the task
 * count) instead of one `task.queued` event per root.
 */
export const createBuildScript = script(
  'createBuild',
  `
-- A submitted build (state planning) receives its plan here; any other existing build is refused.
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
`,
);

/**
 * ARGV[4] task id, [5] generation of the job, [6] worker id. Returns {'run', spec, attempt}
 * when the worker should execute the task, else {reason}: the task's terminal state, 'stale'
 * (a job of an older generation), 'build-<state>' or 'missing'.
 */
export const startTaskScript = script(
  'startTask',
  `
local id, gen, worker = ARGV[4], ARGV[5], ARGV[6]
local f = redis.call('HMGET', prefix .. id, 'gen', 'role')
local why = cannotStart(redis.call('HGET', buildKey, 'state'), stateOf(id), gen, f[1])
if why then return {why} end
-- A task found 'running' is a re-delivery after its worker died: a new attempt.
setState(id, 'running')
local key = prefix .. id
local attempt = redis.call('HINCRBY', key, 'attempts', 1)
redis.call('HSET', key, 'startedAt', now, 'worker', worker)
emit('type', 'task.started', 'task', id, 'role', f[2], 'attempt', attempt, 'worker', worker)
return {'run', redis.call('HGET', key, 'spec'), attempt}
`,
);

/**
 * Records the success of several tasks of one build at once (the completions a worker
 * collected in one turn of its event loop), releasing the dependents whose last dependency
 * they were. ARGV[4...] holds five values per task: id, generation, worker id, started at
 * (ms) and the result JSON. A task with a start time is a first delivery whose start was
 * never recorded — it started and finished within one turn — so its start and success are
 * recorded together, as one `task.succeeded` event carrying the start; with '' its start is
 * recorded already. Build counters and dependents' counters are updated once per batch.
 *
 * Returns {finishedState, status per task..., id, role, gen, spec, ...released}: a status is
 * 'ok', 'noop' (a recorded start whose task is no longer open at that generation: a
 * duplicate delivery or a cancelled build) or, for an unrecorded start, why the task may not
 * run (as startTask answers).
 */
export const completeTasksScript = script(
  'completeTasks',
  `
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
`,
);

/**
 * ARGV[4] task id, [5] generation, [6] error. Fails the task for good and skips every
 * pending transitive dependent. Returns {applied(0|1), finishedState}.
 */
export const failTaskScript = script(
  'failTask',
  `
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
`,
);

/**
 * ARGV[4] reason, [5] final state ('cancelled' by a user, 'failed' when the orchestrator
 * stops a build, e.g. its token budget is spent), [6] failure code or ''. Cancels every open task of a planning or
 * running build. Returns {'err', message} or {'ok', id, role, gen, previousState, ...} for
 * the tasks that had a job.
 */
export const cancelBuildScript = script(
  'cancelBuild',
  `
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
`,
);

/**
 * ARGV[4] task id. Re-opens a failed task (next generation, so its new job id differs from
 * the failed one) and every skipped dependent whose dependencies can all still succeed,
 * re-opening the build if it had ended failed. Returns {'err', message} or {'ok', id, role, gen, spec}.
 */
export const retryTaskScript = script(
  'retryTask',
  `
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
`,
);

/**
 * Grows a running build. ARGV[4] expected graph version (the caller validated the whole
 * graph at that version; any concurrent growth makes this answer 'conflict' so the caller
 * re-validates), [5] JSON array of new tasks {id, role, spec, deps[], depth, origin},
 * [6] JSON array of {id, deps[]}: existing pending tasks that must also wait on new tasks.
 * Returns {'err', message}, {'conflict'} or {'ok', id, role, gen, spec, ...} (new tasks ready now).
 */
export const growBuildScript = script(
  'growBuild',
  `
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
`,
);

/**
 * ARGV[4] task id, [5] generation, [6] revised spec JSON, [7] why, [8] re-plans allowed.
 * Instead of failing a task for good, starts it over once under a revised spec (next
 * generation), in one step so the build never shows a failure it then takes back. Returns
 * {'no'} when the task is not open at that generation or has used its re-plans, else
 * {'ok', id, role, gen, spec}.
 */
export const replanTaskScript = script(
  'replanTask',
  `
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
`,
);
