/* Image files (decode via stb_image, PNG via stb_image_write) and
 * image-folder datasets (see image.h). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "stb_image.h"
#include "stb_image_write.h"
#include "strata/image.h"

st_status st_image_load(const char *path, int channels, st_tensor **out)
{
    if (channels != 0 && channels != 1 && channels != 3)
        return st_fail(ST_EINVAL, "image '%s': %d channels requested (0, 1 or 3)", path, channels);
    int w, h, n;
    unsigned char *px = stbi_load(path, &w, &h, &n, channels);
    if (!px) {
        if (access(path, R_OK) != 0) return st_fail(ST_EIO, "image '%s': cannot read: %s", path, strerror(errno));
        return st_fail(ST_EFORMAT, "image '%s': cannot decode: %s", path, stbi_failure_reason());
    }
    int c = channels ? channels : n;
    st_status s = st_tensor_from_data(ST_U8, 3, (int64_t[]){h, w, c}, px, (size_t)h * w * c, out);
    stbi_image_free(px);
    return s;
}

st_status st_image_save_png(const char *path, const st_tensor *image)
{
    ST_TRY(st_tensor_expect(image, "png image", ST_U8, 3, (int64_t[]){-1, -1, -1}));
    int64_t h = image->shape[0], w = image->shape[1], c = image->shape[2];
    if (h < 1 || w < 1 || (c != 1 && c != 3 && c != 4) || h > INT32_MAX / 4 || w * c > INT32_MAX)
        return st_fail(ST_EINVAL, "png '%s': a %lldx%lldx%lld image cannot be written (1, 3 or 4 channels)", path,
                       (long long)h, (long long)w, (long long)c);
    st_tensor *img = NULL;
    ST_TRY(st_tensor_contiguous(image, &img));
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    st_status s = tmp ? ST_OK : st_fail(ST_ENOMEM, "png: out of memory");
    if (s == ST_OK) {
        snprintf(tmp, n + 16, "%s.tmp%ld", path, (long)getpid());
        if (!stbi_write_png(tmp, (int)w, (int)h, (int)c, img->data, (int)(w * c)))
            s = st_fail(ST_EIO, "png '%s': cannot write", tmp);
        else if (rename(tmp, path) != 0)
            s = st_fail(ST_EIO, "png '%s': cannot rename into place: %s", path, strerror(errno));
        if (s != ST_OK) unlink(tmp);
    }
    free(tmp);
    st_tensor_free(img);
    return s;
}

/* ---------------------------------------------------------------- listing */

typedef struct names {
    char **v;
    int n, cap;
} names;

static void free_names(names *l)
{
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png") ||
                   !strcasecmp(dot, ".bmp"));
}

/* Sorted non-hidden entries of dir that are directories (want_dirs) or
 * image files. */
static st_status list_dir(const char *dir, bool want_dirs, names *out)
{
    DIR *d = opendir(dir);
    if (!d) return st_fail(ST_EIO, "image folder '%s': cannot open: %s", dir, strerror(errno));
    st_status s = ST_OK;
    struct dirent *e;
    char path[4096];
    while (s == ST_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(path, &sb) != 0) continue;
        if (want_dirs ? !S_ISDIR(sb.st_mode) : !(S_ISREG(sb.st_mode) && is_image_name(e->d_name))) continue;
        if (out->n == out->cap) {
            int cap = out->cap ? 2 * out->cap : 64;
            char **grown = realloc(out->v, (size_t)cap * sizeof *grown);
            if (!grown) {
                s = st_fail(ST_ENOMEM, "image folder: out of memory");
                break;
            }
            out->v = grown;
            out->cap = cap;
        }
        if (!(out->v[out->n] = strdup(e->d_name))) s = st_fail(ST_ENOMEM, "image folder: out of memory");
        else out->n++;
    }
    closedir(d);
    if (s == ST_OK && out->n) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return s;
}

/* ---------------------------------------------------------------- loading */

/* Decodes `path` as `channels` and resizes it into dst [h, w, channels]. */
static st_status load_into(const char *path, int channels, int h, int w, st_resize_filter f, uint8_t *dst)
{
    st_tensor *img = NULL;
    ST_TRY(st_image_load(path, channels, &img));
    st_status s = st_image_resize_u8(img->data, (int)img->shape[0], (int)img->shape[1], channels, dst, h, w, f);
    st_tensor_free(img);
    return s;
}

