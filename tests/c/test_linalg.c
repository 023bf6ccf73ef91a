/* Matrix products against a naive triple loop for every operand layout
 * (contiguous, transposed view, padded rows, stepped slices), batching
 * and broadcasting; eigh and SVD by reconstructing the matrix from the
 * factors and checking orthogonality, plus hand-worked cases. */
#include <math.h>
#include "strata/linalg.h"
#include "strata/ops.h"
#include "test_ops_util.h"
#include "testing.h"

enum { M_CONTIGUOUS, M_TRANSPOSED, M_PADDED, M_PADDED_TRANSPOSED, M_STEPPED, M_REVERSED, M_LAYOUTS };

/* A random [.., r, c] stack (nd 2 or 3; batch size `b` for 3-d) with the
 * last two dimensions laid out as `layout`. */
static st_tensor *rand_matrix(st_rng *rng, st_dtype dt, int nd, int64_t b, int64_t r, int64_t c, int layout)
{
    int64_t shape[3] = {b, r, c}, *sh = nd == 3 ? shape : shape + 1;
    if (layout == M_STEPPED) return rand_tensor(rng, dt, nd, sh, LAYOUT_SLICED, -1, 1);
    if (layout == M_REVERSED) return rand_tensor(rng, dt, nd, sh, LAYOUT_PERMUTED, -1, 1);
    bool transposed = layout == M_TRANSPOSED || layout == M_PADDED_TRANSPOSED;
    bool padded = layout == M_PADDED || layout == M_PADDED_TRANSPOSED;
    int64_t st[3] = {b, transposed ? c : r, (transposed ? r : c) + (padded ? 3 : 0)};
    int64_t *ss = nd == 3 ? st : st + 1;
    st_tensor *base = NULL, *v = NULL, *w = NULL;
    if (st_tensor_new(dt, nd, ss, &base)) abort();
    if (st_tensor_slice(base, nd - 1, padded ? 1 : 0, ss[nd - 1] - (padded ? 2 : 0), 1, &v)) abort();
    st_tensor_free(base);
    if (transposed) {
        if (st_tensor_transpose(v, nd - 2, nd - 1, &w)) abort();
        st_tensor_free(v);
        v = w;
    }
    for (int64_t i = 0, n = st_tensor_numel(v); i < n; i++) st_tensor_set_flat(v, i, 2 * st_rng_uniform(rng) - 1);
    return v;
}

/* Element (i, j) of batch entry bi of an operand of st_matmul, with the
 * 1-d and broadcast-batch rules applied. */
static double operand_at(const st_tensor *t, bool left, int64_t bi, int64_t i, int64_t j)
{
    int64_t idx[3];
    if (t->ndim == 1) {
        idx[0] = left ? j : i;
    } else if (t->ndim == 2) {
        idx[0] = i;
        idx[1] = j;
    } else {
        idx[0] = t->shape[0] == 1 ? 0 : bi;
        idx[1] = i;
        idx[2] = j;
    }
    return at(t, idx);
}

/* Checks c = alpha a@b + beta c0 element by element (c0 may be NULL for
 * beta = 0); returns the number of mismatches. */
static int count_product_mismatches(const st_tensor *a, const st_tensor *b, const st_tensor *c, double alpha,
                                    double beta, const st_tensor *c0)
{
    int64_t K = a->shape[a->ndim - 1];
    int64_t M = a->ndim > 1 ? a->shape[a->ndim - 2] : 1, N = b->ndim > 1 ? b->shape[b->ndim - 1] : 1;
    int64_t B = c->ndim > 0 && (a->ndim == 3 || b->ndim == 3) ? c->shape[0] : 1;
    double tol = c->dtype == ST_F32 ? 2e-6 : 1e-14;
    int bad = 0;
    for (int64_t bi = 0; bi < B; bi++)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0, mag = 0;
                for (int64_t k = 0; k < K; k++) {
                    double p = operand_at(a, true, bi, i, k) * operand_at(b, false, bi, k, j);
                    s += p;
                    mag += fabs(p);
                }
                int64_t f = (bi * M + i) * N + j;
                double want = alpha * s + (beta != 0 ? beta * st_tensor_get_flat(c0, f) : 0);
                double got = st_tensor_get_flat(c, f);
                if (!(fabs(got - want) <= tol * (fabs(alpha) * mag + fabs(want) + 1))) bad++;
            }
    return bad;
}

