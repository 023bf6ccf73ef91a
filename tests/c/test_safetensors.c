/* safetensors: round trips for every dtype and rank, byte-exact headers,
 * hand-built files, exhaustive F16/BF16 decoding against the textbook
 * formula, every validation rule with its message, truncation at every
 * byte, and the real ResNet-56 weights (skipped when absent). */
#include "tmpdir.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include "strata/fileio.h"
#include "strata/safetensors.h"
#include "testing.h"

/* An in-memory file: 8-byte little-endian header length, header, data. */
typedef struct {
    uint8_t *bytes;
    size_t size;
} image;

static image make_image(const char *header, const void *data, size_t ndata)
{
    size_t n = strlen(header);
    image im = {malloc(8 + n + ndata + 1), 8 + n + ndata};
    for (int i = 0; i < 8; i++) im.bytes[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(im.bytes + 8, header, n);
    if (ndata) memcpy(im.bytes + 8 + n, data, ndata);
    return im;
}

static const int64_t rank_shape[ST_MAX_DIMS] = {2, 3, 1, 2, 1, 2};

/* A deterministic value for element i of a tensor of dtype t that every
 * dtype represents exactly. */
static double value_at(st_dtype t, int64_t i)
{
    if (t == ST_U8) return (double)((i * 37 + 11) % 256);
    return (double)(i * 3 - 7) + (t == ST_F32 || t == ST_F64 ? 0.25 : 0);
}

static void test_round_trip_every_dtype_and_rank(void)
{
    tmpdir d;
    CHECK(tmpdir_make(&d) == 0);
    const char *path = tmpdir_file(&d, "all.safetensors");
    st_tensor *ts[ST_DTYPE_COUNT * (ST_MAX_DIMS + 1)];
    st_named_tensor named[ST_DTYPE_COUNT * (ST_MAX_DIMS + 1)];
    char names[ST_DTYPE_COUNT * (ST_MAX_DIMS + 1)][32];
    size_t n = 0;
    /* Reverse dtype order, so the file order differs from name order. */
    for (int dt = ST_DTYPE_COUNT - 1; dt >= 0; dt--)
        for (int r = 0; r <= ST_MAX_DIMS; r++) {
            CHECK_OK(st_tensor_new((st_dtype)dt, r, rank_shape, &ts[n]));
            for (int64_t i = 0; i < st_tensor_numel(ts[n]); i++) st_tensor_set_flat(ts[n], i, value_at((st_dtype)dt, i));
            snprintf(names[n], sizeof names[n], "%s.rank%d", st_dtype_name((st_dtype)dt), r);
            named[n] = (st_named_tensor){names[n], ts[n]};
            n++;
        }
    const char *meta[] = {"arch", "test", "note", "caf\xc3\xa9 \"quoted\""};
    CHECK_OK(st_safetensors_save(path, named, n, meta, 2));
    CHECK(tmpdir_count(&d) == 1);

    st_safetensors *f = NULL;
    CHECK_OK(st_safetensors_open(path, &f));
    if (!f) goto done;
    CHECK(st_safetensors_count(f) == n);
    CHECK(st_safetensors_metadata_count(f) == 2);
    CHECK(strcmp(st_safetensors_metadata_get(f, "note"), "caf\xc3\xa9 \"quoted\"") == 0);
    for (size_t k = 0; k < n; k++) {
        const st_safetensors_entry *e = st_safetensors_entry_at(f, k);
        CHECK(e && strcmp(e->name, names[k]) == 0); /* file order = given order */
        CHECK(st_safetensors_find(f, names[k]) == e);
        st_tensor *a = NULL, *b = NULL, *wide = NULL;
        CHECK_OK(st_safetensors_load(f, names[k], ts[k]->dtype, &a));
        CHECK_OK(st_safetensors_load(f, names[k], ts[k]->dtype, &b));
        CHECK_OK(st_safetensors_load(f, names[k], ST_F64, &wide));
        if (!a || !b || !wide) continue;
        CHECK(st_tensor_same_shape(a, ts[k]) && a->dtype == ts[k]->dtype);
        CHECK(a->ndim == (int)(k % (ST_MAX_DIMS + 1)));
        CHECK(memcmp(a->data, ts[k]->data, st_tensor_nbytes(a)) == 0);
        CHECK(a->data == b->data); /* both are views of the one mapping */
        for (int64_t i = 0; i < st_tensor_numel(wide); i++) CHECK(st_tensor_get_flat(wide, i) == value_at(ts[k]->dtype, i));
        st_tensor_free(a);
        st_tensor_free(b);
        st_tensor_free(wide);
    }
    /* A view outlives the file object (the mapping stays). */
    st_tensor *kept = NULL;
    CHECK_OK(st_safetensors_load(f, "f64.rank3", ST_F64, &kept));
    st_safetensors_close(f);
    for (int64_t i = 0; kept && i < st_tensor_numel(kept); i++) CHECK(st_tensor_get_flat(kept, i) == value_at(ST_F64, i));
    st_tensor_free(kept);
done:
    for (size_t k = 0; k < n; k++) st_tensor_free(ts[k]);
    tmpdir_remove(&d);
}

static void test_header_bytes_and_strided_save(void)
{
    tmpdir d;
    CHECK(tmpdir_make(&d) == 0);
    const char *path = tmpdir_file(&d, "t.safetensors");
    st_tensor *m = NULL, *mt = NULL, *b = NULL;
    CHECK_OK(st_tensor_arange(ST_F32, 0, 6, 1, &m));
    st_tensor *m23 = NULL;
    CHECK_OK(st_tensor_reshape(m, 2, (int64_t[]){2, 3}, &m23));
    CHECK_OK(st_tensor_transpose(m23, 0, 1, &mt)); /* [3,2]: 0 3 1 4 2 5 */
    CHECK_OK(st_tensor_full(ST_U8, 1, (int64_t[]){1}, 9, &b));
    st_named_tensor named[] = {{"w", mt}, {"b", b}};
    const char *meta[] = {"k", "vv"};
    CHECK_OK(st_safetensors_save(path, named, 2, meta, 1));
    /* Expected bytes, by hand: 137 bytes of JSON padded to 144. */
    const char *json = "{\"__metadata__\":{\"k\":\"vv\"},"
                       "\"w\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]},"
                       "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[24,25]}}";
    CHECK(strlen(json) == 137);
    uint8_t want[8 + 144 + 25];
    memset(want, 0, sizeof want);
    want[0] = 144;
    memcpy(want + 8, json, 137);
    memset(want + 8 + 137, ' ', 7);
    const float vals[] = {0, 3, 1, 4, 2, 5};
    memcpy(want + 152, vals, 24);
    want[176] = 9;
    char *got = NULL;
    size_t size = 0;
    CHECK_OK(st_file_read(path, &got, &size));
    CHECK(size == sizeof want && got && memcmp(got, want, sizeof want) == 0);
    free(got);
    st_tensor_free(m);
    st_tensor_free(m23);
    st_tensor_free(mt);
    st_tensor_free(b);
    tmpdir_remove(&d);
}

static void test_reads_hand_built_file(void)
{
    /* Entries out of offset order, a pretty header with trailing spaces,
     * an unaligned U8 block at the end, and a scalar. */
    uint8_t data[19];
    const double c = -1.5;
    const int32_t bvals[2] = {-5, 70000};
    memcpy(data, &c, 8);
    memcpy(data + 8, bvals, 8);
    data[16] = 1, data[17] = 2, data[18] = 255;
    image im = make_image("{ \"b\": {\"dtype\": \"I32\", \"shape\": [2], \"data_offsets\": [8, 16]},\n"
                          "  \"a\": {\"shape\": [3], \"data_offsets\": [16, 19], \"dtype\": \"U8\"},\n"
                          "  \"c\": {\"dtype\": \"F64\", \"shape\": [], \"data_offsets\": [0, 8]} }   ",
                          data, sizeof data);
    st_safetensors *f = NULL;
    CHECK_OK(st_safetensors_open_buffer(im.bytes, im.size, &f));
    memset(im.bytes, 0xee, im.size); /* the buffer may go away after open */
    free(im.bytes);
    if (!f) return;
    CHECK(st_safetensors_count(f) == 3 && st_safetensors_metadata_count(f) == 0);
    CHECK(strcmp(st_safetensors_entry_at(f, 1)->name, "a") == 0);
    const st_safetensors_entry *e = st_safetensors_find(f, "b");
    CHECK(e && e->dtype == ST_ST_I32 && e->ndim == 1 && e->shape[0] == 2 && e->begin == 8 && e->end == 16);
    st_tensor *t = NULL;
    CHECK_OK(st_safetensors_load(f, "b", ST_I64, &t));
    CHECK(t && t->dtype == ST_I64 && st_tensor_get_flat(t, 0) == -5 && st_tensor_get_flat(t, 1) == 70000);
    st_tensor_free(t);
    CHECK_OK(st_safetensors_load(f, "a", ST_U8, &t));
    CHECK(t && ((uint8_t *)t->data)[0] == 1 && ((uint8_t *)t->data)[2] == 255);
    st_tensor_free(t);
    CHECK_OK(st_safetensors_load(f, "a", ST_F32, &t));
    CHECK(t && st_f32(t)[2] == 255.0f);
    st_tensor_free(t);
    CHECK_OK(st_safetensors_load(f, "c", ST_I32, &t)); /* -1.5 truncates to -1 */
    CHECK(t && t->ndim == 0 && st_tensor_get_flat(t, 0) == -1);
    st_tensor_free(t);
    CHECK(st_safetensors_metadata_get(f, "x") == NULL);
    CHECK_FAILS(st_safetensors_load(f, "zz", ST_F32, &t), ST_EINVAL, "no tensor named 'zz'");
    CHECK_FAILS(st_safetensors_load(f, "a", ST_DTYPE_COUNT, &t), ST_EDTYPE, "invalid target dtype");
    st_safetensors_close(f);
    st_safetensors_close(NULL);
}

/* Textbook definitions, independent of the bit manipulation in the core. */
static double half_reference(uint16_t h)
{
    int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1.0 + m / 1024.0, e - 15);
    return sign ? -v : v;
}

