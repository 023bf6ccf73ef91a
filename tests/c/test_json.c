/* JSON parser and writer: hand-worked documents, every rejection rule of
 * the strict grammar with its message, and write/parse round trips. */
#include "tmpdir.h"

#include <stdint.h>
#include <stdlib.h>
#include "strata/fileio.h"
#include "strata/json.h"
#include "strata/rng.h"
#include "testing.h"

static st_json *parse(const char *text)
{
    st_json *v = NULL;
    CHECK_OK(st_json_parse(text, strlen(text), &v));
    return v;
}

static void test_scalars_and_structure(void)
{
    st_json *v = parse(" {\"a\": [1, -2.5, true, false, null], \"b\": {\"c\": \"x\"}, \"e\": {}, \"f\": []}\n");
    CHECK(st_json_type_of(v) == ST_JSON_OBJECT && st_json_size(v) == 4);
    CHECK(strcmp(st_json_key_at(v, 0), "a") == 0 && strcmp(st_json_key_at(v, 3), "f") == 0);
    const st_json *a = st_json_get(v, "a");
    CHECK(st_json_type_of(a) == ST_JSON_ARRAY && st_json_size(a) == 5);
    CHECK(st_json_number(st_json_at(a, 0)) == 1.0);
    CHECK(st_json_number(st_json_at(a, 1)) == -2.5);
    CHECK(st_json_bool(st_json_at(a, 2)) && !st_json_bool(st_json_at(a, 3)));
    CHECK(st_json_type_of(st_json_at(a, 2)) == ST_JSON_BOOL);
    CHECK(st_json_type_of(st_json_at(a, 4)) == ST_JSON_NULL && st_json_at(a, 4) != NULL);
    CHECK(st_json_at(a, 5) == NULL);
    CHECK(strcmp(st_json_string(st_json_get(st_json_get(v, "b"), "c")), "x") == 0);
    CHECK(st_json_size(st_json_get(v, "e")) == 0 && st_json_type_of(st_json_get(v, "e")) == ST_JSON_OBJECT);
    CHECK(st_json_size(st_json_get(v, "f")) == 0 && st_json_type_of(st_json_get(v, "f")) == ST_JSON_ARRAY);
    CHECK(st_json_get(v, "zz") == NULL && st_json_get(a, "a") == NULL && st_json_get(NULL, "a") == NULL);
    CHECK(st_json_string(a) == NULL && isnan(st_json_number(a)) && st_json_size(st_json_at(a, 0)) == 0);
    st_json_free(v);
    st_json_free(NULL);

    v = parse("42");
    CHECK(st_json_type_of(v) == ST_JSON_NUMBER && st_json_number(v) == 42);
    st_json_free(v);
}

