/* Throughput of the reference autoencoder, in one of two modes:
 *   train: a training step (encode, decode, MSE, backward and Adam on a
 *          batch, st_cae_pretrain_step), as in autoencoder pretraining;
 *   embed: the encoder alone (st_cae_embed), as in the trainer's
 *          full-data passes.
 *
 * usage: bench_cae H W C [batch=32] [seconds=3] [threads=1] [train|embed] [active=threads]
 * Prints one line with samples/s by wall-clock time and by process CPU
 * time (the latter is less disturbed by other load on the machine); the
 * line starts "strata" in train mode and "strata embed" in embed mode.
 * `threads` splits the batch over that many lanes (st_cae_config.threads),
 * run on `active` threads (st_cae_set_active_threads: what a layer runs on
 * before the layer beside it lends it a core); run with
 * OPENBLAS_NUM_THREADS=1 then. */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "strata/cae.h"

static double now(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s H W C [batch=32] [seconds=3] [threads=1] [train|embed] [active=threads]\n",
                argv[0]);
        return 2;
    }
    const char *mode = argc > 7 ? argv[7] : "train";
    const bool embed = strcmp(mode, "embed") == 0;
    if (!embed && strcmp(mode, "train") != 0) {
        fprintf(stderr, "bench_cae: mode '%s' is neither train nor embed\n", mode);
        return 2;
    }
    const int h = atoi(argv[1]), w = atoi(argv[2]), c = atoi(argv[3]);
    const int batch = argc > 4 ? atoi(argv[4]) : 32;
    const double seconds = argc > 5 ? atof(argv[5]) : 3.0;
    st_cae_config cfg = st_cae_config_default(h, w, c);
    cfg.max_batch = batch;
    cfg.threads = argc > 6 ? atoi(argv[6]) : 1;
    st_rng rng;
    st_rng_seed(&rng, 1);
    st_cae *m = NULL;
    st_optim *opt = NULL;
    st_optim_config oc = st_optim_adam_defaults();
    if (st_cae_new(&cfg, &rng, &m) != ST_OK || st_optim_new(&oc, st_cae_param_count(m), &opt) != ST_OK) {
        fprintf(stderr, "bench_cae: %s\n", st_error_message());
        return 1;
    }
    const int active = argc > 8 ? atoi(argv[8]) : cfg.threads;
    if (active < 1 || active > cfg.threads) {
        fprintf(stderr, "bench_cae: active threads must be 1 to %d, got %d\n", cfg.threads, active);
        return 2;
    }
    st_cae_set_active_threads(m, active);
    /* A pool of 8 batches of post-ReLU-like inputs, cycled. */
    const size_t per = (size_t)batch * st_cae_input_size(m), pool = 8;
    float *x = malloc(pool * per * sizeof *x);
    if (!x) return 1;
    for (size_t i = 0; i < pool * per; i++) {
        float v = (float)st_rng_normal(&rng);
        x[i] = v > 0 ? v : 0;
    }
    float *z = malloc((size_t)batch * (size_t)st_cae_embedding_dim(m) * sizeof *z);
    if (!z) return 1;
    double loss = 0, znorm = 0;
    long steps = -3; /* 3 warm-up steps */
    double t0 = 0, c0 = 0, t = 0;
    do {
        const float *xb = x + (size_t)((steps + 3) % (long)pool) * per;
        st_status st = embed ? st_cae_embed(m, batch, xb, z) : st_cae_pretrain_step(m, opt, batch, xb, &loss);
        if (st != ST_OK) {
            fprintf(stderr, "bench_cae: %s\n", st_error_message());
            return 1;
        }
        if (++steps == 0) t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        if (steps > 0) t = now(CLOCK_MONOTONIC) - t0;
    } while (steps <= 0 || t < seconds);
    double cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
    for (int i = 0; i < st_cae_embedding_dim(m); i++) znorm += (double)z[i] * z[i];
    printf("strata%s %dx%dx%d batch %d threads %d (on %d): %.1f samples/s wall (%.2f ms/step), %.1f samples/cpu-s, "
           "%ld steps, %s %.4g\n",
           embed ? " embed" : "", h, w, c, batch, cfg.threads, active, (double)steps * batch / t, 1e3 * t / (double)steps,
           (double)steps * batch / cpu, steps, embed ? "|z0|^2" : "loss", embed ? znorm : loss);
    free(z);
    free(x);
    st_optim_free(opt);
    st_cae_free(m);
    return 0;
}
