/* The `strata` executable: Lua 5.4 with the strata bindings linked in and
 * `strata` preloaded as a global; runs scripts, -e chunks, or a REPL
 * (repl.c). Exit codes: 0 success, 1 error in Lua code, 2 usage error. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "luabind.h"
#include "strata_main.h"

#ifndef STRATA_VERSION
#define STRATA_VERSION "dev"
#endif

#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: strata [options] [script [args...]]\n"
    "       strata run script [args...]\n"
    "       strata explain --model M --data D --out DIR ...   (strata explain --help)\n"
    "       strata notebook file.lua [-o out.html]   (strata notebook --help)\n"
    "  -e code   run the Lua code\n"
    "  -l name   require module 'name' into the global 'name'\n"
    "  -i        enter the interactive loop after the script\n"
    "  -v        print the version\n"
    "  --        stop handling options\n"
    "  -         run standard input\n"
    "With no script and no -e: the interactive loop on a terminal,\n"
    "otherwise standard input is run as a script.\n";

/* ---------------------------------------------------------- calling Lua */

static lua_State *running_state; /* for the SIGINT handler only */

static void stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted");
}

/* Ctrl-C while Lua runs: stop at the next hook point, as lua.c does. */
static void on_sigint(int sig)
{
    signal(sig, SIG_DFL); /* a second Ctrl-C kills the process */
    lua_sethook(running_state, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static int message_handler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int strata_docall(lua_State *L, int narg, int nres)
{
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, message_handler);
    lua_insert(L, base);
    running_state = L;
    void (*old)(int) = signal(SIGINT, on_sigint);
    int status = lua_pcall(L, narg, nres, base);
    signal(SIGINT, old);
    lua_remove(L, base);
    return status;
}

int strata_report(lua_State *L, int status)
{
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "strata: %s\n", msg ? msg : "(error without message)");
        fflush(stderr);
        lua_pop(L, 1);
    }
    return status;
}

/* --------------------------------------------------- finding the modules */

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The directory holding strata/init.lua: the source tree when this binary
 * runs from the build tree, the install next to the binary when it was
 * installed under another prefix, or the configured install directory. */
static const char *lua_dir(char *buf, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
#ifdef STRATA_BUILD_BIN_DIR
        char build[PATH_MAX];
        if (realpath(STRATA_BUILD_BIN_DIR, build) && strcmp(exe, build) == 0) return STRATA_BUILD_LUA_DIR;
#endif
#ifdef STRATA_INSTALL_REL_LUA_DIR
        char probe[PATH_MAX + 64];
        snprintf(probe, sizeof probe, "%s/%s/strata/init.lua", exe, STRATA_INSTALL_REL_LUA_DIR);
        if (is_file(probe)) {
            snprintf(buf, cap, "%s/%s", exe, STRATA_INSTALL_REL_LUA_DIR);
            return buf;
        }
#endif
    }
    (void)buf;
    (void)cap;
    return STRATA_INSTALL_LUA_DIR;
}

/* Puts the strata modules first on package.path, preloads the linked-in
 * C half, and sets the global `strata`. */
static int load_strata(lua_State *L)
{
    char buf[PATH_MAX + 64];
    const char *dir = lua_dir(buf, sizeof buf);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 1);
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_strata_core);
    lua_setfield(L, -2, "strata.core");
    lua_pop(L, 2);

    lua_getglobal(L, "require");
    lua_pushliteral(L, "strata");
    int status = strata_docall(L, 1, 1);
    if (status != LUA_OK) {
        lua_pushfstring(L, "cannot load the strata Lua modules (looked in %s):\n%s", dir, lua_tostring(L, -1));
        lua_remove(L, -2);
        return status;
    }
    lua_setglobal(L, "strata");
    return LUA_OK;
}

/* ------------------------------------------------------------ arguments */

typedef struct options {
    int script;      /* index of the script in argv, or 0 */
    int interactive; /* -i */
    int version;     /* -v */
    int has_code;    /* some -e */
} options;

