/* The interactive loop of the `strata` executable: readline editing,
 * history, multi-line chunks, printed results and tab completion. On a
 * non-terminal stdin lines are read plainly (no prompts), so the loop can
 * be driven through a pipe. Formatting and completion candidates come
 * from the pure-Lua module strata.repl when it loads; without it results
 * go through `print` and there is no completion. */
#include <lauxlib.h>
#include <lua.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "strata_main.h"

#define PROMPT "> "
#define PROMPT_MORE ">> "
#define HISTORY_LINES 1000

/* readline's callbacks carry no context, so the loop's state lives here. */
static lua_State *repl_L;
static int helper_ref = LUA_NOREF;       /* the strata.repl table */
static char history_file[4096];
static volatile sig_atomic_t interrupted; /* Ctrl-C at a continuation prompt */

/* ------------------------------------------------------------ reading */

typedef struct reader {
    int tty;
    char *buf;
    size_t cap;
} reader;

/* A malloc'd line without its newline, or NULL at end of input. */
static char *read_line(reader *r, const char *prompt)
{
    if (r->tty) return readline(prompt);
    ssize_t n = getline(&r->buf, &r->cap, stdin);
    if (n < 0) return NULL;
    if (n > 0 && r->buf[n - 1] == '\n') r->buf[n - 1] = '\0';
    return strdup(r->buf);
}

/* Ctrl-C at a prompt: clear the line being edited and show a fresh
 * primary prompt; the chunk collected so far is dropped when the next
 * line arrives (read_chunk). Calling readline here is what its manual's
 * examples do; the main loop is blocked inside readline meanwhile. */
static void on_sigint_at_prompt(int sig)
{
    (void)sig;
    interrupted = 1;
    rl_crlf();
    rl_set_prompt(PROMPT);
    rl_on_new_line();
    rl_replace_line("", 0);
    rl_redisplay();
}

static void save_history(void)
{
    if (history_file[0] && write_history(history_file) == 0) history_truncate_file(history_file, HISTORY_LINES);
}

/* ---------------------------------------------------------- completion */

/* Calls strata.repl.complete(word) and leaves its list of candidates at
 * the top, or returns 0 (nothing pushed) when there is none. */
static int candidates(const char *word)
{
    if (helper_ref == LUA_NOREF) return 0;
    lua_rawgeti(repl_L, LUA_REGISTRYINDEX, helper_ref);
    lua_getfield(repl_L, -1, "complete");
    lua_remove(repl_L, -2);
    lua_pushstring(repl_L, word);
    if (lua_pcall(repl_L, 1, 1, 0) != LUA_OK || !lua_istable(repl_L, -1)) {
        lua_pop(repl_L, 1);
        return 0;
    }
    return 1;
}

static char *next_candidate(const char *text, int state)
{
    /* the candidate list is on the top of the stack (see complete) */
    static lua_Integer i, n;
    (void)text;
    if (state == 0) {
        i = 0;
        n = luaL_len(repl_L, -1);
    }
    if (i >= n) return NULL;
    lua_rawgeti(repl_L, -1, ++i);
    char *s = strdup(lua_tostring(repl_L, -1) ? lua_tostring(repl_L, -1) : "");
    lua_pop(repl_L, 1);
    return s;
}

static char **complete(const char *text, int start, int end)
{
    (void)start;
    (void)end;
    rl_attempted_completion_over = 1; /* never fall back to file names */
    rl_completion_append_character = '\0';
    if (!candidates(text)) return NULL;
    char **matches = rl_completion_matches(text, next_candidate);
    lua_pop(repl_L, 1);
    return matches;
}

static void setup_readline(void)
{
    rl_readline_name = "strata";
    /* '.' and ':' stay inside words so "strata.ze" and "t:sh" complete. */
    rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{}()[],+-*/%^~#";
    rl_attempted_completion_function = complete;
    rl_catch_signals = 0; /* SIGINT is ours (on_sigint_at_prompt) */

    const char *path = getenv("STRATA_HISTORY"), *home = getenv("HOME");
    if (path) snprintf(history_file, sizeof history_file, "%s", path);
    else if (home) snprintf(history_file, sizeof history_file, "%s/.strata_history", home);
    if (history_file[0]) {
        stifle_history(HISTORY_LINES);
        read_history(history_file);
        atexit(save_history); /* also runs on os.exit */
    }
}

