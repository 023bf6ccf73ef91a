-- Saved explainers: a restored bundle gives bitwise the same predictions,
-- queries, concepts and metrics; saving is atomic (temporary directory,
-- manifest last, rename; a failed save leaves the old bundle); every kind
-- of file, corrupted, truncated, missing or consistently tampered with,
-- fails to load with a message naming it; loading runs no code.
local strata = require "strata"
local core = strata.core
local bundle = require "strata.bundle"
local fixture = require "ac_fixture"
local missing = fixture.missing()
if missing then return pending(missing) end

local F = fixture.fitted("bundle_spec")
local ac, net, train, test = F.ac, F.net, F.train, F.test
local x = test:slice(1, 10)
ac:evaluate(test, { record = "test", bootstrap = 20 })
ac:add_figure("concepts", strata.grid.concepts(ac:concepts(1, { k = 3 }), train, nil, { stats = ac:cluster_stats(1) }))
local path = F.dir .. "/bundle"
assert(ac:save(path))

local function sh(cmd) assert(os.execute(cmd), cmd) end
local function q(s) return "'" .. s .. "'" end

-- A scratch copy of the saved bundle.
local copies = 0
local function scratch()
  copies = copies + 1
  local dir = F.dir .. "/copy" .. copies
  sh("cp -r " .. q(path) .. " " .. q(dir))
  return dir
end

