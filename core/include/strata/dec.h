/* The per-layer clustering trainer: DEC/IDEC on a convolutional
 * autoencoder, exactly as METHOD.md (c) describes the reference
 * (DEC-DA ConvIDEC driven by activation_clustering's ACModel):
 *
 *  1. pretraining: `epochs` passes of the autoencoder alone (MSE), mini-
 *     batches of `batch` rows in a fresh random order every epoch (drawn
 *     from the trainer's rng), with its own optimiser (Keras Adam);
 *  2. k-means (st_kmeans_fit, n_init restarts, seeded) on the embeddings
 *     of ALL training rows; its centres become the centroids mu and its
 *     labels the first y_pred_last;
 *  3. IDEC: for ite = 0 .. maxiter-1, at every multiple of
 *     update_interval, q is computed for all N rows, the target
 *     distribution p is formed from it and held fixed until the next
 *     update, and delta = (labels changed since the last update) / N; the
 *     stage stops when ite > 0 and delta < tol. Each iteration takes one
 *     step of a FRESH optimiser (quirk Q13) on
 *     kl_weight * KLD(p_b || q_b) + mse_weight * MSE(x^_b, x_b).
 *     Batches follow the reference's index rule (c.3.d): rows
 *     [B*index, min(B*(index+1), N)) in dataset order (Q4; `shuffle`
 *     draws a fresh order for each pass instead); index advances while
 *     B*(index+1) <= N and otherwise returns to 0. When N is a multiple
 *     of B that rule yields one empty batch per pass (Q5): that iteration
 *     takes no optimiser step and records zero losses.
 *
 * Input: activations x [N, H, W, C] f32 whose rows are each contiguous
 * (any row stride), typically a memory-mapped .npy (st_npy_map): the
 * trainer gathers each mini-batch into its own buffer and never copies
 * the whole array. Memory beyond the model: O(N * (K + d)) floats.
 *
 * Randomness: one st_rng seeded from cfg.seed drives, in order, the
 * autoencoder's Glorot initialisation, each epoch's shuffle, k-means and
 * (with `shuffle`) each clustering pass's order. The same seed, data and
 * configuration give bitwise the same model, embeddings and assignments
 * for a fixed thread count (cfg.threads and OpenBLAS's), see docs/dec.md.
 *
 * Checkpoints: with cfg.dir set, <dir>/checkpoint.safetensors is written
 * atomically (temp file + rename) at the end of every pretraining epoch,
 * at every target update and at the end. It holds the model, both
 * optimisers' states, the centroids, p, y_pred_last, the loss history and
 * (in its metadata, as JSON) the rng state, the position in the schedule
 * and the configuration. With cfg.resume (the default) a trainer that has
 * not trained yet resumes from an existing checkpoint, after checking that
 * it was made with the same configuration and data shape; the resumed run
 * ends with bitwise the same model as an uninterrupted one.
 *
 * A non-finite loss stops training with ST_ENUMERIC and a message naming
 * the layer, stage and step; the last good checkpoint stays on disk and
 * the in-memory trainer refuses to continue (ST_ESTATE). */
#ifndef STRATA_DEC_H
#define STRATA_DEC_H

