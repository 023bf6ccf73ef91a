/* Lua bindings of the clustering autoencoder (cae.h) and the optimisers
 * (optim.h): the trainable pieces a clustering variant is written from.
 *   strata.core.cae_new(h, w, c [, {filters = {f0,f1,f2,d}, radius =,
 *       minimal_padding =, max_batch =, threads =, seed = | rng =}]) -> cae
 *   cae:encode(x [b,H,W,C]) -> z [b,d];  cae:decode(z) -> x^ [b,H,W,C]
 *   cae:backward(dxhat | nil, dz | nil)   (overwrites the gradients)
 *   cae:pretrain_step(opt, x) -> mse
 *   cae:parameters(), cae:gradients() -> lists of tensor views (Keras
 *       layouts, in layer order), cae:names(), cae:param(name) -> view | nil
 *   cae:param_count(), cae:embedding_dim(), cae:input_shape() -> h, w, c
 *   strata.core.optim_new(n [, {kind = "adam" | "sgd", lr =, beta1 =,
 *       beta2 =, eps =, momentum =, weight_decay =, nesterov =}]) -> opt
 *   opt:step({param, ...}, {grad, ...})   (f32 contiguous, pairwise equal
 *       sizes adding up to n), opt:steps(), opt:set_steps(n), opt:reset(),
 *   opt:size(), opt:slot(name) -> copy of a state slot ("m", "v", "velocity")
 * Parameter views share the model's storage, so they stay valid (and keep
 * the memory alive) after the model is freed; writes into them change the
 * model. Buffers passed in must be f32 and contiguous. */
#include <string.h>
#include "bind_train.h"
#include "strata/cae.h"

#define ST_LUA_CAE "strata.cae"
#define ST_LUA_OPTIM "strata.optim"

static st_cae *check_cae(lua_State *L, int idx)
{
    return st_lua_check_box(L, idx, ST_LUA_CAE, "autoencoder has been freed");
}

static st_optim *check_optim(lua_State *L, int idx)
{
    return st_lua_check_box(L, idx, ST_LUA_OPTIM, "optimiser has been freed");
}

st_tensor *st_lua_check_f32(lua_State *L, int idx, const char *what)
{
    st_tensor *t = st_lua_check_tensor(L, idx);
    if (t->dtype != ST_F32 || !st_tensor_is_contiguous(t))
        luaL_argerror(L, idx, lua_pushfstring(L, "%s: expected a contiguous f32 tensor, got %s%s", what,
                                              st_dtype_name(t->dtype),
                                              st_tensor_is_contiguous(t) ? "" : " (not contiguous)"));
    return t;
}

int st_lua_opt_int(lua_State *L, int t, const char *key, int def)
{
    int type = lua_getfield(L, t, key);
    int v = type == LUA_TNIL ? def : (int)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    return v;
}

double st_lua_opt_num(lua_State *L, int t, const char *key, double def)
{
    int type = lua_getfield(L, t, key);
    double v = type == LUA_TNIL ? def : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    return v;
}

