/* Adam (tf.keras 2.1) and SGD (PyTorch) over flat parameter blocks (see
 * optim.h). */
#include "strata/optim.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct st_optim {
    st_optim_config cfg;
    size_t n;
    int64_t steps;
    int n_slots;
    float *slot[2]; /* Adam: m, v. SGD: velocity (only with momentum) */
};

static const char *const adam_slot_names[2] = {"m", "v"};
static const char *const sgd_slot_names[1] = {"velocity"};

st_optim_config st_optim_adam_defaults(void)
{
    st_optim_config c = {0};
    c.kind = ST_OPTIM_ADAM;
    c.lr = 1e-3f;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-7f;
    return c;
}

st_optim_config st_optim_sgd_defaults(float lr)
{
    st_optim_config c = {0};
    c.kind = ST_OPTIM_SGD;
    c.lr = lr;
    return c;
}

static st_status check_config(const st_optim_config *c)
{
    if (!(c->lr > 0) || !isfinite(c->lr))
        return st_fail(ST_EINVAL, "optimiser: learning rate %g must be positive", c->lr);
    if (c->kind == ST_OPTIM_ADAM) {
        if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
            return st_fail(ST_EINVAL, "adam: beta1 %g and beta2 %g must lie in [0, 1)", c->beta1, c->beta2);
        if (!(c->eps > 0)) return st_fail(ST_EINVAL, "adam: epsilon %g must be positive", c->eps);
        return ST_OK;
    }
    if (c->kind != ST_OPTIM_SGD) return st_fail(ST_EINVAL, "optimiser: unknown kind %d", (int)c->kind);
    if (!(c->momentum >= 0) || !(c->weight_decay >= 0))
        return st_fail(ST_EINVAL, "sgd: momentum %g and weight decay %g must be non-negative", c->momentum,
                       c->weight_decay);
    if (c->nesterov && !(c->momentum > 0)) return st_fail(ST_EINVAL, "sgd: nesterov needs a positive momentum");
    return ST_OK;
}

st_status st_optim_new(const st_optim_config *cfg, size_t n, st_optim **out)
{
    ST_TRY(check_config(cfg));
    st_optim *o = calloc(1, sizeof *o);
    if (!o) return st_fail(ST_ENOMEM, "optimiser: out of memory");
    o->cfg = *cfg;
    o->n = n;
    o->n_slots = cfg->kind == ST_OPTIM_ADAM ? 2 : cfg->momentum > 0 ? 1 : 0;
    for (int i = 0; i < o->n_slots; i++)
        if (!(o->slot[i] = calloc(n ? n : 1, sizeof(float)))) {
            st_optim_free(o);
            return st_fail(ST_ENOMEM, "optimiser: out of memory for %zu parameters", n);
        }
    *out = o;
    return ST_OK;
}

void st_optim_free(st_optim *o)
{
    if (!o) return;
    for (int i = 0; i < 2; i++) free(o->slot[i]);
    free(o);
}

/* adam_block's loop, 8 parameters at a time with the same operations in
 * the same order (no FMA), hence the same bits; returns how many it did. */
__attribute__((target("avx2"))) static size_t adam_avx2(float one_b1, float one_b2, float eps, float lr_t,
                                                         float *theta, const float *g, float *m, float *v, size_t n)
{
    const __m256 b1 = _mm256_set1_ps(one_b1), b2 = _mm256_set1_ps(one_b2), ep = _mm256_set1_ps(eps),
                 lr = _mm256_set1_ps(lr_t);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 gi = _mm256_loadu_ps(g + i);
        __m256 mi = _mm256_loadu_ps(m + i), vi = _mm256_loadu_ps(v + i);
        mi = _mm256_add_ps(mi, _mm256_mul_ps(_mm256_sub_ps(gi, mi), b1));
        vi = _mm256_add_ps(vi, _mm256_mul_ps(_mm256_sub_ps(_mm256_mul_ps(gi, gi), vi), b2));
        const __m256 step = _mm256_div_ps(_mm256_mul_ps(lr, mi), _mm256_add_ps(_mm256_sqrt_ps(vi), ep));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        _mm256_storeu_ps(theta + i, _mm256_sub_ps(_mm256_loadu_ps(theta + i), step));
    }
    return i;
}

