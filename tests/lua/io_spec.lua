-- .npy and safetensors from Lua: round trips, files cross-checked with
-- numpy (an independent reader and writer), nil-plus-message for bad
-- files, and the real ResNet-56 weights when STRATA_DATA has them.
local strata = require "strata"
local h = require "spec_helpers"

local PYTHON = "/usr/bin/python3"

local function have_numpy()
  local ok = os.execute(PYTHON .. " -c 'import numpy' 2>/dev/null")
  return ok == true
end

local dir

-- Runs a Python snippet (from a file, so any quoting works) with string
-- arguments; returns its stdout.
local function python(code, ...)
  local script = dir .. "/snippet.py"
  h.write(script, code)
  local args = {}
  for i, a in ipairs({ ... }) do args[i] = h.quote(a) end
  local p = assert(io.popen(PYTHON .. " " .. script .. " " .. table.concat(args, " ")))
  local out = p:read("a")
  assert(p:close(), "python failed: " .. code)
  return out
end

setup(function() dir = h.tmpdir() end)
teardown(function() h.rmdir(dir) end)

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

describe("npy", function()
  it("round-trips every dtype", function()
    for _, dtype in ipairs({ "f32", "f64", "i32", "i64", "u8" }) do
      local t = strata.tensor({ { 1, 2, 3 }, { 4, 5, 250 } }, dtype)
      local path = dir .. "/rt_" .. dtype .. ".npy"
      assert.is_true(strata.save_npy(path, t))
      local back = assert(strata.load_npy(path))
      assert.are.equal(dtype, back:dtype())
      assert.are.same(t:totable(), back:totable())
      local mapped = assert(strata.map_npy(path))
      assert.are.same(t:totable(), mapped:totable())
    end
  end)

  it("saves strided views as their values", function()
    local t = strata.arange(12):reshape(3, 4):transpose():slice(1, 2, 3)
    local path = dir .. "/view.npy"
    assert.is_true(strata.save_npy(path, t))
    assert.are.same(t:totable(), strata.load_npy(path):totable())
  end)

  it("agrees with numpy in both directions", function()
    if not have_numpy() then
      pending("numpy not installed for " .. PYTHON)
      return
    end
    local ours = dir .. "/ours.npy"
    strata.save_npy(ours, strata.tensor({ { 1.5, -2 }, { 3, 4.25 } }, "f64"))
    assert.are.equal("float64 (2, 2) [1.5, -2.0, 3.0, 4.25]",
      python("import numpy as np, sys; a = np.load(sys.argv[1]); print(a.dtype, a.shape, a.ravel().tolist())", ours)
        :gsub("%s+$", ""))
    local theirs = dir .. "/theirs.npy"
    python("import numpy as np, sys; np.save(sys.argv[1], (np.arange(24, dtype=np.float32) / 4).reshape(2, 3, 4))", theirs)
    local t = assert(strata.load_npy(theirs))
    assert.are.same({ 2, 3, 4 }, t:shape())
    assert.are.equal("f32", t:dtype())
    assert.are.equal(23 / 4, t:get(2, 3, 4))
    assert.are.equal(5 / 4, t:get(1, 2, 2))
  end)

  it("streams rows with a writer", function()
    local path = dir .. "/stream.npy"
    local w = assert(strata.npy_writer(path, "f32", { 5, 2 }))
    w:append(strata.tensor { { 1, 2 }, { 3, 4 } })
    w:append(strata.tensor { 5, 6 })
    w:append(strata.tensor { { 7, 8 }, { 9, 10 } })
    assert.is_true(w:close())
    assert.are.same({ { 1, 2 }, { 3, 4 }, { 5, 6 }, { 7, 8 }, { 9, 10 } }, strata.load_npy(path):totable())
    assert.has_error(function() w:append(strata.zeros(2)) end)
  end)

  it("a writer dropped before close leaves no file", function()
    local path = dir .. "/dropped.npy"
    do
      local w <close> = assert(strata.npy_writer(path, "f64", { 3 }))
      w:append(strata.tensor({ 1 }, "f64"))
    end
    collectgarbage()
    assert.is_false(exists(path))
    local w = assert(strata.npy_writer(path, "f64", { 3 }))
    w:append(strata.tensor({ 1 }, "f64"))
    local ok, msg = w:close()
    assert.is_nil(ok)
    assert.truthy(msg:find("row", 1, true))
    assert.is_false(exists(path))
  end)

  it("returns nil and a message for missing or malformed files", function()
    local t, msg = strata.load_npy(dir .. "/missing.npy")
    assert.is_nil(t)
    assert.truthy(msg:find("missing.npy", 1, true))
    local bad = dir .. "/bad.npy"
    local f = assert(io.open(bad, "wb"))
    f:write("\147NUMPY\1\0garbage")
    f:close()
    t, msg = strata.load_npy(bad)
    assert.is_nil(t)
    assert.is_string(msg)
    t, msg = strata.map_npy(bad)
    assert.is_nil(t)
    assert.is_string(msg)
    local ok
    ok, msg = strata.save_npy(dir .. "/no/such/dir/x.npy", strata.zeros(1))
    assert.is_nil(ok)
    assert.is_string(msg)
  end)

  it("raises for misuse", function()
    assert.has_error(function() strata.save_npy(dir .. "/x.npy", "not a tensor") end)
    assert.has_error(function() strata.load_npy() end)
  end)
end)

