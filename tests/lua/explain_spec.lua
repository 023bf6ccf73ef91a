-- `strata explain` end to end on a tiny configuration (300 training and 40
-- test images, two small layers, one epoch): exit code 0, the bundle with
-- metrics that parse and agree with the printed table, figures that load
-- as images; a second run resumes; bad arguments exit with code 2 and a
-- message naming the problem; --help documents every option.
local strata = require "strata"
local core = strata.core
local fixture = require "ac_fixture"
local missing = fixture.missing()
if missing then return pending(missing) end
local h = require "spec_helpers"

local exe = assert(os.getenv("STRATA_EXE"), "STRATA_EXE is not set (run through ctest)")
local work = fixture.tmpdir("explain_spec")
local data = fixture.cifar_dir

local q, read = h.quote, h.slurp

-- Runs strata explain with the arguments; returns exit code, stdout, stderr.
local function explain(args)
  local parts = { q(exe), "explain" }
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local cmd = table.concat(parts, " ") .. " >" .. q(work .. "/out.txt") .. " 2>" .. q(work .. "/err.txt")
  local _, _, code = os.execute("OPENBLAS_NUM_THREADS=1 " .. cmd)
  return code, read(work .. "/out.txt") or "", read(work .. "/err.txt") or ""
end

local config = work .. "/tiny.json"
do
  local f = assert(io.open(config, "w"))
  f:write(core.json_encode({ clustering = { filters = { 8, 8, 8, 4 }, update_interval = 5 }, seed = 3 }))
  f:close()
end

local out = work .. "/run"
local BASE = { "--model", fixture.model_path, "--data", data, "--out", out, "--config", config,
  "--layers", "activation_36:3,activation_54:4", "--train-limit", "300", "--test-limit", "40", "--epochs", "1",
  "--maxiter", "10", "--queries", "4", "--k", "5", "--bootstrap", "50", "--quiet" }

