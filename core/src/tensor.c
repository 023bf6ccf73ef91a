/* Tensor storage, creation, views and copies (see tensor.h). */
#include "strata/tensor.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct st_storage {
    atomic_long refs;
    void *base;
    size_t nbytes;
    size_t mapped;              /* >0: base is an anonymous mapping of this size */
    bool owns_base;             /* base came from aligned_alloc */
    void (*release)(void *ctx); /* called when the last reference goes */
    void *ctx;
};

#define ST_ALIGN 64
/* Storages this large get their own anonymous mapping, so freeing one
 * always returns the memory to the system. Through malloc they could land
 * in the heap, where small allocations (Lua's, for instance) fragment the
 * freed blocks and resident memory keeps growing. Mappings also arrive
 * zero-filled, which saves the memset. */
#define ST_MMAP_MIN (256u * 1024u)

static const size_t dtype_sizes[ST_DTYPE_COUNT] = {4, 8, 4, 8, 1};
static const char *const dtype_names[ST_DTYPE_COUNT] = {"f32", "f64", "i32", "i64", "u8"};

size_t st_dtype_size(st_dtype t) { return (unsigned)t < ST_DTYPE_COUNT ? dtype_sizes[t] : 0; }
const char *st_dtype_name(st_dtype t) { return (unsigned)t < ST_DTYPE_COUNT ? dtype_names[t] : "?"; }

st_status st_dtype_parse(const char *name, st_dtype *out)
{
    for (int i = 0; i < ST_DTYPE_COUNT; i++)
        if (name && strcmp(name, dtype_names[i]) == 0) {
            *out = (st_dtype)i;
            return ST_OK;
        }
    return st_fail(ST_EDTYPE, "unknown dtype '%s' (expected f32, f64, i32, i64 or u8)", name ? name : "(null)");
}

char *st_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap)
{
    size_t n = 0;
    if (cap == 0) return buf;
    buf[0] = '\0';
    n += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

static st_status check_shape(st_dtype dtype, int ndim, const int64_t *shape, int64_t *numel)
{
    char s[128];
    if ((unsigned)dtype >= ST_DTYPE_COUNT) return st_fail(ST_EDTYPE, "tensor: invalid dtype %d", (int)dtype);
    if (ndim < 0 || ndim > ST_MAX_DIMS)
        return st_fail(ST_ESHAPE, "tensor: %d dimensions requested, at most %d supported", ndim, ST_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return st_fail(ST_ESHAPE, "tensor: negative size in shape %s", st_shape_str(ndim, shape, s, sizeof s));
        if (shape[i] > 0 && n > INT64_MAX / 16 / shape[i])
            return st_fail(ST_ESHAPE, "tensor: shape %s is too large", st_shape_str(ndim, shape, s, sizeof s));
        n *= shape[i];
    }
    *numel = n;
    return ST_OK;
}

static void set_contiguous_strides(st_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        t->stride[i] = s;
        s *= t->shape[i];
    }
}

static st_tensor *header_new(st_dtype dtype, int ndim, const int64_t *shape, st_storage *storage, int64_t offset)
{
    st_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    set_contiguous_strides(t);
    t->storage = storage;
    t->offset = offset;
    t->data = (char *)storage->base + offset * (int64_t)dtype_sizes[dtype];
    return t;
}

static void storage_retain(st_storage *s) { atomic_fetch_add(&s->refs, 1); }

static void storage_release(st_storage *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1) return;
    if (s->release) s->release(s->ctx);
    if (s->mapped) munmap(s->base, s->mapped);
    else if (s->owns_base) free(s->base);
    free(s);
}

st_status st_tensor_new(st_dtype dtype, int ndim, const int64_t *shape, st_tensor **out)
{
    int64_t numel;
    ST_TRY(check_shape(dtype, ndim, shape, &numel));
    size_t nbytes = (size_t)numel * dtype_sizes[dtype];
    size_t rounded = (nbytes + ST_ALIGN - 1) / ST_ALIGN * ST_ALIGN;
    if (rounded == 0) rounded = ST_ALIGN;
    st_storage *s = calloc(1, sizeof *s);
    void *base = NULL;
    if (s && rounded >= ST_MMAP_MIN) {
        base = mmap(NULL, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED) base = NULL;
        else s->mapped = rounded;
    } else if (s) {
        base = aligned_alloc(ST_ALIGN, rounded);
        if (base) memset(base, 0, rounded);
    }
    if (!base) {
        free(s);
        return st_fail(ST_ENOMEM, "tensor: cannot allocate %zu bytes", nbytes);
    }
    s->base = base;
    s->nbytes = nbytes;
    s->owns_base = true;
    atomic_init(&s->refs, 1);
    st_tensor *t = header_new(dtype, ndim, shape, s, 0);
    if (!t) {
        storage_release(s);
        return st_fail(ST_ENOMEM, "tensor: out of memory");
    }
    *out = t;
    return ST_OK;
}