static void test_matmul_2d_all_layouts(void)
{
    st_rng rng;
    st_rng_seed(&rng, 31);
    for (int la = 0; la < M_LAYOUTS; la++)
        for (int lb = 0; lb < M_LAYOUTS; lb++)
            for (int dt = ST_F32; dt <= ST_F64; dt++) {
                int64_t M = rand_between(&rng, 1, 23), K = rand_between(&rng, 1, 23), N = rand_between(&rng, 1, 23);
                if (la == 0 && lb == 1) M = 1; /* single-row / single-column corners */
                if (la == 1 && lb == 0) N = 1;
                st_tensor *a = rand_matrix(&rng, (st_dtype)dt, 2, 1, M, K, la);
                st_tensor *b = rand_matrix(&rng, (st_dtype)dt, 2, 1, K, N, lb);
                st_tensor *c = NULL;
                CHECK_OK(st_matmul(a, b, &c));
                if (c) {
                    CHECK(c->ndim == 2 && c->shape[0] == M && c->shape[1] == N && st_tensor_is_contiguous(c));
                    CHECK(count_product_mismatches(a, b, c, 1, 0, NULL) == 0);
                }
                st_tensor_free(a);
                st_tensor_free(b);
                st_tensor_free(c);
            }
}

static void test_matmul_batched_and_broadcast(void)
{
    st_rng rng;
    st_rng_seed(&rng, 32);
    /* {a ndim, a batch, b ndim, b batch} */
    int cases[][4] = {{3, 4, 3, 4}, {3, 5, 2, 0}, {2, 0, 3, 3}, {3, 1, 3, 4}, {3, 4, 3, 1}, {3, 1, 2, 0}};
    for (int t = 0; t < 6; t++)
        for (int la = 0; la < M_LAYOUTS; la++)
            for (int dt = ST_F32; dt <= ST_F64; dt++) {
                int lb = (la + t) % M_LAYOUTS;
                int64_t M = rand_between(&rng, 1, 9), K = rand_between(&rng, 1, 9), N = rand_between(&rng, 1, 9);
                st_tensor *a = rand_matrix(&rng, (st_dtype)dt, cases[t][0], cases[t][1], M, K, la);
                st_tensor *b = rand_matrix(&rng, (st_dtype)dt, cases[t][2], cases[t][3], K, N, lb);
                st_tensor *c = NULL;
                CHECK_OK(st_matmul(a, b, &c));
                if (c) {
                    int64_t B = cases[t][1] > cases[t][3] ? cases[t][1] : cases[t][3];
                    CHECK(c->ndim == 3 && c->shape[0] == B && c->shape[1] == M && c->shape[2] == N);
                    CHECK(count_product_mismatches(a, b, c, 1, 0, NULL) == 0);
                }
                st_tensor_free(a);
                st_tensor_free(b);
                st_tensor_free(c);
            }
}

