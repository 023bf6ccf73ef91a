/* Checkpoints of the DEC/IDEC trainer: one safetensors file holding every
 * tensor (model, centroids, optimiser slots, p, y_pred_last, the current
 * order, the loss history) and, in its metadata, the schedule state and
 * configuration as JSON. One file, so the tensors and the state that
 * belongs to them are replaced together by a single atomic rename. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dec_internal.h"
#include "strata/json.h"
#include "strata/safetensors.h"

#define FORMAT "strata.dec.checkpoint/1"
#define MAX_TENSORS 48

st_status dec_checkpoint_path(const st_dec *d, const char *path, char *buf, size_t cap)
{
    int n = path ? snprintf(buf, cap, "%s", path)
            : d->dir ? snprintf(buf, cap, "%s/checkpoint.safetensors", d->dir)
                     : -1;
    if (n < 0) return st_fail(ST_ESTATE, "dec '%s': no checkpoint directory was configured", d->name);
    if ((size_t)n >= cap) return st_fail(ST_EINVAL, "dec '%s': checkpoint path too long", d->name);
    return ST_OK;
}

static void write_optim_config(st_json_writer *w, const char *key, const st_optim_config *o)
{
    st_json_key(w, key);
    st_json_begin_object(w);
    st_json_key(w, "kind");
    st_json_write_string(w, o->kind == ST_OPTIM_ADAM ? "adam" : "sgd");
    const char *keys[] = {"lr", "beta1", "beta2", "eps", "momentum", "weight_decay"};
    const float vals[] = {o->lr, o->beta1, o->beta2, o->eps, o->momentum, o->weight_decay};
    for (int i = 0; i < 6; i++) {
        st_json_key(w, keys[i]);
        st_json_write_number(w, vals[i]);
    }
    st_json_key(w, "nesterov");
    st_json_write_bool(w, o->nesterov);
    st_json_end_object(w);
}

/* Every setting that shapes the trajectory (not the name, directory or
 * thread count). */
static void write_config(st_json_writer *w, const st_dec_config *c)
{
    st_json_begin_object(w);
#define INT(f) (st_json_key(w, #f), st_json_write_int(w, c->f))
#define NUM(f) (st_json_key(w, #f), st_json_write_number(w, c->f))
#define BOOL(f) (st_json_key(w, #f), st_json_write_bool(w, c->f))
    INT(clusters);
    st_json_key(w, "filters");
    st_json_begin_array(w);
    for (int i = 0; i < 4; i++) st_json_write_int(w, c->filters[i]);
    st_json_end_array(w);
    NUM(radius);
    BOOL(minimal_padding);
    NUM(alpha);
    INT(batch);
    INT(epochs);
    write_optim_config(w, "pretrain_optim", &c->pretrain_optim);
    INT(kmeans_n_init);
    INT(kmeans_max_iter);
    NUM(kmeans_tol);
    INT(maxiter);
    INT(update_interval);
    NUM(tol);
    NUM(kl_weight);
    NUM(mse_weight);
    BOOL(shuffle);
    write_optim_config(w, "cluster_optim", &c->cluster_optim);
#undef INT
#undef NUM
#undef BOOL
    char seed[24];
    snprintf(seed, sizeof seed, "%" PRIu64, c->seed);
    st_json_key(w, "seed");
    st_json_write_string(w, seed);
    st_json_end_object(w);
}

static void write_state(st_json_writer *w, st_dec *d)
{
    st_json_begin_object(w);
    st_json_key(w, "layer");
    st_json_write_string(w, d->name);
    st_json_key(w, "stage");
    st_json_write_string(w, st_dec_stage_name(d->stage));
    const char *ikeys[] = {"epoch", "step", "ite", "index", "updated_at", "n",
                           "pretrain_steps", "cluster_steps"};
    const int64_t ivals[] = {d->epoch, d->step, d->ite, d->index, d->updated_at, d->n,
                             st_optim_steps(d->opt_pre), st_optim_steps(d->opt_clu)};
    for (size_t i = 0; i < sizeof ivals / sizeof *ivals; i++) {
        st_json_key(w, ikeys[i]);
        st_json_write_int(w, ivals[i]);
    }
    st_json_key(w, "stop");
    st_json_write_string(w, st_dec_stop_name(d->stop));
    st_json_key(w, "delta");
    st_json_write_number(w, d->delta);
    st_json_key(w, "last");
    st_json_begin_array(w);
    for (int i = 0; i < 3; i++) st_json_write_number(w, d->last[i]);
    st_json_end_array(w);
    st_json_key(w, "input");
    st_json_begin_array(w);
    st_json_write_int(w, d->h);
    st_json_write_int(w, d->w);
    st_json_write_int(w, d->c);
    st_json_end_array(w);
    /* u64 words as hex strings: JSON numbers are doubles */
    st_json_key(w, "rng");
    st_json_begin_object(w);
    st_json_key(w, "s");
    st_json_begin_array(w);
    for (int i = 0; i < 4; i++) {
        char hex[20];
        snprintf(hex, sizeof hex, "%016" PRIx64, d->rng.s[i]);
        st_json_write_string(w, hex);
    }
    st_json_end_array(w);
    st_json_key(w, "spare_normal");
    st_json_write_number(w, d->rng.spare_normal);
    st_json_key(w, "has_spare");
    st_json_write_bool(w, d->rng.has_spare);
    st_json_end_object(w);
    st_json_key(w, "config");
    write_config(w, &d->cfg);
    st_json_end_object(w);
}

