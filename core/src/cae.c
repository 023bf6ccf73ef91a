/* The reference convolutional autoencoder (see cae.h, METHOD.md b).
 *
 * The zero padding is never materialised. conv1 on the padded input only
 * differs from bias in the output window whose receptive fields touch
 * the real image, so it runs as a convolution of the unpadded input onto
 * that window (a geometry with larger implicit padding); outside it, a1
 * is the bias. By adjointness deconv1, restricted to the cropped output,
 * only reads a5 in that same window, so it runs from the window straight
 * onto the cropped reconstruction. With the reference's pad-by-8, at
 * 32x32 (padded 40x40) conv1 covers 18x18 of its 20x20 outputs and
 * deconv1 writes 32x32 instead of 40x40 pixels; at 8x8 (padded 16x16)
 * that is 6x6 of 8x8 and 8x8 instead of 16x16.
 *
 * A batch is split into `threads` lanes (contiguous slices of samples).
 * Each lane owns every activation, scratch and gradient buffer it needs,
 * sized once at construction, so passes never allocate and lanes never
 * share writable memory. Lane 0 runs on the caller's thread and writes
 * its parameter gradients straight into the model's gradient array; the
 * other lanes' gradients are added to it, in lane order, after a pass. */
#include "strata/cae.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "strata/conv.h"
#include "strata/init.h"
#include "strata/loss.h"

enum { CONV1, CONV2, CONV3, DENSE, DENSE_1, DECONV3, DECONV2, DECONV1, N_LAYERS };
#define N_TENSORS (2 * N_LAYERS)
#define MAX_THREADS 64

static const char *const tensor_names[N_TENSORS] = {
    "conv1.kernel",   "conv1.bias",   "conv2.kernel",   "conv2.bias",   "conv3.kernel",   "conv3.bias",
    "dense.kernel",   "dense.bias",   "dense_1.kernel", "dense_1.bias", "deconv3.kernel", "deconv3.bias",
    "deconv2.kernel", "deconv2.bias", "deconv1.kernel", "deconv1.bias"};

typedef struct cae_lane {
    struct st_cae *model;
    int cap;          /* samples this lane can hold */
    int start, count; /* slice of the current batch (count 0: idle) */
    /* activations kept for the backward */
    float *xin, *a1, *a2, *a3, *u, *z; /* encoder (xin: a copy of the input) */
    const float *xsrc;                 /* the input the last encode read: xin, or the caller's */
    float *zin, *h, *a4, *a5, *a5w;    /* decoder (a5w: a5's window) */
    /* scratch */
    float *ga, *gb, *gw, *gz, *gu, *ws;
    float *grads; /* flat parameter gradients (lane 0: the model's) */
    double loss;  /* partial sum of squared errors (pretrain step) */
} cae_lane;

struct st_cae;
typedef void (*lane_job)(struct st_cae *m, cae_lane *lane, const void *arg);

/* A minimal fork-join pool: with `active` threads, thread t (the caller
 * is 0, worker i runs beside lane i) runs lanes t, t + active, ...; the
 * workers at or past `active` sit the generation out. */
