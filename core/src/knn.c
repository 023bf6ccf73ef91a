/* Streaming weighted multi-layer k-nearest-neighbour search (see knn.h). */
#include "strata/knn.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define KNN_TRAIN_BLOCK 1024
#define KNN_QUERY_BLOCK 128

st_knn_options st_knn_defaults(int64_t k)
{
    return (st_knn_options){.k = k};
}

st_status st_rows_expect(const st_tensor *t, const char *what, int64_t rows, int64_t cols)
{
    ST_TRY(st_tensor_expect(t, what, ST_F32, 2, (int64_t[]){rows, cols}));
    if (t->shape[1] > 1 && t->stride[1] != 1)
        return st_fail(ST_ESHAPE, "%s: rows must be contiguous (column stride %lld); call st_tensor_contiguous first",
                       what, (long long)t->stride[1]);
    if (t->shape[1] > INT_MAX || (t->shape[0] > 1 && (t->stride[0] < t->shape[1] || t->stride[0] > INT_MAX)))
        return st_fail(ST_ESHAPE, "%s: row length %lld or row stride %lld is out of range", what,
                       (long long)t->shape[1], (long long)t->stride[0]);
    return ST_OK;
}

/* Squared norms of m rows of length d (row stride lda), accumulated in
 * double. Returns false at the first non-finite one (its row in *bad). */
static bool sqnorm_rows(int64_t m, int64_t d, const float *a, int64_t lda, float *norms, int64_t *bad)
{
    for (int64_t i = 0; i < m; i++) {
        const float *r = a + i * lda;
        double s = 0;
        for (int64_t j = 0; j < d; j++) s += (double)r[j] * r[j];
        norms[i] = (float)s;
        if (!isfinite(norms[i])) {
            *bad = i;
            return false;
        }
    }
    return true;
}

/* out[j] = qn + tn[j]: the norm terms, which the GEMM then completes
 * (beta = 1) into squared distances. */
static void norm_terms(int64_t n, float qn, const float *restrict tn, float *restrict out)
{
    int64_t j = 0;
    for (; j + 4 <= n; j += 4)
        for (int u = 0; u < 4; u++) out[j + u] = qn + tn[j + u];
    for (; j < n; j++) out[j] = qn + tn[j];
}

/* acc[j] (first: =, else: +=) w * sqrt(max(d2[j], 0)) over n squared
 * distances. sqrtf is not vectorised by compilers under C's errno rules,
 * so the SSE2 path uses sqrtps, which rounds exactly as sqrtf does; the
 * results are the same bit for bit on both paths. */
static void add_weighted_dist(int64_t n, const float *restrict d2, float w, bool first, float *restrict acc)
{
    int64_t j = 0;
#if defined(__SSE2__)
    __m128 vw = _mm_set1_ps(w), zero = _mm_setzero_ps();
    for (; j + 4 <= n; j += 4) {
        __m128 t = _mm_mul_ps(vw, _mm_sqrt_ps(_mm_max_ps(_mm_loadu_ps(d2 + j), zero)));
        _mm_storeu_ps(acc + j, first ? t : _mm_add_ps(_mm_loadu_ps(acc + j), t));
    }
#endif
    for (; j < n; j++) {
        float t = w * sqrtf(d2[j] > 0.0f ? d2[j] : 0.0f);
        acc[j] = first ? t : acc[j] + t;
    }
}

/* ---- bounded max-heaps, one per query: the root is the worst kept ---- */

/* (da, ia) ranks after (db, ib): larger distance, or equal and larger index. */
static inline bool worse(float da, int64_t ia, float db, int64_t ib)
{
    return da > db || (da == db && ia > ib);
}

static void sift_down(float *d, int64_t *ix, int64_t n, int64_t p)
{
    for (;;) {
        int64_t c = 2 * p + 1;
        if (c >= n) return;
        if (c + 1 < n && worse(d[c + 1], ix[c + 1], d[c], ix[c])) c++;
        if (!worse(d[c], ix[c], d[p], ix[p])) return;
        float td = d[p];
        d[p] = d[c];
        d[c] = td;
        int64_t ti = ix[p];
        ix[p] = ix[c];
        ix[c] = ti;
        p = c;
    }
}

static void heap_push(float *d, int64_t *ix, int64_t n, float dist, int64_t idx)
{
    int64_t c = n;
    while (c > 0) {
        int64_t p = (c - 1) / 2;
        if (!worse(dist, idx, d[p], ix[p])) break;
        d[c] = d[p];
        ix[c] = ix[p];
        c = p;
    }
    d[c] = dist;
    ix[c] = idx;
}

