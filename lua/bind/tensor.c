/* Lua bindings: the tensor userdata (creation, views, element access,
 * conversion to and from nested tables, printing) and the rng userdata.
 * Also the shared argument helpers declared in luabind.h. */
#include "luabind.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef struct tensor_box {
    st_tensor *t; /* NULL once freed */
} tensor_box;

/* ---------------------------------------------------------------- errors */

int st_lua_raise(lua_State *L, st_status s)
{
    const char *msg = st_error_message();
    return luaL_error(L, "%s", msg && *msg ? msg : st_status_name(s));
}

int st_lua_push_failure(lua_State *L)
{
    lua_pushnil(L);
    lua_pushstring(L, st_error_message());
    return 2;
}

/* ------------------------------------------------------------ the box */

st_tensor *st_lua_to_tensor(lua_State *L, int idx)
{
    tensor_box *b = luaL_testudata(L, idx, ST_LUA_TENSOR);
    return b ? b->t : NULL;
}

st_tensor *st_lua_check_tensor(lua_State *L, int idx)
{
    tensor_box *b = luaL_testudata(L, idx, ST_LUA_TENSOR);
    if (!b) luaL_typeerror(L, idx, "tensor");
    if (!b->t) luaL_argerror(L, idx, "tensor has been freed");
    return b->t;
}

st_tensor **st_lua_new_tensor_slot(lua_State *L)
{
    tensor_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->t = NULL;
    luaL_setmetatable(L, ST_LUA_TENSOR);
    return &b->t;
}

void st_lua_track(lua_State *L, const st_tensor *t)
{
    /* One collector step "per kilobyte" of C memory, as if Lua had
     * allocated it; smaller tensors are paced well enough by their box. */
    size_t kb = st_tensor_nbytes(t) >> 10;
    if (kb) lua_gc(L, LUA_GCSTEP, kb > (size_t)INT32_MAX ? INT32_MAX : (int)kb);
}

void st_lua_push_tensor(lua_State *L, st_tensor *t)
{
    *st_lua_new_tensor_slot(L) = t;
    st_lua_track(L, t);
}

void st_lua_add_tensor_methods(lua_State *L, const luaL_Reg *methods)
{
    luaL_getmetatable(L, ST_LUA_TENSOR);
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
}

/* Result of a core call that filled the slot of the box on the top. */
static int fresh(lua_State *L, st_tensor **slot, st_status s)
{
    ST_LUA_CHECK(L, s);
    st_lua_track(L, *slot);
    return 1;
}

static int view(lua_State *L, st_status s)
{
    ST_LUA_CHECK(L, s);
    return 1;
}

/* ------------------------------------------------------ argument helpers */

static int64_t check_int_arg(lua_State *L, int arg, const char *what)
{
    int ok;
    lua_Integer v = lua_tointegerx(L, arg, &ok);
    if (!ok) {
        const char *got = lua_isnumber(L, arg) ? "a non-integer number" : luaL_typename(L, arg);
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: expected integers, got %s", what, got));
    }
    return v;
}

int st_lua_check_shape(lua_State *L, int arg, int64_t shape[ST_MAX_DIMS], int *next)
{
    int ndim = 0;
    if (lua_istable(L, arg)) {
        lua_Integer n = luaL_len(L, arg);
        if (n > ST_MAX_DIMS)
            luaL_argerror(L, arg, lua_pushfstring(L, "shape: %d dimensions given, at most %d supported", (int)n, ST_MAX_DIMS));
        for (int i = 0; i < n; i++) {
            lua_geti(L, arg, i + 1);
            int ok;
            shape[i] = lua_tointegerx(L, -1, &ok);
            if (!ok)
                luaL_argerror(L, arg, lua_pushfstring(L, "shape: expected integers, got %s at position %d",
                                                      luaL_typename(L, -1), i + 1));
            lua_pop(L, 1);
        }
        ndim = (int)n;
        if (next) *next = arg + 1;
        return ndim;
    }
    while (lua_type(L, arg + ndim) == LUA_TNUMBER) {
        if (ndim == ST_MAX_DIMS)
            luaL_argerror(L, arg + ndim, lua_pushfstring(L, "shape: at most %d dimensions supported", ST_MAX_DIMS));
        shape[ndim] = check_int_arg(L, arg + ndim, "shape");
        ndim++;
    }
    if (next) *next = arg + ndim;
    return ndim;
}

