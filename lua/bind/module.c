/* luaopen_strata_core: the C half of `require "strata"` (the pure-Lua
 * half is lua/strata/init.lua). Every area of the bindings adds its
 * functions to one module table through its registrar. */
#include "luabind.h"

#ifndef STRATA_VERSION
#define STRATA_VERSION "dev"
#endif

/* One line per area; tensor first (it creates the metatables others use). */
static void (*const registrars[])(lua_State *L) = {
    st_lua_register_tensor,
    st_lua_register_ops,
    st_lua_register_io,
    st_lua_register_net,
    st_lua_register_data,
    st_lua_register_cae,
    st_lua_register_dec,
    st_lua_register_cluster_search,
    st_lua_register_surrogate,
    st_lua_register_figure,
    st_lua_register_bundle,
    st_lua_register_clock,
    st_lua_register_machine,
};

int luaopen_strata_core(lua_State *L)
{
    lua_newtable(L);
    for (size_t i = 0; i < sizeof registrars / sizeof *registrars; i++) registrars[i](L);
    lua_pushliteral(L, STRATA_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