static double bfloat_reference(uint16_t h)
{
    int sign = h >> 15, e = (h >> 7) & 255, m = h & 127;
    double v = e == 0 ? ldexp(m, -133) : e == 255 ? (m ? NAN : INFINITY) : ldexp(1.0 + m / 128.0, e - 127);
    return sign ? -v : v;
}

static void check_all_halves(const char *dtype, double (*ref)(uint16_t))
{
    uint16_t *all = malloc(65536 * 2);
    for (uint32_t i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    char header[128];
    snprintf(header, sizeof header, "{\"h\":{\"dtype\":\"%s\",\"shape\":[256,256],\"data_offsets\":[0,131072]}}", dtype);
    image im = make_image(header, all, 65536 * 2);
    st_safetensors *f = NULL;
    st_tensor *t = NULL, *d = NULL;
    CHECK_OK(st_safetensors_open_buffer(im.bytes, im.size, &f));
    if (f) CHECK_OK(st_safetensors_load(f, "h", ST_F32, &t));
    if (f) CHECK_OK(st_safetensors_load(f, "h", ST_F64, &d));
    int bad = 0;
    for (uint32_t i = 0; t && d && i < 65536; i++) {
        double want = ref((uint16_t)i), got = st_f32(t)[i], got64 = st_tensor_get_flat(d, i);
        bool ok = isnan(want) ? isnan(got) && isnan(got64) : got == want && got64 == want && signbit(got) == signbit(want);
        if (!ok && bad++ < 5) fprintf(stderr, "%s 0x%04x: got %.9g / %.9g, want %.9g\n", dtype, i, got, got64, want);
    }
    CHECK(t && d && bad == 0);
    st_tensor_free(t);
    st_tensor_free(d);
    st_safetensors_close(f);
    free(im.bytes);
    free(all);
}

static void test_half_precision_decoding(void)
{
    /* Hand-worked anchors first: 1, -2, smallest and largest subnormal,
     * smallest normal, largest finite, infinities, -0. */
    const uint16_t h[] = {0x3c00, 0xc000, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x8000, 0x7e00};
    const float want[] = {1.0f, -2.0f, 5.9604644775390625e-08f, 6.0975551605224609e-05f, 6.103515625e-05f, 65504.0f,
                          INFINITY, -INFINITY, -0.0f};
    image im = make_image("{\"h\":{\"dtype\":\"F16\",\"shape\":[10],\"data_offsets\":[0,20]}}", h, sizeof h);
    st_safetensors *f = NULL;
    st_tensor *t = NULL, *ti = NULL;
    CHECK_OK(st_safetensors_open_buffer(im.bytes, im.size, &f));
    if (f) CHECK_OK(st_safetensors_load(f, "h", ST_F32, &t));
    for (int i = 0; t && i < 9; i++) CHECK(st_f32(t)[i] == want[i] && signbit(st_f32(t)[i]) == signbit(want[i]));
    CHECK(t && isnan(st_f32(t)[9]));
    /* To integers: truncation, saturation for infinities, NaN becomes 0. */
    if (f) CHECK_OK(st_safetensors_load(f, "h", ST_I32, &ti));
    const double want_i[] = {1, -2, 0, 0, 0, 65504, 2147483647.0, -2147483648.0, 0, 0};
    for (int i = 0; ti && i < 10; i++) CHECK(st_tensor_get_flat(ti, i) == want_i[i]);
    st_tensor_free(t);
    st_tensor_free(ti);
    st_safetensors_close(f);
    free(im.bytes);

    /* bfloat16: 1, -123.5 (0xC2F7), smallest subnormal 2^-133, Inf, NaN. */
    const uint16_t b[] = {0x3f80, 0xc2f7, 0x0001, 0x7f80, 0x7fc0};
    im = make_image("{\"b\":{\"dtype\":\"BF16\",\"shape\":[5],\"data_offsets\":[0,10]}}", b, sizeof b);
    t = NULL;
    f = NULL;
    CHECK_OK(st_safetensors_open_buffer(im.bytes, im.size, &f));
    if (f) CHECK_OK(st_safetensors_load(f, "b", ST_F32, &t));
    CHECK(t && st_f32(t)[0] == 1.0f && st_f32(t)[1] == -123.5f && st_f32(t)[2] == ldexpf(1.0f, -133) &&
          isinf(st_f32(t)[3]) && isnan(st_f32(t)[4]));
    st_tensor_free(t);
    st_safetensors_close(f);
    free(im.bytes);

    check_all_halves("F16", half_reference);
    check_all_halves("BF16", bfloat_reference);
}

typedef struct {
    const char *header;
    size_t ndata;
    st_status status;
    const char *needle;
} bad_header;

static void test_validation_rules(void)
{
    static const bad_header cases[] = {
        {"{\"a\":", 0, ST_EFORMAT, "header: json: line 1, column 6: expected a value"},
        {"[]", 0, ST_EFORMAT, "header must be a JSON object, found array"},
        {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, ST_EFORMAT, "tensor 'a': 'dtype' is missing"},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, ST_EFORMAT, "tensor 'a': 'shape' is missing"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, ST_EFORMAT, "tensor 'a': 'data_offsets' is missing"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4, ST_EFORMAT,
         "tensor 'a': unknown key 'extra'"},
        {"{\"a\":[1]}", 0, ST_EFORMAT, "tensor 'a': object expected, found array"},
        {"{\"a\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, ST_EDTYPE,
         "tensor 'a': dtype 'F17' is not supported"},
        {"{\"a\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, ST_EDTYPE, "dtype 'BOOL' is not supported"},
        {"{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, ST_EDTYPE, "dtype 'f32' is not supported"},
        {"{\"a\":{\"dtype\":\"F32\\u0000\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, ST_EDTYPE, "is not supported"},
        {"{\"a\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, ST_EFORMAT, "'dtype' must be a string, found number"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", 4, ST_EFORMAT, "'shape' must be an array, found number"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, ST_EFORMAT, "tensor 'a': shape[0] is negative"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, ST_EFORMAT, "shape[0]: integer expected"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, ST_EFORMAT, "shape[0]: number expected, found string"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1, ST_ESHAPE,
         "shape has 7 dimensions, at most 6"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, ST_EFORMAT, "'data_offsets' must have 2 entries, found 3"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, ST_EFORMAT, "data_offsets [4, 0] begin after they end"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,-4]}}", 4, ST_EFORMAT, "data_offsets[1] is negative"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 4, ST_EFORMAT,
         "data_offsets [4, 8] reach past the data block of 4 bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551615]}}", 4, ST_EFORMAT,
         "data_offsets[1]: integer expected"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, ST_EFORMAT,
         "data_offsets [0, 8] hold 8 bytes but F32 [3] needs 12"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904],\"data_offsets\":[0,0]}}", 0,
         ST_ESHAPE, "tensor 'a': shape [4611686018427387904,4611686018427387904] is too large"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904,0],\"data_offsets\":[0,0]}}", 0,
         ST_ESHAPE, "is too large"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[536870912,536870912],\"data_offsets\":[0,0]}}", 0,
         ST_EFORMAT, "hold 0 bytes but F32 [536870912,536870912] needs 1152921504606846976"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
         "\"data_offsets\":[4,12]}}",
         12, ST_EFORMAT, "tensors 'a' [0, 8) and 'b' [4, 12) overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"e\":{\"dtype\":\"F32\",\"shape\":[0],"
         "\"data_offsets\":[4,4]}}",
         8, ST_EFORMAT, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],"
         "\"data_offsets\":[8,12]}}",
         12, ST_EFORMAT, "bytes [4, 8) of the data block belong to no tensor (before 'b')"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 16, ST_EFORMAT,
         "bytes [4, 16) at the end of the data block belong to no tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
         "\"data_offsets\":[4,8]}}",
         8, ST_EFORMAT, "duplicate key 'a'"},
        {"{\"__metadata__\":{\"depth\":56}}", 0, ST_EFORMAT, "'__metadata__' value of 'depth' is a number; only strings"},
        {"{\"__metadata__\":[\"a\"]}", 0, ST_EFORMAT, "'__metadata__' must be an object of strings, found array"},
        {"{\"__metadata__\":{\"k\":\"a\\u0000b\"}}", 0, ST_EFORMAT, "'__metadata__' entry 'k' contains a NUL"},
        {"{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0, ST_EFORMAT,
         "tensor name 'a' contains a NUL character"},
    };
    uint8_t zeros[16] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        image im = make_image(cases[i].header, zeros, cases[i].ndata);
        st_safetensors *f = NULL;
        st_status s = st_safetensors_open_buffer(im.bytes, im.size, &f);
        if (s != cases[i].status || !strstr(st_error_message(), cases[i].needle) ||
            strncmp(st_error_message(), "safetensors: ", 13) != 0) {
            fprintf(stderr, "case %zu: got %s '%s', wanted %s with '%s'\n", i, st_status_name(s), st_error_message(),
                    st_status_name(cases[i].status), cases[i].needle);
            testing_failures_in_test++;
        }
        CHECK(f == NULL);
        free(im.bytes);
    }
}

