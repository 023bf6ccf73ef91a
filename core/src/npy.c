/* NumPy .npy reading, mapping and atomic writing (see npy.h and
 * docs/file-formats.md). */
#include "strata/npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "strata/fileio.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c reads little-endian data in place and needs a little-endian host"
#endif

#define MAGIC "\x93NUMPY"
#define MAGIC_LEN 6
#define ALIGN 64 /* numpy's ARRAY_ALIGN: the data starts at a multiple of 64 */
#define GROWTH_DIGITS 21 /* numpy >= 1.23 leaves room to grow shape[0] in place */

/* The descr each dtype is written with ('|u1' for bytes, as numpy). */
static const char *const descr_of[ST_DTYPE_COUNT] = {"<f4", "<f8", "<i4", "<i8", "|u1"};

typedef struct {
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t data_offset;
    uint64_t nbytes;
} npy_info;

/* ---------------- header parsing ---------------- */

typedef struct {
    const char *p, *end;
} cursor;

static void skip_spaces(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t')) c->p++;
}

static bool eat(cursor *c, char ch)
{
    skip_spaces(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

/* Describes what the cursor is looking at, for messages. */
static const char *found(const cursor *c, char *buf, size_t cap)
{
    if (c->p >= c->end) return "the end of the header";
    if (*c->p >= 0x20 && *c->p < 0x7f) snprintf(buf, cap, "'%c' at header byte", *c->p);
    else snprintf(buf, cap, "byte 0x%02x at header byte", (unsigned char)*c->p);
    return buf;
}

static st_status expected(const cursor *c, const char *start, const char *what)
{
    char buf[64];
    return st_fail(ST_EFORMAT, "header dict: expected %s, found %s %zu", what, found(c, buf, sizeof buf),
                   (size_t)(c->p - start));
}

/* A Python string literal without escapes, quoted with ' or ". */
static st_status parse_pystr(cursor *c, const char *start, char *out, size_t cap)
{
    skip_spaces(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return expected(c, start, "a quoted string");
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\') return st_fail(ST_EFORMAT, "header dict: escape sequences in strings are not supported");
        if ((unsigned char)*c->p < 0x20 || (unsigned char)*c->p >= 0x7f)
            return st_fail(ST_EFORMAT, "header dict: byte 0x%02x in a string", (unsigned char)*c->p);
        if (n + 1 < cap) out[n++] = *c->p;
        c->p++;
    }
    if (c->p >= c->end) return st_fail(ST_EFORMAT, "header dict: unterminated string");
    c->p++;
    out[n] = '\0';
    return ST_OK;
}

static st_status parse_descr(cursor *c, const char *start, st_dtype *out)
{
    skip_spaces(c);
    if (c->p < c->end && *c->p == '[')
        return st_fail(ST_EDTYPE, "structured dtypes (a list as 'descr') are not supported");
    char d[32];
    ST_TRY(parse_pystr(c, start, d, sizeof d));
    for (int i = 0; i < ST_DTYPE_COUNT; i++)
        if (strcmp(d, descr_of[i]) == 0) {
            *out = (st_dtype)i;
            return ST_OK;
        }
    if (strcmp(d, "<u1") == 0) {
        *out = ST_U8;
        return ST_OK;
    }
    if (d[0] == '>') return st_fail(ST_EDTYPE, "big-endian dtype '%s' is not supported (only little-endian)", d);
    if (strcmp(d, "|O") == 0 || strcmp(d, "O") == 0 || strcmp(d, "<O") == 0)
        return st_fail(ST_EDTYPE, "object arrays ('%s') are not supported", d);
    return st_fail(ST_EDTYPE, "dtype '%s' is not supported (supported: <f4, <f8, <i4, <i8, |u1)", d);
}

static st_status parse_bool(cursor *c, const char *start, bool *out)
{
    skip_spaces(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
        c->p += 4;
        *out = true;
        return ST_OK;
    }
    if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        c->p += 5;
        *out = false;
        return ST_OK;
    }
    return expected(c, start, "True or False for 'fortran_order'");
}

static st_status parse_dim(cursor *c, const char *start, int64_t *out)
{
    skip_spaces(c);
    if (c->p < c->end && *c->p == '-') return st_fail(ST_EFORMAT, "header dict: negative size in 'shape'");
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return expected(c, start, "a size in 'shape'");
    if (*c->p == '0' && c->p + 1 < c->end && c->p[1] >= '0' && c->p[1] <= '9')
        return st_fail(ST_EFORMAT, "header dict: leading zero in a 'shape' size");
    int64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        int digit = *c->p++ - '0';
        if (v > (INT64_MAX - digit) / 10) return st_fail(ST_EFORMAT, "header dict: a 'shape' size exceeds int64");
        v = v * 10 + digit;
    }
    *out = v;
    return ST_OK;
}

