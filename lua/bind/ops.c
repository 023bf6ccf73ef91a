/* Lua bindings of the tensor math (strata/ops.h) and linear algebra
 * (strata/linalg.h): arithmetic metamethods, elementwise functions,
 * reductions, indexing, top-k, matmul, eigh and svd.
 *
 * Positions cross the boundary 1-based: argmax/argmin/topk return 1-based
 * indices, and gather/index_select take them. */
#include "luabind.h"

#include <math.h>
#include <stdbool.h>
#include "strata/linalg.h"
#include "strata/ops.h"

typedef st_status (*binary_fn)(const st_tensor *, const st_tensor *, st_tensor **);
typedef st_status (*scalar_fn)(const st_tensor *, double, st_tensor **);
typedef st_status (*inplace_fn)(st_tensor *, const st_tensor *);
typedef st_status (*unary_fn)(const st_tensor *, st_tensor **);
typedef st_status (*reduce_fn)(const st_tensor *, int, bool, st_tensor **);
typedef st_status (*reduce_all_fn)(const st_tensor *, double *);

/* A fresh result: the box is created before the core call fills it. */
#define RESULT(L, call_with_slot)                              \
    do {                                                       \
        st_tensor **slot_ = st_lua_new_tensor_slot(L);         \
        ST_LUA_CHECK((L), call_with_slot);                     \
        st_lua_track((L), *slot_);                             \
        return 1;                                              \
    } while (0)

/* ------------------------------------------------------------ arithmetic */

typedef struct arith_op {
    binary_fn tensor;
    scalar_fn right;    /* tensor (op) number */
    scalar_fn left;     /* number (op) tensor */
    inplace_fn inplace; /* tensor (op)= tensor */
} arith_op;

static const arith_op ADD = {st_add, st_add_scalar, st_add_scalar, st_add_inplace};
static const arith_op SUB = {st_sub, st_sub_scalar, st_rsub_scalar, st_sub_inplace};
static const arith_op MUL = {st_mul, st_mul_scalar, st_mul_scalar, st_mul_inplace};
static const arith_op DIV = {st_div, st_div_scalar, st_rdiv_scalar, st_div_inplace};

/* a (op) b where either side may be a number. */
static int arith(lua_State *L, const arith_op *op)
{
    if (lua_type(L, 1) == LUA_TNUMBER) {
        double s = lua_tonumber(L, 1);
        st_tensor *b = st_lua_check_tensor(L, 2);
        RESULT(L, op->left(b, s, slot_));
    }
    st_tensor *a = st_lua_check_tensor(L, 1);
    if (lua_type(L, 2) == LUA_TNUMBER) {
        double s = lua_tonumber(L, 2);
        RESULT(L, op->right(a, s, slot_));
    }
    st_tensor *b = st_lua_check_tensor(L, 2);
    RESULT(L, op->tensor(a, b, slot_));
}

static int l_add(lua_State *L) { return arith(L, &ADD); }
static int l_sub(lua_State *L) { return arith(L, &SUB); }
static int l_mul(lua_State *L) { return arith(L, &MUL); }
static int l_div(lua_State *L) { return arith(L, &DIV); }

/* t:add_(x) etc.: t = t (op) x in place (x a number or a tensor that
 * broadcasts to t's shape); returns t. */
static int arith_inplace(lua_State *L, const arith_op *op)
{
    st_tensor *a = st_lua_check_tensor(L, 1);
    if (lua_type(L, 2) == LUA_TNUMBER) {
        st_tensor *same = a; /* elementwise calls may write over their input */
        ST_LUA_CHECK(L, op->right(a, lua_tonumber(L, 2), &same));
    } else {
        ST_LUA_CHECK(L, op->inplace(a, st_lua_check_tensor(L, 2)));
    }
    lua_settop(L, 1);
    return 1;
}