/* Sorts a heap of n entries ascending, in place (heapsort). */
static void heap_sort(float *d, int64_t *ix, int64_t n)
{
    for (int64_t end = n - 1; end > 0; end--) {
        float td = d[0];
        d[0] = d[end];
        d[end] = td;
        int64_t ti = ix[0];
        ix[0] = ix[end];
        ix[end] = ti;
        sift_down(d, ix, end, 0);
    }
}

static inline int64_t label_at(const st_tensor *t, int64_t i)
{
    return t->dtype == ST_I64 ? ((const int64_t *)t->data)[i * t->stride[0]]
                              : ((const int32_t *)t->data)[i * t->stride[0]];
}

static st_status check_labels(const st_tensor *t, const char *what, int64_t n)
{
    if (!t) return st_fail(ST_EINVAL, "knn: %s missing (the filter needs both label arrays)", what);
    if (t->dtype != ST_I64 && t->dtype != ST_I32)
        return st_fail(ST_EDTYPE, "knn: %s must be i64 or i32, got %s", what, st_dtype_name(t->dtype));
    return st_tensor_expect(t, what, t->dtype, 1, (int64_t[]){n});
}

/* Validates everything before any work; fills the shared sizes. */
static st_status check_inputs(int L, const st_tensor *const *qs, const st_tensor *const *ts,
                              const st_knn_options *opt, int64_t *Q, int64_t *N)
{
    if (L < 1 || !qs || !ts || !opt)
        return st_fail(ST_EINVAL, "knn: need at least one layer, the query and training lists and options");
    if (opt->k < 1) return st_fail(ST_EINVAL, "knn: k must be >= 1, got %lld", (long long)opt->k);
    if (opt->train_block < 0 || opt->query_block < 0 || opt->train_block > INT_MAX || opt->query_block > INT_MAX)
        return st_fail(ST_EINVAL, "knn: block sizes must be between 0 (default) and %d", INT_MAX);
    char what[64];
    for (int l = 0; l < L; l++) {
        snprintf(what, sizeof what, "knn queries of layer %d of %d", l + 1, L);
        ST_TRY(st_rows_expect(qs[l], what, l ? *Q : -1, -1));
        *Q = qs[l]->shape[0];
        snprintf(what, sizeof what, "knn training rows of layer %d of %d", l + 1, L);
        ST_TRY(st_rows_expect(ts[l], what, l ? *N : -1, qs[l]->shape[1]));
        *N = ts[l]->shape[0];
        if (qs[l]->shape[1] < 1) return st_fail(ST_ESHAPE, "knn: layer %d of %d has no features", l + 1, L);
    }
    bool any = false;
    for (int l = 0; opt->weights && l < L; l++) {
        double w = opt->weights[l];
        if (!(w >= 0) || !isfinite(w))
            return st_fail(ST_EINVAL, "knn: weight %d must be finite and >= 0, got %g", l, w);
        any |= w > 0;
    }
    if (opt->weights && !any) return st_fail(ST_EINVAL, "knn: all %d weights are zero", L);
    if (opt->query_labels || opt->train_labels) {
        ST_TRY(check_labels(opt->query_labels, "query_labels", *Q));
        ST_TRY(check_labels(opt->train_labels, "train_labels", *N));
    }
    return ST_OK;
}

typedef struct knn_work {
    int n_active;
    int *layer;       /* active layers (weight > 0) */
    float *weight;    /* their weights */
    float *qnorm;     /* [n_active][Q] */
    float *tnorm;     /* [n_active][train block] */
    float *acc, *dots;/* [query block][train block] */
    float *hd;        /* [Q][kk] heap distances */
    int64_t *hi;      /* [Q][kk] heap indices */
    int64_t *hn;      /* [Q] heap sizes */
} knn_work;

static void work_free(knn_work *w)
{
    free(w->layer);
    free(w->weight);
    free(w->qnorm);
    free(w->tnorm);
    free(w->acc);
    free(w->dots);
    free(w->hd);
    free(w->hi);
    free(w->hn);
}

