/* Concatenation, index_select, gather and top-k against naive loops. */
#include <math.h>
#include "strata/ops.h"
#include "test_ops_util.h"
#include "testing.h"

static void test_cat_random(void)
{
    st_rng rng;
    st_rng_seed(&rng, 21);
    for (int trial = 0; trial < 120; trial++) {
        st_dtype dt = (st_dtype)(trial % 3 == 2 ? ST_I64 : trial % 2 ? ST_F64 : ST_F32);
        int nd = (int)rand_between(&rng, 1, 4), n = (int)rand_between(&rng, 1, 4);
        int d = (int)rand_between(&rng, 0, nd - 1);
        int64_t shape[ST_MAX_DIMS], ps[ST_MAX_DIMS];
        for (int e = 0; e < nd; e++) shape[e] = rand_between(&rng, 1, 4);
        st_tensor *parts[4];
        int64_t start[5] = {0};
        for (int i = 0; i < n; i++) {
            for (int e = 0; e < nd; e++) ps[e] = shape[e];
            ps[d] = rand_between(&rng, 0, 3); /* empty parts too */
            parts[i] = rand_tensor(&rng, dt, nd, ps, (int)st_rng_below(&rng, LAYOUT_COUNT), -100, 100);
            start[i + 1] = start[i] + ps[d];
        }
        st_tensor *out = NULL;
        CHECK_OK(st_cat(n, (const st_tensor *const *)parts, d - (trial % 2) * nd, &out));
        if (out) {
            CHECK(out->shape[d] == start[n]);
            int bad = 0;
            int64_t idx[ST_MAX_DIMS];
            for (int64_t f = 0, m = st_tensor_numel(out); f < m; f++) {
                unflatten(nd, out->shape, f, idx);
                int i = 0;
                while (idx[d] >= start[i + 1]) i++;
                idx[d] -= start[i];
                bad += st_tensor_get_flat(out, f) != at(parts[i], idx);
            }
            CHECK(bad == 0);
        }
        st_tensor_free(out);
        for (int i = 0; i < n; i++) st_tensor_free(parts[i]);
    }
}

static void test_cat_errors(void)
{
    st_tensor *a = NULL, *b = NULL, *c = NULL, *o = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){2, 3}, &a));
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){2, 4}, &b));
    CHECK_OK(st_tensor_new(ST_F64, 2, (int64_t[]){2, 3}, &c));
    const st_tensor *ab[2] = {a, b}, *ac[2] = {a, c};
    CHECK_FAILS(st_cat(2, ab, 0, &o), ST_ESHAPE, "part 1 has shape [2,4], part 0 has [2,3]");
    CHECK_OK(st_cat(2, ab, 1, &o));
    CHECK(o->shape[1] == 7);
    st_tensor_free(o);
    o = NULL;
    CHECK_FAILS(st_cat(2, ac, 0, &o), ST_EDTYPE, "f64");
    CHECK_FAILS(st_cat(0, ab, 0, &o), ST_EINVAL, "at least one");
    CHECK_FAILS(st_cat(2, ab, 2, &o), ST_EINVAL, "dimension 2");
    CHECK(o == NULL);
    st_tensor_free(a);
    st_tensor_free(b);
    st_tensor_free(c);
}

