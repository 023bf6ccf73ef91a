/* Lua bindings of datasets and extraction (dataset.h, image.h, extract.h):
 *   strata.core.cifar_open(10 | 100, {path, ...}) -> dataset | nil, message
 *   strata.core.imagefolder_open(dir, {size = {h, w}, channels =, filter =,
 *                                      masks = dir}) -> dataset | nil, message
 *   ds:count(), ds:shape() -> h, w, c, ds:class_count([coarse]),
 *   ds:set_class_names({...} [, coarse]), ds:class_names([coarse]),
 *   ds:read(index | nil, first, count) -> u8 images, i64 labels [, coarse]
 *   ds:read_masks(index | nil, first, count) -> u8 masks
 *   ds:extract(net, {taps =, batch =, dir =, in_memory =, index =,
 *                    progress = function(done, total)}) -> {name = tensor} | true
 *   strata.core.image_load(path [, channels]) -> u8 [H, W, C] | nil, message
 *   strata.core.image_save_png(path, u8 [H, W, C])
 *   strata.core.stderr_is_terminal()
 * Positions are 1-based (an `index` is an i64 tensor of positions, as
 * rng:permutation gives); labels are class ids from 0, as in the files. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "luabind.h"
#include "strata/extract.h"
#include "strata/image.h"

#define ST_LUA_DATASET "strata.dataset"

static st_dataset *check_ds(lua_State *L, int idx)
{
    return st_lua_check_box(L, idx, ST_LUA_DATASET, "dataset has been freed");
}

static int l_cifar_open(lua_State *L)
{
    lua_Integer kind = luaL_checkinteger(L, 1);
    luaL_argcheck(L, kind == 10 || kind == 100, 1, "kind: 10 or 100 expected");
    luaL_checktype(L, 2, LUA_TTABLE);
    int n = (int)luaL_len(L, 2);
    luaL_argcheck(L, n > 0, 2, "paths: at least one file expected");
    const char **paths = lua_newuserdatauv(L, (size_t)n * sizeof *paths, 0);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 2, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_argerror(L, 2, lua_pushfstring(L, "paths: entry %d is not a string", i + 1));
        paths[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    void **slot = st_lua_new_box(L, ST_LUA_DATASET, 0);
    st_dataset *ds;
    if (st_cifar_open(kind == 100 ? ST_CIFAR100 : ST_CIFAR10, paths, n, &ds) != ST_OK)
        return st_lua_push_failure(L);
    *slot = ds;
    return 1;
}

static int l_imagefolder_open(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    st_lua_check_keys(L, 2, (const char *const[]){"size", "channels", "filter", "masks", NULL});
    st_imagefolder_options o = {0};
    o.channels = 3;
    o.filter = ST_RESIZE_AREA;
    if (lua_getfield(L, 2, "size") != LUA_TTABLE || luaL_len(L, -1) != 2)
        return luaL_argerror(L, 2, "size: {height, width} expected");
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    o.height = (int)luaL_checkinteger(L, -2);
    o.width = (int)luaL_checkinteger(L, -1);
    lua_pop(L, 3);
    if (lua_getfield(L, 2, "channels") != LUA_TNIL) o.channels = (int)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "filter") != LUA_TNIL) {
        const char *f = luaL_checkstring(L, -1);
        if (strcmp(f, "area") == 0) o.filter = ST_RESIZE_AREA;
        else if (strcmp(f, "bilinear") == 0) o.filter = ST_RESIZE_BILINEAR;
        else return luaL_argerror(L, 2, "filter: 'area' or 'bilinear' expected");
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "masks") != LUA_TNIL) o.mask_dir = luaL_checkstring(L, -1);
    /* the mask path stays on the stack while the folder loads */
    void **slot = st_lua_new_box(L, ST_LUA_DATASET, 0);
    st_dataset *ds;
    if (st_imagefolder_open(dir, &o, &ds) != ST_OK) return st_lua_push_failure(L);
    *slot = ds;
    return 1;
}

static int m_free(lua_State *L)
{
    st_dataset_free(st_lua_box_take(L, 1, ST_LUA_DATASET));
    return 0;
}

static int m_count(lua_State *L)
{
    lua_pushinteger(L, st_dataset_count(check_ds(L, 1)));
    return 1;
}

static int m_shape(lua_State *L)
{
    int h, w, c;
    st_dataset_image_shape(check_ds(L, 1), &h, &w, &c);
    lua_pushinteger(L, h);
    lua_pushinteger(L, w);
    lua_pushinteger(L, c);
    return 3;
}

static int m_class_count(lua_State *L)
{
    st_dataset *ds = check_ds(L, 1);
    lua_pushinteger(L, lua_toboolean(L, 2) ? st_dataset_coarse_class_count(ds) : st_dataset_class_count(ds));
    return 1;
}

