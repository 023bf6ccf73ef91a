/* Reductions against naive reference loops over random shapes, dims and
 * layouts; edge cases (ties, NaN, empty dimensions) by hand. */
#include <math.h>
#include "strata/ops.h"
#include "test_ops_util.h"
#include "testing.h"

enum { R_SUM, R_MEAN, R_VAR0, R_VAR1, R_MAX, R_MIN, R_ARGMAX, R_ARGMIN, R_COUNT };

static st_status call_reduce(int op, const st_tensor *a, int dim, bool keepdim, st_tensor **out)
{
    switch (op) {
    case R_SUM: return st_sum(a, dim, keepdim, out);
    case R_MEAN: return st_mean(a, dim, keepdim, out);
    case R_VAR0: return st_var(a, dim, 0, keepdim, out);
    case R_VAR1: return st_var(a, dim, 1, keepdim, out);
    case R_MAX: return st_max(a, dim, keepdim, out);
    case R_MIN: return st_min(a, dim, keepdim, out);
    case R_ARGMAX: return st_argmax(a, dim, keepdim, out);
    default: return st_argmin(a, dim, keepdim, out);
    }
}

/* Naive reduction of the n values v[0..n). */
static double ref_reduce(int op, const double *v, int64_t n)
{
    double s = 0, best = v[0];
    int64_t bi = 0;
    for (int64_t i = 0; i < n; i++) s += v[i];
    double mean = s / (double)n, sq = 0;
    for (int64_t i = 0; i < n; i++) sq += (v[i] - mean) * (v[i] - mean);
    for (int64_t i = 1; i < n; i++)
        if ((op == R_MAX || op == R_ARGMAX) ? v[i] > best : v[i] < best) best = v[i], bi = i;
    switch (op) {
    case R_SUM: return s;
    case R_MEAN: return mean;
    case R_VAR0: return sq / (double)n;
    case R_VAR1: return n > 1 ? sq / (double)(n - 1) : NAN;
    case R_MAX:
    case R_MIN: return best;
    default: return (double)bi;
    }
}

static void test_reduce_dim_random(void)
{
    st_rng rng;
    st_rng_seed(&rng, 11);
    double v[64];
    for (int trial = 0; trial < 300; trial++) {
        st_dtype dt = trial % 2 ? ST_F64 : ST_F32;
        int nd = (int)rand_between(&rng, 1, 4), op = (int)(trial / 2 % R_COUNT);
        int64_t shape[ST_MAX_DIMS];
        for (int d = 0; d < nd; d++) shape[d] = rand_between(&rng, 1, 6);
        int d = (int)rand_between(&rng, 0, nd - 1);
        int dim = st_rng_below(&rng, 2) ? d : d - nd; /* also the negative spelling */
        bool keep = st_rng_below(&rng, 2);
        st_tensor *a = rand_tensor(&rng, dt, nd, shape, (int)st_rng_below(&rng, LAYOUT_COUNT), -5, 5);
        st_tensor *out = NULL;
        CHECK_OK(call_reduce(op, a, dim, keep, &out));
        if (!out) {
            st_tensor_free(a);
            continue;
        }
        CHECK(out->ndim == (keep ? nd : nd - 1));
        CHECK(out->dtype == (op >= R_ARGMAX ? ST_I64 : dt));
        int64_t idx[ST_MAX_DIMS], oidx[ST_MAX_DIMS];
        int bad = 0;
        for (int64_t f = 0, m = st_tensor_numel(out); f < m; f++) {
            /* output index -> input index with the reduced dim inserted */
            unflatten(out->ndim, out->shape, f, oidx);
            for (int e = 0, k = 0; e < nd; e++) {
                if (keep) idx[e] = oidx[e];
                else idx[e] = e == d ? 0 : oidx[k++];
            }
            for (int64_t i = 0; i < shape[d]; i++) {
                idx[d] = i;
                v[i] = at(a, idx);
            }
            double want = ref_reduce(op, v, shape[d]), got = st_tensor_get_flat(out, f);
            if (op >= R_MAX) {
                bad += got != (op >= R_ARGMAX ? want : as_dtype(dt, want));
            } else if (isnan(want)) {
                bad += !isnan(got);
            } else {
                double tol = dt == ST_F32 ? 1e-6 : 1e-13;
                bad += fabs(got - want) > tol * (1 + fabs(want)) * 10;
            }
        }
        CHECK(bad == 0);
        st_tensor_free(out);
        st_tensor_free(a);
    }
}

