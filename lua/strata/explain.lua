--- `strata explain`: the main command. Fits an explainer on a dataset and
-- writes the bundle with metrics and figures (docs/explainer.md).
-- main(arg) returns the exit code: 0 done, 2 bad arguments (a message
-- and a pointer to --help on stderr); other failures raise (exit 1).
local core = require "strata.core"

local M = {}

M.USAGE = [[
usage: strata explain --model M --data D --out DIR [options]

Fits an explainer (activation clustering, Liu & Arik 2020) of model M on the
training images of D, evaluates it on the test images (and the training set),
draws the figures, and saves everything as one bundle: DIR/bundle.

required:
  --model M          the classifier (a safetensors file, docs/model-format.md)
  --data D           a CIFAR-10 (data_batch_*.bin) or CIFAR-100 (train.bin)
                     binary directory; the test file is test_batch.bin /
                     test.bin, or test_batch_first1000.bin
  --out DIR          work directory (created): activations, checkpoints and
                     caches under it, the bundle in DIR/bundle. Running the
                     same command again resumes and skips finished work.

layers and clustering:
  --config FILE      a .lua file returning a table or a .json object with any
                     of strata.ac.new's options except net, model and dir
                     (layers, seed, clustering, posteriors, min_cluster_size,
                     weights, feature_tap, forward_batch) plus epochs and
                     maxiter; command-line options win
  --layers LIST      comma-separated taps, each optionally with its cluster
                     count: activation:15,activation_54:10. Default: the
                     paper's Table 1 (activation, activation_18,
                     activation_36, activation_54) when the net has them,
                     else stem and every stage's output
  --clusters K       clusters of every layer given without a count (15)
  --epochs N         autoencoder pretraining epochs (3, the reference's
                     default; the paper's notebook uses 15)
  --maxiter N        clustering iterations (280; the notebook: 980)
  --threads T        threads of the model's forward passes and of the
                     layers' training (default: every core this process
                     may use); with fewer threads than layers, T layers
                     train at once with one thread each
  --posteriors P     truth (default: from the true labels, as the paper) or
                     baseline (from the model's predictions)
  --seed S           every random choice (1)

data:
  --train-limit N    fit on the first N training images (default all)
  --test-limit N     evaluate on the first N test images (default all)
  --no-train-metrics skip the metrics on the training set

figures and metrics:
  --queries Q        test images in the figures (10, drawn with the seed)
  --k K              neighbours per row, training images per concept (10)
  --bootstrap B      bootstrap resamples of the intervals (1000; 0 = none)

  --quiet            no progress output on stderr
  -h, --help         this text

Outputs in DIR/bundle: config.json, manifest.json (sizes and SHA-256),
layer<i>.clustering.safetensors, layer<i>.embeddings.npy,
layer<i>.counts.npy, train_labels.npy, train_pred.npy, features.npy,
metrics_test.json, metrics_train.json, summary.txt and figures/*.png
(similar: the queries' nearest training images with equal weights;
weights: equal, low-level and high-level weights; concepts_first /
concepts_last: the training images nearest each cluster centre of the first
and last layer; features_nn: the nearest neighbours in the model's
features, the paper's comparison). Load it with strata.ac.load(DIR/bundle).
]]

local Usage = {}

local function usage(fmt, ...) error(setmetatable({ msg = fmt:format(...) }, Usage), 0) end

local FLAGS = {
  model = "string", data = "string", out = "string", config = "string", layers = "string", clusters = "int",
  epochs = "int", maxiter = "int", threads = "int", posteriors = "string", seed = "int", ["train-limit"] = "int",
  ["test-limit"] = "int", queries = "int", k = "int", bootstrap = "int",
}
local SWITCHES = { ["no-train-metrics"] = true, quiet = true, help = true }

local function parse(args)
  local o, i = {}, 1
  while i <= #args do
    local a = args[i]
    if a == "-h" then a = "--help" end
    local name, inline = a:match("^%-%-([%w%-]+)=(.*)$")
    name = name or a:match("^%-%-([%w%-]+)$")
    if not name then usage("unexpected argument '%s'", a) end
    if SWITCHES[name] then
      if inline then usage("--%s takes no value", name) end
      o[name] = true
      i = i + 1
    elseif FLAGS[name] then
      local v = inline
      if not v then
        v = args[i + 1]
        i = i + 1
      end
      if v == nil then usage("--%s needs a value", name) end
      if FLAGS[name] == "int" then
        local n = math.tointeger(tonumber(v))
        if not n or n < 0 then usage("--%s: expected a non-negative integer, got '%s'", name, v) end
        v = n
      end
      o[name] = v
      i = i + 1
    else
      usage("unknown option '--%s'", name)
    end
  end
  return o
end

local CONFIG_KEYS = { layers = true, seed = true, clustering = true, posteriors = true, min_cluster_size = true,
  weights = true, feature_tap = true, forward_batch = true, epochs = true, maxiter = true }

-- A config file: JSON, or Lua run in an empty environment (it is the
-- user's own file, not part of a bundle) that returns a table.
local function read_config(path)
  local f, err = io.open(path, "rb")
  if not f then usage("--config: %s", err) end
  local text = f:read("a")
  f:close()
  local cfg
  if path:match("%.json$") then
    local v, jerr = core.json_decode(text)
    if v == nil then usage("--config %s: %s", path, jerr) end
    cfg = v
  else
    local chunk, lerr = load(text, "@" .. path, "t", {})
    if not chunk then usage("--config %s: %s", path, lerr) end
    local ok, v = pcall(chunk)
    if not ok then usage("--config %s: %s", path, tostring(v)) end
    cfg = v
  end
  if type(cfg) ~= "table" then usage("--config %s: expected a table (object) of options", path) end
  for k in pairs(cfg) do
    if not CONFIG_KEYS[k] then
      local allowed = {}
      for name in pairs(CONFIG_KEYS) do allowed[#allowed + 1] = name end
      table.sort(allowed)
      usage("--config %s: unknown option '%s' (allowed: %s)", path, tostring(k), table.concat(allowed, ", "))
    end
  end
  return cfg
end

local function default_layers(net, clusters)
  local have = {}
  for _, t in ipairs(net:taps()) do have[t.name] = t end
  local out = {}
  local table1 = require("strata.ac").TABLE1
  local complete = true
  for _, spec in ipairs(table1) do complete = complete and have[spec.tap] ~= nil end
  if complete then
    for i, spec in ipairs(table1) do out[i] = { tap = spec.tap, clusters = clusters or spec.clusters } end
    return out
  end
  for _, name in ipairs({ "stem", "layer1", "layer2", "layer3", "layer4" }) do
    if have[name] and #have[name].shape == 3 then out[#out + 1] = { tap = name, clusters = clusters or 15 } end
  end
  return out
end

local function parse_layers(text, clusters)
  local out = {}
  for item in text:gmatch("[^,]+") do
    local tap, k = item:match("^%s*([^:%s]+)%s*:%s*(%d+)%s*$")
    if not tap then
      tap = item:match("^%s*([^:%s]+)%s*$")
      if not tap then usage("--layers: cannot read '%s' (expected tap or tap:K)", item) end
    end
    out[#out + 1] = { tap = tap, clusters = k and math.tointeger(tonumber(k)) or clusters or 15 }
  end
  if #out == 0 then usage("--layers: no layers given") end
  return out
end

local function open_data(dir)
  local function has(name)
    local f = io.open(dir .. "/" .. name, "rb")
    if f then f:close() end
    return f ~= nil
  end
  local data = require "strata.data"
  if has("data_batch_1.bin") then return data.cifar10(dir) end
  if has("train.bin") then return data.cifar100(dir) end
  return nil, ("'%s' holds neither CIFAR-10 (data_batch_1.bin) nor CIFAR-100 (train.bin) binary files"):format(dir)
end

local function clock() return os.time(), os.clock() end

-- The low-level and high-level weightings of the paper's Figure 3, for L
-- layers: (2, 1, 0, ..., 0) and (0, ..., 0, 1, 2).
local function paper_weights(L)
  local low, high, equal = {}, {}, {}
  for l = 1, L do low[l], high[l], equal[l] = 0, 0, 1 end
  low[1], high[L] = 2, 2
  if L > 1 then low[2], high[L - 1] = 1, 1 end
  return equal, low, high
end

local function wtitle(name, w)
  local parts = {}
  for i, v in ipairs(w) do parts[i] = ("%g"):format(v) end
  return ("%s (%s)"):format(name, table.concat(parts, ", "))
end

-- Threads when --threads is not given: every core this process may use,
-- up to the most a net or an autoencoder takes.
M.MAX_THREADS = 64
function M.default_threads() return math.min(require("strata").cpu_count(), M.MAX_THREADS) end

--- Q test images drawn with the explainer's seed, as the reference
-- notebook draws 10 at random (seeded here, so pages repeat). Returns the
-- query batch {images=, labels=}, the picked 1-based positions (i64
-- tensor) and a row title per query ("test 123").
function M.pick_queries(ac, test, Q)
  local strata = require "strata"
  local picks = strata.rng(ac.config.seed):sample(#test, Q)
  local images, labels, titles = {}, {}, {}
  for i = 1, Q do
    local p = math.tointeger(picks:get(i))
    images[i], labels[i] = test:read(p, p)
    titles[i] = "test " .. p
  end
  return { images = core.concat(images, 1), labels = core.concat(labels, 1) }, picks, titles
end

--- Draws the explanation's figures into ac (saved with its bundle):
-- similar (equal weights), weights (equal / low level / high level),
-- features_nn (the features baseline), similar_predicted (filtered to the
-- predicted label), concepts_first and concepts_last. opts: k (10),
-- queries (10 test images drawn with the explainer's seed).
function M.figures(ac, train, test, opts)
  local strata = require "strata"
  opts = opts or {}
  local k, Q = opts.k or 10, opts.queries or 10
  local queries, picks, rows = M.pick_queries(ac, test, Q)
  local grid = strata.grid
  local L = ac.L
  local equal, low, high = paper_weights(L)
  local nn_equal = ac:query(queries, { k = k, weights = equal })
  local function fig(name, canvas) ac:add_figure(name, canvas) end
  fig("similar", grid.similar(test, train, { indices = nn_equal, queries = picks }, nil,
    { title = "most similar training images, " .. wtitle("equal weights", equal), row_titles = rows }))
  if L > 1 then
    fig("weights", grid.weights_comparison(test, train, {
      { title = wtitle("equal", equal), nn = nn_equal },
      { title = wtitle("low level", low), nn = ac:query(queries, { k = k, weights = low }) },
      { title = wtitle("high level", high), nn = ac:query(queries, { k = k, weights = high }) },
    }, nil, { queries = picks, row_titles = rows }))
  end
  fig("features_nn", grid.similar(test, train, { indices = ac:query_features(queries, { k = k }), queries = picks }, nil,
    { title = "nearest neighbours in the model's features (" .. ac.config.feature_tap .. "): the baseline", row_titles = rows }))
  fig("similar_predicted", grid.similar(test, train,
    { indices = ac:query(queries, { k = k, weights = equal, filter = "predicted" }), queries = picks }, nil,
    { title = "most similar training images labelled as the model's prediction", row_titles = rows }))
  for _, l in ipairs(L > 1 and { 1, L } or { 1 }) do
    fig(l == 1 and "concepts_first" or "concepts_last", grid.concepts(ac:concepts(l, { k = k }), train, nil,
      { stats = ac:cluster_stats(l), title = ("concepts of layer %d (%s)"):format(l, ac.config.layers[l].tap) }))
  end
end

local function run(o)
  local strata = require "strata"
  local say = o.quiet and function() end or function(fmt, ...)
    io.stderr:write(os.date("%H:%M:%S "), fmt:format(...), "\n")
    io.stderr:flush()
  end
  local t_start = os.time()
  local net, err = strata.model.load(o.model)
  if not net then usage("--model %s: %s", o.model, err) end
  if o.threads then
    if o.threads < 1 or o.threads > M.MAX_THREADS then
      usage("--threads: 1 to %d expected, got %d", M.MAX_THREADS, o.threads)
    end
  else
    o.threads = M.default_threads()
  end
  net:set_threads(o.threads)
  local data, derr = open_data(o.data)
  if not data then usage("--data %s: %s", o.data, derr) end
  local cfg = o.config and read_config(o.config) or {}
  if o.posteriors then cfg.posteriors = o.posteriors end
  if o.seed then cfg.seed = o.seed end
  local layers = o.layers and parse_layers(o.layers, o.clusters) or cfg.layers or default_layers(net, o.clusters)
  if #layers == 0 then usage("the model has none of the default taps: give --layers (print(net) lists its taps)") end
  local fit_opts = { epochs = o.epochs or cfg.epochs, maxiter = o.maxiter or cfg.maxiter, cores = o.threads }
  local train, test = data.train, data.test
  if o["train-limit"] then
    if o["train-limit"] < 1 or o["train-limit"] > #train then usage("--train-limit: expected 1..%d", #train) end
    train = train:slice(1, o["train-limit"])
  end
  if o["test-limit"] then
    if o["test-limit"] < 1 or o["test-limit"] > #test then usage("--test-limit: expected 1..%d", #test) end
    test = test:slice(1, o["test-limit"])
  end
  local k, Q = o.k or 10, o.queries or 10
  if k < 1 then usage("--k: expected at least 1") end
  if Q < 1 or Q > #test then usage("--queries: expected 1..%d", #test) end

  local opts = { net = net, model = o.model, dir = o.out, layers = layers, quiet = o.quiet }
  for key, v in pairs(cfg) do
    if key ~= "epochs" and key ~= "maxiter" and key ~= "layers" then opts[key] = v end
  end
  local made, ac = pcall(strata.ac.new, opts)
  if not made then
    usage("%s", (tostring(ac):gsub("^[^:]*:%d+: ", ""):gsub("^bad argument #1 to 'new' %((.*)%)$", "%1")))
  end
  strata.ac.mkdirs(o.out)
  local probe = io.open(o.out .. "/.strata-explain", "w")
  if not probe then usage("--out: cannot write into '%s'", o.out) end
  probe:close()
  os.remove(o.out .. "/.strata-explain")

  say("explaining %s on %d training images (%d test images); work directory %s", net:name(), #train, #test, o.out)
  local w0, c0 = clock()
  ac:fit(train, fit_opts)
  local w1, c1 = clock()
  say("fitted in %d s wall, %.0f s CPU", w1 - w0, c1 - c0)

  local bootstrap = o.bootstrap
  local ev_test = ac:evaluate(test, { record = "test", bootstrap = bootstrap })
  io.stdout:write("== test (", #test, " images) ==\n", ev_test:summary(), "\n")
  if not o["no-train-metrics"] then
    local ev_train = ac:evaluate("train", { record = "train", bootstrap = bootstrap })
    io.stdout:write("== train (", #train, " images) ==\n", ev_train:summary(), "\n")
  end
  local issues = strata.surrogate.report(ac.surrogate)
  if issues ~= "" then io.stdout:write("cluster issues:\n", issues, "\n") end
  io.stdout:flush()

  M.figures(ac, train, test, { k = k, queries = Q })
  local where, note = ac:save(o.out .. "/bundle")
  if note then say("%s", note) end
  local w2 = os.time()
  io.stdout:write(("bundle: %s (metrics_test.json, summary.txt, figures/*.png); %d s in all\n"):format(where, w2 - t_start))
  return 0
end

--- Runs the command with the arguments that follow `strata explain`
-- (args[1], args[2], ...); returns the exit code.
function M.main(args)
  local list = {}
  for i = 1, #args do list[i] = args[i] end
  local ok, result = xpcall(function()
    local o = parse(list)
    if o.help then
      io.stdout:write(M.USAGE)
      return 0
    end
    for _, need in ipairs({ "model", "data", "out" }) do
      if not o[need] then usage("--%s is required", need) end
    end
    if o.posteriors and o.posteriors ~= "truth" and o.posteriors ~= "baseline" then
      usage("--posteriors: truth or baseline, not '%s'", o.posteriors)
    end
    return run(o)
  end, function(e)
    if getmetatable(e) == Usage then return e end
    return debug.traceback(tostring(e), 2)
  end)
  if ok then return result end
  if getmetatable(result) == Usage then
    io.stderr:write("strata explain: ", result.msg, "\n(strata explain --help lists the options)\n")
    return 2
  end
  error(result, 0)
end

return M
