/* Fuzz target: JSON. Any input must either be rejected with a located
 * "json: line" message or parse into a tree that the writer prints, that
 * re-parses, and that prints to the same text again (compact and pretty);
 * member lookup must find every key that has no NUL in it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "strata/json.h"

static char *print(const st_json *v, bool pretty, size_t *len)
{
    st_json_writer *w = NULL;
    const char *text;
    if (st_json_writer_new(pretty, &w) != ST_OK) abort();
    st_json_write_value(w, v);
    if (st_json_writer_text(w, &text, len) != ST_OK) abort();
    char *copy = malloc(*len + 1);
    memcpy(copy, text, *len + 1);
    st_json_writer_free(w);
    return copy;
}

static void check_lookups(const st_json *v)
{
    for (size_t i = 0; i < st_json_size(v); i++) {
        if (st_json_type_of(v) == ST_JSON_OBJECT) {
            const char *k = st_json_key_at(v, i);
            if (strlen(k) == st_json_key_len_at(v, i) && st_json_get(v, k) != st_json_at(v, i)) abort();
        }
        check_lookups(st_json_at(v, i));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_json *v = NULL, *again = NULL, *pretty_again = NULL;
    if (st_json_parse((const char *)data, size, &v) != ST_OK) {
        if (strncmp(st_error_message(), "json: line ", 11) != 0) abort();
        return 0;
    }
    check_lookups(v);
    size_t n1, n2, np;
    char *t1 = print(v, false, &n1);
    if (st_json_parse(t1, n1, &again) != ST_OK) abort();
    char *t2 = print(again, false, &n2);
    if (n1 != n2 || memcmp(t1, t2, n1) != 0) abort();
    char *tp = print(v, true, &np);
    if (st_json_parse(tp, np, &pretty_again) != ST_OK) abort();
    char *t3 = print(pretty_again, false, &n2);
    if (n1 != n2 || memcmp(t1, t3, n1) != 0) abort();
    free(t1);
    free(t2);
    free(t3);
    free(tp);
    st_json_free(v);
    st_json_free(again);
    st_json_free(pretty_again);
    return 0;
}