static void test_reduce_all_random(void)
{
    st_rng rng;
    st_rng_seed(&rng, 12);
    static double v[6 * 6 * 6 * 6];
    for (int trial = 0; trial < 100; trial++) {
        st_dtype dt = trial % 2 ? ST_F64 : ST_F32;
        int nd = (int)rand_between(&rng, 0, 4);
        int64_t shape[ST_MAX_DIMS];
        for (int d = 0; d < nd; d++) shape[d] = rand_between(&rng, 1, 6);
        st_tensor *a = rand_tensor(&rng, dt, nd, shape, (int)st_rng_below(&rng, LAYOUT_COUNT), -5, 5);
        int64_t n = st_tensor_numel(a);
        for (int64_t i = 0; i < n; i++) v[i] = st_tensor_get_flat(a, i);
        double got;
        int64_t gi;
        CHECK_OK(st_sum_all(a, &got));
        CHECK_CLOSE(got, ref_reduce(R_SUM, v, n), 1e-12, 1e-12);
        CHECK_OK(st_mean_all(a, &got));
        CHECK_CLOSE(got, ref_reduce(R_MEAN, v, n), 1e-12, 1e-12);
        CHECK_OK(st_var_all(a, 0, &got));
        CHECK_CLOSE(got, ref_reduce(R_VAR0, v, n), 1e-12, 1e-12);
        if (n > 1) {
            CHECK_OK(st_var_all(a, 1, &got));
            CHECK_CLOSE(got, ref_reduce(R_VAR1, v, n), 1e-12, 1e-12);
        }
        CHECK_OK(st_max_all(a, &got));
        CHECK(got == ref_reduce(R_MAX, v, n));
        CHECK_OK(st_min_all(a, &got));
        CHECK(got == ref_reduce(R_MIN, v, n));
        CHECK_OK(st_argmax_all(a, &gi));
        CHECK(gi == (int64_t)ref_reduce(R_ARGMAX, v, n));
        CHECK_OK(st_argmin_all(a, &gi));
        CHECK(gi == (int64_t)ref_reduce(R_ARGMIN, v, n));
        st_tensor_free(a);
    }
}

static void test_f32_sums_accumulate_in_double(void)
{
    /* 2^22 copies of 0.1f: a float accumulator drifts by far more than
     * 1e-9 relative; a double one does not. Also a long column sum. */
    int64_t n = 1 << 22;
    st_tensor *a = NULL, *m = NULL, *s = NULL;
    CHECK_OK(st_tensor_full(ST_F32, 1, &n, 0.1, &a));
    double got, want = (double)n * (double)0.1f;
    CHECK_OK(st_sum_all(a, &got));
    CHECK_CLOSE(got, want, 1e-9, 0);
    CHECK_OK(st_mean_all(a, &got));
    CHECK_CLOSE(got, (double)0.1f, 1e-9, 0);
    CHECK_OK(st_tensor_reshape(a, 2, (int64_t[]){1 << 20, 4}, &m));
    CHECK_OK(st_sum(m, 0, false, &s));
    for (int j = 0; j < 4; j++) CHECK(st_tensor_get_flat(s, j) == (float)((double)(1 << 20) * (double)0.1f));
    st_tensor_free(a);
    st_tensor_free(m);
    st_tensor_free(s);
}

static void test_ties_and_nan(void)
{
    float v[6] = {1, 3, 3, -2, -2, 0};
    st_tensor *a = NULL, *o = NULL;
    int64_t i;
    CHECK_OK(st_tensor_from_data(ST_F32, 1, (int64_t[]){6}, v, sizeof v, &a));
    CHECK_OK(st_argmax_all(a, &i));
    CHECK(i == 1);
    CHECK_OK(st_argmin_all(a, &i));
    CHECK(i == 3);
    CHECK_OK(st_argmax(a, 0, true, &o));
    CHECK(o->ndim == 1 && o->shape[0] == 1 && st_tensor_get_flat(o, 0) == 1);
    st_tensor_free(o);
    o = NULL;
    float w[5] = {1, NAN, 5, NAN, -1};
    st_tensor *b = NULL;
    CHECK_OK(st_tensor_from_data(ST_F32, 1, (int64_t[]){5}, w, sizeof w, &b));
    double x;
    CHECK_OK(st_max_all(b, &x));
    CHECK(isnan(x));
    CHECK_OK(st_min_all(b, &x));
    CHECK(isnan(x));
    CHECK_OK(st_argmax_all(b, &i));
    CHECK(i == 1);
    CHECK_OK(st_argmin_all(b, &i));
    CHECK(i == 1);
    CHECK_OK(st_sum_all(b, &x));
    CHECK(isnan(x));
    st_tensor_free(a);
    st_tensor_free(b);
}

