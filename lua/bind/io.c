/* Lua bindings of the file formats: .npy (strata/npy.h) and safetensors
 * (strata/safetensors.h).
 *
 * Failures of the files themselves (missing, unreadable, malformed, an
 * unknown tensor name) return nil plus the message, like io.open; misuse
 * (wrong argument types) raises. Objects holding files (safetensors
 * readers, npy writers) are userdata whose __gc and __close share one
 * idempotent release; a writer that was not closed explicitly is
 * aborted, leaving no file behind. */
#include "luabind.h"

#include <stdlib.h>
#include <string.h>
#include "strata/npy.h"
#include "strata/safetensors.h"

#define LUA_SAFETENSORS "strata.safetensors"
#define LUA_NPY_WRITER "strata.npy_writer"

/* Returns 1 with the fresh tensor in the slot on the top, or 2 (nil and
 * the message) on failure. */
static int tensor_or_failure(lua_State *L, st_tensor **slot, st_status s)
{
    if (s != ST_OK) return st_lua_push_failure(L);
    st_lua_track(L, *slot);
    return 1;
}

static int ok_or_failure(lua_State *L, st_status s)
{
    if (s != ST_OK) return st_lua_push_failure(L);
    lua_pushboolean(L, 1);
    return 1;
}

/* ------------------------------------------------------------------ npy */

/* strata.load_npy(path) -> tensor | nil, message */
static int l_load_npy(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    st_tensor **slot = st_lua_new_tensor_slot(L);
    return tensor_or_failure(L, slot, st_npy_load(path, slot));
}

/* strata.map_npy(path) -> tensor over a private mapping | nil, message */
static int l_map_npy(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    st_tensor **slot = st_lua_new_tensor_slot(L);
    if (st_npy_map(path, slot) != ST_OK) return st_lua_push_failure(L);
    return 1; /* pages are read on demand: nothing for the collector to count */
}

/* strata.save_npy(path, t) -> true | nil, message */
static int l_save_npy(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    st_tensor *t = st_lua_check_tensor(L, 2);
    return ok_or_failure(L, st_npy_save(path, t));
}

static st_npy_writer *check_writer(lua_State *L)
{
    return st_lua_check_box(L, 1, LUA_NPY_WRITER, "npy writer is already closed");
}

/* strata.npy_writer(path, dtype, shape) -> writer | nil, message */
static int l_npy_writer(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checkany(L, 2);
    st_dtype dtype = st_lua_opt_dtype(L, 2, ST_F32);
    int64_t shape[ST_MAX_DIMS];
    luaL_checktype(L, 3, LUA_TTABLE);
    int ndim = st_lua_check_shape(L, 3, shape, NULL);
    void **slot = st_lua_new_box(L, LUA_NPY_WRITER, 0);
    st_npy_writer *w;
    if (st_npy_writer_open(path, dtype, ndim, shape, &w) != ST_OK) return st_lua_push_failure(L);
    *slot = w;
    return 1;
}

/* w:append(rows): a batch [k, ...] or one row; raises on misuse. */
static int w_append(lua_State *L)
{
    st_npy_writer *w = check_writer(L);
    ST_LUA_CHECK(L, st_npy_writer_append(w, st_lua_check_tensor(L, 2)));
    lua_settop(L, 1);
    return 1;
}

/* w:close() -> true | nil, message: puts the file in place. */
static int w_close(lua_State *L)
{
    check_writer(L);
    st_npy_writer *w = st_lua_box_take(L, 1, LUA_NPY_WRITER); /* close frees it either way */
    return ok_or_failure(L, st_npy_writer_close(w));
}

/* __gc / __close / w:abort(): drops an unfinished file. */
static int w_abort(lua_State *L)
{
    st_npy_writer_abort(st_lua_box_take(L, 1, LUA_NPY_WRITER));
    return 0;
}

/* ---------------------------------------------------------- safetensors */