st_status st_tensor_zeros(st_dtype dtype, int ndim, const int64_t *shape, st_tensor **out)
{
    return st_tensor_new(dtype, ndim, shape, out);
}

st_status st_tensor_full(st_dtype dtype, int ndim, const int64_t *shape, double value, st_tensor **out)
{
    st_tensor *t;
    ST_TRY(st_tensor_new(dtype, ndim, shape, &t));
    st_tensor_fill(t, value);
    *out = t;
    return ST_OK;
}

st_status st_tensor_arange(st_dtype dtype, double start, double stop, double step, st_tensor **out)
{
    if (step == 0 || !isfinite(start) || !isfinite(stop) || !isfinite(step))
        return st_fail(ST_EINVAL, "arange: start, stop and step must be finite and step nonzero");
    double count = ceil((stop - start) / step);
    int64_t n = count > 0 ? (int64_t)count : 0;
    st_tensor *t;
    ST_TRY(st_tensor_new(dtype, 1, &n, &t));
    for (int64_t i = 0; i < n; i++) st_tensor_set_flat(t, i, start + (double)i * step);
    *out = t;
    return ST_OK;
}

st_status st_tensor_from_data(st_dtype dtype, int ndim, const int64_t *shape, const void *src, size_t nbytes,
                              st_tensor **out)
{
    st_tensor *t;
    ST_TRY(st_tensor_new(dtype, ndim, shape, &t));
    if (nbytes != st_tensor_nbytes(t)) {
        char s[128];
        size_t want = st_tensor_nbytes(t);
        st_tensor_free(t);
        return st_fail(ST_ESHAPE, "tensor: %zu bytes given for %s %s, which needs %zu", nbytes,
                       st_dtype_name(dtype), st_shape_str(ndim, shape, s, sizeof s), want);
    }
    if (nbytes) memcpy(t->data, src, nbytes);
    *out = t;
    return ST_OK;
}

st_status st_tensor_wrap(st_dtype dtype, int ndim, const int64_t *shape, void *data, void (*release)(void *ctx),
                         void *ctx, st_tensor **out)
{
    int64_t numel;
    ST_TRY(check_shape(dtype, ndim, shape, &numel));
    st_storage *s = calloc(1, sizeof *s);
    if (!s) return st_fail(ST_ENOMEM, "tensor: out of memory");
    s->base = data;
    s->nbytes = (size_t)numel * dtype_sizes[dtype];
    s->release = release;
    s->ctx = ctx;
    atomic_init(&s->refs, 1);
    st_tensor *t = header_new(dtype, ndim, shape, s, 0);
    if (!t) {
        free(s);
        return st_fail(ST_ENOMEM, "tensor: out of memory");
    }
    *out = t;
    return ST_OK;
}

void st_tensor_free(st_tensor *t)
{
    if (!t) return;
    storage_release(t->storage);
    free(t);
}

