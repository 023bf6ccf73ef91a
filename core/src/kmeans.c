/* k-means: greedy k-means++ seeding and Lloyd iterations (see kmeans.h).
 *
 * Centring without copying the data: with m the column mean and a point
 * p' = p - m kept centred (centres and candidates), the squared distance
 * of row x is
 *
 *     ||x - m - p'||^2 = ||x - m||^2 - 2 x.p' + (||p'||^2 + 2 m.p'),
 *
 * so one GEMM on the raw rows (-2 x.p') plus two precomputed terms, the
 * centred row norm ||x - m||^2 (once per fit, in double) and a per-point
 * constant, gives it. Centre sums, the inertia and the variance are
 * accumulated in double. */
#include "strata/kmeans.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "strata/knn.h"

#define KM_BLOCK_ROWS 512        /* rows per GEMM: the distance block stays in cache */
#define KM_BLOCK_FLOATS (1 << 20) /* at most this many distances per block (large k) */

typedef struct km_work {
    const st_tensor *x;
    int64_t N, D, K, T, B; /* rows, features, clusters, k-means++ trials, block rows */
    int64_t ldx;
    double *mean;          /* [D] column mean */
    float *meanf;          /* [D] the same as float */
    float *xnorm;          /* [N] ||x - m||^2 */
    float *dist;           /* [max(K, T)][B] -2 p'.x for a block of rows */
    float *best_d;         /* [B] running nearest distance of a block's rows */
    int32_t *best_j;       /* [B] and its centre */
    float *pconst;         /* [max(K, T)] ||p'||^2 + 2 m.p' of the current points */
    float *rowdist;        /* [N] seeding: D(x)^2; Lloyd: distance to own centre */
    float *trial;          /* [T][N] seeding: D(x)^2 if each candidate were added */
    int32_t *labels, *best_labels; /* [N] */
    double *sums;          /* [K][D] raw row sums */
    int64_t *counts;       /* [K] */
    float *cen, *cen_new, *best_cen; /* [K][D], centred */
    float *cand;           /* [T][D] seeding candidates, centred */
    int64_t *chosen;       /* [K] rows picked by seeding */
} km_work;

static void work_free(km_work *w)
{
    free(w->mean);
    free(w->meanf);
    free(w->xnorm);
    free(w->dist);
    free(w->best_d);
    free(w->best_j);
    free(w->pconst);
    free(w->rowdist);
    free(w->trial);
    free(w->labels);
    free(w->best_labels);
    free(w->sums);
    free(w->counts);
    free(w->cen);
    free(w->cen_new);
    free(w->best_cen);
    free(w->cand);
    free(w->chosen);
}

static inline const float *xrow(const km_work *w, int64_t i) { return st_f32(w->x) + i * w->ldx; }

static void load_row(const km_work *w, int64_t i, float *dst)
{
    const float *src = xrow(w, i);
    for (int64_t c = 0; c < w->D; c++) dst[c] = src[c] - w->meanf[c];
}

/* Allocates the scratch; computes the column mean (checking that every
 * value is finite), the centred row norms and the mean feature variance. */
