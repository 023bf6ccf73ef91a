/* Lua bindings of k-means (strata/kmeans.h) and the streaming weighted
 * k-nearest-neighbour search (strata/knn.h):
 *
 *   strata.kmeans(x, {k=, n_init=20, max_iter=300, tol=1e-4, seed= | rng=,
 *                     init=, n_local_trials=0, threads=1})  -> result table
 *   strata.kmeans_predict(x, centers)                        -> labels, inertia
 *   strata.knn(queries, train, {k=, weights=, filter_query=, filter_train=,
 *                               train_block=, query_block=}) -> indices, distances
 *
 * Positions are 1-based as everywhere in Lua: cluster labels, best_run,
 * and neighbour indices (0 marks a missing neighbour, whose distance is
 * inf). Unknown option keys are an error. */
#include "luabind.h"

#include <math.h>
#include "strata/kmeans.h"
#include "strata/knn.h"

/* Field `key` of the options table at `arg` as an integer >= min, or def. */
static lua_Integer opt_integer(lua_State *L, int arg, const char *key, lua_Integer def, lua_Integer min)
{
    lua_Integer v = def;
    int t = lua_getfield(L, arg, key);
    if (t != LUA_TNIL) {
        if (!lua_isinteger(L, -1))
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: expected an integer, got %s", key,
                                                  t == LUA_TNUMBER ? "a fraction" : luaL_typename(L, -1)));
        v = lua_tointeger(L, -1);
        if (v < min)
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: expected an integer >= %I, got %I", key, min, v));
    }
    lua_pop(L, 1);
    return v;
}