static void test_empty(void)
{
    st_tensor *a = NULL, *o = NULL;
    CHECK_OK(st_tensor_new(ST_F64, 2, (int64_t[]){3, 0}, &a));
    CHECK_OK(st_sum(a, 1, false, &o));
    CHECK(o->ndim == 1 && o->shape[0] == 3 && st_tensor_get_flat(o, 2) == 0);
    st_tensor_free(o);
    o = NULL;
    CHECK_OK(st_mean(a, 1, false, &o));
    CHECK(isnan(st_tensor_get_flat(o, 0)));
    st_tensor_free(o);
    o = NULL;
    CHECK_OK(st_sum(a, 0, true, &o)); /* reducing a non-empty dim of an empty tensor */
    CHECK(o->ndim == 2 && o->shape[0] == 1 && o->shape[1] == 0);
    st_tensor_free(o);
    o = NULL;
    CHECK_OK(st_max(a, 0, false, &o)); /* reduced dim has 3 entries; no results */
    CHECK(o->shape[0] == 0);
    st_tensor_free(o);
    o = NULL;
    CHECK_FAILS(st_max(a, 1, false, &o), ST_EINVAL, "empty");
    CHECK_FAILS(st_argmin(a, -1, false, &o), ST_EINVAL, "[3,0]");
    double x;
    int64_t i;
    CHECK_OK(st_sum_all(a, &x));
    CHECK(x == 0);
    CHECK_OK(st_var_all(a, 0, &x));
    CHECK(isnan(x));
    CHECK_FAILS(st_argmax_all(a, &i), ST_EINVAL, "empty");
    CHECK(o == NULL);
    st_tensor_free(a);
}

static void test_var_ddof_and_errors(void)
{
    double v[4] = {1, 2, 3, 6}; /* mean 3, squared deviations 4+1+0+9 = 14 */
    st_tensor *a = NULL, *o = NULL, *i = NULL, *bad = NULL;
    CHECK_OK(st_tensor_from_data(ST_F64, 2, (int64_t[]){1, 4}, v, sizeof v, &a));
    double x;
    CHECK_OK(st_var_all(a, 0, &x));
    CHECK_CLOSE(x, 14.0 / 4, 1e-15, 0);
    CHECK_OK(st_var_all(a, 1, &x));
    CHECK_CLOSE(x, 14.0 / 3, 1e-15, 0);
    CHECK_OK(st_var(a, 0, 1, false, &o)); /* one sample per column */
    CHECK(isnan(st_tensor_get_flat(o, 0)));
    st_tensor_free(o);
    o = NULL;
    CHECK_FAILS(st_var(a, 1, -1, false, &o), ST_EINVAL, "ddof");
    CHECK_FAILS(st_sum(a, 2, false, &o), ST_EINVAL, "dimension 2");
    CHECK_FAILS(st_sum(a, -3, false, &o), ST_EINVAL, "dimension -3");
    CHECK_OK(st_tensor_new(ST_I64, 1, (int64_t[]){4}, &i));
    CHECK_FAILS(st_sum(i, 0, false, &o), ST_EDTYPE, "i64");
    CHECK_OK(st_tensor_new(ST_F64, 1, (int64_t[]){3}, &bad));
    CHECK_FAILS(st_sum(a, 0, false, &bad), ST_ESHAPE, "[4]");
    CHECK_FAILS(st_argmax(a, 1, false, &bad), ST_EDTYPE, "i64");
    /* a supplied non-contiguous output is written through its strides */
    st_tensor *base = NULL, *col = NULL;
    CHECK_OK(st_tensor_new(ST_F64, 2, (int64_t[]){4, 2}, &base));
    CHECK_OK(st_tensor_select(base, 1, 1, &col));
    CHECK_OK(st_sum(a, 0, false, &col));
    for (int k = 0; k < 4; k++) CHECK(st_tensor_get_flat(base, 2 * k + 1) == v[k] && st_tensor_get_flat(base, 2 * k) == 0);
    st_tensor_free(base);
    st_tensor_free(col);
    st_tensor_free(bad);
    st_tensor_free(i);
    st_tensor_free(a);
}

int main(void)
{
    RUN(test_reduce_dim_random);
    RUN(test_reduce_all_random);
    RUN(test_f32_sums_accumulate_in_double);
    RUN(test_ties_and_nan);
    RUN(test_empty);
    RUN(test_var_ddof_and_errors);
    return TEST_SUMMARY();
}
