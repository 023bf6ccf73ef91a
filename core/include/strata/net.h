/* A small inference graph of named layers (NHWC, float32).
 *
 * A net is built layer by layer; each layer names its inputs by the id an
 * earlier call returned (id 0 is the input image batch), so the layers are
 * in execution order by construction. One st_net_forward call runs a
 * whole batch through every layer. Any layer's output can then be read as
 * a tap: a tensor view [N, H, W, C] (or [N, C] after pooling/dense) of the
 * buffer the layer wrote, without a copy.
 *
 * Memory: layer outputs live in a few buffers that are reused once no
 * later layer reads them; the outputs named as taps in a forward call (and
 * the last layer's) are kept. Each thread runs its images through all
 * layers a small group at a time, so the buffers that are not kept hold
 * one group and stay in cache. The buffers and the convolution workspace
 * are planned once per batch size and tap set and grow only when needed,
 * so repeated forwards never allocate. A tap view keeps its buffer alive,
 * but the next forward may overwrite it.
 *
 * Batch normalisation is folded into the convolution before it
 * (st_net_fold_batchnorm); a standalone st_net_add_batchnorm is a
 * per-channel affine map for the places where no convolution precedes it
 * (pre-activation ResNets). ReLU can be fused into most layers (`relu`).
 * A convolution whose output only an add reads (and that is not requested
 * as a tap) is computed inside that add, with the same results.
 *
 * Besides the graph, a net carries what is needed to feed it: the input
 * preprocessing (scale, then per-channel mean/std) and class names. */
#ifndef STRATA_NET_H
#define STRATA_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "strata/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_net st_net;

/* `pad` value selecting TensorFlow "SAME" padding (asymmetric when the
 * total is odd) instead of an explicit symmetric amount. */
#define ST_PAD_SAME (-1)
/* Most channels an input image may have (for the preprocessing). */
#define ST_NET_MAX_CHANNELS 4

/* A net whose layer 0 ("input") takes [N, in_h, in_w, in_c] batches. */
st_status st_net_new(int in_h, int in_w, int in_c, st_net **out);
void st_net_free(st_net *net);

/* ---- building: each call appends one layer and returns its id.
 * Names are unique, non-empty and at most 63 bytes. Weights are copied. */

/* w: HWIO [k_h, k_w, C_in, C_out] f32; b: [C_out] or NULL. pad >= 0 or
 * ST_PAD_SAME. */
st_status st_net_add_conv2d(st_net *net, const char *name, int input, const st_tensor *w, const st_tensor *b,
                            int stride, int pad, bool relu, int *id);
/* Folds y = gamma*(x-mean)/sqrt(var+eps) + beta into conv layer `conv`
 * (all four [C_out] f32). Folding happens in double precision. */
st_status st_net_fold_batchnorm(st_net *net, int conv, const st_tensor *gamma, const st_tensor *beta,
                                const st_tensor *mean, const st_tensor *var, double eps);
/* Standalone inference batch normalisation over the last dimension. */
st_status st_net_add_batchnorm(st_net *net, const char *name, int input, const st_tensor *gamma,
                               const st_tensor *beta, const st_tensor *mean, const st_tensor *var, double eps,
                               bool relu, int *id);
st_status st_net_add_relu(st_net *net, const char *name, int input, int *id);
/* a + b (same shapes). */
st_status st_net_add_add(st_net *net, const char *name, int a, int b, bool relu, int *id);
/* The parameter-free "option A" shortcut: x[:, ::stride, ::stride, :] with
 * (out_c - C_in)/2 zero channels on each side. */
st_status st_net_add_shortcut_a(st_net *net, const char *name, int input, int stride, int out_c, int *id);
/* Max over k x k windows (padding never wins: it counts as -inf). */
st_status st_net_add_maxpool(st_net *net, const char *name, int input, int k, int stride, int pad, int *id);
/* Mean over H and W: [N, H, W, C] -> [N, C]. */
st_status st_net_add_global_avgpool(st_net *net, const char *name, int input, int *id);
/* y = x w + b on the flattened input; w: [in_features, out] f32, b: [out]
 * or NULL. */
st_status st_net_add_dense(st_net *net, const char *name, int input, const st_tensor *w, const st_tensor *b,
                           bool relu, int *id);
/* Softmax over the last dimension. */
st_status st_net_add_softmax(st_net *net, const char *name, int input, int *id);
/* A second name for a layer's output (e.g. Keras' "activation_18"). */
st_status st_net_add_alias(st_net *net, const char *alias, int layer);

/* ---- running ---- */

/* Runs x [N, in_h, in_w, in_c] (f32, contiguous, N >= 1) through the net.
 * The outputs of the n_taps named layers (names or aliases) stay readable
 * afterwards, as does the last layer's. Unknown names fail with ST_EINVAL
 * before anything runs. */
st_status st_net_forward(st_net *net, const st_tensor *x, const char *const *taps, int n_taps);
/* Threads a forward uses (default 1): the batch is split into one range
 * of images per thread. BLAS calls inside may add their own threads
 * (OPENBLAS_NUM_THREADS). */
#define ST_NET_MAX_THREADS 64
st_status st_net_set_threads(st_net *net, int threads);
int st_net_threads(const st_net *net);
/* A view of a tap of the last forward (named in it, or the last layer). */
st_status st_net_tap(const st_net *net, const char *name, st_tensor **out);
/* The last layer's output of the last forward. */
st_status st_net_output(const st_net *net, st_tensor **out);

/* ---- inspection ---- */

typedef struct st_net_tap_info {
    const char *name;   /* layer name or alias */
    const char *layer;  /* the layer it names (== name for layers) */
    const char *kind;   /* "conv2d", "add", "global_avgpool", ... */
    int ndim;           /* per-sample dimensions: 3 (H, W, C) or 1 (C) */
    int64_t shape[3];
} st_net_tap_info;

int st_net_layer_count(const st_net *net);
/* Layer id for a name or alias, or -1. */
int st_net_find(const st_net *net, const char *name);
/* Every layer, then every alias. */
size_t st_net_tap_count(const st_net *net);
void st_net_tap_at(const st_net *net, size_t i, st_net_tap_info *info);
int64_t st_net_param_count(const st_net *net);
/* A readable summary (like snprintf: returns the full length, writes at
 * most cap bytes including the terminating NUL). */
size_t st_net_summary(const st_net *net, char *buf, size_t cap);

/* ---- what feeds the net ---- */

/* Descriptive name shown by the summary ("resnet56"). */
st_status st_net_set_name(st_net *net, const char *name);
const char *st_net_name(const st_net *net);
void st_net_input_shape(const st_net *net, int *h, int *w, int *c);
/* pixel -> (pixel*scale - mean[c]) / std[c]; mean and std may be NULL
 * (0 and 1), otherwise they have in_c entries; std entries are > 0. */
st_status st_net_set_preprocess(st_net *net, double scale, const float *mean, const float *std);
void st_net_preprocess(const st_net *net, double *scale, float *mean, float *std);
/* Preprocesses n uint8 images [n, in_h, in_w, in_c] into out (same
 * element count, f32). */
void st_net_preprocess_u8(const st_net *net, const uint8_t *images, int64_t n, float *out);
/* Class names (copied); n must equal the last layer's width. */
st_status st_net_set_class_names(st_net *net, int n, const char *const *names);
/* Number of classes (last layer's width) and a class name (NULL when no
 * names were set or i is out of range). */
int st_net_class_count(const st_net *net);
const char *st_net_class_name(const st_net *net, int i);

#ifdef __cplusplus
}
#endif
#endif
