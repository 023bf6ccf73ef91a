/* Winograd F(4x4, 3x3) for the forward pass of 3x3 stride-1 convolutions
 * (see conv_winograd4.h).
 *
 * Each 4x4 output tile comes from its 6x6 input tile d as
 *   Y = A^T [ (G g G^T) . (B^T d B) ] A
 * with the interpolation points 0, 1, -1, 2, -2 and infinity. Summed over
 * input channels, the elementwise product "." becomes 36 matrix products
 * [tiles x C_in] [C_in x C_out], one per transform point, on the shared
 * 6 x 16 FMA tile: 36 products per input channel for 16 outputs, where
 * the direct convolution takes 144 and F(2x2, 3x3) takes 64, and the
 * transforms move 2.25 floats per output instead of 4. The price is
 * accuracy: the larger coefficients (up to 8 and 1/24) round about ten
 * times more than F(2x2, 3x3) does, still within 1e-5 of the outputs'
 * scale on the tested cases (tests/c/test_conv2d_forward.c).
 *
 * Tiles are processed in chunks whose transformed input and output stay
 * in the L2 cache, tile-major (a tile's 36 points together). Each image is
 * copied once into a zero-bordered frame, so that every tile reads its
 * 6x6 pixels at fixed offsets. Transforms are vectorised over 8 channels. */
#include "conv_winograd4.h"

#include <immintrin.h>
#include <string.h>
#include "conv_tile.h"

#define SIDE 6 /* input tile */
#define OUT 4  /* output tile */
#define POINTS (SIDE * SIDE)
/* Target floats of one chunk's transformed input and output: 384 KB. */
#define CHUNK_FLOATS (96 * 1024)

#define VEC_FN static inline __attribute__((always_inline, target("avx2,fma")))
#define UNROLL _Pragma("GCC unroll 36")

bool st_winograd4_fits(const st_conv2d_geom *g)
{
    return g->k_h == 3 && g->k_w == 3 && g->stride_h == 1 && g->stride_w == 1 && g->in_c % 8 == 0 &&
           g->out_c % ST_TILE_COLS == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* ---- the 1-d transforms, on 8 channels at a time ---- */

/* B^T d for d of 6, in place. */
VEC_FN void input_1d(__m256 *d0, __m256 *d1, __m256 *d2, __m256 *d3, __m256 *d4, __m256 *d5)
{
    const __m256 four = _mm256_set1_ps(4.0f), five = _mm256_set1_ps(5.0f), two = _mm256_set1_ps(2.0f);
    const __m256 a = *d0, b = *d1, c = *d2, e = *d3, f = *d4, h = *d5;
    const __m256 t0 = _mm256_fnmadd_ps(four, c, f); /* d4 - 4 d2 */
    const __m256 t1 = _mm256_fnmadd_ps(four, b, e); /* d3 - 4 d1 */
    const __m256 t2 = _mm256_sub_ps(f, c);          /* d4 - d2 */
    const __m256 t3 = _mm256_mul_ps(two, _mm256_sub_ps(e, b)); /* 2 (d3 - d1) */
    *d0 = _mm256_fmadd_ps(four, a, _mm256_fnmadd_ps(five, c, f));
    *d1 = _mm256_add_ps(t0, t1);
    *d2 = _mm256_sub_ps(t0, t1);
    *d3 = _mm256_add_ps(t2, t3);
    *d4 = _mm256_sub_ps(t2, t3);
    *d5 = _mm256_fmadd_ps(four, b, _mm256_fnmadd_ps(five, e, h));
}

/* G g for a 3-tap g: (g0/4, -(g0+g1+g2)/6, -(g0-g1+g2)/6,
 * g0/24 + g1/12 + g2/6, g0/24 - g1/12 + g2/6, g2). */
VEC_FN void kernel_1d(__m256 g0, __m256 g1, __m256 g2, __m256 u[SIDE])
{
    const __m256 outer = _mm256_add_ps(g0, g2), sixth = _mm256_set1_ps(-1.0f / 6.0f);
    const __m256 t = _mm256_fmadd_ps(g0, _mm256_set1_ps(1.0f / 24.0f), _mm256_mul_ps(g2, _mm256_set1_ps(1.0f / 6.0f)));
    const __m256 twelfth = _mm256_set1_ps(1.0f / 12.0f);
    u[0] = _mm256_mul_ps(g0, _mm256_set1_ps(0.25f));
    u[1] = _mm256_mul_ps(_mm256_add_ps(outer, g1), sixth);
    u[2] = _mm256_mul_ps(_mm256_sub_ps(outer, g1), sixth);
    u[3] = _mm256_fmadd_ps(g1, twelfth, t);
    u[4] = _mm256_fnmadd_ps(g1, twelfth, t);
    u[5] = g2;
}

/* A^T m for m of 6: (m0 + m1 + m2 + m3 + m4, m1 - m2 + 2 (m3 - m4),
 * m1 + m2 + 4 (m3 + m4), m1 - m2 + 8 (m3 - m4) + m5). */
VEC_FN void output_1d(const __m256 m[SIDE], __m256 y[OUT])
{
    const __m256 a = _mm256_add_ps(m[1], m[2]), b = _mm256_sub_ps(m[1], m[2]);
    const __m256 c = _mm256_add_ps(m[3], m[4]), d = _mm256_sub_ps(m[3], m[4]);
    y[0] = _mm256_add_ps(_mm256_add_ps(m[0], a), c);
    y[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), d, b);
    y[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), c, a);
    y[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), d, b), m[5]);
}

