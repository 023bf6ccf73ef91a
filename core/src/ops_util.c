/* Helpers shared by the tensor math sources (see ops_internal.h). */
#include "ops_internal.h"

#include <stdio.h>

st_status st_ops_dim(const st_tensor *a, int dim, const char *op, int *out)
{
    int d = dim < 0 ? dim + a->ndim : dim;
    if (d < 0 || d >= a->ndim)
        return st_fail(ST_EINVAL, "%s: dimension %d out of range for a %d-d tensor", op, dim, a->ndim);
    *out = d;
    return ST_OK;
}

st_status st_ops_float_only(const st_tensor *t, const char *op)
{
    if (t->dtype == ST_F32 || t->dtype == ST_F64) return ST_OK;
    return st_fail(ST_EDTYPE, "%s: dtype %s not supported (f32 or f64 only; convert with st_tensor_to_dtype first)",
                   op, st_dtype_name(t->dtype));
}

st_status st_ops_float_pair(const st_tensor *a, const st_tensor *b, const char *op)
{
    if (a->dtype != b->dtype)
        return st_fail(ST_EDTYPE, "%s: operand dtypes %s and %s differ", op, st_dtype_name(a->dtype),
                       st_dtype_name(b->dtype));
    return st_ops_float_only(a, op);
}

char *st_ops_shape(const st_tensor *t, char *buf, size_t cap) { return st_shape_str(t->ndim, t->shape, buf, cap); }

st_status st_ops_out_begin(st_ops_out *o, const char *op, st_dtype dtype, int ndim, const int64_t *shape,
                           st_tensor *const *out, bool contiguous)
{
    o->target = NULL;
    o->user = *out;
    o->scratch = false;
    if (!o->user) return st_tensor_new(dtype, ndim, shape, &o->target);
    char what[96];
    snprintf(what, sizeof what, "%s output", op);
    ST_TRY(st_tensor_expect(o->user, what, dtype, ndim, shape));
    if (!contiguous || st_tensor_is_contiguous(o->user)) {
        o->target = o->user;
        return ST_OK;
    }
    o->scratch = true;
    return st_tensor_new(dtype, ndim, shape, &o->target);
}

st_status st_ops_out_end(st_ops_out *o, st_status s, st_tensor **out)
{
    if (s == ST_OK && o->scratch) s = st_tensor_copy_into(o->user, o->target);
    if (s == ST_OK && !o->user) {
        *out = o->target;
        return ST_OK;
    }
    if (o->target != o->user) st_tensor_free(o->target);
    o->target = NULL;
    return s;
}
