/* The reference autoencoder: METHOD.md's parameter counts and shapes,
 * whole-model finite differences, agreement with an independent PyTorch
 * re-implementation (tests/fixtures/make_cae_fixtures.py), errors. */
#include <stdlib.h>
#include "strata/cae.h"
#include "strata/layers.h"
#include "strata/loss.h"
#include "testing.h"

static st_cae *make(int h, int w, int c, const int *filters, bool minimal, int batch, uint64_t seed)
{
    st_cae_config cfg = st_cae_config_default(h, w, c);
    if (filters) memcpy(cfg.filters, filters, sizeof cfg.filters);
    cfg.minimal_padding = minimal;
    cfg.max_batch = batch;
    st_rng r;
    st_rng_seed(&r, seed);
    st_cae *m = NULL;
    CHECK_OK(st_cae_new(&cfg, &r, &m));
    return m;
}

static void test_param_counts_match_method_table(void)
{
    const struct {
        int h, w, c, top, bottom;
        size_t params;
    } rows[] = {{32, 32, 16, 4, 4, 407012}, {16, 16, 32, 4, 4, 348660}, {8, 8, 64, 4, 4, 373652},
                {28, 28, 1, 2, 2, 335765},  {7, 7, 3, 0, 1, 260247}};
    for (int i = 0; i < 5; i++) {
        st_cae *m = make(rows[i].h, rows[i].w, rows[i].c, NULL, false, 2, 1);
        if (!m) continue;
        CHECK(st_cae_param_count(m) == rows[i].params);
        st_padding2d p = st_cae_padding(m);
        CHECK(p.top == rows[i].top && p.bottom == rows[i].bottom && p.left == rows[i].top &&
              p.right == rows[i].bottom);
        size_t sum = 0;
        for (int t = 0; t < st_cae_tensor_count(m); t++) sum += (size_t)st_tensor_numel(st_cae_tensor(m, t));
        CHECK(sum == rows[i].params);
        st_cae_free(m);
    }
    /* Per-layer counts for 32x32x16 (METHOD b.2). */
    st_cae *m = make(32, 32, 16, NULL, false, 1, 1);
    const size_t per_layer[8] = {12832, 51264, 73856, 64020, 67200, 73792, 51232, 12816};
    for (int l = 0; l < 8; l++)
        CHECK((size_t)(st_tensor_numel(st_cae_tensor(m, 2 * l)) + st_tensor_numel(st_cae_tensor(m, 2 * l + 1))) ==
              per_layer[l]);
    st_tensor *k = st_cae_find(m, "deconv3.kernel");
    CHECK(k && k->ndim == 4 && k->shape[0] == 3 && k->shape[2] == 64 && k->shape[3] == 128);
    k = st_cae_find(m, "dense.kernel");
    CHECK(k && k->ndim == 2 && k->shape[0] == 3200 && k->shape[1] == 20);
    CHECK(st_cae_find(m, "conv4.kernel") == NULL);
    st_cae_free(m);
    /* Minimal padding: 32 stays 32 (flatten 2048), 7 still pads to 8. */
    m = make(32, 32, 16, NULL, true, 1, 1);
    int hp, wp;
    st_cae_padded_size(m, &hp, &wp);
    CHECK(hp == 32 && wp == 32);
    CHECK(st_tensor_numel(st_cae_find(m, "dense.kernel")) == 2048 * 20);
    st_cae_free(m);
    m = make(7, 7, 3, NULL, true, 1, 1);
    CHECK(st_cae_param_count(m) == 260247);
    st_cae_free(m);
}