static void test_header_length_field(void)
{
    st_safetensors *f = NULL;
    uint8_t small[7] = {0};
    CHECK_FAILS(st_safetensors_open_buffer(small, 7, &f), ST_EFORMAT, "file is 7 bytes; at least 8 are needed");
    CHECK_FAILS(st_safetensors_open_buffer(NULL, 0, &f), ST_EFORMAT, "file is 0 bytes");
    image im = make_image("{}", NULL, 0);
    CHECK_OK(st_safetensors_open_buffer(im.bytes, im.size, &f)); /* empty but valid */
    CHECK(f && st_safetensors_count(f) == 0);
    st_safetensors_close(f);
    f = NULL;
    im.bytes[0] = 3;
    CHECK_FAILS(st_safetensors_open_buffer(im.bytes, im.size, &f), ST_EFORMAT,
                "header length 3 exceeds the 2 bytes after the length field");
    im.bytes[0] = 0;
    im.bytes[4] = 1; /* 2^32 */
    CHECK_FAILS(st_safetensors_open_buffer(im.bytes, im.size, &f), ST_EFORMAT,
                "header length 4294967296 exceeds the limit of 100000000 bytes");
    memset(im.bytes, 0xff, 8);
    CHECK_FAILS(st_safetensors_open_buffer(im.bytes, im.size, &f), ST_EFORMAT, "exceeds the limit");
    memset(im.bytes, 0, 8);
    CHECK_FAILS(st_safetensors_open_buffer(im.bytes, im.size, &f), ST_EFORMAT, "expected a value, found the end");
    CHECK(f == NULL);
    free(im.bytes);
}

