/* DEC/IDEC trainer: the schedule against a naive re-implementation of
 * METHOD.md c.2-c.3 built from the pieces, outputs, determinism, the
 * reference's batch-index rule (Q5), the tol stop, checkpoint/resume
 * giving a bitwise-identical model, and the non-finite-loss failure. */
#include "tmpdir.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "strata/dec.h"
#include "strata/kmeans.h"
#include "strata/layers.h"
#include "strata/loss.h"
#include "testing.h"
#include "dec_fixture.h"

static void test_config_errors(void)
{
    st_dec *d = NULL;
    st_dec_config c = small_config();
    c.clusters = 0;
    CHECK_FAILS(st_dec_new(&c, H, W, C, &d), ST_EINVAL, "clusters");
    c = small_config();
    c.kl_weight = 0;
    c.mse_weight = 0;
    CHECK_FAILS(st_dec_new(&c, H, W, C, &d), ST_EINVAL, "kl_weight or mse_weight");
    c = small_config();
    c.update_interval = 0;
    CHECK_FAILS(st_dec_new(&c, H, W, C, &d), ST_EINVAL, "update_interval");
    c = small_config();
    CHECK_FAILS(st_dec_new(&c, 0, W, C, &d), ST_EINVAL, "");
    CHECK(d == NULL);

    /* the data must match the trainer's [H, W, C] and be f32 */
    CHECK_OK(st_dec_new(&c, H, W, C, &d));
    const int64_t bad_shape[4] = {10, H, W, C + 1};
    st_tensor *bad = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 4, bad_shape, &bad));
    CHECK_FAILS(st_dec_fit(d, bad, NULL, NULL, NULL), ST_ESHAPE, "blobs");
    st_tensor_free(bad);
    const int64_t ok_shape[4] = {10, H, W, C};
    CHECK_OK(st_tensor_new(ST_F64, 4, ok_shape, &bad));
    CHECK_FAILS(st_dec_fit(d, bad, NULL, NULL, NULL), ST_EDTYPE, "activations");
    st_tensor_free(bad);
    /* a column slice has non-contiguous rows */
    st_tensor *x = blobs(12, 1), *col = NULL;
    CHECK_OK(st_tensor_slice(x, 2, 0, W, 2, &col));
    st_tensor_free(x);
    x = NULL;
    st_dec_free(d);
    c.filters[3] = 4;
    CHECK_OK(st_dec_new(&c, H, W / 2, C, &d));
    CHECK_FAILS(st_dec_fit(d, col, NULL, NULL, NULL), ST_ESHAPE, "contiguous");
    st_tensor_free(col);
    st_dec_free(d);
    st_dec_free(NULL);
    st_dec_result_free(NULL);
}

/* ---- a naive, independent reading of METHOD.md c.2-c.3 ---- */
typedef struct naive_out {
    st_cae *cae;
    float mu[3 * 4];
    int64_t iterations;
    double delta;
    double kl_sum;
} naive_out;

static void encode_all(st_cae *m, const float *x, int64_t n, int b, float *z)
{
    for (int64_t i = 0; i < n; i += b) {
        int nb = (int)(n - i < b ? n - i : b);
        CHECK_OK(st_cae_encode(m, nb, x + i * ROW, z + i * 4));
    }
}

