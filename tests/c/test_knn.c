/* Streaming weighted k-NN against a brute-force reference: the full
 * distance matrix, then a sort by (distance, index). */
#include <stdlib.h>
#include "strata/knn.h"
#include "strata/rng.h"
#include "testing.h"

#define MAXL 4

/* A [rows, cols] f32 tensor of small integers in [-r, r] (r > 0) or of
 * standard normals (r == 0). */
static st_tensor *rand_matrix(st_rng *rng, int64_t rows, int64_t cols, int r)
{
    st_tensor *t = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){rows, cols}, &t));
    float *p = st_f32(t);
    for (int64_t i = 0; i < rows * cols; i++)
        p[i] = r ? (float)((int64_t)st_rng_below(rng, (uint64_t)(2 * r + 1)) - r) : (float)st_rng_normal(rng);
    return t;
}

typedef struct cand {
    double d;
    int64_t i;
} cand;

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Brute force. exact_f32: per-layer squared distances are exact (integer
 * data), combined with the same float operations the search documents
 * (w * sqrtf, summed in layer order) so ties are reproduced bitwise;
 * otherwise everything in double. Filter as in knn.h. Fills ref[Q][k]
 * with (distance, index), padding with (inf, -1). */
static void brute_force(int L, st_tensor **qs, st_tensor **ts, const double *w, const int64_t *qlab,
                        const int64_t *tlab, int64_t k, bool exact_f32, cand *ref)
{
    int64_t Q = qs[0]->shape[0], N = ts[0]->shape[0];
    cand *all = malloc(sizeof *all * (size_t)(N ? N : 1));
    for (int64_t q = 0; q < Q; q++) {
        int64_t n = 0;
        for (int64_t i = 0; i < N; i++) {
            if (qlab && qlab[q] != tlab[i]) continue;
            float accf = 0;
            double accd = 0;
            bool first = true;
            for (int l = 0; l < L; l++) {
                double wl = w ? w[l] : 1.0;
                if (wl == 0) continue;
                int64_t D = qs[l]->shape[1];
                double s = 0;
                for (int64_t c = 0; c < D; c++) {
                    double diff = (double)st_f32(qs[l])[q * D + c] - st_f32(ts[l])[i * D + c];
                    s += diff * diff;
                }
                float term = (float)wl * sqrtf((float)s);
                accf = first ? term : accf + term;
                accd += wl * sqrt(s);
                first = false;
            }
            all[n++] = (cand){exact_f32 ? (double)accf : accd, i};
        }
        qsort(all, (size_t)n, sizeof *all, cand_cmp);
        for (int64_t j = 0; j < k; j++) ref[q * k + j] = j < n ? all[j] : (cand){INFINITY, -1};
    }
    free(all);
}

static void free_all(st_tensor **t, int n)
{
    for (int i = 0; i < n; i++) st_tensor_free(t[i]);
}

/* Runs the search and compares with the exact reference bitwise. */
static void check_exact(int L, st_tensor **qs, st_tensor **ts, st_knn_options opt, const int64_t *qlab,
                        const int64_t *tlab)
{
    int64_t Q = qs[0]->shape[0], k = opt.k;
    cand *ref = malloc(sizeof *ref * (size_t)(Q * k));
    brute_force(L, qs, ts, opt.weights, qlab, tlab, k, true, ref);
    st_tensor *ix = NULL, *ds = NULL;
    CHECK_OK(st_knn_search(L, (const st_tensor *const *)qs, (const st_tensor *const *)ts, &opt, &ix, &ds));
    if (ix && ds) {
        CHECK(ix->dtype == ST_I64 && ix->shape[0] == Q && ix->shape[1] == k);
        int bad = 0;
        for (int64_t j = 0; j < Q * k; j++) {
            int64_t got_i = ((int64_t *)ix->data)[j];
            float got_d = st_f32(ds)[j];
            if (got_i != ref[j].i || got_d != (float)ref[j].d) bad++;
        }
        CHECK(bad == 0);
    }
    st_tensor_free(ix);
    st_tensor_free(ds);
    free(ref);
}

