/* Elementwise ops, comparisons and where against naive reference loops: random shapes with
 * broadcasting, every memory layout, both float dtypes. Basic arithmetic
 * of two floats is exact in double, so those results are compared
 * exactly after rounding the reference to the tensor's dtype. */
#include <math.h>
#include "strata/ops.h"
#include "test_ops_util.h"
#include "testing.h"

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_COUNT };

static double ref_binary(int op, double x, double y)
{
    switch (op) {
    case OP_ADD: return x + y;
    case OP_SUB: return x - y;
    case OP_MUL: return x * y;
    default: return x / y;
    }
}

static st_status call_binary(int op, const st_tensor *a, const st_tensor *b, st_tensor **out)
{
    switch (op) {
    case OP_ADD: return st_add(a, b, out);
    case OP_SUB: return st_sub(a, b, out);
    case OP_MUL: return st_mul(a, b, out);
    default: return st_div(a, b, out);
    }
}

/* Reference for out = a (op) b with numpy broadcasting. Returns the
 * number of mismatching elements. */
static int count_binary_mismatches(int op, const st_tensor *a, const st_tensor *b, const st_tensor *out)
{
    int bad = 0;
    int64_t idx[ST_MAX_DIMS], ia[ST_MAX_DIMS], ib[ST_MAX_DIMS];
    for (int64_t f = 0, n = st_tensor_numel(out); f < n; f++) {
        unflatten(out->ndim, out->shape, f, idx);
        for (int d = 0; d < a->ndim; d++) {
            int64_t v = idx[out->ndim - a->ndim + d];
            ia[d] = a->shape[d] == 1 ? 0 : v;
        }
        for (int d = 0; d < b->ndim; d++) {
            int64_t v = idx[out->ndim - b->ndim + d];
            ib[d] = b->shape[d] == 1 ? 0 : v;
        }
        double want = as_dtype(out->dtype, ref_binary(op, at(a, ia), at(b, ib)));
        if (st_tensor_get_flat(out, f) != want) bad++;
    }
    return bad;
}

static void test_binary_broadcasting_random(void)
{
    st_rng rng;
    st_rng_seed(&rng, 1);
    for (int trial = 0; trial < 400; trial++) {
        st_dtype dt = trial % 2 ? ST_F64 : ST_F32;
        int nd = (int)rand_between(&rng, 0, 4), op = (int)(trial / 2 % OP_COUNT);
        int64_t sa[ST_MAX_DIMS], sb[ST_MAX_DIMS];
        for (int d = 0; d < nd; d++) sa[d] = rand_between(&rng, 1, 6);
        /* b: a suffix of a's shape with some sizes set to 1 */
        int ndb = (int)rand_between(&rng, 0, nd);
        for (int d = 0; d < ndb; d++) sb[d] = st_rng_below(&rng, 3) == 0 ? 1 : sa[nd - ndb + d];
        /* sometimes a gets the 1s instead */
        for (int d = 0; d < ndb; d++)
            if (sb[d] != 1 && st_rng_below(&rng, 4) == 0) sa[nd - ndb + d] = 1;
        bool swap = st_rng_below(&rng, 2);
        st_tensor *a = rand_tensor(&rng, dt, nd, sa, (int)st_rng_below(&rng, LAYOUT_COUNT), -3, 3);
        st_tensor *b = rand_tensor(&rng, dt, ndb, sb, (int)st_rng_below(&rng, LAYOUT_COUNT), 0.5, 3);
        st_tensor *x = swap ? b : a, *y = swap ? a : b, *out = NULL;
        CHECK_OK(call_binary(op, x, y, &out));
        if (out) {
            CHECK(out->dtype == dt && st_tensor_is_contiguous(out));
            CHECK(count_binary_mismatches(op, x, y, out) == 0);
        }
        st_tensor_free(out);
        st_tensor_free(a);
        st_tensor_free(b);
    }
}