static void naive_idec(const st_dec_config *cfg, const st_tensor *xt, naive_out *o)
{
    const int64_t n = xt->shape[0];
    const int B = cfg->batch, K = cfg->clusters, D = cfg->filters[3];
    const float *x = st_f32(xt);
    st_rng rng;
    st_rng_seed(&rng, cfg->seed);
    st_cae_config cc = st_cae_config_default(H, W, C);
    memcpy(cc.filters, cfg->filters, sizeof cc.filters);
    cc.max_batch = B;
    CHECK_OK(st_cae_new(&cc, &rng, &o->cae));
    const size_t np = st_cae_param_count(o->cae);
    st_optim *pre = NULL, *clu = NULL;
    CHECK_OK(st_optim_new(&cfg->pretrain_optim, np, &pre));
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    float *xb = malloc((size_t)B * ROW * sizeof *xb);
    /* stage 1: a fresh permutation of 0..n-1 every epoch */
    for (int e = 0; e < cfg->epochs; e++) {
        for (int64_t i = 0; i < n; i++) perm[i] = i;
        st_rng_permutation(&rng, perm, n);
        for (int64_t s = 0; s < n; s += B) {
            int nb = (int)(n - s < B ? n - s : B);
            for (int i = 0; i < nb; i++) memcpy(xb + i * ROW, x + perm[s + i] * ROW, ROW * sizeof *xb);
            CHECK_OK(st_cae_pretrain_step(o->cae, pre, nb, xb, NULL));
        }
    }
    /* stage 2: k-means on every embedding */
    const int64_t zshape[2] = {n, D};
    st_tensor *z = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 2, zshape, &z));
    encode_all(o->cae, x, n, B, st_f32(z));
    st_kmeans_options ko = st_kmeans_defaults(K);
    ko.n_init = cfg->kmeans_n_init;
    st_kmeans_result *kr = NULL;
    CHECK_OK(st_kmeans_fit(z, &ko, &rng, &kr));
    memcpy(o->mu, kr->centers->data, (size_t)K * D * sizeof(float));
    int64_t *ylast = malloc((size_t)n * sizeof *ylast);
    memcpy(ylast, kr->labels->data, (size_t)n * sizeof *ylast);
    st_kmeans_result_free(kr);
    /* stage 3 */
    CHECK_OK(st_optim_new(&cfg->cluster_optim, np + (size_t)K * D, &clu));
    float *q = malloc((size_t)n * K * sizeof *q), *p = malloc((size_t)n * K * sizeof *p);
    float zb[16 * 4], qb[16 * 3], dq[16 * 3], dz[16 * 4], dmu[3 * 4];
    float *xh = malloc((size_t)B * ROW * sizeof *xh), *dxh = malloc((size_t)B * ROW * sizeof *dxh);
    int64_t index = 0, ite;
    o->kl_sum = 0;
    for (ite = 0; ite < cfg->maxiter; ite++) {
        if (ite % cfg->update_interval == 0) {
            encode_all(o->cae, x, n, B, st_f32(z));
            st_student_t_forward((int)n, K, D, cfg->alpha, st_f32(z), o->mu, q);
            CHECK_OK(st_target_distribution((int)n, K, q, p));
            int64_t changed = 0;
            for (int64_t i = 0; i < n; i++) {
                int64_t best = 0;
                for (int j = 1; j < K; j++)
                    if (q[i * K + j] > q[i * K + best]) best = j;
                changed += best != ylast[i];
                ylast[i] = best;
            }
            o->delta = (double)changed / (double)n;
            if (ite > 0 && o->delta < cfg->tol) break;
        }
        int64_t lo = B * index, hi = B * (index + 1) < n ? B * (index + 1) : n;
        int nb = (int)(hi - lo);
        index = B * (index + 1) <= n ? index + 1 : 0;
        if (nb <= 0) continue;
        CHECK_OK(st_cae_encode(o->cae, nb, x + lo * ROW, zb));
        st_student_t_forward(nb, K, D, cfg->alpha, zb, o->mu, qb);
        CHECK_OK(st_cae_decode(o->cae, nb, zb, xh));
        st_loss_mse((size_t)nb * ROW, xh, x + lo * ROW, cfg->mse_weight, dxh);
        o->kl_sum += st_loss_kld(nb, K, p + lo * K, qb, cfg->kl_weight, dq);
        st_student_t_backward(nb, K, D, cfg->alpha, zb, o->mu, qb, dq, dz, dmu);
        CHECK_OK(st_cae_backward(o->cae, dxh, dz));
        st_param_block blocks[2] = {st_cae_param_block(o->cae), {o->mu, dmu, (size_t)K * D}};
        CHECK_OK(st_optim_step(clu, 2, blocks));
    }
    o->iterations = ite;
    free(perm);
    free(xb);
    free(ylast);
    free(q);
    free(p);
    free(xh);
    free(dxh);
    st_tensor_free(z);
    st_optim_free(pre);
    st_optim_free(clu);
}

static void check_same_model(st_dec *d, st_cae *ref, const float *mu)
{
    st_cae *m = st_dec_cae(d);
    CHECK(st_cae_param_count(m) == st_cae_param_count(ref));
    CHECK(same_bits(st_cae_params(m), st_cae_params(ref), st_cae_param_count(ref) * sizeof(float)));
    CHECK(same_bits(st_dec_centroids(d)->data, mu, 3 * 4 * sizeof(float)));
}

