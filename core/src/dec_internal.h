/* Private state of the DEC/IDEC trainer, shared by dec.c (object,
 * predict, outputs), dec_train.c (the schedule) and dec_checkpoint.c. */
#ifndef STRATA_DEC_INTERNAL_H
#define STRATA_DEC_INTERNAL_H

#include "strata/dec.h"
#include "strata/rng.h"

/* A growing array of doubles (the loss history). */
typedef struct dec_history {
    double *v;
    size_t n, cap; /* in doubles */
} dec_history;

struct st_dec {
    st_dec_config cfg;    /* name and dir point at the copies below */
    char *name, *dir;
    int h, w, c, d, k;
    size_t row;           /* floats per input row, H*W*C */
    st_cae *cae;
    st_tensor *mu, *dmu;  /* [K, d] */
    st_optim *opt_pre, *opt_clu;
    st_rng rng;

    /* position in the schedule */
    st_dec_stage stage;
    int epoch;            /* pretraining epochs completed */
    int64_t step;         /* steps done in the current epoch */
    int64_t ite;          /* clustering iterations done */
    int64_t index;        /* the reference's batch index */
    int64_t updated_at;   /* the iteration whose target update is in p, or -1 */
    st_dec_stop stop;
    double delta;
    double last[3];       /* the last step's total, kl, mse */
    bool started;         /* trained or restored: no more automatic resume */

    /* per-dataset arrays, allocated for n rows on first use */
    int64_t n;
    st_tensor *perm;      /* [n] i64: the epoch's or the clustering pass's order */
    st_tensor *p;         /* [n, K] f32 target distribution */
    st_tensor *y_last;    /* [n] i64 labels at the last update */
    st_tensor *q_all;     /* [n, K] f32 scratch of an update */
    st_tensor *z_kmeans;  /* [n, d] the k-means pass's embeddings until the first
                             target update uses them (the weights are unchanged in
                             between, so they equal a fresh pass bit for bit) */

    /* batch buffers (batch rows each) */
    float *xb, *zb, *qb, *pb, *xhat, *dxhat, *dq, *dz;

    dec_history pre_loss;   /* one value per pretraining step */
    dec_history clu_loss;   /* three values (total, kl, mse) per iteration */
};

/* dec.c */
st_status dec_check_input(const st_dec *d, const st_tensor *x, const char *what);
/* Copies rows idx[0..b) (or first..first+b when idx is NULL) of x into dst. */
void dec_gather(const st_dec *d, const st_tensor *x, const int64_t *idx, int64_t first, int b, float *dst);
/* Allocates the per-dataset arrays for n rows (no-op when already n). */
st_status dec_alloc_rows(st_dec *d, int64_t n);
/* q [n, K] and/or z [n, d] of x into raw buffers (either may be NULL). */
st_status dec_pass(st_dec *d, const st_tensor *x, float *q, float *z);
st_status dec_history_push(dec_history *h, const double *v, size_t n);
/* labels[i] = argmax_j q[i, j] (ties to the lower j). */
void dec_argmax(int64_t n, int k, const float *q, int64_t *labels);
/* The outputs of a finished run on x. */
st_status dec_make_result(st_dec *d, const st_tensor *x, st_dec_result **out);

/* dec_checkpoint.c */
st_status dec_checkpoint_path(const st_dec *d, const char *path, char *buf, size_t cap);

#endif
