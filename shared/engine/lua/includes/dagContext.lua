--[[
  The keys and arguments every DAG script starts with, as locals for the script and its
  helpers. Every key belongs to one build (one hash tag), so the scripts run on Redis Cluster.

    KEYS[1] build hash               P:build:{B}
    KEYS[2] task states hash         P:build:{B}:states (task id → state)
    KEYS[3] build event stream       P:build:{B}:events

    ARGV[1] task key prefix          P:build:{B}:task: (a task's hash is prefix .. id)
    ARGV[2] now (ms), the time every write and event of the script carries
    ARGV[3] approximate max length of the event stream
]]
local buildKey, statesKey, eventsKey = KEYS[1], KEYS[2], KEYS[3]
local prefix, now, maxlen = ARGV[1], ARGV[2], ARGV[3]
