/* Lua bindings of the clustering pieces (layers.h, loss.h) and the
 * DEC/IDEC trainer (dec.h):
 *   strata.core.student_t(z [n,d], mu [k,d] [, alpha = 100]) -> q [n,k]
 *   strata.core.student_t_backward(z, mu, q, dq [, alpha]) -> dz, dmu
 *   strata.core.target_distribution(q) -> p
 *   strata.core.loss_kld(p, q [, weight = 1]) -> loss, dL/dq
 *   strata.core.loss_mse(pred, target [, weight = 1]) -> loss, dL/dpred
 *   strata.core.l2norm(u [, radius = 8]) -> z;  l2norm_backward(u, dz [, radius]) -> du
 *   strata.core.dec_new(h, w, c, {config}) -> trainer (keys as st_dec_config;
 *       pretrain_optim / cluster_optim are optimiser tables as in optim_new)
 *   trainer:fit(x [, callback]) -> {q, labels, embeddings, centroids,
 *       pretrain_loss, cluster_loss, iterations, stop, delta} | nil, "stopped"
 *       callback(progress) gets {layer, event, stage, epoch, step, total,
 *       loss, kl, mse, delta, checkpoint}; returning false stops training.
 *       An error in the callback stops training and is raised again.
 *   strata.core.dec_fit_many({trainer, ...}, {x or path, ...}, workers [, callback])
 *       -> {result or false, ...}: several trainers at once (dec.h)
 *   trainer:predict(x) -> q, z;  trainer:stage(), trainer:epoch(),
 *   trainer:iteration(), trainer:centroids() (a copy),
 *   trainer:save_checkpoint([path]), trainer:load_checkpoint([path])
 * Cluster labels are cluster ids counted from 0 (like class labels). */
#include <string.h>
#include "bind_train.h"
#include "strata/dec.h"
#include "strata/layers.h"
#include "strata/loss.h"

#define ST_LUA_DEC "strata.dec"

static st_dec *check_dec(lua_State *L, int idx)
{
    return st_lua_check_box(L, idx, ST_LUA_DEC, "trainer has been freed");
}

static st_tensor *push_new(lua_State *L, int ndim, const int64_t *shape)
{
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_tensor_new(ST_F32, ndim, shape, slot));
    st_lua_track(L, *slot);
    return *slot;
}

/* A 2-d f32 contiguous argument. */
static st_tensor *check_matrix(lua_State *L, int idx, const char *what)
{
    st_tensor *t = st_lua_check_f32(L, idx, what);
    if (t->ndim != 2) luaL_argerror(L, idx, lua_pushfstring(L, "%s: expected a 2-d tensor, got %d-d", what, t->ndim));
    return t;
}

static void expect_same(lua_State *L, const st_tensor *a, const st_tensor *b, const char *what)
{
    if (!st_tensor_same_shape(a, b)) {
        char sa[64], sb[64];
        luaL_error(L, "%s: shapes %s and %s differ", what, st_shape_str(a->ndim, a->shape, sa, 64),
                   st_shape_str(b->ndim, b->shape, sb, 64));
    }
}

static void expect_cols(lua_State *L, const st_tensor *z, const st_tensor *mu)
{
    if (z->shape[1] != mu->shape[1])
        luaL_error(L, "student_t: z has %d columns, mu has %d", (int)z->shape[1], (int)mu->shape[1]);
}

static int l_student_t(lua_State *L)
{
    st_tensor *z = check_matrix(L, 1, "z"), *mu = check_matrix(L, 2, "mu");
    float alpha = (float)luaL_optnumber(L, 3, 100.0);
    luaL_argcheck(L, alpha > 0, 3, "alpha: expected a positive number");
    expect_cols(L, z, mu);
    const int64_t qs[2] = {z->shape[0], mu->shape[0]};
    st_tensor *q = push_new(L, 2, qs);
    st_student_t_forward((int)qs[0], (int)qs[1], (int)z->shape[1], alpha, st_f32(z), st_f32(mu), st_f32(q));
    return 1;
}

