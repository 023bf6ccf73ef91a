/* The DEC/IDEC trainer object: configuration, buffers, full-data passes
 * (predict) and outputs. The schedule itself is in dec_train.c, the
 * checkpoints in dec_checkpoint.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "dec_internal.h"
#include "strata/layers.h"

st_dec_config st_dec_config_default(void)
{
    st_dec_config c;
    memset(&c, 0, sizeof c);
    c.name = "layer";
    c.clusters = 15;
    c.filters[0] = 32;
    c.filters[1] = 64;
    c.filters[2] = 128;
    c.filters[3] = 20;
    c.radius = 8.0f;
    c.minimal_padding = false;
    c.threads = 1;
    c.alpha = 100.0f;
    c.batch = 32;
    c.epochs = 3;
    c.pretrain_optim = st_optim_adam_defaults();
    c.kmeans_n_init = 20;
    c.kmeans_max_iter = 300;
    c.kmeans_tol = 1e-4;
    c.maxiter = 280;
    c.update_interval = 140;
    c.tol = 1e-3;
    c.kl_weight = 0.1f;
    c.mse_weight = 1.0f;
    c.shuffle = false;
    c.cluster_optim = st_optim_adam_defaults();
    c.seed = 0;
    c.dir = NULL;
    c.resume = true;
    return c;
}

const char *st_dec_stage_name(st_dec_stage s)
{
    static const char *const names[] = {"pretrain", "kmeans", "cluster", "done", "failed"};
    return (unsigned)s < sizeof names / sizeof *names ? names[s] : "?";
}

const char *st_dec_stop_name(st_dec_stop s)
{
    static const char *const names[] = {"running", "maxiter", "tol"};
    return (unsigned)s < sizeof names / sizeof *names ? names[s] : "?";
}

static st_status check_config(const st_dec_config *c)
{
#define NEED(cond, field, fmt, value) \
    if (!(cond)) return st_fail(ST_EINVAL, "dec config: " field " must be " fmt, value)
    NEED(c->clusters >= 1, "clusters", ">= 1, got %d", c->clusters);
    NEED(c->batch >= 1, "batch", ">= 1, got %d", c->batch);
    NEED(c->epochs >= 0, "epochs", ">= 0, got %d", c->epochs);
    NEED(c->maxiter >= 0, "maxiter", ">= 0, got %d", c->maxiter);
    NEED(c->update_interval >= 1, "update_interval", ">= 1, got %d", c->update_interval);
    NEED(c->kmeans_n_init >= 1, "kmeans_n_init", ">= 1, got %d", c->kmeans_n_init);
    NEED(c->kmeans_max_iter >= 1, "kmeans_max_iter", ">= 1, got %d", c->kmeans_max_iter);
    NEED(c->kmeans_tol >= 0 && isfinite(c->kmeans_tol), "kmeans_tol", "finite and >= 0, got %g", c->kmeans_tol);
    NEED(c->tol >= 0 && isfinite(c->tol), "tol", "finite and >= 0, got %g", c->tol);
    NEED(c->alpha > 0 && isfinite(c->alpha), "alpha", "finite and > 0, got %g", (double)c->alpha);
    NEED(c->kl_weight >= 0 && isfinite(c->kl_weight), "kl_weight", "finite and >= 0, got %g", (double)c->kl_weight);
    NEED(c->mse_weight >= 0 && isfinite(c->mse_weight), "mse_weight", "finite and >= 0, got %g",
         (double)c->mse_weight);
    NEED(c->kl_weight > 0 || c->mse_weight > 0, "kl_weight or mse_weight", "> 0, got %s", "both 0");
#undef NEED
    return ST_OK;
}

static char *dup_str(const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *r = malloc(n);
    if (r) memcpy(r, s, n);
    return r;
}

static st_status alloc_buffers(st_dec *d)
{
    const size_t b = (size_t)d->cfg.batch;
    float **bufs[] = {&d->xb, &d->zb, &d->qb, &d->pb, &d->xhat, &d->dxhat, &d->dq, &d->dz};
    const size_t sizes[] = {b * d->row, b * d->d, b * d->k, b * d->k, b * d->row, b * d->row, b * d->k, b * d->d};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        if (!(*bufs[i] = malloc(sizes[i] * sizeof(float))))
            return st_fail(ST_ENOMEM, "dec: batch buffers for batch %d", d->cfg.batch);
    const int64_t kd[2] = {d->k, d->d};
    ST_TRY(st_tensor_zeros(ST_F32, 2, kd, &d->mu));
    return st_tensor_zeros(ST_F32, 2, kd, &d->dmu);
}

st_status st_dec_new(const st_dec_config *cfg, int height, int width, int channels, st_dec **out)
{
    ST_TRY(check_config(cfg));
    st_cae_config cc = st_cae_config_default(height, width, channels);
    memcpy(cc.filters, cfg->filters, sizeof cc.filters);
    cc.radius = cfg->radius;
    cc.minimal_padding = cfg->minimal_padding;
    cc.max_batch = cfg->batch;
    cc.threads = cfg->threads;

    st_dec *d = calloc(1, sizeof *d);
    if (!d) return st_fail(ST_ENOMEM, "dec: trainer");
    d->cfg = *cfg;
    d->name = dup_str(cfg->name ? cfg->name : "layer");
    d->dir = dup_str(cfg->dir);
    d->cfg.name = d->name;
    d->cfg.dir = d->dir;
    d->h = height;
    d->w = width;
    d->c = channels;
    d->d = cfg->filters[3];
    d->k = cfg->clusters;
    d->updated_at = -1;
    d->delta = -1;
    st_rng_seed(&d->rng, cfg->seed);

    st_status s = (!d->name || (cfg->dir && !d->dir)) ? st_fail(ST_ENOMEM, "dec: names") : ST_OK;
    if (s == ST_OK) s = st_cae_new(&cc, &d->rng, &d->cae);
    if (s == ST_OK) {
        d->row = st_cae_input_size(d->cae);
        s = alloc_buffers(d);
    }
    const size_t n_ae = s == ST_OK ? st_cae_param_count(d->cae) : 0;
    if (s == ST_OK) s = st_optim_new(&cfg->pretrain_optim, n_ae, &d->opt_pre);
    if (s == ST_OK) s = st_optim_new(&cfg->cluster_optim, n_ae + (size_t)d->k * d->d, &d->opt_clu);
    if (s != ST_OK) {
        st_dec_free(d);
        return st_fail_context(s, "dec '%s': ", cfg->name ? cfg->name : "layer");
    }
    *out = d;
    return ST_OK;
}

void st_dec_free(st_dec *d)
{
    if (!d) return;
    st_cae_free(d->cae);
    st_optim_free(d->opt_pre);
    st_optim_free(d->opt_clu);
    st_tensor *ts[] = {d->mu, d->dmu, d->perm, d->p, d->y_last, d->q_all, d->z_kmeans};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) st_tensor_free(ts[i]);
    float *bufs[] = {d->xb, d->zb, d->qb, d->pb, d->xhat, d->dxhat, d->dq, d->dz};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
    free(d->pre_loss.v);
    free(d->clu_loss.v);
    free(d->name);
    free(d->dir);
    free(d);
}

st_status dec_check_input(const st_dec *d, const st_tensor *x, const char *what)
{
    const int64_t shape[4] = {-1, d->h, d->w, d->c};
    st_status s = st_tensor_expect(x, what, ST_F32, 4, shape);
    if (s != ST_OK) return st_fail_context(s, "dec '%s': ", d->name);
    if (x->stride[3] != 1 || x->stride[2] != d->c || x->stride[1] != (int64_t)d->w * d->c)
        return st_fail(ST_ESHAPE, "dec '%s': %s rows must each be contiguous (a C-order [H,W,C] block)", d->name,
                       what);
    if (x->shape[0] < 1) return st_fail(ST_ESHAPE, "dec '%s': %s has no rows", d->name, what);
    return ST_OK;
}

void dec_gather(const st_dec *d, const st_tensor *x, const int64_t *idx, int64_t first, int b, float *dst)
{
    const float *base = x->data;
    for (int i = 0; i < b; i++) {
        const int64_t r = idx ? idx[i] : first + i;
        memcpy(dst + (size_t)i * d->row, base + r * x->stride[0], d->row * sizeof *dst);
    }
}

st_status dec_alloc_rows(st_dec *d, int64_t n)
{
    if (d->n == n) return ST_OK;
    if (d->n) return st_fail(ST_ESHAPE, "dec '%s': trained on %lld rows, now given %lld", d->name,
                             (long long)d->n, (long long)n);
    const int64_t nk[2] = {n, d->k};
    ST_TRY(st_tensor_new(ST_I64, 1, &n, &d->perm));
    ST_TRY(st_tensor_new(ST_F32, 2, nk, &d->p));
    ST_TRY(st_tensor_new(ST_I64, 1, &n, &d->y_last));
    ST_TRY(st_tensor_new(ST_F32, 2, nk, &d->q_all));
    d->n = n;
    return ST_OK;
}

st_status dec_pass(st_dec *d, const st_tensor *x, float *q, float *z)
{
    const int64_t n = x->shape[0];
    const int B = d->cfg.batch;
    const bool packed = x->stride[0] == (int64_t)d->row; /* rows back to back: read in place */
    for (int64_t first = 0; first < n; first += B) {
        const int b = (int)(n - first < B ? n - first : B);
        const float *xb = d->xb;
        if (packed)
            xb = (const float *)x->data + first * x->stride[0];
        else
            dec_gather(d, x, NULL, first, b, d->xb);
        ST_TRY(st_cae_embed(d->cae, b, xb, d->zb));
        if (q) st_student_t_forward(b, d->k, d->d, d->cfg.alpha, d->zb, st_f32(d->mu), q + first * d->k);
        if (z) memcpy(z + first * d->d, d->zb, (size_t)b * d->d * sizeof *z);
    }
    return ST_OK;
}

