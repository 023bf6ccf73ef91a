/* The reference convolutional autoencoder of the clustering models
 * (METHOD.md b; DEC-DA ConvDEC `CAE` with the fork's pad/crop and
 * hypersphere bottleneck), NHWC, for any (H, W, C) and filters
 * [f0, f1, f2, d]:
 *
 *   pad -> conv1 (f0, 5x5, s2, SAME, relu) -> conv2 (f1, 5x5, s2, relu)
 *   -> conv3 (f2, 3x3, s2, relu) -> flatten -> dense (d, linear)
 *   -> embedding = r * u / |u|                         (encoder output z)
 *   -> dense_1 (f2 * Hp/8 * Wp/8, relu) -> reshape
 *   -> deconv3 (f1, 3x3, s2, relu) -> deconv2 (f0, 5x5, s2, relu)
 *   -> deconv1 (C, 5x5, s2, linear) -> crop               (reconstruction)
 *
 * Padding: by default the reference's quirk Q1, dh = 8 - H % 8 (so a
 * multiple of 8 still gets 8 rows: 32 -> 40), split (dh/2, dh - dh/2);
 * `minimal_padding` pads only to the next multiple of 8. The reference
 * sizes the decoder from the padded height alone (Q2) and so fails on
 * non-square inputs; here the width uses Wp, which is identical for every
 * input the reference accepts.
 *
 * The model owns every buffer a training step needs, sized once for
 * `max_batch` samples: encode, decode, backward and the optimiser step
 * never allocate. The buffers grow linearly with max_batch (about 35 MB
 * for 32 samples of 32x32x16), so encode a large set in slices of
 * max_batch rather than raising it. Parameters live in one flat float array (and the
 * gradients in a second one of the same layout), exposed as named tensor
 * views with Keras names and layouts ("conv1.kernel" [5,5,C,f0],
 * "conv1.bias", ..., "dense.kernel" [flat,d], "dense_1.kernel" [d,flat],
 * "deconv3.kernel" [3,3,f1,f2], ...), ready for safetensors.
 *
 * The pieces are separate calls so a trainer (or Lua) can combine them:
 *   st_cae_encode(x) -> z;  st_cae_decode(z) -> x^;
 *   st_cae_backward(dL/dx^, dL/dz) -> gradients of every parameter;
 *   st_optim_step over st_cae_param_block() (plus any extra blocks).
 * Threads: with `threads` = T > 1 every pass splits the batch into T
 * contiguous slices computed in parallel (each with its own buffers and
 * single-threaded BLAS calls: run with OPENBLAS_NUM_THREADS=1 to avoid
 * oversubscription), and the parameter gradients of the slices are
 * summed in slice order. Results are deterministic for a given T; a
 * different T changes the gradient summation order (float rounding).
 * The T slices (lanes) may run on fewer threads (st_cae_set_active_threads):
 * the same bits, computed by fewer cores.
 * Not thread-safe: one model is used by one caller at a time. */
#ifndef STRATA_CAE_H
#define STRATA_CAE_H

#include <stdbool.h>
#include <stddef.h>
#include "strata/layers.h"
#include "strata/optim.h"
#include "strata/rng.h"
#include "strata/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_cae_config {
    int height, width, channels; /* input activation shape (H, W, C) */
    int filters[4];              /* f0, f1, f2, d; default 32, 64, 128, 20 */
    float radius;                /* hypersphere radius; default 8 */
    bool minimal_padding;        /* default false: the reference's pad-by-8 */
    int max_batch;               /* buffers are sized for this; default 32 */
    int threads;                 /* worker threads over the batch; default 1 */
} st_cae_config;

/* The reference defaults for an (H, W, C) input. */
st_cae_config st_cae_config_default(int height, int width, int channels);

typedef struct st_cae st_cae;

/* Builds the model and initialises it as Keras does (Glorot-uniform
 * kernels, zero biases) from rng. Fails with ST_EINVAL naming the field
 * for a non-positive size, filter, radius, batch or thread count. */
st_status st_cae_new(const st_cae_config *cfg, st_rng *rng, st_cae **out);
void st_cae_free(st_cae *m);
/* Runs the `threads` lanes of every later pass on this many threads (1 ..
 * threads; clamped; the default is one per lane): thread t runs lanes t,
 * t + n, ... in order, so every count gives bitwise the same results. The
 * only call that may come from another thread while a pass runs (the next
 * pass uses the new count): a scheduler lends the model idle cores. */
void st_cae_set_active_threads(st_cae *m, int threads);
/* The count the next pass will use. */
int st_cae_active_threads(const st_cae *m);

const st_cae_config *st_cae_get_config(const st_cae *m);
/* The zero padding around the input and the padded size (Hp, Wp). */
st_padding2d st_cae_padding(const st_cae *m);
void st_cae_padded_size(const st_cae *m, int *hp, int *wp);
int st_cae_embedding_dim(const st_cae *m);
/* Floats per input sample (H*W*C). */
size_t st_cae_input_size(const st_cae *m);

/* ---- parameters ---- */
/* Total number of trainable parameters (the Keras count). */
size_t st_cae_param_count(const st_cae *m);
/* The flat parameter and gradient arrays (st_cae_param_count floats). */
float *st_cae_params(st_cae *m);
float *st_cae_grads(st_cae *m);
/* {params, grads, count}, for st_optim_step. */
st_param_block st_cae_param_block(st_cae *m);
/* Named views (16 tensors: kernel and bias of 8 layers, in layer order).
 * The tensors belong to the model; take st_tensor_view to keep one. */
int st_cae_tensor_count(const st_cae *m);
const char *st_cae_tensor_name(const st_cae *m, int i);
st_tensor *st_cae_tensor(st_cae *m, int i);
st_tensor *st_cae_grad_tensor(st_cae *m, int i);
/* The parameter tensor called `name`, or NULL. */
st_tensor *st_cae_find(st_cae *m, const char *name);

/* ---- passes (batch in 1..max_batch) ---- */
/* z [batch, d] = the normalised embedding of x [batch, H, W, C]. Keeps
 * the activations for st_cae_backward. */
st_status st_cae_encode(st_cae *m, int batch, const float *x, float *z);
/* The same z for inference only: x is read in place and nothing is kept
 * for a backward (which then needs a new encode). Same bits as
 * st_cae_encode. */
st_status st_cae_embed(st_cae *m, int batch, const float *x, float *z);
/* x^ [batch, H, W, C] from embeddings z [batch, d]. Keeps the activations. */
st_status st_cae_decode(st_cae *m, int batch, const float *z, float *xhat);
/* Overwrites every parameter gradient with the gradient of a loss whose
 * derivative is dxhat = dL/dx^ (through the last decode) plus dz = dL/dz
 * (added at the embedding, e.g. from a clustering loss), propagated
 * through the last encode. Either may be NULL (not both). With dxhat the
 * last decode must have had the last encode's batch size and is taken to
 * have decoded that encode's z (the autoencoder path); without it the
 * decoder's gradients are zero. Fails with ST_ESTATE when the passes it
 * needs have not run. */
st_status st_cae_backward(st_cae *m, const float *dxhat, const float *dz);

/* One autoencoder-pretraining step: encode, decode, MSE(x^, x) (mean over
 * all elements), backward, optimiser step over the parameters. *loss gets
 * the MSE before the update (may be NULL). x is read in place; a later
 * st_cae_backward needs a new encode. */
st_status st_cae_pretrain_step(st_cae *m, st_optim *opt, int batch, const float *x, double *loss);

#ifdef __cplusplus
}
#endif
#endif
