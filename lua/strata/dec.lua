--- strata.dec: the per-layer clustering model (DEC/IDEC on the reference
-- convolutional autoencoder) -- the whole trainer and its pieces.
--
--   local dec = strata.dec
--   local r, trainer = dec.fit("work/acts/layer1.npy", {clusters = 15, epochs = 15,
--                                maxiter = 980, seed = 1, dir = "work/layer1"})
--   r.q, r.labels, r.embeddings, r.centroids, r.pretrain_loss, r.cluster_loss
--   local q, z = trainer:predict(test_acts)
--   print(dec.format_report(dec.report(r.labels, labels, 15), names))
--
-- fit takes an f32 tensor [N, H, W, C] (a memory map is never copied
-- whole) or the path of a .npy file, which is memory-mapped. Options: every
-- field of st_dec_config (docs/dec.md lists them with their defaults),
-- plus `progress` (true/false; default: a bar on stderr when it is a
-- terminal) and `callback` (function(p) -> false to stop; p has layer,
-- event, stage, epoch, step, total, loss, kl, mse, delta, checkpoint).
-- Unknown keys are an error. With `dir`, checkpoints are written there
-- and a new fit with the same options resumes from them. fit_many trains
-- several layers at once (faster than one by one with more threads each).
--
-- The pieces, for writing a variant in Lua (scripts/examples/
-- dec_gaussian_variant.lua is one):
--   dec.cae(h, w, c, {filters, radius, minimal_padding, max_batch, threads, seed | rng})
--     :encode(x) :decode(z) :backward(dxhat, dz) :parameters() :gradients() ...
--   dec.optim(n, {kind = "adam" | "sgd", lr, ...}) :step(params, grads)
--   dec.student_t(z, mu, alpha), dec.student_t_backward(z, mu, q, dq, alpha),
--   dec.target_distribution(q), dec.loss_kld(p, q, w), dec.loss_mse(a, b, w),
--   dec.l2norm(u, r), dec.l2norm_backward(u, dz, r)
-- Cluster labels are ids counted from 0, like class labels.
local core = require "strata.core"

local M = {}

M.cae = core.cae_new
M.optim = core.optim_new
M.student_t = core.student_t
M.student_t_backward = core.student_t_backward
M.target_distribution = core.target_distribution
M.loss_kld = core.loss_kld
M.loss_mse = core.loss_mse
M.l2norm = core.l2norm
M.l2norm_backward = core.l2norm_backward

local CONFIG_KEYS = {
  "name", "clusters", "filters", "radius", "minimal_padding", "threads", "alpha", "batch", "epochs",
  "pretrain_optim", "kmeans_n_init", "kmeans_max_iter", "kmeans_tol", "maxiter", "update_interval", "tol",
  "kl_weight", "mse_weight", "shuffle", "cluster_optim", "seed", "dir", "resume",
}
local IS_CONFIG_KEY, FIT_KEYS = {}, { progress = true, callback = true }
for _, k in ipairs(CONFIG_KEYS) do IS_CONFIG_KEY[k], FIT_KEYS[k] = true, true end

local function check_keys(opts, allowed, fname)
  for k in pairs(opts) do
    if not allowed[k] then
      error(("bad argument #2 to '%s' (unknown option '%s')"):format(fname, tostring(k)), 3)
    end
  end
end

local function activations(acts, fname)
  if type(acts) == "string" then
    local t, err = core.map_npy(acts)
    if not t then error(("bad argument #1 to '%s' (%s)"):format(fname, err), 3) end
    return t
  end
  if not core.is_tensor(acts) then
    error(("bad argument #1 to '%s' (expected a tensor or a .npy path, got %s)"):format(fname, type(acts)), 3)
  end
  return acts
end

--- A trainer for activations of shape {h, w, c} (or like the tensor given).
function M.new(shape, opts)
  opts = opts or {}
  check_keys(opts, IS_CONFIG_KEY, "new")
  if core.is_tensor(shape) then shape = { table.unpack(shape:shape(), 2) } end
  return core.dec_new(shape[1], shape[2], shape[3], opts)
end

