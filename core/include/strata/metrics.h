/* Metrics of an explanation: accuracy, fidelity, confusion matrices,
 * bootstrap confidence intervals, and statistics of the clusters.
 *
 * Words used here (docs/metrics.md has the full definitions):
 *  - truth: the true class of each example;
 *  - baseline: the class the explained network (the baseline) predicts;
 *  - surrogate: the class the surrogate (surrogate.h) predicts.
 *  accuracy = mean(surrogate == truth), fidelity = mean(surrogate ==
 *  baseline), baseline accuracy = mean(baseline == truth).
 *
 * Fidelity per class groups the examples by the BASELINE's predicted
 * class c: the fraction of examples the network calls c that the
 * surrogate also calls c (recall of the surrogate against the network).
 *
 * Confidence intervals are percentile bootstrap intervals: B resamples of
 * n examples drawn with replacement (the same resample for every metric),
 * the metric on each, and the (1-level)/2 and (1+level)/2 quantiles of the
 * B values, interpolated linearly between order statistics (numpy's
 * default `np.percentile`). Randomness comes only from the caller's rng.
 *
 * Labels are 1-d i32 or i64 tensors of class ids in [0, n_classes). */
#ifndef STRATA_METRICS_H
#define STRATA_METRICS_H

#include <stdint.h>
#include "strata/json.h"
#include "strata/rng.h"
#include "strata/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Copies a 1-d i32/i64 tensor of ids into a fresh malloc'd int64 array
 * (the caller frees it), checking the length (n >= 0; -1 accepts any, the
 * length is then stored in *len, which may be NULL otherwise) and that
 * every id lies in [0, n_ids). Errors name `what` and the first bad entry. */
st_status st_labels_copy(const st_tensor *t, const char *what, int64_t n, int64_t n_ids, int64_t **out,
                         int64_t *len);

/* Fraction of positions where a and b agree (same length n >= 1; any ids,
 * no range check). */
st_status st_agreement(const st_tensor *a, const st_tensor *b, double *out);

/* counts[j, y] = number of examples with cluster id j and class y: an i64
 * [n_clusters, n_classes] tensor from two label tensors of equal length. */
st_status st_cluster_counts(const st_tensor *clusters, int64_t n_clusters, const st_tensor *classes,
                            int64_t n_classes, st_tensor **counts);

/* ---- evaluation ---- */

typedef struct st_interval {
    double lo, hi;
} st_interval;

typedef struct st_eval_options {
    int64_t bootstrap; /* resamples B (default 1000); 0 = no intervals (lo = hi = the estimate) */
    double level;      /* interval coverage in (0, 1), default 0.95 */
    st_rng *rng;       /* required when bootstrap > 0; advanced by n * B draws */
} st_eval_options;

st_eval_options st_eval_defaults(st_rng *rng);

typedef struct st_evaluation {
    int64_t n;          /* examples */
    int n_classes;
    int n_layers;       /* 0 when no per-layer predictions were given */
    int64_t bootstrap;  /* B used (0: the intervals are the estimates) */
    double level;
    double baseline_accuracy, accuracy, fidelity;
    st_interval baseline_accuracy_ci, accuracy_ci, fidelity_ci;
    double *layer_accuracy;    /* [n_layers]: each layer's surrogate alone */
    double *layer_fidelity;    /* [n_layers] */
    int64_t *class_count;      /* [n_classes]: examples the baseline puts in class c */
    double *class_fidelity;    /* [n_classes]: fidelity among them; NaN when class_count[c] == 0 */
    int64_t *confusion;        /* [n_classes * n_classes]: row = truth, column = surrogate */
    int64_t *agreement;        /* [n_classes * n_classes]: row = baseline, column = surrogate */
} st_evaluation;

/* truth, baseline and surrogate: [n] labels (n >= 1); layers: optional
 * [L, n] i32/i64 per-layer surrogate predictions (NULL for none). */
st_status st_evaluate(const st_tensor *truth, const st_tensor *baseline, const st_tensor *surrogate,
                      const st_tensor *layers, int n_classes, const st_eval_options *opt, st_evaluation **out);
void st_evaluation_free(st_evaluation *ev);

/* Writes the whole evaluation as one JSON object (schema in
 * docs/metrics.md). class_names (n_classes) and layer_names (n_layers)
 * may be NULL; an undefined fidelity (empty class) is written as null. */
void st_evaluation_write_json(st_json_writer *w, const st_evaluation *ev, const char *const *class_names,
                              const char *const *layer_names);

/* A readable fixed-width summary table (overall metrics with intervals,
 * per layer, per class) as a fresh NUL-terminated string the caller frees. */
st_status st_evaluation_summary(const st_evaluation *ev, const char *const *class_names,
                                const char *const *layer_names, char **out);

/* ---- cluster statistics ---- */

#define ST_DOMINANT_MAX 3

typedef struct st_cluster_stats {
    int64_t size;       /* training examples in the cluster */
    double purity;      /* largest class fraction; 0 for an empty cluster */
    double entropy;     /* of the class distribution, in bits; 0 for an empty cluster */
    int n_dominant;     /* entries used below: classes present, at most ST_DOMINANT_MAX */
    int dominant[ST_DOMINANT_MAX];              /* most frequent classes, ties to the lower id */
    double dominant_fraction[ST_DOMINANT_MAX];  /* their fractions of the cluster */
} st_cluster_stats;

/* Statistics of every cluster from an i64 [K, C] count matrix (as
 * st_cluster_counts gives); stats has K entries. Counts must be >= 0. */
st_status st_cluster_stats_compute(const st_tensor *counts, st_cluster_stats *stats);

/* Writes a JSON array of K objects {cluster, size, purity, entropy_bits,
 * dominant: [{class, name?, fraction}]}. class_names may be NULL. */
void st_cluster_stats_write_json(st_json_writer *w, const st_cluster_stats *stats, int64_t k,
                                 const char *const *class_names);

#ifdef __cplusplus
}
#endif
#endif
