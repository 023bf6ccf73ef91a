/* safetensors reading (strict, memory-mapped) and atomic writing
 * (see safetensors.h and docs/file-formats.md). */
#include "strata/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "strata/fileio.h"
#include "strata/json.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads little-endian data in place and needs a little-endian host"
#endif

#define HEADER_LIMIT (100u * 1000u * 1000u) /* bytes of JSON, as the reference reader */
#define METADATA_KEY "__metadata__"

struct st_safetensors {
    st_mapping *map;       /* NULL when opened over a caller's buffer */
    const uint8_t *data;   /* the data block: in the mapping, or `copy` */
    uint64_t data_offset;  /* of the data block in the file */
    uint64_t data_size;
    uint8_t *copy;         /* buffers: a private copy of the data block */
    st_json *header;       /* owns every name and metadata string */
    st_safetensors_entry *entries;
    size_t n;
    size_t *by_name;       /* entry indices sorted by name */
    const char **meta;     /* key0, value0, key1, ... */
    size_t n_meta;
};

static const char *const dtype_names[] = {"F32", "F16", "BF16", "F64", "I64", "I32", "U8"};
static const size_t dtype_sizes[] = {4, 2, 2, 8, 8, 4, 1};
#define N_DTYPES (sizeof dtype_names / sizeof dtype_names[0])

const char *st_safetensors_dtype_name(st_st_dtype t) { return (unsigned)t < N_DTYPES ? dtype_names[t] : "?"; }
size_t st_safetensors_dtype_size(st_st_dtype t) { return (unsigned)t < N_DTYPES ? dtype_sizes[t] : 0; }

/* The st_dtype with the same bytes, or -1 (F16, BF16). */
static int native_dtype(st_st_dtype t)
{
    switch (t) {
    case ST_ST_F32: return ST_F32;
    case ST_ST_F64: return ST_F64;
    case ST_ST_I64: return ST_I64;
    case ST_ST_I32: return ST_I32;
    case ST_ST_U8: return ST_U8;
    default: return -1;
    }
}

static uint64_t read_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* ---------------- validation ---------------- */

static st_status parse_dtype(const st_json *v, const char *name, st_st_dtype *out)
{
    const char *s = st_json_string(v);
    if (!v) return st_fail(ST_EFORMAT, "tensor '%s': 'dtype' is missing", name);
    if (!s) return st_fail(ST_EFORMAT, "tensor '%s': 'dtype' must be a string, found %s", name,
                           st_json_type_name(st_json_type_of(v)));
    for (size_t i = 0; i < N_DTYPES; i++)
        if (strcmp(s, dtype_names[i]) == 0 && strlen(s) == st_json_string_len(v)) {
            *out = (st_st_dtype)i;
            return ST_OK;
        }
    return st_fail(ST_EDTYPE, "tensor '%s': dtype '%.40s' is not supported (supported: F32, F16, BF16, F64, I64, I32, U8)",
                   name, s);
}

/* A JSON array of n non-negative integers (n < 0: any length up to max). */
static st_status parse_uints(const st_json *v, const char *name, const char *field, int n, int max, int64_t *out,
                             int *count)
{
    if (!v) return st_fail(ST_EFORMAT, "tensor '%s': '%s' is missing", name, field);
    if (st_json_type_of(v) != ST_JSON_ARRAY)
        return st_fail(ST_EFORMAT, "tensor '%s': '%s' must be an array, found %s", name, field,
                       st_json_type_name(st_json_type_of(v)));
    size_t len = st_json_size(v);
    if (n >= 0 && len != (size_t)n)
        return st_fail(ST_EFORMAT, "tensor '%s': '%s' must have %d entries, found %zu", name, field, n, len);
    if (len > (size_t)max)
        return st_fail(ST_ESHAPE, "tensor '%s': %s has %zu dimensions, at most %d are supported", name, field, len, max);
    for (size_t i = 0; i < len; i++) {
        char what[300];
        snprintf(what, sizeof what, "tensor '%s': %s[%zu]", name, field, i);
        ST_TRY(st_json_to_int(st_json_at(v, i), what, &out[i]));
        if (out[i] < 0) return st_fail(ST_EFORMAT, "%s is negative (%lld)", what, (long long)out[i]);
    }
    *count = (int)len;
    return ST_OK;
}

