/* Lua bindings for saved bundles (lua/strata/bundle.lua): checksums,
 * JSON and the directory operations an atomic bundle save needs.
 *   strata.core.sha256(string) -> 64 hex digits
 *   strata.core.sha256_file(path) -> hex, size | nil, message
 *   strata.core.json_decode(text) -> value | nil, message
 *       objects become tables with string keys, arrays sequences, null
 *       the sentinel strata.core.json_null; the parser is strict (json.h)
 *   strata.core.json_encode(value [, pretty]) -> text
 *       tables with keys 1..n are arrays (the empty table is []), tables
 *       with string keys objects (members sorted by key); integers stay
 *       integers; NaN, Inf, functions, cycles and mixed keys are errors
 *   strata.core.mkdir(path) -> true | nil, message (the parent must exist)
 *   strata.core.rmdir(path) -> true | nil, message (only an empty one)
 * Data only: nothing here evaluates text as code. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "luabind.h"
#include "strata/json.h"
#include "strata/sha256.h"

#define ST_LUA_JSON_WRITER "strata.json_writer"
#define MAX_DEPTH 64

static int json_null_key; /* its address keys the sentinel in the registry */

static void push_null(lua_State *L) { lua_rawgetp(L, LUA_REGISTRYINDEX, &json_null_key); }

static int l_sha256(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    uint8_t d[ST_SHA256_BYTES];
    char hex[ST_SHA256_HEX];
    st_sha256_buffer(s, n, d);
    st_sha256_hex(d, hex);
    lua_pushstring(L, hex);
    return 1;
}

static int l_sha256_file(lua_State *L)
{
    char hex[ST_SHA256_HEX];
    uint64_t size = 0;
    if (st_sha256_file(luaL_checkstring(L, 1), hex, &size) != ST_OK) return st_lua_push_failure(L);
    lua_pushstring(L, hex);
    lua_pushinteger(L, (lua_Integer)size);
    return 2;
}

/* ------------------------------------------------------------ decoding */

