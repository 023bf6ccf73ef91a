/* Labelled image datasets: CIFAR-10/100 binary files (memory-mapped, so
 * opening costs nothing and memory stays bounded), image folders (image.h),
 * or images already in memory.
 *
 * Whatever the source, a dataset hands out uint8 images in NHWC order
 * ([n, H, W, C], RGB or grayscale) with int32 labels, for any list of
 * indices (so slices and shuffles need no copies). Labels are checked
 * against the class count as they are read: a corrupt label byte is an
 * ST_EFORMAT error, never an out-of-range class. */
#ifndef STRATA_DATASET_H
#define STRATA_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "strata/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_dataset st_dataset;

typedef enum st_cifar_kind {
    ST_CIFAR10,  /* records of 1 label byte + 3,072 pixel bytes (R, G, B planes of 32x32) */
    ST_CIFAR100  /* records of 1 coarse byte + 1 fine byte + 3,072 pixel bytes */
} st_cifar_kind;

/* Opens one or more CIFAR binary files as one dataset, in order (e.g.
 * data_batch_1..5.bin). Each file must be a non-empty whole number of
 * records. CIFAR-100's label is the fine one; the coarse one is read with
 * st_dataset_read's `coarse`. */
st_status st_cifar_open(st_cifar_kind kind, const char *const *paths, int n_paths, st_dataset **out);
/* The same over a copy of an in-memory buffer (tests and fuzzing). */
st_status st_cifar_open_buffer(st_cifar_kind kind, const void *data, size_t size, st_dataset **out);

/* A dataset over images u8 [N, H, W, C] and labels i32 [N] (labels in
 * [0, n_classes)); masks u8 [N, H, W] may be NULL. The tensors are
 * retained (views), not copied. */
st_status st_dataset_from_tensors(const st_tensor *images, const st_tensor *labels, const st_tensor *masks,
                                  int n_classes, st_dataset **out);

void st_dataset_free(st_dataset *ds);

int64_t st_dataset_count(const st_dataset *ds);
void st_dataset_image_shape(const st_dataset *ds, int *h, int *w, int *c);
int st_dataset_class_count(const st_dataset *ds);
/* 0 when the dataset has no coarse labels. */
int st_dataset_coarse_class_count(const st_dataset *ds);
bool st_dataset_has_masks(const st_dataset *ds);
/* Class names (copied); n must equal the class count (coarse: the coarse
 * count). A name is NULL until set. */
st_status st_dataset_set_class_names(st_dataset *ds, bool coarse, int n, const char *const *names);
const char *st_dataset_class_name(const st_dataset *ds, bool coarse, int i);

/* Copies the images idx[0..n) into `images` (n*H*W*C bytes, NHWC) and
 * their labels into `labels` / `coarse` (n entries each; either may be
 * NULL; coarse requires coarse labels). Indices must lie in [0, count). */
st_status st_dataset_read(const st_dataset *ds, const int64_t *idx, int64_t n, uint8_t *images, int32_t *labels,
                          int32_t *coarse);
/* Masks [n, H, W] of the images idx[0..n) (needs st_dataset_has_masks). */
st_status st_dataset_read_masks(const st_dataset *ds, const int64_t *idx, int64_t n, uint8_t *masks);

#ifdef __cplusplus
}
#endif
#endif