#include <stdbool.h>
#include <stdint.h>
#include "strata/cae.h"
#include "strata/optim.h"
#include "strata/status.h"
#include "strata/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct st_dec_config {
    const char *name;        /* layer name for messages and checkpoints; default "layer" */
    int clusters;            /* K; default 15 (the paper's Table 1) */
    int filters[4];          /* autoencoder f0, f1, f2, d; default 32, 64, 128, 20 */
    float radius;            /* embedding norm; default 8 */
    bool minimal_padding;    /* default false: the reference's pad-by-8 (Q1) */
    int threads;             /* autoencoder worker threads; default 1 */
    float alpha;             /* Student-t degrees of freedom; default 100 */
    int batch;               /* mini-batch of both stages; default 32 */
    /* stage 1 */
    int epochs;              /* pretraining epochs (>= 0); default 3 (ACModel; the paper's notebook: 15) */
    st_optim_config pretrain_optim; /* default Keras Adam (1e-3, 0.9, 0.999, 1e-7) */
    /* stage 2 */
    int kmeans_n_init;       /* default 20 */
    int kmeans_max_iter;     /* default 300 */
    double kmeans_tol;       /* default 1e-4 (relative to the mean variance) */
    /* stage 3 */
    int maxiter;             /* clustering iterations (>= 0); default 280 (ACModel; notebook: 980) */
    int update_interval;     /* default 140 */
    double tol;              /* delta-label stop threshold; default 1e-3 */
    float kl_weight;         /* default 0.1 */
    float mse_weight;        /* default 1.0 (0 gives DEC without reconstruction) */
    bool shuffle;            /* default false: dataset order (Q4) */
    st_optim_config cluster_optim;  /* default Keras Adam, a fresh instance (Q13) */
    uint64_t seed;           /* default 0 */
    const char *dir;         /* existing checkpoint directory, or NULL (default) */
    bool resume;             /* default true: continue from <dir>/checkpoint.safetensors */
} st_dec_config;

/* The reference defaults listed above. */
st_dec_config st_dec_config_default(void);

typedef enum st_dec_stage {
    ST_DEC_PRETRAIN = 0,
    ST_DEC_KMEANS,
    ST_DEC_CLUSTER,
    ST_DEC_DONE,
    ST_DEC_FAILED
} st_dec_stage;

typedef enum st_dec_stop {
    ST_DEC_RUNNING = 0,   /* not finished */
    ST_DEC_MAXITER,       /* ran all maxiter iterations */
    ST_DEC_TOL            /* delta < tol at an update */
} st_dec_stop;

/* Short names: "pretrain", "kmeans", "cluster", "done", "failed";
 * "running", "maxiter", "tol". */
const char *st_dec_stage_name(st_dec_stage s);
const char *st_dec_stop_name(st_dec_stop s);

typedef enum st_dec_event {
    ST_DEC_EV_STEP = 0,   /* one optimiser step (either stage) */
    ST_DEC_EV_EPOCH,      /* a pretraining epoch ended (checkpoint written) */
    ST_DEC_EV_KMEANS,     /* k-means initialised the centroids */
    ST_DEC_EV_UPDATE,     /* a target update (checkpoint written) */
    ST_DEC_EV_DONE        /* training finished (checkpoint written) */
} st_dec_event;

/* What the callback sees. Steps count from 1 within their stage. */
typedef struct st_dec_progress {
    const char *layer;
    st_dec_event event;
    st_dec_stage stage;
    int epoch;            /* pretraining epochs completed */
    int64_t step;         /* steps done in this stage (pretraining: in total) */
    int64_t total;        /* steps the stage plans (clustering: maxiter) */
    double loss, kl, mse; /* the last step's losses (pretraining: loss = mse, kl = 0) */
    double delta;         /* label change at the last target update (-1 before any) */
    bool checkpoint;      /* a checkpoint was written just before this call */
} st_dec_progress;

/* Return false to stop training; st_dec_fit then returns ST_OK with no
 * result, and a later st_dec_fit continues from the in-memory state. */
typedef bool (*st_dec_callback)(void *ctx, const st_dec_progress *p);

typedef struct st_dec st_dec;

/* A trainer for activations of shape (height, width, channels). Checks
 * the configuration (ST_EINVAL naming the field) and builds the
 * autoencoder from the seed. */
st_status st_dec_new(const st_dec_config *cfg, int height, int width, int channels, st_dec **out);
void st_dec_free(st_dec *d);

