/* SHA-256 against the FIPS 180-4 example messages (NIST's published
 * digests), against Python's hashlib for messages around the padding
 * boundaries (55/56/64 bytes...), incremental updates split at every
 * point, and files (including a missing one). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "strata/sha256.h"
#include "testing.h"

static int digest_is(const void *data, size_t n, const char *want)
{
    uint8_t d[ST_SHA256_BYTES];
    char hex[ST_SHA256_HEX];
    st_sha256_buffer(data, n, d);
    st_sha256_hex(d, hex);
    if (strcmp(hex, want) != 0) fprintf(stderr, "  %zu bytes: got %s\n  wanted        %s\n", n, hex, want);
    return strcmp(hex, want) == 0;
}

static void test_fips_examples(void)
{
    CHECK(digest_is("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    CHECK(digest_is("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK(digest_is(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    const char *four = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr"
                       "lmnopqrsmnopqrstnopqrstu";
    CHECK(digest_is(four, strlen(four), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"));
    char *million = malloc(1000000);
    memset(million, 'a', 1000000);
    CHECK(digest_is(million, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    free(million);
}

/* bytes i % 251, digests from /usr/bin/python3 hashlib */
static const struct {
    size_t n;
    const char *hex;
} BOUNDARY[] = {
    {55, "463eb28e72f82e0a96c0a4cc53690c571281131f672aa229e0d45ae59b598b59"},
    {56, "da2ae4d6b36748f2a318f23e7ab1dfdf45acdc9d049bd80e59de82a60895f562"},
    {57, "2fe741af801cc238602ac0ec6a7b0c3a8a87c7fc7d7f02a3fe03d1c12eac4d8f"},
    {63, "29af2686fd53374a36b0846694cc342177e428d1647515f078784d69cdb9e488"},
    {64, "fdeab9acf3710362bd2658cdc9a29e8f9c757fcf9811603a8c447cd1d9151108"},
    {65, "4bfd2c8b6f1eec7a2afeb48b934ee4b2694182027e6d0fc075074f2fabb31781"},
    {119, "da18797ed7c3a777f0847f429724a2d8cd5138e6ed2895c3fa1a6d39d18f7ec6"},
    {120, "f52b23db1fbb6ded89ef42a23ce0c8922c45f25c50b568a93bf1c075420bbb7c"},
    {127, "92ca0fa6651ee2f97b884b7246a562fa71250fedefe5ebf270d31c546bfea976"},
    {128, "471fb943aa23c511f6f72f8d1652d9c880cfa392ad80503120547703e56a2be5"},
    {129, "5099c6a56203f9687f7d33f4bfdf576d31dc91f6b695ecea38b2770c87631135"},
    {1000, "4e4c294b331f7a2099a379bec34b9f9fc03dc46ab465d998f4d683da53487e6d"},
};

static void test_padding_boundaries(void)
{
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i % 251);
    for (size_t t = 0; t < sizeof BOUNDARY / sizeof *BOUNDARY; t++) CHECK(digest_is(buf, BOUNDARY[t].n, BOUNDARY[t].hex));
}

/* Two updates split anywhere, and byte-at-a-time, give the one-shot digest. */
static void test_incremental(void)
{
    uint8_t buf[1000], one[ST_SHA256_BYTES], part[ST_SHA256_BYTES];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i % 251);
    st_sha256_buffer(buf, 200, one);
    int bad = 0;
    for (size_t cut = 0; cut <= 200; cut++) {
        st_sha256 h;
        st_sha256_init(&h);
        st_sha256_update(&h, buf, cut);
        st_sha256_update(&h, buf + cut, 200 - cut);
        st_sha256_final(&h, part);
        bad += memcmp(one, part, sizeof one) != 0;
    }
    CHECK(bad == 0);
    st_sha256 h;
    st_sha256_init(&h);
    for (size_t i = 0; i < 1000; i++) st_sha256_update(&h, buf + i, 1);
    st_sha256_final(&h, part);
    char hex[ST_SHA256_HEX];
    st_sha256_hex(part, hex);
    CHECK(strcmp(hex, BOUNDARY[11].hex) == 0);
}

static void test_file(void)
{
    char path[] = "/tmp/strata_sha256_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    /* 200,000 bytes: several read blocks */
    uint8_t *buf = malloc(200000);
    for (size_t i = 0; i < 200000; i++) buf[i] = (uint8_t)(i * 7 + (i >> 9));
    CHECK(write(fd, buf, 200000) == 200000);
    close(fd);
    uint8_t d[ST_SHA256_BYTES];
    char want[ST_SHA256_HEX], got[ST_SHA256_HEX];
    st_sha256_buffer(buf, 200000, d);
    st_sha256_hex(d, want);
    uint64_t size = 0;
    CHECK_OK(st_sha256_file(path, got, &size));
    CHECK(strcmp(got, want) == 0);
    CHECK(size == 200000);
    remove(path);
    free(buf);
    CHECK_FAILS(st_sha256_file(path, got, NULL), ST_EIO, "cannot open");
}

int main(void)
{
    RUN(test_fips_examples);
    RUN(test_padding_boundaries);
    RUN(test_incremental);
    RUN(test_file);
    return TEST_SUMMARY();
}