static void test_matches_naive_schedule(void)
{
    /* N = 100 is not a multiple of 16: batches of 16 and a last one of 4 */
    st_tensor *x = blobs(100, 3);
    st_dec_config c = small_config();
    naive_out ref;
    naive_idec(&c, x, &ref);
    st_dec *d = NULL;
    st_dec_result *r = NULL;
    CHECK_OK(st_dec_new(&c, H, W, C, &d));
    CHECK_OK(st_dec_fit(d, x, NULL, NULL, &r));
    check_same_model(d, ref.cae, ref.mu);
    CHECK(r && r->iterations == ref.iterations && r->iterations == c.maxiter);
    CHECK(r && r->stop == ST_DEC_MAXITER);
    CHECK(r && r->delta == ref.delta);
    CHECK(st_dec_get_stage(d) == ST_DEC_DONE);
    if (r) {
        /* losses: one per pretraining step, three per iteration */
        CHECK(r->pretrain_loss && r->pretrain_loss->shape[0] == c.epochs * 7);
        CHECK(r->cluster_loss && r->cluster_loss->shape[0] == c.maxiter && r->cluster_loss->shape[1] == 3);
        const double *cl = r->cluster_loss->data;
        double kl_sum = 0;
        for (int i = 0; i < c.maxiter; i++) {
            kl_sum += cl[3 * i + 1];
            CHECK_CLOSE(cl[3 * i], c.kl_weight * cl[3 * i + 1] + c.mse_weight * cl[3 * i + 2], 1e-6, 0);
        }
        CHECK(kl_sum == ref.kl_sum);
        /* pretraining lowers the reconstruction error */
        const double *pl = r->pretrain_loss->data;
        CHECK(pl[r->pretrain_loss->shape[0] - 1] < pl[0]);
        /* outputs: shapes, q rows sum to 1, labels = argmax q, |z| = radius */
        CHECK(r->q->shape[0] == 100 && r->q->shape[1] == 3);
        CHECK(r->embeddings->shape[0] == 100 && r->embeddings->shape[1] == 4);
        CHECK(r->centroids->shape[0] == 3 && r->centroids->shape[1] == 4);
        CHECK(same_bits(r->centroids->data, ref.mu, sizeof ref.mu));
        const float *q = st_f32(r->q), *z = st_f32(r->embeddings);
        const int64_t *lab = r->labels->data;
        for (int i = 0; i < 100; i++) {
            double s = 0, nz = 0;
            int best = 0;
            for (int j = 0; j < 3; j++) {
                s += q[i * 3 + j];
                if (q[i * 3 + j] > q[i * 3 + best]) best = j;
            }
            for (int j = 0; j < 4; j++) nz += (double)z[i * 4 + j] * z[i * 4 + j];
            CHECK_CLOSE(s, 1.0, 1e-5, 0);
            CHECK(lab[i] == best);
            CHECK_CLOSE(sqrt(nz), 8.0, 1e-5, 0);
        }
        /* the blobs are separable: each cluster holds one class */
        int counts[3][3] = {{0}};
        for (int i = 0; i < 100; i++) counts[lab[i]][i % 3]++;
        int pure = 0;
        for (int j = 0; j < 3; j++) {
            int m = 0;
            for (int c2 = 0; c2 < 3; c2++) m = counts[j][c2] > m ? counts[j][c2] : m;
            pure += m;
        }
        CHECK(pure >= 95);
    }
    st_dec_result_free(r);
    st_cae_free(ref.cae);
    st_dec_free(d);
    st_tensor_free(x);
}

static void test_determinism(void)
{
    st_tensor *x = blobs(60, 4);
    st_dec_config c = small_config();
    c.maxiter = 12;
    st_dec_result *r[3] = {NULL, NULL, NULL};
    for (int run = 0; run < 3; run++) {
        if (run == 2) c.seed = 8;
        st_dec *d = NULL;
        CHECK_OK(st_dec_new(&c, H, W, C, &d));
        CHECK_OK(st_dec_fit(d, x, NULL, NULL, &r[run]));
        st_dec_free(d);
    }
    if (r[0] && r[1] && r[2]) {
        CHECK(same_bits(r[0]->embeddings->data, r[1]->embeddings->data, 60 * 4 * sizeof(float)));
        CHECK(same_bits(r[0]->q->data, r[1]->q->data, 60 * 3 * sizeof(float)));
        CHECK(same_bits(r[0]->labels->data, r[1]->labels->data, 60 * sizeof(int64_t)));
        /* another seed gives another model */
        CHECK(!same_bits(r[0]->embeddings->data, r[2]->embeddings->data, 60 * 4 * sizeof(float)));
    }
    for (int i = 0; i < 3; i++) st_dec_result_free(r[i]);
    st_tensor_free(x);
}

