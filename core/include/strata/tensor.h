/* N-dimensional tensors: storage, creation, views and copies.
 *
 * A tensor is a small header (dtype, shape, strides, offset) over a
 * reference-counted storage block. Views (slice, reshape of a contiguous
 * tensor, permute, transpose) share the storage and keep it alive; freeing
 * the parent tensor does not invalidate a view. Strides are in elements.
 *
 * Output convention used across the library: functions that produce a
 * tensor take `st_tensor **out`. If *out is NULL a new tensor is allocated
 * and returned there (the caller owns it). If *out is non-NULL it must
 * already have the result's dtype and shape and is written in place; this
 * is how inner loops avoid allocation. On failure *out is left untouched.
 *
 * Not thread-safe for concurrent mutation of the same tensor; storage
 * reference counts are atomic, so tensors sharing storage may be freed
 * from different threads. */
#ifndef STRATA_TENSOR_H
#define STRATA_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ST_MAX_DIMS 6

typedef enum st_dtype {
    ST_F32 = 0,
    ST_F64,
    ST_I32,
    ST_I64,
    ST_U8,
    ST_DTYPE_COUNT
} st_dtype;

typedef struct st_storage st_storage;

typedef struct st_tensor {
    st_dtype dtype;
    int ndim;                       /* 0 .. ST_MAX_DIMS; 0 is a scalar */
    int64_t shape[ST_MAX_DIMS];
    int64_t stride[ST_MAX_DIMS];    /* in elements */
    int64_t offset;                 /* in elements, into the storage */
    st_storage *storage;
    void *data;                     /* first element: storage base + offset */
} st_tensor;

/* Element size in bytes, and a short name ("f32", "u8", ...). */
size_t st_dtype_size(st_dtype t);
const char *st_dtype_name(st_dtype t);
/* Parses a name back; returns ST_EDTYPE for an unknown name. */
st_status st_dtype_parse(const char *name, st_dtype *out);

/* ---- creation (all return owned tensors; memory is zero-filled) ---- */
st_status st_tensor_new(st_dtype dtype, int ndim, const int64_t *shape, st_tensor **out);
st_status st_tensor_zeros(st_dtype dtype, int ndim, const int64_t *shape, st_tensor **out);
st_status st_tensor_full(st_dtype dtype, int ndim, const int64_t *shape, double value, st_tensor **out);
/* 1-d tensor start, start+step, ... below stop (like Python's range). */
st_status st_tensor_arange(st_dtype dtype, double start, double stop, double step, st_tensor **out);
/* Copies `nbytes` worth of elements from `src` (must equal numel*elsize). */
st_status st_tensor_from_data(st_dtype dtype, int ndim, const int64_t *shape,
                              const void *src, size_t nbytes, st_tensor **out);
/* Wraps memory owned elsewhere; `release(ctx)` runs when the last view
 * goes away (may be NULL). Used for memory maps and Lua-owned buffers. */
st_status st_tensor_wrap(st_dtype dtype, int ndim, const int64_t *shape, void *data,
                         void (*release)(void *ctx), void *ctx, st_tensor **out);

/* Frees the header and drops one storage reference. NULL is a no-op. */
void st_tensor_free(st_tensor *t);

/* ---- inspection ---- */
int64_t st_tensor_numel(const st_tensor *t);
size_t st_tensor_nbytes(const st_tensor *t);            /* numel * elsize */
bool st_tensor_is_contiguous(const st_tensor *t);       /* C order, no gaps */
bool st_tensor_same_shape(const st_tensor *a, const st_tensor *b);
/* Writes "[2,3,4]" into buf (always NUL-terminated); returns buf. */
char *st_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap);
/* Checks that t has the given dtype and shape (-1 in `shape` matches any
 * size); on mismatch fails with ST_ESHAPE/ST_EDTYPE naming `what`. */
st_status st_tensor_expect(const st_tensor *t, const char *what, st_dtype dtype,
                           int ndim, const int64_t *shape);
/* Element access by flat C-order index (any strides), as double. */
double st_tensor_get_flat(const st_tensor *t, int64_t i);
void st_tensor_set_flat(st_tensor *t, int64_t i, double v);

/* ---- views (share storage; the result is a new owned header) ---- */
/* Elements start..stop-1 (step > 0) along dim. Negative start/stop count
 * from the end, Python style; out-of-range values are clamped. */
st_status st_tensor_slice(const st_tensor *t, int dim, int64_t start, int64_t stop,
                          int64_t step, st_tensor **out);
/* Index along dim (removes the dimension). */
st_status st_tensor_select(const st_tensor *t, int dim, int64_t index, st_tensor **out);
/* New shape with the same number of elements; one entry may be -1.
 * A view when the tensor is contiguous, otherwise fails with ST_ESHAPE
 * (call st_tensor_contiguous first; there are no hidden copies). */
st_status st_tensor_reshape(const st_tensor *t, int ndim, const int64_t *shape, st_tensor **out);
st_status st_tensor_permute(const st_tensor *t, const int *perm, st_tensor **out);
st_status st_tensor_transpose(const st_tensor *t, int d0, int d1, st_tensor **out);
/* Another header on the same view (a cheap "retain"). */
st_status st_tensor_view(const st_tensor *t, st_tensor **out);

/* ---- copies ---- */
/* A contiguous tensor with the same values: a view when t already is
 * contiguous, a fresh copy otherwise. */
st_status st_tensor_contiguous(const st_tensor *t, st_tensor **out);
/* Always a fresh contiguous copy. */
st_status st_tensor_clone(const st_tensor *t, st_tensor **out);
/* Copies src into dst (same shape; dtypes may differ: values converted). */
st_status st_tensor_copy_into(st_tensor *dst, const st_tensor *src);
/* A fresh contiguous tensor of another dtype (float->int truncates). */
st_status st_tensor_to_dtype(const st_tensor *t, st_dtype dtype, st_tensor **out);
st_status st_tensor_fill(st_tensor *t, double value);

/* Typed pointer to the first element, or NULL on dtype mismatch. */
static inline float *st_f32(const st_tensor *t) { return t && t->dtype == ST_F32 ? (float *)t->data : NULL; }

#ifdef __cplusplus
}
#endif
#endif