static void test_truncation_and_length_corruption(void)
{
    tmpdir d;
    CHECK(tmpdir_make(&d) == 0);
    const char *path = tmpdir_file(&d, "small.safetensors");
    st_tensor *a = NULL, *b = NULL;
    CHECK_OK(st_tensor_arange(ST_F32, 0, 5, 1, &a));
    CHECK_OK(st_tensor_arange(ST_I64, 0, 3, 1, &b));
    st_named_tensor named[] = {{"a", a}, {"b", b}};
    const char *meta[] = {"arch", "tiny"};
    CHECK_OK(st_safetensors_save(path, named, 2, meta, 1));
    char *bytes = NULL;
    size_t size = 0;
    CHECK_OK(st_file_read(path, &bytes, &size));
    st_safetensors *f = NULL;
    CHECK_OK(st_safetensors_open_buffer(bytes, size, &f));
    st_safetensors_close(f);
    /* Every proper prefix is rejected with a format error (the exact copy
     * makes ASan see any read past its end). */
    int wrong = 0;
    for (size_t k = 0; k < size; k++) {
        uint8_t *prefix = malloc(k ? k : 1);
        memcpy(prefix, bytes, k);
        f = NULL;
        st_status s = st_safetensors_open_buffer(prefix, k, &f);
        if (s != ST_EFORMAT || f || strncmp(st_error_message(), "safetensors: ", 13) != 0) {
            if (wrong++ < 3) fprintf(stderr, "prefix of %zu bytes: %s '%s'\n", k, st_status_name(s), st_error_message());
            st_safetensors_close(f);
        }
        free(prefix);
    }
    CHECK(wrong == 0);
    /* Every other header length is rejected too. */
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | (uint8_t)bytes[i];
    const uint64_t alt[] = {0, 1, n - 8, n - 1, n + 1, n + 8, size - 8, size};
    for (size_t i = 0; i < sizeof alt / sizeof alt[0]; i++) {
        for (int j = 0; j < 8; j++) bytes[j] = (char)(alt[i] >> (8 * j));
        f = NULL;
        CHECK(st_safetensors_open_buffer(bytes, size, &f) == ST_EFORMAT && f == NULL);
    }
    free(bytes);
    st_tensor_free(a);
    st_tensor_free(b);
    tmpdir_remove(&d);
}

