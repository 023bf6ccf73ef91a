-- strata.dec: the whole trainer from Lua (outputs, options, callbacks,
-- stop and resume) and its pieces (Student-t, target distribution, losses,
-- normalisation, Adam, the autoencoder) against formulas worked in plain
-- Lua doubles and finite differences.
local strata = require "strata"
local dec = strata.dec
local h = require "spec_helpers"
local close = h.close

local function error_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

-- Separable blobs [n, 8, 8, 2]; class of row i (1-based) is (i - 1) % 3.
local function blobs(n, seed)
  local rng = strata.rng(seed)
  local centres = strata.rand(rng, { 3, 128 }):totable()
  local rows, classes = {}, {}
  for i = 1, n do
    local c = (i - 1) % 3
    local row = {}
    for j = 1, 128 do row[j] = 2 * centres[c + 1][j] + 0.1 * rng:normal() end
    rows[i], classes[i] = row, c
  end
  return strata.tensor(rows):reshape(n, 8, 8, 2):contiguous(), classes
end

local SMALL = { clusters = 3, filters = { 8, 8, 8, 4 }, batch = 16, epochs = 2, kmeans_n_init = 3, maxiter = 25,
  update_interval = 10, tol = 0, seed = 5, progress = false }

local function with(extra)
  local t = {}
  for k, v in pairs(SMALL) do t[k] = v end
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

describe("dec.fit", function()
  local x, classes = blobs(90, 3)

  it("clusters separable blobs and returns consistent outputs", function()
    local r, trainer = dec.fit(x, SMALL)
    assert.are.equal("maxiter", r.stop)
    assert.are.equal(25, r.iterations)
    assert.are.equal("done", trainer:stage())
    assert.are.same({ 90, 3 }, r.q:shape())
    assert.are.same({ 90, 4 }, r.embeddings:shape())
    assert.are.same({ 3, 4 }, r.centroids:shape())
    assert.are.same({ 2 * 6 }, r.pretrain_loss:shape()) -- 2 epochs of ceil(90 / 16) steps
    assert.are.same({ 25, 3 }, r.cluster_loss:shape())
    local q, z, lab = r.q:totable(), r.embeddings:totable(), r.labels:totable()
    for i = 1, 90 do
      local s, best, norm = 0, 1, 0
      for j = 1, 3 do
        s = s + q[i][j]
        if q[i][j] > q[i][best] then best = j end
      end
      for j = 1, 4 do norm = norm + z[i][j] ^ 2 end
      assert.is_true(close(s, 1, 1e-5))
      assert.are.equal(best - 1, lab[i]) -- cluster ids from 0
      assert.is_true(close(math.sqrt(norm), 8, 1e-5))
    end
    local rep = dec.report(r.labels, classes, 3)
    assert.is_true(rep.purity >= 0.95, "purity " .. rep.purity)
    assert.are.equal(90, rep.sizes[1] + rep.sizes[2] + rep.sizes[3])
    -- predict on the same rows agrees (other batch positions: rounding only)
    local q2 = trainer:predict(x)
    assert.is_true(q2:allclose(r.q, 1e-4, 1e-6))
  end)

  it("is deterministic for a seed", function()
    local a = dec.fit(x, with { maxiter = 12 })
    local b = dec.fit(x, with { maxiter = 12 })
    local c = dec.fit(x, with { maxiter = 12, seed = 6 })
    assert.is_true(a.embeddings:equal(b.embeddings))
    assert.is_true(a.q:equal(b.q))
    assert.is_false(a.embeddings:equal(c.embeddings))
  end)

  it("rejects unknown options and bad activations with clear errors", function()
    assert.matches("unknown option 'epoch'", error_of(dec.fit, x, { epoch = 3 }))
    assert.matches("clusters", error_of(dec.fit, x, with { clusters = 0 }))
    assert.matches("expected a tensor or a .npy path", error_of(dec.fit, 42))
    assert.matches("no%-such", error_of(dec.fit, "/no-such/file.npy"))
    assert.matches("f64", error_of(dec.fit, x:to("f64"), SMALL))
    assert.matches("kind", error_of(dec.fit, x, with { cluster_optim = { kind = "rmsprop" } }))
  end)

  it("stops from the callback and resumes from its checkpoint to the same model", function()
    local ref = dec.fit(x, SMALL)
    local dir = h.tmpdir()
    local events = {}
    local r, why = dec.fit(x, with {
      dir = dir,
      callback = function(p)
        events[p.event] = (events[p.event] or 0) + 1
        if p.event == "update" and p.step == 10 then return false end
      end,
    })
    assert.is_nil(r)
    assert.are.equal("stopped", why)
    assert.are.equal(2, events.epoch)
    assert.are.equal(1, events.kmeans)
    assert.are.equal(2, events.update)
    local resumed = dec.fit(x, with { dir = dir })
    assert.is_true(resumed.q:equal(ref.q))
    assert.is_true(resumed.centroids:equal(ref.centroids))
    assert.is_true(resumed.embeddings:equal(ref.embeddings))
    assert.is_true(resumed.cluster_loss:equal(ref.cluster_loss))
    -- another configuration refuses the checkpoint
    assert.matches("maxiter", error_of(dec.fit, x, with { dir = dir, maxiter = 30 }))
    h.rmdir(dir)
  end)

  it("raises a callback's error after stopping cleanly", function()
    assert.matches("boom", error_of(dec.fit, x, with { callback = function(p)
      if p.event == "kmeans" then error("boom") end
    end }))
  end)

  it("trains DEC without the reconstruction term", function()
    local r = dec.fit(x, with { mse_weight = 0 })
    local cl = r.cluster_loss:totable()
    for i = 1, #cl do
      assert.are.equal(0, cl[i][3])
      assert.is_true(close(cl[i][1], 0.1 * cl[i][2], 1e-5))
    end
  end)
end)

