/* Strict JSON parser and writer (see json.h). */
#include "strata/json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "strata/fileio.h"

/* ================= tree storage ================= */

/* Every node, string and child array of one document lives in a chain of
 * arena blocks owned by the root, so freeing a tree is one walk. */
typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_block;

struct st_json {
    st_json_type type;
    bool b;
    bool is_int;         /* number literal that fits int64 exactly */
    double num;
    int64_t inum;
    const char *str;     /* string value, NUL-terminated */
    size_t len;          /* string length, or member/element count */
    st_json **items;     /* array elements / object member values */
    const char **keys;   /* object keys, file order */
    size_t *key_lens;
    uint32_t *order;     /* object: member indices sorted by key */
    arena_block *arena;  /* root only */
};

static void *arena_alloc(arena_block **head, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    arena_block *b = *head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 - sizeof *b ? n : 65536 - sizeof *b;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = *head;
        b->used = 0;
        b->cap = cap;
        *head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static void arena_free(arena_block *b)
{
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
}

void st_json_free(st_json *root)
{
    if (root) arena_free(root->arena);
}

/* ================= parser ================= */

typedef struct {
    const char *key;
    size_t len;
} key_ref;

typedef struct {
    const unsigned char *p, *end, *start;
    arena_block *arena;
    int depth;
    /* Children of the containers being parsed, shared by all levels: a
     * container's children are the top of these stacks when it closes. */
    st_json **vals;
    key_ref *keys;
    size_t nvals, nkeys, cap_vals, cap_keys;
} parser;

static st_status parse_fail(const parser *ps, const unsigned char *at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static st_status parse_fail(const parser *ps, const unsigned char *at, const char *fmt, ...)
{
    size_t line = 1, col = 1;
    for (const unsigned char *q = ps->start; q < at; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return st_fail(ST_EFORMAT, "json: line %zu, column %zu: %s", line, col, msg);
}

static st_status oom(void) { return st_fail(ST_ENOMEM, "json: out of memory"); }

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

/* A printable description of the byte at p for messages. */
static const char *describe(const parser *ps, const unsigned char *p, char *buf, size_t cap)
{
    if (p >= ps->end) return "the end of the input";
    if (*p >= 0x20 && *p < 0x7f) snprintf(buf, cap, "'%c'", *p);
    else snprintf(buf, cap, "byte 0x%02x", *p);
    return buf;
}

static st_json *new_node(parser *ps, st_json_type type)
{
    st_json *v = arena_alloc(&ps->arena, sizeof *v);
    if (v) {
        memset(v, 0, sizeof *v);
        v->type = type;
    }
    return v;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits after "\u" at p. */
static st_status read_hex4(const parser *ps, const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = p + i < ps->end ? hex_value(p[i]) : -1;
        if (h < 0) return parse_fail(ps, p - 2, "\\u must be followed by 4 hex digits");
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return ST_OK;
}

static size_t put_utf8(unsigned char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0.
 * Rejects overlong forms, UTF-16 surrogates and code points > U+10FFFF. */
static size_t utf8_seq_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) n = 3;
    else if (c >= 0xf0 && c <= 0xf4) n = 4;
    else return 0;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
    if ((size_t)(end - p) < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf) return 0;
    return n;
}

/* Parses a string starting at the opening quote into arena memory. */
static st_status parse_string(parser *ps, const char **out, size_t *out_len)
{
    const unsigned char *open = ps->p++;
    /* The decoded text is never longer than the raw text. */
    const unsigned char *q = ps->p;
    while (q < ps->end && *q != '"') q += (*q == '\\' && q + 1 < ps->end) ? 2 : 1;
    if (q >= ps->end) return parse_fail(ps, open, "string is not terminated");
    unsigned char *buf = arena_alloc(&ps->arena, (size_t)(q - ps->p) + 1);
    if (!buf) return oom();
    size_t n = 0;
    const unsigned char *p = ps->p;
    while (*p != '"') {
        unsigned char c = *p;
        if (c < 0x20) return parse_fail(ps, p, "control character 0x%02x in a string must be escaped", c);
        if (c >= 0x80) {
            size_t k = utf8_seq_len(p, ps->end);
            if (!k) return parse_fail(ps, p, "invalid UTF-8 byte 0x%02x in a string", c);
            memcpy(buf + n, p, k);
            n += k;
            p += k;
            continue;
        }
        if (c != '\\') {
            buf[n++] = c;
            p++;
            continue;
        }
        static const char escapes[] = "\"\\/bfnrt", decoded[] = "\"\\/\b\f\n\r\t";
        unsigned char e = p[1];
        const char *simple = e ? strchr(escapes, e) : NULL;
        if (simple) {
            buf[n++] = (unsigned char)decoded[simple - escapes];
            p += 2;
            continue;
        }
        if (e != 'u') return parse_fail(ps, p, "invalid escape '\\%c' in a string", e >= 0x20 && e < 0x7f ? e : '?');
        unsigned cp;
        ST_TRY(read_hex4(ps, p + 2, &cp));
        const unsigned char *esc = p;
        p += 6;
        if (cp >= 0xdc00 && cp <= 0xdfff)
            return parse_fail(ps, esc, "\\u%04X is a low surrogate without a preceding high surrogate", cp);
        if (cp >= 0xd800 && cp <= 0xdbff) {
            unsigned lo;
            if (!(p + 1 < ps->end && p[0] == '\\' && p[1] == 'u'))
                return parse_fail(ps, esc, "\\u%04X is a high surrogate not followed by a low surrogate", cp);
            ST_TRY(read_hex4(ps, p + 2, &lo));
            if (lo < 0xdc00 || lo > 0xdfff)
                return parse_fail(ps, esc, "\\u%04X is a high surrogate followed by \\u%04X, not a low surrogate", cp, lo);
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;
        }
        n += put_utf8(buf + n, cp);
    }
    buf[n] = '\0';
    ps->p = p + 1;
    *out = (const char *)buf;
    *out_len = n;
    return ST_OK;
}

#define MAX_NUMBER_CHARS 1024

static bool is_digit(const parser *ps, const unsigned char *p) { return p < ps->end && *p >= '0' && *p <= '9'; }

static st_status parse_number(parser *ps, st_json *v)
{
    const unsigned char *s = ps->p, *p = s;
    if (p < ps->end && *p == '-') p++;
    if (!is_digit(ps, p)) return parse_fail(ps, s, "a number needs a digit after '-'");
    if (*p == '0') {
        p++;
        if (is_digit(ps, p)) return parse_fail(ps, s, "numbers may not have leading zeros");
    } else {
        while (is_digit(ps, p)) p++;
    }
    bool integer = true;
    if (p < ps->end && *p == '.') {
        integer = false;
        p++;
        if (!is_digit(ps, p)) return parse_fail(ps, p, "a digit must follow the decimal point");
        while (is_digit(ps, p)) p++;
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        integer = false;
        p++;
        if (p < ps->end && (*p == '+' || *p == '-')) p++;
        if (!is_digit(ps, p)) return parse_fail(ps, p, "a digit must follow the exponent marker");
        while (is_digit(ps, p)) p++;
    }
    size_t n = (size_t)(p - s);
    if (n > MAX_NUMBER_CHARS) return parse_fail(ps, s, "number is longer than %d characters", MAX_NUMBER_CHARS);
    char buf[MAX_NUMBER_CHARS + 1];
    memcpy(buf, s, n);
    buf[n] = '\0';
    v->num = strtod(buf, NULL);
    if (!isfinite(v->num)) return parse_fail(ps, s, "number %.40s is out of the double range", buf);
    if (integer) {
        errno = 0;
        long long i = strtoll(buf, NULL, 10);
        if (errno == 0 && !(i == 0 && signbit(v->num))) { /* "-0" stays a double */
            v->is_int = true;
            v->inum = i;
        }
    }
    ps->p = p;
    return ST_OK;
}

static st_status push_val(parser *ps, st_json *v)
{
    if (ps->nvals == ps->cap_vals) {
        size_t cap = ps->cap_vals ? ps->cap_vals * 2 : 64;
        st_json **bigger = realloc(ps->vals, cap * sizeof *bigger);
        if (!bigger) return oom();
        ps->vals = bigger;
        ps->cap_vals = cap;
    }
    ps->vals[ps->nvals++] = v;
    return ST_OK;
}

static st_status push_key(parser *ps, const char *key, size_t len)
{
    if (ps->nkeys == ps->cap_keys) {
        size_t cap = ps->cap_keys ? ps->cap_keys * 2 : 64;
        key_ref *bigger = realloc(ps->keys, cap * sizeof *bigger);
        if (!bigger) return oom();
        ps->keys = bigger;
        ps->cap_keys = cap;
    }
    ps->keys[ps->nkeys++] = (key_ref){key, len};
    return ST_OK;
}

static int key_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    int c = memcmp(a, b, na < nb ? na : nb);
    if (c) return c;
    return na < nb ? -1 : na > nb;
}

typedef struct {
    key_ref k;
    uint32_t idx;
} sort_item;

static int sort_item_cmp(const void *a, const void *b)
{
    const sort_item *x = a, *y = b;
    int c = key_cmp(x->k.key, x->k.len, y->k.key, y->k.len);
    return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

/* Moves the top n children (and keys) into the container node. */
static st_status close_container(parser *ps, st_json *v, size_t n, const unsigned char *open)
{
    v->len = n;
    if (!n) return ST_OK;
    v->items = arena_alloc(&ps->arena, n * sizeof *v->items);
    if (!v->items) return oom();
    memcpy(v->items, ps->vals + ps->nvals - n, n * sizeof *v->items);
    ps->nvals -= n;
    if (v->type != ST_JSON_OBJECT) return ST_OK;
    const key_ref *k = ps->keys + ps->nkeys - n;
    v->keys = arena_alloc(&ps->arena, n * sizeof *v->keys);
    v->key_lens = arena_alloc(&ps->arena, n * sizeof *v->key_lens);
    v->order = arena_alloc(&ps->arena, n * sizeof *v->order);
    sort_item *sorted = malloc(n * sizeof *sorted);
    if (!v->keys || !v->key_lens || !v->order || !sorted) {
        free(sorted);
        return oom();
    }
    for (size_t i = 0; i < n; i++) {
        v->keys[i] = k[i].key;
        v->key_lens[i] = k[i].len;
        sorted[i] = (sort_item){k[i], (uint32_t)i};
    }
    qsort(sorted, n, sizeof *sorted, sort_item_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i && key_cmp(sorted[i].k.key, sorted[i].k.len, sorted[i - 1].k.key, sorted[i - 1].k.len) == 0) {
            st_status s = parse_fail(ps, open, "duplicate key '%.200s' in the object starting here", sorted[i].k.key);
            free(sorted);
            return s;
        }
        v->order[i] = sorted[i].idx;
    }
    free(sorted);
    ps->nkeys -= n;
    return ST_OK;
}

static st_status parse_value(parser *ps, st_json **out);

static st_status parse_container(parser *ps, st_json *v)
{
    const unsigned char *open = ps->p++;
    bool object = v->type == ST_JSON_OBJECT;
    char close = object ? '}' : ']';
    char d[32];
    if (++ps->depth > ST_JSON_MAX_DEPTH) return parse_fail(ps, open, "nesting is deeper than %d levels", ST_JSON_MAX_DEPTH);
    size_t n = 0;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return ST_OK;
    }
    for (;;) {
        skip_ws(ps);
        if (object) {
            if (ps->p >= ps->end || *ps->p != '"')
                return parse_fail(ps, ps->p, "expected a string key, found %s", describe(ps, ps->p, d, sizeof d));
            const char *key;
            size_t klen;
            ST_TRY(parse_string(ps, &key, &klen));
            ST_TRY(push_key(ps, key, klen));
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return parse_fail(ps, ps->p, "expected ':' after the object key, found %s", describe(ps, ps->p, d, sizeof d));
            ps->p++;
        }
        st_json *child;
        ST_TRY(parse_value(ps, &child));
        ST_TRY(push_val(ps, child));
        n++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) break;
        return parse_fail(ps, ps->p, "expected ',' or '%c' in the %s, found %s", close, object ? "object" : "array",
                          describe(ps, ps->p, d, sizeof d));
    }
    ps->p++;
    ps->depth--;
    return close_container(ps, v, n, open);
}

