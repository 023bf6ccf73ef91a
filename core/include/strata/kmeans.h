/* k-means clustering (Lloyd's algorithm with greedy k-means++ seeding),
 * following scikit-learn's KMeans(algorithm="lloyd") step for step:
 *
 *  - distances are those of the centred data (column mean subtracted),
 *    as scikit-learn centres for precision, but the data are never copied:
 *    the centring is folded into the GEMM terms (see kmeans.c), so a
 *    memory-mapped array is only read;
 *  - seeding is greedy k-means++: the first centre is a uniformly random
 *    row; every further centre is the best (lowest resulting potential) of
 *    `n_local_trials` rows drawn with probability proportional to D(x)^2,
 *    the squared distance to the nearest centre chosen so far;
 *  - one iteration assigns every row to its nearest centre (squared
 *    distances through one GEMM per block: ||x||^2 - 2 x.c + ||c||^2,
 *    clamped at 0; ties go to the lower centre index) and moves every
 *    centre to the mean of its rows;
 *  - a run stops when the labels did not change (strict convergence) or
 *    when the sum over centres of the squared centre shift is <= tol *
 *    mean(var(x, axis 0)) (population variance), or after max_iter
 *    iterations; unless strictly converged, a last assignment makes the
 *    labels match the returned centres;
 *  - the best of n_init runs by inertia (sum of squared distances of rows
 *    to their centre, computed exactly, not through the GEMM form) wins;
 *    ties go to the earlier run.
 *
 * Empty clusters: when an assignment leaves a cluster without rows, it is
 * moved (as scikit-learn does) onto the row farthest from its own centre,
 * farthest first, ties to the lower row index; the row's old cluster loses
 * it from its mean in that same update. Unlike scikit-learn, a row is only
 * taken from a cluster that keeps at least one other row, so a relocation
 * never empties another cluster. If there are fewer such rows than empty
 * clusters (fewer distinct points than k), the rest keep their centre.
 *
 * Randomness: before any run, one 64-bit seed per run is drawn from the
 * caller's rng; run r seeds its own generator with seed r. The seeds are
 * recorded in the result, so any single run can be repeated. Same rng
 * state and data give bitwise the same result for any n_threads (runs are
 * independent; the best is chosen by (inertia, run index)) and a fixed
 * OpenBLAS thread count (a different OpenBLAS thread count may change the
 * GEMM's rounding and so, rarely, a tie).
 *
 * Memory: per thread O((n_local_trials + 4) * N) for labels, distances
 * and row norms plus O(block * k + k * D) scratch, all allocated once
 * before the first run; iterations do not allocate. */
#ifndef STRATA_KMEANS_H
#define STRATA_KMEANS_H

#include <stdint.h>
#include "strata/rng.h"
#include "strata/status.h"
#include "strata/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_kmeans_options {
    int64_t k;             /* number of clusters, 1 <= k <= N */
    int n_init;            /* restarts (>= 1); default 20 as in the reference */
    int max_iter;          /* iterations per run (>= 1); default 300 */
    double tol;            /* >= 0, relative to the mean feature variance; default 1e-4 */
    int n_local_trials;    /* k-means++ candidates per centre; 0 = 2 + floor(ln k) */
    const st_tensor *init; /* optional [k, D] f32 starting centres: then exactly
                              one run, no seeding, and n_init is ignored */
    int n_threads;         /* restarts run in parallel on this many threads
                              (0 or 1: the calling thread only); default 1 */
} st_kmeans_options;

/* The defaults above for k clusters. */
st_kmeans_options st_kmeans_defaults(int64_t k);

typedef struct st_kmeans_result {
    st_tensor *centers;   /* [k, D] f32, in the data's coordinates */
    st_tensor *labels;    /* [N] i64, cluster of each row */
    double inertia;       /* of the best run */
    int n_iter;           /* iterations of the best run */
    int best_run;         /* index into the per-run arrays */
    int n_runs;
    uint64_t *run_seeds;  /* [n_runs]; 0 for a run from given centres */
    double *run_inertia;  /* [n_runs] */
    int *run_iters;       /* [n_runs] */
    int64_t n_relocated;  /* empty-cluster relocations, summed over runs */
} st_kmeans_result;

/* Clusters the rows of x ([N, D] f32; rows may be strided but each row
 * must be contiguous, e.g. a memory-mapped .npy or a row slice). rng may
 * be NULL only when opt->init is given. Non-finite data fail with
 * ST_ENUMERIC naming the row. */
st_status st_kmeans_fit(const st_tensor *x, const st_kmeans_options *opt, st_rng *rng,
                        st_kmeans_result **out);
void st_kmeans_result_free(st_kmeans_result *r);

/* Greedy k-means++ seeding alone: writes k rows of x as centres ([k, D]
 * f32, output convention of tensor.h). n_local_trials 0 means 2 +
 * floor(ln k); 1 is plain k-means++ (D^2 sampling). */
st_status st_kmeans_plusplus(const st_tensor *x, int64_t k, int n_local_trials, st_rng *rng,
                             st_tensor **centers);

/* Nearest centre of every row of x ([N, D]) among centers ([k, D]), as
 * [N] i64 labels (ties to the lower index), and the exact inertia (may be
 * NULL). */
st_status st_kmeans_predict(const st_tensor *x, const st_tensor *centers, st_tensor **labels,
                            double *inertia);

#ifdef __cplusplus
}
#endif
#endif