static void test_init_is_keras_like_and_seeded(void)
{
    st_cae *a = make(8, 8, 4, NULL, false, 1, 7), *b = make(8, 8, 4, NULL, false, 1, 7);
    st_cae *c = make(8, 8, 4, NULL, false, 1, 8);
    size_t n = st_cae_param_count(a);
    CHECK(memcmp(st_cae_params(a), st_cae_params(b), n * sizeof(float)) == 0);
    CHECK(memcmp(st_cae_params(a), st_cae_params(c), n * sizeof(float)) != 0);
    for (int t = 0; t < st_cae_tensor_count(a); t++) {
        st_tensor *v = st_cae_tensor(a, t);
        int64_t cnt = st_tensor_numel(v);
        double mx = 0;
        for (int64_t i = 0; i < cnt; i++) mx = fmax(mx, fabs(st_f32(v)[i]));
        if (t % 2) {
            CHECK(mx == 0); /* zero biases */
        } else {
            double fan = v->ndim == 2 ? (double)(v->shape[0] + v->shape[1])
                                      : (double)(v->shape[0] * v->shape[1] * (v->shape[2] + v->shape[3]));
            double limit = sqrt(6.0 / fan);
            CHECK(mx <= limit && mx > 0.9 * limit);
        }
    }
    st_cae_free(a), st_cae_free(b), st_cae_free(c);
}

static void test_shapes_and_sphere(void)
{
    const int dims[][3] = {{8, 8, 64}, {7, 7, 3}, {16, 16, 32}, {5, 9, 2}};
    st_rng r;
    st_rng_seed(&r, 3);
    for (int i = 0; i < 4; i++) {
        st_cae *m = make(dims[i][0], dims[i][1], dims[i][2], NULL, false, 3, 2);
        size_t in = st_cae_input_size(m);
        CHECK(in == (size_t)dims[i][0] * dims[i][1] * dims[i][2]);
        float *x = malloc(3 * in * sizeof *x), *xhat = malloc(3 * in * sizeof *xhat), z[60];
        for (size_t j = 0; j < 3 * in; j++) x[j] = st_rng_uniform_f32(&r);
        CHECK_OK(st_cae_encode(m, 3, x, z));
        for (int b = 0; b < 3; b++) {
            double s = 0;
            for (int j = 0; j < 20; j++) s += (double)z[b * 20 + j] * z[b * 20 + j];
            CHECK_CLOSE(sqrt(s), 8.0, 1e-5, 0);
        }
        for (size_t j = 0; j < 3 * in; j++) xhat[j] = NAN;
        CHECK_OK(st_cae_decode(m, 3, z, xhat));
        for (size_t j = 0; j < 3 * in; j++) CHECK(isfinite(xhat[j])); /* every input position written */
        free(x), free(xhat);
        st_cae_free(m);
    }
}

/* ---- whole-model finite differences on a tiny configuration ---- */
typedef struct {
    st_cae *m;
    int batch;
    const float *x, *c; /* loss = MSE(x^, x) + <z, c> */
    float *z, *xhat;
} fd_ctx;

static double model_loss(fd_ctx *f)
{
    st_cae_encode(f->m, f->batch, f->x, f->z);
    st_cae_decode(f->m, f->batch, f->z, f->xhat);
    size_t n = (size_t)f->batch * st_cae_input_size(f->m);
    double l = st_loss_mse(n, f->xhat, f->x, 1.0f, NULL);
    for (int i = 0; i < f->batch * st_cae_embedding_dim(f->m); i++) l += (double)f->z[i] * f->c[i];
    return l;
}

