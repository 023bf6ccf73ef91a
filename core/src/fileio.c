/* Atomic writes, whole-file reads and memory maps (see fileio.h). */
#include "strata/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct st_atomic_file {
    FILE *fp;
    char *path; /* destination */
    char *tmp;  /* temporary file beside it */
    uint64_t written;
};

/* A name for the temporary file that no other writer (thread or process)
 * picks at the same moment: the pid, the clock and the address of this
 * writer, mixed; O_EXCL settles any remaining collision. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

st_status st_atomic_open(const char *path, st_atomic_file **out)
{
    if (!path || !*path) return st_fail(ST_EINVAL, "atomic write: empty path");
    st_atomic_file *f = calloc(1, sizeof *f);
    size_t n = strlen(path);
    if (f) f->path = strdup(path);
    if (f) f->tmp = malloc(n + 32);
    if (!f || !f->path || !f->tmp) {
        if (f) free(f->path);
        free(f);
        return st_fail(ST_ENOMEM, "atomic write '%s': out of memory", path);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t key = (uint64_t)getpid() ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)f;
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        key = mix64(key + (uint64_t)attempt);
        snprintf(f->tmp, n + 32, "%s.tmp-%012llx", path, (unsigned long long)(key & 0xffffffffffffULL));
        fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        st_status s = st_fail(ST_EIO, "cannot create a temporary file beside '%s': %s", path, strerror(errno));
        free(f->tmp);
        free(f->path);
        free(f);
        return s;
    }
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        close(fd);
        unlink(f->tmp);
        free(f->tmp);
        free(f->path);
        free(f);
        return st_fail(ST_EIO, "cannot open a stream for '%s': %s", path, strerror(errno));
    }
    *out = f;
    return ST_OK;
}

st_status st_atomic_write(st_atomic_file *f, const void *data, size_t n)
{
    if (n && fwrite(data, 1, n, f->fp) != n)
        return st_fail(ST_EIO, "writing '%s': %s", f->path, strerror(errno));
    f->written += n;
    return ST_OK;
}

uint64_t st_atomic_written(const st_atomic_file *f) { return f->written; }

static void atomic_free(st_atomic_file *f)
{
    free(f->tmp);
    free(f->path);
    free(f);
}

void st_atomic_abort(st_atomic_file *f)
{
    if (!f) return;
    fclose(f->fp);
    unlink(f->tmp);
    atomic_free(f);
}

/* Makes the rename itself durable. Some file systems refuse fsync on a
 * directory; the file is already complete and in place then, so that
 * refusal is not an error. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

st_status st_atomic_commit(st_atomic_file *f)
{
    st_status s = ST_OK;
    if (fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0)
        s = st_fail(ST_EIO, "writing '%s': %s", f->path, strerror(errno));
    if (fclose(f->fp) != 0 && s == ST_OK) s = st_fail(ST_EIO, "closing '%s': %s", f->path, strerror(errno));
    if (s == ST_OK && rename(f->tmp, f->path) != 0)
        s = st_fail(ST_EIO, "cannot rename the temporary file onto '%s': %s", f->path, strerror(errno));
    if (s != ST_OK)
        unlink(f->tmp);
    else
        sync_parent_dir(f->path);
    atomic_free(f);
    return s;
}

st_status st_file_write_atomic(const char *path, const void *data, size_t n)
{
    st_atomic_file *f;
    ST_TRY(st_atomic_open(path, &f));
    st_status s = st_atomic_write(f, data, n);
    if (s != ST_OK) {
        st_atomic_abort(f);
        return s;
    }
    return st_atomic_commit(f);
}

st_status st_file_read(const char *path, char **data, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return st_fail(ST_EIO, "cannot open '%s': %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - 1 - n, fp);
        if (n < cap - 1) break;
        char *bigger = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    if (!buf) {
        fclose(fp);
        return st_fail(ST_ENOMEM, "reading '%s': out of memory", path);
    }
    if (ferror(fp)) {
        int e = errno;
        fclose(fp);
        free(buf);
        return st_fail(ST_EIO, "reading '%s': %s", path, strerror(e));
    }
    fclose(fp);
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return ST_OK;
}

struct st_mapping {
    atomic_long refs;
    void *base;
    size_t size;
};

st_status st_mapping_open(const char *path, st_mapping **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return st_fail(ST_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return st_fail(ST_EIO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return st_fail(ST_EIO, "'%s' is not a regular file", path);
    }
    st_mapping *m = calloc(1, sizeof *m);
    if (!m) {
        close(fd);
        return st_fail(ST_ENOMEM, "mapping '%s': out of memory", path);
    }
    m->size = (size_t)sb.st_size;
    m->base = m; /* an empty file: any valid address, zero bytes are never read */
    if (m->size) {
        /* Private and writable without reserving swap: tensors over the map
         * may be modified in memory, the file never is. */
        m->base = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
        if (m->base == MAP_FAILED) {
            int e = errno;
            close(fd);
            free(m);
            return st_fail(ST_EIO, "cannot map '%s' (%zu bytes): %s", path, (size_t)sb.st_size, strerror(e));
        }
    }
    close(fd);
    atomic_init(&m->refs, 1);
    *out = m;
    return ST_OK;
}

const void *st_mapping_data(const st_mapping *m) { return m->base; }
size_t st_mapping_size(const st_mapping *m) { return m->size; }

static void mapping_release(void *ctx)
{
    st_mapping *m = ctx;
    if (atomic_fetch_sub(&m->refs, 1) != 1) return;
    if (m->size) munmap(m->base, m->size);
    free(m);
}

void st_mapping_free(st_mapping *m)
{
    if (m) mapping_release(m);
}

st_status st_mapping_tensor(st_mapping *m, size_t offset, st_dtype dtype, int ndim, const int64_t *shape,
                            st_tensor **out)
{
    size_t el = st_dtype_size(dtype);
    if (el == 0) return st_fail(ST_EDTYPE, "mapping: invalid dtype %d", (int)dtype);
    if (offset % el) return st_fail(ST_EINVAL, "mapping: offset %zu is not a multiple of the %zu-byte element", offset, el);
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && numel > UINT64_MAX / (uint64_t)shape[i])) numel = UINT64_MAX;
        else numel *= (uint64_t)shape[i];
    }
    if (offset > m->size || numel > (m->size - offset) / el) {
        char s[128];
        return st_fail(ST_EINVAL, "mapping: %s %s at offset %zu does not fit in %zu mapped bytes", st_dtype_name(dtype),
                       st_shape_str(ndim, shape, s, sizeof s), offset, m->size);
    }
    atomic_fetch_add(&m->refs, 1);
    st_status s = st_tensor_wrap(dtype, ndim, shape, (char *)m->base + offset, mapping_release, m, out);
    if (s != ST_OK) mapping_release(m);
    return s;
}
