/* Hypersphere (L2) normalisation with radius r (see layers.h). */
#include "strata/layers.h"

#include <math.h>

/* tf.nn.l2_normalize's default epsilon on the squared norm. */
#define L2_EPSILON 1e-12

static double squared_norm(int d, const float *u)
{
    double s = 0;
    for (int j = 0; j < d; j++) s += (double)u[j] * u[j];
    return s;
}

void st_l2norm_forward(int batch, int d, float radius, const float *u, float *z)
{
    for (int i = 0; i < batch; i++, u += d, z += d) {
        double scale = radius / sqrt(fmax(squared_norm(d, u), L2_EPSILON));
        for (int j = 0; j < d; j++) z[j] = (float)(u[j] * scale);
    }
}

void st_l2norm_backward(int batch, int d, float radius, const float *u, const float *dz, float *du)
{
    for (int i = 0; i < batch; i++, u += d, dz += d, du += d) {
        double ss = squared_norm(d, u);
        if (ss < L2_EPSILON) { /* clamped norm: a constant divisor */
            double scale = radius / sqrt(L2_EPSILON);
            for (int j = 0; j < d; j++) du[j] = (float)(dz[j] * scale);
            continue;
        }
        double n = sqrt(ss), gu = 0;
        for (int j = 0; j < d; j++) gu += (double)dz[j] * u[j];
        /* (r/n) (g - (g.u^) u^) with u^ = u/n */
        double scale = radius / n, proj = gu / ss;
        for (int j = 0; j < d; j++) du[j] = (float)(scale * (dz[j] - proj * u[j]));
    }
}