static void fd_whole_model(int height, int width, int channels, const int *filters)
{
    const int batch = 2;
    st_cae *m = make(height, width, channels, filters, false, batch, 5);
    st_rng r;
    st_rng_seed(&r, 6);
    size_t in = st_cae_input_size(m);
    float *x = malloc(batch * in * sizeof *x), *xhat = malloc(batch * in * sizeof *xhat);
    float *dxhat = malloc(batch * in * sizeof *dxhat), c[6], z[6];
    for (size_t i = 0; i < batch * in; i++) x[i] = st_rng_uniform_f32(&r);
    for (int i = 0; i < 6; i++) c[i] = (float)(0.3 * st_rng_normal(&r));
    fd_ctx f = {m, batch, x, c, z, xhat};
    model_loss(&f);
    st_loss_mse(batch * in, xhat, x, 1.0f, dxhat);
    CHECK_OK(st_cae_backward(m, dxhat, c));
    size_t n = st_cae_param_count(m);
    float *g = malloc(n * sizeof *g), *w = st_cae_params(m);
    memcpy(g, st_cae_grads(m), n * sizeof *g);
    /* Check every tensor at a few entries; the step is small against the
     * ReLU kinks and the loss is accumulated in double. */
    int checked = 0;
    for (int t = 0; t < st_cae_tensor_count(m); t++) {
        st_tensor *v = st_cae_tensor(m, t);
        size_t off = (size_t)(st_f32(v) - w), cnt = (size_t)st_tensor_numel(v);
        for (int s = 0; s < 3; s++) {
            size_t i = off + (size_t)st_rng_below(&r, cnt);
            float keep = w[i];
            const float h = 1e-3f;
            w[i] = keep + h;
            double lp = model_loss(&f);
            w[i] = keep - h;
            double lm = model_loss(&f);
            w[i] = keep;
            double fd = (lp - lm) / (2.0 * h);
            if (fabs(g[i] - fd) > 2e-3 + 2e-2 * fabs(fd))
                fprintf(stderr, "%s[%zu]: backward %.6g, finite difference %.6g\n", st_cae_tensor_name(m, t),
                        i - off, g[i], fd);
            CHECK_CLOSE(g[i], fd, 2e-2, 2e-3);
            checked++;
        }
    }
    CHECK(checked == 48);
    free(g), free(x), free(xhat), free(dxhat);
    st_cae_free(m);
}

static void test_whole_model_finite_differences(void)
{
    const int small[4] = {3, 4, 5, 3}, wide[4] = {16, 16, 32, 3};
    fd_whole_model(6, 5, 2, small);
    /* 16-multiples of channels: the direct convolution kernels run. */
    fd_whole_model(6, 6, 16, wide);
}

/* ---- agreement with PyTorch on fixed weights ---- */
static double weight_value(size_t i) { return 0.4 * sin(1.7 * (double)i + 0.3); }
static double input_value(size_t i) { return 0.5 + 0.5 * sin(0.91 * (double)i + 0.2); }
static double centroid_value(size_t i, double radius) { return radius * 0.6 * cos(1.3 * (double)i + 0.5); }
static double target_value(size_t i) { return 0.2 + fabs(sin(2.1 * (double)i + 0.4)); }

/* Reads "label n v1 .. vn" into a new array; NULL on a mismatch. */
static double *read_row(FILE *fp, const char *label, size_t want)
{
    char got[32];
    size_t n = 0;
    if (fscanf(fp, "%31s %zu", got, &n) != 2 || strcmp(got, label) != 0 || n != want) {
        fprintf(stderr, "fixture: expected '%s' with %zu values, got '%s' with %zu\n", label, want, got, n);
        return NULL;
    }
    double *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        if (fscanf(fp, "%lf", &v[i]) != 1) {
            free(v);
            return NULL;
        }
    return v;
}

static void compare(const char *what, const float *got, const double *want, size_t n, double rtol)
{
    double scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= rtol * fabs(want[i]) + 1e-5 * scale)) {
            if (bad++ < 3) fprintf(stderr, "%s[%zu] = %.8g, torch %.8g\n", what, i, got[i], want[i]);
        }
    CHECK(bad == 0);
}