static int l_student_t_backward(lua_State *L)
{
    st_tensor *z = check_matrix(L, 1, "z"), *mu = check_matrix(L, 2, "mu");
    st_tensor *q = check_matrix(L, 3, "q"), *dq = check_matrix(L, 4, "dq");
    float alpha = (float)luaL_optnumber(L, 5, 100.0);
    luaL_argcheck(L, alpha > 0, 5, "alpha: expected a positive number");
    expect_cols(L, z, mu);
    expect_same(L, q, dq, "student_t_backward q, dq");
    if (q->shape[0] != z->shape[0] || q->shape[1] != mu->shape[0])
        luaL_error(L, "student_t_backward: q must be [%d,%d]", (int)z->shape[0], (int)mu->shape[0]);
    st_tensor *dz = push_new(L, 2, z->shape), *dmu = push_new(L, 2, mu->shape);
    st_student_t_backward((int)z->shape[0], (int)mu->shape[0], (int)z->shape[1], alpha, st_f32(z), st_f32(mu),
                          st_f32(q), st_f32(dq), st_f32(dz), st_f32(dmu));
    return 2;
}

static int l_target_distribution(lua_State *L)
{
    st_tensor *q = check_matrix(L, 1, "q");
    st_tensor *p = push_new(L, 2, q->shape);
    ST_LUA_CHECK(L, st_target_distribution((int)q->shape[0], (int)q->shape[1], st_f32(q), st_f32(p)));
    return 1;
}

static int l_loss_kld(lua_State *L)
{
    st_tensor *p = check_matrix(L, 1, "p"), *q = check_matrix(L, 2, "q");
    expect_same(L, p, q, "loss_kld p, q");
    float w = (float)luaL_optnumber(L, 3, 1.0);
    st_tensor *g = push_new(L, 2, q->shape);
    lua_pushnumber(L, st_loss_kld((int)q->shape[0], (int)q->shape[1], st_f32(p), st_f32(q), w, st_f32(g)));
    lua_insert(L, -2);
    return 2;
}

static int l_loss_mse(lua_State *L)
{
    st_tensor *a = st_lua_check_f32(L, 1, "pred"), *b = st_lua_check_f32(L, 2, "target");
    expect_same(L, a, b, "loss_mse pred, target");
    float w = (float)luaL_optnumber(L, 3, 1.0);
    st_tensor *g = push_new(L, a->ndim, a->shape);
    lua_pushnumber(L, st_loss_mse((size_t)st_tensor_numel(a), st_f32(a), st_f32(b), w, st_f32(g)));
    lua_insert(L, -2);
    return 2;
}

static int l_l2norm(lua_State *L)
{
    st_tensor *u = check_matrix(L, 1, "u");
    float r = (float)luaL_optnumber(L, 2, 8.0);
    st_tensor *z = push_new(L, 2, u->shape);
    st_l2norm_forward((int)u->shape[0], (int)u->shape[1], r, st_f32(u), st_f32(z));
    return 1;
}

static int l_l2norm_backward(lua_State *L)
{
    st_tensor *u = check_matrix(L, 1, "u"), *dz = check_matrix(L, 2, "dz");
    expect_same(L, u, dz, "l2norm_backward u, dz");
    float r = (float)luaL_optnumber(L, 3, 8.0);
    st_tensor *du = push_new(L, 2, u->shape);
    st_l2norm_backward((int)u->shape[0], (int)u->shape[1], r, st_f32(u), st_f32(dz), st_f32(du));
    return 1;
}

/* ------------------------------------------------------------ trainer */

static const char *const CONFIG_KEYS[] = {
    "name", "clusters", "filters", "radius", "minimal_padding", "threads", "alpha", "batch", "epochs",
    "pretrain_optim", "kmeans_n_init", "kmeans_max_iter", "kmeans_tol", "maxiter", "update_interval", "tol",
    "kl_weight", "mse_weight", "shuffle", "cluster_optim", "seed", "dir", "resume", NULL};

