/* Fuzz target: .npy parsing. Any input must either be rejected with an
 * "npy: " message or load into a tensor holding exactly the data bytes
 * at the end of the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "strata/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_tensor *t = NULL;
    if (st_npy_load_buffer(data, size, &t) != ST_OK) {
        if (strncmp(st_error_message(), "npy: ", 5) != 0 || !st_error_message()[5]) abort();
        return 0;
    }
    size_t n = st_tensor_nbytes(t);
    if (n > size || (n && memcmp(t->data, data + size - n, n) != 0)) abort();
    st_tensor_free(t);
    return 0;
}
