/* Helpers shared by the ops_*.c and linalg.c sources (not public API). */
#ifndef STRATA_OPS_INTERNAL_H
#define STRATA_OPS_INTERNAL_H

#include <stdbool.h>
#include "strata/tensor.h"

/* Resolves a possibly negative dim of a (ndim > 0) into 0..ndim-1. */
st_status st_ops_dim(const st_tensor *a, int dim, const char *op, int *out);

/* ST_EDTYPE unless t is f32 or f64. */
st_status st_ops_float_only(const st_tensor *t, const char *op);

/* ST_EDTYPE unless a and b share one float dtype. */
st_status st_ops_float_pair(const st_tensor *a, const st_tensor *b, const char *op);

/* Shape "[d0,d1,...]" of t into buf. */
char *st_ops_shape(const st_tensor *t, char *buf, size_t cap);

/* One result of operation `op`. begin() checks a caller-supplied *out
 * (dtype and shape; errors name "<op> output") or allocates a new tensor; `target` is then the
 * tensor to write: the caller's own, or, when the caller's tensor is not
 * contiguous and `contiguous` was asked for, a contiguous scratch.
 * end() copies scratch back, hands a new tensor to *out on success and
 * frees whatever must go on failure; it returns `s`. */
typedef struct st_ops_out {
    st_tensor *target;
    st_tensor *user;  /* the caller's tensor, or NULL when allocated */
    bool scratch;     /* target is scratch for `user` */
} st_ops_out;

st_status st_ops_out_begin(st_ops_out *o, const char *op, st_dtype dtype, int ndim, const int64_t *shape,
                           st_tensor *const *out, bool contiguous);
st_status st_ops_out_end(st_ops_out *o, st_status s, st_tensor **out);

#endif