int64_t st_tensor_numel(const st_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t st_tensor_nbytes(const st_tensor *t) { return (size_t)st_tensor_numel(t) * dtype_sizes[t->dtype]; }

bool st_tensor_is_contiguous(const st_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

bool st_tensor_same_shape(const st_tensor *a, const st_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

st_status st_tensor_expect(const st_tensor *t, const char *what, st_dtype dtype, int ndim, const int64_t *shape)
{
    char a[128], b[128];
    if (!t) return st_fail(ST_EINVAL, "%s: tensor missing", what);
    if (t->dtype != dtype)
        return st_fail(ST_EDTYPE, "%s: dtype %s expected, got %s", what, st_dtype_name(dtype), st_dtype_name(t->dtype));
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = shape[i] < 0 || shape[i] == t->shape[i];
    if (!ok)
        return st_fail(ST_ESHAPE, "%s: shape %s expected, got %s", what, st_shape_str(ndim, shape, a, sizeof a),
                       st_shape_str(t->ndim, t->shape, b, sizeof b));
    return ST_OK;
}

static int64_t flat_to_offset(const st_tensor *t, int64_t i)
{
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t n = t->shape[d];
        off += (i % n) * t->stride[d];
        i /= n;
    }
    return off;
}

static double load(st_dtype dt, const void *p, int64_t k)
{
    switch (dt) {
    case ST_F32: return ((const float *)p)[k];
    case ST_F64: return ((const double *)p)[k];
    case ST_I32: return ((const int32_t *)p)[k];
    case ST_I64: return (double)((const int64_t *)p)[k];
    case ST_U8: return ((const uint8_t *)p)[k];
    default: return 0;
    }
}

/* Float to integer conversion that never invokes undefined behaviour:
 * NaN becomes 0 and out-of-range values saturate. */
static int64_t saturate_i64(double v, double lo, double hi)
{
    if (!(v == v)) return 0;
    if (v <= lo) return (int64_t)lo;
    if (v >= hi) return (int64_t)hi;
    return (int64_t)v;
}

static void store(st_dtype dt, void *p, int64_t k, double v)
{
    switch (dt) {
    case ST_F32: ((float *)p)[k] = (float)v; break;
    case ST_F64: ((double *)p)[k] = v; break;
    case ST_I32: ((int32_t *)p)[k] = (int32_t)saturate_i64(v, -2147483648.0, 2147483647.0); break;
    case ST_I64: ((int64_t *)p)[k] = saturate_i64(v, -9223372036854775808.0, 9223372036854774784.0); break;
    case ST_U8: ((uint8_t *)p)[k] = (uint8_t)saturate_i64(v, 0, 255); break;
    default: break;
    }
}

double st_tensor_get_flat(const st_tensor *t, int64_t i) { return load(t->dtype, t->data, flat_to_offset(t, i)); }

void st_tensor_set_flat(st_tensor *t, int64_t i, double v) { store(t->dtype, t->data, flat_to_offset(t, i), v); }

static st_status new_view(const st_tensor *t, st_tensor **out)
{
    st_tensor *v = malloc(sizeof *v);
    if (!v) return st_fail(ST_ENOMEM, "tensor: out of memory");
    *v = *t;
    storage_retain(t->storage);
    *out = v;
    return ST_OK;
}

static void refresh_data(st_tensor *v)
{
    v->data = (char *)v->storage->base + v->offset * (int64_t)dtype_sizes[v->dtype];
}

st_status st_tensor_view(const st_tensor *t, st_tensor **out) { return new_view(t, out); }

static st_status check_dim(const st_tensor *t, int dim, const char *op)
{
    if (dim < 0 || dim >= t->ndim)
        return st_fail(ST_EINVAL, "%s: dimension %d out of range for a %d-d tensor", op, dim, t->ndim);
    return ST_OK;
}

st_status st_tensor_slice(const st_tensor *t, int dim, int64_t start, int64_t stop, int64_t step, st_tensor **out)
{
    ST_TRY(check_dim(t, dim, "slice"));
    if (step <= 0) return st_fail(ST_EINVAL, "slice: step must be positive, got %lld", (long long)step);
    int64_t n = t->shape[dim];
    if (start < 0) start += n;
    if (stop < 0) stop += n;
    if (start < 0) start = 0;
    if (start > n) start = n;
    if (stop > n) stop = n;
    if (stop < start) stop = start;
    st_tensor *v;
    ST_TRY(new_view(t, &v));
    v->offset += start * t->stride[dim];
    v->shape[dim] = (stop - start + step - 1) / step;
    v->stride[dim] *= step;
    refresh_data(v);
    *out = v;
    return ST_OK;
}

st_status st_tensor_select(const st_tensor *t, int dim, int64_t index, st_tensor **out)
{
    ST_TRY(check_dim(t, dim, "select"));
    int64_t n = t->shape[dim];
    if (index < 0) index += n;
    if (index < 0 || index >= n)
        return st_fail(ST_EINVAL, "select: index %lld out of range for dimension %d of size %lld", (long long)index,
                       dim, (long long)n);
    st_tensor *v;
    ST_TRY(new_view(t, &v));
    v->offset += index * t->stride[dim];
    for (int i = dim; i < t->ndim - 1; i++) {
        v->shape[i] = t->shape[i + 1];
        v->stride[i] = t->stride[i + 1];
    }
    v->ndim--;
    refresh_data(v);
    *out = v;
    return ST_OK;
}

st_status st_tensor_reshape(const st_tensor *t, int ndim, const int64_t *shape, st_tensor **out)
{
    char a[128], b[128];
    if (ndim < 0 || ndim > ST_MAX_DIMS) return st_fail(ST_ESHAPE, "reshape: %d dimensions not supported", ndim);
    int64_t resolved[ST_MAX_DIMS], known = 1, numel = st_tensor_numel(t);
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        resolved[i] = shape[i];
        if (shape[i] == -1) {
            if (infer >= 0) return st_fail(ST_ESHAPE, "reshape: more than one -1 in %s", st_shape_str(ndim, shape, a, sizeof a));
            infer = i;
        } else if (shape[i] < 0) {
            return st_fail(ST_ESHAPE, "reshape: negative size in %s", st_shape_str(ndim, shape, a, sizeof a));
        } else {
            known *= shape[i];
        }
    }
    if (infer >= 0) resolved[infer] = known ? numel / known : 0;
    int64_t total = 1;
    for (int i = 0; i < ndim; i++) total *= resolved[i];
    if (total != numel)
        return st_fail(ST_ESHAPE, "reshape: cannot view %s (%lld elements) as %s", st_shape_str(t->ndim, t->shape, a, sizeof a),
                       (long long)numel, st_shape_str(ndim, shape, b, sizeof b));
    if (!st_tensor_is_contiguous(t))
        return st_fail(ST_ESHAPE, "reshape: tensor %s is not contiguous; make a contiguous copy first",
                       st_shape_str(t->ndim, t->shape, a, sizeof a));
    st_tensor *v;
    ST_TRY(new_view(t, &v));
    v->ndim = ndim;
    if (ndim) memcpy(v->shape, resolved, (size_t)ndim * sizeof *resolved);
    set_contiguous_strides(v);
    *out = v;
    return ST_OK;
}

st_status st_tensor_permute(const st_tensor *t, const int *perm, st_tensor **out)
{
    int seen[ST_MAX_DIMS] = {0};
    for (int i = 0; i < t->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= t->ndim || seen[perm[i]]++)
            return st_fail(ST_EINVAL, "permute: not a permutation of %d dimensions", t->ndim);
    }
    st_tensor *v;
    ST_TRY(new_view(t, &v));
    for (int i = 0; i < t->ndim; i++) {
        v->shape[i] = t->shape[perm[i]];
        v->stride[i] = t->stride[perm[i]];
    }
    *out = v;
    return ST_OK;
}

