/* ResNet builders against PyTorch outputs on tiny random-weight networks
 * (tests/fixtures/make_resnet_fixtures.py), and strict loading: missing,
 * misshapen and unexpected tensors, bad metadata, truncated files. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <unistd.h>
#include "strata/resnet.h"
#include "testing.h"

static const char *fixtures(void)
{
    const char *d = getenv("STRATA_FIXTURES");
    return d ? d : "tests/fixtures";
}

static st_tensor *load_io(const char *name, const char *tensor)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tiny_%s_io.safetensors", fixtures(), name);
    st_safetensors *f = NULL;
    st_tensor *t = NULL;
    CHECK_OK(st_safetensors_open(path, &f));
    if (f) CHECK_OK(st_safetensors_load(f, tensor, ST_F32, &t));
    st_safetensors_close(f);
    return t;
}

/* |a - b| <= 1e-4 * max|b| elementwise. */
static void check_matches(const st_tensor *got, const st_tensor *want, const char *what)
{
    if (!got || !want) {
        CHECK(got && want);
        return;
    }
    CHECK(st_tensor_same_shape(got, want));
    if (!st_tensor_same_shape(got, want)) return;
    double scale = 0, worst = 0;
    int64_t n = st_tensor_numel(want);
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(st_tensor_get_flat(want, i)));
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(st_tensor_get_flat(got, i) - st_tensor_get_flat(want, i)));
    if (!(worst <= 1e-4 * scale)) fprintf(stderr, "  %s: max error %g, scale %g\n", what, worst, scale);
    CHECK(worst <= 1e-4 * scale);
}

static void check_tiny(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tiny_%s.safetensors", fixtures(), name);
    st_net *net = NULL;
    CHECK_OK(st_resnet_load(path, &net));
    if (!net) return;
    st_tensor *x = load_io(name, "input"), *logits = load_io(name, "logits"), *out = NULL;
    const char *taps[] = {"stem", "layer1", "layer2", "pool"};
    CHECK_OK(st_net_forward(net, x, taps, 4));
    CHECK_OK(st_net_output(net, &out));
    check_matches(out, logits, name);
    for (int i = 0; i < 4; i++) {
        char key[64];
        snprintf(key, sizeof key, "tap.%s", taps[i]);
        st_tensor *want = load_io(name, key), *got = NULL;
        CHECK_OK(st_net_tap(net, taps[i], &got));
        check_matches(got, want, key);
        st_tensor_free(want);
        st_tensor_free(got);
    }
    CHECK(strcmp(st_net_class_name(net, 4), "e") == 0);
    st_tensor_free(out);
    st_tensor_free(x);
    st_tensor_free(logits);
    st_net_free(net);
}

static void test_cifar_option_a(void) { check_tiny("cifar_a"); }
static void test_cifar_option_b(void) { check_tiny("cifar_b"); }
static void test_cifar_preactivation(void) { check_tiny("cifar_v2"); }
static void test_imagenet_basic(void) { check_tiny("imagenet_basic"); }
static void test_imagenet_bottleneck_preactivation(void) { check_tiny("imagenet_bottleneck_v2"); }
static void test_imagenet_tensorflow_same_padding(void) { check_tiny("imagenet_same"); }

static void test_tap_names_and_keras_aliases(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tiny_cifar_a.safetensors", fixtures());
    st_net *net = NULL;
    CHECK_OK(st_resnet_load(path, &net));
    if (!net) return;
    /* 2 blocks per stage: 6 blocks, 12 block ReLUs */
    CHECK(st_net_find(net, "activation") == st_net_find(net, "stem"));
    CHECK(st_net_find(net, "activation_4") == st_net_find(net, "layer1"));
    CHECK(st_net_find(net, "activation_4") == st_net_find(net, "layer1.1"));
    CHECK(st_net_find(net, "activation_8") == st_net_find(net, "layer2"));
    CHECK(st_net_find(net, "activation_12") == st_net_find(net, "layer3"));
    CHECK(st_net_find(net, "activation_3") == st_net_find(net, "layer1.1.conv1"));
    CHECK(st_net_find(net, "activation_13") < 0);
    CHECK(st_net_find(net, "layer2.0.shortcut") > 0);
    char buf[8192];
    st_net_summary(net, buf, sizeof buf);
    CHECK(strstr(buf, "tiny_cifar_a: input 10x10x3, 5 classes") != NULL);
    CHECK(strstr(buf, "shortcut A") != NULL && strstr(buf, "activation_12=layer3.1") != NULL);
    st_net_free(net);
}

/* ---- strict loading: rewrite the tiny option-B model with one change */

typedef struct edit {
    const char *drop;        /* tensor to leave out */
    const char *reshape;     /* tensor to write flattened */
    const char *extra;       /* extra tensor to add */
    const char *meta_key;    /* metadata key to change ... */
    const char *meta_value;  /* ... to this value (NULL: remove it) */
} edit;

