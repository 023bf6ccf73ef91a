/* The dataset object (dataset.h): CIFAR binary files, memory-mapped, and
 * datasets over in-memory tensors (what image folders load into). */
#include "strata/dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)

/* A run of CIFAR records in one mapping (or buffer). */
typedef struct segment {
    const uint8_t *base;
    int64_t count;
    void *map; /* munmap'ed at free when size > 0 */
    size_t map_size;
    void *owned; /* free'd at free */
} segment;

struct st_dataset {
    int64_t n;
    int h, w, c;
    int n_classes, n_coarse;
    char **names[2]; /* fine, coarse */
    /* CIFAR records */
    int label_bytes; /* 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine) */
    segment *seg;
    int n_seg;
    /* in-memory tensors */
    st_tensor *images, *labels, *masks;
};

static st_status new_dataset(st_dataset **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? ST_OK : st_fail(ST_ENOMEM, "dataset: out of memory");
}

void st_dataset_free(st_dataset *ds)
{
    if (!ds) return;
    for (int i = 0; i < ds->n_seg; i++) {
        if (ds->seg[i].map_size) munmap(ds->seg[i].map, ds->seg[i].map_size);
        free(ds->seg[i].owned);
    }
    for (int k = 0; k < 2; k++) {
        int n = k ? ds->n_coarse : ds->n_classes;
        for (int i = 0; ds->names[k] && i < n; i++) free(ds->names[k][i]);
        free(ds->names[k]);
    }
    free(ds->seg);
    st_tensor_free(ds->images);
    st_tensor_free(ds->labels);
    st_tensor_free(ds->masks);
    free(ds);
}

static size_t record_bytes(const st_dataset *ds) { return (size_t)ds->label_bytes + CIFAR_PIXELS; }

static st_status check_size(const st_dataset *ds, const char *what, size_t size)
{
    size_t record = record_bytes(ds), other = record == 3073 ? 3074 : 3073;
    if (size == 0 || size % record)
        return st_fail(ST_EFORMAT, "cifar '%s': %zu bytes is not a whole, non-zero number of %zu-byte records%s",
                       what, size, record,
                       size && size % other == 0 ? (record == 3073 ? " (a CIFAR-100 file?)" : " (a CIFAR-10 file?)")
                                                 : "");
    return ST_OK;
}

static void add_segment(st_dataset *ds, segment s, size_t size)
{
    s.count = (int64_t)(size / record_bytes(ds));
    ds->seg[ds->n_seg++] = s;
    ds->n += s.count;
}

static st_status map_file(st_dataset *ds, const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return st_fail(ST_EIO, "cifar '%s': cannot open: %s", path, strerror(errno));
    struct stat sb;
    st_status st = fstat(fd, &sb) == 0 ? ST_OK : st_fail(ST_EIO, "cifar '%s': cannot stat: %s", path, strerror(errno));
    if (st == ST_OK) st = check_size(ds, path, (size_t)sb.st_size);
    if (st == ST_OK) {
        size_t size = (size_t)sb.st_size;
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) st = st_fail(ST_EIO, "cifar '%s': cannot map: %s", path, strerror(errno));
        else add_segment(ds, (segment){.base = m, .map = m, .map_size = size}, size);
    }
    close(fd);
    return st;
}

static st_status new_cifar(st_cifar_kind kind, int n_segments, st_dataset **out)
{
    st_dataset *ds;
    ST_TRY(new_dataset(&ds));
    ds->h = ds->w = CIFAR_SIDE;
    ds->c = 3;
    ds->label_bytes = kind == ST_CIFAR100 ? 2 : 1;
    ds->n_classes = kind == ST_CIFAR100 ? 100 : 10;
    ds->n_coarse = kind == ST_CIFAR100 ? 20 : 0;
    ds->seg = calloc((size_t)n_segments, sizeof *ds->seg);
    if (!ds->seg) {
        free(ds);
        return st_fail(ST_ENOMEM, "dataset: out of memory");
    }
    *out = ds;
    return ST_OK;
}

