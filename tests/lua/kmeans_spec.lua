-- strata.kmeans, strata.kmeans_predict and strata.knn from Lua: hand-worked
-- k-means runs, determinism by seed, and k-nearest neighbours against a
-- brute-force reference written in plain Lua loops.
local strata = require "strata"

local function close(a, b, tol) return math.abs(a - b) <= (tol or 1e-5) * (1 + math.abs(b)) end

local function error_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

local function same(a, b) -- nested tables of numbers, exactly
  if type(a) ~= "table" then return a == b end
  if #a ~= #b then return false end
  for i = 1, #a do
    if not same(a[i], b[i]) then return false end
  end
  return true
end

describe("strata.kmeans", function()
  it("finds two obvious clusters exactly", function()
    local x = strata.tensor{{0, 0}, {0, 1}, {1, 0}, {10, 10}, {10, 11}, {11, 10}}
    local r = strata.kmeans(x, {k = 2, seed = 3})
    local lab = r.labels:totable()
    assert.are.equal("i64", r.labels:dtype())
    assert.is_true(lab[1] == lab[2] and lab[2] == lab[3] and lab[4] == lab[5] and lab[5] == lab[6])
    assert.are_not.equal(lab[1], lab[4])
    assert.is_true((lab[1] == 1 or lab[1] == 2) and (lab[4] == 1 or lab[4] == 2)) -- 1-based
    local c = r.centers:totable()
    -- centres (1/3, 1/3) and (31/3, 31/3); each cluster's inertia is 4/3
    assert.is_true(close(c[lab[1]][1], 1 / 3) and close(c[lab[1]][2], 1 / 3))
    assert.is_true(close(c[lab[4]][1], 31 / 3) and close(c[lab[4]][2], 31 / 3))
    assert.is_true(close(r.inertia, 8 / 3))
    assert.are.equal(20, r.n_runs)
    assert.are.equal(20, #r.run_seeds)
    assert.are.equal(20, #r.run_inertia)
    assert.are.equal(3, r.seed)
    assert.is_true(r.best_run >= 1 and r.best_run <= 20)
  end)

  it("runs the hand-worked Lloyd iterations from given centres", function()
    -- {0, 2, 4, 10, 14} from {0, 4}: labels 11222, then 11122, then no
    -- change; centres (2, 12), inertia 16 (see tests/c/test_kmeans.c).
    local x = strata.tensor{{0}, {2}, {4}, {10}, {14}}
    local init = strata.tensor{{0}, {4}}
    local r = strata.kmeans(x, {k = 2, init = init})
    assert.are.equal(3, r.n_iter)
    assert.are.equal(1, r.n_runs)
    assert.is_nil(r.seed)
    assert.are.same({1, 1, 1, 2, 2}, r.labels:totable())
    assert.is_true(close(r.centers:get(1, 1), 2) and close(r.centers:get(2, 1), 12))
    assert.is_true(close(r.inertia, 16))
    -- tol is relative to the mean feature variance (27.2): 1.1 * 27.2
    -- exceeds the first shift (29.44) and stops after one iteration.
    local early = strata.kmeans(x, {k = 2, init = init, tol = 1.1})
    assert.are.equal(1, early.n_iter)
    assert.is_true(close(early.inertia, 299 / 9))
  end)

  it("gives the same answer for the same seed or an rng in the same state", function()
    local x = strata.randn(strata.rng(1), 300, 5)
    local a = strata.kmeans(x, {k = 4, seed = 7, n_init = 3})
    local b = strata.kmeans(x, {k = 4, seed = 7, n_init = 3})
    local c = strata.kmeans(x, {k = 4, rng = strata.rng(7), n_init = 3})
    local d = strata.kmeans(x, {k = 4, seed = 7, n_init = 3, threads = 2})
    for _, other in ipairs{b, c, d} do
      assert.is_true(same(a.centers:totable(), other.centers:totable()))
      assert.is_true(same(a.labels:totable(), other.labels:totable()))
      assert.are.equal(a.inertia, other.inertia)
      assert.is_true(same(a.run_seeds, other.run_seeds))
    end
    for i = 1, a.n_runs do assert.is_true(a.run_inertia[a.best_run] <= a.run_inertia[i]) end
    local labels, inertia = strata.kmeans_predict(x, a.centers)
    assert.is_true(same(labels:totable(), a.labels:totable()))
    assert.is_true(close(inertia, a.inertia))
  end)

  it("rejects bad options with clear messages", function()
    local x = strata.tensor{{0, 0}, {1, 1}, {2, 2}}
    assert.matches("unknown key 'clusters'", error_of(strata.kmeans, x, {k = 2, seed = 1, clusters = 2}))
    assert.matches("k: the number of clusters is required", error_of(strata.kmeans, x, {seed = 1}))
    assert.matches("1 <= k <= rows %(3%)", error_of(strata.kmeans, x, {k = 4, seed = 1}))
    assert.matches("seed or rng required", error_of(strata.kmeans, x, {k = 2}))
    assert.matches("either seed or rng", error_of(strata.kmeans, x, {k = 2, seed = 1, rng = strata.rng(1)}))
    assert.matches("n_init: expected an integer >= 1", error_of(strata.kmeans, x, {k = 2, seed = 1, n_init = 0}))
    assert.matches("max_iter: expected an integer, got a fraction",
      error_of(strata.kmeans, x, {k = 2, seed = 1, max_iter = 2.5}))
    assert.matches("rng: expected a strata.rng", error_of(strata.kmeans, x, {k = 2, rng = 5}))
    assert.matches("init centres", error_of(strata.kmeans, x, {k = 2, init = strata.tensor{{1, 2, 3}}}))
    assert.matches("bad argument #1", error_of(strata.kmeans, "x", {k = 2, seed = 1}))
  end)
end)

-- Brute force in plain Lua: weighted sum of per-layer Euclidean distances,
-- optional same-label filter, sorted by (distance, index).
local function brute_knn(qs, ts, k, w, ql, tl)
  local nq, nt = #qs[1], #ts[1]
  local out_i, out_d = {}, {}
  for q = 1, nq do
    local cand = {}
    for i = 1, nt do
      if not ql or ql[q] == tl[i] then
        local d = 0
        for l = 1, #qs do
          local s = 0
          for c = 1, #qs[l][q] do s = s + (qs[l][q][c] - ts[l][i][c]) ^ 2 end
          d = d + (w and w[l] or 1) * math.sqrt(s)
        end
        cand[#cand + 1] = {d, i}
      end
    end
    table.sort(cand, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
    out_i[q], out_d[q] = {}, {}
    for j = 1, k do
      out_i[q][j] = cand[j] and cand[j][2] or 0
      out_d[q][j] = cand[j] and cand[j][1] or math.huge
    end
  end
  return out_i, out_d
end

local function check_knn(indices, distances, want_i, want_d)
  local gi, gd = indices:totable(), distances:totable()
  assert.are.equal("i64", indices:dtype())
  for q = 1, #want_i do
    for j = 1, #want_i[q] do
      assert.are.equal(want_i[q][j], gi[q][j], ("query %d, neighbour %d"):format(q, j))
      if want_d[q][j] == math.huge then
        assert.are.equal(math.huge, gd[q][j])
      else
        assert.is_true(close(gd[q][j], want_d[q][j], 1e-4), ("distance %g vs %g"):format(gd[q][j], want_d[q][j]))
      end
    end
  end
end

describe("strata.knn", function()
  local rng = strata.rng(11)
  local dims = {3, 5, 2}
  local qs, ts, qt, tt = {}, {}, {}, {}
  for l, d in ipairs(dims) do
    qs[l] = strata.randn(rng, 7, d)
    ts[l] = strata.randn(rng, 60, d)
    qt[l], tt[l] = qs[l]:totable(), ts[l]:totable()
  end

  it("matches brute force, with weights that include a zero", function()
    local w = {1, 0, 2.5}
    local idx, dist = strata.knn(qs, ts, {k = 6, weights = w, train_block = 7})
    check_knn(idx, dist, brute_knn(qt, tt, 6, w))
    idx, dist = strata.knn(qs, ts, {k = 3})
    check_knn(idx, dist, brute_knn(qt, tt, 3))
  end)

  it("filters to the same label and pads when candidates run out", function()
    local ql, tl = {}, {}
    for q = 1, 7 do ql[q] = q % 3 end
    ql[7] = 9 -- no training row has label 9
    for i = 1, 60 do tl[i] = i % 4 end
    local idx, dist = strata.knn(qs, ts, {k = 20, filter_query = ql, filter_train = strata.tensor(tl):to("i32")})
    local want_i, want_d = brute_knn(qt, tt, 20, nil, ql, tl)
    check_knn(idx, dist, want_i, want_d)
    assert.are.equal(0, idx:get(7, 1))
    assert.are.equal(0, idx:get(1, 20)) -- label 1 has 15 training rows
    -- k larger than the training set
    local few = strata.knn(qs[1], ts[1]:slice(1, 1, 4), {k = 6})
    assert.are.same({6}, {few:shape()[2]})
    assert.are.equal(0, few:get(1, 5))
  end)

  it("takes one tensor for one layer: the training rows nearest each centroid", function()
    local x = strata.tensor{{0, 0}, {10, 0}, {0.5, 0}, {10.5, 0}, {1, 0}, {11, 0}}
    local centroids = strata.tensor{{10.4, 0}, {0.4, 0}}
    local idx, dist = strata.knn(centroids, x, {k = 3})
    assert.are.same({{4, 2, 6}, {3, 1, 5}}, idx:totable())
    assert.is_true(close(dist:get(1, 1), 0.1, 1e-4) and close(dist:get(2, 3), 0.6, 1e-4))
  end)

  it("rejects bad options with clear messages", function()
    assert.matches("unknown key 'K'", error_of(strata.knn, qs, ts, {K = 3}))
    assert.matches("k: the number of neighbours is required", error_of(strata.knn, qs, ts, {}))
    assert.matches("weights: expected 3 numbers, got 2", error_of(strata.knn, qs, ts, {k = 3, weights = {1, 2}}))
    assert.matches("weights: item 2 is not a number", error_of(strata.knn, qs, ts, {k = 3, weights = {1, "a", 2}}))
    assert.matches("all 3 weights are zero", error_of(strata.knn, qs, ts, {k = 3, weights = {0, 0, 0}}))
    assert.matches("train: expected 3 layers", error_of(strata.knn, qs, {ts[1]}, {k = 3}))
    assert.matches("queries: item 2 is string", error_of(strata.knn, {qs[1], "x"}, ts, {k = 3}))
    assert.matches("go together", error_of(strata.knn, qs, ts, {k = 3, filter_query = {1, 2, 3, 4, 5, 6, 7}}))
    assert.matches("training rows of layer 2 of 3", error_of(strata.knn, qs, {ts[1], ts[1], ts[3]}, {k = 3}))
  end)
end)
