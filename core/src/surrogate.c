/* The surrogate model: empirical posteriors with the empty-cluster
 * fallback, and weighted predictions (surrogate.h). */
#include "strata/surrogate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "strata/knn.h"
#include "strata/metrics.h"

struct st_surrogate {
    int n_layers, n_classes;
    int64_t min_size;
    st_tensor **counts;     /* [L] of i64 [K_l, C] */
    st_tensor **posterior;  /* [L] of f64 [K_l, C] */
    st_tensor **prior;      /* [L] of f64 [C] */
    st_cluster_issue *issues;
    size_t n_issues;
};

st_surrogate_options st_surrogate_defaults(void) { return (st_surrogate_options){.min_cluster_size = 1}; }

char *st_cluster_issue_str(const st_cluster_issue *is, char *buf, size_t cap)
{
    if (!cap) return buf;
    switch (is->kind) {
    case ST_CLUSTER_EMPTY:
        snprintf(buf, cap,
                 "layer %d, cluster %lld: empty (0 training examples); posterior set to the layer's overall "
                 "label distribution",
                 is->layer, (long long)is->cluster);
        break;
    case ST_CLUSTER_SMALL:
        snprintf(buf, cap,
                 "layer %d, cluster %lld: only %lld training example%s (below the minimum cluster size); "
                 "posterior set to the layer's overall label distribution",
                 is->layer, (long long)is->cluster, (long long)is->size, is->size == 1 ? "" : "s");
        break;
    default:
        snprintf(buf, cap,
                 "layer %d: collapsed, all %lld training examples are in cluster %lld, so this layer "
                 "predicts the overall label distribution for every input",
                 is->layer, (long long)is->size, (long long)is->cluster);
        break;
    }
    return buf;
}

void st_surrogate_free(st_surrogate *s)
{
    if (!s) return;
    for (int l = 0; l < s->n_layers; l++) {
        if (s->counts) st_tensor_free(s->counts[l]);
        if (s->posterior) st_tensor_free(s->posterior[l]);
        if (s->prior) st_tensor_free(s->prior[l]);
    }
    free(s->counts);
    free(s->posterior);
    free(s->prior);
    free(s->issues);
    free(s);
}

static st_status add_issue(st_surrogate *s, st_cluster_issue_kind kind, int layer, int64_t cluster, int64_t size)
{
    st_cluster_issue *p = realloc(s->issues, (s->n_issues + 1) * sizeof *p);
    if (!p) return st_fail(ST_ENOMEM, "surrogate: out of memory for the report");
    s->issues = p;
    s->issues[s->n_issues++] = (st_cluster_issue){kind, layer, cluster, size};
    return ST_OK;
}