typedef struct tensor_list {
    st_named_tensor items[MAX_TENSORS];
    st_tensor *owned[MAX_TENSORS];
    char names[MAX_TENSORS][64];
    size_t n, n_owned;
} tensor_list;

static void list_add(tensor_list *l, const char *prefix, const char *name, const st_tensor *t)
{
    snprintf(l->names[l->n], sizeof l->names[0], "%s%s", prefix, name);
    l->items[l->n].name = l->names[l->n];
    l->items[l->n].tensor = t;
    l->n++;
}

/* A non-owning tensor over raw floats or doubles. */
static st_status list_add_raw(tensor_list *l, const char *prefix, const char *name, st_dtype t, int ndim,
                              const int64_t *shape, void *data)
{
    st_tensor *w;
    ST_TRY(st_tensor_wrap(t, ndim, shape, data, NULL, NULL, &w));
    l->owned[l->n_owned++] = w;
    list_add(l, prefix, name, w);
    return ST_OK;
}

static st_status add_optim(tensor_list *l, st_optim *o, const char *prefix)
{
    const int64_t n = (int64_t)st_optim_size(o);
    for (int i = 0; i < st_optim_slot_count(o); i++) {
        const char *slot;
        float *v = st_optim_slot(o, i, &slot);
        ST_TRY(list_add_raw(l, prefix, slot, ST_F32, 1, &n, v));
    }
    return ST_OK;
}

static st_status collect(st_dec *d, tensor_list *l)
{
    for (int i = 0; i < st_cae_tensor_count(d->cae); i++)
        list_add(l, "cae.", st_cae_tensor_name(d->cae, i), st_cae_tensor(d->cae, i));
    list_add(l, "", "centroids", d->mu);
    ST_TRY(add_optim(l, d->opt_pre, "optim.pretrain."));
    ST_TRY(add_optim(l, d->opt_clu, "optim.cluster."));
    if (d->n) {
        list_add(l, "", "perm", d->perm);
        list_add(l, "", "p", d->p);
        list_add(l, "", "y_pred_last", d->y_last);
    }
    if (d->pre_loss.n) {
        const int64_t n = (int64_t)d->pre_loss.n;
        ST_TRY(list_add_raw(l, "", "loss.pretrain", ST_F64, 1, &n, d->pre_loss.v));
    }
    if (d->clu_loss.n) {
        const int64_t shape[2] = {(int64_t)d->clu_loss.n / 3, 3};
        ST_TRY(list_add_raw(l, "", "loss.cluster", ST_F64, 2, shape, d->clu_loss.v));
    }
    return ST_OK;
}

st_status st_dec_save_checkpoint(st_dec *d, const char *path)
{
    char file[4096];
    ST_TRY(dec_checkpoint_path(d, path, file, sizeof file));
    st_json_writer *w;
    ST_TRY(st_json_writer_new(false, &w));
    write_state(w, d);
    const char *text;
    size_t len;
    tensor_list l;
    l.n = l.n_owned = 0;
    st_status s = st_json_writer_text(w, &text, &len);
    if (s == ST_OK) s = collect(d, &l);
    if (s == ST_OK) {
        const char *meta[4] = {"format", FORMAT, "state", text};
        s = st_safetensors_save(file, l.items, l.n, meta, 2);
    }
    for (size_t i = 0; i < l.n_owned; i++) st_tensor_free(l.owned[i]);
    st_json_writer_free(w);
    if (s != ST_OK) return st_fail_context(s, "dec '%s': checkpoint '%s': ", d->name, file);
    return ST_OK;
}

/* ---------------- loading ---------------- */

