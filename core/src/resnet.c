/* ResNet builders from safetensors weights and metadata (see resnet.h). */
#include "strata/resnet.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- config */

st_status st_resnet_config_default(st_resnet_family family, int depth, st_resnet_config *cfg)
{
    st_resnet_config c = {0};
    c.family = family;
    c.depth = depth;
    c.version = 1;
    c.in_c = 3;
    c.num_classes = family == ST_RESNET_CIFAR ? 10 : 1000;
    c.bn_eps = 1e-5;
    c.scale = 1.0 / 255.0;
    if (family == ST_RESNET_CIFAR) {
        if (depth < 8 || (depth - 2) % 6)
            return st_fail(ST_EINVAL, "resnet: CIFAR depth %d is not 6n+2 (20, 32, 44, 56, 110, ...)", depth);
        c.shortcut = 'A';
        c.n_stages = 3;
        for (int s = 0; s < 3; s++) c.blocks[s] = (depth - 2) / 6, c.widths[s] = 16 << s;
        c.in_h = c.in_w = 32;
    } else {
        static const int table[][5] = {{18, 2, 2, 2, 2},  {34, 3, 4, 6, 3},  {50, 3, 4, 6, 3},
                                       {101, 3, 4, 23, 3}, {152, 3, 8, 36, 3}};
        int row = -1;
        for (int i = 0; i < 5; i++)
            if (table[i][0] == depth) row = i;
        if (row < 0) return st_fail(ST_EINVAL, "resnet: ImageNet-family depth %d is not 18, 34, 50, 101 or 152", depth);
        c.shortcut = 'B';
        c.bottleneck = depth >= 50;
        c.n_stages = 4;
        for (int s = 0; s < 4; s++) c.blocks[s] = table[row][s + 1], c.widths[s] = 64 << s;
        c.in_h = c.in_w = 224;
    }
    *cfg = c;
    return ST_OK;
}

/* Comma-separated numbers; returns how many were parsed into out (at most
 * cap), or -1 when the text is not such a list. */
static int parse_list(const char *text, double *out, int cap)
{
    int n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || n == cap) return -1;
        out[n++] = v;
        while (*end == ' ') end++;
        if (*end == ',') end++;
        else if (*end) return -1;
        p = end;
    }
    return n;
}

static st_status meta_ints(const st_safetensors *f, const char *key, int *out, int want_min, int want_max,
                           int lo, int *count)
{
    const char *v = st_safetensors_metadata_get(f, key);
    double vals[ST_RESNET_MAX_STAGES];
    int n = v ? parse_list(v, vals, want_max) : -1;
    for (int i = 0; i < n; i++)
        if (vals[i] != floor(vals[i]) || vals[i] < lo || vals[i] > 1e6) n = -1;
    if (n < want_min)
        return st_fail(ST_EFORMAT, "resnet metadata '%s': %d to %d integers >= %d expected, got '%s'", key, want_min,
                       want_max, lo, v ? v : "(missing)");
    for (int i = 0; i < n; i++) out[i] = (int)vals[i];
    if (count) *count = n;
    return ST_OK;
}

static st_status meta_floats(const st_safetensors *f, const char *key, int n, float *out)
{
    const char *v = st_safetensors_metadata_get(f, key);
    double vals[ST_NET_MAX_CHANNELS];
    if (parse_list(v, vals, ST_NET_MAX_CHANNELS) != n)
        return st_fail(ST_EFORMAT, "resnet metadata '%s': %d numbers expected (one per input channel), got '%s'", key,
                       n, v);
    for (int i = 0; i < n; i++) out[i] = (float)vals[i];
    return ST_OK;
}

static st_status meta_choice(const st_safetensors *f, const char *key, const char *const *choices, int n, int *out)
{
    const char *v = st_safetensors_metadata_get(f, key);
    if (!v) return ST_OK;
    for (int i = 0; i < n; i++)
        if (strcmp(v, choices[i]) == 0) {
            *out = i;
            return ST_OK;
        }
    return st_fail(ST_EFORMAT, "resnet metadata '%s': '%s' is not one of %s%s%s%s%s", key, v, choices[0],
                   n > 1 ? ", " : "", n > 1 ? choices[1] : "", n > 2 ? ", " : "", n > 2 ? choices[2] : "");
}

