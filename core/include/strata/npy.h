/* NumPy .npy files (format versions 1.0 and 2.0): read, memory-map,
 * write atomically, and stream rows to disk with bounded memory.
 *
 * Supported: little-endian '<f4', '<f8', '<i4', '<i8', '|u1' (and '<u1'),
 * C order. Fortran order, big-endian, other dtypes and object arrays are
 * rejected with a message naming what was found. */
#ifndef STRATA_NPY_H
#define STRATA_NPY_H

#include "strata/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads the whole array into memory. */
st_status st_npy_load(const char *path, st_tensor **out);
/* Maps the file read-only; the tensor keeps the mapping alive. */
st_status st_npy_map(const char *path, st_tensor **out);
/* Parses an in-memory .npy image (tests and fuzzing); copies the data. */
st_status st_npy_load_buffer(const void *data, size_t size, st_tensor **out);
/* Writes a tensor (any strides) atomically: temp file, fsync, rename. */
st_status st_npy_save(const char *path, const st_tensor *t);

/* Streaming writer: the full shape is declared up front; rows (slices
 * along dimension 0) are appended in order; close checks that every row
 * was written and renames the temp file into place. abort removes it. */
typedef struct st_npy_writer st_npy_writer;
st_status st_npy_writer_open(const char *path, st_dtype dtype, int ndim, const int64_t *shape, st_npy_writer **out);
st_status st_npy_writer_append(st_npy_writer *w, const st_tensor *rows);
st_status st_npy_writer_close(st_npy_writer *w);
void st_npy_writer_abort(st_npy_writer *w);

#ifdef __cplusplus
}
#endif
#endif
