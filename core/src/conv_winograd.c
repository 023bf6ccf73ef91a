/* Winograd F(m x m, 3x3), m = 2 or 4, for 5x5 stride-2 and 3x3 stride-1
 * convolutions, their adjoints and their weight gradients (see
 * conv_winograd.h).
 *
 * Space to depth. Cut the input into 2x2 blocks and make each block one
 * pixel with four times the channels, one group per phase (qh, qw). With
 * input row i = 2j + q, output row o of a stride-2 convolution with
 * padding p reads block rows j = o + D, D = dmin .. dmin + 2, and block
 * tap (D, q) is kernel tap t = 2D + q + p (none when t is outside 0..4).
 * So the 5x5 stride-2 convolution is a 3x3 stride-1 convolution on the
 * block grid, whose kernel has 36 taps of which 25 are the original ones.
 * Its adjoint is the 3x3 correlation of the output-space tensor with the
 * flipped, transposed block kernel, written back through the blocks.
 * A 3x3 stride-1 convolution is the same with blocks of one pixel.
 *
 * Winograd's minimal filtering F(m, 3) computes m outputs of a 3-tap
 * filter with m + 2 products instead of 3m: in 2-d, each m x m output
 * tile is
 *   Y = A^T [ (G g G^T) . (B^T d B) ] A
 * for its (m + 2) x (m + 2) input tile d and the 3x3 kernel g, where the
 * product "." is elementwise over the (m + 2)^2 transform points and,
 * summed over input channels, becomes one matrix product [tiles x K]
 * [K x N] per point. F(2, 3) interpolates at 0, 1, -1 and infinity: 16
 * products per 4 outputs, against 36 for the direct 3x3 kernel. F(4, 3)
 * adds 2 and -2: 36 products per 16 outputs, and its transforms move 2.25
 * floats per output instead of 4, at the price of about ten times the
 * rounding (coefficients up to 8 and 1/24). Each call takes 4x4 tiles
 * when they need clearly fewer products for its grid, counting the tiles
 * that overhang the grid's edge (st_winograd_tile).
 *
 * The weight gradient is the exact adjoint of the same algorithm: with
 * V = B^T d B per tile and dM = A dY A^T, dU = sum over tiles of V^T dM
 * per point and dg = G^T dU G. Block taps that stand for no kernel tap
 * are dropped there.
 *
 * Block taps that stand for no kernel tap make some phase groups of the
 * transformed kernel zero at some points; their products are skipped.
 *
 * Tiles are processed in chunks sized so that the transformed chunk stays
 * in the L2 cache; each point's product runs on the shared 6 x 16 FMA
 * tile. Transforms are vectorised over 8 channels (C_in % 8 == 0,
 * C_out % 16 == 0). The code is written once for both tile sizes: the
 * always-inline helpers take m as a constant, and each entry point
 * dispatches to the two instances. */
#include "conv_winograd.h"

#include <immintrin.h>
#include <string.h>
#include "conv_tile.h"

#define MAX_SIDE 6 /* input tile side, m + 2 */
#define MAX_POINTS (MAX_SIDE * MAX_SIDE)
/* Target size (floats) of one chunk's transformed input and output: 384 KB. */
#define CHUNK_FLOATS (96 * 1024)

#define VEC_FN static inline __attribute__((always_inline, target("avx2,fma")))
/* Fully unrolled, the small fixed loops over a tile keep it in registers. */
#define UNROLL _Pragma("GCC unroll 36")

static int side_of(int m) { return m + 2; }
static int points_of(int m) { return (m + 2) * (m + 2); }

/* One spatial axis of the convolution, seen through blocks of f pixels
 * (f = stride: 2 for the 5x5 kernels, 1 for the 3x3 ones). */
typedef struct axis {
    int f, k, pad, dmin;
    int n_in, n_out; /* input and output pixels */
    int blocks;      /* blocks covering the input */
} axis;

static axis axis_of(int f, int k, int pad, int n_in, int n_out)
{
    return (axis){f, k, pad, -((pad + f - 1) / f), n_in, n_out, (n_in + f - 1) / f};
}

static axis axis_h(const st_conv2d_geom *g) { return axis_of(g->stride_h, g->k_h, g->pad_top, g->in_h, g->out_h); }
static axis axis_w(const st_conv2d_geom *g) { return axis_of(g->stride_w, g->k_w, g->pad_left, g->in_w, g->out_w); }

/* The kernel tap that block tap T (0..2) and phase q stand for, or -1. */
static int tap_of(const axis *a, int T, int q)
{
    int t = a->f * (T + a->dmin) + q + a->pad;
    return t >= 0 && t < a->k ? t : -1;
}

/* Phase groups per block: f x f (the block kernel has groups x C_in rows). */
static int groups_of(const st_conv2d_geom *g) { return g->stride_h * g->stride_w; }

static int tiles_of(int n, int m) { return (n + m - 1) / m; }

/* A tensor [N, h, w, c] read or written through blocks of f x f pixels
 * (f = 2: four phase groups of c channels; f = 1: the pixels themselves). */
typedef struct side {
    int h, w, c, f;
} side;

static size_t image_floats(const side *s) { return (size_t)s->h * s->w * s->c; }

/* How tiles are laid out: tiles_h x tiles_w per image of m x m output
 * blocks, the tile at (ty, tx) covering block rows m ty + off_h .. (m + 2
 * rows in, m out) and the same in x. */
typedef struct tiling {
    int m, tiles_h, tiles_w, off_h, off_w;
} tiling;

/* Where tile t (counted over the whole batch) lives. */
static void tile_at(const tiling *tl, int t, int *n, int *by, int *bx)
{
    const int per = tl->tiles_h * tl->tiles_w, r = t % per;
    *n = t / per;
    *by = tl->m * (r / tl->tiles_w);
    *bx = tl->m * (r % tl->tiles_w);
}

