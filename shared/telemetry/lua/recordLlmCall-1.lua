--[[
  Records an LLM call made outside any build: only the metrics counters.

  Input:
    KEYS[1] LLM metrics hash   P:metrics:llm
    ARGV as in includes/llmCall.lua

  Output:
    1
]]
--- @include "includes/llmCall"

countCall(KEYS[1])
return 1
