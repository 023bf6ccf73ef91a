/* Lua bindings of the figure grids (figure.h); strata.grid (grid.lua)
 * builds on them with datasets.
 *   strata.core.figure_similar(queries, train, neighbours, opts [, path])
 *   strata.core.figure_weights(queries, train, {neighbours, ...}, opts [, path])
 *   strata.core.figure_concepts(train, members, opts [, path])
 *       -> canvas (u8 [H, W, 3]) | nil, message when the PNG cannot be written
 *   strata.core.figure_save(canvas, path) -> true | nil, message
 * queries / train: {images = u8 [N, H, W, C], labels = i32/i64 [N] or nil,
 * class_names = {...} or nil}. neighbours / members: i32/i64 [rows, k] of
 * 1-based positions in train.images (0 or negative: an empty slot).
 * opts: scale, text_scale, gap, title, row_titles = {...}, side_by_side,
 * block_titles = {...} (weights), stats = {{size =, purity =,
 * dominant = {{class =}, ...}}, ...} and cluster_ids = {...} (concepts). */
#include <stdlib.h>
#include <string.h>
#include "luabind.h"
#include "strata/figure.h"
#include "strata/image.h"

/* A list of n strings at the top of the stack (popped), or NULL for nil;
 * the array lives in a userdata left on the stack, which anchors it. */
static const char *const *string_list(lua_State *L, int arg, const char *key, int n)
{
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    if (!lua_istable(L, -1) || (n >= 0 && (int)luaL_len(L, -1) != n))
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: expected a list of %d strings", key, n));
    int len = (int)luaL_len(L, -1);
    const char **v = lua_newuserdatauv(L, (size_t)(len ? len : 1) * sizeof *v, 1);
    lua_pushvalue(L, -2);
    lua_setiuservalue(L, -2, 1);
    for (int i = 0; i < len; i++) {
        lua_geti(L, -2, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: entry %d is not a string", key, i + 1));
        v[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    lua_remove(L, -2);
    return v;
}

static st_image_set image_set(lua_State *L, int arg)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    st_lua_check_keys(L, arg, (const char *const[]){"images", "labels", "class_names", NULL});
    st_image_set s = {0};
    lua_getfield(L, arg, "images");
    s.images = st_lua_to_tensor(L, -1);
    if (!s.images) luaL_argerror(L, arg, "images: a u8 tensor [N, H, W, C] expected");
    lua_pop(L, 1);
    lua_getfield(L, arg, "labels");
    if (!lua_isnil(L, -1) && !(s.labels = st_lua_to_tensor(L, -1)))
        luaL_argerror(L, arg, "labels: a tensor of class ids expected");
    lua_pop(L, 1);
    lua_getfield(L, arg, "class_names");
    s.n_classes = lua_istable(L, -1) ? (int)luaL_len(L, -1) : 0;
    s.class_names = string_list(L, arg, "class_names", -1);
    return s;
}

/* 1-based positions [rows, k] as a fresh 0-based i64 tensor (-1 = empty). */
static st_tensor *zero_based(lua_State *L, int arg, const st_tensor *t, const char *what)
{
    if (!t) luaL_argerror(L, arg, lua_pushfstring(L, "%s: a tensor of positions expected", what));
    if ((t->dtype != ST_I32 && t->dtype != ST_I64) || t->ndim != 2)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: an i32/i64 [rows, k] tensor of positions expected", what));
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_tensor_new(ST_I64, 2, t->shape, slot));
    int64_t *p = (*slot)->data;
    for (int64_t i = 0; i < st_tensor_numel(t); i++) {
        double v = st_tensor_get_flat(t, i);
        p[i] = v >= 1 ? (int64_t)v - 1 : -1;
    }
    return *slot;
}

typedef struct figure_args {
    st_figure_options o;
    const char *const *block_titles;
    st_cluster_stats *stats;
    int64_t *cluster_ids;
    int n_stats, n_ids;
} figure_args;

static void int_option(lua_State *L, int arg, const char *key, int *out)
{
    if (lua_getfield(L, arg, key) != LUA_TNIL) {
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < 0 || v > 1 << 20) luaL_argerror(L, arg, lua_pushfstring(L, "%s: a small integer expected", key));
        *out = (int)v;
    }
    lua_pop(L, 1);
}

static void stats_option(lua_State *L, int arg, figure_args *a)
{
    if (lua_getfield(L, arg, "stats") == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    luaL_argcheck(L, lua_istable(L, -1), arg, "stats: a list of cluster statistics expected");
    int n = (int)luaL_len(L, -1);
    a->stats = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *a->stats, 0);
    memset(a->stats, 0, (size_t)(n ? n : 1) * sizeof *a->stats);
    lua_insert(L, -2); /* anchor the array below the list */
    int list = lua_gettop(L);
    for (int i = 0; i < n; i++) {
        lua_geti(L, list, i + 1);
        int e = lua_gettop(L);
        if (!lua_istable(L, e)) luaL_argerror(L, arg, lua_pushfstring(L, "stats: entry %d is not a table", i + 1));
        lua_getfield(L, e, "size");
        a->stats[i].size = lua_tointeger(L, -1);
        lua_getfield(L, e, "purity");
        a->stats[i].purity = lua_tonumber(L, -1);
        if (lua_getfield(L, e, "dominant") == LUA_TTABLE && lua_geti(L, -1, 1) == LUA_TTABLE) {
            lua_getfield(L, -1, "class");
            a->stats[i].dominant[0] = (int)lua_tointeger(L, -1);
            a->stats[i].n_dominant = 1;
        }
        lua_settop(L, e - 1);
    }
    lua_pop(L, 1);
    a->n_stats = n;
}

