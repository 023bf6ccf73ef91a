/* The reference convolutional autoencoder (see cae.h, METHOD.md b). */
#include "strata/cae.h"

#include <stdlib.h>
#include <string.h>
#include "strata/conv.h"
#include "strata/init.h"
#include "strata/loss.h"

enum { CONV1, CONV2, CONV3, DENSE, DENSE_1, DECONV3, DECONV2, DECONV1, N_LAYERS };
#define N_TENSORS (2 * N_LAYERS)

static const char *const tensor_names[N_TENSORS] = {
    "conv1.kernel",   "conv1.bias",   "conv2.kernel",   "conv2.bias",   "conv3.kernel",   "conv3.bias",
    "dense.kernel",   "dense.bias",   "dense_1.kernel", "dense_1.bias", "deconv3.kernel", "deconv3.bias",
    "deconv2.kernel", "deconv2.bias", "deconv1.kernel", "deconv1.bias"};

struct st_cae {
    st_cae_config cfg;
    st_padding2d pad;
    int hp, wp;           /* padded input */
    int flat;             /* f2 * Hp/8 * Wp/8 */
    st_conv2d_geom g[3];  /* conv1..3 at max_batch; deconv_i is the adjoint of g[i] */
    size_t n_params;
    st_tensor *params, *grads;                     /* flat 1-d */
    st_tensor *view[N_TENSORS], *grad_view[N_TENSORS];
    float *w[N_TENSORS], *dw[N_TENSORS];           /* into params / grads */
    /* activations kept for the backward */
    float *xp, *a1, *a2, *a3, *u, *z;              /* encoder */
    float *zin, *h, *a4, *a5, *y;                  /* decoder */
    /* scratch */
    float *xhat, *dxhat, *ga, *gb, *gz, *gu, *ws;
    float *arena;
    int enc_batch, dec_batch;                      /* 0: pass not run */
};

st_cae_config st_cae_config_default(int height, int width, int channels)
{
    st_cae_config c = {height, width, channels, {32, 64, 128, 20}, 8.0f, false, 32};
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
    return ST_OK;
}

/* Q1: the reference pads by 8 - n % 8 even when n % 8 == 0. */
static int pad_total(int n, bool minimal) { return minimal ? (8 - n % 8) % 8 : 8 - n % 8; }

static st_status setup_geometry(st_cae *m)
{
    const st_cae_config *c = &m->cfg;
    int dh = pad_total(c->height, c->minimal_padding), dw = pad_total(c->width, c->minimal_padding);
    m->pad = (st_padding2d){dh / 2, dh - dh / 2, dw / 2, dw - dw / 2};
    m->hp = c->height + dh;
    m->wp = c->width + dw;
    const int b = c->max_batch, *f = c->filters;
    ST_TRY(st_conv2d_geom_same(&m->g[0], b, m->hp, m->wp, c->channels, f[0], 5, 5, 2));
    ST_TRY(st_conv2d_geom_same(&m->g[1], b, m->hp / 2, m->wp / 2, f[0], f[1], 5, 5, 2));
    ST_TRY(st_conv2d_geom_same(&m->g[2], b, m->hp / 4, m->wp / 4, f[1], f[2], 3, 3, 2));
    m->flat = f[2] * (m->hp / 8) * (m->wp / 8);
    return ST_OK;
}

