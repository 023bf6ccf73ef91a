/* Layer kernels against naive loops, hand-worked values and central finite
 * differences. */
#include <stdlib.h>
#include "strata/layers.h"
#include "strata/rng.h"
#include "testing.h"

static float *rand_buf(st_rng *r, size_t n, double lo, double hi)
{
    float *b = malloc((n ? n : 1) * sizeof *b);
    for (size_t i = 0; i < n; i++) b[i] = (float)(lo + (hi - lo) * st_rng_uniform(r));
    return b;
}

static double dot(size_t n, const float *a, const float *b)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* A layer as a function of one float array (the others fixed), returning
 * L = <f(...), dy>: used for finite differences. */
typedef double (*loss_fn)(void *ctx);

/* Central differences of loss over `count` random entries of arr, against
 * grad; step h relative to the entry. */
static void fd_check(loss_fn loss, void *ctx, float *arr, const float *grad, size_t n, st_rng *r, double h,
                     double tol)
{
    for (int t = 0; t < 6; t++) {
        size_t i = (size_t)st_rng_below(r, n);
        float keep = arr[i];
        arr[i] = (float)(keep + h);
        double lp = loss(ctx);
        double hp = (double)arr[i] - keep;
        arr[i] = (float)(keep - h);
        double lm = loss(ctx);
        double hm = keep - (double)arr[i];
        arr[i] = keep;
        CHECK_CLOSE(grad[i], (lp - lm) / (hp + hm), tol, tol);
    }
}

/* ---- dense ---- */
typedef struct {
    int b, in, out;
    float *x, *w, *bias, *dy, *y;
} dense_ctx;
static double dense_loss(void *c)
{
    dense_ctx *d = c;
    st_dense_forward(d->b, d->in, d->out, d->x, d->w, d->bias, d->y);
    return dot((size_t)d->b * d->out, d->y, d->dy);
}

static void test_dense(void)
{
    st_rng r;
    st_rng_seed(&r, 21);
    dense_ctx d = {3, 5, 4, NULL, NULL, NULL, NULL, NULL};
    d.x = rand_buf(&r, 15, -1, 1), d.w = rand_buf(&r, 20, -1, 1), d.bias = rand_buf(&r, 4, -1, 1);
    d.dy = rand_buf(&r, 12, -1, 1), d.y = malloc(12 * sizeof(float));
    st_dense_forward(3, 5, 4, d.x, d.w, d.bias, d.y);
    for (int n = 0; n < 3; n++)
        for (int o = 0; o < 4; o++) {
            double s = d.bias[o];
            for (int i = 0; i < 5; i++) s += (double)d.x[n * 5 + i] * d.w[i * 4 + o];
            CHECK_CLOSE(d.y[n * 4 + o], s, 1e-6, 1e-6);
        }
    float dx[15], dw[20], db[4];
    st_dense_backward(3, 5, 4, d.x, d.w, d.dy, dx, dw, db);
    fd_check(dense_loss, &d, d.x, dx, 15, &r, 1e-2, 1e-3);
    fd_check(dense_loss, &d, d.w, dw, 20, &r, 1e-2, 1e-3);
    fd_check(dense_loss, &d, d.bias, db, 4, &r, 1e-2, 1e-3);
    float dw2[20];
    st_dense_backward(3, 5, 4, d.x, d.w, d.dy, NULL, dw2, NULL);
    CHECK(memcmp(dw, dw2, sizeof dw) == 0);
    free(d.x), free(d.w), free(d.bias), free(d.dy), free(d.y);
    /* The bias gradient over 19 outputs (8-wide blocks and a tail) is the
     * column sum of dy, rows added in order: a naive float loop's bits. */
    enum { B = 5, OUT = 19 };
    float *g = rand_buf(&r, B * OUT, -1, 1), gb[OUT], want[OUT] = {0};
    st_dense_backward(B, 0, OUT, NULL, NULL, g, NULL, NULL, gb);
    for (int n = 0; n < B; n++)
        for (int o = 0; o < OUT; o++) want[o] += g[n * OUT + o];
    CHECK(memcmp(gb, want, sizeof want) == 0);
    free(g);
}