static void test_matmul_vectors(void)
{
    st_rng rng;
    st_rng_seed(&rng, 33);
    int64_t K = 7, M = 4, N = 5, B = 3;
    int64_t vk[1] = {K};
    st_tensor *va = rand_tensor(&rng, ST_F64, 1, vk, LAYOUT_SLICED, -1, 1);
    st_tensor *vb = rand_tensor(&rng, ST_F64, 1, vk, LAYOUT_CONTIGUOUS, -1, 1);
    st_tensor *m = rand_matrix(&rng, ST_F64, 2, 1, M, K, M_TRANSPOSED);
    st_tensor *n = rand_matrix(&rng, ST_F64, 2, 1, K, N, M_PADDED);
    st_tensor *bn = rand_matrix(&rng, ST_F64, 3, B, K, N, M_CONTIGUOUS);
    st_tensor *bm = rand_matrix(&rng, ST_F64, 3, B, M, K, M_PADDED_TRANSPOSED);
    st_tensor *c = NULL;
    CHECK_OK(st_matmul(va, n, &c)); /* [K] @ [K,N] -> [N] */
    CHECK(c->ndim == 1 && c->shape[0] == N && count_product_mismatches(va, n, c, 1, 0, NULL) == 0);
    st_tensor_free(c);
    c = NULL;
    CHECK_OK(st_matmul(m, vb, &c)); /* [M,K] @ [K] -> [M] */
    CHECK(c->ndim == 1 && c->shape[0] == M && count_product_mismatches(m, vb, c, 1, 0, NULL) == 0);
    st_tensor_free(c);
    c = NULL;
    CHECK_OK(st_matmul(va, vb, &c)); /* dot product -> 0-d */
    CHECK(c->ndim == 0 && count_product_mismatches(va, vb, c, 1, 0, NULL) == 0);
    st_tensor_free(c);
    c = NULL;
    CHECK_OK(st_matmul(va, bn, &c)); /* [K] @ [B,K,N] -> [B,N] */
    CHECK(c->ndim == 2 && c->shape[0] == B && c->shape[1] == N && count_product_mismatches(va, bn, c, 1, 0, NULL) == 0);
    st_tensor_free(c);
    c = NULL;
    CHECK_OK(st_matmul(bm, vb, &c)); /* [B,M,K] @ [K] -> [B,M] */
    CHECK(c->ndim == 2 && c->shape[0] == B && c->shape[1] == M && count_product_mismatches(bm, vb, c, 1, 0, NULL) == 0);
    st_tensor_free(c);
    st_tensor_free(va);
    st_tensor_free(vb);
    st_tensor_free(m);
    st_tensor_free(n);
    st_tensor_free(bn);
    st_tensor_free(bm);
}

static void test_supplied_outputs_and_gemm(void)
{
    st_rng rng;
    st_rng_seed(&rng, 34);
    for (int layout = 0; layout < M_LAYOUTS; layout++)
        for (int nd = 2; nd <= 3; nd++) {
            int64_t B = 3, M = 6, K = 5, N = 4;
            st_tensor *a = rand_matrix(&rng, ST_F32, nd, B, M, K, M_CONTIGUOUS);
            st_tensor *b = rand_matrix(&rng, ST_F32, 2, B, K, N, M_TRANSPOSED);
            st_tensor *c = rand_matrix(&rng, ST_F32, nd, B, M, N, layout), *c0 = NULL, *keep = c;
            CHECK_OK(st_tensor_clone(c, &c0));
            CHECK_OK(st_gemm(0.5, a, b, 2, c));
            CHECK(count_product_mismatches(a, b, c, 0.5, 2, c0) == 0);
            /* beta = 0 ignores the old contents, even NaN */
            CHECK_OK(st_tensor_fill(c, NAN));
            CHECK_OK(st_matmul(a, b, &c));
            CHECK(c == keep);
            CHECK(count_product_mismatches(a, b, c, 1, 0, NULL) == 0);
            st_tensor_free(a);
            st_tensor_free(b);
            st_tensor_free(c);
            st_tensor_free(c0);
        }
}

/* Counts tensor storage allocations. libstrata allocates storage with
 * aligned_alloc; this definition in the test program takes precedence
 * over the C library's (ELF symbol interposition). */
static long g_aligned_allocs;

void *aligned_alloc(size_t align, size_t size)
{
    void *p = NULL;
    g_aligned_allocs++;
    return posix_memalign(&p, align, size) == 0 ? p : NULL;
}