static int l_add_(lua_State *L) { return arith_inplace(L, &ADD); }
static int l_sub_(lua_State *L) { return arith_inplace(L, &SUB); }
static int l_mul_(lua_State *L) { return arith_inplace(L, &MUL); }
static int l_div_(lua_State *L) { return arith_inplace(L, &DIV); }

static int unary(lua_State *L, unary_fn fn)
{
    st_tensor *a = st_lua_check_tensor(L, 1);
    RESULT(L, fn(a, slot_));
}

static int l_exp(lua_State *L) { return unary(L, st_exp); }
static int l_log(lua_State *L) { return unary(L, st_log); }
static int l_sqrt(lua_State *L) { return unary(L, st_sqrt); }
static int l_abs(lua_State *L) { return unary(L, st_abs); }
static int l_neg(lua_State *L) { return unary(L, st_neg); }
static int l_relu(lua_State *L) { return unary(L, st_relu); }

/* t ^ p and t:pow(p) for a number p. */
static int l_pow(lua_State *L)
{
    st_tensor *a = st_lua_check_tensor(L, 1);
    double p = luaL_checknumber(L, 2);
    RESULT(L, st_pow_scalar(a, p, slot_));
}

/* clamp([lo], [hi]): nil means unbounded on that side. */
static int l_clamp(lua_State *L)
{
    st_tensor *a = st_lua_check_tensor(L, 1);
    double lo = luaL_optnumber(L, 2, -INFINITY), hi = luaL_optnumber(L, 3, INFINITY);
    RESULT(L, st_clamp(a, lo, hi, slot_));
}

/* ------------------------------------------------------------ reductions */

/* t:sum() is a number; t:sum(dim [, keepdim]) a tensor. */
static int reduce(lua_State *L, reduce_fn along, reduce_all_fn all)
{
    st_tensor *a = st_lua_check_tensor(L, 1);
    if (lua_isnoneornil(L, 2)) {
        double v;
        ST_LUA_CHECK(L, all(a, &v));
        lua_pushnumber(L, v);
        return 1;
    }
    int dim = st_lua_check_dim(L, 2, a);
    bool keepdim = lua_toboolean(L, 3);
    RESULT(L, along(a, dim, keepdim, slot_));
}

static int l_sum(lua_State *L) { return reduce(L, st_sum, st_sum_all); }
static int l_mean(lua_State *L) { return reduce(L, st_mean, st_mean_all); }
static int l_max(lua_State *L) { return reduce(L, st_max, st_max_all); }
static int l_min(lua_State *L) { return reduce(L, st_min, st_min_all); }

/* Adds 1 to every entry of an i64 tensor (0-based core positions to Lua). */
static void one_based(st_tensor *t)
{
    int64_t *p = t->data, n = st_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) p[i] += 1;
}

/* t:argmax() is the 1-based flat position; t:argmax(dim [, keepdim]) an
 * i64 tensor of 1-based positions along dim. */
static int arg_reduce(lua_State *L, reduce_fn along, st_status (*all)(const st_tensor *, int64_t *))
{
    st_tensor *a = st_lua_check_tensor(L, 1);
    if (lua_isnoneornil(L, 2)) {
        int64_t i;
        ST_LUA_CHECK(L, all(a, &i));
        lua_pushinteger(L, i + 1);
        return 1;
    }
    int dim = st_lua_check_dim(L, 2, a);
    bool keepdim = lua_toboolean(L, 3);
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, along(a, dim, keepdim, slot));
    one_based(*slot);
    st_lua_track(L, *slot);
    return 1;
}

static int l_argmax(lua_State *L) { return arg_reduce(L, st_argmax, st_argmax_all); }
static int l_argmin(lua_State *L) { return arg_reduce(L, st_argmin, st_argmin_all); }