static st_status value_text(const st_json *v, char *buf, size_t cap)
{
    st_json_writer *w;
    ST_TRY(st_json_writer_new(false, &w));
    st_json_write_value(w, v);
    const char *text;
    size_t len;
    st_status s = st_json_writer_text(w, &text, &len);
    if (s == ST_OK) snprintf(buf, cap, "%s", text);
    st_json_writer_free(w);
    return s;
}

/* Fails naming the first setting where the checkpoint differs. */
static st_status check_config(const st_dec *d, const st_json *stored)
{
    st_json_writer *w;
    ST_TRY(st_json_writer_new(false, &w));
    write_config(w, &d->cfg);
    const char *text;
    size_t len;
    st_json *mine = NULL;
    st_status s = st_json_writer_text(w, &text, &len);
    if (s == ST_OK) s = st_json_parse(text, len, &mine);
    st_json_writer_free(w);
    if (s == ST_OK) s = st_json_expect(stored, ST_JSON_OBJECT, "checkpoint config");
    for (size_t i = 0; s == ST_OK && i < st_json_size(mine); i++) {
        const char *key = st_json_key_at(mine, i);
        char a[512], b[512] = "(missing)";
        s = value_text(st_json_at(mine, i), a, sizeof a);
        const st_json *other = st_json_get(stored, key);
        if (s == ST_OK && other) s = value_text(other, b, sizeof b);
        if (s == ST_OK && strcmp(a, b) != 0)
            s = st_fail(ST_ESTATE, "the checkpoint was made with %s = %s, this trainer has %s", key, b, a);
    }
    st_json_free(mine);
    return s;
}

static st_status load_into(const st_safetensors *f, const char *name, st_tensor *dst)
{
    st_tensor *t = NULL;
    ST_TRY(st_safetensors_load(f, name, dst->dtype, &t));
    st_status s = st_tensor_same_shape(t, dst) ? st_tensor_copy_into(dst, t) : ST_ESHAPE;
    if (s == ST_ESHAPE) {
        char a[64], b[64];
        s = st_fail(ST_ESHAPE, "tensor '%s' has shape %s, expected %s", name, st_shape_str(t->ndim, t->shape, a, 64),
                    st_shape_str(dst->ndim, dst->shape, b, 64));
    }
    st_tensor_free(t);
    return s;
}

static st_status load_optim(const st_safetensors *f, st_optim *o, const char *prefix, int64_t steps)
{
    const int64_t n = (int64_t)st_optim_size(o);
    for (int i = 0; i < st_optim_slot_count(o); i++) {
        const char *slot;
        float *v = st_optim_slot(o, i, &slot);
        char name[64];
        snprintf(name, sizeof name, "%s%s", prefix, slot);
        st_tensor *w;
        ST_TRY(st_tensor_wrap(ST_F32, 1, &n, v, NULL, NULL, &w));
        st_status s = load_into(f, name, w);
        st_tensor_free(w);
        ST_TRY(s);
    }
    return st_optim_set_steps(o, steps);
}

static st_status load_history(const st_safetensors *f, const char *name, int cols, dec_history *h)
{
    if (!st_safetensors_find(f, name)) return ST_OK;
    st_tensor *t = NULL;
    ST_TRY(st_safetensors_load(f, name, ST_F64, &t));
    st_status s = (t->ndim == (cols == 1 ? 1 : 2) && (cols == 1 || t->shape[1] == cols))
                      ? dec_history_push(h, t->data, (size_t)st_tensor_numel(t))
                      : st_fail(ST_ESHAPE, "tensor '%s' has the wrong shape", name);
    st_tensor_free(t);
    return s;
}

static st_status parse_stage(const char *s, st_dec_stage *out)
{
    for (int i = ST_DEC_PRETRAIN; i <= ST_DEC_DONE; i++)
        if (strcmp(s, st_dec_stage_name((st_dec_stage)i)) == 0) {
            *out = (st_dec_stage)i;
            return ST_OK;
        }
    return st_fail(ST_EFORMAT, "unknown stage '%s'", s);
}

