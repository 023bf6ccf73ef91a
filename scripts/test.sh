#!/usr/bin/env bash
# Installs dependencies, builds everything from scratch and runs every test
# (C unit tests, fuzz targets, busted specs) through ctest: first in the
# Release build, then again in an AddressSanitizer + UndefinedBehaviorSanitizer
# build (Release optimisation, so it stays quick). Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build=${STRATA_BUILD_DIR:-build}
jobs=$(nproc)

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSTRATA_WERROR=ON >/dev/null
cmake --build "$build" -j"$jobs"
(cd "$build" && ctest --output-on-failure -j"$jobs" "$@")

echo "== the same tests under ASan + UBSan"
cmake -S . -B "$build-asan" -DCMAKE_BUILD_TYPE=Release -DSTRATA_WERROR=ON -DSTRATA_SANITIZE=ON \
      -DSTRATA_FUZZ_SECONDS=10 >/dev/null
cmake --build "$build-asan" -j"$jobs" >/dev/null
(cd "$build-asan" && ctest --output-on-failure -j"$jobs" "$@")
