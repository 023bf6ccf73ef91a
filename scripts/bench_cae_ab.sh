#!/usr/bin/env bash
# The autoencoder training step of two builds of Strata, interleaved round
# by round so that both see the same machine (this VM's speed drifts by
# 10-20% over minutes): the way to measure a kernel change.
#
# usage: scripts/bench_cae_ab.sh BUILD_A BUILD_B [rounds=6] [seconds=3] [lanes=2] [H W C] [train|embed]
# (train: the pretraining step; embed: the encoder pass alone). Prints every
# run, then per build the best and the median samples/s and the ratio B/A.
set -euo pipefail
usage="usage: scripts/bench_cae_ab.sh BUILD_A BUILD_B [rounds] [seconds] [lanes] [H W C] [train|embed]"
a=${1:?$usage}
b=${2:?$usage}
rounds=${3:-6}
secs=${4:-3}
lanes=${5:-2}
shape=${6:-32}" "${7:-32}" "${8:-16}
mode=${9:-train}
for build in "$a" "$b"; do cmake --build "$build" --target bench_cae >/dev/null; done
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cpus, load: $(cut -d' ' -f1-3 /proc/loadavg); $mode, shape $shape, $lanes lanes"
for ((r = 0; r < rounds; r++)); do
    for build in "$a" "$b"; do
        # shellcheck disable=SC2086 # the shape is three words
        rate=$(OPENBLAS_NUM_THREADS=1 "$build/bin/bench_cae" $shape 32 "$secs" "$lanes" "$mode" |
            grep -o '[0-9.]* samples/s wall' | cut -d' ' -f1)
        echo "$build $rate"
    done
done | tee /dev/stderr | awk -v a="$a" -v b="$b" '
    { n[$1]++; v[$1, n[$1]] = $2 }
    function stats(k,   i, j, t, m) {
        m = n[k]
        for (i = 1; i <= m; i++) s[i] = v[k, i]
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (s[j] < s[i]) { t = s[i]; s[i] = s[j]; s[j] = t }
        best[k] = s[m]; med[k] = m % 2 ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2
    }
    END {
        stats(a); stats(b)
        printf "A %s: best %.1f, median %.1f samples/s\n", a, best[a], med[a]
        printf "B %s: best %.1f, median %.1f samples/s\n", b, best[b], med[b]
        printf "B/A: best %.3f, median %.3f\n", best[b] / best[a], med[b] / med[a]
    }'
