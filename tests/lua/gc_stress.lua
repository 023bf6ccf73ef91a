-- Creates and drops n tensors of every kind the bindings make (fresh
-- results, views of dropped parents, <close> variables, errors after the
-- box exists). Used by gc_spec.lua (RSS must stay flat) and by the
-- memcheck tests (valgrind / ASan must find no leak or bad access).
-- Usage: lua5.4 gc_stress.lua N, or require it and call it with N.
local strata = require "strata"

local function stress(n)
  local rng = strata.rng(1)
  local keep = strata.zeros(4, 64)
  for i = 1, n do
    local a = strata.rand(rng, 4, 64) -- 1 KiB
    local v = a:transpose():slice(1, 2, 10):select(2, 3)
    a = nil
    local b <close> = (v * 2 + 1):exp()
    keep:add_(b:sum() > 0 and 0 or 1)
    if i % 7 == 0 then pcall(function() return strata.tensor{{1, 2}, {3}} end) end
    if i % 11 == 0 then pcall(function() return keep + strata.zeros(3) end) end
    if i % 13 == 0 then
      local t = strata.tensor{{1, 2}, {3, 4}}
      t:free()
      pcall(t.sum, t)
    end
  end
  return keep
end

local count = ... -- the module name when required, N when run as a script
if count == nil or tonumber(count) then
  stress(tonumber(count) or 1000)
  print("gc_stress: ok")
end
return stress
