/* Streaming k-NN timing on files written by scripts/bench_knn_scipy.py:
 *
 *   bench_knn DIR Q N L D K [repeats=3] [train_block=0] [query_block=0]
 *
 * reads DIR/query_<l>.f32 ([Q, D]) and DIR/train_<l>.f32 ([N, D]) for
 * l = 0..L-1 (raw little-endian float32), runs the weighted search with
 * weights 1, 2, ..., L, prints the best and median wall time and the
 * peak resident memory the search added on top of the loaded data, and
 * writes the indices of the last repeat to DIR/strata_idx.i64 (0-based)
 * for the script's agreement check. Block sizes 0 are the defaults. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include "strata/knn.h"

#define MAXL 16

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Peak resident set size of this process so far, in MiB. */
static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static st_tensor *load(const char *dir, const char *name, int l, int64_t rows, int64_t cols)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s_%d.f32", dir, name, l);
    st_tensor *t = NULL;
    if (st_tensor_new(ST_F32, 2, (int64_t[]){rows, cols}, &t) != ST_OK) return NULL;
    FILE *f = fopen(path, "rb");
    size_t n = (size_t)(rows * cols);
    if (!f || fread(t->data, sizeof(float), n, f) != n) {
        fprintf(stderr, "cannot read %zu floats from %s\n", n, path);
        if (f) fclose(f);
        st_tensor_free(t);
        return NULL;
    }
    fclose(f);
    return t;
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: %s DIR Q N L D K [repeats] [train_block] [query_block]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int64_t q = atoll(argv[2]), n = atoll(argv[3]), d = atoll(argv[5]), k = atoll(argv[6]);
    int layers = atoi(argv[4]), repeats = argc > 7 ? atoi(argv[7]) : 3;
    if (layers < 1 || layers > MAXL || repeats < 1 || repeats > 100) {
        fprintf(stderr, "1..%d layers and 1..100 repeats\n", MAXL);
        return 2;
    }
    st_tensor *qs[MAXL], *ts[MAXL];
    double w[MAXL];
    for (int l = 0; l < layers; l++) {
        qs[l] = load(dir, "query", l, q, d);
        ts[l] = load(dir, "train", l, n, d);
        if (!qs[l] || !ts[l]) return 1;
        w[l] = l + 1;
    }
    double base = peak_rss_mib(), times[100];
    st_knn_options o = st_knn_defaults(k);
    o.weights = w;
    o.train_block = argc > 8 ? atoll(argv[8]) : 0;
    o.query_block = argc > 9 ? atoll(argv[9]) : 0;
    st_tensor *idx = NULL, *dist = NULL;
    for (int r = 0; r < repeats; r++) {
        st_tensor_free(idx);
        st_tensor_free(dist);
        idx = dist = NULL;
        double t0 = now();
        if (st_knn_search(layers, (const st_tensor *const *)qs, (const st_tensor *const *)ts, &o, &idx, &dist) !=
            ST_OK) {
            fprintf(stderr, "knn failed: %s\n", st_error_message());
            return 1;
        }
        times[r] = now() - t0;
        printf("strata repeat %d: %.3f s\n", r, times[r]);
    }
    double added = peak_rss_mib() - base;
    qsort(times, (size_t)repeats, sizeof(double), cmp_double);
    printf("strata knn Q=%lld N=%lld L=%d D=%lld k=%lld: best %.3f s, median %.3f s, peak RSS %.0f MiB "
           "(%.1f MiB above the loaded data)\n",
           (long long)q, (long long)n, layers, (long long)d, (long long)k, times[0], times[repeats / 2],
           peak_rss_mib(), added);
    char path[4096];
    snprintf(path, sizeof path, "%s/strata_idx.i64", dir);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(idx->data, sizeof(int64_t), (size_t)(q * k), f);
        fclose(f);
    }
    st_tensor_free(idx);
    st_tensor_free(dist);
    for (int l = 0; l < layers; l++) {
        st_tensor_free(qs[l]);
        st_tensor_free(ts[l]);
    }
    return 0;
}
