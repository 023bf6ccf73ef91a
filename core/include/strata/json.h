/* JSON: a strict parser that builds a read-only tree, and a writer.
 *
 * Parsing follows RFC 8259 with no extensions: no comments, no trailing
 * commas, no NaN/Infinity, no leading zeros, no bare control characters in
 * strings, strictly valid UTF-8, escaped surrogates only in valid pairs,
 * nothing but whitespace after the value, and no duplicate keys within an
 * object. Nesting deeper than ST_JSON_MAX_DEPTH, inputs larger than
 * ST_JSON_MAX_BYTES and numbers outside the double range are rejected.
 * Errors are ST_EFORMAT with the line and column ("json: line 3, column 7:
 * expected ':' after the object key").
 *
 *     st_json *doc;
 *     ST_TRY(st_json_parse_file("config.json", &doc));
 *     int64_t epochs;
 *     st_status s = st_json_get_int(doc, "epochs", &epochs);
 *     const st_json *layers = st_json_get(doc, "layers");
 *     for (size_t i = 0; i < st_json_size(layers); i++) ... st_json_at(layers, i) ...
 *     st_json_free(doc);
 *
 * Numbers are doubles; integer literals that fit also keep their exact
 * int64 value. Number text is converted with strtod/printf, which assume
 * the "C" LC_NUMERIC locale (the default of every C and Lua program).
 *
 * The writer builds a document in memory with calls that mirror its
 * structure; misuse (a value where a key belongs, NaN, unbalanced ends,
 * invalid UTF-8) is remembered and reported by st_json_writer_text/_save,
 * so a sequence of writes needs only one check at the end. */
#ifndef STRATA_JSON_H
#define STRATA_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ST_JSON_MAX_DEPTH 128
#define ST_JSON_MAX_BYTES ((size_t)1 << 30)

typedef enum st_json_type {
    ST_JSON_NULL,
    ST_JSON_BOOL,
    ST_JSON_NUMBER,
    ST_JSON_STRING,
    ST_JSON_ARRAY,
    ST_JSON_OBJECT
} st_json_type;

typedef struct st_json st_json;

/* ---- parsing ---- */
/* Parses len bytes (no NUL terminator needed). The returned root owns the
 * whole tree; every node stays valid until st_json_free(root). */
st_status st_json_parse(const char *text, size_t len, st_json **out);
/* Reads and parses a file; messages start with the path. */
st_status st_json_parse_file(const char *path, st_json **out);
/* Frees a tree; only roots returned by a parse call. NULL is a no-op. */
void st_json_free(st_json *root);

/* ---- reading the tree (all accept NULL and then return NULL/0) ---- */
st_json_type st_json_type_of(const st_json *v);      /* ST_JSON_NULL for NULL */
const char *st_json_type_name(st_json_type t);       /* "object", "number", ... */
/* Elements of an array or members of an object; 0 for anything else. */
size_t st_json_size(const st_json *v);
/* Element i of an array, or the value of member i of an object (file order). */
const st_json *st_json_at(const st_json *v, size_t i);
/* The key of member i of an object, and its length (keys may contain
 * "\u0000", which a C string would cut short). */
const char *st_json_key_at(const st_json *v, size_t i);
size_t st_json_key_len_at(const st_json *v, size_t i);
/* The value for key in an object (binary search), or NULL. */
const st_json *st_json_get(const st_json *obj, const char *key);

/* Unchecked scalar access: false / NaN / NULL / 0 when v has another type. */
bool st_json_bool(const st_json *v);
double st_json_number(const st_json *v);
const char *st_json_string(const st_json *v);   /* UTF-8, NUL-terminated */
size_t st_json_string_len(const st_json *v);    /* may contain "\u0000" */

/* ---- checked access: ST_EFORMAT with a message naming `what` ---- */
/* Fails unless v (NULL = missing) has the given type. */
st_status st_json_expect(const st_json *v, st_json_type type, const char *what);
/* An integer: an integer literal in int64 range, or a number whose value is
 * an integer below 2^53 in magnitude (so 3.0 and 1e3 are accepted). */
st_status st_json_to_int(const st_json *v, const char *what, int64_t *out);
/* Member lookups; a missing key fails with "'key' is missing". */
st_status st_json_get_string(const st_json *obj, const char *key, const char **out);
st_status st_json_get_number(const st_json *obj, const char *key, double *out);
st_status st_json_get_int(const st_json *obj, const char *key, int64_t *out);
st_status st_json_get_bool(const st_json *obj, const char *key, bool *out);
/* The member of the given type (array, object, ...). */
st_status st_json_get_typed(const st_json *obj, const char *key, st_json_type type, const st_json **out);
/* Fails naming the first key of obj that is not in allowed[0..n). */
st_status st_json_check_keys(const st_json *obj, const char *const *allowed, size_t n, const char *what);

/* ---- writing ---- */
typedef struct st_json_writer st_json_writer;

/* pretty: two-space indentation, one member per line; otherwise compact. */
st_status st_json_writer_new(bool pretty, st_json_writer **out);
void st_json_writer_free(st_json_writer *w);

void st_json_begin_object(st_json_writer *w);
void st_json_end_object(st_json_writer *w);
void st_json_begin_array(st_json_writer *w);
void st_json_end_array(st_json_writer *w);
/* The key of the next object member. */
void st_json_key(st_json_writer *w, const char *key);
void st_json_write_string(st_json_writer *w, const char *s);
void st_json_write_string_len(st_json_writer *w, const char *s, size_t n);
/* Shortest decimal that reads back to exactly v; NaN/Inf are an error. */
void st_json_write_number(st_json_writer *w, double v);
void st_json_write_int(st_json_writer *w, int64_t v);
void st_json_write_bool(st_json_writer *w, bool v);
void st_json_write_null(st_json_writer *w);
/* Writes a parsed (sub)tree. */
void st_json_write_value(st_json_writer *w, const st_json *v);

/* The first error recorded so far (ST_OK if none), with its message. */
st_status st_json_writer_status(const st_json_writer *w);
/* The finished document (one complete value), valid until the next call
 * on w. Fails if anything went wrong or a container is still open. */
st_status st_json_writer_text(const st_json_writer *w, const char **text, size_t *len);
/* Writes the finished document plus a newline atomically to path. */
st_status st_json_writer_save(const st_json_writer *w, const char *path);

#ifdef __cplusplus
}
#endif
#endif