static double opt_number(lua_State *L, int arg, const char *key, double def)
{
    double v = def;
    int t = lua_getfield(L, arg, key);
    if (t != LUA_TNIL) {
        if (t != LUA_TNUMBER)
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: expected a number, got %s", key, luaL_typename(L, -1)));
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

/* Field `key` as a tensor (NULL when absent). The value stays referenced
 * by the options table, so the pointer outlives the pop. */
static st_tensor *opt_tensor(lua_State *L, int arg, const char *key)
{
    st_tensor *t = NULL;
    if (lua_getfield(L, arg, key) != LUA_TNIL) {
        t = st_lua_to_tensor(L, -1);
        if (!t) luaL_argerror(L, arg, lua_pushfstring(L, "%s: expected a tensor, got %s", key, luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
    return t;
}

/* Makes an i64 tensor with 1-based positions (0-based + 1; -1 becomes 0). */
static void to_lua_positions(st_tensor *t)
{
    int64_t *p = t->data, n = st_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) p[i] = p[i] < 0 ? 0 : p[i] + 1;
}

/* ---------------------------------------------------------------- kmeans */

static void set_number(lua_State *L, const char *key, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, key);
}

static void set_integer(lua_State *L, const char *key, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, key);
}

static int l_kmeans(lua_State *L)
{
    st_tensor *x = st_lua_check_tensor(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    st_lua_check_keys(L, 2, (const char *const[]){"k", "n_init", "max_iter", "tol", "seed", "rng", "init",
                                                  "n_local_trials", "threads", NULL});
    st_kmeans_options o = st_kmeans_defaults(opt_integer(L, 2, "k", 0, 1));
    if (o.k == 0) return luaL_argerror(L, 2, "k: the number of clusters is required");
    o.n_init = (int)opt_integer(L, 2, "n_init", o.n_init, 1);
    o.max_iter = (int)opt_integer(L, 2, "max_iter", o.max_iter, 1);
    o.n_local_trials = (int)opt_integer(L, 2, "n_local_trials", 0, 0);
    o.n_threads = (int)opt_integer(L, 2, "threads", 1, 1);
    o.tol = opt_number(L, 2, "tol", o.tol);
    o.init = opt_tensor(L, 2, "init");

    st_rng own, *rng = NULL;
    bool has_seed = lua_getfield(L, 2, "seed") != LUA_TNIL;
    lua_Integer seed = has_seed ? opt_integer(L, 2, "seed", 0, LUA_MININTEGER) : 0;
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "rng") != LUA_TNIL) {
        if (!luaL_testudata(L, -1, ST_LUA_RNG))
            return luaL_argerror(L, 2, lua_pushfstring(L, "rng: expected a strata.rng, got %s", luaL_typename(L, -1)));
        if (has_seed) return luaL_argerror(L, 2, "give either seed or rng, not both");
        rng = lua_touserdata(L, -1); /* stays referenced by the options table */
    }
    lua_pop(L, 1);
    if (has_seed) {
        st_rng_seed(&own, (uint64_t)seed);
        rng = &own;
    }
    if (!rng && !o.init)
        return luaL_argerror(L, 2, "seed or rng required: k-means++ seeding is random (or give init centres)");

    /* The result table is built with placeholders before the fit, so
     * filling it afterwards cannot raise and leak the core result. */
    int n_runs = o.init ? 1 : o.n_init;
    lua_createtable(L, 0, 11);
    int R = lua_gettop(L);
    st_tensor **centers = st_lua_new_tensor_slot(L);
    lua_setfield(L, R, "centers");
    st_tensor **labels = st_lua_new_tensor_slot(L);
    lua_setfield(L, R, "labels");
    static const char *const run_fields[] = {"run_seeds", "run_inertia", "run_iters"};
    static const char *const scalar_fields[] = {"inertia", "n_iter", "best_run", "n_runs", "n_relocated", "seed"};
    for (int f = 0; f < 3; f++) {
        lua_createtable(L, n_runs, 0);
        for (int i = 1; i <= n_runs; i++) {
            lua_pushinteger(L, 0);
            lua_rawseti(L, -2, i);
        }
        lua_setfield(L, R, run_fields[f]);
    }
    for (int f = 0; f < 6; f++) {
        lua_pushinteger(L, 0);
        lua_setfield(L, R, scalar_fields[f]);
    }
    for (int f = 0; f < 3; f++) lua_getfield(L, R, run_fields[f]); /* R+1 .. R+3 */

    st_kmeans_result *r = NULL;
    ST_LUA_CHECK(L, st_kmeans_fit(x, &o, rng, &r));
    *centers = r->centers;
    *labels = r->labels;
    r->centers = r->labels = NULL;
    to_lua_positions(*labels);
    for (int i = 0; i < r->n_runs; i++) {
        lua_pushinteger(L, (lua_Integer)r->run_seeds[i]);
        lua_rawseti(L, R + 1, i + 1);
        lua_pushnumber(L, r->run_inertia[i]);
        lua_rawseti(L, R + 2, i + 1);
        lua_pushinteger(L, r->run_iters[i]);
        lua_rawseti(L, R + 3, i + 1);
    }
    lua_settop(L, R);
    set_number(L, "inertia", r->inertia);
    set_integer(L, "n_iter", r->n_iter);
    set_integer(L, "best_run", r->best_run + 1);
    set_integer(L, "n_runs", r->n_runs);
    set_integer(L, "n_relocated", r->n_relocated);
    if (has_seed) set_integer(L, "seed", seed);
    else {
        lua_pushnil(L);
        lua_setfield(L, R, "seed");
    }
    st_kmeans_result_free(r);
    st_lua_track(L, *centers);
    st_lua_track(L, *labels);
    return 1;
}

static int l_kmeans_predict(lua_State *L)
{
    st_tensor *x = st_lua_check_tensor(L, 1), *c = st_lua_check_tensor(L, 2);
    st_tensor **slot = st_lua_new_tensor_slot(L);
    double inertia = 0;
    ST_LUA_CHECK(L, st_kmeans_predict(x, c, slot, &inertia));
    st_lua_track(L, *slot);
    to_lua_positions(*slot);
    lua_pushnumber(L, inertia);
    return 2;
}

/* ------------------------------------------------------------------- knn */

/* The tensors of argument `arg`: one tensor (one layer) or a list. */
static int check_layers(lua_State *L, int arg, const char *what, const st_tensor ***out)
{
    if (st_lua_to_tensor(L, arg)) {
        const st_tensor **list = lua_newuserdatauv(L, sizeof *list, 0);
        list[0] = st_lua_to_tensor(L, arg);
        *out = list;
        return 1;
    }
    if (!lua_istable(L, arg))
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: expected a tensor or a list of tensors, got %s", what,
                                              luaL_typename(L, arg)));
    lua_Integer n = luaL_len(L, arg);
    if (n < 1 || n > 1024)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: expected 1 to 1024 layers, got %I", what, n));
    const st_tensor **list = lua_newuserdatauv(L, sizeof *list * (size_t)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, arg, i);
        list[i - 1] = st_lua_to_tensor(L, -1);
        if (!list[i - 1])
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: item %I is %s, not a tensor", what, i, luaL_typename(L, -1)));
        lua_pop(L, 1); /* the list table keeps it alive */
    }
    *out = list;
    return (int)n;
}

