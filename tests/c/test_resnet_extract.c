/* Streaming extraction: the .npy files and the in-memory arrays hold
 * exactly what separate forwards give, in dataset (or index) order, with
 * batches that do not divide the set, and byte for byte what forwards of
 * the same batches give (the writer thread only moves rows), also for the
 * shared ResNet-56 on CIFAR-10; progress is reported on the calling thread
 * and can stop the run; stopping and write errors leave no partial files. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "strata/extract.h"
#include "strata/npy.h"
#include "strata/resnet.h"
#include "testing.h"

/* n random 10x10 RGB images with labels i % 5: the tiny option-A net's input. */
static st_dataset *small_dataset_n(int64_t n)
{
    st_tensor *img = NULL, *lab = NULL;
    st_tensor_new(ST_U8, 4, (int64_t[]){n, 10, 10, 3}, &img);
    st_tensor_new(ST_I32, 1, (int64_t[]){n}, &lab);
    for (int64_t i = 0; i < n * 300; i++) ((uint8_t *)img->data)[i] = (uint8_t)((i * 7919) % 251);
    for (int64_t i = 0; i < n; i++) ((int32_t *)lab->data)[i] = (int32_t)(i % 5);
    st_dataset *ds = NULL;
    CHECK_OK(st_dataset_from_tensors(img, lab, NULL, 5, &ds));
    st_tensor_free(img);
    st_tensor_free(lab);
    return ds;
}

static st_dataset *small_dataset(void) { return small_dataset_n(10); }

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
static pthread_t caller;
static bool count_progress(void *ctx, int64_t done, int64_t total)
{
    (void)ctx;
    calls++;
    last_done = done;
    CHECK(pthread_equal(pthread_self(), caller)); /* callbacks (Lua ones) need the calling thread */
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
    caller = pthread_self();
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

/* Runs the batches of an extraction (images `order`, `batch` at a time)
 * through the net here and checks that the files in `dir` (when given)
 * and the kept arrays of `r` (when given) hold exactly the same bytes:
 * taps, logits, the argmax of the logits, and the dataset's labels. */
static void check_against_forwards(st_net *net, const st_dataset *ds, const int64_t *order, int64_t total, int batch,
                                   const char *const *taps, int n_taps, const char *dir, const st_extract_result *r)
{
    enum { MAX_OUT = 8 };
    const char *names[MAX_OUT];
    st_tensor *files[MAX_OUT] = {NULL};
    const st_tensor *kept[MAX_OUT] = {NULL};
    int n_out = 0;
    for (int t = 0; t < n_taps; t++) names[n_out++] = taps[t];
    names[n_out++] = "logits";
    names[n_out++] = "pred";
    names[n_out++] = "labels";
    for (int k = 0; k < n_out; k++) {
        if (dir) {
            char path[600];
            snprintf(path, sizeof path, "%s/%s.npy", dir, names[k]);
            CHECK_OK(st_npy_load(path, &files[k]));
            CHECK(files[k] && files[k]->shape[0] == total);
        }
        if (r) CHECK((kept[k] = st_extract_result_get(r, names[k])) != NULL && kept[k]->shape[0] == total);
    }
    int h, w, c;
    st_net_input_shape(net, &h, &w, &c);
    uint8_t *px = malloc((size_t)batch * h * w * c);
    int32_t *labels = malloc((size_t)batch * sizeof *labels);
    int64_t *expect = malloc((size_t)batch * sizeof *expect);
    st_tensor *x = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 4, (int64_t[]){batch, h, w, c}, &x));
    for (int64_t start = 0; px && labels && expect && x && start < total; start += batch) {
        int n = (int)(total - start < batch ? total - start : batch);
        st_tensor *xs = NULL;
        CHECK_OK(st_dataset_read(ds, order + start, n, px, labels, NULL));
        CHECK_OK(st_tensor_slice(x, 0, 0, n, 1, &xs));
        st_net_preprocess_u8(net, px, n, st_f32(xs));
        CHECK_OK(st_net_forward(net, xs, taps, n_taps));
        st_tensor_free(xs);
        for (int k = 0; k < n_out; k++) {
            const st_tensor *whole[2] = {files[k], kept[k]};
            st_tensor *ref = NULL;
            const void *bytes;
            size_t row;
            if (k < n_taps + 1) { /* a tap or the logits: the net's own rows */
                CHECK_OK(k < n_taps ? st_net_tap(net, names[k], &ref) : st_net_output(net, &ref));
                if (!ref) continue;
                bytes = ref->data;
                row = st_tensor_nbytes(ref) / (size_t)n;
            } else { /* pred, labels: from the logits and the dataset */
                st_tensor *logits = NULL;
                CHECK_OK(st_net_output(net, &logits));
                if (!logits) continue;
                int classes = (int)logits->shape[1];
                for (int i = 0; i < n; i++) {
                    const float *z = st_f32(logits) + (size_t)i * classes;
                    int best = 0;
                    for (int j = 1; j < classes; j++)
                        if (z[j] > z[best]) best = j;
                    expect[i] = !strcmp(names[k], "pred") ? best : labels[i];
                }
                st_tensor_free(logits);
                bytes = expect;
                row = sizeof *expect;
            }
            for (int v = 0; v < 2; v++)
                if (whole[v])
                    CHECK(memcmp((const char *)whole[v]->data + (size_t)start * row, bytes, (size_t)n * row) == 0);
            st_tensor_free(ref);
        }
    }
    for (int k = 0; k < n_out; k++) st_tensor_free(files[k]);
    st_tensor_free(x);
    free(px);
    free(labels);
    free(expect);
}