static st_status work_init(km_work *w, const st_tensor *x, int64_t K, int64_t T, bool lloyd, double *mean_var)
{
    int64_t N = x->shape[0], D = x->shape[1];
    *w = (km_work){.x = x, .N = N, .D = D, .K = K, .T = T, .ldx = st_rows_ld(x)};
    int64_t wide = K > T ? K : T;
    int64_t B = KM_BLOCK_FLOATS / wide < KM_BLOCK_ROWS ? KM_BLOCK_FLOATS / wide : KM_BLOCK_ROWS;
    B = B < 1 ? 1 : B;
    w->B = N < B ? N : B;
    size_t n = (size_t)N, kd = (size_t)(K * D);
    w->mean = calloc((size_t)D, sizeof(double));
    w->meanf = malloc(sizeof(float) * (size_t)D);
    w->xnorm = malloc(sizeof(float) * n);
    w->dist = malloc(sizeof(float) * (size_t)(w->B * wide));
    w->best_d = malloc(sizeof(float) * (size_t)w->B);
    w->best_j = malloc(sizeof(int32_t) * (size_t)w->B);
    w->pconst = malloc(sizeof(float) * (size_t)wide);
    w->rowdist = malloc(sizeof(float) * n);
    w->labels = malloc(sizeof(int32_t) * n);
    w->cen = malloc(sizeof(float) * kd);
    w->chosen = malloc(sizeof(int64_t) * (size_t)K);
    bool ok = w->mean && w->meanf && w->xnorm && w->dist && w->best_d && w->best_j && w->pconst && w->rowdist && w->labels &&
              w->cen && w->chosen;
    if (T > 0) {
        w->trial = malloc(sizeof(float) * (size_t)T * n);
        w->cand = malloc(sizeof(float) * (size_t)(T * D));
        ok = ok && w->trial && w->cand;
    }
    if (lloyd) {
        w->best_labels = malloc(sizeof(int32_t) * n);
        w->sums = malloc(sizeof(double) * kd);
        w->counts = malloc(sizeof(int64_t) * (size_t)K);
        w->cen_new = malloc(sizeof(float) * kd);
        w->best_cen = malloc(sizeof(float) * kd);
        ok = ok && w->best_labels && w->sums && w->counts && w->cen_new && w->best_cen;
    }
    if (!ok) return st_fail(ST_ENOMEM, "kmeans: out of memory for %lld rows and %lld clusters", (long long)N, (long long)K);

    for (int64_t i = 0; i < N; i++) {
        const float *r = xrow(w, i);
        for (int64_t c = 0; c < D; c++) {
            if (!isfinite(r[c]))
                return st_fail(ST_ENUMERIC, "kmeans: the data hold a non-finite value at row %lld, column %lld "
                               "(counted from 0)", (long long)i, (long long)c);
            w->mean[c] += r[c];
        }
    }
    for (int64_t c = 0; c < D; c++) {
        w->mean[c] /= (double)N;
        w->meanf[c] = (float)w->mean[c];
    }
    double var = 0;
    for (int64_t i = 0; i < N; i++) {
        const float *r = xrow(w, i);
        double s = 0;
        for (int64_t c = 0; c < D; c++) s += (r[c] - w->mean[c]) * (r[c] - w->mean[c]);
        w->xnorm[i] = (float)s;
        var += s;
    }
    *mean_var = var / (double)N / (double)D;
    return ST_OK;
}

/* pconst[j] = ||p_j||^2 + 2 m.p_j for n centred points. */
static void prepare_points(km_work *w, const float *pts, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        const float *p = pts + j * w->D;
        double s = 0;
        for (int64_t c = 0; c < w->D; c++) s += (double)p[c] * p[c] + 2.0 * w->mean[c] * p[c];
        w->pconst[j] = (float)s;
    }
}

/* Per block of rows, w->dist ([n][nb], point-major so the loops over a
 * block's rows vectorise) gets -2 p'.x for the n centred points `pts`
 * (after prepare_points); visit(w, i0, nb, ctx) consumes it through
 * sqdist_row. */
static void for_each_block(km_work *w, const float *pts, int64_t n,
                           void (*visit)(km_work *, int64_t, int64_t, void *), void *ctx)
{
    for (int64_t i0 = 0; i0 < w->N; i0 += w->B) {
        int64_t nb = w->N - i0 < w->B ? w->N - i0 : w->B;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)nb, (int)w->D, -2.0f, pts, (int)w->D,
                    xrow(w, i0), (int)w->ldx, 0.0f, w->dist, (int)nb);
        visit(w, i0, nb, ctx);
    }
}

/* The loops over a block's rows below run four rows per step with a
 * constant inner trip count, and take their arrays as restrict
 * parameters: a shape GCC vectorises at -O2 (its default cost model at
 * -O2 gives up on a plain loop with a remainder or with possible
 * aliasing). */

static inline float clamped(float v) { return v > 0.0f ? v : 0.0f; }

/* out[r] = squared distance of row r of the block to the point whose
 * GEMM terms are g (row norms xn, point constant pc), clamped at 0. */
static void sqdist_row(int64_t nb, const float *restrict g, const float *restrict xn, float pc, float *restrict out)
{
    int64_t r = 0;
    for (; r + 4 <= nb; r += 4)
        for (int u = 0; u < 4; u++) out[r + u] = clamped(xn[r + u] + g[r + u] + pc);
    for (; r < nb; r++) out[r] = clamped(xn[r] + g[r] + pc);
}

/* Each row moves to point j if strictly nearer (so ties keep the lower j
 * when j ascends); branch-free with an integer mask. The body is written
 * out twice because an inlined helper loses the restrict information. */
