/* First-order optimisers over flat float parameter arrays.
 *
 * An optimiser is created for a fixed total number of parameters n and
 * keeps its per-parameter state (moments, velocity) in that order. A step
 * takes a list of parameter blocks (value, gradient, length) whose lengths
 * add up to n; the blocks are walked in list order, so the same list
 * order must be used at every step (for example: every autoencoder
 * parameter, then the centroids).
 *
 * Adam follows tf.keras 2.1 (OptimizerV2), METHOD.md c.4:
 *   t += 1; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *   lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); theta -= lr_t m / (sqrt(v) + eps)
 * with defaults lr 1e-3, b1 0.9, b2 0.999, eps 1e-7 (the "epsilon hat"
 * placement: eps is added after the bias correction is folded into lr_t).
 *
 * SGD follows PyTorch's torch.optim.SGD (dampening 0):
 *   g += wd theta; buf = mu buf + g (buf = g at the first step);
 *   theta -= lr (nesterov ? g + mu buf : buf).
 *
 * The state is exposed as named float slots ("m", "v" for Adam;
 * "velocity" for SGD) plus the step count, so a checkpoint can save it
 * and a resumed run can restore it exactly. */
#ifndef STRATA_OPTIM_H
#define STRATA_OPTIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "strata/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum st_optim_kind { ST_OPTIM_ADAM = 0, ST_OPTIM_SGD } st_optim_kind;

typedef struct st_optim_config {
    st_optim_kind kind;
    float lr;
    /* Adam */
    float beta1, beta2, eps;
    /* SGD */
    float momentum, weight_decay;
    bool nesterov;
} st_optim_config;

/* Keras Adam defaults (lr 1e-3, 0.9, 0.999, 1e-7). */
st_optim_config st_optim_adam_defaults(void);
/* SGD with the given learning rate, no momentum, no weight decay. */
st_optim_config st_optim_sgd_defaults(float lr);

/* One block of parameters and their gradients. */
typedef struct st_param_block {
    float *value;
    const float *grad;
    size_t n;
} st_param_block;

typedef struct st_optim st_optim;

/* Checks the configuration (lr > 0, betas in [0,1), eps > 0, momentum
 * >= 0, weight decay >= 0, nesterov needs momentum > 0) and allocates
 * zeroed state for n parameters. */
st_status st_optim_new(const st_optim_config *cfg, size_t n, st_optim **out);
void st_optim_free(st_optim *o);

/* One update of every block. Fails with ST_ESHAPE, changing nothing, if
 * the block lengths do not add up to the optimiser's n. */
st_status st_optim_step(st_optim *o, size_t count, const st_param_block *blocks);

size_t st_optim_size(const st_optim *o);
const st_optim_config *st_optim_get_config(const st_optim *o);
/* Number of steps taken so far (Keras "iterations"). */
int64_t st_optim_steps(const st_optim *o);
/* Zeroes every slot and the step count (a fresh optimiser). */
void st_optim_reset(st_optim *o);

/* State slots: Adam has 2 ("m", "v"), SGD has 1 ("velocity"); each holds
 * st_optim_size() floats and may be read or written through the pointer
 * (restore = copy saved values in, then st_optim_set_steps). */
int st_optim_slot_count(const st_optim *o);
float *st_optim_slot(st_optim *o, int i, const char **name);
st_status st_optim_set_steps(st_optim *o, int64_t steps);

#ifdef __cplusplus
}
#endif
#endif