st_status st_cifar_open(st_cifar_kind kind, const char *const *paths, int n_paths, st_dataset **out)
{
    if (n_paths < 1 || !paths) return st_fail(ST_EINVAL, "cifar: no files given");
    st_dataset *ds;
    ST_TRY(new_cifar(kind, n_paths, &ds));
    st_status s = ST_OK;
    for (int i = 0; s == ST_OK && i < n_paths; i++) s = map_file(ds, paths[i]);
    if (s != ST_OK) {
        st_dataset_free(ds);
        return s;
    }
    *out = ds;
    return ST_OK;
}

st_status st_cifar_open_buffer(st_cifar_kind kind, const void *data, size_t size, st_dataset **out)
{
    st_dataset *ds;
    ST_TRY(new_cifar(kind, 1, &ds));
    st_status s = check_size(ds, "buffer", size);
    uint8_t *copy = s == ST_OK ? malloc(size) : NULL;
    if (s == ST_OK && !copy) s = st_fail(ST_ENOMEM, "dataset: out of memory");
    if (s != ST_OK) {
        st_dataset_free(ds);
        return s;
    }
    memcpy(copy, data, size);
    add_segment(ds, (segment){.base = copy, .owned = copy}, size);
    *out = ds;
    return ST_OK;
}

st_status st_dataset_from_tensors(const st_tensor *images, const st_tensor *labels, const st_tensor *masks,
                                  int n_classes, st_dataset **out)
{
    ST_TRY(st_tensor_expect(images, "dataset images", ST_U8, 4, (int64_t[]){-1, -1, -1, -1}));
    int64_t n = images->shape[0];
    ST_TRY(st_tensor_expect(labels, "dataset labels", ST_I32, 1, (int64_t[]){n}));
    if (masks)
        ST_TRY(st_tensor_expect(masks, "dataset masks", ST_U8, 3,
                                (int64_t[]){n, images->shape[1], images->shape[2]}));
    if (n_classes < 1 || images->shape[1] > INT32_MAX || images->shape[2] > INT32_MAX || images->shape[3] > 4 ||
        images->shape[3] < 1)
        return st_fail(ST_EINVAL, "dataset: %d classes and %lld channels (1 to 4 channels, >= 1 class)", n_classes,
                       (long long)images->shape[3]);
    st_dataset *ds;
    ST_TRY(new_dataset(&ds));
    ds->n = n;
    ds->h = (int)images->shape[1], ds->w = (int)images->shape[2], ds->c = (int)images->shape[3];
    ds->n_classes = n_classes;
    st_status s = st_tensor_contiguous(images, &ds->images);
    if (s == ST_OK) s = st_tensor_contiguous(labels, &ds->labels);
    if (s == ST_OK && masks) s = st_tensor_contiguous(masks, &ds->masks);
    if (s != ST_OK) {
        st_dataset_free(ds);
        return s;
    }
    *out = ds;
    return ST_OK;
}

int64_t st_dataset_count(const st_dataset *ds) { return ds->n; }

void st_dataset_image_shape(const st_dataset *ds, int *h, int *w, int *c)
{
    *h = ds->h, *w = ds->w, *c = ds->c;
}

int st_dataset_class_count(const st_dataset *ds) { return ds->n_classes; }
int st_dataset_coarse_class_count(const st_dataset *ds) { return ds->n_coarse; }
bool st_dataset_has_masks(const st_dataset *ds) { return ds->masks != NULL; }