st_status st_resnet_config_from_metadata(const st_safetensors *f, st_resnet_config *cfg)
{
    int depth;
    ST_TRY(meta_ints(f, "depth", &depth, 1, 1, 1, NULL));
    /* The family is explicit, or CIFAR when the net has 3 stages or an
     * option-A shortcut (the shared ResNet-56 file says neither). */
    int family = -1;
    ST_TRY(meta_choice(f, "family", (const char *const[]){"cifar", "imagenet"}, 2, &family));
    if (family < 0) {
        const char *w = st_safetensors_metadata_get(f, "widths"), *sc = st_safetensors_metadata_get(f, "shortcut");
        double tmp[ST_RESNET_MAX_STAGES];
        family = (w && parse_list(w, tmp, ST_RESNET_MAX_STAGES) == 3) || (sc && strcmp(sc, "A") == 0)
                     ? ST_RESNET_CIFAR
                     : ST_RESNET_IMAGENET;
    }
    st_resnet_config c;
    ST_TRY(st_resnet_config_default((st_resnet_family)family, depth, &c));
    ST_TRY(meta_ints(f, "num_classes", &c.num_classes, 1, 1, 1, NULL));
    if (c.num_classes > ST_RESNET_MAX_CLASSES)
        return st_fail(ST_EFORMAT, "resnet metadata 'num_classes': %d is too many", c.num_classes);
    int version = 0, block = c.bottleneck, shortcut = c.shortcut == 'B', padding = 0;
    ST_TRY(meta_choice(f, "version", (const char *const[]){"1", "2"}, 2, &version));
    ST_TRY(meta_choice(f, "block", (const char *const[]){"basic", "bottleneck"}, 2, &block));
    ST_TRY(meta_choice(f, "shortcut", (const char *const[]){"A", "B"}, 2, &shortcut));
    ST_TRY(meta_choice(f, "padding", (const char *const[]){"torch", "same"}, 2, &padding));
    c.version = version + 1;
    c.bottleneck = block == 1;
    c.shortcut = shortcut ? 'B' : 'A';
    c.pad_same = padding == 1;
    if (c.shortcut == 'A' && c.family != ST_RESNET_CIFAR)
        return st_fail(ST_EFORMAT, "resnet metadata 'shortcut': option A exists only in the CIFAR family");
    if (st_safetensors_metadata_get(f, "widths")) {
        int n;
        ST_TRY(meta_ints(f, "widths", c.widths, 1, ST_RESNET_MAX_STAGES, 1, &n));
        if (n != c.n_stages)
            return st_fail(ST_EFORMAT, "resnet metadata 'widths': %d stages given, the family has %d", n, c.n_stages);
    }
    if (st_safetensors_metadata_get(f, "blocks_per_stage")) {
        int n, b[ST_RESNET_MAX_STAGES];
        ST_TRY(meta_ints(f, "blocks_per_stage", b, 1, ST_RESNET_MAX_STAGES, 1, &n));
        if (n != 1 && n != c.n_stages)
            return st_fail(ST_EFORMAT, "resnet metadata 'blocks_per_stage': 1 or %d counts expected", c.n_stages);
        for (int s = 0; s < c.n_stages; s++) c.blocks[s] = b[n == 1 ? 0 : s];
    }
    if (st_safetensors_metadata_get(f, "input_size")) {
        int hw[2], n;
        ST_TRY(meta_ints(f, "input_size", hw, 1, 2, 1, &n));
        c.in_h = hw[0], c.in_w = hw[n - 1];
    }
    if (st_safetensors_metadata_get(f, "input_channels"))
        ST_TRY(meta_ints(f, "input_channels", &c.in_c, 1, 1, 1, NULL));
    if (c.in_c > ST_NET_MAX_CHANNELS)
        return st_fail(ST_EFORMAT, "resnet metadata 'input_channels': %d (at most %d)", c.in_c, ST_NET_MAX_CHANNELS);
    const char *eps = st_safetensors_metadata_get(f, "bn_eps"), *scale = st_safetensors_metadata_get(f, "scale");
    if (eps && (parse_list(eps, &c.bn_eps, 1) != 1 || c.bn_eps < 0))
        return st_fail(ST_EFORMAT, "resnet metadata 'bn_eps': '%s' is not a number >= 0", eps);
    if (scale && (parse_list(scale, &c.scale, 1) != 1 || !(c.scale > 0)))
        return st_fail(ST_EFORMAT, "resnet metadata 'scale': '%s' is not a positive number", scale);
    bool has_mean = st_safetensors_metadata_get(f, "mean"), has_std = st_safetensors_metadata_get(f, "std");
    if (has_mean != has_std) return st_fail(ST_EFORMAT, "resnet metadata: 'mean' and 'std' come together");
    if (has_mean) {
        ST_TRY(meta_floats(f, "mean", c.in_c, c.mean));
        ST_TRY(meta_floats(f, "std", c.in_c, c.std));
        c.has_mean_std = true;
    }
    *cfg = c;
    return ST_OK;
}