/* The TensorFlow ApplyAdam kernel's update order. */
static void adam_block(const st_optim_config *c, float lr_t, float *theta, const float *g, float *m, float *v,
                       size_t n)
{
    const float one_b1 = 1.0f - c->beta1, one_b2 = 1.0f - c->beta2, eps = c->eps;
    size_t i = __builtin_cpu_supports("avx2") ? adam_avx2(one_b1, one_b2, eps, lr_t, theta, g, m, v, n) : 0;
    for (; i < n; i++) {
        m[i] += (g[i] - m[i]) * one_b1;
        v[i] += (g[i] * g[i] - v[i]) * one_b2;
        theta[i] -= lr_t * m[i] / (sqrtf(v[i]) + eps);
    }
}

static void sgd_block(const st_optim_config *c, float *theta, const float *g, float *buf, size_t n)
{
    const float lr = c->lr, mu = c->momentum, wd = c->weight_decay;
    for (size_t i = 0; i < n; i++) {
        float d = g[i] + wd * theta[i];
        if (buf) {
            buf[i] = mu * buf[i] + d;
            d = c->nesterov ? d + mu * buf[i] : buf[i];
        }
        theta[i] -= lr * d;
    }
}

st_status st_optim_step(st_optim *o, size_t count, const st_param_block *blocks)
{
    size_t total = 0;
    for (size_t b = 0; b < count; b++) total += blocks[b].n;
    if (total != o->n)
        return st_fail(ST_ESHAPE, "optimiser: %zu parameter blocks hold %zu values, the optimiser was made for %zu",
                       count, total, o->n);
    o->steps++;
    float lr_t = 0;
    if (o->cfg.kind == ST_OPTIM_ADAM) {
        double t = (double)o->steps;
        lr_t = (float)(o->cfg.lr * sqrt(1.0 - pow(o->cfg.beta2, t)) / (1.0 - pow(o->cfg.beta1, t)));
    }
    size_t off = 0;
    for (size_t b = 0; b < count; b++) {
        const st_param_block *p = &blocks[b];
        if (o->cfg.kind == ST_OPTIM_ADAM)
            adam_block(&o->cfg, lr_t, p->value, p->grad, o->slot[0] + off, o->slot[1] + off, p->n);
        else
            sgd_block(&o->cfg, p->value, p->grad, o->n_slots ? o->slot[0] + off : NULL, p->n);
        off += p->n;
    }
    return ST_OK;
}

size_t st_optim_size(const st_optim *o) { return o->n; }
const st_optim_config *st_optim_get_config(const st_optim *o) { return &o->cfg; }
int64_t st_optim_steps(const st_optim *o) { return o->steps; }

void st_optim_reset(st_optim *o)
{
    for (int i = 0; i < o->n_slots; i++) memset(o->slot[i], 0, o->n * sizeof(float));
    o->steps = 0;
}

int st_optim_slot_count(const st_optim *o) { return o->n_slots; }

float *st_optim_slot(st_optim *o, int i, const char **name)
{
    if (i < 0 || i >= o->n_slots) return NULL;
    if (name) *name = o->cfg.kind == ST_OPTIM_ADAM ? adam_slot_names[i] : sgd_slot_names[i];
    return o->slot[i];
}

st_status st_optim_set_steps(st_optim *o, int64_t steps)
{
    if (steps < 0) return st_fail(ST_EINVAL, "optimiser: step count %lld must be non-negative", (long long)steps);
    o->steps = steps;
    return ST_OK;
}
