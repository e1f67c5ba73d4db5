--[[
  Records an LLM call of a task: as recordBuildLlmCall, and the task's counters while the
  build and the task exist, all in one step.

  Input:
    KEYS[1] LLM metrics hash       P:metrics:llm
    KEYS[2] build's LLM stream     P:build:{B}:llm
    KEYS[3] build hash             P:build:{B}
    KEYS[4] task hash              P:build:{B}:task:T
    ARGV as in includes/llmCall.lua

  Output:
    1
]]
--- @include "includes/llmCall"

countCall(KEYS[1])
if addToBuild(KEYS[2], KEYS[3]) and redis.call('EXISTS', KEYS[4]) == 1 then addUsage(KEYS[4]) end
return 1
