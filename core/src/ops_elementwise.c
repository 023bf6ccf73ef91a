/* Elementwise arithmetic with numpy broadcasting (see ops.h).
 *
 * Every call builds an iteration plan: the output shape with one stride
 * vector per operand (0 along broadcast dimensions), with size-1
 * dimensions dropped and dimensions that are laid out back to back in
 * every operand merged. The innermost dimension is then as long as the
 * layout allows, and the typed kernels run one tight loop per row, with
 * separate loops for the unit-stride and scalar-operand cases so the
 * compiler can vectorise them. The operation is chosen once per row. */
#include "strata/ops.h"

#include <math.h>
#include "ops_internal.h"

typedef enum binop { B_ADD, B_SUB, B_MUL, B_DIV } binop;
typedef enum unop { U_EXP, U_LOG, U_SQRT, U_ABS, U_NEG, U_RELU, U_POW, U_CLAMP } unop;

/* An input as the iteration sees it (a tensor or a scalar of rank 0). */
typedef struct operand {
    const char *data;
    int ndim;
    const int64_t *shape, *stride;
} operand;

enum { MAX_OPS = 3 };

typedef struct plan {
    int nd, nops;
    int64_t shape[ST_MAX_DIMS];
    int64_t stride[MAX_OPS][ST_MAX_DIMS]; /* operand 0 is the output */
} plan;

static operand tensor_operand(const st_tensor *t) { return (operand){t->data, t->ndim, t->shape, t->stride}; }

/* Broadcast shape of two operands, numpy rules. */
static st_status broadcast(const char *name, operand a, operand b, int *nd, int64_t *shape)
{
    int n = a.ndim > b.ndim ? a.ndim : b.ndim;
    for (int i = 1; i <= n; i++) {
        int64_t x = i <= a.ndim ? a.shape[a.ndim - i] : 1, y = i <= b.ndim ? b.shape[b.ndim - i] : 1;
        if (x != y && x != 1 && y != 1) {
            char sa[128], sb[128];
            return st_fail(ST_ESHAPE, "%s: shapes %s and %s do not broadcast (sizes %lld and %lld in dimension %d from the end)",
                           name, st_shape_str(a.ndim, a.shape, sa, sizeof sa), st_shape_str(b.ndim, b.shape, sb, sizeof sb),
                           (long long)x, (long long)y, i);
        }
        shape[n - i] = x == 1 ? y : x;
    }
    *nd = n;
    return ST_OK;
}

/* Plan over the output `o` and inputs ins[0..nin). */
static void make_plan(plan *p, const st_tensor *o, const operand *ins, int nin)
{
    int64_t shape[ST_MAX_DIMS], st[MAX_OPS][ST_MAX_DIMS];
    int nd = o->ndim;
    p->nops = nin + 1;
    for (int d = 0; d < nd; d++) {
        shape[d] = o->shape[d];
        st[0][d] = o->stride[d];
        for (int k = 0; k < nin; k++) {
            int e = d - (nd - ins[k].ndim);
            st[k + 1][d] = e >= 0 && ins[k].shape[e] != 1 ? ins[k].stride[e] : 0;
        }
    }
    p->nd = 0;
    for (int d = 0; d < nd; d++) {
        if (shape[d] == 1) continue;
        int m = p->nd - 1;
        bool merge = m >= 0;
        for (int k = 0; merge && k < p->nops; k++) merge = p->stride[k][m] == st[k][d] * shape[d];
        if (merge) {
            p->shape[m] *= shape[d];
            for (int k = 0; k < p->nops; k++) p->stride[k][m] = st[k][d];
            continue;
        }
        p->shape[p->nd] = shape[d];
        for (int k = 0; k < p->nops; k++) p->stride[k][p->nd] = st[k][d];
        p->nd++;
    }
    if (p->nd == 0) {
        p->nd = 1;
        p->shape[0] = 1;
        for (int k = 0; k < p->nops; k++) p->stride[k][0] = 0;
    }
}

