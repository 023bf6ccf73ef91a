--- strata.grid: the figures of an explanation, as PNG files (docs/figures.md).
--
--   strata.grid.similar(data.test, data.train, nn, "similar.png", {title = ...})
--   strata.grid.weights_comparison(data.test, data.train,
--       {equal = nn1, ["low level"] = nn2}, "weights.png")      -- or a list of {title =, nn =}
--   strata.grid.concepts(members, data.train, "concepts.png", {stats = ..., title = ...})
--   strata.grid.concepts(ac, 4, data.train, "concepts.png")   -- an explainer and a layer
--
-- Images come from a dataset (strata.data: anything with read(i, j) and
-- label_names()), from a u8 tensor [N, H, W, C] (labels and class names
-- then come from opts.labels / opts.class_names, or are left out), or from
-- a table {images =, labels =, class_names =}.
--
-- nn is what a query returns: an i64 tensor [Q, k] of 1-based positions in
-- the training images, or a table {indices = tensor, queries = positions}
-- where `queries` (a tensor or list of 1-based positions in the query
-- images) says which query each row belongs to; without it row r is query
-- image r. Entries of 0 (or below) are empty slots.
--
-- Every function returns the canvas (a u8 [H, W, 3] tensor); with a path
-- it is also written as PNG (atomically), and a failed write returns nil
-- and the message. Options: scale (3), text_scale (2), gap (4), title,
-- row_titles, plus per function the ones listed there. Unknown keys are an
-- error.
local core = require "strata.core"
local util = require "strata.util"

local M = {}

local function is_tensor(x) return core.is_tensor(x) end

local arg_error, check_keys = util.arg_error, util.check_keys

-- The positions held by a tensor or a list, as a Lua list.
local function position_list(x)
  if is_tensor(x) then
    local out = {}
    for i = 1, x:numel() do out[i] = math.tointeger(x:reshape(x:numel()):get(i)) end
    return out
  end
  return x
end

-- A source of images: read(positions) -> images [n, H, W, C], labels [n] or nil, class names or nil.
local function source(fname, n, x, labels, names)
  if is_tensor(x) then
    return {
      count = x:shape()[1],
      read = function(pos)
        local idx = core.tensor(pos, "i64")
        return x:index_select(1, idx), labels and labels:index_select(1, idx) or nil, names
      end,
    }
  end
  if type(x) == "table" and is_tensor(x.images) then
    return source(fname, n, x.images, x.labels, x.class_names)
  end
  if type(x) == "table" and type(x.read) == "function" then
    local ds_names = names or (x.label_names and x:label_names()) or nil
    return {
      count = #x,
      read = function(pos)
        local images, labs = {}, {}
        for i, p in ipairs(pos) do images[i], labs[i] = x:read(p, p) end
        return core.concat(images, 1), core.concat(labs, 1), ds_names
      end,
    }
  end
  arg_error(fname, n, "images: a dataset, a u8 tensor [N, H, W, C] or {images =, labels =} expected, got " .. type(x))
end

