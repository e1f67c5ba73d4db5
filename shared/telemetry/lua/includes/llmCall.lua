--[[
  What the recordLlmCall scripts share: one LLM call's numbers as locals, and how it is
  counted. The arguments are the same for every variant:

    ARGV[1] role
    ARGV[2] prompt tokens
    ARGV[3] completion tokens
    ARGV[4] ms
    ARGV[5] ok: '1' or '0'
    ARGV[6] approximate max length of the build's LLM call stream
    ARGV[7...] the stream entry's field/value pairs
]]

local role = ARGV[1]
local p, c, ms = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local failed = ARGV[5] == '1' and 0 or 1

-- Counters of every call, in total and as `<role>:…`.
local function countCall(metricsKey)
  for _, prefix in ipairs({'', role .. ':'}) do
    redis.call('HINCRBY', metricsKey, prefix .. 'calls', 1)
    redis.call('HINCRBY', metricsKey, prefix .. 'promptTokens', p)
    redis.call('HINCRBY', metricsKey, prefix .. 'completionTokens', c)
    redis.call('HINCRBY', metricsKey, prefix .. 'ms', ms)
    if failed == 1 then redis.call('HINCRBY', metricsKey, prefix .. 'failed', 1) end
  end
end

-- Usage counters of a build or task hash.
local function addUsage(key)
  redis.call('HINCRBY', key, 'llmCalls', 1)
  redis.call('HINCRBY', key, 'promptTokens', p)
  redis.call('HINCRBY', key, 'completionTokens', c)
  redis.call('HINCRBY', key, 'llmMs', ms)
end

-- The build's share of the call, only while the build exists (a straggling call finishing
-- after its build was removed must not resurrect a stub record). Returns whether it did.
local function addToBuild(streamKey, buildKey)
  if redis.call('EXISTS', buildKey) == 0 then return false end
  addUsage(buildKey)
  redis.call('XADD', streamKey, 'MAXLEN', '~', ARGV[6], '*', unpack(ARGV, 7))
  return true
end
