/* Accuracy, fidelity, bootstrap intervals, confusion matrices and cluster
 * statistics (metrics.h), with their JSON and text forms. */
#include "strata/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

st_status st_labels_copy(const st_tensor *t, const char *what, int64_t n, int64_t n_ids, int64_t **out,
                         int64_t *len)
{
    if (!t) return st_fail(ST_EINVAL, "%s: missing", what);
    if ((t->dtype != ST_I32 && t->dtype != ST_I64) || t->ndim != 1) {
        char buf[64];
        return st_fail(t->dtype != ST_I32 && t->dtype != ST_I64 ? ST_EDTYPE : ST_ESHAPE,
                       "%s: a 1-d i32 or i64 tensor expected, got %s %s", what, st_dtype_name(t->dtype),
                       st_shape_str(t->ndim, t->shape, buf, sizeof buf));
    }
    if (n >= 0 && t->shape[0] != n)
        return st_fail(ST_ESHAPE, "%s: %lld entries expected, got %lld", what, (long long)n,
                       (long long)t->shape[0]);
    int64_t m = t->shape[0];
    int64_t *v = malloc((size_t)(m ? m : 1) * sizeof *v);
    if (!v) return st_fail(ST_ENOMEM, "%s: out of memory for %lld labels", what, (long long)m);
    for (int64_t i = 0; i < m; i++) {
        const char *p = (const char *)t->data + (ptrdiff_t)(i * t->stride[0]) * (ptrdiff_t)st_dtype_size(t->dtype);
        v[i] = t->dtype == ST_I32 ? *(const int32_t *)p : *(const int64_t *)p;
        if (v[i] < 0 || v[i] >= n_ids) {
            st_status s = st_fail(ST_EINVAL, "%s: entry %lld is %lld, outside [0, %lld)", what, (long long)i,
                                  (long long)v[i], (long long)n_ids);
            free(v);
            return s;
        }
    }
    *out = v;
    if (len) *len = m;
    return ST_OK;
}

st_status st_agreement(const st_tensor *a, const st_tensor *b, double *out)
{
    int64_t *x = NULL, *y = NULL, n = 0;
    ST_TRY(st_labels_copy(a, "agreement: first labels", -1, INT64_MAX, &x, &n));
    st_status s = st_labels_copy(b, "agreement: second labels", n, INT64_MAX, &y, NULL);
    if (s == ST_OK && n == 0) s = st_fail(ST_EINVAL, "agreement: no labels");
    if (s == ST_OK) {
        int64_t same = 0;
        for (int64_t i = 0; i < n; i++) same += x[i] == y[i];
        *out = (double)same / (double)n;
    }
    free(x);
    free(y);
    return s;
}

st_status st_cluster_counts(const st_tensor *clusters, int64_t n_clusters, const st_tensor *classes,
                            int64_t n_classes, st_tensor **counts)
{
    if (n_clusters < 1 || n_classes < 1)
        return st_fail(ST_EINVAL, "cluster counts: %lld clusters and %lld classes (both must be >= 1)",
                       (long long)n_clusters, (long long)n_classes);
    int64_t *c = NULL, *y = NULL, n = 0;
    ST_TRY(st_labels_copy(clusters, "cluster counts: cluster ids", -1, n_clusters, &c, &n));
    st_status s = st_labels_copy(classes, "cluster counts: class labels", n, n_classes, &y, NULL);
    st_tensor *t = NULL;
    if (s == ST_OK) s = st_tensor_zeros(ST_I64, 2, (int64_t[]){n_clusters, n_classes}, &t);
    if (s == ST_OK) {
        int64_t *p = t->data;
        for (int64_t i = 0; i < n; i++) p[c[i] * n_classes + y[i]]++;
        if (*counts) {
            s = st_tensor_expect(*counts, "cluster counts: output", ST_I64, 2, t->shape);
            if (s == ST_OK) s = st_tensor_copy_into(*counts, t);
            st_tensor_free(t);
        } else {
            *counts = t;
        }
    }
    free(c);
    free(y);
    return s;
}

/* ---------------------------------------------------------- evaluation */

st_eval_options st_eval_defaults(st_rng *rng)
{
    return (st_eval_options){.bootstrap = 1000, .level = 0.95, .rng = rng};
}