typedef struct cae_pool {
    int n_workers;
    pthread_t thread[MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    unsigned long generation;
    int pending, quit, active;
    lane_job job;
    const void *arg;
} cae_pool;

struct st_cae {
    st_cae_config cfg;
    st_padding2d pad;
    int hp, wp;          /* padded input */
    int flat;            /* f2 * Hp/8 * Wp/8 */
    st_conv2d_geom g[3]; /* conv1..3 at max_batch; deconv_i is the adjoint of g[i] */
    st_conv2d_geom g1w;  /* conv1 from the unpadded input onto its window */
    st_padding2d win;    /* the window inside conv1's output grid */
    size_t n_params;
    size_t offset[N_TENSORS]; /* of each tensor in the flat arrays */
    st_tensor *params, *grads;
    st_tensor *view[N_TENSORS], *grad_view[N_TENSORS];
    float *w[N_TENSORS];
    float *xhat, *dxhat; /* whole-batch buffers of the pretraining step */
    int n_lanes;
    cae_lane lane[MAX_THREADS];
    float *arena;
    int enc_batch, dec_batch; /* 0: pass not run */
    cae_pool pool;
    int pool_started;
    atomic_int want_active; /* threads for the next pass (st_cae_set_active_threads) */
};

st_cae_config st_cae_config_default(int height, int width, int channels)
{
    st_cae_config c = {height, width, channels, {32, 64, 128, 20}, 8.0f, false, 32, 1};
    return c;
}

static st_status check_config(const st_cae_config *c)
{
    if (c->height <= 0 || c->width <= 0 || c->channels <= 0)
        return st_fail(ST_EINVAL, "cae: input shape (%d, %d, %d) must be positive", c->height, c->width, c->channels);
    for (int i = 0; i < 4; i++)
        if (c->filters[i] <= 0)
            return st_fail(ST_EINVAL, "cae: filters [%d, %d, %d, %d] must all be positive", c->filters[0],
                           c->filters[1], c->filters[2], c->filters[3]);
    if (!(c->radius > 0)) return st_fail(ST_EINVAL, "cae: radius %g must be positive", c->radius);
    if (c->max_batch <= 0) return st_fail(ST_EINVAL, "cae: max_batch %d must be positive", c->max_batch);
    if (c->threads < 1 || c->threads > MAX_THREADS)
        return st_fail(ST_EINVAL, "cae: threads %d outside 1..%d", c->threads, MAX_THREADS);
    return ST_OK;
}

/* ---- geometry and parameters ---- */

/* Q1: the reference pads by 8 - n % 8 even when n % 8 == 0. */
static int pad_total(int n, bool minimal) { return minimal ? (8 - n % 8) % 8 : 8 - n % 8; }

static st_status setup_geometry(st_cae *m)
{
    const st_cae_config *c = &m->cfg;
    int dh = pad_total(c->height, c->minimal_padding), dw = pad_total(c->width, c->minimal_padding);
    m->pad = (st_padding2d){dh / 2, dh - dh / 2, dw / 2, dw - dw / 2};
    m->hp = c->height + dh;
    m->wp = c->width + dw;
    const int *f = c->filters, b = c->max_batch;
    /* Validated at the largest batch; passes use copies with their batch. */
    ST_TRY(st_conv2d_geom_same(&m->g[0], b, m->hp, m->wp, c->channels, f[0], 5, 5, 2));
    ST_TRY(st_conv2d_geom_same(&m->g[1], b, m->hp / 2, m->wp / 2, f[0], f[1], 5, 5, 2));
    ST_TRY(st_conv2d_geom_same(&m->g[2], b, m->hp / 4, m->wp / 4, f[1], f[2], 3, 3, 2));
    m->flat = f[2] * (m->hp / 8) * (m->wp / 8);
    /* Output o of conv1 reads image rows 2o - t .. 2o - t + 4 (t = the
     * padding plus SAME's front padding): it touches the image for
     * ceil((t - 4) / 2) <= o <= floor((t + H - 1) / 2). */
    const st_conv2d_geom *g1 = &m->g[0];
    const int tb = m->pad.top + g1->pad_top, lb = m->pad.left + g1->pad_left, k = g1->k_h;
    int o0h = tb > k - 1 ? (tb - k + 2) / 2 : 0, o0w = lb > k - 1 ? (lb - k + 2) / 2 : 0;
    int o1h = (tb + c->height - 1) / 2, o1w = (lb + c->width - 1) / 2;
    if (o1h > g1->out_h - 1) o1h = g1->out_h - 1;
    if (o1w > g1->out_w - 1) o1w = g1->out_w - 1;
    m->win = (st_padding2d){o0h, g1->out_h - 1 - o1h, o0w, g1->out_w - 1 - o1w};
    m->g1w = (st_conv2d_geom){b, c->height, c->width, c->channels, o1h - o0h + 1, o1w - o0w + 1, f[0], 5, 5, 2, 2,
                              tb - 2 * o0h, lb - 2 * o0w};
    return ST_OK;
}

/* Shapes of the 16 parameter tensors (Keras layouts); returns the rank. */
static int tensor_shape(const st_cae *m, int t, int64_t *shape)
{
    const int C = m->cfg.channels, *f = m->cfg.filters, d = f[3];
    const int64_t k[N_LAYERS][4] = {{5, 5, C, f[0]},    {5, 5, f[0], f[1]}, {3, 3, f[1], f[2]}, {m->flat, d},
                                    {d, m->flat},       {3, 3, f[1], f[2]}, {5, 5, f[0], f[1]}, {5, 5, C, f[0]}};
    /* Bias length: the layer's output channels. */
    const int64_t bias[N_LAYERS] = {f[0], f[1], f[2], d, m->flat, f[1], f[0], C};
    int layer = t / 2;
    if (t % 2) {
        shape[0] = bias[layer];
        return 1;
    }
    int nd = layer == DENSE || layer == DENSE_1 ? 2 : 4;
    memcpy(shape, k[layer], (size_t)nd * sizeof *shape);
    return nd;
}

static int64_t shape_numel(int nd, const int64_t *s)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= s[i];
    return n;
}

