-- k-means in Lua over the tensor API: k-means++ seeding, then Lloyd
-- iterations, with every O(n·k·d) step done by BLAS (distances through
-- ||x||² - 2·x·cᵀ + ||c||², new centres as onehotᵀ·x).
--   strata scripts/examples/kmeans.lua [n d k]   clusters random blobs
--   loadfile("kmeans.lua")("--lib")              returns the function
local strata = require "strata"

-- Squared distances [n,k] from the rows of x [n,d] (xx = ||x||² as [n,1]) to c [k,d].
local function sqdist(x, xx, c)
  local cc = (c * c):sum(2):reshape(1, -1)
  return (x:matmul(c:transpose()):mul_(-2):add_(xx):add_(cc)):clamp(0)
end

-- One run: k-means++ seeding, then Lloyd iterations until the inertia stalls.
local function run(x, xx, k, rng, iters, tol)
  local n = #x
  local picks = { rng:integer(n) }                      -- k-means++: first centre uniform,
  local d2 = sqdist(x, xx, x:index_select(1, picks)):reshape(-1)
  for j = 2, k do                                       -- then each with probability ∝ D²
    local w, r, i = d2:totable(), rng:uniform() * d2:sum(), 0
    repeat i = i + 1; r = r - w[i] until r <= 0 or i == n
    picks[j] = i
    local dj = sqdist(x, xx, x:index_select(1, { i })):reshape(-1, 1)
    d2 = strata.concat({ d2:reshape(-1, 1), dj }, 2):min(2)
  end
  local c, eye = x:index_select(1, picks), strata.zeros(k, k, x:dtype())
  for j = 1, k do eye:set(j, j, 1) end
  local labels, inertia, last
  for _ = 1, iters do
    local d = sqdist(x, xx, c)
    labels, last, inertia = d:argmin(2), inertia, d:min(2):sum()
    if last and last - inertia <= tol * inertia then break end
    local onehot = eye:index_select(1, labels)          -- [n,k]
    local counts, sums = onehot:sum(1):totable(), onehot:transpose():matmul(x)
    for j = 1, k do                                     -- an empty cluster keeps its centre
      if counts[j] > 0 then c:select(1, j):assign(sums:select(1, j) / counts[j]) end
    end
  end
  return c, labels, inertia
end

-- kmeans(x, k, {rng=, n_init=1, iters=100, tol=1e-6}) -> centres [k,d],
-- labels (1-based, i64 [n]), inertia: the best of n_init runs.
local function kmeans(x, k, opts)
  local xx, best = (x * x):sum(2, true), nil
  for _ = 1, opts.n_init or 1 do
    local r = table.pack(run(x, xx, k, opts.rng, opts.iters or 100, opts.tol or 1e-6))
    if not best or r[3] < best[3] then best = r end
  end
  return best[1], best[2], best[3]
end

if ... == "--lib" then return kmeans end

local n, d, k = tonumber(arg and arg[1]) or 50000, tonumber(arg and arg[2]) or 20, tonumber(arg and arg[3]) or 15
local rng = strata.rng(1)
local truth = strata.randn(rng, k, d) * 10
local x = truth:index_select(1, strata.rand(rng, n):mul_(k):add_(1):to("i64")) + strata.randn(rng, n, d)
local t0 = os.clock()
local _, _, inertia = kmeans(x, k, { rng = rng, n_init = 3 })
print(string.format("k-means of %d x %d, k = %d: inertia %.6g in %.3f s CPU", n, d, k, inertia, os.clock() - t0))
return kmeans