/* N = 64 with batch 32: the index rule gives batches 0, 1, then an empty
 * one (index 2), then 0 again; the empty iteration takes no step. */
static void test_empty_batch_rule(void)
{
    st_tensor *x = blobs(64, 5);
    st_dec_config c = small_config();
    c.batch = 32;
    c.epochs = 1;
    c.maxiter = 6;
    c.update_interval = 100;
    st_dec *d = NULL;
    st_dec_result *r = NULL;
    CHECK_OK(st_dec_new(&c, H, W, C, &d));
    CHECK_OK(st_dec_fit(d, x, NULL, NULL, &r));
    if (r && r->cluster_loss) {
        const double *cl = r->cluster_loss->data;
        for (int i = 0; i < 6; i++) {
            bool empty = i == 2 || i == 5;
            CHECK(empty ? cl[3 * i] == 0 && cl[3 * i + 2] == 0 : cl[3 * i] > 0);
        }
    }
    st_dec_result_free(r);
    st_dec_free(d);
    st_tensor_free(x);
}

static void test_tol_stop(void)
{
    st_tensor *x = blobs(48, 6);
    st_dec_config c = small_config();
    c.tol = 1.5; /* any label change fraction is below it */
    st_dec *d = NULL;
    st_dec_result *r = NULL;
    CHECK_OK(st_dec_new(&c, H, W, C, &d));
    CHECK_OK(st_dec_fit(d, x, NULL, NULL, &r));
    CHECK(r && r->stop == ST_DEC_TOL && r->iterations == c.update_interval);
    CHECK(r && r->cluster_loss && r->cluster_loss->shape[0] == c.update_interval);
    st_dec_result_free(r);
    st_dec_free(d);
    st_tensor_free(x);
}

/* ---- checkpoints ---- */
typedef struct stopper {
    st_dec_event event;
    int64_t at;      /* stop at this event with this step */
    int seen_checkpoints;
    st_dec *poison;  /* if set: put a NaN into a model parameter at `at` */
} stopper;

static bool stop_cb(void *ctx, const st_dec_progress *p)
{
    stopper *s = ctx;
    s->seen_checkpoints += p->checkpoint;
    if (p->event != s->event || p->step != s->at) return true;
    if (s->poison) {
        /* the linear last layer (a ReLU would turn a NaN into 0) */
        st_f32(st_cae_find(st_dec_cae(s->poison), "deconv1.bias"))[0] = NAN;
        return true;
    }
    return false;
}

static void resume_case(st_dec_event ev, int64_t at, const st_dec_config *base, const st_tensor *x,
                        st_cae *ref_cae, const float *ref_mu, const st_dec_result *ref)
{
    tmpdir dir;
    CHECK(tmpdir_make(&dir) == 0);
    st_dec_config c = *base;
    c.dir = dir.path;
    st_dec *d = NULL;
    st_dec_result *r = NULL;
    stopper s = {ev, at, 0, NULL};
    CHECK_OK(st_dec_new(&c, H, W, C, &d));
    CHECK_OK(st_dec_fit(d, x, stop_cb, &s, &r));
    CHECK(r == NULL && s.seen_checkpoints > 0); /* stopped */
    st_dec_free(d);                             /* "interrupted" */
    CHECK(tmpdir_count(&dir) == 1);             /* the checkpoint, no temp files */

    CHECK_OK(st_dec_new(&c, H, W, C, &d)); /* a new process would do this */
    CHECK_OK(st_dec_fit(d, x, NULL, NULL, &r));
    check_same_model(d, ref_cae, ref_mu);
    if (r && ref) {
        CHECK(same_bits(r->q->data, ref->q->data, (size_t)st_tensor_nbytes(ref->q)));
        CHECK(r->pretrain_loss && same_bits(r->pretrain_loss->data, ref->pretrain_loss->data,
                                            st_tensor_nbytes(ref->pretrain_loss)));
        CHECK(r->cluster_loss && same_bits(r->cluster_loss->data, ref->cluster_loss->data,
                                           st_tensor_nbytes(ref->cluster_loss)));
        CHECK(r->iterations == ref->iterations);
    }
    st_dec_result_free(r);
    st_dec_free(d);

    /* a finished run resumes to the same outputs without training */
    CHECK_OK(st_dec_new(&c, H, W, C, &d));
    stopper none = {ST_DEC_EV_STEP, -1, 0, NULL};
    CHECK_OK(st_dec_fit(d, x, stop_cb, &none, &r));
    CHECK(r != NULL && none.seen_checkpoints == 0);
    check_same_model(d, ref_cae, ref_mu);
    st_dec_result_free(r);
    st_dec_free(d);

    /* another configuration must not resume from this checkpoint */
    c.maxiter += 1;
    CHECK_OK(st_dec_new(&c, H, W, C, &d));
    CHECK_FAILS(st_dec_fit(d, x, NULL, NULL, NULL), ST_ESTATE, "maxiter");
    st_dec_free(d);
    tmpdir_remove(&dir);
}