/* ---------------------------------------------------------------- build */

typedef struct builder {
    st_net *net;
    const st_safetensors *f;
    const st_resnet_config *cfg;
    const char **used;
    size_t n_used;
} builder;

/* Loads a tensor as f32 after checking it exists with this shape. */
static st_status take(builder *b, const char *name, int ndim, const int64_t *shape, st_tensor **out)
{
    const st_safetensors_entry *e = st_safetensors_find(b->f, name);
    char want[96], got[96];
    st_shape_str(ndim, shape, want, sizeof want);
    if (!e) return st_fail(ST_EFORMAT, "resnet: tensor '%s' %s is missing from the file", name, want);
    bool same = e->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = e->shape[i] == shape[i];
    if (!same)
        return st_fail(ST_ESHAPE, "resnet: tensor '%s': shape %s expected, file has %s", name, want,
                       st_shape_str(e->ndim, e->shape, got, sizeof got));
    if (e->dtype != ST_ST_F32 && e->dtype != ST_ST_F16 && e->dtype != ST_ST_BF16 && e->dtype != ST_ST_F64)
        return st_fail(ST_EDTYPE, "resnet: tensor '%s' must be a float type (F32, F16, BF16 or F64)", name);
    b->used[b->n_used++] = e->name;
    return st_safetensors_load(b->f, name, ST_F32, out);
}

static st_status take_bn(builder *b, const char *prefix, int c, st_tensor *t[4])
{
    static const char *const parts[4] = {"weight", "bias", "running_mean", "running_var"};
    char name[160];
    st_status s = ST_OK;
    for (int i = 0; i < 4; i++) t[i] = NULL;
    for (int i = 0; i < 4 && s == ST_OK; i++) {
        snprintf(name, sizeof name, "%s.%s", prefix, parts[i]);
        s = take(b, name, 1, (int64_t[]){c}, &t[i]);
    }
    return s;
}

static void free4(st_tensor *t[4])
{
    for (int i = 0; i < 4; i++) st_tensor_free(t[i]);
}

/* Adds conv `wname` (PyTorch OIHW, permuted to HWIO) with the batchnorm
 * `bn` folded in (bn may be NULL). */
static st_status conv(builder *b, const char *node, int input, const char *wname, const char *bn, int out_c, int k,
                      int stride, bool relu, int *id)
{
    st_tensor *oihw = NULL, *hwio = NULL, *bnt[4] = {NULL, NULL, NULL, NULL};
    st_net_tap_info info;
    st_net_tap_at(b->net, (size_t)input, &info);
    int in_c = (int)info.shape[info.ndim - 1];
    int pad = b->cfg->pad_same ? ST_PAD_SAME : k / 2;
    st_status s = take(b, wname, 4, (int64_t[]){out_c, in_c, k, k}, &oihw);
    if (s == ST_OK) s = st_tensor_permute(oihw, (const int[]){2, 3, 1, 0}, &hwio);
    if (s == ST_OK) s = st_net_add_conv2d(b->net, node, input, hwio, NULL, stride, pad, relu, id);
    if (s == ST_OK && bn) s = take_bn(b, bn, out_c, bnt);
    if (s == ST_OK && bn) s = st_net_fold_batchnorm(b->net, *id, bnt[0], bnt[1], bnt[2], bnt[3], b->cfg->bn_eps);
    free4(bnt);
    st_tensor_free(hwio);
    st_tensor_free(oihw);
    return s;
}

