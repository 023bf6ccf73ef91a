-- A tiny fitted explainer for the ac/bundle specs: ResNet-56 from
-- STRATA_DATA, the first 240 CIFAR-10 training images, two small layers
-- (tiny autoencoders, 3 clusters, one epoch, a few iterations). Fitted once
-- per spec file into a fresh temporary directory.
local strata = require "strata"

local M = {}

M.data_dir = os.getenv("STRATA_DATA") or "../shared/datasets"
M.model_path = M.data_dir .. "/resnet-cifar10-weights/resnet56.safetensors"

function M.tmpdir(tag)
  local base = os.tmpname()
  os.remove(base)
  local dir = base .. "-" .. tag
  strata.ac.mkdirs(dir)
  return dir
end

M.LAYERS = {
  { tap = "activation_36", clusters = 3, filters = { 8, 8, 8, 4 } },
  { tap = "activation_54", clusters = 3, filters = { 8, 8, 8, 4 } },
}
M.FIT = { epochs = 1, maxiter = 10, update_interval = 5 }

--- net, data (train 240 / test 60 views), and a fitted explainer.
function M.fitted(tag, extra)
  local net = assert(strata.model.load(M.model_path))
  local data = assert(strata.data.cifar10(M.data_dir .. "/cifar-10-batches-bin"))
  local train, test = data.train:slice(1, 240), data.test:slice(1, 60)
  local opts = { net = net, model = M.model_path, dir = M.tmpdir(tag), seed = 7, layers = M.LAYERS, quiet = true }
  for k, v in pairs(extra or {}) do opts[k] = v end
  local ac = strata.ac.new(opts)
  ac:fit(train, M.FIT)
  return { net = net, train = train, test = test, ac = ac, dir = opts.dir }
end

--- Removes a directory tree made by a spec (paths from tmpdir only).
function M.remove(dir)
  assert(dir:match("^/tmp/"), "refusing to remove " .. dir)
  os.execute("rm -rf '" .. dir .. "'")
end

return M