/* A [shape] view of flat[off : off + numel]. */
static st_status flat_view(const st_tensor *flat, int64_t off, int nd, const int64_t *shape, st_tensor **out)
{
    st_tensor *s = NULL;
    ST_TRY(st_tensor_slice(flat, 0, off, off + shape_numel(nd, shape), 1, &s));
    st_status st = st_tensor_reshape(s, nd, shape, out);
    st_tensor_free(s);
    return st;
}

static st_status setup_params(st_cae *m)
{
    int64_t shapes[N_TENSORS][4];
    int nds[N_TENSORS];
    int64_t total = 0;
    for (int t = 0; t < N_TENSORS; t++) {
        nds[t] = tensor_shape(m, t, shapes[t]);
        m->offset[t] = (size_t)total;
        total += shape_numel(nds[t], shapes[t]);
    }
    m->n_params = (size_t)total;
    ST_TRY(st_tensor_zeros(ST_F32, 1, &total, &m->params));
    ST_TRY(st_tensor_zeros(ST_F32, 1, &total, &m->grads));
    for (int t = 0; t < N_TENSORS; t++) {
        ST_TRY(flat_view(m->params, (int64_t)m->offset[t], nds[t], shapes[t], &m->view[t]));
        ST_TRY(flat_view(m->grads, (int64_t)m->offset[t], nds[t], shapes[t], &m->grad_view[t]));
        m->w[t] = st_f32(m->view[t]);
    }
    return ST_OK;
}

static st_status init_params(st_cae *m, st_rng *rng)
{
    for (int t = 0; t < N_TENSORS; t += 2) {
        const st_tensor *v = m->view[t];
        int fan_in, fan_out;
        if (v->ndim == 2) {
            fan_in = (int)v->shape[0];
            fan_out = (int)v->shape[1];
        } else {
            int rf = (int)(v->shape[0] * v->shape[1]);
            fan_in = rf * (int)v->shape[2];
            fan_out = rf * (int)v->shape[3];
        }
        ST_TRY(st_init_glorot_uniform(rng, m->w[t], (size_t)st_tensor_numel(v), fan_in, fan_out));
    }
    return ST_OK; /* biases stay zero */
}

/* ---- buffers ---- */

typedef struct {
    float **p;
    size_t n;
} part;

static size_t round16(size_t n) { return (n + 15) / 16 * 16; }

/* The parts of one lane of capacity cap (p == NULL: only count). */
static size_t lane_parts(const st_cae *m, cae_lane *l, part *out)
{
    const size_t b = (size_t)l->cap, d = (size_t)m->cfg.filters[3];
    const st_conv2d_geom *g = m->g;
    const size_t in = st_cae_input_size(m), sw = (size_t)m->g1w.out_h * m->g1w.out_w * m->g1w.out_c;
    const size_t s1 = (size_t)g[0].out_h * g[0].out_w * g[0].out_c, s2 = (size_t)g[1].out_h * g[1].out_w * g[1].out_c;
    size_t big = s1 > s2 ? s1 : s2;
    if ((size_t)m->flat > big) big = (size_t)m->flat;
    size_t wsz = 0;
    /* g[0] itself never runs: conv1 and deconv1 use the window geometry. */
    const st_conv2d_geom *all[3] = {&m->g1w, &g[1], &g[2]};
    for (int i = 0; i < 3; i++) {
        st_conv2d_geom gi = *all[i];
        gi.batch = l->cap;
        size_t s = st_conv2d_workspace_floats(&gi);
        if (s > wsz) wsz = s;
    }
    part parts[] = {{&l->xin, b * in},  {&l->a1, b * s1},  {&l->a2, b * s2},  {&l->a3, b * m->flat},
                    {&l->u, b * d},     {&l->z, b * d},    {&l->zin, b * d},  {&l->h, b * m->flat},
                    {&l->a4, b * s2},   {&l->a5, b * s1},  {&l->a5w, b * sw}, {&l->ga, b * big},
                    {&l->gb, b * big},  {&l->gw, b * sw},  {&l->gz, b * d},   {&l->gu, b * d},
                    {&l->ws, wsz},      {&l->grads, l == &m->lane[0] ? 0 : m->n_params}};
    size_t n = sizeof parts / sizeof parts[0];
    if (out) memcpy(out, parts, sizeof parts);
    return n;
}