static void test_save_rejects_bad_arguments(void)
{
    tmpdir d;
    CHECK(tmpdir_make(&d) == 0);
    const char *path = tmpdir_file(&d, "x.safetensors");
    st_tensor *a = NULL;
    CHECK_OK(st_tensor_arange(ST_F32, 0, 2, 1, &a));
    st_named_tensor dup[] = {{"w", a}, {"v", a}, {"w", a}};
    CHECK_FAILS(st_safetensors_save(path, dup, 3, NULL, 0), ST_EINVAL, "duplicate tensor name 'w'");
    st_named_tensor reserved[] = {{"__metadata__", a}};
    CHECK_FAILS(st_safetensors_save(path, reserved, 1, NULL, 0), ST_EINVAL, "'__metadata__' is reserved");
    st_named_tensor unnamed[] = {{"", a}};
    CHECK_FAILS(st_safetensors_save(path, unnamed, 1, NULL, 0), ST_EINVAL, "tensor 0 has no name");
    st_named_tensor null_tensor[] = {{"w", NULL}};
    CHECK_FAILS(st_safetensors_save(path, null_tensor, 1, NULL, 0), ST_EINVAL, "tensor 'w' is NULL");
    st_named_tensor ok[] = {{"w", a}};
    const char *dup_meta[] = {"k", "1", "k", "2"};
    CHECK_FAILS(st_safetensors_save(path, ok, 1, dup_meta, 2), ST_EINVAL, "duplicate metadata key 'k'");
    const char *null_meta[] = {"k", NULL};
    CHECK_FAILS(st_safetensors_save(path, ok, 1, null_meta, 1), ST_EINVAL, "metadata value 0 is NULL");
    st_named_tensor bad_utf8[] = {{"w\xff", a}};
    CHECK_FAILS(st_safetensors_save(path, bad_utf8, 1, NULL, 0), ST_EINVAL, "invalid UTF-8 byte 0xff");
    CHECK(tmpdir_count(&d) == 0);
    CHECK_FAILS(st_safetensors_save(tmpdir_file(&d, "no/such/dir.safetensors"), ok, 1, NULL, 0), ST_EIO, "no/such/dir");
    st_safetensors *f = NULL;
    CHECK_FAILS(st_safetensors_open(tmpdir_file(&d, "absent.safetensors"), &f), ST_EIO, "absent.safetensors");
    /* Saving over an existing file replaces it. */
    CHECK_OK(st_safetensors_save(path, ok, 1, NULL, 0));
    st_named_tensor two[] = {{"p", a}, {"q", a}};
    CHECK_OK(st_safetensors_save(path, two, 2, NULL, 0));
    CHECK_OK(st_safetensors_open(path, &f));
    CHECK(f && st_safetensors_count(f) == 2 && st_safetensors_find(f, "w") == NULL);
    st_safetensors_close(f);
    CHECK(tmpdir_count(&d) == 1);
    st_tensor_free(a);
    tmpdir_remove(&d);
}

