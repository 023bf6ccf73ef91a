#!/usr/bin/env bash
# Training-step throughput of the reference autoencoder (forward, MSE,
# backward, Adam; batch 32), Strata against PyTorch CPU in the same run,
# for the Table-1 shapes 32x32x16, 16x16x32 and 8x8x64; then Strata's
# encoder pass alone (st_cae_embed, the trainer's full-data passes;
# batch 32, 1 and 2 lanes; no peer).
#
# usage: scripts/bench_cae.sh [build-dir=build] [seconds-per-run=5] [rounds=1]
# Every configuration runs `rounds` times, interleaved with its peer; the
# summary compares the best Strata rate with the best PyTorch rate
# (samples/s, wall clock). On a busy machine use several rounds: the best
# of them is the least disturbed.
# Strata settings: 1 thread; 2 batch lanes (st_cae_config.threads = 2)
# with single-threaded OpenBLAS; 1 lane with OPENBLAS_NUM_THREADS=2.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
secs=${2:-5}
rounds=${3:-1}
py=/usr/bin/python3
cmake --build "$build" --target bench_cae >/dev/null
bench="$build/bin/bench_cae"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cpus, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for shape in "32 32 16" "16 16 32" "8 8 64"; do
    out=$(
        for ((r = 0; r < rounds; r++)); do
            for t in 1 2; do "$py" scripts/bench_cae_torch.py $shape "$t" 32 "$secs"; done
            OPENBLAS_NUM_THREADS=1 "$bench" $shape 32 "$secs" 1
            OPENBLAS_NUM_THREADS=1 "$bench" $shape 32 "$secs" 2
            OPENBLAS_NUM_THREADS=2 "$bench" $shape 32 "$secs" 1 | sed 's/threads 1 (on 1):/threads 1 (openblas 2):/'
        done
    )
    echo "$out"
    echo "$out" | awk -v shape="$shape" '
        { for (i = 1; i <= NF; i++) if ($(i + 1) == "samples/s") { r = $i; break } }
        /^torch/  && r > t { t = r }
        /^strata [0-9]/ && r > s { s = r }
        END { printf "== %s: best strata %.1f samples/s, best torch %.1f samples/s, ratio %.2fx\n",
              shape, s, t, s / t }'
done
for shape in "32 32 16" "16 16 32" "8 8 64"; do
    out=$(
        for ((r = 0; r < rounds; r++)); do
            for lanes in 1 2; do OPENBLAS_NUM_THREADS=1 "$bench" $shape 32 "$secs" $lanes embed; done
        done
    )
    echo "$out"
    echo "$out" | awk -v shape="$shape" '
        { for (i = 1; i <= NF; i++) if ($(i + 1) == "samples/s") { r = $i; break } }
        r > s { s = r }
        END { printf "== %s embed: best strata %.1f samples/s\n", shape, s }'
done