static void test_transposed_operands_are_not_copied(void)
{
    st_rng rng;
    st_rng_seed(&rng, 35);
    st_tensor *a = rand_matrix(&rng, ST_F32, 2, 1, 64, 48, M_CONTIGUOUS);
    st_tensor *at = rand_matrix(&rng, ST_F32, 2, 1, 64, 48, M_TRANSPOSED);
    st_tensor *ap = rand_matrix(&rng, ST_F32, 2, 1, 64, 48, M_PADDED_TRANSPOSED);
    st_tensor *as = rand_matrix(&rng, ST_F32, 2, 1, 64, 48, M_STEPPED);
    st_tensor *bt = rand_matrix(&rng, ST_F32, 2, 1, 48, 32, M_TRANSPOSED);
    st_tensor *c = NULL;
    long n0 = g_aligned_allocs;
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){64, 32}, &c));
    CHECK(g_aligned_allocs == n0 + 1); /* the counter sees storage allocations */
    const st_tensor *lefts[3] = {a, at, ap};
    for (int i = 0; i < 3; i++) {
        n0 = g_aligned_allocs;
        CHECK_OK(st_matmul(lefts[i], bt, &c));
        CHECK(g_aligned_allocs == n0);
        CHECK(count_product_mismatches(lefts[i], bt, c, 1, 0, NULL) == 0);
    }
    n0 = g_aligned_allocs;
    CHECK_OK(st_matmul(as, bt, &c)); /* a stepped slice must be copied */
    CHECK(g_aligned_allocs == n0 + 1);
    CHECK(count_product_mismatches(as, bt, c, 1, 0, NULL) == 0);
    st_tensor *ts[] = {a, at, ap, as, bt, c};
    for (int i = 0; i < 6; i++) st_tensor_free(ts[i]);
}

static void test_empty_products(void)
{
    st_tensor *a = NULL, *b = NULL, *c = NULL, *e = NULL, *f = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){3, 0}, &a));
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){0, 2}, &b));
    CHECK_OK(st_tensor_full(ST_F32, 2, (int64_t[]){3, 2}, NAN, &c));
    CHECK_OK(st_matmul(a, b, &c)); /* K = 0: zeros */
    for (int i = 0; i < 6; i++) CHECK(st_tensor_get_flat(c, i) == 0);
    CHECK_OK(st_tensor_fill(c, 4));
    CHECK_OK(st_gemm(1, a, b, 0.5, c));
    for (int i = 0; i < 6; i++) CHECK(st_tensor_get_flat(c, i) == 2);
    CHECK_OK(st_matmul(b, c, &e) == ST_ESHAPE ? ST_OK : ST_EINVAL); /* [0,2] @ [3,2] */
    CHECK(e == NULL);
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){2, 3}, &f));
    CHECK_OK(st_matmul(b, f, &e)); /* [0,2] @ [2,3] -> [0,3] */
    CHECK(e->ndim == 2 && e->shape[0] == 0 && e->shape[1] == 3);
    st_tensor_free(e);
    st_tensor_free(f);
    st_tensor_free(a);
    st_tensor_free(b);
    st_tensor_free(c);
}