static st_status parse_literal(parser *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return parse_fail(ps, ps->p, "invalid literal (expected '%s')", word);
    ps->p += n;
    return ST_OK;
}

static st_status parse_value(parser *ps, st_json **out)
{
    char d[32];
    skip_ws(ps);
    if (ps->p >= ps->end) return parse_fail(ps, ps->p, "expected a value, found the end of the input");
    unsigned char c = *ps->p;
    st_json_type type;
    switch (c) {
    case '{': type = ST_JSON_OBJECT; break;
    case '[': type = ST_JSON_ARRAY; break;
    case '"': type = ST_JSON_STRING; break;
    case 't': case 'f': type = ST_JSON_BOOL; break;
    case 'n': type = ST_JSON_NULL; break;
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            type = ST_JSON_NUMBER;
            break;
        }
        return parse_fail(ps, ps->p, "expected a value, found %s", describe(ps, ps->p, d, sizeof d));
    }
    st_json *v = new_node(ps, type);
    if (!v) return oom();
    switch (type) {
    case ST_JSON_OBJECT:
    case ST_JSON_ARRAY: ST_TRY(parse_container(ps, v)); break;
    case ST_JSON_STRING: ST_TRY(parse_string(ps, &v->str, &v->len)); break;
    case ST_JSON_NUMBER: ST_TRY(parse_number(ps, v)); break;
    case ST_JSON_BOOL:
        v->b = c == 't';
        ST_TRY(parse_literal(ps, v->b ? "true" : "false"));
        break;
    case ST_JSON_NULL: ST_TRY(parse_literal(ps, "null")); break;
    }
    *out = v;
    return ST_OK;
}

