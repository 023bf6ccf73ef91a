--- The Lua side of the `strata` REPL (lua/main/repl.c): how results are
-- shown and which names complete.
local M = {}

local MAX_ITEMS = 20 -- table entries shown before "..."

local function is_identifier(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil
end

local format

local function format_table(t, depth)
  if depth > 1 then return "{...}" end
  local parts, n = {}, #t
  for i = 1, math.min(n, MAX_ITEMS) do parts[#parts + 1] = format(t[i], depth + 1, true) end
  local keys = {}
  for k in pairs(t) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    if #parts >= MAX_ITEMS then
      parts[#parts + 1] = "..."
      break
    end
    local key = is_identifier(k) and k or "[" .. format(k, depth + 1, true) .. "]"
    parts[#parts + 1] = key .. " = " .. format(t[k], depth + 1, true)
  end
  if n > MAX_ITEMS and #keys == 0 then parts[#parts + 1] = "..." end
  return "{" .. table.concat(parts, ", ") .. "}"
end

--- A readable one-value summary: tables one level deep, strings quoted
-- when nested, anything with __tostring (tensors) through it.
function format(v, depth, nested)
  depth = depth or 0
  local mt = getmetatable(v)
  if type(v) == "table" and not (type(mt) == "table" and mt.__tostring) then return format_table(v, depth + 1) end
  if type(v) == "string" and nested then return string.format("%q", v) end
  return tostring(v)
end
M.format = format

--- Prints the results of an expression, tab-separated like print.
function M.show(...)
  local out = {}
  for i = 1, select("#", ...) do out[i] = format((select(i, ...))) end
  io.write(table.concat(out, "\t"), "\n")
end

-- Keys of a value reachable with "." (or ":" for methods): its own keys
-- if it is a table, then those of its metatable's __index chain. Nothing
-- is called: __index functions are not run.
local function collect(v, methods_only, out, seen)
  seen = seen or {}
  if v == nil or seen[v] then return end
  seen[v] = true
  if type(v) == "table" then
    for k, x in pairs(v) do
      if is_identifier(k) and (not methods_only or type(x) == "function") then out[k] = true end
    end
  end
  local mt = getmetatable(v)
  if type(mt) == "table" then
    if type(mt.__index) == "table" then collect(mt.__index, methods_only, out, seen) end
    if type(mt.__submodules) == "table" and not methods_only then
      for _, name in ipairs(mt.__submodules) do out[name] = true end
    end
  end
end

-- Reads a field without running metamethods other than table __index.
local function peek(v, key)
  for _ = 1, 8 do
    if type(v) == "table" then
      local x = rawget(v, key)
      if x ~= nil then return x end
    end
    local mt = getmetatable(v)
    if type(mt) ~= "table" or type(mt.__index) ~= "table" then return nil end
    v = mt.__index
  end
end

local keywords = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
  "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }

--- Completions of a word such as "str", "strata.ze" or "t:sh": a sorted
-- list of whole words.
function M.complete(word)
  local path, sep, partial = word:match("^(.-)([.:])([%w_]*)$")
  local names = {}
  if not path then
    partial, path = word, ""
    collect(_G, false, names)
    for _, k in ipairs(keywords) do names[k] = true end
  else
    local v = _G
    for name in path:gmatch("[^.]+") do
      if not is_identifier(name) then return {} end
      v = peek(v, name)
      if v == nil then return {} end
    end
    collect(v, sep == ":", names)
    path = path .. sep
  end
  local out = {}
  for k in pairs(names) do
    if k:sub(1, #partial) == partial then out[#out + 1] = path .. k end
  end
  table.sort(out)
  return out
end

return M