/* A shape that must be the last thing in the call (reshape, zeros...). */
static int check_shape_only(lua_State *L, int arg, int64_t shape[ST_MAX_DIMS])
{
    int next;
    int ndim = st_lua_check_shape(L, arg, shape, &next);
    if (!lua_isnone(L, next))
        luaL_argerror(L, next, lua_pushfstring(L, "shape: expected integers, got %s", luaL_typename(L, next)));
    return ndim;
}

static int dim_from_lua(lua_State *L, int arg, lua_Integer d, int ndim)
{
    if (d >= 1 && d <= ndim) return (int)d - 1;
    if (d < 0 && d >= -ndim) return ndim + (int)d;
    return luaL_argerror(L, arg, lua_pushfstring(L, "dim: %d is out of range for a %d-d tensor (dims are 1-based)",
                                                 (int)d, ndim));
}

int st_lua_check_dim(lua_State *L, int arg, const st_tensor *t)
{
    return dim_from_lua(L, arg, check_int_arg(L, arg, "dim"), t->ndim);
}

int st_lua_opt_dim(lua_State *L, int arg, const st_tensor *t, int def0)
{
    return lua_isnoneornil(L, arg) ? def0 : st_lua_check_dim(L, arg, t);
}

st_dtype st_lua_opt_dtype(lua_State *L, int arg, st_dtype def)
{
    if (lua_isnoneornil(L, arg)) return def;
    const char *name = lua_tostring(L, arg);
    st_dtype d;
    if (lua_type(L, arg) != LUA_TSTRING || st_dtype_parse(name, &d) != ST_OK)
        luaL_argerror(L, arg, lua_pushfstring(L, "dtype: expected one of f32, f64, i32, i64, u8, got %s",
                                              lua_type(L, arg) == LUA_TSTRING ? name : luaL_typename(L, arg)));
    return d;
}

void st_lua_check_keys(lua_State *L, int arg, const char *const *allowed)
{
    if (lua_isnoneornil(L, arg)) return;
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, arg)) {
        lua_pop(L, 1);
        bool known = false;
        if (lua_type(L, -1) == LUA_TSTRING)
            for (const char *const *k = allowed; *k && !known; k++) known = strcmp(*k, lua_tostring(L, -1)) == 0;
        if (!known) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (const char *const *k = allowed; *k; k++) {
                if (k != allowed) luaL_addstring(&b, ", ");
                luaL_addstring(&b, *k);
            }
            luaL_pushresult(&b);
            const char *key = luaL_tolstring(L, -2, NULL);
            luaL_argerror(L, arg, lua_pushfstring(L, "options: unknown key '%s' (allowed: %s)", key, lua_tostring(L, -2)));
        }
    }
}

/* A 1-based (or negative) Lua index into a dimension of size n, 0-based. */
static int64_t index_from_lua(lua_State *L, int arg, int64_t n, int dim0)
{
    int64_t i = check_int_arg(L, arg, "index");
    if (i >= 1 && i <= n) return i - 1;
    if (i < 0 && i >= -n) return n + i;
    luaL_argerror(L, arg, lua_pushfstring(L, "index %I out of range for dimension %d of size %I (indices are 1-based)",
                                          (lua_Integer)i, dim0 + 1, (lua_Integer)n));
    return 0;
}

/* ------------------------------------------------------------- creation */

