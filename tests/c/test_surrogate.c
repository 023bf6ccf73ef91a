/* Surrogate: posteriors and predictions against hand-worked values and a
 * naive reference (which divides by the number of layers, as the paper's
 * code does), the empty-cluster fallback and its report, errors. */
#include <stdlib.h>
#include "strata/metrics.h"
#include "strata/rng.h"
#include "strata/surrogate.h"
#include "testing.h"

static st_tensor *ids(int64_t n, const int64_t *v)
{
    st_tensor *t = NULL;
    CHECK_OK(st_tensor_from_data(ST_I64, 1, &n, v, (size_t)n * sizeof *v, &t));
    return t;
}

static st_tensor *matrix(int64_t rows, int64_t cols, const float *v)
{
    st_tensor *t = NULL;
    CHECK_OK(st_tensor_from_data(ST_F32, 2, (int64_t[]){rows, cols}, v, (size_t)(rows * cols) * sizeof *v, &t));
    return t;
}

static double at2(const st_tensor *t, int64_t i, int64_t j) { return st_tensor_get_flat(t, i * t->shape[1] + j); }

/* The tiny example of docs/metrics.md: 6 examples, 3 classes, layer 0
 * with 2 clusters, layer 1 with 3. */
static const int64_t Y[6] = {0, 0, 1, 2, 2, 1};
static const int64_t C0[6] = {0, 0, 0, 1, 1, 1};
static const int64_t C1[6] = {0, 1, 1, 2, 2, 2};

static st_surrogate *tiny(void)
{
    st_tensor *y = ids(6, Y), *c0 = ids(6, C0), *c1 = ids(6, C1);
    st_surrogate *s = NULL;
    CHECK_OK(st_surrogate_fit(2, (const st_tensor *[]){c0, c1}, (int64_t[]){2, 3}, y, 3, NULL, &s));
    st_tensor_free(y);
    st_tensor_free(c0);
    st_tensor_free(c1);
    return s;
}

static void test_posteriors_hand_worked(void)
{
    st_surrogate *s = tiny();
    if (!s) return;
    CHECK(st_surrogate_layer_count(s) == 2 && st_surrogate_class_count(s) == 3);
    CHECK(st_surrogate_cluster_count(s, 0) == 2 && st_surrogate_cluster_count(s, 1) == 3);
    const double H0[2][3] = {{2. / 3, 1. / 3, 0}, {0, 1. / 3, 2. / 3}};
    const double H1[3][3] = {{1, 0, 0}, {.5, .5, 0}, {0, 1. / 3, 2. / 3}};
    const st_tensor *h0 = st_surrogate_posterior(s, 0), *h1 = st_surrogate_posterior(s, 1);
    for (int y = 0; y < 3; y++) {
        for (int j = 0; j < 2; j++) CHECK_CLOSE(at2(h0, j, y), H0[j][y], 0, 1e-15);
        for (int j = 0; j < 3; j++) CHECK_CLOSE(at2(h1, j, y), H1[j][y], 0, 1e-15);
        CHECK_CLOSE(st_tensor_get_flat(st_surrogate_prior(s, 0), y), 2. / 6, 0, 1e-15);
    }
    CHECK(at2(st_surrogate_counts(s, 1), 2, 2) == 2);
    size_t n_issues = 99;
    st_surrogate_issues(s, &n_issues);
    CHECK(n_issues == 0);
    CHECK(st_surrogate_posterior(s, 2) == NULL);
    st_surrogate_free(s);
}

