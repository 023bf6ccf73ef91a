-- strata.ac: a small explainer fitted on real CIFAR-10 activations of the
-- shared ResNet-56, checked against plain-Lua computations of the method
-- (METHOD.md d): surrogate probabilities from the posteriors, metrics from
-- label counts, brute-force nearest neighbours for queries, the features
-- baseline and concepts; resuming skips finished work; options and
-- misuse give clear errors.
local strata = require "strata"
local fixture = require "ac_fixture"
local missing = fixture.missing()
if missing then return pending(missing) end

local F = fixture.fitted("ac_spec")
local ac, net, train, test = F.ac, F.net, F.train, F.test

local function rows(t) return t:totable() end

local function dist(a, b)
  local s = 0
  for i = 1, #a do s = s + (a[i] - b[i]) ^ 2 end
  return math.sqrt(s)
end

-- Brute-force k nearest: candidates 1..N (optionally filtered), the
-- distance a function of the training position; ascending, ties to the
-- lower position.
local function brute_topk(n, k, d, keep)
  local cand = {}
  for i = 1, n do
    if not keep or keep(i) then cand[#cand + 1] = { i = i, d = d(i) } end
  end
  table.sort(cand, function(x, y) return x.d < y.d or x.d == y.d and x.i < y.i end)
  local out = {}
  for j = 1, k do out[j] = cand[j] end
  return out
end

-- The returned neighbours match the brute force: same distances (float
-- rounding), same positions except where two distances nearly tie.
local function same_neighbours(idx, dst, want, tol)
  for j, w in ipairs(want) do
    local got_i, got_d = math.tointeger(idx[j]), dst[j]
    if math.abs(got_d - w.d) > tol * (1 + w.d) then return false, ("slot %d: distance %g, brute force %g"):format(j, got_d, w.d) end
    if got_i ~= w.i then
      local near = want[j + 1] and math.abs(want[j + 1].d - w.d) <= tol * (1 + w.d)
        or want[j - 1] and math.abs(want[j - 1].d - w.d) <= tol * (1 + w.d)
      if not near then return false, ("slot %d: position %d, brute force %d"):format(j, got_i, w.i) end
    end
  end
  return true
end

local names = { "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck" }

describe("ac", function()
  teardown(function() fixture.remove(F.dir) end)
  local x = test:slice(1, 12)
  local z = ac:embed(x)
  local q, ids = ac:assign(x)

  it("embeds inputs per layer on the sphere and assigns soft clusters", function()
    assert.are.equal(2, #z)
    for l = 1, 2 do
      assert.are.same({ 12, 4 }, z[l]:shape())
      assert.are.same({ 12, 3 }, q[l]:shape())
      for i, row in ipairs(rows(z[l])) do
        assert.is_true(math.abs(dist(row, { 0, 0, 0, 0 }) - 8) < 1e-4, "norm of row " .. i)
      end
      for i, row in ipairs(rows(q[l])) do
        local s, best = 0, 1
        for j, v in ipairs(row) do
          s = s + v
          if v > row[best] then best = j end
        end
        assert.is_true(math.abs(s - 1) < 1e-5)
        assert.are.equal(best - 1, ids[l]:get(i))
      end
    end
  end)

  it("computes P(y|x) from the posteriors, weighted and normalised by the sum of weights", function()
    local w = { 1, 3 }
    local P = rows(ac:predict_proba(x, { weights = w }))
    local pred = ac:predict(x, { weights = w })
    for i = 1, 12 do
      local want, best = {}, 1
      for y = 1, 10 do
        local s = 0
        for l = 1, 2 do
          local H = ac.surrogate:posterior(l)
          for j = 1, 3 do s = s + w[l] * q[l]:get(i, j) * H:get(j, y) end
        end
        want[y] = s / 4
        assert.is_true(math.abs(P[i][y] - want[y]) < 1e-6, ("P[%d][%d] = %g, want %g"):format(i, y, P[i][y], want[y]))
        if P[i][y] > P[i][best] then best = y end
      end
      assert.are.equal(best - 1, pred:get(i))
    end
  end)

  it("builds the posteriors from the training set's hard clusters and true labels", function()
    local qt, idt = ac:assign("train")
    local labels = train:labels()
    for l = 1, 2 do
      local counts = ac.surrogate:counts(l)
      local want = {}
      for j = 1, 3 do want[j] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 } end
      for i = 1, #train do
        local j, y = idt[l]:get(i) + 1, labels:get(i) + 1
        want[j][y] = want[j][y] + 1
      end
      assert.are.same(want, counts:totable())
      local stats = ac:cluster_stats(l)
      local total = 0
      for j, s in ipairs(stats) do
        total = total + s.size
        assert.are.equal(j - 1, s.cluster)
      end
      assert.are.equal(240, total)
    end
    assert.are.same({ 240, 3 }, qt[1]:shape())
  end)

  it("evaluates baseline accuracy, surrogate accuracy and fidelity like plain counting", function()
    local ev = ac:evaluate(test, { bootstrap = 50, record = "test" }):totable()
    local labels, base, sur = test:labels(), net:predict(test:floats(1, 60, net)), ac:predict(test)
    local acc_b, acc_s, fid = 0, 0, 0
    for i = 1, 60 do
      local y, b, s = labels:get(i), base:get(i), sur:get(i)
      acc_b = acc_b + (b == y and 1 or 0)
      acc_s = acc_s + (s == y and 1 or 0)
      fid = fid + (s == b and 1 or 0)
    end
    assert.are.equal(60, ev.n)
    assert.is_true(math.abs(ev.baseline_accuracy - acc_b / 60) < 1e-12)
    assert.is_true(math.abs(ev.accuracy - acc_s / 60) < 1e-12)
    assert.is_true(math.abs(ev.fidelity - fid / 60) < 1e-12)
    assert.are.equal(2, #ev.layers)
    assert.is_truthy(ac.metrics.test:match('"fidelity"'))
  end)

  it("evaluates on the training set from its caches", function()
    local ev = ac:evaluate("train", { bootstrap = 0 }):totable()
    local sur, labels, pred = ac:predict("train"), train:labels(), ac.train_pred
    local acc, fid = 0, 0
    for i = 1, #train do
      acc = acc + (sur:get(i) == labels:get(i) and 1 or 0)
      fid = fid + (sur:get(i) == pred:get(i) and 1 or 0)
    end
    assert.are.equal(240, ev.n)
    assert.is_true(math.abs(ev.accuracy - acc / 240) < 1e-12)
    assert.is_true(math.abs(ev.fidelity - fid / 240) < 1e-12)
  end)

  it("queries the nearest training examples under weighted per-layer distances", function()
    local w = { 2, 0.5 }
    local idx, dst = ac:query(x, { k = 5, weights = w })
    assert.are.same({ 12, 5 }, idx:shape())
    local Z = { rows(ac.Z[1]), rows(ac.Z[2]) }
    local zq = { rows(z[1]), rows(z[2]) }
    for i = 1, 12 do
      local want = brute_topk(240, 5, function(t) return w[1] * dist(zq[1][i], Z[1][t]) + w[2] * dist(zq[2][i], Z[2][t]) end)
      local ok, why = same_neighbours(rows(idx)[i], rows(dst)[i], want, 1e-4)
      assert(ok, "query " .. i .. ": " .. tostring(why))
    end
  end)

  it("filters queries to training examples labelled as the prediction or the truth", function()
    local labels = train:labels()
    local base = net:predict(x:floats(1, 12, net))
    local truth = x:labels()
    local Z = { rows(ac.Z[1]), rows(ac.Z[2]) }
    local zq = { rows(z[1]), rows(z[2]) }
    for _, case in ipairs({ { "predicted", base }, { "true", truth } }) do
      local idx, dst = ac:query(x, { k = 4, filter = case[1] })
      for i = 1, 12 do
        local want = brute_topk(240, 4, function(t) return dist(zq[1][i], Z[1][t]) + dist(zq[2][i], Z[2][t]) end,
          function(t) return labels:get(t) == case[2]:get(i) end)
        local ok, why = same_neighbours(rows(idx)[i], rows(dst)[i], want, 1e-4)
        assert(ok, case[1] .. " query " .. i .. ": " .. tostring(why))
      end
    end
  end)

  it("gives the features baseline: nearest neighbours of the pool features", function()
    local _, taps = net:forward(x:floats(1, 12, net), { "pool" })
    local feats = rows(taps.pool)
    local train_feats = rows(strata.map_npy(F.dir .. "/activations/train/pool.npy"))
    local idx, dst = ac:query_features(x, { k = 3 })
    for i = 1, 12 do
      local want = brute_topk(240, 3, function(t) return dist(feats[i], train_feats[t]) end)
      local ok, why = same_neighbours(rows(idx)[i], rows(dst)[i], want, 1e-4)
      assert(ok, "features query " .. i .. ": " .. tostring(why))
    end
  end)

  it("finds concepts: the training examples nearest each raw centroid", function()
    for l = 1, 2 do
      local idx, dst = ac:concepts(l, { k = 4 })
      assert.are.same({ 3, 4 }, idx:shape())
      local mu, Z = rows(ac.trainers[l]:centroids()), rows(ac.Z[l])
      for j = 1, 3 do
        local want = brute_topk(240, 4, function(t) return dist(mu[j], Z[t]) end)
        local ok, why = same_neighbours(rows(idx)[j], rows(dst)[j], want, 1e-4)
        assert(ok, ("layer %d concept %d: %s"):format(l, j, tostring(why)))
      end
    end
    assert.is_true(ac:concepts("activation_54"):equal(ac:concepts(2)))
  end)

  it("explains a single u8 image like the same row of a batch", function()
    local images = x:images(1, 12)
    local one = images:select(1, 5)
    local z1 = ac:embed(one)
    assert.are.same({ 1, 4 }, z1[1]:shape())
    assert.is_true(z1[1]:allclose(z[1]:slice(1, 5, 5), 1e-4, 1e-5))
    assert.are.equal(ac:predict(x):get(5), ac:predict(one):get(1))
    assert.is_true(ac:predict({ images = images, labels = x:labels() }):equal(ac:predict(x)))
  end)

  it("resumes: a second fit on the same directory reuses activations and models", function()
    local ckpt = F.dir .. "/clustering/activation_54/checkpoint.safetensors"
    local before = strata.core.sha256_file(ckpt)
    local again = strata.ac.new { net = net, dir = F.dir, seed = 7, layers = fixture.LAYERS, quiet = true }
    again:fit(train, fixture.FIT)
    assert.are.equal(before, strata.core.sha256_file(ckpt))
    for l = 1, 2 do assert.is_true(again.Z[l]:equal(ac.Z[l])) end
    assert.is_true(again:predict_proba(x):equal(ac:predict_proba(x)))
  end)

  it("trains its layers side by side to the models it trains one by one", function()
    local function fit(tag, opts)
      local e = strata.ac.new { net = net, dir = fixture.tmpdir(tag), seed = 7, layers = fixture.LAYERS, quiet = true }
      for k, v in pairs(fixture.FIT) do opts[k] = v end
      e:fit(train, opts)
      return e
    end
    local one_by_one = fit("ac_spec_jobs1", { jobs = 1, threads = 1 })
    -- 2 cores and 2 layers: both at once, one thread each
    local side_by_side = fit("ac_spec_jobs2", { cores = 2 })
    for l = 1, 2 do
      assert.are.equal(1, side_by_side.config.layers[l].dec.threads)
      assert.is_true(side_by_side.Z[l]:equal(one_by_one.Z[l]))
      assert.is_true(side_by_side.mu[l]:equal(one_by_one.mu[l]))
      assert.is_true(side_by_side.timings.layers[l] >= 0)
    end
    fixture.remove(one_by_one.dir)
    fixture.remove(side_by_side.dir)
    local e = strata.ac.new { net = net, dir = "/nonexistent", seed = 7, layers = fixture.LAYERS, quiet = true }
    assert.matches("jobs", select(2, pcall(e.fit, e, train, { jobs = 0 })))
    assert.matches("cores", select(2, pcall(e.fit, e, train, { cores = 1.5 })))
  end)

  it("refuses to resume with different clustering settings, naming the setting", function()
    local other = strata.ac.new { net = net, dir = F.dir, seed = 7, layers = fixture.LAYERS, quiet = true }
    local ok, err = pcall(other.fit, other, train, { epochs = 1, maxiter = 11, update_interval = 5 })
    assert.is_false(ok)
    assert.is_truthy(tostring(err):match("maxiter"))
  end)

  it("builds posteriors from the baseline's predictions on request", function()
    local G = fixture.fitted("ac_spec_baseline", { posteriors = "baseline" })
    local _, idt = G.ac:assign("train")
    local pred = G.ac.train_pred
    local counts = G.ac.surrogate:counts(2):totable()
    local want = {}
    for j = 1, 3 do want[j] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 } end
    for i = 1, 240 do
      local j, y = idt[2]:get(i) + 1, pred:get(i) + 1
      want[j][y] = want[j][y] + 1
    end
    assert.are.same(want, counts)
    fixture.remove(G.dir)
  end)

  it("rejects unknown options and bad configurations with clear messages", function()
    local function fails(pattern, f, ...)
      local ok, err = pcall(f, ...)
      assert.is_false(ok)
      assert(tostring(err):match(pattern), "message '" .. tostring(err) .. "' lacks '" .. pattern .. "'")
    end
    local base = { net = net, dir = "/tmp/x", layers = fixture.LAYERS }
    local function with(k, v)
      local t = {}
      for a, b in pairs(base) do t[a] = b end
      t[k] = v
      return t
    end
    fails("unknown option 'bogus'", strata.ac.new, with("bogus", 1))
    fails("unknown option 'clusterz'", strata.ac.new, with("layers", { { tap = "activation_54", clusterz = 3 } }))
    fails("no tap 'nosuch'", strata.ac.new, with("layers", { { tap = "nosuch" } }))
    fails("listed twice", strata.ac.new, with("layers", { { tap = "stem" }, { tap = "stem" } }))
    fails("needs an %[H, W, C%]", strata.ac.new, with("layers", { { tap = "pool" } }))
    fails("posteriors", strata.ac.new, with("posteriors", "labels"))
    fails("weights: expected 2 numbers, got 3", strata.ac.new, with("weights", { 1, 1, 1 }))
    fails("net %(a loaded model%)", strata.ac.new, { dir = "/tmp/x", layers = fixture.LAYERS })
    fails("dir", strata.ac.new, { net = net, layers = fixture.LAYERS })
    local fresh = strata.ac.new(base)
    fails("not fitted", fresh.predict, fresh, x)
    fails("unknown option 'epoch'", fresh.fit, fresh, train, { epoch = 1 })
    fails("weights: expected 2 numbers, got 1", ac.query, ac, x, { weights = { 1 } })
    fails("weights: entry 2 must be a finite number >= 0", ac.predict, ac, x, { weights = { 1, -1 } })
    fails("weights: not all may be 0", ac.predict, ac, x, { weights = { 0, 0 } })
    fails("filter", ac.query, ac, x, { filter = "same" })
    fails("labelled", ac.evaluate, ac, x:images(1, 3))
    fails("k: a positive integer", ac.query, ac, x, { k = 0 })
    fails("layer: a position 1..2", ac.concepts, ac, 3)
    fails("already fitted", ac.fit, ac, train)
    fails("%[n, H, W, C%]", ac.embed, ac, strata.zeros(3, 3))
  end)

  it("uses the datasets' class names and prints a summary", function()
    assert.are.same(names, ac.config.class_names)
    assert.is_truthy(tostring(ac):match("activation_54"))
  end)
end)
