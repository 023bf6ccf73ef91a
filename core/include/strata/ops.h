/* Tensor math: elementwise arithmetic, reductions, concatenation,
 * indexing and top-k.
 *
 * Output convention (as everywhere in libstrata, see tensor.h): `st_tensor
 * **out` with *out == NULL allocates a new contiguous tensor; a non-NULL
 * *out must already have the result's dtype and shape (any strides) and is
 * written in place. On failure *out is left untouched (its contents may be
 * partly written when it was supplied by the caller).
 *
 * Inputs may have any strides (slices, permutes, transposes). A supplied
 * output may be exactly the same tensor as an input of an elementwise call
 * (`st_add(a, b, &a)` is `a += b`); any other overlap between an output
 * and an input is not allowed.
 *
 * Dtypes: arithmetic, comparisons, reductions and top-k work on f32 and f64 (both
 * operands of a binary op must share the dtype); integer and u8 tensors
 * give ST_EDTYPE there ("convert with st_tensor_to_dtype first"). f32 sums
 * and means accumulate in double. Concatenation and indexing move
 * elements of any dtype.
 *
 * Dimensions: a `dim` argument may be negative and then counts from the
 * end, Python style (-1 is the last dimension). */
#ifndef STRATA_OPS_H
#define STRATA_OPS_H

#include <stdbool.h>
#include <stdint.h>
#include "strata/status.h"
#include "strata/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- elementwise, tensor with tensor ----
 * Shapes broadcast as in numpy: they are aligned at their trailing
 * dimensions, and in each position the sizes must be equal or one of them
 * 1 (missing leading dimensions count as 1). The result has the
 * broadcast shape. A mismatch fails with ST_ESHAPE naming both shapes. */
st_status st_add(const st_tensor *a, const st_tensor *b, st_tensor **out);
st_status st_sub(const st_tensor *a, const st_tensor *b, st_tensor **out);
st_status st_mul(const st_tensor *a, const st_tensor *b, st_tensor **out);
st_status st_div(const st_tensor *a, const st_tensor *b, st_tensor **out);

/* In place: a = a (op) b, where b broadcasts to a's shape (a's shape is
 * not allowed to grow). */
st_status st_add_inplace(st_tensor *a, const st_tensor *b);
st_status st_sub_inplace(st_tensor *a, const st_tensor *b);
st_status st_mul_inplace(st_tensor *a, const st_tensor *b);
st_status st_div_inplace(st_tensor *a, const st_tensor *b);

/* ---- elementwise, tensor with scalar ----
 * a + s, a - s, s - a, a * s, a / s, s / a. The scalar is converted to
 * a's dtype first (so f32 arithmetic stays in f32). */
st_status st_add_scalar(const st_tensor *a, double s, st_tensor **out);
st_status st_sub_scalar(const st_tensor *a, double s, st_tensor **out);
st_status st_rsub_scalar(const st_tensor *a, double s, st_tensor **out);
st_status st_mul_scalar(const st_tensor *a, double s, st_tensor **out);
st_status st_div_scalar(const st_tensor *a, double s, st_tensor **out);
st_status st_rdiv_scalar(const st_tensor *a, double s, st_tensor **out);
/* a += s, a *= s. */
st_status st_add_scalar_inplace(st_tensor *a, double s);
st_status st_mul_scalar_inplace(st_tensor *a, double s);

/* ---- elementwise, unary ----
 * IEEE semantics: log of a negative number or sqrt of one is NaN, log(0)
 * is -Inf; these are values, not errors. */
st_status st_exp(const st_tensor *a, st_tensor **out);
st_status st_log(const st_tensor *a, st_tensor **out);
st_status st_sqrt(const st_tensor *a, st_tensor **out);
st_status st_abs(const st_tensor *a, st_tensor **out);
st_status st_neg(const st_tensor *a, st_tensor **out);
/* max(a, 0); NaN stays NaN. */
st_status st_relu(const st_tensor *a, st_tensor **out);
/* a ** p for a scalar exponent p (C pow semantics). */
st_status st_pow_scalar(const st_tensor *a, double p, st_tensor **out);
/* min(max(a, lo), hi). lo > hi or a NaN bound is ST_EINVAL; NaN
 * elements stay NaN. Use -INFINITY / INFINITY for a one-sided clamp. */
st_status st_clamp(const st_tensor *a, double lo, double hi, st_tensor **out);