bool st_lua_opt_bool(lua_State *L, int t, const char *key, bool def)
{
    int type = lua_getfield(L, t, key);
    bool v = type == LUA_TNIL ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* ---------------------------------------------------------------- cae */

static int l_cae_new(lua_State *L)
{
    int h = (int)luaL_checkinteger(L, 1), w = (int)luaL_checkinteger(L, 2), c = (int)luaL_checkinteger(L, 3);
    st_lua_check_keys(L, 4, (const char *const[]){"filters", "radius", "minimal_padding", "max_batch", "threads",
                                                   "seed", "rng", NULL});
    st_cae_config cfg = st_cae_config_default(h, w, c);
    st_rng own, *rng = &own;
    st_rng_seed(&own, 0);
    if (lua_istable(L, 4)) {
        if (lua_getfield(L, 4, "filters") != LUA_TNIL) {
            luaL_argcheck(L, lua_istable(L, -1) && luaL_len(L, -1) == 4, 4, "filters: expected 4 integers");
            for (int i = 0; i < 4; i++) {
                lua_geti(L, -1, i + 1);
                cfg.filters[i] = (int)luaL_checkinteger(L, -1);
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
        cfg.radius = (float)st_lua_opt_num(L, 4, "radius", cfg.radius);
        cfg.minimal_padding = st_lua_opt_bool(L, 4, "minimal_padding", cfg.minimal_padding);
        cfg.max_batch = st_lua_opt_int(L, 4, "max_batch", cfg.max_batch);
        cfg.threads = st_lua_opt_int(L, 4, "threads", cfg.threads);
        if (lua_getfield(L, 4, "seed") != LUA_TNIL) st_rng_seed(&own, (uint64_t)luaL_checkinteger(L, -1));
        lua_pop(L, 1);
        if (lua_getfield(L, 4, "rng") != LUA_TNIL) rng = st_lua_check_rng(L, -1);
        lua_pop(L, 1);
    }
    void **slot = st_lua_new_box(L, ST_LUA_CAE, 0);
    st_cae *m;
    ST_LUA_CHECK(L, st_cae_new(&cfg, rng, &m));
    *slot = m;
    return 1;
}

static int m_cae_free(lua_State *L)
{
    st_cae_free(st_lua_box_take(L, 1, ST_LUA_CAE));
    return 0;
}

/* A fresh f32 tensor of the given shape on the stack. */
static st_tensor *push_new(lua_State *L, int ndim, const int64_t *shape)
{
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_tensor_new(ST_F32, ndim, shape, slot));
    st_lua_track(L, *slot);
    return *slot;
}

static int m_encode(lua_State *L)
{
    st_cae *m = check_cae(L, 1);
    st_tensor *x = st_lua_check_f32(L, 2, "x");
    const st_cae_config *c = st_cae_get_config(m);
    const int64_t in[4] = {-1, c->height, c->width, c->channels};
    ST_LUA_CHECK(L, st_tensor_expect(x, "cae:encode x", ST_F32, 4, in));
    const int64_t zs[2] = {x->shape[0], st_cae_embedding_dim(m)};
    st_tensor *z = push_new(L, 2, zs);
    ST_LUA_CHECK(L, st_cae_encode(m, (int)x->shape[0], st_f32(x), st_f32(z)));
    return 1;
}

static int m_decode(lua_State *L)
{
    st_cae *m = check_cae(L, 1);
    st_tensor *z = st_lua_check_f32(L, 2, "z");
    const st_cae_config *c = st_cae_get_config(m);
    const int64_t zs[2] = {-1, st_cae_embedding_dim(m)};
    ST_LUA_CHECK(L, st_tensor_expect(z, "cae:decode z", ST_F32, 2, zs));
    const int64_t out[4] = {z->shape[0], c->height, c->width, c->channels};
    st_tensor *x = push_new(L, 4, out);
    ST_LUA_CHECK(L, st_cae_decode(m, (int)z->shape[0], st_f32(z), st_f32(x)));
    return 1;
}

static int m_backward(lua_State *L)
{
    st_cae *m = check_cae(L, 1);
    const st_tensor *dx = lua_isnoneornil(L, 2) ? NULL : st_lua_check_f32(L, 2, "dxhat");
    const st_tensor *dz = lua_isnoneornil(L, 3) ? NULL : st_lua_check_f32(L, 3, "dz");
    ST_LUA_CHECK(L, st_cae_backward(m, dx ? st_f32(dx) : NULL, dz ? st_f32(dz) : NULL));
    return 0;
}

static int m_pretrain_step(lua_State *L)
{
    st_cae *m = check_cae(L, 1);
    st_optim *o = check_optim(L, 2);
    st_tensor *x = st_lua_check_f32(L, 3, "x");
    const st_cae_config *c = st_cae_get_config(m);
    const int64_t in[4] = {-1, c->height, c->width, c->channels};
    ST_LUA_CHECK(L, st_tensor_expect(x, "cae:pretrain_step x", ST_F32, 4, in));
    double loss;
    ST_LUA_CHECK(L, st_cae_pretrain_step(m, o, (int)x->shape[0], st_f32(x), &loss));
    lua_pushnumber(L, loss);
    return 1;
}

static void push_view(lua_State *L, const st_tensor *t)
{
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_tensor_view(t, slot));
}

static int push_views(lua_State *L, st_tensor *(*get)(st_cae *, int))
{
    st_cae *m = check_cae(L, 1);
    int n = st_cae_tensor_count(m);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        push_view(L, get(m, i));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int m_parameters(lua_State *L) { return push_views(L, st_cae_tensor); }
static int m_gradients(lua_State *L) { return push_views(L, st_cae_grad_tensor); }

static int m_names(lua_State *L)
{
    st_cae *m = check_cae(L, 1);
    int n = st_cae_tensor_count(m);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, st_cae_tensor_name(m, i));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int m_param(lua_State *L)
{
    st_cae *m = check_cae(L, 1);
    st_tensor *t = st_cae_find(m, luaL_checkstring(L, 2));
    if (!t) return lua_pushnil(L), 1;
    push_view(L, t);
    return 1;
}

static int m_param_count(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)st_cae_param_count(check_cae(L, 1)));
    return 1;
}

