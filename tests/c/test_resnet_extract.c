/* Streaming extraction: the .npy files and the in-memory arrays hold
 * exactly what separate forwards give, in dataset (or index) order, with
 * batches that do not divide the set; progress is reported and can stop
 * the run, leaving no partial files. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "strata/extract.h"
#include "strata/npy.h"
#include "strata/resnet.h"
#include "testing.h"

/* 10 random 10x10 RGB images with labels i % 5: the tiny option-A net's input. */
static st_dataset *small_dataset(void)
{
    st_tensor *img = NULL, *lab = NULL;
    st_tensor_new(ST_U8, 4, (int64_t[]){10, 10, 10, 3}, &img);
    st_tensor_new(ST_I32, 1, (int64_t[]){10}, &lab);
    for (int64_t i = 0; i < 3000; i++) ((uint8_t *)img->data)[i] = (uint8_t)((i * 7919) % 251);
    for (int i = 0; i < 10; i++) ((int32_t *)lab->data)[i] = i % 5;
    st_dataset *ds = NULL;
    CHECK_OK(st_dataset_from_tensors(img, lab, NULL, 5, &ds));
    st_tensor_free(img);
    st_tensor_free(lab);
    return ds;
}

static st_net *tiny_net(void)
{
    char path[512];
    const char *fx = getenv("STRATA_FIXTURES");
    snprintf(path, sizeof path, "%s/tiny_cifar_a.safetensors", fx ? fx : "tests/fixtures");
    st_net *net = NULL;
    CHECK_OK(st_resnet_load(path, &net));
    return net;
}

/* The tap `name` of image i, by a forward of that image alone. */
static st_tensor *single(st_net *net, const st_dataset *ds, int64_t i, const char *name)
{
    uint8_t px[300];
    CHECK_OK(st_dataset_read(ds, &i, 1, px, NULL, NULL));
    st_tensor *x = NULL, *t = NULL, *c = NULL;
    st_tensor_new(ST_F32, 4, (int64_t[]){1, 10, 10, 3}, &x);
    st_net_preprocess_u8(net, px, 1, st_f32(x));
    CHECK_OK(st_net_forward(net, x, &name, 1));
    CHECK_OK(st_net_tap(net, name, &t));
    CHECK_OK(st_tensor_clone(t, &c));
    st_tensor_free(t);
    st_tensor_free(x);
    return c;
}

static int calls;
static int64_t last_done;
static bool count_progress(void *ctx, int64_t done, int64_t total)
{
    (void)ctx;
    calls++;
    last_done = done;
    return total > 0;
}
static bool stop_at_once(void *ctx, int64_t done, int64_t total)
{
    (void)ctx, (void)done, (void)total;
    return false;
}

static void test_files_and_memory_match_single_forwards(void)
{
    st_net *net = tiny_net();
    st_dataset *ds = small_dataset();
    if (!net || !ds) return;
    char dir[] = "/tmp/strata_test_extract_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const char *taps[] = {"layer2", "pool"};
    int64_t order[7] = {9, 0, 3, 3, 5, 1, 8};
    st_extract_options o = {.taps = taps, .n_taps = 2, .batch = 3, .indices = order, .n_indices = 7, .dir = dir,
                            .in_memory = true, .progress = count_progress};
    st_extract_result *r = NULL;
    calls = 0;
    CHECK_OK(st_extract_run(net, ds, &o, &r));
    CHECK(calls == 3 && last_done == 7);
    if (!r) goto done;
    const char *names[] = {"layer2", "pool", "logits", "pred", "labels"};
    for (int k = 0; k < 5; k++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s.npy", dir, names[k]);
        st_tensor *file = NULL;
        CHECK_OK(st_npy_load(path, &file));
        const st_tensor *mem = st_extract_result_get(r, names[k]);
        CHECK(file && mem && st_tensor_same_shape(file, mem) && file->shape[0] == 7);
        for (int64_t i = 0; file && mem && i < st_tensor_numel(mem); i++)
            CHECK(st_tensor_get_flat(file, i) == st_tensor_get_flat(mem, i));
        st_tensor_free(file);
        unlink(path);
    }
    const st_tensor *l2 = st_extract_result_get(r, "layer2"), *logits = st_extract_result_get(r, "logits");
    const st_tensor *pred = st_extract_result_get(r, "pred"), *labels = st_extract_result_get(r, "labels");
    CHECK(l2->ndim == 4 && l2->shape[1] == 5 && l2->shape[3] == 8);
    for (int j = 0; j < 7; j++) {
        st_tensor *a = single(net, ds, order[j], "layer2"), *z = single(net, ds, order[j], "logits");
        int64_t per = st_tensor_numel(a);
        for (int64_t i = 0; i < per; i++) CHECK_CLOSE(st_f32(l2)[j * per + i], st_f32(a)[i], 1e-5, 1e-6);
        int best = 0;
        for (int k = 0; k < 5; k++) {
            CHECK_CLOSE(st_f32(logits)[j * 5 + k], st_f32(z)[k], 1e-5, 1e-6);
            if (st_f32(z)[k] > st_f32(z)[best]) best = k;
        }
        CHECK(((int64_t *)pred->data)[j] == best);
        CHECK(((int64_t *)labels->data)[j] == order[j] % 5);
        st_tensor_free(a);
        st_tensor_free(z);
    }
done:
    st_extract_result_free(r);
    rmdir(dir);
    st_dataset_free(ds);
    st_net_free(net);
}

static void test_errors_and_stopping_leave_no_files(void)
{
    st_net *net = tiny_net();
    st_dataset *ds = small_dataset();
    if (!net || !ds) return;
    char dir[] = "/tmp/strata_test_extract_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const char *bad[] = {"nope"}, *twice[] = {"pool", "pool"}, *ok[] = {"pool"};
    st_extract_options o = {.taps = bad, .n_taps = 1, .dir = dir};
    CHECK_FAILS(st_extract_run(net, ds, &o, NULL), ST_EINVAL, "no tap named 'nope'");
    o.taps = twice, o.n_taps = 2;
    CHECK_FAILS(st_extract_run(net, ds, &o, NULL), ST_EINVAL, "twice");
    o.taps = ok, o.n_taps = 1, o.progress = stop_at_once, o.batch = 4;
    CHECK_FAILS(st_extract_run(net, ds, &o, NULL), ST_ESTATE, "stopped after 4 of 10");
    int64_t out_of_range = 10;
    o.progress = NULL, o.indices = &out_of_range, o.n_indices = 1;
    CHECK_FAILS(st_extract_run(net, ds, &o, NULL), ST_EINVAL, "index 10");
    CHECK(rmdir(dir) == 0); /* empty: no partial or temporary files remain */
    st_tensor *img = NULL, *lab = NULL;
    st_tensor_new(ST_U8, 4, (int64_t[]){1, 8, 8, 3}, &img);
    st_tensor_new(ST_I32, 1, (int64_t[]){1}, &lab);
    st_dataset *other = NULL;
    CHECK_OK(st_dataset_from_tensors(img, lab, NULL, 1, &other));
    o.indices = NULL, o.n_indices = 0, o.dir = NULL;
    CHECK_FAILS(st_extract_run(net, other, &o, NULL), ST_ESHAPE, "8x8x3, the net takes 10x10x3");
    st_dataset_free(other);
    st_tensor_free(img);
    st_tensor_free(lab);
    st_dataset_free(ds);
    st_net_free(net);
}

int main(void)
{
    RUN(test_files_and_memory_match_single_forwards);
    RUN(test_errors_and_stopping_leave_no_files);
    return TEST_SUMMARY();
}