/* Shapes of the 16 parameter tensors (Keras layouts). */
static int tensor_shape(const st_cae *m, int t, int64_t *shape)
{
    const int C = m->cfg.channels, *f = m->cfg.filters, d = f[3];
    const int64_t k[N_LAYERS][4] = {
        {5, 5, C, f[0]},    {5, 5, f[0], f[1]}, {3, 3, f[1], f[2]}, {m->flat, d},
        {d, m->flat},       {3, 3, f[1], f[2]}, {5, 5, f[0], f[1]}, {5, 5, C, f[0]}};
    /* Bias length: the layer's output channels (the transposes output dim 2). */
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
        total += shape_numel(nds[t], shapes[t]);
    }
    m->n_params = (size_t)total;
    ST_TRY(st_tensor_zeros(ST_F32, 1, &total, &m->params));
    ST_TRY(st_tensor_zeros(ST_F32, 1, &total, &m->grads));
    int64_t off = 0;
    for (int t = 0; t < N_TENSORS; t++) {
        ST_TRY(flat_view(m->params, off, nds[t], shapes[t], &m->view[t]));
        ST_TRY(flat_view(m->grads, off, nds[t], shapes[t], &m->grad_view[t]));
        m->w[t] = st_f32(m->view[t]);
        m->dw[t] = st_f32(m->grad_view[t]);
        off += shape_numel(nds[t], shapes[t]);
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

/* Every activation and scratch buffer, carved from one 64-byte aligned
 * arena so that nothing is allocated after construction. */
static st_status setup_buffers(st_cae *m)
{
    const size_t b = (size_t)m->cfg.max_batch, C = (size_t)m->cfg.channels, d = (size_t)m->cfg.filters[3];
    const st_conv2d_geom *g = m->g;
    const size_t in = (size_t)m->cfg.height * m->cfg.width * C, padded = (size_t)m->hp * m->wp * C;
    const size_t s1 = (size_t)g[0].out_h * g[0].out_w * g[0].out_c, s2 = (size_t)g[1].out_h * g[1].out_w * g[1].out_c;
    size_t big = padded > s1 ? padded : s1;
    if (s2 > big) big = s2;
    if ((size_t)m->flat > big) big = (size_t)m->flat;
    size_t wsz = 0;
    for (int i = 0; i < 3; i++) {
        size_t s = st_conv2d_workspace_floats(&g[i]);
        if (s > wsz) wsz = s;
    }
    struct {
        float **p;
        size_t n;
    } parts[] = {{&m->xp, b * padded}, {&m->a1, b * s1},        {&m->a2, b * s2},    {&m->a3, b * m->flat},
                 {&m->u, b * d},       {&m->z, b * d},          {&m->zin, b * d},    {&m->h, b * m->flat},
                 {&m->a4, b * s2},     {&m->a5, b * s1},        {&m->y, b * padded}, {&m->xhat, b * in},
                 {&m->dxhat, b * in},  {&m->ga, b * big},       {&m->gb, b * big},   {&m->gz, b * d},
                 {&m->gu, b * d},      {&m->ws, wsz}};
    const size_t n_parts = sizeof parts / sizeof parts[0];
    size_t total = 0;
    for (size_t i = 0; i < n_parts; i++) total += (parts[i].n + 15) / 16 * 16;
    m->arena = aligned_alloc(64, total * sizeof(float));
    if (!m->arena) return st_fail(ST_ENOMEM, "cae: out of memory for %zu floats of activations", total);
    float *p = m->arena;
    for (size_t i = 0; i < n_parts; i++) {
        *parts[i].p = p;
        p += (parts[i].n + 15) / 16 * 16;
    }
    return ST_OK;
}

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
st_param_block st_cae_param_block(st_cae *m) { return (st_param_block){st_f32(m->params), st_f32(m->grads), m->n_params}; }
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

static st_status check_batch(const st_cae *m, int batch, const char *op)
{
    if (batch < 1 || batch > m->cfg.max_batch)
        return st_fail(ST_ESHAPE, "cae %s: batch %d outside 1..%d (max_batch)", op, batch, m->cfg.max_batch);
    return ST_OK;
}

static st_conv2d_geom at_batch(const st_conv2d_geom *g, int batch)
{
    st_conv2d_geom r = *g;
    r.batch = batch;
    return r;
}

static size_t act_size(const st_conv2d_geom *g, int batch) { return (size_t)batch * g->out_h * g->out_w * g->out_c; }

/* Leaves z in m->z. */
static void encode(st_cae *m, int batch, const float *x)
{
    const st_cae_config *c = &m->cfg;
    const st_conv2d_geom g1 = at_batch(&m->g[0], batch), g2 = at_batch(&m->g[1], batch), g3 = at_batch(&m->g[2], batch);
    st_pad2d(batch, c->height, c->width, c->channels, m->pad, x, m->xp);
    st_conv2d_forward(&g1, m->xp, m->w[0], m->w[1], m->a1, m->ws);
    st_relu_forward(act_size(&g1, batch), m->a1, m->a1);
    st_conv2d_forward(&g2, m->a1, m->w[2], m->w[3], m->a2, m->ws);
    st_relu_forward(act_size(&g2, batch), m->a2, m->a2);
    st_conv2d_forward(&g3, m->a2, m->w[4], m->w[5], m->a3, m->ws);
    st_relu_forward(act_size(&g3, batch), m->a3, m->a3);
    st_dense_forward(batch, m->flat, c->filters[3], m->a3, m->w[6], m->w[7], m->u);
    st_l2norm_forward(batch, c->filters[3], c->radius, m->u, m->z);
    m->enc_batch = batch;
}

/* Decodes m->zin; leaves the reconstruction in xhat. */
static void decode(st_cae *m, int batch, float *xhat)
{
    const st_cae_config *c = &m->cfg;
    const st_conv2d_geom g1 = at_batch(&m->g[0], batch), g2 = at_batch(&m->g[1], batch), g3 = at_batch(&m->g[2], batch);
    st_dense_forward(batch, c->filters[3], m->flat, m->zin, m->w[8], m->w[9], m->h);
    st_relu_forward((size_t)batch * m->flat, m->h, m->h);
    st_conv2d_transpose_forward(&g3, m->h, m->w[10], m->w[11], m->a4, m->ws);
    st_relu_forward(act_size(&g2, batch), m->a4, m->a4);
    st_conv2d_transpose_forward(&g2, m->a4, m->w[12], m->w[13], m->a5, m->ws);
    st_relu_forward(act_size(&g1, batch), m->a5, m->a5);
    st_conv2d_transpose_forward(&g1, m->a5, m->w[14], m->w[15], m->y, m->ws);
    st_crop2d(batch, c->height, c->width, c->channels, m->pad, m->y, xhat);
    m->dec_batch = batch;
}

st_status st_cae_encode(st_cae *m, int batch, const float *x, float *z)
{
    ST_TRY(check_batch(m, batch, "encode"));
    encode(m, batch, x);
    memcpy(z, m->z, (size_t)batch * m->cfg.filters[3] * sizeof *z);
    return ST_OK;
}

st_status st_cae_decode(st_cae *m, int batch, const float *z, float *xhat)
{
    ST_TRY(check_batch(m, batch, "decode"));
    memcpy(m->zin, z, (size_t)batch * m->cfg.filters[3] * sizeof *z);
    decode(m, batch, xhat);
    return ST_OK;
}

/* Decoder backward from dxhat; leaves dL/dz in m->gz. */
static void decoder_backward(st_cae *m, int batch, const float *dxhat)
{
    const st_cae_config *c = &m->cfg;
    const st_conv2d_geom g1 = at_batch(&m->g[0], batch), g2 = at_batch(&m->g[1], batch), g3 = at_batch(&m->g[2], batch);
    /* The crop's adjoint: the padded border gets no reconstruction gradient. */
    st_pad2d(batch, c->height, c->width, c->channels, m->pad, dxhat, m->ga);
    st_conv2d_transpose_backward(&g1, m->a5, m->w[14], m->ga, m->gb, m->dw[14], m->dw[15], m->ws);
    st_relu_backward(act_size(&g1, batch), m->a5, m->gb, m->gb);
    st_conv2d_transpose_backward(&g2, m->a4, m->w[12], m->gb, m->ga, m->dw[12], m->dw[13], m->ws);
    st_relu_backward(act_size(&g2, batch), m->a4, m->ga, m->ga);
    st_conv2d_transpose_backward(&g3, m->h, m->w[10], m->ga, m->gb, m->dw[10], m->dw[11], m->ws);
    st_relu_backward((size_t)batch * m->flat, m->h, m->gb, m->gb);
    st_dense_backward(batch, c->filters[3], m->flat, m->zin, m->w[8], m->gb, m->gz, m->dw[8], m->dw[9]);
}

/* Encoder backward from m->gz. */
static void encoder_backward(st_cae *m, int batch)
{
    const st_cae_config *c = &m->cfg;
    const st_conv2d_geom g1 = at_batch(&m->g[0], batch), g2 = at_batch(&m->g[1], batch), g3 = at_batch(&m->g[2], batch);
    st_l2norm_backward(batch, c->filters[3], c->radius, m->u, m->gz, m->gu);
    st_dense_backward(batch, m->flat, c->filters[3], m->a3, m->w[6], m->gu, m->ga, m->dw[6], m->dw[7]);
    st_relu_backward(act_size(&g3, batch), m->a3, m->ga, m->ga);
    st_conv2d_backward(&g3, m->a2, m->w[4], m->ga, m->gb, m->dw[4], m->dw[5], m->ws);
    st_relu_backward(act_size(&g2, batch), m->a2, m->gb, m->gb);
    st_conv2d_backward(&g2, m->a1, m->w[2], m->gb, m->ga, m->dw[2], m->dw[3], m->ws);
    st_relu_backward(act_size(&g1, batch), m->a1, m->ga, m->ga);
    st_conv2d_backward(&g1, m->xp, m->w[0], m->ga, NULL, m->dw[0], m->dw[1], m->ws);
}

st_status st_cae_backward(st_cae *m, const float *dxhat, const float *dz)
{
    const int batch = m->enc_batch;
    const size_t nz = (size_t)batch * m->cfg.filters[3];
    if (!dxhat && !dz) return st_fail(ST_EINVAL, "cae backward: neither a reconstruction nor an embedding gradient");
    if (!batch) return st_fail(ST_ESTATE, "cae backward: no encode has run");
    if (dxhat) {
        if (m->dec_batch != batch)
            return st_fail(ST_ESTATE, "cae backward: the last decode had batch %d, the last encode %d", m->dec_batch,
                           batch);
        decoder_backward(m, batch, dxhat);
    } else {
        for (int t = 8; t < N_TENSORS; t++) memset(m->dw[t], 0, (size_t)st_tensor_numel(m->grad_view[t]) * sizeof(float));
        memset(m->gz, 0, nz * sizeof *m->gz);
    }
    if (dz)
        for (size_t i = 0; i < nz; i++) m->gz[i] += dz[i];
    encoder_backward(m, batch);
    return ST_OK;
}

st_status st_cae_pretrain_step(st_cae *m, st_optim *opt, int batch, const float *x, double *loss)
{
    ST_TRY(check_batch(m, batch, "pretrain step"));
    encode(m, batch, x);
    memcpy(m->zin, m->z, (size_t)batch * m->cfg.filters[3] * sizeof *m->z);
    decode(m, batch, m->xhat);
    size_t n = (size_t)batch * st_cae_input_size(m);
    double l = st_loss_mse(n, m->xhat, x, 1.0f, m->dxhat);
    ST_TRY(st_cae_backward(m, m->dxhat, NULL));
    st_param_block b = st_cae_param_block(m);
    ST_TRY(st_optim_step(opt, 1, &b));
    if (loss) *loss = l;
    return ST_OK;
}
