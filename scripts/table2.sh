#!/usr/bin/env bash
# The paper's Table 2 on real data (scripts/table2.lua) under /usr/bin/time -v:
#   bash scripts/table2.sh quick|paper [more table2.lua options]
# Output in work/table2-<settings>/ (STRATA_TABLE2_OUT overrides): log.txt,
# time.txt (wall time, peak resident memory), table2.json, bundle/.
# It is long (see docs/results-table2.md): run it with nohup on a quiet
# machine; a rerun resumes from the checkpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
settings=${1:?usage: scripts/table2.sh quick|paper [options]}
shift
build=${STRATA_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target strata_exe >/dev/null
out=${STRATA_TABLE2_OUT:-work/table2-$settings}
mkdir -p "$out"
/usr/bin/time -v -o "$out/time.txt" "$build/bin/strata" scripts/table2.lua --settings "$settings" --out "$out" "$@" \
  2>&1 | tee "$out/log.txt"
grep -E "Elapsed|Maximum resident" "$out/time.txt"