static void nearer_row(int64_t nb, const float *restrict g, const float *restrict xn, float pc, int32_t j,
                       float *restrict bd, int32_t *restrict bj)
{
    int64_t r = 0;
    for (; r + 4 <= nb; r += 4)
        for (int u = 0; u < 4; u++) {
            float v = clamped(xn[r + u] + g[r + u] + pc), b = bd[r + u];
            int32_t m = -(int32_t)(v < b);
            bd[r + u] = v < b ? v : b;
            bj[r + u] = (bj[r + u] & ~m) | (j & m);
        }
    for (; r < nb; r++) {
        float v = clamped(xn[r] + g[r] + pc);
        if (v < bd[r]) {
            bd[r] = v;
            bj[r] = j;
        }
    }
}

/* s += x over d values (a centre's running sum in double). */
static void add_row(int64_t d, double *restrict s, const float *restrict x)
{
    int64_t c = 0;
    for (; c + 4 <= d; c += 4)
        for (int u = 0; u < 4; u++) s[c + u] += x[c + u];
    for (; c < d; c++) s[c] += x[c];
}

/* ---- greedy k-means++ ---- */

/* First row whose cumulative D^2 exceeds u * pot, for each of the T
 * draws (the last row if rounding leaves none). */
static void draw_candidates(km_work *w, st_rng *rng, double pot, int64_t *ids)
{
    double target[64];
    int64_t T = w->T;
    for (int64_t t = 0; t < T; t++) {
        target[t] = st_rng_uniform(rng) * pot;
        ids[t] = -1;
    }
    int64_t left = T;
    double cum = 0;
    for (int64_t i = 0; i < w->N && left > 0; i++) {
        cum += w->rowdist[i];
        for (int64_t t = 0; t < T; t++)
            if (ids[t] < 0 && cum > target[t]) {
                ids[t] = i;
                left--;
            }
    }
    for (int64_t t = 0; t < T; t++)
        if (ids[t] < 0) ids[t] = w->N - 1;
}

static void visit_first(km_work *w, int64_t i0, int64_t nb, void *ctx)
{
    (void)ctx;
    sqdist_row(nb, w->dist, w->xnorm + i0, w->pconst[0], w->rowdist + i0);
}

static void visit_trials(km_work *w, int64_t i0, int64_t nb, void *ctx)
{
    double *pot = ctx;
    const float *cur = w->rowdist + i0;
    for (int64_t t = 0; t < w->T; t++) {
        float *out = w->trial + t * w->N + i0;
        sqdist_row(nb, w->dist + t * nb, w->xnorm + i0, w->pconst[t], out);
        double s = 0;
        for (int64_t r = 0; r < nb; r++) {
            out[r] = out[r] < cur[r] ? out[r] : cur[r];
            s += out[r];
        }
        pot[t] += s;
    }
}

/* Seeds w->cen (centred) and w->chosen. */
static void seed_plusplus(km_work *w, st_rng *rng)
{
    int64_t D = w->D, N = w->N, T = w->T;
    int64_t first = (int64_t)st_rng_below(rng, (uint64_t)N);
    w->chosen[0] = first;
    load_row(w, first, w->cen);
    prepare_points(w, w->cen, 1);
    for_each_block(w, w->cen, 1, visit_first, NULL);
    double pot = 0;
    for (int64_t i = 0; i < N; i++) pot += w->rowdist[i];

    int64_t ids[64];
    double tpot[64];
    for (int64_t c = 1; c < w->K; c++) {
        draw_candidates(w, rng, pot, ids);
        for (int64_t t = 0; t < T; t++) {
            load_row(w, ids[t], w->cand + t * D);
            tpot[t] = 0;
        }
        prepare_points(w, w->cand, T);
        for_each_block(w, w->cand, T, visit_trials, tpot);
        int64_t best = 0;
        for (int64_t t = 1; t < T; t++)
            if (tpot[t] < tpot[best]) best = t;
        pot = tpot[best];
        memcpy(w->rowdist, w->trial + best * N, sizeof(float) * (size_t)N);
        memcpy(w->cen + c * D, w->cand + best * D, sizeof(float) * (size_t)D);
        w->chosen[c] = ids[best];
    }
}

/* ---- Lloyd ---- */

