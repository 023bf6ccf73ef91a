#!/usr/bin/python3
"""The reference side of scripts/bench_knn.sh: the similar-example query as
the reference implementation computes it (METHOD.md d.3): per layer a full
SciPy cdist matrix, their weighted sum, and a full argsort per query.

    bench_knn_scipy.py make DIR Q N L D     writes DIR/query_<l>.f32, DIR/train_<l>.f32
    bench_knn_scipy.py time DIR Q N L D K   times the reference, reports peak RSS,
                                            writes DIR/scipy_idx.i64
    bench_knn_scipy.py agree DIR Q K        compares DIR/strata_idx.i64 with it

Data: embeddings like the clustering model's, on the sphere of radius 8
(Gaussian blobs projected), float32. Weights are 1, 2, ..., L (as in
bench_knn.c).
"""
import resource
import sys
import time
import numpy as np


def make(directory, q, n, layers, d):
    rng = np.random.default_rng(5)
    for l in range(layers):
        c = rng.normal(size=(15, d))
        for name, rows in (("query", q), ("train", n)):
            x = c[rng.integers(0, 15, rows)] + 0.5 * rng.normal(size=(rows, d))
            x = 8 * x / np.linalg.norm(x, axis=1, keepdims=True)
            x.astype("<f4").tofile("%s/%s_%d.f32" % (directory, name, l))


def timing(directory, q, n, layers, d, k):
    from scipy.spatial.distance import cdist
    import scipy
    qs = [np.fromfile("%s/query_%d.f32" % (directory, l), dtype="<f4").reshape(q, d) for l in range(layers)]
    ts = [np.fromfile("%s/train_%d.f32" % (directory, l), dtype="<f4").reshape(n, d) for l in range(layers)]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    # as the reference: every layer's full distance matrix, then the weighted sum
    per_layer = [cdist(qs[l], ts[l]) for l in range(layers)]
    dist = sum((l + 1) * d for l, d in enumerate(per_layer))
    idx = np.argsort(dist, axis=-1)[:, :k]
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("scipy %s cdist+argsort Q=%d N=%d L=%d D=%d k=%d: %.3f s, peak RSS %.0f MiB (%.0f MiB above the loaded data)"
          % (scipy.__version__, q, n, layers, d, k, elapsed, peak, peak - base))
    idx.astype("<i8").tofile("%s/scipy_idx.i64" % directory)


def agree(directory, q, k):
    a = np.fromfile("%s/strata_idx.i64" % directory, dtype="<i8").reshape(q, k)
    b = np.fromfile("%s/scipy_idx.i64" % directory, dtype="<i8").reshape(q, k)
    same_pos = (a == b).mean()
    same_set = np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b)])
    print("agreement with scipy: %.4f of positions, %.4f of neighbour sets" % (same_pos, same_set))


if __name__ == "__main__":
    cmd, directory, args = sys.argv[1], sys.argv[2], [int(a) for a in sys.argv[3:]]
    {"make": make, "time": timing, "agree": agree}[cmd](directory, *args)
