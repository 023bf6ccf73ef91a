/* Lua bindings of the surrogate and the metrics (surrogate.h, metrics.h):
 *   strata.core.surrogate_fit({a1, a2, ...}, labels, n_classes,
 *                             {clusters = {K1, ...}, min_cluster_size = 1})
 *       a_l: f32 [N, K_l] soft assignments (the hard cluster is the argmax,
 *       ties to the lower id) or i32/i64 [N] cluster ids from 0 (then
 *       `clusters` gives every K_l)
 *   strata.core.surrogate_new({counts1, ...}, {min_cluster_size = 1})
 *   s:predict_proba({q1, ...} [, weights]) -> f64 [N, C]
 *   s:predict({q1, ...} [, weights]) -> i64 [N] class ids from 0
 *   s:predict_layers({q1, ...}) -> i64 [L, N]
 *   s:layer_count(), s:class_count(), s:cluster_count(l), s:min_cluster_size()
 *   s:posterior(l), s:counts(l), s:prior(l) -> copies
 *   s:issues() -> {{kind = "empty"|"small"|"collapsed", layer =, cluster =,
 *                   size =, message =}, ...}
 *   s:cluster_stats(l) -> {{cluster =, size =, purity =, entropy =,
 *                            dominant = {{class =, fraction =}, ...}}, ...}
 *   strata.core.cluster_stats(counts) -> the same list for a count matrix
 *   strata.core.cluster_stats_json(counts [, class_names]) -> JSON text
 *   strata.core.evaluate(truth, baseline, surrogate, {classes =, layers =,
 *       bootstrap = 1000, level = 0.95, rng =, class_names =, layer_names =})
 *       -> evaluation: ev:totable(), ev:summary(), ev:json([pretty]), ev:save(path)
 * Layers are 1-based positions in Lua (the order of the lists); cluster
 * and class ids count from 0, like the datasets' labels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "luabind.h"
#include "strata/json.h"
#include "strata/metrics.h"
#include "strata/ops.h"
#include "strata/surrogate.h"

#define ST_LUA_SURROGATE "strata.surrogate"
#define ST_LUA_EVALUATION "strata.evaluation"

static st_surrogate *check_surrogate(lua_State *L, int idx)
{
    return st_lua_check_box(L, idx, ST_LUA_SURROGATE, "surrogate has been freed");
}

static int s_free(lua_State *L)
{
    st_surrogate_free(st_lua_box_take(L, 1, ST_LUA_SURROGATE));
    return 0;
}

/* The tensors of the list at arg (exactly n entries when n > 0) in a
 * userdata array on the stack; returns the count. */
static int tensor_list(lua_State *L, int arg, int n, const char *what, const st_tensor ***out)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    int len = (int)luaL_len(L, arg);
    if (len < 1 || (n > 0 && len != n))
        luaL_argerror(L, arg, n > 0 ? lua_pushfstring(L, "%s: expected %d tensors (one per layer), got %d", what, n, len)
                                    : lua_pushfstring(L, "%s: expected a non-empty list of tensors", what));
    const st_tensor **t = lua_newuserdatauv(L, (size_t)len * sizeof *t, 0);
    for (int i = 0; i < len; i++) {
        lua_geti(L, arg, i + 1);
        t[i] = st_lua_to_tensor(L, -1);
        if (!t[i])
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: entry %d is a %s, not a tensor", what, i + 1, luaL_typename(L, -1)));
        lua_pop(L, 1); /* the list keeps it alive */
    }
    *out = t;
    return len;
}