local function read(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write(p, s)
  local f = assert(io.open(p, "wb"))
  f:write(s)
  f:close()
end

-- Recomputes the manifest's sizes and checksums, as a tamperer would.
local function rehash(dir)
  local m = core.json_decode(read(dir .. "/manifest.json"))
  for _, f in ipairs(m.files) do f.sha256, f.bytes = core.sha256_file(dir .. "/" .. f.path) end
  write(dir .. "/manifest.json", core.json_encode(m, true))
end

local function load_fails(dir, ...)
  local b, err = strata.ac.load(dir, { net = net })
  assert.is_nil(b)
  for _, pattern in ipairs({ ... }) do
    assert(err:find(pattern, 1, true), ("message '%s' lacks '%s'"):format(err, pattern))
  end
  return err
end

local function listdir(dir)
  local p = io.popen("ls -a " .. q(dir))
  local out = {}
  for name in p:lines() do
    if name ~= "." and name ~= ".." then out[#out + 1] = name end
  end
  p:close()
  table.sort(out)
  return out
end

describe("bundle", function()
  teardown(function() fixture.remove(F.dir) end)

  it("restores an explainer that gives bitwise the same answers", function()
    local b = assert(strata.ac.load(path, { net = net }))
    assert.is_true(b:predict_proba(x):equal(ac:predict_proba(x)))
    assert.is_true(b:predict_proba(x, { weights = { 3, 1 } }):equal(ac:predict_proba(x, { weights = { 3, 1 } })))
    assert.is_true(b:predict(x):equal(ac:predict(x)))
    for l = 1, 2 do assert.is_true(b:embed(x)[l]:equal(ac:embed(x)[l])) end
    for _, opts in ipairs({ { k = 7 }, { k = 5, weights = { 0, 1 } }, { k = 4, filter = "predicted" } }) do
      local i1, d1 = ac:query(x, opts)
      local i2, d2 = b:query(x, opts)
      assert.is_true(i1:equal(i2) and d1:equal(d2))
    end
    local f1, g1 = ac:query_features(x, { k = 5 })
    local f2, g2 = b:query_features(x, { k = 5 })
    assert.is_true(f1:equal(f2) and g1:equal(g2))
    for l = 1, 2 do
      local c1, e1 = ac:concepts(l, { k = 6 })
      local c2, e2 = b:concepts(l, { k = 6 })
      assert.is_true(c1:equal(c2) and e1:equal(e2))
      assert.are.same(ac:cluster_stats(l), b:cluster_stats(l))
    end
    assert.are.equal(ac:evaluate(test, { bootstrap = 30 }):json(), b:evaluate(test, { bootstrap = 30 }):json())
    assert.are.equal(ac:evaluate("train", { bootstrap = 30 }):json(), b:evaluate("train", { bootstrap = 30 }):json())
    assert.are.equal(ac.metrics.test, b.metrics.test)
  end)

  it("finds the model from the recorded path when no net is given", function()
    local b = assert(strata.ac.load(path))
    assert.is_true(b:predict(x):equal(ac:predict(x)))
  end)

  it("lists every file with its size and checksum, metrics and figures included", function()
    local m = core.json_decode(read(path .. "/manifest.json"))
    assert.are.equal("strata.bundle/1", m.format)
    assert.are.equal("strata.ac/1", m.kind)
    local listed = {}
    for _, f in ipairs(m.files) do
      listed[f.path] = true
      local hex, size = core.sha256_file(path .. "/" .. f.path)
      assert.are.equal(hex, f.sha256)
      assert.are.equal(size, f.bytes)
    end
    for _, want in ipairs({ "config.json", "layer1.clustering.safetensors", "layer2.embeddings.npy", "layer2.counts.npy",
      "train_labels.npy", "train_pred.npy", "features.npy", "metrics_test.json", "summary.txt", "figures/concepts.png" }) do
      assert.is_true(listed[want], want)
    end
    assert.is_truthy(core.image_load(path .. "/figures/concepts.png"))
  end)

  it("replaces an old bundle atomically and leaves no temporary directories", function()
    local b = assert(strata.ac.load(path, { net = net }))
    local target = F.dir .. "/resaved"
    assert(b:save(target))
    assert(b:save(target)) -- over the first one
    assert.are.same({ "bundle", "resaved" }, (function()
      local names = {}
      for _, n in ipairs(listdir(F.dir)) do
        if n:match("^bundle") or n:match("^resaved") then names[#names + 1] = n end
      end
      return names
    end)())
    local again = assert(strata.ac.load(target, { net = net }))
    assert.is_true(again:predict_proba(x):equal(ac:predict_proba(x)))
    assert.are.equal(ac.metrics.test, again.metrics.test)
    assert.are.equal(read(path .. "/figures/concepts.png"), read(target .. "/figures/concepts.png"))
  end)

  it("never replaces a directory that is not a bundle", function()
    local other = F.dir .. "/notabundle"
    strata.ac.mkdirs(other)
    write(other .. "/precious.txt", "keep me")
    local ok, err = pcall(ac.save, ac, other)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):match("never replaced"))
    assert.are.equal("keep me", read(other .. "/precious.txt"))
    assert.are.same({ "precious.txt" }, listdir(other))
  end)

  it("keeps the old bundle when a save fails midway", function()
    local target = F.dir .. "/failing"
    assert(ac:save(target))
    local before = read(target .. "/manifest.json")
    local saved = ac.checkpoints[2]
    ac.checkpoints[2] = F.dir .. "/no-such-checkpoint"
    local ok, err = pcall(ac.save, ac, target)
    ac.checkpoints[2] = saved
    assert.is_false(ok)
    assert.is_truthy(tostring(err):match("layer2.clustering.safetensors"))
    assert.are.equal(before, read(target .. "/manifest.json"))
    assert(strata.ac.load(target, { net = net }))
    for _, n in ipairs(listdir(F.dir)) do assert.is_falsy(n:match("%.tmp%-") or n:match("%.old%-"), n) end
  end)

  it("names every corrupted, truncated or missing file", function()
    local m = core.json_decode(read(path .. "/manifest.json"))
    for _, f in ipairs(m.files) do
      local dir = scratch()
      local p = dir .. "/" .. f.path
      local s = read(p)
      local at = #s // 2 + 1
      write(p, s:sub(1, at - 1) .. string.char((s:byte(at) + 1) % 256) .. s:sub(at + 1))
      load_fails(dir, f.path, "checksum")
      write(p, s:sub(1, #s - 1))
      load_fails(dir, f.path, "bytes")
      os.remove(p)
      load_fails(dir, f.path, "missing")
      fixture.remove(dir)
    end
  end)

  it("rejects consistently tampered files by their content, naming them", function()
    local function tampered(file, change, ...)
      local dir = scratch()
      change(dir .. "/" .. file, dir)
      rehash(dir)
      load_fails(dir, ...)
      fixture.remove(dir)
    end
    local function json_edit(edit)
      return function(p)
        local v = core.json_decode(read(p))
        edit(v)
        write(p, core.json_encode(v, true))
      end
    end
    tampered("config.json", json_edit(function(c) c.run_this = "os.exit(3)" end), "config.json", "unknown key 'run_this'")
    tampered("config.json", json_edit(function(c) c.layers[1].dec.clusters = "3" end), "config.json", "clusters")
    tampered("config.json", json_edit(function(c) c.layers[2].dec.kmeans_tolerance = 1 end), "config.json", "kmeans_tolerance")
    tampered("config.json", json_edit(function(c) c.layers[1].dec.clusters = 4 end), "layer1.clustering.safetensors")
    tampered("config.json", json_edit(function(c) c.n_train = 239 end), "layer1.embeddings.npy", "[239,4]")
    tampered("config.json", json_edit(function(c) c.format = "strata.ac/0" end), "config.json", "format")
    tampered("config.json", function(p) write(p, "{\"format\": ") end, "config.json", "json")
    tampered("layer1.clustering.safetensors", function(p) write(p, string.rep("\0", 64)) end, "layer1.clustering.safetensors")
    tampered("layer2.embeddings.npy", function(p) assert(core.save_npy(p, strata.zeros(240, 5))) end,
      "layer2.embeddings.npy", "expected f32 [240,4]")
    tampered("layer2.embeddings.npy", function(p) write(p, "not an array") end, "layer2.embeddings.npy")
    tampered("layer1.counts.npy", function(p) assert(core.save_npy(p, strata.zeros(3, 10))) end,
      "layer1.counts.npy", "expected i64")
    tampered("layer1.counts.npy", function(p) assert(core.save_npy(p, strata.ones(3, 10, "i64"))) end,
      "layer1.counts.npy", "sum to 30")
    tampered("train_labels.npy", function(p) assert(core.save_npy(p, strata.zeros(200, "i64"))) end,
      "train_labels.npy", "[240]")
    tampered("features.npy", function(p) assert(core.save_npy(p, strata.zeros(240, "f32"))) end, "features.npy")
  end)

  it("rejects a damaged manifest, unsafe paths and duplicates", function()
    local function with_manifest(edit, ...)
      local dir = scratch()
      local m = core.json_decode(read(dir .. "/manifest.json"))
      local text = edit(m)
      write(dir .. "/manifest.json", text or core.json_encode(m, true))
      load_fails(dir, ...)
      fixture.remove(dir)
    end
    with_manifest(function() return "{not json" end, "manifest.json", "json")
    with_manifest(function(m) m.format = "zip" end, "manifest.json", "format")
    with_manifest(function(m) m.kind = "strata.other/1" end, "manifest.json", "kind")
    with_manifest(function(m) m.files[1].path = "../../etc/passwd" end, "manifest.json", "not a plain file name")
    with_manifest(function(m) m.files[1].path = "/etc/passwd" end, "manifest.json", "not a plain file name")
    with_manifest(function(m) m.files[2] = m.files[1] end, "manifest.json", "listed twice")
    with_manifest(function(m) m.files[1].bytes = "12" end, "manifest.json", "bytes")
    with_manifest(function(m)
      for i, f in ipairs(m.files) do
        if f.path == "config.json" then table.remove(m.files, i) end
      end
    end, "config.json", "not in the manifest")
    local dir = scratch()
    os.remove(dir .. "/manifest.json")
    load_fails(dir, "manifest.json", "missing")
    fixture.remove(dir)
    local _, err = strata.ac.load(F.dir .. "/nothing-here")
    assert.is_truthy(err:match("manifest.json"))
  end)

  it("loads without running code", function()
    local calls = 0
    local saved = { load = load, loadfile = loadfile, dofile = dofile }
    local function spy(name)
      return function(...)
        calls = calls + 1
        return saved[name](...)
      end
    end
    _G.load, _G.loadfile, _G.dofile = spy("load"), spy("loadfile"), spy("dofile")
    local ok, b = pcall(strata.ac.load, path, { net = net })
    _G.load, _G.loadfile, _G.dofile = saved.load, saved.loadfile, saved.dofile
    assert.is_true(ok and b ~= nil)
    assert.are.equal(0, calls)
  end)

  it("refuses a net that is not the bundle's", function()
    local other = assert(strata.model.load((os.getenv("STRATA_FIXTURES") or "../fixtures") .. "/tiny_cifar_a.safetensors"))
    local b, err = strata.ac.load(path, { net = other })
    assert.is_nil(b)
    assert.is_truthy(err:match("is not the bundle's"))
  end)

  it("writers clean up after an abort", function()
    local w = assert(bundle.writer(F.dir .. "/aborted", "strata.test/1"))
    w:write("a.txt", "x")
    w:json("sub/b.json", { 1, 2 })
    w:abort()
    for _, n in ipairs(listdir(F.dir)) do assert.is_falsy(n:match("^aborted"), n) end
    assert.has_error(function() w:file("../x") end)
  end)
end)
