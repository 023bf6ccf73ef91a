-- strata.model: loading the tiny and the shared ResNets, taps, printing,
-- forward with taps (copies), predict, and the errors of misuse.
local strata = require "strata"

local fixtures = os.getenv("STRATA_FIXTURES") or "../fixtures"
local data_dir = os.getenv("STRATA_DATA") or "../../../shared/datasets"
local tiny = fixtures .. "/tiny_cifar_a.safetensors"

describe("strata.model", function()
  it("loads a model, lists its taps with shapes and prints a summary", function()
    local net = assert(strata.model.load(tiny))
    local taps = net:taps()
    local byname = {}
    for _, t in ipairs(taps) do byname[t.name] = t end
    assert.are.same({ 10, 10, 4 }, byname.stem.shape)
    assert.are.same({ 5, 5, 8 }, byname.layer2.shape)
    assert.are.equal("layer2.1", byname.layer2.layer)
    assert.are.same({ 16 }, byname.pool.shape)
    assert.are.equal("stem", byname.activation.layer)
    local s = tostring(net)
    assert.truthy(s:find("tiny_cifar_a: input 10x10x3, 5 classes", 1, true))
    assert.truthy(s:find("activation_12=layer3.1", 1, true))
    assert.are.same({ "a", "b", "c", "d", "e" }, net:class_names())
    assert.are.same({ 10, 10, 3 }, { net:input_shape() })
  end)

  it("returns nil and a message for a missing or broken file", function()
    local net, err = strata.model.load("/nonexistent/model.safetensors")
    assert.is_nil(net)
    assert.truthy(err:find("model.safetensors", 1, true))
    assert.has_error(function() strata.model.load(42) end,
      "bad argument #1 to 'load' (path: string expected, got number)")
  end)

  it("runs a batch with taps that stay valid across forwards", function()
    local net = assert(strata.model.load(tiny))
    local x = strata.randn(strata.rng(1), 2, 10, 10, 3)
    local logits, taps = net:forward(x, { "layer1", "activation_8" })
    assert.are.same({ 2, 5 }, logits:shape())
    assert.are.same({ 2, 10, 10, 4 }, taps.layer1:shape())
    assert.are.same({ 2, 5, 5, 8 }, taps.activation_8:shape())
    local kept = taps.layer1:clone()
    net:forward(strata.randn(strata.rng(2), 2, 10, 10, 3), { "layer1" })
    assert.is_true(kept:equal(taps.layer1))
    -- predict is the arg-max of the logits (class ids from 0)
    local labels = net:predict(x)
    for i = 1, 2 do
      local best, bv = 0, -math.huge
      for k = 1, 5 do
        if logits:get(i, k) > bv then best, bv = k - 1, logits:get(i, k) end
      end
      assert.are.equal(best, labels:get(i))
    end
    assert.has_error(function() net:forward(x, { "nope" }) end, "net: no layer or alias is named 'nope'")
    assert.has_error(function() net:forward(strata.zeros(1, 9, 10, 3)) end)
  end)

  it("reproduces PyTorch's first ten CIFAR-10 test predictions with the shared ResNet-56", function()
    local path = data_dir .. "/resnet-cifar10-weights/resnet56.safetensors"
    local f = io.open(path, "rb")
    if not f then
      print("SKIP: " .. path .. " is missing (set STRATA_DATA)")
      return
    end
    f:close()
    local net = assert(strata.model.load(path))
    assert.truthy(tostring(net):find("activation_54=layer3.8", 1, true))
    local data = assert(strata.data.cifar10(data_dir .. "/cifar-10-batches-bin"))
    local x = data.test:floats(1, 10, net)
    local want = { 3, 8, 8, 0, 6, 6, 1, 6, 3, 1 } -- README.txt: PyTorch's first 10 predictions
    local got = net:predict(x)
    for i = 1, 10 do assert.are.equal(want[i], got:get(i)) end
  end)
end)