/* A Python tuple of ints: (), (n,), (n, m), (n, m,) ... */
static st_status parse_shape(cursor *c, const char *start, npy_info *info)
{
    if (!eat(c, '(')) return expected(c, start, "a tuple '(' for 'shape'");
    int n = 0;
    bool trailing_comma = false;
    while (!eat(c, ')')) {
        int64_t dim = 0;
        ST_TRY(parse_dim(c, start, &dim));
        if (n == ST_MAX_DIMS)
            return st_fail(ST_ESHAPE, "shape has more than %d dimensions, which is the most supported", ST_MAX_DIMS);
        info->shape[n++] = dim;
        trailing_comma = eat(c, ',');
        if (!trailing_comma) {
            if (!eat(c, ')')) return expected(c, start, "',' or ')' in 'shape'");
            break;
        }
    }
    if (n == 1 && !trailing_comma)
        return st_fail(ST_EFORMAT, "header dict: 'shape' is (%lld), an int; a 1-tuple is written (%lld,)",
                       (long long)info->shape[0], (long long)info->shape[0]);
    info->ndim = n;
    return ST_OK;
}

/* The dict {'descr': ..., 'fortran_order': ..., 'shape': ...} with each
 * key exactly once, in any order, optionally with a trailing comma,
 * followed only by spaces and newlines. */
static st_status parse_header_dict(const char *h, size_t len, npy_info *info)
{
    cursor c = {h, h + len};
    bool seen[3] = {false, false, false}, fortran = false;
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};
    if (!eat(&c, '{')) return expected(&c, h, "'{'");
    while (!eat(&c, '}')) {
        char key[32];
        ST_TRY(parse_pystr(&c, h, key, sizeof key));
        int k = 0;
        while (k < 3 && strcmp(key, keys[k]) != 0) k++;
        if (k == 3) return st_fail(ST_EFORMAT, "header dict: unknown key '%s'", key);
        if (seen[k]) return st_fail(ST_EFORMAT, "header dict: key '%s' appears twice", key);
        seen[k] = true;
        if (!eat(&c, ':')) return expected(&c, h, "':' after a key");
        if (k == 0) ST_TRY(parse_descr(&c, h, &info->dtype));
        else if (k == 1) ST_TRY(parse_bool(&c, h, &fortran));
        else ST_TRY(parse_shape(&c, h, info));
        if (!eat(&c, ',')) {
            if (!eat(&c, '}')) return expected(&c, h, "',' or '}' in the dict");
            break;
        }
    }
    for (int k = 0; k < 3; k++)
        if (!seen[k]) return st_fail(ST_EFORMAT, "header dict: '%s' is missing", keys[k]);
    while (c.p < c.end && (*c.p == ' ' || *c.p == '\t' || *c.p == '\n' || *c.p == '\r')) c.p++;
    if (c.p < c.end) return expected(&c, h, "only padding after the dict");
    if (fortran) return st_fail(ST_EFORMAT, "Fortran-order arrays are not supported (fortran_order is True)");
    return ST_OK;
}