static st_status work_alloc(knn_work *w, int L, const double *weights, int64_t Q, int64_t kk, int64_t TB,
                            int64_t QB)
{
    w->layer = malloc(sizeof *w->layer * (size_t)L);
    w->weight = malloc(sizeof *w->weight * (size_t)L);
    w->qnorm = malloc(sizeof(float) * (size_t)L * (size_t)(Q ? Q : 1));
    w->tnorm = malloc(sizeof(float) * (size_t)L * (size_t)TB);
    w->acc = malloc(sizeof(float) * (size_t)QB * (size_t)TB);
    w->dots = malloc(sizeof(float) * (size_t)QB * (size_t)TB);
    size_t nheap = Q > 0 && kk > 0 ? (size_t)Q * (size_t)kk : 1;
    w->hd = malloc(sizeof(float) * nheap);
    w->hi = malloc(sizeof(int64_t) * nheap);
    w->hn = calloc((size_t)(Q ? Q : 1), sizeof(int64_t));
    if (!w->layer || !w->weight || !w->qnorm || !w->tnorm || !w->acc || !w->dots || !w->hd || !w->hi || !w->hn)
        return st_fail(ST_ENOMEM, "knn: out of memory for %lld queries x %lld neighbours", (long long)Q,
                       (long long)kk);
    w->n_active = 0;
    for (int l = 0; l < L; l++) {
        double wl = weights ? weights[l] : 1.0;
        if (wl > 0) {
            w->layer[w->n_active] = l;
            w->weight[w->n_active++] = (float)wl;
        }
    }
    return ST_OK;
}

/* Weighted distances of queries [q0, q0+qb) to training rows [j0, j0+nb)
 * into w->acc ([qb][nb]): per layer the norm terms, one GEMM adding
 * -2 q.x to them, then the clamp/sqrt/weight pass. */
static void block_distances(knn_work *w, const st_tensor *const *qs, const st_tensor *const *ts, int64_t Q,
                            int64_t q0, int64_t qb, int64_t j0, int64_t nb, int64_t TB)
{
    for (int a = 0; a < w->n_active; a++) {
        const st_tensor *q = qs[w->layer[a]], *t = ts[w->layer[a]];
        const float *qn = w->qnorm + (int64_t)a * Q + q0, *tn = w->tnorm + (int64_t)a * TB;
        for (int64_t r = 0; r < qb; r++) norm_terms(nb, qn[r], tn, w->dots + r * nb);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)qb, (int)nb, (int)q->shape[1], -2.0f,
                    st_f32(q) + q0 * q->stride[0], (int)st_rows_ld(q), st_f32(t) + j0 * t->stride[0],
                    (int)st_rows_ld(t), 1.0f, w->dots, (int)nb);
        for (int64_t r = 0; r < qb; r++)
            add_weighted_dist(nb, w->dots + r * nb, w->weight[a], a == 0, w->acc + r * nb);
    }
}

/* Offers the training rows [j0, j0+nb) to the heaps of queries [q0, q0+qb). */
static void block_offer(knn_work *w, const st_knn_options *opt, int64_t kk, int64_t q0, int64_t qb, int64_t j0,
                        int64_t nb)
{
    bool filter = opt->query_labels != NULL;
    for (int64_t r = 0; r < qb; r++) {
        int64_t q = q0 + r;
        const float *row = w->acc + r * nb;
        float *hd = w->hd + q * kk;
        int64_t *hi = w->hi + q * kk;
        int64_t n = w->hn[q];
        int64_t want = filter ? label_at(opt->query_labels, q) : 0;
        /* Candidates arrive in increasing index order, so one that ties the
         * current worst ranks after it: only d < worst gets in. Non-finite
         * distances (only from overflowing data) are never kept. */
        float worst = n == kk ? hd[0] : INFINITY;
        for (int64_t j4 = 0; j4 < nb; j4 += 4) {
            int64_t end = j4 + 4 < nb ? j4 + 4 : nb;
            /* Most rows are rejected: test four at once, without branches. */
            if (end - j4 == 4 &&
                !((row[j4] < worst) | (row[j4 + 1] < worst) | (row[j4 + 2] < worst) | (row[j4 + 3] < worst)))
                continue;
            for (int64_t j = j4; j < end; j++) {
                float d = row[j];
                if (!(d < worst)) continue;
                if (filter && label_at(opt->train_labels, j0 + j) != want) continue;
                if (n < kk) {
                    heap_push(hd, hi, n++, d, j0 + j);
                } else {
                    hd[0] = d;
                    hi[0] = j0 + j;
                    sift_down(hd, hi, n, 0);
                }
                if (n == kk) worst = hd[0];
            }
        }
        w->hn[q] = n;
    }
}

