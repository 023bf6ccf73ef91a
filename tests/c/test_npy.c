/* .npy: files written by NumPy load with the right values, files written
 * by Strata are byte-identical to NumPy's, every dtype and rank round-trips
 * (load, map, strided save, streaming writer), and malformed or
 * unsupported files are rejected with a message naming the problem. */
#include "tmpdir.h"

#include <stdint.h>
#include <stdlib.h>
#include "strata/fileio.h"
#include "strata/npy.h"
#include "testing.h"

static const char *fixture(const char *name)
{
    static char path[1024];
    const char *dir = getenv("STRATA_FIXTURES");
    snprintf(path, sizeof path, "%s/io/%s", dir ? dir : "tests/fixtures", name);
    return path;
}

/* The arrays of make_io_fixtures.py, rebuilt here from the same formulas. */
typedef struct {
    const char *file;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
} numpy_case;

static const numpy_case numpy_cases[] = {
    {"f4_2x3.npy", ST_F32, 2, {2, 3}},
    {"f8_scalar.npy", ST_F64, 0, {0}},
    {"i4_5.npy", ST_I32, 1, {5}},
    {"i8_2x1x3.npy", ST_I64, 3, {2, 1, 3}},
    {"u1_4x4.npy", ST_U8, 2, {4, 4}},
    {"u1_0x3.npy", ST_U8, 2, {0, 3}},
    {"f4_rank6.npy", ST_F32, 6, {1, 2, 1, 2, 1, 2}},
};

static double numpy_value(const char *file, int64_t i)
{
    if (strcmp(file, "f4_2x3.npy") == 0) return (double)i * 0.5 - 1;
    if (strcmp(file, "f8_scalar.npy") == 0) return -2.25;
    if (strcmp(file, "i4_5.npy") == 0) return (double)i - 2;
    if (strcmp(file, "i8_2x1x3.npy") == 0) return (double)i * -1099511627776.0; /* -(2^40) */
    if (strcmp(file, "u1_4x4.npy") == 0) return (double)i * 17;
    return (double)i; /* f4_rank6: arange */
}

static st_tensor *build_numpy_case(const numpy_case *c)
{
    st_tensor *t = NULL;
    CHECK_OK(st_tensor_new(c->dtype, c->ndim, c->shape, &t));
    for (int64_t i = 0; t && i < st_tensor_numel(t); i++) st_tensor_set_flat(t, i, numpy_value(c->file, i));
    return t;
}

static bool same_tensor(const st_tensor *a, const st_tensor *b)
{
    if (!a || !b || a->dtype != b->dtype || !st_tensor_same_shape(a, b)) return false;
    for (int64_t i = 0; i < st_tensor_numel(a); i++)
        if (st_tensor_get_flat(a, i) != st_tensor_get_flat(b, i)) return false;
    return true;
}

static void test_numpy_files_load(void)
{
    for (size_t k = 0; k < sizeof numpy_cases / sizeof numpy_cases[0]; k++) {
        const numpy_case *c = &numpy_cases[k];
        st_tensor *want = build_numpy_case(c), *loaded = NULL, *mapped = NULL;
        CHECK_OK(st_npy_load(fixture(c->file), &loaded));
        CHECK_OK(st_npy_map(fixture(c->file), &mapped));
        if (!same_tensor(loaded, want) || !same_tensor(mapped, want)) {
            fprintf(stderr, "%s does not hold the expected array\n", c->file);
            testing_failures_in_test++;
        }
        st_tensor_free(want);
        st_tensor_free(loaded);
        st_tensor_free(mapped);
    }
}

static void test_strata_writes_numpys_bytes(void)
{
    tmpdir d;
    CHECK(tmpdir_make(&d) == 0);
    for (size_t k = 0; k < sizeof numpy_cases / sizeof numpy_cases[0]; k++) {
        const numpy_case *c = &numpy_cases[k];
        st_tensor *t = build_numpy_case(c);
        const char *path = tmpdir_file(&d, c->file);
        CHECK_OK(st_npy_save(path, t));
        char *ours = NULL, *theirs = NULL;
        size_t n_ours = 0, n_theirs = 0;
        CHECK_OK(st_file_read(path, &ours, &n_ours));
        CHECK_OK(st_file_read(fixture(c->file), &theirs, &n_theirs));
        if (!ours || !theirs || n_ours != n_theirs || memcmp(ours, theirs, n_ours) != 0) {
            fprintf(stderr, "%s: Strata wrote %zu bytes, NumPy %zu, or they differ:\n  %.*s\n  %.*s\n", c->file, n_ours,
                    n_theirs, (int)(n_ours < 128 ? n_ours : 128), ours ? ours + 10 : "",
                    (int)(n_theirs < 128 ? n_theirs : 128), theirs ? theirs + 10 : "");
            testing_failures_in_test++;
        }
        /* The data starts at a multiple of 64, as NumPy aligns it. */
        size_t data_start = n_ours - st_tensor_nbytes(t);
        CHECK(data_start % 64 == 0 && ours && ours[data_start - 1] == '\n');
        free(ours);
        free(theirs);
        st_tensor_free(t);
    }
    CHECK(tmpdir_count(&d) == (int)(sizeof numpy_cases / sizeof numpy_cases[0]));
    tmpdir_remove(&d);
}