static st_status batchnorm(builder *b, const char *node, int input, const char *bn, int c, bool relu, int *id)
{
    st_tensor *t[4];
    st_status s = take_bn(b, bn, c, t);
    if (s == ST_OK) s = st_net_add_batchnorm(b->net, node, input, t[0], t[1], t[2], t[3], b->cfg->bn_eps, relu, id);
    free4(t);
    return s;
}

typedef struct block_io {
    int input, in_c, out_c, stride, index; /* index: block number over the whole net */
} block_io;

/* The projection or option-A shortcut, or the input itself. `from` is the
 * tensor the projection reads (the pre-activation in v2). */
static st_status shortcut(builder *b, const char *p, const block_io *io, int from, int *id)
{
    if (io->stride == 1 && io->in_c == io->out_c) {
        *id = io->input;
        return ST_OK;
    }
    char node[96], wname[128], bn[128];
    snprintf(node, sizeof node, "%s.shortcut", p);
    if (b->cfg->shortcut == 'A') return st_net_add_shortcut_a(b->net, node, io->input, io->stride, io->out_c, id);
    const char *mod = b->cfg->family == ST_RESNET_CIFAR ? "shortcut" : "downsample";
    snprintf(wname, sizeof wname, "%s.%s.0.weight", p, mod);
    snprintf(bn, sizeof bn, "%s.%s.1", p, mod);
    return conv(b, node, from, wname, b->cfg->version == 1 ? bn : NULL, io->out_c, 1, io->stride, false, id);
}

static st_status block(builder *b, const char *p, const block_io *io, int *out)
{
    const bool v2 = b->cfg->version == 2;
    const int mid = b->cfg->bottleneck ? io->out_c / 4 : io->out_c;
    char node[3][96], wname[3][128], bn[4][128];
    for (int i = 0; i < 3; i++) {
        snprintf(node[i], sizeof node[i], "%s.conv%d", p, i + 1);
        snprintf(wname[i], sizeof wname[i], "%s.conv%d.weight", p, i + 1);
    }
    for (int i = 0; i < 4; i++) snprintf(bn[i], sizeof bn[i], "%s.bn%d", p, i + 1);
    int x = io->input, pre = io->input, sc, h1, h2, h3;
    if (v2) {
        ST_TRY(batchnorm(b, bn[0], io->input, bn[0], io->in_c, true, &pre));
        x = pre;
    }
    /* In v1 conv i is followed by bn i; in v2 by bn i+1 (bn1 comes first). */
    const char *after[3] = {v2 ? bn[1] : bn[0], v2 ? bn[2] : bn[1], v2 ? bn[3] : bn[2]};
    ST_TRY(shortcut(b, p, io, v2 ? pre : io->input, &sc));
    if (b->cfg->bottleneck) {
        ST_TRY(conv(b, node[0], x, wname[0], after[0], mid, 1, 1, true, &h1));
        ST_TRY(conv(b, node[1], h1, wname[1], after[1], mid, 3, io->stride, true, &h2));
        ST_TRY(conv(b, node[2], h2, wname[2], v2 ? NULL : after[2], io->out_c, 1, 1, false, &h3));
    } else {
        ST_TRY(conv(b, node[0], x, wname[0], after[0], mid, 3, io->stride, true, &h1));
        ST_TRY(conv(b, node[1], h1, wname[1], v2 ? NULL : after[1], io->out_c, 3, 1, false, &h3));
    }
    ST_TRY(st_net_add_add(b->net, p, h3, sc, !v2, out));
    if (b->cfg->family == ST_RESNET_CIFAR && !v2 && !b->cfg->bottleneck) {
        char alias[32];
        snprintf(alias, sizeof alias, "activation_%d", 2 * io->index + 1);
        ST_TRY(st_net_add_alias(b->net, alias, h1));
        snprintf(alias, sizeof alias, "activation_%d", 2 * io->index + 2);
        ST_TRY(st_net_add_alias(b->net, alias, *out));
    }
    return ST_OK;
}

