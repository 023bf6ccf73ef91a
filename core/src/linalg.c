/* Matrix products through BLAS and symmetric eigendecomposition / SVD
 * through LAPACKE (see linalg.h). */
#include "strata/linalg.h"
#include "strata/ops.h"

#include <cblas.h>
#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include "ops_internal.h"

/* A stack of `batch` matrices of rows x cols, as seen by the product. */
typedef struct mat {
    int64_t batch, bstride; /* bstride 0: the one matrix is shared */
    int64_t rows, cols, s0, s1;
    char *data;
} mat;

/* How BLAS reads one matrix: as stored (NoTrans, row-major with leading
 * dimension ld) or as the transpose of a row-major matrix (Trans). */
typedef struct layout {
    CBLAS_TRANSPOSE trans;
    int64_t ld;
} layout;

static int64_t max1(int64_t x) { return x > 1 ? x : 1; }

static bool blas_layout(const mat *m, layout *l)
{
    if (m->cols <= 1 || m->s1 == 1) {
        int64_t ld = m->rows <= 1 ? max1(m->cols) : m->s0;
        if (ld >= max1(m->cols) && ld <= INT_MAX) {
            *l = (layout){CblasNoTrans, ld};
            return true;
        }
    }
    if (m->rows <= 1 || m->s0 == 1) {
        int64_t ld = m->cols <= 1 ? max1(m->rows) : m->s1;
        if (ld >= max1(m->rows) && ld <= INT_MAX) {
            *l = (layout){CblasTrans, ld};
            return true;
        }
    }
    return false;
}

static CBLAS_TRANSPOSE flip(CBLAS_TRANSPOSE t) { return t == CblasTrans ? CblasNoTrans : CblasTrans; }

/* An operand of a @ b: 1-d is a row vector on the left and a column
 * vector on the right; 3-d is a batch. */
static mat operand_mat(const st_tensor *t, bool left)
{
    mat m = {1, 0, 0, 0, 0, 0, t->data};
    int nd = t->ndim;
    if (nd == 1) {
        m.rows = left ? 1 : t->shape[0];
        m.cols = left ? t->shape[0] : 1;
        m.s0 = left ? 0 : t->stride[0];
        m.s1 = left ? t->stride[0] : 0;
        return m;
    }
    if (nd == 3) {
        m.batch = t->shape[0];
        m.bstride = t->stride[0];
    }
    m.rows = t->shape[nd - 2];
    m.cols = t->shape[nd - 1];
    m.s0 = t->stride[nd - 2];
    m.s1 = t->stride[nd - 1];
    return m;
}

/* Result shape of a @ b, or ST_ESHAPE naming both shapes. */
static st_status product_shape(const char *name, const st_tensor *a, const st_tensor *b, int *nd, int64_t *shape)
{
    char sa[128], sb[128];
    st_ops_shape(a, sa, sizeof sa);
    st_ops_shape(b, sb, sizeof sb);
    if (a->ndim < 1 || a->ndim > 3 || b->ndim < 1 || b->ndim > 3)
        return st_fail(ST_ESHAPE, "%s: shapes %s and %s: operands must have 1, 2 or 3 dimensions", name, sa, sb);
    mat ma = operand_mat(a, true), mb = operand_mat(b, false);
    if (ma.cols != mb.rows)
        return st_fail(ST_ESHAPE, "%s: shapes %s and %s do not fit (inner sizes %lld and %lld)", name, sa, sb,
                       (long long)ma.cols, (long long)mb.rows);
    if (ma.batch != mb.batch && ma.batch != 1 && mb.batch != 1)
        return st_fail(ST_ESHAPE, "%s: shapes %s and %s have different batch sizes", name, sa, sb);
    int n = 0;
    if (a->ndim == 3 || b->ndim == 3) shape[n++] = ma.batch > mb.batch ? ma.batch : mb.batch;
    if (a->ndim > 1) shape[n++] = ma.rows;
    if (b->ndim > 1) shape[n++] = mb.cols;
    *nd = n;
    return ST_OK;
}