static st_status parse_npy(const uint8_t *b, size_t size, npy_info *info)
{
    if (size < MAGIC_LEN + 2 || memcmp(b, MAGIC, MAGIC_LEN) != 0)
        return st_fail(ST_EFORMAT, "not an .npy file (the magic string \\x93NUMPY is missing)");
    int major = b[6], minor = b[7];
    if (!(major >= 1 && major <= 3 && minor == 0))
        return st_fail(ST_EFORMAT, "format version %d.%d is not supported (1.0, 2.0 and 3.0 are)", major, minor);
    size_t len_bytes = major == 1 ? 2 : 4, prefix = MAGIC_LEN + 2 + len_bytes;
    if (size < prefix) return st_fail(ST_EFORMAT, "file of %zu bytes ends inside the header length", size);
    size_t hlen = 0;
    for (size_t i = len_bytes; i-- > 0;) hlen = hlen << 8 | b[MAGIC_LEN + 2 + i];
    if (hlen > size - prefix)
        return st_fail(ST_EFORMAT, "header length %zu exceeds the %zu bytes after it (truncated file?)", hlen, size - prefix);
    memset(info, 0, sizeof *info);
    info->dtype = ST_DTYPE_COUNT;
    ST_TRY(parse_header_dict((const char *)b + prefix, hlen, info));
    info->data_offset = prefix + hlen;
    /* The same size limit as st_tensor_new, zero-sized dimensions included. */
    char s[160];
    int64_t nonzero = 1, numel = 1;
    for (int i = 0; i < info->ndim; i++) {
        int64_t d = info->shape[i];
        if (d > 0 && nonzero > INT64_MAX / 16 / d)
            return st_fail(ST_ESHAPE, "shape %s is too large", st_shape_str(info->ndim, info->shape, s, sizeof s));
        nonzero *= d ? d : 1;
        numel *= d;
    }
    uint64_t bytes = (uint64_t)numel * st_dtype_size(info->dtype);
    info->nbytes = bytes;
    if (bytes != size - info->data_offset) {
        return st_fail(ST_EFORMAT, "file has %zu data bytes but %s %s needs %llu", size - info->data_offset,
                       descr_of[info->dtype], st_shape_str(info->ndim, info->shape, s, sizeof s),
                       (unsigned long long)bytes);
    }
    return ST_OK;
}

/* ---------------- reading ---------------- */

st_status st_npy_load_buffer(const void *data, size_t size, st_tensor **out)
{
    npy_info info;
    st_status s = parse_npy(data, size, &info);
    if (s == ST_OK)
        s = st_tensor_from_data(info.dtype, info.ndim, info.shape, (const uint8_t *)data + info.data_offset,
                                (size_t)info.nbytes, out);
    if (s != ST_OK) return st_fail_context(s, "npy: ");
    return ST_OK;
}

/* Maps path and parses its header; the caller frees *m. */
static st_status open_mapped(const char *path, st_mapping **m, npy_info *info)
{
    ST_TRY(st_mapping_open(path, m));
    st_status s = parse_npy(st_mapping_data(*m), st_mapping_size(*m), info);
    if (s != ST_OK) st_mapping_free(*m);
    return s;
}

st_status st_npy_load(const char *path, st_tensor **out)
{
    st_mapping *m;
    npy_info info;
    st_status s = open_mapped(path, &m, &info);
    if (s == ST_OK) {
        s = st_tensor_from_data(info.dtype, info.ndim, info.shape, (const uint8_t *)st_mapping_data(m) + info.data_offset,
                                (size_t)info.nbytes, out);
        st_mapping_free(m);
    }
    if (s != ST_OK) return st_fail_context(s, "npy '%s': ", path);
    return ST_OK;
}

st_status st_npy_map(const char *path, st_tensor **out)
{
    st_mapping *m;
    npy_info info;
    st_status s = open_mapped(path, &m, &info);
    if (s == ST_OK) {
        if (info.data_offset % st_dtype_size(info.dtype))
            s = st_fail(ST_EFORMAT, "data starts at byte %zu, not aligned for %s elements; use st_npy_load",
                        info.data_offset, descr_of[info.dtype]);
        else
            s = st_mapping_tensor(m, info.data_offset, info.dtype, info.ndim, info.shape, out);
        st_mapping_free(m);
    }
    if (s != ST_OK) return st_fail_context(s, "npy '%s': ", path);
    return ST_OK;
}

/* ---------------- writing ---------------- */