static void test_relu(void)
{
    float x[5] = {-2, -0.0f, 0.5f, 3, -1e-30f}, y[5], dy[5] = {1, 2, 3, 4, 5}, dx[5];
    st_relu_forward(5, x, y);
    const float want[5] = {0, 0, 0.5f, 3, 0};
    for (int i = 0; i < 5; i++) CHECK(y[i] == want[i]);
    st_relu_backward(5, y, dy, dx);
    const float wantd[5] = {0, 0, 3, 4, 0};
    for (int i = 0; i < 5; i++) CHECK(dx[i] == wantd[i]);
    st_relu_forward(5, x, x); /* in place */
    for (int i = 0; i < 5; i++) CHECK(x[i] == want[i]);
    /* 8-wide blocks and a tail: the bits of the comparisons, with NaN,
     * -0 and infinities mapped as x > 0 maps them. */
    enum { N = 27 };
    float u[N], uy[N], ud[N], udx[N], ref[N], refd[N];
    for (int i = 0; i < N; i++) {
        u[i] = (float)(i % 5) - 2.0f + 0.25f * (float)i;
        ud[i] = (float)i + 0.5f;
    }
    u[3] = NAN, u[9] = -0.0f, u[12] = INFINITY, u[17] = -INFINITY, u[25] = NAN, u[26] = 1e-40f;
    for (int i = 0; i < N; i++) {
        ref[i] = u[i] > 0.0f ? u[i] : 0.0f;
        refd[i] = u[i] > 0.0f ? ud[i] : 0.0f;
    }
    st_relu_forward(N, u, uy);
    st_relu_backward(N, u, ud, udx);
    CHECK(memcmp(uy, ref, sizeof ref) == 0);
    CHECK(memcmp(udx, refd, sizeof refd) == 0);
}

/* ---- pad / crop ---- */
static void test_pad_crop(void)
{
    /* 1 image 2x2x1 padded by (top 0, bottom 1, left 1, right 2) -> 3x5. */
    const float x[4] = {1, 2, 3, 4};
    float y[15];
    st_padding2d p = {0, 1, 1, 2};
    st_pad2d(1, 2, 2, 1, p, x, y);
    const float want[15] = {0, 1, 2, 0, 0, 0, 3, 4, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 15; i++) CHECK(y[i] == want[i]);
    float back[4];
    st_crop2d(1, 2, 2, 1, p, y, back);
    for (int i = 0; i < 4; i++) CHECK(back[i] == x[i]);
    /* Adjoint: <pad(a), b> == <a, crop(b)> for a random multi-channel batch. */
    st_rng r;
    st_rng_seed(&r, 22);
    st_padding2d q = {2, 1, 0, 3};
    float *a = rand_buf(&r, 2 * 3 * 4 * 5, -1, 1), *b = rand_buf(&r, 2 * 6 * 7 * 5, -1, 1);
    float *pa = malloc(2 * 6 * 7 * 5 * sizeof *pa), *cb = malloc(2 * 3 * 4 * 5 * sizeof *cb);
    st_pad2d(2, 3, 4, 5, q, a, pa);
    st_crop2d(2, 3, 4, 5, q, b, cb);
    CHECK_CLOSE(dot(2 * 6 * 7 * 5, pa, b), dot(2 * 3 * 4 * 5, a, cb), 1e-9, 1e-9);
    free(a), free(b), free(pa), free(cb);
}

/* ---- hypersphere normalisation ---- */
typedef struct {
    int b, d;
    float r;
    float *u, *dz, *z;
} norm_ctx;
static double norm_loss(void *c)
{
    norm_ctx *n = c;
    st_l2norm_forward(n->b, n->d, n->r, n->u, n->z);
    return dot((size_t)n->b * n->d, n->z, n->dz);
}

static void test_l2norm(void)
{
    const float u[4] = {3, 4, 0, 0}; /* second row is all zero: clamped */
    float z[4];
    st_l2norm_forward(2, 2, 8.0f, u, z);
    CHECK_CLOSE(z[0], 8.0 * 3 / 5, 1e-6, 0);
    CHECK_CLOSE(z[1], 8.0 * 4 / 5, 1e-6, 0);
    CHECK(z[2] == 0 && z[3] == 0);
    /* Backward of the clamped row: a constant divisor sqrt(1e-12). */
    const float dz[4] = {1, 1, 1e-6f, -2e-6f};
    float du[4];
    st_l2norm_backward(2, 2, 8.0f, u, dz, du);
    CHECK_CLOSE(du[2], 8.0 * 1e-6 / 1e-6, 1e-5, 0);
    CHECK_CLOSE(du[3], -8.0 * 2e-6 / 1e-6, 1e-5, 0);
    /* Hand-worked: u = (3, 4), g = (1, 1): u^ = (.6, .8), g.u^ = 1.4,
     * du = (8/5) ((1, 1) - 1.4 (.6, .8)) = (1.6 * 0.16, 1.6 * -0.12). */
    CHECK_CLOSE(du[0], 0.256, 1e-5, 1e-7);
    CHECK_CLOSE(du[1], -0.192, 1e-5, 1e-7);

    st_rng r;
    st_rng_seed(&r, 23);
    norm_ctx n = {4, 20, 8.0f, NULL, NULL, NULL};
    n.u = rand_buf(&r, 80, -1, 1), n.dz = rand_buf(&r, 80, -1, 1), n.z = malloc(80 * sizeof(float));
    st_l2norm_forward(4, 20, 8.0f, n.u, n.z);
    for (int i = 0; i < 4; i++) CHECK_CLOSE(sqrt(dot(20, n.z + i * 20, n.z + i * 20)), 8.0, 1e-6, 0);
    float *g = malloc(80 * sizeof *g);
    st_l2norm_backward(4, 20, 8.0f, n.u, n.dz, g);
    fd_check(norm_loss, &n, n.u, g, 80, &r, 1e-3, 2e-3);
    free(n.u), free(n.dz), free(n.z), free(g);
}