/* ---- layout ---- */

/* One call's geometry and workspace: the transformed kernel u (point pt
 * at pt * point), a chunk's transformed input v and output m (tile i,
 * point pt at i * POINTS * C + pt * C) and the frame of one image. */
typedef struct plan {
    int k, n;                 /* input and output channels */
    int tiles_h, tiles_w, tiles, chunk;
    int frame_h, frame_w;     /* frame pixel (r, c) is input pixel (r - pad_top, c - pad_left) */
    size_t point;
    float *u, *v, *m, *frame;
} plan;

static plan plan_of(const st_conv2d_geom *g, float *ws, size_t *floats)
{
    plan p;
    p.k = g->in_c;
    p.n = g->out_c;
    p.tiles_h = (g->out_h + OUT - 1) / OUT;
    p.tiles_w = (g->out_w + OUT - 1) / OUT;
    p.tiles = g->batch * p.tiles_h * p.tiles_w;
    p.chunk = CHUNK_FLOATS / (POINTS * (p.k + p.n)) / ST_TILE_ROWS * ST_TILE_ROWS;
    if (p.chunk < ST_TILE_ROWS) p.chunk = ST_TILE_ROWS;
    p.frame_h = OUT * p.tiles_h + 2;
    p.frame_w = OUT * p.tiles_w + 2;
    /* a little more than K x N, so that the 36 points do not share cache sets */
    p.point = (size_t)p.k * p.n + 16;
    size_t at = 0;
    p.u = ws ? ws + at : NULL;
    at += p.point * POINTS;
    p.v = ws ? ws + at : NULL;
    at += (size_t)p.chunk * POINTS * p.k;
    p.m = ws ? ws + at : NULL;
    at += (size_t)p.chunk * POINTS * p.n;
    p.frame = ws ? ws + at : NULL;
    at += (size_t)p.frame_h * p.frame_w * p.k;
    if (floats) *floats = at;
    return p;
}

size_t st_winograd4_workspace_floats(const st_conv2d_geom *g)
{
    size_t floats;
    plan_of(g, NULL, &floats);
    return floats;
}

/* ---- the passes ---- */

/* u[pt][k][n] = (G g G^T)[pt] for the kernel g of input channel k and
 * output channel n, from the HWIO kernel w. */
__attribute__((target("avx2,fma"))) static void transform_kernel(const plan *p, const float *w)
{
    for (int k = 0; k < p->k; k++)
        for (int n0 = 0; n0 < p->n; n0 += 8) {
            __m256 rows[SIDE][3]; /* G g: 6 rows of 3 columns */
            UNROLL
            for (int x = 0; x < 3; x++) {
                const float *tap = w + ((size_t)x * p->k + k) * p->n + n0;
                const size_t down = (size_t)3 * p->k * p->n; /* one kernel row */
                __m256 u[SIDE];
                kernel_1d(_mm256_loadu_ps(tap), _mm256_loadu_ps(tap + down), _mm256_loadu_ps(tap + 2 * down), u);
                UNROLL
                for (int y = 0; y < SIDE; y++) rows[y][x] = u[y];
            }
            float *out = p->u + (size_t)k * p->n + n0;
            UNROLL
            for (int y = 0; y < SIDE; y++) {
                __m256 u[SIDE];
                kernel_1d(rows[y][0], rows[y][1], rows[y][2], u);
                UNROLL
                for (int x = 0; x < SIDE; x++) _mm256_storeu_ps(out + (y * SIDE + x) * p->point, u[x]);
            }
        }
}

