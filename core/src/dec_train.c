/* The DEC/IDEC schedule (METHOD.md c.2, c.3): pretraining epochs,
 * k-means initialisation, then clustering iterations with target updates.
 * Every stage keeps its position in the trainer, so a run stopped by the
 * callback continues where it stopped, and a run restored from a
 * checkpoint continues exactly as the uninterrupted run would. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "dec_internal.h"
#include "strata/kmeans.h"
#include "strata/layers.h"
#include "strata/loss.h"

static int64_t steps_per_epoch(const st_dec *d) { return (d->n + d->cfg.batch - 1) / d->cfg.batch; }

static bool notify(st_dec *d, st_dec_callback cb, void *ctx, st_dec_event ev, bool checkpoint)
{
    if (!cb) return true;
    st_dec_progress p;
    memset(&p, 0, sizeof p);
    p.layer = d->name;
    p.event = ev;
    p.stage = d->stage;
    p.epoch = d->epoch;
    if ((ev == ST_DEC_EV_STEP && d->stage == ST_DEC_PRETRAIN) || ev == ST_DEC_EV_EPOCH) {
        p.step = d->epoch * steps_per_epoch(d) + d->step;
        p.total = d->cfg.epochs * steps_per_epoch(d);
    } else {
        p.step = d->ite;
        p.total = d->cfg.maxiter;
    }
    p.loss = d->last[0];
    p.kl = d->last[1];
    p.mse = d->last[2];
    p.delta = d->delta;
    p.checkpoint = checkpoint;
    return cb(ctx, &p);
}

static st_status checkpoint(st_dec *d, bool *written)
{
    *written = d->dir != NULL;
    return d->dir ? st_dec_save_checkpoint(d, NULL) : ST_OK;
}

static st_status numeric_failure(st_dec *d, const char *stage, const char *where, int64_t step, double loss)
{
    d->stage = ST_DEC_FAILED;
    return st_fail(ST_ENUMERIC, "dec '%s': non-finite %s loss (%g) at %s %lld; %s", d->name, stage, loss, where,
                   (long long)step,
                   d->dir ? "the last good checkpoint is kept in the checkpoint directory"
                          : "no checkpoint directory was set");
}

/* The callback asked to stop: not an error. */
static st_status stop_here(bool *stopped)
{
    *stopped = true;
    return ST_OK;
}

static void identity_shuffle(st_dec *d)
{
    int64_t *perm = d->perm->data;
    for (int64_t i = 0; i < d->n; i++) perm[i] = i;
    st_rng_permutation(&d->rng, perm, d->n);
}

/* Stage 1. Sets *stopped when the callback asked to stop. */
static st_status pretrain(st_dec *d, const st_tensor *x, st_dec_callback cb, void *ctx, bool *stopped)
{
    const int B = d->cfg.batch;
    const int64_t spe = steps_per_epoch(d);
    const int64_t *perm = d->perm->data;
    while (d->epoch < d->cfg.epochs) {
        if (d->step == 0) identity_shuffle(d);
        while (d->step < spe) {
            const int64_t first = d->step * B;
            const int b = (int)(d->n - first < B ? d->n - first : B);
            dec_gather(d, x, perm + first, 0, b, d->xb);
            double loss;
            ST_TRY(st_cae_pretrain_step(d->cae, d->opt_pre, b, d->xb, &loss));
            if (!isfinite(loss)) {
                /* the step was already applied: this in-memory model is lost */
                return numeric_failure(d, "pretraining", "step", d->epoch * spe + d->step + 1, loss);
            }
            ST_TRY(dec_history_push(&d->pre_loss, &loss, 1));
            d->last[0] = d->last[2] = loss;
            d->last[1] = 0;
            d->step++;
            if (!notify(d, cb, ctx, ST_DEC_EV_STEP, false)) return stop_here(stopped);
        }
        d->epoch++;
        d->step = 0;
        if (d->epoch == d->cfg.epochs) d->stage = ST_DEC_KMEANS;
        bool written;
        ST_TRY(checkpoint(d, &written));
        if (!notify(d, cb, ctx, ST_DEC_EV_EPOCH, written)) return stop_here(stopped);
    }
    d->stage = ST_DEC_KMEANS;
    return ST_OK;
}