st_status st_json_parse(const char *text, size_t len, st_json **out)
{
    if (!text && len) return st_fail(ST_EINVAL, "json: NULL text");
    if (len > ST_JSON_MAX_BYTES)
        return st_fail(ST_EFORMAT, "json: input is %zu bytes, more than the limit of %zu", len, ST_JSON_MAX_BYTES);
    static const unsigned char empty[1];
    const unsigned char *t = text ? (const unsigned char *)text : empty;
    parser ps = {.p = t, .end = t + len, .start = t};
    st_json *root = NULL;
    st_status s = parse_value(&ps, &root);
    if (s == ST_OK) {
        skip_ws(&ps);
        char d[32];
        if (ps.p < ps.end) s = parse_fail(&ps, ps.p, "unexpected %s after the value", describe(&ps, ps.p, d, sizeof d));
    }
    free(ps.vals);
    free(ps.keys);
    if (s != ST_OK) {
        arena_free(ps.arena);
        return s;
    }
    root->arena = ps.arena;
    *out = root;
    return ST_OK;
}

st_status st_json_parse_file(const char *path, st_json **out)
{
    char *text;
    size_t n;
    ST_TRY(st_file_read(path, &text, &n));
    st_status s = st_json_parse(text, n, out);
    free(text);
    if (s != ST_OK) return st_fail_context(s, "'%s': ", path);
    return ST_OK;
}

