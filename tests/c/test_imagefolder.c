/* Image resizing against hand-worked values, PNG round trips, a BMP
 * written byte by byte, and image-folder datasets with masks. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "strata/image.h"
#include "testing.h"

static void test_area_resize_by_hand(void)
{
    /* 4x4 -> 2x2: means of 2x2 blocks */
    uint8_t src[16], dst[4];
    for (int i = 0; i < 16; i++) src[i] = (uint8_t)(i * 10);
    CHECK_OK(st_image_resize_u8(src, 4, 4, 1, dst, 2, 2, ST_RESIZE_AREA));
    CHECK(dst[0] == 25 && dst[1] == 45 && dst[2] == 105 && dst[3] == 125);
    /* 1x3 -> 1x2: [0,1.5) and [1.5,3) of [0, 30, 60] = 10 and 50 */
    uint8_t row[3] = {0, 30, 60}, out[2];
    CHECK_OK(st_image_resize_u8(row, 1, 3, 1, out, 1, 2, ST_RESIZE_AREA));
    CHECK(out[0] == 10 && out[1] == 50);
}

static void test_bilinear_resize_by_hand(void)
{
    /* [0, 100] -> 4 samples at x = 0, 0.25, 0.75, 1 (clamped): PyTorch's
     * align_corners=False gives 0, 25, 75, 100 */
    uint8_t row[2] = {0, 100}, out[4];
    CHECK_OK(st_image_resize_u8(row, 1, 2, 1, out, 1, 4, ST_RESIZE_BILINEAR));
    CHECK(out[0] == 0 && out[1] == 25 && out[2] == 75 && out[3] == 100);
    /* RGB channels stay separate; same size copies */
    uint8_t rgb[6] = {1, 2, 3, 4, 5, 6}, same[6];
    CHECK_OK(st_image_resize_u8(rgb, 1, 2, 3, same, 1, 2, ST_RESIZE_BILINEAR));
    CHECK(memcmp(rgb, same, 6) == 0);
    st_tensor *t = NULL, *r = NULL;
    CHECK_OK(st_tensor_zeros(ST_U8, 3, (int64_t[]){2, 2, 5}, &t));
    CHECK_FAILS(st_image_resize(t, 3, 3, ST_RESIZE_AREA, &r), ST_EINVAL, "at most 4 channels");
    st_tensor_free(t);
}

static void write_bmp_2x2(const char *path)
{
    /* pixels (top row first): red, green / blue, white; BMP stores rows
     * bottom-up as B, G, R, each row padded to 4 bytes */
    uint8_t b[70] = {'B', 'M', 70, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 1, 0,
                     24, 0, 0, 0, 0, 0, 16, 0, 0, 0};
    uint8_t rows[16] = {255, 0, 0, 255, 255, 255, 0, 0, /* bottom: blue, white */
                        0, 0, 255, 0, 255, 0, 0, 0};    /* top: red, green */
    memcpy(b + 54, rows, 16);
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, sizeof b, f);
    fclose(f);
}

static st_tensor *solid(int h, int w, int c, uint8_t v)
{
    st_tensor *t = NULL;
    st_tensor_full(ST_U8, 3, (int64_t[]){h, w, c}, v, &t);
    return t;
}

static void save(const char *dir, const char *name, st_tensor *img)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK_OK(st_image_save_png(path, img));
    st_tensor_free(img);
}

static void test_png_round_trip_and_bmp(void)
{
    char dir[] = "/tmp/strata_test_image_XXXXXX", path[512];
    CHECK(mkdtemp(dir) != NULL);
    st_tensor *img = NULL, *back = NULL;
    CHECK_OK(st_tensor_new(ST_U8, 3, (int64_t[]){3, 5, 3}, &img));
    for (int i = 0; i < 45; i++) ((uint8_t *)img->data)[i] = (uint8_t)(i * 5);
    snprintf(path, sizeof path, "%s/x.png", dir);
    CHECK_OK(st_image_save_png(path, img));
    CHECK_OK(st_image_load(path, 0, &back));
    CHECK(back && st_tensor_same_shape(img, back) && memcmp(img->data, back->data, 45) == 0);
    st_tensor_free(back);
    back = NULL;
    CHECK_OK(st_image_load(path, 1, &back)); /* to grayscale */
    CHECK(back && back->shape[2] == 1);
    st_tensor_free(back);
    unlink(path);
    snprintf(path, sizeof path, "%s/y.bmp", dir);
    write_bmp_2x2(path);
    back = NULL;
    CHECK_OK(st_image_load(path, 3, &back));
    uint8_t want[12] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255};
    CHECK(back && back->shape[0] == 2 && back->shape[1] == 2 && memcmp(back->data, want, 12) == 0);
    st_tensor_free(back);
    unlink(path);
    snprintf(path, sizeof path, "%s/bad.png", dir);
    FILE *f = fopen(path, "wb");
    fputs("not a png", f);
    fclose(f);
    CHECK_FAILS(st_image_load(path, 3, &back), ST_EFORMAT, "cannot decode");
    unlink(path);
    CHECK_FAILS(st_image_load("/nonexistent.png", 3, &back), ST_EIO, "/nonexistent.png");
    st_tensor_free(img);
    rmdir(dir);
}