static void test_integer_data_with_ties_is_exact(void)
{
    st_rng rng;
    st_rng_seed(&rng, 1);
    int64_t D[3] = {3, 5, 2};
    st_tensor *qs[3], *ts[3];
    for (int l = 0; l < 3; l++) {
        qs[l] = rand_matrix(&rng, 13, D[l], 2);
        ts[l] = rand_matrix(&rng, 300, D[l], 2);
    }
    double w[3] = {1.0, 0.5, 2.0};
    st_knn_options opt = st_knn_defaults(7);
    opt.weights = w;
    check_exact(3, qs, ts, opt, NULL, NULL);
    /* Blocks that split both the queries and the training rows unevenly. */
    opt.train_block = 7;
    opt.query_block = 4;
    check_exact(3, qs, ts, opt, NULL, NULL);
    /* Unit weights (NULL) and k = 1. */
    opt = st_knn_defaults(1);
    check_exact(3, qs, ts, opt, NULL, NULL);
    free_all(qs, 3);
    free_all(ts, 3);
}

static void test_duplicate_rows_tie_to_lower_index(void)
{
    /* Training rows 0..9 are all the same point: every query must list
     * them in index order. */
    st_tensor *q = NULL, *t = NULL, *ix = NULL;
    CHECK_OK(st_tensor_full(ST_F32, 2, (int64_t[]){2, 3}, 1.0, &q));
    CHECK_OK(st_tensor_full(ST_F32, 2, (int64_t[]){10, 3}, 4.0, &t));
    st_knn_options opt = st_knn_defaults(10);
    opt.train_block = 3;
    CHECK_OK(st_knn_search(1, (const st_tensor *[]){q}, (const st_tensor *[]){t}, &opt, &ix, NULL));
    for (int64_t j = 0; ix && j < 20; j++) CHECK(((int64_t *)ix->data)[j] == j % 10);
    st_tensor_free(q);
    st_tensor_free(t);
    st_tensor_free(ix);
}

static void test_zero_weight_layers_are_skipped(void)
{
    st_rng rng;
    st_rng_seed(&rng, 2);
    st_tensor *qs[3], *ts[3];
    for (int l = 0; l < 3; l++) {
        qs[l] = rand_matrix(&rng, 9, 4, 3);
        ts[l] = rand_matrix(&rng, 120, 4, 3);
    }
    /* A zero-weight layer is never read: poison it with NaN. */
    st_f32(ts[0])[5] = NAN;
    double w[3] = {0.0, 1.0, 0.0};
    st_knn_options opt = st_knn_defaults(5);
    opt.weights = w;
    check_exact(3, qs, ts, opt, NULL, NULL);
    /* ... and equals plain one-layer search of layer 1. */
    st_tensor *a = NULL, *b = NULL, *da = NULL, *db = NULL;
    CHECK_OK(st_knn_search(3, (const st_tensor *const *)qs, (const st_tensor *const *)ts, &opt, &a, &da));
    st_knn_options one = st_knn_defaults(5);
    CHECK_OK(st_knn_search(1, (const st_tensor *[]){qs[1]}, (const st_tensor *[]){ts[1]}, &one, &b, &db));
    for (int64_t j = 0; a && b && j < 45; j++) {
        CHECK(((int64_t *)a->data)[j] == ((int64_t *)b->data)[j]);
        CHECK(st_f32(da)[j] == st_f32(db)[j]);
    }
    st_tensor_free(a);
    st_tensor_free(b);
    st_tensor_free(da);
    st_tensor_free(db);
    free_all(qs, 3);
    free_all(ts, 3);
}

static void test_k_larger_than_n_pads(void)
{
    st_rng rng;
    st_rng_seed(&rng, 3);
    st_tensor *q = rand_matrix(&rng, 3, 2, 4), *t = rand_matrix(&rng, 5, 2, 4);
    st_knn_options opt = st_knn_defaults(8);
    check_exact(1, &q, &t, opt, NULL, NULL);
    st_tensor *ix = NULL, *ds = NULL;
    CHECK_OK(st_knn_search(1, (const st_tensor *[]){q}, (const st_tensor *[]){t}, &opt, &ix, &ds));
    for (int64_t r = 0; ix && r < 3; r++)
        for (int64_t j = 5; j < 8; j++) {
            CHECK(((int64_t *)ix->data)[r * 8 + j] == -1);
            CHECK(isinf(st_f32(ds)[r * 8 + j]));
        }
    st_tensor_free(ix);
    st_tensor_free(ds);
    /* No training rows at all. */
    st_tensor *empty = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){0, 2}, &empty));
    ix = NULL;
    CHECK_OK(st_knn_search(1, (const st_tensor *[]){q}, (const st_tensor *[]){empty}, &opt, &ix, NULL));
    for (int64_t j = 0; ix && j < 24; j++) CHECK(((int64_t *)ix->data)[j] == -1);
    st_tensor_free(ix);
    st_tensor_free(empty);
    st_tensor_free(q);
    st_tensor_free(t);
}

