/* Shared helpers for the Lua bindings of libstrata (one bind/<area>.c per
 * core area). Each area defines `void st_lua_register_<area>(lua_State *L)`,
 * which adds its functions to the module table on the top of the stack;
 * module.c calls every registrar from luaopen_strata_core.
 *
 * Conventions (DESIGN.md, "The Lua face"):
 *  - misuse raises a Lua error naming the argument (luaL_argerror style);
 *  - an expected failure of loading returns nil plus the message
 *    (st_lua_push_failure);
 *  - a core object in a userdata: the metatable is set before the C
 *    object is created, and __gc/__close share one idempotent free. */
#ifndef STRATA_LUABIND_H
#define STRATA_LUABIND_H

#include <lauxlib.h>
#include <lua.h>
#include "strata/rng.h"
#include "strata/tensor.h"

#define ST_LUA_TENSOR "strata.tensor"
#define ST_LUA_RNG "strata.rng"

/* The tensor at stack index idx, or a Lua error naming argument idx. */
st_tensor *st_lua_check_tensor(lua_State *L, int idx);
/* NULL when the value is not a live tensor. */
st_tensor *st_lua_to_tensor(lua_State *L, int idx);
/* Creates the userdata box (with metatable) and leaves it on the stack;
 * returns the slot to store an owned tensor into. Call it BEFORE creating
 * the tensor so an allocation error in Lua cannot leak it. */
st_tensor **st_lua_new_tensor_slot(lua_State *L);
/* Pushes an owned tensor (the box takes ownership). */
void st_lua_push_tensor(lua_State *L, st_tensor *t);

st_rng *st_lua_check_rng(lua_State *L, int idx);

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

#endif
