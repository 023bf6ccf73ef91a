/* strata.cpu_count(): the cores this process may run on, the default
 * thread count of the explainer; strata.blas_threads(): OpenBLAS's thread
 * count. Registering this area also keeps
 * OpenBLAS single-threaded unless OPENBLAS_NUM_THREADS says otherwise:
 * Strata parallelises with its own threads (autoencoder lanes, forward
 * image groups, k-means restarts), and OpenBLAS threads inside those only
 * oversubscribe the cores. Measured on 2 cores: autoencoder pretraining
 * with 2 lanes ran at 424 samples/s with OpenBLAS's default threads
 * against 747 with one; its GEMMs here are too small to gain from them. */
#define _GNU_SOURCE
#include <cblas.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "luabind.h"

static int l_cpu_count(lua_State *L)
{
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    lua_pushinteger(L, n > 0 ? n : 1);
    return 1;
}

static int l_blas_threads(lua_State *L)
{
    lua_pushinteger(L, openblas_get_num_threads());
    return 1;
}

void st_lua_register_machine(lua_State *L)
{
    if (!getenv("OPENBLAS_NUM_THREADS")) openblas_set_num_threads(1);
    lua_pushcfunction(L, l_cpu_count);
    lua_setfield(L, -2, "cpu_count");
    lua_pushcfunction(L, l_blas_threads);
    lua_setfield(L, -2, "blas_threads");
}
