/* Streaming k-nearest-neighbour search under a weighted sum of per-layer
 * Euclidean distances (the similar-example query of the method, METHOD.md
 * d.3, and the concepts of d.4 with the centroids as queries).
 *
 * Each of L layers gives a query matrix [Q, D_l] and a training matrix
 * [N, D_l] (same Q and N for every layer, D_l may differ). The distance of
 * query q to training row i is
 *
 *     dist(q, i) = sum over l with w_l != 0 of  w_l * ||q_l - x_l,i||
 *
 * with plain (not squared) Euclidean distances; the weights need not sum
 * to anything. The k smallest are returned per query, ascending, ties to
 * the lower training index. A one-layer call with weight 1 is plain
 * nearest-neighbour search of raw features.
 *
 * The search streams over blocks of training rows: per block and layer,
 * one GEMM gives the squared distances of a block of queries
 * (||q||^2 - 2 q.x + ||x||^2, clamped at 0), then sqrt and the weighted
 * sum, then a bounded max-heap per query keeps the best k. Memory is
 * O(Q * (k + L) + query_block * train_block), independent of N: the
 * full Q x N matrix never exists. Training data are read exactly once,
 * so a memory-mapped training array streams from disk.
 *
 * Arithmetic is float32 (the GEMM form of the squared distance, then
 * sqrt, weight and sum in layer order), so distances carry float rounding
 * and "ties" are exact ties of these computed values; two rows whose true
 * distances differ by less than the rounding may come out in either
 * order. */
#ifndef STRATA_KNN_H
#define STRATA_KNN_H

#include <stdint.h>
#include "strata/status.h"
#include "strata/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_knn_options {
    int64_t k;                     /* neighbours per query, >= 1 (may exceed N) */
    const double *weights;         /* one finite weight >= 0 per layer, not all 0;
                                      NULL means all 1 */
    /* Optional filter "same label": when both are given, query q only
     * considers training rows i with train_labels[i] == query_labels[q]
     * (e.g. the same predicted label, or the same true label). 1-d i64 or
     * i32 tensors, [Q] and [N]. */
    const st_tensor *query_labels;
    const st_tensor *train_labels;
    int64_t train_block;           /* training rows per block; 0 = 1024 */
    int64_t query_block;           /* queries per GEMM; 0 = 128 */
} st_knn_options;

/* Defaults for k neighbours: all weights 1, no filter, default blocks. */
st_knn_options st_knn_defaults(int64_t k);

/* queries[l] is [Q, D_l] and train[l] is [N, D_l], f32, each row
 * contiguous (row strides are free, so slices and memory maps work).
 * Writes indices ([Q, k] i64, 0-based training rows) and, if distances is
 * not NULL, distances ([Q, k] f32), with the output convention of
 * tensor.h. When a query has fewer than k candidates (k > N, or the filter
 * leaves fewer), the remaining slots hold index -1 and distance +inf.
 * Non-finite data fail with ST_ENUMERIC naming the layer and row. */
st_status st_knn_search(int n_layers, const st_tensor *const *queries,
                        const st_tensor *const *train, const st_knn_options *opt,
                        st_tensor **indices, st_tensor **distances);

/* ---- helpers shared with k-means ---- */

/* Checks that t is a 2-d f32 matrix [rows, cols] (-1 matches any size)
 * whose rows are each contiguous and do not overlap (any row stride >=
 * cols); fails naming `what`. Use st_rows_ld for the GEMM row stride. */
st_status st_rows_expect(const st_tensor *t, const char *what, int64_t rows, int64_t cols);
/* The row stride to give BLAS (a one-row matrix may have any stride). */
static inline int64_t st_rows_ld(const st_tensor *t) { return t->shape[0] > 1 ? t->stride[0] : t->shape[1]; }

#ifdef __cplusplus
}
#endif
#endif