/* ----------------------------------------------------- evaluating */

static int incomplete(lua_State *L, int status)
{
    static const char eof_mark[] = "<eof>";
    size_t len, mark = sizeof eof_mark - 1;
    const char *msg = lua_tolstring(L, -1, &len);
    return status == LUA_ERRSYNTAX && len >= mark && strcmp(msg + len - mark, eof_mark) == 0;
}

/* Compiles the chunk at the top: as an expression when it is one, else as
 * statements. Leaves the function (or the error) above the chunk. */
static int compile(lua_State *L)
{
    size_t len;
    const char *code = lua_tolstring(L, -1, &len);
    const char *expr = lua_pushfstring(L, "return %s\n;", code);
    if (luaL_loadbuffer(L, expr, strlen(expr), "=stdin") == LUA_OK) {
        lua_remove(L, -2);
        return LUA_OK;
    }
    lua_pop(L, 2);
    return luaL_loadbuffer(L, code, len, "=stdin");
}

/* Reads one chunk (asking for more lines while it is incomplete) and
 * compiles it. Returns -1 at end of input, else a load status with the
 * function or message on the top (the chunk text below it). */
static int read_chunk(lua_State *L, reader *r)
{
    char *line = read_line(r, PROMPT);
    if (!line) return -1;
    lua_pushstring(L, line[0] == '=' ? line + 1 : line); /* "= expr" as in Lua 5.1 */
    free(line);
    int status;
    while ((status = compile(L)) != LUA_OK && incomplete(L, status)) {
        lua_pop(L, 1);
        interrupted = 0;
        line = read_line(r, PROMPT_MORE);
        if (!line) {
            lua_pushliteral(L, "unexpected end of input inside a chunk");
            return LUA_ERRSYNTAX;
        }
        if (interrupted) { /* Ctrl-C: this line starts a new chunk */
            lua_pop(L, 1);
            lua_pushstring(L, line[0] == '=' ? line + 1 : line);
        } else {
            lua_pushliteral(L, "\n");
            lua_pushstring(L, line);
            lua_concat(L, 3);
        }
        free(line);
    }
    if (r->tty && lua_rawlen(L, -2) > 0) add_history(lua_tostring(L, -2));
    return status;
}

/* Shows the values above `base` with strata.repl.show (or print). */
static void show_results(lua_State *L, int base)
{
    int n = lua_gettop(L) - base;
    if (n == 0) return;
    if (helper_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, helper_ref);
        lua_getfield(L, -1, "show");
        lua_remove(L, -2);
    } else {
        lua_getglobal(L, "print");
    }
    lua_insert(L, base + 1);
    strata_report(L, strata_docall(L, n, 0));
}

static void load_helper(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "strata.repl");
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) helper_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else lua_pop(L, 1);
}

void strata_repl(lua_State *L)
{
    reader r = {isatty(STDIN_FILENO), NULL, 0};
    repl_L = L;
    load_helper(L);
    if (r.tty) setup_readline();
    struct sigaction at_prompt = {0}, saved;
    at_prompt.sa_handler = on_sigint_at_prompt;
    at_prompt.sa_flags = SA_RESTART;
    sigemptyset(&at_prompt.sa_mask);
    for (;;) {
        int base = lua_gettop(L);
        if (r.tty) sigaction(SIGINT, &at_prompt, &saved);
        int status = read_chunk(L, &r);
        if (r.tty) sigaction(SIGINT, &saved, NULL);
        if (status == -1) break;
        lua_remove(L, base + 1); /* the chunk text */
        if (status == LUA_OK) status = strata_docall(L, 0, LUA_MULTRET);
        if (status == LUA_OK) show_results(L, base);
        else strata_report(L, status);
        lua_settop(L, base);
        fflush(stdout);
    }
    if (r.tty) fputs("\n", stdout);
    free(r.buf);
    if (helper_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, helper_ref);
    helper_ref = LUA_NOREF;
}