/* Reads the config table at arg; strings stay owned by the table. */
static st_dec_config check_config(lua_State *L, int arg)
{
    st_lua_check_keys(L, arg, CONFIG_KEYS);
    st_dec_config c = st_dec_config_default();
    if (!lua_istable(L, arg)) return c;
    if (lua_getfield(L, arg, "filters") != LUA_TNIL) {
        luaL_argcheck(L, lua_istable(L, -1) && luaL_len(L, -1) == 4, arg, "filters: expected 4 integers");
        for (int i = 0; i < 4; i++) {
            lua_geti(L, -1, i + 1);
            c.filters[i] = (int)luaL_checkinteger(L, -1);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    if (lua_getfield(L, arg, "name") != LUA_TNIL) c.name = luaL_checkstring(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, arg, "dir") != LUA_TNIL) c.dir = luaL_checkstring(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, arg, "seed") != LUA_TNIL) c.seed = (uint64_t)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, arg, "pretrain_optim") != LUA_TNIL) c.pretrain_optim = st_lua_optim_config(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, arg, "cluster_optim") != LUA_TNIL) c.cluster_optim = st_lua_optim_config(L, -1);
    lua_pop(L, 1);
    c.clusters = st_lua_opt_int(L, arg, "clusters", c.clusters);
    c.radius = (float)st_lua_opt_num(L, arg, "radius", c.radius);
    c.minimal_padding = st_lua_opt_bool(L, arg, "minimal_padding", c.minimal_padding);
    c.threads = st_lua_opt_int(L, arg, "threads", c.threads);
    c.alpha = (float)st_lua_opt_num(L, arg, "alpha", c.alpha);
    c.batch = st_lua_opt_int(L, arg, "batch", c.batch);
    c.epochs = st_lua_opt_int(L, arg, "epochs", c.epochs);
    c.kmeans_n_init = st_lua_opt_int(L, arg, "kmeans_n_init", c.kmeans_n_init);
    c.kmeans_max_iter = st_lua_opt_int(L, arg, "kmeans_max_iter", c.kmeans_max_iter);
    c.kmeans_tol = st_lua_opt_num(L, arg, "kmeans_tol", c.kmeans_tol);
    c.maxiter = st_lua_opt_int(L, arg, "maxiter", c.maxiter);
    c.update_interval = st_lua_opt_int(L, arg, "update_interval", c.update_interval);
    c.tol = st_lua_opt_num(L, arg, "tol", c.tol);
    c.kl_weight = (float)st_lua_opt_num(L, arg, "kl_weight", c.kl_weight);
    c.mse_weight = (float)st_lua_opt_num(L, arg, "mse_weight", c.mse_weight);
    c.shuffle = st_lua_opt_bool(L, arg, "shuffle", c.shuffle);
    c.resume = st_lua_opt_bool(L, arg, "resume", c.resume);
    return c;
}

static int l_dec_new(lua_State *L)
{
    int h = (int)luaL_checkinteger(L, 1), w = (int)luaL_checkinteger(L, 2), c = (int)luaL_checkinteger(L, 3);
    st_dec_config cfg = check_config(L, 4);
    void **slot = st_lua_new_box(L, ST_LUA_DEC, 0);
    st_dec *d;
    ST_LUA_CHECK(L, st_dec_new(&cfg, h, w, c, &d)); /* copies the strings */
    *slot = d;
    return 1;
}

static int m_free(lua_State *L)
{
    st_dec_free(st_lua_box_take(L, 1, ST_LUA_DEC));
    return 0;
}

static const char *event_name(st_dec_event e)
{
    static const char *const names[] = {"step", "epoch", "kmeans", "update", "done"};
    return (unsigned)e < sizeof names / sizeof *names ? names[e] : "?";
}

