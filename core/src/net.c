/* The inference graph: building, memory planning, forward and taps (see
 * net.h). Layer kernels are the static run_* functions below. */
#include "strata/net.h"

#include <cblas.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "strata/conv.h"

#define NAME_CAP 64
/* im2col scratch per convolution call, in floats: a convolution runs over
 * as many images at a time as fit, which keeps its columns in cache. */
#define WORKSPACE_BUDGET (1u << 20)
/* Images that go through all layers together: a thread runs its range of
 * the batch in such groups, so that the outputs that are not kept stay in
 * the cache between one layer and the next. */
#define GROUP_IMAGES 8

typedef enum kind { K_INPUT, K_CONV, K_BN, K_RELU, K_ADD, K_SHORTCUT_A, K_MAXPOOL, K_GAP, K_DENSE, K_SOFTMAX } kind;

static const char *const kind_names[] = {"input",      "conv2d",  "batchnorm",      "relu",  "add",
                                         "shortcut_a", "maxpool", "global_avgpool", "dense", "softmax"};

typedef struct layer {
    kind kind;
    char name[NAME_CAP];
    int in[2], n_in;
    int h, w, c; /* per-sample output; flat layers have h = w = 1 */
    bool flat, relu;
    int k_h, k_w, stride, pad; /* conv, maxpool (pad may be ST_PAD_SAME) */
    int pad_top, pad_left;     /* maxpool, resolved */
    float *wt, *bias;          /* conv HWIO, dense [in,out], bn scale/shift */
    int64_t n_wt;
    /* plan */
    int slot, last_use;
    /* An add whose convolution input writes its result directly (the conv
     * then does not run on its own): that conv's id, else 0. */
    int fused_conv;
    bool fused; /* a conv whose work its reading add does */
    size_t thread_stride; /* floats between threads' regions; 0: one contiguous batch */
    bool keep;
    float *out;
} layer;

typedef struct alias {
    char name[NAME_CAP];
    int layer;
} alias;

struct st_net {
    layer *layers;
    int n, cap;
    alias *aliases;
    int n_alias, cap_alias;
    /* plan: buffers (1-d f32 tensors) reused across layers */
    int plan_batch;
    st_tensor **slots;
    int n_slots;
    float *ws; /* ws_per_thread floats for each thread */
    size_t ws_cap, ws_per_thread;
    int threads;
    st_tensor *input; /* view of the last forward's input */
    bool ran;
    /* feeding */
    char *name;
    double scale;
    float mean[ST_NET_MAX_CHANNELS], std[ST_NET_MAX_CHANNELS];
    char **class_names;
    int n_class_names;
};

/* ---------------------------------------------------------------- build */

st_status st_net_new(int in_h, int in_w, int in_c, st_net **out)
{
    if (in_h <= 0 || in_w <= 0 || in_c <= 0 || in_c > ST_NET_MAX_CHANNELS)
        return st_fail(ST_EINVAL, "net: input %dx%dx%d must be positive with at most %d channels", in_h, in_w, in_c,
                       ST_NET_MAX_CHANNELS);
    st_net *net = calloc(1, sizeof *net);
    if (!net) return st_fail(ST_ENOMEM, "net: out of memory");
    net->scale = 1.0;
    net->threads = 1;
    for (int c = 0; c < ST_NET_MAX_CHANNELS; c++) net->std[c] = 1.0f;
    net->layers = calloc(16, sizeof *net->layers);
    if (!net->layers) {
        free(net);
        return st_fail(ST_ENOMEM, "net: out of memory");
    }
    net->cap = 16;
    net->n = 1;
    layer *in = &net->layers[0];
    snprintf(in->name, NAME_CAP, "input");
    in->kind = K_INPUT;
    in->h = in_h, in->w = in_w, in->c = in_c;
    *out = net;
    return ST_OK;
}

void st_net_free(st_net *net)
{
    if (!net) return;
    for (int i = 0; i < net->n; i++) {
        free(net->layers[i].wt);
        free(net->layers[i].bias);
    }
    for (int s = 0; s < net->n_slots; s++) st_tensor_free(net->slots[s]);
    for (int i = 0; i < net->n_class_names; i++) free(net->class_names[i]);
    free(net->class_names);
    free(net->slots);
    free(net->ws);
    st_tensor_free(net->input);
    free(net->aliases);
    free(net->layers);
    free(net->name);
    free(net);
}

int st_net_find(const st_net *net, const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < net->n; i++)
        if (strcmp(net->layers[i].name, name) == 0) return i;
    for (int i = 0; i < net->n_alias; i++)
        if (strcmp(net->aliases[i].name, name) == 0) return net->aliases[i].layer;
    return -1;
}

static st_status check_name(const st_net *net, const char *name)
{
    if (!name || !*name || strlen(name) >= NAME_CAP)
        return st_fail(ST_EINVAL, "net: layer names must have 1 to %d bytes ('%s')", NAME_CAP - 1,
                       name ? name : "(null)");
    if (st_net_find(net, name) >= 0) return st_fail(ST_EINVAL, "net: the name '%s' is already taken", name);
    return ST_OK;
}

static st_status check_input(const st_net *net, const char *name, int input, bool spatial)
{
    if (input < 0 || input >= net->n)
        return st_fail(ST_EINVAL, "net: layer '%s': input id %d does not exist (%d layers)", name, input, net->n);
    if (spatial && net->layers[input].flat)
        return st_fail(ST_ESHAPE, "net: layer '%s': input '%s' is flat [%d], a [H,W,C] map is needed", name,
                       net->layers[input].name, net->layers[input].c);
    return ST_OK;
}

