/* Elementwise arithmetic, comparisons and selection with numpy
 * broadcasting (see ops.h).
 *
 * Every call builds an iteration plan: the output shape with one stride
 * vector per operand (0 along broadcast dimensions), with size-1
 * dimensions dropped and dimensions that are laid out back to back in
 * every operand merged. The innermost dimension is then as long as the
 * layout allows, and a typed kernel runs one tight loop per row, with
 * separate loops for the unit-stride and scalar-operand cases so the
 * compiler can vectorise them. The operation and dtype are chosen once
 * per row, never per element. */
#include "strata/ops.h"

#include <math.h>
#include <string.h>
#include "ops_internal.h"

typedef enum binop { B_ADD, B_SUB, B_MUL, B_DIV } binop;
typedef enum unop { U_EXP, U_LOG, U_SQRT, U_ABS, U_NEG, U_RELU, U_POW, U_CLAMP } unop;

/* An input as the iteration sees it (a tensor or a scalar of rank 0). */
typedef struct operand {
    const char *data;
    int ndim;
    const int64_t *shape, *stride;
    size_t es; /* element size in bytes */
} operand;

enum { MAX_OPS = 4 }; /* the output and up to three inputs */

typedef struct plan {
    int nd, nops;
    int64_t shape[ST_MAX_DIMS];
    int64_t stride[MAX_OPS][ST_MAX_DIMS]; /* operand 0 is the output */
    size_t es[MAX_OPS];
} plan;

/* What to do with each row: `row` gets the row length, the operand
 * pointers (output first) and their strides along the row. */
typedef struct kernel {
    void (*row)(const struct kernel *k, int64_t n, char *const *p, const int64_t *s);
    st_dtype dt; /* dtype of the float operands */
    int op;
    double p0, p1;
} kernel;

static operand tensor_operand(const st_tensor *t)
{
    return (operand){t->data, t->ndim, t->shape, t->stride, st_dtype_size(t->dtype)};
}

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
    p->es[0] = st_dtype_size(o->dtype);
    for (int k = 0; k < nin; k++) p->es[k + 1] = ins[k].es;
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
static void next_row(const plan *p, int64_t *idx, char **ptr)
{
    for (int d = p->nd - 2; d >= 0; d--) {
        for (int k = 0; k < p->nops; k++) ptr[k] += p->stride[k][d] * (int64_t)p->es[k];
        if (++idx[d] < p->shape[d]) return;
        for (int k = 0; k < p->nops; k++) ptr[k] -= p->stride[k][d] * p->shape[d] * (int64_t)p->es[k];
        idx[d] = 0;
    }
}