static void run_torch_case(FILE *fp)
{
    char name[64];
    int h, w, c, f[4], minimal, batch, k;
    double alpha, radius;
    if (fscanf(fp, "%63s %d %d %d %d %d %d %d %d %d %d %lf %lf", name, &h, &w, &c, &f[0], &f[1], &f[2], &f[3],
               &minimal, &batch, &k, &alpha, &radius) != 13) {
        CHECK(!"malformed case line");
        return;
    }
    st_cae_config cfg = st_cae_config_default(h, w, c);
    memcpy(cfg.filters, f, sizeof f);
    cfg.minimal_padding = minimal;
    cfg.max_batch = batch;
    cfg.radius = (float)radius;
    st_rng r;
    st_rng_seed(&r, 1);
    st_cae *m = NULL;
    CHECK_OK(st_cae_new(&cfg, &r, &m));
    if (!m) return;
    const size_t np = st_cae_param_count(m), in = st_cae_input_size(m), d = (size_t)f[3];
    for (size_t i = 0; i < np; i++) st_cae_params(m)[i] = (float)weight_value(i);
    float *x = malloc(batch * in * sizeof *x), *xhat = malloc(batch * in * sizeof *xhat);
    float *dxhat = malloc(batch * in * sizeof *dxhat), *mu = malloc(k * d * sizeof *mu);
    float *z = malloc(batch * d * sizeof *z), *dz = malloc(batch * d * sizeof *dz), *dmu = malloc(k * d * sizeof *dmu);
    float *q = malloc((size_t)batch * k * sizeof *q), *p = malloc((size_t)batch * k * sizeof *p);
    float *dq = malloc((size_t)batch * k * sizeof *dq);
    for (size_t i = 0; i < batch * in; i++) x[i] = (float)input_value(i);
    for (size_t i = 0; i < k * d; i++) mu[i] = (float)centroid_value(i, radius);
    for (int i = 0; i < batch; i++) {
        double s = 0;
        for (int j = 0; j < k; j++) s += (float)target_value((size_t)i * k + j);
        for (int j = 0; j < k; j++) p[i * k + j] = (float)((float)target_value((size_t)i * k + j) / s);
    }
    /* The IDEC step: 0.1 KL(P || Q) + 1.0 MSE. */
    CHECK_OK(st_cae_encode(m, batch, x, z));
    st_student_t_forward(batch, k, (int)d, (float)alpha, z, mu, q);
    double loss = st_loss_kld(batch, k, p, q, 0.1f, dq) * 0.1;
    st_student_t_backward(batch, k, (int)d, (float)alpha, z, mu, q, dq, dz, dmu);
    CHECK_OK(st_cae_decode(m, batch, z, xhat));
    loss += st_loss_mse(batch * in, xhat, x, 1.0f, dxhat);
    CHECK_OK(st_cae_backward(m, dxhat, dz));

    double *want;
    if ((want = read_row(fp, "loss", 1))) CHECK_CLOSE(loss, want[0], 1e-5, 0);
    free(want);
    if ((want = read_row(fp, "z", batch * d))) compare("z", z, want, batch * d, 1e-4);
    free(want);
    if ((want = read_row(fp, "xhat", batch * in))) compare("xhat", xhat, want, batch * in, 1e-4);
    free(want);
    if ((want = read_row(fp, "q", (size_t)batch * k))) compare("q", q, want, (size_t)batch * k, 1e-4);
    free(want);
    if ((want = read_row(fp, "grad", np))) compare("grad", st_cae_grads(m), want, np, 1e-4);
    free(want);
    if ((want = read_row(fp, "dmu", k * d))) compare("dmu", dmu, want, k * d, 1e-4);
    free(want);
    if (testing_failures_in_test) fprintf(stderr, "torch case %s failed\n", name);
    free(x), free(xhat), free(dxhat), free(mu), free(z), free(dz), free(dmu), free(q), free(p), free(dq);
    st_cae_free(m);
}

static void test_matches_pytorch(void)
{
    const char *dir = getenv("STRATA_FIXTURES");
    char path[1024];
    snprintf(path, sizeof path, "%s/cae_torch.txt", dir ? dir : "tests/fixtures");
    FILE *fp = fopen(path, "r");
    CHECK(fp != NULL);
    if (!fp) return;
    int cases = 0;
    char word[64];
    while (fscanf(fp, "%63s", word) == 1) {
        if (word[0] == '#') {
            int ch;
            while ((ch = fgetc(fp)) != '\n' && ch != EOF) {}
            continue;
        }
        CHECK(strcmp(word, "case") == 0);
        run_torch_case(fp);
        cases++;
    }
    fclose(fp);
    CHECK(cases == 4);
}

/* Splitting the batch over threads (including an idle lane) gives the
 * single-thread results up to the gradient summation order. */
/* Three lanes run on 1, 2 or 3 threads (changed between passes, as a
 * scheduler lending cores does): bitwise the same pretraining. */