static int m_set_class_names(lua_State *L)
{
    st_dataset *ds = check_ds(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    bool coarse = lua_toboolean(L, 3);
    int n = (int)luaL_len(L, 2);
    const char **names = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *names, 0);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 2, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_argerror(L, 2, lua_pushfstring(L, "names: entry %d is not a string", i + 1));
        names[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    ST_LUA_CHECK(L, st_dataset_set_class_names(ds, coarse, n, names));
    return 0;
}

static int m_class_names(lua_State *L)
{
    st_dataset *ds = check_ds(L, 1);
    bool coarse = lua_toboolean(L, 2);
    int n = coarse ? st_dataset_coarse_class_count(ds) : st_dataset_class_count(ds);
    if (n == 0 || !st_dataset_class_name(ds, coarse, 0)) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, st_dataset_class_name(ds, coarse, i));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* The 0-based dataset indices of positions first..first+count-1 of an
 * optional index tensor (1-based positions), in a userdata on the stack. */
static int64_t *positions(lua_State *L, st_dataset *ds, int arg, int64_t *count_out)
{
    int64_t first = luaL_checkinteger(L, arg + 1), count = luaL_checkinteger(L, arg + 2);
    int64_t len = st_dataset_count(ds);
    st_tensor *index = lua_isnoneornil(L, arg) ? NULL : st_lua_check_tensor(L, arg);
    if (index) {
        ST_LUA_CHECK(L, st_tensor_expect(index, "index", ST_I64, 1, (int64_t[]){-1}));
        len = index->shape[0];
    }
    luaL_argcheck(L, first >= 1 && count >= 0 && first - 1 + count <= len, arg + 1,
                  lua_pushfstring(L, "positions %I..%I are outside 1..%I", (lua_Integer)first,
                                  (lua_Integer)(first + count - 1), (lua_Integer)len));
    int64_t *idx = lua_newuserdatauv(L, (size_t)(count ? count : 1) * sizeof *idx, 0);
    for (int64_t k = 0; k < count; k++)
        idx[k] = index ? (int64_t)st_tensor_get_flat(index, first - 1 + k) - 1 : first - 1 + k;
    *count_out = count;
    return idx;
}

static st_tensor *new_tensor(lua_State *L, st_dtype dtype, int ndim, const int64_t *shape)
{
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_tensor_new(dtype, ndim, shape, slot));
    st_lua_track(L, *slot);
    return *slot;
}

static int m_read(lua_State *L)
{
    st_dataset *ds = check_ds(L, 1);
    int64_t n;
    int64_t *idx = positions(L, ds, 2, &n);
    int h, w, c;
    st_dataset_image_shape(ds, &h, &w, &c);
    bool coarse = st_dataset_coarse_class_count(ds) > 0;
    st_tensor *images = new_tensor(L, ST_U8, 4, (int64_t[]){n, h, w, c});
    st_tensor *labels = new_tensor(L, ST_I64, 1, &n);
    st_tensor *coarse_t = coarse ? new_tensor(L, ST_I64, 1, &n) : NULL;
    int32_t *buf = malloc((size_t)(n ? n : 1) * 2 * sizeof *buf);
    if (!buf) return luaL_error(L, "dataset read: out of memory");
    st_status s = st_dataset_read(ds, idx, n, images->data, buf, coarse ? buf + n : NULL);
    for (int64_t k = 0; s == ST_OK && k < n; k++) {
        ((int64_t *)labels->data)[k] = buf[k];
        if (coarse) ((int64_t *)coarse_t->data)[k] = buf[n + k];
    }
    free(buf);
    ST_LUA_CHECK(L, s);
    return coarse ? 3 : 2;
}

static int m_read_masks(lua_State *L)
{
    st_dataset *ds = check_ds(L, 1);
    int64_t n;
    int64_t *idx = positions(L, ds, 2, &n);
    int h, w, c;
    st_dataset_image_shape(ds, &h, &w, &c);
    st_tensor *masks = new_tensor(L, ST_U8, 3, (int64_t[]){n, h, w});
    ST_LUA_CHECK(L, st_dataset_read_masks(ds, idx, n, masks->data));
    return 1;
}

/* ---------------------------------------------------------------- extract */

typedef struct progress_ctx {
    lua_State *L;
    int fn;      /* stack index of the Lua function */
    bool failed; /* the function raised: its error is on the stack */
} progress_ctx;

/* Runs the Lua callback protected: an error must not unwind through the
 * core, so it stops the run and is re-raised afterwards. */
static bool on_progress(void *ctx, int64_t done, int64_t total)
{
    progress_ctx *p = ctx;
    lua_pushvalue(p->L, p->fn);
    lua_pushinteger(p->L, done);
    lua_pushinteger(p->L, total);
    if (lua_pcall(p->L, 2, 1, 0) != LUA_OK) {
        p->failed = true;
        return false;
    }
    bool stop = lua_toboolean(p->L, -1) == 0 && !lua_isnil(p->L, -1); /* returning false stops */
    lua_pop(p->L, 1);
    return !stop;
}

