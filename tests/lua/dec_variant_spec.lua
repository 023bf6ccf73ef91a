-- The Lua clustering variant of scripts/examples/dec_gaussian_variant.lua
-- (IDEC with a Gaussian kernel, written from strata.dec's pieces): its
-- kernel and gradient against plain-Lua doubles and finite differences,
-- and a training run that clusters separable blobs.
local strata = require "strata"
local variant = assert(loadfile("../../scripts/examples/dec_gaussian_variant.lua"))("--lib")

local function close(a, b, rtol, atol) return math.abs(a - b) <= (atol or 0) + (rtol or 1e-6) * math.abs(b) end

local function gaussian(z, mu, s2)
  local q = {}
  for i = 1, #z do
    local l, m = {}, -math.huge
    for j = 1, #mu do
      local d2 = 0
      for t = 1, #z[i] do d2 = d2 + (z[i][t] - mu[j][t]) ^ 2 end
      l[j] = -d2 / (2 * s2)
      m = math.max(m, l[j])
    end
    local s = 0
    for j = 1, #mu do s = s + math.exp(l[j] - m) end
    q[i] = {}
    for j = 1, #mu do q[i][j] = math.exp(l[j] - m) / s end
  end
  return q
end

describe("Gaussian IDEC variant", function()
  local rng = strata.rng(3)
  local z = strata.randn(rng, { 6, 3 })
  local mu = strata.randn(rng, { 4, 3 })
  local s2 = 1.7

  it("computes the Gaussian soft assignment", function()
    local q = variant.gaussian_q(z, mu, s2):totable()
    local want = gaussian(z:totable(), mu:totable(), s2)
    for i = 1, 6 do
      for j = 1, 4 do assert.is_true(close(q[i][j], want[i][j], 1e-5, 1e-7)) end
    end
  end)

  it("has the gradient of finite differences", function()
    local w = strata.randn(rng, { 6, 4 })
    local q = variant.gaussian_q(z, mu, s2)
    local dz, dmu = variant.gaussian_backward(z, mu, q, w, s2)
    local W, Z, MU = w:totable(), z:totable(), mu:totable()
    local function loss()
      local qq, s = gaussian(Z, MU, s2), 0
      for i = 1, 6 do
        for j = 1, 4 do s = s + W[i][j] * qq[i][j] end
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
    for i = 1, 6 do
      for t = 1, 3 do assert.is_true(close(gz[i][t], fd(Z, i, t), 1e-3, 1e-5)) end
    end
    for j = 1, 4 do
      for t = 1, 3 do assert.is_true(close(gmu[j][t], fd(MU, j, t), 1e-3, 1e-5)) end
    end
  end)

  it("clusters separable blobs and lowers its loss", function()
    local x, classes = variant.blobs(150, 9)
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p '" .. dir .. "'")
    local r = variant.fit(x, { clusters = 3, epochs = 2, maxiter = 40, update_interval = 10, batch = 16,
      filters = { 8, 8, 8, 4 }, seed = 2, dir = dir })
    os.execute("rm -rf '" .. dir .. "'")
    assert.are.equal(4, #r.updates)
    assert.are.equal(40, #r.losses)
    for _, l in ipairs(r.losses) do assert.is_true(l[1] == l[1] and l[1] < math.huge) end
    assert.is_true(r.losses[#r.losses][1] < r.losses[1][1])
    local rep = strata.dec.report(r.labels, classes, 3)
    assert.is_true(rep.purity >= 0.95, "purity " .. rep.purity)
    assert.are.equal(0, rep.empty)
    assert.matches("unknown option", select(2, pcall(variant.fit, x, { sigma = 1, dir = "/tmp" })))
  end)
end)