-- Tracks one layer's stages: rate (steps per second) and ETA of its
-- current stage from wall-clock time (core.clock).
local function stage_clock()
  local stage, t0, s0
  return function(p)
    local now = core.clock()
    if p.stage ~= stage then stage, t0, s0 = p.stage, now, p.step end
    local rate = (p.step - s0) / math.max(now - t0, 1e-6)
    return rate, rate > 0 and (p.total - p.step) / rate or 0
  end
end

local function stage_label(p)
  return p.stage == "pretrain" and ("pretrain e%d"):format(p.epoch + 1) or p.event == "kmeans" and "k-means"
    or p.stage
end

-- Whether a bar drawn at `last` should be redrawn for event p (5 times a second).
local function due(p, last) return p.event ~= "step" or core.clock() - last >= 0.2 or p.step >= p.total end

--- A progress callback drawing one line on stderr: stage, step/total,
-- loss, samples per second and the ETA of the current stage.
function M.progress_bar(batch)
  batch = batch or 32
  local timing, last_draw = stage_clock(), -math.huge
  return function(p)
    local rate, eta = timing(p)
    if not due(p, last_draw) then return end
    last_draw = core.clock()
    local width = 24
    local filled = p.total > 0 and math.floor(width * p.step / p.total) or width
    io.stderr:write(("\r\27[K%s %-12s [%s%s] %d/%d loss %.4g (kl %.3g mse %.3g) %.0f samples/s ETA %d:%02d %s"):format(
      p.layer, stage_label(p), ("#"):rep(filled), ("."):rep(width - filled), p.step, p.total, p.loss, p.kl, p.mse,
      rate * batch, eta // 60, math.floor(eta % 60), p.delta >= 0 and ("delta %.4f "):format(p.delta) or ""))
    if p.event == "done" then io.stderr:write("\n") end
    io.stderr:flush()
  end
end

--- The same for several layers training at once (fit_many): one line with
-- each running layer's stage, percentage and ETA; a line of its own when
-- a layer is done.
function M.progress_lines()
  local timing, state, order, last_draw = {}, {}, {}, -math.huge
  return function(p)
    if not timing[p.layer] then
      timing[p.layer] = stage_clock()
      order[#order + 1] = p.layer
    end
    local _, eta = timing[p.layer](p)
    state[p.layer] = p.event ~= "done" and ("%s %s %d%% ETA %d:%02d"):format(p.layer, stage_label(p),
      p.total > 0 and math.floor(100 * p.step / p.total) or 100, eta // 60, math.floor(eta % 60)) or nil
    if not due(p, last_draw) then return end
    last_draw = core.clock()
    local parts = {}
    for _, name in ipairs(order) do parts[#parts + 1] = state[name] end
    if p.event == "done" then io.stderr:write(("\r\27[K%s done\n"):format(p.layer)) end
    io.stderr:write("\r\27[K", table.concat(parts, " | "))
    io.stderr:flush()
  end
end

-- The training callback for opts: the display (made by new_display when
-- opts.progress, by default when stderr is a terminal) and opts.callback;
-- also whether there is a display.
local function with_display(opts, new_display)
  local show = opts.progress
  if show == nil then show = core.stderr_is_terminal() end
  local display, user = show and new_display() or nil, opts.callback
  if not (display or user) then return nil, false end
  return function(p)
    if display then display(p) end
    if user then return user(p) end
  end, display ~= nil
end

--- Trains one layer's clustering model; returns result, trainer (or nil,
-- "stopped", trainer when the callback stopped it).
function M.fit(acts, opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("bad argument #2 to 'fit' (options: expected a table)", 2) end
  check_keys(opts, FIT_KEYS, "fit")
  local x = activations(acts, "fit")
  local cfg = {}
  for _, k in ipairs(CONFIG_KEYS) do cfg[k] = opts[k] end
  local trainer = core.dec_new(x:shape()[2], x:shape()[3], x:shape()[4], cfg)
  local r, why = trainer:fit(x, with_display(opts, function() return M.progress_bar(opts.batch) end))
  if not r then return nil, why, trainer end
  return r, trainer
end

--- Trains several layers' clustering models at once: jobs is a list of
-- {acts, options} as fit takes them (progress and callback belong to
-- opts; a .npy path is mapped only while its layer trains, so at most
-- `workers` layers' activations are resident at a time). opts: workers
-- (how many train at a time; default 2), progress, callback (as fit's:
-- returning false stops them all). Each trainer keeps its own `threads`,
-- so it computes bitwise what fit would. Returns the results (false for a
-- stopped one) and the trainers.
function M.fit_many(jobs, opts)
  opts = opts or {}
  if type(jobs) ~= "table" or #jobs == 0 then error("bad argument #1 to 'fit_many' (a list of {acts, options} expected)", 2) end
  if type(opts) ~= "table" then error("bad argument #2 to 'fit_many' (options: expected a table)", 2) end
  check_keys(opts, { workers = true, progress = true, callback = true }, "fit_many")
  local trainers, xs = {}, {}
  for i, job in ipairs(jobs) do
    if type(job) ~= "table" then error(("bad argument #1 to 'fit_many' (entry %d: {acts, options} expected)"):format(i), 2) end
    local job_opts = job[2] or {}
    check_keys(job_opts, IS_CONFIG_KEY, "fit_many")
    local x = activations(job[1], "fit_many")
    -- a path is mapped again by its worker, only while its layer trains
    xs[i] = type(job[1]) == "string" and job[1] or x
    local cfg = {}
    for _, k in ipairs(CONFIG_KEYS) do cfg[k] = job_opts[k] end
    trainers[i] = core.dec_new(x:shape()[2], x:shape()[3], x:shape()[4], cfg)
  end
  local cb, shown = with_display(opts, M.progress_lines)
  local workers = opts.workers or 2
  if math.type(workers) ~= "integer" or workers < 1 then
    error("bad argument #2 to 'fit_many' (workers: a positive integer expected)", 2)
  end
  local results = core.dec_fit_many(trainers, xs, workers, cb)
  if shown then io.stderr:write("\n") end
  return results, trainers
end

--- Cluster sizes and label purity: labels (cluster ids from 0, [N]) against
-- classes (class ids from 0, [N]); k clusters (default: the largest id + 1).
-- Returns {n, k, sizes = {..}, majority = {..} (class ids), purity (overall:
-- sum of majority counts / n), cluster_purity = {..}, empty (count)}.
function M.report(labels, classes, k)
  local lab = core.is_tensor(labels) and labels:totable() or labels
  local cls = core.is_tensor(classes) and classes:totable() or classes
  assert(#lab == #cls, ("report: %d labels but %d classes"):format(#lab, #cls))
  if not k then
    k = 0
    for _, v in ipairs(lab) do k = math.max(k, math.tointeger(v) + 1) end
  end
  local counts, sizes = {}, {}
  for j = 1, k do counts[j], sizes[j] = {}, 0 end
  for i = 1, #lab do
    local j, c = math.tointeger(lab[i]) + 1, math.tointeger(cls[i])
    sizes[j] = sizes[j] + 1
    counts[j][c] = (counts[j][c] or 0) + 1
  end
  local rep = { n = #lab, k = k, sizes = sizes, majority = {}, cluster_purity = {}, empty = 0 }
  local hits = 0
  for j = 1, k do
    local best, bc = -1, 0
    for c, n in pairs(counts[j]) do
      if n > bc or n == bc and c < best then best, bc = c, n end
    end
    rep.majority[j] = best
    rep.cluster_purity[j] = sizes[j] > 0 and bc / sizes[j] or 0
    if sizes[j] == 0 then rep.empty = rep.empty + 1 end
    hits = hits + bc
  end
  rep.purity = rep.n > 0 and hits / rep.n or 0
  return rep
end

--- A Markdown table of a report (class names optional, indexed by id + 1).
function M.format_report(rep, names)
  local lines = { "| cluster | size | majority class | purity |", "|---|---|---|---|" }
  for j = 1, rep.k do
    local m = rep.majority[j]
    local name = m < 0 and "-" or names and names[m + 1] or tostring(m)
    lines[#lines + 1] = ("| %d | %d | %s | %.3f |"):format(j - 1, rep.sizes[j], name, rep.cluster_purity[j])
  end
  lines[#lines + 1] = ("\noverall purity %.4f over %d rows, %d empty clusters"):format(rep.purity, rep.n, rep.empty)
  return table.concat(lines, "\n")
end

return M