/* Stage 2: k-means on the embeddings of every row. */
static st_status kmeans_init(st_dec *d, const st_tensor *x)
{
    const int64_t shape[2] = {d->n, d->d};
    st_tensor *z = NULL;
    st_kmeans_result *r = NULL;
    st_status s = st_tensor_new(ST_F32, 2, shape, &z);
    if (s == ST_OK) s = dec_pass(d, x, NULL, st_f32(z));
    if (s == ST_OK) {
        st_kmeans_options o = st_kmeans_defaults(d->k);
        o.n_init = d->cfg.kmeans_n_init;
        o.max_iter = d->cfg.kmeans_max_iter;
        o.tol = d->cfg.kmeans_tol;
        s = st_kmeans_fit(z, &o, &d->rng, &r);
        if (s != ST_OK) s = st_fail_context(s, "dec '%s': k-means initialisation: ", d->name);
    }
    if (s == ST_OK) s = st_tensor_copy_into(d->mu, r->centers);
    if (s == ST_OK) s = st_tensor_copy_into(d->y_last, r->labels);
    st_kmeans_result_free(r);
    if (s != ST_OK) {
        st_tensor_free(z);
        return s;
    }
    st_tensor_free(d->z_kmeans);
    d->z_kmeans = z; /* for the target update at iteration 0 */
    d->stage = ST_DEC_CLUSTER;
    d->ite = d->index = 0;
    d->updated_at = -1;
    return ST_OK;
}

/* c.3.a: q over every row, p from it, and the label change. */
static st_status target_update(st_dec *d, const st_tensor *x)
{
    float *q = st_f32(d->q_all);
    if (d->z_kmeans) {
        st_student_t_forward((int)d->n, d->k, d->d, d->cfg.alpha, st_f32(d->z_kmeans), st_f32(d->mu), q);
        st_tensor_free(d->z_kmeans);
        d->z_kmeans = NULL;
    } else {
        ST_TRY(dec_pass(d, x, q, NULL));
    }
    st_status s = st_target_distribution((int)d->n, d->k, q, st_f32(d->p));
    if (s != ST_OK) {
        d->stage = ST_DEC_FAILED;
        return st_fail_context(s, "dec '%s': target update at iteration %lld: ", d->name, (long long)d->ite);
    }
    int64_t *y = d->y_last->data, changed = 0;
    for (int64_t i = 0; i < d->n; i++) {
        int64_t best;
        dec_argmax(1, d->k, q + i * d->k, &best);
        changed += best != y[i];
        y[i] = best;
    }
    d->delta = (double)changed / (double)d->n;
    d->updated_at = d->ite;
    return ST_OK;
}

/* c.3.b-d: one IDEC step on the next batch; loss gets total, kl, mse. */
static st_status cluster_step(st_dec *d, const st_tensor *x, double loss[3])
{
    const int B = d->cfg.batch, k = d->k, dim = d->d;
    const int64_t first = (int64_t)B * d->index;
    const int64_t end = first + B < d->n ? first + B : d->n;
    const int b = (int)(end > first ? end - first : 0);
    if (d->cfg.shuffle && d->index == 0) identity_shuffle(d);
    const int64_t *idx = d->cfg.shuffle ? (const int64_t *)d->perm->data + first : NULL;
    d->index = (int64_t)B * (d->index + 1) <= d->n ? d->index + 1 : 0;
    loss[0] = loss[1] = loss[2] = 0;
    if (b == 0) return ST_OK; /* Q5: the reference's empty batch; no step */

    const float *p = st_f32(d->p);
    for (int i = 0; i < b; i++) {
        const int64_t r = idx ? idx[i] : first + i;
        memcpy(d->pb + (size_t)i * k, p + r * k, (size_t)k * sizeof *d->pb);
    }
    dec_gather(d, x, idx, first, b, d->xb);
    const float kw = d->cfg.kl_weight, mw = d->cfg.mse_weight;
    float *mu = st_f32(d->mu), *dmu = st_f32(d->dmu);
    ST_TRY(st_cae_encode(d->cae, b, d->xb, d->zb));
    st_student_t_forward(b, k, dim, d->cfg.alpha, d->zb, mu, d->qb);
    loss[1] = st_loss_kld(b, k, d->pb, d->qb, kw, d->dq);
    if (mw > 0) {
        ST_TRY(st_cae_decode(d->cae, b, d->zb, d->xhat));
        loss[2] = st_loss_mse((size_t)b * d->row, d->xhat, d->xb, mw, d->dxhat);
    }
    loss[0] = kw * loss[1] + mw * loss[2];
    if (!isfinite(loss[0])) return numeric_failure(d, "clustering", "iteration", d->ite + 1, loss[0]);
    if (kw > 0)
        st_student_t_backward(b, k, dim, d->cfg.alpha, d->zb, mu, d->qb, d->dq, d->dz, dmu);
    else
        memset(dmu, 0, (size_t)k * dim * sizeof *dmu);
    ST_TRY(st_cae_backward(d->cae, mw > 0 ? d->dxhat : NULL, kw > 0 ? d->dz : NULL));
    const st_param_block blocks[2] = {st_cae_param_block(d->cae), {mu, dmu, (size_t)k * dim}};
    return st_optim_step(d->opt_clu, 2, blocks);
}

