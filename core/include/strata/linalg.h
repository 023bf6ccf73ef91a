/* Linear algebra over tensors: matrix products through BLAS (sgemm for
 * f32, dgemm for f64) and symmetric eigendecomposition and SVD through
 * LAPACKE.
 *
 * Output convention as in tensor.h: *out == NULL allocates, a non-NULL
 * *out must have the result's dtype and shape and is overwritten. Outputs
 * must not overlap inputs.
 *
 * Strided operands cost nothing extra: a matrix whose rows or whose
 * columns are contiguous (a plain matrix, a row slice of one, or the
 * transposed / permuted view of either) is passed to BLAS as it is, with
 * CblasTrans and the leading dimension taken from its strides. Only a
 * matrix in which neither dimension has unit stride (e.g. a slice with
 * step > 1 along its columns) is first copied to contiguous scratch. */
#ifndef STRATA_LINALG_H
#define STRATA_LINALG_H

#include "strata/status.h"
#include "strata/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Matrix product a @ b (numpy matmul rules, up to 3 dimensions):
 *   [M,K]   @ [K,N]   -> [M,N]
 *   [B,M,K] @ [B,K,N] -> [B,M,N]   (batched; a batch size of 1 broadcasts)
 *   [B,M,K] @ [K,N]   -> [B,M,N]   (the 2-d operand is shared by the batch)
 *   [M,K]   @ [B,K,N] -> [B,M,N]
 * A 1-d a is a row vector [1,K] and a 1-d b a column vector [K,1]; that
 * dimension is removed from the result ([K] @ [K,N] -> [N]). Both operands
 * must have the same float dtype. Mismatches fail with ST_ESHAPE naming
 * both shapes; K = 0 gives zeros. */
st_status st_matmul(const st_tensor *a, const st_tensor *b, st_tensor **out);

/* c = alpha * (a @ b) + beta * c for an existing c (same shape rules as
 * st_matmul; c has the result's shape and dtype). With beta = 0 the old
 * contents of c are ignored, even NaN. Use it to accumulate gradients
 * (dW += X^T dY is st_gemm(1, Xt, dY, 1, dW) with Xt a transposed view). */
st_status st_gemm(double alpha, const st_tensor *a, const st_tensor *b, double beta, st_tensor *c);

/* Eigendecomposition of a real symmetric [n,n] matrix (f32 or f64,
 * LAPACK syevd): evals [n] in ascending order, evecs [n,n] with the
 * unit-norm eigenvector of evals[j] in column j, so a = V diag(w) V^T.
 * Only the lower triangle of a is read (symmetry is not checked). evecs
 * may be NULL when only the eigenvalues are wanted. A non-square or
 * non-finite input fails with ST_ESHAPE / ST_ENUMERIC; a failure to
 * converge is ST_ENUMERIC. */
st_status st_eigh(const st_tensor *a, st_tensor **evals, st_tensor **evecs);

/* Thin singular value decomposition of an [m,n] matrix (f32 or f64,
 * LAPACK gesdd), k = min(m, n): u [m,k], s [k] in descending order, vt
 * [k,n], so a = U diag(s) Vt with orthonormal columns of U and rows of Vt.
 * u and vt may both be NULL when only the singular values are wanted
 * (either both or neither). Non-finite input or a failure to converge is
 * ST_ENUMERIC. */
st_status st_svd(const st_tensor *a, st_tensor **u, st_tensor **s, st_tensor **vt);

#ifdef __cplusplus
}
#endif
#endif