st_status st_tensor_transpose(const st_tensor *t, int d0, int d1, st_tensor **out)
{
    ST_TRY(check_dim(t, d0, "transpose"));
    ST_TRY(check_dim(t, d1, "transpose"));
    int perm[ST_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) perm[i] = i;
    perm[d0] = d1;
    perm[d1] = d0;
    return st_tensor_permute(t, perm, out);
}

/* Copies with any strides: walks the destination in C order with an
 * odometer over the source offsets. Same-dtype inner rows are memcpy'd. */
st_status st_tensor_copy_into(st_tensor *dst, const st_tensor *src)
{
    char a[128], b[128];
    if (!st_tensor_same_shape(dst, src))
        return st_fail(ST_ESHAPE, "copy: destination %s, source %s", st_shape_str(dst->ndim, dst->shape, a, sizeof a),
                       st_shape_str(src->ndim, src->shape, b, sizeof b));
    int64_t numel = st_tensor_numel(src);
    if (numel == 0) return ST_OK;
    if (dst->dtype == src->dtype && st_tensor_is_contiguous(dst) && st_tensor_is_contiguous(src)) {
        memmove(dst->data, src->data, st_tensor_nbytes(src));
        return ST_OK;
    }
    int nd = src->ndim;
    int64_t idx[ST_MAX_DIMS] = {0}, so = 0, dof = 0;
    int64_t inner = nd ? src->shape[nd - 1] : 1;
    int64_t ss = nd ? src->stride[nd - 1] : 1, ds = nd ? dst->stride[nd - 1] : 1;
    for (int64_t done = 0; done < numel; done += inner) {
        for (int64_t k = 0; k < inner; k++) store(dst->dtype, dst->data, dof + k * ds, load(src->dtype, src->data, so + k * ss));
        for (int d = nd - 2; d >= 0; d--) {
            idx[d]++;
            so += src->stride[d];
            dof += dst->stride[d];
            if (idx[d] < src->shape[d]) break;
            so -= idx[d] * src->stride[d];
            dof -= idx[d] * dst->stride[d];
            idx[d] = 0;
        }
    }
    return ST_OK;
}

st_status st_tensor_to_dtype(const st_tensor *t, st_dtype dtype, st_tensor **out)
{
    st_tensor *c;
    ST_TRY(st_tensor_new(dtype, t->ndim, t->shape, &c));
    st_status s = st_tensor_copy_into(c, t);
    if (s != ST_OK) {
        st_tensor_free(c);
        return s;
    }
    *out = c;
    return ST_OK;
}

st_status st_tensor_clone(const st_tensor *t, st_tensor **out) { return st_tensor_to_dtype(t, t->dtype, out); }

st_status st_tensor_contiguous(const st_tensor *t, st_tensor **out)
{
    if (st_tensor_is_contiguous(t)) return new_view(t, out);
    return st_tensor_clone(t, out);
}

st_status st_tensor_fill(st_tensor *t, double value)
{
    int64_t n = st_tensor_numel(t);
    if (t->dtype == ST_F32 && st_tensor_is_contiguous(t)) {
        float *p = t->data, v = (float)value;
        for (int64_t i = 0; i < n; i++) p[i] = v;
        return ST_OK;
    }
    for (int64_t i = 0; i < n; i++) st_tensor_set_flat(t, i, value);
    return ST_OK;
}