static void test_predict_hand_worked(void)
{
    st_surrogate *s = tiny();
    if (!s) return;
    /* example 0: hard in cluster 0 of layer 0, cluster 2 of layer 1;
     * example 1: half/half in layer 0, cluster 1 of layer 1. */
    st_tensor *q0 = matrix(2, 2, (float[]){1, 0, .5f, .5f});
    st_tensor *q1 = matrix(2, 3, (float[]){0, 0, 1, 0, 1, 0});
    const st_tensor *q[2] = {q0, q1};
    st_tensor *p = NULL, *lab = NULL, *per = NULL;
    /* w = (1, 3): ([2/3,1/3,0] + 3 [0,1/3,2/3]) / 4 = [1/6, 1/3, 1/2] */
    CHECK_OK(st_surrogate_predict_proba(s, q, (double[]){1, 3}, &p));
    CHECK_CLOSE(at2(p, 0, 0), 1. / 6, 0, 1e-12);
    CHECK_CLOSE(at2(p, 0, 1), 1. / 3, 0, 1e-12);
    CHECK_CLOSE(at2(p, 0, 2), 1. / 2, 0, 1e-12);
    /* example 1: ([1/3,1/3,1/3] + 3 [.5,.5,0]) / 4 = [11/24, 11/24, 1/12] */
    CHECK_CLOSE(at2(p, 1, 0), 11. / 24, 0, 1e-12);
    CHECK_CLOSE(at2(p, 1, 2), 1. / 12, 0, 1e-12);
    CHECK_OK(st_surrogate_predict(s, q, (double[]){1, 3}, &lab));
    CHECK(st_tensor_get_flat(lab, 0) == 2);
    st_tensor_free(lab);
    lab = NULL;
    /* w = (3, 1): example 0 gives [1/2, 1/3, 1/6] -> class 0 */
    CHECK_OK(st_surrogate_predict(s, q, (double[]){3, 1}, &lab));
    CHECK(st_tensor_get_flat(lab, 0) == 0);
    /* each layer alone: example 0 -> 0 (layer 0), 2 (layer 1); example 1:
     * layer 0 gives an exact three-way tie -> 0; layer 1 [.5,.5,0] -> 0 */
    CHECK_OK(st_surrogate_predict_layers(s, q, &per));
    CHECK(per->shape[0] == 2 && per->shape[1] == 2);
    CHECK(at2(per, 0, 0) == 0 && at2(per, 1, 0) == 2 && at2(per, 0, 1) == 0 && at2(per, 1, 1) == 0);
    st_tensor_free(p);
    st_tensor_free(lab);
    st_tensor_free(per);
    st_tensor_free(q0);
    st_tensor_free(q1);
    st_surrogate_free(s);
}

/* Random problem: the surrogate against a naive reference that uses the
 * reference code's divisor L; probabilities differ by the factor
 * sum(w)/L, the argmax must not. */
