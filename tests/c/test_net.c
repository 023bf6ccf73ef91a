/* The net engine on small hand-built graphs, against naive loops and
 * hand-worked values; buffer reuse must never clobber a requested tap. */
#include <stdlib.h>
#include "strata/net.h"
#include "strata/rng.h"
#include "testing.h"

static st_tensor *randn(st_rng *rng, int ndim, const int64_t *shape)
{
    st_tensor *t = NULL;
    st_tensor_new(ST_F32, ndim, shape, &t);
    st_rng_fill_normal(rng, t, 0.0, 1.0);
    return t;
}

static float at4(const st_tensor *t, int n, int y, int x, int c)
{
    return st_f32(t)[((n * t->shape[1] + y) * t->shape[2] + x) * t->shape[3] + c];
}

/* conv (explicit padding, stride) followed by batchnorm and ReLU, naively. */
static double naive_conv_bn(const st_tensor *x, const st_tensor *w, int stride, int pad, const float *g,
                            const float *be, const float *mu, const float *var, double eps, int n, int oy, int ox,
                            int co)
{
    double s = 0;
    for (int kh = 0; kh < w->shape[0]; kh++)
        for (int kw = 0; kw < w->shape[1]; kw++) {
            int iy = oy * stride - pad + kh, ix = ox * stride - pad + kw;
            if (iy < 0 || iy >= x->shape[1] || ix < 0 || ix >= x->shape[2]) continue;
            for (int ci = 0; ci < x->shape[3]; ci++)
                s += (double)at4(x, n, iy, ix, ci) * at4(w, kh, kw, ci, co);
        }
    s = g[co] * (s - mu[co]) / sqrt(var[co] + eps) + be[co];
    return s > 0 ? s : 0;
}

static void test_conv_with_folded_batchnorm_matches_naive(void)
{
    st_rng rng;
    st_rng_seed(&rng, 1);
    st_net *net = NULL;
    CHECK_OK(st_net_new(7, 6, 3, &net));
    st_tensor *w = randn(&rng, 4, (int64_t[]){3, 3, 3, 5}), *x = randn(&rng, 4, (int64_t[]){2, 7, 6, 3});
    st_tensor *bn[4];
    for (int i = 0; i < 4; i++) bn[i] = randn(&rng, 1, (int64_t[]){5});
    for (int i = 0; i < 5; i++) st_f32(bn[3])[i] = fabsf(st_f32(bn[3])[i]) + 0.1f;
    int id;
    CHECK_OK(st_net_add_conv2d(net, "c", 0, w, NULL, 2, 1, true, &id));
    CHECK_OK(st_net_fold_batchnorm(net, id, bn[0], bn[1], bn[2], bn[3], 1e-3));
    CHECK_OK(st_net_forward(net, x, NULL, 0));
    st_tensor *y = NULL;
    CHECK_OK(st_net_output(net, &y));
    CHECK(y && y->ndim == 4 && y->shape[0] == 2 && y->shape[1] == 4 && y->shape[2] == 3 && y->shape[3] == 5);
    for (int n = 0; y && n < 2; n++)
        for (int oy = 0; oy < 4; oy++)
            for (int ox = 0; ox < 3; ox++)
                for (int c = 0; c < 5; c++)
                    CHECK_CLOSE(at4(y, n, oy, ox, c),
                                naive_conv_bn(x, w, 2, 1, st_f32(bn[0]), st_f32(bn[1]), st_f32(bn[2]),
                                              st_f32(bn[3]), 1e-3, n, oy, ox, c),
                                1e-4, 1e-5);
    st_tensor_free(y);
    for (int i = 0; i < 4; i++) st_tensor_free(bn[i]);
    st_tensor_free(w);
    st_tensor_free(x);
    st_net_free(net);
}

