/* Several trainers at once (see st_dec_fit_many in dec.h): a pool of
 * worker threads takes the trainers in order. The calling thread is one of
 * the workers. The callback and the shared state are behind one lock. */
#include <pthread.h>
#include <stdio.h>
#include "strata/dec.h"

#define MAX_JOBS 64

typedef struct pool {
    st_dec *const *d;
    const st_tensor *const *x;
    st_dec_result **out;
    int n;
    st_dec_callback cb;
    void *ctx;
    pthread_mutex_t lock;
    int next;        /* the next trainer to start */
    bool stop;       /* the callback asked to stop, or a trainer failed */
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

static void *worker(void *arg)
{
    pool *pl = arg;
    for (;;) {
        pthread_mutex_lock(&pl->lock);
        const int i = pl->stop || pl->next >= pl->n ? -1 : pl->next++;
        pthread_mutex_unlock(&pl->lock);
        if (i < 0) return NULL;
        const st_status s = st_dec_fit(pl->d[i], pl->x[i], relay, pl, pl->out ? &pl->out[i] : NULL);
        if (s != ST_OK) {
            pthread_mutex_lock(&pl->lock);
            if (pl->failure == ST_OK) {
                /* the message lives in this thread; the caller's thread reports it */
                pl->failure = s;
                snprintf(pl->message, sizeof pl->message, "%s", st_error_message());
            }
            pl->stop = true;
            pthread_mutex_unlock(&pl->lock);
        }
    }
}

st_status st_dec_fit_many(st_dec *const *d, const st_tensor *const *x, int n, int jobs, st_dec_callback cb,
                          void *ctx, st_dec_result **out)
{
    if (n < 0 || (n > 0 && (!d || !x))) return st_fail(ST_EINVAL, "dec fit_many: %d trainers and no arrays", n);
    if (jobs < 1) return st_fail(ST_EINVAL, "dec fit_many: jobs must be at least 1, got %d", jobs);
    for (int i = 0; i < n; i++) {
        if (out) out[i] = NULL;
        if (!d[i] || !x[i]) return st_fail(ST_EINVAL, "dec fit_many: trainer %d or its activations missing", i + 1);
        for (int j = 0; j < i; j++)
            if (d[j] == d[i]) return st_fail(ST_EINVAL, "dec fit_many: trainer %d is also trainer %d", i + 1, j + 1);
    }
    if (jobs > n) jobs = n;
    if (jobs > MAX_JOBS) jobs = MAX_JOBS;
    pool pl = {.d = d, .x = x, .out = out, .n = n, .cb = cb, .ctx = ctx, .failure = ST_OK};
    if (pthread_mutex_init(&pl.lock, NULL)) return st_fail(ST_ENOMEM, "dec fit_many: cannot create a mutex");
    pthread_t thread[MAX_JOBS];
    int started = 0;
    /* a thread that cannot start leaves its share to the others */
    for (int j = 1; j < jobs; j++)
        if (pthread_create(&thread[started], NULL, worker, &pl) == 0) started++;
    worker(&pl);
    for (int j = 0; j < started; j++) pthread_join(thread[j], NULL);
    pthread_mutex_destroy(&pl.lock);
    if (pl.failure == ST_OK) return ST_OK;
    for (int i = 0; out && i < n; i++) {
        st_dec_result_free(out[i]);
        out[i] = NULL;
    }
    return st_fail(pl.failure, "%s", pl.message);
}