/* The result c as a stack of rows x cols matrices; has_* say which of
 * the batch, row and column dimensions c actually has. */
static mat result_mat(const st_tensor *c, bool has_batch, bool has_rows, bool has_cols, int64_t rows, int64_t cols)
{
    mat m = {1, 0, rows, cols, 0, 0, c->data};
    int d = 0;
    if (has_batch) {
        m.batch = c->shape[d];
        m.bstride = c->stride[d++];
    }
    if (has_rows) m.s0 = c->stride[d++];
    if (has_cols) m.s1 = c->stride[d++];
    return m;
}

/* One product C = alpha op(A) op(B) + beta C, with C read through lc. */
static void gemm1(st_dtype dt, int64_t M, int64_t N, int64_t K, double alpha, layout la, const char *a, layout lb,
                  const char *b, double beta, layout lc, char *c)
{
    if (lc.trans == CblasTrans) {
        /* C is stored column-major: compute C^T = op(B)^T op(A)^T. */
        layout t = la;
        const char *p = a;
        la = (layout){flip(lb.trans), lb.ld};
        lb = (layout){flip(t.trans), t.ld};
        a = b;
        b = p;
        int64_t m = M;
        M = N;
        N = m;
    }
    if (dt == ST_F32)
        cblas_sgemm(CblasRowMajor, la.trans, lb.trans, (int)M, (int)N, (int)K, (float)alpha, (const float *)a,
                    (int)la.ld, (const float *)b, (int)lb.ld, (float)beta, (float *)c, (int)lc.ld);
    else
        cblas_dgemm(CblasRowMajor, la.trans, lb.trans, (int)M, (int)N, (int)K, alpha, (const double *)a, (int)la.ld,
                    (const double *)b, (int)lb.ld, beta, (double *)c, (int)lc.ld);
}

/* Operand t as a BLAS-readable matrix stack; when its layout is not one
 * BLAS can read, a contiguous copy goes to *copy (freed by the caller). */
static st_status blas_operand(const st_tensor *t, bool left, mat *m, layout *l, st_tensor **copy)
{
    *m = operand_mat(t, left);
    if (blas_layout(m, l)) return ST_OK;
    ST_TRY(st_tensor_clone(t, copy));
    *m = operand_mat(*copy, left);
    if (blas_layout(m, l)) return ST_OK;
    return st_fail(ST_EINVAL, "matmul: matrix of %lld x %lld is too large for BLAS", (long long)m->rows,
                   (long long)m->cols);
}