static void test_matmul_errors(void)
{
    st_tensor *a = NULL, *b = NULL, *d = NULL, *i = NULL, *four = NULL, *b3 = NULL, *c3 = NULL, *o = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){2, 3}, &a));
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){4, 5}, &b));
    CHECK_OK(st_tensor_new(ST_F64, 2, (int64_t[]){3, 5}, &d));
    CHECK_OK(st_tensor_new(ST_I32, 2, (int64_t[]){3, 5}, &i));
    CHECK_OK(st_tensor_new(ST_F32, 4, (int64_t[]){1, 1, 3, 2}, &four));
    CHECK_OK(st_tensor_new(ST_F32, 3, (int64_t[]){2, 2, 3}, &b3));
    CHECK_OK(st_tensor_new(ST_F32, 3, (int64_t[]){3, 3, 4}, &c3));
    CHECK_FAILS(st_matmul(a, b, &o), ST_ESHAPE, "shapes [2,3] and [4,5]");
    CHECK(strstr(st_error_message(), "inner sizes 3 and 4") != NULL);
    CHECK_FAILS(st_matmul(b3, c3, &o), ST_ESHAPE, "shapes [2,2,3] and [3,3,4] have different batch sizes");
    CHECK_FAILS(st_matmul(four, a, &o), ST_ESHAPE, "[1,1,3,2]");
    CHECK_FAILS(st_matmul(a, d, &o), ST_EDTYPE, "f32 and f64");
    CHECK_FAILS(st_matmul(i, i, &o), ST_EDTYPE, "i32");
    st_tensor *wrong = NULL;
    CHECK_OK(st_tensor_new(ST_F64, 2, (int64_t[]){2, 4}, &wrong));
    CHECK_FAILS(st_gemm(1, b3, a, 0, wrong), ST_ESHAPE, "shapes [2,2,3] and [2,3] do not fit");
    CHECK_FAILS(st_matmul(a, d, &wrong), ST_EDTYPE, "differ");
    st_tensor *d2 = NULL;
    CHECK_OK(st_tensor_new(ST_F64, 2, (int64_t[]){2, 3}, &d2));
    CHECK_FAILS(st_gemm(1, d2, d, 0, wrong), ST_ESHAPE, "[2,5]");
    CHECK(o == NULL);
    st_tensor *ts[] = {a, b, d, i, four, b3, c3, wrong, d2};
    for (int k = 0; k < 9; k++) st_tensor_free(ts[k]);
}

/* ---- eigh / svd ---- */

/* max |x - y| over all elements of two same-shaped tensors */
static double max_diff(const st_tensor *x, const st_tensor *y)
{
    double m = 0;
    for (int64_t i = 0, n = st_tensor_numel(x); i < n; i++) m = fmax(m, fabs(st_tensor_get_flat(x, i) - st_tensor_get_flat(y, i)));
    return m;
}

/* max |Q^T Q - I| for the columns of q (cols = true) or its rows. */
static double orthogonality_error(const st_tensor *q, bool cols)
{
    int64_t r = q->shape[0], c = q->shape[1], n = cols ? c : r, len = cols ? r : c;
    double e = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t k = 0; k < len; k++) {
                int64_t x[2] = {cols ? k : i, cols ? i : k}, y[2] = {cols ? k : j, cols ? j : k};
                s += at(q, x) * at(q, y);
            }
            e = fmax(e, fabs(s - (i == j)));
        }
    return e;
}

static void test_eigh_random(void)
{
    st_rng rng;
    st_rng_seed(&rng, 41);
    int64_t sizes[] = {1, 2, 5, 17, 40};
    for (int si = 0; si < 5; si++)
        for (int dt = ST_F32; dt <= ST_F64; dt++) {
            int64_t n = sizes[si], sh[2] = {n, n};
            double tol = dt == ST_F32 ? 2e-5 * (double)n : 1e-12 * (double)n;
            st_tensor *x = rand_tensor(&rng, (st_dtype)dt, 2, sh, LAYOUT_CONTIGUOUS, -1, 1), *a = NULL, *xt = NULL;
            CHECK_OK(st_tensor_transpose(x, 0, 1, &xt));
            CHECK_OK(st_add(x, xt, &a)); /* symmetric */
            /* g has garbage below the diagonal; its transposed view gt
             * (non-contiguous) has a clean lower triangle, which is all
             * that may be read */
            st_tensor *g = NULL, *gt = NULL;
            CHECK_OK(st_tensor_clone(a, &g));
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < i; j++) st_tensor_set_flat(g, i * n + j, 1e3);
            CHECK_OK(st_tensor_transpose(g, 0, 1, &gt));
            st_tensor *w = NULL, *v = NULL, *w2 = NULL;
            CHECK_OK(st_eigh(gt, &w, &v));
            CHECK_OK(st_eigh(a, &w2, NULL));
            for (int64_t i = 0; i + 1 < n; i++) CHECK(st_tensor_get_flat(w, i) <= st_tensor_get_flat(w, i + 1));
            CHECK(max_diff(w, w2) <= tol);
            CHECK(orthogonality_error(v, true) <= tol);
            /* reconstruct V diag(w) V^T */
            double err = 0;
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < n; j++) {
                    double s = 0;
                    for (int64_t k = 0; k < n; k++)
                        s += st_tensor_get_flat(v, i * n + k) * st_tensor_get_flat(w, k) * st_tensor_get_flat(v, j * n + k);
                    err = fmax(err, fabs(s - st_tensor_get_flat(a, i * n + j)));
                }
            CHECK(err <= tol * 4);
            if (n > 1) {
                st_tensor *wg = NULL;
                CHECK_OK(st_eigh(g, &wg, NULL));
                CHECK(max_diff(wg, w) > 1); /* g's garbage triangle is the one read */
                st_tensor_free(wg);
            }
            st_tensor *ts[] = {x, xt, a, g, gt, w, v, w2};
            for (int k = 0; k < 8; k++) st_tensor_free(ts[k]);
        }
}

