/* The Winograd passes with 2x2 and 4x4 output tiles (core/src/
 * conv_winograd.c) on the clustering autoencoder's convolutions and a
 * ResNet-56 stage, one thread: the measurement behind st_winograd_tile's
 * choice. The two sizes alternate call by call, so both see the same
 * machine; each line gives the best time of each and their ratio.
 *
 *   bench_winograd [batch=32] [rounds=15]
 *
 * Reads the private header: this measures an internal choice. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "strata/conv.h"
#include "strata/rng.h"
#include "../../core/src/conv_winograd.h"

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *random_floats(st_rng *r, size_t n)
{
    float *b = malloc(n * sizeof *b);
    if (!b) {
        fprintf(stderr, "bench_winograd: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) b[i] = (float)(st_rng_uniform(r) - 0.5);
    return b;
}

enum { FORWARD, ADJOINT, WEIGHT_GRAD };
static const char *pass_names[] = {"forward", "adjoint", "weight gradient"};

typedef struct buffers {
    float *x, *y, *w, *out, *back, *dw, *ws;
} buffers;

static void run_pass(const st_conv2d_geom *g, int pass, int m, const buffers *b)
{
    if (pass == FORWARD)
        st_winograd_forward(g, m, b->x, b->w, NULL, NULL, false, b->out, b->ws);
    else if (pass == ADJOINT)
        st_winograd_adjoint(g, m, b->y, b->w, NULL, b->back, b->ws);
    else
        st_winograd_weight_grad(g, m, b->x, b->y, b->dw, b->ws);
}

static void bench_geometry(const char *name, const st_conv2d_geom *g, int rounds, st_rng *r)
{
    const size_t nx = (size_t)g->batch * g->in_h * g->in_w * g->in_c;
    const size_t ny = (size_t)g->batch * g->out_h * g->out_w * g->out_c;
    const size_t nw = (size_t)g->k_h * g->k_w * g->in_c * g->out_c;
    buffers b = {random_floats(r, nx), random_floats(r, ny), random_floats(r, nw), random_floats(r, ny),
                 random_floats(r, nx), random_floats(r, nw), random_floats(r, st_winograd_workspace_floats(g))};
    const int passes = st_winograd_fits(g) ? 3 : 1;
    for (int pass = 0; pass < passes; pass++) {
        double best[2] = {1e30, 1e30};
        for (int round = 0; round < rounds; round++)
            for (int i = 0; i < 2; i++) {
                const double t0 = seconds();
                run_pass(g, pass, 2 + 2 * i, &b);
                const double t = seconds() - t0;
                if (t < best[i]) best[i] = t;
            }
        const int chosen = pass == ADJOINT ? st_winograd_adjoint_tile(g) : st_winograd_forward_tile(g);
        printf("%-24s %-16s 2x2 %8.3f ms  4x4 %8.3f ms  4x4 speed-up %.2fx  (chosen: %dx%d)\n", name,
               pass_names[pass], 1e3 * best[0], 1e3 * best[1], best[0] / best[1], chosen, chosen);
    }
    free(b.x), free(b.y), free(b.w), free(b.out), free(b.back), free(b.dw), free(b.ws);
}

int main(int argc, char **argv)
{
    const int batch = argc > 1 ? atoi(argv[1]) : 32, rounds = argc > 2 ? atoi(argv[2]) : 15;
    if (batch < 1 || rounds < 1) {
        fprintf(stderr, "usage: bench_winograd [batch=32] [rounds=15]\n");
        return 2;
    }
    st_rng r;
    st_rng_seed(&r, 1);
    printf("# batch %d, best of %d calls per tile size\n", batch, rounds);
    /* the autoencoder on 32x32x16 activations: conv1 onto its window
     * (core/src/cae.c), conv2 on the 20x20x32 padded grid */
    const st_conv2d_geom conv1 = {batch, 32, 32, 16, 18, 18, 32, 5, 5, 2, 2, 3, 3};
    st_conv2d_geom conv2, resnet;
    if (st_conv2d_geom_same(&conv2, batch, 20, 20, 32, 64, 5, 5, 2) != ST_OK ||
        st_conv2d_geom_same(&resnet, batch, 16, 16, 32, 32, 3, 3, 1) != ST_OK) {
        fprintf(stderr, "bench_winograd: %s\n", st_error_message());
        return 1;
    }
    bench_geometry("cae conv1 (32x32x16)", &conv1, rounds, &r);
    bench_geometry("cae conv2 (20x20x32)", &conv2, rounds, &r);
    bench_geometry("resnet 3x3 (16x16x32)", &resnet, rounds, &r);
    return 0;
}
