/* Several trainers at once (st_dec_fit_many): each gives bitwise what it
 * gives alone, the callback sees every trainer's events one call at a
 * time, a stop or a failure stops them all, jobs given as .npy paths
 * train on the mapped file, free cores are lent to a trainer with lanes
 * to spare, and bad arguments are errors. */
#include "tmpdir.h"
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include "strata/cae.h"
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

/* Three trainers, their arrays, the jobs pairing them and room for results. */
typedef struct trio {
    st_dec *d[N_TRAINERS];
    st_tensor *x[N_TRAINERS];
    st_dec_job jobs[N_TRAINERS];
    st_dec_result *r[N_TRAINERS];
} trio;

static void trio_make(trio *t)
{
    for (int i = 0; i < N_TRAINERS; i++) {
        const st_dec_config c = config_of(i);
        t->d[i] = NULL;
        t->r[i] = NULL;
        CHECK_OK(st_dec_new(&c, H, W, C, &t->d[i]));
        t->x[i] = blobs(ROWS, 20 + (uint64_t)i);
        t->jobs[i] = (st_dec_job){t->d[i], t->x[i], NULL};
    }
}

static void trio_free(trio *t)
{
    for (int i = 0; i < N_TRAINERS; i++) {
        st_dec_free(t->d[i]);
        st_tensor_free(t->x[i]);
        st_dec_result_free(t->r[i]);
    }
}

static void test_same_as_alone(void)
{
    trio alone, many;
    trio_make(&alone);
    trio_make(&many);
    for (int i = 0; i < N_TRAINERS; i++) CHECK_OK(st_dec_fit(alone.d[i], alone.x[i], NULL, NULL, &alone.r[i]));
    CHECK_OK(st_dec_fit_many(many.jobs, N_TRAINERS, 2, NULL, NULL, many.r));
    for (int i = 0; i < N_TRAINERS; i++) {
        const st_dec_result *a = alone.r[i], *m = many.r[i];
        CHECK(a && m);
        if (!a || !m) continue;
        CHECK(same_bits(a->embeddings->data, m->embeddings->data, ROWS * 4 * sizeof(float)));
        CHECK(same_bits(a->q->data, m->q->data, ROWS * 3 * sizeof(float)));
        CHECK(same_bits(a->centroids->data, m->centroids->data, 3 * 4 * sizeof(float)));
        CHECK(a->iterations == m->iterations);
    }
    /* the trainers are different models: the comparison above is not vacuous */
    if (many.r[0] && many.r[2])
        CHECK(!same_bits(many.r[0]->embeddings->data, many.r[2]->embeddings->data, ROWS * 4 * sizeof(float)));
    trio_free(&alone);
    trio_free(&many);
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
    trio t;
    trio_make(&t);
    watcher w = {0};
    CHECK_OK(st_dec_fit_many(t.jobs, N_TRAINERS, 3, watch, &w, t.r));
    CHECK(!w.overlapped);
    for (int i = 0; i < N_TRAINERS; i++) {
        CHECK(t.r[i] != NULL);
        CHECK(w.done[i] == 1);
        /* every pretraining step and clustering iteration reports */
        CHECK(w.events[i] > 2 * (ROWS / 16) + 12);
    }
    trio_free(&t);
}

static void test_stop_stops_all(void)
{
    trio t;
    trio_make(&t);
    watcher w = {.stop_after = 1};
    CHECK_OK(st_dec_fit_many(t.jobs, N_TRAINERS, 2, watch, &w, t.r));
    CHECK(w.calls == 1); /* after the stop the callback is not called again */
    for (int i = 0; i < N_TRAINERS; i++) {
        CHECK(t.r[i] == NULL);
        CHECK(st_dec_get_stage(t.d[i]) == ST_DEC_PRETRAIN);
    }
    /* the third trainer never started */
    CHECK(st_dec_epoch(t.d[2]) == 0);
    trio_free(&t);
}

static void test_failure_stops_all(void)
{
    trio t;
    trio_make(&t);
    /* trainer b gets activations of another shape */
    const int64_t shape[4] = {ROWS, H, W, C + 1};
    st_tensor *wrong = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 4, shape, &wrong));
    t.jobs[1].x = wrong;
    CHECK_FAILS(st_dec_fit_many(t.jobs, N_TRAINERS, 2, NULL, NULL, t.r), ST_ESHAPE, "'b'");
    for (int i = 0; i < N_TRAINERS; i++) CHECK(t.r[i] == NULL);
    CHECK(st_dec_get_stage(t.d[0]) != ST_DEC_DONE);
    st_tensor_free(wrong);
    trio_free(&t);
}

/* A job given as a .npy path trains on the file, mapped by its worker;
 * a missing file is an error naming it. */
