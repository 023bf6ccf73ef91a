/* CIFAR-10/100 readers on small files written here, on the shared real
 * data (values published for the official test batch, see
 * datasets/SOURCES.md), and datasets over in-memory tensors. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <unistd.h>
#include "strata/dataset.h"
#include "testing.h"

/* Pixel value of record r, plane p (R, G, B), position q, in our files. */
static uint8_t pix(int r, int p, int q) { return (uint8_t)(r * 7 + p * 50 + q * 3); }

static char *write_records(int n, int label_bytes, int first_label, int extra_bytes)
{
    static char paths[4][64];
    static int next;
    char *path = paths[next++ % 4];
    snprintf(path, 64, "/tmp/strata_test_cifar_XXXXXX");
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "wb");
    for (int r = 0; r < n; r++) {
        if (label_bytes == 2) fputc((first_label + r) % 20, f); /* coarse */
        fputc((first_label + r) % 10, f);
        for (int p = 0; p < 3; p++)
            for (int q = 0; q < 1024; q++) fputc(pix(r, p, q), f);
    }
    for (int i = 0; i < extra_bytes; i++) fputc(0, f);
    fclose(f);
    return path;
}

static void test_cifar10_records_become_hwc(void)
{
    char *a = write_records(3, 1, 4, 0), *b = write_records(2, 1, 0, 0);
    st_dataset *ds = NULL;
    CHECK_OK(st_cifar_open(ST_CIFAR10, (const char *const[]){a, b}, 2, &ds));
    if (!ds) return;
    CHECK(st_dataset_count(ds) == 5 && st_dataset_class_count(ds) == 10);
    int h, w, c;
    st_dataset_image_shape(ds, &h, &w, &c);
    CHECK(h == 32 && w == 32 && c == 3);
    uint8_t img[2 * 3072];
    int32_t lab[2];
    CHECK_OK(st_dataset_read(ds, (int64_t[]){4, 1}, 2, img, lab, NULL));
    CHECK(lab[0] == 1 && lab[1] == 5); /* record 1 of file b; record 1 of file a */
    for (int q = 0; q < 1024; q++)
        for (int p = 0; p < 3; p++) {
            CHECK(img[3 * q + p] == pix(1, p, q));
            CHECK(img[3072 + 3 * q + p] == pix(1, p, q));
        }
    int32_t coarse[1];
    CHECK_FAILS(st_dataset_read(ds, (int64_t[]){0}, 1, NULL, lab, coarse), ST_EINVAL, "coarse");
    CHECK_FAILS(st_dataset_read(ds, (int64_t[]){5}, 1, img, lab, NULL), ST_EINVAL, "index 5 out of range");
    CHECK(st_dataset_class_name(ds, false, 0) == NULL);
    CHECK_FAILS(st_dataset_set_class_names(ds, false, 2, (const char *const[]){"x", "y"}), ST_ESHAPE, "2 class");
    const char *names[10] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
    CHECK_OK(st_dataset_set_class_names(ds, false, 10, names));
    CHECK(strcmp(st_dataset_class_name(ds, false, 9), "j") == 0);
    st_dataset_free(ds);
    st_dataset_free(NULL);
    unlink(a), unlink(b);
}

static void test_cifar100_coarse_and_fine(void)
{
    char *a = write_records(4, 2, 17, 0);
    st_dataset *ds = NULL;
    CHECK_OK(st_cifar_open(ST_CIFAR100, (const char *const[]){a}, 1, &ds));
    if (!ds) return;
    CHECK(st_dataset_count(ds) == 4 && st_dataset_class_count(ds) == 100 && st_dataset_coarse_class_count(ds) == 20);
    uint8_t img[3072];
    int32_t fine[4], coarse[4];
    CHECK_OK(st_dataset_read(ds, (int64_t[]){0, 1, 2, 3}, 4, NULL, fine, coarse));
    for (int r = 0; r < 4; r++) CHECK(coarse[r] == (17 + r) % 20 && fine[r] == (17 + r) % 10);
    CHECK_OK(st_dataset_read(ds, (int64_t[]){3}, 1, img, NULL, NULL));
    CHECK(img[0] == pix(3, 0, 0) && img[3071] == pix(3, 2, 1023));
    st_dataset_free(ds);
    unlink(a);
}