/* Appends a layer with the common fields set; returns it through *out. */
static st_status push_layer(st_net *net, kind k, const char *name, int input, layer **out)
{
    ST_TRY(check_name(net, name));
    if (net->n == net->cap) {
        layer *grown = realloc(net->layers, (size_t)net->cap * 2 * sizeof *grown);
        if (!grown) return st_fail(ST_ENOMEM, "net: out of memory");
        net->layers = grown;
        net->cap *= 2;
    }
    layer *l = &net->layers[net->n];
    memset(l, 0, sizeof *l);
    l->kind = k;
    snprintf(l->name, NAME_CAP, "%s", name);
    l->in[0] = input;
    l->n_in = 1;
    const layer *src = &net->layers[input];
    l->h = src->h, l->w = src->w, l->c = src->c, l->flat = src->flat;
    *out = l;
    return ST_OK;
}

static void commit_layer(st_net *net, int *id)
{
    net->plan_batch = 0; /* the graph changed: plan again */
    if (id) *id = net->n;
    net->n++;
}

static st_status copy_floats(const st_tensor *t, const char *what, const char *layer_name, int ndim,
                             const int64_t *shape, float **out)
{
    char ctx[NAME_CAP + 32];
    snprintf(ctx, sizeof ctx, "net: layer '%s' %s", layer_name, what);
    ST_TRY(st_tensor_expect(t, ctx, ST_F32, ndim, shape));
    st_tensor *c = NULL;
    ST_TRY(st_tensor_contiguous(t, &c));
    size_t n = st_tensor_nbytes(c);
    float *p = malloc(n ? n : 1);
    if (!p) {
        st_tensor_free(c);
        return st_fail(ST_ENOMEM, "net: out of memory");
    }
    memcpy(p, c->data, n);
    st_tensor_free(c);
    *out = p;
    return ST_OK;
}

/* Output size of a window op along one axis, and the padding before. */
static int window_out(int in, int k, int stride, int pad, int *before)
{
    if (pad == ST_PAD_SAME) {
        int out = (in + stride - 1) / stride, total = (out - 1) * stride + k - in;
        *before = total > 0 ? total / 2 : 0;
        return out;
    }
    *before = pad;
    return in + 2 * pad >= k ? (in + 2 * pad - k) / stride + 1 : 0;
}

st_status st_net_add_conv2d(st_net *net, const char *name, int input, const st_tensor *w, const st_tensor *b,
                            int stride, int pad, bool relu, int *id)
{
    ST_TRY(check_input(net, name, input, true));
    const layer in_copy = net->layers[input], *src = &in_copy; /* push_layer may move the array */
    if (!w || w->ndim != 4)
        return st_fail(ST_ESHAPE, "net: layer '%s': the kernel must be HWIO [k_h,k_w,%d,C_out]", name, src->c);
    if (stride <= 0 || (pad < 0 && pad != ST_PAD_SAME))
        return st_fail(ST_EINVAL, "net: layer '%s': stride %d or padding %d is invalid", name, stride, pad);
    int64_t shape[4] = {w->shape[0], w->shape[1], src->c, w->shape[3]};
    int before;
    if (shape[0] <= 0 || shape[1] <= 0 || shape[3] <= 0 || shape[0] > INT_MAX || shape[1] > INT_MAX ||
        shape[3] > INT_MAX || window_out(src->h, (int)shape[0], stride, pad, &before) <= 0 ||
        window_out(src->w, (int)shape[1], stride, pad, &before) <= 0) {
        char s[64];
        return st_fail(ST_ESHAPE, "net: layer '%s': kernel %s does not fit a %dx%dx%d input", name,
                       st_shape_str(w->ndim, w->shape, s, sizeof s), src->h, src->w, src->c);
    }
    layer *l;
    ST_TRY(push_layer(net, K_CONV, name, input, &l));
    ST_TRY(copy_floats(w, "kernel", name, 4, shape, &l->wt));
    l->n_wt = shape[0] * shape[1] * shape[2] * shape[3];
    l->k_h = (int)shape[0], l->k_w = (int)shape[1], l->c = (int)shape[3];
    l->stride = stride, l->pad = pad, l->relu = relu;
    l->h = window_out(src->h, l->k_h, stride, pad, &l->pad_top);
    l->w = window_out(src->w, l->k_w, stride, pad, &l->pad_left);
    st_status s = b ? copy_floats(b, "bias", name, 1, (int64_t[]){l->c}, &l->bias) : ST_OK;
    if (s != ST_OK) {
        free(l->wt);
        return s;
    }
    commit_layer(net, id);
    return ST_OK;
}

/* scale = gamma/sqrt(var+eps), shift = beta - mean*scale, in double. */
static st_status bn_affine(const char *name, int c, const st_tensor *gamma, const st_tensor *beta,
                           const st_tensor *mean, const st_tensor *var, double eps, double *scale, double *shift)
{
    const st_tensor *parts[4] = {gamma, beta, mean, var};
    const char *what[4] = {"batchnorm weight", "batchnorm bias", "running mean", "running var"};
    char ctx[NAME_CAP + 32];
    for (int i = 0; i < 4; i++) {
        snprintf(ctx, sizeof ctx, "net: layer '%s' %s", name, what[i]);
        ST_TRY(st_tensor_expect(parts[i], ctx, ST_F32, 1, (int64_t[]){c}));
    }
    if (!(eps >= 0)) return st_fail(ST_EINVAL, "net: layer '%s': batchnorm eps %g must be >= 0", name, eps);
    for (int i = 0; i < c; i++) {
        double v = st_tensor_get_flat(var, i) + eps;
        if (!(v > 0) || !isfinite(v))
            return st_fail(ST_ENUMERIC, "net: layer '%s': running var + eps is %g at channel %d", name, v, i);
        scale[i] = st_tensor_get_flat(gamma, i) / sqrt(v);
        shift[i] = st_tensor_get_flat(beta, i) - st_tensor_get_flat(mean, i) * scale[i];
    }
    return ST_OK;
}