/* ---- Student-t ---- */
static void test_student_t_hand_worked(void)
{
    /* alpha = 1, d = 1, z = 0, mu = (0, 1): a = (1, 2), k = (1, 1/2),
     * q = (2/3, 1/3). */
    const float z[1] = {0}, mu[2] = {0, 1};
    float q[2];
    st_student_t_forward(1, 2, 1, 1.0f, z, mu, q);
    CHECK_CLOSE(q[0], 2.0 / 3, 1e-6, 0);
    CHECK_CLOSE(q[1], 1.0 / 3, 1e-6, 0);
    /* alpha = 100 in 2-d, against the direct pow formula in double. */
    const float z2[4] = {8, 0, 0, -8}, mu2[6] = {7, 1, -3, -5, 0, 2};
    float q2[6];
    st_student_t_forward(2, 3, 2, 100.0f, z2, mu2, q2);
    for (int i = 0; i < 2; i++) {
        double k[3], s = 0;
        for (int j = 0; j < 3; j++) {
            double dx = z2[2 * i] - mu2[2 * j], dy = z2[2 * i + 1] - mu2[2 * j + 1];
            s += k[j] = pow(1.0 + (dx * dx + dy * dy) / 100.0, -50.5);
        }
        for (int j = 0; j < 3; j++) CHECK_CLOSE(q2[3 * i + j], k[j] / s, 1e-5, 1e-9);
    }
}

static void test_student_t_never_underflows(void)
{
    /* Distances of 1000 and 1010: a^-50.5 is ~1e-202 (0 in float, and far
     * below double's normal range once squared), yet q is well defined:
     * q0/q1 = (a0/a1)^-50.5. */
    const float z[1] = {0}, mu[2] = {1000, 1010};
    float q[2];
    st_student_t_forward(1, 2, 1, 100.0f, z, mu, q);
    double a0 = 1 + 1e6 / 100, a1 = 1 + 1010.0 * 1010 / 100, ratio = exp(-50.5 * (log(a0) - log(a1)));
    CHECK(isfinite(q[0]) && isfinite(q[1]));
    CHECK_CLOSE(q[0] + q[1], 1.0, 1e-6, 0);
    CHECK_CLOSE(q[0], ratio / (1 + ratio), 1e-5, 0);
}

typedef struct {
    int b, k, d;
    float alpha;
    float *z, *mu, *g, *q;
} st_ctx;
static double student_loss(void *c)
{
    st_ctx *s = c;
    st_student_t_forward(s->b, s->k, s->d, s->alpha, s->z, s->mu, s->q);
    return dot((size_t)s->b * s->k, s->q, s->g);
}

static void test_student_t_backward(void)
{
    st_rng r;
    st_rng_seed(&r, 24);
    /* alpha = 1 keeps q soft so that finite differences see a large
     * signal; alpha = 100 (the reference) is checked analytically below. */
    st_ctx s = {5, 4, 3, 1.0f, NULL, NULL, NULL, NULL};
    s.z = rand_buf(&r, 15, -2, 2), s.mu = rand_buf(&r, 12, -2, 2), s.g = rand_buf(&r, 20, -1, 1);
    s.q = malloc(20 * sizeof(float));
    float dz[15], dmu[12];
    st_student_t_forward(5, 4, 3, 1.0f, s.z, s.mu, s.q);
    st_student_t_backward(5, 4, 3, 1.0f, s.z, s.mu, s.q, s.g, dz, dmu);
    fd_check(student_loss, &s, s.z, dz, 15, &r, 1e-2, 2e-3);
    fd_check(student_loss, &s, s.mu, dmu, 12, &r, 1e-2, 2e-3);
    free(s.z), free(s.mu), free(s.g), free(s.q);
}