static void test_against_reference_formula(void)
{
    enum { N = 300, L = 3, C = 5 };
    const int64_t K[L] = {4, 6, 5};
    st_rng rng;
    st_rng_seed(&rng, 7);
    int64_t y[N], c[L][N];
    float *qv[L];
    st_tensor *ct[L], *qt[L], *yt;
    for (int i = 0; i < N; i++) y[i] = (int64_t)st_rng_below(&rng, C);
    for (int l = 0; l < L; l++) {
        qv[l] = malloc(sizeof(float) * N * (size_t)K[l]);
        for (int i = 0; i < N; i++) {
            double sum = 0;
            for (int j = 0; j < K[l]; j++) sum += qv[l][i * K[l] + j] = (float)exp(3 * st_rng_normal(&rng));
            for (int j = 0; j < K[l]; j++) qv[l][i * K[l] + j] = (float)(qv[l][i * K[l] + j] / sum);
            /* hard label = argmax q, as the method does */
            int best = 0;
            for (int j = 1; j < K[l]; j++)
                if (qv[l][i * K[l] + j] > qv[l][i * K[l] + best]) best = j;
            c[l][i] = best;
        }
        ct[l] = ids(N, c[l]);
        qt[l] = matrix(N, K[l], qv[l]);
    }
    yt = ids(N, y);
    st_surrogate *s = NULL;
    CHECK_OK(st_surrogate_fit(L, (const st_tensor *const *)ct, K, yt, C, NULL, &s));
    const double w[L] = {2, 0.5, 1};
    double wsum = 3.5;
    st_tensor *p = NULL, *lab = NULL, *per = NULL;
    CHECK_OK(st_surrogate_predict_proba(s, (const st_tensor *const *)qt, w, &p));
    CHECK_OK(st_surrogate_predict(s, (const st_tensor *const *)qt, w, &lab));
    CHECK_OK(st_surrogate_predict_layers(s, (const st_tensor *const *)qt, &per));
    int argmax_mismatch = 0, layer_mismatch = 0;
    double max_err = 0, max_rowsum_err = 0;
    for (int i = 0; i < N; i++) {
        double ref[C] = {0}, rowsum = 0;
        for (int l = 0; l < L; l++) {
            /* naive posterior of every cluster from the raw labels */
            double layer[C] = {0};
            for (int j = 0; j < K[l]; j++) {
                double cnt[C] = {0}, size = 0;
                for (int m = 0; m < N; m++)
                    if (c[l][m] == j) cnt[y[m]]++, size++;
                for (int k = 0; k < C; k++) layer[k] += qv[l][i * K[l] + j] * (size ? cnt[k] / size : 0);
            }
            int lb = 0;
            for (int k = 0; k < C; k++) {
                ref[k] += w[l] * layer[k] / L; /* the reference: divide by L */
                if (layer[k] > layer[lb]) lb = k;
            }
            layer_mismatch += at2(per, l, i) != lb;
        }
        int best = 0;
        for (int k = 0; k < C; k++) {
            double ours = at2(p, i, k);
            rowsum += ours;
            double e = fabs(ours - ref[k] * L / wsum);
            if (e > max_err) max_err = e;
            if (ref[k] > ref[best]) best = k;
        }
        if (fabs(rowsum - 1) > max_rowsum_err) max_rowsum_err = fabs(rowsum - 1);
        argmax_mismatch += st_tensor_get_flat(lab, i) != best;
    }
    CHECK(max_err < 1e-6); /* q is f32 in both; H from counts in both */
    CHECK(max_rowsum_err < 1e-6);
    CHECK(argmax_mismatch == 0);
    CHECK(layer_mismatch == 0);

    /* scaling every weight changes nothing */
    st_tensor *p2 = NULL;
    CHECK_OK(st_surrogate_predict_proba(s, (const st_tensor *const *)qt, (double[]){20, 5, 10}, &p2));
    double d = 0;
    for (int64_t i = 0; i < N * C; i++) d = fmax(d, fabs(st_tensor_get_flat(p, i) - st_tensor_get_flat(p2, i)));
    CHECK(d < 1e-12);

    /* restoring from the counts gives the same predictions, bitwise */
    st_surrogate *r = NULL;
    const st_tensor *counts[L] = {st_surrogate_counts(s, 0), st_surrogate_counts(s, 1), st_surrogate_counts(s, 2)};
    CHECK_OK(st_surrogate_new(L, counts, NULL, &r));
    st_tensor *p3 = NULL;
    if (r) CHECK_OK(st_surrogate_predict_proba(r, (const st_tensor *const *)qt, w, &p3));
    if (p3) CHECK(memcmp(p3->data, p->data, st_tensor_nbytes(p)) == 0);

    st_tensor_free(p);
    st_tensor_free(p2);
    st_tensor_free(p3);
    st_tensor_free(lab);
    st_tensor_free(per);
    st_surrogate_free(s);
    st_surrogate_free(r);
    for (int l = 0; l < L; l++) {
        free(qv[l]);
        st_tensor_free(ct[l]);
        st_tensor_free(qt[l]);
    }
    st_tensor_free(yt);
}