/* The pixel of block (j, i), phase (qh, qw); NULL outside the tensor. */
static const float *block_pixel(const side *s, const float *img, int j, int i, int qh, int qw)
{
    const int y = s->f * j + qh, x = s->f * i + qw;
    if (y < 0 || y >= s->h || x < 0 || x >= s->w) return NULL;
    return img + ((size_t)y * s->w + x) * s->c;
}

/* ---- the 1-d transforms, on 8 channels at a time; d[i * step] is element i ---- */

VEC_FN __m256 k8(float v) { return _mm256_set1_ps(v); }

/* B^T d, in place. */
VEC_FN void input_1d(const int m, __m256 *d, const int step)
{
    if (m == 2) {
        const __m256 a = d[0], b = d[step], c = d[2 * step], e = d[3 * step];
        d[0] = _mm256_sub_ps(a, c);
        d[step] = _mm256_add_ps(b, c);
        d[2 * step] = _mm256_sub_ps(c, b);
        d[3 * step] = _mm256_sub_ps(b, e);
        return;
    }
    const __m256 a = d[0], b = d[step], c = d[2 * step], e = d[3 * step], f = d[4 * step], h = d[5 * step];
    const __m256 t0 = _mm256_fnmadd_ps(k8(4), c, f);                 /* d4 - 4 d2 */
    const __m256 t1 = _mm256_fnmadd_ps(k8(4), b, e);                 /* d3 - 4 d1 */
    const __m256 t2 = _mm256_sub_ps(f, c);                           /* d4 - d2 */
    const __m256 t3 = _mm256_mul_ps(k8(2), _mm256_sub_ps(e, b));     /* 2 (d3 - d1) */
    d[0] = _mm256_fmadd_ps(k8(4), a, _mm256_fnmadd_ps(k8(5), c, f)); /* 4 d0 - 5 d2 + d4 */
    d[step] = _mm256_add_ps(t0, t1);
    d[2 * step] = _mm256_sub_ps(t0, t1);
    d[3 * step] = _mm256_add_ps(t2, t3);
    d[4 * step] = _mm256_sub_ps(t2, t3);
    d[5 * step] = _mm256_fmadd_ps(k8(4), b, _mm256_fnmadd_ps(k8(5), e, h)); /* 4 d1 - 5 d3 + d5 */
}

/* u = G g for a 3-tap g. F(2, 3): (g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2);
 * F(4, 3): (g0 / 4, -(g0 + g1 + g2) / 6, -(g0 - g1 + g2) / 6,
 * g0 / 24 + g1 / 12 + g2 / 6, g0 / 24 - g1 / 12 + g2 / 6, g2). */
VEC_FN void kernel_1d(const int m, __m256 g0, __m256 g1, __m256 g2, __m256 *u)
{
    const __m256 outer = _mm256_add_ps(g0, g2);
    if (m == 2) {
        u[0] = g0;
        u[1] = _mm256_mul_ps(k8(0.5f), _mm256_add_ps(outer, g1));
        u[2] = _mm256_mul_ps(k8(0.5f), _mm256_sub_ps(outer, g1));
        u[3] = g2;
        return;
    }
    const __m256 t = _mm256_fmadd_ps(g0, k8(1.0f / 24.0f), _mm256_mul_ps(g2, k8(1.0f / 6.0f)));
    u[0] = _mm256_mul_ps(g0, k8(0.25f));
    u[1] = _mm256_mul_ps(_mm256_add_ps(outer, g1), k8(-1.0f / 6.0f));
    u[2] = _mm256_mul_ps(_mm256_sub_ps(outer, g1), k8(-1.0f / 6.0f));
    u[3] = _mm256_fmadd_ps(g1, k8(1.0f / 12.0f), t);
    u[4] = _mm256_fnmadd_ps(g1, k8(1.0f / 12.0f), t);
    u[5] = g2;
}

/* g = G^T u, the adjoint of kernel_1d. */
VEC_FN void kernel_1d_adjoint(const int m, const __m256 *u, __m256 g[3])
{
    if (m == 2) {
        const __m256 s = _mm256_mul_ps(k8(0.5f), _mm256_add_ps(u[1], u[2]));
        g[0] = _mm256_add_ps(u[0], s);
        g[1] = _mm256_mul_ps(k8(0.5f), _mm256_sub_ps(u[1], u[2]));
        g[2] = _mm256_add_ps(s, u[3]);
        return;
    }
    const __m256 s12 = _mm256_add_ps(u[1], u[2]), d12 = _mm256_sub_ps(u[1], u[2]);
    const __m256 s34 = _mm256_add_ps(u[3], u[4]), d34 = _mm256_sub_ps(u[3], u[4]);
    /* g0 = u0 / 4 - s12 / 6 + s34 / 24, g1 = -d12 / 6 + d34 / 12, g2 = (s34 - s12) / 6 + u5 */
    g[0] = _mm256_fmadd_ps(u[0], k8(0.25f), _mm256_fmadd_ps(s12, k8(-1.0f / 6.0f), _mm256_mul_ps(s34, k8(1.0f / 24.0f))));
    g[1] = _mm256_fmadd_ps(d12, k8(-1.0f / 6.0f), _mm256_mul_ps(d34, k8(1.0f / 12.0f)));
    g[2] = _mm256_fmadd_ps(_mm256_sub_ps(s34, s12), k8(1.0f / 6.0f), u[5]);
}

/* y = A^T d for d[i * step], i < m + 2. F(2, 3): (d0 + d1 + d2, d1 - d2 - d3);
 * F(4, 3): (d0 + d1 + d2 + d3 + d4, d1 - d2 + 2 (d3 - d4),
 * d1 + d2 + 4 (d3 + d4), d1 - d2 + 8 (d3 - d4) + d5). */
