--- Pure-Lua additions to the tensor API (the C part is lua/bind/tensor.c
-- and lua/bind/ops.c). `extend(strata)` adds them to the tensor methods and
-- to the module table; init.lua calls it once.
local M = {}

local function methods_of(strata)
  return getmetatable(strata.zeros(0)).__index
end

--- t:allclose(u [, rtol=1e-5 [, atol=1e-8]]): same shape and every
-- |t - u| <= atol + rtol * |u| (NaN never matches).
local function allclose(t, u, rtol, atol)
  rtol, atol = rtol or 1e-5, atol or 1e-8
  local ts, us = t:shape(), u:shape()
  if #ts ~= #us then return false end
  for i = 1, #ts do
    if ts[i] ~= us[i] then return false end
  end
  local a, b = t:contiguous():reshape(-1), u:contiguous():reshape(-1)
  for i = 1, a:numel() do
    local x, y = a:get(i), b:get(i)
    if not (math.abs(x - y) <= atol + rtol * math.abs(y)) then return false end
  end
  return true
end

--- t:equal(u): same shape and exactly the same values (unlike ==, which
-- compares object identity).
local function equal(t, u) return allclose(t, u, 0, 0) end

--- t:rows(): iterates i, t:select(1, i) over the first dimension.
local function rows(t)
  local i, n = 0, #t
  return function()
    i = i + 1
    if i <= n then return i, t:select(1, i) end
  end
end

function M.extend(strata)
  local methods = methods_of(strata)
  methods.allclose = allclose
  methods.equal = equal
  methods.rows = rows
end

return M
