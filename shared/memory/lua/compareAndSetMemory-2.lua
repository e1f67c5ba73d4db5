--[[
  Compare-and-set of one agent's memory, with the agent's entry in the known set.

  Optimistic concurrency is checked inside Redis rather than with WATCH/MULTI: WATCH is state
  of a connection, and ioredis shares one connection among all callers of a process, so
  another caller's EXEC or UNWATCH between our WATCH and EXEC would silently drop our watch
  and let a lost update through. The script reads and writes in one atomic step instead.

  Input:
    KEYS[1] the agent's memory    P:agent:A:memory (a JSON string)
    KEYS[2] known agents set      P:agents:known
    (the two share a slot on Redis Cluster only under a hash-tagged CODEGOD_PREFIX, which the
    config asks for there)

    ARGV[1] 'version': the stored memory must carry version ARGV[2] (an absent key counts as
            version 0); 'sha': the stored bytes must hash to ARGV[2] (to replace a malformed
            value, which has no version to compare)
    ARGV[2] the expected version or SHA1
    ARGV[3] the new JSON, or '' to delete the memory
    ARGV[4] agent id

  Output:
    1 when written, 0 on a conflict
]]

local current = redis.call('GET', KEYS[1])
if ARGV[1] == 'sha' then
  if not current or redis.sha1hex(current) ~= ARGV[2] then return 0 end
else
  local version = 0
  if current then
    local ok, doc = pcall(cjson.decode, current)
    if not ok or type(doc) ~= 'table' or type(doc.version) ~= 'number' then return 0 end
    version = doc.version
  end
  if version ~= tonumber(ARGV[2]) then return 0 end
end
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
redis.call('SADD', KEYS[2], ARGV[4])
return 1