typedef struct assign_ctx {
    bool update;     /* accumulate sums and counts for the next centres */
    int64_t changed; /* labels that differ from the previous assignment */
} assign_ctx;

static void visit_assign(km_work *w, int64_t i0, int64_t nb, void *vctx)
{
    assign_ctx *ctx = vctx;
    int64_t K = w->K, D = w->D;
    float *bd = w->best_d;
    int32_t *bj = w->best_j;
    sqdist_row(nb, w->dist, w->xnorm + i0, w->pconst[0], bd);
    memset(bj, 0, sizeof(int32_t) * (size_t)nb);
    for (int64_t j = 1; j < K; j++) nearer_row(nb, w->dist + j * nb, w->xnorm + i0, w->pconst[j], (int32_t)j, bd, bj);
    memcpy(w->rowdist + i0, bd, sizeof(float) * (size_t)nb);
    for (int64_t r = 0; r < nb; r++) {
        int64_t i = i0 + r;
        int32_t best = bj[r];
        if (w->labels[i] != best) {
            w->labels[i] = best;
            ctx->changed++;
        }
        if (ctx->update) {
            w->counts[best]++;
            add_row(D, w->sums + best * D, xrow(w, i));
        }
    }
}

/* Moves each empty cluster onto the row farthest from its centre, taking
 * rows only from clusters that keep another row (kmeans.h). */
static int64_t relocate_empty(km_work *w)
{
    int64_t moved = 0, D = w->D;
    for (int64_t e = 0; e < w->K; e++) {
        if (w->counts[e] > 0) continue;
        int64_t far = -1;
        for (int64_t i = 0; i < w->N; i++)
            if (w->counts[w->labels[i]] > 1 && w->rowdist[i] >= 0 && (far < 0 || w->rowdist[i] > w->rowdist[far]))
                far = i;
        if (far < 0) break;
        w->rowdist[far] = -1; /* taken */
        const float *x = xrow(w, far);
        int64_t old = w->labels[far];
        for (int64_t c = 0; c < D; c++) {
            w->sums[old * D + c] -= x[c];
            w->sums[e * D + c] = x[c];
        }
        w->counts[old]--;
        w->counts[e] = 1;
        moved++;
    }
    return moved;
}

/* One assignment against w->cen. With update, also writes the next
 * centres into w->cen_new and returns the squared centre shift. */
static double assign(km_work *w, bool update, int64_t *changed, int64_t *relocated)
{
    int64_t K = w->K, D = w->D;
    prepare_points(w, w->cen, K);
    if (update) {
        memset(w->sums, 0, sizeof(double) * (size_t)(K * D));
        memset(w->counts, 0, sizeof(int64_t) * (size_t)K);
    }
    assign_ctx ctx = {.update = update};
    for_each_block(w, w->cen, K, visit_assign, &ctx);
    *changed = ctx.changed;
    if (!update) return 0;
    *relocated += relocate_empty(w);
    double shift = 0;
    for (int64_t j = 0; j < K; j++)
        for (int64_t c = 0; c < D; c++) {
            float v = w->counts[j] ? (float)(w->sums[j * D + c] / (double)w->counts[j] - w->mean[c])
                                   : w->cen[j * D + c];
            double diff = (double)v - w->cen[j * D + c];
            shift += diff * diff;
            w->cen_new[j * D + c] = v;
        }
    return shift;
}

/* Exact sum of squared distances of rows to their labelled centre. */
static double inertia(km_work *w)
{
    double total = 0;
    for (int64_t i = 0; i < w->N; i++) {
        const float *x = xrow(w, i), *c = w->cen + (int64_t)w->labels[i] * w->D;
        for (int64_t k = 0; k < w->D; k++) {
            double diff = (double)x[k] - w->mean[k] - c[k];
            total += diff * diff;
        }
    }
    return total;
}

/* One Lloyd run from the centres in w->cen. */
static void lloyd(km_work *w, int max_iter, double tol_abs, double *inert, int *iters, int64_t *relocated)
{
    for (int64_t i = 0; i < w->N; i++) w->labels[i] = -1;
    bool strict = false;
    int it = 0;
    while (it < max_iter) {
        int64_t changed;
        double shift = assign(w, true, &changed, relocated);
        float *t = w->cen;
        w->cen = w->cen_new;
        w->cen_new = t;
        it++;
        if (changed == 0) {
            strict = true;
            break;
        }
        if (shift <= tol_abs) break;
    }
    if (!strict) {
        int64_t changed;
        assign(w, false, &changed, relocated);
    }
    *iters = it;
    *inert = inertia(w);
}

