--- Extracts activations of a model on CIFAR-10 (all 50,000 training and the
-- test images, train first) to .npy files, with a progress bar on a terminal.
--
--   strata scripts/extract_activations.lua [--model FILE] [--data DIR] [--out DIR]
--          [--batch 256] [--split all|train|test] [--taps activation,activation_18,...]
--
-- Defaults: the shared ResNet-56 and CIFAR-10 under $STRATA_DATA (or
-- ../shared/datasets), out = work/activations, the four Table-1 taps
-- (activation, activation_18, activation_36, activation_54). Writes
-- <out>/<tap>.npy (f32 [N, H, W, C]), logits.npy, pred.npy and labels.npy
-- (i64 [N]); with --split all the rows are the training images in file order,
-- then the test images. Memory stays bounded by one batch.
local strata = require "strata"

local data_root = os.getenv("STRATA_DATA") or "../shared/datasets"
local opts = {
  model = data_root .. "/resnet-cifar10-weights/resnet56.safetensors",
  data = data_root .. "/cifar-10-batches-bin",
  out = "work/activations",
  batch = 256,
  split = "all",
  taps = "activation,activation_18,activation_36,activation_54",
}
local i = 1
while i <= #arg do
  local key = arg[i]:match("^%-%-([%w_]+)$")
  if not key or opts[key] == nil then error("unexpected argument '" .. arg[i] .. "'") end
  opts[key] = arg[i + 1] or error("--" .. key .. " needs a value")
  i = i + 2
end

local net = assert(strata.model.load(opts.model))
if opts.split ~= "all" and opts.split ~= "train" and opts.split ~= "test" then
  error("--split must be all, train or test")
end
local taps = {}
for name in opts.taps:gmatch("[^,]+") do taps[#taps + 1] = name end
os.execute("mkdir -p '" .. opts.out .. "'")

-- One pass over the chosen parts: a dataset over both files in order.
local files = {}
for k = 1, 5 do files[k] = ("%s/data_batch_%d.bin"):format(opts.data, k) end
local test = io.open(opts.data .. "/test_batch.bin") and opts.data .. "/test_batch.bin"
  or opts.data .. "/test_batch_first1000.bin"
local list = opts.split == "train" and files or opts.split == "test" and { test } or { table.unpack(files) }
if opts.split == "all" then list[#list + 1] = test end
local ds = assert(strata.data.cifar_files(list))

print(("%s: %d images -> %s (taps %s)"):format(net:name(), #ds, opts.out, table.concat(taps, ", ")))
local t0 = os.time()
ds:extract(net, { taps = taps, batch = tonumber(opts.batch), dir = opts.out })
print(("done in %d s"):format(os.time() - t0))
