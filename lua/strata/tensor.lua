--- Pure-Lua additions to the tensor API (the C part is lua/bind/tensor.c
-- and lua/bind/ops.c). `extend(strata)` adds them to the tensor methods and
-- to the module table; init.lua calls it once.
local M = {}

local function methods_of(strata)
  return getmetatable(strata.zeros(0)).__index
end

--- t:allclose(u [, rtol=1e-5 [, atol=1e-8]]): same shape and every
-- |t - u| <= atol + rtol * |u|, compared in f64 (NaN and Inf never match).
local function allclose(t, u, rtol, atol)
  rtol, atol = rtol or 1e-5, atol or 1e-8
  local ts, us = t:shape(), u:shape()
  if #ts ~= #us then return false end
  for i = 1, #ts do
    if ts[i] ~= us[i] then return false end
  end
  if t:numel() == 0 then return true end
  local a, b = t:to("f64"), u:to("f64")
  return ((a - b):abs():sub_(b:abs():mul_(rtol))):max() <= atol
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
