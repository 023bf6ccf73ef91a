#!/usr/bin/env bash
# The README's first command: explains the pretrained ResNet-56 on CIFAR-10.
# Installs the Debian packages, builds, finds (or fetches) the data, and runs
# `strata explain` into work/cifar10 with settings that finish in about three
# minutes on a 2-core machine (docs/explainer.md, "The first command"):
# the paper's four layers with 15 clusters each, the reference's quick
# training settings (3 epochs, 280 iterations) on the first 10,000 training
# images, metrics on the test images and the training set, all figures.
# Extra arguments go to strata explain (e.g. --train-limit 50000 for all).
# Running it again resumes and reuses finished work.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build=${STRATA_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target strata_exe >/dev/null

data=${STRATA_DATA:-}
if [ -z "$data" ]; then
  if [ -d ../shared/datasets/cifar-10-batches-bin ]; then
    data=$(cd ../shared/datasets && pwd)
  else
    bash datasets/fetch_cifar10.sh
    bash datasets/fetch_resnet56.sh
    data=$PWD/datasets
  fi
fi

out=${STRATA_EXPLAIN_OUT:-work/cifar10}
mkdir -p "$out"
"$build/bin/strata" explain \
  --model "$data/resnet-cifar10-weights/resnet56.safetensors" \
  --data "$data/cifar-10-batches-bin" \
  --out "$out" --train-limit 10000 --epochs 3 --maxiter 280 "$@" \
  | tee "$out/explain.log"
echo "figures: $out/bundle/figures/*.png   metrics: $out/bundle/summary.txt"
