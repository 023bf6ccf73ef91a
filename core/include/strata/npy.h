/* NumPy .npy files: read, memory-map, write atomically, and stream rows
 * to disk with bounded memory.
 *
 * Reading accepts format versions 1.0, 2.0 and 3.0 (3.0 only differs by a
 * UTF-8 header, whose text for the supported dtypes is plain ASCII) and
 * parses the header dict strictly as the Python literal numpy writes:
 * keys 'descr', 'fortran_order', 'shape', each once. Supported dtypes:
 * little-endian '<f4', '<f8', '<i4', '<i8', '|u1' (and '<u1'), C order,
 * up to ST_MAX_DIMS dimensions; the file must hold exactly the bytes the
 * shape needs. Fortran order, big-endian, other dtypes, structured and
 * object arrays are rejected with a message naming what was found:
 * ST_EDTYPE for dtypes, ST_ESHAPE for too many dimensions, ST_EFORMAT for
 * anything malformed, ST_EIO for the OS. docs/file-formats.md has the
 * details.
 *
 * Writing produces the bytes numpy 1.24's np.save produces (version 1.0
 * header, data starting at a multiple of 64 bytes), so np.load reads
 * every file and np.load(..., mmap_mode='r') maps it. */
#ifndef STRATA_NPY_H
#define STRATA_NPY_H

#include "strata/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads the whole array into memory. */
st_status st_npy_load(const char *path, st_tensor **out);
/* Maps the file (nothing is read up front, so arrays larger than memory
 * work); the tensor keeps the mapping alive. The file is never modified:
 * writes into the tensor stay in this process's memory. */
st_status st_npy_map(const char *path, st_tensor **out);
/* Parses an in-memory .npy image (tests and fuzzing); copies the data. */
st_status st_npy_load_buffer(const void *data, size_t size, st_tensor **out);
/* Writes a tensor (any strides) atomically: temp file, fsync, rename. */
st_status st_npy_save(const char *path, const st_tensor *t);

/* Streaming writer: the full shape (at least 1-d) is declared up front;
 * rows (slices along dimension 0) are appended in order, either a batch
 * [k, rest...] or one row [rest...], of the declared dtype and any
 * strides; memory use is bounded by one row whatever the array size.
 * close checks that every row was written and renames the temp file into
 * place; it always frees the writer, and on failure (ST_ESTATE for a row
 * count short of the declared one) leaves no file behind. abort removes
 * the temp file; abort(NULL) is a no-op. */
typedef struct st_npy_writer st_npy_writer;
st_status st_npy_writer_open(const char *path, st_dtype dtype, int ndim, const int64_t *shape, st_npy_writer **out);
st_status st_npy_writer_append(st_npy_writer *w, const st_tensor *rows);
st_status st_npy_writer_close(st_npy_writer *w);
void st_npy_writer_abort(st_npy_writer *w);

#ifdef __cplusplus
}
#endif
#endif