static void test_other_versions_and_old_alignment(void)
{
    const char *files[] = {"f4_v2.npy", "f4_v3.npy"};
    for (int k = 0; k < 2; k++) {
        st_tensor *t = NULL;
        CHECK_OK(st_npy_map(fixture(files[k]), &t));
        CHECK(t && t->dtype == ST_F32 && t->ndim == 1 && t->shape[0] == 3);
        for (int i = 0; t && i < 3; i++) CHECK(st_f32(t)[i] == (float)i);
        st_tensor_free(t);
    }
    st_tensor *t = NULL;
    CHECK_OK(st_npy_load(fixture("i4_old_align16.npy"), &t));
    CHECK(t && t->dtype == ST_I32 && t->shape[0] == 3 && st_tensor_get_flat(t, 0) == 7 && st_tensor_get_flat(t, 2) == 9);
    st_tensor_free(t);
}

static void test_numpy_files_rejected_with_reasons(void)
{
    static const struct {
        const char *file;
        st_status status;
        const char *needle;
    } cases[] = {
        {"reject_fortran.npy", ST_EFORMAT, "Fortran-order arrays are not supported"},
        {"reject_big_endian.npy", ST_EDTYPE, "big-endian dtype '>f4' is not supported"},
        {"reject_complex.npy", ST_EDTYPE, "dtype '<c8' is not supported"},
        {"reject_bool.npy", ST_EDTYPE, "dtype '|b1' is not supported"},
        {"reject_float16.npy", ST_EDTYPE, "dtype '<f2' is not supported"},
        {"reject_structured.npy", ST_EDTYPE, "structured dtypes"},
        {"reject_object.npy", ST_EDTYPE, "object arrays ('|O') are not supported"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_tensor *t = NULL;
        st_status s = st_npy_load(fixture(cases[i].file), &t);
        if (s != cases[i].status || !strstr(st_error_message(), cases[i].needle) ||
            !strstr(st_error_message(), cases[i].file)) {
            fprintf(stderr, "%s: got %s '%s', wanted %s with '%s'\n", cases[i].file, st_status_name(s), st_error_message(),
                    st_status_name(cases[i].status), cases[i].needle);
            testing_failures_in_test++;
        }
        CHECK(t == NULL);
        CHECK(st_npy_map(fixture(cases[i].file), &t) == cases[i].status && t == NULL);
    }
}

static const int64_t rank_shape[ST_MAX_DIMS] = {3, 2, 1, 2, 1, 2};

static void test_round_trip_every_dtype_and_rank(void)
{
    tmpdir d;
    CHECK(tmpdir_make(&d) == 0);
    const char *path = tmpdir_file(&d, "a.npy");
    for (int dt = 0; dt < ST_DTYPE_COUNT; dt++)
        for (int r = 0; r <= ST_MAX_DIMS; r++) {
            st_tensor *t = NULL, *l = NULL, *m = NULL, *b = NULL;
            CHECK_OK(st_tensor_new((st_dtype)dt, r, rank_shape, &t));
            for (int64_t i = 0; t && i < st_tensor_numel(t); i++) st_tensor_set_flat(t, i, (double)((i * 7 + 3) % 200));
            CHECK_OK(st_npy_save(path, t));
            CHECK_OK(st_npy_load(path, &l));
            CHECK_OK(st_npy_map(path, &m));
            char *bytes = NULL;
            size_t n = 0;
            CHECK_OK(st_file_read(path, &bytes, &n));
            CHECK_OK(st_npy_load_buffer(bytes, n, &b));
            CHECK(same_tensor(l, t) && same_tensor(m, t) && same_tensor(b, t));
            free(bytes);
            st_tensor_free(t);
            st_tensor_free(l);
            st_tensor_free(m);
            st_tensor_free(b);
        }
    CHECK(tmpdir_count(&d) == 1);
    tmpdir_remove(&d);
}

static void test_strided_save(void)
{
    tmpdir d;
    CHECK(tmpdir_make(&d) == 0);
    const char *path = tmpdir_file(&d, "t.npy");
    st_tensor *a = NULL, *m = NULL, *t = NULL, *s = NULL, *l = NULL;
    CHECK_OK(st_tensor_arange(ST_I64, 0, 24, 1, &a));
    CHECK_OK(st_tensor_reshape(a, 3, (int64_t[]){2, 3, 4}, &m));
    CHECK_OK(st_tensor_permute(m, (int[]){2, 0, 1}, &t)); /* [4,2,3], t[i,j,k] = m[j,k,i] */
    CHECK_OK(st_tensor_slice(t, 0, 1, 4, 2, &s));           /* [2,2,3], rows 1 and 3 */
    CHECK_OK(st_npy_save(path, s));
    CHECK_OK(st_npy_load(path, &l));
    CHECK(l && l->ndim == 3 && l->shape[0] == 2 && l->shape[1] == 2 && l->shape[2] == 3);
    for (int i = 0; l && i < 2; i++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 3; k++) CHECK(st_tensor_get_flat(l, (i * 2 + j) * 3 + k) == j * 12 + k * 4 + (2 * i + 1));
    st_tensor_free(a);
    st_tensor_free(m);
    st_tensor_free(t);
    st_tensor_free(s);
    st_tensor_free(l);
    tmpdir_remove(&d);
}

/* A version-v file with the given dict text (no padding) and data. */
static size_t make_npy(uint8_t *out, int version, const char *dict, const void *data, size_t ndata)
{
    size_t n = strlen(dict), pre = version == 1 ? 10 : 12;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (uint8_t)version;
    out[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) out[8 + i] = (uint8_t)(n >> (8 * i));
    memcpy(out + pre, dict, n);
    if (ndata) memcpy(out + pre + n, data, ndata);
    return pre + n + ndata;
}

static void test_header_dict_is_parsed_strictly(void)
{
    static const struct {
        const char *dict;
        size_t ndata;
        st_status status;
        const char *needle;
    } cases[] = {
        /* accepted spellings (status ST_OK) */
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n", 12, ST_OK, ""},
        {"{\"shape\":(3,),\"descr\":\"<f4\",\"fortran_order\":False}", 12, ST_OK, ""},
        {"{ 'descr' : '<u1' , 'fortran_order' : False , 'shape' : ( 2 , 2 , ) }  \n", 4, ST_OK, ""},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", 0, ST_OK, ""},
        /* rejected */
        {"", 0, ST_EFORMAT, "expected '{', found the end of the header"},
        {"['descr']", 0, ST_EFORMAT, "expected '{', found '['"},
        {"{'descr': '<f4', 'fortran_order': False}", 0, ST_EFORMAT, "'shape' is missing"},
        {"{'fortran_order': False, 'shape': ()}", 4, ST_EFORMAT, "'descr' is missing"},
        {"{'descr': '<f4', 'shape': ()}", 4, ST_EFORMAT, "'fortran_order' is missing"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}", 4, ST_EFORMAT, "unknown key 'x'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}", 4, ST_EFORMAT, "key 'descr' appears twice"},
        {"{descr: '<f4', 'fortran_order': False, 'shape': ()}", 4, ST_EFORMAT, "expected a quoted string, found 'd'"},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': ()}", 4, ST_EFORMAT, "expected ':' after a key"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': ()}", 4, ST_EFORMAT, "expected ',' or '}' in the dict"},
        {"{'descr': '<f4, 'fortran_order': False, 'shape': ()}", 4, ST_EDTYPE, "dtype '<f4, ' is not supported"},
        {"{'descr': '<f\\x34', 'fortran_order': False, 'shape': ()}", 4, ST_EFORMAT, "escape sequences"},
        {"{'descr': '<f4", 0, ST_EFORMAT, "unterminated string"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': ()}", 4, ST_EFORMAT, "True or False"},
        {"{'descr': '<f4', 'fortran_order': false, 'shape': ()}", 4, ST_EFORMAT, "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3)}", 12, ST_EFORMAT, "'shape' is (3), an int"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [3]}", 12, ST_EFORMAT, "expected a tuple '(' for 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-3,)}", 0, ST_EFORMAT, "negative size"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (03,)}", 12, ST_EFORMAT, "leading zero"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3.0,)}", 12, ST_EFORMAT, "expected ',' or ')' in 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (,)}", 0, ST_EFORMAT, "expected a size in 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", 0, ST_EFORMAT, "exceeds int64"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1)}", 4, ST_ESHAPE, "more than 6 dimensions"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} x", 12, ST_EFORMAT, "only padding after the dict"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}\n\x01", 12, ST_EFORMAT, "only padding"},
        {"{'descr': '=f4', 'fortran_order': False, 'shape': (3,)}", 12, ST_EDTYPE, "dtype '=f4' is not supported"},
        {"{'descr': 'f4', 'fortran_order': False, 'shape': (3,)}", 12, ST_EDTYPE, "dtype 'f4' is not supported"},
        {"{'descr': '>i8', 'fortran_order': False, 'shape': (3,)}", 24, ST_EDTYPE, "big-endian dtype '>i8'"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,)}", 12, ST_EDTYPE, "structured dtypes"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", 8, ST_EFORMAT, "file has 8 data bytes but <f4 [3] needs 12"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", 16, ST_EFORMAT, "file has 16 data bytes but <f4 [3] needs 12"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4)}", 0, ST_ESHAPE,
         "shape [4611686018427387904,4] is too large"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4, 0)}", 0, ST_ESHAPE, "too large"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4611686018427387904)}", 0, ST_ESHAPE, "too large"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (536870912, 536870912)}", 0, ST_EFORMAT,
         "needs 2305843009213693952"},
    };
    uint8_t data[32] = {0}, buf[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = make_npy(buf, 1, cases[i].dict, data, cases[i].ndata);
        st_tensor *t = NULL;
        st_status s = st_npy_load_buffer(buf, n, &t);
        bool ok = s == cases[i].status && (s == ST_OK || (strstr(st_error_message(), cases[i].needle) &&
                                                         strncmp(st_error_message(), "npy: ", 5) == 0));
        if (!ok) {
            fprintf(stderr, "case %zu %s: got %s '%s', wanted %s with '%s'\n", i, cases[i].dict, st_status_name(s),
                    st_error_message(), st_status_name(cases[i].status), cases[i].needle);
            testing_failures_in_test++;
        }
        CHECK((s == ST_OK) == (t != NULL));
        st_tensor_free(t);
    }
}