static st_safetensors *check_file(lua_State *L)
{
    return st_lua_check_box(L, 1, LUA_SAFETENSORS, "safetensors file is closed");
}

/* The natural st_dtype of a file dtype (half floats widen to f32). */
static st_dtype natural_dtype(st_st_dtype d)
{
    switch (d) {
    case ST_ST_F64: return ST_F64;
    case ST_ST_I64: return ST_I64;
    case ST_ST_I32: return ST_I32;
    case ST_ST_U8: return ST_U8;
    default: return ST_F32;
    }
}

/* strata.open_safetensors(path) -> file | nil, message */
static int l_open_safetensors(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    void **slot = st_lua_new_box(L, LUA_SAFETENSORS, 0);
    st_safetensors *f;
    if (st_safetensors_open(path, &f) != ST_OK) return st_lua_push_failure(L);
    *slot = f;
    return 1;
}

/* f:names() -> {name, ...} in file order */
static int f_names(lua_State *L)
{
    st_safetensors *f = check_file(L);
    size_t n = st_safetensors_count(f);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, st_safetensors_entry_at(f, i)->name);
        lua_seti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* f:info(name) -> {dtype = "F32", shape = {...}} | nil, message */
static int f_info(lua_State *L)
{
    st_safetensors *f = check_file(L);
    const char *name = luaL_checkstring(L, 2);
    const st_safetensors_entry *e = st_safetensors_find(f, name);
    if (!e) {
        lua_pushnil(L);
        lua_pushfstring(L, "safetensors: no tensor named '%s'", name);
        return 2;
    }
    lua_createtable(L, 0, 2);
    lua_pushstring(L, st_safetensors_dtype_name(e->dtype));
    lua_setfield(L, -2, "dtype");
    lua_createtable(L, e->ndim, 0);
    for (int i = 0; i < e->ndim; i++) {
        lua_pushinteger(L, e->shape[i]);
        lua_seti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "shape");
    return 1;
}

static void push_metadata(lua_State *L, const st_safetensors *f)
{
    size_t n = st_safetensors_metadata_count(f);
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        const char *k, *v;
        st_safetensors_metadata_at(f, i, &k, &v);
        lua_pushstring(L, v);
        lua_setfield(L, -2, k);
    }
}

/* f:metadata() -> {key = value, ...} */
static int f_metadata(lua_State *L)
{
    push_metadata(L, check_file(L));
    return 1;
}

/* Loads `name` (at the top) converted to dtype (or its natural one). */
static st_status load_entry(const st_safetensors *f, const char *name, int dtype_given, st_dtype dtype,
                            st_tensor **slot)
{
    const st_safetensors_entry *e = st_safetensors_find(f, name);
    if (!e) return st_fail(ST_EINVAL, "safetensors: no tensor named '%s'", name);
    return st_safetensors_load(f, name, dtype_given ? dtype : natural_dtype(e->dtype), slot);
}

/* f:load(name [, dtype]) -> tensor | nil, message */
static int f_load(lua_State *L)
{
    st_safetensors *f = check_file(L);
    const char *name = luaL_checkstring(L, 2);
    int given = !lua_isnoneornil(L, 3);
    st_dtype dtype = st_lua_opt_dtype(L, 3, ST_F32);
    st_tensor **slot = st_lua_new_tensor_slot(L);
    return tensor_or_failure(L, slot, load_entry(f, name, given, dtype, slot));
}

/* __gc / __close / f:close() */
static int f_close(lua_State *L)
{
    st_safetensors_close(st_lua_box_take(L, 1, LUA_SAFETENSORS));
    return 0;
}

/* strata.load_safetensors(path [, dtype]) -> {name = tensor}, metadata
 * | nil, message. Tensors stay valid after the file object is gone. */
