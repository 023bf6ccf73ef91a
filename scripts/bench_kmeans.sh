#!/usr/bin/env bash
# k-means, Strata against scikit-learn in the same run: 50,000 x 20 float32
# points, K = 15, n_init = 20, k-means++ and Lloyd (the clustering model's
# k-means initialisation, METHOD.md c.3 step 1).
#
# usage: scripts/bench_kmeans.sh [build-dir=build] [repeats=3] [datasets="sphere normal"]
# Data sets (scripts/bench_kmeans_sklearn.py): "sphere" is 15 blobs on the
# radius-8 sphere, like the embeddings k-means meets in Strata; "normal" is
# one structureless Gaussian cloud, where most runs go to many iterations.
# Each side runs with 1 and 2 threads. Strata: 2 threads means the
# restarts run on 2 threads (n_threads = 2, OpenBLAS single-threaded), and
# a third line shows 1 restart thread with 2 OpenBLAS threads instead;
# sklearn: OpenMP and BLAS limited through threadpoolctl. Times are wall clock, best and
# median of the repeats, plus the process CPU time (user + sys), which is
# the steadier number on a busy machine.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
repeats=${2:-3}
datasets=${3:-sphere normal}
py=/usr/bin/python3
cmake --build "$build" --target bench_kmeans >/dev/null
bench="$build/bin/bench_kmeans"
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
"$py" scripts/bench_kmeans_sklearn.py make "$data"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cpus, load: $(cut -d' ' -f1-3 /proc/loadavg)"
cpu() { /usr/bin/time -f "%U %S" -o "$data/time" "$@" | tail -1; awk '{printf "   cpu %.2f s\n", $1 + $2}' "$data/time"; }
for set in $datasets; do
    echo "## $set: 50000 x 20, K=15, n_init=20"
    for t in 1 2; do
        echo "threads $t"
        OPENBLAS_NUM_THREADS=1 cpu "$bench" "$data/$set.f32" 50000 20 15 20 "$repeats" 1 "$t"
        cpu "$py" scripts/bench_kmeans_sklearn.py time "$data/$set.f32" 50000 20 15 20 "$repeats" "$t"
    done
    echo "OpenBLAS threads 2, restarts on 1 thread"
    OPENBLAS_NUM_THREADS=2 cpu "$bench" "$data/$set.f32" 50000 20 15 20 "$repeats" 1 1
done