/* The header numpy 1.24 writes for this dtype and shape, byte for byte:
 * magic, version 1.0, length, the dict, growth spaces, padding and '\n'
 * so the data starts at a multiple of 64. The dict of a <= 6-d array is
 * far below version 1.0's 65535-byte limit, so 2.0 is never needed. */
static size_t make_header(st_dtype dtype, int ndim, const int64_t *shape, char *out, size_t cap)
{
    char dict[512];
    size_t n = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr_of[dtype]);
    for (int i = 0; i < ndim; i++) n += (size_t)snprintf(dict + n, sizeof dict - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    n += (size_t)snprintf(dict + n, sizeof dict - n, "%s), }", ndim == 1 ? "," : "");
    if (ndim > 0) {
        int digits = snprintf(NULL, 0, "%lld", (long long)shape[0]);
        for (int i = digits; i < GROWTH_DIGITS; i++) dict[n++] = ' ';
    }
    size_t total = (MAGIC_LEN + 4 + n + 1 + ALIGN - 1) / ALIGN * ALIGN;
    if (total - (MAGIC_LEN + 4 + n + 1) == 0) total += ALIGN; /* numpy pads 1..64 spaces */
    size_t hlen = total - MAGIC_LEN - 4;
    if (total > cap) return 0;
    memcpy(out, MAGIC "\x01\x00", MAGIC_LEN + 2);
    out[8] = (char)(hlen & 0xff);
    out[9] = (char)(hlen >> 8);
    memcpy(out + 10, dict, n);
    memset(out + 10 + n, ' ', total - 10 - n - 1);
    out[total - 1] = '\n';
    return total;
}

/* Writes t's elements in C order; a non-contiguous tensor goes one row
 * (slice along dim 0) at a time, so memory stays bounded by a row. */
static st_status write_elements(st_atomic_file *f, const st_tensor *t)
{
    if (st_tensor_is_contiguous(t)) return st_atomic_write(f, t->data, st_tensor_nbytes(t));
    for (int64_t i = 0; i < t->shape[0]; i++) {
        st_tensor *row = NULL, *c = NULL;
        st_status s = st_tensor_select(t, 0, i, &row);
        if (s == ST_OK) s = st_tensor_contiguous(row, &c);
        if (s == ST_OK) s = st_atomic_write(f, c->data, st_tensor_nbytes(c));
        st_tensor_free(c);
        st_tensor_free(row);
        ST_TRY(s);
    }
    return ST_OK;
}

static st_status check_array(st_dtype dtype, int ndim, const int64_t *shape, int min_ndim)
{
    if ((unsigned)dtype >= ST_DTYPE_COUNT) return st_fail(ST_EDTYPE, "invalid dtype %d", (int)dtype);
    if (ndim < min_ndim || ndim > ST_MAX_DIMS)
        return st_fail(ST_ESHAPE, "%d dimensions given; %d to %d are supported", ndim, min_ndim, ST_MAX_DIMS);
    char s[160];
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0) return st_fail(ST_ESHAPE, "negative size in shape %s", st_shape_str(ndim, shape, s, sizeof s));
    return ST_OK;
}

/* Opens the temporary file and writes the header. */
static st_status begin_file(const char *path, st_dtype dtype, int ndim, const int64_t *shape, st_atomic_file **out)
{
    char header[640];
    size_t n = make_header(dtype, ndim, shape, header, sizeof header);
    ST_TRY(st_atomic_open(path, out));
    st_status s = st_atomic_write(*out, header, n);
    if (s != ST_OK) st_atomic_abort(*out);
    return s;
}

st_status st_npy_save(const char *path, const st_tensor *t)
{
    st_status s = t ? check_array(t->dtype, t->ndim, t->shape, 0) : st_fail(ST_EINVAL, "NULL tensor");
    st_atomic_file *f = NULL;
    if (s == ST_OK) s = begin_file(path, t->dtype, t->ndim, t->shape, &f);
    if (s == ST_OK) {
        s = write_elements(f, t);
        s = s == ST_OK ? st_atomic_commit(f) : (st_atomic_abort(f), s);
    }
    if (s != ST_OK) return st_fail_context(s, "npy '%s': ", path ? path : "(null)");
    return ST_OK;
}