VEC_FN void output_1d(const int m, const __m256 *d, const int step, __m256 *y)
{
    if (m == 2) {
        y[0] = _mm256_add_ps(_mm256_add_ps(d[0], d[step]), d[2 * step]);
        y[1] = _mm256_sub_ps(_mm256_sub_ps(d[step], d[2 * step]), d[3 * step]);
        return;
    }
    const __m256 a = _mm256_add_ps(d[step], d[2 * step]), b = _mm256_sub_ps(d[step], d[2 * step]);
    const __m256 c = _mm256_add_ps(d[3 * step], d[4 * step]), e = _mm256_sub_ps(d[3 * step], d[4 * step]);
    y[0] = _mm256_add_ps(_mm256_add_ps(d[0], a), c);
    y[1] = _mm256_fmadd_ps(k8(2), e, b);
    y[2] = _mm256_fmadd_ps(k8(4), c, a);
    y[3] = _mm256_add_ps(_mm256_fmadd_ps(k8(8), e, b), d[5 * step]);
}

/* d = A e for e of m, the adjoint of output_1d, into d[i * step].
 * F(2, 3): (e0, e0 + e1, e0 - e1, -e1); F(4, 3): (e0, e0 + e1 + e2 + e3,
 * e0 - e1 + e2 - e3, e0 + 2 e1 + 4 e2 + 8 e3, e0 - 2 e1 + 4 e2 - 8 e3, e3). */
VEC_FN void output_1d_adjoint(const int m, const __m256 *e, __m256 *d, const int step)
{
    if (m == 2) {
        d[0] = e[0];
        d[step] = _mm256_add_ps(e[0], e[1]);
        d[2 * step] = _mm256_sub_ps(e[0], e[1]);
        d[3 * step] = _mm256_sub_ps(_mm256_setzero_ps(), e[1]);
        return;
    }
    const __m256 even = _mm256_add_ps(e[0], e[2]), odd = _mm256_add_ps(e[1], e[3]);
    const __m256 even4 = _mm256_fmadd_ps(k8(4), e[2], e[0]), odd8 = _mm256_fmadd_ps(k8(8), e[3], _mm256_mul_ps(k8(2), e[1]));
    d[0] = e[0];
    d[step] = _mm256_add_ps(even, odd);
    d[2 * step] = _mm256_sub_ps(even, odd);
    d[3 * step] = _mm256_add_ps(even4, odd8);
    d[4 * step] = _mm256_sub_ps(even4, odd8);
    d[5 * step] = e[3];
}

VEC_FN __m256 load_or_zero(const float *p) { return p ? _mm256_loadu_ps(p) : _mm256_setzero_ps(); }

/* ---- kernels ---- */

/* Floats between two points of a kernel-sized array: a little more than
 * K x N, so that the points do not share cache sets when K x N is a
 * large power of two. */
static size_t kernel_point(const st_conv2d_geom *g) { return (size_t)groups_of(g) * g->in_c * g->out_c + 16; }

/* Where block tap (y, x) of block-kernel row k = (qh, qw, c) lives in
 * the HWIO kernel: the offset of its out_c floats, or -1 (no kernel tap).
 * Flipped: the taps in reverse order along both axes. */
static void block_taps(const st_conv2d_geom *g, const axis *ah, const axis *aw, int k, bool flipped,
                       ptrdiff_t at[3][3])
{
    const int q = k / g->in_c, c = k % g->in_c, qh = q / g->stride_w, qw = q % g->stride_w;
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 3; x++) {
            const int th = tap_of(ah, flipped ? 2 - y : y, qh), tw = tap_of(aw, flipped ? 2 - x : x, qw);
            at[y][x] = th < 0 || tw < 0 ? -1 : ((ptrdiff_t)(th * g->k_w + tw) * g->in_c + c) * g->out_c;
        }
}

/* u = G g G^T for one block-kernel row and 8 output channels: g's taps
 * are read at w + at[y][x] (zero where at < 0), u's points written
 * `point` floats apart from u. */
VEC_FN void hwio_to_points(const int m, const float *w, const ptrdiff_t at[3][3], float *u, size_t point)
{
    const int s = side_of(m);
    __m256 rows[MAX_SIDE][3]; /* G g: s rows of 3 columns */
    UNROLL
    for (int x = 0; x < 3; x++) {
        __m256 col[3];
        UNROLL
        for (int y = 0; y < 3; y++) col[y] = at[y][x] < 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(w + at[y][x]);
        __m256 t[MAX_SIDE];
        kernel_1d(m, col[0], col[1], col[2], t);
        UNROLL
        for (int y = 0; y < s; y++) rows[y][x] = t[y];
    }
    UNROLL
    for (int y = 0; y < s; y++) {
        __m256 t[MAX_SIDE];
        kernel_1d(m, rows[y][0], rows[y][1], rows[y][2], t);
        UNROLL
        for (int x = 0; x < s; x++) _mm256_storeu_ps(u + (y * s + x) * point, t[x]);
    }
}

/* The adjoint: dg = G^T du G, written to the taps that are kernel taps. */
VEC_FN void points_to_hwio(const int m, const float *du, size_t point, const ptrdiff_t at[3][3], float *dw)
{
    const int s = side_of(m);
    __m256 cols[MAX_SIDE][3]; /* G^T along x for each of the s rows */
    UNROLL
    for (int y = 0; y < s; y++) {
        __m256 u[MAX_SIDE];
        UNROLL
        for (int x = 0; x < s; x++) u[x] = _mm256_loadu_ps(du + (y * s + x) * point);
        kernel_1d_adjoint(m, u, cols[y]);
    }
    UNROLL
    for (int x = 0; x < 3; x++) {
        __m256 u[MAX_SIDE], gx[3];
        UNROLL
        for (int y = 0; y < s; y++) u[y] = cols[y][x];
        kernel_1d_adjoint(m, u, gx);
        UNROLL
        for (int y = 0; y < 3; y++)
            if (at[y][x] >= 0) _mm256_storeu_ps(dw + at[y][x], gx[y]);
    }
}

/* The kernel transform u[point][k][n] = (G g G^T)[point], g the block
 * kernel (flipped: its flip) of input channel k = (qh, qw, c) and output
 * channel n, from the HWIO kernel (to_points), or its adjoint from du
 * back to the HWIO dw, keeping the taps that are kernel taps. */