describe("strata explain", function()
  teardown(function() fixture.remove(work) end)

  local code, stdout, stderr = explain(BASE)

  it("runs end to end and writes the bundle", function()
    assert.are.equal(0, code, stderr)
    local m = assert(core.json_decode(read(out .. "/bundle/manifest.json")))
    local listed = {}
    for _, f in ipairs(m.files) do listed[f.path] = f end
    for _, name in ipairs({ "config.json", "metrics_test.json", "metrics_train.json", "summary.txt",
      "layer1.clustering.safetensors", "layer2.embeddings.npy", "features.npy", "figures/similar.png",
      "figures/weights.png", "figures/features_nn.png", "figures/concepts_first.png", "figures/concepts_last.png" }) do
      assert.is_truthy(listed[name], name)
    end
    local cfg = core.json_decode(read(out .. "/bundle/config.json"))
    assert.are.equal(3, cfg.seed)
    assert.are.equal(300, cfg.n_train)
    assert.are.equal(4, cfg.layers[2].dec.clusters)
    assert.are.same({ 8, 8, 8, 4 }, cfg.layers[1].dec.filters)
    assert.are.equal(1, cfg.layers[1].dec.epochs)
  end)

  it("writes metrics that parse and match the printed summary", function()
    local test = assert(core.json_decode(read(out .. "/bundle/metrics_test.json")))
    local train = assert(core.json_decode(read(out .. "/bundle/metrics_train.json")))
    assert.are.equal(40, test.n)
    assert.are.equal(300, train.n)
    for _, ev in ipairs({ test, train }) do
      for _, key in ipairs({ "baseline_accuracy", "accuracy", "fidelity" }) do
        local v = ev[key]
        assert.is_true(v.value >= 0 and v.value <= 1 and v.ci[1] <= v.value + 1e-12 and v.value <= v.ci[2] + 1e-12, key)
      end
      assert.are.equal(2, #ev.layers)
    end
    assert.is_truthy(stdout:find(("surrogate accuracy     %.4f"):format(test.accuracy.value), 1, true), stdout)
    assert.is_truthy(stdout:find(("fidelity               %.4f"):format(train.fidelity.value), 1, true), stdout)
    assert.is_truthy(read(out .. "/bundle/summary.txt"):find("== test ==", 1, true))
  end)

  it("draws figures that load as images of the expected layout", function()
    for _, name in ipairs({ "similar", "weights", "features_nn", "similar_predicted", "concepts_first", "concepts_last" }) do
      local img = assert(core.image_load(out .. "/bundle/figures/" .. name .. ".png"))
      assert.are.equal(3, img:shape()[3])
      assert.is_true(img:shape()[1] > 100 and img:shape()[2] > 100, name)
    end
    -- three blocks of 4 rows are taller than one block of 4 rows
    local one = core.image_load(out .. "/bundle/figures/similar.png")
    local three = core.image_load(out .. "/bundle/figures/weights.png")
    assert.is_true(three:shape()[1] > 2.5 * one:shape()[1])
  end)

  it("gives a bundle that strata.ac.load restores", function()
    local ac = assert(strata.ac.load(out .. "/bundle"))
    assert.are.equal(2, ac.L)
    local ds = assert(strata.data.cifar10(data))
    local pred = ac:predict(ds.test:slice(1, 5))
    assert.are.same({ 5 }, pred:shape())
  end)

  it("resumes: a second run reuses the work and gives the same metrics", function()
    local before = read(out .. "/bundle/metrics_test.json")
    local ckpt = core.sha256_file(out .. "/clustering/activation_54/checkpoint.safetensors")
    local code2, _, err2 = explain(BASE)
    assert.are.equal(0, code2, err2)
    assert.are.equal(before, read(out .. "/bundle/metrics_test.json"))
    assert.are.equal(ckpt, core.sha256_file(out .. "/clustering/activation_54/checkpoint.safetensors"))
  end)

  it("documents every option in --help", function()
    local c, text = explain({ "--help" })
    assert.are.equal(0, c)
    for _, opt in ipairs({ "--model", "--data", "--out", "--config", "--layers", "--clusters", "--epochs", "--maxiter",
      "--threads", "--posteriors", "--seed", "--train-limit", "--test-limit", "--no-train-metrics", "--queries", "--k",
      "--bootstrap", "--quiet", "--help" }) do
      assert.is_truthy(text:find(opt, 1, true), opt)
    end
  end)

  it("exits with code 2 and a clear message on bad arguments", function()
    local lua_config = work .. "/bad.lua"
    local f = assert(io.open(lua_config, "w"))
    f:write("return { layers = {}, epochz = 3 }")
    f:close()
    local function with(extra)
      local args = {}
      for i = 1, 6 do args[i] = BASE[i] end
      for _, a in ipairs(extra) do args[#args + 1] = a end
      return args
    end
    local cases = {
      { { "--model", fixture.model_path }, "--data is required" },
      { with({ "--bogus" }), "unknown option '--bogus'" },
      { with({ "--epochs" }), "--epochs needs a value" },
      { with({ "--epochs", "two" }), "--epochs: expected a non-negative integer, got 'two'" },
      { with({ "--posteriors", "votes" }), "--posteriors: truth or baseline" },
      { with({ "--threads", "0" }), "--threads: 1 to 64 expected, got 0" },
      { with({ "--layers", "activation_54:3,nosuch" }), "no tap 'nosuch'" },
      { with({ "--config", lua_config }), "unknown option 'epochz'" },
      { with({ "--config", work .. "/missing.json" }), "--config" },
      { with({ "--train-limit", "60000" }), "--train-limit: expected 1..50000" },
      { { "--model", work .. "/none.safetensors", "--data", data, "--out", out }, "--model" },
      { { "--model", fixture.model_path, "--data", work, "--out", out }, "neither CIFAR-10" },
      { with({ "stray" }), "unexpected argument 'stray'" },
    }
    for _, case in ipairs(cases) do
      local c, _, err = explain(case[1])
      assert.are.equal(2, c, table.concat(case[1], " ") .. ": " .. err)
      assert(err:find(case[2], 1, true), ("'%s' lacks '%s'"):format(err, case[2]))
      assert.is_truthy(err:find("--help", 1, true))
    end
  end)
end)
