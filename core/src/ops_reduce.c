/* Reductions along one dimension or over all elements (see ops.h).
 *
 * The input is made contiguous (a view when it already is) and read as
 * [outer, n, inner] around the reduced dimension. With inner == 1 every
 * result is one pass over a contiguous row; otherwise whole rows of
 * `inner` results are updated at once, so memory is always read in order.
 * Results go to a double scratch array first (f32 sums accumulate in
 * double) and are then stored in the output's dtype. */
#include "strata/ops.h"

#include <math.h>
#include <stdlib.h>
#include "ops_internal.h"

typedef enum red { R_SUM, R_MEAN, R_VAR, R_MAX, R_MIN, R_ARGMAX, R_ARGMIN } red;

static bool is_extremum(red op) { return op >= R_MAX; }
static bool is_arg(red op) { return op == R_ARGMAX || op == R_ARGMIN; }

/* Extremum update: a NaN already held is kept (the first NaN wins), a new
 * NaN or a strictly better value replaces it (ties keep the lower index). */
#define EXTREMUM_LOOP(T, CMP)                                          \
    do {                                                               \
        for (int64_t j = 0; j < inner; j++) {                          \
            v[j] = blk[j];                                             \
            id[j] = 0;                                                 \
        }                                                              \
        for (int64_t k = 1; k < n; k++) {                              \
            const T *row = blk + k * inner;                            \
            for (int64_t j = 0; j < inner; j++) {                      \
                double y = row[j];                                     \
                if (v[j] == v[j] && (y != y || y CMP v[j])) {          \
                    v[j] = y;                                          \
                    id[j] = k;                                         \
                }                                                      \
            }                                                          \
        }                                                              \
    } while (0)

/* x is [outer, n, inner]; writes outer*inner results to vals (values)
 * and idx (positions, for the extrema). `sq` is scratch of inner doubles
 * (variance only). */
#define DEFINE_REDUCE_KERNEL(NAME, T)                                                                   \
    static void NAME(red op, const T *x, int64_t outer, int64_t n, int64_t inner, int ddof, double *vals, \
                     int64_t *idx, double *sq)                                                          \
    {                                                                                                   \
        for (int64_t o = 0; o < outer; o++) {                                                           \
            const T *blk = x + o * n * inner;                                                           \
            double *v = vals + o * inner;                                                               \
            int64_t *id = idx + o * inner;                                                              \
            if (op == R_MAX || op == R_ARGMAX) {                                                        \
                EXTREMUM_LOOP(T, >);                                                                    \
                continue;                                                                               \
            }                                                                                           \
            if (op == R_MIN || op == R_ARGMIN) {                                                        \
                EXTREMUM_LOOP(T, <);                                                                    \
                continue;                                                                               \
            }                                                                                           \
            if (inner == 1) {                                                                           \
                double s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                                  \
                int64_t k = 0;                                                                          \
                for (; k + 4 <= n; k += 4) {                                                            \
                    s0 += blk[k];                                                                       \
                    s1 += blk[k + 1];                                                                   \
                    s2 += blk[k + 2];                                                                   \
                    s3 += blk[k + 3];                                                                   \
                }                                                                                       \
                for (; k < n; k++) s0 += blk[k];                                                        \
                v[0] = (s0 + s1) + (s2 + s3);                                                           \
            } else {                                                                                    \
                for (int64_t j = 0; j < inner; j++) v[j] = 0;                                           \
                for (int64_t k = 0; k < n; k++)                                                         \
                    for (int64_t j = 0; j < inner; j++) v[j] += blk[k * inner + j];                     \
            }                                                                                           \
            if (op == R_SUM) continue;                                                                  \
            for (int64_t j = 0; j < inner; j++) v[j] /= (double)n;                                      \
            if (op == R_MEAN) continue;                                                                 \
            for (int64_t j = 0; j < inner; j++) sq[j] = 0;                                              \
            for (int64_t k = 0; k < n; k++)                                                             \
                for (int64_t j = 0; j < inner; j++) {                                                   \
                    double e = blk[k * inner + j] - v[j];                                               \
                    sq[j] += e * e;                                                                     \
                }                                                                                       \
            for (int64_t j = 0; j < inner; j++) v[j] = n > ddof ? sq[j] / (double)(n - ddof) : NAN;     \
        }                                                                                               \
    }

DEFINE_REDUCE_KERNEL(reduce_f32, float)
DEFINE_REDUCE_KERNEL(reduce_f64, double)

/* Runs the kernel on contiguous a viewed as [outer, n, inner]; vals and
 * idx receive outer*inner results. */
static st_status run(red op, const st_tensor *a, int64_t outer, int64_t n, int64_t inner, int ddof, double *vals,
                     int64_t *idx)
{
    st_tensor *c = NULL;
    double *sq = op == R_VAR ? malloc((size_t)inner * sizeof *sq + 1) : NULL;
    st_status s = op == R_VAR && !sq ? st_fail(ST_ENOMEM, "reduce: out of memory") : st_tensor_contiguous(a, &c);
    if (s == ST_OK) {
        if (a->dtype == ST_F32)
            reduce_f32(op, c->data, outer, n, inner, ddof, vals, idx, sq);
        else
            reduce_f64(op, c->data, outer, n, inner, ddof, vals, idx, sq);
    }
    st_tensor_free(c);
    free(sq);
    return s;
}

