/* Optimisers against the update rules written out in double, hand-worked
 * first steps, and exact save/restore of their state. */
#include <stdlib.h>
#include "strata/optim.h"
#include "strata/rng.h"
#include "testing.h"

static void test_adam_first_step_hand_worked(void)
{
    /* t = 1: m = .1 g, v = .001 g^2, lr_t = lr sqrt(.001) / .1, so the step
     * is lr g sqrt(.001) / (sqrt(.001) |g| + 1e-7). */
    st_optim *o = NULL;
    st_optim_config c = st_optim_adam_defaults();
    CHECK_OK(st_optim_new(&c, 2, &o));
    float theta[2] = {1, -1};
    const float g[2] = {2, -0.5f};
    st_param_block b = {theta, g, 2};
    CHECK_OK(st_optim_step(o, 1, &b));
    double s = sqrt(0.001);
    CHECK_CLOSE(theta[0], 1 - 1e-3 * 2 * s / (s * 2 + 1e-7), 1e-7, 0);
    CHECK_CLOSE(theta[1], -1 + 1e-3 * 0.5 * s / (s * 0.5 + 1e-7), 1e-7, 0);
    CHECK(st_optim_steps(o) == 1);
    st_optim_free(o);
    st_optim_free(NULL);
}

/* Many steps over two blocks against a double-precision reference of the
 * METHOD c.4 rules. */
/* Two blocks, the second long enough for the 8-wide path and a tail. */
static void test_adam_matches_reference(void)
{
    enum { NA = 3, NB = 21, N = NA + NB };
    st_rng r;
    st_rng_seed(&r, 41);
    st_optim_config c = st_optim_adam_defaults();
    c.lr = 0.01f;
    st_optim *o = NULL;
    CHECK_OK(st_optim_new(&c, N, &o));
    float a[NA], bb[NB], ga[NA], gb[NB];
    double th[N], m[N] = {0}, v[N] = {0};
    for (int i = 0; i < N; i++) {
        float v = (float)st_rng_normal(&r);
        if (i < NA)
            a[i] = v;
        else
            bb[i - NA] = v;
        th[i] = v;
    }
    for (int t = 1; t <= 50; t++) {
        for (int i = 0; i < NA; i++) ga[i] = (float)st_rng_normal(&r);
        for (int i = 0; i < NB; i++) gb[i] = (float)((i % 2 ? 1e-3 : 1.0) * st_rng_normal(&r));
        st_param_block blocks[2] = {{a, ga, NA}, {bb, gb, NB}};
        CHECK_OK(st_optim_step(o, 2, blocks));
        double lr_t = 0.01 * sqrt(1 - pow(0.999, t)) / (1 - pow(0.9, t));
        for (int i = 0; i < N; i++) {
            double g = i < NA ? ga[i] : gb[i - NA];
            m[i] = 0.9 * m[i] + 0.1 * g;
            v[i] = 0.999 * v[i] + 0.001 * g * g;
            th[i] -= lr_t * m[i] / (sqrt(v[i]) + 1e-7);
        }
    }
    for (int i = 0; i < N; i++) CHECK_CLOSE(i < NA ? a[i] : bb[i - NA], th[i], 1e-4, 1e-6);
    st_optim_free(o);
}

static void test_sgd_momentum_nesterov_decay(void)
{
    for (int nesterov = 0; nesterov < 2; nesterov++) {
        st_optim_config c = st_optim_sgd_defaults(0.1f);
        c.momentum = 0.9f, c.weight_decay = 0.01f, c.nesterov = nesterov;
        st_optim *o = NULL;
        CHECK_OK(st_optim_new(&c, 1, &o));
        float theta = 1.0f;
        double th = 1.0, buf = 0;
        const double grads[3] = {0.5, -0.2, 0.3};
        for (int t = 0; t < 3; t++) {
            float g = (float)grads[t];
            st_param_block b = {&theta, &g, 1};
            CHECK_OK(st_optim_step(o, 1, &b));
            double d = grads[t] + 0.01 * th;
            buf = 0.9 * buf + d;
            th -= 0.1 * (nesterov ? d + 0.9 * buf : buf);
        }
        CHECK_CLOSE(theta, th, 1e-6, 0);
        st_optim_free(o);
    }
    /* Plain SGD: theta -= lr g, no state. */
    st_optim_config c = st_optim_sgd_defaults(0.5f);
    st_optim *o = NULL;
    CHECK_OK(st_optim_new(&c, 1, &o));
    CHECK(st_optim_slot_count(o) == 0);
    float theta = 1, g = 0.25f;
    st_param_block b = {&theta, &g, 1};
    CHECK_OK(st_optim_step(o, 1, &b));
    CHECK(theta == 0.875f);
    st_optim_free(o);
}