static void test_same_label_filter(void)
{
    st_rng rng;
    st_rng_seed(&rng, 4);
    st_tensor *qs[2], *ts[2];
    for (int l = 0; l < 2; l++) {
        qs[l] = rand_matrix(&rng, 11, 3 + l, 2);
        ts[l] = rand_matrix(&rng, 200, 3 + l, 2);
    }
    /* Query labels i64, training labels i32 (both accepted); label 9
     * has no training rows, so that query gets only padding. */
    st_tensor *ql = NULL, *tl = NULL;
    CHECK_OK(st_tensor_new(ST_I64, 1, (int64_t[]){11}, &ql));
    CHECK_OK(st_tensor_new(ST_I32, 1, (int64_t[]){200}, &tl));
    int64_t qlab[11], tlab[200];
    for (int i = 0; i < 11; i++) qlab[i] = ((int64_t *)ql->data)[i] = i == 10 ? 9 : (int64_t)st_rng_below(&rng, 4);
    for (int i = 0; i < 200; i++) tlab[i] = ((int32_t *)tl->data)[i] = (int32_t)st_rng_below(&rng, 4);
    double w[2] = {2.0, 1.0};
    st_knn_options opt = st_knn_defaults(6);
    opt.weights = w;
    opt.query_labels = ql;
    opt.train_labels = tl;
    opt.train_block = 33;
    check_exact(2, qs, ts, opt, qlab, tlab);
    st_tensor *ix = NULL;
    CHECK_OK(st_knn_search(2, (const st_tensor *const *)qs, (const st_tensor *const *)ts, &opt, &ix, NULL));
    for (int64_t j = 0; ix && j < 6; j++) CHECK(((int64_t *)ix->data)[10 * 6 + j] == -1);
    for (int64_t j = 0; ix && j < 60; j++) CHECK(tlab[((int64_t *)ix->data)[j]] == qlab[j / 6]);
    st_tensor_free(ix);
    st_tensor_free(ql);
    st_tensor_free(tl);
    free_all(qs, 2);
    free_all(ts, 2);
}

static void test_real_data_against_double_reference(void)
{
    st_rng rng;
    st_rng_seed(&rng, 5);
    int64_t D[4] = {20, 7, 20, 1}, Q = 40, N = 900, k = 10;
    st_tensor *qs[4], *ts[4];
    for (int l = 0; l < 4; l++) {
        qs[l] = rand_matrix(&rng, Q, D[l], 0);
        ts[l] = rand_matrix(&rng, N, D[l], 0);
    }
    double w[4] = {1.0, 0.25, 3.0, 0.5};
    st_knn_options opt = st_knn_defaults(k);
    opt.weights = w;
    opt.train_block = 256;
    cand *ref = malloc(sizeof *ref * (size_t)(Q * k));
    brute_force(4, qs, ts, w, NULL, NULL, k, false, ref);
    st_tensor *ix = NULL, *ds = NULL;
    CHECK_OK(st_knn_search(4, (const st_tensor *const *)qs, (const st_tensor *const *)ts, &opt, &ix, &ds));
    int bad_d = 0, bad_i = 0;
    for (int64_t q = 0; ix && q < Q; q++)
        for (int64_t j = 0; j < k; j++) {
            cand r = ref[q * k + j];
            if (fabs(st_f32(ds)[q * k + j] - r.d) > 1e-4 * r.d) bad_d++;
            /* Indices must agree wherever the reference has no near-tie. */
            bool gap = (j == 0 || r.d - ref[q * k + j - 1].d > 1e-3) &&
                       (j == k - 1 || ref[q * k + j + 1].d - r.d > 1e-3);
            if (gap && ((int64_t *)ix->data)[q * k + j] != r.i) bad_i++;
        }
    CHECK(bad_d == 0);
    CHECK(bad_i == 0);
    st_tensor_free(ix);
    st_tensor_free(ds);
    free(ref);
    free_all(qs, 4);
    free_all(ts, 4);
}