/* Every buffer of every lane (and the whole-batch reconstruction and its
 * gradient), carved from one 64-byte aligned arena. */
static st_status setup_buffers(st_cae *m)
{
    const int T = m->cfg.threads, B = m->cfg.max_batch;
    m->n_lanes = T < B ? T : B;
    part parts[32];
    size_t total = 2 * round16((size_t)B * st_cae_input_size(m));
    for (int i = 0; i < m->n_lanes; i++) {
        m->lane[i].cap = B / m->n_lanes + (i < B % m->n_lanes);
        size_t n = lane_parts(m, &m->lane[i], parts);
        for (size_t j = 0; j < n; j++) total += round16(parts[j].n);
    }
    m->arena = aligned_alloc(64, total * sizeof(float));
    if (!m->arena) return st_fail(ST_ENOMEM, "cae: out of memory for %zu floats of activations", total);
    float *p = m->arena;
    m->xhat = p, p += round16((size_t)B * st_cae_input_size(m));
    m->dxhat = p, p += round16((size_t)B * st_cae_input_size(m));
    for (int i = 0; i < m->n_lanes; i++) {
        size_t n = lane_parts(m, &m->lane[i], parts);
        for (size_t j = 0; j < n; j++) {
            *parts[j].p = p;
            p += round16(parts[j].n);
        }
    }
    m->lane[0].grads = st_f32(m->grads);
    return ST_OK;
}

/* ---- the worker pool ---- */

/* Thread t's share of a pass run by `active` threads. The lanes, not the
 * threads, fix what is computed: any thread count gives the same bits. */
static void run_share(st_cae *m, int t, int active, lane_job job, const void *arg)
{
    for (int i = t; i < m->n_lanes; i += active)
        if (m->lane[i].count) job(m, &m->lane[i], arg);
}

static void *worker_main(void *arg)
{
    cae_lane *lane = arg;
    st_cae *m = lane->model;
    cae_pool *p = &m->pool;
    const int me = (int)(lane - m->lane);
    unsigned long seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->generation == seen && !p->quit) pthread_cond_wait(&p->start, &p->mu);
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->generation;
        lane_job job = p->job;
        const void *job_arg = p->arg;
        const int active = p->active;
        pthread_mutex_unlock(&p->mu);
        if (me >= active) continue;
        run_share(m, me, active, job, job_arg);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

static st_status pool_start(st_cae *m)
{
    cae_pool *p = &m->pool;
    if (pthread_mutex_init(&p->mu, NULL)) return st_fail(ST_ENOMEM, "cae: cannot create a mutex");
    if (pthread_cond_init(&p->start, NULL)) {
        pthread_mutex_destroy(&p->mu);
        return st_fail(ST_ENOMEM, "cae: cannot create a condition variable");
    }
    if (pthread_cond_init(&p->done, NULL)) {
        pthread_cond_destroy(&p->start);
        pthread_mutex_destroy(&p->mu);
        return st_fail(ST_ENOMEM, "cae: cannot create a condition variable");
    }
    m->pool_started = 1;
    for (int i = 1; i < m->n_lanes; i++) {
        m->lane[i].model = m;
        if (pthread_create(&p->thread[i], NULL, worker_main, &m->lane[i]))
            return st_fail(ST_ENOMEM, "cae: cannot start worker thread %d of %d", i, m->n_lanes - 1);
        p->n_workers = i;
    }
    return ST_OK;
}

static void pool_stop(st_cae *m)
{
    if (!m->pool_started) return;
    cae_pool *p = &m->pool;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i <= p->n_workers; i++) pthread_join(p->thread[i], NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->start);
    pthread_mutex_destroy(&p->mu);
}