static void test_shortcut_a_pool_dense_softmax_by_hand(void)
{
    st_net *net = NULL;
    CHECK_OK(st_net_new(3, 3, 2, &net));
    int sc, pool, mp, logits;
    CHECK_OK(st_net_add_shortcut_a(net, "sc", 0, 2, 4, &sc));     /* [2,2,4]: 1 zero channel each side */
    CHECK_OK(st_net_add_maxpool(net, "mp", 0, 2, 1, 0, &mp));     /* [2,2,2] */
    CHECK_OK(st_net_add_global_avgpool(net, "gap", sc, &pool));   /* [4] */
    float wd[4 * 2] = {1, 0, 0, 1, 2, 0, 0, -1};
    st_tensor *w = NULL, *b = NULL, *x = NULL;
    CHECK_OK(st_tensor_from_data(ST_F32, 2, (int64_t[]){4, 2}, wd, sizeof wd, &w));
    CHECK_OK(st_tensor_from_data(ST_F32, 1, (int64_t[]){2}, (float[]){0.5f, -0.5f}, 8, &b));
    CHECK_OK(st_net_add_dense(net, "fc", pool, w, b, false, &logits));
    CHECK_OK(st_net_add_softmax(net, "prob", logits, NULL));
    CHECK_OK(st_net_add_alias(net, "shortcut", sc));
    /* x[0, y, x, c] = 10*y + x + 100*c */
    CHECK_OK(st_tensor_new(ST_F32, 4, (int64_t[]){1, 3, 3, 2}, &x));
    for (int y = 0; y < 3; y++)
        for (int xx = 0; xx < 3; xx++)
            for (int c = 0; c < 2; c++) st_f32(x)[(y * 3 + xx) * 2 + c] = (float)(10 * y + xx + 100 * c);
    const char *taps[] = {"shortcut", "mp", "gap", "fc"};
    CHECK_OK(st_net_forward(net, x, taps, 4));
    st_tensor *t = NULL;
    CHECK_OK(st_net_tap(net, "shortcut", &t));
    /* rows/cols 0 and 2 of the input; channels [0, c0, c1, 0] */
    float want_sc[2][2][2] = {{{0, 100}, {2, 102}}, {{20, 120}, {22, 122}}};
    for (int y = 0; y < 2; y++)
        for (int xx = 0; xx < 2; xx++) {
            CHECK(at4(t, 0, y, xx, 0) == 0 && at4(t, 0, y, xx, 3) == 0);
            CHECK(at4(t, 0, y, xx, 1) == want_sc[y][xx][0] && at4(t, 0, y, xx, 2) == want_sc[y][xx][1]);
        }
    st_tensor_free(t);
    t = NULL;
    CHECK_OK(st_net_tap(net, "mp", &t)); /* max of a 2x2 window is its bottom-right */
    CHECK(at4(t, 0, 0, 0, 0) == 11 && at4(t, 0, 1, 1, 1) == 122 && at4(t, 0, 1, 0, 0) == 21);
    st_tensor_free(t);
    t = NULL;
    CHECK_OK(st_net_tap(net, "gap", &t)); /* means: 0, 11, 111, 0 */
    CHECK(t->ndim == 2 && t->shape[1] == 4);
    CHECK_CLOSE(st_f32(t)[1], 11, 1e-6, 0);
    CHECK_CLOSE(st_f32(t)[2], 111, 1e-6, 0);
    st_tensor_free(t);
    t = NULL;
    CHECK_OK(st_net_tap(net, "fc", &t)); /* [11*0 + 111*2 + 0.5, 11 - 0.5] */
    CHECK_CLOSE(st_f32(t)[0], 222.5, 1e-6, 0);
    CHECK_CLOSE(st_f32(t)[1], 10.5, 1e-6, 0);
    st_tensor_free(t);
    t = NULL;
    CHECK_OK(st_net_output(net, &t));
    CHECK_CLOSE(st_f32(t)[0], 1.0, 1e-6, 0);
    CHECK_CLOSE(st_f32(t)[1], exp(10.5 - 222.5), 1e-6, 1e-30);
    st_tensor_free(t);
    st_tensor_free(w);
    st_tensor_free(b);
    st_tensor_free(x);
    st_net_free(net);
}

