--[[
  Ends a build whose own record cannot be read (a hand-edited or damaged hash): it cannot run,
  so it ends failed with the reason. Its fields are not trusted, so the state is written
  whatever it was, and its counters and tasks are left as they are. Removing the build from
  the active index is the caller's next step (another hash slot); should it crash in between,
  the next pass runs this again, which then changes nothing and emits nothing.

  Input:
    KEYS[1..3], ARGV[1..3] as in includes/dagContext.lua
    ARGV[4] reason

  Output:
    'failed'
]]
--- @include "includes/dagContext"
--- @include "includes/emit"

if redis.call('HGET', buildKey, 'state') == 'failed' and redis.call('HGET', buildKey, 'reason') == ARGV[4] then
  return 'failed'
end
redis.call('HSET', buildKey, 'state', 'failed', 'reason', ARGV[4], 'finishedAt', now)
emit('type', 'build.finished', 'state', 'failed', 'reason', ARGV[4])
return 'failed'
