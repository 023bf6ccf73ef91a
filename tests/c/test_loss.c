/* Losses against hand-worked values, Keras clipping semantics and finite
 * differences. */
#include <stdlib.h>
#include "strata/loss.h"
#include "strata/rng.h"
#include "testing.h"

static void test_mse(void)
{
    const float pred[4] = {1, 2, 3, 4}, target[4] = {0, 2, 5, 3};
    float grad[4];
    /* errors (1, 0, -2, 1): mean square 6/4; grad = w 2 e / 4. */
    CHECK_CLOSE(st_loss_mse(4, pred, target, 0.5f, grad), 1.5, 1e-12, 0);
    const float want[4] = {0.25f, 0, -0.5f, 0.25f};
    for (int i = 0; i < 4; i++) CHECK_CLOSE(grad[i], want[i], 1e-7, 0);
    CHECK_CLOSE(st_loss_mse(4, pred, target, 1.0f, NULL), 1.5, 1e-12, 0);
    /* Finite differences (the loss is quadratic: exact up to rounding). */
    float p2[4] = {1, 2, 3, 4};
    for (int i = 0; i < 4; i++) {
        const float h = 0.25f, keep = p2[i];
        p2[i] = keep + h;
        double lp = st_loss_mse(4, p2, target, 0.5f, NULL);
        p2[i] = keep - h;
        double lm = st_loss_mse(4, p2, target, 0.5f, NULL);
        p2[i] = keep;
        CHECK_CLOSE(grad[i], 0.5 * (lp - lm) / (2 * h), 1e-6, 1e-9);
    }
}

static void test_kld_hand_worked(void)
{
    /* Row 0: p = (.25, .75), q = (.5, .5): .25 log .5 + .75 log 1.5.
     * Row 1: p = (1, 0) clipped to (1, 1e-7), q = (.8, .2):
     * log(1/.8) + 1e-7 log(1e-7/.2). Mean over the 2 rows. */
    const float p[4] = {0.25f, 0.75f, 1, 0}, q[4] = {0.5f, 0.5f, 0.8f, 0.2f};
    double r0 = 0.25 * log(0.5) + 0.75 * log(1.5);
    double r1 = log(1 / 0.8) + 1e-7 * log(1e-7 / 0.2);
    float grad[4];
    CHECK_CLOSE(st_loss_kld(2, 2, p, q, 0.1f, grad), (r0 + r1) / 2, 1e-6, 1e-9);
    /* grad = -w p~ / (q B) */
    CHECK_CLOSE(grad[0], -0.1 * 0.25 / (0.5 * 2), 1e-6, 0);
    CHECK_CLOSE(grad[1], -0.1 * 0.75 / (0.5 * 2), 1e-6, 0);
    CHECK_CLOSE(grad[2], -0.1 * 1 / (0.8 * 2), 1e-6, 0);
    CHECK_CLOSE(grad[3], -0.1 * 1e-7 / (0.2 * 2), 1e-5, 0);
}

static void test_kld_clip_semantics(void)
{
    /* q below 1e-7 is clipped: the loss uses 1e-7 and no gradient passes;
     * q exactly at the bounds still passes (TF's clip gradient). */
    const float p[3] = {0.5f, 0.25f, 0.25f}, q[3] = {1e-9f, ST_KLD_EPSILON, 1.0f};
    float grad[3];
    double want = 0.5 * log(0.5 / 1e-7) + 0.25 * log(0.25 / 1e-7) + 0.25 * log(0.25);
    CHECK_CLOSE(st_loss_kld(1, 3, p, q, 1.0f, grad), want, 1e-6, 0);
    CHECK(grad[0] == 0.0f);
    CHECK_CLOSE(grad[1], -0.25 / 1e-7, 1e-6, 0);
    CHECK_CLOSE(grad[2], -0.25, 1e-6, 0);
    /* Finite differences inside the clip range. */
    st_rng r;
    st_rng_seed(&r, 31);
    float pp[12], qq[12], g[12];
    for (int i = 0; i < 12; i++) {
        pp[i] = (float)(0.05 + 0.9 * st_rng_uniform(&r));
        qq[i] = (float)(0.05 + 0.9 * st_rng_uniform(&r));
    }
    st_loss_kld(3, 4, pp, qq, 0.1f, g);
    for (int i = 0; i < 12; i++) {
        float keep = qq[i];
        const float h = 1e-3f;
        qq[i] = keep + h;
        double lp = st_loss_kld(3, 4, pp, qq, 0.1f, NULL);
        qq[i] = keep - h;
        double lm = st_loss_kld(3, 4, pp, qq, 0.1f, NULL);
        qq[i] = keep;
        CHECK_CLOSE(g[i], 0.1 * (lp - lm) / (2 * h), 1e-2, 1e-5);
    }
}

static void test_cross_entropy(void)
{
    /* logits (0, ln 3): softmax (.25, .75); label 1: loss -ln .75. */
    const float logits[4] = {0, (float)log(3.0), 2, 2};
    const int32_t labels[2] = {1, 0};
    float grad[4];
    double loss = 0;
    CHECK_OK(st_loss_cross_entropy(2, 2, logits, labels, 1.0f, grad, &loss));
    CHECK_CLOSE(loss, (-log(0.75) + log(2.0)) / 2, 1e-6, 0);
    CHECK_CLOSE(grad[0], 0.25 / 2, 1e-6, 0);
    CHECK_CLOSE(grad[1], -0.25 / 2, 1e-6, 0);
    CHECK_CLOSE(grad[2], -0.5 / 2, 1e-6, 0);
    CHECK_CLOSE(grad[3], 0.5 / 2, 1e-6, 0);
    /* Large logits do not overflow. */
    const float big[2] = {1000, 0};
    const int32_t l0[1] = {1};
    CHECK_OK(st_loss_cross_entropy(1, 2, big, l0, 1.0f, NULL, &loss));
    CHECK_CLOSE(loss, 1000, 1e-9, 0);
    /* Finite differences on random logits. */
    st_rng r;
    st_rng_seed(&r, 32);
    float lg[12], g[12];
    const int32_t lab[3] = {2, 0, 3};
    for (int i = 0; i < 12; i++) lg[i] = (float)(2 * st_rng_normal(&r));
    CHECK_OK(st_loss_cross_entropy(3, 4, lg, lab, 0.5f, g, &loss));
    for (int i = 0; i < 12; i++) {
        float keep = lg[i];
        const float h = 1e-2f;
        double lp, lm;
        lg[i] = keep + h;
        CHECK_OK(st_loss_cross_entropy(3, 4, lg, lab, 0.5f, NULL, &lp));
        lg[i] = keep - h;
        CHECK_OK(st_loss_cross_entropy(3, 4, lg, lab, 0.5f, NULL, &lm));
        lg[i] = keep;
        CHECK_CLOSE(g[i], 0.5 * (lp - lm) / (2 * h), 1e-3, 1e-5);
    }
    const int32_t bad[2] = {0, 2};
    CHECK_FAILS(st_loss_cross_entropy(2, 2, logits, bad, 1.0f, grad, &loss), ST_EINVAL, "label 2 of row 1");
}

int main(void)
{
    RUN(test_mse);
    RUN(test_kld_hand_worked);
    RUN(test_kld_clip_semantics);
    RUN(test_cross_entropy);
    return TEST_SUMMARY();
}