static void test_maxpool_padding_never_wins(void)
{
    st_net *net = NULL;
    CHECK_OK(st_net_new(4, 4, 1, &net));
    CHECK_OK(st_net_add_maxpool(net, "mp", 0, 3, 2, 1, NULL)); /* PyTorch ResNet stem pool: [2,2,1] */
    st_tensor *x = NULL, *y = NULL;
    CHECK_OK(st_tensor_full(ST_F32, 4, (int64_t[]){1, 4, 4, 1}, -5.0, &x));
    st_f32(x)[5] = -1; /* (1,1) */
    CHECK_OK(st_net_forward(net, x, NULL, 0));
    CHECK_OK(st_net_output(net, &y));
    CHECK(y->shape[1] == 2 && y->shape[2] == 2);
    /* windows rows/cols {-1,0,1} and {1,2,3}: all contain (1,1) except none */
    CHECK(st_f32(y)[0] == -1 && st_f32(y)[1] == -1 && st_f32(y)[2] == -1 && st_f32(y)[3] == -1);
    st_f32(x)[5] = -5;
    st_f32(x)[15] = 7; /* (3,3): only the last window */
    CHECK_OK(st_net_forward(net, x, NULL, 0));
    CHECK(st_f32(y)[0] == -5 && st_f32(y)[3] == 7);
    st_tensor_free(y);
    st_tensor_free(x);
    st_net_free(net);
}

/* A chain where each layer could reuse the previous buffers: a requested
 * early tap must survive; with batch changes the plan adapts. */
static void test_requested_taps_survive_buffer_reuse(void)
{
    st_rng rng;
    st_rng_seed(&rng, 2);
    st_net *net = NULL;
    CHECK_OK(st_net_new(5, 5, 2, &net));
    st_tensor *g = NULL, *b = NULL, *m = NULL, *v = NULL;
    CHECK_OK(st_tensor_full(ST_F32, 1, (int64_t[]){2}, 2.0, &g));
    CHECK_OK(st_tensor_full(ST_F32, 1, (int64_t[]){2}, 1.0, &b));
    CHECK_OK(st_tensor_zeros(ST_F32, 1, (int64_t[]){2}, &m));
    CHECK_OK(st_tensor_full(ST_F32, 1, (int64_t[]){2}, 1.0, &v));
    int prev = 0;
    for (int i = 0; i < 6; i++) { /* each step: y = 2x + 1 */
        char name[8];
        snprintf(name, sizeof name, "bn%d", i);
        CHECK_OK(st_net_add_batchnorm(net, name, prev, g, b, m, v, 0.0, false, &prev));
    }
    for (int batch = 3; batch >= 1; batch -= 2) {
        st_tensor *x = randn(&rng, 4, (int64_t[]){batch, 5, 5, 2}), *t1 = NULL, *t4 = NULL, *out = NULL;
        const char *taps[] = {"bn1", "bn4"};
        CHECK_OK(st_net_forward(net, x, taps, 2));
        CHECK_OK(st_net_tap(net, "bn1", &t1));
        CHECK_OK(st_net_tap(net, "bn4", &t4));
        CHECK_OK(st_net_output(net, &out));
        CHECK(t1->shape[0] == batch && out->shape[0] == batch);
        for (int64_t i = 0; i < st_tensor_numel(x); i++) {
            double v0 = st_f32(x)[i], v1 = 4 * v0 + 3, v4 = 32 * v0 + 31, v5 = 64 * v0 + 63;
            CHECK_CLOSE(st_f32(t1)[i], v1, 1e-5, 1e-5);
            CHECK_CLOSE(st_f32(t4)[i], v4, 1e-5, 1e-4);
            CHECK_CLOSE(st_f32(out)[i], v5, 1e-5, 1e-4);
        }
        st_tensor *t2 = NULL;
        CHECK_FAILS(st_net_tap(net, "bn2", &t2), ST_ESTATE, "not requested");
        st_tensor_free(t1), st_tensor_free(t4), st_tensor_free(out), st_tensor_free(x);
    }
    st_tensor_free(g), st_tensor_free(b), st_tensor_free(m), st_tensor_free(v);
    st_net_free(net);
}