static void test_empty_cluster_fallback(void)
{
    /* layer 1 never uses cluster 1 of 3 */
    const int64_t y[5] = {0, 1, 1, 2, 2}, a[5] = {0, 0, 1, 1, 1}, b[5] = {0, 0, 2, 2, 2};
    st_tensor *yt = ids(5, y), *at = ids(5, a), *bt = ids(5, b);
    st_surrogate *s = NULL;
    CHECK_OK(st_surrogate_fit(2, (const st_tensor *[]){at, bt}, (int64_t[]){2, 3}, yt, 3, NULL, &s));
    if (!s) return;
    size_t n = 0;
    const st_cluster_issue *is = st_surrogate_issues(s, &n);
    CHECK(n == 1);
    if (n == 1) {
        CHECK(is[0].kind == ST_CLUSTER_EMPTY && is[0].layer == 1 && is[0].cluster == 1 && is[0].size == 0);
        char buf[256];
        st_cluster_issue_str(&is[0], buf, sizeof buf);
        CHECK(strstr(buf, "layer 1, cluster 1: empty") != NULL);
    }
    /* the empty row is the overall distribution [1/5, 2/5, 2/5] */
    const st_tensor *h = st_surrogate_posterior(s, 1);
    CHECK_CLOSE(at2(h, 1, 0), .2, 0, 1e-15);
    CHECK_CLOSE(at2(h, 1, 1), .4, 0, 1e-15);
    CHECK_CLOSE(at2(h, 1, 2), .4, 0, 1e-15);
    /* soft assignments put weight on the empty cluster: no NaN anywhere,
     * and a mass only there predicts the majority of the prior (tie 1/2 -> 1) */
    st_tensor *q0 = matrix(2, 2, (float[]){.5f, .5f, 0, 1});
    st_tensor *q1 = matrix(2, 3, (float[]){.2f, .6f, .2f, 0, 1, 0});
    st_tensor *p = NULL, *per = NULL;
    CHECK_OK(st_surrogate_predict_proba(s, (const st_tensor *[]){q0, q1}, NULL, &p));
    for (int64_t i = 0; p && i < 6; i++) CHECK(isfinite(st_tensor_get_flat(p, i)));
    CHECK_OK(st_surrogate_predict_layers(s, (const st_tensor *[]){q0, q1}, &per));
    if (per) CHECK(at2(per, 1, 1) == 1);
    st_tensor_free(p);
    st_tensor_free(per);
    st_tensor_free(q0);
    st_tensor_free(q1);
    st_surrogate_free(s);

    /* min_cluster_size 3: layer 0 cluster 0 (2 examples) is small; layer 1
     * cluster 0 (2) small and cluster 1 empty */
    st_surrogate_options o = st_surrogate_defaults();
    o.min_cluster_size = 3;
    CHECK_OK(st_surrogate_fit(2, (const st_tensor *[]){at, bt}, (int64_t[]){2, 3}, yt, 3, &o, &s));
    is = st_surrogate_issues(s, &n);
    CHECK(n == 3);
    if (n == 3) {
        CHECK(is[0].kind == ST_CLUSTER_SMALL && is[0].layer == 0 && is[0].cluster == 0 && is[0].size == 2);
        CHECK(is[1].kind == ST_CLUSTER_SMALL && is[1].layer == 1 && is[1].cluster == 0);
        CHECK(is[2].kind == ST_CLUSTER_EMPTY && is[2].layer == 1 && is[2].cluster == 1);
    }
    CHECK_CLOSE(at2(st_surrogate_posterior(s, 0), 0, 0), .2, 0, 1e-15);
    CHECK_CLOSE(at2(st_surrogate_posterior(s, 0), 1, 2), 2. / 3, 0, 1e-15);
    st_surrogate_free(s);
    s = NULL;

    /* a collapsed layer: everything in cluster 2 of 3 */
    const int64_t all2[5] = {2, 2, 2, 2, 2};
    st_tensor *ct = ids(5, all2);
    CHECK_OK(st_surrogate_fit(1, (const st_tensor *[]){ct}, (int64_t[]){3}, yt, 3, NULL, &s));
    is = st_surrogate_issues(s, &n);
    CHECK(n == 3);
    if (n == 3) CHECK(is[2].kind == ST_LAYER_COLLAPSED && is[2].cluster == 2 && is[2].size == 5);
    st_surrogate_free(s);
    st_tensor_free(ct);
    st_tensor_free(yt);
    st_tensor_free(at);
    st_tensor_free(bt);
}