VEC_FN void kernel_pass_m(const int m, const st_conv2d_geom *g, bool to_points, bool flipped, const float *src,
                          float *dst)
{
    const axis ah = axis_h(g), aw = axis_w(g);
    const int n_out = g->out_c;
    const size_t point = kernel_point(g);
    for (int k = 0; k < groups_of(g) * g->in_c; k++) {
        ptrdiff_t at[3][3];
        block_taps(g, &ah, &aw, k, flipped, at);
        for (int n0 = 0; n0 < n_out; n0 += 8) {
            const size_t row = (size_t)k * n_out + n0; /* within a point */
            if (to_points)
                hwio_to_points(m, src + n0, at, dst + row, point);
            else
                points_to_hwio(m, src + row, point, at, dst + n0);
        }
    }
}

__attribute__((target("avx2,fma"))) static void kernel_pass(int m, const st_conv2d_geom *g, bool to_points,
                                                            bool flipped, const float *src, float *dst)
{
    if (m == 2)
        kernel_pass_m(2, g, to_points, flipped, src, dst);
    else
        kernel_pass_m(4, g, to_points, flipped, src, dst);
}

/* ut's points transposed: [k][n] to [n][k]. */
static void transpose_points(const float *u, int k, int n, int points, size_t point, float *ut)
{
    for (int p = 0; p < points; p++) {
        const float *src = u + p * point;
        float *dst = ut + p * point;
        for (int i = 0; i < k; i++)
            for (int j = 0; j < n; j++) dst[(size_t)j * k + i] = src[(size_t)i * n + j];
    }
}

/* ---- tile transforms ---- */

/* Where a chunk's arrays keep point pt of tile i: v at i * vt + pt * vp,
 * m at i * mt + pt * mp (tile-major: a tile's points are written and
 * read together); kernel arrays keep point pt at pt * u. */
typedef struct strides {
    size_t vp, vt, u, mp, mt;
} strides;

/* The image a tile reads, copied into a zero-bordered frame that covers
 * every block its tiles read, so that the blocks of a tile sit at fixed
 * offsets from the tile's corner. */
typedef struct frame {
    int image;  /* the image in buf, or -1 */
    int h, w;   /* frame size in pixels */
    int y0, x0; /* input pixel at frame (0, 0) */
    float *buf;
} frame;

static frame frame_of(const side *s, const tiling *tl, float *buf)
{
    return (frame){-1,  s->f * (tl->m * tl->tiles_h + 2), s->f * (tl->m * tl->tiles_w + 2), s->f * tl->off_h,
                   s->f * tl->off_w, buf};
}

static size_t frame_floats(const side *s, const tiling *tl)
{
    return (size_t)s->f * (tl->m * tl->tiles_h + 2) * s->f * (tl->m * tl->tiles_w + 2) * s->c;
}

static void frame_load(frame *fr, const side *s, const float *src, int n)
{
    const size_t c = (size_t)s->c, row = (size_t)fr->w * c;
    const float *img = src + (size_t)n * image_floats(s);
    const int left = fr->x0 < 0 ? -fr->x0 : 0, first = fr->x0 > 0 ? fr->x0 : 0;
    int inside = s->w - first;
    if (inside > fr->w - left) inside = fr->w - left;
    if (inside < 0) inside = 0;
    for (int y = 0; y < fr->h; y++) {
        float *out = fr->buf + (size_t)y * row;
        const int iy = fr->y0 + y;
        if (iy < 0 || iy >= s->h || inside == 0) {
            memset(out, 0, row * sizeof *out);
            continue;
        }
        memset(out, 0, (size_t)left * c * sizeof *out);
        memcpy(out + (size_t)left * c, img + ((size_t)iy * s->w + first) * c, (size_t)inside * c * sizeof *out);
        memset(out + (size_t)(left + inside) * c, 0, (size_t)(fr->w - left - inside) * c * sizeof *out);
    }
    fr->image = n;
}

/* v[i][point][k] = (B^T d B)[point] for tiles t0 .. t0 + count - 1 of src,
 * k = (group, channel). */
VEC_FN void transform_input_m(const int m, const side *s, const float *src, const tiling *tl, frame *fr, int t0,
                              int count, float *v, const strides *st)
{
    const int sd = side_of(m), points = points_of(m), groups = s->f * s->f;
    const size_t row = (size_t)fr->w * s->c, vp = st->vp, vt = st->vt;
    size_t offset[4][MAX_POINTS]; /* of each group's pixels from the tile's corner */
    for (int gi = 0; gi < groups; gi++)
        for (int r = 0; r < points; r++)
            offset[gi][r] =
                (size_t)(s->f * (r / sd) + gi / s->f) * row + (size_t)(s->f * (r % sd) + gi % s->f) * s->c;
    for (int i = 0; i < count; i++) {
        int n, by, bx;
        tile_at(tl, t0 + i, &n, &by, &bx);
        if (fr->image != n) frame_load(fr, s, src, n);
        const float *corner = fr->buf + (size_t)s->f * by * row + (size_t)s->f * bx * s->c;
        for (int gi = 0; gi < groups; gi++) {
            float *out = v + i * vt + (size_t)gi * s->c;
            for (int c0 = 0; c0 < s->c; c0 += 8) {
                __m256 d[MAX_POINTS];
                UNROLL
                for (int r = 0; r < points; r++) d[r] = _mm256_loadu_ps(corner + offset[gi][r] + c0);
                UNROLL
                for (int x = 0; x < sd; x++) input_1d(m, d + x, sd);
                UNROLL
                for (int y = 0; y < sd; y++) input_1d(m, d + y * sd, 1);
                UNROLL
                for (int r = 0; r < points; r++) _mm256_storeu_ps(out + r * vp + c0, d[r]);
            }
        }
    }
}

__attribute__((target("avx2,fma"))) static void transform_input(const side *s, const float *src, const tiling *tl,
                                                                frame *fr, int t0, int count, float *v,
                                                                const strides *st)
{
    if (tl->m == 2)
        transform_input_m(2, s, src, tl, fr, t0, count, v, st);
    else
        transform_input_m(4, s, src, tl, fr, t0, count, v, st);
}