-- The distinct positions used by neighbour matrices (in first-use order),
-- and the matrices renumbered into that compact list.
local function compact(fname, n, matrices, count)
  local order, where, out = {}, {}, {}
  for b, m in ipairs(matrices) do
    local shape = m:shape()
    if #shape ~= 2 then arg_error(fname, n, "neighbours: a [rows, k] tensor expected") end
    local r = core.zeros(shape[1], shape[2], "i64")
    for i = 1, shape[1] do
      for j = 1, shape[2] do
        local p = math.tointeger(m:get(i, j))
        if p and p >= 1 then
          if p > count then
            arg_error(fname, n, string.format("neighbours: entry [%d, %d] is %d, outside 1..%d", i, j, p, count))
          end
          if not where[p] then
            order[#order + 1] = p
            where[p] = #order
          end
          r:set(i, j, where[p])
        end
      end
    end
    out[b] = r
  end
  return order, out
end

local function image_set(images, labels, names)
  return { images = images, labels = labels, class_names = names }
end

-- The query images and their rows: nn.queries, opts.queries or 1..Q.
local function queries_of(fname, src, nn, q, opts)
  local pos = position_list((type(nn) == "table" and not is_tensor(nn) and nn.queries) or opts.queries)
  if not pos then
    pos = {}
    for i = 1, q do pos[i] = i end
  end
  if #pos ~= q then arg_error(fname, 3, string.format("queries: %d positions for %d rows", #pos, q)) end
  for i, p in ipairs(pos) do
    if math.type(p) ~= "integer" or p < 1 or p > src.count then
      arg_error(fname, 3, string.format("queries: entry %d is %s, outside 1..%d", i, tostring(p), src.count))
    end
  end
  return src.read(pos)
end

local function indices_of(fname, n, nn)
  if is_tensor(nn) then return nn end
  if type(nn) == "table" and is_tensor(nn.indices or nn.index) then return nn.indices or nn.index end
  arg_error(fname, n, "neighbours: a tensor [Q, k] or {indices = tensor, queries = ...} expected")
end

local COMMON = { "scale", "text_scale", "gap", "title", "row_titles", "labels", "class_names", "query_labels",
  "query_class_names", "queries" }

local function figure_opts(opts, extra)
  local o = {}
  for _, k in ipairs({ "scale", "text_scale", "gap", "title", "row_titles" }) do o[k] = opts[k] end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

local function with(list, more)
  local out = { table.unpack(list) }
  for _, k in ipairs(more) do out[#out + 1] = k end
  return out
end

--- Similar images: per row the query in a red frame, then its neighbours.
-- opts: see the module comment; labels / class_names describe a training
-- tensor, query_labels / query_class_names a query tensor; queries as nn.queries.
function M.similar(query_images, train_images, nn, path, opts)
  opts = check_keys("similar", 5, opts, COMMON)
  local idx = indices_of("similar", 3, nn)
  local qsrc = source("similar", 1, query_images, opts.query_labels, opts.query_class_names or opts.class_names)
  local tsrc = source("similar", 2, train_images, opts.labels, opts.class_names)
  local order, renumbered = compact("similar", 3, { idx }, tsrc.count)
  local qi, ql, qn = queries_of("similar", qsrc, nn, idx:shape()[1], opts)
  local ti, tl, tn = tsrc.read(order)
  return core.figure_similar(image_set(qi, ql, qn), image_set(ti, tl, tn), renumbered[1], figure_opts(opts), path)
end

--- The same queries under several weightings, one titled block each
-- (stacked; opts.side_by_side puts them in a row). blocks: a list of
-- {title = "equal", nn = ...} or a table {title = nn, ...} (sorted by title).
function M.weights_comparison(query_images, train_images, blocks, path, opts)
  opts = check_keys("weights_comparison", 5, opts, with(COMMON, { "side_by_side" }))
  if type(blocks) ~= "table" then arg_error("weights_comparison", 3, "blocks: a table expected") end
  local list = {}
  if #blocks > 0 then
    for i, b in ipairs(blocks) do
      if type(b) ~= "table" or b.nn == nil then arg_error("weights_comparison", 3, "blocks: entry " .. i .. " needs nn") end
      list[i] = b
    end
  else
    for title, nn in pairs(blocks) do list[#list + 1] = { title = tostring(title), nn = nn } end
    table.sort(list, function(a, b) return a.title < b.title end)
  end
  if #list == 0 then arg_error("weights_comparison", 3, "blocks: at least one expected") end
  local mats, titles = {}, {}
  for i, b in ipairs(list) do
    mats[i] = indices_of("weights_comparison", 3, b.nn)
    titles[i] = b.title or ("block " .. i)
  end
  local qsrc = source("weights_comparison", 1, query_images, opts.query_labels, opts.query_class_names or opts.class_names)
  local tsrc = source("weights_comparison", 2, train_images, opts.labels, opts.class_names)
  local order, renumbered = compact("weights_comparison", 3, mats, tsrc.count)
  local qi, ql, qn = queries_of("weights_comparison", qsrc, list[1].nn, mats[1]:shape()[1], opts)
  local ti, tl, tn = tsrc.read(order)
  return core.figure_weights(image_set(qi, ql, qn), image_set(ti, tl, tn), renumbered,
    figure_opts(opts, { block_titles = titles, side_by_side = opts.side_by_side }), path)
end

--- Concepts: one row per cluster with the training images nearest its
-- centre. Two forms:
--   concepts(members, train_images, path, opts)
--   concepts(explainer, layer, train_images, path, opts)
-- members: [K, k] 1-based positions in train_images (a concept query's
-- result); an explainer gives them as explainer:concepts(layer) and the
-- statistics as explainer:cluster_stats(layer) when it has that method.
-- opts.stats: the cluster statistics list (surrogate s:cluster_stats(l) or
-- strata.core.cluster_stats(counts)) for the row captions; opts.clusters:
-- which rows to show (cluster ids from 0).
function M.concepts(a, b, c, d, e)
  local members, train_images, path, opts, stats
  if is_tensor(a) then
    members, train_images, path, opts = a, b, c, d
  elseif type(a) == "table" and type(a.concepts) == "function" then
    members, train_images, path, opts = a:concepts(b), c, d, e
    if type(a.cluster_stats) == "function" then stats = a:cluster_stats(b) end
  else
    arg_error("concepts", 1, "members: a tensor [K, k] of positions or an explainer expected")
  end
  opts = check_keys("concepts", is_tensor(a) and 4 or 5, opts,
    { "scale", "text_scale", "gap", "title", "labels", "class_names", "stats", "clusters" })
  stats = opts.stats or stats
  local ids = opts.clusters
  if ids then
    local rows = {}
    for i, id in ipairs(ids) do
      if math.type(id) ~= "integer" or id < 0 or id >= members:shape(1) then
        arg_error("concepts", 4, string.format("clusters: entry %d is %s, outside 0..%d", i, tostring(id), members:shape(1) - 1))
      end
      rows[i] = id + 1
    end
    members = members:index_select(1, core.tensor(rows, "i64"))
    if stats then
      local picked = {}
      for i, id in ipairs(ids) do picked[i] = stats[id + 1] end
      stats = picked
    end
  end
  local tsrc = source("concepts", 2, train_images, opts.labels, opts.class_names)
  local order, renumbered = compact("concepts", 1, { members }, tsrc.count)
  local ti, tl, tn = tsrc.read(order)
  return core.figure_concepts(image_set(ti, tl, tn), renumbered[1],
    figure_opts(opts, { stats = stats, cluster_ids = ids }), path)
end

--- Writes any canvas (u8 [H, W, 3]) as PNG: true or nil, message.
function M.save(canvas, path) return core.figure_save(canvas, path) end

return M