static st_status prepare_output(st_tensor **out, st_dtype dt, int64_t Q, int64_t k, const char *what)
{
    if (*out) return st_tensor_expect(*out, what, dt, 2, (int64_t[]){Q, k});
    return ST_OK;
}

static st_status write_output(knn_work *w, int64_t Q, int64_t k, int64_t kk, st_tensor **indices,
                              st_tensor **distances)
{
    st_tensor *ix = *indices, *ds = distances ? *distances : NULL;
    bool own_ix = !ix, own_ds = distances && !ds;
    st_status s = ST_OK;
    if (own_ix) s = st_tensor_new(ST_I64, 2, (int64_t[]){Q, k}, &ix);
    if (s == ST_OK && own_ds) s = st_tensor_new(ST_F32, 2, (int64_t[]){Q, k}, &ds);
    if (s != ST_OK) {
        if (own_ix) st_tensor_free(ix);
        return s;
    }
    for (int64_t q = 0; q < Q; q++) {
        float *hd = w->hd + q * kk;
        int64_t *hi = w->hi + q * kk;
        int64_t n = w->hn[q];
        heap_sort(hd, hi, n);
        for (int64_t j = 0; j < k; j++) {
            ((int64_t *)ix->data)[q * ix->stride[0] + j * ix->stride[1]] = j < n ? hi[j] : -1;
            if (ds) ((float *)ds->data)[q * ds->stride[0] + j * ds->stride[1]] = j < n ? hd[j] : INFINITY;
        }
    }
    *indices = ix;
    if (distances) *distances = ds;
    return ST_OK;
}

st_status st_knn_search(int n_layers, const st_tensor *const *queries, const st_tensor *const *train,
                        const st_knn_options *opt, st_tensor **indices, st_tensor **distances)
{
    int64_t Q = 0, N = 0;
    if (!indices) return st_fail(ST_EINVAL, "knn: indices output missing");
    ST_TRY(check_inputs(n_layers, queries, train, opt, &Q, &N));
    ST_TRY(prepare_output(indices, ST_I64, Q, opt->k, "knn indices output"));
    if (distances) ST_TRY(prepare_output(distances, ST_F32, Q, opt->k, "knn distances output"));

    int64_t kk = opt->k < N ? opt->k : N; /* heap capacity */
    int64_t TB = opt->train_block ? opt->train_block : KNN_TRAIN_BLOCK;
    int64_t QB = opt->query_block ? opt->query_block : KNN_QUERY_BLOCK;
    if (TB > N) TB = N ? N : 1;
    if (QB > Q) QB = Q ? Q : 1;
    knn_work w = {0};
    st_status s = work_alloc(&w, n_layers, opt->weights, Q, kk, TB, QB);
    for (int a = 0; s == ST_OK && a < w.n_active; a++) {
        const st_tensor *q = queries[w.layer[a]];
        int64_t bad;
        if (!sqnorm_rows(Q, q->shape[1], st_f32(q), st_rows_ld(q), w.qnorm + (int64_t)a * Q, &bad))
            s = st_fail(ST_ENUMERIC, "knn: layer %d of %d: query row %lld (counted from 0) is not finite",
                        w.layer[a] + 1, n_layers, (long long)bad);
    }
    for (int64_t j0 = 0; s == ST_OK && j0 < N; j0 += TB) {
        int64_t nb = N - j0 < TB ? N - j0 : TB;
        for (int a = 0; s == ST_OK && a < w.n_active; a++) {
            const st_tensor *t = train[w.layer[a]];
            int64_t bad;
            if (!sqnorm_rows(nb, t->shape[1], st_f32(t) + j0 * t->stride[0], st_rows_ld(t),
                                w.tnorm + (int64_t)a * TB, &bad))
                s = st_fail(ST_ENUMERIC, "knn: layer %d of %d: training row %lld (counted from 0) is not finite",
                            w.layer[a] + 1, n_layers, (long long)(j0 + bad));
        }
        for (int64_t q0 = 0; s == ST_OK && q0 < Q; q0 += QB) {
            int64_t qb = Q - q0 < QB ? Q - q0 : QB;
            block_distances(&w, queries, train, Q, q0, qb, j0, nb, TB);
            block_offer(&w, opt, kk, q0, qb, j0, nb);
        }
    }
    if (s == ST_OK) s = write_output(&w, Q, opt->k, kk, indices, distances);
    work_free(&w);
    return s;
}
