/* strata.clock(): wall-clock seconds with sub-microsecond resolution, for
 * timing from Lua (os.clock is processor time, os.time whole seconds). */
#include <time.h>

#include "luabind.h"

static int l_clock(lua_State *L)
{
    struct timespec ts;
    if (timespec_get(&ts, TIME_UTC) != TIME_UTC) return luaL_error(L, "clock: the system clock is unavailable");
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
    return 1;
}

void st_lua_register_clock(lua_State *L)
{
    lua_pushcfunction(L, l_clock);
    lua_setfield(L, -2, "clock");
}