/* Label filter: a tensor (i64/i32) or a list of integers (then converted
 * into a tensor left on the stack, which keeps it alive). */
static const st_tensor *check_labels(lua_State *L, int arg, const char *key)
{
    if (lua_getfield(L, arg, key) == LUA_TNIL) {
        lua_pop(L, 1);
        return NULL;
    }
    st_tensor *t = st_lua_to_tensor(L, -1);
    if (t) return t; /* the options table keeps it alive */
    if (!lua_istable(L, -1))
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: expected a tensor or a list of integers, got %s", key,
                                              luaL_typename(L, -1)));
    int list = lua_gettop(L);
    int64_t n = (int64_t)luaL_len(L, list);
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_tensor_new(ST_I64, 1, &n, slot));
    for (int64_t i = 0; i < n; i++) {
        lua_geti(L, list, i + 1);
        if (!lua_isinteger(L, -1))
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: item %I is not an integer", key, (lua_Integer)i + 1));
        ((int64_t *)(*slot)->data)[i] = lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    return *slot;
}

static int l_knn(lua_State *L)
{
    const st_tensor **queries, **train;
    int nq = check_layers(L, 1, "queries", &queries);
    int nt = check_layers(L, 2, "train", &train);
    if (nq != nt)
        return luaL_argerror(L, 2, lua_pushfstring(L, "train: expected %d layers like the queries, got %d", nq, nt));
    luaL_checktype(L, 3, LUA_TTABLE);
    st_lua_check_keys(L, 3, (const char *const[]){"k", "weights", "filter_query", "filter_train", "train_block",
                                                  "query_block", NULL});
    st_knn_options o = st_knn_defaults(opt_integer(L, 3, "k", 0, 1));
    if (o.k == 0) return luaL_argerror(L, 3, "k: the number of neighbours is required");
    o.train_block = opt_integer(L, 3, "train_block", 0, 0);
    o.query_block = opt_integer(L, 3, "query_block", 0, 0);
    if (lua_getfield(L, 3, "weights") != LUA_TNIL) {
        if (!lua_istable(L, -1))
            return luaL_argerror(L, 3, lua_pushfstring(L, "weights: expected %d numbers, got %s", nq,
                                                       luaL_typename(L, -1)));
        if (luaL_len(L, -1) != nq)
            return luaL_argerror(L, 3, lua_pushfstring(L, "weights: expected %d numbers, got %I", nq,
                                                       luaL_len(L, -1)));
        double *w = lua_newuserdatauv(L, sizeof *w * (size_t)nq, 0);
        for (int l = 0; l < nq; l++) {
            if (lua_geti(L, -2, l + 1) != LUA_TNUMBER)
                return luaL_argerror(L, 3, lua_pushfstring(L, "weights: item %d is not a number", l + 1));
            w[l] = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
        o.weights = w; /* the userdata stays on the stack */
    } else {
        lua_pop(L, 1);
    }
    o.query_labels = check_labels(L, 3, "filter_query");
    o.train_labels = check_labels(L, 3, "filter_train");
    if (!o.query_labels != !o.train_labels)
        return luaL_argerror(L, 3, "filter_query and filter_train go together");
    st_tensor **indices = st_lua_new_tensor_slot(L);
    st_tensor **distances = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_knn_search(nq, queries, train, &o, indices, distances));
    st_lua_track(L, *indices);
    st_lua_track(L, *distances);
    to_lua_positions(*indices);
    return 2;
}

static const luaL_Reg functions[] = {
    {"kmeans", l_kmeans}, {"kmeans_predict", l_kmeans_predict}, {"knn", l_knn}, {NULL, NULL}};

void st_lua_register_cluster_search(lua_State *L) { luaL_setfuncs(L, functions, 0); }
