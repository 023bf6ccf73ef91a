/* Pieces of the `strata` executable shared by the script runner
 * (strata_main.c) and the interactive loop (repl.c). */
#ifndef STRATA_MAIN_H
#define STRATA_MAIN_H

#include <lua.h>

/* Calls the function below its narg arguments in protected mode with a
 * traceback handler; Ctrl-C interrupts the running code. */
int strata_docall(lua_State *L, int narg, int nres);
/* Prints a non-OK status's message (left on the stack) to stderr and
 * pops it; returns status. */
int strata_report(lua_State *L, int status);
/* The read-eval-print loop; returns when input ends. */
void strata_repl(lua_State *L);

#endif