static void test_long_rows_fast_paths(void)
{
    /* Long contiguous rows hit the vectorised loops: same-shape, tensor
     * with a row vector, and a column vector (stride 0 inner operand). */
    st_rng rng;
    st_rng_seed(&rng, 2);
    int64_t s[2] = {37, 1031}, row[1] = {1031}, col[2] = {37, 1};
    st_tensor *a = rand_tensor(&rng, ST_F32, 2, s, LAYOUT_CONTIGUOUS, -1, 1);
    st_tensor *b = rand_tensor(&rng, ST_F32, 2, s, LAYOUT_CONTIGUOUS, -1, 1);
    st_tensor *r = rand_tensor(&rng, ST_F32, 1, row, LAYOUT_CONTIGUOUS, -1, 1);
    st_tensor *c = rand_tensor(&rng, ST_F32, 2, col, LAYOUT_CONTIGUOUS, -1, 1);
    for (int op = 0; op < OP_COUNT; op++) {
        st_tensor *o1 = NULL, *o2 = NULL, *o3 = NULL, *o4 = NULL;
        CHECK_OK(call_binary(op, a, b, &o1));
        CHECK_OK(call_binary(op, a, r, &o2));
        CHECK_OK(call_binary(op, c, a, &o3));
        CHECK_OK(call_binary(op, r, c, &o4)); /* [1031] with [37,1] -> [37,1031] */
        CHECK(count_binary_mismatches(op, a, b, o1) == 0);
        CHECK(count_binary_mismatches(op, a, r, o2) == 0);
        CHECK(count_binary_mismatches(op, c, a, o3) == 0);
        CHECK(o4->shape[0] == 37 && o4->shape[1] == 1031 && count_binary_mismatches(op, r, c, o4) == 0);
        st_tensor_free(o1);
        st_tensor_free(o2);
        st_tensor_free(o3);
        st_tensor_free(o4);
    }
    st_tensor_free(a);
    st_tensor_free(b);
    st_tensor_free(r);
    st_tensor_free(c);
}

static void test_supplied_outputs(void)
{
    st_rng rng;
    st_rng_seed(&rng, 3);
    int64_t s[2] = {4, 5}, st[2] = {5, 4}, wrong[2] = {5, 5};
    st_tensor *a = rand_tensor(&rng, ST_F64, 2, s, LAYOUT_CONTIGUOUS, -1, 1);
    st_tensor *b = rand_tensor(&rng, ST_F64, 2, s, LAYOUT_SLICED, -1, 1);
    /* a transposed view as the output: written through its strides */
    st_tensor *base = NULL, *outv = NULL, *bad = NULL, *bad32 = NULL;
    CHECK_OK(st_tensor_new(ST_F64, 2, st, &base));
    CHECK_OK(st_tensor_transpose(base, 0, 1, &outv));
    st_tensor *keep = outv;
    CHECK_OK(st_mul(a, b, &outv));
    CHECK(outv == keep);
    CHECK(count_binary_mismatches(OP_MUL, a, b, outv) == 0);
    CHECK_OK(st_tensor_new(ST_F64, 2, wrong, &bad));
    st_tensor *badkeep = bad;
    CHECK_FAILS(st_add(a, b, &bad), ST_ESHAPE, "[4,5]");
    CHECK(bad == badkeep);
    CHECK(strstr(st_error_message(), "[5,5]") != NULL);
    CHECK_OK(st_tensor_new(ST_F32, 2, s, &bad32));
    CHECK_FAILS(st_add(a, b, &bad32), ST_EDTYPE, "f32");
    st_tensor_free(base);
    st_tensor_free(outv);
    st_tensor_free(bad);
    st_tensor_free(bad32);
    st_tensor_free(a);
    st_tensor_free(b);
}

static void test_shape_and_dtype_errors(void)
{
    st_tensor *a = NULL, *b = NULL, *c = NULL, *i = NULL, *out = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){2, 3}, &a));
    CHECK_OK(st_tensor_new(ST_F32, 1, (int64_t[]){4}, &b));
    CHECK_OK(st_tensor_new(ST_F64, 1, (int64_t[]){3}, &c));
    CHECK_OK(st_tensor_new(ST_I32, 2, (int64_t[]){2, 3}, &i));
    CHECK_FAILS(st_add(a, b, &out), ST_ESHAPE, "[2,3]");
    CHECK(strstr(st_error_message(), "[4]") != NULL);
    CHECK_FAILS(st_div(b, a, &out), ST_ESHAPE, "[4] and [2,3]");
    CHECK_FAILS(st_add(a, c, &out), ST_EDTYPE, "f32 and f64");
    CHECK_FAILS(st_mul(i, i, &out), ST_EDTYPE, "i32");
    CHECK_FAILS(st_exp(i, &out), ST_EDTYPE, "i32");
    CHECK_FAILS(st_add_scalar(i, 1, &out), ST_EDTYPE, "i32");
    CHECK_FAILS(st_add_inplace(b, a), ST_ESHAPE, "[2,3]");
    CHECK(out == NULL);
    st_tensor_free(a);
    st_tensor_free(b);
    st_tensor_free(c);
    st_tensor_free(i);
}

