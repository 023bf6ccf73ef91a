--- strata: explain image classifiers by clustering what their layers compute.
-- `local strata = require "strata"` gives the C core (tensors, math, io:
-- strata.core) plus the pure-Lua extensions in strata/tensor.lua. Other
-- submodules (strata.data, strata.model, ...) load on first use, so a
-- script pays only for what it touches. See docs/lua.md.
local core = require "strata.core"

local strata = {}
for name, value in pairs(core) do strata[name] = value end
strata.core = core

require("strata.tensor").extend(strata)

-- Submodules that may exist beside this file; listed only so the REPL can
-- offer them for completion before they are loaded.
local known = { "data", "model", "ac", "grid", "dec", "kmeans", "knn", "notebook", "repl", "util" }
local available = {}
for _, name in ipairs(known) do
  if package.searchpath("strata." .. name, package.path) then available[#available + 1] = name end
end

return setmetatable(strata, {
  __submodules = available,
  -- strata.data etc. require "strata.data" the first time they are read.
  __index = function(t, key)
    if type(key) ~= "string" or not key:match("^[%a_][%w_]*$") then return nil end
    if not package.searchpath("strata." .. key, package.path) then return nil end
    local module = require("strata." .. key)
    rawset(t, key, module)
    return module
  end,
})
