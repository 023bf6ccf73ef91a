#!/usr/bin/python3
"""Export a PyTorch ResNet checkpoint to the safetensors model format Strata
loads (docs/model-format.md): float32 weights under their state_dict names,
architecture and preprocessing in __metadata__.

  /usr/bin/python3 scripts/export_pytorch.py CHECKPOINT OUT.safetensors \\
      --depth 56 [--family cifar|imagenet] [--version 1|2] [--block basic|bottleneck]
      [--shortcut A|B] [--widths 16,32,64] [--blocks 9] [--input-size 32,32]
      [--input-channels 3] --num-classes 10 [--mean ...] [--std ...] [--scale ...]
      [--bn-eps 1e-5] [--padding torch|same] [--class-names a,b,...] [--arch NAME]

CHECKPOINT is a .th/.pt/.pth file holding a state_dict, a dict with one under
"state_dict" or "model", or a whole pickled nn.Module. A "module." prefix
(DataParallel) is removed and "num_batches_tracked" counters are dropped. The
names and shapes are then checked against the architecture, with the loader's
rules, so a file this script writes loads in Strata.
"""
import argparse
import json
import struct
import sys

import numpy as np


def param_shapes(c):
    """Names and OIHW shapes of every weight of an architecture, in build
    order. c: family, version, bottleneck, shortcut, widths, blocks, in_c,
    num_classes."""
    cifar = c["family"] == "cifar"
    out = []

    def bn(p, n):
        out.extend((p + "." + s, [n]) for s in ("weight", "bias", "running_mean", "running_var"))

    k = 3 if cifar else 7
    out.append(("conv1.weight", [c["widths"][0], c["in_c"], k, k]))
    if not (cifar and c["version"] == 2):
        bn("bn1", c["widths"][0])
    in_c = c["widths"][0]
    for s, (n, width) in enumerate(zip(c["blocks"], c["widths"])):
        out_c = width * 4 if c["bottleneck"] else width
        for b in range(n):
            p = "layer%d.%d" % (s + 1, b)
            stride = 2 if b == 0 and s > 0 else 1
            v2 = c["version"] == 2
            if v2:
                bn(p + ".bn1", in_c)
            if c["bottleneck"]:
                convs = [(width, in_c, 1), (width, width, 3), (out_c, width, 1)]
            else:
                convs = [(out_c, in_c, 3), (out_c, out_c, 3)]
            for i, (o, ci, kk) in enumerate(convs):
                out.append(("%s.conv%d.weight" % (p, i + 1), [o, ci, kk, kk]))
                if not v2:
                    bn("%s.bn%d" % (p, i + 1), o)
                elif i < len(convs) - 1:
                    bn("%s.bn%d" % (p, i + 2), o)
            if (stride != 1 or in_c != out_c) and c["shortcut"] == "B":
                mod = "shortcut" if cifar else "downsample"
                out.append(("%s.%s.0.weight" % (p, mod), [out_c, in_c, 1, 1]))
                if not v2:
                    bn("%s.%s.1" % (p, mod), out_c)
            in_c = out_c
    if c["version"] == 2:
        bn("final_bn", in_c)
    fc = "linear" if cifar else "fc"
    out.append((fc + ".weight", [c["num_classes"], in_c]))
    out.append((fc + ".bias", [c["num_classes"]]))
    return out


IMAGENET_BLOCKS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}


def write_safetensors(path, tensors, meta=None):
    """Writes numpy arrays (float32 or int64) and string metadata as safetensors."""
    codes = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        raw = a.tobytes()
        header[name] = {"dtype": codes[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for raw in blobs:
            f.write(raw)


def load_state(path):
    import torch
    obj = torch.load(path, map_location="cpu")
    if hasattr(obj, "state_dict") and not isinstance(obj, dict):
        obj = obj.state_dict()
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    state = {}
    for name, t in obj.items():
        if name.endswith("num_batches_tracked"):
            continue
        if name.startswith("module."):
            name = name[len("module."):]
        state[name] = t.detach().cpu().float().numpy()
    return state


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--depth", type=int, required=True)
    ap.add_argument("--num-classes", type=int, required=True)
    ap.add_argument("--family", choices=["cifar", "imagenet"])
    ap.add_argument("--version", type=int, choices=[1, 2], default=1)
    ap.add_argument("--block", choices=["basic", "bottleneck"])
    ap.add_argument("--shortcut", choices=["A", "B"])
    ap.add_argument("--widths")
    ap.add_argument("--blocks")
    ap.add_argument("--input-size")
    ap.add_argument("--input-channels", type=int, default=3)
    ap.add_argument("--mean")
    ap.add_argument("--std")
    ap.add_argument("--scale")
    ap.add_argument("--bn-eps", default="1e-05")
    ap.add_argument("--padding", choices=["torch", "same"], default="torch")
    ap.add_argument("--class-names")
    ap.add_argument("--arch")
    a = ap.parse_args()

    family = a.family or ("cifar" if a.depth not in IMAGENET_BLOCKS else "imagenet")
    cifar = family == "cifar"
    if cifar and (a.depth - 2) % 6:
        sys.exit("export: CIFAR depth must be 6n+2")
    bottleneck = (a.block == "bottleneck") if a.block else (not cifar and a.depth >= 50)
    widths = [int(v) for v in a.widths.split(",")] if a.widths else ([16, 32, 64] if cifar else [64, 128, 256, 512])
    blocks = [int(v) for v in a.blocks.split(",")] if a.blocks else (
        [(a.depth - 2) // 6] * 3 if cifar else IMAGENET_BLOCKS[a.depth])
    if len(blocks) == 1:
        blocks = blocks * len(widths)
    cfg = dict(family=family, version=a.version, bottleneck=bottleneck, shortcut=a.shortcut or ("A" if cifar else "B"),
               widths=widths, blocks=blocks, in_c=a.input_channels, num_classes=a.num_classes)

    state = load_state(a.checkpoint)
    expected = dict(param_shapes(cfg))
    problems = ["missing %s %s" % (n, s) for n, s in expected.items() if n not in state]
    problems += ["%s: shape %s expected, checkpoint has %s" % (n, s, list(state[n].shape))
                 for n, s in expected.items() if n in state and list(state[n].shape) != s]
    problems += ["unexpected %s" % n for n in state if n not in expected]
    if problems:
        sys.exit("export: the checkpoint does not match the architecture:\n  " + "\n  ".join(problems[:20]))

    meta = {"family": family, "depth": str(a.depth), "version": str(a.version),
            "block": "bottleneck" if bottleneck else "basic", "shortcut": cfg["shortcut"],
            "widths": ",".join(map(str, widths)), "blocks_per_stage": ",".join(map(str, blocks)),
            "num_classes": str(a.num_classes), "input_channels": str(a.input_channels),
            "bn_eps": a.bn_eps, "padding": a.padding,
            "arch": a.arch or ("%sresnet%d" % ("preact_" if a.version == 2 else "", a.depth))}
    for key, value in (("input_size", a.input_size), ("mean", a.mean), ("std", a.std), ("scale", a.scale),
                       ("class_names", a.class_names)):
        if value:
            meta[key] = value
    if a.class_names and len(a.class_names.split(",")) != a.num_classes:
        sys.exit("export: --class-names must list %d names" % a.num_classes)
    write_safetensors(a.out, state, meta)
    print("wrote %s: %d tensors, %d floats" % (a.out, len(state), sum(v.size for v in state.values())))


if __name__ == "__main__":
    main()
