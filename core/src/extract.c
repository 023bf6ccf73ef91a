/* Streaming activation extraction (see extract.h).
 *
 * With a directory, a writer thread writes batch i to the files while the
 * net computes batch i+1, so the forward threads do not wait for the
 * kernel's copies into the page cache or for the disk. The next forward
 * overwrites the net's tap buffers, so after each forward the rows are
 * copied once: into the in-memory arrays when they are kept (the writer
 * then reads that slice), else into a staging batch. The main thread waits
 * for the writer only before handing it the next batch; a write error is
 * reported there or at the end. Progress callbacks run on the calling
 * thread. */
#include "strata/extract.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "strata/npy.h"

#define DEFAULT_BATCH 256
#define MESSAGE_CAP 1024

/* One output array: where its rows come from and where they go. */
typedef struct output {
    const char *name;   /* tap name, or "logits"/"pred"/"labels" */
    st_dtype dtype;
    int ndim;           /* including N */
    int64_t shape[4];
    st_npy_writer *file;
    st_tensor *memory;
    st_tensor *staging; /* [batch, ...]: a file's rows when memory is not kept */
    st_tensor *pending; /* view of the rows the writer appends to the file next */
} output;

/* The writer thread and its hand-off; fields below `lock` are shared. */
typedef struct writer {
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool busy;          /* a batch was handed over and is not written yet */
    bool quit;
    int64_t start, n;   /* that batch's images, for messages */
    st_status status;   /* the writer's failure: the run stops at its next wait */
    char message[MESSAGE_CAP];
} writer;

typedef struct run {
    st_net *net;
    const st_dataset *ds;
    const st_extract_options *opt;
    int64_t total;
    int batch;
    output *out;
    int n_out;
    uint8_t *pixels;
    int32_t *labels;
    int64_t *idx;
    st_tensor *x, *pred, *truth;
    writer w;
} run;

/* Appends every output's pending rows (writer thread). */
static st_status write_pending(run *r)
{
    for (int i = 0; i < r->n_out; i++)
        if (r->out[i].pending) ST_TRY(st_npy_writer_append(r->out[i].file, r->out[i].pending));
    return ST_OK;
}

static void *writer_main(void *arg)
{
    run *r = arg;
    writer *w = &r->w;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->busy && !w->quit) pthread_cond_wait(&w->cond, &w->lock);
        if (!w->busy) break;
        pthread_mutex_unlock(&w->lock);
        st_status s = write_pending(r);
        pthread_mutex_lock(&w->lock);
        if (s != ST_OK) {
            w->status = s;
            snprintf(w->message, sizeof w->message, "%s", st_error_message());
        }
        w->busy = false;
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static st_status writer_start(run *r)
{
    writer *w = &r->w;
    if (pthread_mutex_init(&w->lock, NULL)) return st_fail(ST_ENOMEM, "extract: cannot create the writer's lock");
    if (pthread_cond_init(&w->cond, NULL)) {
        pthread_mutex_destroy(&w->lock);
        return st_fail(ST_ENOMEM, "extract: cannot create the writer's condition");
    }
    if (pthread_create(&w->thread, NULL, writer_main, r)) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        return st_fail(ST_ENOMEM, "extract: cannot start the writer thread");
    }
    w->started = true;
    return ST_OK;
}

/* Waits until the writer has written the batch it was given; its failure,
 * if any, is reported on this thread. Every hand-off follows a wait, so
 * the writer never gets a batch after a failure. */
static st_status writer_wait(run *r)
{
    writer *w = &r->w;
    if (!w->started) return ST_OK;
    pthread_mutex_lock(&w->lock);
    while (w->busy) pthread_cond_wait(&w->cond, &w->lock);
    st_status s = w->status;
    pthread_mutex_unlock(&w->lock);
    if (s != ST_OK)
        return st_fail(s, "extract: writing images %lld to %lld: %s", (long long)w->start + 1,
                       (long long)(w->start + w->n), w->message);
    return ST_OK;
}