static void test_errors(void)
{
    st_surrogate *s = tiny();
    if (!s) return;
    st_tensor *q0 = matrix(1, 2, (float[]){1, 0}), *q1 = matrix(1, 3, (float[]){0, 1, 0});
    st_tensor *q1bad = matrix(1, 4, (float[]){0, 1, 0, 0}), *q1n = matrix(2, 3, (float[]){0, 1, 0, 1, 0, 0});
    st_tensor *qnan = matrix(1, 2, (float[]){NAN, 0});
    st_tensor *p = NULL;
    CHECK_FAILS(st_surrogate_predict_proba(s, (const st_tensor *[]){q0, q1}, (double[]){1, -1}, &p), ST_EINVAL,
                "weight 1 is -1");
    CHECK_FAILS(st_surrogate_predict_proba(s, (const st_tensor *[]){q0, q1}, (double[]){0, 0}, &p), ST_EINVAL,
                "all 0");
    CHECK_FAILS(st_surrogate_predict_proba(s, (const st_tensor *[]){q0, q1}, (double[]){NAN, 1}, &p), ST_EINVAL,
                "weight 0 is nan");
    CHECK_FAILS(st_surrogate_predict_proba(s, (const st_tensor *[]){q0, q1bad}, NULL, &p), ST_ESHAPE,
                "layer 1 soft assignments");
    CHECK_FAILS(st_surrogate_predict(s, (const st_tensor *[]){q0, q1n}, NULL, &p), ST_ESHAPE, "layer 1");
    CHECK_FAILS(st_surrogate_predict_layers(s, (const st_tensor *[]){qnan, q1}, &p), ST_ENUMERIC, "row 0");
    CHECK(p == NULL);
    /* a wrong output tensor is refused and left alone */
    st_tensor *wrong = NULL;
    CHECK_OK(st_tensor_zeros(ST_F64, 2, (int64_t[]){1, 4}, &wrong));
    CHECK_FAILS(st_surrogate_predict_proba(s, (const st_tensor *[]){q0, q1}, NULL, &wrong), ST_ESHAPE, "output");
    st_tensor_free(wrong);
    st_surrogate_free(s);

    const int64_t y[3] = {0, 1, 5}, c[3] = {0, 1, 1}, cbad[3] = {0, 3, 1};
    st_tensor *yt = ids(3, y), *ct = ids(3, c), *cb = ids(3, cbad), *y2 = ids(2, y);
    CHECK_FAILS(st_surrogate_fit(1, (const st_tensor *[]){ct}, (int64_t[]){2}, yt, 3, NULL, &s), ST_EINVAL,
                "entry 2 is 5, outside [0, 3)");
    CHECK_FAILS(st_surrogate_fit(1, (const st_tensor *[]){cb}, (int64_t[]){2}, y2, 6, NULL, &s), ST_EINVAL,
                "entry 1 is 3, outside [0, 2)");
    CHECK_FAILS(st_surrogate_fit(1, (const st_tensor *[]){ct}, (int64_t[]){2}, y2, 6, NULL, &s), ST_ESHAPE,
                "3 entries expected, got 2");
    st_surrogate_options o = {.min_cluster_size = 0};
    CHECK_FAILS(st_surrogate_fit(1, (const st_tensor *[]){ct}, (int64_t[]){2}, yt, 6, &o, &s), ST_EINVAL,
                "min_cluster_size");
    /* counts of different totals, negative counts */
    st_tensor *k1 = NULL, *k2 = NULL;
    CHECK_OK(st_tensor_from_data(ST_I64, 2, (int64_t[]){2, 2}, (int64_t[]){1, 2, 3, 4}, 32, &k1));
    CHECK_OK(st_tensor_from_data(ST_I64, 2, (int64_t[]){1, 2}, (int64_t[]){5, 4}, 16, &k2));
    CHECK_FAILS(st_surrogate_new(2, (const st_tensor *[]){k1, k2}, NULL, &s), ST_EINVAL,
                "layer 1 counts sum to 9 examples, layer 0 counts to 10");
    st_tensor_set_flat(k1, 1, -2);
    CHECK_FAILS(st_surrogate_new(1, (const st_tensor *[]){k1}, NULL, &s), ST_EINVAL, "entry [0, 1] is -2");
    CHECK_FAILS(st_surrogate_new(0, (const st_tensor *[]){k1}, NULL, &s), ST_EINVAL, "0 layers");
    st_tensor_free(k1);
    st_tensor_free(k2);
    st_tensor_free(yt);
    st_tensor_free(ct);
    st_tensor_free(cb);
    st_tensor_free(y2);
    st_tensor_free(q0);
    st_tensor_free(q1);
    st_tensor_free(q1bad);
    st_tensor_free(q1n);
    st_tensor_free(qnan);
    st_surrogate_free(NULL);
}

int main(void)
{
    RUN(test_posteriors_hand_worked);
    RUN(test_predict_hand_worked);
    RUN(test_against_reference_formula);
    RUN(test_empty_cluster_fallback);
    RUN(test_errors);
    return TEST_SUMMARY();
}