/* dm[i][point][n] = (A e A^T)[point] for the m x m output tiles of e (a
 * plain tensor); outputs outside e count as zero. */
VEC_FN void transform_output_grad_m(const int m, const side *s, const float *e, const tiling *tl, int t0, int count,
                                    float *dm, const strides *st)
{
    const int sd = side_of(m), points = points_of(m);
    const size_t mp = st->mp, mt = st->mt;
    for (int i = 0; i < count; i++) {
        int n, by, bx;
        tile_at(tl, t0 + i, &n, &by, &bx);
        const float *img = e + (size_t)n * image_floats(s);
        const float *p[16];
        for (int r = 0; r < m * m; r++) p[r] = block_pixel(s, img, by + r / m, bx + r % m, 0, 0);
        float *out = dm + i * mt;
        for (int c0 = 0; c0 < s->c; c0 += 8) {
            __m256 cols[4][MAX_SIDE], d[MAX_POINTS];
            UNROLL
            for (int x = 0; x < m; x++) { /* A along y: each output column becomes sd rows */
                __m256 col[4];
                UNROLL
                for (int y = 0; y < m; y++) col[y] = load_or_zero(p[y * m + x] ? p[y * m + x] + c0 : NULL);
                output_1d_adjoint(m, col, cols[x], 1);
            }
            UNROLL
            for (int y = 0; y < sd; y++) {
                __m256 row[4];
                UNROLL
                for (int x = 0; x < m; x++) row[x] = cols[x][y];
                output_1d_adjoint(m, row, d + y * sd, 1);
            }
            UNROLL
            for (int r = 0; r < points; r++) _mm256_storeu_ps(out + r * mp + c0, d[r]);
        }
    }
}

__attribute__((target("avx2,fma"))) static void transform_output_grad(const side *s, const float *e,
                                                                      const tiling *tl, int t0, int count, float *dm,
                                                                      const strides *st)
{
    if (tl->m == 2)
        transform_output_grad_m(2, s, e, tl, t0, count, dm, st);
    else
        transform_output_grad_m(4, s, e, tl, t0, count, dm, st);
}

/* What the output transform adds after A^T m A. */
typedef struct epilogue {
    const float *bias;     /* per channel of a group, or NULL */
    const float *residual; /* shaped like the output, or NULL */
    bool relu;
} epilogue;

/* dst's m x m output blocks of tiles t0 .. t0 + count - 1 from
 * mm[i][point][(group, channel)]; pixels outside dst are not written. */
VEC_FN void transform_output_m(const int m, const side *s, float *dst, const tiling *tl, int t0, int count,
                               const float *mm, const strides *st, const epilogue *ep)
{
    const int sd = side_of(m), groups = s->f * s->f;
    const size_t mp = st->mp, mt = st->mt;
    const __m256 zero = _mm256_setzero_ps();
    size_t pixel[16]; /* of output r of a tile from its first pixel of a phase */
    for (int r = 0; r < m * m; r++) pixel[r] = ((size_t)(r / m) * s->f * s->w + (size_t)(r % m) * s->f) * s->c;
    for (int i = 0; i < count; i++) {
        int n, by, bx;
        tile_at(tl, t0 + i, &n, &by, &bx);
        for (int gi = 0, qh = 0, qw = 0; gi < groups; gi++, qw = qw + 1 < s->f ? qw + 1 : 0, qh += !qw) {
            /* the tile's rows x cols pixels of phase (qh, qw) inside dst */
            const int y0 = s->f * by + qh, x0 = s->f * bx + qw;
            const int rows = y0 < s->h ? (s->h - y0 + s->f - 1) / s->f : 0;
            const int cols = x0 < s->w ? (s->w - x0 + s->f - 1) / s->f : 0;
            const size_t first = (size_t)n * image_floats(s) + ((size_t)y0 * s->w + x0) * s->c;
            const float *in = mm + i * mt + (size_t)gi * s->c;
            for (int c0 = 0; c0 < s->c; c0 += 8) {
                __m256 half[4][MAX_SIDE], y[16];
                UNROLL
                for (int x = 0; x < sd; x++) { /* A^T along y, column by column */
                    __m256 d[MAX_SIDE], col[4];
                    UNROLL
                    for (int r = 0; r < sd; r++) d[r] = _mm256_loadu_ps(in + (r * sd + x) * mp + c0);
                    output_1d(m, d, 1, col);
                    UNROLL
                    for (int r = 0; r < m; r++) half[r][x] = col[r];
                }
                UNROLL
                for (int r = 0; r < m; r++) output_1d(m, half[r], 1, y + r * m);
                const __m256 b = ep->bias ? _mm256_loadu_ps(ep->bias + c0) : zero;
                UNROLL
                for (int r = 0; r < m * m; r++) {
                    if (r / m >= rows || r % m >= cols) continue;
                    const size_t at = first + pixel[r] + c0;
                    __m256 out = ep->bias ? _mm256_add_ps(y[r], b) : y[r];
                    if (ep->residual) out = _mm256_add_ps(out, _mm256_loadu_ps(ep->residual + at));
                    /* max returns its second operand for NaN, as y > 0 ? y : 0 does */
                    if (ep->relu) out = _mm256_max_ps(out, zero);
                    _mm256_storeu_ps(dst + at, out);
                }
            }
        }
    }
}

__attribute__((target("avx2,fma"))) static void transform_output(const side *s, float *dst, const tiling *tl,
                                                                 int t0, int count, const float *mm,
                                                                 const strides *st, const epilogue *ep)
{
    if (tl->m == 2)
        transform_output_m(2, s, dst, tl, t0, count, mm, st, ep);
    else
        transform_output_m(4, s, dst, tl, t0, count, mm, st, ep);
}

/* ---- the per-point products ---- */

/* The per-point products of a chunk: count tiles, K -> N per point. Block taps
 * that stand for no kernel tap make whole phase groups of the block
 * kernel zero at some points (a fifth of all products); `live` says
 * which groups are not. The groups split K in the forward pass and the
 * weight gradient, and N in the adjoint. */