/* Copying the slots and step count into a fresh optimiser continues the
 * run bit for bit. */
static void test_state_save_restore(void)
{
    st_rng r;
    st_rng_seed(&r, 42);
    st_optim_config c = st_optim_adam_defaults();
    st_optim *o = NULL, *o2 = NULL;
    CHECK_OK(st_optim_new(&c, 5, &o));
    CHECK_OK(st_optim_new(&c, 5, &o2));
    float th[5], g[5];
    for (int i = 0; i < 5; i++) th[i] = (float)st_rng_normal(&r);
    for (int t = 0; t < 4; t++) {
        for (int i = 0; i < 5; i++) g[i] = (float)st_rng_normal(&r);
        st_param_block b = {th, g, 5};
        CHECK_OK(st_optim_step(o, 1, &b));
    }
    CHECK(st_optim_slot_count(o) == 2);
    for (int s = 0; s < 2; s++) {
        const char *n1 = NULL, *n2 = NULL;
        float *src = st_optim_slot(o, s, &n1), *dst = st_optim_slot(o2, s, &n2);
        CHECK(strcmp(n1, s ? "v" : "m") == 0 && strcmp(n1, n2) == 0);
        memcpy(dst, src, 5 * sizeof *dst);
    }
    CHECK(st_optim_slot(o, 2, NULL) == NULL);
    CHECK_OK(st_optim_set_steps(o2, st_optim_steps(o)));
    float th2[5];
    memcpy(th2, th, sizeof th);
    for (int t = 0; t < 3; t++) {
        for (int i = 0; i < 5; i++) g[i] = (float)st_rng_normal(&r);
        st_param_block b = {th, g, 5}, b2 = {th2, g, 5};
        CHECK_OK(st_optim_step(o, 1, &b));
        CHECK_OK(st_optim_step(o2, 1, &b2));
    }
    CHECK(memcmp(th, th2, sizeof th) == 0);
    st_optim_reset(o);
    CHECK(st_optim_steps(o) == 0 && st_optim_slot(o, 0, NULL)[3] == 0.0f);
    st_optim_free(o);
    st_optim_free(o2);
}

static void test_errors(void)
{
    st_optim *o = NULL;
    st_optim_config c = st_optim_adam_defaults();
    c.beta1 = 1.0f;
    CHECK_FAILS(st_optim_new(&c, 3, &o), ST_EINVAL, "beta1");
    c = st_optim_sgd_defaults(0.0f);
    CHECK_FAILS(st_optim_new(&c, 3, &o), ST_EINVAL, "learning rate");
    c = st_optim_sgd_defaults(0.1f);
    c.nesterov = true;
    CHECK_FAILS(st_optim_new(&c, 3, &o), ST_EINVAL, "nesterov");
    CHECK(o == NULL);
    c = st_optim_adam_defaults();
    CHECK_OK(st_optim_new(&c, 3, &o));
    float th[2] = {1, 2}, g[2] = {1, 1};
    st_param_block b = {th, g, 2};
    CHECK_FAILS(st_optim_step(o, 1, &b), ST_ESHAPE, "made for 3");
    CHECK(th[0] == 1 && st_optim_steps(o) == 0);
    CHECK_FAILS(st_optim_set_steps(o, -1), ST_EINVAL, "step count");
    st_optim_free(o);
}

int main(void)
{
    RUN(test_adam_first_step_hand_worked);
    RUN(test_adam_matches_reference);
    RUN(test_sgd_momentum_nesterov_decay);
    RUN(test_state_save_restore);
    RUN(test_errors);
    return TEST_SUMMARY();
}