/* Walks the first entries of a nested table to find its shape. */
static int table_shape(lua_State *L, int arg, int64_t shape[ST_MAX_DIMS])
{
    int ndim = 0;
    lua_pushvalue(L, arg);
    while (lua_istable(L, -1)) {
        if (ndim == ST_MAX_DIMS)
            luaL_argerror(L, arg, lua_pushfstring(L, "nested table is deeper than %d levels", ST_MAX_DIMS));
        shape[ndim++] = (int64_t)luaL_len(L, -1);
        if (shape[ndim - 1] == 0) break;
        lua_geti(L, -1, 1);
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
    return ndim;
}

/* Copies the nested table on the top into t (contiguous) from flat *k. */
static void fill_from_table(lua_State *L, int arg, st_tensor *t, int dim, int64_t *k)
{
    if (dim == t->ndim) {
        int ok;
        lua_Number v = lua_tonumberx(L, -1, &ok);
        if (!ok)
            luaL_argerror(L, arg, lua_pushfstring(L, "expected numbers in the nested table, got %s", luaL_typename(L, -1)));
        st_tensor_set_flat(t, (*k)++, v);
        return;
    }
    if (!lua_istable(L, -1) || luaL_len(L, -1) != t->shape[dim])
        luaL_argerror(L, arg, lua_pushfstring(L, "ragged nested table: a level-%d entry has %s, expected %I entries",
                                              dim + 1, lua_istable(L, -1) ? "another length" : luaL_typename(L, -1),
                                              (lua_Integer)t->shape[dim]));
    for (int64_t i = 1; i <= t->shape[dim]; i++) {
        lua_geti(L, -1, (lua_Integer)i);
        fill_from_table(L, arg, t, dim + 1, k);
        lua_pop(L, 1);
    }
}

/* strata.tensor(value [, dtype]): from a number, a nested table or a tensor. */
static int l_tensor(lua_State *L)
{
    st_dtype dtype = st_lua_opt_dtype(L, 2, ST_F32);
    st_tensor *src = st_lua_to_tensor(L, 1);
    if (src) {
        if (lua_isnoneornil(L, 2)) dtype = src->dtype;
        st_tensor **slot = st_lua_new_tensor_slot(L);
        return fresh(L, slot, st_tensor_to_dtype(src, dtype, slot));
    }
    int64_t shape[ST_MAX_DIMS];
    int ndim = 0;
    if (lua_istable(L, 1)) ndim = table_shape(L, 1, shape);
    else if (lua_type(L, 1) != LUA_TNUMBER) return luaL_typeerror(L, 1, "number, nested table or tensor");
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_tensor_new(dtype, ndim, shape, slot));
    int64_t k = 0;
    lua_pushvalue(L, 1);
    fill_from_table(L, 1, *slot, 0, &k);
    lua_pop(L, 1);
    st_lua_track(L, *slot);
    return 1;
}

/* zeros/ones(shape... [, dtype]) */
static int make_filled(lua_State *L, double value)
{
    int64_t shape[ST_MAX_DIMS];
    int next;
    int ndim = st_lua_check_shape(L, 1, shape, &next);
    st_dtype dtype = st_lua_opt_dtype(L, next, ST_F32);
    st_tensor **slot = st_lua_new_tensor_slot(L);
    return fresh(L, slot, st_tensor_full(dtype, ndim, shape, value, slot));
}

static int l_zeros(lua_State *L) { return make_filled(L, 0); }
static int l_ones(lua_State *L) { return make_filled(L, 1); }

/* full(shape_table, value [, dtype]) */
static int l_full(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int64_t shape[ST_MAX_DIMS];
    int ndim = st_lua_check_shape(L, 1, shape, NULL);
    double value = luaL_checknumber(L, 2);
    st_dtype dtype = st_lua_opt_dtype(L, 3, ST_F32);
    st_tensor **slot = st_lua_new_tensor_slot(L);
    return fresh(L, slot, st_tensor_full(dtype, ndim, shape, value, slot));
}