static st_status stem(builder *b, int *out)
{
    const st_resnet_config *c = b->cfg;
    bool cifar = c->family == ST_RESNET_CIFAR, v2 = c->version == 2;
    /* The CIFAR v2 stem is a bare convolution: the first block's bn1 and
     * ReLU follow it. */
    bool bn = !(cifar && v2);
    ST_TRY(conv(b, "stem", 0, "conv1.weight", bn ? "bn1" : NULL, c->widths[0], cifar ? 3 : 7, cifar ? 1 : 2, bn, out));
    if (cifar && !v2) ST_TRY(st_net_add_alias(b->net, "activation", *out));
    if (!cifar) ST_TRY(st_net_add_maxpool(b->net, "maxpool", *out, 3, 2, c->pad_same ? ST_PAD_SAME : 1, out));
    return ST_OK;
}

static st_status head(builder *b, int x, int c_out)
{
    const st_resnet_config *c = b->cfg;
    if (c->version == 2) ST_TRY(batchnorm(b, "final_bn", x, "final_bn", c_out, true, &x));
    ST_TRY(st_net_add_global_avgpool(b->net, "pool", x, &x));
    const char *fc = c->family == ST_RESNET_CIFAR ? "linear" : "fc";
    char wname[32], bname[32];
    snprintf(wname, sizeof wname, "%s.weight", fc);
    snprintf(bname, sizeof bname, "%s.bias", fc);
    st_tensor *w = NULL, *wt = NULL, *bias = NULL;
    st_status s = take(b, wname, 2, (int64_t[]){c->num_classes, c_out}, &w);
    if (s == ST_OK) s = take(b, bname, 1, (int64_t[]){c->num_classes}, &bias);
    if (s == ST_OK) s = st_tensor_transpose(w, 0, 1, &wt);
    if (s == ST_OK) s = st_net_add_dense(b->net, "logits", x, wt, bias, false, NULL);
    st_tensor_free(w);
    st_tensor_free(wt);
    st_tensor_free(bias);
    return s;
}

static bool ignorable(const char *name)
{
    const char *suffix = ".num_batches_tracked";
    size_t n = strlen(name), m = strlen(suffix);
    return n >= m && strcmp(name + n - m, suffix) == 0;
}

static st_status check_all_used(const builder *b)
{
    size_t n = st_safetensors_count(b->f), unused = 0;
    const char *first = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *name = st_safetensors_entry_at(b->f, i)->name;
        bool used = ignorable(name);
        for (size_t j = 0; j < b->n_used && !used; j++) used = strcmp(b->used[j], name) == 0;
        if (!used && !unused++) first = name;
    }
    if (unused)
        return st_fail(ST_EFORMAT, "resnet: %zu unexpected tensor%s in the file (first: '%s'); the metadata does not "
                       "describe these weights", unused, unused > 1 ? "s" : "", first);
    return ST_OK;
}

static st_status build(builder *b)
{
    const st_resnet_config *c = b->cfg;
    int x, in_c = c->widths[0], index = 0;
    ST_TRY(stem(b, &x));
    for (int s = 0; s < c->n_stages; s++) {
        int out_c = c->bottleneck ? 4 * c->widths[s] : c->widths[s];
        for (int k = 0; k < c->blocks[s]; k++) {
            char p[64];
            snprintf(p, sizeof p, "layer%d.%d", s + 1, k);
            block_io io = {x, in_c, out_c, k == 0 && s > 0 ? 2 : 1, index++};
            ST_TRY(block(b, p, &io, &x));
            in_c = out_c;
        }
        char stage[16];
        snprintf(stage, sizeof stage, "layer%d", s + 1);
        ST_TRY(st_net_add_alias(b->net, stage, x));
    }
    ST_TRY(head(b, x, in_c));
    return check_all_used(b);
}