/* The converted ResNet-56 from datasets/ (see its SOURCES.md). Expected
 * values were read from the file with NumPy, independently of Strata. */
static void test_resnet56_weights(void)
{
    const char *data = getenv("STRATA_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/resnet-cifar10-weights/resnet56.safetensors", data ? data : "datasets");
    if (access(path, R_OK) != 0) {
        printf("SKIP test_resnet56_weights: %s not found (set STRATA_DATA to the datasets directory)\n", path);
        return;
    }
    st_safetensors *f = NULL;
    CHECK_OK(st_safetensors_open(path, &f));
    if (!f) return;
    CHECK(st_safetensors_count(f) == 277);
    CHECK(st_safetensors_metadata_count(f) == 13);
    CHECK(strcmp(st_safetensors_metadata_get(f, "arch"), "resnet56") == 0);
    CHECK(strcmp(st_safetensors_metadata_get(f, "depth"), "56") == 0);
    CHECK(strcmp(st_safetensors_metadata_get(f, "mean"), "0.485,0.456,0.406") == 0);
    CHECK(strcmp(st_safetensors_metadata_get(f, "std"), "0.229,0.224,0.225") == 0);
    int64_t total = 0;
    for (size_t i = 0; i < st_safetensors_count(f); i++) {
        const st_safetensors_entry *e = st_safetensors_entry_at(f, i);
        CHECK(e->dtype == ST_ST_F32);
        int64_t n = 1;
        for (int k = 0; k < e->ndim; k++) n *= e->shape[k];
        total += n;
    }
    CHECK(total == 857082);
    const st_safetensors_entry *c1 = st_safetensors_find(f, "conv1.weight");
    CHECK(c1 && c1->ndim == 4 && c1->shape[0] == 16 && c1->shape[1] == 3 && c1->shape[2] == 3 && c1->shape[3] == 3);
    st_tensor *w = NULL, *bias = NULL, *var = NULL;
    CHECK_OK(st_safetensors_load(f, "conv1.weight", ST_F32, &w));
    CHECK(w && st_f32(w)[0] == -0.21604876f && st_f32(w)[431] == -0.032366842f);
    CHECK_OK(st_safetensors_load(f, "linear.bias", ST_F32, &bias));
    const float want[10] = {0.13465537f, -0.24308707f, 0.104102604f, 0.106699705f, 0.12867016f,
                            0.059902735f, 0.14495617f, -0.23406799f, 0.068797864f, -0.27211186f};
    for (int i = 0; bias && i < 10; i++) CHECK(st_f32(bias)[i] == want[i]);
    CHECK_OK(st_safetensors_load(f, "layer3.8.bn2.running_var", ST_F64, &var));
    double sum = 0;
    for (int64_t i = 0; var && i < st_tensor_numel(var); i++) sum += st_tensor_get_flat(var, i);
    CHECK_CLOSE(sum, 5.937074355548248, 1e-12, 0);
    st_tensor_free(w);
    st_tensor_free(bias);
    st_tensor_free(var);
    st_safetensors_close(f);
}

int main(void)
{
    RUN(test_round_trip_every_dtype_and_rank);
    RUN(test_header_bytes_and_strided_save);
    RUN(test_reads_hand_built_file);
    RUN(test_half_precision_decoding);
    RUN(test_validation_rules);
    RUN(test_header_length_field);
    RUN(test_truncation_and_length_corruption);
    RUN(test_save_rejects_bad_arguments);
    RUN(test_resnet56_weights);
    return TEST_SUMMARY();
}