static void test_centroids_as_queries(void)
{
    /* Concepts: the training rows nearest each centroid. Three groups of
     * rows around 0, 100 and 200 (on the first axis); the centroids are
     * the group means, so each one's nearest rows are its own group. The
     * values are exact binary fractions, so the exact reference applies. */
    st_tensor *t = NULL, *c = NULL, *ix = NULL;
    CHECK_OK(st_tensor_zeros(ST_F32, 2, (int64_t[]){30, 2}, &t));
    CHECK_OK(st_tensor_zeros(ST_F32, 2, (int64_t[]){3, 2}, &c));
    for (int i = 0; i < 30; i++) {
        st_f32(t)[2 * i] = (float)(100 * (i % 3) + i / 3);
        st_f32(t)[2 * i + 1] = (float)(i % 5);
    }
    for (int g = 0; g < 3; g++) {
        st_f32(c)[2 * g] = 100.0f * (float)g + 4.5f;
        st_f32(c)[2 * g + 1] = 2.0f;
    }
    st_knn_options opt = st_knn_defaults(10);
    CHECK_OK(st_knn_search(1, (const st_tensor *[]){c}, (const st_tensor *[]){t}, &opt, &ix, NULL));
    for (int64_t j = 0; ix && j < 30; j++) CHECK(((int64_t *)ix->data)[j] % 3 == j / 10);
    check_exact(1, &c, &t, opt, NULL, NULL);
    st_tensor_free(ix);
    st_tensor_free(t);
    st_tensor_free(c);
}

static void test_strided_rows_and_supplied_outputs(void)
{
    st_rng rng;
    st_rng_seed(&rng, 6);
    /* Training rows are every other row of a wider matrix, columns 1..4. */
    st_tensor *big = rand_matrix(&rng, 80, 6, 3), *rows = NULL, *t = NULL, *tc = NULL;
    st_tensor *q = rand_matrix(&rng, 5, 3, 3);
    CHECK_OK(st_tensor_slice(big, 0, 0, 80, 2, &rows));
    CHECK_OK(st_tensor_slice(rows, 1, 1, 4, 1, &t));
    CHECK_OK(st_tensor_clone(t, &tc));
    st_tensor *ix = NULL, *ds = NULL, *ix2 = NULL, *ds2 = NULL;
    CHECK_OK(st_tensor_new(ST_I64, 2, (int64_t[]){5, 4}, &ix));
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){5, 4}, &ds));
    st_tensor *ix_keep = ix;
    st_knn_options opt = st_knn_defaults(4);
    CHECK_OK(st_knn_search(1, (const st_tensor *[]){q}, (const st_tensor *[]){t}, &opt, &ix, &ds));
    CHECK(ix == ix_keep);
    CHECK_OK(st_knn_search(1, (const st_tensor *[]){q}, (const st_tensor *[]){tc}, &opt, &ix2, &ds2));
    for (int j = 0; ix2 && j < 20; j++) {
        CHECK(((int64_t *)ix->data)[j] == ((int64_t *)ix2->data)[j]);
        CHECK(st_f32(ds)[j] == st_f32(ds2)[j]);
    }
    check_exact(1, &q, &tc, opt, NULL, NULL);
    st_tensor *bad = NULL;
    CHECK_OK(st_tensor_new(ST_I64, 2, (int64_t[]){5, 3}, &bad));
    CHECK_FAILS(st_knn_search(1, (const st_tensor *[]){q}, (const st_tensor *[]){t}, &opt, &bad, NULL), ST_ESHAPE,
                "indices output");
    st_tensor *tt = NULL;
    CHECK_OK(st_tensor_transpose(tc, 0, 1, &tt));
    st_tensor *qt = NULL;
    CHECK_OK(st_tensor_transpose(q, 0, 1, &qt));
    st_tensor *none = NULL;
    CHECK_FAILS(st_knn_search(1, (const st_tensor *[]){qt}, (const st_tensor *[]){tt}, &opt, &none, NULL),
                ST_ESHAPE, "contiguous");
    st_tensor *list[] = {big, rows, t, tc, q, ix, ds, ix2, ds2, bad, tt, qt};
    free_all(list, 12);
}

