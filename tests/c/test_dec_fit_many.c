/* Several trainers at once (st_dec_fit_many): each gives bitwise what it
 * gives alone, the callback sees every trainer's events one call at a
 * time, a stop or a failure stops them all, jobs given as .npy paths
 * train on the mapped file, and bad arguments are errors. */
#include "tmpdir.h"
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include "strata/dec.h"
#include "strata/npy.h"
#include "testing.h"
#include "dec_fixture.h"

#define N_TRAINERS 3
#define ROWS 60

static const char *const names[N_TRAINERS] = {"a", "b", "c"};

/* Trainer i: its own name, seed and (for one of them) two threads. */
static st_dec_config config_of(int i)
{
    st_dec_config c = small_config();
    c.name = names[i];
    c.seed = 11 + (uint64_t)i;
    c.maxiter = 12;
    c.threads = i == 1 ? 2 : 1;
    return c;
}

static void make_trainers(st_dec **d, st_tensor **x)
{
    for (int i = 0; i < N_TRAINERS; i++) {
        const st_dec_config c = config_of(i);
        d[i] = NULL;
        CHECK_OK(st_dec_new(&c, H, W, C, &d[i]));
        x[i] = blobs(ROWS, 20 + (uint64_t)i);
    }
}

/* The jobs for trainers d on arrays x. */
static void jobs_of(st_dec **d, st_tensor **x, st_dec_job *jobs)
{
    for (int i = 0; i < N_TRAINERS; i++) jobs[i] = (st_dec_job){d[i], x[i], NULL};
}

static void free_trainers(st_dec **d, st_tensor **x, st_dec_result **r)
{
    for (int i = 0; i < N_TRAINERS; i++) {
        st_dec_free(d[i]);
        st_tensor_free(x[i]);
        if (r) st_dec_result_free(r[i]);
    }
}

static void test_same_as_alone(void)
{
    st_dec *d[N_TRAINERS];
    st_tensor *x[N_TRAINERS];
    st_dec_result *alone[N_TRAINERS], *many[N_TRAINERS];
    make_trainers(d, x);
    for (int i = 0; i < N_TRAINERS; i++) CHECK_OK(st_dec_fit(d[i], x[i], NULL, NULL, &alone[i]));
    for (int i = 0; i < N_TRAINERS; i++) st_dec_free(d[i]);
    for (int i = 0; i < N_TRAINERS; i++) {
        const st_dec_config c = config_of(i);
        CHECK_OK(st_dec_new(&c, H, W, C, &d[i]));
    }
    st_dec_job jobs[N_TRAINERS];
    jobs_of(d, x, jobs);
    CHECK_OK(st_dec_fit_many(jobs, N_TRAINERS, 2, NULL, NULL, many));
    for (int i = 0; i < N_TRAINERS; i++) {
        CHECK(alone[i] && many[i]);
        if (!alone[i] || !many[i]) continue;
        CHECK(same_bits(alone[i]->embeddings->data, many[i]->embeddings->data, ROWS * 4 * sizeof(float)));
        CHECK(same_bits(alone[i]->q->data, many[i]->q->data, ROWS * 3 * sizeof(float)));
        CHECK(same_bits(alone[i]->centroids->data, many[i]->centroids->data, 3 * 4 * sizeof(float)));
        CHECK(alone[i]->iterations == many[i]->iterations);
    }
    /* the trainers are different models: the comparison above is not vacuous */
    if (many[0] && many[2])
        CHECK(!same_bits(many[0]->embeddings->data, many[2]->embeddings->data, ROWS * 4 * sizeof(float)));
    free_trainers(d, x, alone);
    for (int i = 0; i < N_TRAINERS; i++) st_dec_result_free(many[i]);
}

/* Counts events per trainer; `inside` proves no two calls overlap. */
typedef struct watcher {
    atomic_int inside;
    bool overlapped;
    int events[N_TRAINERS], done[N_TRAINERS];
    int stop_after; /* return false at this call (0: never) */
    int calls;
} watcher;

static bool watch(void *ctx, const st_dec_progress *p)
{
    watcher *w = ctx;
    if (atomic_fetch_add(&w->inside, 1) != 0) w->overlapped = true;
    /* linger, so that an unserialised call from another worker would land here */
    const struct timespec pause = {0, 20000};
    nanosleep(&pause, NULL);
    for (int i = 0; i < N_TRAINERS; i++)
        if (strcmp(p->layer, names[i]) == 0) {
            w->events[i]++;
            w->done[i] += p->event == ST_DEC_EV_DONE;
        }
    const bool go_on = ++w->calls != w->stop_after;
    atomic_fetch_sub(&w->inside, 1);
    return go_on;
}

static void test_events_serialised(void)
{
    st_dec *d[N_TRAINERS];
    st_tensor *x[N_TRAINERS];
    st_dec_result *r[N_TRAINERS];
    make_trainers(d, x);
    st_dec_job jobs[N_TRAINERS];
    jobs_of(d, x, jobs);
    watcher w = {0};
    CHECK_OK(st_dec_fit_many(jobs, N_TRAINERS, 3, watch, &w, r));
    CHECK(!w.overlapped);
    for (int i = 0; i < N_TRAINERS; i++) {
        CHECK(r[i] != NULL);
        CHECK(w.done[i] == 1);
        /* every pretraining step and clustering iteration reports */
        CHECK(w.events[i] > 2 * (ROWS / 16) + 12);
    }
    free_trainers(d, x, r);
}