/* Stage 3. */
static st_status cluster(st_dec *d, const st_tensor *x, st_dec_callback cb, void *ctx, bool *stopped)
{
    while (d->ite < d->cfg.maxiter) {
        if (d->ite % d->cfg.update_interval == 0 && d->updated_at != d->ite) {
            ST_TRY(target_update(d, x));
            if (d->ite > 0 && d->delta < d->cfg.tol) {
                d->stop = ST_DEC_TOL;
                break;
            }
            bool written;
            ST_TRY(checkpoint(d, &written));
            if (!notify(d, cb, ctx, ST_DEC_EV_UPDATE, written)) return stop_here(stopped);
        }
        double loss[3];
        ST_TRY(cluster_step(d, x, loss));
        ST_TRY(dec_history_push(&d->clu_loss, loss, 3));
        memcpy(d->last, loss, sizeof loss);
        d->ite++;
        if (!notify(d, cb, ctx, ST_DEC_EV_STEP, false)) return stop_here(stopped);
    }
    if (d->stop == ST_DEC_RUNNING) d->stop = ST_DEC_MAXITER;
    d->stage = ST_DEC_DONE;
    bool written;
    ST_TRY(checkpoint(d, &written));
    notify(d, cb, ctx, ST_DEC_EV_DONE, written);
    return ST_OK;
}

st_status st_dec_fit(st_dec *d, const st_tensor *x, st_dec_callback cb, void *ctx, st_dec_result **out)
{
    if (out) *out = NULL;
    if (d->stage == ST_DEC_FAILED)
        return st_fail(ST_ESTATE, "dec '%s': training failed earlier; make a new trainer (it resumes from the last "
                                  "checkpoint)", d->name);
    ST_TRY(dec_check_input(d, x, "activations"));
    if (!d->started && d->dir && d->cfg.resume) {
        char path[4096];
        ST_TRY(dec_checkpoint_path(d, NULL, path, sizeof path));
        if (access(path, F_OK) == 0) ST_TRY(st_dec_load_checkpoint(d, path));
    }
    ST_TRY(dec_alloc_rows(d, x->shape[0]));
    d->started = true;

    bool stopped = false;
    if (d->stage == ST_DEC_PRETRAIN) ST_TRY(pretrain(d, x, cb, ctx, &stopped));
    if (stopped) return ST_OK;
    if (d->stage == ST_DEC_KMEANS) {
        ST_TRY(kmeans_init(d, x));
        if (!notify(d, cb, ctx, ST_DEC_EV_KMEANS, false)) return ST_OK;
    }
    if (d->stage == ST_DEC_CLUSTER) ST_TRY(cluster(d, x, cb, ctx, &stopped));
    if (stopped) return ST_OK;
    return out ? dec_make_result(d, x, out) : ST_OK;
}
