/* ResNet forward throughput: images/s of a model at a batch size, and
 * optionally the wall time and peak memory of extracting taps for a whole
 * CIFAR-10 folder. Run by scripts/bench_resnet.sh beside PyTorch.
 *
 *   bench_resnet MODEL.safetensors [batch=256] [repeats=5]
 *   bench_resnet MODEL.safetensors --extract CIFAR_DIR OUT_DIR [batch] [tap ...]
 * STRATA_THREADS sets the net's threads (default 1). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "strata/extract.h"
#include "strata/resnet.h"
#include "strata/rng.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* CPU time of the whole process (all threads): under load it is less
 * inflated than wall time. */
static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double peak_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static int fail(const char *what)
{
    fprintf(stderr, "bench_resnet: %s: %s\n", what, st_error_message());
    return 1;
}

static int throughput(st_net *net, int batch, int repeats)
{
    int h, w, c;
    st_net_input_shape(net, &h, &w, &c);
    st_tensor *x = NULL;
    st_rng rng;
    st_rng_seed(&rng, 1);
    if (st_tensor_new(ST_F32, 4, (int64_t[]){batch, h, w, c}, &x) || st_rng_fill_normal(&rng, x, 0, 1))
        return fail("input");
    if (st_net_forward(net, x, NULL, 0)) return fail("forward"); /* warm-up: plans the buffers */
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < repeats; r++) {
        double t0 = now(), c0 = cpu_now();
        if (st_net_forward(net, x, NULL, 0)) return fail("forward");
        double t = now() - t0, c = cpu_now() - c0;
        if (t < best) best = t;
        if (c < best_cpu) best_cpu = c;
    }
    printf("strata %s batch %d, %d threads: %.1f images/s (best of %d: %.3f s), %.1f images per CPU-second, "
           "peak RSS %.0f MB\n",
           st_net_name(net), batch, st_net_threads(net), batch / best, repeats, best, batch / best_cpu, peak_mb());
    st_tensor_free(x);
    return 0;
}

static int extract(st_net *net, const char *cifar, const char *out, int batch, const char *const *taps, int n_taps)
{
    char paths[6][1024];
    const char *p[6];
    for (int i = 0; i < 5; i++) snprintf(paths[i], sizeof paths[i], "%s/data_batch_%d.bin", cifar, i + 1);
    snprintf(paths[5], sizeof paths[5], "%s/test_batch_first1000.bin", cifar);
    for (int i = 0; i < 6; i++) p[i] = paths[i];
    st_dataset *ds = NULL;
    if (st_cifar_open(ST_CIFAR10, p, 6, &ds)) return fail("dataset");
    st_extract_options o = {.taps = taps, .n_taps = n_taps, .batch = batch, .dir = out};
    double t0 = now();
    if (st_extract_run(net, ds, &o, NULL)) return fail("extract");
    double t = now() - t0;
    printf("strata extract %lld images, %d taps, batch %d, %d threads: %.1f s (%.0f images/s), peak RSS %.0f MB\n",
           (long long)st_dataset_count(ds), n_taps, batch, st_net_threads(net), t, st_dataset_count(ds) / t, peak_mb());
    st_dataset_free(ds);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [batch [repeats]] | MODEL --extract CIFAR_DIR OUT_DIR [batch [tap ...]]\n",
                argv[0]);
        return 2;
    }
    st_net *net = NULL;
    if (st_resnet_load(argv[1], &net)) return fail("load");
    const char *threads = getenv("STRATA_THREADS");
    if (threads && st_net_set_threads(net, atoi(threads))) return fail("threads");
    int rc;
    if (argc >= 5 && strcmp(argv[2], "--extract") == 0) {
        static const char *const table1[] = {"activation", "activation_18", "activation_36", "activation_54"};
        int batch = argc > 5 ? atoi(argv[5]) : 256;
        rc = argc > 6 ? extract(net, argv[3], argv[4], batch, (const char *const *)argv + 6, argc - 6)
                      : extract(net, argv[3], argv[4], batch, table1, 4);
    } else {
        rc = throughput(net, argc > 2 ? atoi(argv[2]) : 256, argc > 3 ? atoi(argv[3]) : 5);
    }
    st_net_free(net);
    return rc;
}