typedef struct product {
    int count, k_all, n_all;
    int group; /* channels per phase group */
    bool groups_split_k;
    int points;
    unsigned char live[MAX_POINTS]; /* bit q: group q is nonzero at this point */
} product;

/* The K ranges a point's product needs: the live groups, merged. */
static int live_runs(const product *pr, int pt, int runs[4][2])
{
    if (!pr->groups_split_k) {
        runs[0][0] = 0, runs[0][1] = pr->k_all;
        return 1;
    }
    int n = 0;
    for (int q = 0; q < 4; q++) {
        if (!(pr->live[pt] >> q & 1)) continue;
        if (n > 0 && runs[n - 1][1] == q * pr->group)
            runs[n - 1][1] += pr->group;
        else
            runs[n][0] = q * pr->group, runs[n][1] = (q + 1) * pr->group, n++;
    }
    return n;
}

/* Whether output columns n0 .. n0 + 15 of a point's product can be nonzero. */
static bool live_columns(const product *pr, int pt, int n0)
{
    if (pr->groups_split_k) return true;
    for (int q = n0 / pr->group; q <= (n0 + ST_TILE_COLS - 1) / pr->group; q++)
        if (pr->live[pt] >> q & 1) return true;
    return false;
}

/* m[i][point] = v[i][point] u[point] for every tile of the chunk. */
__attribute__((target("avx2,fma"))) static void multiply(const product *pr, const float *v, const float *u, float *m,
                                                         const strides *st)
{
    const int count = pr->count, n_all = pr->n_all;
    for (int pt = 0; pt < pr->points; pt++) {
        const float *vp = v + pt * st->vp, *up = u + pt * st->u;
        float *mp = m + pt * st->mp;
        int runs[4][2];
        const int n_runs = live_runs(pr, pt, runs);
        for (int i0 = 0; i0 < count; i0 += ST_TILE_ROWS) {
            const int rows = count - i0 < ST_TILE_ROWS ? count - i0 : ST_TILE_ROWS;
            const float *p[ST_TILE_ROWS];
            for (int r = 0; r < ST_TILE_ROWS; r++) p[r] = vp + (i0 + (r < rows ? r : rows - 1)) * st->vt;
            for (int n0 = 0; n0 < n_all; n0 += ST_TILE_COLS) {
                const __m256 z = _mm256_setzero_ps();
                st_tile t = {z, z, z, z, z, z, z, z, z, z, z, z};
                const int live = live_columns(pr, pt, n0) ? n_runs : 0;
                for (int j = 0; j < live; j++) {
                    const float *uk = up + (size_t)runs[j][0] * n_all + n0;
                    for (int k = runs[j][0]; k < runs[j][1]; k++, uk += n_all)
                        st_tile_step(&t, _mm256_loadu_ps(uk), _mm256_loadu_ps(uk + 8), p[0] + k, p[1] + k, p[2] + k,
                                     p[3] + k, p[4] + k, p[5] + k);
                }
                __m256 out[ST_TILE_ROWS][2];
                st_tile_rows(&t, out);
                for (int r = 0; r < rows; r++) {
                    float *at = mp + (i0 + r) * st->mt + n0;
                    _mm256_storeu_ps(at, out[r][0]);
                    _mm256_storeu_ps(at + 8, out[r][1]);
                }
            }
        }
    }
}

/* du[point] (+)= v[.][point]^T dm[.][point] over the chunk's tiles: K x N
 * (K split by groups). Rows of dead groups are not needed (the kernel
 * gradient of a live tap never reads them) and are left at zero. */
__attribute__((target("avx2,fma"))) static void accumulate(const product *pr, const float *v, const float *dm,
                                                           float *du, const strides *st, bool first)
{
    const int count = pr->count, n_all = pr->n_all;
    for (int pt = 0; pt < pr->points; pt++) {
        const float *vp = v + pt * st->vp, *dp = dm + pt * st->mp;
        float *up = du + pt * st->u;
        int runs[4][2];
        const int n_runs = live_runs(pr, pt, runs);
        if (first) memset(up, 0, (size_t)pr->k_all * n_all * sizeof *up);
        /* one column block's dm rows stay in L1 while every row block passes */
        for (int n0 = 0; n0 < n_all; n0 += ST_TILE_COLS) {
            for (int j = 0; j < n_runs; j++) {
                for (int k0 = runs[j][0]; k0 < runs[j][1]; k0 += ST_TILE_ROWS) {
                    const int rows = runs[j][1] - k0 < ST_TILE_ROWS ? runs[j][1] - k0 : ST_TILE_ROWS;
                    const float *p[ST_TILE_ROWS];
                    __m256 init[ST_TILE_ROWS][2];
                    for (int r = 0; r < ST_TILE_ROWS; r++) {
                        const int k = k0 + (r < rows ? r : rows - 1);
                        const float *at = up + (size_t)k * n_all + n0;
                        p[r] = vp + k;
                        init[r][0] = _mm256_loadu_ps(at);
                        init[r][1] = _mm256_loadu_ps(at + 8);
                    }
                    st_tile t = {init[0][0], init[1][0], init[2][0], init[3][0], init[4][0], init[5][0],
                                 init[0][1], init[1][1], init[2][1], init[3][1], init[4][1], init[5][1]};
                    const float *di = dp + n0;
                    const size_t vt = st->vt, mt = st->mt;
                    for (int i = 0; i < count; i++, di += mt)
                        st_tile_step(&t, _mm256_loadu_ps(di), _mm256_loadu_ps(di + 8), p[0] + i * vt, p[1] + i * vt,
                                     p[2] + i * vt, p[3] + i * vt, p[4] + i * vt, p[5] + i * vt);
                    __m256 out[ST_TILE_ROWS][2];
                    st_tile_rows(&t, out);
                    for (int r = 0; r < rows; r++) {
                        float *at = up + (size_t)(k0 + r) * n_all + n0;
                        _mm256_storeu_ps(at, out[r][0]);
                        _mm256_storeu_ps(at + 8, out[r][1]);
                    }
                }
            }
        }
    }
}

/* ---- entry points ---- */