static int64_t opt_int_field(lua_State *L, int arg, const char *key, int64_t def)
{
    if (lua_isnoneornil(L, arg)) return def;
    lua_getfield(L, arg, key);
    int64_t v = def;
    if (!lua_isnil(L, -1)) {
        int ok;
        v = lua_tointegerx(L, -1, &ok);
        if (!ok) luaL_argerror(L, arg, lua_pushfstring(L, "%s: integer expected, got %s", key, luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
    return v;
}

static st_surrogate_options surrogate_options(lua_State *L, int arg)
{
    st_surrogate_options o = st_surrogate_defaults();
    o.min_cluster_size = opt_int_field(L, arg, "min_cluster_size", o.min_cluster_size);
    return o;
}

static int l_surrogate_fit(lua_State *L)
{
    lua_settop(L, 4); /* optional arguments stay below what the call pushes */
    const st_tensor **a;
    int n = tensor_list(L, 1, 0, "assignments", &a);
    st_tensor *labels = st_lua_check_tensor(L, 2);
    lua_Integer C = luaL_checkinteger(L, 3);
    luaL_argcheck(L, C >= 1 && C <= INT32_MAX, 3, "n_classes: a positive integer expected");
    if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
    st_lua_check_keys(L, 4, (const char *const[]){"clusters", "min_cluster_size", NULL});
    st_surrogate_options o = surrogate_options(L, 4);
    int64_t *K = lua_newuserdatauv(L, (size_t)n * sizeof *K, 0);
    const st_tensor **ids = lua_newuserdatauv(L, (size_t)n * sizeof *ids, 0);
    st_tensor **owned = lua_newuserdatauv(L, (size_t)n * sizeof *owned, 0);
    memset(owned, 0, (size_t)n * sizeof *owned);
    bool have_k = !lua_isnoneornil(L, 4) && lua_getfield(L, 4, "clusters") == LUA_TTABLE;
    if (!lua_isnoneornil(L, 4)) lua_pop(L, 1);
    st_status s = ST_OK;
    for (int l = 0; l < n; l++) {
        if (a[l]->dtype == ST_F32 && a[l]->ndim == 2) {
            K[l] = a[l]->shape[1];
            if (s == ST_OK) s = st_argmax(a[l], 1, false, &owned[l]);
            ids[l] = owned[l];
        } else if (have_k) {
            lua_getfield(L, 4, "clusters");
            lua_geti(L, -1, l + 1);
            int ok;
            K[l] = lua_tointegerx(L, -1, &ok);
            lua_pop(L, 2);
            if (!ok) {
                for (int m = 0; m < n; m++) st_tensor_free(owned[m]);
                return luaL_argerror(L, 4, lua_pushfstring(L, "clusters: entry %d is not an integer", l + 1));
            }
            ids[l] = a[l];
        } else {
            for (int m = 0; m < n; m++) st_tensor_free(owned[m]);
            return luaL_argerror(L, 1, lua_pushfstring(L, "assignments: entry %d is neither f32 [N, K] soft "
                                                          "assignments nor cluster ids with opts.clusters", l + 1));
        }
    }
    void **slot = st_lua_new_box(L, ST_LUA_SURROGATE, 0);
    st_surrogate *sur = NULL;
    if (s == ST_OK) s = st_surrogate_fit(n, ids, K, labels, (int)C, &o, &sur);
    *slot = sur;
    for (int l = 0; l < n; l++) st_tensor_free(owned[l]);
    ST_LUA_CHECK(L, s);
    return 1;
}

static int l_surrogate_new(lua_State *L)
{
    lua_settop(L, 2);
    const st_tensor **counts;
    int n = tensor_list(L, 1, 0, "counts", &counts);
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
    st_lua_check_keys(L, 2, (const char *const[]){"min_cluster_size", NULL});
    st_surrogate_options o = surrogate_options(L, 2);
    void **slot = st_lua_new_box(L, ST_LUA_SURROGATE, 0);
    st_surrogate *sur;
    ST_LUA_CHECK(L, st_surrogate_new(n, counts, &o, &sur));
    *slot = sur;
    return 1;
}

/* Optional weights list at arg: one number per layer. */
static const double *weights_arg(lua_State *L, int arg, int n)
{
    if (lua_isnoneornil(L, arg)) return NULL;
    luaL_checktype(L, arg, LUA_TTABLE);
    int len = (int)luaL_len(L, arg);
    if (len != n) luaL_argerror(L, arg, lua_pushfstring(L, "weights: expected %d numbers, got %d", n, len));
    double *w = lua_newuserdatauv(L, (size_t)n * sizeof *w, 0);
    for (int i = 0; i < n; i++) {
        lua_geti(L, arg, i + 1);
        int ok;
        w[i] = lua_tonumberx(L, -1, &ok);
        if (!ok) luaL_argerror(L, arg, lua_pushfstring(L, "weights: entry %d is not a number", i + 1));
        lua_pop(L, 1);
    }
    return w;
}

/* s:predict_proba(q, w) and s:predict(q, w): the same arguments, one result tensor. */
static int predict_with(lua_State *L,
                        st_status (*predict)(const st_surrogate *, const st_tensor *const *, const double *,
                                             st_tensor **))
{
    lua_settop(L, 3);
    st_surrogate *s = check_surrogate(L, 1);
    const st_tensor **q;
    tensor_list(L, 2, st_surrogate_layer_count(s), "assignments", &q);
    const double *w = weights_arg(L, 3, st_surrogate_layer_count(s));
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, predict(s, q, w, slot));
    st_lua_track(L, *slot);
    return 1;
}

static int s_predict_proba(lua_State *L) { return predict_with(L, st_surrogate_predict_proba); }

static int s_predict(lua_State *L) { return predict_with(L, st_surrogate_predict); }

static int s_predict_layers(lua_State *L)
{
    lua_settop(L, 2);
    st_surrogate *s = check_surrogate(L, 1);
    const st_tensor **q;
    tensor_list(L, 2, st_surrogate_layer_count(s), "assignments", &q);
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_surrogate_predict_layers(s, q, slot));
    st_lua_track(L, *slot);
    return 1;
}

static int s_layer_count(lua_State *L)
{
    lua_pushinteger(L, st_surrogate_layer_count(check_surrogate(L, 1)));
    return 1;
}

static int s_class_count(lua_State *L)
{
    lua_pushinteger(L, st_surrogate_class_count(check_surrogate(L, 1)));
    return 1;
}

static int s_min_cluster_size(lua_State *L)
{
    lua_pushinteger(L, st_surrogate_min_cluster_size(check_surrogate(L, 1)));
    return 1;
}

/* The 1-based layer at arg as a 0-based index. */
static int check_layer(lua_State *L, const st_surrogate *s, int arg)
{
    lua_Integer l = luaL_checkinteger(L, arg);
    int n = st_surrogate_layer_count(s);
    if (l < 1 || l > n) luaL_argerror(L, arg, lua_pushfstring(L, "layer %I is not in 1..%d", (lua_Integer)l, n));
    return (int)l - 1;
}

static int s_cluster_count(lua_State *L)
{
    st_surrogate *s = check_surrogate(L, 1);
    lua_pushinteger(L, st_surrogate_cluster_count(s, check_layer(L, s, 2)));
    return 1;
}

static int push_copy(lua_State *L, const st_tensor *t)
{
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_tensor_clone(t, slot));
    st_lua_track(L, *slot);
    return 1;
}