static void test_resume_bitwise(void)
{
    st_tensor *x = blobs(70, 9);
    st_dec_config c = small_config();
    c.shuffle = true; /* so the saved clustering order matters too */
    st_dec *d = NULL;
    st_dec_result *ref = NULL;
    CHECK_OK(st_dec_new(&c, H, W, C, &d));
    CHECK_OK(st_dec_fit(d, x, NULL, NULL, &ref));
    float mu[12];
    memcpy(mu, st_dec_centroids(d)->data, sizeof mu);
    /* after the first pretraining epoch (steps per epoch: 5) */
    resume_case(ST_DEC_EV_EPOCH, 5, &c, x, st_dec_cae(d), mu, ref);
    /* at a target update inside the clustering stage */
    resume_case(ST_DEC_EV_UPDATE, 20, &c, x, st_dec_cae(d), mu, ref);
    /* between checkpoints (clustering iteration 13): the run replays from the last one */
    resume_case(ST_DEC_EV_STEP, 13, &c, x, st_dec_cae(d), mu, ref);
    resume_case(ST_DEC_EV_STEP, 7, &c, x, st_dec_cae(d), mu, ref); /* mid pretraining epoch 2 */
    st_dec_result_free(ref);
    st_dec_free(d);
    st_tensor_free(x);
}

/* Stopping and calling fit again on the same trainer continues in memory. */
static void test_continue_in_memory(void)
{
    st_tensor *x = blobs(50, 10);
    st_dec_config c = small_config();
    st_dec *a = NULL, *b = NULL;
    CHECK_OK(st_dec_new(&c, H, W, C, &a));
    CHECK_OK(st_dec_fit(a, x, NULL, NULL, NULL));
    CHECK_OK(st_dec_new(&c, H, W, C, &b));
    stopper s1 = {ST_DEC_EV_STEP, 3, 0, NULL}, s2 = {ST_DEC_EV_KMEANS, 0, 0, NULL}, s3 = {ST_DEC_EV_STEP, 11, 0, NULL};
    st_dec_result *r = NULL;
    CHECK_OK(st_dec_fit(b, x, stop_cb, &s1, &r));
    CHECK(r == NULL && st_dec_get_stage(b) == ST_DEC_PRETRAIN);
    CHECK_OK(st_dec_fit(b, x, stop_cb, &s2, &r));
    CHECK(r == NULL && st_dec_get_stage(b) == ST_DEC_CLUSTER && st_dec_iteration(b) == 0);
    CHECK_OK(st_dec_fit(b, x, stop_cb, &s3, &r));
    CHECK(r == NULL && st_dec_iteration(b) == 11);
    CHECK_OK(st_dec_fit(b, x, NULL, NULL, &r));
    CHECK(r != NULL);
    CHECK(same_bits(st_cae_params(st_dec_cae(a)), st_cae_params(st_dec_cae(b)),
                    st_cae_param_count(st_dec_cae(a)) * sizeof(float)));
    /* a different row count is refused */
    st_tensor *y = blobs(51, 10);
    CHECK_FAILS(st_dec_fit(b, y, NULL, NULL, NULL), ST_ESHAPE, "rows");
    st_tensor_free(y);
    st_dec_result_free(r);
    st_dec_free(a);
    st_dec_free(b);
    st_tensor_free(x);
}

