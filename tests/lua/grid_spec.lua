-- strata.grid from Lua: figures from image tensors and from the real
-- CIFAR-10 datasets, checked by their pixels (red frames, which image sits
-- in which cell), the PNG file, and clear errors.
local strata = require "strata"
local grid = strata.grid

-- n flat-coloured 8x8 images: image i is (10 i, 200, 50).
local function images(n)
  local t = strata.zeros(n, 8, 8, 3, "u8")
  for i = 1, n do
    for y = 1, 8 do
      for x = 1, 8 do
        t:set(i, y, x, 1, 10 * i)
        t:set(i, y, x, 2, 200)
        t:set(i, y, x, 3, 50)
      end
    end
  end
  return t
end

local function is_red(cv, y, x) return cv:get(y, x, 1) == 255 and cv:get(y, x, 2) == 0 and cv:get(y, x, 3) == 0 end

-- Top-left corners of red frames, in raster order.
local function frames(cv)
  local out = {}
  local h, w = cv:shape(1), cv:shape(2)
  for y = 1, h do
    for x = 1, w do
      if is_red(cv, y, x) and (x == 1 or not is_red(cv, y, x - 1)) and (y == 1 or not is_red(cv, y - 1, x)) then
        out[#out + 1] = { y = y, x = x }
      end
    end
  end
  return out
end

local train = images(4)
local labels = strata.tensor({ 0, 1, 0, 1 }, "i64")
local names = { "cat", "dog" }
local queries = images(6):slice(1, 5, 6) -- colours 50 and 60
local nn = strata.tensor({ { 2, 0 }, { 4, 1 } }, "i64")

describe("grid", function()
  it("draws similar images with framed queries and writes a PNG", function()
    local path = os.tmpname()
    local cv = grid.similar(queries, train, nn, path, { scale = 2, labels = labels, class_names = names })
    assert.are.equal("u8", cv:dtype())
    assert.are.equal(3, cv:shape(3))
    local f = frames(cv)
    assert.are.equal(2, #f)
    assert.are.equal(f[1].x, f[2].x)
    -- frame 1 px at 8x8 (max(1, 8/16)), times the scale: the query pixel
    -- sits 2 px inside the corner
    assert.are.equal(50, cv:get(f[1].y + 2, f[1].x + 2, 1))
    assert.are.equal(60, cv:get(f[2].y + 2, f[2].x + 2, 1))
    local file = assert(io.open(path, "rb"))
    assert.are.equal("\137PNG", file:read(4))
    file:close()
    os.remove(path)
    -- the same call draws the same pixels
    assert.is_true(cv:equal(grid.similar(queries, train, nn, nil, { scale = 2, labels = labels, class_names = names })))
  end)

  it("takes the query rows from nn.queries", function()
    local cv = grid.similar(queries, train, { indices = nn, queries = { 2, 1 } }, nil, { scale = 2 })
    local f = frames(cv)
    assert.are.equal(60, cv:get(f[1].y + 2, f[1].x + 2, 1))
    assert.are.equal(50, cv:get(f[2].y + 2, f[2].x + 2, 1))
  end)

  it("compares weightings in titled blocks and shows selected concepts", function()
    local cv = grid.weights_comparison(queries, train, { ["equal"] = nn, ["high level"] = nn }, nil, { scale = 1 })
    assert.are.equal(4, #frames(cv))
    local side = grid.weights_comparison(queries, train, { { title = "a", nn = nn }, { title = "b", nn = nn } }, nil,
      { scale = 1, side_by_side = true })
    local f = frames(side)
    assert.are.equal(f[1].y, f[2].y)
    assert.is_true(side:shape(2) > cv:shape(2))
    local members = strata.tensor({ { 1, 2 }, { 3, 4 }, { 4, 0 } }, "i64")
    local stats = strata.surrogate.cluster_stats(strata.tensor({ { 5, 1 }, { 0, 0 }, { 2, 2 } }, "i64"))
    local one = grid.concepts(members, train, nil, { scale = 1, stats = stats, clusters = { 2 } })
    local all = grid.concepts(members, train, nil, { scale = 1, stats = stats })
    assert.are.equal(0, #frames(all))
    assert.is_true(all:shape(1) > one:shape(1))
  end)

  it("explains misuse", function()
    assert.has_error(function() grid.similar(queries, train, strata.tensor({ { 2, 9 }, { 1, 1 } }, "i64")) end,
      "bad argument #3 to 'similar' (neighbours: entry [1, 2] is 9, outside 1..4)")
    assert.has_error(function() grid.similar(queries, train, nn, nil, { sacle = 2 }) end,
      "bad argument #5 to 'similar' (opts: unknown key 'sacle')")
    assert.has_error(function() grid.similar(queries, train, { indices = nn, queries = { 1 } }) end,
      "bad argument #3 to 'similar' (queries: 1 positions for 2 rows)")
    local ok, msg = pcall(grid.similar, queries, strata.zeros(4, 8, 8, 3), nn)
    assert.is_false(ok)
    assert.truthy(msg:find("training images must be u8", 1, true))
    local cv, err = grid.similar(queries, train, nn, "/nonexistent-dir/x.png")
    assert.is_nil(cv)
    assert.truthy(err:find("nonexistent", 1, true))
  end)

  local dir = os.getenv("STRATA_DATA")
  local have_cifar = dir and io.open(dir .. "/cifar-10-batches-bin/data_batch_1.bin", "rb")
  if have_cifar then have_cifar:close() end
  it("draws real CIFAR-10 images from datasets" .. (have_cifar and "" or " (STRATA_DATA missing: skipped)"), function()
    if not have_cifar then return end
    local data = strata.data.cifar10(dir .. "/cifar-10-batches-bin")
    local nn10 = strata.tensor({ { 1, 2, 3 }, { 50000, 4, 5 } }, "i64")
    local cv = grid.similar(data.test, data.train, nn10, nil, { title = "CIFAR-10" })
    -- 2 rows of 32x32 images at scale 3 with frames and captions
    assert.is_true(cv:shape(1) > 2 * 108 and cv:shape(2) > 4 * 108)
    assert.are.equal(2, #frames(cv))
    -- the first test image (a cat) fills the first frame, upscaled 3x
    local img = data.test:images(1, 1)
    local f = frames(cv)[1]
    for _, p in ipairs({ { 0, 0 }, { 31, 31 }, { 10, 20 } }) do
      for c = 1, 3 do
        assert.are.equal(img:get(1, p[1] + 1, p[2] + 1, c), cv:get(f.y + 6 + 3 * p[1] + 2, f.x + 6 + 3 * p[2] + 1, c))
      end
    end
  end)
end)