static void test_active_threads_same_bits(void)
{
    const int filters[4] = {4, 5, 6, 3};
    st_cae *m[3] = {NULL, NULL, NULL};
    st_optim *opt[3] = {NULL, NULL, NULL};
    const st_optim_config oc = st_optim_adam_defaults();
    for (int i = 0; i < 3; i++) {
        st_cae_config cfg = st_cae_config_default(8, 6, 3);
        memcpy(cfg.filters, filters, sizeof filters);
        cfg.max_batch = 5;
        cfg.threads = 3;
        st_rng r;
        st_rng_seed(&r, 4);
        CHECK_OK(st_cae_new(&cfg, &r, &m[i]));
        CHECK_OK(st_optim_new(&oc, st_cae_param_count(m[i]), &opt[i]));
    }
    if (!m[0] || !m[1] || !m[2] || !opt[0] || !opt[1] || !opt[2]) return;
    st_rng r;
    st_rng_seed(&r, 6);
    float x[5 * 144];
    for (size_t i = 0; i < 5 * st_cae_input_size(m[0]); i++) x[i] = st_rng_uniform_f32(&r);
    for (int step = 0; step < 6; step++)
        for (int i = 0; i < 3; i++) {
            /* model i switches its thread count every step; model 0 stays on 1 */
            st_cae_set_active_threads(m[i], i == 0 ? 1 : 1 + (step + i) % 3);
            double loss;
            CHECK_OK(st_cae_pretrain_step(m[i], opt[i], 5 - step % 2, x, &loss));
        }
    const size_t np = st_cae_param_count(m[0]);
    CHECK(memcmp(st_cae_params(m[0]), st_cae_params(m[1]), np * sizeof(float)) == 0);
    CHECK(memcmp(st_cae_params(m[0]), st_cae_params(m[2]), np * sizeof(float)) == 0);
    /* out-of-range counts are clamped, not an error */
    st_cae_set_active_threads(m[1], 0);
    st_cae_set_active_threads(m[2], 99);
    float z[2][15];
    CHECK_OK(st_cae_embed(m[1], 5, x, z[0]));
    CHECK_OK(st_cae_embed(m[2], 5, x, z[1]));
    CHECK(memcmp(z[0], z[1], sizeof z[0]) == 0);
    for (int i = 0; i < 3; i++) {
        st_optim_free(opt[i]);
        st_cae_free(m[i]);
    }
}

