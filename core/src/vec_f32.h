/* Float-vector helpers shared by the layer sources (not public API). */
#ifndef STRATA_VEC_F32_H
#define STRATA_VEC_F32_H

#include <stddef.h>

/* out[i] = a[i] + b[i] for i < n; out may be a or b. 8 floats at a time
 * where the CPU has AVX2 (the build's baseline has none), with the same
 * bits as the scalar loop. */
void st_vec_add_f32(size_t n, const float *a, const float *b, float *out);

#endif