describe("dec.fit_many", function()
  local x = blobs(60, 3)
  local y = blobs(48, 4)
  -- a layer's trainer options (fit's, without progress)
  local function layer(extra)
    local t = with(extra)
    t.progress = nil
    return t
  end

  it("trains several layers at once, each bitwise as fit alone", function()
    local a = dec.fit(x, with { name = "a", maxiter = 12 })
    local b = dec.fit(y, with { name = "b", maxiter = 12, seed = 9, threads = 2 })
    local seen = {}
    local r, trainers = dec.fit_many({ { x, layer { name = "a", maxiter = 12 } },
      { y, layer { name = "b", maxiter = 12, seed = 9, threads = 2 } } },
      { workers = 2, progress = false, callback = function(p) seen[p.layer] = (seen[p.layer] or 0) + 1 end })
    assert.are.equal(2, #r)
    assert.are.equal(2, #trainers)
    assert.is_true(r[1].embeddings:equal(a.embeddings))
    assert.is_true(r[1].q:equal(a.q))
    assert.is_true(r[2].embeddings:equal(b.embeddings))
    assert.is_true(r[2].centroids:equal(b.centroids))
    assert.is_true(seen.a > 12 and seen.b > 12)
    assert.are.equal("done", trainers[2]:stage())
  end)

  it("stops every layer when the callback says so, and raises its errors", function()
    local jobs = { { x, layer { name = "a" } }, { y, layer { name = "b" } } }
    local r = dec.fit_many(jobs, { progress = false, callback = function() return false end })
    assert.is_false(r[1])
    assert.is_false(r[2])
    assert.matches("boom", error_of(dec.fit_many, jobs, { progress = false, callback = function(p)
      if p.layer == "b" then error("boom") end
    end }))
  end)

  it("rejects bad jobs and options with clear errors", function()
    assert.matches("list of {acts, options}", error_of(dec.fit_many, {}))
    assert.matches("unknown option 'worker'", error_of(dec.fit_many, { { x, {} } }, { worker = 2 }))
    assert.matches("unknown option 'clusterz'", error_of(dec.fit_many, { { x, { clusterz = 3 } } }))
    assert.matches("workers", error_of(dec.fit_many, { { x, {} } }, { workers = 0 }))
    assert.matches("'fit_many'.*%.npy path", error_of(dec.fit_many, { { 42, {} } }))
    -- a layer that fails (here on NaN activations) stops the others and is named
    local bad = strata.zeros(10, 8, 8, 2) / 0 -- NaN activations
    assert.matches("'b'", error_of(dec.fit_many, { { x, layer { name = "a" } }, { bad, layer { name = "b" } } },
      { progress = false }))
  end)
end)

-- Student-t in plain Lua doubles.
local function student_t(z, mu, alpha)
  local q = {}
  for i = 1, #z do
    local lk, m = {}, -math.huge
    for j = 1, #mu do
      local d2 = 0
      for t = 1, #z[i] do d2 = d2 + (z[i][t] - mu[j][t]) ^ 2 end
      lk[j] = -(alpha + 1) / 2 * math.log(1 + d2 / alpha)
      m = math.max(m, lk[j])
    end
    local s = 0
    for j = 1, #mu do s = s + math.exp(lk[j] - m) end
    q[i] = {}
    for j = 1, #mu do q[i][j] = math.exp(lk[j] - m) / s end
  end
  return q
end

describe("dec pieces", function()
  local rng = strata.rng(11)
  local z = strata.randn(rng, { 5, 3 }) * 2
  local mu = strata.randn(rng, { 4, 3 }) * 2

  it("student_t matches the formula for alpha 100 and 1", function()
    for _, alpha in ipairs({ 100, 1 }) do
      local q = dec.student_t(z, mu, alpha):totable()
      local want = student_t(z:totable(), mu:totable(), alpha)
      for i = 1, 5 do
        for j = 1, 4 do assert.is_true(close(q[i][j], want[i][j], 1e-5, 1e-7)) end
      end
    end
  end)

  it("student_t_backward agrees with finite differences", function()
    local alpha = 1
    local w = strata.randn(rng, { 5, 4 }) -- L = sum w .* q
    local q = dec.student_t(z, mu, alpha)
    local dz, dmu = dec.student_t_backward(z, mu, q, w, alpha)
    h.check_assignment_grad(function(Z, MU) return student_t(Z, MU, alpha) end, w, z, mu, dz, dmu)
  end)

  it("target_distribution, loss_kld and loss_mse follow their formulas", function()
    local q = dec.student_t(z, mu, 1)
    local p = dec.target_distribution(q):totable()
    local Q = q:totable()
    local f = { 0, 0, 0, 0 }
    for i = 1, 5 do
      for j = 1, 4 do f[j] = f[j] + Q[i][j] end
    end
    for i = 1, 5 do
      local s = 0
      for j = 1, 4 do s = s + Q[i][j] ^ 2 / f[j] end
      for j = 1, 4 do assert.is_true(close(p[i][j], Q[i][j] ^ 2 / f[j] / s, 1e-5, 1e-7)) end
    end
    local pt = strata.tensor(p)
    local kl, g = dec.loss_kld(pt, q, 0.1)
    local want, G = 0, g:totable()
    local function clip(v) return math.min(math.max(v, 1e-7), 1) end
    for i = 1, 5 do
      for j = 1, 4 do
        want = want + clip(p[i][j]) * math.log(clip(p[i][j]) / clip(Q[i][j]))
        if Q[i][j] >= 1e-7 then assert.is_true(close(G[i][j], -0.1 * clip(p[i][j]) / (Q[i][j] * 5), 1e-4, 1e-7)) end
      end
    end
    assert.is_true(close(kl, want / 5, 1e-5, 1e-7))
    local a, b = strata.tensor({ { 1, 2 }, { 3, 4 } }), strata.tensor({ { 0, 2 }, { 5, 4 } })
    local mse, gm = dec.loss_mse(a, b, 2)
    assert.is_true(close(mse, (1 + 4) / 4))
    assert.is_true(gm:allclose(strata.tensor({ { 1, 0 }, { -2, 0 } }))) -- 2 * 2 (a - b) / 4
    assert.matches("differ", error_of(dec.loss_mse, a, strata.zeros({ 3, 2 })))
  end)

  it("l2norm puts rows on the sphere; its backward is the projection", function()
    local u = strata.randn(rng, { 3, 4 })
    local zz = dec.l2norm(u, 8):totable()
    for i = 1, 3 do
      local s = 0
      for j = 1, 4 do s = s + zz[i][j] ^ 2 end
      assert.is_true(close(math.sqrt(s), 8, 1e-5))
    end
    -- d/du of sum(g .* z) is (r/n)(g - (g.u^)u^): orthogonal to u
    local g = strata.randn(rng, { 3, 4 })
    local du = dec.l2norm_backward(u, g, 8)
    local dot = (du * u):sum(2):totable()
    for i = 1, 3 do assert.is_true(math.abs(dot[i]) < 1e-4) end
  end)

  it("optim: one Keras Adam step by hand, and argument checks", function()
    local theta = strata.tensor({ 1, -2, 3 })
    local grad = strata.tensor({ 0.5, -1, 0 })
    local opt = dec.optim(3)
    opt:step({ theta }, { grad })
    local lr_t = 1e-3 * math.sqrt(1 - 0.999) / (1 - 0.9)
    local th, gr = theta:totable(), { 0.5, -1, 0 }
    local start = { 1, -2, 3 }
    for i = 1, 3 do
      local m, v = 0.1 * gr[i], 0.001 * gr[i] ^ 2
      assert.is_true(close(th[i], start[i] - lr_t * m / (math.sqrt(v) + 1e-7), 1e-6, 1e-7))
    end
    assert.are.equal(1, opt:steps())
    assert.are.same({ 3 }, opt:slot("m"):shape())
    assert.matches("as many", error_of(opt.step, opt, { theta }, {}))
    assert.matches("made for 3", error_of(opt.step, opt, { strata.zeros({ 2 }) }, { strata.zeros({ 2 }) }))
  end)

  it("cae: encode on the sphere, parameter views, backward by finite differences", function()
    local cae = dec.cae(8, 8, 2, { filters = { 4, 4, 4, 3 }, seed = 2, max_batch = 4 })
    assert.are.equal(16, #cae:parameters())
    local xb = strata.rand(rng, { 2, 8, 8, 2 })
    local zb = cae:encode(xb)
    assert.is_true(close(math.sqrt((zb * zb):sum(2):totable()[1]), 8, 1e-5))
    assert.are.same({ 2, 8, 8, 2 }, cae:decode(zb):shape())
    -- L = sum(c .* z): dL/dz = c; check the dense bias gradient numerically
    local c = strata.randn(rng, { 2, 3 })
    cae:encode(xb)
    cae:backward(nil, c)
    local names = cae:names()
    local bias_i
    for i, n in ipairs(names) do if n == "dense.bias" then bias_i = i end end
    local bias, gbias = cae:parameters()[bias_i], cae:gradients()[bias_i]:totable()
    local function loss() return (cae:encode(xb) * c):sum() end
    for j = 1, 3 do
      local old = bias:get(j)
      bias:set(j, old + 1e-2)
      local a = loss()
      bias:set(j, old - 1e-2)
      local b = loss()
      bias:set(j, old)
      assert.is_true(close(gbias[j], (a - b) / 2e-2, 2e-2, 1e-3))
    end
    -- a few pretraining steps on one batch lower the reconstruction error
    local opt = dec.optim(cae:param_count())
    local first = cae:pretrain_step(opt, xb)
    local last
    for _ = 1, 20 do last = cae:pretrain_step(opt, xb) end
    assert.is_true(last < first)
    assert.matches("batch", error_of(cae.encode, cae, strata.zeros({ 5, 8, 8, 2 })))
  end)
end)