static void test_eigh_hand_and_errors(void)
{
    double m[4] = {2, 1, 1, 2};
    st_tensor *a = NULL, *w = NULL, *v = NULL, *r = NULL, *nan = NULL, *i = NULL, *z = NULL;
    CHECK_OK(st_tensor_from_data(ST_F64, 2, (int64_t[]){2, 2}, m, sizeof m, &a));
    CHECK_OK(st_eigh(a, &w, &v));
    CHECK_CLOSE(st_tensor_get_flat(w, 0), 1, 1e-14, 1e-14);
    CHECK_CLOSE(st_tensor_get_flat(w, 1), 3, 1e-14, 1e-14);
    /* eigenvector of 1 is +-[1,-1]/sqrt2 (column 0), of 3 is +-[1,1]/sqrt2 */
    CHECK_CLOSE(fabs(st_tensor_get_flat(v, 0)), sqrt(0.5), 1e-14, 1e-14);
    CHECK_CLOSE(st_tensor_get_flat(v, 0), -st_tensor_get_flat(v, 2), 1e-14, 1e-14);
    CHECK_CLOSE(st_tensor_get_flat(v, 1), st_tensor_get_flat(v, 3), 1e-14, 1e-14);
    CHECK_OK(st_tensor_new(ST_F64, 2, (int64_t[]){2, 3}, &r));
    st_tensor *o = NULL;
    CHECK_FAILS(st_eigh(r, &o, NULL), ST_ESHAPE, "[2,3]");
    CHECK_OK(st_tensor_clone(a, &nan));
    st_tensor_set_flat(nan, 2, NAN);
    CHECK_FAILS(st_eigh(nan, &o, NULL), ST_ENUMERIC, "non-finite");
    CHECK_OK(st_tensor_new(ST_I32, 2, (int64_t[]){2, 2}, &i));
    CHECK_FAILS(st_eigh(i, &o, NULL), ST_EDTYPE, "i32");
    CHECK_FAILS(st_eigh(a, NULL, NULL), ST_EINVAL, "evals");
    CHECK(o == NULL);
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){0, 0}, &z));
    CHECK_OK(st_eigh(z, &o, NULL));
    CHECK(o->ndim == 1 && o->shape[0] == 0);
    st_tensor_free(o);
    st_tensor *ts[] = {a, w, v, r, nan, i, z};
    for (int k = 0; k < 7; k++) st_tensor_free(ts[k]);
}