st_status st_net_fold_batchnorm(st_net *net, int conv, const st_tensor *gamma, const st_tensor *beta,
                                const st_tensor *mean, const st_tensor *var, double eps)
{
    if (conv <= 0 || conv >= net->n || net->layers[conv].kind != K_CONV)
        return st_fail(ST_EINVAL, "net: batchnorm can only be folded into a convolution (layer %d)", conv);
    layer *l = &net->layers[conv];
    double *scale = malloc(2 * (size_t)l->c * sizeof *scale);
    if (!scale) return st_fail(ST_ENOMEM, "net: out of memory");
    double *shift = scale + l->c;
    st_status s = bn_affine(l->name, l->c, gamma, beta, mean, var, eps, scale, shift);
    if (s == ST_OK && !l->bias) {
        l->bias = calloc((size_t)l->c, sizeof *l->bias);
        if (!l->bias) s = st_fail(ST_ENOMEM, "net: out of memory");
    }
    if (s == ST_OK) {
        for (int64_t i = 0; i < l->n_wt; i++) l->wt[i] = (float)(l->wt[i] * scale[i % l->c]);
        for (int o = 0; o < l->c; o++) l->bias[o] = (float)(l->bias[o] * scale[o] + shift[o]);
    }
    free(scale);
    return s;
}

st_status st_net_add_batchnorm(st_net *net, const char *name, int input, const st_tensor *gamma,
                               const st_tensor *beta, const st_tensor *mean, const st_tensor *var, double eps,
                               bool relu, int *id)
{
    ST_TRY(check_input(net, name, input, false));
    int c = net->layers[input].c;
    double *scale = malloc(2 * (size_t)c * sizeof *scale);
    float *wt = malloc((size_t)c * sizeof *wt), *bias = malloc((size_t)c * sizeof *bias);
    st_status s = scale && wt && bias ? ST_OK : st_fail(ST_ENOMEM, "net: out of memory");
    if (s == ST_OK) s = bn_affine(name, c, gamma, beta, mean, var, eps, scale, scale + c);
    layer *l = NULL;
    if (s == ST_OK) s = push_layer(net, K_BN, name, input, &l);
    if (s == ST_OK) {
        for (int i = 0; i < c; i++) wt[i] = (float)scale[i], bias[i] = (float)scale[c + i];
        l->wt = wt, l->bias = bias, l->n_wt = c, l->relu = relu;
        commit_layer(net, id);
    } else {
        free(wt);
        free(bias);
    }
    free(scale);
    return s;
}

st_status st_net_add_relu(st_net *net, const char *name, int input, int *id)
{
    ST_TRY(check_input(net, name, input, false));
    layer *l;
    ST_TRY(push_layer(net, K_RELU, name, input, &l));
    l->relu = true;
    commit_layer(net, id);
    return ST_OK;
}

static void layer_shape(const layer *l, int *ndim, int64_t *shape)
{
    if (l->flat) {
        *ndim = 1;
        shape[0] = l->c;
    } else {
        *ndim = 3;
        shape[0] = l->h, shape[1] = l->w, shape[2] = l->c;
    }
}

st_status st_net_add_add(st_net *net, const char *name, int a, int b, bool relu, int *id)
{
    ST_TRY(check_input(net, name, a, false));
    ST_TRY(check_input(net, name, b, false));
    const layer *la = &net->layers[a], *lb = &net->layers[b];
    if (la->flat != lb->flat || la->h != lb->h || la->w != lb->w || la->c != lb->c) {
        char sa[64], sb[64];
        int na, nb;
        int64_t ha[3], hb[3];
        layer_shape(la, &na, ha);
        layer_shape(lb, &nb, hb);
        return st_fail(ST_ESHAPE, "net: layer '%s': cannot add '%s' %s and '%s' %s", name, la->name,
                       st_shape_str(na, ha, sa, sizeof sa), lb->name, st_shape_str(nb, hb, sb, sizeof sb));
    }
    layer *l;
    ST_TRY(push_layer(net, K_ADD, name, a, &l));
    l->in[1] = b;
    l->n_in = 2;
    l->relu = relu;
    commit_layer(net, id);
    return ST_OK;
}

st_status st_net_add_shortcut_a(st_net *net, const char *name, int input, int stride, int out_c, int *id)
{
    ST_TRY(check_input(net, name, input, true));
    int in_c = net->layers[input].c;
    if (stride <= 0 || out_c < in_c || (out_c - in_c) % 2)
        return st_fail(ST_EINVAL, "net: layer '%s': option-A shortcut from %d to %d channels with stride %d "
                       "(needs out >= in, an even difference and stride >= 1)", name, in_c, out_c, stride);
    layer *l;
    ST_TRY(push_layer(net, K_SHORTCUT_A, name, input, &l));
    l->stride = stride;
    l->h = (l->h + stride - 1) / stride;
    l->w = (l->w + stride - 1) / stride;
    l->c = out_c;
    commit_layer(net, id);
    return ST_OK;
}

st_status st_net_add_maxpool(st_net *net, const char *name, int input, int k, int stride, int pad, int *id)
{
    ST_TRY(check_input(net, name, input, true));
    const layer in_copy = net->layers[input], *src = &in_copy; /* push_layer may move the array */
    int pt, pl;
    if (k <= 0 || stride <= 0 || (pad < 0 && pad != ST_PAD_SAME) || (pad != ST_PAD_SAME && 2 * pad > k) ||
        window_out(src->h, k, stride, pad, &pt) <= 0 || window_out(src->w, k, stride, pad, &pl) <= 0)
        return st_fail(ST_EINVAL, "net: layer '%s': max pool %dx%d stride %d pad %d does not fit a %dx%d input",
                       name, k, k, stride, pad, src->h, src->w);
    layer *l;
    ST_TRY(push_layer(net, K_MAXPOOL, name, input, &l));
    l->k_h = l->k_w = k, l->stride = stride, l->pad = pad;
    l->h = window_out(src->h, k, stride, pad, &l->pad_top);
    l->w = window_out(src->w, k, stride, pad, &l->pad_left);
    commit_layer(net, id);
    return ST_OK;
}