static void test_prefix_and_versions(void)
{
    uint8_t buf[256];
    const float vals[3] = {1, 2, 3};
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
    st_tensor *t = NULL;
    size_t n = make_npy(buf, 2, dict, vals, 12);
    CHECK_OK(st_npy_load_buffer(buf, n, &t));
    CHECK(t && st_f32(t)[2] == 3.0f);
    st_tensor_free(t);
    t = NULL;
    buf[6] = 4;
    CHECK_FAILS(st_npy_load_buffer(buf, n, &t), ST_EFORMAT, "format version 4.0 is not supported");
    buf[6] = 1;
    buf[7] = 1;
    CHECK_FAILS(st_npy_load_buffer(buf, n, &t), ST_EFORMAT, "format version 1.1 is not supported");
    n = make_npy(buf, 1, dict, vals, 12);
    buf[0] = 'x';
    CHECK_FAILS(st_npy_load_buffer(buf, n, &t), ST_EFORMAT, "npy: not an .npy file");
    buf[0] = 0x93;
    buf[8] = 0xff;
    CHECK_FAILS(st_npy_load_buffer(buf, n, &t), ST_EFORMAT, "header length 255 exceeds the");
    n = make_npy(buf, 2, dict, vals, 12);
    buf[11] = 0x80;
    CHECK_FAILS(st_npy_load_buffer(buf, n, &t), ST_EFORMAT, "header length 2147483705 exceeds the");
    CHECK_FAILS(st_npy_load_buffer(buf, 11, &t), ST_EFORMAT, "file of 11 bytes ends inside the header length");
    CHECK_FAILS(st_npy_load_buffer(buf, 0, &t), ST_EFORMAT, "not an .npy file");
    CHECK(t == NULL);

    /* Every proper prefix of a valid file fails with a format error. */
    n = make_npy(buf, 1, dict, vals, 12);
    int wrong = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t *prefix = malloc(k ? k : 1);
        memcpy(prefix, buf, k);
        st_status s = st_npy_load_buffer(prefix, k, &t);
        if (s != ST_EFORMAT || t || strncmp(st_error_message(), "npy: ", 5) != 0) {
            if (wrong++ < 3) fprintf(stderr, "prefix %zu: %s '%s'\n", k, st_status_name(s), st_error_message());
            st_tensor_free(t);
            t = NULL;
        }
        free(prefix);
    }
    CHECK(wrong == 0);
}

