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

--- Raises "bad argument #n to 'fname' (msg)" at the level of the caller of
-- the function that called arg_error, as luaL_argerror does for C functions.
function M.arg_error(fname, n, msg) error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), 3) end

--- opts (argument n of fname) when every key is in the list allowed, {}
-- for nil; otherwise an argument error naming the unknown key.
function M.check_keys(fname, n, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then M.arg_error(fname, n, "opts: table expected, got " .. type(opts)) end
  local ok = {}
  for _, k in ipairs(allowed) do ok[k] = true end
  for k in pairs(opts) do
    if not ok[k] then M.arg_error(fname, n, "opts: unknown key '" .. tostring(k) .. "'") end
  end
  return opts
end

return M