st_status st_net_add_global_avgpool(st_net *net, const char *name, int input, int *id)
{
    ST_TRY(check_input(net, name, input, true));
    layer *l;
    ST_TRY(push_layer(net, K_GAP, name, input, &l));
    l->h = l->w = 1, l->flat = true;
    commit_layer(net, id);
    return ST_OK;
}

st_status st_net_add_dense(st_net *net, const char *name, int input, const st_tensor *w, const st_tensor *b,
                           bool relu, int *id)
{
    ST_TRY(check_input(net, name, input, false));
    const layer in_copy = net->layers[input], *src = &in_copy; /* push_layer may move the array */
    int64_t in_f = (int64_t)src->h * src->w * src->c;
    if (!w || w->ndim != 2 || w->shape[1] <= 0 || w->shape[1] > INT_MAX) {
        char s[64] = "(none)";
        if (w) st_shape_str(w->ndim, w->shape, s, sizeof s);
        return st_fail(ST_ESHAPE, "net: layer '%s': dense weight [%lld,out] expected, got %s", name,
                       (long long)in_f, s);
    }
    int64_t shape[2] = {in_f, w->shape[1]};
    layer *l;
    ST_TRY(push_layer(net, K_DENSE, name, input, &l));
    ST_TRY(copy_floats(w, "weight", name, 2, shape, &l->wt));
    l->n_wt = shape[0] * shape[1];
    l->h = l->w = 1, l->c = (int)shape[1], l->flat = true, l->relu = relu;
    st_status s = b ? copy_floats(b, "bias", name, 1, (int64_t[]){l->c}, &l->bias) : ST_OK;
    if (s != ST_OK) {
        free(l->wt);
        return s;
    }
    commit_layer(net, id);
    return ST_OK;
}

st_status st_net_add_softmax(st_net *net, const char *name, int input, int *id)
{
    ST_TRY(check_input(net, name, input, false));
    layer *l;
    ST_TRY(push_layer(net, K_SOFTMAX, name, input, &l));
    commit_layer(net, id);
    return ST_OK;
}

st_status st_net_add_alias(st_net *net, const char *name, int target)
{
    ST_TRY(check_name(net, name));
    if (target < 0 || target >= net->n)
        return st_fail(ST_EINVAL, "net: alias '%s': layer id %d does not exist", name, target);
    if (net->n_alias == net->cap_alias) {
        int cap = net->cap_alias ? 2 * net->cap_alias : 16;
        alias *grown = realloc(net->aliases, (size_t)cap * sizeof *grown);
        if (!grown) return st_fail(ST_ENOMEM, "net: out of memory");
        net->aliases = grown;
        net->cap_alias = cap;
    }
    alias *a = &net->aliases[net->n_alias++];
    snprintf(a->name, NAME_CAP, "%s", name);
    a->layer = target;
    return ST_OK;
}

/* ---------------------------------------------------------------- plan */

static int64_t layer_floats(const layer *l) { return (int64_t)l->h * l->w * l->c; }

static st_conv2d_geom conv_geom(const st_net *net, const layer *l, int batch)
{
    const layer *src = &net->layers[l->in[0]];
    return (st_conv2d_geom){batch,  src->h, src->w,    src->c,    l->h,        l->w,        l->c,
                            l->k_h, l->k_w, l->stride, l->stride, l->pad_top, l->pad_left};
}

static size_t conv_workspace(const st_net *net, const layer *l, int batch)
{
    st_conv2d_geom g = conv_geom(net, l, batch);
    return st_conv2d_forward_workspace_floats(&g);
}

/* Images per convolution call: the whole batch when its workspace fits the
 * budget (the Winograd path needs the same for any batch), else as many as
 * fit at the per-image size (im2col grows with the batch). */
static int conv_chunk(const st_net *net, const layer *l, int batch)
{
    if (conv_workspace(net, l, batch) <= WORKSPACE_BUDGET) return batch;
    const size_t per = conv_workspace(net, l, 1);
    size_t chunk = WORKSPACE_BUDGET / (per ? per : 1);
    if (chunk < 1) chunk = 1;
    return chunk < (size_t)batch ? (int)chunk : batch;
}

/* Fuses a convolution into the add that reads it (conv + bias + the other
 * summand, then the add's ReLU, in one store) when nothing else needs the
 * conv's own output: no other reader, not kept, no ReLU of its own. The
 * fused conv runs when the add does, so its input must live until then. */
static void plan_fusion(st_net *net)
{
    for (int i = 1; i < net->n; i++) net->layers[i].fused_conv = 0, net->layers[i].fused = false;
    for (int i = 1; i < net->n; i++) {
        layer *add = &net->layers[i];
        if (add->kind != K_ADD || add->in[0] == add->in[1]) continue;
        for (int j = 0; j < 2 && !add->fused_conv; j++) {
            layer *c = &net->layers[add->in[j]];
            if (c->kind != K_CONV || c->relu || c->last_use != i) continue;
            bool other_reader = false;
            for (int k = 1; k < net->n && !other_reader; k++)
                for (int q = 0; q < net->layers[k].n_in; q++)
                    other_reader |= k != i && net->layers[k].in[q] == add->in[j];
            if (other_reader) continue;
            add->fused_conv = add->in[j];
            c->fused = true;
            layer *src = &net->layers[c->in[0]];
            if (src->last_use < i) src->last_use = i;
        }
    }
}

/* Gives every layer output a buffer: a buffer is reused once the last
 * reader of its previous occupant has run, unless that occupant is kept.
 * Best fit among free buffers keeps the total small. */
