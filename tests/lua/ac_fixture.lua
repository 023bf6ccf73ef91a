-- A tiny fitted explainer for the ac/bundle specs: ResNet-56 from
-- STRATA_DATA, the first 240 CIFAR-10 training images, two small layers
-- (tiny autoencoders, 3 clusters, one epoch, a few iterations). Fitted once
-- per spec file into a fresh temporary directory.
local strata = require "strata"

local M = {}

-- Specs run in tests/lua; the shared copy sits beside the checkout.
M.data_dir = os.getenv("STRATA_DATA") or "../../../shared/datasets"
M.model_path = M.data_dir .. "/resnet-cifar10-weights/resnet56.safetensors"
M.cifar_dir = M.data_dir .. "/cifar-10-batches-bin"

local function readable(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

--- nil when the shared data is there, else one line naming the first
--- missing file and how to provide it (for busted's pending).
function M.missing()
  local need = { { M.model_path } } -- each entry: any one of its files will do
  for i = 1, 5 do need[#need + 1] = { ("%s/data_batch_%d.bin"):format(M.cifar_dir, i) } end
  need[#need + 1] = { M.cifar_dir .. "/test_batch.bin", M.cifar_dir .. "/test_batch_first1000.bin" }
  for _, any in ipairs(need) do
    if not (readable(any[1]) or (any[2] and readable(any[2]))) then
      return any[1] .. " is missing: set STRATA_DATA to the shared datasets directory, or run "
        .. "datasets/fetch_resnet56.sh and datasets/fetch_cifar10.sh and set STRATA_DATA=<checkout>/datasets"
    end
  end
  return nil
end

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
  local data = assert(strata.data.cifar10(M.cifar_dir))
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