struct st_npy_writer {
    st_atomic_file *f;
    char *path;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t rows;     /* written so far */
    bool failed;      /* a write failed: only abort/close remain */
};

st_status st_npy_writer_open(const char *path, st_dtype dtype, int ndim, const int64_t *shape, st_npy_writer **out)
{
    st_status s = path ? check_array(dtype, ndim, shape, 1) : st_fail(ST_EINVAL, "NULL path");
    st_npy_writer *w = NULL;
    if (s == ST_OK) {
        w = calloc(1, sizeof *w);
        if (w) w->path = strdup(path);
        if (!w || !w->path) s = st_fail(ST_ENOMEM, "out of memory");
    }
    if (s == ST_OK) s = begin_file(path, dtype, ndim, shape, &w->f);
    if (s != ST_OK) {
        if (w) free(w->path);
        free(w);
        return st_fail_context(s, "npy writer '%s': ", path ? path : "(null)");
    }
    w->dtype = dtype;
    w->ndim = ndim;
    memcpy(w->shape, shape, (size_t)ndim * sizeof *shape);
    *out = w;
    return ST_OK;
}

st_status st_npy_writer_append(st_npy_writer *w, const st_tensor *rows)
{
    char a[160], b[160], c[160];
    if (w->failed) return st_fail(ST_ESTATE, "npy writer '%s': an earlier write failed; abort the writer", w->path);
    if (!rows) return st_fail(ST_EINVAL, "npy writer '%s': NULL rows", w->path);
    if (rows->dtype != w->dtype)
        return st_fail(ST_EDTYPE, "npy writer '%s': rows of dtype %s given to a %s array", w->path,
                       st_dtype_name(rows->dtype), st_dtype_name(w->dtype));
    /* Either a batch [k, rest...] or a single row [rest...]. */
    bool single = rows->ndim == w->ndim - 1;
    int64_t k = single ? 1 : rows->shape[0];
    bool ok = single || rows->ndim == w->ndim;
    for (int i = 1; ok && i < w->ndim; i++) ok = rows->shape[i - single] == w->shape[i];
    if (!ok) {
        int64_t row_shape[ST_MAX_DIMS];
        row_shape[0] = -1;
        memcpy(row_shape + 1, w->shape + 1, (size_t)(w->ndim - 1) * sizeof *row_shape);
        return st_fail(ST_ESHAPE, "npy writer '%s': rows %s do not fit an array %s (rows must be %s, -1 any)", w->path,
                       st_shape_str(rows->ndim, rows->shape, a, sizeof a), st_shape_str(w->ndim, w->shape, b, sizeof b),
                       st_shape_str(w->ndim, row_shape, c, sizeof c));
    }
    if (k > w->shape[0] - w->rows)
        return st_fail(ST_ESHAPE, "npy writer '%s': %lld more rows would exceed the declared %lld (%lld written)", w->path,
                       (long long)k, (long long)w->shape[0], (long long)w->rows);
    st_status s = write_elements(w->f, rows);
    if (s != ST_OK) {
        w->failed = true;
        return st_fail_context(s, "npy writer: ");
    }
    w->rows += k;
    return ST_OK;
}

static void writer_free(st_npy_writer *w)
{
    free(w->path);
    free(w);
}

void st_npy_writer_abort(st_npy_writer *w)
{
    if (!w) return;
    st_atomic_abort(w->f);
    writer_free(w);
}

st_status st_npy_writer_close(st_npy_writer *w)
{
    st_status s;
    if (w->failed) {
        s = st_fail(ST_ESTATE, "npy writer '%s': an earlier write failed; the file was not written", w->path);
        st_atomic_abort(w->f);
    } else if (w->rows != w->shape[0]) {
        s = st_fail(ST_ESTATE, "npy writer '%s': closed after %lld of %lld rows; the file was not written", w->path,
                    (long long)w->rows, (long long)w->shape[0]);
        st_atomic_abort(w->f);
    } else {
        s = st_atomic_commit(w->f);
    }
    writer_free(w);
    return s;
}