static st_status plan(st_net *net, int batch)
{
    int n = net->n;
    int *slot_free_after = malloc((size_t)n * sizeof *slot_free_after);
    int64_t *slot_need = calloc((size_t)n, sizeof *slot_need);
    if (!slot_free_after || !slot_need) {
        free(slot_free_after);
        free(slot_need);
        return st_fail(ST_ENOMEM, "net: out of memory");
    }
    for (int i = 0; i < n; i++) net->layers[i].last_use = net->layers[i].keep || i == n - 1 ? INT_MAX : i;
    for (int i = 1; i < n; i++)
        for (int j = 0; j < net->layers[i].n_in; j++) {
            layer *src = &net->layers[net->layers[i].in[j]];
            if (src->last_use < i) src->last_use = i;
        }
    plan_fusion(net);
    /* With several threads each runs every layer on its own images, so a
     * buffer shared in time is split into one region per thread, which
     * holds a group of images. Kept outputs (taps) hold the whole batch
     * contiguously in a buffer of their own. */
    int threads = net->threads < batch ? net->threads : batch, per_thread = (batch + threads - 1) / threads;
    int group = per_thread < GROUP_IMAGES ? per_thread : GROUP_IMAGES;
    int n_slots = 0;
    size_t ws = 0;
    for (int i = 1; i < n; i++) {
        layer *l = &net->layers[i];
        l->slot = -1;
        if (l->fused) continue;
        bool kept = l->last_use == INT_MAX;
        int64_t need = layer_floats(l) * (kept ? batch : group);
        int best = -1;
        for (int s = 0; s < n_slots && !kept; s++) {
            if (slot_free_after[s] >= i) continue;
            bool fits = slot_need[s] >= need, best_fits = best >= 0 && slot_need[best] >= need;
            if (best < 0 || (fits && (!best_fits || slot_need[s] < slot_need[best])) ||
                (!fits && !best_fits && slot_need[s] > slot_need[best]))
                best = s;
        }
        if (best < 0) best = n_slots++;
        if (slot_need[best] < need) slot_need[best] = need;
        slot_free_after[best] = l->last_use;
        l->slot = best;
    }
    for (int i = 1; i < n; i++) {
        layer *l = &net->layers[i];
        if (l->kind == K_CONV) {
            size_t need_ws = conv_workspace(net, l, conv_chunk(net, l, group));
            if (need_ws > ws) ws = need_ws;
        }
        l->thread_stride = l->slot < 0 || l->last_use == INT_MAX ? 0 : (size_t)slot_need[l->slot];
    }
    for (int k = 0; k < n_slots; k++)
        if (slot_free_after[k] != INT_MAX) slot_need[k] *= threads; /* a region per thread */
    st_status s = ST_OK;
    if (n_slots > net->n_slots) {
        st_tensor **grown = realloc(net->slots, (size_t)n_slots * sizeof *grown);
        if (!grown) s = st_fail(ST_ENOMEM, "net: out of memory");
        else {
            for (int k = net->n_slots; k < n_slots; k++) grown[k] = NULL;
            net->slots = grown;
            net->n_slots = n_slots;
        }
    }
    for (int k = 0; s == ST_OK && k < n_slots; k++) {
        if (net->slots[k] && net->slots[k]->shape[0] >= slot_need[k]) continue;
        st_tensor_free(net->slots[k]);
        net->slots[k] = NULL;
        s = st_tensor_new(ST_F32, 1, &slot_need[k], &net->slots[k]);
    }
    net->ws_per_thread = ws;
    if (s == ST_OK && ws * threads > net->ws_cap) {
        free(net->ws);
        net->ws = malloc(ws * threads * sizeof *net->ws);
        net->ws_cap = net->ws ? ws * threads : 0;
        if (!net->ws) s = st_fail(ST_ENOMEM, "net: cannot allocate a %zu-float workspace", ws * threads);
    }
    for (int i = 1; s == ST_OK && i < n; i++) {
        layer *l = &net->layers[i];
        l->out = l->slot < 0 ? NULL : st_f32(net->slots[l->slot]);
    }
    net->plan_batch = s == ST_OK ? batch : 0;
    free(slot_free_after);
    free(slot_need);
    return s;
}

/* ---------------------------------------------------------------- kernels */

static void relu_inplace(float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

/* A thread's share of a forward: images n0..n0+batch-1. */
typedef struct part {
    const st_net *net;
    int t, n0, batch;
    float *ws;
} part;

/* Output of layer l for image n (of the part p). */
static float *at(const part *p, const layer *l, int n)
{
    if (!l->out) return NULL; /* a fused conv: its add holds the result */
    size_t size = (size_t)layer_floats(l);
    if (!l->thread_stride) return l->out + (size_t)n * size;
    return l->out + (size_t)p->t * l->thread_stride + (size_t)(n - p->n0) * size;
}

/* Convolution l, written to dst (l itself, or the add it is fused into,
 * plus that add's other summand res and ReLU). */
static void run_conv(const part *p, const layer *l, const layer *res, const layer *dst, bool relu)
{
    const layer *src = &p->net->layers[l->in[0]];
    const int n0 = p->n0, batch = p->batch, chunk = conv_chunk(p->net, l, batch);
    for (int k = n0; k < n0 + batch; k += chunk) {
        st_conv2d_geom g = conv_geom(p->net, l, n0 + batch - k < chunk ? n0 + batch - k : chunk);
        st_conv2d_forward_fused(&g, at(p, src, k), l->wt, l->bias, res ? at(p, res, k) : NULL, relu, at(p, dst, k),
                                p->ws);
    }
}

static void run_bn(const layer *l, const float *x, float *y, size_t rows)
{
    const int c = l->c;
    for (size_t r = 0; r < rows; r++)
        for (int k = 0; k < c; k++) {
            float v = x[r * c + k] * l->wt[k] + l->bias[k];
            y[r * c + k] = l->relu && v < 0.0f ? 0.0f : v;
        }
}

static void run_add(const layer *l, const float *a, const float *b, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v = a[i] + b[i];
        y[i] = l->relu && v < 0.0f ? 0.0f : v;
    }
}

