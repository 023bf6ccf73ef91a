/* Float-vector helpers (vec_f32.h). */
#include "vec_f32.h"

#include <immintrin.h>

__attribute__((target("avx2"))) static size_t add_avx2(size_t n, const float *a, const float *b, float *out)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    return i;
}

void st_vec_add_f32(size_t n, const float *a, const float *b, float *out)
{
    size_t i = __builtin_cpu_supports("avx2") ? add_avx2(n, a, b, out) : 0;
    for (; i < n; i++) out[i] = a[i] + b[i];
}