/* Validates counts[l], copies it as i64 and derives prior and posterior. */
static st_status build_layer(st_surrogate *s, int l, const st_tensor *counts, int64_t *total_out)
{
    char what[48];
    snprintf(what, sizeof what, "surrogate: layer %d counts", l);
    if (!counts) return st_fail(ST_EINVAL, "%s: missing", what);
    if (counts->dtype != ST_I64 && counts->dtype != ST_I32)
        return st_fail(ST_EDTYPE, "%s: i64 or i32 expected, got %s", what, st_dtype_name(counts->dtype));
    ST_TRY(st_tensor_expect(counts, what, counts->dtype, 2, (int64_t[]){-1, s->n_classes}));
    int64_t K = counts->shape[0], C = s->n_classes;
    if (K < 1) return st_fail(ST_ESHAPE, "%s: no clusters", what);
    ST_TRY(st_tensor_to_dtype(counts, ST_I64, &s->counts[l]));
    ST_TRY(st_tensor_zeros(ST_F64, 2, (int64_t[]){K, C}, &s->posterior[l]));
    ST_TRY(st_tensor_zeros(ST_F64, 1, (int64_t[]){C}, &s->prior[l]));
    const int64_t *n = s->counts[l]->data;
    double *H = s->posterior[l]->data, *prior = s->prior[l]->data;
    int64_t total = 0, nonempty = 0, last = 0;
    for (int64_t j = 0; j < K; j++) {
        int64_t size = 0;
        for (int64_t y = 0; y < C; y++) {
            if (n[j * C + y] < 0)
                return st_fail(ST_EINVAL, "%s: entry [%lld, %lld] is %lld (< 0)", what, (long long)j, (long long)y,
                               (long long)n[j * C + y]);
            size += n[j * C + y];
            prior[y] += (double)n[j * C + y];
        }
        total += size;
        if (size) {
            nonempty++;
            last = j;
        }
    }
    if (total == 0) return st_fail(ST_EINVAL, "%s: no training examples", what);
    for (int64_t y = 0; y < C; y++) prior[y] /= (double)total;
    for (int64_t j = 0; j < K; j++) {
        int64_t size = 0;
        for (int64_t y = 0; y < C; y++) size += n[j * C + y];
        if (size >= s->min_size) {
            for (int64_t y = 0; y < C; y++) H[j * C + y] = (double)n[j * C + y] / (double)size;
        } else {
            memcpy(H + j * C, prior, (size_t)C * sizeof *H);
            ST_TRY(add_issue(s, size ? ST_CLUSTER_SMALL : ST_CLUSTER_EMPTY, l, j, size));
        }
    }
    if (nonempty == 1 && K > 1) ST_TRY(add_issue(s, ST_LAYER_COLLAPSED, l, last, total));
    *total_out = total;
    return ST_OK;
}

st_status st_surrogate_new(int n_layers, const st_tensor *const *counts, const st_surrogate_options *opt,
                           st_surrogate **out)
{
    st_surrogate_options o = opt ? *opt : st_surrogate_defaults();
    if (n_layers < 1) return st_fail(ST_EINVAL, "surrogate: %d layers (at least 1 expected)", n_layers);
    if (o.min_cluster_size < 1)
        return st_fail(ST_EINVAL, "surrogate: min_cluster_size %lld < 1", (long long)o.min_cluster_size);
    if (!counts || !counts[0]) return st_fail(ST_EINVAL, "surrogate: layer 0 counts: missing");
    if (counts[0]->ndim != 2 || counts[0]->shape[1] < 1 || counts[0]->shape[1] > INT32_MAX) {
        char buf[64];
        return st_fail(ST_ESHAPE, "surrogate: layer 0 counts: [clusters, classes] expected, got %s",
                       st_shape_str(counts[0]->ndim, counts[0]->shape, buf, sizeof buf));
    }
    st_surrogate *s = calloc(1, sizeof *s);
    if (!s) return st_fail(ST_ENOMEM, "surrogate: out of memory");
    s->n_layers = n_layers;
    s->n_classes = (int)counts[0]->shape[1];
    s->min_size = o.min_cluster_size;
    s->counts = calloc((size_t)n_layers, sizeof *s->counts);
    s->posterior = calloc((size_t)n_layers, sizeof *s->posterior);
    s->prior = calloc((size_t)n_layers, sizeof *s->prior);
    st_status st = s->counts && s->posterior && s->prior ? ST_OK : st_fail(ST_ENOMEM, "surrogate: out of memory");
    int64_t total0 = 0;
    for (int l = 0; st == ST_OK && l < n_layers; l++) {
        int64_t total = 0;
        st = build_layer(s, l, counts[l], &total);
        if (st == ST_OK && l == 0) total0 = total;
        if (st == ST_OK && total != total0)
            st = st_fail(ST_EINVAL, "surrogate: layer %d counts sum to %lld examples, layer 0 counts to %lld", l,
                         (long long)total, (long long)total0);
    }
    if (st != ST_OK) {
        st_surrogate_free(s);
        return st;
    }
    *out = s;
    return ST_OK;
}