/* A fresh [rows, cols] tensor, or the caller's (output convention). */
static st_status out_tensor(st_tensor **out, st_dtype t, int64_t rows, int64_t cols, st_tensor **made)
{
    const int64_t shape[2] = {rows, cols};
    *made = NULL;
    if (*out) return st_tensor_expect(*out, "output", t, 2, shape);
    ST_TRY(st_tensor_new(t, 2, shape, made));
    return ST_OK;
}

st_status st_dec_predict(st_dec *d, const st_tensor *x, st_tensor **q, st_tensor **z)
{
    ST_TRY(dec_check_input(d, x, "activations"));
    const int64_t n = x->shape[0];
    st_tensor *mq = NULL, *mz = NULL;
    st_status s = q ? out_tensor(q, ST_F32, n, d->k, &mq) : ST_OK;
    if (s == ST_OK && z) s = out_tensor(z, ST_F32, n, d->d, &mz);
    st_tensor *tq = q ? (mq ? mq : *q) : NULL, *tz = z ? (mz ? mz : *z) : NULL;
    if (s == ST_OK && ((tq && !st_tensor_is_contiguous(tq)) || (tz && !st_tensor_is_contiguous(tz))))
        s = st_fail(ST_ESHAPE, "dec predict: output tensors must be contiguous");
    if (s == ST_OK) s = dec_pass(d, x, tq ? st_f32(tq) : NULL, tz ? st_f32(tz) : NULL);
    if (s != ST_OK) {
        st_tensor_free(mq);
        st_tensor_free(mz);
        return s;
    }
    if (mq) *q = mq;
    if (mz) *z = mz;
    return ST_OK;
}

