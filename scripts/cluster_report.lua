--- The clusters of a fitted explainer, as Markdown: for every layer the
-- overall label purity, the cluster sizes and one row per cluster (size,
-- dominant class, purity, entropy in bits), from the training-set counts kept in
-- the bundle (docs/results-clustering.md uses it).
--
--   strata scripts/cluster_report.lua BUNDLE [--json FILE]
--
-- Purity of a cluster: the share of its training images in its dominant
-- class (by the labels the posteriors were fitted on). Overall purity: the
-- sum over clusters of the dominant class's count, divided by N.
local strata = require "strata"

local bundle, json_path = arg[1], nil
if not bundle then error("usage: strata scripts/cluster_report.lua BUNDLE [--json FILE]", 0) end
if arg[2] == "--json" then json_path = arg[3] or error("--json needs a file name", 0) end

local ac = assert(strata.ac.load(bundle))
local names = ac.config.class_names
local function class_name(c) return names and names[c + 1] or tostring(c) end

local report = {}
for l, layer in ipairs(ac.config.layers) do
  local stats = ac:cluster_stats(l)
  local n, hits, empty, smallest, largest = 0, 0, 0, math.huge, 0
  for _, s in ipairs(stats) do
    n = n + s.size
    hits = hits + s.size * s.purity
    if s.size == 0 then empty = empty + 1 end
    smallest, largest = math.min(smallest, s.size), math.max(largest, s.size)
  end
  local purity = n > 0 and hits / n or 0
  report[l] = { tap = layer.tap, n = n, purity = purity, empty = empty, smallest = smallest, largest = largest,
    clusters = stats }
  print(("## %s: purity %.4f, %d clusters of %d to %d images (%d empty), N = %d\n"):format(layer.tap, purity,
    #stats, smallest, largest, empty, n))
  print("| cluster | size | dominant class | purity | entropy (bits) |")
  print("|---|---|---|---|---|")
  for _, s in ipairs(stats) do
    local top = s.dominant[1]
    print(("| %d | %d | %s | %.3f | %.3f |"):format(s.cluster, s.size, top and class_name(top.class) or "-", s.purity,
      s.entropy))
  end
  print()
end

if json_path then
  local f = assert(io.open(json_path, "w"))
  f:write(strata.core.json_encode(report, true), "\n")
  f:close()
end
