/* Boxes: a userdata holding one pointer to a core object, NULL once the
 * object is freed (luabind.h, "boxes"). */
#include "luabind.h"

void **st_lua_new_box(lua_State *L, const char *tname, int user_values)
{
    void **slot = lua_newuserdatauv(L, sizeof *slot, user_values);
    *slot = NULL;
    luaL_setmetatable(L, tname);
    return slot;
}

void *st_lua_box_get(lua_State *L, int idx, const char *tname)
{
    return *(void **)luaL_checkudata(L, idx, tname);
}

void *st_lua_check_box(lua_State *L, int idx, const char *tname, const char *freed_message)
{
    void *p = st_lua_box_get(L, idx, tname);
    if (!p) luaL_argerror(L, idx, freed_message);
    return p;
}

void *st_lua_box_take(lua_State *L, int idx, const char *tname)
{
    void **slot = luaL_checkudata(L, idx, tname);
    void *p = *slot;
    *slot = NULL;
    return p;
}
