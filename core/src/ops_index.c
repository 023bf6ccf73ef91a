/* Concatenation, index_select and gather (see ops.h). These move whole
 * elements (any dtype) and never convert values. */
#include "strata/ops.h"

#include <string.h>
#include "ops_internal.h"

/* Product of the sizes of dims [from, to). */
static int64_t span(const int64_t *shape, int from, int to)
{
    int64_t n = 1;
    for (int i = from; i < to; i++) n *= shape[i];
    return n;
}

st_status st_cat(int n, const st_tensor *const *parts, int dim, st_tensor **out)
{
    char s0[128], s1[128];
    if (n < 1 || !parts || !parts[0]) return st_fail(ST_EINVAL, "cat: at least one tensor is needed");
    const st_tensor *p0 = parts[0];
    int d;
    ST_TRY(st_ops_dim(p0, dim, "cat", &d));
    int64_t shape[ST_MAX_DIMS];
    memcpy(shape, p0->shape, sizeof shape);
    shape[d] = 0;
    for (int i = 0; i < n; i++) {
        const st_tensor *p = parts[i];
        if (!p) return st_fail(ST_EINVAL, "cat: part %d is missing", i);
        if (p->dtype != p0->dtype)
            return st_fail(ST_EDTYPE, "cat: part %d has dtype %s, part 0 has %s", i, st_dtype_name(p->dtype),
                           st_dtype_name(p0->dtype));
        bool fits = p->ndim == p0->ndim;
        for (int e = 0; fits && e < p->ndim; e++) fits = e == d || p->shape[e] == p0->shape[e];
        if (!fits)
            return st_fail(ST_ESHAPE, "cat: part %d has shape %s, part 0 has %s (only dimension %d may differ)", i,
                           st_ops_shape(p, s0, sizeof s0), st_ops_shape(p0, s1, sizeof s1), d);
        shape[d] += p->shape[d];
    }
    st_ops_out o;
    ST_TRY(st_ops_out_begin(&o, "cat", p0->dtype, p0->ndim, shape, out, false));
    st_tensor *t = o.target;
    size_t es = st_dtype_size(t->dtype);
    int64_t outer = span(shape, 0, d), inner = span(shape, d + 1, t->ndim), off = 0;
    st_status s = ST_OK;
    for (int i = 0; i < n && s == ST_OK; i++) {
        const st_tensor *p = parts[i];
        int64_t len = p->shape[d];
        if (st_tensor_is_contiguous(p) && st_tensor_is_contiguous(t)) {
            /* Each of the outer blocks of p is one run of bytes in t. */
            size_t run = (size_t)(len * inner) * es;
            for (int64_t b = 0; b < outer && run; b++)
                memcpy((char *)t->data + ((size_t)((b * shape[d] + off) * inner)) * es,
                       (const char *)p->data + (size_t)b * run, run);
        } else if (st_tensor_numel(p) > 0) {
            st_tensor *view = NULL;
            s = st_tensor_slice(t, d, off, off + len, 1, &view);
            if (s == ST_OK) s = st_tensor_copy_into(view, p);
            st_tensor_free(view);
        }
        off += len;
    }
    return st_ops_out_end(&o, s, out);
}

/* The entries of an integer index tensor as a contiguous i64 tensor,
 * each checked to lie in [0, limit). */
static st_status index_values(const char *name, const st_tensor *index, int64_t limit, int dim, st_tensor **ix)
{
    if (!index) return st_fail(ST_EINVAL, "%s: index tensor missing", name);
    if (index->dtype != ST_I64 && index->dtype != ST_I32)
        return st_fail(ST_EDTYPE, "%s: index dtype must be i64 or i32, got %s", name, st_dtype_name(index->dtype));
    st_tensor *t;
    ST_TRY(st_tensor_to_dtype(index, ST_I64, &t));
    const int64_t *v = t->data;
    for (int64_t i = 0, n = st_tensor_numel(t); i < n; i++)
        if (v[i] < 0 || v[i] >= limit) {
            st_status s = st_fail(ST_EINVAL, "%s: index entry %lld is %lld, out of range for dimension %d of size %lld",
                                  name, (long long)i, (long long)v[i], dim, (long long)limit);
            st_tensor_free(t);
            return s;
        }
    *ix = t;
    return ST_OK;
}

st_status st_index_select(const st_tensor *a, int dim, const st_tensor *index, st_tensor **out)
{
    int d;
    ST_TRY(st_ops_dim(a, dim, "index_select", &d));
    if (index && index->ndim != 1)
        return st_fail(ST_ESHAPE, "index_select: index must be 1-d, got %d-d", index->ndim);
    st_tensor *ix = NULL, *c = NULL;
    ST_TRY(index_values("index_select", index, a->shape[d], d, &ix));
    int64_t shape[ST_MAX_DIMS], m = ix->shape[0], n = a->shape[d];
    memcpy(shape, a->shape, sizeof shape);
    shape[d] = m;
    st_ops_out o;
    st_status s = st_ops_out_begin(&o, "index_select", a->dtype, a->ndim, shape, out, true);
    if (s != ST_OK) {
        st_tensor_free(ix);
        return s;
    }
    s = st_tensor_contiguous(a, &c);
    if (s == ST_OK) {
        size_t row = (size_t)span(a->shape, d + 1, a->ndim) * st_dtype_size(a->dtype);
        const int64_t *iv = ix->data;
        const char *src = c->data;
        char *dst = o.target->data;
        for (int64_t b = 0, outer = span(a->shape, 0, d); b < outer && row; b++)
            for (int64_t i = 0; i < m; i++) memcpy(dst + (size_t)(b * m + i) * row, src + (size_t)(b * n + iv[i]) * row, row);
    }
    st_tensor_free(c);
    st_tensor_free(ix);
    return st_ops_out_end(&o, s, out);
}

st_status st_gather(const st_tensor *a, int dim, const st_tensor *index, st_tensor **out)
{
    char s0[128], s1[128];
    int d;
    ST_TRY(st_ops_dim(a, dim, "gather", &d));
    bool fits = index && index->ndim == a->ndim;
    for (int e = 0; fits && e < a->ndim; e++) fits = e == d || index->shape[e] <= a->shape[e];
    if (index && !fits)
        return st_fail(ST_ESHAPE, "gather: index shape %s does not fit tensor shape %s along dimension %d",
                       st_ops_shape(index, s0, sizeof s0), st_ops_shape(a, s1, sizeof s1), d);
    st_tensor *ix = NULL;
    ST_TRY(index_values("gather", index, a->shape[d], d, &ix));
    st_ops_out o;
    st_status s = st_ops_out_begin(&o, "gather", a->dtype, a->ndim, ix->shape, out, true);
    if (s != ST_OK) {
        st_tensor_free(ix);
        return s;
    }
    size_t es = st_dtype_size(a->dtype);
    const int64_t *iv = ix->data;
    char *dst = o.target->data;
    int64_t coord[ST_MAX_DIMS] = {0}, base = 0; /* offset in a of coord, without dim d */
    for (int64_t p = 0, n = st_tensor_numel(ix); p < n; p++) {
        memcpy(dst + (size_t)p * es, (const char *)a->data + (base + iv[p] * a->stride[d]) * (int64_t)es, es);
        for (int e = a->ndim - 1; e >= 0; e--) {
            if (e != d) base += a->stride[e];
            if (++coord[e] < ix->shape[e]) break;
            if (e != d) base -= coord[e] * a->stride[e];
            coord[e] = 0;
        }
    }
    st_tensor_free(ix);
    return st_ops_out_end(&o, s, out);
}