static void test_nonfinite_keeps_checkpoint(void)
{
    tmpdir dir;
    CHECK(tmpdir_make(&dir) == 0);
    st_tensor *x = blobs(40, 11);
    st_dec_config c = small_config();
    c.dir = dir.path;
    st_dec *d = NULL;
    CHECK_OK(st_dec_new(&c, H, W, C, &d));
    stopper s = {ST_DEC_EV_STEP, 14, 0, d}; /* poison after clustering step 14 */
    CHECK_FAILS(st_dec_fit(d, x, stop_cb, &s, NULL), ST_ENUMERIC, "'blobs'");
    CHECK(strstr(st_error_message(), "iteration 15") != NULL);
    CHECK(strstr(st_error_message(), "checkpoint") != NULL);
    CHECK(st_dec_get_stage(d) == ST_DEC_FAILED);
    CHECK_FAILS(st_dec_fit(d, x, NULL, NULL, NULL), ST_ESTATE, "failed");
    st_dec_free(d);
    /* the last good checkpoint (the update at iteration 10) resumes */
    CHECK_OK(st_dec_new(&c, H, W, C, &d));
    st_dec_result *r = NULL;
    CHECK_OK(st_dec_fit(d, x, NULL, NULL, &r));
    CHECK(r && r->iterations == c.maxiter);
    st_dec_result_free(r);
    st_dec_free(d);

    /* a corrupt checkpoint is an error, not a crash */
    FILE *f = fopen(tmpdir_file(&dir, "checkpoint.safetensors"), "wb");
    if (f) {
        fputs("not a checkpoint", f);
        fclose(f);
    }
    CHECK_OK(st_dec_new(&c, H, W, C, &d));
    CHECK_FAILS(st_dec_fit(d, x, NULL, NULL, NULL), ST_EFORMAT, "checkpoint");
    st_dec_free(d);
    tmpdir_remove(&dir);
    st_tensor_free(x);
}

static void test_predict(void)
{
    st_tensor *x = blobs(30, 12);
    st_dec_config c = small_config();
    c.maxiter = 0; /* k-means init only */
    st_dec *d = NULL;
    st_dec_result *r = NULL;
    CHECK_OK(st_dec_new(&c, H, W, C, &d));
    CHECK_OK(st_dec_fit(d, x, NULL, NULL, &r));
    CHECK(r && r->cluster_loss == NULL && r->iterations == 0);
    /* predict on a subset (rows 5..24) equals the training outputs (up to
     * rounding: the rows sit at other positions of the batch GEMMs) */
    st_tensor *sub = NULL, *q = NULL, *z = NULL;
    CHECK_OK(st_tensor_slice(x, 0, 5, 25, 1, &sub));
    CHECK_OK(st_dec_predict(d, sub, &q, &z));
    if (r && q && z) {
        for (int i = 0; i < 20 * 3; i++) CHECK_CLOSE(st_f32(q)[i], st_f32(r->q)[5 * 3 + i], 1e-4, 1e-6);
        for (int i = 0; i < 20 * 4; i++) CHECK_CLOSE(st_f32(z)[i], st_f32(r->embeddings)[5 * 4 + i], 1e-5, 1e-5);
    }
    /* q from z by the Student-t formula, worked in double */
    if (q && z) {
        const float *mu = st_f32(st_dec_centroids(d)), *zz = st_f32(z), *qq = st_f32(q);
        for (int i = 0; i < 20; i++) {
            double lk[3], m = -INFINITY, s = 0;
            for (int j = 0; j < 3; j++) {
                double d2 = 0;
                for (int t = 0; t < 4; t++) d2 += pow((double)zz[i * 4 + t] - mu[j * 4 + t], 2);
                lk[j] = -50.5 * log1p(d2 / 100.0);
                m = lk[j] > m ? lk[j] : m;
            }
            for (int j = 0; j < 3; j++) s += exp(lk[j] - m);
            for (int j = 0; j < 3; j++) CHECK_CLOSE(qq[i * 3 + j], exp(lk[j] - m) / s, 1e-4, 1e-6);
        }
    }
    st_tensor *wrong = NULL;
    const int64_t ws[2] = {3, 3};
    CHECK_OK(st_tensor_new(ST_F32, 2, ws, &wrong));
    CHECK_FAILS(st_dec_predict(d, sub, &wrong, NULL), ST_ESHAPE, "output");
    st_tensor_free(wrong);
    st_tensor_free(q);
    st_tensor_free(z);
    st_tensor_free(sub);
    st_dec_result_free(r);
    st_dec_free(d);
    st_tensor_free(x);
}

int main(void)
{
    RUN(test_config_errors);
    RUN(test_matches_naive_schedule);
    RUN(test_determinism);
    RUN(test_empty_batch_rule);
    RUN(test_tol_stop);
    RUN(test_resume_bitwise);
    RUN(test_continue_in_memory);
    RUN(test_nonfinite_keeps_checkpoint);
    RUN(test_predict);
    return TEST_SUMMARY();
}