/* Moves ptr[] to the start of the next row (odometer over all but the
 * innermost dimension). */
static void next_row(const plan *p, int64_t *idx, char **ptr, size_t es)
{
    for (int d = p->nd - 2; d >= 0; d--) {
        for (int k = 0; k < p->nops; k++) ptr[k] += p->stride[k][d] * (int64_t)es;
        if (++idx[d] < p->shape[d]) return;
        for (int k = 0; k < p->nops; k++) ptr[k] -= p->stride[k][d] * p->shape[d] * (int64_t)es;
        idx[d] = 0;
    }
}

#define BIN_LOOP(T, EXPR)                                                   \
    do {                                                                    \
        if (so == 1 && sa == 1 && sb == 1) {                                \
            for (int64_t i = 0; i < n; i++) {                               \
                T x = a[i], y = b[i];                                       \
                o[i] = (EXPR);                                              \
            }                                                               \
        } else if (so == 1 && sa == 1 && sb == 0) {                         \
            const T y = b[0];                                               \
            for (int64_t i = 0; i < n; i++) {                               \
                T x = a[i];                                                 \
                o[i] = (EXPR);                                              \
            }                                                               \
        } else if (so == 1 && sa == 0 && sb == 1) {                         \
            const T x = a[0];                                               \
            for (int64_t i = 0; i < n; i++) {                               \
                T y = b[i];                                                 \
                o[i] = (EXPR);                                              \
            }                                                               \
        } else {                                                            \
            for (int64_t i = 0; i < n; i++) {                               \
                T x = a[i * sa], y = b[i * sb];                             \
                o[i * so] = (EXPR);                                         \
            }                                                               \
        }                                                                   \
    } while (0)

#define DEFINE_BINARY_KERNEL(NAME, T)                                                               \
    static void NAME(binop op, int64_t n, T *o, int64_t so, const T *a, int64_t sa, const T *b, int64_t sb) \
    {                                                                                               \
        switch (op) {                                                                               \
        case B_ADD: BIN_LOOP(T, x + y); break;                                                      \
        case B_SUB: BIN_LOOP(T, x - y); break;                                                      \
        case B_MUL: BIN_LOOP(T, x * y); break;                                                      \
        case B_DIV: BIN_LOOP(T, x / y); break;                                                      \
        }                                                                                           \
    }

DEFINE_BINARY_KERNEL(binary_f32, float)
DEFINE_BINARY_KERNEL(binary_f64, double)

#define UN_LOOP(T, EXPR)                                  \
    do {                                                  \
        if (so == 1 && sa == 1) {                         \
            for (int64_t i = 0; i < n; i++) {             \
                T x = a[i];                               \
                o[i] = (EXPR);                            \
            }                                             \
        } else {                                          \
            for (int64_t i = 0; i < n; i++) {             \
                T x = a[i * sa];                          \
                o[i * so] = (EXPR);                       \
            }                                             \
        }                                                 \
    } while (0)

/* NaN passes through relu and clamp because every comparison with it is
 * false. */
#define DEFINE_UNARY_KERNEL(NAME, T, EXP, LOG, SQRT, FABS, POW)                                        \
    static void NAME(unop op, T p0, T p1, int64_t n, T *o, int64_t so, const T *a, int64_t sa)        \
    {                                                                                                  \
        switch (op) {                                                                                  \
        case U_EXP: UN_LOOP(T, EXP(x)); break;                                                         \
        case U_LOG: UN_LOOP(T, LOG(x)); break;                                                         \
        case U_SQRT: UN_LOOP(T, SQRT(x)); break;                                                       \
        case U_ABS: UN_LOOP(T, FABS(x)); break;                                                        \
        case U_NEG: UN_LOOP(T, -x); break;                                                             \
        case U_RELU: UN_LOOP(T, x < 0 ? (T)0 : x); break;                                              \
        case U_POW:                                                                                    \
            if (p0 == 2)                                                                               \
                UN_LOOP(T, x * x);                                                                     \
            else                                                                                       \
                UN_LOOP(T, POW(x, p0));                                                                \
            break;                                                                                     \
        case U_CLAMP: UN_LOOP(T, x < p0 ? p0 : (x > p1 ? p1 : x)); break;                              \
        }                                                                                              \
    }

