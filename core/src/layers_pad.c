/* Zero padding and cropping of NHWC spatial dimensions (see layers.h). */
#include "strata/layers.h"

#include <string.h>

void st_pad2d(int batch, int h, int w, int c, st_padding2d p, const float *x, float *y)
{
    const int ph = h + p.top + p.bottom, pw = w + p.left + p.right;
    const size_t row = (size_t)w * c;
    memset(y, 0, (size_t)batch * ph * pw * c * sizeof *y);
    for (int n = 0; n < batch; n++)
        for (int i = 0; i < h; i++)
            memcpy(y + (((size_t)n * ph + i + p.top) * pw + p.left) * c, x + ((size_t)n * h + i) * row,
                   row * sizeof *x);
}

void st_crop2d(int batch, int h, int w, int c, st_padding2d p, const float *y, float *x)
{
    const int ph = h + p.top + p.bottom, pw = w + p.left + p.right;
    const size_t row = (size_t)w * c;
    for (int n = 0; n < batch; n++)
        for (int i = 0; i < h; i++)
            memcpy(x + ((size_t)n * h + i) * row, y + (((size_t)n * ph + i + p.top) * pw + p.left) * c,
                   row * sizeof *x);
}
