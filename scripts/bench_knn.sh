#!/usr/bin/env bash
# Similar-example retrieval, Strata's streaming k-NN against the reference
# approach (per-layer SciPy cdist, weighted sum, full argsort; METHOD.md
# d.3) in the same run: 1,000 queries, 50,000 training rows, 4 layers of
# 20 dimensions, k = 10, weights 1..4.
#
# usage: scripts/bench_knn.sh [build-dir=build] [repeats=3]
# Reports wall time (best and median of the repeats for Strata, one run of
# the reference), process CPU time, peak RSS and the memory each added
# above its loaded data, and the agreement of the two answers. Strata is
# also run on 200,000 training rows to show its memory does not grow with N.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
repeats=${2:-3}
py=/usr/bin/python3
cmake --build "$build" --target bench_knn >/dev/null
bench="$build/bin/bench_knn"
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
mkdir -p "$data/n50k" "$data/n200k"
"$py" scripts/bench_knn_scipy.py make "$data/n50k" 1000 50000 4 20
"$py" scripts/bench_knn_scipy.py make "$data/n200k" 1000 200000 4 20
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cpus, load: $(cut -d' ' -f1-3 /proc/loadavg)"
cpu() { /usr/bin/time -f "%U %S" -o "$data/time" "$@" | tail -1; awk '{printf "   cpu %.2f s\n", $1 + $2}' "$data/time"; }
for t in 1 2; do
    echo "threads $t"
    OPENBLAS_NUM_THREADS=$t cpu "$bench" "$data/n50k" 1000 50000 4 20 10 "$repeats"
done
cpu "$py" scripts/bench_knn_scipy.py time "$data/n50k" 1000 50000 4 20 10
"$py" scripts/bench_knn_scipy.py agree "$data/n50k" 1000 10
echo "N = 200000, threads 1"
OPENBLAS_NUM_THREADS=1 cpu "$bench" "$data/n200k" 1000 200000 4 20 10 "$repeats"
