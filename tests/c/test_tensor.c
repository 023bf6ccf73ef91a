/* Tensor storage, views and copies against hand-computed layouts. */
#include <stdlib.h>
#include "strata/tensor.h"
#include "testing.h"

static void test_new_is_zeroed_and_contiguous(void)
{
    st_tensor *t = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 3, (int64_t[]){2, 3, 4}, &t));
    CHECK(st_tensor_numel(t) == 24);
    CHECK(st_tensor_is_contiguous(t));
    CHECK(t->stride[0] == 12 && t->stride[1] == 4 && t->stride[2] == 1);
    for (int i = 0; i < 24; i++) CHECK(st_f32(t)[i] == 0.0f);
    st_tensor_free(t);
    st_tensor_free(NULL);
}

static void test_bad_shapes_are_rejected(void)
{
    st_tensor *t = NULL;
    CHECK_FAILS(st_tensor_new(ST_F32, 7, (int64_t[]){1, 1, 1, 1, 1, 1, 1}, &t), ST_ESHAPE, "at most 6");
    CHECK_FAILS(st_tensor_new(ST_F32, 2, (int64_t[]){2, -1}, &t), ST_ESHAPE, "negative");
    CHECK_FAILS(st_tensor_new(ST_F32, 3, (int64_t[]){1LL << 40, 1LL << 40, 4}, &t), ST_ESHAPE, "too large");
    CHECK(t == NULL);
}

static void test_slice_view_shares_storage_and_outlives_parent(void)
{
    st_tensor *a = NULL, *s = NULL;
    CHECK_OK(st_tensor_arange(ST_F32, 0, 12, 1, &a));
    st_tensor *m = NULL;
    CHECK_OK(st_tensor_reshape(a, 2, (int64_t[]){3, 4}, &m));
    CHECK_OK(st_tensor_slice(m, 1, 1, 4, 2, &s)); /* columns 1 and 3 */
    CHECK(s->ndim == 2 && s->shape[0] == 3 && s->shape[1] == 2);
    CHECK(!st_tensor_is_contiguous(s));
    st_tensor_free(a);
    st_tensor_free(m);
    double want[] = {1, 3, 5, 7, 9, 11};
    for (int i = 0; i < 6; i++) CHECK(st_tensor_get_flat(s, i) == want[i]);
    st_tensor_set_flat(s, 0, 100);
    CHECK(st_tensor_get_flat(s, 0) == 100);
    st_tensor *c = NULL;
    CHECK_FAILS(st_tensor_reshape(s, 1, (int64_t[]){6}, &c), ST_ESHAPE, "not contiguous");
    CHECK_OK(st_tensor_contiguous(s, &c));
    CHECK(st_tensor_is_contiguous(c));
    for (int i = 1; i < 6; i++) CHECK(st_f32(c)[i] == want[i]);
    st_tensor_free(c);
    st_tensor_free(s);
}

static void test_negative_slice_and_select(void)
{
    st_tensor *a = NULL, *s = NULL, *r = NULL;
    CHECK_OK(st_tensor_arange(ST_I64, 0, 10, 1, &a));
    CHECK_OK(st_tensor_slice(a, 0, -3, 100, 1, &s));
    CHECK(s->shape[0] == 3 && st_tensor_get_flat(s, 0) == 7);
    CHECK_OK(st_tensor_select(a, 0, -1, &r));
    CHECK(r->ndim == 0 && st_tensor_get_flat(r, 0) == 9);
    st_tensor *bad = NULL;
    CHECK_FAILS(st_tensor_select(a, 0, 10, &bad), ST_EINVAL, "out of range");
    st_tensor_free(a);
    st_tensor_free(s);
    st_tensor_free(r);
}

static void test_permute_matches_index_formula(void)
{
    st_tensor *a = NULL, *p = NULL, *c = NULL;
    CHECK_OK(st_tensor_arange(ST_F64, 0, 24, 1, &a));
    st_tensor *a3 = NULL;
    CHECK_OK(st_tensor_reshape(a, 3, (int64_t[]){2, 3, 4}, &a3));
    CHECK_OK(st_tensor_permute(a3, (int[]){2, 0, 1}, &p)); /* [4,2,3] */
    CHECK_OK(st_tensor_clone(p, &c));
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++) CHECK(((double *)c->data)[(k * 2 + i) * 3 + j] == i * 12 + j * 4 + k);
    CHECK_FAILS(st_tensor_permute(a3, (int[]){0, 0, 1}, &p), ST_EINVAL, "permutation");
    st_tensor_free(a);
    st_tensor_free(a3);
    st_tensor_free(p);
    st_tensor_free(c);
}

static void test_reshape_infers_and_checks(void)
{
    st_tensor *a = NULL, *r = NULL;
    CHECK_OK(st_tensor_zeros(ST_U8, 2, (int64_t[]){4, 6}, &a));
    CHECK_OK(st_tensor_reshape(a, 3, (int64_t[]){2, -1, 3}, &r));
    CHECK(r->shape[1] == 4);
    st_tensor_free(r);
    r = NULL;
    CHECK_FAILS(st_tensor_reshape(a, 2, (int64_t[]){5, 5}, &r), ST_ESHAPE, "[4,6]");
    st_tensor_free(a);
}

static void test_dtype_conversion_saturates(void)
{
    st_tensor *f = NULL, *u = NULL;
    CHECK_OK(st_tensor_from_data(ST_F32, 1, (int64_t[]){4}, (float[]){-3.5f, 12.9f, 300.0f, NAN}, 16, &f));
    CHECK_OK(st_tensor_to_dtype(f, ST_U8, &u));
    uint8_t *p = u->data;
    CHECK(p[0] == 0 && p[1] == 12 && p[2] == 255 && p[3] == 0);
    st_tensor *bad = NULL;
    CHECK_FAILS(st_tensor_from_data(ST_F32, 1, (int64_t[]){4}, p, 4, &bad), ST_ESHAPE, "needs 16");
    st_tensor_free(f);
    st_tensor_free(u);
}

static int released;
static void note_release(void *ctx) { released += *(int *)ctx; }

static void test_wrap_calls_release_once_after_last_view(void)
{
    float buf[6] = {0};
    int one = 1;
    st_tensor *w = NULL, *v = NULL;
    released = 0;
    CHECK_OK(st_tensor_wrap(ST_F32, 1, (int64_t[]){6}, buf, note_release, &one, &w));
    CHECK_OK(st_tensor_slice(w, 0, 2, 4, 1, &v));
    st_tensor_free(w);
    CHECK(released == 0);
    st_tensor_free(v);
    CHECK(released == 1);
}

int main(void)
{
    RUN(test_new_is_zeroed_and_contiguous);
    RUN(test_bad_shapes_are_rejected);
    RUN(test_slice_view_shares_storage_and_outlives_parent);
    RUN(test_negative_slice_and_select);
    RUN(test_permute_matches_index_formula);
    RUN(test_reshape_infers_and_checks);
    RUN(test_dtype_conversion_saturates);
    RUN(test_wrap_calls_release_once_after_last_view);
    return TEST_SUMMARY();
}