DEFINE_UNARY_KERNEL(unary_f32, float, expf, logf, sqrtf, fabsf, powf)
DEFINE_UNARY_KERNEL(unary_f64, double, exp, log, sqrt, fabs, pow)

/* out = a (op) b for operands of dtype dt. */
static st_status binary(const char *name, binop op, st_dtype dt, operand a, operand b, st_tensor **out)
{
    int nd = 0;
    int64_t shape[ST_MAX_DIMS];
    ST_TRY(broadcast(name, a, b, &nd, shape));
    st_ops_out o;
    ST_TRY(st_ops_out_begin(&o, name, dt, nd, shape, out, false));
    st_tensor *t = o.target;
    if (st_tensor_numel(t) > 0) {
        plan p;
        operand ins[2] = {a, b};
        make_plan(&p, t, ins, 2);
        size_t es = st_dtype_size(dt);
        char *ptr[MAX_OPS] = {t->data, (char *)a.data, (char *)b.data};
        int64_t idx[ST_MAX_DIMS] = {0}, n = p.shape[p.nd - 1];
        int64_t rows = st_tensor_numel(t) / n, so = p.stride[0][p.nd - 1], sa = p.stride[1][p.nd - 1],
                sb = p.stride[2][p.nd - 1];
        for (int64_t r = 0; r < rows; r++) {
            if (dt == ST_F32)
                binary_f32(op, n, (float *)ptr[0], so, (const float *)ptr[1], sa, (const float *)ptr[2], sb);
            else
                binary_f64(op, n, (double *)ptr[0], so, (const double *)ptr[1], sa, (const double *)ptr[2], sb);
            next_row(&p, idx, ptr, es);
        }
    }
    return st_ops_out_end(&o, ST_OK, out);
}

static st_status binary_tt(const char *name, binop op, const st_tensor *a, const st_tensor *b, st_tensor **out)
{
    ST_TRY(st_ops_float_pair(a, b, name));
    return binary(name, op, a->dtype, tensor_operand(a), tensor_operand(b), out);
}

/* a (op) s, or s (op) a when `reversed`; s is rounded to a's dtype. */
static st_status binary_ts(const char *name, binop op, const st_tensor *a, double s, bool reversed, st_tensor **out)
{
    ST_TRY(st_ops_float_only(a, name));
    union {
        float f;
        double d;
    } v;
    if (a->dtype == ST_F32)
        v.f = (float)s;
    else
        v.d = s;
    operand sc = {(const char *)&v, 0, NULL, NULL}, t = tensor_operand(a);
    return reversed ? binary(name, op, a->dtype, sc, t, out) : binary(name, op, a->dtype, t, sc, out);
}

static st_status unary(const char *name, unop op, const st_tensor *a, double p0, double p1, st_tensor **out)
{
    ST_TRY(st_ops_float_only(a, name));
    st_ops_out o;
    ST_TRY(st_ops_out_begin(&o, name, a->dtype, a->ndim, a->shape, out, false));
    st_tensor *t = o.target;
    if (st_tensor_numel(t) > 0) {
        plan p;
        operand in = tensor_operand(a);
        make_plan(&p, t, &in, 1);
        char *ptr[MAX_OPS] = {t->data, (char *)a->data, NULL};
        int64_t idx[ST_MAX_DIMS] = {0}, n = p.shape[p.nd - 1];
        int64_t rows = st_tensor_numel(t) / n, so = p.stride[0][p.nd - 1], sa = p.stride[1][p.nd - 1];
        for (int64_t r = 0; r < rows; r++) {
            if (a->dtype == ST_F32)
                unary_f32(op, (float)p0, (float)p1, n, (float *)ptr[0], so, (const float *)ptr[1], sa);
            else
                unary_f64(op, p0, p1, n, (double *)ptr[0], so, (const double *)ptr[1], sa);
            next_row(&p, idx, ptr, st_dtype_size(a->dtype));
        }
    }
    return st_ops_out_end(&o, ST_OK, out);
}