/* Checks the options; returns 0 or prints usage and returns EXIT_USAGE. */
static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || strcmp(a, "-") == 0) break;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "-i") == 0) o->interactive = 1;
        else if (strcmp(a, "-v") == 0) o->version = 1;
        else if (strcmp(a, "-e") == 0 || strcmp(a, "-l") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "strata: '%s' needs an argument\n%s", a, usage_text);
                return EXIT_USAGE;
            }
            o->has_code |= a[1] == 'e';
            i++;
        } else {
            fprintf(stderr, "strata: unrecognised option '%s'\n%s", a, usage_text);
            return EXIT_USAGE;
        }
    }
    if (i < argc && strcmp(argv[i], "run") == 0) {
        if (i + 1 >= argc) {
            fprintf(stderr, "strata: 'run' needs a script\n%s", usage_text);
            return EXIT_USAGE;
        }
        i++;
    }
    o->script = i < argc ? i : 0;
    return 0;
}

/* arg[0] is the script, arg[1..] its arguments, arg[-k] what came before. */
static void set_arg_table(lua_State *L, int argc, char **argv, int script)
{
    lua_createtable(L, argc - script, script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_seti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

/* Runs the -e and -l options in order. */
static int run_options(lua_State *L, char **argv, int last)
{
    for (int i = 1; i < last; i++) {
        int status = LUA_OK;
        if (strcmp(argv[i], "-e") == 0) {
            status = luaL_loadbuffer(L, argv[i + 1], strlen(argv[i + 1]), "=(command line)");
            if (status == LUA_OK) status = strata_docall(L, 0, 0);
            i++;
        } else if (strcmp(argv[i], "-l") == 0) {
            lua_getglobal(L, "require");
            lua_pushstring(L, argv[i + 1]);
            status = strata_docall(L, 1, 1);
            if (status == LUA_OK) lua_setglobal(L, argv[i + 1]);
            i++;
        } else if (strcmp(argv[i], "--") == 0) {
            break;
        }
        if (status != LUA_OK) return strata_report(L, status);
    }
    return LUA_OK;
}

/* Runs a script file ("-" or NULL: standard input) with its arguments. */
static int run_script(lua_State *L, const char *path, int argc, char **argv, int script)
{
    const char *file = path && strcmp(path, "-") != 0 ? path : NULL;
    int status = luaL_loadfile(L, file);
    if (status != LUA_OK) return strata_report(L, status);
    int nargs = 0;
    for (int i = script + 1; script && i < argc; i++, nargs++) lua_pushstring(L, argv[i]);
    return strata_report(L, strata_docall(L, nargs, 0));
}

/* `strata explain ...` and `strata notebook ...`: the commands written in
 * Lua (lua/strata/explain.lua, lua/strata/notebook.lua); main gets the arg
 * table and the integer it returns is the exit code. */
static const char *const commands[][2] = {{"explain", "strata.explain"}, {"notebook", "strata.notebook"}};

static const char *command_module(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(name, commands[i][0]) == 0) return commands[i][1];
    return NULL;
}

static int run_command(lua_State *L, const char *module)
{
    lua_getglobal(L, "require");
    lua_pushstring(L, module);
    int status = strata_docall(L, 1, 1);
    if (status == LUA_OK) {
        lua_getfield(L, -1, "main");
        lua_getglobal(L, "arg");
        status = strata_docall(L, 1, 1);
    }
    if (status != LUA_OK) return strata_report(L, status), EXIT_FAILURE;
    return lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : EXIT_SUCCESS;
}

static void print_version(void)
{
    printf("Strata %s (%s)\n", STRATA_VERSION, LUA_RELEASE);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    options o;
    if (parse_args(argc, argv, &o)) return EXIT_USAGE;
    if (o.version) print_version();

    lua_State *L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "strata: cannot create a Lua state (out of memory)\n");
        return EXIT_FAILURE;
    }
    luaL_openlibs(L);
    int status = strata_report(L, load_strata(L));
    if (status == LUA_OK) {
        int script = o.script;
        set_arg_table(L, argc, argv, script);
        status = run_options(L, argv, script ? script : argc);
        if (status == LUA_OK && script && command_module(argv[script])) {
            int code = run_command(L, command_module(argv[script]));
            lua_close(L);
            return code;
        }
        if (status == LUA_OK && script) status = run_script(L, argv[script], argc, argv, script);
        if (status == LUA_OK) {
            if (o.interactive) strata_repl(L);
            else if (!script && !o.has_code && !o.version) {
                if (isatty(STDIN_FILENO)) {
                    print_version();
                    strata_repl(L);
                } else {
                    status = run_script(L, NULL, argc, argv, 0);
                }
            }
        }
    }
    lua_close(L);
    return status == LUA_OK ? EXIT_SUCCESS : EXIT_FAILURE;
}