static int s_posterior(lua_State *L)
{
    st_surrogate *s = check_surrogate(L, 1);
    return push_copy(L, st_surrogate_posterior(s, check_layer(L, s, 2)));
}

static int s_counts(lua_State *L)
{
    st_surrogate *s = check_surrogate(L, 1);
    return push_copy(L, st_surrogate_counts(s, check_layer(L, s, 2)));
}

static int s_prior(lua_State *L)
{
    st_surrogate *s = check_surrogate(L, 1);
    return push_copy(L, st_surrogate_prior(s, check_layer(L, s, 2)));
}

static int s_issues(lua_State *L)
{
    st_surrogate *s = check_surrogate(L, 1);
    size_t n;
    const st_cluster_issue *is = st_surrogate_issues(s, &n);
    static const char *const kinds[] = {"empty", "small", "collapsed"};
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        char msg[256];
        st_cluster_issue_str(&is[i], msg, sizeof msg);
        lua_createtable(L, 0, 5);
        lua_pushstring(L, kinds[is[i].kind]);
        lua_setfield(L, -2, "kind");
        lua_pushinteger(L, is[i].layer + 1);
        lua_setfield(L, -2, "layer");
        lua_pushinteger(L, is[i].cluster);
        lua_setfield(L, -2, "cluster");
        lua_pushinteger(L, is[i].size);
        lua_setfield(L, -2, "size");
        lua_pushstring(L, msg);
        lua_setfield(L, -2, "message");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* Statistics of a count matrix as a list of tables. */
static int push_stats(lua_State *L, const st_tensor *counts)
{
    st_tensor *c64 = NULL;
    ST_LUA_CHECK(L, st_tensor_to_dtype(counts, ST_I64, &c64));
    int64_t K = c64->ndim == 2 ? c64->shape[0] : 0;
    st_cluster_stats *st = lua_newuserdatauv(L, (size_t)(K ? K : 1) * sizeof *st, 0);
    st_status s = st_cluster_stats_compute(c64, st);
    st_tensor_free(c64);
    ST_LUA_CHECK(L, s);
    lua_createtable(L, (int)K, 0);
    for (int64_t j = 0; j < K; j++) {
        lua_createtable(L, 0, 5);
        lua_pushinteger(L, j);
        lua_setfield(L, -2, "cluster");
        lua_pushinteger(L, st[j].size);
        lua_setfield(L, -2, "size");
        lua_pushnumber(L, st[j].purity);
        lua_setfield(L, -2, "purity");
        lua_pushnumber(L, st[j].entropy);
        lua_setfield(L, -2, "entropy");
        lua_createtable(L, st[j].n_dominant, 0);
        for (int d = 0; d < st[j].n_dominant; d++) {
            lua_createtable(L, 0, 2);
            lua_pushinteger(L, st[j].dominant[d]);
            lua_setfield(L, -2, "class");
            lua_pushnumber(L, st[j].dominant_fraction[d]);
            lua_setfield(L, -2, "fraction");
            lua_rawseti(L, -2, d + 1);
        }
        lua_setfield(L, -2, "dominant");
        lua_rawseti(L, -2, j + 1);
    }
    return 1;
}

static int s_cluster_stats(lua_State *L)
{
    st_surrogate *s = check_surrogate(L, 1);
    return push_stats(L, st_surrogate_counts(s, check_layer(L, s, 2)));
}

static int l_cluster_stats(lua_State *L) { return push_stats(L, st_lua_check_tensor(L, 1)); }

/* An optional list of n strings at arg (NULL when absent). */
static const char *const *names_arg(lua_State *L, int arg, const char *key, int n)
{
    if (lua_isnoneornil(L, arg)) return NULL;
    if (lua_getfield(L, arg, key) == LUA_TNIL) {
        lua_pop(L, 1);
        return NULL;
    }
    if (!lua_istable(L, -1) || (int)luaL_len(L, -1) != n)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: expected a list of %d strings", key, n));
    const char **names = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *names, 1);
    lua_pushvalue(L, -2);
    lua_setiuservalue(L, -2, 1); /* keeps the strings alive with the array */
    for (int i = 0; i < n; i++) {
        lua_geti(L, -2, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: entry %d is not a string", key, i + 1));
        names[i] = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    lua_remove(L, -2);     /* the list; the array (left on the stack) refers to it */
    return names;
}

static int l_cluster_stats_json(lua_State *L)
{
    lua_settop(L, 2);
    st_tensor *counts = st_lua_check_tensor(L, 1);
    st_tensor *c64 = NULL;
    ST_LUA_CHECK(L, st_tensor_to_dtype(counts, ST_I64, &c64));
    int64_t K = c64->ndim == 2 ? c64->shape[0] : 0, C = c64->ndim == 2 ? c64->shape[1] : 0;
    st_cluster_stats *st = lua_newuserdatauv(L, (size_t)(K ? K : 1) * sizeof *st, 0);
    st_status s = st_cluster_stats_compute(c64, st);
    st_tensor_free(c64);
    ST_LUA_CHECK(L, s);
    const char *const *names = NULL;
    if (!lua_isnoneornil(L, 2)) {
        lua_createtable(L, 0, 1); /* names_arg reads a field of an options table */
        lua_pushvalue(L, 2);
        lua_setfield(L, -2, "class_names");
        names = names_arg(L, lua_gettop(L), "class_names", (int)C);
    }
    st_json_writer *w = NULL;
    ST_LUA_CHECK(L, st_json_writer_new(true, &w));
    st_cluster_stats_write_json(w, st, K, names);
    const char *text;
    size_t len;
    s = st_json_writer_text(w, &text, &len);
    if (s == ST_OK) lua_pushlstring(L, text, len);
    st_json_writer_free(w);
    ST_LUA_CHECK(L, s);
    return 1;
}

/* ------------------------------------------------------------ evaluation */

static st_evaluation *check_ev(lua_State *L, int idx)
{
    return st_lua_check_box(L, idx, ST_LUA_EVALUATION, "evaluation has been freed");
}

static int e_free(lua_State *L)
{
    st_evaluation_free(st_lua_box_take(L, 1, ST_LUA_EVALUATION));
    return 0;
}

/* The evaluation's names: uservalue 1 holds {class_names =, layer_names =}. */
static void ev_names(lua_State *L, const st_evaluation *ev, const char *const **cls, const char *const **lay)
{
    lua_getiuservalue(L, 1, 1);
    int t = lua_gettop(L);
    *cls = names_arg(L, t, "class_names", ev->n_classes);
    *lay = names_arg(L, t, "layer_names", ev->n_layers);
}

static int l_evaluate(lua_State *L)
{
    lua_settop(L, 4);
    st_tensor *truth = st_lua_check_tensor(L, 1), *base = st_lua_check_tensor(L, 2), *sur = st_lua_check_tensor(L, 3);
    luaL_checktype(L, 4, LUA_TTABLE);
    st_lua_check_keys(L, 4, (const char *const[]){"classes", "layers", "bootstrap", "level", "rng", "class_names",
                                                   "layer_names", NULL});
    st_eval_options o = st_eval_defaults(NULL);
    int64_t C = opt_int_field(L, 4, "classes", 0);
    if (C < 1 || C > INT32_MAX) return luaL_argerror(L, 4, "classes: a positive integer expected");
    o.bootstrap = opt_int_field(L, 4, "bootstrap", o.bootstrap);
    if (lua_getfield(L, 4, "level") != LUA_TNIL) o.level = luaL_checknumber(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, 4, "rng") != LUA_TNIL) o.rng = st_lua_check_rng(L, lua_gettop(L));
    lua_pop(L, 1); /* the options table keeps the rng alive */
    st_tensor *layers = NULL;
    if (lua_getfield(L, 4, "layers") != LUA_TNIL) layers = st_lua_check_tensor(L, lua_gettop(L));
    lua_pop(L, 1);
    void **slot = st_lua_new_box(L, ST_LUA_EVALUATION, 1);
    st_evaluation *ev;
    ST_LUA_CHECK(L, st_evaluate(truth, base, sur, layers, (int)C, &o, &ev));
    *slot = ev;
    /* keep the names for the text forms, checked now */
    lua_createtable(L, 0, 2);
    lua_getfield(L, 4, "class_names");
    lua_setfield(L, -2, "class_names");
    lua_getfield(L, 4, "layer_names");
    lua_setfield(L, -2, "layer_names");
    int names = lua_gettop(L);
    names_arg(L, names, "class_names", ev->n_classes);
    names_arg(L, names, "layer_names", ev->n_layers);
    lua_settop(L, names);
    lua_setiuservalue(L, -2, 1);
    return 1;
}

static void set_rate(lua_State *L, const char *key, double v, st_interval ci)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, key);
    lua_createtable(L, 2, 0);
    lua_pushnumber(L, ci.lo);
    lua_rawseti(L, -2, 1);
    lua_pushnumber(L, ci.hi);
    lua_rawseti(L, -2, 2);
    char k[64];
    snprintf(k, sizeof k, "%s_ci", key);
    lua_setfield(L, -2, k);
}

