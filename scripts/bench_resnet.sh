#!/bin/sh
# ResNet-56 forward throughput of strata against PyTorch (Debian's
# python3-torch) in the same run, each at 1 and 2 threads (wall-clock
# images/s, and images per CPU-second, which load inflates less), plus the wall
# time and peak memory of extracting the four Table-1 taps of all 51,000
# CIFAR-10 images. PyTorch runs twice: as eager modules (how a model is
# usually run) and traced, frozen and passed through
# torch.jit.optimize_for_inference (its fastest CPU inference path: batch
# norm folded, convolutions through oneDNN). The last line compares the
# best of each side over all rounds and thread counts. Results go to stdout;
# docs/bench-resnet.md keeps them.
#
#   scripts/bench_resnet.sh [BUILD_DIR=build] [DATA=../shared/datasets] [--no-extract]
# (ROUNDS=n in the environment repeats the forward comparison n times)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
data=${2:-${STRATA_DATA:-$here/../../shared/datasets}}
model=$data/resnet-cifar10-weights/resnet56.safetensors
batch=256

rounds=${ROUNDS:-1}
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
log=$(mktemp)
r=0
while [ $r -lt "$rounds" ]; do
r=$((r + 1))
for t in 1 2; do
  # strata splits the batch over its own threads (its kernels do not use BLAS threads)
  STRATA_THREADS=$t OPENBLAS_NUM_THREADS=1 "$build/bin/bench_resnet" "$model" $batch 5 | sed "s/^/threads $t: /" | tee -a "$log"
  /usr/bin/python3 - "$model" $batch 5 $t <<'PY' | tee -a "$log"
# PyTorch peer: the same ResNet-56 as torch.nn modules in eval mode
# (conv + BatchNorm2d, as users run it), weights from the safetensors file.
import json, struct, sys, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
path, batch, repeats, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
with open(path, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]; header = json.loads(f.read(n)); raw = f.read()
header.pop("__metadata__", None)
state = {k: torch.from_numpy(np.frombuffer(raw[e["data_offsets"][0]:e["data_offsets"][1]], np.float32)
                             .reshape(e["shape"]).copy()) for k, e in header.items()}
class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); self.bn2 = nn.BatchNorm2d(cout)
        self.pad = (cout - cin) // 2 if stride != 1 or cin != cout else None
    def forward(self, x):
        h = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        sc = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(h + sc)
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False); self.bn1 = nn.BatchNorm2d(16)
        cin, layers = 16, []
        for s, w in enumerate((16, 32, 64)):
            blocks = []
            for b in range(9):
                blocks.append(Block(cin, w, 2 if b == 0 and s > 0 else 1)); cin = w
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(64, 10)
    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(x.mean(dim=(2, 3)))
net = Net(); state = {k: v for k, v in state.items()}
missing = net.load_state_dict(state, strict=False)
assert not missing.unexpected_keys and all(k.endswith("num_batches_tracked") for k in missing.missing_keys)
net.eval()
x = torch.randn(batch, 3, 32, 32)
def measure(kind, model):
    with torch.no_grad():
        model(x); best = best_cpu = 1e30
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time(); model(x)
            best, best_cpu = min(best, time.perf_counter() - t), min(best_cpu, time.process_time() - c)
    print("threads %d: pytorch %s %s batch %d: %.1f images/s (best of %d: %.3f s), %.1f images per CPU-second"
          % (threads, torch.__version__, kind, batch, batch / best, repeats, best, batch / best_cpu))
measure("eager", net)
with torch.no_grad():
    optimized = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, x)))
measure("jit-optimized", optimized)
PY
done
done
awk '{ for (i = 1; i <= NF; i++) if ($(i + 1) == "images/s") { r = $i; break } }
     /strata/ && r > s { s = r } /eager/ && r > e { e = r } /jit-optimized/ && r > j { j = r }
     END { printf "== best strata %.1f images/s; best PyTorch eager %.1f (ratio %.2fx), jit-optimized %.1f (ratio %.2fx)\n",
           s, e, s / e, j, s / j }' "$log"
rm -f "$log"

if [ "${3:-}" != "--no-extract" ]; then
  out=$(mktemp -d)
  for t in 1 2; do
    STRATA_THREADS=$t OPENBLAS_NUM_THREADS=1 /usr/bin/time -f "threads $t: wall %e s, peak RSS %M KB" \
      "$build/bin/bench_resnet" "$model" --extract "$data/cifar-10-batches-bin" "$out" $batch
  done
  du -sh "$out"
  rm -rf "$out"
fi
