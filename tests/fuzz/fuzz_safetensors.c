/* Fuzz target: safetensors parsing and loading. Any input must either be
 * rejected with a "safetensors: " message or open into a file whose every
 * entry loads, in its own dtype and converted, with the declared shape. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "strata/safetensors.h"

/* Checks one load; aborts (a finding) if a validated entry fails. */
static void load_as(const st_safetensors *f, const st_safetensors_entry *e, st_dtype want)
{
    st_tensor *t = NULL;
    if (st_safetensors_load(f, e->name, want, &t) != ST_OK) abort();
    if (t->dtype != want || t->ndim != e->ndim) abort();
    for (int i = 0; i < e->ndim; i++)
        if (t->shape[i] != e->shape[i]) abort();
    /* Touch the first and last elements so a bad pointer shows. */
    int64_t n = st_tensor_numel(t);
    volatile double sink = 0;
    if (n) sink += st_tensor_get_flat(t, 0) + st_tensor_get_flat(t, n - 1);
    (void)sink;
    st_tensor_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_safetensors *f = NULL;
    if (st_safetensors_open_buffer(data, size, &f) != ST_OK) {
        if (strncmp(st_error_message(), "safetensors: ", 13) != 0 || !st_error_message()[13]) abort();
        return 0;
    }
    for (size_t i = 0; i < st_safetensors_count(f); i++) {
        const st_safetensors_entry *e = st_safetensors_entry_at(f, i);
        if (st_safetensors_find(f, e->name) != e) abort();
        load_as(f, e, ST_F32);
        load_as(f, e, e->dtype == ST_ST_F64 ? ST_I64 : ST_F64);
        load_as(f, e, ST_U8);
    }
    for (size_t i = 0; i < st_safetensors_metadata_count(f); i++) {
        const char *k, *v;
        st_safetensors_metadata_at(f, i, &k, &v);
        if (!k || !v || st_safetensors_metadata_get(f, k) != v) abort();
    }
    st_safetensors_close(f);
    return 0;
}