typedef struct st_dec_result {
    st_tensor *q;             /* [N, K] f32 soft assignments (final model) */
    st_tensor *labels;        /* [N] i64 argmax of q */
    st_tensor *embeddings;    /* [N, d] f32, norm = radius */
    st_tensor *centroids;     /* [K, d] f32 (free, not on the sphere: Q11) */
    st_tensor *pretrain_loss; /* [steps] f64 MSE of every pretraining step, or NULL if none */
    st_tensor *cluster_loss;  /* [iterations, 3] f64 total, kl, mse, or NULL if none */
    int64_t iterations;       /* clustering iterations run */
    st_dec_stop stop;
    double delta;             /* label change at the last target update */
} st_dec_result;
void st_dec_result_free(st_dec_result *r);

/* Trains on x (resuming from the checkpoint first, see above) until the
 * schedule ends or cb (may be NULL) asks to stop. When training is done,
 * *out (may be NULL) gets the outputs for x under the final model; when
 * stopped by the callback, *out is set to NULL. Every call must pass the
 * same data. */
st_status st_dec_fit(st_dec *d, const st_tensor *x, st_dec_callback cb, void *ctx, st_dec_result **out);

/* Threads that run the trainer's cfg.threads lanes from its next pass on
 * (st_cae_set_active_threads): the same bits with fewer cores. May be
 * called from another thread while the trainer trains. */
void st_dec_set_active_threads(st_dec *d, int threads);

/* One trainer's share of st_dec_fit_many: its activations x, or (x NULL)
 * the .npy file at path, memory-mapped only while this trainer trains. */
typedef struct st_dec_job {
    st_dec *trainer;
    const st_tensor *x;
    const char *path;
} st_dec_job;

/* st_dec_fit of n trainers on `workers` cores, in the order given: job
 * i's result in out[i] (out may be NULL). Each trainer keeps its
 * cfg.threads lanes, so it computes bitwise what st_dec_fit would,
 * whatever the others do. Independent layers train this way faster than
 * one after another with more threads each (docs/dec.md, "Several layers
 * at once"). A job starts on one thread when a worker is free; a worker
 * with no job left lends its core to the first running trainer with
 * lanes to spare (st_dec_set_active_threads: no bits change); finished
 * trainers are handed back with a thread per lane. With paths, at most
 * `workers` files are mapped (and resident) at a time. cb (may be NULL)
 * gets every trainer's events (p->layer names it) one call at a time,
 * from the worker threads. Returning false stops every trainer at its
 * next event and starts no more; those without a result get NULL. When a
 * trainer fails, the others stop the same way, every out[i] is NULL and
 * its error (naming the trainer) is returned. */
st_status st_dec_fit_many(const st_dec_job *jobs, int n, int workers, st_dec_callback cb, void *ctx,
                          st_dec_result **out);

/* Soft assignments q [n, K] and embeddings z [n, d] (either may be NULL)
 * of any activations x [n, H, W, C] under the current model, computed in
 * chunks of `batch` rows (output convention of tensor.h). */
st_status st_dec_predict(st_dec *d, const st_tensor *x, st_tensor **q, st_tensor **z);

/* Accessors. The autoencoder and centroids belong to the trainer. */
st_dec_stage st_dec_get_stage(const st_dec *d);
const st_dec_config *st_dec_get_config(const st_dec *d);
st_cae *st_dec_cae(st_dec *d);
st_tensor *st_dec_centroids(st_dec *d);
/* Where the schedule stands: completed pretraining epochs and clustering
 * iterations. */
int st_dec_epoch(const st_dec *d);
int64_t st_dec_iteration(const st_dec *d);

/* Writes the checkpoint now (ST_ESTATE without cfg.dir), and reads one
 * into a trainer that has not trained yet (st_dec_fit does both on its
 * own; these are for tools and tests). `path` NULL means the default
 * <dir>/checkpoint.safetensors. */
st_status st_dec_save_checkpoint(st_dec *d, const char *path);
st_status st_dec_load_checkpoint(st_dec *d, const char *path);

#ifdef __cplusplus
}
#endif
#endif
