--[[
  Records an LLM call of a build outside any task (the planner's): the metrics counters, and
  while the build exists its counters and an entry on its LLM call stream, all in one step.

  Input:
    KEYS[1] LLM metrics hash       P:metrics:llm
    KEYS[2] build's LLM stream     P:build:{B}:llm
    KEYS[3] build hash             P:build:{B}
    ARGV as in includes/llmCall.lua

  Output:
    1
]]
--- @include "includes/llmCall"

countCall(KEYS[1])
addToBuild(KEYS[2], KEYS[3])
return 1
