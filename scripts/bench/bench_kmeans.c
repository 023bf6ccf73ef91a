/* k-means timing on a raw little-endian float32 file of N x D values:
 *
 *   bench_kmeans FILE N D K [n_init=20] [repeats=3] [seed=1] [threads=1]
 *
 * Prints one line per repeat and a summary line with the best and median
 * wall time (k-means++ seeding and all restarts included; reading the
 * file is not). `threads` runs the restarts in parallel
 * (st_kmeans_options.n_threads); OpenBLAS's own threads are set by
 * OPENBLAS_NUM_THREADS. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "strata/kmeans.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s FILE N D K [n_init] [repeats] [seed] [threads]\n", argv[0]);
        return 2;
    }
    int64_t n = atoll(argv[2]), d = atoll(argv[3]), k = atoll(argv[4]);
    int n_init = argc > 5 ? atoi(argv[5]) : 20, repeats = argc > 6 ? atoi(argv[6]) : 3;
    uint64_t seed = argc > 7 ? strtoull(argv[7], NULL, 10) : 1;
    int threads = argc > 8 ? atoi(argv[8]) : 1;
    if (repeats < 1 || repeats > 100) repeats = 3;
    st_tensor *x = NULL;
    if (st_tensor_new(ST_F32, 2, (int64_t[]){n, d}, &x) != ST_OK) {
        fprintf(stderr, "%s\n", st_error_message());
        return 1;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f || fread(x->data, sizeof(float), (size_t)(n * d), f) != (size_t)(n * d)) {
        fprintf(stderr, "cannot read %lld x %lld floats from %s\n", (long long)n, (long long)d, argv[1]);
        return 1;
    }
    fclose(f);
    st_kmeans_options o = st_kmeans_defaults(k);
    o.n_init = n_init;
    o.n_threads = threads;
    double times[100];
    st_rng rng;
    st_rng_seed(&rng, seed);
    for (int r = 0; r < repeats; r++) {
        st_kmeans_result *res = NULL;
        double t0 = now();
        st_status s = st_kmeans_fit(x, &o, &rng, &res);
        times[r] = now() - t0;
        if (s != ST_OK) {
            fprintf(stderr, "kmeans failed: %s\n", st_error_message());
            return 1;
        }
        int total_iters = 0;
        for (int i = 0; i < res->n_runs; i++) total_iters += res->run_iters[i];
        printf("strata repeat %d: %.3f s, inertia %.6g, best run %d iters %d, total iters %d, relocated %lld\n", r,
               times[r], res->inertia, res->best_run, res->n_iter, total_iters, (long long)res->n_relocated);
        st_kmeans_result_free(res);
    }
    qsort(times, (size_t)repeats, sizeof(double), cmp_double);
    printf("strata kmeans N=%lld D=%lld K=%lld n_init=%d threads=%d: best %.3f s, median %.3f s\n", (long long)n,
           (long long)d, (long long)k, n_init, threads, times[0], times[repeats / 2]);
    st_tensor_free(x);
    return 0;
}
