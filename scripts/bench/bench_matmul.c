/* st_matmul against a raw cblas_sgemm call on square f32 matrices.
 *
 * For each size n (default 1024 2048 4096) it times, best of `runs`:
 *   raw     cblas_sgemm on contiguous buffers
 *   st      st_matmul(A, B, &C) with C preallocated (the inner-loop use)
 *   raw_t   cblas_sgemm(CblasTrans, ...) on the same buffer read as A^T
 *   st_t    st_matmul on a transposed view of A (must map to CblasTrans,
 *           with no copy, so it should match raw_t)
 * and prints GFLOP/s (2 n^3 / time) and the ratios st/raw. The runs of
 * the four variants are interleaved so background load hits them alike.
 * Usage: bench_matmul [runs] [n ...] */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "strata/linalg.h"
#include "strata/rng.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int check(st_status s)
{
    if (s != ST_OK) fprintf(stderr, "bench_matmul: %s\n", st_error_message());
    return s != ST_OK;
}

static double max_abs_diff(const float *x, const float *y, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i] - (double)y[i]));
    return m;
}

static int bench(int n, int runs)
{
    int64_t shape[2] = {n, n};
    st_tensor *a = NULL, *b = NULL, *c = NULL, *at = NULL, *ref = NULL;
    st_rng rng;
    st_rng_seed(&rng, 7);
    if (check(st_tensor_new(ST_F32, 2, shape, &a)) || check(st_tensor_new(ST_F32, 2, shape, &b)) ||
        check(st_tensor_new(ST_F32, 2, shape, &c)) || check(st_tensor_new(ST_F32, 2, shape, &ref)) ||
        check(st_rng_fill_uniform(&rng, a, -1, 1)) || check(st_rng_fill_uniform(&rng, b, -1, 1)) ||
        check(st_tensor_transpose(a, 0, 1, &at)))
        return 1;
    const float *pa = a->data, *pb = b->data;
    float *pc = c->data, *pr = ref->data;
    double best[4] = {INFINITY, INFINITY, INFINITY, INFINITY}, diff = 0, diff_t = 0;
    /* warm-up: page in the buffers and start OpenBLAS's threads */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, pa, n, pb, n, 0.0f, pr, n);
    for (int r = 0; r < runs; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, pa, n, pb, n, 0.0f, pr, n);
        double t1 = now();
        if (check(st_matmul(a, b, &c))) return 1;
        double t2 = now();
        diff = max_abs_diff(pc, pr, (int64_t)n * n);
        double t3 = now();
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, n, 1.0f, pa, n, pb, n, 0.0f, pr, n);
        double t4 = now();
        if (check(st_matmul(at, b, &c))) return 1;
        double t5 = now();
        diff_t = max_abs_diff(pc, pr, (int64_t)n * n);
        double t[4] = {t1 - t0, t2 - t1, t4 - t3, t5 - t4};
        for (int k = 0; k < 4; k++) best[k] = fmin(best[k], t[k]);
    }
    double flop = 2.0 * n * (double)n * n, g[4];
    for (int k = 0; k < 4; k++) g[k] = flop / best[k] * 1e-9;
    printf("%5d %10.1f %10.1f %7.3f %10.1f %10.1f %7.3f   %g %g\n", n, g[0], g[1], g[1] / g[0], g[2], g[3], g[3] / g[2],
           diff, diff_t);
    fflush(stdout);
    st_tensor_free(a);
    st_tensor_free(b);
    st_tensor_free(c);
    st_tensor_free(at);
    st_tensor_free(ref);
    return 0;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1) {
        fprintf(stderr, "usage: bench_matmul [runs] [n ...]\n");
        return 2;
    }
    const char *threads = getenv("OPENBLAS_NUM_THREADS");
    printf("# st_matmul vs raw cblas_sgemm, f32, best of %d, OPENBLAS_NUM_THREADS=%s\n", runs, threads ? threads : "(unset)");
    printf("#    n   raw GF/s    st GF/s  st/raw  rawT GF/s   stT GF/s  stT/rawT   maxdiff maxdiffT\n");
    int sizes[3] = {1024, 2048, 4096}, nsizes = argc > 2 ? argc - 2 : 3;
    for (int i = 0; i < nsizes; i++) {
        int n = argc > 2 ? atoi(argv[i + 2]) : sizes[i];
        if (n < 1) {
            fprintf(stderr, "bench_matmul: bad size '%s'\n", argv[i + 2]);
            return 2;
        }
        if (bench(n, runs)) return 1;
    }
    return 0;
}
