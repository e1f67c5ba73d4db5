--[[
  Ends a build whose own record cannot be read (a hand-edited or damaged hash): it cannot run,
  so it ends failed with the reason. Its fields are not trusted, so the state is written
  whatever it was, and its counters and tasks are left as they are.

  Input:
    KEYS[1..3], ARGV[1..3] as in includes/dagContext.lua
    ARGV[4] reason

  Output:
    'failed'
]]
--- @include "includes/dagContext"
--- @include "includes/emit"

redis.call('HSET', buildKey, 'state', 'failed', 'reason', ARGV[4], 'finishedAt', now)
emit('type', 'build.finished', 'state', 'failed', 'reason', ARGV[4])
return 'failed'