static void test_threads_agree(void)
{
    const int filters[4] = {4, 5, 6, 3};
    st_cae *m[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        st_cae_config cfg = st_cae_config_default(8, 6, 3);
        memcpy(cfg.filters, filters, sizeof filters);
        cfg.max_batch = 5;
        cfg.threads = i ? 3 : 1;
        st_rng r;
        st_rng_seed(&r, 4);
        CHECK_OK(st_cae_new(&cfg, &r, &m[i]));
    }
    if (!m[0] || !m[1]) return;
    st_rng r;
    st_rng_seed(&r, 5);
    const size_t in = st_cae_input_size(m[0]), np = st_cae_param_count(m[0]);
    float x[5 * 144], dz[15], z[2][15], xhat[2][5 * 144], dx[5 * 144];
    for (size_t i = 0; i < 5 * in; i++) x[i] = st_rng_uniform_f32(&r), dx[i] = (float)st_rng_normal(&r);
    for (int i = 0; i < 15; i++) dz[i] = (float)st_rng_normal(&r);
    for (int batch = 5; batch >= 2; batch -= 3) {
        float *g[2];
        for (int i = 0; i < 2; i++) {
            CHECK_OK(st_cae_encode(m[i], batch, x, z[i]));
            CHECK_OK(st_cae_decode(m[i], batch, z[i], xhat[i]));
            CHECK_OK(st_cae_backward(m[i], dx, dz));
            g[i] = st_cae_grads(m[i]);
        }
        for (int i = 0; i < batch * 3; i++) CHECK_CLOSE(z[1][i], z[0][i], 1e-5, 1e-6);
        for (size_t i = 0; i < batch * in; i++) CHECK_CLOSE(xhat[1][i], xhat[0][i], 1e-5, 1e-6);
        double scale = 0;
        for (size_t i = 0; i < np; i++) scale = fmax(scale, fabs(g[0][i]));
        int bad = 0;
        for (size_t i = 0; i < np; i++) bad += !(fabs(g[1][i] - g[0][i]) <= 1e-5 * scale);
        CHECK(bad == 0);
    }
    /* Inference embeddings: the bits of an encode, with either lane count;
     * a backward then needs a new encode. */
    for (int i = 0; i < 2; i++) {
        float ze[15];
        CHECK_OK(st_cae_encode(m[i], 5, x, z[i]));
        CHECK_OK(st_cae_embed(m[i], 5, x, ze));
        CHECK(memcmp(ze, z[i], sizeof ze) == 0);
        CHECK_FAILS(st_cae_backward(m[i], NULL, dz), ST_ESTATE, "no encode");
    }
    /* The pretraining step: same loss and the same parameters after it. */
    st_optim_config oc = st_optim_adam_defaults();
    st_optim *o[2] = {NULL, NULL};
    double loss[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        CHECK_OK(st_optim_new(&oc, np, &o[i]));
        CHECK_OK(st_cae_pretrain_step(m[i], o[i], 4, x, &loss[i]));
    }
    CHECK_CLOSE(loss[1], loss[0], 1e-6, 0);
    for (size_t i = 0; i < np; i++) CHECK_CLOSE(st_cae_params(m[1])[i], st_cae_params(m[0])[i], 1e-4, 1e-6);
    for (int i = 0; i < 2; i++) st_optim_free(o[i]), st_cae_free(m[i]);
}

/* ---- pretraining step and errors ---- */
static void test_pretrain_step_learns(void)
{
    const int filters[4] = {4, 4, 4, 3};
    st_cae *m = make(8, 8, 2, filters, false, 4, 9);
    st_optim_config oc = st_optim_adam_defaults();
    st_optim *o = NULL;
    CHECK_OK(st_optim_new(&oc, st_cae_param_count(m), &o));
    st_rng r;
    st_rng_seed(&r, 10);
    float x[4 * 128];
    for (int i = 0; i < 4 * 128; i++) x[i] = st_rng_uniform_f32(&r);
    double first = 0, last = 0;
    for (int s = 0; s < 60; s++) CHECK_OK(st_cae_pretrain_step(m, o, 4, x, s ? &last : &first));
    CHECK(last < 0.5 * first);
    CHECK(st_optim_steps(o) == 60);
    st_optim_free(o);
    st_cae_free(m);
}

/* The step is the public passes in sequence: encode, decode, MSE,
 * backward, Adam (one lane: the same bits), with its input read in place
 * and overwritten afterwards; a backward then needs a new encode. */
static void test_pretrain_step_is_the_passes(void)
{
    const int filters[4] = {16, 16, 16, 3};
    st_cae *m[2] = {make(12, 12, 6, filters, false, 3, 12), make(12, 12, 6, filters, false, 3, 12)};
    const size_t in = st_cae_input_size(m[0]), np = st_cae_param_count(m[0]);
    st_optim_config oc = st_optim_adam_defaults();
    st_optim *o[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) CHECK_OK(st_optim_new(&oc, np, &o[i]));
    st_rng r;
    st_rng_seed(&r, 13);
    float *x = malloc(3 * in * sizeof *x), *xhat = malloc(3 * in * sizeof *xhat), *dx = malloc(3 * in * sizeof *dx);
    float z[9];
    for (int s = 0; s < 3; s++) {
        for (size_t i = 0; i < 3 * in; i++) x[i] = st_rng_uniform_f32(&r);
        double loss = 0;
        CHECK_OK(st_cae_pretrain_step(m[0], o[0], 3, x, &loss));
        CHECK_OK(st_cae_encode(m[1], 3, x, z));
        CHECK_OK(st_cae_decode(m[1], 3, z, xhat));
        const double mse = st_loss_mse(3 * in, xhat, x, 1.0f, dx);
        CHECK_OK(st_cae_backward(m[1], dx, NULL));
        st_param_block b = st_cae_param_block(m[1]);
        CHECK_OK(st_optim_step(o[1], 1, &b));
        CHECK_CLOSE(loss, mse, 1e-12, 1e-12);
        for (size_t i = 0; i < 3 * in; i++) x[i] = -1.0f; /* the caller reuses its buffer */
    }
    CHECK(memcmp(st_cae_params(m[0]), st_cae_params(m[1]), np * sizeof(float)) == 0);
    CHECK_FAILS(st_cae_backward(m[0], dx, NULL), ST_ESTATE, "no encode");
    free(x), free(xhat), free(dx);
    for (int i = 0; i < 2; i++) st_optim_free(o[i]), st_cae_free(m[i]);
}

