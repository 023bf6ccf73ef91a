--[[md
# Explaining a CIFAR-10 ResNet-56 by clustering its layers

This is the walk-through of the paper's notebook (Liu & Arik 2020; the
steps are listed in `METHOD.md`, section e): restore a fitted explainer,
report how faithful it is to the network, show the training images it
finds similar to test images at low and high levels, and show the concepts
its layers have learned.

It reads a fitted explainer, it does not fit one. Make it first (about ten
minutes on two cores; the bundle goes to `work/cifar10/bundle`):

```sh
scripts/explain.sh
```

Then render this page from the checkout: `strata notebook
notebooks/explain_cifar10.lua -o work/explain_cifar10.html`. Another work
directory can be named as the notebook's argument (`strata notebook
notebooks/explain_cifar10.lua -- DIR`) or with `STRATA_EXPLAIN_OUT`, as
`scripts/explain.sh` uses it.
]]
local strata = require "strata"
local nb = strata.notebook

local root = os.getenv("STRATA_DATA") or "../shared/datasets"
local work = (arg and arg[1]) or os.getenv("STRATA_EXPLAIN_OUT") or "work/cifar10"
local bundle_dir = work .. "/bundle"
local probe = io.open(bundle_dir .. "/manifest.json", "rb")
if not probe then
  nb.markdown(([[
**No explainer found** at `%s`. Make one with `scripts/explain.sh` (it
writes `work/cifar10/bundle`), or name a work directory holding a `bundle`
folder made by `strata explain --out DIR`. The rest of this notebook needs it.]]):format(bundle_dir))
  nb.stop("no bundle at " .. bundle_dir)
end
probe:close()
print("explainer: " .. bundle_dir)
print("data:      " .. root)

--[[md
## Restoring the explainer

`strata.ac.load` reads the bundle: the configuration (plain data), the
weights of every layer's clustering model, the training embeddings and the
cluster posteriors. Every file is checked against the bundle's manifest
(sizes and SHA-256) before it is read, and nothing in a bundle is run as
code. The network comes from the shared ResNet-56 file.
]]
local net = assert(strata.model.load(root .. "/resnet-cifar10-weights/resnet56.safetensors"))
local ac = assert(strata.ac.load(bundle_dir, { net = net, quiet = true }))
print(ac)

--[[md
The explainer was fitted on the first *n* training images (`strata explain
--train-limit`), and every training position it returns refers to them. We
open the same images and check that their labels are the ones the bundle
stored.
]]
local data = assert(strata.data.cifar10(root .. "/cifar-10-batches-bin"))
local n_train = ac.config.n_train
local train = data.train:slice(1, n_train)
local test = data.test
assert(train:labels():equal(ac.train_labels:to("i64")),
  "the bundle's training labels are not those of the first " .. n_train .. " training images")
print(("training images: %d (the first %d of %d); test images: %d"):format(n_train, n_train, #data.train, #test))

--[[md
## How faithful is it?

The explainer's *surrogate* predicts a class from the clusters an image
falls in, through each cluster's label distribution on the training set.
Its **accuracy** is measured against the true labels, and its **fidelity**
is how often it agrees with the network. The intervals are percentile
bootstrap intervals over the test images. The paper reports its numbers on
all 10,000 test images; here only the first 1,000 exist in lossless form.
]]
local ev = ac:evaluate(test, { bootstrap = 200 })
print(ev)

--[[md
### The first three test images

For each: the network's prediction, the surrogate's class probabilities
(`ac:predict_proba`) and the cluster each layer assigns it to
(`ac:assign`, clusters counted from 0).
]]
local names = test:label_names()
local first = test:slice(1, 3)
local proba = ac:predict_proba(first)
local _, ids = ac:assign(first)
local baseline = net:predict(first:floats(1, 3, net))
local rows = {}
for i = 1, 3 do
  local best = proba:select(1, i):argmax()
  local clusters = {}
  for l = 1, ac.L do clusters[l] = tostring(ids[l]:get(i)) end
  rows[i] = { i, names[first:labels():get(i) + 1], names[baseline:get(i) + 1], names[best],
    proba:get(i, best), table.concat(clusters, " / ") }
end
nb.table(rows, {
  header = { "test image", "true class", "network", "surrogate", "P(surrogate class)", "clusters per layer" },
  format = "%.3f" })
local summary = ev:totable()
print(("the network is right on %d of %d test images"):format(math.floor(summary.baseline_accuracy * summary.n + 0.5),
  summary.n))

--[[md
## Similar training images

For a test image, `ac:query` ranks the training images by a weighted sum of
their distances to it in every layer's embedding. The weights say which
layers count: equal weights mix everything; weights on the first layers
find images that *look* alike (colours, textures, layout); weights on the
last layers find images the network *treats* alike (mostly the same class).
These are the paper's three weightings. Each row starts with the test image
in a red frame, followed by its 10 nearest training images, nearest first,
each with its true class.

The reference picks its 10 test images at random without a seed; here they
are drawn with the explainer's seed, so the page is the same every time.
]]
local Q, K = 10, 10
local queries, picks, titles = require("strata.explain").pick_queries(ac, test, Q)
local weightings = {
  { "equal", { 1, 1, 1, 1 } },
  { "low level", { 2, 1, 0, 0 } },
  { "high level", { 0, 0, 1, 2 } },
}
local neighbours = {}
for _, w in ipairs(weightings) do
  local title = ("%s weights (%s)"):format(w[1], table.concat(w[2], ", "))
  neighbours[w[1]] = ac:query(queries, { k = K, weights = w[2] })
  nb.image(strata.grid.similar(test, train, { indices = neighbours[w[1]], queries = picks }, nil,
    { title = title, row_titles = titles, scale = 2 }))
end

--[[md
## The baseline: nearest neighbours in the network's features

The usual way to find "similar" training images is to compare the
network's last features directly. The reference compares the raw
`activation_54` tensors (4,096 numbers); `ac:query_features` uses the
explainer's feature tap (here `pool`, the 64 numbers the classifier reads).
The neighbours mostly share the class, but low-level likeness is lost,
which is what the layer-weighted query above adds.
]]
local baseline_nn = ac:query_features(queries, { k = K })
nb.image(strata.grid.similar(test, train, { indices = baseline_nn, queries = picks }, nil,
  { title = "nearest neighbours in the features (" .. ac.config.feature_tap .. ")", row_titles = titles, scale = 2 }),
  { caption = "baseline: Euclidean distance in the network's features" })

--[[md
## Concepts

Each cluster of a layer is a *concept*: `ac:concepts(l)` gives the training
images nearest its centre. A row's caption gives the cluster's size on the
training set, its purity (the share of its largest class) and that class.
Early layers group images by colour and texture, whatever their class; the
last layer's concepts are mostly single classes. As in the paper, the first,
third and last layers are shown.
]]
for _, l in ipairs({ 1, 3, ac.L }) do
  local tap = ac.config.layers[l].tap
  nb.image(strata.grid.concepts(ac, l, train, nil, { title = ("layer %d (%s)"):format(l, tap), scale = 2 }),
    { caption = ("concepts of layer %d, %s: the %d training images nearest each cluster centre"):format(l, tap, K) })
end

--[[md
## Where next

* `docs/explainer.md`: fitting an explainer from Lua (`strata.ac.new`,
  `ac:fit`), its options and the bundle's files.
* `strata explain --help`: the same from the command line, with the figures
  and metrics written into the bundle.
]]
