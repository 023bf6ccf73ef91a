/* Lua bindings of the net engine and ResNet loading (net.h, resnet.h):
 *   strata.core.model_load(path) -> net | nil, message
 *   net:forward(x [, {tap, ...}]) -> logits, {tap = tensor, ...} (copies)
 *   net:predict(x) -> i64 class ids
 *   net:taps(), net:summary(), tostring(net), net:input_shape(),
 *   net:class_names(), net:preprocess(u8 images), net:name(), net:set_threads(n),
 *   net:free()
 * The net's box (luabind.h) is read by data.c too, for extraction. */
#include <stdlib.h>
#include "luabind.h"
#include "strata/resnet.h"

static st_net *check_net(lua_State *L, int idx)
{
    return st_lua_check_box(L, idx, ST_LUA_NET, "net has been freed");
}

static int l_model_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    void **slot = st_lua_new_box(L, ST_LUA_NET, 0);
    st_net *net;
    if (st_resnet_load(path, &net) != ST_OK) return st_lua_push_failure(L);
    *slot = net;
    return 1;
}

static int m_free(lua_State *L)
{
    st_net_free(st_lua_box_take(L, 1, ST_LUA_NET));
    return 0;
}

static void push_shape(lua_State *L, int ndim, const int64_t *shape)
{
    lua_createtable(L, ndim, 0);
    for (int d = 0; d < ndim; d++) {
        lua_pushinteger(L, shape[d]);
        lua_rawseti(L, -2, d + 1);
    }
}

/* net:taps() -> { {name=, layer=, kind=, shape={...}}, ... } */
static int m_taps(lua_State *L)
{
    st_net *net = check_net(L, 1);
    size_t n = st_net_tap_count(net);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        st_net_tap_info info;
        st_net_tap_at(net, i, &info);
        lua_createtable(L, 0, 4);
        lua_pushstring(L, info.name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, info.layer);
        lua_setfield(L, -2, "layer");
        lua_pushstring(L, info.kind);
        lua_setfield(L, -2, "kind");
        push_shape(L, info.ndim, info.shape);
        lua_setfield(L, -2, "shape");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* Pushes a fresh copy of a view (a Lua caller may keep it across forwards). */
static void push_copy(lua_State *L, st_status s, st_tensor *view)
{
    if (s != ST_OK) st_lua_raise(L, s);
    st_tensor **slot = st_lua_new_tensor_slot(L);
    s = st_tensor_clone(view, slot);
    st_tensor_free(view);
    ST_LUA_CHECK(L, s);
    st_lua_track(L, *slot);
}

static int m_forward(lua_State *L)
{
    st_net *net = check_net(L, 1);
    st_tensor *x = st_lua_check_tensor(L, 2);
    int n_taps = 0;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        n_taps = (int)luaL_len(L, 3);
    }
    const char **taps = lua_newuserdatauv(L, (size_t)(n_taps ? n_taps : 1) * sizeof *taps, 0);
    for (int i = 0; i < n_taps; i++) {
        lua_rawgeti(L, 3, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_argerror(L, 3, lua_pushfstring(L, "taps: entry %d is not a string", i + 1));
        taps[i] = lua_tostring(L, -1); /* kept alive by the table at 3 */
        lua_pop(L, 1);
    }
    st_tensor *c = NULL;
    st_status s = st_tensor_contiguous(x, &c);
    if (s == ST_OK) s = st_net_forward(net, c, taps, n_taps);
    st_tensor_free(c);
    ST_LUA_CHECK(L, s);
    st_tensor *v = NULL;
    s = st_net_output(net, &v);
    push_copy(L, s, v);
    lua_createtable(L, 0, n_taps);
    for (int i = 0; i < n_taps; i++) {
        v = NULL;
        s = st_net_tap(net, taps[i], &v);
        push_copy(L, s, v);
        lua_setfield(L, -2, taps[i]);
    }
    return 2;
}

/* net:predict(x) -> i64 [n]: the arg-max class id (from 0) per image. */
static int m_predict(lua_State *L)
{
    st_net *net = check_net(L, 1);
    st_tensor *x = st_lua_check_tensor(L, 2), *c = NULL, *y = NULL;
    st_status s = st_tensor_contiguous(x, &c);
    if (s == ST_OK) s = st_net_forward(net, c, NULL, 0);
    st_tensor_free(c);
    if (s == ST_OK) s = st_net_output(net, &y);
    ST_LUA_CHECK(L, s);
    int64_t n = y->shape[0], k = y->shape[1];
    st_tensor **slot = st_lua_new_tensor_slot(L);
    s = st_tensor_new(ST_I64, 1, &n, slot);
    for (int64_t i = 0; s == ST_OK && i < n; i++) {
        const float *row = st_f32(y) + i * k;
        int64_t best = 0;
        for (int64_t j = 1; j < k; j++)
            if (row[j] > row[best]) best = j;
        ((int64_t *)(*slot)->data)[i] = best;
    }
    st_tensor_free(y);
    ST_LUA_CHECK(L, s);
    return 1;
}

static int m_summary(lua_State *L)
{
    st_net *net = check_net(L, 1);
    size_t n = st_net_summary(net, NULL, 0);
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, n + 1);
    st_net_summary(net, p, n + 1);
    luaL_pushresultsize(&b, n);
    return 1;
}

