-- strata.data: CIFAR files written here (CIFAR-10 and CIFAR-100), the shared
-- CIFAR-10 folder, slicing, seeded shuffling, batches, normalised floats and
-- extraction through a tiny net.
local strata = require "strata"

local fixtures = os.getenv("STRATA_FIXTURES") or "../fixtures"
local data_dir = os.getenv("STRATA_DATA") or "../../../shared/datasets"

-- n records; record r has label (first + r) % 10 and every pixel of plane
-- p equal to (r * 3 + p) % 256.
local function write_cifar(path, n, first, cifar100)
  local f = assert(io.open(path, "wb"))
  for r = 0, n - 1 do
    if cifar100 then f:write(string.char((first + r) % 20)) end
    f:write(string.char((first + r) % 10))
    for p = 0, 2 do f:write(string.char((r * 3 + p) % 256):rep(1024)) end
  end
  f:close()
end

describe("strata.data", function()
  local tmp = os.tmpname()
  os.remove(tmp)
  local a, b = tmp .. "_a.bin", tmp .. "_b.bin"
  write_cifar(a, 6, 2)
  write_cifar(b, 4, 0, true)

  after_each(function() collectgarbage() end)

  it("reads CIFAR-10 records as NHWC uint8 with labels, slices and batches", function()
    local ds = assert(strata.data.cifar_files(a))
    assert.are.equal(6, #ds)
    assert.are.same({ 32, 32, 3 }, { ds:shape() })
    local img, label = ds:image(2)
    assert.are.same({ 32, 32, 3 }, img:shape())
    assert.are.same({ 3, 4, 5 }, { img:get(1, 1, 1), img:get(1, 1, 2), img:get(32, 32, 3) })
    assert.are.equal(3, label)
    local s = ds:slice(2, -2)
    assert.are.equal(4, #s)
    assert.are.same({ 3, 4, 5, 6 }, s:labels():totable())
    assert.are.same({ 5, 6 }, s:slice(3):labels():totable())
    local seen = {}
    for x, labels, first in ds:batches(4) do
      seen[#seen + 1] = { first, x:shape()[1], labels:get(1) }
    end
    assert.are.same({ { 1, 4, 2 }, { 5, 2, 6 } }, seen)
    assert.has_error(function() ds:slice(0, 3) end)
    assert.has_error(function() ds:batches(0) end, "bad argument #1 to 'batches' (size: positive integer expected)")
  end)

  it("shuffles reproducibly by seed without losing images", function()
    local ds = assert(strata.data.cifar_files(a))
    local s1, s2, s3 = ds:shuffle(7):labels():totable(), ds:shuffle(7):labels():totable(), ds:shuffle(8)
    assert.are.same(s1, s2)
    table.sort(s1)
    assert.are.same({ 2, 3, 4, 5, 6, 7 }, s1)
    -- a shuffled slice holds exactly the slice's images
    local sub = ds:slice(2, 4):shuffle(3):labels():totable()
    table.sort(sub)
    assert.are.same({ 3, 4, 5 }, sub)
    assert.are.equal(6, #s3)
  end)

  it("reads CIFAR-100 fine and coarse labels", function()
    local ds = assert(strata.data.cifar_files(b, 100))
    assert.are.equal(4, #ds)
    assert.are.equal(100, ds:class_count())
    assert.are.equal(20, ds:class_count(true))
    local _, fine, coarse = ds:read(1, 4)
    assert.are.same({ 0, 1, 2, 3 }, fine:totable())
    assert.are.same({ 0, 1, 2, 3 }, coarse:totable())
  end)

  it("reports bad files as nil and a message", function()
    local ds, err = strata.data.cifar_files(b) -- CIFAR-100 records read as CIFAR-10
    assert.is_nil(ds)
    assert.truthy(err:find("CIFAR-100 file?", 1, true))
    local d2, err2 = strata.data.cifar10("/nonexistent")
    assert.is_nil(d2)
    assert.truthy(err2:find("/nonexistent/data_batch_1.bin", 1, true))
  end)

  it("normalises batches for a net and extracts taps in memory", function()
    local net = assert(strata.model.load(fixtures .. "/tiny_cifar_b.safetensors"))
    local ds = assert(strata.data.cifar_files(a))
    -- the tiny net takes 12x12 images: a size mismatch is an error
    assert.has_error(function() ds:extract(net, { taps = { "pool" }, in_memory = true }) end)
    assert.has_error(function() ds:extract(net, { tapz = {} }) end, "bad argument #2 to 'extract' (unknown option 'tapz')")
  end)

  it("loads an image folder with masks, resized, with class names from the folders", function()
    local root = tmp .. "_folder"
    os.execute(("mkdir -p '%s/img/b_dog' '%s/img/a_cat' '%s/mask/a_cat' '%s/mask/b_dog'"):format(root, root, root, root))
    local function solid(h, w, c, v) return strata.full({ h, w, c }, v, "u8") end
    strata.core.image_save_png(root .. "/img/a_cat/x.png", solid(8, 8, 3, 40))
    strata.core.image_save_png(root .. "/img/a_cat/y.png", solid(4, 4, 3, 90))
    strata.core.image_save_png(root .. "/img/b_dog/z.png", solid(2, 6, 1, 200))
    strata.core.image_save_png(root .. "/mask/a_cat/x.png", solid(8, 8, 1, 255))
    strata.core.image_save_png(root .. "/mask/a_cat/y.png", solid(4, 4, 1, 0))
    strata.core.image_save_png(root .. "/mask/b_dog/z.png", solid(2, 6, 1, 7))
    local ds = assert(strata.data.imagefolder(root .. "/img", { size = { 4, 4 }, masks = root .. "/mask" }))
    assert.are.equal(3, #ds)
    assert.are.same({ "a_cat", "b_dog" }, ds:label_names())
    assert.are.same({ 0, 0, 1 }, ds:labels():totable())
    local images = ds:images()
    assert.are.same({ 3, 4, 4, 3 }, images:shape())
    assert.are.same({ 40, 90, 200, 200 }, { images:get(1, 1, 1, 1), images:get(2, 4, 4, 3), images:get(3, 2, 2, 1),
      images:get(3, 2, 2, 3) })
    assert.are.same({ 255, 0, 7 }, { ds:masks():get(1, 1, 1), ds:masks():get(2, 3, 3), ds:masks():get(3, 4, 4) })
    local img = assert(strata.core.image_load(root .. "/img/b_dog/z.png", 3))
    assert.are.same({ 2, 6, 3 }, img:shape())
    local none, err = strata.data.imagefolder(root .. "/nowhere", { size = { 4, 4 } })
    assert.is_nil(none)
    assert.truthy(err:find("nowhere", 1, true))
    assert.has_error(function() strata.data.imagefolder(root .. "/img", { size = { 4, 4 }, colour = 1 }) end)
    os.execute(("rm -rf '%s'"):format(root))
  end)

  it("loads the shared CIFAR-10 folder with its class names and extracts through ResNet-56", function()
    local dir = data_dir .. "/cifar-10-batches-bin"
    local model = data_dir .. "/resnet-cifar10-weights/resnet56.safetensors"
    local f = io.open(model, "rb")
    if not f then
      print("SKIP: shared data missing under " .. data_dir)
      return
    end
    f:close()
    local data = assert(strata.data.cifar10(dir))
    assert.are.equal(50000, #data.train)
    assert.are.equal(1000, #data.test)
    assert.are.equal("airplane", data.test:label_names()[1])
    assert.are.same({ 3, 8, 8, 0, 6 }, data.test:labels(1, 5):totable())
    local net = assert(strata.model.load(model))
    local part = data.test:slice(1, 20)
    local r = part:extract(net, { taps = { "activation_18", "pool" }, batch = 8, in_memory = true, quiet = true })
    assert.are.same({ 20, 32, 32, 16 }, r.activation_18:shape())
    assert.are.same({ 20, 64 }, r.pool:shape())
    assert.are.same(part:labels():totable(), r.labels:totable())
    -- the same numbers as a direct forward
    local logits = net:forward((part:floats(1, 20, net)))
    assert.is_true(logits:allclose(r.logits, 1e-4, 1e-4)) -- batch sizes differ: GEMM blocking differs
    local calls = 0
    part:extract(net, { batch = 8, progress = function(done, total)
      calls = calls + 1
      assert.are.equal(20, total)
    end })
    assert.are.equal(3, calls)
    assert.has_error(function()
      part:extract(net, { batch = 8, progress = function() error("stop here") end })
    end)
  end)

  teardown(function()
    os.remove(a)
    os.remove(b)
  end)
end)
