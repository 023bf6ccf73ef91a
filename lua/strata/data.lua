--- strata.data: labelled image datasets for the nets.
--
--   local data = strata.data.cifar10(dir)          -- {train = ds, test = ds}
--   #data.train, data.train:label_names()
--   local first = data.test:slice(1, 100)          -- positions are 1-based
--   local mixed = data.train:shuffle(42)           -- same seed, same order
--   for x, labels, pos in mixed:batches(256, net) do ... end
--   data.test:images(1, 8)   -- u8 [8, 32, 32, 3], for display
--   data.test:floats(1, 8, net) -- f32 [8, 32, 32, 3], normalised for net
--   data.test:extract(net, {taps = {"layer1"}, dir = "work"})
--
-- Labels are class ids counted from 0, as in the files; label_names()[id + 1]
-- is the name. Slices and shuffles are views: no pixels are copied until a
-- batch is read.
local core = require "strata.core"

local M = {}

local CIFAR10_NAMES = { "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck" }

local Dataset = {}
Dataset.__index = Dataset

-- A view of positions first..first+count-1 of `index` (an i64 tensor of
-- 1-based positions in the underlying dataset) or of the dataset itself.
local function view(ud, index, first, count)
  return setmetatable({ _ud = ud, _index = index, _first = first, _count = count }, Dataset)
end

