--- strata.surrogate: the surrogate model and the metrics of an explanation
-- (docs/metrics.md).
--
--   local sur = strata.surrogate
--   local s = sur.fit({q1, q2, q3, q4}, train_labels, {classes = 10})
--   for _, issue in ipairs(s:issues()) do print(issue.message) end
--   local pred = s:predict({t1, t2, t3, t4}, {1, 1, 1, 1})   -- class ids from 0
--   local ev = sur.evaluate{truth = y, baseline = base, surrogate = pred,
--                           layers = s:predict_layers({t1, t2, t3, t4}),
--                           classes = 10, seed = 1, class_names = names}
--   print(ev)                       -- the summary table
--   ev:save("work/metrics_test.json")
--
-- Assignments are per layer (1-based positions in the lists): f32 [N, K_l]
-- soft assignments, or i32/i64 [N] cluster ids from 0 with opts.clusters.
-- Labels are class ids from 0, as the datasets give them. The surrogate's
-- methods are listed in lua/bind/surrogate.c: predict_proba, predict,
-- predict_layers, posterior(l), counts(l), prior(l), issues(),
-- cluster_stats(l), layer_count(), class_count(), cluster_count(l).
local core = require "strata.core"
local util = require "strata.util"

local M = {}

local arg_error, check_keys = util.arg_error, util.check_keys

--- Empirical posteriors from the training data. opts: classes (required),
-- clusters (list of K_l, for cluster-id tensors), min_cluster_size (1:
-- only empty clusters fall back to the layer's label distribution).
-- Posteriors from the baseline's predictions instead of the truth: pass
-- the baseline's predicted labels as `labels`.
function M.fit(assignments, labels, opts)
  opts = check_keys("fit", 3, opts, { "classes", "clusters", "min_cluster_size" })
  if math.type(opts.classes) ~= "integer" then arg_error("fit", 3, "classes: an integer expected") end
  return core.surrogate_fit(assignments, labels, opts.classes,
    { clusters = opts.clusters, min_cluster_size = opts.min_cluster_size })
end

--- A surrogate from saved count matrices (s:counts(l) of every layer).
function M.from_counts(counts, opts)
  opts = check_keys("from_counts", 2, opts, { "min_cluster_size" })
  return core.surrogate_new(counts, opts)
end

--- The report of a surrogate's empty, small or collapsed clusters as text
-- (one line each; "" when every cluster is fine).
function M.report(s)
  local lines = {}
  for i, issue in ipairs(s:issues()) do lines[i] = issue.message end
  return table.concat(lines, "\n")
end

--- Accuracy, fidelity, per layer and per class, with percentile bootstrap
-- intervals. spec: truth, baseline, surrogate (label tensors), classes,
-- layers (optional [L, N] per-layer predictions), bootstrap (1000; 0 =
-- none), level (0.95), seed or rng (required when bootstrap > 0),
-- class_names, layer_names. The result prints as the summary table and
-- has :summary(), :json([pretty]), :save(path) (atomic JSON) and
-- :totable().
function M.evaluate(spec)
  spec = check_keys("evaluate", 1, spec, { "truth", "baseline", "surrogate", "classes", "layers", "bootstrap",
    "level", "seed", "rng", "class_names", "layer_names" })
  local rng = spec.rng
  if spec.seed ~= nil then
    if rng then arg_error("evaluate", 1, "give seed or rng, not both") end
    if math.type(spec.seed) ~= "integer" then arg_error("evaluate", 1, "seed: an integer expected") end
    rng = core.rng(spec.seed)
  end
  if (spec.bootstrap == nil or spec.bootstrap > 0) and not rng then
    arg_error("evaluate", 1, "the bootstrap needs a seed or an rng (or bootstrap = 0)")
  end
  return core.evaluate(spec.truth, spec.baseline, spec.surrogate, {
    classes = spec.classes, layers = spec.layers, bootstrap = spec.bootstrap, level = spec.level, rng = rng,
    class_names = spec.class_names, layer_names = spec.layer_names })
end

--- Statistics of every cluster from a count matrix [K, C]: size, purity,
-- entropy (bits), dominant = {{class =, fraction =}, ...} (top 3).
function M.cluster_stats(counts) return core.cluster_stats(counts) end

--- The same as JSON text (class_names optional).
function M.cluster_stats_json(counts, class_names) return core.cluster_stats_json(counts, class_names) end

return M
