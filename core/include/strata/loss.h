/* Losses with their gradients, in tf.keras 2.1 semantics (METHOD.md c.4).
 *
 * Each call returns the loss value (accumulated in double) and, when
 * `grad` is not NULL, overwrites it with weight * dLoss/dinput, so a
 * weighted sum of losses (IDEC's 0.1 KL + 1.0 MSE) is formed by the
 * weights alone. Nothing allocates. */
#ifndef STRATA_LOSS_H
#define STRATA_LOSS_H

#include <stddef.h>
#include <stdint.h>
#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Keras clips both distributions of the KL loss to [1e-7, 1]. */
#define ST_KLD_EPSILON 1e-7f

/* Mean squared error over all n elements: mean((pred - target)^2).
 * grad = weight * 2 (pred - target) / n. */
double st_loss_mse(size_t n, const float *pred, const float *target, float weight, float *grad);

/* Keras 'kld' averaged over the batch: for each row i,
 * sum_j p~_ij log(p~_ij / q~_ij) with p~, q~ clipped to [1e-7, 1].
 * p is the target (no gradient); grad is dL/dq [batch, k]:
 * -weight * p~_ij / (q_ij * batch) where 1e-7 <= q_ij <= 1, 0 elsewhere
 * (the clip passes no gradient outside its range). */
double st_loss_kld(int batch, int k, const float *p, const float *q, float weight, float *grad);

/* Softmax cross-entropy from logits [batch, k] and integer labels,
 * averaged over the batch, into *loss; grad = weight (softmax - onehot) /
 * batch. A label outside [0, k) fails with ST_EINVAL naming the row
 * (nothing is written then). */
st_status st_loss_cross_entropy(int batch, int k, const float *logits, const int32_t *labels, float weight,
                                float *grad, double *loss);

#ifdef __cplusplus
}
#endif
#endif