st_status st_surrogate_fit(int n_layers, const st_tensor *const *clusters, const int64_t *n_clusters,
                           const st_tensor *labels, int n_classes, const st_surrogate_options *opt,
                           st_surrogate **out)
{
    if (n_layers < 1) return st_fail(ST_EINVAL, "surrogate: %d layers (at least 1 expected)", n_layers);
    st_tensor **counts = calloc((size_t)n_layers, sizeof *counts);
    if (!counts) return st_fail(ST_ENOMEM, "surrogate: out of memory");
    st_status st = ST_OK;
    for (int l = 0; st == ST_OK && l < n_layers; l++) {
        st = st_cluster_counts(clusters[l], n_clusters[l], labels, n_classes, &counts[l]);
        if (st != ST_OK) st = st_fail_context(st, "surrogate: layer %d: ", l);
        /* every layer must describe the same examples */
        if (st == ST_OK && clusters[l]->shape[0] != clusters[0]->shape[0])
            st = st_fail(ST_ESHAPE, "surrogate: layer %d has %lld cluster ids, layer 0 has %lld", l,
                         (long long)clusters[l]->shape[0], (long long)clusters[0]->shape[0]);
    }
    if (st == ST_OK) st = st_surrogate_new(n_layers, (const st_tensor *const *)counts, opt, out);
    for (int l = 0; l < n_layers; l++) st_tensor_free(counts[l]);
    free(counts);
    return st;
}

int st_surrogate_layer_count(const st_surrogate *s) { return s->n_layers; }
int st_surrogate_class_count(const st_surrogate *s) { return s->n_classes; }
int64_t st_surrogate_min_cluster_size(const st_surrogate *s) { return s->min_size; }

int64_t st_surrogate_cluster_count(const st_surrogate *s, int layer)
{
    return layer >= 0 && layer < s->n_layers ? s->counts[layer]->shape[0] : 0;
}

const st_tensor *st_surrogate_posterior(const st_surrogate *s, int layer)
{
    return layer >= 0 && layer < s->n_layers ? s->posterior[layer] : NULL;
}

const st_tensor *st_surrogate_counts(const st_surrogate *s, int layer)
{
    return layer >= 0 && layer < s->n_layers ? s->counts[layer] : NULL;
}

const st_tensor *st_surrogate_prior(const st_surrogate *s, int layer)
{
    return layer >= 0 && layer < s->n_layers ? s->prior[layer] : NULL;
}

const st_cluster_issue *st_surrogate_issues(const st_surrogate *s, size_t *count)
{
    *count = s->n_issues;
    return s->issues;
}

/* ---------------------------------------------------------- prediction */

/* Checks q[l] against the posteriors and returns N. */
static st_status check_q(const st_surrogate *s, const st_tensor *const *q, int64_t *n_out)
{
    if (!q) return st_fail(ST_EINVAL, "surrogate: soft assignments missing");
    int64_t N = -1;
    for (int l = 0; l < s->n_layers; l++) {
        char what[64];
        snprintf(what, sizeof what, "surrogate: layer %d soft assignments", l);
        if (!q[l]) return st_fail(ST_EINVAL, "%s: missing", what);
        ST_TRY(st_rows_expect(q[l], what, N, s->counts[l]->shape[0]));
        N = q[l]->shape[0];
        int64_t K = q[l]->shape[1], ld = st_rows_ld(q[l]);
        const float *p = st_f32(q[l]);
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j < K; j++)
                if (!isfinite(p[i * ld + j]))
                    return st_fail(ST_ENUMERIC, "%s: row %lld, cluster %lld is %g", what, (long long)i, (long long)j,
                                   (double)p[i * ld + j]);
    }
    *n_out = N;
    return ST_OK;
}

/* Normalised weights w_l / sum(w) into wn. */
static st_status normalise_weights(const st_surrogate *s, const double *weights, double *wn)
{
    double sum = 0;
    for (int l = 0; l < s->n_layers; l++) {
        double w = weights ? weights[l] : 1.0;
        if (!isfinite(w) || w < 0)
            return st_fail(ST_EINVAL, "surrogate: weight %d is %g (weights must be finite and >= 0)", l, w);
        sum += w;
    }
    if (!(sum > 0)) return st_fail(ST_EINVAL, "surrogate: the weights are all 0 (at least one must be > 0)");
    for (int l = 0; l < s->n_layers; l++) wn[l] = (weights ? weights[l] : 1.0) / sum;
    return ST_OK;
}