static void test_building_and_running_errors(void)
{
    st_net *net = NULL;
    CHECK_FAILS(st_net_new(0, 4, 3, &net), ST_EINVAL, "positive");
    CHECK_OK(st_net_new(4, 4, 3, &net));
    st_tensor *w = NULL, *x = NULL, *y = NULL;
    CHECK_OK(st_tensor_zeros(ST_F32, 4, (int64_t[]){3, 3, 2, 4}, &w));
    CHECK_FAILS(st_net_add_conv2d(net, "c", 0, w, NULL, 1, 1, false, NULL), ST_ESHAPE, "[3,3,3,4]");
    st_tensor_free(w);
    CHECK_OK(st_tensor_zeros(ST_F32, 4, (int64_t[]){3, 3, 3, 4}, &w));
    int c;
    CHECK_OK(st_net_add_conv2d(net, "c", 0, w, NULL, 1, 1, false, &c));
    CHECK_FAILS(st_net_add_conv2d(net, "c", 0, w, NULL, 1, 1, false, NULL), ST_EINVAL, "already taken");
    CHECK_FAILS(st_net_add_conv2d(net, "d", 7, w, NULL, 1, 1, false, NULL), ST_EINVAL, "does not exist");
    CHECK_FAILS(st_net_add_add(net, "sum", 0, c, false, NULL), ST_ESHAPE, "cannot add 'input' [4,4,3]");
    CHECK_FAILS(st_net_add_shortcut_a(net, "sa", c, 2, 5, NULL), ST_EINVAL, "even difference");
    CHECK_FAILS(st_net_fold_batchnorm(net, 0, w, w, w, w, 1e-5), ST_EINVAL, "convolution");
    CHECK_OK(st_tensor_zeros(ST_F32, 4, (int64_t[]){1, 4, 5, 3}, &x));
    CHECK_FAILS(st_net_forward(net, x, NULL, 0), ST_ESHAPE, "[-1,4,4,3]");
    CHECK_FAILS(st_net_output(net, &y), ST_ESTATE, "before");
    st_tensor_free(x);
    CHECK_OK(st_tensor_zeros(ST_F32, 4, (int64_t[]){1, 4, 4, 3}, &x));
    const char *bad[] = {"nope"};
    CHECK_FAILS(st_net_forward(net, x, bad, 1), ST_EINVAL, "'nope'");
    CHECK_OK(st_net_forward(net, x, NULL, 0));
    CHECK_FAILS(st_net_set_class_names(net, 2, (const char *const[]){"a", "b"}), ST_ESHAPE, "2 class names");
    st_tensor_free(x);
    st_tensor_free(w);
    st_net_free(net);
    st_net_free(NULL);
}

static void test_summary_taps_and_preprocessing(void)
{
    st_net *net = NULL;
    CHECK_OK(st_net_new(2, 2, 3, &net));
    int p;
    CHECK_OK(st_net_add_global_avgpool(net, "pool", 0, &p));
    CHECK_OK(st_net_add_alias(net, "features", p));
    CHECK_OK(st_net_set_name(net, "toy"));
    CHECK_OK(st_net_set_class_names(net, 3, (const char *const[]){"r", "g", "b"}));
    CHECK(st_net_tap_count(net) == 3);
    st_net_tap_info info;
    st_net_tap_at(net, 2, &info);
    CHECK(strcmp(info.name, "features") == 0 && strcmp(info.layer, "pool") == 0 && info.ndim == 1 &&
          info.shape[0] == 3);
    char buf[512];
    size_t n = st_net_summary(net, buf, sizeof buf);
    CHECK(n == strlen(buf) && strstr(buf, "toy: input 2x2x3, 3 classes") && strstr(buf, "features=pool"));
    char small[10];
    CHECK(st_net_summary(net, small, sizeof small) == n && strlen(small) == 9);
    CHECK(strcmp(st_net_class_name(net, 2), "b") == 0 && st_net_class_name(net, 3) == NULL);
    float mean[3] = {0.5f, 0.25f, 0}, std[3] = {0.5f, 0.25f, 2};
    CHECK_FAILS(st_net_set_preprocess(net, 1.0 / 255, mean, (float[]){1, 0, 1}), ST_EINVAL, "std");
    CHECK_OK(st_net_set_preprocess(net, 1.0 / 255, mean, std));
    uint8_t px[12] = {255, 0, 51, 0, 255, 255};
    float out[12];
    st_net_preprocess_u8(net, px, 1, out);
    CHECK_CLOSE(out[0], 1.0, 1e-6, 0);   /* (1 - 0.5) / 0.5 */
    CHECK_CLOSE(out[1], -1.0, 1e-6, 0);  /* (0 - 0.25) / 0.25 */
    CHECK_CLOSE(out[2], 0.1, 1e-6, 0);   /* 0.2 / 2 */
    CHECK_CLOSE(out[4], 3.0, 1e-6, 0);
    st_net_free(net);
}