static void test_map_of_unaligned_data_and_private_writes(void)
{
    tmpdir d;
    CHECK(tmpdir_make(&d) == 0);
    /* A header of odd length puts the f4 data at byte 75. */
    uint8_t buf[256];
    const float vals[3] = {1, 2, 3};
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }        ";
    size_t n = make_npy(buf, 1, dict, vals, 12);
    const char *odd = tmpdir_file(&d, "odd.npy");
    CHECK_OK(st_file_write_atomic(odd, buf, n));
    st_tensor *t = NULL;
    CHECK_FAILS(st_npy_map(odd, &t), ST_EFORMAT, "data starts at byte 75, not aligned for <f4");
    CHECK_OK(st_npy_load(odd, &t));
    CHECK(t && st_f32(t)[1] == 2.0f);
    st_tensor_free(t);

    /* Writing into a mapped tensor never reaches the file. */
    const char *path = tmpdir_file(&d, "m.npy");
    st_tensor *a = NULL, *m = NULL, *again = NULL;
    CHECK_OK(st_tensor_arange(ST_F64, 0, 10, 1, &a));
    CHECK_OK(st_npy_save(path, a));
    CHECK_OK(st_npy_map(path, &m));
    if (m) st_tensor_fill(m, -1);
    CHECK_OK(st_npy_load(path, &again));
    CHECK(same_tensor(again, a));
    st_tensor_free(a);
    st_tensor_free(m);
    st_tensor_free(again);
    CHECK_FAILS(st_npy_load(tmpdir_file(&d, "absent.npy"), &t), ST_EIO, "absent.npy");
    CHECK_FAILS(st_npy_map(d.path, &t), ST_EIO, "is not a regular file");
    tmpdir_remove(&d);
}

