/* Top-k along a dimension with a bounded heap: O(n log k) per row (see
 * ops.h for the ordering rules). */
#include "strata/ops.h"

#include <math.h>
#include <stdlib.h>
#include "ops_internal.h"

typedef struct entry {
    double v;
    int64_t i;
} entry;

/* True when x comes before y in the result. NaN ranks above every number;
 * equal values are ordered by position. */
static bool before(entry x, entry y, bool largest)
{
    bool xn = isnan(x.v), yn = isnan(y.v);
    if (xn != yn) return largest ? xn : yn;
    if (!xn && x.v != y.v) return largest ? x.v > y.v : x.v < y.v;
    return x.i < y.i;
}

/* The heap keeps the entry that comes last at its root. */
static void sift_down(entry *h, int64_t size, int64_t p, bool largest)
{
    for (;;) {
        int64_t c = 2 * p + 1;
        if (c >= size) return;
        if (c + 1 < size && before(h[c], h[c + 1], largest)) c++;
        if (!before(h[p], h[c], largest)) return;
        entry t = h[p];
        h[p] = h[c];
        h[c] = t;
        p = c;
    }
}

static void sift_up(entry *h, int64_t c, bool largest)
{
    while (c > 0) {
        int64_t p = (c - 1) / 2;
        if (!before(h[p], h[c], largest)) return;
        entry t = h[p];
        h[p] = h[c];
        h[c] = t;
        c = p;
    }
}

/* Selects the best k of the n values row[0], row[stride], ... into
 * h[0..k) in result order. */
static void select_row(const st_tensor *c, int64_t start, int64_t n, int64_t stride, int64_t k, bool largest, entry *h)
{
    int64_t size = 0;
    for (int64_t t = 0; t < n; t++) {
        int64_t at = start + t * stride;
        entry e = {c->dtype == ST_F32 ? ((const float *)c->data)[at] : ((const double *)c->data)[at], t};
        if (size < k) {
            h[size] = e;
            sift_up(h, size++, largest);
        } else if (before(e, h[0], largest)) {
            h[0] = e;
            sift_down(h, size, 0, largest);
        }
    }
    /* Heap sort: the root is the last of the kept entries. */
    for (int64_t end = size - 1; end > 0; end--) {
        entry t = h[0];
        h[0] = h[end];
        h[end] = t;
        sift_down(h, end, 0, largest);
    }
}

st_status st_topk(const st_tensor *a, int64_t k, int dim, bool largest, st_tensor **values, st_tensor **indices)
{
    char s[128];
    int d;
    ST_TRY(st_ops_float_only(a, "topk"));
    ST_TRY(st_ops_dim(a, dim, "topk", &d));
    int64_t n = a->shape[d];
    if (k < 0 || k > n)
        return st_fail(ST_EINVAL, "topk: k = %lld out of range for dimension %d of %s", (long long)k, d,
                       st_ops_shape(a, s, sizeof s));
    int64_t shape[ST_MAX_DIMS], outer = 1, inner = 1;
    for (int i = 0; i < a->ndim; i++) {
        shape[i] = i == d ? k : a->shape[i];
        if (i < d) outer *= a->shape[i];
        if (i > d) inner *= a->shape[i];
    }
    st_ops_out ov = {0}, oi = {0};
    st_tensor *c = NULL;
    entry *h = NULL;
    st_status st = st_ops_out_begin(&oi, "topk indices", ST_I64, a->ndim, shape, indices, true);
    if (st == ST_OK && values) st = st_ops_out_begin(&ov, "topk values", a->dtype, a->ndim, shape, values, true);
    if (st == ST_OK) st = st_tensor_contiguous(a, &c);
    if (st == ST_OK && !(h = malloc((size_t)k * sizeof *h + 1))) st = st_fail(ST_ENOMEM, "topk: out of memory");
    for (int64_t b = 0; st == ST_OK && k > 0 && b < outer; b++)
        for (int64_t j = 0; j < inner; j++) {
            select_row(c, b * n * inner + j, n, inner, k, largest, h);
            for (int64_t r = 0; r < k; r++) {
                int64_t at = (b * k + r) * inner + j;
                ((int64_t *)oi.target->data)[at] = h[r].i;
                if (!values) continue;
                if (a->dtype == ST_F32)
                    ((float *)ov.target->data)[at] = (float)h[r].v;
                else
                    ((double *)ov.target->data)[at] = h[r].v;
            }
        }
    free(h);
    st_tensor_free(c);
    if (values) st = st_ops_out_end(&ov, st, values);
    return st_ops_out_end(&oi, st, indices);
}