static int l_load_safetensors(lua_State *L)
{
    luaL_checkstring(L, 1);
    int given = !lua_isnoneornil(L, 2);
    st_dtype dtype = st_lua_opt_dtype(L, 2, ST_F32);
    lua_settop(L, 1);
    if (l_open_safetensors(L) != 1) return 2;
    st_safetensors *f = st_lua_box_get(L, 2, LUA_SAFETENSORS);
    size_t n = st_safetensors_count(f);
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        const char *name = st_safetensors_entry_at(f, i)->name;
        st_tensor **slot = st_lua_new_tensor_slot(L);
        if (load_entry(f, name, given, dtype, slot) != ST_OK) return st_lua_push_failure(L);
        st_lua_track(L, *slot);
        lua_setfield(L, -2, name);
    }
    push_metadata(L, f);
    lua_pushcfunction(L, f_close);
    lua_pushvalue(L, 2);
    lua_call(L, 1, 0);
    return 2;
}

/* Sorts names so saved files do not depend on table traversal order. */
static int compare_names(const void *a, const void *b)
{
    return strcmp(((const st_named_tensor *)a)->name, ((const st_named_tensor *)b)->name);
}

/* strata.save_safetensors(path, {name = tensor, ...} [, {key = value}])
 * -> true | nil, message. Tensors are written in name order. */
static int l_save_safetensors(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    size_t n = 0, n_meta = 0;
    for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) n++;
    if (lua_istable(L, 3))
        for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) n_meta++;
    /* scratch arrays in userdata, so an error cannot leak them */
    st_named_tensor *items = lua_newuserdatauv(L, (n ? n : 1) * sizeof *items, 0);
    const char **meta = lua_newuserdatauv(L, (n_meta ? 2 * n_meta : 1) * sizeof *meta, 0);
    size_t i = 0;
    for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_argerror(L, 2, lua_pushfstring(L, "tensors: keys must be names, got %s", luaL_typename(L, -2)));
        st_tensor *t = st_lua_to_tensor(L, -1);
        if (!t)
            luaL_argerror(L, 2, lua_pushfstring(L, "tensors: '%s' is a %s, not a tensor", lua_tostring(L, -2),
                                                luaL_typename(L, -1)));
        items[i].name = lua_tostring(L, -2); /* the table keeps key and value alive */
        items[i++].tensor = t;
    }
    qsort(items, n, sizeof *items, compare_names);
    i = 0;
    if (lua_istable(L, 3))
        for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                luaL_argerror(L, 3, "metadata: keys and values must be strings");
            meta[i++] = lua_tostring(L, -2);
            meta[i++] = lua_tostring(L, -1);
        }
    return ok_or_failure(L, st_safetensors_save(path, items, n, meta, n_meta));
}

/* ------------------------------------------------------------- register */

static const luaL_Reg functions[] = {{"load_npy", l_load_npy},
                                     {"map_npy", l_map_npy},
                                     {"save_npy", l_save_npy},
                                     {"npy_writer", l_npy_writer},
                                     {"open_safetensors", l_open_safetensors},
                                     {"load_safetensors", l_load_safetensors},
                                     {"save_safetensors", l_save_safetensors},
                                     {NULL, NULL}};

static const luaL_Reg writer_methods[] = {{"append", w_append}, {"close", w_close}, {"abort", w_abort}, {NULL, NULL}};
static const luaL_Reg file_methods[] = {{"names", f_names}, {"info", f_info}, {"metadata", f_metadata},
                                        {"load", f_load},   {"close", f_close}, {NULL, NULL}};

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction release)
{
    luaL_newmetatable(L, name);
    lua_pushcfunction(L, release);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, release);
    lua_setfield(L, -2, "__close");
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

void st_lua_register_io(lua_State *L)
{
    new_class(L, LUA_NPY_WRITER, writer_methods, w_abort);
    new_class(L, LUA_SAFETENSORS, file_methods, f_close);
    luaL_setfuncs(L, functions, 0);
}
