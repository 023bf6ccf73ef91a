/* Files: atomic writes, whole-file reads and read-only memory maps.
 *
 * Every file Strata saves goes through st_atomic_*: the bytes are written
 * to a temporary file in the destination's directory, flushed with fsync,
 * and renamed over the destination, so a reader sees either the old file
 * or the complete new one, never a half-written file. A failed or
 * abandoned write removes its temporary file.
 *
 *     st_atomic_file *f;
 *     ST_TRY(st_atomic_open(path, &f));
 *     st_status s = st_atomic_write(f, header, n);
 *     if (s == ST_OK) s = st_atomic_write(f, data, m);
 *     if (s != ST_OK) { st_atomic_abort(f); return s; }
 *     return st_atomic_commit(f);
 *
 * Mappings are reference counted: tensors made with st_mapping_tensor keep
 * the mapping alive after st_mapping_free drops the caller's reference. */
#ifndef STRATA_FILEIO_H
#define STRATA_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include "strata/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- atomic writing ---- */
typedef struct st_atomic_file st_atomic_file;

/* Creates the temporary file next to `path` (same directory, so the final
 * rename never crosses file systems). Writes are buffered. */
st_status st_atomic_open(const char *path, st_atomic_file **out);
/* Appends n bytes. After a failure the file is unusable: abort it. */
st_status st_atomic_write(st_atomic_file *f, const void *data, size_t n);
/* Bytes written so far. */
uint64_t st_atomic_written(const st_atomic_file *f);
/* Flushes, fsyncs, closes and renames into place (then fsyncs the
 * directory). Always frees f; on failure the temporary file is removed
 * and the destination is unchanged. */
st_status st_atomic_commit(st_atomic_file *f);
/* Closes and removes the temporary file; frees f. NULL is a no-op. */
void st_atomic_abort(st_atomic_file *f);

/* Writes a whole buffer atomically (open + write + commit). */
st_status st_file_write_atomic(const char *path, const void *data, size_t n);

/* Reads a whole file into a fresh malloc'd buffer with a NUL byte after
 * the last one (so text can be used as a C string); *size excludes it.
 * The caller frees *data. Fails with ST_EIO naming the path. */
st_status st_file_read(const char *path, char **data, size_t *size);

/* ---- read-only memory maps ---- */
typedef struct st_mapping st_mapping;

/* Maps a whole file. The mapping is private: the file is never modified,
 * and writing into a tensor made from it changes only this process's
 * copy of the touched pages. An empty file gives an empty mapping. */
st_status st_mapping_open(const char *path, st_mapping **out);
const void *st_mapping_data(const st_mapping *m);
size_t st_mapping_size(const st_mapping *m);
/* Drops the caller's reference; the file is unmapped when the last
 * tensor made from it is freed as well. NULL is a no-op. */
void st_mapping_free(st_mapping *m);
/* A zero-copy tensor over bytes [offset, offset + numel*elsize) of the
 * mapping; it holds a reference to the mapping. The range must lie inside
 * the mapping and offset must be a multiple of the element size. */
st_status st_mapping_tensor(st_mapping *m, size_t offset, st_dtype dtype, int ndim, const int64_t *shape,
                            st_tensor **out);

#ifdef __cplusplus
}
#endif
#endif