static void test_folder_with_masks(void)
{
    char root[] = "/tmp/strata_test_folder_XXXXXX", p[600], m[600];
    CHECK(mkdtemp(root) != NULL);
    const char *dirs[] = {"img", "img/cat", "img/dog", "img/.hidden", "mask", "mask/cat", "mask/dog"};
    for (int i = 0; i < 7; i++) {
        snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
        mkdir(p, 0700);
    }
    snprintf(p, sizeof p, "%s/img/cat", root);
    save(p, "a.png", solid(8, 8, 3, 200));
    snprintf(p, sizeof p, "%s/img/cat/b.bmp", root);
    write_bmp_2x2(p);
    snprintf(p, sizeof p, "%s/img/dog", root);
    save(p, "c.PNG", solid(6, 2, 1, 77)); /* grayscale, becomes R = G = B */
    snprintf(p, sizeof p, "%s/img/dog/notes.txt", root);
    FILE *f = fopen(p, "w");
    fputs("not an image", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/img", root);
    snprintf(m, sizeof m, "%s/mask", root);
    st_imagefolder_options o = {4, 4, 3, ST_RESIZE_AREA, m};
    st_dataset *ds = NULL;
    CHECK_FAILS(st_imagefolder_open(p, &o, &ds), ST_EIO, "mask/cat/a.png");
    char md[600];
    snprintf(md, sizeof md, "%s/mask/cat", root);
    save(md, "a.png", solid(8, 8, 1, 255));
    save(md, "b.png", solid(2, 2, 1, 0));
    snprintf(md, sizeof md, "%s/mask/dog", root);
    save(md, "c.png", solid(6, 2, 1, 128));
    CHECK_OK(st_imagefolder_open(p, &o, &ds));
    if (ds) {
        CHECK(st_dataset_count(ds) == 3 && st_dataset_class_count(ds) == 2);
        CHECK(strcmp(st_dataset_class_name(ds, false, 1), "dog") == 0);
        uint8_t img[3 * 48], mask[3 * 16];
        int32_t lab[3];
        int64_t idx[3] = {0, 1, 2};
        CHECK_OK(st_dataset_read(ds, idx, 3, img, lab, NULL));
        CHECK(lab[0] == 0 && lab[1] == 0 && lab[2] == 1);
        CHECK(img[0] == 200 && img[47] == 200);
        /* the 2x2 BMP doubled by the area filter: top-left block red */
        CHECK(img[48] == 255 && img[49] == 0 && img[48 + 5 * 3 + 1] == 0);
        CHECK(img[96] == 77 && img[97] == 77 && img[98] == 77);
        CHECK_OK(st_dataset_read_masks(ds, idx, 3, mask));
        CHECK(mask[0] == 255 && mask[16] == 0 && mask[47] == 128);
        st_dataset_free(ds);
    }
    o.mask_dir = NULL;
    o.channels = 2;
    CHECK_FAILS(st_imagefolder_open(p, &o, &ds), ST_EINVAL, "channels");
    o.channels = 1;
    snprintf(md, sizeof md, "%s/mask/cat", root); /* class folders without images */
    CHECK_FAILS(st_imagefolder_open(md, &o, &ds), ST_EFORMAT, "no class subfolders");
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    RUN(test_area_resize_by_hand);
    RUN(test_bilinear_resize_by_hand);
    RUN(test_png_round_trip_and_bmp);
    RUN(test_folder_with_masks);
    return TEST_SUMMARY();
}
