/* Losses and their gradients in tf.keras 2.1 semantics (see loss.h). */
#include "strata/loss.h"

#include <math.h>

double st_loss_mse(size_t n, const float *pred, const float *target, float weight, float *grad)
{
    double s = 0;
    const float g = 2.0f * weight / (float)n;
    for (size_t i = 0; i < n; i++) {
        float e = pred[i] - target[i];
        s += (double)e * e;
        if (grad) grad[i] = g * e;
    }
    return n ? s / (double)n : 0.0;
}

static float clip_prob(float v) { return v < ST_KLD_EPSILON ? ST_KLD_EPSILON : v > 1.0f ? 1.0f : v; }

double st_loss_kld(int batch, int k, const float *p, const float *q, float weight, float *grad)
{
    double total = 0;
    const float scale = -weight / (float)batch;
    for (int i = 0; i < batch; i++)
        for (int j = 0; j < k; j++) {
            size_t ij = (size_t)i * k + j;
            float pc = clip_prob(p[ij]), qc = clip_prob(q[ij]);
            total += (double)pc * log((double)pc / qc);
            if (grad) grad[ij] = q[ij] >= ST_KLD_EPSILON && q[ij] <= 1.0f ? scale * pc / q[ij] : 0.0f;
        }
    return batch > 0 ? total / batch : 0.0;
}

st_status st_loss_cross_entropy(int batch, int k, const float *logits, const int32_t *labels, float weight,
                                float *grad, double *loss)
{
    for (int i = 0; i < batch; i++)
        if (labels[i] < 0 || labels[i] >= k)
            return st_fail(ST_EINVAL, "cross-entropy: label %d of row %d is outside [0, %d)", (int)labels[i], i, k);
    double total = 0;
    for (int i = 0; i < batch; i++) {
        const float *li = logits + (size_t)i * k;
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < k; j++) mx = fmax(mx, li[j]);
        for (int j = 0; j < k; j++) sum += exp((double)li[j] - mx);
        double lse = mx + log(sum);
        total += lse - li[labels[i]];
        if (grad)
            for (int j = 0; j < k; j++)
                grad[(size_t)i * k + j] =
                    (float)(weight * (exp((double)li[j] - lse) - (j == labels[i] ? 1.0 : 0.0)) / batch);
    }
    *loss = batch > 0 ? total / batch : 0.0;
    return ST_OK;
}