typedef struct callback_ctx {
    lua_State *L;
    int fn;      /* stack index of the Lua function */
    bool failed; /* the error value is left on the stack top */
} callback_ctx;

static void set_num(lua_State *L, const char *k, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static void set_str(lua_State *L, const char *k, const char *v)
{
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
}

/* Runs the Lua callback under pcall: a Lua error must not unwind
 * through the C trainer. */
static bool call_lua(void *vctx, const st_dec_progress *p)
{
    callback_ctx *ctx = vctx;
    lua_State *L = ctx->L;
    lua_pushvalue(L, ctx->fn);
    lua_createtable(L, 0, 11);
    set_str(L, "layer", p->layer);
    set_str(L, "event", event_name(p->event));
    set_str(L, "stage", st_dec_stage_name(p->stage));
    set_int(L, "epoch", p->epoch);
    set_int(L, "step", p->step);
    set_int(L, "total", p->total);
    set_num(L, "loss", p->loss);
    set_num(L, "kl", p->kl);
    set_num(L, "mse", p->mse);
    set_num(L, "delta", p->delta);
    lua_pushboolean(L, p->checkpoint);
    lua_setfield(L, -2, "checkpoint");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        ctx->failed = true;
        return false;
    }
    bool go_on = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_pop(L, 1);
    return go_on;
}

static void push_owned(lua_State *L, st_tensor **t, const char *key)
{
    if (*t) {
        st_lua_push_tensor(L, *t);
        *t = NULL;
        lua_setfield(L, -2, key);
    }
}

/* The result as a table; its tensors move into Lua, the rest is freed. */
static void push_result(lua_State *L, st_dec_result *r)
{
    lua_createtable(L, 0, 9);
    push_owned(L, &r->q, "q");
    push_owned(L, &r->labels, "labels");
    push_owned(L, &r->embeddings, "embeddings");
    push_owned(L, &r->centroids, "centroids");
    push_owned(L, &r->pretrain_loss, "pretrain_loss");
    push_owned(L, &r->cluster_loss, "cluster_loss");
    set_int(L, "iterations", r->iterations);
    set_str(L, "stop", st_dec_stop_name(r->stop));
    set_num(L, "delta", r->delta);
    st_dec_result_free(r);
}

static int m_fit(lua_State *L)
{
    st_dec *d = check_dec(L, 1);
    st_tensor *x = st_lua_check_tensor(L, 2);
    callback_ctx ctx = {L, 3, false};
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TFUNCTION);
    lua_settop(L, 3);
    st_dec_result *r = NULL;
    st_status s = st_dec_fit(d, x, lua_isnil(L, 3) ? NULL : call_lua, &ctx, &r);
    if (ctx.failed) {
        st_dec_result_free(r);
        return lua_error(L);
    }
    ST_LUA_CHECK(L, s);
    if (!r) {
        lua_pushnil(L);
        lua_pushliteral(L, "stopped");
        return 2;
    }
    push_result(L, r);
    return 1;
}

/* strata.core.dec_fit_many({trainer, ...}, {x or .npy path, ...}, workers
 * [, callback]) -> {result or false (stopped), ...}: st_dec_fit_many (a
 * path is mapped only while its trainer trains). The callback runs on the
 * worker threads, one call at a time, while this call blocks the Lua
 * thread; returning false (or an error, raised again here) stops all. */