static int m_embedding_dim(lua_State *L)
{
    lua_pushinteger(L, st_cae_embedding_dim(check_cae(L, 1)));
    return 1;
}

static int m_input_shape(lua_State *L)
{
    const st_cae_config *c = st_cae_get_config(check_cae(L, 1));
    lua_pushinteger(L, c->height);
    lua_pushinteger(L, c->width);
    lua_pushinteger(L, c->channels);
    return 3;
}

static int m_cae_tostring(lua_State *L)
{
    const st_cae *m = st_lua_box_get(L, 1, ST_LUA_CAE);
    if (!m) return lua_pushliteral(L, "cae (freed)"), 1;
    const st_cae_config *c = st_cae_get_config(m);
    lua_pushfstring(L, "cae %dx%dx%d -> %d (filters %d,%d,%d; %d parameters)", c->height, c->width, c->channels,
                    c->filters[3], c->filters[0], c->filters[1], c->filters[2], (int)st_cae_param_count(m));
    return 1;
}

/* ------------------------------------------------------------- optim */

st_optim_config st_lua_optim_config(lua_State *L, int arg)
{
    arg = lua_absindex(L, arg);
    st_lua_check_keys(L, arg, (const char *const[]){"kind", "lr", "beta1", "beta2", "eps", "momentum",
                                                    "weight_decay", "nesterov", NULL});
    st_optim_config c = st_optim_adam_defaults();
    if (!lua_istable(L, arg)) return c;
    if (lua_getfield(L, arg, "kind") != LUA_TNIL) {
        const char *kind = luaL_checkstring(L, -1);
        if (strcmp(kind, "sgd") == 0)
            c = st_optim_sgd_defaults(0.01f);
        else if (strcmp(kind, "adam") != 0)
            luaL_argerror(L, arg, lua_pushfstring(L, "kind: expected 'adam' or 'sgd', got '%s'", kind));
    }
    lua_pop(L, 1);
    c.lr = (float)st_lua_opt_num(L, arg, "lr", c.lr);
    c.beta1 = (float)st_lua_opt_num(L, arg, "beta1", c.beta1);
    c.beta2 = (float)st_lua_opt_num(L, arg, "beta2", c.beta2);
    c.eps = (float)st_lua_opt_num(L, arg, "eps", c.eps);
    c.momentum = (float)st_lua_opt_num(L, arg, "momentum", c.momentum);
    c.weight_decay = (float)st_lua_opt_num(L, arg, "weight_decay", c.weight_decay);
    c.nesterov = st_lua_opt_bool(L, arg, "nesterov", c.nesterov);
    return c;
}

static int l_optim_new(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1, 1, "n: expected a positive parameter count");
    st_optim_config c = st_lua_optim_config(L, 2);
    void **slot = st_lua_new_box(L, ST_LUA_OPTIM, 0);
    st_optim *o;
    ST_LUA_CHECK(L, st_optim_new(&c, (size_t)n, &o));
    *slot = o;
    return 1;
}