static void push_json(lua_State *L, const st_json *v)
{
    luaL_checkstack(L, 4, "json: nested too deeply");
    switch (st_json_type_of(v)) {
    case ST_JSON_NULL: push_null(L); break;
    case ST_JSON_BOOL: lua_pushboolean(L, st_json_bool(v)); break;
    case ST_JSON_NUMBER: {
        double x = st_json_number(v);
        lua_Integer i;
        /* integer literals (and integral values) become Lua integers */
        if (lua_numbertointeger(x, &i) && (double)i == x) lua_pushinteger(L, i);
        else lua_pushnumber(L, x);
        break;
    }
    case ST_JSON_STRING: lua_pushlstring(L, st_json_string(v), st_json_string_len(v)); break;
    case ST_JSON_ARRAY: {
        size_t n = st_json_size(v);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            push_json(L, st_json_at(v, i));
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case ST_JSON_OBJECT: {
        size_t n = st_json_size(v);
        lua_createtable(L, 0, (int)n);
        for (size_t i = 0; i < n; i++) {
            lua_pushlstring(L, st_json_key_at(v, i), st_json_key_len_at(v, i));
            push_json(L, st_json_at(v, i));
            lua_rawset(L, -3);
        }
        break;
    }
    }
}

/* The tree is owned by a userdata so that a Lua memory error while
 * building tables cannot leak it. */
typedef struct tree_box {
    st_json *root;
} tree_box;

static int tree_gc(lua_State *L)
{
    tree_box *b = lua_touserdata(L, 1);
    st_json_free(b->root);
    b->root = NULL;
    return 0;
}

static int l_json_decode(lua_State *L)
{
    size_t n;
    const char *text = luaL_checklstring(L, 1, &n);
    tree_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->root = NULL;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, tree_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    if (st_json_parse(text, n, &b->root) != ST_OK) return st_lua_push_failure(L);
    push_json(L, b->root);
    st_json_free(b->root);
    b->root = NULL;
    return 1;
}

/* ------------------------------------------------------------ encoding */

static int writer_gc(lua_State *L)
{
    st_json_writer_free(st_lua_box_take(L, 1, ST_LUA_JSON_WRITER));
    return 0;
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Encodes the value at stack index idx (absolute). */
static void encode(lua_State *L, st_json_writer *w, int idx, int depth)
{
    luaL_checkstack(L, 6, "json_encode: nested too deeply");
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN: st_json_write_bool(w, lua_toboolean(L, idx)); return;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) st_json_write_int(w, (int64_t)lua_tointeger(L, idx));
        else {
            double x = lua_tonumber(L, idx);
            if (x != x || x - x != 0) luaL_error(L, "json_encode: %f cannot be written as JSON", x);
            st_json_write_number(w, x);
        }
        return;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        st_json_write_string_len(w, s, n);
        return;
    }
    case LUA_TLIGHTUSERDATA:
        push_null(L);
        if (lua_rawequal(L, idx, -1)) {
            lua_pop(L, 1);
            st_json_write_null(w);
            return;
        }
        break;
    case LUA_TTABLE: {
        if (depth >= MAX_DEPTH) luaL_error(L, "json_encode: tables nested deeper than %d (a cycle?)", MAX_DEPTH);
        lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
        lua_Integer count = 0, strings = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            count++;
            if (lua_type(L, -2) == LUA_TSTRING) strings++;
            lua_pop(L, 1);
        }
        if (count == len) { /* keys 1..n (or empty): an array */
            st_json_begin_array(w);
            for (lua_Integer i = 1; i <= len; i++) {
                lua_rawgeti(L, idx, i);
                encode(L, w, lua_gettop(L), depth + 1);
                lua_pop(L, 1);
            }
            st_json_end_array(w);
            return;
        }
        if (strings != count) luaL_error(L, "json_encode: a table mixes string and other keys");
        const char **keys = lua_newuserdatauv(L, (size_t)count * sizeof *keys, 0);
        int keys_at = lua_gettop(L);
        lua_Integer k = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            keys[k++] = lua_tostring(L, -2); /* anchored by the table */
            lua_pop(L, 1);
        }
        qsort(keys, (size_t)count, sizeof *keys, compare_keys);
        st_json_begin_object(w);
        for (k = 0; k < count; k++) {
            st_json_key(w, keys[k]);
            lua_getfield(L, idx, keys[k]);
            encode(L, w, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
        }
        st_json_end_object(w);
        lua_remove(L, keys_at);
        return;
    }
    default: break;
    }
    luaL_error(L, "json_encode: a %s cannot be written as JSON", luaL_typename(L, idx));
}

static int l_json_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    int pretty = lua_toboolean(L, 2);
    lua_settop(L, 1);
    void **slot = st_lua_new_box(L, ST_LUA_JSON_WRITER, 0);
    st_json_writer *w;
    ST_LUA_CHECK(L, st_json_writer_new(pretty, &w));
    *slot = w;
    encode(L, w, 1, 0);
    const char *text;
    size_t n;
    ST_LUA_CHECK(L, st_json_writer_text(w, &text, &n));
    lua_pushlstring(L, text, n);
    return 1;
}

/* ---------------------------------------------------------- directories */

static int l_mkdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (mkdir(path, 0777) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot create directory '%s': %s", path, strerror(errno));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_rmdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (rmdir(path) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot remove directory '%s': %s", path, strerror(errno));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

void st_lua_register_bundle(lua_State *L)
{
    luaL_newmetatable(L, ST_LUA_JSON_WRITER);
    lua_pushcfunction(L, writer_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushlightuserdata(L, &json_null_key);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &json_null_key);
    lua_setfield(L, -2, "json_null");
    static const luaL_Reg fns[] = {{"sha256", l_sha256},           {"sha256_file", l_sha256_file},
                                   {"json_decode", l_json_decode}, {"json_encode", l_json_encode},
                                   {"mkdir", l_mkdir},             {"rmdir", l_rmdir},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