st_status dec_history_push(dec_history *h, const double *v, size_t n)
{
    if (h->n + n > h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        while (cap < h->n + n) cap *= 2;
        double *nv = realloc(h->v, cap * sizeof *nv);
        if (!nv) return st_fail(ST_ENOMEM, "dec: loss history of %zu values", cap);
        h->v = nv;
        h->cap = cap;
    }
    memcpy(h->v + h->n, v, n * sizeof *v);
    h->n += n;
    return ST_OK;
}

void st_dec_result_free(st_dec_result *r)
{
    if (!r) return;
    st_tensor_free(r->q);
    st_tensor_free(r->labels);
    st_tensor_free(r->embeddings);
    st_tensor_free(r->centroids);
    st_tensor_free(r->pretrain_loss);
    st_tensor_free(r->cluster_loss);
    free(r);
}

static st_status history_tensor(const dec_history *h, int cols, st_tensor **out)
{
    if (!h->n) return ST_OK;
    const int64_t shape[2] = {(int64_t)(h->n / (size_t)cols), cols};
    return st_tensor_from_data(ST_F64, cols == 1 ? 1 : 2, shape, h->v, h->n * sizeof *h->v, out);
}

void dec_argmax(int64_t n, int k, const float *q, int64_t *labels)
{
    for (int64_t i = 0; i < n; i++) {
        int best = 0;
        for (int j = 1; j < k; j++)
            if (q[i * k + j] > q[i * k + best]) best = j;
        labels[i] = best;
    }
}

st_status dec_make_result(st_dec *d, const st_tensor *x, st_dec_result **out)
{
    st_dec_result *r = calloc(1, sizeof *r);
    if (!r) return st_fail(ST_ENOMEM, "dec: result");
    st_status s = st_dec_predict(d, x, &r->q, &r->embeddings);
    if (s == ST_OK) s = st_tensor_new(ST_I64, 1, &x->shape[0], &r->labels);
    if (s == ST_OK) {
        dec_argmax(x->shape[0], d->k, st_f32(r->q), r->labels->data);
        s = st_tensor_clone(d->mu, &r->centroids);
    }
    if (s == ST_OK) s = history_tensor(&d->pre_loss, 1, &r->pretrain_loss);
    if (s == ST_OK) s = history_tensor(&d->clu_loss, 3, &r->cluster_loss);
    if (s != ST_OK) {
        st_dec_result_free(r);
        return s;
    }
    r->iterations = d->ite;
    r->stop = d->stop;
    r->delta = d->delta;
    *out = r;
    return ST_OK;
}

st_dec_stage st_dec_get_stage(const st_dec *d) { return d->stage; }
const st_dec_config *st_dec_get_config(const st_dec *d) { return &d->cfg; }
st_cae *st_dec_cae(st_dec *d) { return d->cae; }
void st_dec_set_active_threads(st_dec *d, int threads) { st_cae_set_active_threads(d->cae, threads); }
st_tensor *st_dec_centroids(st_dec *d) { return d->mu; }
int st_dec_epoch(const st_dec *d) { return d->epoch; }
int64_t st_dec_iteration(const st_dec *d) { return d->ite; }