static void push_matrix(lua_State *L, const int64_t *m, int64_t C)
{
    st_tensor **slot = st_lua_new_tensor_slot(L);
    ST_LUA_CHECK(L, st_tensor_from_data(ST_I64, 2, (int64_t[]){C, C}, m, (size_t)(C * C) * sizeof *m, slot));
}

static int e_totable(lua_State *L)
{
    st_evaluation *ev = check_ev(L, 1);
    lua_createtable(L, 0, 16);
    lua_pushinteger(L, ev->n);
    lua_setfield(L, -2, "n");
    lua_pushinteger(L, ev->n_classes);
    lua_setfield(L, -2, "classes");
    lua_pushinteger(L, ev->bootstrap);
    lua_setfield(L, -2, "bootstrap");
    lua_pushnumber(L, ev->level);
    lua_setfield(L, -2, "level");
    set_rate(L, "baseline_accuracy", ev->baseline_accuracy, ev->baseline_accuracy_ci);
    set_rate(L, "accuracy", ev->accuracy, ev->accuracy_ci);
    set_rate(L, "fidelity", ev->fidelity, ev->fidelity_ci);
    lua_createtable(L, ev->n_layers, 0);
    for (int l = 0; l < ev->n_layers; l++) {
        lua_createtable(L, 0, 2);
        lua_pushnumber(L, ev->layer_accuracy[l]);
        lua_setfield(L, -2, "accuracy");
        lua_pushnumber(L, ev->layer_fidelity[l]);
        lua_setfield(L, -2, "fidelity");
        lua_rawseti(L, -2, l + 1);
    }
    lua_setfield(L, -2, "layers");
    lua_createtable(L, ev->n_classes, 0);
    for (int c = 0; c < ev->n_classes; c++) {
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, c);
        lua_setfield(L, -2, "class");
        lua_pushinteger(L, ev->class_count[c]);
        lua_setfield(L, -2, "baseline_count");
        if (ev->class_count[c]) {
            lua_pushnumber(L, ev->class_fidelity[c]);
            lua_setfield(L, -2, "fidelity");
        }
        lua_rawseti(L, -2, c + 1);
    }
    lua_setfield(L, -2, "per_class");
    push_matrix(L, ev->confusion, ev->n_classes);
    lua_setfield(L, -2, "confusion");
    push_matrix(L, ev->agreement, ev->n_classes);
    lua_setfield(L, -2, "agreement");
    return 1;
}

