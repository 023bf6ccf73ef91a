/* ResNet builders: the CIFAR family (depth 6n+2, "option A" or "B"
 * shortcuts) and the ImageNet family (ResNet-18/34 basic blocks, 50/101/152
 * bottlenecks), each as v1 (post-activation) or v2 (pre-activation), from
 * PyTorch-named weights in a safetensors file whose __metadata__ describes
 * the architecture (schema: docs/model-format.md).
 *
 * Layer (tap) names follow the weights' module paths: "stem" (the ReLU
 * after conv1/bn1), "maxpool" (ImageNet family), "layer2.0.conv1",
 * "layer2.0.conv2", "layer2.0.shortcut", "layer2.0" (block output),
 * aliases "layer2" (last block of the stage), "pool" (global average),
 * "logits". v2 nets add "layerS.B.bn1" (pre-activation) and "final_bn".
 * CIFAR v1 basic nets also get the Keras aliases of the paper:
 * "activation" (stem) and "activation_<k>", k = 2b+1 for the first ReLU
 * of block b (counted from 0 over the whole net) and 2b+2 for its output,
 * so ResNet-56's stages end at activation_18, _36 and _54. */
#ifndef STRATA_RESNET_H
#define STRATA_RESNET_H

#include <stdbool.h>
#include "strata/net.h"
#include "strata/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ST_RESNET_MAX_STAGES 4
#define ST_RESNET_MAX_CLASSES 100000

typedef enum st_resnet_family { ST_RESNET_CIFAR, ST_RESNET_IMAGENET } st_resnet_family;

typedef struct st_resnet_config {
    st_resnet_family family;
    int depth;
    int version;    /* 1: post-activation (He et al. 2015), 2: pre-activation */
    bool bottleneck;
    char shortcut;  /* 'A' (zero-padding, CIFAR only) or 'B' (1x1 conv + BN) */
    bool pad_same;  /* TensorFlow SAME padding instead of PyTorch's k/2 */
    int n_stages;
    int blocks[ST_RESNET_MAX_STAGES];
    int widths[ST_RESNET_MAX_STAGES]; /* bottleneck blocks output 4x this */
    int in_h, in_w, in_c;
    int num_classes;
    double bn_eps;
    double scale;                     /* pixel scale before mean/std */
    bool has_mean_std;
    float mean[ST_NET_MAX_CHANNELS], std[ST_NET_MAX_CHANNELS];
} st_resnet_config;

/* The defaults for a family and depth (blocks, widths, input size, ...).
 * Fails for a depth the family does not have. */
st_status st_resnet_config_default(st_resnet_family family, int depth, st_resnet_config *cfg);
/* Reads the architecture from the file's __metadata__; missing required
 * keys and malformed values fail with ST_EFORMAT naming the key. */
st_status st_resnet_config_from_metadata(const st_safetensors *f, st_resnet_config *cfg);
/* Builds the net with the file's weights. Every expected tensor must be
 * present with its shape (the error names the tensor and both shapes) and
 * a float dtype; any tensor left unused is an error too (PyTorch's
 * "*.num_batches_tracked" counters are ignored). */
st_status st_resnet_build(const st_resnet_config *cfg, const st_safetensors *f, st_net **out);
/* Opens a safetensors file and builds the net its metadata describes,
 * with preprocessing, name and class names set. */
st_status st_resnet_load(const char *path, st_net **out);

#ifdef __cplusplus
}
#endif
#endif