static void test_scalar_ops(void)
{
    st_rng rng;
    st_rng_seed(&rng, 4);
    int64_t s[3] = {3, 4, 5};
    for (int dt = ST_F32; dt <= ST_F64; dt++) {
        st_tensor *a = rand_tensor(&rng, (st_dtype)dt, 3, s, LAYOUT_PERMUTED, 0.5, 2);
        double k = 0.3; /* rounded to the dtype before use */
        double kd = as_dtype((st_dtype)dt, k);
        st_tensor *o[6] = {0};
        CHECK_OK(st_add_scalar(a, k, &o[0]));
        CHECK_OK(st_sub_scalar(a, k, &o[1]));
        CHECK_OK(st_rsub_scalar(a, k, &o[2]));
        CHECK_OK(st_mul_scalar(a, k, &o[3]));
        CHECK_OK(st_div_scalar(a, k, &o[4]));
        CHECK_OK(st_rdiv_scalar(a, k, &o[5]));
        int bad = 0;
        for (int64_t f = 0; f < 60; f++) {
            double x = st_tensor_get_flat(a, f);
            double want[6] = {x + kd, x - kd, kd - x, x * kd, x / kd, kd / x};
            for (int j = 0; j < 6; j++) bad += st_tensor_get_flat(o[j], f) != as_dtype((st_dtype)dt, want[j]);
        }
        CHECK(bad == 0);
        /* in place, through a permuted view */
        st_tensor *c = NULL;
        CHECK_OK(st_tensor_clone(a, &c));
        CHECK_OK(st_mul_scalar_inplace(a, k));
        CHECK_OK(st_add_scalar_inplace(a, k));
        for (int64_t f = 0; f < 60; f++) {
            double want = as_dtype((st_dtype)dt, as_dtype((st_dtype)dt, st_tensor_get_flat(c, f) * kd) + kd);
            bad += st_tensor_get_flat(a, f) != want;
        }
        CHECK(bad == 0);
        for (int j = 0; j < 6; j++) st_tensor_free(o[j]);
        st_tensor_free(a);
        st_tensor_free(c);
    }
}

static void test_inplace_and_aliasing(void)
{
    st_rng rng;
    st_rng_seed(&rng, 5);
    int64_t s[3] = {2, 3, 4}, bs[2] = {1, 4};
    st_tensor *a = rand_tensor(&rng, ST_F32, 3, s, LAYOUT_SLICED, -1, 1);
    st_tensor *b = rand_tensor(&rng, ST_F32, 2, bs, LAYOUT_CONTIGUOUS, 1, 2);
    st_tensor *a0 = NULL;
    CHECK_OK(st_tensor_clone(a, &a0));
    CHECK_OK(st_add_inplace(a, b));
    CHECK(count_binary_mismatches(OP_ADD, a0, b, a) == 0);
    CHECK_OK(st_tensor_copy_into(a0, a));
    CHECK_OK(st_sub_inplace(a, b));
    CHECK(count_binary_mismatches(OP_SUB, a0, b, a) == 0);
    CHECK_OK(st_tensor_copy_into(a0, a));
    CHECK_OK(st_mul_inplace(a, b));
    CHECK(count_binary_mismatches(OP_MUL, a0, b, a) == 0);
    CHECK_OK(st_tensor_copy_into(a0, a));
    CHECK_OK(st_div_inplace(a, b));
    CHECK(count_binary_mismatches(OP_DIV, a0, b, a) == 0);
    /* the documented alias: out is the same tensor as the first input */
    CHECK_OK(st_tensor_copy_into(a0, a));
    st_tensor *alias = a;
    CHECK_OK(st_add(a, a, &alias));
    CHECK(alias == a);
    CHECK(count_binary_mismatches(OP_ADD, a0, a0, a) == 0);
    st_tensor_free(a);
    st_tensor_free(a0);
    st_tensor_free(b);
}