static void run_shortcut_a(const part *p, const layer *l, const layer *src)
{
    const int pad = (l->c - src->c) / 2;
    float *y = at(p, l, p->n0);
    for (int n = p->n0; n < p->n0 + p->batch; n++)
        for (int oy = 0; oy < l->h; oy++)
            for (int ox = 0; ox < l->w; ox++, y += l->c) {
                const float *x = at(p, src, n) + ((size_t)oy * l->stride * src->w + (size_t)ox * l->stride) * src->c;
                memset(y, 0, (size_t)pad * sizeof *y);
                memcpy(y + pad, x, (size_t)src->c * sizeof *y);
                memset(y + pad + src->c, 0, (size_t)(l->c - pad - src->c) * sizeof *y);
            }
}

static void run_maxpool(const part *p, const layer *l, const layer *src)
{
    float *y = at(p, l, p->n0);
    for (int n = p->n0; n < p->n0 + p->batch; n++) {
        const float *img = at(p, src, n);
        for (int oy = 0; oy < l->h; oy++)
            for (int ox = 0; ox < l->w; ox++, y += l->c) {
                for (int c = 0; c < l->c; c++) y[c] = -FLT_MAX;
                for (int ky = 0; ky < l->k_h; ky++) {
                    int iy = oy * l->stride - l->pad_top + ky;
                    if (iy < 0 || iy >= src->h) continue;
                    for (int kx = 0; kx < l->k_w; kx++) {
                        int ix = ox * l->stride - l->pad_left + kx;
                        if (ix < 0 || ix >= src->w) continue;
                        const float *x = img + ((size_t)iy * src->w + ix) * src->c;
                        for (int c = 0; c < l->c; c++) y[c] = x[c] > y[c] ? x[c] : y[c];
                    }
                }
            }
    }
}

static void run_gap(const part *p, const layer *l, const layer *src)
{
    const size_t hw = (size_t)src->h * src->w;
    for (int n = p->n0; n < p->n0 + p->batch; n++) {
        float *y = at(p, l, n);
        const float *x = at(p, src, n);
        memset(y, 0, (size_t)l->c * sizeof *y);
        for (size_t p = 0; p < hw; p++)
            for (int c = 0; c < l->c; c++) y[c] += x[p * l->c + c];
        for (int c = 0; c < l->c; c++) y[c] /= (float)hw;
    }
}

static void run_dense(const part *p, const layer *l, const layer *src)
{
    const int in = (int)layer_floats(src), out = l->c, batch = p->batch;
    float *y = at(p, l, p->n0), beta = 0.0f;
    if (l->bias) {
        for (int n = 0; n < batch; n++) memcpy(y + (size_t)n * out, l->bias, (size_t)out * sizeof(float));
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, out, in, 1.0f, at(p, src, p->n0), in, l->wt, out, beta,
                y, out);
    if (l->relu) relu_inplace(y, (size_t)batch * out);
}

static void run_softmax(const layer *l, const float *x, float *y, size_t rows)
{
    const int c = l->c;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * c;
        float *yr = y + r * c;
        float m = xr[0];
        for (int k = 1; k < c; k++) m = xr[k] > m ? xr[k] : m;
        double sum = 0;
        for (int k = 0; k < c; k++) sum += (yr[k] = expf(xr[k] - m));
        for (int k = 0; k < c; k++) yr[k] = (float)(yr[k] / sum);
    }
}

/* Runs layer l on the images of part p (every layer treats images
 * independently, so parts can run in parallel). */
static void run_layer(const part *p, const layer *l)
{
    const layer *src = &p->net->layers[l->in[0]];
    const float *x = at(p, src, p->n0);
    float *y = at(p, l, p->n0);
    size_t n = (size_t)p->batch * layer_floats(l);
    switch (l->kind) {
    case K_CONV:
        if (!l->fused) run_conv(p, l, NULL, l, l->relu);
        break;
    case K_BN: run_bn(l, x, y, n / l->c); break;
    case K_RELU:
        for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case K_ADD:
        if (l->fused_conv) {
            const layer *c = &p->net->layers[l->fused_conv];
            run_conv(p, c, &p->net->layers[l->in[l->in[0] == l->fused_conv ? 1 : 0]], l, l->relu);
        } else {
            run_add(l, x, at(p, &p->net->layers[l->in[1]], p->n0), y, n);
        }
        break;
    case K_SHORTCUT_A: run_shortcut_a(p, l, src); break;
    case K_MAXPOOL: run_maxpool(p, l, src); break;
    case K_GAP: run_gap(p, l, src); break;
    case K_DENSE: run_dense(p, l, src); break;
    case K_SOFTMAX: run_softmax(l, x, y, n / l->c); break;
    case K_INPUT: break;
    }
}

/* ---------------------------------------------------------------- run */

static void *run_part(void *arg)
{
    const part *p = arg;
    for (int k = p->n0; k < p->n0 + p->batch; k += GROUP_IMAGES) {
        part group = *p;
        group.n0 = k;
        group.batch = p->n0 + p->batch - k < GROUP_IMAGES ? p->n0 + p->batch - k : GROUP_IMAGES;
        for (int i = 1; i < p->net->n; i++) run_layer(&group, &p->net->layers[i]);
    }
    return NULL;
}

/* Splits the batch into one contiguous range of images per thread; the
 * calling thread runs the first. A thread that cannot be started leaves
 * its range to the caller. */