static st_status parse_entry(const st_json *v, const char *name, uint64_t data_size, st_safetensors_entry *e)
{
    static const char *const fields[] = {"dtype", "shape", "data_offsets"};
    char what[300];
    snprintf(what, sizeof what, "tensor '%s'", name);
    ST_TRY(st_json_check_keys(v, fields, 3, what));
    e->name = name;
    ST_TRY(parse_dtype(st_json_get(v, "dtype"), name, &e->dtype));
    ST_TRY(parse_uints(st_json_get(v, "shape"), name, "shape", -1, ST_MAX_DIMS, e->shape, &e->ndim));
    int64_t off[2];
    int two;
    ST_TRY(parse_uints(st_json_get(v, "data_offsets"), name, "data_offsets", 2, 2, off, &two));
    e->begin = (uint64_t)off[0];
    e->end = (uint64_t)off[1];
    if (e->begin > e->end)
        return st_fail(ST_EFORMAT, "tensor '%s': data_offsets [%llu, %llu] begin after they end", name,
                       (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end > data_size)
        return st_fail(ST_EFORMAT, "tensor '%s': data_offsets [%llu, %llu] reach past the data block of %llu bytes", name,
                       (unsigned long long)e->begin, (unsigned long long)e->end, (unsigned long long)data_size);
    /* The same size limit as st_tensor_new, so every valid entry loads
     * (zero-sized dimensions included: [2^62, 2^62, 0] is refused too). */
    char s[160];
    int64_t nonzero = 1, numel = 1;
    for (int i = 0; i < e->ndim; i++) {
        int64_t d = e->shape[i];
        if (d > 0 && nonzero > INT64_MAX / 16 / d)
            return st_fail(ST_ESHAPE, "tensor '%s': shape %s is too large", name, st_shape_str(e->ndim, e->shape, s, sizeof s));
        nonzero *= d ? d : 1;
        numel *= d;
    }
    uint64_t bytes = (uint64_t)numel * dtype_sizes[e->dtype];
    if (bytes != e->end - e->begin) {
        return st_fail(ST_EFORMAT, "tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but %s %s needs %llu", name,
                       (unsigned long long)e->begin, (unsigned long long)e->end,
                       (unsigned long long)(e->end - e->begin), dtype_names[e->dtype],
                       st_shape_str(e->ndim, e->shape, s, sizeof s), (unsigned long long)bytes);
    }
    return ST_OK;
}

static st_status parse_metadata(st_safetensors *f, const st_json *m)
{
    if (st_json_type_of(m) != ST_JSON_OBJECT)
        return st_fail(ST_EFORMAT, "'__metadata__' must be an object of strings, found %s",
                       st_json_type_name(st_json_type_of(m)));
    f->n_meta = st_json_size(m);
    f->meta = calloc(2 * f->n_meta + 1, sizeof *f->meta);
    if (!f->meta) return st_fail(ST_ENOMEM, "out of memory");
    for (size_t i = 0; i < f->n_meta; i++) {
        const char *key = st_json_key_at(m, i);
        const st_json *v = st_json_at(m, i);
        if (st_json_type_of(v) != ST_JSON_STRING)
            return st_fail(ST_EFORMAT, "'__metadata__' value of '%.200s' is a %s; only strings are allowed", key,
                           st_json_type_name(st_json_type_of(v)));
        if (strlen(key) != st_json_key_len_at(m, i) || strlen(st_json_string(v)) != st_json_string_len(v))
            return st_fail(ST_EFORMAT, "'__metadata__' entry '%.200s' contains a NUL character", key);
        f->meta[2 * i] = key;
        f->meta[2 * i + 1] = st_json_string(v);
    }
    return ST_OK;
}

/* Entry indices paired with the table, for qsort (which has no context
 * argument). */
typedef struct {
    size_t idx;
    const st_safetensors_entry *e;
} idx_ref;

static int idx_ref_by_range(const void *a, const void *b)
{
    const st_safetensors_entry *x = &((const idx_ref *)a)->e[((const idx_ref *)a)->idx];
    const st_safetensors_entry *y = &((const idx_ref *)b)->e[((const idx_ref *)b)->idx];
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

static int idx_ref_by_name(const void *a, const void *b)
{
    const idx_ref *x = a, *y = b;
    return strcmp(x->e[x->idx].name, y->e[y->idx].name);
}

/* Sorts entry indices with cmp into out[0..n). */
static st_status sort_indices(const st_safetensors *f, int (*cmp)(const void *, const void *), size_t *out)
{
    idx_ref *tmp = malloc((f->n ? f->n : 1) * sizeof *tmp);
    if (!tmp) return st_fail(ST_ENOMEM, "out of memory");
    for (size_t i = 0; i < f->n; i++) tmp[i] = (idx_ref){i, f->entries};
    qsort(tmp, f->n, sizeof *tmp, cmp);
    for (size_t i = 0; i < f->n; i++) out[i] = tmp[i].idx;
    free(tmp);
    return ST_OK;
}

/* Every byte of the data block belongs to exactly one tensor: ranges
 * sorted by offset must follow each other without overlap or gap. */
static st_status check_layout(const st_safetensors *f)
{
    size_t *order = malloc((f->n ? f->n : 1) * sizeof *order);
    if (!order) return st_fail(ST_ENOMEM, "out of memory");
    st_status s = sort_indices(f, idx_ref_by_range, order);
    uint64_t pos = 0;
    const st_safetensors_entry *prev = NULL;
    for (size_t k = 0; s == ST_OK && k < f->n; k++) {
        const st_safetensors_entry *e = &f->entries[order[k]];
        if (e->begin < pos)
            s = st_fail(ST_EFORMAT, "tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap", prev->name,
                        (unsigned long long)prev->begin, (unsigned long long)prev->end, e->name,
                        (unsigned long long)e->begin, (unsigned long long)e->end);
        else if (e->begin > pos)
            s = st_fail(ST_EFORMAT, "bytes [%llu, %llu) of the data block belong to no tensor (before '%s')",
                        (unsigned long long)pos, (unsigned long long)e->begin, e->name);
        pos = e->end;
        prev = e;
    }
    if (s == ST_OK && pos != f->data_size)
        s = st_fail(ST_EFORMAT, "bytes [%llu, %llu) at the end of the data block belong to no tensor",
                    (unsigned long long)pos, (unsigned long long)f->data_size);
    free(order);
    return s;
}

static st_status parse_file(st_safetensors *f, const uint8_t *bytes, size_t size)
{
    if (size < 8) return st_fail(ST_EFORMAT, "file is %zu bytes; at least 8 are needed for the header length", size);
    uint64_t n = read_le64(bytes);
    if (n > HEADER_LIMIT)
        return st_fail(ST_EFORMAT, "header length %llu exceeds the limit of %u bytes", (unsigned long long)n, HEADER_LIMIT);
    if (n > size - 8)
        return st_fail(ST_EFORMAT, "header length %llu exceeds the %zu bytes after the length field (truncated file?)",
                       (unsigned long long)n, size - 8);
    st_status s = st_json_parse((const char *)bytes + 8, (size_t)n, &f->header);
    if (s != ST_OK) return st_fail_context(s, "header: ");
    if (st_json_type_of(f->header) != ST_JSON_OBJECT)
        return st_fail(ST_EFORMAT, "header must be a JSON object, found %s", st_json_type_name(st_json_type_of(f->header)));
    f->data_offset = 8 + n;
    f->data_size = size - f->data_offset;
    f->data = bytes + f->data_offset;

    size_t members = st_json_size(f->header);
    f->entries = calloc(members ? members : 1, sizeof *f->entries);
    f->by_name = calloc(members ? members : 1, sizeof *f->by_name);
    if (!f->entries || !f->by_name) return st_fail(ST_ENOMEM, "out of memory");
    for (size_t i = 0; i < members; i++) {
        const char *key = st_json_key_at(f->header, i);
        const st_json *v = st_json_at(f->header, i);
        if (strcmp(key, METADATA_KEY) == 0) {
            ST_TRY(parse_metadata(f, v));
            continue;
        }
        if (strlen(key) != st_json_key_len_at(f->header, i))
            return st_fail(ST_EFORMAT, "tensor name '%.200s' contains a NUL character", key);
        ST_TRY(parse_entry(v, key, f->data_size, &f->entries[f->n]));
        f->n++;
    }
    ST_TRY(check_layout(f));
    return sort_indices(f, idx_ref_by_name, f->by_name);
}

void st_safetensors_close(st_safetensors *f)
{
    if (!f) return;
    st_mapping_free(f->map);
    free(f->copy);
    st_json_free(f->header);
    free(f->entries);
    free(f->by_name);
    free(f->meta);
    free(f);
}

st_status st_safetensors_open_buffer(const void *data, size_t size, st_safetensors **out)
{
    st_safetensors *f = calloc(1, sizeof *f);
    if (!f) return st_fail(ST_ENOMEM, "safetensors: out of memory");
    st_status s = parse_file(f, data, size);
    if (s == ST_OK) {
        f->copy = malloc(f->data_size ? f->data_size : 1);
        if (!f->copy) s = st_fail(ST_ENOMEM, "out of memory for %llu data bytes", (unsigned long long)f->data_size);
        else if (f->data_size) memcpy(f->copy, f->data, f->data_size);
        f->data = f->copy;
    }
    if (s != ST_OK) {
        st_safetensors_close(f);
        return st_fail_context(s, "safetensors: ");
    }
    *out = f;
    return ST_OK;
}

st_status st_safetensors_open(const char *path, st_safetensors **out)
{
    st_safetensors *f = calloc(1, sizeof *f);
    if (!f) return st_fail(ST_ENOMEM, "safetensors '%s': out of memory", path);
    st_status s = st_mapping_open(path, &f->map);
    if (s == ST_OK) s = parse_file(f, st_mapping_data(f->map), st_mapping_size(f->map));
    if (s != ST_OK) {
        st_safetensors_close(f);
        return st_fail_context(s, "safetensors '%s': ", path);
    }
    *out = f;
    return ST_OK;
}

/* ---------------- queries ---------------- */

size_t st_safetensors_count(const st_safetensors *f) { return f->n; }

const st_safetensors_entry *st_safetensors_entry_at(const st_safetensors *f, size_t i)
{
    return i < f->n ? &f->entries[i] : NULL;
}

const st_safetensors_entry *st_safetensors_find(const st_safetensors *f, const char *name)
{
    size_t lo = 0, hi = f->n;
    while (name && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const st_safetensors_entry *e = &f->entries[f->by_name[mid]];
        int c = strcmp(e->name, name);
        if (c == 0) return e;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

size_t st_safetensors_metadata_count(const st_safetensors *f) { return f->n_meta; }

void st_safetensors_metadata_at(const st_safetensors *f, size_t i, const char **key, const char **value)
{
    *key = i < f->n_meta ? f->meta[2 * i] : NULL;
    *value = i < f->n_meta ? f->meta[2 * i + 1] : NULL;
}

const char *st_safetensors_metadata_get(const st_safetensors *f, const char *key)
{
    for (size_t i = 0; key && i < f->n_meta; i++)
        if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
    return NULL;
}

/* ---------------- loading ---------------- */

/* IEEE half to single precision, exact for every input: normals rebias
 * the exponent, subnormals are m * 2^-24 (exact in float), and Inf/NaN
 * keep their payload. */
static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | mant << 13;
    } else if (exp == 0) {
        float v = (float)mant * (1.0f / 16777216.0f);
        memcpy(&bits, &v, sizeof bits);
        bits |= sign;
    } else {
        bits = sign | (exp + 112) << 23 | mant << 13;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* bfloat16 is the top half of a float32. */
static float bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* F16/BF16 data decoded into a fresh F32 tensor. */
static st_status decode_half(const st_safetensors_entry *e, const uint8_t *src, st_tensor **out)
{
    st_tensor *t;
    ST_TRY(st_tensor_new(ST_F32, e->ndim, e->shape, &t));
    float *dst = st_f32(t);
    int64_t n = st_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = e->dtype == ST_ST_F16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
    *out = t;
    return ST_OK;
}

/* The entry in its own dtype `dt`: a view of the mapping when aligned,
 * otherwise a copy. A `temporary` result (freed before f can be closed)
 * may also borrow the buffer copy of an st_safetensors_open_buffer file. */
static st_status load_native(const st_safetensors *f, const st_safetensors_entry *e, st_dtype dt, bool temporary,
                             st_tensor **out)
{
    const uint8_t *src = f->data + e->begin;
    bool aligned = (uintptr_t)src % st_dtype_size(dt) == 0;
    if (aligned && f->map)
        return st_mapping_tensor(f->map, (size_t)(f->data_offset + e->begin), dt, e->ndim, e->shape, out);
    if (aligned && temporary) return st_tensor_wrap(dt, e->ndim, e->shape, (void *)src, NULL, NULL, out);
    return st_tensor_from_data(dt, e->ndim, e->shape, src, (size_t)(e->end - e->begin), out);
}

st_status st_safetensors_load(const st_safetensors *f, const char *name, st_dtype want, st_tensor **out)
{
    const st_safetensors_entry *e = st_safetensors_find(f, name);
    if (!e) return st_fail(ST_EINVAL, "safetensors: no tensor named '%s'", name ? name : "(null)");
    if ((unsigned)want >= ST_DTYPE_COUNT) return st_fail(ST_EDTYPE, "safetensors: invalid target dtype %d", (int)want);
    int native = native_dtype(e->dtype);
    if (native == (int)want) return load_native(f, e, want, false, out);
    st_tensor *tmp;
    if (native < 0) ST_TRY(decode_half(e, f->data + e->begin, &tmp));
    else ST_TRY(load_native(f, e, (st_dtype)native, true, &tmp));
    if (tmp->dtype == want) {
        *out = tmp;
        return ST_OK;
    }
    st_status s = st_tensor_to_dtype(tmp, want, out);
    st_tensor_free(tmp);
    return s;
}

/* ---------------- writing ---------------- */

static int native_to_file(st_dtype t)
{
    switch (t) {
    case ST_F32: return ST_ST_F32;
    case ST_F64: return ST_ST_F64;
    case ST_I32: return ST_ST_I32;
    case ST_I64: return ST_ST_I64;
    case ST_U8: return ST_ST_U8;
    default: return -1;
    }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Fails if the n strings at stride `step` in list contain a repeat. */
static st_status check_unique(const char *const *list, size_t n, size_t step, const char *what)
{
    const char **sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted) return st_fail(ST_ENOMEM, "safetensors: out of memory");
    for (size_t i = 0; i < n; i++) sorted[i] = list[i * step];
    qsort(sorted, n, sizeof *sorted, cmp_str);
    st_status s = ST_OK;
    for (size_t i = 1; i < n && s == ST_OK; i++)
        if (strcmp(sorted[i], sorted[i - 1]) == 0) s = st_fail(ST_EINVAL, "safetensors: duplicate %s '%s'", what, sorted[i]);
    free(sorted);
    return s;
}

static st_status check_save_args(const st_named_tensor *tensors, size_t n, const char *const *meta, size_t n_meta)
{
    if (n && !tensors) return st_fail(ST_EINVAL, "safetensors: NULL tensor list");
    if (n_meta && !meta) return st_fail(ST_EINVAL, "safetensors: NULL metadata list");
    for (size_t i = 0; i < n; i++) {
        const char *name = tensors[i].name;
        if (!name || !*name) return st_fail(ST_EINVAL, "safetensors: tensor %zu has no name", i);
        if (strcmp(name, METADATA_KEY) == 0) return st_fail(ST_EINVAL, "safetensors: '%s' is reserved", METADATA_KEY);
        if (!tensors[i].tensor) return st_fail(ST_EINVAL, "safetensors: tensor '%s' is NULL", name);
        if (native_to_file(tensors[i].tensor->dtype) < 0)
            return st_fail(ST_EDTYPE, "safetensors: tensor '%s' has invalid dtype %d", name, (int)tensors[i].tensor->dtype);
    }
    for (size_t i = 0; i < 2 * n_meta; i++)
        if (!meta[i]) return st_fail(ST_EINVAL, "safetensors: metadata %s %zu is NULL", i % 2 ? "value" : "key", i / 2);
    const char **names = malloc((n ? n : 1) * sizeof *names);
    if (!names) return st_fail(ST_ENOMEM, "safetensors: out of memory");
    for (size_t i = 0; i < n; i++) names[i] = tensors[i].name;
    st_status s = check_unique(names, n, 1, "tensor name");
    free(names);
    if (s == ST_OK) s = check_unique(meta, n_meta, 2, "metadata key");
    return s;
}

/* Where each tensor's bytes go: the header lists tensors in the given
 * order, but the data block holds them by decreasing element size (stable),
 * so with the header padded to a multiple of 8 every tensor is aligned in
 * a mapping and loads as a zero-copy view. order[k] is the k-th tensor in
 * the data block; begin[i] is tensor i's offset. */
static void plan_layout(const st_named_tensor *tensors, size_t n, size_t *order, uint64_t *begin)
{
    size_t k = 0;
    for (size_t el = 8; el >= 1; el /= 2)
        for (size_t i = 0; i < n; i++)
            if (st_dtype_size(tensors[i].tensor->dtype) == el) order[k++] = i;
    uint64_t pos = 0;
    for (k = 0; k < n; k++) {
        begin[order[k]] = pos;
        pos += st_tensor_nbytes(tensors[order[k]].tensor);
    }
}

/* The compact JSON header, padded with spaces to a multiple of 8. */
static st_status build_header(const st_named_tensor *tensors, size_t n, const uint64_t *begin, const char *const *meta,
                              size_t n_meta, char **out, size_t *out_len)
{
    st_json_writer *w;
    ST_TRY(st_json_writer_new(false, &w));
    st_json_begin_object(w);
    if (n_meta) {
        st_json_key(w, METADATA_KEY);
        st_json_begin_object(w);
        for (size_t i = 0; i < n_meta; i++) {
            st_json_key(w, meta[2 * i]);
            st_json_write_string(w, meta[2 * i + 1]);
        }
        st_json_end_object(w);
    }
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = tensors[i].tensor;
        st_json_key(w, tensors[i].name);
        st_json_begin_object(w);
        st_json_key(w, "dtype");
        st_json_write_string(w, dtype_names[native_to_file(t->dtype)]);
        st_json_key(w, "shape");
        st_json_begin_array(w);
        for (int d = 0; d < t->ndim; d++) st_json_write_int(w, t->shape[d]);
        st_json_end_array(w);
        st_json_key(w, "data_offsets");
        st_json_begin_array(w);
        st_json_write_int(w, (int64_t)begin[i]);
        st_json_write_int(w, (int64_t)(begin[i] + st_tensor_nbytes(t)));
        st_json_end_array(w);
        st_json_end_object(w);
    }
    st_json_end_object(w);
    const char *text;
    size_t len;
    st_status s = st_json_writer_text(w, &text, &len);
    if (s == ST_OK) {
        size_t padded = (len + 7) / 8 * 8;
        *out = malloc(padded);
        if (!*out) {
            s = st_fail(ST_ENOMEM, "safetensors: out of memory");
        } else {
            memcpy(*out, text, len);
            memset(*out + len, ' ', padded - len);
            *out_len = padded;
        }
    }
    st_json_writer_free(w);
    if (s != ST_OK) return st_fail_context(s, "safetensors header: ");
    return ST_OK;
}

static st_status write_tensor(st_atomic_file *af, const st_tensor *t)
{
    st_tensor *c;
    ST_TRY(st_tensor_contiguous(t, &c));
    st_status s = st_atomic_write(af, c->data, st_tensor_nbytes(c));
    st_tensor_free(c);
    return s;
}

st_status st_safetensors_save(const char *path, const st_named_tensor *tensors, size_t n, const char *const *meta,
                              size_t n_meta)
{
    ST_TRY(check_save_args(tensors, n, meta, n_meta));
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    uint64_t *begin = malloc((n ? n : 1) * sizeof *begin);
    char *header = NULL;
    size_t hlen = 0;
    st_status s = order && begin ? ST_OK : st_fail(ST_ENOMEM, "safetensors: out of memory");
    if (s == ST_OK) {
        plan_layout(tensors, n, order, begin);
        s = build_header(tensors, n, begin, meta, n_meta, &header, &hlen);
    }
    st_atomic_file *af = NULL;
    if (s == ST_OK) s = st_atomic_open(path, &af);
    if (s == ST_OK) {
        uint8_t len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
        s = st_atomic_write(af, len8, 8);
        if (s == ST_OK) s = st_atomic_write(af, header, hlen);
        for (size_t k = 0; k < n && s == ST_OK; k++) s = write_tensor(af, tensors[order[k]].tensor);
        s = s == ST_OK ? st_atomic_commit(af) : (st_atomic_abort(af), s);
    }
    free(order);
    free(begin);
    free(header);
    return s;
}