/* var([dim [, ddof=0 [, keepdim]]]) */
static int l_var(lua_State *L)
{
    st_tensor *a = st_lua_check_tensor(L, 1);
    int ddof = (int)luaL_optinteger(L, 3, 0);
    if (lua_isnoneornil(L, 2)) {
        double v;
        ST_LUA_CHECK(L, st_var_all(a, ddof, &v));
        lua_pushnumber(L, v);
        return 1;
    }
    int dim = st_lua_check_dim(L, 2, a);
    bool keepdim = lua_toboolean(L, 4);
    RESULT(L, st_var(a, dim, ddof, keepdim, slot_));
}

/* ------------------------------------------------------------- indexing */

/* A 0-based i64 copy of the 1-based positions at `arg` (an integer tensor
 * or a table of integers), each checked against 1..n. The copy stays on
 * the stack (so an error cannot leak it) and is returned. */
static st_tensor *positions(lua_State *L, int arg, int64_t n)
{
    st_tensor **slot = st_lua_new_tensor_slot(L);
    st_tensor *src = st_lua_to_tensor(L, arg);
    if (src) {
        if (src->dtype != ST_I64 && src->dtype != ST_I32)
            luaL_argerror(L, arg, lua_pushfstring(L, "index: expected an i64 or i32 tensor, got %s",
                                                  st_dtype_name(src->dtype)));
        ST_LUA_CHECK(L, st_tensor_to_dtype(src, ST_I64, slot));
    } else if (lua_istable(L, arg)) {
        int64_t len = (int64_t)luaL_len(L, arg);
        ST_LUA_CHECK(L, st_tensor_new(ST_I64, 1, &len, slot));
        for (int64_t i = 0; i < len; i++) {
            lua_geti(L, arg, (lua_Integer)i + 1);
            int ok;
            ((int64_t *)(*slot)->data)[i] = lua_tointegerx(L, -1, &ok);
            if (!ok)
                luaL_argerror(L, arg, lua_pushfstring(L, "index: expected integers, got %s at position %I",
                                                      luaL_typename(L, -1), (lua_Integer)i + 1));
            lua_pop(L, 1);
        }
    } else {
        luaL_typeerror(L, arg, "index tensor or table of integers");
    }
    int64_t *p = (*slot)->data, m = st_tensor_numel(*slot);
    for (int64_t i = 0; i < m; i++) {
        if (p[i] < 1 || p[i] > n)
            luaL_argerror(L, arg, lua_pushfstring(L, "index: entry %I at position %I is outside 1..%I (indices are 1-based)",
                                                  (lua_Integer)p[i], (lua_Integer)i + 1, (lua_Integer)n));
        p[i] -= 1;
    }
    return *slot;
}

/* index_select(dim, index): the entries index[1], index[2], ... along dim. */
static int l_index_select(lua_State *L)
{
    st_tensor *a = st_lua_check_tensor(L, 1);
    int dim = st_lua_check_dim(L, 2, a);
    st_tensor *idx = positions(L, 3, a->shape[dim]);
    RESULT(L, st_index_select(a, dim, idx, slot_));
}

/* gather(dim, index): out[i][j] = a[i][index[i][j]] for dim 2, etc. */
static int l_gather(lua_State *L)
{
    st_tensor *a = st_lua_check_tensor(L, 1);
    int dim = st_lua_check_dim(L, 2, a);
    if (!st_lua_to_tensor(L, 3)) return luaL_typeerror(L, 3, "index tensor");
    st_tensor *idx = positions(L, 3, a->shape[dim]);
    RESULT(L, st_gather(a, dim, idx, slot_));
}

/* topk(k [, dim=-1 [, largest=true]]) -> values, 1-based indices */
static int l_topk(lua_State *L)
{
    st_tensor *a = st_lua_check_tensor(L, 1);
    lua_Integer k = luaL_checkinteger(L, 2);
    int dim = a->ndim ? st_lua_opt_dim(L, 3, a, a->ndim - 1) : 0;
    bool largest = lua_isnoneornil(L, 4) ? true : lua_toboolean(L, 4);
    st_tensor **values = st_lua_new_tensor_slot(L);
    st_tensor **indices = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_topk(a, k, dim, largest, values, indices));
    one_based(*indices);
    st_lua_track(L, *values);
    st_lua_track(L, *indices);
    return 2;
}