/* ---- public ---- */

st_kmeans_options st_kmeans_defaults(int64_t k)
{
    return (st_kmeans_options){.k = k, .n_init = 20, .max_iter = 300, .tol = 1e-4, .n_threads = 1};
}

void st_kmeans_result_free(st_kmeans_result *r)
{
    if (!r) return;
    st_tensor_free(r->centers);
    st_tensor_free(r->labels);
    free(r->run_seeds);
    free(r->run_inertia);
    free(r->run_iters);
    free(r);
}

static int64_t trials_for(int64_t k, int n_local_trials)
{
    return n_local_trials > 0 ? n_local_trials : 2 + (int64_t)log((double)k);
}

/* Data must be a non-empty [N, D] f32 matrix; with k >= 0, 1 <= k <= N. */
static st_status check_data(const st_tensor *x, int64_t k)
{
    ST_TRY(st_rows_expect(x, "kmeans data", -1, -1));
    if (x->shape[0] < 1 || x->shape[1] < 1) return st_fail(ST_ESHAPE, "kmeans: data [%lld,%lld] is empty",
                                                           (long long)x->shape[0], (long long)x->shape[1]);
    if (k >= 0 && (k < 1 || k > x->shape[0] || k > INT32_MAX))
        return st_fail(ST_EINVAL, "kmeans: k = %lld clusters needs 1 <= k <= rows (%lld)", (long long)k,
                       (long long)x->shape[0]);
    return ST_OK;
}

/* Writes k centred centres plus the mean into a new [k, D] tensor. */
static st_status export_centers(const km_work *w, const float *cen, st_tensor **out)
{
    st_tensor *t = NULL;
    ST_TRY(st_tensor_new(ST_F32, 2, (int64_t[]){w->K, w->D}, &t));
    for (int64_t j = 0; j < w->K; j++)
        for (int64_t c = 0; c < w->D; c++) st_f32(t)[j * w->D + c] = (float)(cen[j * w->D + c] + w->mean[c]);
    *out = t;
    return ST_OK;
}

static st_status export_labels(const km_work *w, const int32_t *labels, st_tensor **out)
{
    if (*out) ST_TRY(st_tensor_expect(*out, "kmeans labels output", ST_I64, 1, (int64_t[]){w->N}));
    st_tensor *t = *out;
    if (!t) ST_TRY(st_tensor_new(ST_I64, 1, (int64_t[]){w->N}, &t));
    for (int64_t i = 0; i < w->N; i++) ((int64_t *)t->data)[i * t->stride[0]] = labels[i];
    *out = t;
    return ST_OK;
}

static st_status check_options(const st_tensor *x, const st_kmeans_options *opt, const st_rng *rng)
{
    if (!opt) return st_fail(ST_EINVAL, "kmeans: options missing");
    ST_TRY(check_data(x, opt->k));
    if (opt->n_init < 1) return st_fail(ST_EINVAL, "kmeans: n_init must be >= 1, got %d", opt->n_init);
    if (opt->max_iter < 1) return st_fail(ST_EINVAL, "kmeans: max_iter must be >= 1, got %d", opt->max_iter);
    if (!(opt->tol >= 0) || !isfinite(opt->tol))
        return st_fail(ST_EINVAL, "kmeans: tol must be finite and >= 0, got %g", opt->tol);
    if (opt->n_local_trials < 0 || opt->n_local_trials > 64)
        return st_fail(ST_EINVAL, "kmeans: n_local_trials must be 0 (automatic) to 64, got %d", opt->n_local_trials);
    if (opt->n_threads < 0 || opt->n_threads > 256)
        return st_fail(ST_EINVAL, "kmeans: n_threads must be 0 to 256, got %d", opt->n_threads);
    if (opt->init) {
        ST_TRY(st_rows_expect(opt->init, "kmeans init centres", opt->k, x->shape[1]));
        for (int64_t j = 0; j < opt->k; j++)
            for (int64_t c = 0; c < x->shape[1]; c++)
                if (!isfinite(st_f32(opt->init)[j * opt->init->stride[0] + c]))
                    return st_fail(ST_ENUMERIC, "kmeans: init centre %lld is not finite", (long long)j);
    } else if (!rng) {
        return st_fail(ST_EINVAL, "kmeans: an rng is needed for k-means++ seeding (or give init centres)");
    }
    return ST_OK;
}