/* c = alpha a @ b + beta c, all shapes and dtypes already checked. */
static st_status product(double alpha, const st_tensor *a, const st_tensor *b, double beta, st_tensor *c)
{
    mat ma, mb;
    layout la, lb, lc;
    st_tensor *ca = NULL, *cb = NULL, *cc = NULL;
    mat mc = result_mat(c, a->ndim == 3 || b->ndim == 3, a->ndim > 1, b->ndim > 1, operand_mat(a, true).rows,
                        operand_mat(b, false).cols);
    int64_t M = mc.rows, N = mc.cols, K = operand_mat(a, true).cols, B = mc.batch;
    if (B * M * N == 0) return ST_OK;
    if (K == 0) return beta == 0 ? st_tensor_fill(c, 0) : st_mul_scalar_inplace(c, beta);
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX)
        return st_fail(ST_EINVAL, "matmul: sizes %lld x %lld x %lld exceed the BLAS integer range", (long long)M,
                       (long long)K, (long long)N);
    st_status s = blas_operand(a, true, &ma, &la, &ca);
    if (s == ST_OK) s = blas_operand(b, false, &mb, &lb, &cb);
    if (s == ST_OK && !blas_layout(&mc, &lc)) {
        /* An output BLAS cannot address is computed in scratch. */
        s = beta == 0 ? st_tensor_new(c->dtype, c->ndim, c->shape, &cc) : st_tensor_clone(c, &cc);
        if (s == ST_OK) {
            mc = result_mat(cc, a->ndim == 3 || b->ndim == 3, a->ndim > 1, b->ndim > 1, M, N);
            if (!blas_layout(&mc, &lc)) s = st_fail(ST_EINVAL, "matmul: result too large for BLAS");
        }
    }
    if (s == ST_OK) {
        size_t es = st_dtype_size(c->dtype);
        int64_t sa = ma.batch == 1 ? 0 : ma.bstride, sb = mb.batch == 1 ? 0 : mb.bstride;
        /* A batch times one shared matrix is a single product when the
         * batch of a and c are plain stacked row-major matrices. */
        bool fold = B > 1 && sb == 0 && la.trans == CblasNoTrans && lc.trans == CblasNoTrans &&
                    sa == M * la.ld && mc.bstride == M * lc.ld && B * M <= INT_MAX;
        if (fold)
            gemm1(c->dtype, B * M, N, K, alpha, la, ma.data, lb, mb.data, beta, lc, mc.data);
        else
            for (int64_t i = 0; i < B; i++)
                gemm1(c->dtype, M, N, K, alpha, la, ma.data + i * sa * (int64_t)es, lb, mb.data + i * sb * (int64_t)es,
                      beta, lc, mc.data + i * mc.bstride * (int64_t)es);
        if (cc) s = st_tensor_copy_into(c, cc);
    }
    st_tensor_free(ca);
    st_tensor_free(cb);
    st_tensor_free(cc);
    return s;
}

st_status st_matmul(const st_tensor *a, const st_tensor *b, st_tensor **out)
{
    int nd = 0;
    int64_t shape[3];
    ST_TRY(st_ops_float_pair(a, b, "matmul"));
    ST_TRY(product_shape("matmul", a, b, &nd, shape));
    st_ops_out o;
    ST_TRY(st_ops_out_begin(&o, "matmul", a->dtype, nd, shape, out, false));
    return st_ops_out_end(&o, product(1, a, b, 0, o.target), out);
}

st_status st_gemm(double alpha, const st_tensor *a, const st_tensor *b, double beta, st_tensor *c)
{
    int nd = 0;
    int64_t shape[3];
    ST_TRY(st_ops_float_pair(a, b, "gemm"));
    ST_TRY(product_shape("gemm", a, b, &nd, shape));
    ST_TRY(st_tensor_expect(c, "gemm output", a->dtype, nd, shape));
    return product(alpha, a, b, beta, c);
}

/* ---- LAPACK ---- */

/* A contiguous copy of the matrix a (LAPACK overwrites its input), after
 * checking it is a finite float matrix small enough for LAPACK's ints. */
static st_status lapack_input(const char *name, const st_tensor *a, bool square, st_tensor **work)
{
    char s[128];
    ST_TRY(st_ops_float_only(a, name));
    if (a->ndim != 2 || (square && a->shape[0] != a->shape[1]))
        return st_fail(ST_ESHAPE, "%s: %s matrix expected, got shape %s", name, square ? "a square" : "a 2-d",
                       st_ops_shape(a, s, sizeof s));
    if (a->shape[0] > INT_MAX / 2 || a->shape[1] > INT_MAX / 2)
        return st_fail(ST_EINVAL, "%s: matrix %s is too large for LAPACK", name, st_ops_shape(a, s, sizeof s));
    st_tensor *w;
    ST_TRY(st_tensor_clone(a, &w));
    for (int64_t i = 0, n = st_tensor_numel(w); i < n; i++) {
        double v = w->dtype == ST_F32 ? ((float *)w->data)[i] : ((double *)w->data)[i];
        if (!isfinite(v)) {
            st_tensor_free(w);
            return st_fail(ST_ENUMERIC, "%s: matrix %s has a non-finite entry (%g at flat index %lld)", name,
                           st_ops_shape(a, s, sizeof s), v, (long long)i);
        }
    }
    *work = w;
    return ST_OK;
}

