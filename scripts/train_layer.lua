--- Trains one tap's clustering model (DEC/IDEC, METHOD.md c) on extracted
-- activations and prints the cluster report (sizes, majority class, purity).
--
--   strata scripts/train_layer.lua --acts DIR --tap activation_18 --work DIR
--          [--clusters 15] [--epochs 3] [--maxiter 280] [--seed 1]
--          [--threads 1] [--shuffle] [--limit N]
--
-- DIR/<tap>.npy (f32 [N, H, W, C], memory-mapped) and DIR/labels.npy (i64
-- [N]) come from the extraction (docs/dec.md shows the command). Training
-- checkpoints to <work>/<tap>/ and resumes from there when run again with
-- the same options. When done it writes <work>/<tap>/{q,labels,embeddings,
-- centroids}.npy and report.md, and prints the wall and CPU time of each
-- stage with the rates they imply (the machine may be shared: CPU time is
-- the better estimate of a quiet machine's speed).
local strata = require "strata"
local core = strata.core

local opts = { clusters = 15, epochs = 3, maxiter = 280, seed = 1, threads = 1 }
local i = 1
while i <= #arg do
  local key = arg[i]:match("^%-%-([%w_]+)$")
  if not key then error("unexpected argument '" .. arg[i] .. "'") end
  if key == "shuffle" then
    opts.shuffle = true
    i = i + 1
  else
    local v = arg[i + 1] or error("--" .. key .. " needs a value")
    opts[key] = tonumber(v) or v
    i = i + 2
  end
end
for _, need in ipairs({ "acts", "tap", "work" }) do
  if not opts[need] then error("--" .. need .. " is required (see the header of this script)") end
end

local x = assert(core.map_npy(opts.acts .. "/" .. opts.tap .. ".npy"))
local classes = assert(core.load_npy(opts.acts .. "/labels.npy"))
if opts.limit then
  x = x:slice(1, 1, opts.limit)
  classes = classes:slice(1, 1, opts.limit):contiguous()
end
local n = x:shape()[1]
local dir = opts.work .. "/" .. opts.tap
os.execute("mkdir -p '" .. dir .. "'")

-- One log line per epoch, k-means and target update: the mean losses of the
-- steps since the previous line and their rate (target updates included:
-- the effective rate).
local batch = 32
local last_wall, last_cpu, last_step = os.time(), os.clock(), 0
local sum, count = { 0, 0, 0 }, 0
local function log(p)
  if p.event == "step" then
    sum[1], sum[2], sum[3], count = sum[1] + p.loss, sum[2] + p.kl, sum[3] + p.mse, count + 1
    return
  end
  local wall, cpu = os.time() - last_wall, os.clock() - last_cpu
  local steps = p.step >= last_step and p.step - last_step or p.step
  local m = count > 0 and { sum[1] / count, sum[2] / count, sum[3] / count } or { p.loss, p.kl, p.mse }
  print(("%s %-6s %-8s step %6d/%-6d mean loss %.5g kl %.4g mse %.4g delta %.5f | %3ds wall %5.1fs cpu | %4.0f samples/s wall, %4.0f cpu%s"):format(
    os.date("%H:%M:%S"), p.event, p.stage, p.step, p.total, m[1], m[2], m[3], p.delta, wall, cpu,
    wall > 0 and steps * batch / wall or 0, cpu > 0 and steps * batch / cpu or 0,
    p.checkpoint and " [checkpoint]" or ""))
  io.stdout:flush()
  last_wall, last_cpu, last_step = os.time(), os.clock(), p.step
  sum, count = { 0, 0, 0 }, 0
end

print(("%s: %d activations of shape %s, %d clusters, %d epochs, %d iterations, seed %d"):format(opts.tap, n,
  table.concat(x:shape(), "x", 2), opts.clusters, opts.epochs, opts.maxiter, opts.seed))
local t0, c0 = os.time(), os.clock()
local r, trainer = strata.dec.fit(x, {
  name = opts.tap, clusters = opts.clusters, epochs = opts.epochs, maxiter = opts.maxiter, seed = opts.seed,
  threads = opts.threads, shuffle = opts.shuffle, dir = dir, progress = false, callback = log,
})
print(("finished: %s after %d iterations, delta %.5f; %ds wall, %.0fs cpu in this run"):format(r.stop, r.iterations,
  r.delta, os.time() - t0, os.clock() - c0))
for _, name in ipairs({ "q", "labels", "embeddings", "centroids" }) do
  assert(core.save_npy(dir .. "/" .. name .. ".npy", r[name]))
end

local names = { "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck" }
local rep = strata.dec.report(r.labels, classes, opts.clusters)
local text = strata.dec.format_report(rep, names)
print(text)
local f = assert(io.open(dir .. "/report.md", "w"))
f:write(("## %s\n\n%d rows, %d clusters, %d epochs, %d iterations (%s), seed %d\n\n%s\n"):format(opts.tap, n,
  opts.clusters, opts.epochs, r.iterations, r.stop, opts.seed, text))
f:close()
trainer:free()
