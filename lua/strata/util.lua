--- Small helpers shared by the pure-Lua modules.
local M = {}

--- Checks a configuration table against documented defaults: every key of
-- `opts` must be a key of `defaults` (an unknown key is an error naming
-- `what`, e.g. "ac.new", with the allowed keys). Returns a new table with
-- the defaults filled in. `level` is passed on to error (default 3: the
-- caller of the function that called options).
function M.options(what, opts, defaults, level)
  if opts ~= nil and type(opts) ~= "table" then
    error(string.format("%s: options must be a table, got %s", what, type(opts)), level or 3)
  end
  local out = {}
  for k, v in pairs(defaults) do out[k] = v end
  for k, v in pairs(opts or {}) do
    if defaults[k] == nil then
      local allowed = {}
      for name in pairs(defaults) do allowed[#allowed + 1] = tostring(name) end
      table.sort(allowed)
      error(string.format("%s: unknown option '%s' (allowed: %s)", what, tostring(k), table.concat(allowed, ", ")),
        level or 3)
    end
    out[k] = v
  end
  return out
end

return M