/* Copies image `img` of x into the frame, zero outside the image. */
static void load_frame(const st_conv2d_geom *g, const plan *p, const float *x, int img)
{
    const size_t c = (size_t)p->k, row = (size_t)p->frame_w * c;
    const float *src = x + (size_t)img * g->in_h * g->in_w * c;
    /* frame columns pad_left .. pad_left + in_w - 1 hold the image's, when inside the frame */
    const int first = g->pad_left, inside = g->in_w < p->frame_w - first ? g->in_w : p->frame_w - first;
    for (int r = 0; r < p->frame_h; r++) {
        float *out = p->frame + (size_t)r * row;
        const int iy = r - g->pad_top;
        if (iy < 0 || iy >= g->in_h || inside <= 0) {
            memset(out, 0, row * sizeof *out);
            continue;
        }
        memset(out, 0, (size_t)first * c * sizeof *out);
        memcpy(out + (size_t)first * c, src + (size_t)iy * g->in_w * c, (size_t)inside * c * sizeof *out);
        memset(out + (size_t)(first + inside) * c, 0, (size_t)(p->frame_w - first - inside) * c * sizeof *out);
    }
}

/* Where tile t of the batch sits: image, and its first output row and column. */
static void tile_at(const plan *p, int t, int *img, int *oy, int *ox)
{
    const int per = p->tiles_h * p->tiles_w, r = t % per;
    *img = t / per;
    *oy = OUT * (r / p->tiles_w);
    *ox = OUT * (r % p->tiles_w);
}

/* v[i][pt] = (B^T d B)[pt] for tiles t0 .. t0 + count - 1; *loaded is the
 * image in the frame (-1: none). */
__attribute__((target("avx2,fma"))) static void transform_input(const st_conv2d_geom *g, const plan *p,
                                                                const float *x, int t0, int count, int *loaded)
{
    const size_t c = (size_t)p->k, row = (size_t)p->frame_w * c;
    for (int i = 0; i < count; i++) {
        int img, oy, ox;
        tile_at(p, t0 + i, &img, &oy, &ox);
        if (*loaded != img) {
            load_frame(g, p, x, img);
            *loaded = img;
        }
        /* output (oy, ox) reads frame rows oy .. oy + 5 and columns ox .. ox + 5 */
        const float *corner = p->frame + (size_t)oy * row + (size_t)ox * c;
        float *out = p->v + (size_t)i * POINTS * c;
        for (size_t c0 = 0; c0 < c; c0 += 8) {
            __m256 d[POINTS];
            UNROLL
            for (int r = 0; r < POINTS; r++) d[r] = _mm256_loadu_ps(corner + (r / SIDE) * row + (r % SIDE) * c + c0);
            UNROLL
            for (int col = 0; col < SIDE; col++)
                input_1d(&d[col], &d[SIDE + col], &d[2 * SIDE + col], &d[3 * SIDE + col], &d[4 * SIDE + col],
                         &d[5 * SIDE + col]);
            UNROLL
            for (int y = 0; y < SIDE; y++)
                input_1d(&d[SIDE * y], &d[SIDE * y + 1], &d[SIDE * y + 2], &d[SIDE * y + 3], &d[SIDE * y + 4],
                         &d[SIDE * y + 5]);
            UNROLL
            for (int r = 0; r < POINTS; r++) _mm256_storeu_ps(out + r * c + c0, d[r]);
        }
    }
}