/* out (dtype out_dt, the broadcast shape of the inputs) = kernel(ins). */
static st_status run(const char *name, st_dtype out_dt, const operand *ins, int nin, const kernel *k, st_tensor **out)
{
    int nd = ins[0].ndim;
    int64_t shape[ST_MAX_DIMS], prev[ST_MAX_DIMS];
    if (nd) memcpy(shape, ins[0].shape, (size_t)nd * sizeof *shape);
    for (int i = 1; i < nin; i++) {
        memcpy(prev, shape, sizeof prev);
        ST_TRY(broadcast(name, (operand){NULL, nd, prev, NULL, 0}, ins[i], &nd, shape));
    }
    st_ops_out o;
    ST_TRY(st_ops_out_begin(&o, name, out_dt, nd, shape, out, false));
    st_tensor *t = o.target;
    int64_t numel = st_tensor_numel(t);
    if (numel > 0) {
        plan p;
        make_plan(&p, t, ins, nin);
        char *ptr[MAX_OPS] = {t->data};
        int64_t idx[ST_MAX_DIMS] = {0}, inner[MAX_OPS], n = p.shape[p.nd - 1];
        for (int i = 0; i < nin; i++) ptr[i + 1] = (char *)ins[i].data;
        for (int i = 0; i < p.nops; i++) inner[i] = p.stride[i][p.nd - 1];
        for (int64_t r = 0, rows = numel / n; r < rows; r++) {
            k->row(k, n, ptr, inner);
            next_row(&p, idx, ptr);
        }
    }
    return st_ops_out_end(&o, ST_OK, out);
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

#define DEFINE_COMPARE_KERNEL(NAME, T)                                                                \
    static void NAME(st_cmp op, int64_t n, uint8_t *o, int64_t so, const T *a, int64_t sa, const T *b,    \
                     int64_t sb)                                                                         \
    {                                                                                                    \
        switch (op) {                                                                                    \
        case ST_EQ: BIN_LOOP(T, x == y); break;                                                          \
        case ST_NE: BIN_LOOP(T, x != y); break;                                                          \
        case ST_LT: BIN_LOOP(T, x < y); break;                                                           \
        case ST_LE: BIN_LOOP(T, x <= y); break;                                                          \
        case ST_GT: BIN_LOOP(T, x > y); break;                                                           \
        case ST_GE: BIN_LOOP(T, x >= y); break;                                                          \
        }                                                                                                \
    }

DEFINE_COMPARE_KERNEL(compare_f32, float)
DEFINE_COMPARE_KERNEL(compare_f64, double)

#define DEFINE_WHERE_KERNEL(NAME, T)                                                                     \
    static void NAME(int64_t n, T *o, int64_t so, const uint8_t *c, int64_t sc, const T *a, int64_t sa,   \
                     const T *b, int64_t sb)                                                             \
    {                                                                                                    \
        for (int64_t i = 0; i < n; i++) o[i * so] = c[i * sc] ? a[i * sa] : b[i * sb];                   \
    }

DEFINE_WHERE_KERNEL(where_f32, float)
DEFINE_WHERE_KERNEL(where_f64, double)

static void binary_row(const kernel *k, int64_t n, char *const *p, const int64_t *s)
{
    if (k->dt == ST_F32)
        binary_f32((binop)k->op, n, (float *)p[0], s[0], (const float *)p[1], s[1], (const float *)p[2], s[2]);
    else
        binary_f64((binop)k->op, n, (double *)p[0], s[0], (const double *)p[1], s[1], (const double *)p[2], s[2]);
}

static void unary_row(const kernel *k, int64_t n, char *const *p, const int64_t *s)
{
    if (k->dt == ST_F32)
        unary_f32((unop)k->op, (float)k->p0, (float)k->p1, n, (float *)p[0], s[0], (const float *)p[1], s[1]);
    else
        unary_f64((unop)k->op, k->p0, k->p1, n, (double *)p[0], s[0], (const double *)p[1], s[1]);
}

static void compare_row(const kernel *k, int64_t n, char *const *p, const int64_t *s)
{
    if (k->dt == ST_F32)
        compare_f32((st_cmp)k->op, n, (uint8_t *)p[0], s[0], (const float *)p[1], s[1], (const float *)p[2], s[2]);
    else
        compare_f64((st_cmp)k->op, n, (uint8_t *)p[0], s[0], (const double *)p[1], s[1], (const double *)p[2], s[2]);
}

static void where_row(const kernel *k, int64_t n, char *const *p, const int64_t *s)
{
    if (k->dt == ST_F32)
        where_f32(n, (float *)p[0], s[0], (const uint8_t *)p[1], s[1], (const float *)p[2], s[2], (const float *)p[3], s[3]);
    else
        where_f64(n, (double *)p[0], s[0], (const uint8_t *)p[1], s[1], (const double *)p[2], s[2], (const double *)p[3], s[3]);
}

/* A scalar as a rank-0 operand of dtype dt; `v` must outlive the call. */
typedef union scalar {
    float f;
    double d;
} scalar;

static operand scalar_operand(scalar *v, st_dtype dt, double s)
{
    if (dt == ST_F32)
        v->f = (float)s;
    else
        v->d = s;
    return (operand){(const char *)v, 0, NULL, NULL, st_dtype_size(dt)};
}

static st_status binary_tt(const char *name, binop op, const st_tensor *a, const st_tensor *b, st_tensor **out)
{
    ST_TRY(st_ops_float_pair(a, b, name));
    kernel k = {binary_row, a->dtype, op, 0, 0};
    operand ins[2] = {tensor_operand(a), tensor_operand(b)};
    return run(name, a->dtype, ins, 2, &k, out);
}

/* a (op) s, or s (op) a when `reversed`; s is rounded to a's dtype. */
static st_status binary_ts(const char *name, binop op, const st_tensor *a, double s, bool reversed, st_tensor **out)
{
    ST_TRY(st_ops_float_only(a, name));
    scalar v;
    kernel k = {binary_row, a->dtype, op, 0, 0};
    operand sc = scalar_operand(&v, a->dtype, s), t = tensor_operand(a);
    operand ins[2] = {reversed ? sc : t, reversed ? t : sc};
    return run(name, a->dtype, ins, 2, &k, out);
}

static st_status unary(const char *name, unop op, const st_tensor *a, double p0, double p1, st_tensor **out)
{
    ST_TRY(st_ops_float_only(a, name));
    kernel k = {unary_row, a->dtype, op, p0, p1};
    operand in = tensor_operand(a);
    return run(name, a->dtype, &in, 1, &k, out);
}

static st_status check_cmp(st_cmp op)
{
    if ((unsigned)op > ST_GE) return st_fail(ST_EINVAL, "compare: unknown comparison %d", (int)op);
    return ST_OK;
}

st_status st_compare(st_cmp op, const st_tensor *a, const st_tensor *b, st_tensor **out)
{
    ST_TRY(check_cmp(op));
    ST_TRY(st_ops_float_pair(a, b, "compare"));
    kernel k = {compare_row, a->dtype, op, 0, 0};
    operand ins[2] = {tensor_operand(a), tensor_operand(b)};
    return run("compare", ST_U8, ins, 2, &k, out);
}

st_status st_compare_scalar(st_cmp op, const st_tensor *a, double s, st_tensor **out)
{
    ST_TRY(check_cmp(op));
    ST_TRY(st_ops_float_only(a, "compare_scalar"));
    scalar v;
    kernel k = {compare_row, a->dtype, op, 0, 0};
    operand ins[2] = {tensor_operand(a), scalar_operand(&v, a->dtype, s)};
    return run("compare_scalar", ST_U8, ins, 2, &k, out);
}

st_status st_where(const st_tensor *cond, const st_tensor *a, const st_tensor *b, st_tensor **out)
{
    if (cond->dtype != ST_U8)
        return st_fail(ST_EDTYPE, "where: condition dtype must be u8, got %s", st_dtype_name(cond->dtype));
    ST_TRY(st_ops_float_pair(a, b, "where"));
    kernel k = {where_row, a->dtype, 0, 0, 0};
    operand ins[3] = {tensor_operand(cond), tensor_operand(a), tensor_operand(b)};
    return run("where", a->dtype, ins, 3, &k, out);
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