static figure_args figure_options(lua_State *L, int arg)
{
    figure_args a = {.o = st_figure_defaults()};
    if (lua_isnoneornil(L, arg)) return a;
    luaL_checktype(L, arg, LUA_TTABLE);
    st_lua_check_keys(L, arg, (const char *const[]){"scale", "text_scale", "gap", "title", "row_titles",
                                                     "side_by_side", "block_titles", "stats", "cluster_ids", NULL});
    int_option(L, arg, "scale", &a.o.scale);
    int_option(L, arg, "text_scale", &a.o.text_scale);
    int_option(L, arg, "gap", &a.o.gap);
    if (lua_getfield(L, arg, "title") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TSTRING) luaL_argerror(L, arg, "title: a string expected");
        a.o.title = lua_tostring(L, -1); /* the options table keeps it */
    }
    lua_pop(L, 1);
    lua_getfield(L, arg, "side_by_side");
    a.o.side_by_side = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, arg, "row_titles");
    a.o.row_titles = string_list(L, arg, "row_titles", -1);
    lua_getfield(L, arg, "block_titles");
    a.block_titles = string_list(L, arg, "block_titles", -1);
    stats_option(L, arg, &a);
    if (lua_getfield(L, arg, "cluster_ids") != LUA_TNIL) {
        luaL_argcheck(L, lua_istable(L, -1), arg, "cluster_ids: a list of integers expected");
        a.n_ids = (int)luaL_len(L, -1);
        a.cluster_ids = lua_newuserdatauv(L, (size_t)(a.n_ids ? a.n_ids : 1) * sizeof *a.cluster_ids, 0);
        lua_insert(L, -2);
        for (int i = 0; i < a.n_ids; i++) {
            lua_geti(L, -1, i + 1);
            a.cluster_ids[i] = lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    return a;
}

/* Returns the canvas, saving it first when a path is given. */
static int finish(lua_State *L, int path_arg, int canvas_idx)
{
    if (!lua_isnoneornil(L, path_arg)) {
        const char *path = luaL_checkstring(L, path_arg);
        if (st_image_save_png(path, st_lua_to_tensor(L, canvas_idx)) != ST_OK) return st_lua_push_failure(L);
    }
    lua_pushvalue(L, canvas_idx);
    return 1;
}

static int l_figure_similar(lua_State *L)
{
    lua_settop(L, 5); /* optional arguments stay below what the call pushes */
    st_image_set q = image_set(L, 1), t = image_set(L, 2);
    st_tensor *nb = zero_based(L, 3, st_lua_to_tensor(L, 3), "neighbours");
    figure_args a = figure_options(L, 4);
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_figure_similar(&q, &t, nb, &a.o, slot));
    st_lua_track(L, *slot);
    return finish(L, 5, lua_gettop(L));
}

static int l_figure_weights(lua_State *L)
{
    lua_settop(L, 5);
    st_image_set q = image_set(L, 1), t = image_set(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    int n = (int)luaL_len(L, 3);
    luaL_argcheck(L, n >= 1, 3, "neighbours: a non-empty list of tensors expected");
    const st_tensor **nb = lua_newuserdatauv(L, (size_t)n * sizeof *nb, 0);
    for (int b = 0; b < n; b++) {
        lua_geti(L, 3, b + 1);
        nb[b] = zero_based(L, 3, st_lua_to_tensor(L, -1), "neighbours");
        lua_remove(L, -2); /* keep the converted tensor on the stack */
    }
    figure_args a = figure_options(L, 4);
    if (a.block_titles) {
        lua_getfield(L, 4, "block_titles");
        luaL_argcheck(L, (int)luaL_len(L, -1) == n, 4, "block_titles: one per block expected");
        lua_pop(L, 1);
    }
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_figure_weights(&q, &t, n, nb, a.block_titles, &a.o, slot));
    st_lua_track(L, *slot);
    return finish(L, 5, lua_gettop(L));
}

static int l_figure_concepts(lua_State *L)
{
    lua_settop(L, 4);
    st_image_set t = image_set(L, 1);
    st_tensor *members = zero_based(L, 2, st_lua_to_tensor(L, 2), "members");
    figure_args a = figure_options(L, 3);
    int64_t K = members->shape[0];
    if (a.stats && a.n_stats != K)
        return luaL_argerror(L, 3, lua_pushfstring(L, "stats: %d entries for %I clusters", a.n_stats, (lua_Integer)K));
    if (a.cluster_ids && a.n_ids != K)
        return luaL_argerror(L, 3, lua_pushfstring(L, "cluster_ids: %d entries for %I clusters", a.n_ids, (lua_Integer)K));
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_figure_concepts(&t, members, a.stats, a.cluster_ids, &a.o, slot));
    st_lua_track(L, *slot);
    return finish(L, 4, lua_gettop(L));
}

static int l_figure_save(lua_State *L)
{
    st_tensor *cv = st_lua_check_tensor(L, 1);
    const char *path = luaL_checkstring(L, 2);
    if (st_image_save_png(path, cv) != ST_OK) return st_lua_push_failure(L);
    lua_pushboolean(L, 1);
    return 1;
}

void st_lua_register_figure(lua_State *L)
{
    static const luaL_Reg fns[] = {{"figure_similar", l_figure_similar},
                                   {"figure_weights", l_figure_weights},
                                   {"figure_concepts", l_figure_concepts},
                                   {"figure_save", l_figure_save},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
