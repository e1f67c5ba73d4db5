--[[
  Sets one entry of a build's team knowledge on behalf of an agent of some role: refused when
  another role owns the key, or when the build already holds its maximum number of keys
  (overwriting a key always works). Owner check, cap check and write in one step: two agents
  adding different new keys at the same instant would otherwise both see room for one more,
  and two roles writing an unclaimed key at once would both think they own it.

  Input:
    KEYS[1] the build's knowledge hash   P:build:{B}:knowledge
    KEYS[2] its owners hash              P:build:{B}:knowledge:owners (key → role)

    ARGV[1] key
    ARGV[2] value
    ARGV[3] most keys a build may hold
    ARGV[4] the writer's role
    ARGV[5] the key's owner by codegod's table of owners, '' when the table names none (the
            first role to write such a key owns it)

  Output:
    'ok' when set, 'full' when the build is full, else the role that owns the key
]]

local owner = ARGV[5]
if owner == '' then owner = redis.call('HGET', KEYS[2], ARGV[1]) or '' end
if owner ~= '' and owner ~= ARGV[4] then return owner end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 'full' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[4])
return 'ok'
