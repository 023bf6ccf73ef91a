/* Fuzz target: any bytes opened as CIFAR-10 and CIFAR-100 files must give
 * a dataset whose every record reads back, or a clean error (a wrong size,
 * a label out of range); never a crash or an out-of-bounds read. */
#include <stdint.h>
#include <stdlib.h>
#include "strata/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const st_cifar_kind kinds[2] = {ST_CIFAR10, ST_CIFAR100};
    for (int k = 0; k < 2; k++) {
        st_dataset *ds = NULL;
        if (st_cifar_open_buffer(kinds[k], data, size, &ds) != ST_OK) continue;
        int64_t n = st_dataset_count(ds);
        int h, w, c;
        st_dataset_image_shape(ds, &h, &w, &c);
        uint8_t *img = malloc((size_t)h * w * c);
        for (int64_t i = 0; img && i < n; i++) {
            int32_t label, coarse;
            if (st_dataset_read(ds, &i, 1, img, &label, kinds[k] == ST_CIFAR100 ? &coarse : NULL) == ST_OK &&
                (label < 0 || label >= st_dataset_class_count(ds)))
                abort();
        }
        int64_t past = n;
        int32_t label;
        if (st_dataset_read(ds, &past, 1, NULL, &label, NULL) == ST_OK) abort();
        free(img);
        st_dataset_free(ds);
    }
    return 0;
}