/* m[i][pt] = v[i][pt] u[pt] for the count tiles of the chunk. */
__attribute__((target("avx2,fma"))) static void multiply(const plan *p, int count)
{
    const size_t k_all = (size_t)p->k, n_all = (size_t)p->n, vt = POINTS * k_all, mt = POINTS * n_all;
    for (int pt = 0; pt < POINTS; pt++) {
        const float *vp = p->v + pt * k_all, *up = p->u + pt * p->point;
        float *mp = p->m + pt * n_all;
        for (int i0 = 0; i0 < count; i0 += ST_TILE_ROWS) {
            const int rows = count - i0 < ST_TILE_ROWS ? count - i0 : ST_TILE_ROWS;
            const float *r[ST_TILE_ROWS];
            for (int j = 0; j < ST_TILE_ROWS; j++) r[j] = vp + (i0 + (j < rows ? j : rows - 1)) * vt;
            for (size_t n0 = 0; n0 < n_all; n0 += ST_TILE_COLS) {
                const __m256 z = _mm256_setzero_ps();
                st_tile t = {z, z, z, z, z, z, z, z, z, z, z, z};
                const float *uk = up + n0;
                for (size_t k = 0; k < k_all; k++, uk += n_all)
                    st_tile_step(&t, _mm256_loadu_ps(uk), _mm256_loadu_ps(uk + 8), r[0] + k, r[1] + k, r[2] + k,
                                 r[3] + k, r[4] + k, r[5] + k);
                __m256 out[ST_TILE_ROWS][2];
                st_tile_rows(&t, out);
                for (int j = 0; j < rows; j++) {
                    float *at = mp + (i0 + j) * mt + n0;
                    _mm256_storeu_ps(at, out[j][0]);
                    _mm256_storeu_ps(at + 8, out[j][1]);
                }
            }
        }
    }
}

/* y's 4x4 output tiles t0 .. t0 + count - 1 = A^T m A (+ b, + residual,
 * then max(., 0) when relu); pixels outside y are not written. */
__attribute__((target("avx2,fma"))) static void transform_output(const st_conv2d_geom *g, const plan *p, int t0,
                                                                 int count, const float *b, const float *residual,
                                                                 bool relu, float *y)
{
    const size_t c = (size_t)p->n;
    const __m256 zero = _mm256_setzero_ps();
    for (int i = 0; i < count; i++) {
        int img, oy, ox;
        tile_at(p, t0 + i, &img, &oy, &ox);
        const int rows = g->out_h - oy < OUT ? g->out_h - oy : OUT, cols = g->out_w - ox < OUT ? g->out_w - ox : OUT;
        const size_t first = (((size_t)img * g->out_h + oy) * g->out_w + ox) * c;
        const float *in = p->m + (size_t)i * POINTS * c;
        for (size_t c0 = 0; c0 < c; c0 += 8) {
            __m256 half[OUT][SIDE], out[OUT][OUT];
            UNROLL
            for (int col = 0; col < SIDE; col++) {
                __m256 m[SIDE], yy[OUT];
                UNROLL
                for (int r = 0; r < SIDE; r++) m[r] = _mm256_loadu_ps(in + (r * SIDE + col) * c + c0);
                output_1d(m, yy);
                UNROLL
                for (int r = 0; r < OUT; r++) half[r][col] = yy[r];
            }
            UNROLL
            for (int r = 0; r < OUT; r++) output_1d(half[r], out[r]);
            const __m256 bias = b ? _mm256_loadu_ps(b + c0) : zero;
            for (int r = 0; r < rows; r++)
                for (int q = 0; q < cols; q++) {
                    const size_t at = first + ((size_t)r * g->out_w + q) * c + c0;
                    __m256 v = b ? _mm256_add_ps(out[r][q], bias) : out[r][q];
                    if (residual) v = _mm256_add_ps(v, _mm256_loadu_ps(residual + at));
                    /* max returns its second operand for NaN, as y > 0 ? y : 0 does */
                    if (relu) v = _mm256_max_ps(v, zero);
                    _mm256_storeu_ps(y + at, v);
                }
        }
    }
}

void st_winograd4_forward(const st_conv2d_geom *g, const float *x, const float *w, const float *b,
                          const float *residual, bool relu, float *y, float *workspace)
{
    plan p = plan_of(g, workspace, NULL);
    transform_kernel(&p, w);
    int loaded = -1;
    for (int t0 = 0; t0 < p.tiles; t0 += p.chunk) {
        const int count = p.tiles - t0 < p.chunk ? p.tiles - t0 : p.chunk;
        transform_input(g, &p, x, t0, count, &loaded);
        multiply(&p, count);
        transform_output(g, &p, t0, count, b, residual, relu, y);
    }
}