st_status st_dataset_set_class_names(st_dataset *ds, bool coarse, int n, const char *const *names)
{
    int want = coarse ? ds->n_coarse : ds->n_classes;
    if (n != want || want == 0)
        return st_fail(ST_ESHAPE, "dataset: %d %sclass names given for %d classes", n, coarse ? "coarse " : "", want);
    char **copy = calloc((size_t)n, sizeof *copy);
    bool ok = copy != NULL;
    for (int i = 0; ok && i < n; i++) ok = (copy[i] = strdup(names[i] ? names[i] : "")) != NULL;
    if (!ok) {
        for (int i = 0; copy && i < n; i++) free(copy[i]);
        free(copy);
        return st_fail(ST_ENOMEM, "dataset: out of memory");
    }
    char **old = ds->names[coarse];
    for (int i = 0; old && i < n; i++) free(old[i]);
    free(old);
    ds->names[coarse] = copy;
    return ST_OK;
}

const char *st_dataset_class_name(const st_dataset *ds, bool coarse, int i)
{
    int n = coarse ? ds->n_coarse : ds->n_classes;
    return ds->names[coarse] && i >= 0 && i < n ? ds->names[coarse][i] : NULL;
}

static st_status check_index(const st_dataset *ds, int64_t i)
{
    if (i < 0 || i >= ds->n)
        return st_fail(ST_EINVAL, "dataset: index %lld out of range [0, %lld)", (long long)i, (long long)ds->n);
    return ST_OK;
}

static st_status check_label(int64_t i, int label, int n_classes, const char *what)
{
    if (label < 0 || label >= n_classes)
        return st_fail(ST_EFORMAT, "dataset: image %lld has %s label %d, outside [0, %d)", (long long)i, what, label,
                       n_classes);
    return ST_OK;
}

static const uint8_t *cifar_record(const st_dataset *ds, int64_t i)
{
    const size_t record = record_bytes(ds);
    int s = 0;
    while (i >= ds->seg[s].count) i -= ds->seg[s++].count;
    return ds->seg[s].base + (size_t)i * record;
}

/* Planar R, G, B -> interleaved HWC. */
static void cifar_pixels(const uint8_t *planes, uint8_t *hwc)
{
    const int n = CIFAR_SIDE * CIFAR_SIDE;
    for (int p = 0; p < n; p++) {
        hwc[3 * p] = planes[p];
        hwc[3 * p + 1] = planes[n + p];
        hwc[3 * p + 2] = planes[2 * n + p];
    }
}

st_status st_dataset_read(const st_dataset *ds, const int64_t *idx, int64_t n, uint8_t *images, int32_t *labels,
                          int32_t *coarse)
{
    if (coarse && !ds->n_coarse) return st_fail(ST_EINVAL, "dataset: coarse labels requested, the dataset has none");
    const size_t image_bytes = (size_t)ds->h * ds->w * ds->c;
    for (int64_t k = 0; k < n; k++) {
        int64_t i = idx[k];
        ST_TRY(check_index(ds, i));
        int fine;
        if (ds->seg) {
            const uint8_t *r = cifar_record(ds, i);
            fine = r[ds->label_bytes - 1];
            if (coarse) {
                ST_TRY(check_label(i, r[0], ds->n_coarse, "coarse"));
                coarse[k] = r[0];
            }
            if (images) cifar_pixels(r + ds->label_bytes, images + (size_t)k * image_bytes);
        } else {
            fine = ((const int32_t *)ds->labels->data)[i];
            if (images) memcpy(images + (size_t)k * image_bytes, (const uint8_t *)ds->images->data + i * image_bytes,
                               image_bytes);
        }
        ST_TRY(check_label(i, fine, ds->n_classes, "class"));
        if (labels) labels[k] = fine;
    }
    return ST_OK;
}

st_status st_dataset_read_masks(const st_dataset *ds, const int64_t *idx, int64_t n, uint8_t *masks)
{
    if (!ds->masks) return st_fail(ST_EINVAL, "dataset: masks requested, the dataset has none");
    const size_t bytes = (size_t)ds->h * ds->w;
    for (int64_t k = 0; k < n; k++) {
        ST_TRY(check_index(ds, idx[k]));
        memcpy(masks + (size_t)k * bytes, (const uint8_t *)ds->masks->data + (size_t)idx[k] * bytes, bytes);
    }
    return ST_OK;
}