local function wrap(ud) return view(ud, nil, 1, ud:count()) end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function read_lines(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local lines = {}
  for line in f:lines() do
    line = line:gsub("%s+$", "")
    if line ~= "" then lines[#lines + 1] = line end
  end
  f:close()
  return lines
end

function Dataset:__len() return self._count end
function Dataset:len() return self._count end

function Dataset:__tostring()
  local h, w, c = self._ud:shape()
  return string.format("dataset: %d images %dx%dx%d, %d classes", self._count, h, w, c, self._ud:class_count())
end

--- Image height, width, channels.
function Dataset:shape() return self._ud:shape() end

--- Class names (a table, entry id+1 for class id), or nil when unknown.
-- With `coarse` true, CIFAR-100's superclass names.
function Dataset:label_names(coarse) return self._ud:class_names(coarse) end

function Dataset:class_count(coarse) return self._ud:class_count(coarse) end

local function range(self, i, j, fname)
  local n = self._count
  i = i or 1
  j = j or n
  if math.type(i) ~= "integer" then error(("bad argument #1 to '%s' (first: integer expected)"):format(fname), 3) end
  if math.type(j) ~= "integer" then error(("bad argument #2 to '%s' (last: integer expected)"):format(fname), 3) end
  if i < 0 then i = n + i + 1 end
  if j < 0 then j = n + j + 1 end
  if i < 1 or j > n or j < i - 1 then
    error(("bad argument to '%s' (positions %d..%d outside 1..%d)"):format(fname, i, j, n), 3)
  end
  return i, j - i + 1
end

--- Positions i..j (inclusive; negative counts from the end) as a new dataset.
function Dataset:slice(i, j)
  local first, count = range(self, i, j, "slice")
  return view(self._ud, self._index, self._first + first - 1, count)
end

-- The underlying positions of this view, as an i64 tensor (or nil when the
-- view is the whole dataset in order).
function Dataset:_positions()
  if not self._index and self._first == 1 and self._count == self._ud:count() then return nil end
  local strata = require "strata"
  local out = strata.zeros(self._count, "i64")
  for k = 1, self._count do
    local p = self._first + k - 1
    out:set(k, self._index and self._index:get(p) or p)
  end
  return out
end

--- The same images in a random order fixed by `seed` (an integer).
function Dataset:shuffle(seed)
  if math.type(seed) ~= "integer" then error("bad argument #1 to 'shuffle' (seed: integer expected)", 2) end
  local strata = require "strata"
  local perm = strata.rng(seed):permutation(self._count)
  local base = self:_positions()
  for k = 1, self._count do
    local p = perm:get(k)
    perm:set(k, base and base:get(p) or p)
  end
  return view(self._ud, perm, 1, self._count)
end

--- u8 images [n, H, W, C] and i64 labels [n] of positions i..j (default all).
-- CIFAR-100 also returns its coarse labels.
function Dataset:read(i, j)
  local first, count = range(self, i, j, "read")
  return self._ud:read(self._index, self._first + first - 1, count)
end

function Dataset:images(i, j) return (self:read(i, j)) end

function Dataset:labels(i, j)
  local _, labels = self:read(i, j)
  return labels
end

--- One image u8 [H, W, C] and its label.
function Dataset:image(i)
  local images, labels = self:read(i, i)
  return images:select(1, 1), labels:get(1)
end

--- Masks u8 [n, H, W] of positions i..j (image folders with masks).
function Dataset:masks(i, j)
  local first, count = range(self, i, j, "masks")
  return self._ud:read_masks(self._index, self._first + first - 1, count)
end

--- f32 [n, H, W, C] of positions i..j, preprocessed the way `net` wants.
function Dataset:floats(i, j, net)
  if net == nil then error("bad argument #3 to 'floats' (net expected)", 2) end
  local images, labels = self:read(i, j)
  return net:preprocess(images), labels
end

--- for x, labels, first in ds:batches(size [, net]) do ... end
-- x is f32 for the net when one is given, else u8.
function Dataset:batches(size, net)
  if math.type(size) ~= "integer" or size < 1 then
    error("bad argument #1 to 'batches' (size: positive integer expected)", 2)
  end
  local pos = 1
  return function()
    if pos > self._count then return nil end
    local first, last = pos, math.min(pos + size - 1, self._count)
    pos = last + 1
    local images, labels = self:read(first, last)
    if net then images = net:preprocess(images) end
    return images, labels, first
  end
end

-- A progress bar on stderr: done/total, rate and ETA, redrawn in place.
local function progress_bar(label)
  local start = os.clock()
  local wall = os.time()
  return function(done, total)
    local elapsed = math.max(os.time() - wall, os.clock() - start, 1e-6)
    local rate = done / elapsed
    local eta = rate > 0 and (total - done) / rate or 0
    local width = 30
    local filled = math.floor(width * done / total)
    io.stderr:write(("\r%s [%s%s] %d/%d  %.0f img/s  ETA %d:%02d "):format(label, ("#"):rep(filled),
      ("."):rep(width - filled), done, total, rate, eta // 60, math.floor(eta % 60)))
    if done == total then io.stderr:write("\n") end
    io.stderr:flush()
  end
end

local EXTRACT_KEYS = { taps = true, batch = true, dir = true, in_memory = true, progress = true, quiet = true }

--- Runs the images through `net` and writes <dir>/<tap>.npy for each tap,
-- logits.npy, pred.npy and labels.npy (memory bounded by one batch).
-- opts: taps (list of names), batch (256), dir, in_memory (also return
-- {name = tensor}), progress (function(done, total); default: a bar when
-- stderr is a terminal), quiet (no bar).
function Dataset:extract(net, opts)
  opts = opts or {}
  for k in pairs(opts) do
    if not EXTRACT_KEYS[k] then error(("bad argument #2 to 'extract' (unknown option '%s')"):format(tostring(k)), 2) end
  end
  local progress = opts.progress
  if progress == nil and not opts.quiet and core.stderr_is_terminal() then progress = progress_bar("extract") end
  return self._ud:extract(net, {
    taps = opts.taps, batch = opts.batch, dir = opts.dir, in_memory = opts.in_memory,
    index = self:_positions(), progress = progress,
  })
end

---------------------------------------------------------------- constructors

local function failure(msg) return nil, msg end

--- Any file(s) of CIFAR binary records: kind 10 (default) or 100.
function M.cifar_files(paths, kind)
  if type(paths) == "string" then paths = { paths } end
  local ud, err = core.cifar_open(kind or 10, paths)
  if not ud then return failure(err) end
  return wrap(ud)
end

local function with_names(ds, names, coarse)
  if ds and names then ds._ud:set_class_names(names, coarse) end
  return ds
end

--- CIFAR-10 from its binary folder: train = data_batch_1..5.bin, test =
-- test_batch.bin (or test_batch_first1000.bin when only that exists).
function M.cifar10(dir)
  if type(dir) ~= "string" then error("bad argument #1 to 'cifar10' (dir: string expected)", 2) end
  local train = {}
  for i = 1, 5 do train[i] = ("%s/data_batch_%d.bin"):format(dir, i) end
  local test = dir .. "/test_batch.bin"
  if not exists(test) and exists(dir .. "/test_batch_first1000.bin") then test = dir .. "/test_batch_first1000.bin" end
  local names = read_lines(dir .. "/batches.meta.txt") or CIFAR10_NAMES
  local tr, err = M.cifar_files(train, 10)
  if not tr then return failure(err) end
  local te, err2 = M.cifar_files(test, 10)
  if not te then return failure(err2) end
  return { train = with_names(tr, names), test = with_names(te, names) }
end

--- CIFAR-100 from its binary folder (train.bin, test.bin; class names from
-- fine_label_names.txt / coarse_label_names.txt when present).
function M.cifar100(dir)
  if type(dir) ~= "string" then error("bad argument #1 to 'cifar100' (dir: string expected)", 2) end
  local fine, coarse = read_lines(dir .. "/fine_label_names.txt"), read_lines(dir .. "/coarse_label_names.txt")
  local out = {}
  for _, part in ipairs({ "train", "test" }) do
    local ds, err = M.cifar_files(("%s/%s.bin"):format(dir, part), 100)
    if not ds then return failure(err) end
    out[part] = with_names(with_names(ds, fine, false), coarse, true)
  end
  return out
end

--- An image folder: <dir>/<class>/<image>. opts: size = {h, w} (required),
-- channels (3), filter ("area" or "bilinear"), masks (a folder of
-- <class>/<name>.png masks).
function M.imagefolder(dir, opts)
  if type(dir) ~= "string" then error("bad argument #1 to 'imagefolder' (dir: string expected)", 2) end
  if type(opts) ~= "table" then error("bad argument #2 to 'imagefolder' (options table expected)", 2) end
  local ud, err = core.imagefolder_open(dir, opts)
  if not ud then return failure(err) end
  return wrap(ud)
end

return M