static void test_index_select_random(void)
{
    st_rng rng;
    st_rng_seed(&rng, 22);
    for (int trial = 0; trial < 100; trial++) {
        int nd = (int)rand_between(&rng, 1, 4), d = (int)rand_between(&rng, 0, nd - 1);
        int64_t shape[ST_MAX_DIMS], m = rand_between(&rng, 0, 7);
        for (int e = 0; e < nd; e++) shape[e] = rand_between(&rng, 1, 5);
        st_tensor *a = rand_tensor(&rng, trial % 2 ? ST_F32 : ST_U8, nd, shape, (int)st_rng_below(&rng, LAYOUT_COUNT), 0, 200);
        st_tensor *ix = NULL, *out = NULL;
        CHECK_OK(st_tensor_new(trial % 3 ? ST_I64 : ST_I32, 1, &m, &ix));
        for (int64_t i = 0; i < m; i++) st_tensor_set_flat(ix, i, (double)st_rng_below(&rng, (uint64_t)shape[d]));
        CHECK_OK(st_index_select(a, d, ix, &out));
        if (out) {
            CHECK(out->shape[d] == m && out->dtype == a->dtype);
            int bad = 0;
            int64_t idx[ST_MAX_DIMS];
            for (int64_t f = 0, n = st_tensor_numel(out); f < n; f++) {
                unflatten(nd, out->shape, f, idx);
                idx[d] = (int64_t)st_tensor_get_flat(ix, idx[d]);
                bad += st_tensor_get_flat(out, f) != at(a, idx);
            }
            CHECK(bad == 0);
        }
        st_tensor_free(out);
        st_tensor_free(ix);
        st_tensor_free(a);
    }
}

static void test_index_errors(void)
{
    st_tensor *a = NULL, *ix = NULL, *ix2 = NULL, *fx = NULL, *o = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){3, 4}, &a));
    int64_t bad[3] = {0, 4, 1};
    CHECK_OK(st_tensor_from_data(ST_I64, 1, (int64_t[]){3}, bad, sizeof bad, &ix));
    CHECK_FAILS(st_index_select(a, 1, ix, &o), ST_EINVAL, "index entry 1 is 4");
    st_tensor_set_flat(ix, 1, -1);
    CHECK_FAILS(st_index_select(a, 0, ix, &o), ST_EINVAL, "-1");
    CHECK_OK(st_tensor_new(ST_I64, 2, (int64_t[]){1, 3}, &ix2));
    CHECK_FAILS(st_index_select(a, 0, ix2, &o), ST_ESHAPE, "1-d");
    CHECK_OK(st_tensor_new(ST_F32, 1, (int64_t[]){2}, &fx));
    CHECK_FAILS(st_index_select(a, 0, fx, &o), ST_EDTYPE, "f32");
    CHECK_FAILS(st_index_select(a, 0, NULL, &o), ST_EINVAL, "missing");
    CHECK_FAILS(st_gather(a, 0, ix, &o), ST_ESHAPE, "[3] does not fit tensor shape [3,4]");
    st_tensor *wide = NULL, *neg = NULL;
    CHECK_OK(st_tensor_new(ST_I64, 2, (int64_t[]){2, 5}, &wide)); /* 5 > 4 along the kept dim */
    CHECK_FAILS(st_gather(a, 0, wide, &o), ST_ESHAPE, "[2,5]");
    CHECK_OK(st_tensor_full(ST_I32, 2, (int64_t[]){2, 2}, 3, &neg));
    CHECK_FAILS(st_gather(a, 0, neg, &o), ST_EINVAL, "out of range for dimension 0 of size 3");
    st_tensor_free(wide);
    st_tensor_free(neg);
    CHECK(o == NULL);
    st_tensor_free(a);
    st_tensor_free(ix);
    st_tensor_free(ix2);
    st_tensor_free(fx);
}

