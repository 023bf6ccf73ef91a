#!/usr/bin/env bash
# Benchmarks st_matmul against raw cblas_sgemm (see scripts/bench/bench_matmul.c).
# Usage: scripts/bench_matmul.sh [runs] [n ...]     (defaults: 5 runs; 1024 2048 4096)
# Env: STRATA_BUILD_DIR (default build), OPENBLAS_NUM_THREADS (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${STRATA_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target bench_matmul -j"$(nproc)" >/dev/null
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
"$build/bin/bench_matmul" "$@"