static void test_bad_input_is_rejected(void)
{
    st_rng rng;
    st_rng_seed(&rng, 7);
    st_tensor *q3 = rand_matrix(&rng, 4, 3, 1), *q2 = rand_matrix(&rng, 4, 2, 1), *q5 = rand_matrix(&rng, 5, 2, 1);
    st_tensor *t3 = rand_matrix(&rng, 50, 3, 1), *t2 = rand_matrix(&rng, 50, 2, 1), *t2b = rand_matrix(&rng, 49, 2, 1);
    st_tensor *out = NULL;
    st_knn_options opt = st_knn_defaults(3);
    CHECK_FAILS(st_knn_search(1, (const st_tensor *[]){q3}, (const st_tensor *[]){t2}, &opt, &out, NULL), ST_ESHAPE,
                "training rows of layer 1 of 1");
    CHECK_FAILS(st_knn_search(2, (const st_tensor *[]){q3, q5}, (const st_tensor *[]){t3, t2}, &opt, &out, NULL),
                ST_ESHAPE, "queries of layer 2 of 2");
    CHECK_FAILS(st_knn_search(2, (const st_tensor *[]){q3, q2}, (const st_tensor *[]){t3, t2b}, &opt, &out, NULL),
                ST_ESHAPE, "[50,2] expected");
    CHECK_FAILS(st_knn_search(0, (const st_tensor *[]){q3}, (const st_tensor *[]){t3}, &opt, &out, NULL), ST_EINVAL,
                "at least one layer");
    opt.k = 0;
    CHECK_FAILS(st_knn_search(1, (const st_tensor *[]){q3}, (const st_tensor *[]){t3}, &opt, &out, NULL), ST_EINVAL,
                "k must be >= 1");
    opt = st_knn_defaults(3);
    double wneg[2] = {1.0, -0.5}, wzero[2] = {0, 0}, wnan[2] = {NAN, 1};
    opt.weights = wneg;
    CHECK_FAILS(st_knn_search(2, (const st_tensor *[]){q3, q2}, (const st_tensor *[]){t3, t2}, &opt, &out, NULL),
                ST_EINVAL, "weight 1");
    opt.weights = wzero;
    CHECK_FAILS(st_knn_search(2, (const st_tensor *[]){q3, q2}, (const st_tensor *[]){t3, t2}, &opt, &out, NULL),
                ST_EINVAL, "all 2 weights are zero");
    opt.weights = wnan;
    CHECK_FAILS(st_knn_search(2, (const st_tensor *[]){q3, q2}, (const st_tensor *[]){t3, t2}, &opt, &out, NULL),
                ST_EINVAL, "weight 0");
    opt = st_knn_defaults(3);
    st_tensor *lf = NULL, *l50 = NULL, *l4 = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 1, (int64_t[]){4}, &lf));
    CHECK_OK(st_tensor_new(ST_I64, 1, (int64_t[]){50}, &l50));
    CHECK_OK(st_tensor_new(ST_I64, 1, (int64_t[]){4}, &l4));
    opt.train_labels = l50;
    CHECK_FAILS(st_knn_search(1, (const st_tensor *[]){q3}, (const st_tensor *[]){t3}, &opt, &out, NULL), ST_EINVAL,
                "query_labels missing");
    opt.query_labels = lf;
    CHECK_FAILS(st_knn_search(1, (const st_tensor *[]){q3}, (const st_tensor *[]){t3}, &opt, &out, NULL), ST_EDTYPE,
                "i64 or i32");
    opt.query_labels = l4;
    opt.train_labels = l4;
    CHECK_FAILS(st_knn_search(1, (const st_tensor *[]){q3}, (const st_tensor *[]){t3}, &opt, &out, NULL), ST_ESHAPE,
                "train_labels");
    opt = st_knn_defaults(3);
    st_f32(t3)[17 * 3 + 1] = INFINITY;
    CHECK_FAILS(st_knn_search(1, (const st_tensor *[]){q3}, (const st_tensor *[]){t3}, &opt, &out, NULL),
                ST_ENUMERIC, "layer 1 of 1: training row 17 ");
    st_f32(q2)[2 * 2] = NAN;
    CHECK_FAILS(st_knn_search(2, (const st_tensor *[]){q3, q2}, (const st_tensor *[]){t3, t2}, &opt, &out, NULL),
                ST_ENUMERIC, "layer 2 of 2: query row 2 ");
    CHECK(out == NULL);
    st_tensor *list[] = {q3, q2, q5, t3, t2, t2b, lf, l50, l4};
    free_all(list, 9);
}

int main(void)
{
    RUN(test_integer_data_with_ties_is_exact);
    RUN(test_duplicate_rows_tie_to_lower_index);
    RUN(test_zero_weight_layers_are_skipped);
    RUN(test_k_larger_than_n_pads);
    RUN(test_same_label_filter);
    RUN(test_real_data_against_double_reference);
    RUN(test_centroids_as_queries);
    RUN(test_strided_rows_and_supplied_outputs);
    RUN(test_bad_input_is_rejected);
    return TEST_SUMMARY();
}