static int e_summary(lua_State *L)
{
    st_evaluation *ev = check_ev(L, 1);
    const char *const *cls, *const *lay;
    ev_names(L, ev, &cls, &lay);
    char *text = NULL;
    ST_LUA_CHECK(L, st_evaluation_summary(ev, cls, lay, &text));
    lua_pushstring(L, text);
    free(text);
    return 1;
}

/* Builds the JSON document; leaves nothing extra on failure paths that return. */
static st_json_writer *ev_writer(lua_State *L, st_evaluation *ev, bool pretty)
{
    const char *const *cls, *const *lay;
    ev_names(L, ev, &cls, &lay);
    st_json_writer *w = NULL;
    ST_LUA_CHECK(L, st_json_writer_new(pretty, &w));
    st_evaluation_write_json(w, ev, cls, lay);
    return w;
}

static int e_json(lua_State *L)
{
    lua_settop(L, 2);
    st_evaluation *ev = check_ev(L, 1);
    st_json_writer *w = ev_writer(L, ev, lua_isnoneornil(L, 2) || lua_toboolean(L, 2));
    const char *text;
    size_t len;
    st_status s = st_json_writer_text(w, &text, &len);
    if (s == ST_OK) lua_pushlstring(L, text, len);
    st_json_writer_free(w);
    ST_LUA_CHECK(L, s);
    return 1;
}