static int mm_tostring(lua_State *L)
{
    if (!st_lua_box_get(L, 1, ST_LUA_NET)) {
        lua_pushliteral(L, "net (freed)");
        return 1;
    }
    return m_summary(L);
}

static int m_input_shape(lua_State *L)
{
    int h, w, c;
    st_net_input_shape(check_net(L, 1), &h, &w, &c);
    lua_pushinteger(L, h);
    lua_pushinteger(L, w);
    lua_pushinteger(L, c);
    return 3;
}

/* net:class_names() -> {names...} (1-based; entry k+1 names class k), or
 * nil when the file gave none. */
static int m_class_names(lua_State *L)
{
    st_net *net = check_net(L, 1);
    int n = st_net_class_count(net);
    if (!st_net_class_name(net, 0)) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, st_net_class_name(net, i));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int m_class_count(lua_State *L)
{
    lua_pushinteger(L, st_net_class_count(check_net(L, 1)));
    return 1;
}

static int m_name(lua_State *L)
{
    lua_pushstring(L, st_net_name(check_net(L, 1)));
    return 1;
}

/* net:preprocess(u8 [n,h,w,c]) -> f32 [n,h,w,c] normalised for the net. */
static int m_preprocess(lua_State *L)
{
    st_net *net = check_net(L, 1);
    st_tensor *u = st_lua_check_tensor(L, 2);
    int h, w, c;
    st_net_input_shape(net, &h, &w, &c);
    ST_LUA_CHECK(L, st_tensor_expect(u, "preprocess: images", ST_U8, 4, (int64_t[]){-1, h, w, c}));
    st_tensor *src = NULL;
    ST_LUA_CHECK(L, st_tensor_contiguous(u, &src));
    st_tensor **slot = st_lua_new_tensor_slot(L);
    st_status s = st_tensor_new(ST_F32, 4, u->shape, slot);
    if (s == ST_OK) st_net_preprocess_u8(net, src->data, u->shape[0], st_f32(*slot));
    st_tensor_free(src);
    ST_LUA_CHECK(L, s);
    st_lua_track(L, *slot);
    return 1;
}

/* net:set_threads(n): images of a batch are split over n threads. */
static int m_set_threads(lua_State *L)
{
    st_net *net = check_net(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 1 && n <= ST_NET_MAX_THREADS, 2, "threads: 1 to 64 expected");
    ST_LUA_CHECK(L, st_net_set_threads(net, (int)n));
    lua_settop(L, 1);
    return 1;
}

static int m_param_count(lua_State *L)
{
    lua_pushinteger(L, st_net_param_count(check_net(L, 1)));
    return 1;
}

static const luaL_Reg net_methods[] = {
    {"forward", m_forward},         {"predict", m_predict},   {"taps", m_taps},         {"summary", m_summary},
    {"input_shape", m_input_shape}, {"class_names", m_class_names}, {"class_count", m_class_count},
    {"name", m_name},               {"preprocess", m_preprocess},   {"param_count", m_param_count},
    {"set_threads", m_set_threads}, {"free", m_free},               {NULL, NULL}};

static const luaL_Reg net_meta[] = {{"__gc", m_free}, {"__close", m_free}, {"__tostring", mm_tostring}, {NULL, NULL}};

void st_lua_register_net(lua_State *L)
{
    luaL_newmetatable(L, ST_LUA_NET);
    luaL_setfuncs(L, net_meta, 0);
    luaL_newlib(L, net_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_model_load);
    lua_setfield(L, -2, "model_load");
}
