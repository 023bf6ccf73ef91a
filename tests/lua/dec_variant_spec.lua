-- The Lua clustering variant of scripts/examples/dec_gaussian_variant.lua
-- (IDEC with a Gaussian kernel, written from strata.dec's pieces): its
-- kernel and gradient against plain-Lua doubles and finite differences,
-- and a training run that clusters separable blobs.
local strata = require "strata"
local variant = assert(loadfile("../../scripts/examples/dec_gaussian_variant.lua"))("--lib")
local h = require "spec_helpers"
local close = h.close

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
    h.check_assignment_grad(function(Z, MU) return gaussian(Z, MU, s2) end, w, z, mu, dz, dmu)
  end)

  it("clusters separable blobs and lowers its loss", function()
    local x, classes = variant.blobs(150, 9)
    local dir = h.tmpdir()
    local r = variant.fit(x, { clusters = 3, epochs = 2, maxiter = 40, update_interval = 10, batch = 16,
      filters = { 8, 8, 8, 4 }, seed = 2, dir = dir })
    h.rmdir(dir)
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