static void test_unary_ops(void)
{
    st_rng rng;
    st_rng_seed(&rng, 6);
    int64_t s[2] = {13, 29};
    for (int dt = ST_F32; dt <= ST_F64; dt++) {
        double tol = dt == ST_F32 ? 2e-7 : 1e-15;
        for (int layout = 0; layout < LAYOUT_COUNT; layout++) {
            st_tensor *a = rand_tensor(&rng, (st_dtype)dt, 2, s, layout, -4, 4);
            st_tensor *p = NULL;
            CHECK_OK(st_abs(a, &p)); /* positive input for log / sqrt / pow */
            st_tensor *o[9] = {0};
            CHECK_OK(st_exp(a, &o[0]));
            CHECK_OK(st_log(p, &o[1]));
            CHECK_OK(st_sqrt(p, &o[2]));
            CHECK_OK(st_neg(a, &o[3]));
            CHECK_OK(st_relu(a, &o[4]));
            CHECK_OK(st_pow_scalar(p, 1.7, &o[5]));
            CHECK_OK(st_pow_scalar(a, 2, &o[6]));
            CHECK_OK(st_clamp(a, -1.5, 0.25, &o[7]));
            CHECK_OK(st_clamp(a, -INFINITY, 0.5, &o[8]));
            for (int64_t f = 0; f < 13 * 29; f++) {
                double x = st_tensor_get_flat(a, f), ax = fabs(x);
                CHECK(st_tensor_get_flat(p, f) == ax);
                double want[9] = {exp(x), log(ax), sqrt(ax), -x, x > 0 ? x : 0, pow(ax, as_dtype((st_dtype)dt, 1.7)),
                                  x * x, x < -1.5 ? -1.5 : (x > 0.25 ? 0.25 : x), x > 0.5 ? 0.5 : x};
                for (int j = 0; j < 9; j++) CHECK_CLOSE(st_tensor_get_flat(o[j], f), want[j], tol, 0);
            }
            for (int j = 0; j < 9; j++) st_tensor_free(o[j]);
            st_tensor_free(p);
            st_tensor_free(a);
        }
    }
}

static void test_special_values(void)
{
    double v[5] = {NAN, -1, 0, 2, -0.5};
    st_tensor *a = NULL, *o = NULL;
    CHECK_OK(st_tensor_from_data(ST_F64, 1, (int64_t[]){5}, v, sizeof v, &a));
    CHECK_OK(st_relu(a, &o));
    CHECK(isnan(st_tensor_get_flat(o, 0)) && st_tensor_get_flat(o, 1) == 0 && st_tensor_get_flat(o, 3) == 2);
    CHECK_OK(st_clamp(a, -0.75, 1, &o));
    CHECK(isnan(st_tensor_get_flat(o, 0)) && st_tensor_get_flat(o, 1) == -0.75 && st_tensor_get_flat(o, 3) == 1 &&
          st_tensor_get_flat(o, 4) == -0.5);
    CHECK_OK(st_log(a, &o));
    CHECK(isnan(st_tensor_get_flat(o, 1)) && isinf(st_tensor_get_flat(o, 2)) && st_tensor_get_flat(o, 2) < 0);
    CHECK_OK(st_sqrt(a, &o));
    CHECK(isnan(st_tensor_get_flat(o, 1)));
    CHECK_FAILS(st_clamp(a, 1, 0, &o), ST_EINVAL, "clamp");
    CHECK_FAILS(st_clamp(a, NAN, 0, &o), ST_EINVAL, "clamp");
    st_tensor_free(o);
    st_tensor_free(a);
}

static void test_empty_and_scalar_tensors(void)
{
    st_tensor *e = NULL, *r = NULL, *s = NULL, *o = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){0, 3}, &e));
    CHECK_OK(st_tensor_full(ST_F32, 1, (int64_t[]){3}, 2, &r));
    CHECK_OK(st_tensor_full(ST_F32, 0, NULL, 5, &s));
    CHECK_OK(st_add(e, r, &o));
    CHECK(o->ndim == 2 && o->shape[0] == 0 && o->shape[1] == 3);
    st_tensor_free(o);
    o = NULL;
    CHECK_OK(st_exp(e, &o));
    CHECK(o->shape[0] == 0);
    st_tensor_free(o);
    o = NULL;
    CHECK_OK(st_mul(s, r, &o)); /* 0-d broadcasts against anything */
    CHECK(o->ndim == 1 && st_tensor_get_flat(o, 2) == 10);
    st_tensor_free(o);
    o = NULL;
    CHECK_OK(st_sub(s, s, &o));
    CHECK(o->ndim == 0 && st_tensor_get_flat(o, 0) == 0);
    st_tensor_free(o);
    o = NULL;
    st_tensor *two = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 1, (int64_t[]){2}, &two));
    CHECK_FAILS(st_add(e, two, &o), ST_ESHAPE, "[0,3]");
    st_tensor_free(two);
    st_tensor_free(o);
    st_tensor_free(e);
    st_tensor_free(r);
    st_tensor_free(s);
}

static bool ref_compare(st_cmp op, double x, double y)
{
    switch (op) {
    case ST_EQ: return x == y;
    case ST_NE: return x != y;
    case ST_LT: return x < y;
    case ST_LE: return x <= y;
    case ST_GT: return x > y;
    default: return x >= y;
    }
}