/* Removes the extraction's files from dir, then dir (which must then be
 * empty: no temporary file is left). */
static void remove_outputs(const char *dir, const char *const *taps, int n_taps)
{
    const char *fixed[] = {"logits", "pred", "labels"};
    char path[600];
    for (int k = 0; k < n_taps + 3; k++) {
        snprintf(path, sizeof path, "%s/%s.npy", dir, k < n_taps ? taps[k] : fixed[k - n_taps]);
        unlink(path);
    }
    CHECK(rmdir(dir) == 0);
}

static void test_rows_equal_forwards_of_the_same_batches(void)
{
    st_net *net = tiny_net();
    st_dataset *ds = small_dataset_n(23);
    if (!net || !ds) return;
    CHECK_OK(st_net_set_threads(net, 2));
    const char *taps[] = {"layer2", "pool", "layer1"};
    int64_t order[23], every[23];
    for (int i = 0; i < 23; i++) order[i] = (i * 5) % 23, every[i] = i;
    /* files only (the staging path), files and memory, memory only */
    for (int mode = 0; mode < 3; mode++) {
        char dir[] = "/tmp/strata_test_extract_XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        int batch = mode == 1 ? 4 : 6;
        st_extract_options o = {.taps = taps, .n_taps = 3, .batch = batch, .indices = mode == 1 ? NULL : order,
                                .n_indices = mode == 1 ? 0 : 23, .dir = mode < 2 ? dir : NULL, .in_memory = mode > 0};
        st_extract_result *r = NULL;
        CHECK_OK(st_extract_run(net, ds, &o, mode > 0 ? &r : NULL));
        check_against_forwards(net, ds, mode == 1 ? every : order, 23, batch, taps, 3, mode < 2 ? dir : NULL, r);
        st_extract_result_free(r);
        remove_outputs(dir, taps, 3);
    }
    st_dataset_free(ds);
    st_net_free(net);
}

/* The Table-2 taps of the shared ResNet-56 on 200 shared CIFAR-10 test
 * images, two threads, batches of 96 (the last one 8). */
static void test_resnet56_cifar_rows_equal_forwards(void)
{
    const char *data = getenv("STRATA_DATA");
    char model[600], batch_file[600];
    snprintf(model, sizeof model, "%s/resnet-cifar10-weights/resnet56.safetensors", data ? data : ".");
    snprintf(batch_file, sizeof batch_file, "%s/cifar-10-batches-bin/test_batch_first1000.bin", data ? data : ".");
    if (access(model, R_OK) || access(batch_file, R_OK)) {
        fprintf(stderr, "SKIP: the shared ResNet-56 or CIFAR-10 test batch is missing under STRATA_DATA (%s)\n",
                data ? data : "unset");
        return;
    }
    st_net *net = NULL;
    st_dataset *ds = NULL;
    const char *files[] = {batch_file};
    CHECK_OK(st_resnet_load(model, &net));
    CHECK_OK(st_cifar_open(ST_CIFAR10, files, 1, &ds));
    if (!net || !ds) goto done;
    CHECK_OK(st_net_set_threads(net, 2));
    const char *taps[] = {"pool", "activation", "activation_18", "activation_36", "activation_54"};
    int64_t order[200];
    for (int i = 0; i < 200; i++) order[i] = (i * 7) % 1000;
    char dir[] = "/tmp/strata_test_extract_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    st_extract_options o = {.taps = taps, .n_taps = 5, .batch = 96, .indices = order, .n_indices = 200, .dir = dir};
    CHECK_OK(st_extract_run(net, ds, &o, NULL));
    check_against_forwards(net, ds, order, 200, 96, taps, 5, dir, NULL);
    remove_outputs(dir, taps, 5);
done:
    st_dataset_free(ds);
    st_net_free(net);
}

/* A write that fails on the writer thread (the file size limit) fails the
 * run with the OS's reason and the images being written, and leaves no
 * file behind. */
static void test_write_error_is_reported(void)
{
    st_net *net = tiny_net();
    st_dataset *ds = small_dataset_n(200);
    if (!net || !ds) return;
    char dir[] = "/tmp/strata_test_extract_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const char *taps[] = {"layer2"}; /* 800 bytes per image: 160 KB in all */
    st_extract_options o = {.taps = taps, .n_taps = 1, .batch = 10, .dir = dir};
    struct rlimit old, small = {64 * 1024, 64 * 1024};
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    small.rlim_max = old.rlim_max;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of the signal */
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    CHECK_FAILS(st_extract_run(net, ds, &o, NULL), ST_EIO, "File too large");
    CHECK(strstr(st_error_message(), "extract: writing images ") != NULL);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    signal(SIGXFSZ, old_handler);
    CHECK(rmdir(dir) == 0); /* empty: no partial or temporary files remain */
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
    RUN(test_rows_equal_forwards_of_the_same_batches);
    RUN(test_resnet56_cifar_rows_equal_forwards);
    RUN(test_write_error_is_reported);
    RUN(test_errors_and_stopping_leave_no_files);
    return TEST_SUMMARY();
}
