--[[
  Splits a comma-separated list of task ids (a `deps` or `dependents` field; false or '' is
  the empty list).
]]

local function split(csv)
  local out = {}
  if csv == false or csv == nil or csv == '' then return out end
  for part in string.gmatch(csv, '[^,]+') do out[#out + 1] = part end
  return out
end
