/* safetensors files: strict, memory-mapped reading and atomic writing.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {string: string}}), then the raw little-endian data.
 * Reading validates everything (header bounds, JSON, offsets inside the
 * data block, no overlap, byte counts agree with dtype and shape) before
 * any tensor is handed out; docs/file-formats.md lists every rule.
 * Failures are ST_EFORMAT (ST_EDTYPE for an unsupported element type,
 * ST_ESHAPE for more than ST_MAX_DIMS dimensions, ST_EIO for the OS) with
 * a message naming the tensor and the numbers involved. */
#ifndef STRATA_SAFETENSORS_H
#define STRATA_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "strata/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* File element types ("F32", "F16", "BF16", "F64", "I64", "I32", "U8"). */
typedef enum st_st_dtype { ST_ST_F32, ST_ST_F16, ST_ST_BF16, ST_ST_F64, ST_ST_I64, ST_ST_I32, ST_ST_U8 } st_st_dtype;

/* The file's spelling ("BF16") and element size in bytes. */
const char *st_safetensors_dtype_name(st_st_dtype t);
size_t st_safetensors_dtype_size(st_st_dtype t);

typedef struct st_safetensors_entry {
    const char *name;
    st_st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t begin, end; /* byte offsets in the data block */
} st_safetensors_entry;

typedef struct st_safetensors st_safetensors;

/* Opens and validates a file (memory-mapped). */
st_status st_safetensors_open(const char *path, st_safetensors **out);
/* Same, over a caller-owned buffer (used by the fuzzer and tests). The
 * buffer need not outlive the call: tensors loaded later are copies. */
st_status st_safetensors_open_buffer(const void *data, size_t size, st_safetensors **out);
void st_safetensors_close(st_safetensors *f);

size_t st_safetensors_count(const st_safetensors *f);
const st_safetensors_entry *st_safetensors_entry_at(const st_safetensors *f, size_t i);
const st_safetensors_entry *st_safetensors_find(const st_safetensors *f, const char *name);

/* __metadata__ string pairs, in file order. */
size_t st_safetensors_metadata_count(const st_safetensors *f);
void st_safetensors_metadata_at(const st_safetensors *f, size_t i, const char **key, const char **value);
/* The value for key, or NULL. */
const char *st_safetensors_metadata_get(const st_safetensors *f, const char *key);

/* Loads a tensor converted to `want` (any file dtype to any st_dtype;
 * F16/BF16 are decoded exactly, including subnormals, Inf and NaN; float
 * to integer truncates and saturates). When no conversion is needed and
 * the data is aligned, the result is a zero-copy view of the mapping that
 * keeps the file mapped until freed (writes to it stay in memory). An
 * unknown name fails with ST_EINVAL. */
st_status st_safetensors_load(const st_safetensors *f, const char *name, st_dtype want, st_tensor **out);

typedef struct st_named_tensor {
    const char *name;
    const st_tensor *tensor;
} st_named_tensor;

/* Writes tensors (in their own dtypes, any strides; in the given order)
 * and metadata pairs (meta[0]=key0, meta[1]=value0, ...; n_meta pairs)
 * atomically: a temporary file in the same directory, fsync, rename.
 * The header is compact JSON padded with spaces to a multiple of 8 bytes.
 * Names must be unique, non-empty UTF-8 and not "__metadata__". */
st_status st_safetensors_save(const char *path, const st_named_tensor *tensors, size_t n,
                              const char *const *meta, size_t n_meta);

#ifdef __cplusplus
}
#endif
#endif