static void run_all(st_net *net, int batch)
{
    int threads = net->threads < batch ? net->threads : batch;
    part parts[ST_NET_MAX_THREADS] = {{0}};
    pthread_t ids[ST_NET_MAX_THREADS];
    bool started[ST_NET_MAX_THREADS] = {false};
    int per = (batch + threads - 1) / threads;
    for (int t = 0; t < threads; t++) {
        int n0 = t * per, nb = batch - n0 < per ? batch - n0 : per;
        parts[t] = (part){net, t, n0, nb > 0 ? nb : 0, net->ws + (size_t)t * net->ws_per_thread};
    }
    for (int t = 1; t < threads; t++)
        if (parts[t].batch > 0) started[t] = pthread_create(&ids[t], NULL, run_part, &parts[t]) == 0;
    run_part(&parts[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(ids[t], NULL);
        else if (parts[t].batch > 0) {
            parts[t].ws = net->ws;
            run_part(&parts[t]);
        }
    }
}

st_status st_net_set_threads(st_net *net, int threads)
{
    if (threads < 1 || threads > ST_NET_MAX_THREADS)
        return st_fail(ST_EINVAL, "net: %d threads requested (1 to %d)", threads, ST_NET_MAX_THREADS);
    net->threads = threads;
    net->plan_batch = 0; /* a workspace per thread */
    return ST_OK;
}

int st_net_threads(const st_net *net) { return net->threads; }

st_status st_net_forward(st_net *net, const st_tensor *x, const char *const *taps, int n_taps)
{
    const layer *in = &net->layers[0];
    char ctx[] = "net input";
    ST_TRY(st_tensor_expect(x, ctx, ST_F32, 4, (int64_t[]){-1, in->h, in->w, in->c}));
    if (!st_tensor_is_contiguous(x) || x->shape[0] < 1 || x->shape[0] > INT_MAX / (in->h * in->w * in->c))
        return st_fail(ST_EINVAL, "net input: a contiguous batch of 1 to %d images is needed",
                       INT_MAX / (in->h * in->w * in->c));
    if (n_taps < 0 || (n_taps > 0 && !taps)) return st_fail(ST_EINVAL, "net: %d taps requested without names", n_taps);
    bool changed = false;
    for (int i = 0; i < net->n; i++) {
        bool keep = false;
        for (int t = 0; t < n_taps && !keep; t++) keep = st_net_find(net, taps[t]) == i;
        changed |= keep != net->layers[i].keep;
        net->layers[i].keep = keep;
    }
    for (int t = 0; t < n_taps; t++)
        if (st_net_find(net, taps[t]) < 0)
            return st_fail(ST_EINVAL, "net: no layer or alias is named '%s'", taps[t] ? taps[t] : "(null)");
    int batch = (int)x->shape[0];
    net->ran = false;
    if (changed || batch != net->plan_batch) ST_TRY(plan(net, batch));
    st_tensor_free(net->input);
    net->input = NULL;
    ST_TRY(st_tensor_view(x, &net->input));
    net->layers[0].out = st_f32(x);
    run_all(net, batch);
    net->ran = true;
    return ST_OK;
}

static st_status layer_view(const st_net *net, int id, st_tensor **out)
{
    const layer *l = &net->layers[id];
    int64_t shape[4] = {net->plan_batch, l->h, l->w, l->c};
    if (l->flat) shape[1] = l->c;
    int ndim = l->flat ? 2 : 4;
    if (id == 0) return st_tensor_view(net->input, out);
    st_tensor *head = NULL, *v = NULL;
    ST_TRY(st_tensor_slice(net->slots[l->slot], 0, 0, (int64_t)net->plan_batch * layer_floats(l), 1, &head));
    st_status s = st_tensor_reshape(head, ndim, shape, &v);
    st_tensor_free(head);
    if (s == ST_OK) *out = v;
    return s;
}

st_status st_net_tap(const st_net *net, const char *name, st_tensor **out)
{
    int id = st_net_find(net, name);
    if (id < 0) return st_fail(ST_EINVAL, "net: no layer or alias is named '%s'", name ? name : "(null)");
    if (!net->ran) return st_fail(ST_ESTATE, "net: tap '%s' read before a successful forward", name);
    if (id != 0 && id != net->n - 1 && !net->layers[id].keep)
        return st_fail(ST_ESTATE, "net: tap '%s' was not requested in the last forward", name);
    return layer_view(net, id, out);
}

st_status st_net_output(const st_net *net, st_tensor **out)
{
    if (!net->ran) return st_fail(ST_ESTATE, "net: output read before a successful forward");
    return layer_view(net, net->n - 1, out);
}

/* ---------------------------------------------------------------- inspect */

int st_net_layer_count(const st_net *net) { return net->n; }

size_t st_net_tap_count(const st_net *net) { return (size_t)net->n + (size_t)net->n_alias; }

void st_net_tap_at(const st_net *net, size_t i, st_net_tap_info *info)
{
    bool is_alias = i >= (size_t)net->n;
    int id = is_alias ? net->aliases[i - (size_t)net->n].layer : (int)i;
    const layer *l = &net->layers[id];
    info->name = is_alias ? net->aliases[i - (size_t)net->n].name : l->name;
    info->layer = l->name;
    info->kind = kind_names[l->kind];
    layer_shape(l, &info->ndim, info->shape);
}

int64_t st_net_param_count(const st_net *net)
{
    int64_t n = 0;
    for (int i = 0; i < net->n; i++) {
        const layer *l = &net->layers[i];
        if (l->kind == K_CONV || l->kind == K_DENSE) n += l->n_wt + (l->bias ? l->c : 0);
    }
    return n;
}

/* snprintf that keeps counting past the end of the buffer. */
static void put(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(*len < cap ? buf + *len : NULL, *len < cap ? cap - *len : 0, fmt, ap);
    va_end(ap);
    if (n > 0) *len += (size_t)n;
}

static void describe(const layer *l, char *d, size_t cap)
{
    switch (l->kind) {
    case K_CONV:
        if (l->pad == ST_PAD_SAME)
            snprintf(d, cap, "conv %dx%d/%d same%s", l->k_h, l->k_w, l->stride, l->relu ? " +relu" : "");
        else
            snprintf(d, cap, "conv %dx%d/%d pad %d%s", l->k_h, l->k_w, l->stride, l->pad, l->relu ? " +relu" : "");
        break;
    case K_MAXPOOL: snprintf(d, cap, "maxpool %dx%d/%d", l->k_h, l->k_w, l->stride); break;
    case K_SHORTCUT_A: snprintf(d, cap, "shortcut A /%d", l->stride); break;
    default: snprintf(d, cap, "%s%s", kind_names[l->kind], l->relu && l->kind != K_RELU ? " +relu" : ""); break;
    }
}

size_t st_net_summary(const st_net *net, char *buf, size_t cap)
{
    size_t len = 0;
    if (cap) buf[0] = '\0';
    const layer *in = &net->layers[0];
    put(buf, cap, &len, "%s: input %dx%dx%d, %d classes, %lld parameters, %d layers\n",
        net->name ? net->name : "net", in->h, in->w, in->c, st_net_class_count(net),
        (long long)st_net_param_count(net), net->n);
    put(buf, cap, &len, "  %-22s %-24s %-14s %s\n", "tap", "layer", "shape", "from");
    for (int i = 0; i < net->n; i++) {
        const layer *l = &net->layers[i];
        char d[64], s[64];
        int nd;
        int64_t sh[3];
        describe(l, d, sizeof d);
        layer_shape(l, &nd, sh);
        put(buf, cap, &len, "  %-22s %-24s %-14s", l->name, d, st_shape_str(nd, sh, s, sizeof s));
        for (int j = 0; j < l->n_in; j++)
            put(buf, cap, &len, "%s%s", j ? ", " : "", net->layers[l->in[j]].name);
        put(buf, cap, &len, "\n");
    }
    if (net->n_alias) put(buf, cap, &len, "aliases:");
    for (int i = 0; i < net->n_alias; i++)
        put(buf, cap, &len, "%s %s=%s", i % 4 ? "," : (i ? "\n " : ""), net->aliases[i].name,
            net->layers[net->aliases[i].layer].name);
    if (net->n_alias) put(buf, cap, &len, "\n");
    if (cap && len >= cap) buf[cap - 1] = '\0';
    return len;
}

/* ---------------------------------------------------------------- feeding */

st_status st_net_set_name(st_net *net, const char *name)
{
    char *copy = strdup(name ? name : "");
    if (!copy) return st_fail(ST_ENOMEM, "net: out of memory");
    free(net->name);
    net->name = copy;
    return ST_OK;
}

const char *st_net_name(const st_net *net) { return net->name ? net->name : "net"; }

void st_net_input_shape(const st_net *net, int *h, int *w, int *c)
{
    *h = net->layers[0].h, *w = net->layers[0].w, *c = net->layers[0].c;
}

st_status st_net_set_preprocess(st_net *net, double scale, const float *mean, const float *std)
{
    int c = net->layers[0].c;
    if (!(scale > 0) || !isfinite(scale)) return st_fail(ST_EINVAL, "net: preprocessing scale %g must be > 0", scale);
    for (int i = 0; i < c; i++)
        if ((std && !(std[i] > 0 && isfinite(std[i]))) || (mean && !isfinite(mean[i])))
            return st_fail(ST_EINVAL, "net: preprocessing channel %d: mean %g, std %g (std must be > 0)", i,
                           mean ? mean[i] : 0.0, std ? std[i] : 1.0);
    net->scale = scale;
    for (int i = 0; i < c; i++) {
        net->mean[i] = mean ? mean[i] : 0.0f;
        net->std[i] = std ? std[i] : 1.0f;
    }
    return ST_OK;
}

void st_net_preprocess(const st_net *net, double *scale, float *mean, float *std)
{
    *scale = net->scale;
    for (int i = 0; i < net->layers[0].c; i++) mean[i] = net->mean[i], std[i] = net->std[i];
}

void st_net_preprocess_u8(const st_net *net, const uint8_t *images, int64_t n, float *out)
{
    const int c = net->layers[0].c;
    /* 256 values per channel, each computed in double and rounded once. */
    float lut[ST_NET_MAX_CHANNELS][256];
    for (int k = 0; k < c; k++)
        for (int p = 0; p < 256; p++)
            lut[k][p] = (float)((p * net->scale - net->mean[k]) / net->std[k]);
    int64_t total = n * layer_floats(&net->layers[0]);
    for (int64_t i = 0; i < total; i++) out[i] = lut[i % c][images[i]];
}

st_status st_net_set_class_names(st_net *net, int n, const char *const *names)
{
    if (n != st_net_class_count(net))
        return st_fail(ST_ESHAPE, "net: %d class names given for %d outputs", n, st_net_class_count(net));
    char **copy = calloc((size_t)n, sizeof *copy);
    if (!copy) return st_fail(ST_ENOMEM, "net: out of memory");
    for (int i = 0; i < n; i++) {
        copy[i] = strdup(names[i] ? names[i] : "");
        if (!copy[i]) {
            for (int j = 0; j < i; j++) free(copy[j]);
            free(copy);
            return st_fail(ST_ENOMEM, "net: out of memory");
        }
    }
    for (int i = 0; i < net->n_class_names; i++) free(net->class_names[i]);
    free(net->class_names);
    net->class_names = copy;
    net->n_class_names = n;
    return ST_OK;
}

int st_net_class_count(const st_net *net)
{
    const layer *l = &net->layers[net->n - 1];
    return (int)layer_floats(l);
}

const char *st_net_class_name(const st_net *net, int i)
{
    return i >= 0 && i < net->n_class_names ? net->class_names[i] : NULL;
}