/* arange(stop) = 1..stop; arange(start, stop [, step]); the end is
 * inclusive, like Lua's numeric for. A trailing string is the dtype. */
static int l_arange(lua_State *L)
{
    int nnum = 0;
    while (nnum < 3 && lua_type(L, nnum + 1) == LUA_TNUMBER) nnum++;
    if (nnum == 0) return luaL_typeerror(L, 1, "number");
    double start = nnum >= 2 ? lua_tonumber(L, 1) : 1;
    double stop = nnum >= 2 ? lua_tonumber(L, 2) : lua_tonumber(L, 1);
    double step = nnum == 3 ? lua_tonumber(L, 3) : 1;
    st_dtype dtype = st_lua_opt_dtype(L, nnum + 1, ST_F32);
    if (step == 0 || !isfinite(start) || !isfinite(stop) || !isfinite(step))
        return luaL_error(L, "arange: start, stop and step must be finite and step nonzero");
    /* Count with a little slack so 0, 0.1 .. 1 includes 1. */
    double span = (stop - start) / step;
    double n = span < 0 ? 0 : floor(span + 1e-9 * (1 + fabs(span))) + 1;
    st_tensor **slot = st_lua_new_tensor_slot(L);
    return fresh(L, slot, st_tensor_arange(dtype, start, start + (n - 0.5) * step, step, slot));
}

/* rand/randn(rng, shape... [, dtype]) */
static int make_random(lua_State *L, bool normal)
{
    st_rng *rng = st_lua_check_rng(L, 1);
    int64_t shape[ST_MAX_DIMS];
    int next;
    int ndim = st_lua_check_shape(L, 2, shape, &next);
    st_dtype dtype = st_lua_opt_dtype(L, next, ST_F32);
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_tensor_new(dtype, ndim, shape, slot));
    ST_LUA_CHECK(L, normal ? st_rng_fill_normal(rng, *slot, 0, 1) : st_rng_fill_uniform(rng, *slot, 0, 1));
    st_lua_track(L, *slot);
    return 1;
}

static int l_rand(lua_State *L) { return make_random(L, false); }
static int l_randn(lua_State *L) { return make_random(L, true); }

static int l_is_tensor(lua_State *L)
{
    lua_pushboolean(L, luaL_testudata(L, 1, ST_LUA_TENSOR) != NULL);
    return 1;
}

/* ---------------------------------------------------------- inspection */

static int m_shape(lua_State *L)
{
    st_tensor *t = st_lua_check_tensor(L, 1);
    if (!lua_isnoneornil(L, 2)) {
        lua_pushinteger(L, t->shape[st_lua_check_dim(L, 2, t)]);
        return 1;
    }
    lua_createtable(L, t->ndim, 0);
    for (int i = 0; i < t->ndim; i++) {
        lua_pushinteger(L, t->shape[i]);
        lua_seti(L, -2, i + 1);
    }
    return 1;
}

static int m_dtype(lua_State *L)
{
    lua_pushstring(L, st_dtype_name(st_lua_check_tensor(L, 1)->dtype));
    return 1;
}

static int m_ndim(lua_State *L)
{
    lua_pushinteger(L, st_lua_check_tensor(L, 1)->ndim);
    return 1;
}

static int m_numel(lua_State *L)
{
    lua_pushinteger(L, st_tensor_numel(st_lua_check_tensor(L, 1)));
    return 1;
}

static int m_is_contiguous(lua_State *L)
{
    lua_pushboolean(L, st_tensor_is_contiguous(st_lua_check_tensor(L, 1)));
    return 1;
}

static int mm_len(lua_State *L)
{
    st_tensor *t = st_lua_check_tensor(L, 1);
    if (t->ndim == 0) return luaL_error(L, "length of a 0-d tensor (use t:item())");
    lua_pushinteger(L, t->shape[0]);
    return 1;
}

/* --------------------------------------------------------------- views */