void st_evaluation_free(st_evaluation *ev)
{
    if (!ev) return;
    free(ev->layer_accuracy);
    free(ev->layer_fidelity);
    free(ev->class_count);
    free(ev->class_fidelity);
    free(ev->confusion);
    free(ev->agreement);
    free(ev);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Quantile p of sorted v[0..n), linear between order statistics. */
static double quantile(const double *v, int64_t n, double p)
{
    double pos = p * (double)(n - 1);
    int64_t i = (int64_t)floor(pos);
    if (i >= n - 1) return v[n - 1];
    return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

enum { HIT_TRUTH = 1, HIT_BASELINE = 2, BASELINE_RIGHT = 4 };

/* Percentile bootstrap of the three rates encoded as bits in hit[]. */
static st_status bootstrap(const uint8_t *hit, int64_t n, const st_eval_options *o, st_evaluation *ev)
{
    int64_t B = o->bootstrap;
    double *v = malloc((size_t)B * 3 * sizeof *v);
    if (!v) return st_fail(ST_ENOMEM, "evaluate: out of memory for %lld bootstrap resamples", (long long)B);
    double *acc = v, *fid = v + B, *base = v + 2 * B;
    for (int64_t b = 0; b < B; b++) {
        int64_t a = 0, f = 0, r = 0;
        for (int64_t i = 0; i < n; i++) {
            uint8_t h = hit[st_rng_below(o->rng, (uint64_t)n)];
            a += h & HIT_TRUTH;
            f += (h & HIT_BASELINE) >> 1;
            r += (h & BASELINE_RIGHT) >> 2;
        }
        acc[b] = (double)a / (double)n;
        fid[b] = (double)f / (double)n;
        base[b] = (double)r / (double)n;
    }
    double lo = (1 - o->level) / 2, hi = (1 + o->level) / 2;
    st_interval *out[3] = {&ev->accuracy_ci, &ev->fidelity_ci, &ev->baseline_accuracy_ci};
    for (int m = 0; m < 3; m++) {
        qsort(v + m * B, (size_t)B, sizeof *v, cmp_double);
        out[m]->lo = quantile(v + m * B, B, lo);
        out[m]->hi = quantile(v + m * B, B, hi);
    }
    free(v);
    return ST_OK;
}

static st_status check_options(const st_eval_options *o)
{
    if (o->bootstrap < 0) return st_fail(ST_EINVAL, "evaluate: bootstrap %lld < 0", (long long)o->bootstrap);
    if (!(o->level > 0 && o->level < 1)) return st_fail(ST_EINVAL, "evaluate: level %g is not in (0, 1)", o->level);
    if (o->bootstrap > 0 && !o->rng) return st_fail(ST_EINVAL, "evaluate: bootstrap needs an rng");
    return ST_OK;
}

/* Everything except the bootstrap, from label arrays already checked. */
static st_status fill(st_evaluation *ev, const int64_t *t, const int64_t *b, const int64_t *s, const int64_t *lay,
                      uint8_t *hit)
{
    int64_t n = ev->n, C = ev->n_classes, L = ev->n_layers;
    ev->layer_accuracy = calloc((size_t)(L ? L : 1), sizeof(double));
    ev->layer_fidelity = calloc((size_t)(L ? L : 1), sizeof(double));
    ev->class_count = calloc((size_t)C, sizeof(int64_t));
    ev->class_fidelity = calloc((size_t)C, sizeof(double));
    ev->confusion = calloc((size_t)(C * C), sizeof(int64_t));
    ev->agreement = calloc((size_t)(C * C), sizeof(int64_t));
    if (!ev->layer_accuracy || !ev->layer_fidelity || !ev->class_count || !ev->class_fidelity || !ev->confusion ||
        !ev->agreement)
        return st_fail(ST_ENOMEM, "evaluate: out of memory");
    int64_t acc = 0, fid = 0, base = 0;
    for (int64_t i = 0; i < n; i++) {
        hit[i] = (uint8_t)((s[i] == t[i] ? HIT_TRUTH : 0) | (s[i] == b[i] ? HIT_BASELINE : 0) |
                           (b[i] == t[i] ? BASELINE_RIGHT : 0));
        acc += s[i] == t[i];
        fid += s[i] == b[i];
        base += b[i] == t[i];
        ev->confusion[t[i] * C + s[i]]++;
        ev->agreement[b[i] * C + s[i]]++;
    }
    ev->accuracy = (double)acc / (double)n;
    ev->fidelity = (double)fid / (double)n;
    ev->baseline_accuracy = (double)base / (double)n;
    for (int64_t c = 0; c < C; c++) {
        int64_t row = 0;
        for (int64_t d = 0; d < C; d++) row += ev->agreement[c * C + d];
        ev->class_count[c] = row;
        ev->class_fidelity[c] = row ? (double)ev->agreement[c * C + c] / (double)row : NAN;
    }
    for (int64_t l = 0; l < L; l++) {
        int64_t a = 0, f = 0;
        for (int64_t i = 0; i < n; i++) {
            a += lay[l * n + i] == t[i];
            f += lay[l * n + i] == b[i];
        }
        ev->layer_accuracy[l] = (double)a / (double)n;
        ev->layer_fidelity[l] = (double)f / (double)n;
    }
    return ST_OK;
}

/* Per-layer predictions [L, n] of any strides, range-checked, as int64. */
static st_status layer_labels(const st_tensor *layers, int64_t n, int n_classes, int64_t **out)
{
    if (layers->ndim != 2 || layers->shape[1] != n || layers->shape[0] < 1 || layers->shape[0] > INT32_MAX) {
        char buf[64];
        return st_fail(ST_ESHAPE, "evaluate: layer predictions: [L, %lld] expected, got %s", (long long)n,
                       st_shape_str(layers->ndim, layers->shape, buf, sizeof buf));
    }
    if (layers->dtype != ST_I32 && layers->dtype != ST_I64)
        return st_fail(ST_EDTYPE, "evaluate: layer predictions: i32 or i64 expected, got %s",
                       st_dtype_name(layers->dtype));
    int64_t L = layers->shape[0];
    int64_t *v = malloc((size_t)(L * n) * sizeof *v);
    if (!v) return st_fail(ST_ENOMEM, "evaluate: out of memory");
    for (int64_t l = 0; l < L; l++) {
        st_tensor *row = NULL;
        int64_t *r = NULL;
        char what[64];
        snprintf(what, sizeof what, "evaluate: layer %lld predictions", (long long)l);
        st_status s = st_tensor_select(layers, 0, l, &row);
        if (s == ST_OK) s = st_labels_copy(row, what, n, n_classes, &r, NULL);
        st_tensor_free(row);
        if (s != ST_OK) {
            free(v);
            return s;
        }
        memcpy(v + l * n, r, (size_t)n * sizeof *v);
        free(r);
    }
    *out = v;
    return ST_OK;
}

st_status st_evaluate(const st_tensor *truth, const st_tensor *baseline, const st_tensor *surrogate,
                      const st_tensor *layers, int n_classes, const st_eval_options *opt, st_evaluation **out)
{
    if (!opt) return st_fail(ST_EINVAL, "evaluate: options are required (st_eval_defaults)");
    ST_TRY(check_options(opt));
    if (n_classes < 1) return st_fail(ST_EINVAL, "evaluate: %d classes", n_classes);
    int64_t *t = NULL, *b = NULL, *s = NULL, *lay = NULL, n = 0;
    uint8_t *hit = NULL;
    st_evaluation *ev = NULL;
    st_status st = st_labels_copy(truth, "evaluate: true labels", -1, n_classes, &t, &n);
    if (st == ST_OK && n == 0) st = st_fail(ST_EINVAL, "evaluate: no examples");
    if (st == ST_OK) st = st_labels_copy(baseline, "evaluate: baseline predictions", n, n_classes, &b, NULL);
    if (st == ST_OK) st = st_labels_copy(surrogate, "evaluate: surrogate predictions", n, n_classes, &s, NULL);
    if (st == ST_OK && layers) st = layer_labels(layers, n, n_classes, &lay);
    if (st == ST_OK && !(hit = malloc((size_t)n)) ) st = st_fail(ST_ENOMEM, "evaluate: out of memory");
    if (st == ST_OK && !(ev = calloc(1, sizeof *ev))) st = st_fail(ST_ENOMEM, "evaluate: out of memory");
    if (st == ST_OK) {
        ev->n = n;
        ev->n_classes = n_classes;
        ev->n_layers = layers ? (int)layers->shape[0] : 0;
        ev->bootstrap = opt->bootstrap;
        ev->level = opt->level;
        st = fill(ev, t, b, s, lay, hit);
    }
    if (st == ST_OK) {
        if (opt->bootstrap > 0) {
            st = bootstrap(hit, n, opt, ev);
        } else {
            ev->accuracy_ci = (st_interval){ev->accuracy, ev->accuracy};
            ev->fidelity_ci = (st_interval){ev->fidelity, ev->fidelity};
            ev->baseline_accuracy_ci = (st_interval){ev->baseline_accuracy, ev->baseline_accuracy};
        }
    }
    free(t);
    free(b);
    free(s);
    free(lay);
    free(hit);
    if (st != ST_OK) {
        st_evaluation_free(ev);
        return st;
    }
    *out = ev;
    return ST_OK;
}

/* ------------------------------------------------------- cluster stats */

st_status st_cluster_stats_compute(const st_tensor *counts, st_cluster_stats *stats)
{
    ST_TRY(st_tensor_expect(counts, "cluster stats: counts", ST_I64, 2, (int64_t[]){-1, -1}));
    int64_t K = counts->shape[0], C = counts->shape[1];
    for (int64_t j = 0; j < K; j++) {
        st_cluster_stats *o = &stats[j];
        memset(o, 0, sizeof *o);
        const char *row = (const char *)counts->data + (ptrdiff_t)(j * counts->stride[0]) * 8;
        int64_t size = 0;
        for (int64_t y = 0; y < C; y++) {
            int64_t c = *(const int64_t *)(row + (ptrdiff_t)(y * counts->stride[1]) * 8);
            if (c < 0)
                return st_fail(ST_EINVAL, "cluster stats: count [%lld, %lld] is %lld (< 0)", (long long)j,
                               (long long)y, (long long)c);
            size += c;
        }
        o->size = size;
        if (!size) continue;
        for (int64_t y = 0; y < C; y++) {
            int64_t c = *(const int64_t *)(row + (ptrdiff_t)(y * counts->stride[1]) * 8);
            if (!c) continue;
            double f = (double)c / (double)size;
            o->entropy -= f * log2(f);
            /* insertion into the top list; strict '>' keeps ties at the lower id */
            int pos = o->n_dominant;
            while (pos > 0 && f > o->dominant_fraction[pos - 1]) pos--;
            if (pos >= ST_DOMINANT_MAX) continue;
            int last = o->n_dominant < ST_DOMINANT_MAX ? o->n_dominant : ST_DOMINANT_MAX - 1;
            for (int k = last; k > pos; k--) {
                o->dominant[k] = o->dominant[k - 1];
                o->dominant_fraction[k] = o->dominant_fraction[k - 1];
            }
            o->dominant[pos] = (int)y;
            o->dominant_fraction[pos] = f;
            if (o->n_dominant < ST_DOMINANT_MAX) o->n_dominant++;
        }
        o->purity = o->dominant_fraction[0];
        if (o->entropy < 0) o->entropy = 0; /* -0.0 for a pure cluster */
    }
    return ST_OK;
}

/* ---------------------------------------------------------- JSON forms */

static void write_rate(st_json_writer *w, const char *key, double v, st_interval ci)
{
    st_json_key(w, key);
    st_json_begin_object(w);
    st_json_key(w, "value");
    st_json_write_number(w, v);
    st_json_key(w, "ci");
    st_json_begin_array(w);
    st_json_write_number(w, ci.lo);
    st_json_write_number(w, ci.hi);
    st_json_end_array(w);
    st_json_end_object(w);
}

static void write_matrix(st_json_writer *w, const char *key, const int64_t *m, int64_t C)
{
    st_json_key(w, key);
    st_json_begin_array(w);
    for (int64_t r = 0; r < C; r++) {
        st_json_begin_array(w);
        for (int64_t c = 0; c < C; c++) st_json_write_int(w, m[r * C + c]);
        st_json_end_array(w);
    }
    st_json_end_array(w);
}

void st_evaluation_write_json(st_json_writer *w, const st_evaluation *ev, const char *const *class_names,
                              const char *const *layer_names)
{
    st_json_begin_object(w);
    st_json_key(w, "n");
    st_json_write_int(w, ev->n);
    st_json_key(w, "classes");
    st_json_write_int(w, ev->n_classes);
    st_json_key(w, "bootstrap");
    st_json_write_int(w, ev->bootstrap);
    st_json_key(w, "level");
    st_json_write_number(w, ev->level);
    write_rate(w, "baseline_accuracy", ev->baseline_accuracy, ev->baseline_accuracy_ci);
    write_rate(w, "accuracy", ev->accuracy, ev->accuracy_ci);
    write_rate(w, "fidelity", ev->fidelity, ev->fidelity_ci);
    st_json_key(w, "layers");
    st_json_begin_array(w);
    for (int l = 0; l < ev->n_layers; l++) {
        st_json_begin_object(w);
        st_json_key(w, "layer");
        st_json_write_int(w, l);
        if (layer_names) {
            st_json_key(w, "name");
            st_json_write_string(w, layer_names[l]);
        }
        st_json_key(w, "accuracy");
        st_json_write_number(w, ev->layer_accuracy[l]);
        st_json_key(w, "fidelity");
        st_json_write_number(w, ev->layer_fidelity[l]);
        st_json_end_object(w);
    }
    st_json_end_array(w);
    st_json_key(w, "per_class");
    st_json_begin_array(w);
    for (int c = 0; c < ev->n_classes; c++) {
        st_json_begin_object(w);
        st_json_key(w, "class");
        st_json_write_int(w, c);
        if (class_names) {
            st_json_key(w, "name");
            st_json_write_string(w, class_names[c]);
        }
        st_json_key(w, "baseline_count");
        st_json_write_int(w, ev->class_count[c]);
        st_json_key(w, "fidelity");
        if (ev->class_count[c])
            st_json_write_number(w, ev->class_fidelity[c]);
        else
            st_json_write_null(w);
        st_json_end_object(w);
    }
    st_json_end_array(w);
    write_matrix(w, "confusion", ev->confusion, ev->n_classes);
    write_matrix(w, "agreement", ev->agreement, ev->n_classes);
    st_json_end_object(w);
}

void st_cluster_stats_write_json(st_json_writer *w, const st_cluster_stats *stats, int64_t k,
                                 const char *const *class_names)
{
    st_json_begin_array(w);
    for (int64_t j = 0; j < k; j++) {
        const st_cluster_stats *s = &stats[j];
        st_json_begin_object(w);
        st_json_key(w, "cluster");
        st_json_write_int(w, j);
        st_json_key(w, "size");
        st_json_write_int(w, s->size);
        st_json_key(w, "purity");
        st_json_write_number(w, s->purity);
        st_json_key(w, "entropy_bits");
        st_json_write_number(w, s->entropy);
        st_json_key(w, "dominant");
        st_json_begin_array(w);
        for (int d = 0; d < s->n_dominant; d++) {
            st_json_begin_object(w);
            st_json_key(w, "class");
            st_json_write_int(w, s->dominant[d]);
            if (class_names) {
                st_json_key(w, "name");
                st_json_write_string(w, class_names[s->dominant[d]]);
            }
            st_json_key(w, "fraction");
            st_json_write_number(w, s->dominant_fraction[d]);
            st_json_end_object(w);
        }
        st_json_end_array(w);
        st_json_end_object(w);
    }
    st_json_end_array(w);
}

/* --------------------------------------------------------- text summary */

typedef struct text {
    char *p;
    size_t len, cap;
    bool failed;
} text;

static void put(text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void put(text *t, const char *fmt, ...)
{
    if (t->failed) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->failed = true;
        return;
    }
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->len + (size_t)n + 1) cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->failed = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->p + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

static void put_rate(text *t, const char *name, double v, st_interval ci, bool with_ci)
{
    if (with_ci)
        put(t, "  %-20s %8.4f   [%.4f, %.4f]\n", name, v, ci.lo, ci.hi);
    else
        put(t, "  %-20s %8.4f\n", name, v);
}

st_status st_evaluation_summary(const st_evaluation *ev, const char *const *class_names,
                                const char *const *layer_names, char **out)
{
    text t = {0};
    bool ci = ev->bootstrap > 0;
    put(&t, "%lld examples, %d classes", (long long)ev->n, ev->n_classes);
    if (ci) put(&t, ", %g%% percentile bootstrap intervals (B = %lld)", 100 * ev->level, (long long)ev->bootstrap);
    put(&t, "\n  %-20s %8s%s\n", "metric", "value", ci ? "   interval" : "");
    put_rate(&t, "baseline accuracy", ev->baseline_accuracy, ev->baseline_accuracy_ci, ci);
    put_rate(&t, "surrogate accuracy", ev->accuracy, ev->accuracy_ci, ci);
    put_rate(&t, "fidelity", ev->fidelity, ev->fidelity_ci, ci);
    if (ev->n_layers) {
        put(&t, "\n  %-20s %8s %9s\n", "layer alone", "accuracy", "fidelity");
        for (int l = 0; l < ev->n_layers; l++) {
            char name[32];
            if (!layer_names) snprintf(name, sizeof name, "layer %d", l);
            put(&t, "  %-20.20s %8.4f %9.4f\n", layer_names ? layer_names[l] : name, ev->layer_accuracy[l],
                ev->layer_fidelity[l]);
        }
    }
    put(&t, "\n  %-20s %8s %9s\n", "baseline class", "count", "fidelity");
    for (int c = 0; c < ev->n_classes; c++) {
        char name[32];
        if (!class_names) snprintf(name, sizeof name, "class %d", c);
        const char *label = class_names ? class_names[c] : name;
        if (ev->class_count[c])
            put(&t, "  %-20.20s %8lld %9.4f\n", label, (long long)ev->class_count[c], ev->class_fidelity[c]);
        else
            put(&t, "  %-20.20s %8lld %9s\n", label, 0LL, "-");
    }
    if (t.failed || !t.p) {
        free(t.p);
        return st_fail(ST_ENOMEM, "evaluation summary: out of memory");
    }
    *out = t.p;
    return ST_OK;
}