/* ================= tree access ================= */

st_json_type st_json_type_of(const st_json *v) { return v ? v->type : ST_JSON_NULL; }

const char *st_json_type_name(st_json_type t)
{
    switch (t) {
    case ST_JSON_NULL: return "null";
    case ST_JSON_BOOL: return "boolean";
    case ST_JSON_NUMBER: return "number";
    case ST_JSON_STRING: return "string";
    case ST_JSON_ARRAY: return "array";
    case ST_JSON_OBJECT: return "object";
    }
    return "?";
}

static bool is_container(const st_json *v) { return v && (v->type == ST_JSON_ARRAY || v->type == ST_JSON_OBJECT); }

size_t st_json_size(const st_json *v) { return is_container(v) ? v->len : 0; }

const st_json *st_json_at(const st_json *v, size_t i) { return is_container(v) && i < v->len ? v->items[i] : NULL; }

const char *st_json_key_at(const st_json *v, size_t i)
{
    return v && v->type == ST_JSON_OBJECT && i < v->len ? v->keys[i] : NULL;
}

size_t st_json_key_len_at(const st_json *v, size_t i)
{
    return v && v->type == ST_JSON_OBJECT && i < v->len ? v->key_lens[i] : 0;
}

const st_json *st_json_get(const st_json *obj, const char *key)
{
    if (!obj || obj->type != ST_JSON_OBJECT || !key) return NULL;
    size_t klen = strlen(key), lo = 0, hi = obj->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t i = obj->order[mid];
        int c = key_cmp(obj->keys[i], obj->key_lens[i], key, klen);
        if (c == 0) return obj->items[i];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

bool st_json_bool(const st_json *v) { return v && v->type == ST_JSON_BOOL && v->b; }
double st_json_number(const st_json *v) { return v && v->type == ST_JSON_NUMBER ? v->num : NAN; }
const char *st_json_string(const st_json *v) { return v && v->type == ST_JSON_STRING ? v->str : NULL; }
size_t st_json_string_len(const st_json *v) { return v && v->type == ST_JSON_STRING ? v->len : 0; }

st_status st_json_expect(const st_json *v, st_json_type type, const char *what)
{
    if (!v) return st_fail(ST_EFORMAT, "%s is missing", what);
    if (v->type != type)
        return st_fail(ST_EFORMAT, "%s: %s expected, found %s", what, st_json_type_name(type), st_json_type_name(v->type));
    return ST_OK;
}

st_status st_json_to_int(const st_json *v, const char *what, int64_t *out)
{
    ST_TRY(st_json_expect(v, ST_JSON_NUMBER, what));
    if (v->is_int) {
        *out = v->inum;
        return ST_OK;
    }
    if (v->num != floor(v->num) || fabs(v->num) >= 9007199254740992.0)
        return st_fail(ST_EFORMAT, "%s: integer expected, found %.17g", what, v->num);
    *out = (int64_t)v->num;
    return ST_OK;
}

static st_status member(const st_json *obj, const char *key, const st_json **out)
{
    ST_TRY(st_json_expect(obj, ST_JSON_OBJECT, "json value"));
    const st_json *v = st_json_get(obj, key);
    if (!v) return st_fail(ST_EFORMAT, "'%s' is missing", key);
    *out = v;
    return ST_OK;
}

st_status st_json_get_typed(const st_json *obj, const char *key, st_json_type type, const st_json **out)
{
    const st_json *v = NULL;
    ST_TRY(member(obj, key, &v));
    char what[256];
    snprintf(what, sizeof what, "'%s'", key);
    ST_TRY(st_json_expect(v, type, what));
    *out = v;
    return ST_OK;
}

st_status st_json_get_string(const st_json *obj, const char *key, const char **out)
{
    const st_json *v = NULL;
    ST_TRY(st_json_get_typed(obj, key, ST_JSON_STRING, &v));
    *out = v->str;
    return ST_OK;
}

st_status st_json_get_number(const st_json *obj, const char *key, double *out)
{
    const st_json *v = NULL;
    ST_TRY(st_json_get_typed(obj, key, ST_JSON_NUMBER, &v));
    *out = v->num;
    return ST_OK;
}

st_status st_json_get_int(const st_json *obj, const char *key, int64_t *out)
{
    const st_json *v = NULL;
    ST_TRY(member(obj, key, &v));
    char what[256];
    snprintf(what, sizeof what, "'%s'", key);
    return st_json_to_int(v, what, out);
}

st_status st_json_get_bool(const st_json *obj, const char *key, bool *out)
{
    const st_json *v = NULL;
    ST_TRY(st_json_get_typed(obj, key, ST_JSON_BOOL, &v));
    *out = v->b;
    return ST_OK;
}

st_status st_json_check_keys(const st_json *obj, const char *const *allowed, size_t n, const char *what)
{
    ST_TRY(st_json_expect(obj, ST_JSON_OBJECT, what));
    for (size_t i = 0; i < obj->len; i++) {
        size_t j = 0;
        while (j < n && key_cmp(obj->keys[i], obj->key_lens[i], allowed[j], strlen(allowed[j])) != 0) j++;
        if (j == n) return st_fail(ST_EFORMAT, "%s: unknown key '%.200s'", what, obj->keys[i]);
    }
    return ST_OK;
}

/* ================= writer ================= */

struct st_json_writer {
    char *buf;
    size_t len, cap;
    bool pretty;
    int depth;
    /* Per open container: is it an object, how many members so far, and
     * (objects) whether a key is waiting for its value. */
    bool is_object[ST_JSON_MAX_DEPTH + 1];
    size_t count[ST_JSON_MAX_DEPTH + 1];
    bool have_key;
    bool done;    /* the top-level value is complete */
    st_status err;
    char msg[256];
};

st_status st_json_writer_new(bool pretty, st_json_writer **out)
{
    st_json_writer *w = calloc(1, sizeof *w);
    if (!w) return oom();
    w->pretty = pretty;
    *out = w;
    return ST_OK;
}

void st_json_writer_free(st_json_writer *w)
{
    if (!w) return;
    free(w->buf);
    free(w);
}

static void writer_error(st_json_writer *w, st_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void writer_error(st_json_writer *w, st_status s, const char *fmt, ...)
{
    if (w->err != ST_OK) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->msg, sizeof w->msg, fmt, ap);
    va_end(ap);
    w->err = s;
}

static void emit(st_json_writer *w, const char *s, size_t n)
{
    if (w->err != ST_OK) return;
    if (w->cap - w->len < n + 1) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap - w->len < n + 1) cap *= 2;
        char *bigger = realloc(w->buf, cap);
        if (!bigger) {
            writer_error(w, ST_ENOMEM, "json writer: out of memory");
            return;
        }
        w->buf = bigger;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static void emit_str(st_json_writer *w, const char *s) { emit(w, s, strlen(s)); }

static void newline_indent(st_json_writer *w, int depth)
{
    if (!w->pretty) return;
    emit(w, "\n", 1);
    for (int i = 0; i < depth; i++) emit(w, "  ", 2);
}

/* Called before every value: places separators and checks that a value
 * is allowed here. Returns false (with the error recorded) if not. */
static bool before_value(st_json_writer *w, const char *what)
{
    if (w->err != ST_OK) return false;
    if (w->done) {
        writer_error(w, ST_ESTATE, "json writer: %s after the complete top-level value", what);
        return false;
    }
    if (w->depth == 0) return true;
    if (w->is_object[w->depth]) {
        if (!w->have_key) {
            writer_error(w, ST_ESTATE, "json writer: %s inside an object needs a key first", what);
            return false;
        }
        w->have_key = false;
        return true;
    }
    if (w->count[w->depth]++) emit(w, ",", 1);
    newline_indent(w, w->depth);
    return true;
}

static void after_value(st_json_writer *w)
{
    if (w->depth == 0) w->done = true;
}

static void write_escaped(st_json_writer *w, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    emit(w, "\"", 1);
    while (p < end && w->err == ST_OK) {
        const unsigned char *run = p;
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
        emit(w, (const char *)run, (size_t)(p - run));
        if (p == end) break;
        char esc[8];
        if (*p >= 0x80) {
            size_t k = utf8_seq_len(p, end);
            if (!k) {
                writer_error(w, ST_EINVAL, "json writer: invalid UTF-8 byte 0x%02x in a string", *p);
                return;
            }
            emit(w, (const char *)p, k);
            p += k;
            continue;
        }
        switch (*p) {
        case '"': emit_str(w, "\\\""); break;
        case '\\': emit_str(w, "\\\\"); break;
        case '\b': emit_str(w, "\\b"); break;
        case '\f': emit_str(w, "\\f"); break;
        case '\n': emit_str(w, "\\n"); break;
        case '\r': emit_str(w, "\\r"); break;
        case '\t': emit_str(w, "\\t"); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            emit_str(w, esc);
        }
        p++;
    }
    emit(w, "\"", 1);
}

static void begin(st_json_writer *w, bool object)
{
    if (!before_value(w, object ? "an object" : "an array")) return;
    if (w->depth == ST_JSON_MAX_DEPTH) {
        writer_error(w, ST_EINVAL, "json writer: nesting deeper than %d levels", ST_JSON_MAX_DEPTH);
        return;
    }
    emit(w, object ? "{" : "[", 1);
    w->depth++;
    w->is_object[w->depth] = object;
    w->count[w->depth] = 0;
}

static void end(st_json_writer *w, bool object)
{
    if (w->err != ST_OK) return;
    if (w->depth == 0 || w->is_object[w->depth] != object) {
        writer_error(w, ST_ESTATE, "json writer: end of %s without a matching begin", object ? "object" : "array");
        return;
    }
    if (object && w->have_key) {
        writer_error(w, ST_ESTATE, "json writer: object ended after a key without a value");
        return;
    }
    if (w->count[w->depth]) newline_indent(w, w->depth - 1);
    emit(w, object ? "}" : "]", 1);
    w->depth--;
    after_value(w);
}

void st_json_begin_object(st_json_writer *w) { begin(w, true); }
void st_json_end_object(st_json_writer *w) { end(w, true); }
void st_json_begin_array(st_json_writer *w) { begin(w, false); }
void st_json_end_array(st_json_writer *w) { end(w, false); }

static void write_key_len(st_json_writer *w, const char *key, size_t n)
{
    if (w->err != ST_OK) return;
    if (w->depth == 0 || !w->is_object[w->depth] || w->have_key) {
        writer_error(w, ST_ESTATE, "json writer: key '%.100s' outside an object or after another key", key);
        return;
    }
    if (w->count[w->depth]++) emit(w, ",", 1);
    newline_indent(w, w->depth);
    write_escaped(w, key, n);
    emit(w, w->pretty ? ": " : ":", w->pretty ? 2 : 1);
    w->have_key = true;
}

void st_json_key(st_json_writer *w, const char *key)
{
    if (!key) {
        writer_error(w, ST_EINVAL, "json writer: NULL key");
        return;
    }
    write_key_len(w, key, strlen(key));
}

void st_json_write_string_len(st_json_writer *w, const char *s, size_t n)
{
    if (!s && n) {
        writer_error(w, ST_EINVAL, "json writer: NULL string");
        return;
    }
    if (!before_value(w, "a string")) return;
    write_escaped(w, s ? s : "", n);
    after_value(w);
}

void st_json_write_string(st_json_writer *w, const char *s)
{
    if (!s) {
        writer_error(w, ST_EINVAL, "json writer: NULL string");
        return;
    }
    st_json_write_string_len(w, s, strlen(s));
}

void st_json_write_number(st_json_writer *w, double v)
{
    if (!isfinite(v)) {
        writer_error(w, ST_ENUMERIC, "json writer: %g cannot be written as a JSON number", v);
        return;
    }
    if (!before_value(w, "a number")) return;
    char buf[32];
    /* The shortest of 15, 16 or 17 significant digits that reads back to
     * exactly v (17 always does for a double). */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    emit_str(w, buf);
    after_value(w);
}

void st_json_write_int(st_json_writer *w, int64_t v)
{
    if (!before_value(w, "a number")) return;
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    emit_str(w, buf);
    after_value(w);
}

void st_json_write_bool(st_json_writer *w, bool v)
{
    if (!before_value(w, "a boolean")) return;
    emit_str(w, v ? "true" : "false");
    after_value(w);
}

void st_json_write_null(st_json_writer *w)
{
    if (!before_value(w, "null")) return;
    emit_str(w, "null");
    after_value(w);
}

void st_json_write_value(st_json_writer *w, const st_json *v)
{
    if (!v) {
        writer_error(w, ST_EINVAL, "json writer: NULL value");
        return;
    }
    switch (v->type) {
    case ST_JSON_NULL: st_json_write_null(w); break;
    case ST_JSON_BOOL: st_json_write_bool(w, v->b); break;
    case ST_JSON_NUMBER:
        if (v->is_int) st_json_write_int(w, v->inum);
        else st_json_write_number(w, v->num);
        break;
    case ST_JSON_STRING: st_json_write_string_len(w, v->str, v->len); break;
    case ST_JSON_ARRAY:
        st_json_begin_array(w);
        for (size_t i = 0; i < v->len; i++) st_json_write_value(w, v->items[i]);
        st_json_end_array(w);
        break;
    case ST_JSON_OBJECT:
        st_json_begin_object(w);
        for (size_t i = 0; i < v->len; i++) {
            write_key_len(w, v->keys[i], v->key_lens[i]);
            st_json_write_value(w, v->items[i]);
        }
        st_json_end_object(w);
        break;
    }
}

st_status st_json_writer_status(const st_json_writer *w)
{
    if (w->err != ST_OK) return st_fail(w->err, "%s", w->msg);
    return ST_OK;
}

st_status st_json_writer_text(const st_json_writer *w, const char **text, size_t *len)
{
    ST_TRY(st_json_writer_status(w));
    if (!w->done)
        return st_fail(ST_ESTATE, "json writer: the document is incomplete (%d containers still open)", w->depth);
    *text = w->buf;
    *len = w->len;
    return ST_OK;
}

st_status st_json_writer_save(const st_json_writer *w, const char *path)
{
    const char *text;
    size_t len;
    ST_TRY(st_json_writer_text(w, &text, &len));
    st_atomic_file *f;
    ST_TRY(st_atomic_open(path, &f));
    st_status s = st_atomic_write(f, text, len);
    if (s == ST_OK) s = st_atomic_write(f, "\n", 1);
    if (s != ST_OK) {
        st_atomic_abort(f);
        return s;
    }
    return st_atomic_commit(f);
}
