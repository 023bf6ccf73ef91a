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
-- and a new fit with the same options resumes from them.
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
local FIT_KEYS = { progress = true, callback = true }
for _, k in ipairs(CONFIG_KEYS) do FIT_KEYS[k] = true end

local function check_keys(opts, allowed, fname)
  for k in pairs(opts) do
    if not allowed[k] then
      error(("bad argument #2 to '%s' (unknown option '%s')"):format(fname, tostring(k)), 3)
    end
  end
end

local function activations(acts)
  if type(acts) == "string" then
    local t, err = core.map_npy(acts)
    if not t then error(("bad argument #1 to 'fit' (%s)"):format(err), 3) end
    return t
  end
  if not core.is_tensor(acts) then
    error(("bad argument #1 to 'fit' (expected a tensor or a .npy path, got %s)"):format(type(acts)), 3)
  end
  return acts
end

--- A trainer for activations of shape {h, w, c} (or like the tensor given).
function M.new(shape, opts)
  opts = opts or {}
  local allowed = {}
  for _, k in ipairs(CONFIG_KEYS) do allowed[k] = true end
  check_keys(opts, allowed, "new")
  if core.is_tensor(shape) then shape = { table.unpack(shape:shape(), 2) } end
  return core.dec_new(shape[1], shape[2], shape[3], opts)
end

local function clock()
  return math.max(os.time(), 0), os.clock()
end

--- A progress callback drawing one line on stderr: stage, step/total,
-- loss, samples per second and the ETA of the current stage.
function M.progress_bar(batch)
  batch = batch or 32
  local stage, t0, c0, s0, last_draw
  return function(p)
    local wall, cpu = clock()
    if p.stage ~= stage then
      stage, t0, c0, s0, last_draw = p.stage, wall, cpu, p.step, -1
    end
    if p.event == "step" and cpu - last_draw < 0.2 and p.step < p.total then return end
    last_draw = cpu
    local elapsed = math.max(wall - t0, cpu - c0, 1e-6)
    local rate = (p.step - s0) / elapsed
    local eta = rate > 0 and (p.total - p.step) / rate or 0
    local width = 24
    local filled = p.total > 0 and math.floor(width * p.step / p.total) or width
    local what = p.stage == "pretrain" and ("pretrain e%d"):format(p.epoch + 1)
      or p.event == "kmeans" and "k-means" or p.stage
    io.stderr:write(("\r\27[K%s %-12s [%s%s] %d/%d loss %.4g (kl %.3g mse %.3g) %.0f samples/s ETA %d:%02d %s"):format(
      p.layer, what, ("#"):rep(filled), ("."):rep(width - filled), p.step, p.total, p.loss, p.kl, p.mse,
      rate * batch, eta // 60, math.floor(eta % 60), p.delta >= 0 and ("delta %.4f "):format(p.delta) or ""))
    if p.event == "done" then io.stderr:write("\n") end
    io.stderr:flush()
  end
end

--- Trains one layer's clustering model; returns result, trainer (or nil,
-- "stopped", trainer when the callback stopped it).
function M.fit(acts, opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("bad argument #2 to 'fit' (options: expected a table)", 2) end
  check_keys(opts, FIT_KEYS, "fit")
  local x = activations(acts)
  local cfg = {}
  for _, k in ipairs(CONFIG_KEYS) do cfg[k] = opts[k] end
  local trainer = core.dec_new(x:shape()[2], x:shape()[3], x:shape()[4], cfg)
  local show = opts.progress
  if show == nil then show = core.stderr_is_terminal() end
  local bar = show and M.progress_bar(opts.batch) or nil
  local user = opts.callback
  local cb = nil
  if bar or user then
    cb = function(p)
      if bar then bar(p) end
      if user then return user(p) end
    end
  end
  local r, why = trainer:fit(x, cb)
  if not r then return nil, why, trainer end
  return r, trainer
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