/* strata.concat({a, b, ...} [, dim=1]) */
static int l_concat(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    int n = (int)luaL_len(L, 1);
    luaL_argcheck(L, n >= 1, 1, "tensors: expected a non-empty list");
    const st_tensor **parts = lua_newuserdatauv(L, (size_t)n * sizeof *parts, 0); /* freed by the GC */
    for (int i = 0; i < n; i++) {
        lua_geti(L, 1, i + 1);
        parts[i] = st_lua_to_tensor(L, -1);
        if (!parts[i])
            luaL_argerror(L, 1, lua_pushfstring(L, "tensors: entry %d is a %s, not a tensor", i + 1, luaL_typename(L, -1)));
        lua_pop(L, 1); /* the list keeps it alive */
    }
    int dim = lua_isnoneornil(L, 2) ? 0 : st_lua_check_dim(L, 2, parts[0]);
    RESULT(L, st_cat(n, parts, dim, slot_));
}

/* --------------------------------------------------------- linear algebra */

static int l_matmul(lua_State *L)
{
    st_tensor *a = st_lua_check_tensor(L, 1), *b = st_lua_check_tensor(L, 2);
    RESULT(L, st_matmul(a, b, slot_));
}

/* strata.eigh(a) -> eigenvalues (ascending), eigenvectors (columns) */
static int l_eigh(lua_State *L)
{
    st_tensor *a = st_lua_check_tensor(L, 1);
    st_tensor **w = st_lua_new_tensor_slot(L), **v = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_eigh(a, w, v));
    st_lua_track(L, *w);
    st_lua_track(L, *v);
    return 2;
}

/* strata.svd(a) -> u, s, vt (thin) */
static int l_svd(lua_State *L)
{
    st_tensor *a = st_lua_check_tensor(L, 1);
    st_tensor **u = st_lua_new_tensor_slot(L), **s = st_lua_new_tensor_slot(L), **vt = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_svd(a, u, s, vt));
    st_lua_track(L, *u);
    st_lua_track(L, *s);
    st_lua_track(L, *vt);
    return 3;
}

/* ------------------------------------------------------------- register */

static const luaL_Reg methods[] = {
    {"add", l_add},       {"sub", l_sub},         {"mul", l_mul},         {"div", l_div},
    {"add_", l_add_},     {"sub_", l_sub_},       {"mul_", l_mul_},       {"div_", l_div_},
    {"exp", l_exp},       {"log", l_log},         {"sqrt", l_sqrt},       {"abs", l_abs},
    {"neg", l_neg},       {"relu", l_relu},       {"pow", l_pow},         {"clamp", l_clamp},
    {"sum", l_sum},       {"mean", l_mean},       {"max", l_max},         {"min", l_min},
    {"argmax", l_argmax}, {"argmin", l_argmin},   {"var", l_var},         {"topk", l_topk},
    {"gather", l_gather}, {"index_select", l_index_select},               {"matmul", l_matmul},
    {NULL, NULL}};

static const luaL_Reg metamethods[] = {{"__add", l_add}, {"__sub", l_sub}, {"__mul", l_mul}, {"__div", l_div},
                                       {"__unm", l_neg}, {"__pow", l_pow}, {NULL, NULL}};

static const luaL_Reg functions[] = {
    {"concat", l_concat}, {"matmul", l_matmul}, {"eigh", l_eigh}, {"svd", l_svd}, {NULL, NULL}};

void st_lua_register_ops(lua_State *L)
{
    st_lua_add_tensor_methods(L, methods);
    luaL_getmetatable(L, ST_LUA_TENSOR);
    luaL_setfuncs(L, metamethods, 0);
    lua_pop(L, 1);
    luaL_setfuncs(L, functions, 0);
}