static int m_reshape(lua_State *L)
{
    st_tensor *t = st_lua_check_tensor(L, 1);
    int64_t shape[ST_MAX_DIMS];
    int ndim = check_shape_only(L, 2, shape);
    return view(L, st_tensor_reshape(t, ndim, shape, st_lua_new_tensor_slot(L)));
}

/* slice(dim, start [, stop [, step]]): 1-based, inclusive stop (default
 * the last), negative counts from the end; out-of-range is clamped. */
static int m_slice(lua_State *L)
{
    st_tensor *t = st_lua_check_tensor(L, 1);
    int dim = st_lua_check_dim(L, 2, t);
    int64_t n = t->shape[dim];
    int64_t start = lua_isnoneornil(L, 3) ? 1 : check_int_arg(L, 3, "start");
    int64_t stop = lua_isnoneornil(L, 4) ? -1 : check_int_arg(L, 4, "stop");
    int64_t step = lua_isnoneornil(L, 5) ? 1 : check_int_arg(L, 5, "step");
    if (start == 0) return luaL_argerror(L, 3, "start: 0 is not an index (indices are 1-based)");
    if (step <= 0) return luaL_argerror(L, 5, "step: must be positive");
    int64_t start0 = start > 0 ? start - 1 : n + start;
    int64_t stop0 = stop >= 0 ? stop : n + stop + 1;
    if (start0 < 0) start0 = 0;
    if (stop0 < 0) stop0 = 0;
    return view(L, st_tensor_slice(t, dim, start0, stop0, step, st_lua_new_tensor_slot(L)));
}

static int m_select(lua_State *L)
{
    st_tensor *t = st_lua_check_tensor(L, 1);
    int dim = st_lua_check_dim(L, 2, t);
    int64_t i = index_from_lua(L, 3, t->shape[dim], dim);
    return view(L, st_tensor_select(t, dim, i, st_lua_new_tensor_slot(L)));
}

static int m_permute(lua_State *L)
{
    st_tensor *t = st_lua_check_tensor(L, 1);
    int64_t dims[ST_MAX_DIMS];
    int n = check_shape_only(L, 2, dims);
    if (n != t->ndim)
        return luaL_argerror(L, 2, lua_pushfstring(L, "dims: %d given for a %d-d tensor", n, t->ndim));
    int perm[ST_MAX_DIMS];
    for (int i = 0; i < n; i++) perm[i] = dim_from_lua(L, 2 + i, dims[i], t->ndim);
    return view(L, st_tensor_permute(t, perm, st_lua_new_tensor_slot(L)));
}

/* transpose([d0, d1]): swaps two dims; without arguments a 2-d tensor's. */
static int m_transpose(lua_State *L)
{
    st_tensor *t = st_lua_check_tensor(L, 1);
    int d0 = 0, d1 = 1;
    if (!lua_isnoneornil(L, 2) || t->ndim != 2) {
        d0 = st_lua_check_dim(L, 2, t);
        d1 = st_lua_check_dim(L, 3, t);
    }
    return view(L, st_tensor_transpose(t, d0, d1, st_lua_new_tensor_slot(L)));
}

static int m_contiguous(lua_State *L)
{
    st_tensor *t = st_lua_check_tensor(L, 1);
    bool copies = !st_tensor_is_contiguous(t);
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_tensor_contiguous(t, slot));
    if (copies) st_lua_track(L, *slot);
    return 1;
}

/* ---------------------------------------------------------- copies */

static int m_clone(lua_State *L)
{
    st_tensor *t = st_lua_check_tensor(L, 1);
    st_tensor **slot = st_lua_new_tensor_slot(L);
    return fresh(L, slot, st_tensor_clone(t, slot));
}

static int m_to(lua_State *L)
{
    st_tensor *t = st_lua_check_tensor(L, 1);
    luaL_checkany(L, 2);
    st_dtype d = st_lua_opt_dtype(L, 2, t->dtype);
    st_tensor **slot = st_lua_new_tensor_slot(L);
    return fresh(L, slot, st_tensor_to_dtype(t, d, slot));
}

