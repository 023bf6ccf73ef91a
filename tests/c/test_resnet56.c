/* The shared pretrained ResNet-56 on the 1,000 lossless CIFAR-10 test
 * images against PyTorch (tests/fixtures/resnet56_pytorch.safetensors,
 * written by make_resnet_fixtures.py): logits within 1e-4 relative,
 * exactly the same predicted labels (92.6% accuracy), and the Table-1 taps. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <unistd.h>
#include "strata/dataset.h"
#include "strata/resnet.h"
#include "testing.h"

static char model_path[512], data_path[512], fixture_path[512];

static bool have_data(void)
{
    const char *data = getenv("STRATA_DATA"), *fx = getenv("STRATA_FIXTURES");
    snprintf(model_path, sizeof model_path, "%s/resnet-cifar10-weights/resnet56.safetensors", data ? data : ".");
    snprintf(data_path, sizeof data_path, "%s/cifar-10-batches-bin/test_batch_first1000.bin", data ? data : ".");
    snprintf(fixture_path, sizeof fixture_path, "%s/resnet56_pytorch.safetensors", fx ? fx : "tests/fixtures");
    if (access(model_path, R_OK) || access(data_path, R_OK)) {
        fprintf(stderr, "SKIP: the shared ResNet-56 or CIFAR-10 test batch is missing under STRATA_DATA (%s)\n",
                data ? data : "unset");
        return false;
    }
    return true;
}

static st_tensor *fixture(const char *name, st_dtype dtype)
{
    st_safetensors *f = NULL;
    st_tensor *t = NULL;
    CHECK_OK(st_safetensors_open(fixture_path, &f));
    if (f) CHECK_OK(st_safetensors_load(f, name, dtype, &t));
    st_safetensors_close(f);
    return t;
}

/* Reads images [start, start+n) preprocessed for the net. */
static st_tensor *batch(const st_net *net, const st_dataset *ds, int start, int n)
{
    static uint8_t pixels[100 * 3072];
    int64_t idx[100];
    for (int i = 0; i < n; i++) idx[i] = start + i;
    CHECK_OK(st_dataset_read(ds, idx, n, pixels, NULL, NULL));
    st_tensor *x = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 4, (int64_t[]){n, 32, 32, 3}, &x));
    st_net_preprocess_u8(net, pixels, n, st_f32(x));
    return x;
}

static void test_logits_and_labels_match_pytorch(void)
{
    if (!have_data()) return;
    st_net *net = NULL;
    st_dataset *ds = NULL;
    CHECK_OK(st_resnet_load(model_path, &net));
    CHECK_OK(st_cifar_open(ST_CIFAR10, (const char *const[]){data_path}, 1, &ds));
    st_tensor *want = fixture("logits", ST_F32), *pred = fixture("pred", ST_I64);
    if (!net || !ds || !want || !pred) goto done;
    int same = 0, correct = 0, worst_row = -1;
    double worst = 0;
    for (int start = 0; start < 1000; start += 100) {
        st_tensor *x = batch(net, ds, start, 100), *y = NULL;
        int32_t labels[100];
        int64_t idx[100];
        for (int i = 0; i < 100; i++) idx[i] = start + i;
        CHECK_OK(st_dataset_read(ds, idx, 100, NULL, labels, NULL));
        CHECK_OK(st_net_forward(net, x, NULL, 0));
        CHECK_OK(st_net_output(net, &y));
        for (int i = 0; y && i < 100; i++) {
            const float *got = st_f32(y) + 10 * i, *ref = st_f32(want) + 10 * (start + i);
            double scale = 0, err = 0;
            int best = 0;
            for (int k = 0; k < 10; k++) {
                scale = fmax(scale, fabs(ref[k]));
                err = fmax(err, fabs(got[k] - ref[k]));
                if (got[k] > got[best]) best = k;
            }
            if (err / scale > worst) worst = err / scale, worst_row = start + i;
            same += best == ((int64_t *)pred->data)[start + i];
            correct += best == labels[i];
        }
        st_tensor_free(y);
        st_tensor_free(x);
    }
    fprintf(stderr, "  worst relative logit error %.3g (image %d); %d/1000 labels as PyTorch; accuracy %.1f%%\n",
            worst, worst_row, same, correct / 10.0);
    CHECK(worst <= 1e-4);
    CHECK(same == 1000);
    CHECK(correct == 926);
done:
    st_tensor_free(want);
    st_tensor_free(pred);
    st_dataset_free(ds);
    st_net_free(net);
}