static void test_errors(void)
{
    st_rng r;
    st_rng_seed(&r, 1);
    st_cae *m = NULL;
    st_cae_config cfg = st_cae_config_default(0, 8, 3);
    CHECK_FAILS(st_cae_new(&cfg, &r, &m), ST_EINVAL, "input shape (0, 8, 3)");
    cfg = st_cae_config_default(8, 8, 3);
    cfg.filters[3] = 0;
    CHECK_FAILS(st_cae_new(&cfg, &r, &m), ST_EINVAL, "filters");
    cfg = st_cae_config_default(8, 8, 3);
    cfg.max_batch = 0;
    CHECK_FAILS(st_cae_new(&cfg, &r, &m), ST_EINVAL, "max_batch");
    cfg = st_cae_config_default(8, 8, 3);
    cfg.threads = 0;
    CHECK_FAILS(st_cae_new(&cfg, &r, &m), ST_EINVAL, "threads 0");
    CHECK(m == NULL);
    const int filters[4] = {2, 2, 2, 2};
    m = make(8, 8, 1, filters, false, 2, 1);
    float x[3 * 64] = {0}, z[6], xhat[3 * 64], dx[2 * 64] = {0};
    CHECK_FAILS(st_cae_backward(m, dx, NULL), ST_ESTATE, "no encode");
    CHECK_FAILS(st_cae_encode(m, 3, x, z), ST_ESHAPE, "batch 3 outside 1..2");
    CHECK_FAILS(st_cae_decode(m, 0, z, xhat), ST_ESHAPE, "batch 0");
    CHECK_OK(st_cae_encode(m, 2, x, z));
    CHECK_FAILS(st_cae_backward(m, dx, NULL), ST_ESTATE, "last decode had batch 0");
    CHECK_FAILS(st_cae_backward(m, NULL, NULL), ST_EINVAL, "neither");
    CHECK_OK(st_cae_backward(m, NULL, z)); /* a clustering-only gradient */
    for (int t = 8; t < 16; t++) CHECK(st_f32(st_cae_grad_tensor(m, t))[0] == 0.0f);
    CHECK_OK(st_cae_decode(m, 1, z, xhat));
    CHECK_FAILS(st_cae_backward(m, dx, NULL), ST_ESTATE, "last decode had batch 1, the last encode 2");
    st_optim_config oc = st_optim_adam_defaults();
    st_optim *o = NULL;
    CHECK_OK(st_optim_new(&oc, 10, &o));
    CHECK_FAILS(st_cae_pretrain_step(m, o, 2, x, NULL), ST_ESHAPE, "optimiser holds 10");
    st_optim_free(o);
    st_cae_free(m);
    st_cae_free(NULL);
}

int main(void)
{
    RUN(test_param_counts_match_method_table);
    RUN(test_init_is_keras_like_and_seeded);
    RUN(test_shapes_and_sphere);
    RUN(test_whole_model_finite_differences);
    RUN(test_matches_pytorch);
    RUN(test_threads_agree);
    RUN(test_active_threads_same_bits);
    RUN(test_pretrain_step_learns);
    RUN(test_pretrain_step_is_the_passes);
    RUN(test_errors);
    return TEST_SUMMARY();
}
