#!/usr/bin/env bash
# Runs every benchmark against its peer, one after another, and keeps the
# whole output in a log. Run it on an otherwise idle machine: each script
# compares Strata with PyTorch / scikit-learn / SciPy in the same run, but
# absolute rates depend on what else is running.
#
# usage: scripts/bench_all.sh [build-dir=build] [log=bench-all.log]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
log=${2:-bench-all.log}
data=${STRATA_DATA:-$( [ -d ../shared/datasets ] && echo ../shared/datasets || echo datasets )}
[ -x "$build/bin/strata" ] || { echo "build '$build' not found: cmake -S . -B $build && cmake --build $build" >&2; exit 2; }
{
  echo "# bench_all $(date -u +%FT%TZ) on $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
  STRATA_BUILD_DIR=$build bash scripts/bench_matmul.sh 5
  bash scripts/bench_resnet.sh "$build" "$data"
  bash scripts/bench_cae.sh "$build" 5 3
  bash scripts/bench_kmeans.sh "$build" 3 "sphere normal"
  bash scripts/bench_knn.sh "$build" 3
} 2>&1 | tee "$log"
