/* Student-t soft assignment, its backward, and the DEC target
 * distribution (see layers.h and METHOD.md c.1, c.4). */
#include "strata/layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double squared_distance(int d, const float *a, const float *b)
{
    double s = 0;
    for (int j = 0; j < d; j++) {
        double t = (double)a[j] - b[j];
        s += t * t;
    }
    return s;
}

void st_student_t_forward(int batch, int k, int d, float alpha, const float *z, const float *mu, float *q)
{
    const double expo = -((double)alpha + 1.0) / 2.0;
    for (int i = 0; i < batch; i++) {
        const float *zi = z + (size_t)i * d;
        float *qi = q + (size_t)i * k;
        /* log k_ij, then a softmax: the largest term is exp(0) = 1, so the
         * sum never underflows. The distances are recomputed rather than
         * storing log k in float. */
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < k; j++) mx = fmax(mx, expo * log1p(squared_distance(d, zi, mu + (size_t)j * d) / alpha));
        for (int j = 0; j < k; j++) {
            double e = exp(expo * log1p(squared_distance(d, zi, mu + (size_t)j * d) / alpha) - mx);
            qi[j] = (float)e;
            sum += e;
        }
        for (int j = 0; j < k; j++) qi[j] = (float)(qi[j] / sum);
    }
}

void st_student_t_backward(int batch, int k, int d, float alpha, const float *z, const float *mu, const float *q,
                           const float *dq, float *dz, float *dmu)
{
    const double c0 = -((double)alpha + 1.0) / alpha;
    if (dmu) memset(dmu, 0, (size_t)k * d * sizeof *dmu);
    for (int i = 0; i < batch; i++) {
        const float *zi = z + (size_t)i * d, *qi = q + (size_t)i * k, *gi = dq + (size_t)i * k;
        float *dzi = dz ? dz + (size_t)i * d : NULL;
        if (dzi) memset(dzi, 0, (size_t)d * sizeof *dzi);
        /* Through the softmax: dL/dlogk_ij = q_ij (g_ij - sum_j' g_ij' q_ij'). */
        double s = 0;
        for (int j = 0; j < k; j++) s += (double)gi[j] * qi[j];
        for (int j = 0; j < k; j++) {
            const float *muj = mu + (size_t)j * d;
            double a = 1.0 + squared_distance(d, zi, muj) / alpha;
            /* log k = -((alpha+1)/2) log a and da/dz = 2 (z - mu) / alpha. */
            double c = qi[j] * (gi[j] - s) * c0 / a;
            for (int t = 0; t < d; t++) {
                float diff = (float)(c * ((double)zi[t] - muj[t]));
                if (dzi) dzi[t] += diff;
                if (dmu) dmu[(size_t)j * d + t] -= diff;
            }
        }
    }
}

st_status st_target_distribution(int n, int k, const float *q, float *p)
{
    if (n < 1 || k < 1) return st_fail(ST_EINVAL, "target distribution: %d rows of %d clusters, need at least 1", n, k);
    double *f = calloc((size_t)k, sizeof *f);
    if (!f) return st_fail(ST_ENOMEM, "target distribution: out of memory for %d column sums", k);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            float v = q[(size_t)i * k + j];
            if (!(v >= 0.0f) || isinf(v)) {
                free(f);
                return st_fail(ST_ENUMERIC, "target distribution: q[%d,%d] = %g is not a probability", i, j, v);
            }
            f[j] += v;
        }
    for (int i = 0; i < n; i++) {
        const float *qi = q + (size_t)i * k;
        double s = 0;
        for (int j = 0; j < k; j++) s += f[j] > 0 ? (double)qi[j] * qi[j] / f[j] : 0.0;
        if (!(s > 0)) {
            free(f);
            return st_fail(ST_ENUMERIC, "target distribution: row %d of q is all zero", i);
        }
        for (int j = 0; j < k; j++) p[(size_t)i * k + j] = f[j] > 0 ? (float)((double)qi[j] * qi[j] / f[j] / s) : 0.0f;
    }
    free(f);
    return ST_OK;
}
