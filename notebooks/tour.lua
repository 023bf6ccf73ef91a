--[[md
# A five-minute tour of Strata

This notebook loads a trained CIFAR-10 ResNet-56, looks at the layers it
exposes, classifies some test images and measures its accuracy. It is a
plain Lua file: `strata notebook notebooks/tour.lua -o work/tour.html`
renders this page, and `strata notebooks/tour.lua` runs the same code as a
script.

The data come from `$STRATA_DATA` (default `../shared/datasets`, beside the
checkout; `datasets/README.md` says how to fetch them).
]]
local strata = require "strata"
local nb = strata.notebook

local root = os.getenv("STRATA_DATA") or "../shared/datasets"
local model_path = root .. "/resnet-cifar10-weights/resnet56.safetensors"
local data_dir = root .. "/cifar-10-batches-bin"
local f = io.open(model_path, "rb")
if not f then nb.stop("no model at " .. model_path .. ": set STRATA_DATA (datasets/README.md)") end
f:close()
print("data from " .. root)

--[[md
## The model

`strata.model.load` reads a safetensors file whose metadata names the
architecture, the input size and the preprocessing
(`docs/model-format.md`), and builds the network in C. Printing it gives a
summary of every layer (its name, what it computes, its output shape and
inputs); here are the first lines.
]]
local net = assert(strata.model.load(model_path))
local summary = tostring(net)
print((summary:match("^([^\n]*\n[^\n]*\n[^\n]*\n[^\n]*\n[^\n]*)")))
print(("... %d lines in all"):format(select(2, summary:gsub("\n", "")) + 1))

--[[md
## Taps

Every named output of the network is a *tap*: any of them can be read in a
forward pass, which is how the explainer sees what a layer computes. Names
follow the PyTorch modules (`layer2.3.conv1`), and the Keras-style aliases
`activation`, `activation_18`, `activation_36`, `activation_54` name the four
layers the paper clusters. There are many taps; these are the stage
outputs:
]]
local shapes = {}
for _, t in ipairs(net:taps()) do shapes[t.name] = table.concat(t.shape, " x ") end
local rows = {}
for _, pair in ipairs({ { "input" }, { "stem", "activation" }, { "layer1", "activation_18" },
  { "layer2", "activation_36" }, { "layer3", "activation_54" }, { "pool" }, { "logits" } }) do
  rows[#rows + 1] = { pair[1], pair[2] or "", shapes[pair[1]] }
end
nb.table(rows, { header = { "tap", "alias", "shape (H x W x C)" }, caption = #net:taps() .. " taps in all" })

--[[md
## The data

`strata.data.cifar10` opens the binary batches without reading the pixels:
slices and shuffles are views, and images are read when a batch is asked
for. Labels are class ids from 0, as in the files.
]]
local data = assert(strata.data.cifar10(data_dir))
local names = data.test:label_names()
print("train:", data.train)
print("test: ", data.test)

--[[md
## Classifying a few test images

`data.test:floats(i, j, net)` gives the images preprocessed the way the
model wants them (scaled and normalised as its metadata says), and
`net:forward` returns the logits. A softmax turns them into probabilities.
]]
local x, y = data.test:floats(1, 12, net)
local logits = net:forward(x)
local e = (logits - logits:max(2, true)):exp()
local prob = e / e:sum(2, true)
local top = prob:argmax(2) -- 1-based class positions
local shown = {}
for i = 1, 12 do
  local truth, guess = y:get(i), top:get(i) - 1
  shown[i] = { i, names[truth + 1], names[guess + 1], prob:get(i, guess + 1), guess == truth and "yes" or "NO" }
end
nb.table(shown, { header = { "test image", "true class", "predicted", "probability", "right?" }, format = "%.4f" })

--[[md
## Accuracy on the 1,000 test images

Only the first 1,000 official test images are available here in lossless
form (`../shared/datasets/SOURCES.md`); the reference implementation in
PyTorch gets 92.6% on them. `net:predict` runs the forward pass in batches
and returns class ids.
]]
local xs, labels = data.test:floats(1, #data.test, net)
local pred = net:predict(xs)
local n, right = #data.test, 0
local confusion = strata.zeros(10, 10, "i64") -- rows: predicted, columns: true
for i = 1, n do
  local p, t = pred:get(i), labels:get(i)
  if p == t then right = right + 1 end
  confusion:set(p + 1, t + 1, confusion:get(p + 1, t + 1) + 1)
end
local acc = right / n
local half = 1.96 * math.sqrt(acc * (1 - acc) / n)
print(("accuracy %.1f%% (%d of %d), 95%% interval +-%.1f points"):format(100 * acc, right, n, 100 * half))

--[[md
Per class: *recall* is the share of a class's images the network gets
right, *precision* the share of its predictions of that class that are
right.
]]
local per_class = {}
for c = 1, 10 do
  local predicted, actual = 0, 0
  for k = 1, 10 do
    predicted = predicted + confusion:get(c, k)
    actual = actual + confusion:get(k, c)
  end
  local hit = confusion:get(c, c)
  per_class[c] = { names[c], actual, hit / actual, predicted > 0 and hit / predicted or 0 }
end
nb.table(per_class, { header = { "class", "test images", "recall", "precision" }, format = "%.3f" })

--[[md
## The predictions as a grid

`strata.grid` draws the explanation figures. Its concept grid shows one row
per group of images (in an explanation, one cluster of a layer). Here we
hand it our own groups: row *c* ("concept *c*") holds test images the
network put in class *c*, with each image's **true** class under it, so the
mistakes stand out. The caption of a row gives how many of the 1,000 images
were predicted as that class (n), the share of them that truly are (purity,
the precision above) and the most common true class.
]]
local per_row = 8
local members = strata.zeros(10, per_row, "i64") -- 0 = empty slot
local filled = {}
for i = 1, n do
  local p = pred:get(i) + 1
  filled[p] = (filled[p] or 0) + 1
  if filled[p] <= per_row then members:set(p, filled[p], i) end
end
local canvas = strata.grid.concepts(members, data.test, nil, {
  stats = strata.core.cluster_stats(confusion), scale = 2, title = "test images by predicted class" })
nb.image(canvas, { caption = "rows: predicted class (0 = airplane ... 9 = truck); under each image: its true class" })

--[[md
## Where next

* `notebooks/explain_cifar10.lua`: the paper's walk-through, similar images
  and concepts from a fitted explainer.
* `docs/lua.md`: tensors, files and the `strata` executable;
  `docs/notebooks.md`: how notebooks like this one are written.
]]