/* With dL/dq = -w p / (q B) (the unclipped KL gradient), the chain gives
 * METHOD c.4's closed form (w/B)((a+1)/a) sum_j (p - q)(z - mu)/a_ij. */
static void test_student_t_matches_kl_closed_form(void)
{
    st_rng r;
    st_rng_seed(&r, 25);
    enum { B = 4, K = 3, D = 5 };
    const float alpha = 100.0f, w = 0.1f;
    float z[B * D], mu[K * D], q[B * K], p[B * K], g[B * K], dz[B * D], dmu[K * D];
    for (int i = 0; i < B * D; i++) z[i] = (float)(4 * st_rng_normal(&r));
    for (int i = 0; i < K * D; i++) mu[i] = (float)(4 * st_rng_normal(&r));
    st_student_t_forward(B, K, D, alpha, z, mu, q);
    for (int i = 0; i < B; i++) { /* some p rows summing to 1 */
        double s = 0;
        for (int j = 0; j < K; j++) s += p[i * K + j] = (float)(0.1 + st_rng_uniform(&r));
        for (int j = 0; j < K; j++) p[i * K + j] = (float)(p[i * K + j] / s);
    }
    for (int i = 0; i < B * K; i++) g[i] = -w * p[i] / (q[i] * B);
    st_student_t_backward(B, K, D, alpha, z, mu, q, g, dz, dmu);
    double wantmu[K * D] = {0};
    for (int i = 0; i < B; i++)
        for (int t = 0; t < D; t++) {
            double want = 0;
            for (int j = 0; j < K; j++) {
                double d2 = 0;
                for (int u = 0; u < D; u++) d2 += pow((double)z[i * D + u] - mu[j * D + u], 2);
                double a = 1 + d2 / alpha;
                double term = (w / B) * ((alpha + 1.0) / alpha) * (p[i * K + j] - q[i * K + j]) *
                              ((double)z[i * D + t] - mu[j * D + t]) / a;
                want += term;
                wantmu[j * D + t] -= term;
            }
            CHECK_CLOSE(dz[i * D + t], want, 1e-4, 1e-7);
        }
    for (int i = 0; i < K * D; i++) CHECK_CLOSE(dmu[i], wantmu[i], 1e-4, 1e-7);
}

/* ---- target distribution ---- */
static void test_target_distribution(void)
{
    /* q = [[.5, .5], [.9, .1]]: f = (1.4, .6); row 0: q^2/f = (.25/1.4,
     * .25/.6) -> p = (.3, .7); row 1: (.81/1.4, .01/.6) -> p = (.972, .028). */
    const float q[4] = {0.5f, 0.5f, 0.9f, 0.1f};
    float p[4];
    CHECK_OK(st_target_distribution(2, 2, q, p));
    CHECK_CLOSE(p[0], 0.3, 1e-6, 0);
    CHECK_CLOSE(p[1], 0.7, 1e-6, 0);
    CHECK_CLOSE(p[2], 0.972, 1e-6, 0);
    CHECK_CLOSE(p[3], 0.028, 1e-5, 0);
    /* A column that underflowed to zero everywhere contributes 0. */
    const float q0[4] = {1, 0, 1, 0};
    CHECK_OK(st_target_distribution(2, 2, q0, p));
    CHECK(p[0] == 1 && p[1] == 0 && p[2] == 1 && p[3] == 0);
    CHECK_FAILS(st_target_distribution(0, 2, q, p), ST_EINVAL, "0 rows");
    const float bad[2] = {0.5f, NAN};
    CHECK_FAILS(st_target_distribution(1, 2, bad, p), ST_ENUMERIC, "q[0,1]");
    const float zero[2] = {0, 0};
    CHECK_FAILS(st_target_distribution(1, 2, zero, p), ST_ENUMERIC, "row 0");
}

int main(void)
{
    RUN(test_dense);
    RUN(test_relu);
    RUN(test_pad_crop);
    RUN(test_l2norm);
    RUN(test_student_t_hand_worked);
    RUN(test_student_t_never_underflows);
    RUN(test_student_t_backward);
    RUN(test_student_t_matches_kl_closed_form);
    RUN(test_target_distribution);
    return TEST_SUMMARY();
}
