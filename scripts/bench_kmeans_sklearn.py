#!/usr/bin/python3
"""The scikit-learn side of scripts/bench_kmeans.sh.

    bench_kmeans_sklearn.py make DIR          writes DIR/sphere.f32 and DIR/normal.f32
    bench_kmeans_sklearn.py time FILE N D K [n_init] [repeats] [threads]

Data sets (float32, 50,000 x 20):
  sphere: 15 Gaussian blobs projected onto the sphere of radius 8, like the
          clustering model's embeddings (the case k-means meets in Strata);
  normal: one standard normal cloud (no structure; runs go to many iterations).
Timing fits KMeans(K, n_init, init="k-means++", algorithm="lloyd") on the
array; threads limits OpenMP and BLAS through threadpoolctl (0 = default).
"""
import sys
import time
import numpy as np


def make(directory):
    rng = np.random.default_rng(7)
    n, d, k = 50000, 20, 15
    c = rng.normal(size=(k, d))
    lab = rng.integers(0, k, n)
    x = c[lab] + 0.5 * rng.normal(size=(n, d))
    x = 8 * x / np.linalg.norm(x, axis=1, keepdims=True)
    x.astype("<f4").tofile(directory + "/sphere.f32")
    rng.normal(size=(n, d)).astype("<f4").tofile(directory + "/normal.f32")


def timing(path, n, d, k, n_init=20, repeats=3, threads=0):
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits
    import sklearn
    x = np.fromfile(path, dtype="<f4").reshape(n, d)
    times = []
    with threadpool_limits(limits=threads if threads > 0 else None):
        for r in range(repeats):
            t0 = time.perf_counter()
            km = KMeans(n_clusters=k, n_init=n_init, init="k-means++", algorithm="lloyd", random_state=r).fit(x)
            times.append(time.perf_counter() - t0)
            print("sklearn repeat %d: %.3f s, inertia %.6g, iters %d" % (r, times[-1], km.inertia_, km.n_iter_))
    times.sort()
    print("sklearn %s kmeans N=%d D=%d K=%d n_init=%d threads=%s: best %.3f s, median %.3f s"
          % (sklearn.__version__, n, d, k, n_init, threads or "default", times[0], times[len(times) // 2]))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        timing(sys.argv[2], *[int(a) for a in sys.argv[3:]])
