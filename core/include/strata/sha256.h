/* SHA-256 (FIPS 180-4): message digests for integrity checks, e.g. the
 * manifest of a saved explainer bundle (docs/explainer.md).
 *
 *     st_sha256 h;
 *     st_sha256_init(&h);
 *     st_sha256_update(&h, part1, n1);
 *     st_sha256_update(&h, part2, n2);
 *     uint8_t digest[ST_SHA256_BYTES];
 *     st_sha256_final(&h, digest);
 *
 * or st_sha256_file(path, hex) for a whole file as 64 lowercase hex
 * digits. Integrity only: a checksum detects accidental corruption and
 * edits that did not also update the manifest, it is not a signature. */
#ifndef STRATA_SHA256_H
#define STRATA_SHA256_H
#include <stddef.h>
#include <stdint.h>
#include "strata/status.h"
#ifdef __cplusplus
extern "C" {
#endif

#define ST_SHA256_BYTES 32
#define ST_SHA256_HEX 65 /* 64 hex digits and a NUL */

typedef struct st_sha256 {
    uint32_t state[8];
    uint64_t length;     /* bytes hashed so far */
    uint8_t block[64];   /* pending input, `length % 64` bytes */
} st_sha256;

void st_sha256_init(st_sha256 *h);
void st_sha256_update(st_sha256 *h, const void *data, size_t n);
/* Pads, writes the digest and leaves h unusable until the next init. */
void st_sha256_final(st_sha256 *h, uint8_t digest[ST_SHA256_BYTES]);
/* One call for a buffer. */
void st_sha256_buffer(const void *data, size_t n, uint8_t digest[ST_SHA256_BYTES]);
/* A digest as 64 lowercase hex digits and a NUL. */
void st_sha256_hex(const uint8_t digest[ST_SHA256_BYTES], char hex[ST_SHA256_HEX]);
/* The digest of a whole file (read in blocks) as hex; *size (may be
 * NULL) gets its length in bytes. ST_EIO naming the path when it cannot
 * be opened or read. */
st_status st_sha256_file(const char *path, char hex[ST_SHA256_HEX], uint64_t *size);

#ifdef __cplusplus
}
#endif
#endif