static int m_optim_free(lua_State *L)
{
    st_optim_free(st_lua_box_take(L, 1, ST_LUA_OPTIM));
    return 0;
}

static int m_step(lua_State *L)
{
    st_optim *o = check_optim(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 2);
    luaL_argcheck(L, n >= 1 && luaL_len(L, 3) == n, 3, "grads: expected as many tensors as params");
    /* the block list lives in a userdata, so an error below cannot leak it */
    st_param_block *blocks = lua_newuserdatauv(L, (size_t)n * sizeof *blocks, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 2, i);
        lua_geti(L, 3, i);
        st_tensor *p = st_lua_check_f32(L, -2, "params"), *g = st_lua_check_f32(L, -1, "grads");
        if (st_tensor_numel(p) != st_tensor_numel(g))
            luaL_error(L, "optim:step: params[%d] has %d elements, grads[%d] has %d", (int)i,
                       (int)st_tensor_numel(p), (int)i, (int)st_tensor_numel(g));
        blocks[i - 1] = (st_param_block){st_f32(p), st_f32(g), (size_t)st_tensor_numel(p)};
        lua_pop(L, 2); /* the tables keep the tensors alive */
    }
    ST_LUA_CHECK(L, st_optim_step(o, (size_t)n, blocks));
    return 0;
}

static int m_steps(lua_State *L)
{
    lua_pushinteger(L, st_optim_steps(check_optim(L, 1)));
    return 1;
}

static int m_set_steps(lua_State *L)
{
    ST_LUA_CHECK(L, st_optim_set_steps(check_optim(L, 1), luaL_checkinteger(L, 2)));
    return 0;
}

static int m_reset(lua_State *L)
{
    st_optim_reset(check_optim(L, 1));
    return 0;
}

static int m_size(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)st_optim_size(check_optim(L, 1)));
    return 1;
}

static int m_slot(lua_State *L)
{
    st_optim *o = check_optim(L, 1);
    const char *want = luaL_checkstring(L, 2);
    for (int i = 0; i < st_optim_slot_count(o); i++) {
        const char *name;
        float *v = st_optim_slot(o, i, &name);
        if (strcmp(name, want) != 0) continue;
        const int64_t n = (int64_t)st_optim_size(o);
        st_tensor **slot = st_lua_new_tensor_slot(L);
        ST_LUA_CHECK(L, st_tensor_from_data(ST_F32, 1, &n, v, (size_t)n * sizeof *v, slot));
        st_lua_track(L, *slot);
        return 1;
    }
    return luaL_argerror(L, 2, lua_pushfstring(L, "no optimiser slot named '%s'", want));
}

static void new_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, meta, 0);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

void st_lua_register_cae(lua_State *L)
{
    static const luaL_Reg cae_meta[] = {
        {"__gc", m_cae_free}, {"__close", m_cae_free}, {"__tostring", m_cae_tostring}, {NULL, NULL}};
    static const luaL_Reg cae_methods[] = {
        {"encode", m_encode},         {"decode", m_decode},
        {"backward", m_backward},     {"pretrain_step", m_pretrain_step},
        {"parameters", m_parameters}, {"gradients", m_gradients},
        {"names", m_names},           {"param", m_param},
        {"param_count", m_param_count}, {"embedding_dim", m_embedding_dim},
        {"input_shape", m_input_shape}, {"free", m_cae_free},
        {NULL, NULL}};
    static const luaL_Reg optim_meta[] = {{"__gc", m_optim_free}, {"__close", m_optim_free}, {NULL, NULL}};
    static const luaL_Reg optim_methods[] = {{"step", m_step},   {"steps", m_steps}, {"set_steps", m_set_steps},
                                             {"reset", m_reset}, {"size", m_size},   {"slot", m_slot},
                                             {"free", m_optim_free}, {NULL, NULL}};
    new_class(L, ST_LUA_CAE, cae_meta, cae_methods);
    new_class(L, ST_LUA_OPTIM, optim_meta, optim_methods);
    static const luaL_Reg fns[] = {{"cae_new", l_cae_new}, {"optim_new", l_optim_new}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