static void test_svd_random(void)
{
    st_rng rng;
    st_rng_seed(&rng, 42);
    int64_t shapes[][2] = {{1, 1}, {7, 3}, {3, 7}, {12, 12}, {40, 9}, {5, 30}};
    for (int si = 0; si < 6; si++)
        for (int dt = ST_F32; dt <= ST_F64; dt++) {
            int64_t m = shapes[si][0], n = shapes[si][1], k = m < n ? m : n;
            double tol = dt == ST_F32 ? 1e-5 * (double)(m + n) : 1e-13 * (double)(m + n);
            st_tensor *a = rand_tensor(&rng, (st_dtype)dt, 2, shapes[si], (si % 2) ? LAYOUT_PERMUTED : LAYOUT_SLICED, -1, 1);
            if (si == 4) /* rank-deficient: duplicate column 0 into column 1 */
                for (int64_t i = 0; i < m; i++) st_tensor_set_flat(a, i * n + 1, st_tensor_get_flat(a, i * n));
            st_tensor *u = NULL, *s = NULL, *vt = NULL, *s2 = NULL;
            CHECK_OK(st_svd(a, &u, &s, &vt));
            CHECK_OK(st_svd(a, NULL, &s2, NULL));
            if (!u || !s || !vt || !s2) continue;
            CHECK(u->shape[0] == m && u->shape[1] == k && s->shape[0] == k && vt->shape[0] == k && vt->shape[1] == n);
            for (int64_t i = 0; i < k; i++) CHECK(st_tensor_get_flat(s, i) >= 0);
            for (int64_t i = 0; i + 1 < k; i++) CHECK(st_tensor_get_flat(s, i) >= st_tensor_get_flat(s, i + 1));
            CHECK(max_diff(s, s2) <= tol);
            CHECK(orthogonality_error(u, true) <= tol);
            CHECK(orthogonality_error(vt, false) <= tol);
            double err = 0;
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) {
                    double x = 0;
                    for (int64_t l = 0; l < k; l++)
                        x += st_tensor_get_flat(u, i * k + l) * st_tensor_get_flat(s, l) * st_tensor_get_flat(vt, l * n + j);
                    err = fmax(err, fabs(x - st_tensor_get_flat(a, i * n + j)));
                }
            CHECK(err <= tol * 4);
            if (si == 4) CHECK(st_tensor_get_flat(s, k - 1) <= tol);
            st_tensor *ts[] = {a, u, s, vt, s2};
            for (int q = 0; q < 5; q++) st_tensor_free(ts[q]);
        }
}

static void test_svd_hand_and_errors(void)
{
    float m[4] = {3, 0, 0, -2};
    st_tensor *a = NULL, *s = NULL, *u = NULL, *vt = NULL, *v1 = NULL, *inf = NULL;
    CHECK_OK(st_tensor_from_data(ST_F32, 2, (int64_t[]){2, 2}, m, sizeof m, &a));
    CHECK_OK(st_svd(a, NULL, &s, NULL));
    CHECK_CLOSE(st_tensor_get_flat(s, 0), 3, 1e-6, 0);
    CHECK_CLOSE(st_tensor_get_flat(s, 1), 2, 1e-6, 0);
    st_tensor *o = NULL;
    CHECK_FAILS(st_svd(a, &u, &o, NULL), ST_EINVAL, "both");
    CHECK_FAILS(st_svd(a, NULL, NULL, NULL), ST_EINVAL, "singular value");
    CHECK_OK(st_tensor_new(ST_F32, 1, (int64_t[]){3}, &v1));
    CHECK_FAILS(st_svd(v1, NULL, &o, NULL), ST_ESHAPE, "[3]");
    CHECK_OK(st_tensor_clone(a, &inf));
    st_tensor_set_flat(inf, 1, INFINITY);
    CHECK_FAILS(st_svd(inf, &u, &o, &vt), ST_ENUMERIC, "non-finite");
    CHECK(o == NULL && u == NULL && vt == NULL);
    st_tensor *ts[] = {a, s, v1, inf};
    for (int q = 0; q < 4; q++) st_tensor_free(ts[q]);
}

int main(void)
{
    RUN(test_matmul_2d_all_layouts);
    RUN(test_matmul_batched_and_broadcast);
    RUN(test_matmul_vectors);
    RUN(test_supplied_outputs_and_gemm);
    RUN(test_transposed_operands_are_not_copied);
    RUN(test_empty_products);
    RUN(test_matmul_errors);
    RUN(test_eigh_random);
    RUN(test_eigh_hand_and_errors);
    RUN(test_svd_random);
    RUN(test_svd_hand_and_errors);
    return TEST_SUMMARY();
}
