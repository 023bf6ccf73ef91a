-- Helpers shared by the Lua specs: a tolerance test, scratch directories,
-- whole-file reads and writes, shell quoting, and the finite-difference
-- check of a soft assignment's gradient (Student-t, Gaussian).
local assert = require "luassert"

local M = {}

--- |a - b| <= atol + rtol |b| (rtol 1e-6 and atol 0 by default).
function M.close(a, b, rtol, atol) return math.abs(a - b) <= (atol or 0) + (rtol or 1e-6) * math.abs(b) end

--- s quoted for /bin/sh.
function M.quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- A fresh empty directory under /tmp.
function M.tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. M.quote(d)))
  return d
end

--- Removes a directory made by tmpdir.
function M.rmdir(d) os.execute("rm -rf " .. M.quote(d)) end

function M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

--- The file's bytes, or nil when it cannot be opened.
function M.slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- Checks dz and dmu, the gradients of L = sum(w .* q) with q = assign(z, mu)
--- (assign works on plain-Lua tables), against central differences of L.
function M.check_assignment_grad(assign, w, z, mu, dz, dmu)
  local W, Z, MU = w:totable(), z:totable(), mu:totable()
  local function loss()
    local q, s = assign(Z, MU), 0
    for i = 1, #Z do
      for j = 1, #MU do s = s + W[i][j] * q[i][j] end
    end
    return s
  end
  local function fd(t, i, j)
    local old = t[i][j]
    t[i][j] = old + 1e-5
    local a = loss()
    t[i][j] = old - 1e-5
    local b = loss()
    t[i][j] = old
    return (a - b) / 2e-5
  end
  local gz, gmu = dz:totable(), dmu:totable()
  for i = 1, #Z do
    for t = 1, #Z[i] do assert.is_true(M.close(gz[i][t], fd(Z, i, t), 1e-3, 1e-5)) end
  end
  for j = 1, #MU do
    for t = 1, #MU[j] do assert.is_true(M.close(gmu[j][t], fd(MU, j, t), 1e-3, 1e-5)) end
  end
end

return M