st_status st_resnet_build(const st_resnet_config *cfg, const st_safetensors *f, st_net **out)
{
    if (cfg->n_stages < 1 || cfg->n_stages > ST_RESNET_MAX_STAGES || cfg->num_classes < 1 ||
        (cfg->version != 1 && cfg->version != 2) || (cfg->shortcut != 'A' && cfg->shortcut != 'B'))
        return st_fail(ST_EINVAL, "resnet: invalid configuration (%d stages, version %d, shortcut %c)", cfg->n_stages,
                       cfg->version, cfg->shortcut);
    for (int s = 0; s < cfg->n_stages; s++)
        if (cfg->blocks[s] < 1 || cfg->widths[s] < 1 || (cfg->shortcut == 'A' && s > 0 && cfg->widths[s] % 2))
            return st_fail(ST_EINVAL, "resnet: stage %d has %d blocks of width %d", s + 1, cfg->blocks[s],
                           cfg->widths[s]);
    builder b = {NULL, f, cfg, NULL, 0};
    b.used = malloc((st_safetensors_count(f) + 1) * sizeof *b.used);
    if (!b.used) return st_fail(ST_ENOMEM, "resnet: out of memory");
    st_status s = st_net_new(cfg->in_h, cfg->in_w, cfg->in_c, &b.net);
    if (s == ST_OK) s = build(&b);
    if (s == ST_OK)
        s = st_net_set_preprocess(b.net, cfg->scale, cfg->has_mean_std ? cfg->mean : NULL,
                                  cfg->has_mean_std ? cfg->std : NULL);
    free(b.used);
    if (s != ST_OK) {
        st_net_free(b.net);
        return s;
    }
    *out = b.net;
    return ST_OK;
}

/* "a,b,c" split on commas into n names (no escaping: names hold no commas). */
static st_status set_class_names(st_net *net, const char *text)
{
    int n = st_net_class_count(net), k = 0;
    char *copy = strdup(text);
    const char **names = calloc((size_t)n + 1, sizeof *names);
    st_status s = copy && names ? ST_OK : st_fail(ST_ENOMEM, "resnet: out of memory");
    for (char *p = copy, *save = NULL, *tok; s == ST_OK && (tok = strtok_r(p, ",", &save)); p = NULL) {
        if (k == n) {
            k++;
            break;
        }
        names[k++] = tok;
    }
    if (s == ST_OK && k != n)
        s = st_fail(ST_EFORMAT, "resnet metadata 'class_names': %s%d names for %d classes", k > n ? "more than " : "",
                    k > n ? n : k, n);
    if (s == ST_OK) s = st_net_set_class_names(net, n, names);
    free(names);
    free(copy);
    return s;
}

st_status st_resnet_load(const char *path, st_net **out)
{
    st_safetensors *f = NULL;
    st_resnet_config cfg;
    st_net *net = NULL;
    st_status s = st_safetensors_open(path, &f);
    if (s == ST_OK) s = st_resnet_config_from_metadata(f, &cfg);
    if (s == ST_OK) s = st_resnet_build(&cfg, f, &net);
    const char *arch = f ? st_safetensors_metadata_get(f, "arch") : NULL;
    const char *names = f ? st_safetensors_metadata_get(f, "class_names") : NULL;
    if (s == ST_OK && arch) s = st_net_set_name(net, arch);
    if (s == ST_OK && !arch) {
        char name[48];
        snprintf(name, sizeof name, "%sresnet%d", cfg.version == 2 ? "preact_" : "", cfg.depth);
        s = st_net_set_name(net, name);
    }
    if (s == ST_OK && names) s = set_class_names(net, names);
    st_safetensors_close(f);
    if (s != ST_OK) {
        st_net_free(net);
        return st_fail_context(s, "model '%s': ", path);
    }
    *out = net;
    return ST_OK;
}