/* acc[y] += w * sum_j q_l[i, j] H_l[j, y] */
static void accumulate(const st_surrogate *s, int l, const st_tensor *q, int64_t i, double w, double *acc)
{
    int64_t K = q->shape[1], C = s->n_classes;
    const float *qi = st_f32(q) + i * st_rows_ld(q);
    const double *H = s->posterior[l]->data;
    for (int64_t j = 0; j < K; j++) {
        double a = w * (double)qi[j];
        if (a == 0) continue;
        for (int64_t y = 0; y < C; y++) acc[y] += a * H[j * C + y];
    }
}

static int64_t argmax(const double *v, int64_t n)
{
    int64_t best = 0;
    for (int64_t y = 1; y < n; y++)
        if (v[y] > v[best]) best = y;
    return best;
}

/* Writes a freshly computed tensor through the output convention. */
static st_status deliver(st_tensor *fresh, const char *what, st_tensor **out)
{
    if (!*out) {
        *out = fresh;
        return ST_OK;
    }
    st_status s = st_tensor_expect(*out, what, fresh->dtype, fresh->ndim, fresh->shape);
    if (s == ST_OK) s = st_tensor_copy_into(*out, fresh);
    st_tensor_free(fresh);
    return s;
}

st_status st_surrogate_predict_proba(const st_surrogate *s, const st_tensor *const *q, const double *weights,
                                     st_tensor **proba)
{
    int64_t N, C = s->n_classes;
    double *wn = malloc((size_t)s->n_layers * sizeof *wn);
    if (!wn) return st_fail(ST_ENOMEM, "surrogate: out of memory");
    st_status st = normalise_weights(s, weights, wn);
    if (st == ST_OK) st = check_q(s, q, &N);
    st_tensor *p = NULL;
    if (st == ST_OK) st = st_tensor_zeros(ST_F64, 2, (int64_t[]){N, C}, &p);
    if (st == ST_OK) {
        double *P = p->data;
        for (int64_t i = 0; i < N; i++)
            for (int l = 0; l < s->n_layers; l++)
                if (wn[l] > 0) accumulate(s, l, q[l], i, wn[l], P + i * C);
        st = deliver(p, "surrogate: probabilities output", proba);
    }
    free(wn);
    return st;
}

st_status st_surrogate_predict(const st_surrogate *s, const st_tensor *const *q, const double *weights,
                               st_tensor **labels)
{
    st_tensor *p = NULL, *lab = NULL;
    ST_TRY(st_surrogate_predict_proba(s, q, weights, &p));
    int64_t N = p->shape[0], C = s->n_classes;
    st_status st = st_tensor_new(ST_I64, 1, &N, &lab);
    if (st == ST_OK) {
        for (int64_t i = 0; i < N; i++) ((int64_t *)lab->data)[i] = argmax((double *)p->data + i * C, C);
        st = deliver(lab, "surrogate: labels output", labels);
    }
    st_tensor_free(p);
    return st;
}

st_status st_surrogate_predict_layers(const st_surrogate *s, const st_tensor *const *q, st_tensor **labels)
{
    int64_t N, C = s->n_classes;
    ST_TRY(check_q(s, q, &N));
    st_tensor *lab = NULL;
    double *acc = malloc((size_t)C * sizeof *acc);
    st_status st = acc ? st_tensor_new(ST_I64, 2, (int64_t[]){s->n_layers, N}, &lab)
                       : st_fail(ST_ENOMEM, "surrogate: out of memory");
    if (st == ST_OK) {
        int64_t *out = lab->data;
        for (int l = 0; l < s->n_layers; l++)
            for (int64_t i = 0; i < N; i++) {
                memset(acc, 0, (size_t)C * sizeof *acc);
                accumulate(s, l, q[l], i, 1.0, acc);
                out[l * N + i] = argmax(acc, C);
            }
        st = deliver(lab, "surrogate: per-layer labels output", labels);
    }
    free(acc);
    return st;
}