/* The runs one thread does: first, first + step, ... Each thread has its
 * own scratch and keeps its best run (ties to the earlier run). */
typedef struct km_job {
    km_work w;
    const st_kmeans_options *opt;
    st_kmeans_result *r; /* per-run arrays: each run writes its own slots */
    double tol_abs;
    int first, step, n_runs;
    int best;            /* best run of this job, -1 before the first */
    int64_t relocated;
} km_job;

static void *run_job(void *arg)
{
    km_job *j = arg;
    km_work *w = &j->w;
    for (int run = j->first; run < j->n_runs; run += j->step) {
        if (j->opt->init) {
            const st_tensor *init = j->opt->init;
            for (int64_t c0 = 0; c0 < w->K; c0++)
                for (int64_t c = 0; c < w->D; c++)
                    w->cen[c0 * w->D + c] = st_f32(init)[c0 * init->stride[0] + c] - w->meanf[c];
        } else {
            st_rng run_rng;
            st_rng_seed(&run_rng, j->r->run_seeds[run]);
            seed_plusplus(w, &run_rng);
        }
        lloyd(w, j->opt->max_iter, j->tol_abs, &j->r->run_inertia[run], &j->r->run_iters[run], &j->relocated);
        if (j->best < 0 || j->r->run_inertia[run] < j->r->run_inertia[j->best]) {
            j->best = run;
            memcpy(w->best_cen, w->cen, sizeof(float) * (size_t)(w->K * w->D));
            memcpy(w->best_labels, w->labels, sizeof(int32_t) * (size_t)w->N);
        }
    }
    return NULL;
}

static st_status alloc_result(int n_runs, st_kmeans_result **out)
{
    st_kmeans_result *r = calloc(1, sizeof *r);
    if (r) {
        r->run_seeds = calloc((size_t)n_runs, sizeof *r->run_seeds);
        r->run_inertia = calloc((size_t)n_runs, sizeof *r->run_inertia);
        r->run_iters = calloc((size_t)n_runs, sizeof *r->run_iters);
    }
    if (!r || !r->run_seeds || !r->run_inertia || !r->run_iters) {
        st_kmeans_result_free(r);
        return st_fail(ST_ENOMEM, "kmeans: out of memory for %d runs", n_runs);
    }
    r->n_runs = n_runs;
    *out = r;
    return ST_OK;
}

st_status st_kmeans_fit(const st_tensor *x, const st_kmeans_options *opt, st_rng *rng, st_kmeans_result **out)
{
    if (!out) return st_fail(ST_EINVAL, "kmeans: result pointer missing");
    ST_TRY(check_options(x, opt, rng));
    int n_runs = opt->init ? 1 : opt->n_init;
    int n_jobs = opt->n_threads > 1 ? opt->n_threads : 1;
    n_jobs = n_jobs < n_runs ? n_jobs : n_runs;
    int64_t T = opt->init ? 0 : trials_for(opt->k, opt->n_local_trials);
    st_kmeans_result *r = NULL;
    ST_TRY(alloc_result(n_runs, &r));
    /* All seeds are drawn first, so the answer does not depend on n_threads. */
    for (int run = 0; !opt->init && run < n_runs; run++) r->run_seeds[run] = st_rng_next_u64(rng);
    km_job *jobs = calloc((size_t)n_jobs, sizeof *jobs);
    pthread_t *tids = calloc((size_t)n_jobs, sizeof *tids);
    bool *started = calloc((size_t)n_jobs, sizeof *started);
    st_status s = jobs && tids && started ? ST_OK : st_fail(ST_ENOMEM, "kmeans: out of memory for %d threads", n_jobs);
    double mean_var = 0;
    for (int t = 0; s == ST_OK && t < n_jobs; t++) {
        jobs[t] = (km_job){.opt = opt, .r = r, .first = t, .step = n_jobs, .n_runs = n_runs, .best = -1};
        s = work_init(&jobs[t].w, x, opt->k, T, true, &mean_var);
        jobs[t].tol_abs = opt->tol * mean_var;
    }
    /* Jobs 1.. run on threads (inline if a thread cannot start), job 0 here. */
    for (int t = 1; s == ST_OK && t < n_jobs; t++) {
        started[t] = pthread_create(&tids[t], NULL, run_job, &jobs[t]) == 0;
        if (!started[t]) run_job(&jobs[t]);
    }
    if (s == ST_OK) run_job(&jobs[0]);
    for (int t = 1; t < n_jobs; t++)
        if (started[t]) pthread_join(tids[t], NULL);
    if (s == ST_OK) {
        int b = 0; /* job with the best run; ties to the earlier run */
        for (int t = 0; t < n_jobs; t++) {
            r->n_relocated += jobs[t].relocated;
            int rb = jobs[t].best, cur = jobs[b].best;
            if (r->run_inertia[rb] < r->run_inertia[cur] || (r->run_inertia[rb] == r->run_inertia[cur] && rb < cur))
                b = t;
        }
        r->best_run = jobs[b].best;
        r->inertia = r->run_inertia[r->best_run];
        r->n_iter = r->run_iters[r->best_run];
        s = export_centers(&jobs[b].w, jobs[b].w.best_cen, &r->centers);
        if (s == ST_OK) s = export_labels(&jobs[b].w, jobs[b].w.best_labels, &r->labels);
    }
    for (int t = 0; jobs && t < n_jobs; t++) work_free(&jobs[t].w);
    free(jobs);
    free(tids);
    free(started);
    if (s != ST_OK) {
        st_kmeans_result_free(r);
        return s;
    }
    *out = r;
    return ST_OK;
}