/* fill(value): in place, returns the tensor. */
static int m_fill(lua_State *L)
{
    st_tensor *t = st_lua_check_tensor(L, 1);
    ST_LUA_CHECK(L, st_tensor_fill(t, luaL_checknumber(L, 2)));
    lua_settop(L, 1);
    return 1;
}

/* assign(src): copies a same-shape tensor (any dtype) or a number into t. */
static int m_assign(lua_State *L)
{
    st_tensor *t = st_lua_check_tensor(L, 1);
    if (lua_type(L, 2) == LUA_TNUMBER) ST_LUA_CHECK(L, st_tensor_fill(t, lua_tonumber(L, 2)));
    else ST_LUA_CHECK(L, st_tensor_copy_into(t, st_lua_check_tensor(L, 2)));
    lua_settop(L, 1);
    return 1;
}

static int m_free(lua_State *L)
{
    tensor_box *b = luaL_checkudata(L, 1, ST_LUA_TENSOR);
    st_tensor_free(b->t);
    b->t = NULL;
    return 0;
}

/* ---------------------------------------------------- element access */

static int64_t flat_index(lua_State *L, st_tensor *t, int first, const char *op)
{
    int given = lua_gettop(L) - first + 1;
    if (given < t->ndim)
        luaL_error(L, "%s: %d indices expected for a %d-d tensor, got %d", op, t->ndim, t->ndim, given < 0 ? 0 : given);
    int64_t flat = 0;
    for (int d = 0; d < t->ndim; d++) flat = flat * t->shape[d] + index_from_lua(L, first + d, t->shape[d], d);
    return flat;
}

static void push_element(lua_State *L, const st_tensor *t, int64_t flat)
{
    double v = st_tensor_get_flat(t, flat);
    if (t->dtype == ST_F32 || t->dtype == ST_F64) lua_pushnumber(L, v);
    else lua_pushinteger(L, (lua_Integer)v);
}

/* get(i, j, ...): the element, 1-based. */
static int m_get(lua_State *L)
{
    st_tensor *t = st_lua_check_tensor(L, 1);
    if (lua_gettop(L) != t->ndim + 1)
        return luaL_error(L, "get: %d indices expected for a %d-d tensor, got %d", t->ndim, t->ndim, lua_gettop(L) - 1);
    push_element(L, t, flat_index(L, t, 2, "get"));
    return 1;
}

/* set(i, j, ..., value): writes one element, returns the tensor. */
static int m_set(lua_State *L)
{
    st_tensor *t = st_lua_check_tensor(L, 1);
    int top = lua_gettop(L);
    if (top != t->ndim + 2)
        return luaL_error(L, "set: %d indices and a value expected for a %d-d tensor, got %d arguments", t->ndim,
                          t->ndim, top - 1);
    double v = luaL_checknumber(L, top);
    lua_pop(L, 1);
    st_tensor_set_flat(t, flat_index(L, t, 2, "set"), v);
    lua_settop(L, 1);
    return 1;
}

/* item(): the value of a one-element tensor. */
static int m_item(lua_State *L)
{
    st_tensor *t = st_lua_check_tensor(L, 1);
    if (st_tensor_numel(t) != 1)
        return luaL_error(L, "item: tensor has %I elements, expected 1", (lua_Integer)st_tensor_numel(t));
    push_element(L, t, 0);
    return 1;
}

static void push_nested(lua_State *L, const st_tensor *t, int dim, int64_t *k)
{
    if (dim == t->ndim) {
        push_element(L, t, (*k)++);
        return;
    }
    luaL_checkstack(L, 2, "totable");
    lua_createtable(L, (int)t->shape[dim], 0);
    for (int64_t i = 0; i < t->shape[dim]; i++) {
        push_nested(L, t, dim + 1, k);
        lua_seti(L, -2, (lua_Integer)i + 1);
    }
}

