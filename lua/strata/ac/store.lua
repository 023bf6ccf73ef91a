--- Saving and loading a fitted explainer as a bundle (strata.bundle):
-- data only, every file checked against the manifest before it is read,
-- every array checked against the configuration after. See
-- docs/explainer.md, "The bundle", for the file list.
local core = require "strata.core"
local bundle = require "strata.bundle"
local dec = require "strata.dec"
local sur = require "strata.surrogate"

local M = {}

local KIND = "strata.ac/1"

local function layer_file(l, what) return ("layer%d.%s"):format(l, what) end

local function summary_text(self)
  if next(self.summaries) == nil then return self.summary_text end
  local names = {}
  for name in pairs(self.summaries) do names[#names + 1] = name end
  table.sort(names)
  local parts = {}
  for _, name in ipairs(names) do parts[#parts + 1] = ("== %s ==\n%s"):format(name, self.summaries[name]) end
  local issues = sur.report(self.surrogate)
  if issues ~= "" then parts[#parts + 1] = "== cluster issues ==\n" .. issues .. "\n" end
  return table.concat(parts, "\n")
end

--- ac:save([path]) writes the bundle (default <dir>/bundle) atomically;
-- returns its path, and a note when an old bundle could not be removed.
function M.save(self, path)
  if not self.fitted then error("'save': the explainer is not fitted yet", 2) end
  path = path or (self.dir and self.dir .. "/bundle")
  if type(path) ~= "string" then error("bad argument #1 to 'save' (path: string expected)", 2) end
  local w, err = bundle.writer(path, KIND)
  if not w then error(err, 2) end
  local ok, werr = pcall(function()
    w:json("config.json", self.config)
    for l = 1, self.L do
      w:copy(layer_file(l, "clustering.safetensors"), self.checkpoints[l])
      w:npy(layer_file(l, "embeddings.npy"), self.Z[l])
      w:npy(layer_file(l, "counts.npy"), self.surrogate:counts(l))
    end
    w:npy("train_labels.npy", self.train_labels)
    w:npy("train_pred.npy", self.train_pred)
    w:npy("features.npy", self:_train_features())
    for name, text in pairs(self.metrics) do w:write("metrics_" .. name .. ".json", text) end
    local summary = summary_text(self)
    if summary then w:write("summary.txt", summary) end
    for name, canvas in pairs(self.figures) do
      if type(canvas) == "string" then
        w:copy("figures/" .. name .. ".png", canvas) -- a figure of a loaded bundle
      else
        local saved, serr = core.figure_save(canvas, w:file("figures/" .. name .. ".png"))
        if not saved then error(serr) end
      end
    end
  end)
  if not ok then
    w:abort()
    error(werr, 2)
  end
  local where, note = w:commit({ created = os.date("!%Y-%m-%dT%H:%M:%SZ") })
  if not where then error(note, 2) end
  return where, note
end

------------------------------------------------------------------ loading

local CONFIG_KEYS = { format = "string", seed = "integer", posteriors = "string", min_cluster_size = "integer",
  feature_tap = "string", weights = "table", class_names = "table", forward_batch = "integer", classes = "integer",
  model = "table", layers = "table", clustering = "table", n_train = "integer" }
local REQUIRED = { "format", "seed", "posteriors", "feature_tap", "forward_batch", "classes", "model", "layers", "n_train" }

local function kind_of(v)
  if math.type(v) == "integer" then return "integer" end
  return type(v)
end

-- Checks config.json's structure; returns nil or a message.
local function check_config(cfg, dec_keys)
  if type(cfg) ~= "table" then return "expected an object" end
  for k, v in pairs(cfg) do
    local want = CONFIG_KEYS[k]
    if not want then return ("unknown key '%s'"):format(tostring(k)) end
    if kind_of(v) ~= want then return ("'%s' must be %s, not %s"):format(k, want, kind_of(v)) end
  end
  for _, k in ipairs(REQUIRED) do
    if cfg[k] == nil then return ("'%s' is missing"):format(k) end
  end
  if cfg.format ~= KIND then return ("'format' must be '%s'"):format(KIND) end
  if cfg.posteriors ~= "truth" and cfg.posteriors ~= "baseline" then return "'posteriors' must be truth or baseline" end
  if cfg.n_train < 1 or cfg.classes < 1 then return "'n_train' and 'classes' must be positive" end
  if #cfg.layers == 0 then return "'layers' must be a non-empty list" end
  local allowed = {}
  for _, k in ipairs(dec_keys) do allowed[k] = true end
  for l, layer in ipairs(cfg.layers) do
    if type(layer) ~= "table" or type(layer.tap) ~= "string" or type(layer.shape) ~= "table" or #layer.shape ~= 3
      or type(layer.dec) ~= "table" or math.type(layer.dec.clusters) ~= "integer" then
      return ("layers[%d] needs tap, shape [H, W, C] and dec (with clusters)"):format(l)
    end
    for _, s in ipairs(layer.shape) do
      if math.type(s) ~= "integer" or s < 1 then return ("layers[%d].shape must hold positive integers"):format(l) end
    end
    for k in pairs(layer.dec) do
      if not allowed[k] then return ("layers[%d].dec: unknown key '%s'"):format(l, tostring(k)) end
    end
  end
  if cfg.weights and #cfg.weights ~= #cfg.layers then return "'weights' must have one entry per layer" end
  return nil
end

-- The net for a bundle: opts.net or the model path recorded in it.
local function bundle_net(cfg, opts)
  local net = opts.net
  if not net then
    if type(cfg.model.path) ~= "string" then return nil, "the bundle records no model path: pass {net = ...}" end
    local err
    net, err = require("strata.model").load(cfg.model.path)
    if not net then return nil, "its model: " .. err .. " (pass {net = ...})" end
  end
  if net:name() ~= cfg.model.name or net:param_count() ~= cfg.model.params then
    return nil, ("the net (%s, %d parameters) is not the bundle's (%s, %s parameters)"):format(net:name(),
      net:param_count(), tostring(cfg.model.name), tostring(cfg.model.params))
  end
  local shapes = {}
  for _, t in ipairs(net:taps()) do shapes[t.name] = table.concat(t.shape, "x") end
  for l, layer in ipairs(cfg.layers) do
    if shapes[layer.tap] ~= table.concat(layer.shape, "x") then
      return nil, ("layer %d: the net's tap '%s' is not [%s]"):format(l, layer.tap, table.concat(layer.shape, ","))
    end
  end
  if not shapes[cfg.feature_tap] then return nil, ("the net has no tap '%s'"):format(cfg.feature_tap) end
  if net:class_count() ~= cfg.classes then return nil, ("the net has %d classes, the bundle %d"):format(net:class_count(), cfg.classes) end
  return net
end

--- The loader: strata.ac.load(path [, {net =, quiet =}]) -> explainer,
-- or nil and a message naming the bundle and the file at fault.
function M.loader(ac, AC, new_object)
  return function(path, opts)
    if type(path) ~= "string" then error("bad argument #1 to 'load' (path: string expected)", 2) end
    opts = opts or {}
    for k in pairs(opts) do
      if k ~= "net" and k ~= "quiet" then error(("bad argument #2 to 'load' (unknown option '%s')"):format(tostring(k)), 2) end
    end
    local b, err = bundle.open(path, KIND)
    if not b then return nil, err end
    local dir = b.dir
    local function fail(file, msg) return nil, ("bundle '%s': %s: %s"):format(dir, file, msg) end
    local cfg, cerr = b:json("config.json")
    if not cfg then return nil, cerr end
    local bad = check_config(cfg, ac.DEC_KEYS)
    if bad then return fail("config.json", bad) end
    local net, nerr = bundle_net(cfg, opts)
    if not net then return nil, ("bundle '%s': %s"):format(dir, nerr) end

    local self = new_object(cfg, net)
    self.quiet = opts.quiet
    self.bundle_dir = dir
    self.trainers, self.Z, self.mu, self.checkpoints = {}, {}, {}, {}
    local n, C = cfg.n_train, cfg.classes
    local counts = {}
    for l, layer in ipairs(cfg.layers) do
      local K = layer.dec.clusters
      local d = layer.dec.filters and layer.dec.filters[4] or 20
      local dcfg = {}
      for k, v in pairs(layer.dec) do dcfg[k] = v end
      dcfg.name = layer.tap
      local made, trainer = pcall(dec.new, layer.shape, dcfg)
      if not made then return fail("config.json", ("layers[%d].dec: %s"):format(l, (tostring(trainer):gsub("^[^:]*:%d+: ", "")))) end
      local file = layer_file(l, "clustering.safetensors")
      self.checkpoints[l] = b:path(file)
      local loaded, lerr = trainer:load_checkpoint(self.checkpoints[l])
      if not loaded then return fail(file, lerr) end
      if trainer:stage() ~= "done" then return fail(file, "the clustering model did not finish training (stage " .. trainer:stage() .. ")") end
      self.trainers[l], self.mu[l] = trainer, trainer:centroids()
      local zerr
      self.Z[l], zerr = b:npy(layer_file(l, "embeddings.npy"), { dtype = "f32", shape = { n, d } })
      if not self.Z[l] then return nil, zerr end
      counts[l], zerr = b:npy(layer_file(l, "counts.npy"), { dtype = "i64", shape = { K, C } })
      if not counts[l] then return nil, zerr end
      local total = counts[l]:to("f64"):sum()
      if total ~= n or counts[l]:to("f64"):min() < 0 then
        return fail(layer_file(l, "counts.npy"), ("the counts sum to %.0f (and must be >= 0), not to the %d training examples"):format(total, n))
      end
    end
    local made, s = pcall(sur.from_counts, counts, { min_cluster_size = cfg.min_cluster_size })
    if not made then return fail("layer*.counts.npy", (tostring(s):gsub("^[^:]*:%d+: ", ""))) end
    self.surrogate = s
    local lerr
    self.train_labels, lerr = b:npy("train_labels.npy", { dtype = "i64", shape = { n } })
    if not self.train_labels then return nil, lerr end
    self.train_pred, lerr = b:npy("train_pred.npy", { dtype = "i64", shape = { n } })
    if not self.train_pred then return nil, lerr end
    self.features, lerr = b:npy("features.npy", { dtype = "f32", shape = { n, -1 } })
    if not self.features then return nil, lerr end
    for _, rel in ipairs(b:files()) do
      local name = rel:match("^metrics_([%w_%-]+)%.json$")
      if name then
        local ok, jerr = b:json(rel)
        if not ok then return nil, jerr end
        self.metrics[name] = b:text(rel)
      end
      local fig = rel:match("^figures/([%w_%-]+)%.png$")
      if fig then self.figures[fig] = b:path(rel) end
    end
    self.summary_text = b:has("summary.txt") and b:text("summary.txt") or nil
    self.fitted = true
    return self
  end
end

return M
