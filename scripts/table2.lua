--- The paper's Table 2 on real data (docs/results-table2.md): the Table 1
-- configuration (activation, activation_18, activation_36, activation_54;
-- 15 clusters each, the default autoencoder) fitted on all 50,000 CIFAR-10
-- training images of the shared ResNet-56, evaluated on the 1,000 lossless
-- test images and on the training set.
--
--   strata scripts/table2.lua --settings quick|paper [--out DIR] [--data DIR]
--          [--threads T (default: every core)] [--seed S] [--bootstrap B] [--train-limit N]
--
-- quick: the reference's defaults, 3 pretraining epochs and 280 clustering
-- iterations; paper: the notebook's 15 epochs and 980 iterations. --out
-- (default work/table2-<settings>) holds the activations, checkpoints (a
-- rerun resumes), the bundle with figures, and table2.json: the metrics with
-- intervals, per-layer numbers, wall and CPU times and the load average.
-- scripts/table2.sh runs it under /usr/bin/time -v for the peak memory.
local strata = require "strata"
local explain = require "strata.explain"

local SETTINGS = { quick = { epochs = 3, maxiter = 280 }, paper = { epochs = 15, maxiter = 980 } }

local o = { seed = 1, threads = explain.default_threads(), bootstrap = 1000 }
local i = 1
while i <= #arg do
  local key = arg[i]:match("^%-%-([%w%-]+)$")
  local v = arg[i + 1]
  if not key or v == nil then error("usage: strata scripts/table2.lua --settings quick|paper [--out DIR] ...", 0) end
  o[key] = math.tointeger(tonumber(v)) or v
  i = i + 2
end
local s = SETTINGS[o.settings] or error("--settings: quick or paper", 0)
local data_dir = o.data or os.getenv("STRATA_DATA") or "../shared/datasets"
local out = o.out or ("work/table2-" .. o.settings)

local function loadavg()
  local f = io.open("/proc/loadavg")
  if not f then return nil end
  local l = f:read("l")
  f:close()
  return l
end

local function now() return os.time(), os.clock() end
local function since(w, c)
  local w2, c2 = now()
  return { wall = w2 - w, cpu = c2 - c }
end

local report = { settings = o.settings, epochs = s.epochs, maxiter = s.maxiter, seed = o.seed, threads = o.threads,
  started = os.date("!%Y-%m-%dT%H:%M:%SZ"), load_start = loadavg(), timings = {} }
local w0, c0 = now()
local net = assert(strata.model.load(data_dir .. "/resnet-cifar10-weights/resnet56.safetensors"))
net:set_threads(o.threads) -- the forward passes (extraction, test set) use the threads too
local data = assert(strata.data.cifar10(data_dir .. "/cifar-10-batches-bin"))
local train, test = data.train, data.test
if o["train-limit"] then train = train:slice(1, o["train-limit"]) end
report.n_train, report.n_test = #train, #test

local ac = strata.ac.new { net = net, model = data_dir .. "/resnet-cifar10-weights/resnet56.safetensors", dir = out,
  seed = o.seed, layers = strata.ac.TABLE1 }
ac:fit(train, { epochs = s.epochs, maxiter = s.maxiter, cores = o.threads })
report.timings.fit = since(w0, c0)
report.timings.extract_wall = ac.timings.extract
report.timings.layers_wall = ac.timings.layers

local metrics = {}
for _, part in ipairs({ "test", "train" }) do
  local w, c = now()
  local ev = ac:evaluate(part == "test" and test or "train", { record = part, bootstrap = o.bootstrap })
  report.timings["evaluate_" .. part] = since(w, c)
  metrics[part] = ev:totable()
  io.stdout:write("== ", part, " ==\n", ev:summary(), "\n")
end
local w, c = now()
explain.figures(ac, train, test, { k = 10, queries = 10 })
report.timings.figures = since(w, c)
w, c = now()
report.bundle = assert(ac:save(out .. "/bundle"))
report.timings.save = since(w, c)
report.timings.total = since(w0, c0)
report.load_end = loadavg()
report.issues = strata.surrogate.report(ac.surrogate)

local function rate(m, key) return { value = m[key], ci = m[key .. "_ci"] } end
report.metrics = {}
for part, m in pairs(metrics) do
  local layers = {}
  for l, row in ipairs(m.layers) do layers[l] = { name = ac.config.layers[l].tap, accuracy = row.accuracy, fidelity = row.fidelity } end
  report.metrics[part] = { n = m.n, baseline_accuracy = rate(m, "baseline_accuracy"), accuracy = rate(m, "accuracy"),
    fidelity = rate(m, "fidelity"), layers = layers }
end
local f = assert(io.open(out .. "/table2.json", "w"))
f:write(strata.core.json_encode(report, true), "\n")
f:close()

local function cell(r) return ("%.4f [%.4f, %.4f]"):format(r.value, r.ci[1], r.ci[2]) end
print(("\n| %s settings (%d epochs, %d iterations) | baseline accuracy | surrogate accuracy | fidelity |"):format(
  o.settings, s.epochs, s.maxiter))
print("|---|---|---|---|")
for _, part in ipairs({ "test", "train" }) do
  local m = report.metrics[part]
  print(("| %s (%d images) | %s | %s | %s |"):format(part, m.n, cell(m.baseline_accuracy), cell(m.accuracy), cell(m.fidelity)))
end
print(("\nwall %d s (fit %d s: extraction %d s, layers %s s), CPU %.0f s; load average at start %s, at end %s"):format(
  report.timings.total.wall, report.timings.fit.wall, ac.timings.extract, table.concat(ac.timings.layers, "/"),
  report.timings.total.cpu, report.load_start or "?", report.load_end or "?"))