/* totable(): nested Lua tables (a number for a 0-d tensor). */
static int m_totable(lua_State *L)
{
    st_tensor *t = st_lua_check_tensor(L, 1);
    int64_t k = 0;
    push_nested(L, t, 0, &k);
    return 1;
}

/* ------------------------------------------------------------ printing */

#define EDGE 3 /* entries shown at each end of a long dimension */

static void add_element(luaL_Buffer *b, const st_tensor *t, int64_t flat)
{
    char s[64];
    double v = st_tensor_get_flat(t, flat);
    if (t->dtype == ST_F32 || t->dtype == ST_F64) snprintf(s, sizeof s, "%.6g", v);
    else snprintf(s, sizeof s, "%.0f", v);
    luaL_addstring(b, s);
}

/* ", " between numbers; ",\n" and an indent between rows or blocks. */
static void add_separator(luaL_Buffer *b, const st_tensor *t, int dim)
{
    luaL_addchar(b, ',');
    if (dim + 1 == t->ndim) {
        luaL_addchar(b, ' ');
        return;
    }
    luaL_addchar(b, '\n');
    for (int s = 0; s <= dim; s++) luaL_addchar(b, ' ');
}

/* Writes the block of dimension `dim` whose first element is at C-order
 * index `flat`; long dimensions show EDGE entries at each end. */
static void add_level(luaL_Buffer *b, const st_tensor *t, int dim, int64_t flat)
{
    if (dim == t->ndim) {
        add_element(b, t, flat);
        return;
    }
    int64_t n = t->shape[dim], inner = 1;
    for (int d = dim + 1; d < t->ndim; d++) inner *= t->shape[d];
    luaL_addchar(b, '[');
    for (int64_t i = 0; i < n; i++) {
        if (n > 2 * EDGE && i == EDGE) {
            luaL_addstring(b, "...");
            add_separator(b, t, dim);
            i = n - EDGE;
        }
        add_level(b, t, dim + 1, flat + i * inner);
        if (i + 1 < n) add_separator(b, t, dim);
    }
    luaL_addchar(b, ']');
}

/* "tensor f32 [2,3]" and a truncated view of the values. */
static int mm_tostring(lua_State *L)
{
    tensor_box *bx = luaL_checkudata(L, 1, ST_LUA_TENSOR);
    if (!bx->t) {
        lua_pushliteral(L, "tensor (freed)");
        return 1;
    }
    const st_tensor *t = bx->t;
    char shape[128];
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "tensor ");
    luaL_addstring(&b, st_dtype_name(t->dtype));
    luaL_addchar(&b, ' ');
    luaL_addstring(&b, st_shape_str(t->ndim, t->shape, shape, sizeof shape));
    luaL_addchar(&b, '\n');
    add_level(&b, t, 0, 0);
    luaL_pushresult(&b);
    return 1;
}

/* ------------------------------------------------------------------ rng */

st_rng *st_lua_check_rng(lua_State *L, int idx) { return luaL_checkudata(L, idx, ST_LUA_RNG); }

/* strata.rng(seed) */
static int l_rng(lua_State *L)
{
    lua_Integer seed = check_int_arg(L, 1, "seed");
    st_rng *r = lua_newuserdatauv(L, sizeof *r, 0);
    luaL_setmetatable(L, ST_LUA_RNG);
    st_rng_seed(r, (uint64_t)seed);
    return 1;
}

/* uniform([lo, hi]): a number in [lo, hi), default [0, 1). */
static int r_uniform(lua_State *L)
{
    st_rng *r = st_lua_check_rng(L, 1);
    double lo = luaL_optnumber(L, 2, 0), hi = luaL_optnumber(L, 3, 1);
    lua_pushnumber(L, lo + (hi - lo) * st_rng_uniform(r));
    return 1;
}