static void test_table1_taps_match_pytorch(void)
{
    if (!have_data()) return;
    st_net *net = NULL;
    st_dataset *ds = NULL;
    CHECK_OK(st_resnet_load(model_path, &net));
    CHECK_OK(st_cifar_open(ST_CIFAR10, (const char *const[]){data_path}, 1, &ds));
    if (!net || !ds) goto done;
    /* Keras names of the paper's Table 1 and the module paths agree */
    CHECK(st_net_find(net, "activation") == st_net_find(net, "stem"));
    CHECK(st_net_find(net, "activation_18") == st_net_find(net, "layer1"));
    CHECK(st_net_find(net, "activation_36") == st_net_find(net, "layer2"));
    CHECK(st_net_find(net, "activation_54") == st_net_find(net, "layer3.8"));
    CHECK(st_net_param_count(net) > 850000 && st_net_param_count(net) < 860000);
    st_tensor *x = batch(net, ds, 0, 8);
    const char *taps[] = {"activation", "activation_18", "activation_36", "activation_54", "pool"};
    const char *keys[] = {"stem", "layer1", "layer2", "layer3"};
    int64_t shapes[4][3] = {{32, 32, 16}, {32, 32, 16}, {16, 16, 32}, {8, 8, 64}};
    CHECK_OK(st_net_forward(net, x, taps, 5));
    for (int t = 0; t < 4; t++) {
        st_tensor *a = NULL;
        char key[64];
        CHECK_OK(st_net_tap(net, taps[t], &a));
        if (!a) continue;
        CHECK(a->ndim == 4 && a->shape[0] == 8 && a->shape[1] == shapes[t][0] && a->shape[3] == shapes[t][2]);
        int c = (int)a->shape[3];
        int64_t per = st_tensor_numel(a) / c;
        snprintf(key, sizeof key, "tap.%s.mean", keys[t]);
        st_tensor *mean = fixture(key, ST_F32);
        snprintf(key, sizeof key, "tap.%s.max", keys[t]);
        st_tensor *mx = fixture(key, ST_F32);
        for (int k = 0; mean && mx && k < c; k++) {
            double s = 0, m = 0;
            for (int64_t i = 0; i < per; i++) {
                s += st_f32(a)[i * c + k];
                m = fmax(m, st_f32(a)[i * c + k]);
            }
            CHECK_CLOSE(s / per, st_f32(mean)[k], 1e-4, 1e-5);
            CHECK_CLOSE(m, st_f32(mx)[k], 1e-4, 1e-5);
        }
        st_tensor_free(mean);
        st_tensor_free(mx);
        st_tensor_free(a);
    }
    st_tensor *pool = NULL, *want = fixture("tap.pool", ST_F32);
    CHECK_OK(st_net_tap(net, "pool", &pool));
    for (int i = 0; pool && want && i < 8 * 64; i++) CHECK_CLOSE(st_f32(pool)[i], st_f32(want)[i], 1e-4, 1e-5);
    st_tensor_free(pool);
    st_tensor_free(want);
    st_tensor_free(x);
done:
    st_dataset_free(ds);
    st_net_free(net);
}

int main(void)
{
    RUN(test_logits_and_labels_match_pytorch);
    RUN(test_table1_taps_match_pytorch);
    return TEST_SUMMARY();
}