st_status st_kmeans_plusplus(const st_tensor *x, int64_t k, int n_local_trials, st_rng *rng, st_tensor **centers)
{
    if (!centers || !rng) return st_fail(ST_EINVAL, "kmeans++: rng and output are required");
    ST_TRY(check_data(x, k));
    if (n_local_trials < 0 || n_local_trials > 64)
        return st_fail(ST_EINVAL, "kmeans++: n_local_trials must be 0 (automatic) to 64, got %d", n_local_trials);
    if (*centers) ST_TRY(st_rows_expect(*centers, "kmeans++ centres output", k, x->shape[1]));
    km_work w;
    double mean_var;
    st_status s = work_init(&w, x, k, trials_for(k, n_local_trials), false, &mean_var);
    st_tensor *t = *centers;
    if (s == ST_OK && !t) s = st_tensor_new(ST_F32, 2, (int64_t[]){k, w.D}, &t);
    if (s == ST_OK) {
        seed_plusplus(&w, rng);
        /* Copy the chosen rows themselves (re-adding the mean could round). */
        for (int64_t j = 0; j < k; j++)
            memcpy(st_f32(t) + j * t->stride[0], xrow(&w, w.chosen[j]), sizeof(float) * (size_t)w.D);
        *centers = t;
    }
    work_free(&w);
    return s;
}

st_status st_kmeans_predict(const st_tensor *x, const st_tensor *centers, st_tensor **labels, double *inert)
{
    if (!labels) return st_fail(ST_EINVAL, "kmeans predict: labels output missing");
    ST_TRY(check_data(x, -1));
    ST_TRY(st_rows_expect(centers, "kmeans predict centres", -1, x->shape[1]));
    if (centers->shape[0] < 1 || centers->shape[0] > INT32_MAX)
        return st_fail(ST_ESHAPE, "kmeans predict: %lld centres given", (long long)centers->shape[0]);
    km_work w;
    double mean_var;
    st_status s = work_init(&w, x, centers->shape[0], 0, false, &mean_var);
    if (s == ST_OK) {
        for (int64_t j = 0; j < w.K; j++)
            for (int64_t c = 0; c < w.D; c++) {
                float v = st_f32(centers)[j * centers->stride[0] + c];
                if (!isfinite(v)) s = st_fail(ST_ENUMERIC, "kmeans predict: centre %lld is not finite", (long long)j);
                w.cen[j * w.D + c] = v - w.meanf[c];
            }
    }
    if (s == ST_OK) {
        int64_t changed, relocated = 0;
        for (int64_t i = 0; i < w.N; i++) w.labels[i] = -1;
        assign(&w, false, &changed, &relocated);
        if (inert) *inert = inertia(&w);
        s = export_labels(&w, w.labels, labels);
    }
    work_free(&w);
    return s;
}