static st_status check_args(const char *name, red op, const st_tensor *a, int64_t n, int ddof)
{
    char s[128];
    ST_TRY(st_ops_float_only(a, name));
    if (ddof < 0) return st_fail(ST_EINVAL, "%s: ddof must be >= 0, got %d", name, ddof);
    if (n == 0 && is_extremum(op))
        return st_fail(ST_EINVAL, "%s: cannot reduce an empty dimension (tensor %s)", name, st_ops_shape(a, s, sizeof s));
    return ST_OK;
}

static st_status reduce_dim(const char *name, red op, const st_tensor *a, int dim, int ddof, bool keepdim,
                            st_tensor **out)
{
    int d;
    ST_TRY(st_ops_dim(a, dim, name, &d));
    ST_TRY(check_args(name, op, a, a->shape[d], ddof));
    int64_t shape[ST_MAX_DIMS], outer = 1, inner = 1, n = a->shape[d];
    int nd = 0;
    for (int i = 0; i < a->ndim; i++) {
        if (i < d) outer *= a->shape[i];
        if (i > d) inner *= a->shape[i];
        if (i != d)
            shape[nd++] = a->shape[i];
        else if (keepdim)
            shape[nd++] = 1;
    }
    st_ops_out o;
    ST_TRY(st_ops_out_begin(&o, name, is_arg(op) ? ST_I64 : a->dtype, nd, shape, out, true));
    int64_t m = outer * inner;
    double *vals = malloc((size_t)m * sizeof *vals + 1);
    int64_t *idx = malloc((size_t)m * sizeof *idx + 1);
    st_status s = vals && idx ? ST_OK : st_fail(ST_ENOMEM, "%s: out of memory", name);
    if (s == ST_OK && m > 0) s = run(op, a, outer, n, inner, ddof, vals, idx);
    if (s == ST_OK) {
        void *dst = o.target->data;
        for (int64_t i = 0; i < m; i++) {
            if (is_arg(op))
                ((int64_t *)dst)[i] = idx[i];
            else if (a->dtype == ST_F32)
                ((float *)dst)[i] = (float)vals[i];
            else
                ((double *)dst)[i] = vals[i];
        }
    }
    free(vals);
    free(idx);
    return st_ops_out_end(&o, s, out);
}

static st_status reduce_all(const char *name, red op, const st_tensor *a, int ddof, double *val, int64_t *index)
{
    int64_t n = st_tensor_numel(a), k = 0;
    double v = 0;
    ST_TRY(check_args(name, op, a, n, ddof));
    ST_TRY(run(op, a, 1, n, 1, ddof, &v, &k));
    if (val) *val = v;
    if (index) *index = k;
    return ST_OK;
}

st_status st_sum(const st_tensor *a, int dim, bool keepdim, st_tensor **out) { return reduce_dim("sum", R_SUM, a, dim, 0, keepdim, out); }
st_status st_mean(const st_tensor *a, int dim, bool keepdim, st_tensor **out) { return reduce_dim("mean", R_MEAN, a, dim, 0, keepdim, out); }
st_status st_max(const st_tensor *a, int dim, bool keepdim, st_tensor **out) { return reduce_dim("max", R_MAX, a, dim, 0, keepdim, out); }
st_status st_min(const st_tensor *a, int dim, bool keepdim, st_tensor **out) { return reduce_dim("min", R_MIN, a, dim, 0, keepdim, out); }
st_status st_argmax(const st_tensor *a, int dim, bool keepdim, st_tensor **out) { return reduce_dim("argmax", R_ARGMAX, a, dim, 0, keepdim, out); }
st_status st_argmin(const st_tensor *a, int dim, bool keepdim, st_tensor **out) { return reduce_dim("argmin", R_ARGMIN, a, dim, 0, keepdim, out); }
st_status st_var(const st_tensor *a, int dim, int ddof, bool keepdim, st_tensor **out) { return reduce_dim("var", R_VAR, a, dim, ddof, keepdim, out); }

st_status st_sum_all(const st_tensor *a, double *out) { return reduce_all("sum_all", R_SUM, a, 0, out, NULL); }
st_status st_mean_all(const st_tensor *a, double *out) { return reduce_all("mean_all", R_MEAN, a, 0, out, NULL); }
st_status st_max_all(const st_tensor *a, double *out) { return reduce_all("max_all", R_MAX, a, 0, out, NULL); }
st_status st_min_all(const st_tensor *a, double *out) { return reduce_all("min_all", R_MIN, a, 0, out, NULL); }
st_status st_argmax_all(const st_tensor *a, int64_t *out) { return reduce_all("argmax_all", R_ARGMAX, a, 0, NULL, out); }
st_status st_argmin_all(const st_tensor *a, int64_t *out) { return reduce_all("argmin_all", R_ARGMIN, a, 0, NULL, out); }
st_status st_var_all(const st_tensor *a, int ddof, double *out) { return reduce_all("var_all", R_VAR, a, ddof, out, NULL); }
