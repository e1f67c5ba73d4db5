--[[
  Sets one entry of a build's team knowledge unless the build already holds its maximum
  number of keys (overwriting a key always works). Check and set in one step: two agents
  adding different new keys at the same instant would otherwise both see room for one more
  and push the build past its cap.

  Input:
    KEYS[1] the build's knowledge hash   P:build:{B}:knowledge

    ARGV[1] key
    ARGV[2] value
    ARGV[3] most keys a build may hold

  Output:
    1 when set, 0 when the build is full
]]

if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or redis.call('HLEN', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