static st_status mask_path(const st_imagefolder_options *o, const char *cls, const char *file, char *out, size_t cap)
{
    const char *dot = strrchr(file, '.');
    int n = snprintf(out, cap, "%s/%s/%.*s.png", o->mask_dir, cls, (int)(dot - file), file);
    return n > 0 && (size_t)n < cap ? ST_OK : st_fail(ST_EINVAL, "image folder: mask path too long");
}

typedef struct folder {
    names classes;
    names *files; /* per class */
    int64_t total;
} folder;

static void free_folder(folder *f)
{
    for (int i = 0; f->files && i < f->classes.n; i++) free_names(&f->files[i]);
    free(f->files);
    free_names(&f->classes);
}

static st_status scan(const char *dir, folder *f)
{
    ST_TRY(list_dir(dir, true, &f->classes));
    if (f->classes.n == 0) return st_fail(ST_EFORMAT, "image folder '%s': no class subfolders", dir);
    f->files = calloc((size_t)f->classes.n, sizeof *f->files);
    if (!f->files) return st_fail(ST_ENOMEM, "image folder: out of memory");
    char path[4096];
    for (int k = 0; k < f->classes.n; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, f->classes.v[k]);
        ST_TRY(list_dir(path, false, &f->files[k]));
        f->total += f->files[k].n;
    }
    if (f->total == 0) return st_fail(ST_EFORMAT, "image folder '%s': no .jpg, .png or .bmp images", dir);
    return ST_OK;
}

st_status st_imagefolder_open(const char *dir, const st_imagefolder_options *o, st_dataset **out)
{
    if (o->height < 1 || o->width < 1 || (o->channels != 1 && o->channels != 3) ||
        (o->filter != ST_RESIZE_AREA && o->filter != ST_RESIZE_BILINEAR))
        return st_fail(ST_EINVAL, "image folder: size %dx%d and %d channels (1 or 3) are invalid", o->height,
                       o->width, o->channels);
    folder f = {0};
    st_tensor *images = NULL, *labels = NULL, *masks = NULL;
    st_status s = scan(dir, &f);
    if (s == ST_OK) s = st_tensor_new(ST_U8, 4, (int64_t[]){f.total, o->height, o->width, o->channels}, &images);
    if (s == ST_OK) s = st_tensor_new(ST_I32, 1, &f.total, &labels);
    if (s == ST_OK && o->mask_dir) s = st_tensor_new(ST_U8, 3, (int64_t[]){f.total, o->height, o->width}, &masks);
    size_t image_bytes = (size_t)o->height * o->width * o->channels, mask_bytes = (size_t)o->height * o->width;
    char path[4096];
    int64_t i = 0;
    for (int k = 0; s == ST_OK && k < f.classes.n; k++)
        for (int j = 0; s == ST_OK && j < f.files[k].n; j++, i++) {
            snprintf(path, sizeof path, "%s/%s/%s", dir, f.classes.v[k], f.files[k].v[j]);
            s = load_into(path, o->channels, o->height, o->width, o->filter,
                          (uint8_t *)images->data + (size_t)i * image_bytes);
            ((int32_t *)labels->data)[i] = k;
            if (s == ST_OK && masks) s = mask_path(o, f.classes.v[k], f.files[k].v[j], path, sizeof path);
            if (s == ST_OK && masks)
                s = load_into(path, 1, o->height, o->width, o->filter, (uint8_t *)masks->data + (size_t)i * mask_bytes);
        }
    st_dataset *ds = NULL;
    if (s == ST_OK) s = st_dataset_from_tensors(images, labels, masks, f.classes.n, &ds);
    if (s == ST_OK) s = st_dataset_set_class_names(ds, false, f.classes.n, (const char *const *)f.classes.v);
    st_tensor_free(images);
    st_tensor_free(labels);
    st_tensor_free(masks);
    free_folder(&f);
    if (s != ST_OK) {
        st_dataset_free(ds);
        return s;
    }
    *out = ds;
    return ST_OK;
}