static void test_string_escapes(void)
{
    st_json *v = parse("\"q\\\"b\\\\s\\/b\\bf\\fn\\nr\\rt\\t\"");
    CHECK(strcmp(st_json_string(v), "q\"b\\s/b\bf\fn\nr\rt\t") == 0);
    st_json_free(v);
    /* U+00E9 is C3 A9; U+20AC is E2 82 AC; U+1F600 is the pair D83D DE00 = F0 9F 98 80. */
    v = parse("\"\\u00e9\\u20AC\\ud83d\\ude00\xc3\xa9\"");
    CHECK(strcmp(st_json_string(v), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc3\xa9") == 0);
    st_json_free(v);
    v = parse("\"a\\u0000b\"");
    CHECK(st_json_string_len(v) == 3 && memcmp(st_json_string(v), "a\0b", 4) == 0);
    st_json_free(v);
    /* The highest code point, U+10FFFF = DBFF DFFF = F4 8F BF BF. */
    v = parse("\"\\uDBFF\\uDFFF\"");
    CHECK(strcmp(st_json_string(v), "\xf4\x8f\xbf\xbf") == 0);
    st_json_free(v);
}

typedef struct {
    const char *text;
    size_t len; /* 0: strlen */
    const char *needle;
} bad_case;

static void test_rejections_name_the_problem(void)
{
    static const bad_case cases[] = {
        {"", 0, "expected a value, found the end of the input"},
        {"   ", 0, "expected a value, found the end of the input"},
        {"01", 0, "leading zeros"},
        {"-01", 0, "leading zeros"},
        {"1.", 0, "digit must follow the decimal point"},
        {"1.e5", 0, "digit must follow the decimal point"},
        {".5", 0, "expected a value, found '.'"},
        {"-", 0, "digit after '-'"},
        {"-a", 0, "digit after '-'"},
        {"+1", 0, "expected a value, found '+'"},
        {"1e", 0, "digit must follow the exponent"},
        {"1e+", 0, "digit must follow the exponent"},
        {"NaN", 0, "expected a value, found 'N'"},
        {"Infinity", 0, "expected a value, found 'I'"},
        {"-Infinity", 0, "digit after '-'"},
        {"tru", 0, "expected 'true'"},
        {"nul", 0, "expected 'null'"},
        {"fals", 0, "expected 'false'"},
        {"True", 0, "expected a value, found 'T'"},
        {"[1,]", 0, "expected a value, found ']'"},
        {"[1", 0, "expected ',' or ']' in the array, found the end"},
        {"[1 2]", 0, "expected ',' or ']' in the array, found '2'"},
        {"{\"a\":1,}", 0, "expected a string key, found '}'"},
        {"{a:1}", 0, "expected a string key, found 'a'"},
        {"{'a':1}", 0, "expected a string key, found '''"},
        {"{\"a\" 1}", 0, "expected ':' after the object key, found '1'"},
        {"{\"a\":1 \"b\":2}", 0, "expected ',' or '}' in the object"},
        {"{\"a\":1,\"b\":2,\"a\":3}", 0, "duplicate key 'a'"},
        {"\"abc", 0, "string is not terminated"},
        {"\"abc\\\"", 0, "string is not terminated"},
        {"\"a\x01\"", 0, "control character 0x01"},
        {"\"a\tb\"", 0, "control character 0x09"},
        {"\"a\nb\"", 0, "control character 0x0a"},
        {"\"\\x\"", 0, "invalid escape '\\x'"},
        {"\"\\'\"", 0, "invalid escape '\\''"},
        {"\"\\u12\"", 0, "4 hex digits"},
        {"\"\\u12g4\"", 0, "4 hex digits"},
        {"\"\\ud800\"", 0, "high surrogate not followed by a low surrogate"},
        {"\"\\ud800x\"", 0, "high surrogate not followed by a low surrogate"},
        {"\"\\ud800\\u0041\"", 0, "followed by \\u0041, not a low surrogate"},
        {"\"\\ud800\\ud800\"", 0, "not a low surrogate"},
        {"\"\\udc00\"", 0, "low surrogate without a preceding high surrogate"},
        {"\"\xc0\xaf\"", 0, "invalid UTF-8 byte 0xc0"},         /* overlong '/' */
        {"\"\xe0\x80\xaf\"", 0, "invalid UTF-8 byte 0xe0"},     /* overlong, 3 bytes */
        {"\"\xed\xa0\x80\"", 0, "invalid UTF-8 byte 0xed"},     /* encoded surrogate */
        {"\"\xf4\x90\x80\x80\"", 0, "invalid UTF-8 byte 0xf4"}, /* above U+10FFFF */
        {"\"\x80\"", 0, "invalid UTF-8 byte 0x80"},             /* lone continuation */
        {"\"\xe2\x82\"", 0, "invalid UTF-8 byte 0xe2"},         /* truncated sequence */
        {"\"\xff\"", 0, "invalid UTF-8 byte 0xff"},
        {"1e400", 0, "out of the double range"},
        {"-1e400", 0, "out of the double range"},
        {"[1] x", 0, "unexpected 'x' after the value"},
        {"{} {}", 0, "unexpected '{' after the value"},
        {"1 2", 0, "unexpected '2' after the value"},
        {"\xef\xbb\xbf{}", 0, "expected a value, found byte 0xef"},
        {"// c\n{}", 0, "expected a value, found '/'"},
        {"[1]\0", 4, "unexpected byte 0x00 after the value"},
        {"\"a\0b\"", 5, "control character 0x00"},
        {"{\n  \"a\": tru\n}", 0, "line 2, column 8: invalid literal"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_json *v = NULL;
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
        st_status s = st_json_parse(cases[i].text, len, &v);
        if (s != ST_EFORMAT || !strstr(st_error_message(), cases[i].needle) || !strstr(st_error_message(), "json: line")) {
            fprintf(stderr, "case %zu '%s': got %s '%s', wanted '%s'\n", i, cases[i].text, st_status_name(s),
                    st_error_message(), cases[i].needle);
            testing_failures_in_test++;
        }
        CHECK(v == NULL);
    }
}

static void test_depth_limit(void)
{
    char buf[2 * (ST_JSON_MAX_DEPTH + 1) + 1];
    for (int depth = ST_JSON_MAX_DEPTH; depth <= ST_JSON_MAX_DEPTH + 1; depth++) {
        for (int i = 0; i < depth; i++) {
            buf[i] = '[';
            buf[depth + i] = ']';
        }
        st_json *v = NULL;
        st_status s = st_json_parse(buf, 2 * (size_t)depth, &v);
        if (depth == ST_JSON_MAX_DEPTH) {
            CHECK(s == ST_OK);
            st_json_free(v);
        } else {
            CHECK(s == ST_EFORMAT && strstr(st_error_message(), "deeper than 128"));
        }
    }
    /* An unclosed deep prefix fails cleanly too. */
    memset(buf, '{', sizeof buf);
    st_json *v = NULL;
    CHECK_FAILS(st_json_parse(buf, 5, &v), ST_EFORMAT, "expected a string key");
}

static void test_numbers(void)
{
    st_json *v = parse("[9223372036854775807, -9223372036854775808, 9223372036854775808, 1e3, 1.5, "
                       "0.1, -0, 1E-400, 2.5e+2, 0, 4503599627370497.0]");
    int64_t i = 0;
    CHECK_OK(st_json_to_int(st_json_at(v, 0), "a", &i));
    CHECK(i == INT64_MAX);
    CHECK_OK(st_json_to_int(st_json_at(v, 1), "b", &i));
    CHECK(i == INT64_MIN);
    /* 2^63 is beyond int64 and, as a double, beyond exact integers. */
    CHECK_FAILS(st_json_to_int(st_json_at(v, 2), "c", &i), ST_EFORMAT, "c: integer expected");
    CHECK(st_json_number(st_json_at(v, 2)) == 9223372036854775808.0);
    CHECK_OK(st_json_to_int(st_json_at(v, 3), "d", &i));
    CHECK(i == 1000);
    CHECK_FAILS(st_json_to_int(st_json_at(v, 4), "e", &i), ST_EFORMAT, "e: integer expected, found 1.5");
    CHECK(st_json_number(st_json_at(v, 5)) == 0.1);
    CHECK(st_json_number(st_json_at(v, 6)) == 0 && signbit(st_json_number(st_json_at(v, 6))));
    CHECK(st_json_number(st_json_at(v, 7)) == 0); /* underflow to zero is allowed */
    CHECK(st_json_number(st_json_at(v, 8)) == 250);
    CHECK_OK(st_json_to_int(st_json_at(v, 9), "z", &i));
    CHECK(i == 0);
    CHECK(st_json_number(st_json_at(v, 10)) == 4503599627370497.0);
    CHECK_FAILS(st_json_to_int(st_json_at(v, 11), "missing", &i), ST_EFORMAT, "missing is missing");
    CHECK_FAILS(st_json_to_int(v, "arr", &i), ST_EFORMAT, "arr: number expected, found array");
    st_json_free(v);
}

static void test_lookup_many_keys_and_nul_keys(void)
{
    /* 200 keys in a scrambled order; every one is found, file order kept. */
    char text[8192];
    size_t n = 0;
    n += (size_t)snprintf(text + n, sizeof text - n, "{");
    for (int i = 0; i < 200; i++) {
        int k = (i * 73) % 200;
        n += (size_t)snprintf(text + n, sizeof text - n, "%s\"key%d\": %d", i ? "," : "", k, k);
    }
    snprintf(text + n, sizeof text - n, "}");
    st_json *v = parse(text);
    CHECK(st_json_size(v) == 200);
    for (int k = 0; k < 200; k++) {
        char key[32];
        snprintf(key, sizeof key, "key%d", k);
        CHECK(st_json_number(st_json_get(v, key)) == k);
    }
    CHECK(strcmp(st_json_key_at(v, 1), "key73") == 0);
    CHECK(st_json_get(v, "key200") == NULL && st_json_get(v, "key") == NULL);
    st_json_free(v);

    /* "a\0b" and "a" are different keys; lookup by C string finds "a". */
    v = parse("{\"a\\u0000b\": 1, \"a\": 2}");
    CHECK(st_json_number(st_json_get(v, "a")) == 2);
    st_json_free(v);
}

static void test_checked_getters(void)
{
    st_json *v = parse("{\"epochs\": 15, \"lr\": \"fast\", \"ok\": true, \"name\": \"x\", \"rate\": 0.5, \"l\": [1]}");
    int64_t i = 0;
    double d = 0;
    bool b = false;
    const char *s = NULL;
    const st_json *l = NULL;
    CHECK_OK(st_json_get_int(v, "epochs", &i));
    CHECK(i == 15);
    CHECK_OK(st_json_get_number(v, "rate", &d));
    CHECK(d == 0.5);
    CHECK_OK(st_json_get_bool(v, "ok", &b));
    CHECK(b);
    CHECK_OK(st_json_get_string(v, "name", &s));
    CHECK(s && strcmp(s, "x") == 0);
    CHECK_OK(st_json_get_typed(v, "l", ST_JSON_ARRAY, &l));
    CHECK(st_json_size(l) == 1);
    CHECK_FAILS(st_json_get_int(v, "seed", &i), ST_EFORMAT, "'seed' is missing");
    CHECK_FAILS(st_json_get_number(v, "lr", &d), ST_EFORMAT, "'lr': number expected, found string");
    CHECK_FAILS(st_json_get_int(v, "rate", &i), ST_EFORMAT, "'rate': integer expected, found 0.5");
    CHECK_FAILS(st_json_get_bool(v, "epochs", &b), ST_EFORMAT, "'epochs': boolean expected, found number");
    CHECK_FAILS(st_json_get_string(l, "x", &s), ST_EFORMAT, "object expected, found array");
    CHECK_FAILS(st_json_get_typed(v, "l", ST_JSON_OBJECT, &l), ST_EFORMAT, "'l': object expected, found array");
    static const char *const allowed[] = {"epochs", "lr", "ok", "name", "rate", "l"};
    CHECK_OK(st_json_check_keys(v, allowed, 6, "config"));
    CHECK_FAILS(st_json_check_keys(v, allowed, 5, "config"), ST_EFORMAT, "config: unknown key 'l'");
    st_json_free(v);
}

static const char *writer_text(st_json_writer *w)
{
    const char *text = NULL;
    size_t len = 0;
    CHECK_OK(st_json_writer_text(w, &text, &len));
    CHECK(text == NULL || strlen(text) == len);
    return text ? text : "";
}

static void write_sample(st_json_writer *w)
{
    st_json_begin_object(w);
    st_json_key(w, "name");
    st_json_write_string(w, "layer\"1\"");
    st_json_key(w, "shape");
    st_json_begin_array(w);
    st_json_write_int(w, 3);
    st_json_write_int(w, -4);
    st_json_end_array(w);
    st_json_key(w, "empty");
    st_json_begin_object(w);
    st_json_end_object(w);
    st_json_key(w, "none");
    st_json_begin_array(w);
    st_json_end_array(w);
    st_json_key(w, "acc");
    st_json_write_number(w, 0.925);
    st_json_key(w, "flags");
    st_json_begin_array(w);
    st_json_write_bool(w, true);
    st_json_write_null(w);
    st_json_end_array(w);
    st_json_end_object(w);
}

static void test_writer_layouts(void)
{
    st_json_writer *w = NULL;
    CHECK_OK(st_json_writer_new(false, &w));
    write_sample(w);
    CHECK(strcmp(writer_text(w), "{\"name\":\"layer\\\"1\\\"\",\"shape\":[3,-4],\"empty\":{},\"none\":[],"
                                 "\"acc\":0.925,\"flags\":[true,null]}") == 0);
    st_json_writer_free(w);

    CHECK_OK(st_json_writer_new(true, &w));
    write_sample(w);
    const char *want = "{\n"
                       "  \"name\": \"layer\\\"1\\\"\",\n"
                       "  \"shape\": [\n"
                       "    3,\n"
                       "    -4\n"
                       "  ],\n"
                       "  \"empty\": {},\n"
                       "  \"none\": [],\n"
                       "  \"acc\": 0.925,\n"
                       "  \"flags\": [\n"
                       "    true,\n"
                       "    null\n"
                       "  ]\n"
                       "}";
    CHECK(strcmp(writer_text(w), want) == 0);
    st_json_writer_free(w);
    st_json_writer_free(NULL);
}

static void test_writer_escapes_every_control_character(void)
{
    char in[40];
    for (int i = 0; i < 32; i++) in[i] = (char)(i + 1 == 32 ? 0x7f : i + 1);
    memcpy(in + 32, "\"\\/\xc3\xa9", 5); /* quote, backslash, slash, é */
    st_json_writer *w = NULL;
    CHECK_OK(st_json_writer_new(false, &w));
    st_json_write_string_len(w, in, 37);
    const char *want = "\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f"
                       "\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b"
                       "\\u001c\\u001d\\u001e\\u001f\x7f\\\"\\\\/\xc3\xa9\"";
    const char *text = writer_text(w);
    CHECK(strcmp(text, want) == 0);
    st_json *v = parse(text);
    CHECK(st_json_string_len(v) == 37 && memcmp(st_json_string(v), in, 37) == 0);
    st_json_free(v);
    st_json_writer_free(w);

    CHECK_OK(st_json_writer_new(false, &w));
    st_json_write_string_len(w, "a\0b", 3);
    CHECK(strcmp(writer_text(w), "\"a\\u0000b\"") == 0);
    st_json_writer_free(w);
}

static void check_number_text(double v, const char *want)
{
    st_json_writer *w = NULL;
    CHECK_OK(st_json_writer_new(false, &w));
    st_json_write_number(w, v);
    const char *text = writer_text(w);
    if (strcmp(text, want) != 0) {
        fprintf(stderr, "number %.17g written as '%s', wanted '%s'\n", v, text, want);
        testing_failures_in_test++;
    }
    st_json_writer_free(w);
}

static void test_writer_numbers_round_trip(void)
{
    /* Expected texts are Python's repr of the same doubles. */
    check_number_text(0.1, "0.1");
    check_number_text(1.0 / 3.0, "0.3333333333333333");
    check_number_text(2.0 / 3.0, "0.6666666666666666");
    check_number_text(0.1 + 0.2, "0.30000000000000004");
    check_number_text(123456789012345680.0, "1.2345678901234568e+17");
    check_number_text(1e300, "1e+300");
    check_number_text(100, "100");
    check_number_text(-2.5, "-2.5");
    check_number_text(-0.0, "-0");
    /* Random bit patterns: every finite double reads back bit for bit. */
    st_rng rng;
    st_rng_seed(&rng, 7);
    int tried = 0;
    while (tried < 20000) {
        uint64_t bits = st_rng_next_u64(&rng);
        double v;
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v)) continue;
        tried++;
        st_json_writer *w = NULL;
        CHECK_OK(st_json_writer_new(false, &w));
        st_json_write_number(w, v);
        const char *text = writer_text(w);
        st_json *p = NULL;
        CHECK_OK(st_json_parse(text, strlen(text), &p));
        double back = st_json_number(p);
        if (memcmp(&back, &v, sizeof v) != 0) {
            fprintf(stderr, "%.17g written as %s read back as %.17g\n", v, text, back);
            testing_failures_in_test++;
        }
        st_json_free(p);
        st_json_writer_free(w);
    }
}

static void test_writer_misuse_is_reported_once(void)
{
    st_json_writer *w = NULL;
    const char *text;
    size_t len;
    CHECK_OK(st_json_writer_new(false, &w));
    st_json_begin_object(w);
    st_json_write_int(w, 1); /* no key */
    st_json_write_number(w, NAN); /* a later error does not replace the first */
    CHECK_FAILS(st_json_writer_status(w), ST_ESTATE, "a number inside an object needs a key first");
    CHECK_FAILS(st_json_writer_text(w, &text, &len), ST_ESTATE, "needs a key first");
    st_json_writer_free(w);

    CHECK_OK(st_json_writer_new(false, &w));
    st_json_begin_array(w);
    st_json_write_number(w, INFINITY);
    CHECK_FAILS(st_json_writer_status(w), ST_ENUMERIC, "inf cannot be written as a JSON number");
    st_json_writer_free(w);

    CHECK_OK(st_json_writer_new(false, &w));
    st_json_begin_array(w);
    st_json_end_object(w);
    CHECK_FAILS(st_json_writer_status(w), ST_ESTATE, "end of object without a matching begin");
    st_json_writer_free(w);

    CHECK_OK(st_json_writer_new(false, &w));
    st_json_begin_array(w);
    CHECK_FAILS(st_json_writer_text(w, &text, &len), ST_ESTATE, "incomplete (1 containers still open)");
    st_json_key(w, "k");
    CHECK_FAILS(st_json_writer_status(w), ST_ESTATE, "key 'k' outside an object");
    st_json_writer_free(w);

    CHECK_OK(st_json_writer_new(false, &w));
    st_json_write_int(w, 1);
    st_json_write_int(w, 2);
    CHECK_FAILS(st_json_writer_status(w), ST_ESTATE, "after the complete top-level value");
    st_json_writer_free(w);

    CHECK_OK(st_json_writer_new(false, &w));
    st_json_begin_object(w);
    st_json_key(w, "k");
    st_json_end_object(w);
    CHECK_FAILS(st_json_writer_status(w), ST_ESTATE, "after a key without a value");
    st_json_writer_free(w);

    CHECK_OK(st_json_writer_new(false, &w));
    st_json_write_string(w, "bad \xc0\xaf");
    CHECK_FAILS(st_json_writer_status(w), ST_EINVAL, "invalid UTF-8 byte 0xc0");
    st_json_writer_free(w);

    CHECK_OK(st_json_writer_new(false, &w));
    for (int i = 0; i <= ST_JSON_MAX_DEPTH; i++) st_json_begin_array(w);
    CHECK_FAILS(st_json_writer_status(w), ST_EINVAL, "deeper than 128");
    st_json_writer_free(w);
}

static void test_tree_round_trip(void)
{
    const char *compact = "{\"b\":[1,2.5,-0,\"s\\n\\u0000\",{\"x\":null,\"y\":false}],\"a\":{},"
                          "\"big\":9223372036854775807,\"u\":\"\xe2\x82\xac\"}";
    st_json *v = parse(compact);
    st_json_writer *w = NULL;
    CHECK_OK(st_json_writer_new(false, &w));
    st_json_write_value(w, v);
    CHECK(strcmp(writer_text(w), compact) == 0);
    st_json_writer_free(w);

    /* Pretty text parses back to the same tree. */
    CHECK_OK(st_json_writer_new(true, &w));
    st_json_write_value(w, v);
    st_json *again = parse(writer_text(w));
    st_json_writer_free(w);
    CHECK_OK(st_json_writer_new(false, &w));
    st_json_write_value(w, again);
    CHECK(strcmp(writer_text(w), compact) == 0);
    st_json_writer_free(w);
    st_json_free(again);
    st_json_free(v);
}

static void test_save_and_parse_file(void)
{
    tmpdir d;
    CHECK(tmpdir_make(&d) == 0);
    const char *path = tmpdir_file(&d, "metrics.json");
    st_json_writer *w = NULL;
    CHECK_OK(st_json_writer_new(true, &w));
    st_json_begin_object(w);
    st_json_key(w, "accuracy");
    st_json_write_number(w, 0.926);
    st_json_end_object(w);
    CHECK_OK(st_json_writer_save(w, path));
    st_json_writer_free(w);
    char *raw = NULL;
    size_t n = 0;
    CHECK_OK(st_file_read(path, &raw, &n));
    CHECK(raw && strcmp(raw, "{\n  \"accuracy\": 0.926\n}\n") == 0);
    free(raw);
    st_json *v = NULL;
    CHECK_OK(st_json_parse_file(path, &v));
    CHECK(st_json_number(st_json_get(v, "accuracy")) == 0.926);
    st_json_free(v);
    CHECK(tmpdir_count(&d) == 1); /* no temporary file left behind */

    CHECK_OK(st_file_write_atomic(path, "{\"a\": 1,\n \"a\": 2}", 17));
    CHECK_FAILS(st_json_parse_file(path, &v), ST_EFORMAT, "metrics.json': json: line 1, column 1: duplicate key 'a'");
    CHECK_FAILS(st_json_parse_file(tmpdir_file(&d, "absent.json"), &v), ST_EIO, "absent.json");

    CHECK_OK(st_json_writer_new(true, &w));
    CHECK_FAILS(st_json_writer_save(w, path), ST_ESTATE, "incomplete");
    st_json_writer_free(w);
    tmpdir_remove(&d);
}

int main(void)
{
    RUN(test_scalars_and_structure);
    RUN(test_string_escapes);
    RUN(test_rejections_name_the_problem);
    RUN(test_depth_limit);
    RUN(test_numbers);
    RUN(test_lookup_many_keys_and_nul_keys);
    RUN(test_checked_getters);
    RUN(test_writer_layouts);
    RUN(test_writer_escapes_every_control_character);
    RUN(test_writer_numbers_round_trip);
    RUN(test_writer_misuse_is_reported_once);
    RUN(test_tree_round_trip);
    RUN(test_save_and_parse_file);
    return TEST_SUMMARY();
}