static void test_stop_stops_all(void)
{
    st_dec *d[N_TRAINERS];
    st_tensor *x[N_TRAINERS];
    st_dec_result *r[N_TRAINERS];
    make_trainers(d, x);
    st_dec_job jobs[N_TRAINERS];
    jobs_of(d, x, jobs);
    watcher w = {.stop_after = 1};
    CHECK_OK(st_dec_fit_many(jobs, N_TRAINERS, 2, watch, &w, r));
    CHECK(w.calls == 1); /* after the stop the callback is not called again */
    for (int i = 0; i < N_TRAINERS; i++) {
        CHECK(r[i] == NULL);
        CHECK(st_dec_get_stage(d[i]) == ST_DEC_PRETRAIN);
    }
    /* the third trainer never started */
    CHECK(st_dec_epoch(d[2]) == 0);
    free_trainers(d, x, NULL);
}

static void test_failure_stops_all(void)
{
    st_dec *d[N_TRAINERS];
    st_tensor *x[N_TRAINERS];
    st_dec_result *r[N_TRAINERS];
    make_trainers(d, x);
    /* trainer b gets activations of another shape */
    st_tensor_free(x[1]);
    const int64_t shape[4] = {ROWS, H, W, C + 1};
    x[1] = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 4, shape, &x[1]));
    st_dec_job jobs[N_TRAINERS];
    jobs_of(d, x, jobs);
    CHECK_FAILS(st_dec_fit_many(jobs, N_TRAINERS, 2, NULL, NULL, r), ST_ESHAPE, "'b'");
    for (int i = 0; i < N_TRAINERS; i++) CHECK(r[i] == NULL);
    CHECK(st_dec_get_stage(d[0]) != ST_DEC_DONE);
    free_trainers(d, x, NULL);
}

/* A job given as a .npy path trains on the file, mapped by its worker;
 * a missing file is an error naming it. */
static void test_paths(void)
{
    tmpdir dir;
    CHECK(tmpdir_make(&dir) == 0);
    st_dec *d[N_TRAINERS];
    st_tensor *x[N_TRAINERS];
    st_dec_result *alone = NULL, *r[2];
    make_trainers(d, x);
    CHECK_OK(st_npy_save(tmpdir_file(&dir, "b.npy"), x[1]));
    CHECK_OK(st_dec_fit(d[1], x[1], NULL, NULL, &alone));
    st_dec_free(d[1]);
    const st_dec_config c = config_of(1);
    CHECK_OK(st_dec_new(&c, H, W, C, &d[1]));
    st_dec_job jobs[2] = {{d[0], x[0], NULL}, {d[1], NULL, tmpdir_file(&dir, "b.npy")}};
    CHECK_OK(st_dec_fit_many(jobs, 2, 2, NULL, NULL, r));
    CHECK(r[1] && alone && same_bits(r[1]->embeddings->data, alone->embeddings->data, ROWS * 4 * sizeof(float)));
    st_dec_result_free(r[0]);
    st_dec_result_free(r[1]);
    jobs[1] = (st_dec_job){d[2], NULL, tmpdir_file(&dir, "missing.npy")};
    CHECK_FAILS(st_dec_fit_many(jobs, 2, 2, NULL, NULL, r), ST_EIO, "missing.npy");
    CHECK(r[0] == NULL && r[1] == NULL);
    st_dec_result_free(alone);
    free_trainers(d, x, NULL);
    CHECK(tmpdir_count(&dir) == 1); /* the file the job read, nothing else */
    tmpdir_remove(&dir);
}

static void test_arguments(void)
{
    st_dec *d[N_TRAINERS];
    st_tensor *x[N_TRAINERS];
    st_dec_result *r[N_TRAINERS];
    make_trainers(d, x);
    st_dec_job jobs[N_TRAINERS];
    jobs_of(d, x, jobs);
    CHECK_FAILS(st_dec_fit_many(jobs, 2, 0, NULL, NULL, r), ST_EINVAL, "workers");
    st_dec_job twice[2] = {jobs[0], jobs[0]};
    CHECK_FAILS(st_dec_fit_many(twice, 2, 2, NULL, NULL, r), ST_EINVAL, "job 2 trains the trainer of job 1");
    st_dec_job nothing[2] = {jobs[0], {d[1], NULL, NULL}};
    CHECK_FAILS(st_dec_fit_many(nothing, 2, 2, NULL, NULL, r), ST_EINVAL, "job 2");
    CHECK_OK(st_dec_fit_many(jobs, 0, 2, NULL, NULL, r));
    /* more workers than jobs is fine */
    CHECK_OK(st_dec_fit_many(jobs, 2, 16, NULL, NULL, r));
    CHECK(r[0] && r[1]);
    free_trainers(d, x, NULL);
    st_dec_result_free(r[0]);
    st_dec_result_free(r[1]);
}

int main(void)
{
    RUN(test_same_as_alone);
    RUN(test_events_serialised);
    RUN(test_stop_stops_all);
    RUN(test_failure_stops_all);
    RUN(test_paths);
    RUN(test_arguments);
    return TEST_SUMMARY();
}