static void writer_give(run *r, int64_t start, int n)
{
    writer *w = &r->w;
    pthread_mutex_lock(&w->lock);
    w->start = start;
    w->n = n;
    w->busy = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Lets the writer finish the batch it holds, then ends the thread. */
static void writer_stop(run *r)
{
    writer *w = &r->w;
    if (!w->started) return;
    pthread_mutex_lock(&w->lock);
    w->quit = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    w->started = false;
}

static void free_run(run *r, bool failed)
{
    writer_stop(r);
    for (int i = 0; i < r->n_out; i++) {
        if (failed && r->out[i].file) st_npy_writer_abort(r->out[i].file);
        st_tensor_free(r->out[i].memory);
        st_tensor_free(r->out[i].staging);
        st_tensor_free(r->out[i].pending);
    }
    free(r->out);
    free(r->pixels);
    free(r->labels);
    free(r->idx);
    st_tensor_free(r->x);
    st_tensor_free(r->pred);
    st_tensor_free(r->truth);
}

static st_status check(const run *r)
{
    int h, w, c, nh, nw, nc;
    st_dataset_image_shape(r->ds, &h, &w, &c);
    st_net_input_shape(r->net, &nh, &nw, &nc);
    if (h != nh || w != nw || c != nc)
        return st_fail(ST_ESHAPE, "extract: dataset images are %dx%dx%d, the net takes %dx%dx%d", h, w, c, nh, nw, nc);
    if (r->opt->batch < 0 || r->opt->n_taps < 0 || (r->opt->n_taps && !r->opt->taps) ||
        (r->opt->indices && r->opt->n_indices < 0))
        return st_fail(ST_EINVAL, "extract: batch %d and %d taps must not be negative", r->opt->batch,
                       r->opt->n_taps);
    for (int t = 0; t < r->opt->n_taps; t++) {
        const char *name = r->opt->taps[t];
        if (st_net_find(r->net, name) < 0)
            return st_fail(ST_EINVAL, "extract: the net has no tap named '%s'", name ? name : "(null)");
        if (!strcmp(name, "logits") || !strcmp(name, "pred") || !strcmp(name, "labels"))
            continue; /* the same array as the fixed output: written once */
        if (strchr(name, '/'))
            return st_fail(ST_EINVAL, "extract: tap name '%s' cannot be a file name", name);
        for (int u = 0; u < t; u++)
            if (!strcmp(r->opt->taps[u], name)) return st_fail(ST_EINVAL, "extract: tap '%s' requested twice", name);
    }
    return ST_OK;
}

static void add_output(run *r, const char *name, st_dtype dtype, int ndim, const int64_t *sample)
{
    output *o = &r->out[r->n_out++];
    memset(o, 0, sizeof *o);
    o->name = name;
    o->dtype = dtype;
    o->ndim = ndim + 1;
    o->shape[0] = r->total;
    for (int d = 0; d < ndim; d++) o->shape[d + 1] = sample[d];
}

static st_status open_outputs(run *r)
{
    r->out = calloc((size_t)r->opt->n_taps + 3, sizeof *r->out);
    if (!r->out) return st_fail(ST_ENOMEM, "extract: out of memory");
    st_net_tap_info info;
    for (int t = 0; t < r->opt->n_taps; t++) {
        const char *name = r->opt->taps[t];
        if (!strcmp(name, "logits") || !strcmp(name, "pred") || !strcmp(name, "labels")) continue;
        st_net_tap_at(r->net, (size_t)st_net_find(r->net, name), &info);
        add_output(r, name, ST_F32, info.ndim, info.shape);
    }
    int64_t classes = st_net_class_count(r->net);
    add_output(r, "logits", ST_F32, 1, &classes);
    add_output(r, "pred", ST_I64, 0, NULL);
    add_output(r, "labels", ST_I64, 0, NULL);
    for (int i = 0; i < r->n_out; i++) {
        output *o = &r->out[i];
        if (r->opt->dir) {
            char path[4096];
            int n = snprintf(path, sizeof path, "%s/%s.npy", r->opt->dir, o->name);
            if (n < 0 || (size_t)n >= sizeof path) return st_fail(ST_EINVAL, "extract: directory name too long");
            ST_TRY(st_npy_writer_open(path, o->dtype, o->ndim, o->shape, &o->file));
        }
        if (r->opt->in_memory) ST_TRY(st_tensor_new(o->dtype, o->ndim, o->shape, &o->memory));
    }
    return ST_OK;
}

static st_status alloc_buffers(run *r)
{
    int h, w, c;
    st_dataset_image_shape(r->ds, &h, &w, &c);
    size_t image = (size_t)h * w * c;
    r->pixels = malloc((size_t)r->batch * image);
    r->labels = malloc((size_t)r->batch * sizeof *r->labels);
    r->idx = malloc((size_t)r->batch * sizeof *r->idx);
    if (!r->pixels || !r->labels || !r->idx) return st_fail(ST_ENOMEM, "extract: cannot allocate a batch of %d", r->batch);
    ST_TRY(st_tensor_new(ST_F32, 4, (int64_t[]){r->batch, h, w, c}, &r->x));
    ST_TRY(st_tensor_new(ST_I64, 1, (int64_t[]){r->batch}, &r->pred));
    ST_TRY(st_tensor_new(ST_I64, 1, (int64_t[]){r->batch}, &r->truth));
    for (int i = 0; i < r->n_out; i++) {
        output *o = &r->out[i];
        if (!o->file || o->memory) continue;
        int64_t shape[4];
        memcpy(shape, o->shape, sizeof shape);
        shape[0] = r->batch;
        ST_TRY(st_tensor_new(o->dtype, o->ndim, shape, &o->staging));
    }
    return ST_OK;
}

/* Copies rows [start, start+n) of output o out of the net's buffers
 * (`rows`, [n, ...]) into the kept array, or else into the staging batch,
 * and marks the copy as the writer's next rows when there is a file. */
static st_status stage(output *o, const st_tensor *rows, int64_t start)
{
    int64_t n = rows->shape[0];
    st_tensor *dst = NULL;
    if (o->memory) ST_TRY(st_tensor_slice(o->memory, 0, start, start + n, 1, &dst));
    else if (o->staging) ST_TRY(st_tensor_slice(o->staging, 0, 0, n, 1, &dst));
    else return ST_OK;
    st_status s = st_tensor_copy_into(dst, rows);
    if (s == ST_OK && o->file) o->pending = dst;
    else st_tensor_free(dst);
    return s;
}

/* Runs one batch through the net and stages its rows. The writer may still
 * be writing the previous batch during the forward; it is waited for only
 * before the staged rows are replaced. */
static st_status run_batch(run *r, int64_t start, int n)
{
    for (int i = 0; i < n; i++) r->idx[i] = r->opt->indices ? r->opt->indices[start + i] : start + i;
    ST_TRY(st_dataset_read(r->ds, r->idx, n, r->pixels, r->labels, NULL));
    st_tensor *x = NULL, *pred = NULL, *truth = NULL, *logits = NULL;
    st_status s = st_tensor_slice(r->x, 0, 0, n, 1, &x);
    if (s == ST_OK) s = st_tensor_slice(r->pred, 0, 0, n, 1, &pred);
    if (s == ST_OK) s = st_tensor_slice(r->truth, 0, 0, n, 1, &truth);
    if (s == ST_OK) {
        st_net_preprocess_u8(r->net, r->pixels, n, st_f32(x));
        s = st_net_forward(r->net, x, r->opt->taps, r->opt->n_taps);
    }
    if (s == ST_OK) s = st_net_output(r->net, &logits);
    if (s == ST_OK) {
        int classes = (int)logits->shape[1];
        for (int i = 0; i < n; i++) {
            const float *row = st_f32(logits) + (size_t)i * classes;
            int best = 0;
            for (int k = 1; k < classes; k++)
                if (row[k] > row[best]) best = k;
            ((int64_t *)pred->data)[i] = best;
            ((int64_t *)truth->data)[i] = r->labels[i];
        }
    }
    if (s == ST_OK) s = writer_wait(r);
    for (int i = 0; s == ST_OK && i < r->n_out; i++) {
        output *o = &r->out[i];
        st_tensor_free(o->pending);
        o->pending = NULL;
        const st_tensor *rows = !strcmp(o->name, "logits") ? logits : !strcmp(o->name, "pred") ? pred
                                : !strcmp(o->name, "labels")                                  ? truth
                                                                                              : NULL;
        st_tensor *tap = NULL;
        if (!rows) {
            s = st_net_tap(r->net, o->name, &tap);
            rows = tap;
        }
        if (s == ST_OK) s = stage(o, rows, start);
        st_tensor_free(tap);
    }
    if (s == ST_OK && r->w.started) writer_give(r, start, n);
    st_tensor_free(x);
    st_tensor_free(pred);
    st_tensor_free(truth);
    st_tensor_free(logits);
    return s;
}

static st_status keep_results(run *r, st_extract_result **out)
{
    st_extract_result *res = calloc(1, sizeof *res);
    if (res) {
        res->names = calloc((size_t)r->n_out, sizeof *res->names);
        res->arrays = calloc((size_t)r->n_out, sizeof *res->arrays);
    }
    if (!res || !res->names || !res->arrays) {
        st_extract_result_free(res);
        return st_fail(ST_ENOMEM, "extract: out of memory");
    }
    for (int i = 0; i < r->n_out; i++) {
        res->names[i] = strdup(r->out[i].name);
        if (!res->names[i]) {
            st_extract_result_free(res);
            return st_fail(ST_ENOMEM, "extract: out of memory");
        }
        res->arrays[i] = r->out[i].memory;
        r->out[i].memory = NULL;
        res->n = i + 1;
    }
    *out = res;
    return ST_OK;
}

st_status st_extract_run(st_net *net, const st_dataset *ds, const st_extract_options *opt, st_extract_result **out)
{
    if (opt->in_memory && !out) return st_fail(ST_EINVAL, "extract: in_memory needs a result pointer");
    run r = {.net = net,
             .ds = ds,
             .opt = opt,
             .total = opt->indices ? opt->n_indices : st_dataset_count(ds),
             .batch = opt->batch ? opt->batch : DEFAULT_BATCH};
    st_status s = check(&r);
    if (s == ST_OK && r.total == 0) s = st_fail(ST_EINVAL, "extract: no images to run");
    if (s == ST_OK && r.batch > r.total) r.batch = (int)r.total;
    if (s == ST_OK) s = open_outputs(&r);
    if (s == ST_OK) s = alloc_buffers(&r);
    if (s == ST_OK && opt->dir) s = writer_start(&r);
    for (int64_t start = 0; s == ST_OK && start < r.total; start += r.batch) {
        int n = (int)(r.total - start < r.batch ? r.total - start : r.batch);
        s = run_batch(&r, start, n);
        if (s == ST_OK && opt->progress && !opt->progress(opt->progress_ctx, start + n, r.total))
            s = st_fail(ST_ESTATE, "extract: stopped after %lld of %lld images", (long long)(start + n),
                        (long long)r.total);
    }
    if (s == ST_OK) s = writer_wait(&r);
    for (int i = 0; s == ST_OK && i < r.n_out; i++) {
        s = r.out[i].file ? st_npy_writer_close(r.out[i].file) : ST_OK;
        r.out[i].file = NULL;
    }
    if (s == ST_OK && opt->in_memory) s = keep_results(&r, out);
    free_run(&r, s != ST_OK);
    return s;
}

void st_extract_result_free(st_extract_result *r)
{
    if (!r) return;
    for (int i = 0; i < r->n; i++) {
        free(r->names[i]);
        st_tensor_free(r->arrays[i]);
    }
    free(r->names);
    free(r->arrays);
    free(r);
}

const st_tensor *st_extract_result_get(const st_extract_result *r, const char *name)
{
    for (int i = 0; r && name && i < r->n; i++)
        if (strcmp(r->names[i], name) == 0) return r->arrays[i];
    return NULL;
}