static void test_compare_and_where_random(void)
{
    st_rng rng;
    st_rng_seed(&rng, 7);
    for (int trial = 0; trial < 120; trial++) {
        st_dtype dt = trial % 2 ? ST_F64 : ST_F32;
        st_cmp op = (st_cmp)(trial / 2 % 6);
        int64_t sa[3] = {rand_between(&rng, 1, 4), rand_between(&rng, 1, 5), rand_between(&rng, 1, 6)};
        int64_t sb[2] = {st_rng_below(&rng, 2) ? 1 : sa[1], sa[2]}, sc[1] = {sa[2]};
        /* values on a coarse grid so that equality happens, plus NaN */
        st_tensor *a = rand_tensor(&rng, dt, 3, sa, (int)st_rng_below(&rng, LAYOUT_COUNT), 0, 4);
        st_tensor *b = rand_tensor(&rng, dt, 2, sb, (int)st_rng_below(&rng, LAYOUT_COUNT), 0, 4);
        for (int64_t f = 0; f < st_tensor_numel(a); f++) st_tensor_set_flat(a, f, floor(st_tensor_get_flat(a, f)));
        for (int64_t f = 0; f < st_tensor_numel(b); f++) st_tensor_set_flat(b, f, floor(st_tensor_get_flat(b, f)));
        st_tensor_set_flat(a, 0, NAN);
        st_tensor *m = NULL, *ms = NULL, *c = rand_tensor(&rng, dt, 1, sc, LAYOUT_SLICED, -9, -8), *w = NULL;
        CHECK_OK(st_compare(op, a, b, &m));
        CHECK_OK(st_compare_scalar(op, a, 2, &ms));
        CHECK_OK(st_where(m, a, c, &w)); /* cond [A,B,C], a [A,B,C], b [C] */
        if (!m || !ms || !w) continue;
        CHECK(m->dtype == ST_U8 && st_tensor_same_shape(m, a) && st_tensor_same_shape(w, a));
        int bad = 0;
        int64_t idx[3];
        for (int64_t f = 0, n = st_tensor_numel(a); f < n; f++) {
            unflatten(3, sa, f, idx);
            int64_t ib[2] = {sb[0] == 1 ? 0 : idx[1], idx[2]};
            double x = at(a, idx), y = at(b, ib);
            bool want = ref_compare(op, x, y);
            bad += st_tensor_get_flat(m, f) != (want ? 1 : 0);
            bad += st_tensor_get_flat(ms, f) != (ref_compare(op, x, 2) ? 1 : 0);
            double wv = want ? x : at(c, &idx[2]), got = st_tensor_get_flat(w, f);
            bad += isnan(wv) ? !isnan(got) : got != wv;
        }
        CHECK(bad == 0);
        st_tensor *ts[] = {a, b, c, m, ms, w};
        for (int i = 0; i < 6; i++) st_tensor_free(ts[i]);
    }
}

static void test_compare_and_where_errors(void)
{
    st_tensor *a = NULL, *b = NULL, *f = NULL, *o = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){2, 3}, &a));
    CHECK_OK(st_tensor_new(ST_F32, 1, (int64_t[]){2}, &b));
    CHECK_OK(st_tensor_new(ST_U8, 1, (int64_t[]){3}, &f));
    CHECK_FAILS(st_compare(ST_LT, a, b, &o), ST_ESHAPE, "[2,3] and [2]");
    CHECK_FAILS(st_compare((st_cmp)17, a, a, &o), ST_EINVAL, "unknown comparison");
    CHECK_FAILS(st_where(a, a, a, &o), ST_EDTYPE, "u8");
    CHECK_FAILS(st_where(f, a, b, &o), ST_ESHAPE, "[2,3] and [2]");
    CHECK_FAILS(st_compare_scalar(ST_EQ, f, 1, &o), ST_EDTYPE, "u8");
    CHECK_FAILS(st_compare(ST_EQ, a, a, &a), ST_EDTYPE, "u8"); /* a float output for a mask */
    CHECK(o == NULL);
    st_tensor_free(a);
    st_tensor_free(b);
    st_tensor_free(f);
}

int main(void)
{
    RUN(test_binary_broadcasting_random);
    RUN(test_long_rows_fast_paths);
    RUN(test_supplied_outputs);
    RUN(test_shape_and_dtype_errors);
    RUN(test_scalar_ops);
    RUN(test_inplace_and_aliasing);
    RUN(test_unary_ops);
    RUN(test_special_values);
    RUN(test_empty_and_scalar_tensors);
    RUN(test_compare_and_where_random);
    RUN(test_compare_and_where_errors);
    return TEST_SUMMARY();
}