static int l_dec_fit_many(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    const lua_Integer n = luaL_len(L, 1), workers = luaL_checkinteger(L, 3);
    if (luaL_len(L, 2) != n)
        return luaL_error(L, "dec_fit_many: %d trainers but %d activations", (int)n, (int)luaL_len(L, 2));
    if (n < 1 || n > 64) return luaL_error(L, "dec_fit_many: 1 to 64 trainers expected, got %d", (int)n);
    if (workers < 1 || workers > 64) return luaL_error(L, "dec_fit_many: workers must be 1 to 64, got %d", (int)workers);
    if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TFUNCTION);
    lua_settop(L, 4);
    st_dec_job jobs[64];
    st_dec_result *out[64];
    for (int i = 0; i < n; i++) {
        /* the argument tables keep trainers, arrays and paths alive during the call */
        lua_geti(L, 1, i + 1);
        jobs[i].trainer = check_dec(L, -1);
        lua_geti(L, 2, i + 1);
        jobs[i].path = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        jobs[i].x = jobs[i].path ? NULL : st_lua_check_tensor(L, -1);
        lua_pop(L, 2);
    }
    callback_ctx ctx = {L, 4, false};
    st_status s = st_dec_fit_many(jobs, (int)n, (int)workers, lua_isnil(L, 4) ? NULL : call_lua, &ctx, out);
    if (ctx.failed) {
        for (int i = 0; s == ST_OK && i < n; i++) st_dec_result_free(out[i]);
        return lua_error(L);
    }
    ST_LUA_CHECK(L, s);
    lua_createtable(L, (int)n, 0);
    for (int i = 0; i < n; i++) {
        if (out[i])
            push_result(L, out[i]);
        else
            lua_pushboolean(L, 0);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int m_predict(lua_State *L)
{
    st_dec *d = check_dec(L, 1);
    st_tensor *x = st_lua_check_tensor(L, 2);
    st_tensor **q = st_lua_new_tensor_slot(L);
    st_tensor **z = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_dec_predict(d, x, q, z));
    st_lua_track(L, *q);
    st_lua_track(L, *z);
    return 2;
}

static int m_stage(lua_State *L)
{
    lua_pushstring(L, st_dec_stage_name(st_dec_get_stage(check_dec(L, 1))));
    return 1;
}

static int m_epoch(lua_State *L)
{
    lua_pushinteger(L, st_dec_epoch(check_dec(L, 1)));
    return 1;
}

static int m_iteration(lua_State *L)
{
    lua_pushinteger(L, st_dec_iteration(check_dec(L, 1)));
    return 1;
}

static int m_centroids(lua_State *L)
{
    st_dec *d = check_dec(L, 1);
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_tensor_clone(st_dec_centroids(d), slot));
    st_lua_track(L, *slot);
    return 1;
}

static int m_save_checkpoint(lua_State *L)
{
    ST_LUA_CHECK(L, st_dec_save_checkpoint(check_dec(L, 1), luaL_optstring(L, 2, NULL)));
    return 0;
}

static int m_load_checkpoint(lua_State *L)
{
    st_dec *d = check_dec(L, 1);
    if (st_dec_load_checkpoint(d, luaL_optstring(L, 2, NULL)) != ST_OK) return st_lua_push_failure(L);
    lua_pushboolean(L, 1);
    return 1;
}

void st_lua_register_dec(lua_State *L)
{
    static const luaL_Reg meta[] = {{"__gc", m_free}, {"__close", m_free}, {NULL, NULL}};
    static const luaL_Reg methods[] = {{"fit", m_fit},
                                       {"predict", m_predict},
                                       {"stage", m_stage},
                                       {"epoch", m_epoch},
                                       {"iteration", m_iteration},
                                       {"centroids", m_centroids},
                                       {"save_checkpoint", m_save_checkpoint},
                                       {"load_checkpoint", m_load_checkpoint},
                                       {"free", m_free},
                                       {NULL, NULL}};
    luaL_newmetatable(L, ST_LUA_DEC);
    luaL_setfuncs(L, meta, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {{"student_t", l_student_t},
                                   {"student_t_backward", l_student_t_backward},
                                   {"target_distribution", l_target_distribution},
                                   {"loss_kld", l_loss_kld},
                                   {"loss_mse", l_loss_mse},
                                   {"l2norm", l_l2norm},
                                   {"l2norm_backward", l_l2norm_backward},
                                   {"dec_new", l_dec_new},
                                   {"dec_fit_many", l_dec_fit_many},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
