/* Option-table helpers shared by the training bindings (cae.c, dec.c):
 * each reads one field of the table at stack index t, returning def when
 * the field is nil and raising a Lua error naming the field otherwise. */
#ifndef STRATA_BIND_TRAIN_H
#define STRATA_BIND_TRAIN_H

#include <stdbool.h>
#include "luabind.h"
#include "strata/optim.h"

int st_lua_opt_int(lua_State *L, int t, const char *key, int def);
double st_lua_opt_num(lua_State *L, int t, const char *key, double def);
bool st_lua_opt_bool(lua_State *L, int t, const char *key, bool def);
/* An optimiser table {kind = "adam" | "sgd", lr, beta1, beta2, eps,
 * momentum, weight_decay, nesterov} at arg (nil: Keras Adam defaults);
 * unknown keys are an error. */
st_optim_config st_lua_optim_config(lua_State *L, int arg);
/* An f32 tensor argument whose memory is one C-order block. */
st_tensor *st_lua_check_f32(lua_State *L, int idx, const char *what);

#endif