/* normal([mean, std]) */
static int r_normal(lua_State *L)
{
    st_rng *r = st_lua_check_rng(L, 1);
    double mean = luaL_optnumber(L, 2, 0), sd = luaL_optnumber(L, 3, 1);
    lua_pushnumber(L, mean + sd * st_rng_normal(r));
    return 1;
}

/* integer(n): uniform in 1..n. */
static int r_integer(lua_State *L)
{
    st_rng *r = st_lua_check_rng(L, 1);
    lua_Integer n = check_int_arg(L, 2, "n");
    luaL_argcheck(L, n >= 1, 2, "n: must be at least 1");
    lua_pushinteger(L, (lua_Integer)st_rng_below(r, (uint64_t)n) + 1);
    return 1;
}

/* Shifts 0-based positions in an i64 tensor to Lua's 1-based. */
static void to_lua_positions(st_tensor *t)
{
    int64_t *p = t->data, n = st_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) p[i] += 1;
}

/* permutation(n): an i64 tensor holding 1..n in random order. */
static int r_permutation(lua_State *L)
{
    st_rng *r = st_lua_check_rng(L, 1);
    int64_t n = check_int_arg(L, 2, "n");
    luaL_argcheck(L, n >= 0, 2, "n: must not be negative");
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_tensor_new(ST_I64, 1, &n, slot));
    st_rng_permutation(r, (*slot)->data, n);
    to_lua_positions(*slot);
    st_lua_track(L, *slot);
    return 1;
}

/* sample(n, k): an i64 tensor of k distinct values from 1..n. */
static int r_sample(lua_State *L)
{
    st_rng *r = st_lua_check_rng(L, 1);
    int64_t n = check_int_arg(L, 2, "n"), k = check_int_arg(L, 3, "k");
    luaL_argcheck(L, n >= 0, 2, "n: must not be negative");
    luaL_argcheck(L, k >= 0 && k <= n, 3, "k: must lie in 0..n");
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_tensor_new(ST_I64, 1, &k, slot));
    ST_LUA_CHECK(L, st_rng_sample(r, n, k, (*slot)->data));
    to_lua_positions(*slot);
    st_lua_track(L, *slot);
    return 1;
}

/* ------------------------------------------------------------ register */

static const luaL_Reg module_functions[] = {
    {"tensor", l_tensor}, {"zeros", l_zeros}, {"ones", l_ones},     {"full", l_full},
    {"arange", l_arange}, {"rand", l_rand},   {"randn", l_randn},   {"rng", l_rng},
    {"is_tensor", l_is_tensor}, {NULL, NULL}};

static const luaL_Reg tensor_methods[] = {
    {"shape", m_shape},       {"dtype", m_dtype},         {"ndim", m_ndim},
    {"numel", m_numel},       {"is_contiguous", m_is_contiguous},
    {"reshape", m_reshape},   {"slice", m_slice},         {"select", m_select},
    {"permute", m_permute},   {"transpose", m_transpose}, {"contiguous", m_contiguous},
    {"clone", m_clone},       {"to", m_to},               {"fill", m_fill},
    {"assign", m_assign},     {"get", m_get},             {"set", m_set},
    {"item", m_item},         {"totable", m_totable},     {"free", m_free},
    {NULL, NULL}};

static const luaL_Reg tensor_meta[] = {
    {"__gc", m_free}, {"__close", m_free}, {"__len", mm_len}, {"__tostring", mm_tostring}, {NULL, NULL}};

static const luaL_Reg rng_methods[] = {{"uniform", r_uniform},         {"normal", r_normal},
                                       {"integer", r_integer},         {"permutation", r_permutation},
                                       {"sample", r_sample},           {NULL, NULL}};

void st_lua_register_tensor(lua_State *L)
{
    luaL_newmetatable(L, ST_LUA_TENSOR);
    luaL_setfuncs(L, tensor_meta, 0);
    luaL_newlib(L, tensor_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    luaL_newmetatable(L, ST_LUA_RNG);
    luaL_newlib(L, rng_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    luaL_setfuncs(L, module_functions, 0);
}