static long resident_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void test_streaming_writer_and_large_map(void)
{
    tmpdir d;
    CHECK(tmpdir_make(&d) == 0);
    const char *path = tmpdir_file(&d, "big.npy"), *ref = tmpdir_file(&d, "ref.npy");
    /* 4096 x 1024 float32 = 16 MB, streamed in batches of varying size,
     * some of them non-contiguous (transposed), plus single rows. */
    const int64_t rows = 4096, cols = 1024, shape[2] = {rows, cols};
    st_npy_writer *w = NULL;
    CHECK_OK(st_npy_writer_open(path, ST_F32, 2, shape, &w));
    if (!w) return;
    int64_t r = 0, step = 1;
    while (r < rows) {
        int64_t k = step < rows - r ? step : rows - r;
        st_tensor *batch = NULL, *tr = NULL, *src = NULL;
        CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){cols, k}, &tr)); /* filled transposed */
        for (int64_t j = 0; j < cols; j++)
            for (int64_t i = 0; i < k; i++) st_f32(tr)[j * k + i] = (float)((r + i) * 3 + j % 7);
        CHECK_OK(st_tensor_transpose(tr, 0, 1, &batch));
        if (k == 1) CHECK_OK(st_tensor_select(batch, 0, 0, &src)); /* a single row [cols] */
        CHECK_OK(st_npy_writer_append(w, src ? src : batch));
        st_tensor_free(src);
        st_tensor_free(batch);
        st_tensor_free(tr);
        r += k;
        step = step * 3 % 257 + 1;
    }
    CHECK(tmpdir_count(&d) == 1); /* only the temporary file so far */
    CHECK_OK(st_npy_writer_close(w));

    st_tensor *full = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 2, shape, &full));
    for (int64_t i = 0; full && i < rows; i++)
        for (int64_t j = 0; j < cols; j++) st_f32(full)[i * cols + j] = (float)(i * 3 + j % 7);
    CHECK_OK(st_npy_save(ref, full));
    char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    CHECK_OK(st_file_read(path, &a, &na));
    CHECK_OK(st_file_read(ref, &b, &nb));
    CHECK(a && b && na == nb && memcmp(a, b, na) == 0);
    free(a);
    free(b);
    st_tensor_free(full);

    /* Mapping the 16 MB file and reading a few elements touches only a
     * few pages: resident memory grows by far less than the file. */
    long before = resident_kb();
    st_tensor *m = NULL;
    CHECK_OK(st_npy_map(path, &m));
    CHECK(m && m->shape[0] == rows && st_f32(m)[0] == 0.0f && st_f32(m)[rows * cols - 1] == (float)((rows - 1) * 3 + 1023 % 7));
    long grown = resident_kb() - before;
    if (grown > 4096) {
        fprintf(stderr, "mapping grew resident memory by %ld kB\n", grown);
        testing_failures_in_test++;
    }
    st_tensor_free(m);
    tmpdir_remove(&d);
}