static void test_sizes_and_labels_are_checked(void)
{
    st_dataset *ds = NULL;
    char *a = write_records(2, 1, 0, 5);
    CHECK_FAILS(st_cifar_open(ST_CIFAR10, (const char *const[]){a}, 1, &ds), ST_EFORMAT, "6151 bytes");
    unlink(a);
    a = write_records(2, 2, 0, 0); /* a CIFAR-100 file read as CIFAR-10 */
    CHECK_FAILS(st_cifar_open(ST_CIFAR10, (const char *const[]){a}, 1, &ds), ST_EFORMAT, "CIFAR-100 file?");
    unlink(a);
    CHECK_FAILS(st_cifar_open(ST_CIFAR10, (const char *const[]){"/nonexistent.bin"}, 1, &ds), ST_EIO,
                "/nonexistent.bin");
    CHECK_FAILS(st_cifar_open_buffer(ST_CIFAR10, "", 0, &ds), ST_EFORMAT, "0 bytes");
    uint8_t rec[3073] = {200};
    CHECK_OK(st_cifar_open_buffer(ST_CIFAR10, rec, sizeof rec, &ds));
    int32_t lab;
    CHECK_FAILS(st_dataset_read(ds, (int64_t[]){0}, 1, NULL, &lab, NULL), ST_EFORMAT, "label 200");
    st_dataset_free(ds);
    CHECK(ds != NULL);
}

static void test_dataset_over_tensors(void)
{
    st_tensor *img = NULL, *lab = NULL, *mask = NULL;
    CHECK_OK(st_tensor_arange(ST_U8, 0, 2 * 2 * 3 * 1, 1, &img));
    st_tensor *img4 = NULL;
    CHECK_OK(st_tensor_reshape(img, 4, (int64_t[]){2, 2, 3, 1}, &img4));
    CHECK_OK(st_tensor_from_data(ST_I32, 1, (int64_t[]){2}, (int32_t[]){1, 0}, 8, &lab));
    CHECK_OK(st_tensor_full(ST_U8, 3, (int64_t[]){2, 2, 3}, 9, &mask));
    st_dataset *ds = NULL;
    CHECK_FAILS(st_dataset_from_tensors(img4, lab, img4, 2, &ds), ST_ESHAPE, "dataset masks");
    CHECK_OK(st_dataset_from_tensors(img4, lab, mask, 2, &ds));
    st_tensor_free(img), st_tensor_free(img4), st_tensor_free(lab), st_tensor_free(mask);
    if (!ds) return;
    uint8_t px[6], m[6];
    int32_t l;
    CHECK_OK(st_dataset_read(ds, (int64_t[]){1}, 1, px, &l, NULL));
    CHECK(l == 0 && px[0] == 6 && px[5] == 11);
    CHECK(st_dataset_has_masks(ds));
    CHECK_OK(st_dataset_read_masks(ds, (int64_t[]){0}, 1, m));
    CHECK(m[0] == 9 && m[5] == 9);
    st_dataset_free(ds);
}

static void test_shared_cifar10_test_batch(void)
{
    const char *data = getenv("STRATA_DATA");
    char path[512];
    snprintf(path, sizeof path, "%s/cifar-10-batches-bin/test_batch_first1000.bin", data ? data : ".");
    if (!data || access(path, R_OK) != 0) {
        fprintf(stderr, "SKIP shared CIFAR-10 data: %s is missing (set STRATA_DATA)\n", path);
        return;
    }
    st_dataset *ds = NULL;
    CHECK_OK(st_cifar_open(ST_CIFAR10, (const char *const[]){path}, 1, &ds));
    if (!ds) return;
    CHECK(st_dataset_count(ds) == 1000);
    int64_t idx[1000];
    int32_t lab[1000];
    for (int i = 0; i < 1000; i++) idx[i] = i;
    static uint8_t img[4 * 3072];
    CHECK_OK(st_dataset_read(ds, idx, 1000, NULL, lab, NULL));
    int first[10] = {3, 8, 8, 0, 6, 6, 1, 6, 3, 1}, counts[10] = {0};
    int want_counts[10] = {103, 89, 100, 103, 90, 86, 112, 102, 106, 109};
    for (int i = 0; i < 10; i++) CHECK(lab[i] == first[i]);
    for (int i = 0; i < 1000; i++) counts[lab[i]]++;
    for (int k = 0; k < 10; k++) CHECK(counts[k] == want_counts[k]);
    CHECK_OK(st_dataset_read(ds, idx, 4, img, NULL, NULL));
    /* first R values of images 0-3 (HWC: R is every third byte) */
    uint8_t r0[4][3] = {{158, 159, 165}, {235, 231, 232}, {158, 158, 139}, {155, 167, 176}};
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 3; k++) CHECK(img[i * 3072 + 3 * k] == r0[i][k]);
    st_dataset_free(ds);
}

int main(void)
{
    RUN(test_cifar10_records_become_hwc);
    RUN(test_cifar100_coarse_and_fine);
    RUN(test_sizes_and_labels_are_checked);
    RUN(test_dataset_over_tensors);
    RUN(test_shared_cifar10_test_batch);
    return TEST_SUMMARY();
}