static int e_save(lua_State *L)
{
    st_evaluation *ev = check_ev(L, 1);
    const char *path = luaL_checkstring(L, 2);
    st_json_writer *w = ev_writer(L, ev, true);
    st_status s = st_json_writer_save(w, path);
    st_json_writer_free(w);
    if (s != ST_OK) return st_lua_push_failure(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int e_tostring(lua_State *L) { return e_summary(L); }

/* ------------------------------------------------------------- register */

static const luaL_Reg surrogate_methods[] = {
    {"predict_proba", s_predict_proba}, {"predict", s_predict},         {"predict_layers", s_predict_layers},
    {"layer_count", s_layer_count},     {"class_count", s_class_count}, {"cluster_count", s_cluster_count},
    {"min_cluster_size", s_min_cluster_size},                           {"posterior", s_posterior},
    {"counts", s_counts},               {"prior", s_prior},             {"issues", s_issues},
    {"cluster_stats", s_cluster_stats}, {"free", s_free},               {NULL, NULL}};

static const luaL_Reg evaluation_methods[] = {{"totable", e_totable}, {"summary", e_summary}, {"json", e_json},
                                              {"save", e_save},       {"free", e_free},       {NULL, NULL}};

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
                      lua_CFunction tostring)
{
    luaL_newmetatable(L, name);
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__close");
    if (tostring) {
        lua_pushcfunction(L, tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
}

void st_lua_register_surrogate(lua_State *L)
{
    new_class(L, ST_LUA_SURROGATE, surrogate_methods, s_free, NULL);
    new_class(L, ST_LUA_EVALUATION, evaluation_methods, e_free, e_tostring);
    static const luaL_Reg fns[] = {{"surrogate_fit", l_surrogate_fit},
                                   {"surrogate_new", l_surrogate_new},
                                   {"cluster_stats", l_cluster_stats},
                                   {"cluster_stats_json", l_cluster_stats_json},
                                   {"evaluate", l_evaluate},
                                   {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
