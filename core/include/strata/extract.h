/* Streaming activation extraction: runs a dataset through a net batch by
 * batch and writes, for every image, the requested taps, the logits, the
 * predicted label and the true label.
 *
 * Files (when a directory is given): <dir>/<tap>.npy (f32 [N, H, W, C] or
 * [N, C]), <dir>/logits.npy (f32 [N, classes]), <dir>/pred.npy and
 * <dir>/labels.npy (i64 [N]). Each is streamed batch by batch and renamed
 * into place only when complete (a failed or stopped run leaves none), so
 * memory stays bounded by two batches of rows whatever N is: a writer
 * thread writes one batch while the net computes the next. The same arrays
 * can also be kept in memory (for small sets). */
#ifndef STRATA_EXTRACT_H
#define STRATA_EXTRACT_H

#include <stdbool.h>
#include <stdint.h>
#include "strata/dataset.h"
#include "strata/net.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Called on the calling thread after every batch has been computed (its
 * rows may still be on their way to the files); returning false stops the
 * run (ST_ESTATE). */
typedef bool (*st_extract_progress_fn)(void *ctx, int64_t done, int64_t total);

typedef struct st_extract_options {
    const char *const *taps; /* tap names (layers or aliases) */
    int n_taps;
    int batch;               /* images per forward; 0 means 256 */
    const int64_t *indices;  /* images to run, in this order; NULL: all */
    int64_t n_indices;
    const char *dir;         /* existing directory for the .npy files, or NULL */
    bool in_memory;          /* also return the arrays */
    st_extract_progress_fn progress; /* may be NULL */
    void *progress_ctx;
} st_extract_options;

/* The arrays kept in memory: taps in the order requested, then "logits",
 * "pred", "labels". */
typedef struct st_extract_result {
    int n;
    char **names;
    st_tensor **arrays;
} st_extract_result;

/* `out` may be NULL when in_memory is false. */
st_status st_extract_run(st_net *net, const st_dataset *ds, const st_extract_options *opt,
                         st_extract_result **out);
void st_extract_result_free(st_extract_result *r);
/* The kept array named `name`, or NULL. */
const st_tensor *st_extract_result_get(const st_extract_result *r, const char *name);

#ifdef __cplusplus
}
#endif
#endif