static void test_gather_random(void)
{
    st_rng rng;
    st_rng_seed(&rng, 23);
    for (int trial = 0; trial < 100; trial++) {
        int nd = (int)rand_between(&rng, 1, 4), d = (int)rand_between(&rng, 0, nd - 1);
        int64_t shape[ST_MAX_DIMS], is[ST_MAX_DIMS];
        for (int e = 0; e < nd; e++) {
            shape[e] = rand_between(&rng, 1, 5);
            is[e] = e == d ? rand_between(&rng, 0, 6) : rand_between(&rng, 1, shape[e]);
        }
        st_tensor *a = rand_tensor(&rng, ST_F64, nd, shape, (int)st_rng_below(&rng, LAYOUT_COUNT), -1, 1);
        st_tensor *base = NULL, *ix = NULL, *out = NULL;
        /* the index itself as a non-contiguous i32 view */
        int64_t bs[ST_MAX_DIMS];
        for (int e = 0; e < nd; e++) bs[e] = is[e] + 1;
        CHECK_OK(st_tensor_new(ST_I32, nd, bs, &base));
        ix = base;
        for (int e = 0; e < nd; e++) {
            st_tensor *v = NULL;
            CHECK_OK(st_tensor_slice(ix, e, 1, bs[e], 1, &v));
            if (ix != base) st_tensor_free(ix);
            ix = v;
        }
        for (int64_t i = 0, n = st_tensor_numel(ix); i < n; i++) st_tensor_set_flat(ix, i, (double)st_rng_below(&rng, (uint64_t)shape[d]));
        CHECK_OK(st_gather(a, d - nd * (trial % 2), ix, &out));
        if (out) {
            CHECK(st_tensor_same_shape(out, ix));
            int bad = 0;
            int64_t idx[ST_MAX_DIMS];
            for (int64_t f = 0, n = st_tensor_numel(out); f < n; f++) {
                unflatten(nd, out->shape, f, idx);
                idx[d] = (int64_t)st_tensor_get_flat(ix, f);
                bad += st_tensor_get_flat(out, f) != at(a, idx);
            }
            CHECK(bad == 0);
        }
        st_tensor_free(out);
        if (ix != base) st_tensor_free(ix);
        st_tensor_free(base);
        st_tensor_free(a);
    }
}

/* ---- top-k ---- */

typedef struct ranked {
    double v;
    int64_t i;
} ranked;

static int g_largest; /* comparator direction for qsort (test only) */

/* Reference order: NaN above every number, ties by lower index. */
static int cmp_ranked(const void *pa, const void *pb)
{
    const ranked *x = pa, *y = pb;
    bool xn = isnan(x->v), yn = isnan(y->v);
    if (xn != yn) return (g_largest ? xn : yn) ? -1 : 1;
    if (!xn && x->v != y->v) return (g_largest ? x->v > y->v : x->v < y->v) ? -1 : 1;
    return x->i < y->i ? -1 : 1;
}

static void test_topk_random(void)
{
    st_rng rng;
    st_rng_seed(&rng, 24);
    ranked row[64];
    for (int trial = 0; trial < 200; trial++) {
        st_dtype dt = trial % 2 ? ST_F64 : ST_F32;
        int nd = (int)rand_between(&rng, 1, 3), d = (int)rand_between(&rng, 0, nd - 1);
        int64_t shape[ST_MAX_DIMS];
        for (int e = 0; e < nd; e++) shape[e] = rand_between(&rng, 1, e == d ? 40 : 4);
        int64_t k = rand_between(&rng, 0, shape[d]);
        bool largest = st_rng_below(&rng, 2);
        /* few distinct values so that ties are common; some NaN */
        st_tensor *a = rand_tensor(&rng, dt, nd, shape, (int)st_rng_below(&rng, LAYOUT_COUNT), 0, 1);
        for (int64_t f = 0, n = st_tensor_numel(a); f < n; f++) {
            double u = st_tensor_get_flat(a, f);
            st_tensor_set_flat(a, f, u < 0.05 ? NAN : floor(u * 6) - 2);
        }
        st_tensor *vals = NULL, *ids = NULL;
        CHECK_OK(st_topk(a, k, d, largest, &vals, &ids));
        if (!vals || !ids) {
            st_tensor_free(a);
            continue;
        }
        CHECK(vals->shape[d] == k && ids->dtype == ST_I64 && vals->dtype == dt);
        g_largest = largest;
        int bad = 0;
        int64_t idx[ST_MAX_DIMS], rs[ST_MAX_DIMS];
        for (int e = 0; e < nd; e++) rs[e] = e == d ? 1 : shape[e];
        int64_t rows = 1;
        for (int e = 0; e < nd; e++) rows *= rs[e];
        for (int64_t r = 0; r < rows; r++) {
            unflatten(nd, rs, r, idx);
            for (int64_t i = 0; i < shape[d]; i++) {
                idx[d] = i;
                row[i] = (ranked){at(a, idx), i};
            }
            qsort(row, (size_t)shape[d], sizeof row[0], cmp_ranked);
            for (int64_t j = 0; j < k; j++) {
                idx[d] = j;
                double got = at(vals, idx);
                bad += at(ids, idx) != (double)row[j].i;
                bad += isnan(row[j].v) ? !isnan(got) : got != row[j].v;
            }
        }
        CHECK(bad == 0);
        st_tensor_free(vals);
        st_tensor_free(ids);
        st_tensor_free(a);
    }
}

