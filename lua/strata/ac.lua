--- strata.ac: the explainer (activation clustering, METHOD.md; docs/explainer.md).
--
--   local ac = strata.ac.new{ net = net, dir = "work/cifar10", seed = 1,
--     layers = { {tap = "activation", clusters = 15}, {tap = "activation_18", clusters = 15},
--                {tap = "activation_36", clusters = 15}, {tap = "activation_54", clusters = 15} } }
--   ac:fit(data.train, {epochs = 15, maxiter = 980})   -- resumable
--   print(ac:evaluate(data.test))                       -- accuracy, fidelity, per layer, CIs
--   local nn, dist = ac:query(data.test:slice(1, 10), {k = 10, weights = {1, 1, 1, 1}})
--   local members = ac:concepts(1, {k = 10})            -- [K, 10] training positions
--   ac:save()                                           -- <dir>/bundle
--   local again = assert(strata.ac.load("work/cifar10/bundle", {net = net}))
--
-- Inputs to explain (embed, assign, predict_proba, predict, evaluate,
-- query, query_features): a dataset (strata.data), a u8 image [H, W, C]
-- or batch [n, H, W, C], an f32 batch already preprocessed for the net,
-- a table {images = tensor, labels = i64 tensor}, or the string "train"
-- (the training set the explainer was fitted on, from its caches).
-- Positions are 1-based (training positions as the dataset's), class
-- and cluster ids count from 0 (as the datasets' labels).
local core = require "strata.core"
local util = require "strata.util"
local dec = require "strata.dec"
local sur = require "strata.surrogate"
local bundle = require "strata.bundle"

local M = {}
local AC = {}
AC.__index = AC

M.KIND = "strata.ac/1"

-- The paper's Table 1 (CIFAR-10, ResNet-56): four taps, 15 clusters each,
-- the default autoencoder (filters 32, 64, 128, embedding 20).
M.TABLE1 = {
  { tap = "activation", clusters = 15 },
  { tap = "activation_18", clusters = 15 },
  { tap = "activation_36", clusters = 15 },
  { tap = "activation_54", clusters = 15 },
}

-- Clustering options a layer (or `clustering`, or fit) may set: the
-- trainer's configuration (docs/dec.md) but its name, dir and resume.
local DEC_KEYS = { "clusters", "filters", "radius", "minimal_padding", "threads", "alpha", "batch", "epochs",
  "pretrain_optim", "kmeans_n_init", "kmeans_max_iter", "kmeans_tol", "maxiter", "update_interval", "tol",
  "kl_weight", "mse_weight", "shuffle", "cluster_optim", "seed" }
local IS_DEC_KEY = {}
for _, k in ipairs(DEC_KEYS) do IS_DEC_KEY[k] = true end

local NEW_DEFAULTS = {
  net = false, model = false, layers = false, dir = false, seed = 1, posteriors = "truth", min_cluster_size = 1,
  clustering = false, weights = false, feature_tap = "pool", forward_batch = 256, class_names = false,
  quiet = false,
}

local arg_error = util.arg_error

local function is_tensor(x) return core.is_tensor(x) end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function mkdirs(path)
  local sofar = path:sub(1, 1) == "/" and "" or "."
  for part in path:gmatch("[^/]+") do
    sofar = sofar .. "/" .. part
    core.mkdir(sofar) -- an existing directory is fine
  end
end

-- Class ids from 0 out of 1-based argmax positions.
local function from_positions(pos) return (pos:to("f64") - 1):to("i64") end

local function copy(t)
  if type(t) ~= "table" then return t end
  local out = {}
  for k, v in pairs(t) do out[k] = copy(v) end
  return out
end

local function check_weights(fname, n, w, L)
  if w == nil then return nil end
  if type(w) ~= "table" or #w ~= L then
    arg_error(fname, n, ("weights: expected %d numbers, got %s"):format(L, type(w) == "table" and #w or type(w)))
  end
  local sum = 0
  for i = 1, L do
    local v = w[i]
    if type(v) ~= "number" or v ~= v or v < 0 or v == math.huge then
      arg_error(fname, n, ("weights: entry %d must be a finite number >= 0, got %s"):format(i, tostring(v)))
    end
    sum = sum + v
  end
  if sum <= 0 then arg_error(fname, n, "weights: not all may be 0") end
  return w
end

-------------------------------------------------------------- configuration

-- The resolved trainer configuration of layer l: the reference defaults,
-- then `clustering`, then the fit options, then the layer's own options.
-- Every layer's trainer gets the explainer's seed unless it sets its own
-- (the layers see different data, so one seed is enough).
local function resolve_layer(spec, clustering, fit_opts, seed)
  local cfg = {}
  for _, src in ipairs({ clustering or {}, fit_opts or {}, spec }) do
    for k, v in pairs(src) do
      if IS_DEC_KEY[k] then cfg[k] = copy(v) end
    end
  end
  cfg.clusters = cfg.clusters or 15
  if cfg.seed == nil then cfg.seed = seed end
  return cfg
end

local function check_layers(layers, net)
  if type(layers) ~= "table" or #layers == 0 then arg_error("new", 1, "layers: a non-empty list expected") end
  local shapes = {}
  if net then
    for _, t in ipairs(net:taps()) do shapes[t.name] = t.shape end
  end
  local seen = {}
  for l, spec in ipairs(layers) do
    if type(spec) ~= "table" then arg_error("new", 1, ("layers: entry %d must be a table"):format(l)) end
    for k in pairs(spec) do
      if k ~= "tap" and not IS_DEC_KEY[k] then
        arg_error("new", 1, ("layers: entry %d: unknown option '%s' (allowed: tap, %s)"):format(l, tostring(k),
          table.concat(DEC_KEYS, ", ")))
      end
    end
    if type(spec.tap) ~= "string" then arg_error("new", 1, ("layers: entry %d needs tap = a name"):format(l)) end
    if seen[spec.tap] then arg_error("new", 1, ("layers: tap '%s' is listed twice"):format(spec.tap)) end
    seen[spec.tap] = true
    if net then
      local s = shapes[spec.tap]
      if not s then arg_error("new", 1, ("layers: entry %d: the net has no tap '%s' (print(net) lists them)"):format(l, spec.tap)) end
      if #s ~= 3 then
        arg_error("new", 1, ("layers: tap '%s' has shape [%s]; the clustering model needs an [H, W, C] activation"):format(
          spec.tap, table.concat(s, ",")))
      end
    end
  end
end

local function new_object(cfg, net)
  local self = setmetatable({ config = cfg, net = net, fitted = false, metrics = {}, summaries = {}, figures = {} }, AC)
  self.L = #cfg.layers
  return self
end

--- A new explainer (unfitted). opts: net (a net from strata.model) or
-- model (its path), layers (list of {tap =, clusters =, ...clustering
-- options}), dir (the work directory: activations, checkpoints, caches),
-- seed (1), posteriors ("truth" or "baseline"), min_cluster_size (1),
-- clustering (options for every layer), weights (default layer weights),
-- feature_tap ("pool": the features-NN baseline), forward_batch (256),
-- class_names, quiet. Unknown keys are an error.
function M.new(opts)
  if type(opts) ~= "table" then arg_error("new", 1, "options table expected") end
  opts = util.options("strata.ac.new", opts, NEW_DEFAULTS)
  local net = opts.net or nil
  if not net and opts.model then
    local err
    net, err = require("strata.model").load(opts.model)
    if not net then arg_error("new", 1, "model: " .. err) end
  end
  if not net then arg_error("new", 1, "net (a loaded model) or model (its path) is required") end
  if type(opts.dir) ~= "string" then arg_error("new", 1, "dir: the work directory (a string) is required") end
  if math.type(opts.seed) ~= "integer" then arg_error("new", 1, "seed: an integer expected") end
  if opts.posteriors ~= "truth" and opts.posteriors ~= "baseline" then
    arg_error("new", 1, "posteriors: \"truth\" or \"baseline\" expected, got " .. tostring(opts.posteriors))
  end
  check_layers(opts.layers, net)
  if opts.clustering then
    if type(opts.clustering) ~= "table" then arg_error("new", 1, "clustering: a table expected") end
    for k in pairs(opts.clustering) do
      if not IS_DEC_KEY[k] or k == "seed" then
        arg_error("new", 1, ("clustering: unknown option '%s'"):format(tostring(k)))
      end
    end
  end
  local shapes = {}
  for _, t in ipairs(net:taps()) do shapes[t.name] = t.shape end
  if not shapes[opts.feature_tap] then arg_error("new", 1, ("feature_tap: the net has no tap '%s'"):format(opts.feature_tap)) end
  check_weights("new", 1, opts.weights or nil, #opts.layers)
  local cfg = {
    format = M.KIND, seed = opts.seed, posteriors = opts.posteriors, min_cluster_size = opts.min_cluster_size,
    feature_tap = opts.feature_tap, weights = opts.weights or nil, class_names = opts.class_names or nil,
    forward_batch = opts.forward_batch, classes = net:class_count(),
    model = { name = net:name(), params = net:param_count(), path = opts.model or nil },
    layers = {}, clustering = opts.clustering or {},
  }
  for l, spec in ipairs(opts.layers) do
    cfg.layers[l] = { tap = spec.tap, shape = copy(shapes[spec.tap]), spec = copy(spec) }
  end
  local self = new_object(cfg, net)
  self.dir = opts.dir
  self.quiet = opts.quiet
  return self
end

function AC:log(fmt, ...)
  if self.quiet then return end
  io.stderr:write(os.date("%H:%M:%S "), fmt:format(...), "\n")
  io.stderr:flush()
end

function AC:__tostring()
  local c = self.config
  local lines = { ("explainer (%s): %d layers, %s, posteriors from %s"):format(c.model.name, self.L,
    self.fitted and ("fitted on %d training examples"):format(c.n_train) or "not fitted", c.posteriors) }
  for l, layer in ipairs(c.layers) do
    lines[#lines + 1] = ("  %d  %-16s %-10s %d clusters"):format(l, layer.tap, table.concat(layer.shape, "x"),
      layer.dec and layer.dec.clusters or layer.spec.clusters or 15)
  end
  return table.concat(lines, "\n")
end

--- The index (1-based) of a layer given by index or tap name.
function AC:layer_index(layer, fname)
  if math.type(layer) == "integer" and layer >= 1 and layer <= self.L then return layer end
  for l, spec in ipairs(self.config.layers) do
    if spec.tap == layer then return l end
  end
  error(("bad argument #1 to '%s' (layer: a position 1..%d or a tap name expected, got %s)"):format(fname or "layer",
    self.L, tostring(layer)), 3)
end

function AC:layer_names()
  local out = {}
  for l, spec in ipairs(self.config.layers) do out[l] = spec.tap end
  return out
end

local function need_fitted(self, fname)
  if not self.fitted then error(("'%s': the explainer is not fitted yet (call ac:fit(train) or strata.ac.load)"):format(fname), 3) end
end

----------------------------------------------------------------- fitting

local FIT_KEYS = { progress = true, cores = true, jobs = true }
for _, k in ipairs(DEC_KEYS) do
  if k ~= "seed" then FIT_KEYS[k] = true end
end

-- Whether <dir>/<tap>.npy exists with n rows.
local function has_rows(path, n)
  if not exists(path) then return false end
  local t = core.map_npy(path)
  return t ~= nil and t:shape()[1] == n
end

-- Extracts (or reuses) the training activations: the layers' taps and the
-- feature tap, logits, predictions and labels, as .npy files in adir.
function AC:_extract(train, adir, progress)
  local n = #train
  local labels = train:labels()
  local stamp_path = adir .. "/stamp.json"
  local stamp = exists(stamp_path) and core.json_decode(io.open(stamp_path):read("a")) or nil
  local same = type(stamp) == "table" and stamp.n == n and stamp.model == self.config.model.name
    and stamp.params == self.config.model.params and has_rows(adir .. "/labels.npy", n)
    and core.load_npy(adir .. "/labels.npy"):equal(labels)
  local want = { self.config.feature_tap }
  for _, spec in ipairs(self.config.layers) do want[#want + 1] = spec.tap end
  local missing = {}
  for _, tap in ipairs(want) do
    if not (same and has_rows(adir .. "/" .. tap .. ".npy", n)) then missing[#missing + 1] = tap end
  end
  for _, name in ipairs({ "logits", "pred" }) do
    if not (same and has_rows(adir .. "/" .. name .. ".npy", n)) and #missing == 0 then missing[1] = want[1] end
  end
  if #missing == 0 then
    self:log("activations of %d training images: reusing %s", n, adir)
  else
    self:log("extracting %s for %d training images into %s", table.concat(missing, ", "), n, adir)
    local t0 = os.time()
    train:extract(self.net, { taps = missing, dir = adir, batch = self.config.forward_batch,
      quiet = progress == false or nil })
    self:log("extraction took %d s", os.time() - t0)
    local f = assert(io.open(stamp_path, "w"))
    f:write(core.json_encode({ n = n, model = self.config.model.name, params = self.config.model.params }), "\n")
    f:close()
  end
  return labels
end

-- Layer l's trained model from an earlier run in cdir, if it is there and
-- intact: the trainer, the training embeddings and the centroids.
function AC:_cached_layer(l, cdir)
  local spec = self.config.layers[l]
  local ckpt, zpath, zstamp = cdir .. "/checkpoint.safetensors", cdir .. "/embeddings.npy", cdir .. "/embeddings.sha256"
  if not (exists(ckpt) and exists(zpath) and exists(zstamp)) then return nil end
  local f = io.open(zstamp)
  local want = f:read("a"):gsub("%s+$", "")
  f:close()
  if core.sha256_file(ckpt) ~= want then return nil end
  local trainer = dec.new(spec.shape, self:_layer_config(l, cdir))
  local ok, err = trainer:load_checkpoint(ckpt)
  if ok and trainer:stage() == "done" then
    self:log("layer %d (%s): reusing the trained model in %s", l, spec.tap, cdir)
    return trainer, assert(core.load_npy(zpath)), trainer:centroids()
  end
  self:log("layer %d (%s): cached model not usable (%s); training", l, spec.tap, err or trainer:stage())
  return nil
end

-- The trainer configuration of layer l, checkpointing to cdir.
function AC:_layer_config(l, cdir)
  local cfg = copy(self.config.layers[l].dec)
  cfg.name, cfg.dir = self.config.layers[l].tap, cdir
  return cfg
end

function AC:_log_start(l, cdir, n)
  local spec, cfg = self.config.layers[l], self.config.layers[l].dec
  self:log("layer %d (%s): %s %d clusters (%d pretraining epochs, %d iterations, %d thread%s) on %d activations %s",
    l, spec.tap, exists(cdir .. "/checkpoint.safetensors") and "resuming from its checkpoint:" or "training",
    cfg.clusters, cfg.epochs or 3, cfg.maxiter or 280, cfg.threads or 1, (cfg.threads or 1) == 1 and "" or "s", n,
    table.concat(spec.shape, "x"))
end

-- A callback logging layer l's stages as they end (pretraining epochs,
-- k-means), with the seconds since t0: where a layer's time goes.
function AC:_stage_logger(l, t0)
  local tap = self.config.layers[l].tap
  return function(p)
    if p.event == "epoch" then
      self:log("layer %d (%s): pretraining epoch %d done (last batch mse %.4f), %d s", l, tap, p.epoch, p.mse, os.time() - t0)
    elseif p.event == "kmeans" then
      self:log("layer %d (%s): k-means done, %d s", l, tap, os.time() - t0)
    end
  end
end

-- Keeps layer l's training result: its embeddings (with the checkpoint's
-- hash, which marks them as belonging to it) and the log line.
function AC:_keep_layer(l, cdir, r, seconds)
  self:log("layer %d (%s): %s after %d iterations (delta %.4f), %d s", l, self.config.layers[l].tap, r.stop,
    r.iterations, r.delta, seconds)
  assert(core.save_npy(cdir .. "/embeddings.npy", r.embeddings))
  local f = assert(io.open(cdir .. "/embeddings.sha256", "w"))
  f:write((core.sha256_file(cdir .. "/checkpoint.safetensors")), "\n")
  f:close()
  return r.embeddings, r.centroids
end

-- Trains the layers in `todo` (indices; activations in adir, checkpoints
-- in dirs[l]), `jobs` at a time: each starts when a worker is free and its
-- activations are mapped only while it trains (a map counts in the
-- process's memory once read). Sets trainers, Z, mu and the layers'
-- timings (from a layer's first event to its last).
function AC:_train_layers(todo, adir, dirs, jobs, progress)
  local function path(l) return adir .. "/" .. self.config.layers[l].tap .. ".npy" end
  local function rows(l) return assert(core.map_npy(path(l))):shape()[1] end
  if #todo <= 1 or jobs == 1 then
    for _, l in ipairs(todo) do
      self:_log_start(l, dirs[l], rows(l))
      local t0 = os.time()
      local cfg = self:_layer_config(l, dirs[l])
      cfg.progress, cfg.callback = progress, self:_stage_logger(l, t0)
      local r, trainer = dec.fit(path(l), cfg)
      self.trainers[l] = trainer
      self.timings.layers[l] = os.time() - t0
      self.Z[l], self.mu[l] = self:_keep_layer(l, dirs[l], r, self.timings.layers[l])
      collectgarbage() -- unmaps the layer's activations
    end
    return
  end
  self:log("training %d layers, %d at a time", #todo, jobs)
  local list, at, first, last, stages = {}, {}, {}, {}, {}
  for i, l in ipairs(todo) do
    list[i] = { path(l), self:_layer_config(l, dirs[l]) }
    at[self.config.layers[l].tap] = l
  end
  local results, trainers = dec.fit_many(list, { workers = jobs, progress = progress, callback = function(p)
    local l = at[p.layer]
    if not first[l] then
      first[l] = os.time()
      self:_log_start(l, dirs[l], rows(l))
      stages[l] = self:_stage_logger(l, first[l])
    end
    last[l] = os.time()
    stages[l](p)
  end })
  for i, l in ipairs(todo) do
    self.trainers[l] = trainers[i]
    self.timings.layers[l] = first[l] and last[l] - first[l] or 0
    self.Z[l], self.mu[l] = self:_keep_layer(l, dirs[l], results[i], self.timings.layers[l])
  end
end

-- Soft assignments of the training set under layer l (from the cached
-- embeddings, so a restored bundle computes exactly the same).
function AC:_train_q(l)
  self._qtrain = self._qtrain or {}
  if not self._qtrain[l] then
    self._qtrain[l] = dec.student_t(self.Z[l], self.mu[l], self.config.layers[l].dec.alpha or 100)
  end
  return self._qtrain[l]
end

-- Posteriors from the training set (labels by config.posteriors).
function AC:_fit_posteriors()
  local labels = self.config.posteriors == "baseline" and self.train_pred or self.train_labels
  local q = {}
  for l = 1, self.L do q[l] = self:_train_q(l) end
  self.surrogate = sur.fit(q, labels, { classes = self.config.classes, min_cluster_size = self.config.min_cluster_size })
  for _, issue in ipairs(self.surrogate:issues()) do self:log("note: %s", issue.message) end
end

--- Fits the explainer on a training dataset (strata.data): extracts and
-- caches activations, trains each layer's clustering model, computes the
-- posteriors and caches the training embeddings. Every step is resumable:
-- running it again skips finished work. opts: epochs, maxiter and any
-- other clustering option for every layer (a layer's own options win),
-- progress (bars on stderr; default when stderr is a terminal), cores
-- (threads for the layers' training; default every core) and jobs (layers
-- trained at once; default min(cores, layers)). A layer without its own
-- `threads` gets cores // jobs if it is among the first `jobs`, else a
-- lane per core (run on the cores other layers free): on few cores,
-- layers side by side train faster than one layer on every core.
-- Returns self; ac.timings then holds the wall seconds of the extraction,
-- of each layer (layers[l]) and of the whole fit (work reused from an
-- earlier run counts as what it took now).
function AC:fit(train, opts)
  if self.fitted then error("'fit': this explainer is already fitted (make a new one to refit)", 2) end
  if type(train) ~= "table" or type(train.extract) ~= "function" then
    arg_error("fit", 1, "train: a dataset (strata.data) expected")
  end
  opts = opts or {}
  if type(opts) ~= "table" then arg_error("fit", 2, "options table expected") end
  for k in pairs(opts) do
    if not FIT_KEYS[k] then arg_error("fit", 2, ("unknown option '%s'"):format(tostring(k))) end
  end
  local progress = opts.progress
  if progress == nil then progress = core.stderr_is_terminal() and not self.quiet end
  local cfg = self.config
  local cores, jobs = opts.cores or core.cpu_count(), opts.jobs
  if math.type(cores) ~= "integer" or cores < 1 then arg_error("fit", 2, "cores: a positive integer expected") end
  if jobs ~= nil and (math.type(jobs) ~= "integer" or jobs < 1) then
    arg_error("fit", 2, "jobs: a positive integer expected")
  end
  -- From the layer count, not from what is left to train: a resumed fit
  -- must give each layer the threads it started with (they set the
  -- rounding of its gradient sums).
  jobs = jobs or math.min(cores, #cfg.layers)
  for l, layer in ipairs(cfg.layers) do
    layer.dec = resolve_layer(layer.spec, cfg.clustering, opts, cfg.seed)
    -- The first `jobs` layers start together, cores // jobs threads each.
    -- A later one may end alone: it gets a lane per core, run on the
    -- cores that other layers free (dec.fit_many lends them; lanes, not
    -- threads, fix its bits).
    layer.dec.threads = layer.dec.threads or (l <= jobs and math.max(1, cores // jobs) or cores)
    -- a configuration the trainer rejects fails here, before any work
    dec.new(layer.shape, layer.dec):free()
  end
  local adir = self.dir .. "/activations/train"
  mkdirs(adir)
  local t0 = os.time()
  self.timings = { layers = {} }
  local labels = self:_extract(train, adir, progress)
  self.timings.extract = os.time() - t0
  local n = #train
  cfg.n_train = n
  cfg.class_names = cfg.class_names or (train.label_names and train:label_names()) or nil
  self.train_labels = labels
  self.train_pred = assert(core.load_npy(adir .. "/pred.npy"))
  self.features = assert(core.map_npy(adir .. "/" .. cfg.feature_tap .. ".npy"))
  self.trainers, self.Z, self.mu, self.checkpoints = {}, {}, {}, {}
  local todo, dirs = {}, {}
  for l, layer in ipairs(cfg.layers) do
    dirs[l] = self.dir .. "/clustering/" .. layer.tap
    mkdirs(dirs[l])
    self.checkpoints[l] = dirs[l] .. "/checkpoint.safetensors"
    self.trainers[l], self.Z[l], self.mu[l] = self:_cached_layer(l, dirs[l])
    if self.trainers[l] then
      self.timings.layers[l] = 0
    else
      todo[#todo + 1] = l
    end
  end
  self:_train_layers(todo, adir, dirs, jobs, progress)
  self:_fit_posteriors()
  self.timings.fit = os.time() - t0
  self.fitted = true
  return self
end

----------------------------------------------------------------- explaining

-- Splits an input into batches of f32 images for the net: returns an
-- iterator of (x, labels or nil) and the number of images.
function AC:_batches(x, fname)
  local bs = self.config.forward_batch
  if type(x) == "table" and type(x.batches) == "function" and type(x.read) == "function" then
    local it = x:batches(bs, self.net)
    return it, #x
  end
  local labels
  if type(x) == "table" and is_tensor(x.images) then
    x, labels = x.images, x.labels
  end
  if not is_tensor(x) then
    arg_error(fname, 1, "input: a dataset, an image or batch tensor, {images =, labels =} or \"train\" expected")
  end
  if x:ndim() == 3 then x = x:reshape(1, table.unpack(x:shape())) end
  if x:ndim() ~= 4 then arg_error(fname, 1, ("input: an image [H, W, C] or a batch [n, H, W, C] expected, got %d-d"):format(x:ndim())) end
  local dt = x:dtype()
  if dt ~= "u8" and dt ~= "f32" then arg_error(fname, 1, "input: u8 images or f32 preprocessed images expected, got " .. dt) end
  local n, pos = x:shape()[1], 1
  if labels and (not is_tensor(labels) or labels:numel() ~= n) then
    arg_error(fname, 1, ("labels: an integer tensor of %d labels expected"):format(n))
  end
  return function()
    if pos > n then return nil end
    local last = math.min(pos + bs - 1, n)
    local xb = x:slice(1, pos, last)
    local lb = labels and labels:slice(1, pos, last) or nil
    pos = last + 1
    if dt == "u8" then xb = self.net:preprocess(xb:contiguous()) end
    return xb, lb
  end, n
end

-- Runs the net and the clustering encoders over an input. want: q, z,
-- features (booleans). Returns {q = {..}, z = {..}, pred = i64 [n],
-- labels = i64 [n] or nil, features = f32 [n, F] or nil, n =}.
function AC:_run(x, want, fname)
  if x == "train" then
    local out = { n = self.config.n_train, pred = self.train_pred, labels = self.train_labels, q = {}, z = {} }
    for l = 1, self.L do
      out.z[l] = self.Z[l]
      if want.q then out.q[l] = self:_train_q(l) end
    end
    if want.features then out.features = self:_train_features() end
    return out
  end
  local it, n = self:_batches(x, fname)
  local taps = {}
  for l, spec in ipairs(self.config.layers) do taps[l] = spec.tap end
  if want.features then taps[#taps + 1] = self.config.feature_tap end
  local parts = { q = {}, z = {}, pred = {}, labels = {}, features = {} }
  for l = 1, self.L do parts.q[l], parts.z[l] = {}, {} end
  local has_labels = true
  for xb, lb in it do
    local logits, acts = self.net:forward(xb, taps)
    parts.pred[#parts.pred + 1] = from_positions(logits:argmax(2))
    if lb then parts.labels[#parts.labels + 1] = lb:to("i64") else has_labels = false end
    if want.q or want.z then
      for l, spec in ipairs(self.config.layers) do
        local q, z = self.trainers[l]:predict(acts[spec.tap])
        local b = #parts.q[l] + 1
        parts.q[l][b], parts.z[l][b] = q, z
      end
    end
    if want.features then
      local f = acts[self.config.feature_tap]
      parts.features[#parts.features + 1] = f:reshape(f:shape()[1], -1)
    end
  end
  if n == 0 then arg_error(fname, 1, "input: no images") end
  local out = { n = n, q = {}, z = {}, pred = core.concat(parts.pred, 1) }
  if has_labels then out.labels = core.concat(parts.labels, 1) end
  for l = 1, self.L do
    if want.q then out.q[l] = core.concat(parts.q[l], 1) end
    if want.z then out.z[l] = core.concat(parts.z[l], 1) end
  end
  if want.features then out.features = core.concat(parts.features, 1) end
  return out
end

function AC:_train_features()
  local f = self.features
  return f:reshape(f:shape()[1], -1)
end

--- Per-layer embeddings (f32 [n, d] each, norm = the sphere radius).
function AC:embed(x)
  need_fitted(self, "embed")
  return self:_run(x, { z = true }, "embed").z
end

--- Per-layer soft assignments q (f32 [n, K_l]) and hard cluster ids
-- (i64 [n], from 0).
function AC:assign(x)
  need_fitted(self, "assign")
  local q = self:_run(x, { q = true }, "assign").q
  local ids = {}
  for l = 1, self.L do ids[l] = from_positions(q[l]:argmax(2)) end
  return q, ids
end

local function explain_opts(fname, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then arg_error(fname, 2, "options table expected") end
  for k in pairs(opts) do
    if not allowed[k] then arg_error(fname, 2, ("unknown option '%s'"):format(tostring(k))) end
  end
  return opts
end

function AC:_weights(fname, w)
  return check_weights(fname, 2, w, self.L) or self.config.weights or nil
end

--- Surrogate probabilities P(y | x), f64 [n, C]: the per-layer
-- posteriors weighted by the soft assignments and by opts.weights
-- (default all 1), normalised by the sum of the weights.
function AC:predict_proba(x, opts)
  need_fitted(self, "predict_proba")
  opts = explain_opts("predict_proba", opts, { weights = true })
  local w = self:_weights("predict_proba", opts.weights)
  return self.surrogate:predict_proba(self:_run(x, { q = true }, "predict_proba").q, w)
end

--- The surrogate's class ids (i64 [n], from 0).
function AC:predict(x, opts)
  need_fitted(self, "predict")
  opts = explain_opts("predict", opts, { weights = true })
  local w = self:_weights("predict", opts.weights)
  return self.surrogate:predict(self:_run(x, { q = true }, "predict").q, w)
end

--- Baseline accuracy, surrogate accuracy, fidelity, per layer and per
-- class, with bootstrap intervals, on labelled data (a dataset,
-- {images =, labels =} or "train"). opts: weights, bootstrap (1000),
-- level (0.95), seed (the explainer's), record (a name such as "test":
-- the metrics are kept and saved with the bundle as metrics_<name>.json).
-- Returns the evaluation (prints as the summary table; ev:totable()).
function AC:evaluate(x, opts)
  need_fitted(self, "evaluate")
  opts = explain_opts("evaluate", opts, { weights = true, bootstrap = true, level = true, seed = true, record = true })
  local w = self:_weights("evaluate", opts.weights)
  if opts.record ~= nil and (type(opts.record) ~= "string" or not opts.record:match("^[%w_%-]+$")) then
    arg_error("evaluate", 2, "record: a plain name (letters, digits, _ and -) expected")
  end
  local r = self:_run(x, { q = true }, "evaluate")
  if not r.labels then arg_error("evaluate", 1, "input: labelled data expected (a dataset or {images =, labels =})") end
  local ev = sur.evaluate {
    truth = r.labels, baseline = r.pred, surrogate = self.surrogate:predict(r.q, w),
    layers = self.surrogate:predict_layers(r.q), classes = self.config.classes,
    bootstrap = opts.bootstrap, level = opts.level, seed = opts.seed or self.config.seed,
    class_names = self.config.class_names, layer_names = self:layer_names(),
  }
  if opts.record then
    self.metrics[opts.record] = ev:json(true)
    self.summaries[opts.record] = ev:summary()
  end
  return ev
end

-- The label filter of a query: query labels and training labels.
function AC:_filter(fname, filter, r)
  if filter == nil then return nil end
  if filter == "predicted" then return r.pred, self.train_labels end
  if filter == "true" then
    if not r.labels then arg_error(fname, 2, "filter \"true\" needs labelled queries (a dataset or {images =, labels =})") end
    return r.labels, self.train_labels
  end
  arg_error(fname, 2, "filter: \"predicted\", \"true\" or nil expected, got " .. tostring(filter))
end

local function check_k(fname, k)
  k = k or 10
  if math.type(k) ~= "integer" or k < 1 then arg_error(fname, 2, "k: a positive integer expected") end
  return k
end

--- The k most similar training examples of every input under the
-- weighted sum of per-layer Euclidean embedding distances (METHOD.md
-- d.3), by a streaming top-k (memory O(queries x k)). opts: k (10),
-- weights (default all 1), filter: "predicted" (only training examples
-- whose true label is the baseline's prediction for the query), "true"
-- (... the query's true label) or nil. Returns indices (i64 [Q, k],
-- 1-based training positions, nearest first; 0 marks an empty slot when
-- the filter leaves fewer than k) and distances (f32 [Q, k]).
function AC:query(x, opts)
  need_fitted(self, "query")
  opts = explain_opts("query", opts, { k = true, weights = true, filter = true })
  local k = check_k("query", opts.k)
  local w = self:_weights("query", opts.weights)
  local r = self:_run(x, { z = true }, "query")
  local fq, ft = self:_filter("query", opts.filter, r)
  return core.knn(r.z, self.Z, { k = k, weights = w, filter_query = fq, filter_train = ft })
end

--- The paper's comparison baseline: nearest training examples in the
-- net's extracted features (config.feature_tap, "pool": the input of the
-- final dense layer). opts: k, filter (as query). Returns indices, distances.
function AC:query_features(x, opts)
  need_fitted(self, "query_features")
  opts = explain_opts("query_features", opts, { k = true, filter = true })
  local k = check_k("query_features", opts.k)
  local r = self:_run(x, { features = true }, "query_features")
  local fq, ft = self:_filter("query_features", opts.filter, r)
  return core.knn(r.features, self:_train_features(), { k = k, filter_query = fq, filter_train = ft })
end

--- Concepts of a layer (index or tap name): the k training examples
-- nearest each cluster centroid (raw centroids, METHOD.md d.4), i64
-- [K, k] of 1-based training positions; also their distances.
function AC:concepts(layer, opts)
  need_fitted(self, "concepts")
  local l = self:layer_index(layer, "concepts")
  opts = explain_opts("concepts", opts, { k = true })
  return core.knn(self.mu[l], self.Z[l], { k = check_k("concepts", opts.k) })
end

--- Cluster statistics of a layer: {{cluster =, size =, purity =,
-- entropy =, dominant = {{class =, fraction =}, ...}}, ...} (from 0).
function AC:cluster_stats(layer)
  need_fitted(self, "cluster_stats")
  return self.surrogate:cluster_stats(self:layer_index(layer, "cluster_stats"))
end

--- Empty, small or collapsed clusters found when fitting the posteriors.
function AC:issues()
  need_fitted(self, "issues")
  return self.surrogate:issues()
end

--- Keeps a figure (a canvas from strata.grid) to save with the bundle as
-- figures/<name>.png.
function AC:add_figure(name, canvas)
  if type(name) ~= "string" or not name:match("^[%w_%-]+$") then
    arg_error("add_figure", 1, "name: a plain name (letters, digits, _ and -) expected")
  end
  if not is_tensor(canvas) or canvas:dtype() ~= "u8" then arg_error("add_figure", 2, "canvas: a u8 [H, W, 3] tensor expected") end
  self.figures[name] = canvas
end

----------------------------------------------------------------- bundles

local store = require "strata.ac.store"
AC.save = store.save
M.load = store.loader(M, AC, new_object)
M.DEC_KEYS = DEC_KEYS
--- Creates a directory and its missing parents (existing ones are fine).
M.mkdirs = mkdirs

return M