static bool cpu_fits(const st_conv2d_geom *g)
{
    /* transforms run on 8 channels at a time, products on 16 columns */
    return g->in_c % 8 == 0 && g->out_c % ST_TILE_COLS == 0 && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma");
}

static bool is_five(const st_conv2d_geom *g)
{
    return g->k_h == 5 && g->k_w == 5 && g->stride_h == 2 && g->stride_w == 2;
}

static bool is_three(const st_conv2d_geom *g)
{
    return g->k_h == 3 && g->k_w == 3 && g->stride_h == 1 && g->stride_w == 1;
}

bool st_winograd_fits(const st_conv2d_geom *g)
{
    /* Every padding works: for 5x5 stride 2 the 3 block taps D = dmin ..
     * dmin + 2 cover kernel taps 2 dmin + p .. 2 dmin + p + 5, which
     * include 0 .. 4; for 3x3 stride 1 they are the kernel taps. With 16
     * input channels the 3x3 adjoint's and gradient's products are too
     * short (K = 16) to beat the direct kernel (ResNet-56's first stage,
     * measured); the adjoint's columns are the f x f phase groups of the
     * input channels. */
    return (is_five(g) || (is_three(g) && g->in_c >= 32)) && groups_of(g) * g->in_c % ST_TILE_COLS == 0 &&
           cpu_fits(g);
}

bool st_winograd_forward_fits(const st_conv2d_geom *g)
{
    /* the forward's products are long enough with 16 channels at F(4x4, 3x3) */
    return st_winograd_fits(g) || (is_three(g) && cpu_fits(g));
}

/* Products per output of F(m x m, 3x3) on an h x w grid, with the tiles
 * that overhang its edge. */
static double products_per_output(int m, int h, int w)
{
    return (double)points_of(m) * tiles_of(h, m) * tiles_of(w, m) / ((double)h * w);
}

/* 4x4 tiles pay more per product than 2x2 ones in their transforms and
 * shorter product runs: measured on the autoencoder's passes (batch 32,
 * one thread, quiet machine; scripts/bench/bench_winograd.c), they win on
 * conv1's 18 x 18 and 16 x 16 grids (70% and 56% of the products:
 * forward 1.11x, adjoint 1.36-1.42x, weight gradient 0.98-1.14x) and
 * lose on conv2's 10 x 10 ones (81%: 0.90-0.98x). */
#define TILE4_MAX_PRODUCTS 0.7

int st_winograd_tile(int h, int w)
{
    return products_per_output(4, h, w) <= TILE4_MAX_PRODUCTS * products_per_output(2, h, w) ? 4 : 2;
}

/* The grid each pass tiles: the forward pass and the weight gradient the
 * output, the adjoint the input's blocks. */
int st_winograd_forward_tile(const st_conv2d_geom *g) { return st_winograd_tile(g->out_h, g->out_w); }

int st_winograd_adjoint_tile(const st_conv2d_geom *g)
{
    return st_winograd_tile(axis_h(g).blocks, axis_w(g).blocks);
}

/* Tiles per chunk: a multiple of the tile rows, at least one tile row,
 * about `target` floats per point of the transformed input and output. */
static int chunk_tiles(int width, int target)
{
    int n = target / width / ST_TILE_ROWS * ST_TILE_ROWS;
    return n > ST_TILE_ROWS ? n : ST_TILE_ROWS;
}

/* One call's arrays in the workspace: kernel transforms, a frame, and a
 * chunk's transformed input (v) and output (m). */
typedef struct plan {
    side in, out;
    tiling tl;
    product pr; /* count is set per chunk */
    int chunk, tiles;
    strides st;
    float *u, *ut, *v, *m;
    frame fr;
} plan;

/* The layout for the products pr (K = pr.k_all, N = pr.n_all per point),
 * reading `in` through tiling tl; kernels is the number of kernel-sized
 * arrays.
 * The products of the forward and adjoint passes read whole rows of K, and
 * their transforms all points of a tile: tile-major chunks keep both
 * sequential. The weight gradient walks one point down all tiles of a
 * large chunk: point-major keeps that walk within a few pages. */
static plan plan_of(const st_conv2d_geom *g, side in, side out, tiling tl, product pr, int chunk, bool tile_major,
                    int kernels, float *ws, size_t *floats)
{
    const int k_all = pr.k_all, n_all = pr.n_all, points = pr.points;
    plan p = {in, out, tl, pr, chunk, g->batch * tl.tiles_h * tl.tiles_w, {0, 0, 0, 0, 0}, NULL, NULL, NULL, NULL, {0}};
    if (tile_major)
        p.st = (strides){(size_t)k_all, (size_t)points * k_all, kernel_point(g), (size_t)n_all,
                         (size_t)points * n_all};
    else /* padded like kernel_point */
        p.st = (strides){(size_t)chunk * k_all + 16, (size_t)k_all, kernel_point(g), (size_t)chunk * n_all + 16,
                         (size_t)n_all};
    size_t at = 0;
    p.u = ws ? ws : NULL;
    at += p.st.u * points;
    p.ut = ws && kernels > 1 ? ws + at : NULL;
    at += kernels > 1 ? p.st.u * points : 0;
    p.v = ws ? ws + at : NULL;
    at += p.st.vp * points + p.st.vt * chunk;
    p.m = ws ? ws + at : NULL;
    at += p.st.mp * points + p.st.mt * chunk;
    p.fr = frame_of(&p.in, &p.tl, ws ? ws + at : NULL);
    at += frame_floats(&p.in, &p.tl);
    if (floats) *floats = at;
    return p;
}

/* Target floats per point of a chunk: forward and adjoint keep the whole
 * chunk (all points) in L2; the weight gradient, which re-reads its
 * accumulators once per chunk, takes larger chunks. */
#define GRAD_CHUNK_TARGET (32 * 1024)

/* The transform point (0 or m + 1) at which block taps of phase q along
 * axis a vanish, or -1: only the first or the last block tap can stand
 * for no kernel tap, and G's first and last rows pick exactly that tap.
 * Flipped (the adjoint's kernel), the taps and so the points swap ends. */