/* Splits `batch` over the lanes and runs job on every busy lane. */
static void run_lanes(st_cae *m, int batch, lane_job job, const void *arg)
{
    int start = 0;
    for (int i = 0; i < m->n_lanes; i++) {
        cae_lane *l = &m->lane[i];
        l->count = batch / m->n_lanes + (i < batch % m->n_lanes);
        l->start = start;
        start += l->count;
    }
    cae_pool *p = &m->pool;
    int active = atomic_load(&m->want_active);
    if (active > p->n_workers + 1) active = p->n_workers + 1;
    if (active > 1) {
        pthread_mutex_lock(&p->mu);
        p->job = job;
        p->arg = arg;
        p->active = active;
        p->pending = active - 1;
        p->generation++;
        pthread_cond_broadcast(&p->start);
        pthread_mutex_unlock(&p->mu);
    }
    run_share(m, 0, active > 1 ? active : 1, job, arg);
    if (active > 1) {
        pthread_mutex_lock(&p->mu);
        while (p->pending) pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

void st_cae_set_active_threads(st_cae *m, int threads)
{
    atomic_store(&m->want_active, threads < 1 ? 1 : threads > m->n_lanes ? m->n_lanes : threads);
}

int st_cae_active_threads(const st_cae *m) { return atomic_load(&((st_cae *)m)->want_active); }

/* ---- construction ---- */

st_status st_cae_new(const st_cae_config *cfg, st_rng *rng, st_cae **out)
{
    ST_TRY(check_config(cfg));
    st_cae *m = calloc(1, sizeof *m);
    if (!m) return st_fail(ST_ENOMEM, "cae: out of memory");
    m->cfg = *cfg;
    st_status s = setup_geometry(m);
    if (s == ST_OK) s = setup_params(m);
    if (s == ST_OK) s = init_params(m, rng);
    if (s == ST_OK) s = setup_buffers(m);
    if (s == ST_OK) s = pool_start(m);
    atomic_init(&m->want_active, m->n_lanes);
    if (s != ST_OK) {
        st_cae_free(m);
        return st_fail_context(s, "cae (%d, %d, %d): ", cfg->height, cfg->width, cfg->channels);
    }
    *out = m;
    return ST_OK;
}

void st_cae_free(st_cae *m)
{
    if (!m) return;
    pool_stop(m);
    for (int t = 0; t < N_TENSORS; t++) {
        st_tensor_free(m->view[t]);
        st_tensor_free(m->grad_view[t]);
    }
    st_tensor_free(m->params);
    st_tensor_free(m->grads);
    free(m->arena);
    free(m);
}

const st_cae_config *st_cae_get_config(const st_cae *m) { return &m->cfg; }
st_padding2d st_cae_padding(const st_cae *m) { return m->pad; }
void st_cae_padded_size(const st_cae *m, int *hp, int *wp)
{
    *hp = m->hp;
    *wp = m->wp;
}
int st_cae_embedding_dim(const st_cae *m) { return m->cfg.filters[3]; }
size_t st_cae_input_size(const st_cae *m) { return (size_t)m->cfg.height * m->cfg.width * m->cfg.channels; }
size_t st_cae_param_count(const st_cae *m) { return m->n_params; }
float *st_cae_params(st_cae *m) { return st_f32(m->params); }
float *st_cae_grads(st_cae *m) { return st_f32(m->grads); }
st_param_block st_cae_param_block(st_cae *m)
{
    return (st_param_block){st_f32(m->params), st_f32(m->grads), m->n_params};
}
int st_cae_tensor_count(const st_cae *m) { return m ? N_TENSORS : 0; }
const char *st_cae_tensor_name(const st_cae *m, int i) { return m && i >= 0 && i < N_TENSORS ? tensor_names[i] : NULL; }
st_tensor *st_cae_tensor(st_cae *m, int i) { return i >= 0 && i < N_TENSORS ? m->view[i] : NULL; }
st_tensor *st_cae_grad_tensor(st_cae *m, int i) { return i >= 0 && i < N_TENSORS ? m->grad_view[i] : NULL; }

st_tensor *st_cae_find(st_cae *m, const char *name)
{
    for (int t = 0; t < N_TENSORS; t++)
        if (name && strcmp(name, tensor_names[t]) == 0) return m->view[t];
    return NULL;
}

/* ---- the passes, per lane (pointers are already at the lane's rows) ---- */

static st_conv2d_geom at_batch(const st_conv2d_geom *g, int batch)
{
    st_conv2d_geom r = *g;
    r.batch = batch;
    return r;
}

static size_t act_size(const st_conv2d_geom *g, int batch) { return (size_t)batch * g->out_h * g->out_w * g->out_c; }

/* a1 [b, out_h, out_w, f0] = the window's values inside, the bias outside. */
static void place_window(int b, const st_conv2d_geom *g1, st_padding2d win, const float *w, const float *bias,
                         float *a1)
{
    const size_t c = (size_t)g1->out_c, pixels = (size_t)b * g1->out_h * g1->out_w;
    for (size_t p = 0; p < pixels; p++) memcpy(a1 + p * c, bias, c * sizeof *a1);
    const int wh = g1->out_h - win.top - win.bottom, ww = g1->out_w - win.left - win.right;
    for (int n = 0; n < b; n++)
        for (int i = 0; i < wh; i++)
            memcpy(a1 + (((size_t)n * g1->out_h + win.top + i) * g1->out_w + win.left) * c,
                   w + (((size_t)n * wh + i) * ww) * c, (size_t)ww * c * sizeof *a1);
}

/* x -> l->z (copied to z when not NULL). With keep, x is copied to
 * l->xin for a later backward; without, it is read in place (and must
 * outlive any backward of this encode). */
static void encode_lane(st_cae *m, cae_lane *l, const float *x, float *z, bool keep)
{
    const st_cae_config *c = &m->cfg;
    const int b = l->count, d = c->filters[3];
    const st_conv2d_geom g1 = at_batch(&m->g[0], b), g2 = at_batch(&m->g[1], b), g3 = at_batch(&m->g[2], b);
    const st_conv2d_geom g1w = at_batch(&m->g1w, b);
    if (keep) {
        memcpy(l->xin, x, (size_t)b * st_cae_input_size(m) * sizeof *x);
        x = l->xin;
    }
    l->xsrc = x;
    st_conv2d_forward(&g1w, x, m->w[0], m->w[1], l->gw, l->ws);
    place_window(b, &g1, m->win, l->gw, m->w[1], l->a1);
    st_relu_forward(act_size(&g1, b), l->a1, l->a1);
    st_conv2d_forward(&g2, l->a1, m->w[2], m->w[3], l->a2, l->ws);
    st_relu_forward(act_size(&g2, b), l->a2, l->a2);
    st_conv2d_forward(&g3, l->a2, m->w[4], m->w[5], l->a3, l->ws);
    st_relu_forward(act_size(&g3, b), l->a3, l->a3);
    st_dense_forward(b, m->flat, d, l->a3, m->w[6], m->w[7], l->u);
    st_l2norm_forward(b, d, c->radius, l->u, l->z);
    if (z) memcpy(z, l->z, (size_t)b * d * sizeof *z);
}

/* z -> xhat (the decoder input is kept in l->zin). */
static void decode_lane(st_cae *m, cae_lane *l, const float *z, float *xhat)
{
    const st_cae_config *c = &m->cfg;
    const int b = l->count, d = c->filters[3];
    const st_conv2d_geom g1 = at_batch(&m->g[0], b), g2 = at_batch(&m->g[1], b), g3 = at_batch(&m->g[2], b);
    memcpy(l->zin, z, (size_t)b * d * sizeof *l->zin);
    st_dense_forward(b, d, m->flat, l->zin, m->w[8], m->w[9], l->h);
    st_relu_forward((size_t)b * m->flat, l->h, l->h);
    st_conv2d_transpose_forward(&g3, l->h, m->w[10], m->w[11], l->a4, l->ws);
    st_relu_forward(act_size(&g2, b), l->a4, l->a4);
    st_conv2d_transpose_forward(&g2, l->a4, m->w[12], m->w[13], l->a5, l->ws);
    st_relu_forward(act_size(&g1, b), l->a5, l->a5);
    st_crop2d(b, m->g1w.out_h, m->g1w.out_w, g1.out_c, m->win, l->a5, l->a5w);
    const st_conv2d_geom g1w = at_batch(&m->g1w, b);
    st_conv2d_transpose_forward(&g1w, l->a5w, m->w[14], m->w[15], xhat, l->ws);
}

/* Parameter gradients of the lane from dxhat and/or dz (either NULL). */
static void backward_lane(st_cae *m, cae_lane *l, const float *dxhat, const float *dz)
{
    const st_cae_config *c = &m->cfg;
    const int b = l->count, d = c->filters[3];
    const st_conv2d_geom g1 = at_batch(&m->g[0], b), g2 = at_batch(&m->g[1], b), g3 = at_batch(&m->g[2], b);
    float *dw[N_TENSORS];
    for (int t = 0; t < N_TENSORS; t++) dw[t] = l->grads + m->offset[t];
    const size_t nz = (size_t)b * d;
    const st_conv2d_geom g1w = at_batch(&m->g1w, b);
    if (dxhat) {
        /* Only a5's window reaches the cropped reconstruction. */
        st_conv2d_transpose_backward(&g1w, l->a5w, m->w[14], dxhat, l->gw, dw[14], dw[15], l->ws);
        st_pad2d(b, g1w.out_h, g1w.out_w, g1.out_c, m->win, l->gw, l->gb);
        st_relu_backward(act_size(&g1, b), l->a5, l->gb, l->gb);
        st_conv2d_transpose_backward(&g2, l->a4, m->w[12], l->gb, l->ga, dw[12], dw[13], l->ws);
        st_relu_backward(act_size(&g2, b), l->a4, l->ga, l->ga);
        st_conv2d_transpose_backward(&g3, l->h, m->w[10], l->ga, l->gb, dw[10], dw[11], l->ws);
        st_relu_backward((size_t)b * m->flat, l->h, l->gb, l->gb);
        st_dense_backward(b, d, m->flat, l->zin, m->w[8], l->gb, l->gz, dw[8], dw[9]);
    } else {
        /* The decoder's tensors are the last in the flat layout. */
        memset(dw[2 * DENSE_1], 0, (m->n_params - m->offset[2 * DENSE_1]) * sizeof(float));
        memset(l->gz, 0, nz * sizeof *l->gz);
    }
    if (dz)
        for (size_t i = 0; i < nz; i++) l->gz[i] += dz[i];
    st_l2norm_backward(b, d, c->radius, l->u, l->gz, l->gu);
    st_dense_backward(b, m->flat, d, l->a3, m->w[6], l->gu, l->ga, dw[6], dw[7]);
    st_relu_backward(act_size(&g3, b), l->a3, l->ga, l->ga);
    st_conv2d_backward(&g3, l->a2, m->w[4], l->ga, l->gb, dw[4], dw[5], l->ws);
    st_relu_backward(act_size(&g2, b), l->a2, l->gb, l->gb);
    st_conv2d_backward(&g2, l->a1, m->w[2], l->gb, l->ga, dw[2], dw[3], l->ws);
    st_relu_backward(act_size(&g1, b), l->a1, l->ga, l->ga);
    /* Outside the window a1 is the bias: its gradient only reaches db. */
    st_crop2d(b, g1w.out_h, g1w.out_w, g1.out_c, m->win, l->ga, l->gw);
    st_conv2d_backward(&g1w, l->xsrc, m->w[0], l->gw, NULL, dw[0], NULL, l->ws);
    st_dense_backward(b * g1.out_h * g1.out_w, 0, g1.out_c, NULL, NULL, l->ga, NULL, NULL, dw[1]);
}

/* ---- jobs: whole-batch arguments, offset to each lane's rows ---- */

typedef struct pass_args {
    const float *x, *z, *dxhat, *dz;
    float *z_out, *xhat_out;
    size_t total; /* elements of the whole batch's reconstruction (MSE mean) */
} pass_args;

static const float *rows(const float *p, const cae_lane *l, size_t per)
{
    return p ? p + (size_t)l->start * per : NULL;
}
static float *rows_mut(float *p, const cae_lane *l, size_t per) { return p ? p + (size_t)l->start * per : NULL; }

static void job_encode(st_cae *m, cae_lane *l, const void *arg)
{
    const pass_args *a = arg;
    const size_t d = (size_t)m->cfg.filters[3];
    encode_lane(m, l, rows(a->x, l, st_cae_input_size(m)), rows_mut(a->z_out, l, d), true);
}

static void job_embed(st_cae *m, cae_lane *l, const void *arg)
{
    const pass_args *a = arg;
    const size_t d = (size_t)m->cfg.filters[3];
    encode_lane(m, l, rows(a->x, l, st_cae_input_size(m)), rows_mut(a->z_out, l, d), false);
}

static void job_decode(st_cae *m, cae_lane *l, const void *arg)
{
    const pass_args *a = arg;
    decode_lane(m, l, rows(a->z, l, (size_t)m->cfg.filters[3]), rows_mut(a->xhat_out, l, st_cae_input_size(m)));
}

static void job_backward(st_cae *m, cae_lane *l, const void *arg)
{
    const pass_args *a = arg;
    backward_lane(m, l, rows(a->dxhat, l, st_cae_input_size(m)), rows(a->dz, l, (size_t)m->cfg.filters[3]));
}

/* Encode, decode, MSE against the input, backward: one lane's share of
 * a pretraining step (the MSE gradient is scaled by the whole batch). */
static void job_pretrain(st_cae *m, cae_lane *l, const void *arg)
{
    const pass_args *a = arg;
    const size_t in = st_cae_input_size(m), n = (size_t)l->count * in;
    const float *x = rows(a->x, l, in);
    float *xhat = rows_mut(m->xhat, l, in), *dxhat = rows_mut(m->dxhat, l, in);
    encode_lane(m, l, x, NULL, false); /* x outlives the step */
    decode_lane(m, l, l->z, xhat);
    /* weight n/total turns the lane's mean into its share of the batch mean */
    l->loss = st_loss_mse(n, xhat, x, (float)((double)n / (double)a->total), dxhat) * (double)n;
    backward_lane(m, l, dxhat, NULL);
}

/* Adds the other lanes' gradients to lane 0's (the model's), in order. */
static void reduce_grads(st_cae *m)
{
    float *g = m->lane[0].grads;
    for (int i = 1; i < m->n_lanes; i++) {
        if (!m->lane[i].count) continue;
        const float *o = m->lane[i].grads;
        for (size_t j = 0; j < m->n_params; j++) g[j] += o[j];
    }
}

/* ---- public passes ---- */

static st_status check_batch(const st_cae *m, int batch, const char *op)
{
    if (batch < 1 || batch > m->cfg.max_batch)
        return st_fail(ST_ESHAPE, "cae %s: batch %d outside 1..%d (max_batch)", op, batch, m->cfg.max_batch);
    return ST_OK;
}

st_status st_cae_encode(st_cae *m, int batch, const float *x, float *z)
{
    ST_TRY(check_batch(m, batch, "encode"));
    pass_args a = {.x = x, .z_out = z};
    run_lanes(m, batch, job_encode, &a);
    m->enc_batch = batch;
    return ST_OK;
}

st_status st_cae_embed(st_cae *m, int batch, const float *x, float *z)
{
    ST_TRY(check_batch(m, batch, "embed"));
    pass_args a = {.x = x, .z_out = z};
    run_lanes(m, batch, job_embed, &a);
    m->enc_batch = 0; /* the lanes' activations no longer belong to an encode */
    return ST_OK;
}

st_status st_cae_decode(st_cae *m, int batch, const float *z, float *xhat)
{
    ST_TRY(check_batch(m, batch, "decode"));
    pass_args a = {.z = z, .xhat_out = xhat};
    run_lanes(m, batch, job_decode, &a);
    m->dec_batch = batch;
    return ST_OK;
}

st_status st_cae_backward(st_cae *m, const float *dxhat, const float *dz)
{
    const int batch = m->enc_batch;
    if (!dxhat && !dz) return st_fail(ST_EINVAL, "cae backward: neither a reconstruction nor an embedding gradient");
    if (!batch) return st_fail(ST_ESTATE, "cae backward: no encode to differentiate (none ran, or an embed since)");
    if (dxhat && m->dec_batch != batch)
        return st_fail(ST_ESTATE, "cae backward: the last decode had batch %d, the last encode %d", m->dec_batch,
                       batch);
    pass_args a = {.dxhat = dxhat, .dz = dz};
    run_lanes(m, batch, job_backward, &a);
    reduce_grads(m);
    return ST_OK;
}

st_status st_cae_pretrain_step(st_cae *m, st_optim *opt, int batch, const float *x, double *loss)
{
    ST_TRY(check_batch(m, batch, "pretrain step"));
    if (st_optim_size(opt) != m->n_params)
        return st_fail(ST_ESHAPE, "cae pretrain step: the optimiser holds %zu parameters, the model %zu",
                       st_optim_size(opt), m->n_params);
    pass_args a = {.x = x, .total = (size_t)batch * st_cae_input_size(m)};
    run_lanes(m, batch, job_pretrain, &a);
    m->enc_batch = m->dec_batch = 0; /* the step read x in place: no backward of it later */
    reduce_grads(m);
    double sum = 0;
    for (int i = 0; i < m->n_lanes; i++) sum += m->lane[i].count ? m->lane[i].loss : 0.0;
    st_param_block b = st_cae_param_block(m);
    ST_TRY(st_optim_step(opt, 1, &b));
    if (loss) *loss = sum / (double)a.total;
    return ST_OK;
}