/* ---- comparisons and selection ----
 * A comparison gives a u8 mask, 1 where it holds and 0 elsewhere, with
 * the broadcast shape (C semantics: every comparison with NaN is false
 * except ST_NE). */
typedef enum st_cmp { ST_EQ, ST_NE, ST_LT, ST_LE, ST_GT, ST_GE } st_cmp;
st_status st_compare(st_cmp op, const st_tensor *a, const st_tensor *b, st_tensor **out);
/* a (op) s, with s rounded to a's dtype. */
st_status st_compare_scalar(st_cmp op, const st_tensor *a, double s, st_tensor **out);
/* out = cond ? a : b elementwise; cond is u8 (nonzero is true), a and b
 * share a float dtype, and all three broadcast together. */
st_status st_where(const st_tensor *cond, const st_tensor *a, const st_tensor *b, st_tensor **out);

/* ---- reductions along one dimension ----
 * The result drops `dim` (or keeps it with size 1 when keepdim) and has
 * a's dtype (argmax/argmin: i64). Reducing an empty dimension: sum is 0,
 * mean is NaN, max/min/argmax/argmin fail with ST_EINVAL. NaN
 * propagates: max/min return NaN and argmax/argmin the index of the first
 * NaN. Ties in argmax/argmin go to the lowest index. */
st_status st_sum(const st_tensor *a, int dim, bool keepdim, st_tensor **out);
st_status st_mean(const st_tensor *a, int dim, bool keepdim, st_tensor **out);
st_status st_max(const st_tensor *a, int dim, bool keepdim, st_tensor **out);
st_status st_min(const st_tensor *a, int dim, bool keepdim, st_tensor **out);
st_status st_argmax(const st_tensor *a, int dim, bool keepdim, st_tensor **out);
st_status st_argmin(const st_tensor *a, int dim, bool keepdim, st_tensor **out);
/* Variance sum((x - mean)^2) / (n - ddof): ddof 0 is the population
 * variance, 1 the sample variance. ddof < 0 is ST_EINVAL; n <= ddof gives
 * NaN. Computed in two passes (mean first) for accuracy. */
st_status st_var(const st_tensor *a, int dim, int ddof, bool keepdim, st_tensor **out);

/* ---- reductions over all elements ----
 * Same rules as above, with the whole tensor as one dimension. argmax and
 * argmin give the flat C-order index. */
st_status st_sum_all(const st_tensor *a, double *out);
st_status st_mean_all(const st_tensor *a, double *out);
st_status st_max_all(const st_tensor *a, double *out);
st_status st_min_all(const st_tensor *a, double *out);
st_status st_argmax_all(const st_tensor *a, int64_t *out);
st_status st_argmin_all(const st_tensor *a, int64_t *out);
st_status st_var_all(const st_tensor *a, int ddof, double *out);

/* ---- concatenation and indexing (any dtype) ---- */
/* Joins n >= 1 tensors along dim. All must share dtype, ndim and every
 * size except along dim; a mismatch names the offending part and both
 * shapes. */
st_status st_cat(int n, const st_tensor *const *parts, int dim, st_tensor **out);

/* out = a with only the entries index[0], index[1], ... along dim, in that
 * order (repeats allowed): out.shape[dim] = numel(index). index is a 1-d
 * i64 or i32 tensor; every entry must lie in [0, a.shape[dim]), otherwise
 * ST_EINVAL names the bad entry. */
st_status st_index_select(const st_tensor *a, int dim, const st_tensor *index, st_tensor **out);

/* Gathers along dim: out has index's shape and, for a 3-d example with
 * dim 1, out[i][j][k] = a[i][index[i][j][k]][k]. index (i64 or i32) has
 * a's number of dimensions and index.shape[d] <= a.shape[d] for d != dim;
 * entries are bounds-checked as in st_index_select. */
st_status st_gather(const st_tensor *a, int dim, const st_tensor *index, st_tensor **out);

/* The k largest (largest = true) or smallest entries along dim, sorted
 * (best first), with their i64 positions along dim; both outputs have a's
 * shape with shape[dim] = k. Ties go to the lower index; NaN ranks above
 * every number (chosen first by largest, last by smallest). 0 <= k <=
 * a.shape[dim]. `values` may be NULL when only the indices are wanted.
 * Runs in O(n log k) per row. */
st_status st_topk(const st_tensor *a, int64_t k, int dim, bool largest, st_tensor **values, st_tensor **indices);

#ifdef __cplusplus
}
#endif
#endif