/* Splitting the batch over threads gives the single-thread results. */
static void test_threads_split_the_batch(void)
{
    st_rng rng;
    st_rng_seed(&rng, 3);
    st_net *net = NULL;
    CHECK_OK(st_net_new(9, 7, 3, &net));
    st_tensor *w1 = randn(&rng, 4, (int64_t[]){3, 3, 3, 16}), *w2 = randn(&rng, 4, (int64_t[]){3, 3, 16, 8});
    st_tensor *fc = randn(&rng, 2, (int64_t[]){16, 4}), *x = randn(&rng, 4, (int64_t[]){5, 9, 7, 3});
    int a, b, c, p;
    CHECK_OK(st_net_add_conv2d(net, "a", 0, w1, NULL, 1, 1, true, &a));
    CHECK_OK(st_net_add_conv2d(net, "b", a, w2, NULL, 2, ST_PAD_SAME, true, &b));
    CHECK_OK(st_net_add_shortcut_a(net, "c", b, 1, 16, &c));
    CHECK_OK(st_net_add_global_avgpool(net, "p", c, &p));
    CHECK_OK(st_net_add_dense(net, "fc", p, fc, NULL, false, NULL));
    st_tensor *one = NULL, *many = NULL, *tap1 = NULL, *tapn = NULL;
    const char *taps[] = {"b"};
    CHECK_OK(st_net_forward(net, x, taps, 1));
    CHECK_OK(st_net_output(net, &many));
    CHECK_OK(st_net_tap(net, "b", &tapn));
    CHECK_OK(st_tensor_clone(many, &one));
    CHECK_OK(st_tensor_clone(tapn, &tap1));
    CHECK_FAILS(st_net_set_threads(net, 0), ST_EINVAL, "threads");
    for (int threads = 2; threads <= 7; threads++) { /* 7 > batch: some threads get nothing */
        CHECK_OK(st_net_set_threads(net, threads));
        CHECK(st_net_threads(net) == threads);
        CHECK_OK(st_net_forward(net, x, taps, 1));
        st_tensor_free(many), st_tensor_free(tapn);
        many = tapn = NULL;
        CHECK_OK(st_net_output(net, &many));
        CHECK_OK(st_net_tap(net, "b", &tapn));
        /* GEMMs over fewer rows may round differently: compare closely, not exactly */
        int bad = 0;
        for (int i = 0; i < 20; i++) bad += !(fabs(st_f32(many)[i] - st_f32(one)[i]) <= 1e-5 * (1 + fabs(st_f32(one)[i])));
        for (int64_t i = 0; i < st_tensor_numel(tap1); i++)
            bad += !(fabs(st_f32(tapn)[i] - st_f32(tap1)[i]) <= 1e-5 * (1 + fabs(st_f32(tap1)[i])));
        if (bad) fprintf(stderr, "  %d threads: %d values differ\n", threads, bad);
        CHECK(bad == 0);
    }
    st_tensor_free(one), st_tensor_free(many), st_tensor_free(tap1), st_tensor_free(tapn);
    st_tensor_free(w1), st_tensor_free(w2), st_tensor_free(fc), st_tensor_free(x);
    st_net_free(net);
}

