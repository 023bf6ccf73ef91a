/* The surrogate model of the method (METHOD.md d.1, d.2): per layer l, an
 * empirical posterior H_l [K_l, C] over the classes for each cluster, and
 * the prediction
 *
 *     P(y | x) = sum_l w_l * sum_j q_l(x)[j] * H_l[j, y]  /  sum_l w_l
 *
 * where q_l(x) is the soft cluster assignment of x in layer l.
 *
 * Posteriors: H_l[j, y] = (examples with hard cluster j and label y) /
 * (examples with hard cluster j). Which labels is the caller's choice:
 * the ground truth (the reference's choice) or the baseline's predictions;
 * it is only the label array passed in.
 *
 * Two deliberate departures from the reference (METHOD.md h):
 *  - weights are normalised by their sum, not by the number of layers
 *    (Q6), so every row of P sums to 1; weights must be finite, >= 0 and
 *    not all 0. The argmax is the same either way.
 *  - a cluster with fewer than min_cluster_size training examples (by
 *    default: an empty one, which the reference turns into a NaN row that
 *    poisons every prediction, Q7) gets the layer's overall label
 *    distribution as its posterior row, and is listed in the report. A
 *    layer whose examples all fall into one cluster is reported too
 *    (its posterior is then the overall distribution for every input).
 *
 * Everything is built from the count matrices [K_l, C] (st_cluster_counts
 * in metrics.h), which are the sufficient statistics: saving them and
 * calling st_surrogate_new again restores a bitwise-identical surrogate.
 * Predictions ties go to the lowest class id. */
#ifndef STRATA_SURROGATE_H
#define STRATA_SURROGATE_H

#include <stddef.h>
#include <stdint.h>
#include "strata/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_surrogate st_surrogate;

typedef struct st_surrogate_options {
    int64_t min_cluster_size; /* >= 1; clusters below it use the fallback row; default 1 */
} st_surrogate_options;

st_surrogate_options st_surrogate_defaults(void);

typedef enum st_cluster_issue_kind {
    ST_CLUSTER_EMPTY,     /* no training example: fallback row */
    ST_CLUSTER_SMALL,     /* fewer than min_cluster_size examples: fallback row */
    ST_LAYER_COLLAPSED    /* every example in one cluster (`cluster`); no change */
} st_cluster_issue_kind;

typedef struct st_cluster_issue {
    st_cluster_issue_kind kind;
    int layer;         /* 0-based */
    int64_t cluster;   /* 0-based cluster id */
    int64_t size;      /* training examples in it */
} st_cluster_issue;

/* "layer 2, cluster 7: empty (0 training examples); posterior set to the
 * layer's overall label distribution". Always NUL-terminated; returns buf. */
char *st_cluster_issue_str(const st_cluster_issue *issue, char *buf, size_t cap);

/* From count matrices counts[l]: i64 (or i32) [K_l, C], entries >= 0, the
 * same C and the same total (> 0) in every layer. opt may be NULL. */
st_status st_surrogate_new(int n_layers, const st_tensor *const *counts, const st_surrogate_options *opt,
                           st_surrogate **out);

/* Counts and builds in one call: clusters[l] holds the hard cluster id of
 * every training example in layer l ([N] i32/i64, ids in [0, n_clusters[l]),
 * e.g. argmax of q_l), labels the class of every example ([N], in
 * [0, n_classes)). */
st_status st_surrogate_fit(int n_layers, const st_tensor *const *clusters, const int64_t *n_clusters,
                           const st_tensor *labels, int n_classes, const st_surrogate_options *opt,
                           st_surrogate **out);

void st_surrogate_free(st_surrogate *s);

int st_surrogate_layer_count(const st_surrogate *s);
int st_surrogate_class_count(const st_surrogate *s);
int64_t st_surrogate_cluster_count(const st_surrogate *s, int layer);
int64_t st_surrogate_min_cluster_size(const st_surrogate *s);
/* Borrowed tensors (valid while s lives; do not modify): the posterior
 * f64 [K_l, C] (fallback rows included), the counts i64 [K_l, C], and the
 * layer's overall label distribution f64 [C]. NULL for a bad layer. */
const st_tensor *st_surrogate_posterior(const st_surrogate *s, int layer);
const st_tensor *st_surrogate_counts(const st_surrogate *s, int layer);
const st_tensor *st_surrogate_prior(const st_surrogate *s, int layer);
/* The report: every empty, small or collapsed cluster, by layer then id. */
const st_cluster_issue *st_surrogate_issues(const st_surrogate *s, size_t *count);

/* q[l]: soft assignments f32 [N, K_l] (each row contiguous), the same N
 * for every layer, all finite. weights: n_layers values or NULL (all 1).
 * proba: f64 [N, C] (output convention of tensor.h). */
st_status st_surrogate_predict_proba(const st_surrogate *s, const st_tensor *const *q, const double *weights,
                                     st_tensor **proba);
/* argmax_y P(y | x): i64 [N]. */
st_status st_surrogate_predict(const st_surrogate *s, const st_tensor *const *q, const double *weights,
                               st_tensor **labels);
/* Each layer alone (argmax_y sum_j q_l[j] H_l[j, y]): i64 [n_layers, N]. */
st_status st_surrogate_predict_layers(const st_surrogate *s, const st_tensor *const *q, st_tensor **labels);

#ifdef __cplusplus
}
#endif
#endif
