-- strata.surrogate from Lua: hand-worked posteriors and predictions, the
-- reference formula (divided by the number of layers) giving the same
-- argmax, the empty-cluster report, evaluation with seeded intervals, and
-- clear errors.
local strata = require "strata"
local sur = strata.surrogate

-- The tiny example of docs/metrics.md: 6 examples, 3 classes.
local y = strata.tensor({ 0, 0, 1, 2, 2, 1 }, "i64")
local c0 = strata.tensor({ 0, 0, 0, 1, 1, 1 }, "i64")
local c1 = strata.tensor({ 0, 1, 1, 2, 2, 2 }, "i64")

local function near(a, b, tol) return math.abs(a - b) <= (tol or 1e-12) end

describe("surrogate", function()
  it("computes posteriors from hard cluster ids", function()
    local s = sur.fit({ c0, c1 }, y, { classes = 3, clusters = { 2, 3 } })
    assert.are.equal(2, s:layer_count())
    assert.are.equal(3, s:cluster_count(2))
    local h0, h1 = s:posterior(1), s:posterior(2)
    assert.is_true(near(h0:get(1, 1), 2 / 3) and near(h0:get(2, 3), 2 / 3) and h0:get(2, 1) == 0)
    assert.is_true(near(h1:get(2, 1), 0.5) and near(h1:get(3, 2), 1 / 3))
    assert.are.equal(2, s:counts(2):get(3, 3))
    assert.are.same({}, s:issues())
    assert.are.equal("", sur.report(s))
  end)

  it("takes the argmax of soft assignments as the hard clusters", function()
    local q0 = strata.tensor({ { .9, .1 }, { .6, .4 }, { .5, .5 }, { .2, .8 }, { 0, 1 }, { .4, .6 } })
    local q1 = strata.tensor({ { 1, 0, 0 }, { .1, .8, .1 }, { 0, 1, 0 }, { 0, 0, 1 }, { .3, .3, .4 }, { 0, .1, .9 } })
    local soft = sur.fit({ q0, q1 }, y, { classes = 3 })
    local hard = sur.fit({ c0, c1 }, y, { classes = 3, clusters = { 2, 3 } })
    for l = 1, 2 do assert.is_true(soft:counts(l):equal(hard:counts(l))) end
  end)

  it("normalises weights by their sum; the reference's 1/L gives the same argmax", function()
    local s = sur.fit({ c0, c1 }, y, { classes = 3, clusters = { 2, 3 } })
    local rng = strata.rng(3)
    local function soft(n, k)
      local q = strata.rand(rng, n, k):pow(4)
      return q / q:sum(2, true)
    end
    local q = { soft(40, 2), soft(40, 3) }
    local w = { 0.5, 2 }
    local p = s:predict_proba(q, w)
    local pred = s:predict(q, w)
    local h = { s:posterior(1), s:posterior(2) }
    for i = 1, 40 do
      local sum, best, ref = 0, 0, {}
      for c = 1, 3 do
        sum = sum + p:get(i, c)
        local r = 0
        for l = 1, 2 do
          for j = 1, q[l]:shape(2) do r = r + w[l] * q[l]:get(i, j) * h[l]:get(j, c) end
        end
        ref[c] = r / 2 -- the reference divides by L = 2
        assert.is_true(near(p:get(i, c), ref[c] * 2 / 2.5, 1e-6))
        if ref[c] > (ref[best] or -1) then best = c end
      end
      assert.is_true(near(sum, 1, 1e-6))
      assert.are.equal(best - 1, pred:get(i))
    end
    assert.is_true(p:allclose(s:predict_proba(q, { 2, 8 }), 0, 1e-12))
    -- restored from the counts: bitwise the same
    local r = sur.from_counts({ s:counts(1), s:counts(2) })
    assert.is_true(p:equal(r:predict_proba(q, w)))
  end)

  it("reports an empty cluster and never yields NaN", function()
    local s = sur.fit({ c0, c1 }, y, { classes = 3, clusters = { 3, 3 } }) -- layer 1 cluster 2 unused
    local issues = s:issues()
    assert.are.equal(1, #issues)
    assert.are.equal("empty", issues[1].kind)
    assert.are.equal(1, issues[1].layer)
    assert.are.equal(2, issues[1].cluster)
    assert.are.equal(0, issues[1].size)
    assert.truthy(sur.report(s):find("layer 0, cluster 2: empty", 1, true))
    local prior = s:prior(1)
    for c = 1, 3 do assert.is_true(near(s:posterior(1):get(3, c), prior:get(c))) end
    local p = s:predict_proba({ strata.tensor({ { 0, 0, 1 } }), strata.tensor({ { 0, 0, 1 } }) })
    for c = 1, 3 do assert.is_true(p:get(1, c) == p:get(1, c)) end
  end)

  it("rejects bad weights and inputs with clear messages", function()
    local s = sur.fit({ c0, c1 }, y, { classes = 3, clusters = { 2, 3 } })
    local q = { strata.tensor({ { 1, 0 } }), strata.tensor({ { 0, 1, 0 } }) }
    assert.has_error(function() s:predict(q, { 1, -1 }) end, "surrogate: weight 1 is -1 (weights must be finite and >= 0)")
    assert.has_error(function() s:predict(q, { 0, 0 }) end, "surrogate: the weights are all 0 (at least one must be > 0)")
    assert.has_error(function() s:predict(q, { 1, 1, 1 }) end, "bad argument #2 to 'predict' (weights: expected 2 numbers, got 3)")
    assert.has_error(function() s:predict({ q[1] }) end, "bad argument #1 to 'predict' (assignments: expected 2 tensors (one per layer), got 1)")
    assert.has_error(function() sur.fit({ c0 }, y, { classes = 3 }) end)
    assert.has_error(function() sur.fit({ c0 }, y, { classes = 3, clusters = { 2 }, colour = 1 }) end,
      "bad argument #3 to 'fit' (opts: unknown key 'colour')")
    local ok, msg = pcall(sur.fit, { c0 }, strata.tensor({ 0, 5, 0, 0, 0, 0 }, "i64"), { classes = 3, clusters = { 2 } })
    assert.is_false(ok)
    assert.truthy(msg:find("entry 1 is 5, outside [0, 3)", 1, true))
  end)
end)

describe("evaluate", function()
  local truth = strata.tensor({ 0, 1, 2, 1, 0, 2, 1, 1 }, "i64")
  local base = strata.tensor({ 0, 1, 2, 2, 0, 1, 1, 0 }, "i64")
  local pred = strata.tensor({ 0, 1, 1, 2, 0, 1, 0, 0 }, "i64")

  it("gives the hand-worked values", function()
    local ev = sur.evaluate { truth = truth, baseline = base, surrogate = pred, classes = 3, bootstrap = 0 }
    local t = ev:totable()
    assert.are.equal(3 / 8, t.accuracy)
    assert.are.equal(6 / 8, t.fidelity)
    assert.are.equal(5 / 8, t.baseline_accuracy)
    assert.are.same({ 3 / 8, 3 / 8 }, t.accuracy_ci)
    assert.is_true(near(t.per_class[2].fidelity, 2 / 3))
    assert.are.equal(2, t.confusion:get(2, 1))
  end)

  it("has seeded intervals, a summary and an atomic JSON file", function()
    local function ev(seed)
      return sur.evaluate { truth = truth, baseline = base, surrogate = pred, classes = 3, seed = seed,
        class_names = { "cat", "dog", "ship" } }
    end
    local a, b = ev(7):totable(), ev(7):totable()
    assert.are.same(a.accuracy_ci, b.accuracy_ci)
    assert.is_true(a.accuracy_ci[1] <= a.accuracy and a.accuracy <= a.accuracy_ci[2])
    local text = tostring(ev(7))
    assert.truthy(text:find("fidelity", 1, true) and text:find("ship", 1, true))
    local path = os.tmpname()
    assert.is_true(ev(7):save(path))
    local f = assert(io.open(path))
    local json = f:read("a")
    f:close()
    os.remove(path)
    assert.truthy(json:find('"fidelity"', 1, true) and json:find('"name": "dog"', 1, true))
    assert.are.equal(json, ev(7):json() .. "\n")
    assert.has_error(function() sur.evaluate { truth = truth, baseline = base, surrogate = pred, classes = 3 } end,
      "bad argument #1 to 'evaluate' (the bootstrap needs a seed or an rng (or bootstrap = 0))")
  end)

  it("computes cluster statistics", function()
    local st = sur.cluster_stats(strata.tensor({ { 3, 1, 0 }, { 0, 0, 0 } }, "i64"))
    assert.are.equal(4, st[1].size)
    assert.are.equal(0.75, st[1].purity)
    assert.is_true(near(st[1].entropy, -(0.75 * math.log(0.75, 2) + 0.25 * math.log(0.25, 2))))
    assert.are.same({ { class = 0, fraction = 0.75 }, { class = 1, fraction = 0.25 } }, st[1].dominant)
    assert.are.same({ cluster = 1, size = 0, purity = 0, entropy = 0, dominant = {} }, st[2])
  end)
end)