static int dead_point(const axis *a, int q, int m, bool flipped)
{
    const int first = flipped ? m + 1 : 0, last = flipped ? 0 : m + 1;
    return tap_of(a, 0, q) < 0 ? first : tap_of(a, 2, q) < 0 ? last : -1;
}

/* pr's point count and live[point] for the block kernel (flipped: the
 * adjoint's kernel) with m x m tiles. */
static void live_groups(const axis *ah, const axis *aw, int m, bool flipped, product *pr)
{
    const int f = ah->f, sd = side_of(m);
    pr->points = points_of(m);
    for (int pt = 0; pt < pr->points; pt++) {
        pr->live[pt] = 0;
        for (int q = 0; q < f * f; q++)
            if (dead_point(ah, q / f, m, flipped) != pt / sd && dead_point(aw, q % f, m, flipped) != pt % sd)
                pr->live[pt] |= (unsigned char)(1u << q);
    }
}

static plan forward_plan(const st_conv2d_geom *g, int m, bool grad, float *ws, size_t *floats)
{
    const axis ah = axis_h(g), aw = axis_w(g);
    const side in = {g->in_h, g->in_w, g->in_c, g->stride_h}, out = {g->out_h, g->out_w, g->out_c, 1};
    const tiling tl = {m, tiles_of(g->out_h, m), tiles_of(g->out_w, m), ah.dmin, aw.dmin};
    const int k_all = groups_of(g) * g->in_c, n_all = g->out_c;
    product pr = {0, k_all, n_all, g->in_c, true, 0, {0}};
    live_groups(&ah, &aw, m, false, &pr);
    const int chunk = chunk_tiles(k_all + n_all, grad ? GRAD_CHUNK_TARGET : CHUNK_FLOATS / pr.points);
    return plan_of(g, in, out, tl, pr, chunk, !grad, 1, ws, floats);
}

static plan adjoint_plan(const st_conv2d_geom *g, int m, float *ws, size_t *floats)
{
    const axis ah = axis_h(g), aw = axis_w(g);
    const side in = {g->out_h, g->out_w, g->out_c, 1}, out = {g->in_h, g->in_w, g->in_c, g->stride_h};
    /* block j = sum over T of src[j - dmin - T] times block tap T: a
     * correlation starting at j - dmin - 2 with the taps reversed */
    const tiling tl = {m, tiles_of(ah.blocks, m), tiles_of(aw.blocks, m), -ah.dmin - 2, -aw.dmin - 2};
    const int k_all = g->out_c, n_all = groups_of(g) * g->in_c;
    product pr = {0, k_all, n_all, g->in_c, false, 0, {0}};
    live_groups(&ah, &aw, m, true, &pr);
    return plan_of(g, in, out, tl, pr, chunk_tiles(k_all + n_all, CHUNK_FLOATS / pr.points), true, 2, ws, floats);
}

static size_t larger(size_t a, size_t b) { return a > b ? a : b; }

size_t st_winograd_forward_workspace_floats(const st_conv2d_geom *g)
{
    size_t floats;
    forward_plan(g, st_winograd_forward_tile(g), false, NULL, &floats);
    return floats;
}

size_t st_winograd_workspace_floats(const st_conv2d_geom *g)
{
    /* for both tile sizes: callers may ask for either */
    size_t most = 0, floats;
    for (int m = 2; m <= 4; m += 2) {
        forward_plan(g, m, false, NULL, &floats);
        most = larger(most, floats);
        adjoint_plan(g, m, NULL, &floats);
        most = larger(most, floats);
        forward_plan(g, m, true, NULL, &floats);
        most = larger(most, floats);
    }
    return most;
}

/* dst = the convolution (forward or adjoint, as planned) of src with the
 * transformed kernel already in p->u, chunk by chunk. */
static void convolve(plan *p, const float *src, float *dst, const epilogue *ep)
{
    for (int t0 = 0; t0 < p->tiles; t0 += p->chunk) {
        const int count = p->tiles - t0 < p->chunk ? p->tiles - t0 : p->chunk;
        transform_input(&p->in, src, &p->tl, &p->fr, t0, count, p->v, &p->st);
        p->pr.count = count;
        multiply(&p->pr, p->v, p->u, p->m, &p->st);
        transform_output(&p->out, dst, &p->tl, t0, count, p->m, &p->st, ep);
    }
}

void st_winograd_forward(const st_conv2d_geom *g, int m, const float *x, const float *w, const float *b,
                         const float *residual, bool relu, float *y, float *workspace)
{
    plan p = forward_plan(g, m, false, workspace, NULL);
    kernel_pass(m, g, true, false, w, p.u);
    const epilogue ep = {b, residual, relu};
    convolve(&p, x, y, &ep);
}

void st_winograd_adjoint(const st_conv2d_geom *g, int m, const float *src, const float *w, const float *b,
                         float *dst, float *workspace)
{
    plan p = adjoint_plan(g, m, workspace, NULL);
    kernel_pass(m, g, true, true, w, p.ut);
    transpose_points(p.ut, p.pr.n_all, p.pr.k_all, p.pr.points, p.st.u, p.u);
    const epilogue ep = {b, NULL, false};
    convolve(&p, src, dst, &ep);
}

void st_winograd_weight_grad(const st_conv2d_geom *g, int m, const float *a, const float *e, float *dw,
                             float *workspace)
{
    plan p = forward_plan(g, m, true, workspace, NULL);
    for (int t0 = 0; t0 < p.tiles; t0 += p.chunk) {
        const int count = p.tiles - t0 < p.chunk ? p.tiles - t0 : p.chunk;
        transform_input(&p.in, a, &p.tl, &p.fr, t0, count, p.v, &p.st);
        transform_output_grad(&p.out, e, &p.tl, t0, count, p.m, &p.st);
        p.pr.count = count;
        accumulate(&p.pr, p.v, p.m, p.u, &p.st, t0 == 0);
    }
    kernel_pass(m, g, false, false, p.u, dw);
}