static int m_extract(lua_State *L)
{
    st_dataset *ds = check_ds(L, 1);
    st_net *net = st_lua_check_box(L, 2, ST_LUA_NET, "net has been freed");
    luaL_checktype(L, 3, LUA_TTABLE);
    st_lua_check_keys(L, 3, (const char *const[]){"taps", "batch", "dir", "in_memory", "index", "progress", NULL});
    st_extract_options o = {0};
    int top = lua_gettop(L);
    if (lua_getfield(L, 3, "taps") != LUA_TNIL) {
        luaL_checktype(L, -1, LUA_TTABLE);
        o.n_taps = (int)luaL_len(L, -1);
        const char **taps = lua_newuserdatauv(L, (size_t)(o.n_taps ? o.n_taps : 1) * sizeof *taps, 0);
        for (int i = 0; i < o.n_taps; i++) {
            lua_rawgeti(L, -2, i + 1);
            if (lua_type(L, -1) != LUA_TSTRING) return luaL_argerror(L, 3, "taps: strings expected");
            taps[i] = lua_tostring(L, -1); /* the taps table stays on the stack */
            lua_pop(L, 1);
        }
        o.taps = taps;
    }
    if (lua_getfield(L, 3, "batch") != LUA_TNIL) o.batch = (int)luaL_checkinteger(L, -1);
    if (lua_getfield(L, 3, "dir") != LUA_TNIL) o.dir = luaL_checkstring(L, -1);
    lua_getfield(L, 3, "in_memory");
    o.in_memory = lua_toboolean(L, -1);
    if (lua_getfield(L, 3, "index") != LUA_TNIL) {
        st_tensor *index = st_lua_check_tensor(L, -1);
        ST_LUA_CHECK(L, st_tensor_expect(index, "index", ST_I64, 1, (int64_t[]){-1}));
        o.n_indices = index->shape[0];
        int64_t *idx = lua_newuserdatauv(L, (size_t)(o.n_indices ? o.n_indices : 1) * sizeof *idx, 0);
        for (int64_t k = 0; k < o.n_indices; k++) idx[k] = (int64_t)st_tensor_get_flat(index, k) - 1;
        o.indices = idx;
    }
    progress_ctx p = {L, 0, false};
    if (lua_getfield(L, 3, "progress") != LUA_TNIL) {
        luaL_checktype(L, -1, LUA_TFUNCTION);
        p.fn = lua_gettop(L);
        o.progress = on_progress;
        o.progress_ctx = &p;
    }
    st_extract_result *res = NULL;
    st_status s = st_extract_run(net, ds, &o, o.in_memory ? &res : NULL);
    if (p.failed) return lua_error(L);
    ST_LUA_CHECK(L, s);
    lua_settop(L, top);
    if (!res) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_createtable(L, 0, res->n);
    for (int i = 0; i < res->n; i++) {
        st_lua_push_tensor(L, res->arrays[i]);
        res->arrays[i] = NULL;
        lua_setfield(L, -2, res->names[i]);
    }
    st_extract_result_free(res);
    return 1;
}

/* strata.core.image_load(path [, channels = 0]) -> u8 [H, W, C] | nil, message */
static int l_image_load(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer channels = luaL_optinteger(L, 2, 0);
    luaL_argcheck(L, channels == 0 || channels == 1 || channels == 3, 2, "channels: 0, 1 or 3 expected");
    st_tensor **slot = st_lua_new_tensor_slot(L);
    if (st_image_load(path, (int)channels, slot) != ST_OK) return st_lua_push_failure(L);
    st_lua_track(L, *slot);
    return 1;
}

/* strata.core.image_save_png(path, u8 [H, W, C]) */
static int l_image_save_png(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    ST_LUA_CHECK(L, st_image_save_png(path, st_lua_check_tensor(L, 2)));
    return 0;
}

static int l_stderr_is_terminal(lua_State *L)
{
    lua_pushboolean(L, isatty(STDERR_FILENO));
    return 1;
}

static const luaL_Reg ds_methods[] = {
    {"count", m_count},   {"shape", m_shape},           {"class_count", m_class_count},
    {"set_class_names", m_set_class_names},             {"class_names", m_class_names},
    {"read", m_read},     {"read_masks", m_read_masks}, {"extract", m_extract},
    {"free", m_free},     {NULL, NULL}};

static const luaL_Reg ds_meta[] = {{"__gc", m_free}, {"__close", m_free}, {NULL, NULL}};

void st_lua_register_data(lua_State *L)
{
    luaL_newmetatable(L, ST_LUA_DATASET);
    luaL_setfuncs(L, ds_meta, 0);
    luaL_newlib(L, ds_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {{"cifar_open", l_cifar_open},
                                   {"imagefolder_open", l_imagefolder_open},
                                   {"image_load", l_image_load},
                                   {"image_save_png", l_image_save_png},
                                   {"stderr_is_terminal", l_stderr_is_terminal},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