static st_status lapack_status(const char *name, int info, const st_tensor *a)
{
    char s[128];
    if (info == 0) return ST_OK;
    if (info > 0)
        return st_fail(ST_ENUMERIC, "%s: LAPACK did not converge on the %s matrix (info %d)", name,
                       st_ops_shape(a, s, sizeof s), info);
    return st_fail(ST_EINVAL, "%s: LAPACK rejected argument %d for the %s matrix", name, -info,
                   st_ops_shape(a, s, sizeof s));
}

st_status st_eigh(const st_tensor *a, st_tensor **evals, st_tensor **evecs)
{
    if (!evals) return st_fail(ST_EINVAL, "eigh: evals output missing");
    st_tensor *w;
    ST_TRY(lapack_input("eigh", a, true, &w));
    int n = (int)a->shape[0];
    st_ops_out ow = {0}, ov = {0};
    st_status s = st_ops_out_begin(&ow, "eigh evals", a->dtype, 1, a->shape, evals, true);
    if (s == ST_OK && evecs) s = st_ops_out_begin(&ov, "eigh evecs", a->dtype, 2, a->shape, evecs, true);
    if (s == ST_OK && n > 0) {
        char jobz = evecs ? 'V' : 'N';
        int info = a->dtype == ST_F32
                       ? LAPACKE_ssyevd(LAPACK_ROW_MAJOR, jobz, 'L', n, w->data, n, ow.target->data)
                       : LAPACKE_dsyevd(LAPACK_ROW_MAJOR, jobz, 'L', n, w->data, n, ow.target->data);
        s = lapack_status("eigh", info, a);
        if (s == ST_OK && evecs) memcpy(ov.target->data, w->data, st_tensor_nbytes(w));
    }
    st_tensor_free(w);
    if (evecs) s = st_ops_out_end(&ov, s, evecs);
    return st_ops_out_end(&ow, s, evals);
}

st_status st_svd(const st_tensor *a, st_tensor **u, st_tensor **s, st_tensor **vt)
{
    if (!s) return st_fail(ST_EINVAL, "svd: singular value output missing");
    if (!u != !vt) return st_fail(ST_EINVAL, "svd: u and vt must both be wanted or both be NULL");
    st_tensor *w;
    ST_TRY(lapack_input("svd", a, false, &w));
    int m = (int)a->shape[0], n = (int)a->shape[1], k = m < n ? m : n;
    int64_t ushape[2] = {m, k}, sshape[1] = {k}, vshape[2] = {k, n};
    st_ops_out ou = {0}, os = {0}, ov = {0};
    st_status st = st_ops_out_begin(&os, "svd s", a->dtype, 1, sshape, s, true);
    if (st == ST_OK && u) st = st_ops_out_begin(&ou, "svd u", a->dtype, 2, ushape, u, true);
    if (st == ST_OK && u) st = st_ops_out_begin(&ov, "svd vt", a->dtype, 2, vshape, vt, true);
    if (st == ST_OK && k > 0) {
        double dummy[1]; /* u and vt are not referenced with jobz 'N' */
        char jobz = u ? 'S' : 'N';
        void *pu = u ? ou.target->data : dummy, *pv = u ? ov.target->data : dummy;
        int info = a->dtype == ST_F32
                       ? LAPACKE_sgesdd(LAPACK_ROW_MAJOR, jobz, m, n, w->data, n, os.target->data, pu, k, pv, n)
                       : LAPACKE_dgesdd(LAPACK_ROW_MAJOR, jobz, m, n, w->data, n, os.target->data, pu, k, pv, n);
        st = lapack_status("svd", info, a);
    }
    st_tensor_free(w);
    if (u) {
        st = st_ops_out_end(&ov, st, vt);
        st = st_ops_out_end(&ou, st, u);
    }
    return st_ops_out_end(&os, st, s);
}