static st_status save_edited(const edit *e, const char *out_path)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tiny_cifar_b.safetensors", fixtures());
    st_safetensors *f = NULL;
    ST_TRY(st_safetensors_open(path, &f));
    size_t n = st_safetensors_count(f), k = 0, nm = st_safetensors_metadata_count(f), km = 0;
    st_named_tensor *named = calloc(n + 1, sizeof *named);
    st_tensor **owned = calloc(n + 1, sizeof *owned);
    const char **meta = calloc(2 * nm + 2, sizeof *meta);
    for (size_t i = 0; i < n; i++) {
        const char *name = st_safetensors_entry_at(f, i)->name;
        if (e->drop && strcmp(name, e->drop) == 0) continue;
        st_tensor *t = NULL, *flat = NULL;
        st_safetensors_load(f, name, ST_F32, &t);
        if (e->reshape && strcmp(name, e->reshape) == 0) {
            st_tensor_reshape(t, 1, (int64_t[]){-1}, &flat);
            st_tensor_free(t);
            t = flat;
        }
        owned[k] = t;
        named[k].name = name;
        named[k++].tensor = t;
    }
    st_tensor *extra = NULL;
    if (e->extra) {
        st_tensor_zeros(ST_F32, 1, (int64_t[]){3}, &extra);
        named[k].name = e->extra;
        named[k++].tensor = extra;
    }
    bool found = false;
    for (size_t i = 0; i < nm; i++) {
        const char *key, *value;
        st_safetensors_metadata_at(f, i, &key, &value);
        if (e->meta_key && strcmp(key, e->meta_key) == 0) {
            found = true;
            if (!e->meta_value) continue;
            value = e->meta_value;
        }
        meta[2 * km] = key;
        meta[2 * km++ + 1] = value;
    }
    if (e->meta_key && e->meta_value && !found) { /* a new key */
        meta[2 * km] = e->meta_key;
        meta[2 * km++ + 1] = e->meta_value;
    }
    st_status s = st_safetensors_save(out_path, named, k, meta, km);
    for (size_t i = 0; i < k; i++) st_tensor_free(owned[i]);
    st_tensor_free(extra);
    free(named), free(owned), free(meta);
    st_safetensors_close(f);
    return s;
}

static void expect_load_failure(const edit *e, st_status status, const char *needle)
{
    char tmp[] = "/tmp/strata_test_resnet_XXXXXX";
    int fd = mkstemp(tmp);
    CHECK(fd >= 0);
    close(fd);
    CHECK_OK(save_edited(e, tmp));
    st_net *net = NULL;
    CHECK_FAILS(st_resnet_load(tmp, &net), status, needle);
    CHECK(net == NULL);
    unlink(tmp);
}

static void test_loading_validates_everything(void)
{
    expect_load_failure(&(edit){.drop = "layer2.0.shortcut.1.running_var"}, ST_EFORMAT,
                        "tensor 'layer2.0.shortcut.1.running_var' [8] is missing");
    expect_load_failure(&(edit){.reshape = "layer1.0.conv2.weight"}, ST_ESHAPE,
                        "tensor 'layer1.0.conv2.weight': shape [4,4,3,3] expected, file has [144]");
    expect_load_failure(&(edit){.extra = "layer9.0.conv1.weight"}, ST_EFORMAT,
                        "1 unexpected tensor in the file (first: 'layer9.0.conv1.weight')");
    expect_load_failure(&(edit){.meta_key = "num_classes"}, ST_EFORMAT, "'num_classes'");
    expect_load_failure(&(edit){.meta_key = "depth", .meta_value = "21"}, ST_EINVAL, "6n+2");
    expect_load_failure(&(edit){.meta_key = "widths", .meta_value = "4,8"}, ST_EFORMAT, "'widths'");
    expect_load_failure(&(edit){.meta_key = "mean", .meta_value = "0.5,0.5,0.5"}, ST_EFORMAT, "'std'");
    expect_load_failure(&(edit){.meta_key = "version", .meta_value = "3"}, ST_EFORMAT, "'version'");
    expect_load_failure(&(edit){.meta_key = "class_names", .meta_value = "a,b"}, ST_EFORMAT, "2 names for 5");
    /* A valid edit still loads: the test's rewriting is not what fails. */
    char tmp[] = "/tmp/strata_test_resnet_XXXXXX";
    int fd = mkstemp(tmp);
    close(fd);
    CHECK_OK(save_edited(&(edit){.meta_key = "arch", .meta_value = "renamed"}, tmp));
    st_net *net = NULL;
    CHECK_OK(st_resnet_load(tmp, &net));
    CHECK(net && strcmp(st_net_name(net), "renamed") == 0);
    st_net_free(net);
    unlink(tmp);
}

static void test_truncated_file_is_an_error(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tiny_cifar_b.safetensors", fixtures());
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f) return;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char tmp[] = "/tmp/strata_test_resnet_XXXXXX";
    int fd = mkstemp(tmp);
    CHECK(write(fd, buf, n / 2) == (ssize_t)(n / 2));
    close(fd);
    st_net *net = NULL;
    st_status s = st_resnet_load(tmp, &net);
    CHECK(s != ST_OK && net == NULL && strstr(st_error_message(), tmp) != NULL);
    unlink(tmp);
    CHECK_FAILS(st_resnet_load("/nonexistent/model.safetensors", &net), ST_EIO, "model.safetensors");
}

int main(void)
{
    RUN(test_cifar_option_a);
    RUN(test_cifar_option_b);
    RUN(test_cifar_preactivation);
    RUN(test_imagenet_basic);
    RUN(test_imagenet_bottleneck_preactivation);
    RUN(test_imagenet_tensorflow_same_padding);
    RUN(test_tap_names_and_keras_aliases);
    RUN(test_loading_validates_everything);
    RUN(test_truncated_file_is_an_error);
    return TEST_SUMMARY();
}
