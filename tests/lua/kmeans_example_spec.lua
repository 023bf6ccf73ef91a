-- scripts/examples/kmeans.lua: on seeded blobs it recovers the blobs; its
-- result is a fixed point of Lloyd's algorithm checked with plain Lua
-- loops; and its speed is printed (not asserted) against a pure-Lua
-- k-means on 50,000 x 20 points with K = 15.
local strata = require "strata"

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local kmeans = assert(loadfile(here .. "../../scripts/examples/kmeans.lua"))("--lib")

-- n points around k centres (scale 10, unit noise); returns x, true
-- centres and true 1-based labels.
local function blobs(rng, n, d, k)
  local centres = strata.randn(rng, k, d, "f64") * 10
  local labels = strata.rand(rng, n):mul_(k):add_(1):to("i64")
  return centres:index_select(1, labels) + strata.randn(rng, n, d, "f64"), centres, labels
end

-- Plain Lua: squared distance between two rows given as tables.
local function dist2(a, b)
  local s = 0
  for j = 1, #a do s = s + (a[j] - b[j]) ^ 2 end
  return s
end

-- Plain Lua Lloyd iterations from given centres; returns the centres.
local function naive_lloyd(x, c, iters)
  local k, d = #c, #c[1]
  for _ = 1, iters do
    local sums, counts = {}, {}
    for j = 1, k do
      sums[j], counts[j] = {}, 0
      for m = 1, d do sums[j][m] = 0 end
    end
    for i = 1, #x do
      local best, bj = math.huge, 1
      for j = 1, k do
        local s = dist2(x[i], c[j])
        if s < best then best, bj = s, j end
      end
      counts[bj] = counts[bj] + 1
      for m = 1, d do sums[bj][m] = sums[bj][m] + x[i][m] end
    end
    for j = 1, k do
      if counts[j] > 0 then
        for m = 1, d do c[j][m] = sums[j][m] / counts[j] end
      end
    end
  end
  return c
end

describe("the k-means example", function()
  it("recovers seeded blobs", function()
    local rng = strata.rng(2024)
    local x, centres, truth = blobs(rng, 3000, 5, 6)
    local c, labels = kmeans(x, 6, { rng = rng, n_init = 3 })
    assert.are.same({ 6, 5 }, c:shape())
    assert.are.same({ 3000 }, labels:shape())
    -- every true blob lands in exactly one cluster, a different one each
    local cluster_of, used = {}, {}
    local t, l = truth:totable(), labels:totable()
    for i = 1, 3000 do
      if cluster_of[t[i]] == nil then cluster_of[t[i]] = l[i] end
      assert.are.equal(cluster_of[t[i]], l[i], "blob " .. t[i] .. " is split")
    end
    for b = 1, 6 do
      assert.is_nil(used[cluster_of[b]], "two blobs share a cluster")
      used[cluster_of[b]] = true
      -- the centre is the blob's centre up to the noise of ~500 points
      local found, want = c:select(1, cluster_of[b]):totable(), centres:select(1, b):totable()
      assert.is_true(dist2(found, want) < 0.2 ^ 2, "centre of blob " .. b)
    end
  end)

  it("returns a fixed point of Lloyd's algorithm (checked with plain loops)", function()
    local rng = strata.rng(7)
    local x = blobs(rng, 1500, 4, 5) + strata.randn(rng, 1500, 4, "f64") * 3 -- overlapping blobs
    local c, labels, inertia = kmeans(x, 5, { rng = rng, iters = 300, tol = 0 })
    local xs, cs, ls = x:totable(), c:totable(), labels:totable()
    local total = 0
    for i = 1, #xs do
      local best = math.huge
      for j = 1, 5 do best = math.min(best, dist2(xs[i], cs[j])) end
      assert.is_true(dist2(xs[i], cs[ls[i]]) <= best * (1 + 1e-9) + 1e-9, "point " .. i .. " is not with its nearest centre")
      total = total + best
    end
    assert.is_true(math.abs(total - inertia) <= 1e-6 * total)
    local again = naive_lloyd(xs, c:totable(), 1) -- one more step changes nothing
    for j = 1, 5 do assert.is_true(dist2(again[j], cs[j]) < 1e-12, "centre " .. j .. " moved") end
  end)

  it("is faster than pure Lua on 50,000 x 20, K = 15 (timing printed)", function()
    local rng = strata.rng(1)
    local x = blobs(rng, 50000, 20, 15):to("f32")
    local iters = 10
    local t0 = os.clock()
    kmeans(x, 15, { rng = rng, iters = 0 }) -- seeding only
    local seeding = os.clock() - t0
    t0 = os.clock()
    kmeans(x, 15, { rng = rng, iters = iters, tol = -1 }) -- tol < 0: all iterations run
    local fast = (os.clock() - t0 - seeding) / iters
    local xs, c0 = x:totable(), x:slice(1, 1, 15):totable()
    local naive_iters = 2
    t0 = os.clock()
    naive_lloyd(xs, c0, naive_iters)
    local slow = (os.clock() - t0) / naive_iters
    print(string.format("\n  k-means 50000x20, K=15 (CPU time): k-means++ seeding %.0f ms; per Lloyd iteration: "
      .. "tensor API %.1f ms, pure Lua %.1f ms, ratio %.0fx", seeding * 1e3, fast * 1e3, slow * 1e3, slow / fast))
  end)
end)