/* A convolution read only by an add is fused into it (one store of conv +
 * bias + the other summand, ReLU). Requesting the conv as a tap unfuses
 * it; the outputs must be the same bit for bit and equal relu(b + r) of
 * the taps. The relu layer "r" runs between conv "b" and the add and could
 * take the buffer of b's input "a" if the fused conv did not keep a alive.
 * A batch of 19 images runs in several groups. */
static void test_fused_conv_add_equals_separate_layers(void)
{
    st_rng rng;
    st_rng_seed(&rng, 4);
    st_tensor *w0 = randn(&rng, 4, (int64_t[]){3, 3, 3, 16}), *w1 = randn(&rng, 4, (int64_t[]){3, 3, 16, 16});
    st_tensor *w2 = randn(&rng, 4, (int64_t[]){3, 3, 16, 16}), *bias = randn(&rng, 1, (int64_t[]){16});
    st_tensor *x = randn(&rng, 4, (int64_t[]){19, 6, 5, 3});
    for (int order = 0; order < 2; order++)
        for (int threads = 1; threads <= 2; threads++) {
            st_net *net = NULL;
            CHECK_OK(st_net_new(6, 5, 3, &net));
            CHECK_OK(st_net_set_threads(net, threads));
            int s, a, b, r;
            CHECK_OK(st_net_add_conv2d(net, "s", 0, w0, NULL, 1, 1, false, &s));
            CHECK_OK(st_net_add_conv2d(net, "a", s, w1, NULL, 1, 1, true, &a));
            CHECK_OK(st_net_add_conv2d(net, "b", a, w2, bias, 1, 1, false, &b));
            CHECK_OK(st_net_add_relu(net, "r", s, &r));
            CHECK_OK(st_net_add_add(net, "sum", order ? r : b, order ? b : r, true, NULL));
            st_tensor *out = NULL, *fused = NULL, *sep = NULL, *tb = NULL, *tr = NULL;
            CHECK_OK(st_net_forward(net, x, NULL, 0));
            CHECK_OK(st_net_output(net, &out));
            CHECK_OK(st_tensor_clone(out, &fused)); /* the next forward may overwrite out */
            st_tensor_free(out);
            const char *taps[] = {"b", "r"};
            CHECK_OK(st_net_forward(net, x, taps, 2));
            CHECK_OK(st_net_output(net, &sep));
            CHECK_OK(st_net_tap(net, "b", &tb));
            CHECK_OK(st_net_tap(net, "r", &tr));
            int differ = 0, wrong = 0;
            for (int64_t i = 0; i < st_tensor_numel(sep); i++) {
                float v = st_f32(tb)[i] + st_f32(tr)[i];
                v = v > 0.0f ? v : 0.0f;
                differ += memcmp(&st_f32(fused)[i], &st_f32(sep)[i], sizeof v) != 0;
                wrong += memcmp(&v, &st_f32(sep)[i], sizeof v) != 0;
            }
            if (differ || wrong) fprintf(stderr, "  order %d, %d threads: %d differ, %d wrong\n", order, threads, differ, wrong);
            CHECK(differ == 0 && wrong == 0);
            /* the fused conv never ran on its own: it is no tap then */
            CHECK_OK(st_net_forward(net, x, NULL, 0));
            st_tensor *none = NULL;
            CHECK_FAILS(st_net_tap(net, "b", &none), ST_ESTATE, "not requested");
            st_tensor_free(fused), st_tensor_free(sep), st_tensor_free(tb), st_tensor_free(tr);
            st_net_free(net);
        }
    st_tensor_free(w0), st_tensor_free(w1), st_tensor_free(w2), st_tensor_free(bias), st_tensor_free(x);
}

int main(void)
{
    RUN(test_threads_split_the_batch);
    RUN(test_fused_conv_add_equals_separate_layers);
    RUN(test_conv_with_folded_batchnorm_matches_naive);
    RUN(test_shortcut_a_pool_dense_softmax_by_hand);
    RUN(test_maxpool_padding_never_wins);
    RUN(test_requested_taps_survive_buffer_reuse);
    RUN(test_building_and_running_errors);
    RUN(test_summary_taps_and_preprocessing);
    return TEST_SUMMARY();
}