describe("safetensors", function()
  local path
  before_each(function()
    path = dir .. "/weights.safetensors"
    assert.is_true(strata.save_safetensors(path, {
      ["conv.weight"] = strata.arange(24):reshape(2, 3, 4),
      ["fc.bias"] = strata.tensor({ -1, 0.5 }, "f64"),
      steps = strata.tensor({ 7 }, "i64"),
    }, { arch = "tiny", version = "1" }))
  end)

  it("loads back every tensor and the metadata", function()
    local tensors, meta = assert(strata.load_safetensors(path))
    assert.are.same({ arch = "tiny", version = "1" }, meta)
    assert.are.same(strata.arange(24):reshape(2, 3, 4):totable(), tensors["conv.weight"]:totable())
    assert.are.equal("f64", tensors["fc.bias"]:dtype())
    assert.are.same({ -1, 0.5 }, tensors["fc.bias"]:totable())
    assert.are.same({ 7 }, tensors.steps:totable())
    local as64 = assert(strata.load_safetensors(path, "f64"))
    assert.are.equal("f64", as64["conv.weight"]:dtype())
  end)

  it("opens a file for names, shapes and single tensors", function()
    local f <close> = assert(strata.open_safetensors(path))
    assert.are.same({ "conv.weight", "fc.bias", "steps" }, f:names()) -- saved in name order
    assert.are.same({ dtype = "F32", shape = { 2, 3, 4 } }, f:info("conv.weight"))
    assert.are.equal("tiny", f:metadata().arch)
    local b = assert(f:load("fc.bias", "f32"))
    assert.are.equal("f32", b:dtype())
    local t, msg = f:load("nope")
    assert.is_nil(t)
    assert.truthy(msg:find("nope", 1, true))
    f:close()
    assert.has_error(function() f:names() end)
  end)

  it("tensors outlive their file object", function()
    local w
    do
      local f <close> = assert(strata.open_safetensors(path))
      w = f:load("conv.weight")
    end
    collectgarbage()
    assert.are.equal(24, w:get(2, 3, 4))
  end)

  it("writes the layout the format specifies (checked by a separate reader)", function()
    if not have_numpy() then
      pending("numpy not installed for " .. PYTHON)
      return
    end
    local out = python([==[
import json, struct, sys, numpy as np
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
head = json.loads(raw[8:8 + n])
e = head['conv.weight']
a = np.frombuffer(raw[8 + n + e['data_offsets'][0]:8 + n + e['data_offsets'][1]], dtype='<f4').reshape(e['shape'])
print(e['dtype'], a.shape, float(a[1, 2, 3]), head['__metadata__']['arch'])
]==], path)
    assert.are.equal("F32 (2, 3, 4) 24.0 tiny", (out:gsub("%s+$", "")))
  end)

  it("returns nil and a message for bad files", function()
    local f, msg = strata.open_safetensors(dir .. "/missing.safetensors")
    assert.is_nil(f)
    assert.truthy(msg:find("missing.safetensors", 1, true))
    local bad = dir .. "/bad.safetensors"
    local h = assert(io.open(bad, "wb"))
    h:write(string.pack("<I8", 1000), "{}")
    h:close()
    local t
    t, msg = strata.load_safetensors(bad)
    assert.is_nil(t)
    assert.is_string(msg)
  end)

  it("raises for misuse", function()
    assert.has_error(function() strata.save_safetensors(path, { x = 1 }) end,
      "bad argument #2 to 'save_safetensors' (tensors: 'x' is a number, not a tensor)")
  end)

  it("reads the real ResNet-56 weights", function()
    local data = os.getenv("STRATA_DATA")
    local file = data and data .. "/resnet-cifar10-weights/resnet56.safetensors"
    if not (file and exists(file)) then
      pending("STRATA_DATA does not hold resnet-cifar10-weights/resnet56.safetensors")
      return
    end
    local f <close> = assert(strata.open_safetensors(file))
    local names = f:names()
    assert.is_true(#names > 100)
    local total = 0
    for _, name in ipairs(names) do
      local t = assert(f:load(name))
      assert.are.same(f:info(name).shape, t:shape())
      total = total + t:numel()
    end
    -- ResNet-56 for CIFAR-10 has about 0.85 M parameters
    assert.is_true(total > 800000 and total < 900000, "parameters: " .. total)
  end)
end)