static void test_topk_indices_only_and_errors(void)
{
    float v[6] = {0.5f, 2, -1, 2, 7, 0};
    st_tensor *a = NULL, *ids = NULL, *vals = NULL, *i32 = NULL;
    CHECK_OK(st_tensor_from_data(ST_F32, 1, (int64_t[]){6}, v, sizeof v, &a));
    CHECK_OK(st_topk(a, 3, 0, true, NULL, &ids));
    CHECK(st_tensor_get_flat(ids, 0) == 4 && st_tensor_get_flat(ids, 1) == 1 && st_tensor_get_flat(ids, 2) == 3);
    CHECK_OK(st_topk(a, 3, -1, false, NULL, &ids)); /* supplied output reused */
    CHECK(st_tensor_get_flat(ids, 0) == 2 && st_tensor_get_flat(ids, 1) == 5 && st_tensor_get_flat(ids, 2) == 0);
    CHECK_FAILS(st_topk(a, 7, 0, true, &vals, &ids), ST_EINVAL, "k = 7");
    CHECK_FAILS(st_topk(a, -1, 0, true, &vals, &ids), ST_EINVAL, "[6]");
    CHECK_FAILS(st_topk(a, 2, 0, true, &vals, &ids), ST_ESHAPE, "[2]");
    CHECK(vals == NULL);
    CHECK_OK(st_tensor_new(ST_I32, 1, (int64_t[]){6}, &i32));
    st_tensor *none = NULL;
    CHECK_FAILS(st_topk(i32, 1, 0, true, NULL, &none), ST_EDTYPE, "i32");
    CHECK(none == NULL);
    st_tensor_free(a);
    st_tensor_free(ids);
    st_tensor_free(i32);
}

static void test_topk_large_row(void)
{
    /* 100k values, k = 10: the heap path on a long row, against a sort. */
    st_rng rng;
    st_rng_seed(&rng, 25);
    int64_t n = 100000, shape[1] = {n};
    st_tensor *a = rand_tensor(&rng, ST_F32, 1, shape, LAYOUT_CONTIGUOUS, -1, 1);
    ranked *row = malloc((size_t)n * sizeof *row);
    for (int64_t i = 0; i < n; i++) row[i] = (ranked){st_tensor_get_flat(a, i), i};
    g_largest = 1;
    qsort(row, (size_t)n, sizeof *row, cmp_ranked);
    st_tensor *vals = NULL, *ids = NULL;
    CHECK_OK(st_topk(a, 10, 0, true, &vals, &ids));
    for (int j = 0; j < 10; j++) {
        CHECK(st_tensor_get_flat(ids, j) == (double)row[j].i);
        CHECK(st_tensor_get_flat(vals, j) == row[j].v);
    }
    free(row);
    st_tensor_free(vals);
    st_tensor_free(ids);
    st_tensor_free(a);
}

int main(void)
{
    RUN(test_cat_random);
    RUN(test_cat_errors);
    RUN(test_index_select_random);
    RUN(test_index_errors);
    RUN(test_gather_random);
    RUN(test_topk_random);
    RUN(test_topk_indices_only_and_errors);
    RUN(test_topk_large_row);
    return TEST_SUMMARY();
}