static st_status restore(st_dec *d, const st_safetensors *f, const st_json *st)
{
    int64_t v[8];
    const char *ikeys[] = {"epoch", "step", "ite", "index", "updated_at", "n", "pretrain_steps", "cluster_steps"};
    for (int i = 0; i < 8; i++) ST_TRY(st_json_get_int(st, ikeys[i], &v[i]));
    const st_json *input, *rng, *words, *last;
    ST_TRY(st_json_get_typed(st, "input", ST_JSON_ARRAY, &input));
    int64_t hwc[3] = {0, 0, 0};
    for (size_t i = 0; i < 3 && i < st_json_size(input); i++) ST_TRY(st_json_to_int(st_json_at(input, i), "input", &hwc[i]));
    if (st_json_size(input) != 3 || hwc[0] != d->h || hwc[1] != d->w || hwc[2] != d->c)
        return st_fail(ST_ESHAPE, "the checkpoint is for input [%lld,%lld,%lld], this trainer takes [%d,%d,%d]",
                       (long long)hwc[0], (long long)hwc[1], (long long)hwc[2], d->h, d->w, d->c);
    const st_json *cfg;
    ST_TRY(st_json_get_typed(st, "config", ST_JSON_OBJECT, &cfg));
    ST_TRY(check_config(d, cfg));
    const char *stage, *stop;
    ST_TRY(st_json_get_string(st, "stage", &stage));
    ST_TRY(st_json_get_string(st, "stop", &stop));
    ST_TRY(parse_stage(stage, &d->stage));
    d->stop = strcmp(stop, "tol") == 0 ? ST_DEC_TOL : strcmp(stop, "maxiter") == 0 ? ST_DEC_MAXITER : ST_DEC_RUNNING;
    ST_TRY(st_json_get_number(st, "delta", &d->delta));
    ST_TRY(st_json_get_typed(st, "last", ST_JSON_ARRAY, &last));
    for (size_t i = 0; i < 3; i++) d->last[i] = st_json_number(st_json_at(last, i));
    ST_TRY(st_json_get_typed(st, "rng", ST_JSON_OBJECT, &rng));
    ST_TRY(st_json_get_typed(rng, "s", ST_JSON_ARRAY, &words));
    if (st_json_size(words) != 4) return st_fail(ST_EFORMAT, "rng: expected 4 state words");
    for (size_t i = 0; i < 4; i++) {
        const char *hex = st_json_string(st_json_at(words, i));
        if (!hex) return st_fail(ST_EFORMAT, "rng: state words must be hex strings");
        d->rng.s[i] = strtoull(hex, NULL, 16);
    }
    bool spare;
    ST_TRY(st_json_get_number(rng, "spare_normal", &d->rng.spare_normal));
    ST_TRY(st_json_get_bool(rng, "has_spare", &spare));
    d->rng.has_spare = spare;

    d->epoch = (int)v[0];
    d->step = v[1];
    d->ite = v[2];
    d->index = v[3];
    d->updated_at = v[4];
    if (v[5] > 0) {
        ST_TRY(dec_alloc_rows(d, v[5]));
        ST_TRY(load_into(f, "perm", d->perm));
        ST_TRY(load_into(f, "p", d->p));
        ST_TRY(load_into(f, "y_pred_last", d->y_last));
    }
    for (int i = 0; i < st_cae_tensor_count(d->cae); i++) {
        char name[64];
        snprintf(name, sizeof name, "cae.%s", st_cae_tensor_name(d->cae, i));
        ST_TRY(load_into(f, name, st_cae_tensor(d->cae, i)));
    }
    ST_TRY(load_into(f, "centroids", d->mu));
    ST_TRY(load_optim(f, d->opt_pre, "optim.pretrain.", v[6]));
    ST_TRY(load_optim(f, d->opt_clu, "optim.cluster.", v[7]));
    ST_TRY(load_history(f, "loss.pretrain", 1, &d->pre_loss));
    return load_history(f, "loss.cluster", 3, &d->clu_loss);
}

st_status st_dec_load_checkpoint(st_dec *d, const char *path)
{
    char file[4096];
    ST_TRY(dec_checkpoint_path(d, path, file, sizeof file));
    if (d->started) return st_fail(ST_ESTATE, "dec '%s': a checkpoint can only be loaded before training", d->name);
    st_safetensors *f = NULL;
    st_json *state = NULL;
    st_status s = st_safetensors_open(file, &f);
    if (s == ST_OK) {
        const char *fmt = st_safetensors_metadata_get(f, "format");
        const char *text = st_safetensors_metadata_get(f, "state");
        if (!fmt || strcmp(fmt, FORMAT) != 0 || !text)
            s = st_fail(ST_EFORMAT, "not a DEC checkpoint (metadata 'format' is not '%s')", FORMAT);
        else
            s = st_json_parse(text, strlen(text), &state);
    }
    if (s == ST_OK) s = restore(d, f, state);
    st_json_free(state);
    st_safetensors_close(f);
    if (s != ST_OK) {
        /* a half-restored trainer must not train */
        d->stage = ST_DEC_FAILED;
        return st_fail_context(s, "dec '%s': checkpoint '%s': ", d->name, file);
    }
    d->started = true;
    return ST_OK;
}
