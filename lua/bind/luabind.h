/* Shared helpers for the Lua bindings of libstrata (one bind/<area>.c per
 * core area). Each area defines `void st_lua_register_<area>(lua_State *L)`,
 * which adds its functions to the module table on the top of the stack;
 * module.c calls every registrar from luaopen_strata_core, tensor first.
 *
 * Conventions (DESIGN.md, "The Lua face"; docs/lua.md for users):
 *  - misuse raises a Lua error naming the argument (luaL_argerror style):
 *    "bad argument #2 to 'reshape' (shape: expected integers, got string)";
 *  - an expected failure of loading returns nil plus the message
 *    (st_lua_push_failure);
 *  - a core object in a userdata: the metatable is set before the C
 *    object is created, and __gc/__close share one idempotent free;
 *  - Lua-facing indices, dimensions and slices are 1-based with an
 *    inclusive end; negative values count from the end (-1 is the last).
 *    Index tensors seen from Lua (argmax, topk, gather ...) hold 1-based
 *    positions too; the bindings convert at the boundary. */
#ifndef STRATA_LUABIND_H
#define STRATA_LUABIND_H

#include <lauxlib.h>
#include <lua.h>
#include "strata/rng.h"
#include "strata/tensor.h"

#define ST_LUA_TENSOR "strata.tensor"
#define ST_LUA_RNG "strata.rng"
#define ST_LUA_NET "strata.net" /* a box (below) of one st_net *; net.c */

/* ---- tensors ---- */
/* The tensor at stack index idx, or a Lua error naming argument idx
 * (also when the tensor was already freed by __close or t:free()). */
st_tensor *st_lua_check_tensor(lua_State *L, int idx);
/* NULL when the value is not a live tensor. */
st_tensor *st_lua_to_tensor(lua_State *L, int idx);
/* Creates the userdata box (with metatable) and leaves it on the stack;
 * returns the slot to store an owned tensor into. Call it BEFORE creating
 * the tensor so an allocation error in Lua cannot leak it:
 *     st_tensor **slot = st_lua_new_tensor_slot(L);
 *     ST_LUA_CHECK(L, st_tensor_clone(x, slot));
 *     st_lua_track(L, *slot);      // a fresh tensor, not a view
 *     return 1; */
st_tensor **st_lua_new_tensor_slot(lua_State *L);
/* Pushes an owned, freshly allocated tensor (the box takes ownership and
 * tracks its bytes). Prefer the slot above where possible. */
void st_lua_push_tensor(lua_State *L, st_tensor *t);
/* Tells Lua's collector about the bytes of a freshly allocated tensor
 * (Lua only sees the small box), so loops that drop large tensors do not
 * grow memory before the collector notices. Not for views. */
void st_lua_track(lua_State *L, const st_tensor *t);
/* Adds functions to the tensor methods table (t:name(...)). */
void st_lua_add_tensor_methods(lua_State *L, const luaL_Reg *methods);

/* ---- boxes ----
 * Every core object other than tensors lives in a box: a userdata holding
 * one pointer to it, NULL once freed. The box (with its metatable) is
 * made BEFORE the object, so a Lua error cannot leak it:
 *     void **slot = st_lua_new_box(L, ST_LUA_NET, 0);
 *     st_net *net;
 *     if (st_resnet_load(path, &net) != ST_OK) return st_lua_push_failure(L);
 *     *slot = net;
 * and __gc, __close and :free() share one idempotent free:
 *     st_net_free(st_lua_box_take(L, 1, ST_LUA_NET)); */
void **st_lua_new_box(lua_State *L, const char *tname, int user_values);
/* The boxed pointer (NULL when freed); a type error unless idx holds a tname box. */
void *st_lua_box_get(lua_State *L, int idx, const char *tname);
/* The live boxed object, or an argument error with freed_message. */
void *st_lua_check_box(lua_State *L, int idx, const char *tname, const char *freed_message);
/* The boxed pointer, leaving NULL in the box (for the free functions). */
void *st_lua_box_take(lua_State *L, int idx, const char *tname);

/* ---- argument helpers ---- */
/* A shape given either as one table {2, 3} at `arg` or as integers
 * from `arg` on (stopping at the first non-number). Fills shape, returns
 * ndim and stores the index of the first argument after the shape in
 * *next (may be NULL). Raises "shape: expected integers, got string". */
int st_lua_check_shape(lua_State *L, int arg, int64_t shape[ST_MAX_DIMS], int *next);
/* A 1-based Lua dimension of t (negative counts from the end) as the
 * core's 0-based dimension. */
int st_lua_check_dim(lua_State *L, int arg, const st_tensor *t);
int st_lua_opt_dim(lua_State *L, int arg, const st_tensor *t, int def0);
/* A dtype name ("f32", "f64", "i32", "i64", "u8"), or def when absent. */
st_dtype st_lua_opt_dtype(lua_State *L, int arg, st_dtype def);
/* Raises naming argument `arg` when the options table there has a key
 * that is not in `allowed` (NULL-terminated). Absent/nil is fine. */
void st_lua_check_keys(lua_State *L, int arg, const char *const *allowed);

/* ---- rng ---- */
st_rng *st_lua_check_rng(lua_State *L, int idx);

/* ---- errors ---- */
/* Raises a Lua error with the core's message for status s (never returns). */
int st_lua_raise(lua_State *L, st_status s);
/* Pushes nil and the core's message; returns 2 (for `return` in a C function). */
int st_lua_push_failure(lua_State *L);
/* Raises unless s is ST_OK. */
#define ST_LUA_CHECK(L, expr)                          \
    do {                                               \
        st_status st_lua_s_ = (expr);                  \
        if (st_lua_s_ != ST_OK) st_lua_raise((L), st_lua_s_); \
    } while (0)

/* The module opener (lua/bind/module.c); the `strata` executable preloads
 * it as "strata.core". */
int luaopen_strata_core(lua_State *L);

/* ---- registrars (module.c calls them in this order) ---- */
void st_lua_register_tensor(lua_State *L);
void st_lua_register_ops(lua_State *L);
void st_lua_register_io(lua_State *L);
void st_lua_register_net(lua_State *L);
void st_lua_register_data(lua_State *L);
void st_lua_register_cae(lua_State *L);
void st_lua_register_dec(lua_State *L);
void st_lua_register_cluster_search(lua_State *L);
void st_lua_register_surrogate(lua_State *L);
void st_lua_register_figure(lua_State *L);
void st_lua_register_bundle(lua_State *L);
void st_lua_register_clock(lua_State *L);
void st_lua_register_machine(lua_State *L);

#endif