static void test_paths(void)
{
    tmpdir dir;
    CHECK(tmpdir_make(&dir) == 0);
    trio alone, t;
    trio_make(&alone);
    trio_make(&t);
    CHECK_OK(st_npy_save(tmpdir_file(&dir, "b.npy"), t.x[1]));
    CHECK_OK(st_dec_fit(alone.d[1], alone.x[1], NULL, NULL, &alone.r[1]));
    t.jobs[1] = (st_dec_job){t.d[1], NULL, tmpdir_file(&dir, "b.npy")};
    CHECK_OK(st_dec_fit_many(t.jobs, 2, 2, NULL, NULL, t.r));
    CHECK(t.r[1] && alone.r[1] &&
          same_bits(t.r[1]->embeddings->data, alone.r[1]->embeddings->data, ROWS * 4 * sizeof(float)));
    st_dec_result *r[2];
    const st_dec_job missing[2] = {{t.d[2], t.x[2], NULL}, {alone.d[0], NULL, tmpdir_file(&dir, "missing.npy")}};
    CHECK_FAILS(st_dec_fit_many(missing, 2, 2, NULL, NULL, r), ST_EIO, "missing.npy");
    CHECK(r[0] == NULL && r[1] == NULL);
    trio_free(&alone);
    trio_free(&t);
    CHECK(tmpdir_count(&dir) == 1); /* the file the job read, nothing else */
    tmpdir_remove(&dir);
}

/* Records the most threads trainer b ran with, before and after trainer
 * a reported done. */
typedef struct lending {
    st_dec *b;
    bool a_done;
    int most_b_while_a_runs, most_b;
} lending;

static bool watch_lending(void *ctx, const st_dec_progress *p)
{
    lending *l = ctx;
    const int now = st_cae_active_threads(st_dec_cae(l->b));
    if (!strcmp(p->layer, "b")) {
        if (now > l->most_b) l->most_b = now;
        if (!l->a_done && now > l->most_b_while_a_runs) l->most_b_while_a_runs = now;
    }
    if (!strcmp(p->layer, "a") && p->event == ST_DEC_EV_DONE) l->a_done = true;
    return true;
}

/* Two workers, a short job a (one lane) and a long job b (two lanes): b
 * runs on one thread while a trains, gets a's core once a is done and no
 * job is left, and is handed back with a thread per lane; its bits are
 * those of b trained alone on two threads. */
static void test_lends_free_cores(void)
{
    /* b: 4 epochs on 480 rows, two lanes; a: one batch, one epoch, one
     * iteration, so it ends long before b */
    enum { ROWS_B = 480 };
    st_dec_config cb = config_of(1), ca = config_of(0);
    cb.epochs = 4;
    ca.epochs = 1;
    ca.maxiter = 1;
    ca.kmeans_n_init = 1;
    st_dec *a = NULL, *b = NULL, *b_alone = NULL;
    CHECK_OK(st_dec_new(&ca, H, W, C, &a));
    CHECK_OK(st_dec_new(&cb, H, W, C, &b));
    CHECK_OK(st_dec_new(&cb, H, W, C, &b_alone));
    st_tensor *xa = blobs(16, 30), *xb = blobs(ROWS_B, 31);
    st_dec_result *alone = NULL, *r[2] = {NULL, NULL};
    CHECK_OK(st_dec_fit(b_alone, xb, NULL, NULL, &alone));
    const st_dec_job jobs[2] = {{a, xa, NULL}, {b, xb, NULL}};
    lending l = {b, false, 0, 0};
    CHECK_OK(st_dec_fit_many(jobs, 2, 2, watch_lending, &l, r));
    /* while a trained (if b started before a ended), b had one thread; then
     * both cores: a's worker found no job left */
    CHECK(l.most_b_while_a_runs <= 1);
    CHECK(l.most_b == 2);
    CHECK(st_cae_active_threads(st_dec_cae(b)) == 2);
    CHECK(r[1] && alone && same_bits(r[1]->embeddings->data, alone->embeddings->data, ROWS_B * 4 * sizeof(float)));
    st_dec_result_free(alone);
    st_dec_result_free(r[0]);
    st_dec_result_free(r[1]);
    st_tensor_free(xa);
    st_tensor_free(xb);
    st_dec_free(a);
    st_dec_free(b);
    st_dec_free(b_alone);
}

static void test_arguments(void)
{
    trio t;
    trio_make(&t);
    CHECK_FAILS(st_dec_fit_many(t.jobs, 2, 0, NULL, NULL, t.r), ST_EINVAL, "workers");
    const st_dec_job twice[2] = {t.jobs[0], t.jobs[0]};
    CHECK_FAILS(st_dec_fit_many(twice, 2, 2, NULL, NULL, t.r), ST_EINVAL, "job 2 trains the trainer of job 1");
    const st_dec_job nothing[2] = {t.jobs[0], {t.d[1], NULL, NULL}};
    CHECK_FAILS(st_dec_fit_many(nothing, 2, 2, NULL, NULL, t.r), ST_EINVAL, "job 2");
    CHECK_OK(st_dec_fit_many(t.jobs, 0, 2, NULL, NULL, t.r));
    /* more workers than jobs is fine */
    CHECK_OK(st_dec_fit_many(t.jobs, 2, 16, NULL, NULL, t.r));
    CHECK(t.r[0] && t.r[1]);
    trio_free(&t);
}

int main(void)
{
    RUN(test_same_as_alone);
    RUN(test_events_serialised);
    RUN(test_stop_stops_all);
    RUN(test_failure_stops_all);
    RUN(test_paths);
    RUN(test_lends_free_cores);
    RUN(test_arguments);
    return TEST_SUMMARY();
}
