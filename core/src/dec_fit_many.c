/* Several trainers at once (see st_dec_fit_many in dec.h): a pool of
 * worker threads takes the jobs in order. The calling thread is one of
 * the workers. The callback and the shared state are behind one lock.
 *
 * Cores: each worker stands for one. A job starts on its worker's core
 * alone; a core whose worker found no job left is lent to the first
 * running trainer with more lanes (cfg.threads) than threads, and a
 * finished trainer's lent cores go back to the others. Lanes fix the
 * arithmetic, so lending changes when a result is ready, not its bits. */
#include <pthread.h>
#include <stdio.h>
#include "strata/dec.h"
#include "strata/npy.h"

#define MAX_WORKERS 64
#define MAX_JOBS 64

typedef struct pool {
    const st_dec_job *jobs;
    st_dec_result **out;
    int n;
    st_dec_callback cb;
    void *ctx;
    pthread_mutex_t lock;
    int next;  /* the next job to start */
    bool stop; /* the callback asked to stop, or a trainer failed */
    int spare; /* cores no trainer uses */
    bool running[MAX_JOBS];
    st_status failure;
    char message[1024];
} pool;

/* Every trainer's events pass here: the stop flag, then the caller's callback. */
static bool relay(void *arg, const st_dec_progress *p)
{
    pool *pl = arg;
    pthread_mutex_lock(&pl->lock);
    bool go_on = !pl->stop && (!pl->cb || pl->cb(pl->ctx, p));
    if (!go_on) pl->stop = true;
    pthread_mutex_unlock(&pl->lock);
    return go_on;
}

/* Job i, mapping its file for the time it trains. */
static st_status run_job(pool *pl, int i)
{
    const st_dec_job *j = &pl->jobs[i];
    st_tensor *mapped = NULL;
    if (!j->x) ST_TRY(st_npy_map(j->path, &mapped));
    const st_status s = st_dec_fit(j->trainer, j->x ? j->x : mapped, relay, pl, pl->out ? &pl->out[i] : NULL);
    st_tensor_free(mapped);
    return s;
}

/* The threads trainer d runs on: its autoencoder keeps the count. */
static int threads_of(st_dec *d) { return st_cae_active_threads(st_dec_cae(d)); }

/* Lends the spare cores, one at a time, to the first running trainers
 * with a lane to spare (under the lock). */
static void lend_spare(pool *pl)
{
    for (int i = 0; i < pl->n && pl->spare > 0; i++) {
        st_dec *d = pl->jobs[i].trainer;
        while (pl->running[i] && pl->spare > 0 && threads_of(d) < st_dec_get_config(d)->threads) {
            st_dec_set_active_threads(d, threads_of(d) + 1);
            pl->spare--;
        }
    }
}

static void *worker(void *arg)
{
    pool *pl = arg;
    pthread_mutex_lock(&pl->lock);
    for (;;) {
        const int i = pl->stop || pl->next >= pl->n ? -1 : pl->next++;
        if (i < 0) {
            pl->spare++; /* this worker's core */
            lend_spare(pl);
            pthread_mutex_unlock(&pl->lock);
            return NULL;
        }
        pl->running[i] = true;
        st_dec_set_active_threads(pl->jobs[i].trainer, 1);
        lend_spare(pl);
        pthread_mutex_unlock(&pl->lock);
        const st_status s = run_job(pl, i);
        pthread_mutex_lock(&pl->lock);
        pl->running[i] = false;
        pl->spare += threads_of(pl->jobs[i].trainer) - 1; /* the lent cores; the worker keeps its own */
        /* later calls on the trainer get a thread per lane again, its default */
        st_dec_set_active_threads(pl->jobs[i].trainer, st_dec_get_config(pl->jobs[i].trainer)->threads);
        lend_spare(pl);
        if (s != ST_OK) {
            if (pl->failure == ST_OK) {
                /* the message lives in this thread; the caller's thread reports it */
                pl->failure = s;
                snprintf(pl->message, sizeof pl->message, "%s", st_error_message());
            }
            pl->stop = true;
        }
    }
}

static st_status check_jobs(const st_dec_job *jobs, int n, int workers)
{
    if (n < 0 || (n > 0 && !jobs)) return st_fail(ST_EINVAL, "dec fit_many: %d jobs and no job list", n);
    if (workers < 1) return st_fail(ST_EINVAL, "dec fit_many: workers must be at least 1, got %d", workers);
    for (int i = 0; i < n; i++) {
        if (!jobs[i].trainer || (!jobs[i].x && !jobs[i].path))
            return st_fail(ST_EINVAL, "dec fit_many: job %d has no trainer or no activations", i + 1);
        for (int j = 0; j < i; j++)
            if (jobs[j].trainer == jobs[i].trainer)
                return st_fail(ST_EINVAL, "dec fit_many: job %d trains the trainer of job %d again", i + 1, j + 1);
    }
    return ST_OK;
}

st_status st_dec_fit_many(const st_dec_job *jobs, int n, int workers, st_dec_callback cb, void *ctx,
                          st_dec_result **out)
{
    for (int i = 0; out && i < n; i++) out[i] = NULL;
    ST_TRY(check_jobs(jobs, n, workers));
    if (n > MAX_JOBS) return st_fail(ST_EINVAL, "dec fit_many: at most %d jobs, got %d", MAX_JOBS, n);
    pool pl = {.jobs = jobs, .out = out, .n = n, .cb = cb, .ctx = ctx, .failure = ST_OK};
    /* cores beyond the jobs' (more workers than jobs) are lent from the start */
    pl.spare = workers > n ? workers - n : 0;
    if (workers > n) workers = n;
    if (workers > MAX_WORKERS) workers = MAX_WORKERS;
    if (pthread_mutex_init(&pl.lock, NULL)) return st_fail(ST_ENOMEM, "dec fit_many: cannot create a mutex");
    pthread_t thread[MAX_WORKERS];
    int started = 0;
    /* a thread that cannot start leaves its share to the others */
    for (int w = 1; w < workers; w++)
        if (pthread_create(&thread[started], NULL, worker, &pl) == 0) started++;
    worker(&pl);
    for (int w = 0; w < started; w++) pthread_join(thread[w], NULL);
    pthread_mutex_destroy(&pl.lock);
    if (pl.failure == ST_OK) return ST_OK;
    for (int i = 0; out && i < n; i++) {
        st_dec_result_free(out[i]);
        out[i] = NULL;
    }
    return st_fail(pl.failure, "%s", pl.message);
}