st_status st_add(const st_tensor *a, const st_tensor *b, st_tensor **out) { return binary_tt("add", B_ADD, a, b, out); }
st_status st_sub(const st_tensor *a, const st_tensor *b, st_tensor **out) { return binary_tt("sub", B_SUB, a, b, out); }
st_status st_mul(const st_tensor *a, const st_tensor *b, st_tensor **out) { return binary_tt("mul", B_MUL, a, b, out); }
st_status st_div(const st_tensor *a, const st_tensor *b, st_tensor **out) { return binary_tt("div", B_DIV, a, b, out); }

st_status st_add_inplace(st_tensor *a, const st_tensor *b) { return binary_tt("add_inplace", B_ADD, a, b, &a); }
st_status st_sub_inplace(st_tensor *a, const st_tensor *b) { return binary_tt("sub_inplace", B_SUB, a, b, &a); }
st_status st_mul_inplace(st_tensor *a, const st_tensor *b) { return binary_tt("mul_inplace", B_MUL, a, b, &a); }
st_status st_div_inplace(st_tensor *a, const st_tensor *b) { return binary_tt("div_inplace", B_DIV, a, b, &a); }

st_status st_add_scalar(const st_tensor *a, double s, st_tensor **out) { return binary_ts("add_scalar", B_ADD, a, s, false, out); }
st_status st_sub_scalar(const st_tensor *a, double s, st_tensor **out) { return binary_ts("sub_scalar", B_SUB, a, s, false, out); }
st_status st_rsub_scalar(const st_tensor *a, double s, st_tensor **out) { return binary_ts("rsub_scalar", B_SUB, a, s, true, out); }
st_status st_mul_scalar(const st_tensor *a, double s, st_tensor **out) { return binary_ts("mul_scalar", B_MUL, a, s, false, out); }
st_status st_div_scalar(const st_tensor *a, double s, st_tensor **out) { return binary_ts("div_scalar", B_DIV, a, s, false, out); }
st_status st_rdiv_scalar(const st_tensor *a, double s, st_tensor **out) { return binary_ts("rdiv_scalar", B_DIV, a, s, true, out); }
st_status st_add_scalar_inplace(st_tensor *a, double s) { return binary_ts("add_scalar_inplace", B_ADD, a, s, false, &a); }
st_status st_mul_scalar_inplace(st_tensor *a, double s) { return binary_ts("mul_scalar_inplace", B_MUL, a, s, false, &a); }

st_status st_exp(const st_tensor *a, st_tensor **out) { return unary("exp", U_EXP, a, 0, 0, out); }
st_status st_log(const st_tensor *a, st_tensor **out) { return unary("log", U_LOG, a, 0, 0, out); }
st_status st_sqrt(const st_tensor *a, st_tensor **out) { return unary("sqrt", U_SQRT, a, 0, 0, out); }
st_status st_abs(const st_tensor *a, st_tensor **out) { return unary("abs", U_ABS, a, 0, 0, out); }
st_status st_neg(const st_tensor *a, st_tensor **out) { return unary("neg", U_NEG, a, 0, 0, out); }
st_status st_relu(const st_tensor *a, st_tensor **out) { return unary("relu", U_RELU, a, 0, 0, out); }
st_status st_pow_scalar(const st_tensor *a, double p, st_tensor **out) { return unary("pow_scalar", U_POW, a, p, 0, out); }

st_status st_clamp(const st_tensor *a, double lo, double hi, st_tensor **out)
{
    if (isnan(lo) || isnan(hi) || lo > hi)
        return st_fail(ST_EINVAL, "clamp: bounds [%g, %g] are not an interval", lo, hi);
    return unary("clamp", U_CLAMP, a, lo, hi, out);
}