static void test_streaming_writer_errors(void)
{
    tmpdir d;
    CHECK(tmpdir_make(&d) == 0);
    const char *path = tmpdir_file(&d, "w.npy");
    st_npy_writer *w = NULL;
    st_tensor *ok = NULL, *i32 = NULL, *wide = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){2, 3}, &ok));
    CHECK_OK(st_tensor_new(ST_I32, 2, (int64_t[]){2, 3}, &i32));
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){2, 4}, &wide));
    CHECK_FAILS(st_npy_writer_open(path, ST_F32, 0, NULL, &w), ST_ESHAPE, "0 dimensions given; 1 to 6");
    CHECK_FAILS(st_npy_writer_open(path, ST_F32, 2, (int64_t[]){-1, 3}, &w), ST_ESHAPE, "negative size in shape [-1,3]");
    CHECK_FAILS(st_npy_writer_open(path, ST_DTYPE_COUNT, 1, (int64_t[]){1}, &w), ST_EDTYPE, "invalid dtype");
    CHECK_FAILS(st_npy_writer_open(tmpdir_file(&d, "no/dir.npy"), ST_F32, 1, (int64_t[]){1}, &w), ST_EIO, "no/dir.npy");
    CHECK(w == NULL);

    CHECK_OK(st_npy_writer_open(path, ST_F32, 2, (int64_t[]){5, 3}, &w));
    CHECK_FAILS(st_npy_writer_append(w, i32), ST_EDTYPE, "rows of dtype i32 given to a f32 array");
    CHECK_FAILS(st_npy_writer_append(w, wide), ST_ESHAPE, "rows [2,4] do not fit an array [5,3] (rows must be [-1,3]");
    CHECK_OK(st_npy_writer_append(w, ok));
    CHECK_OK(st_npy_writer_append(w, ok));
    CHECK_FAILS(st_npy_writer_append(w, ok), ST_ESHAPE, "2 more rows would exceed the declared 5 (4 written)");
    CHECK_FAILS(st_npy_writer_close(w), ST_ESTATE, "closed after 4 of 5 rows; the file was not written");
    CHECK(tmpdir_count(&d) == 0);

    w = NULL;
    CHECK_OK(st_npy_writer_open(path, ST_F32, 2, (int64_t[]){2, 3}, &w));
    CHECK_OK(st_npy_writer_append(w, ok));
    st_npy_writer_abort(w);
    st_npy_writer_abort(NULL);
    CHECK(tmpdir_count(&d) == 0);

    /* Zero rows declared: closing at once is complete. */
    CHECK_OK(st_npy_writer_open(path, ST_U8, 2, (int64_t[]){0, 3}, &w));
    CHECK_OK(st_npy_writer_close(w));
    st_tensor *t = NULL;
    CHECK_OK(st_npy_load(path, &t));
    CHECK(t && t->dtype == ST_U8 && t->shape[0] == 0 && t->shape[1] == 3);
    st_tensor_free(t);
    CHECK_FAILS(st_npy_save(path, NULL), ST_EINVAL, "NULL tensor");
    st_tensor_free(ok);
    st_tensor_free(i32);
    st_tensor_free(wide);
    tmpdir_remove(&d);
}

int main(void)
{
    RUN(test_numpy_files_load);
    RUN(test_strata_writes_numpys_bytes);
    RUN(test_other_versions_and_old_alignment);
    RUN(test_numpy_files_rejected_with_reasons);
    RUN(test_round_trip_every_dtype_and_rank);
    RUN(test_strided_save);
    RUN(test_header_dict_is_parsed_strictly);
    RUN(test_prefix_and_versions);
    RUN(test_map_of_unaligned_data_and_private_writes);
    RUN(test_streaming_writer_and_large_map);
    RUN(test_streaming_writer_errors);
    return TEST_SUMMARY();
}
