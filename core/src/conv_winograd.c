/* Winograd F(2x2, 3x3) for 5x5 stride-2 and 3x3 stride-1 convolutions,
 * their adjoints and their weight gradients (see conv_winograd.h).
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
 * Winograd's minimal filtering F(2, 3) computes two outputs of a 3-tap
 * filter with 4 products instead of 6: in 2-d, each 2x2 output tile is
 *   Y = A^T [ (G g G^T) . (B^T d B) ] A
 * for its 4x4 input tile d and the 3x3 kernel g, where the product "."
 * is elementwise over the 16 transform points and, summed over input
 * channels, becomes 16 matrix products [tiles x K] [K x N], one per
 * point. A 2x2 output tile then costs 16 block-kernel products against
 * the 4 x 25 of the direct convolution: 64 K-wide products per 4 output
 * pixels (with K = 4 C_in) against 100 C_in-wide ones.
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
 * C_out % 16 == 0). Measured on the clustering autoencoder (32x32x16
 * input, docs/bench-cae.md) the training step gains about 10-20% over the
 * direct kernels, less than the 1.56x fewer multiplications suggest: the
 * transforms move 4 floats per output where the direct kernel reads its
 * input from registers. */
#include "conv_winograd.h"

#include <immintrin.h>
#include <string.h>
#include "conv_tile.h"

#define POINTS 16
/* Target size (floats) of one chunk's transformed input and output: 384 KB. */
#define CHUNK_FLOATS (96 * 1024)

#define VEC_FN static inline __attribute__((always_inline, target("avx2,fma")))
/* Fully unrolled, the small fixed loops over a tile keep it in registers. */
#define UNROLL _Pragma("GCC unroll 16")

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

static int tiles_of(int n) { return (n + 1) / 2; }

/* A tensor [N, h, w, c] read or written through blocks of f x f pixels
 * (f = 2: four phase groups of c channels; f = 1: the pixels themselves). */
typedef struct side {
    int h, w, c, f;
} side;

static size_t image_floats(const side *s) { return (size_t)s->h * s->w * s->c; }

/* How tiles are laid out: tiles_h x tiles_w per image, the tile at (ty, tx)
 * covering block rows 2ty + off_h .. (4 rows in, 2 out) and the same in x. */
typedef struct tiling {
    int tiles_h, tiles_w, off_h, off_w;
} tiling;

/* Where tile t (counted over the whole batch) lives. */
static void tile_at(const tiling *tl, int t, int *n, int *by, int *bx)
{
    const int per = tl->tiles_h * tl->tiles_w, r = t % per;
    *n = t / per;
    *by = 2 * (r / tl->tiles_w);
    *bx = 2 * (r % tl->tiles_w);
}

/* The pixel of block (j, i), phase (qh, qw); NULL outside the tensor. */
static const float *block_pixel(const side *s, const float *img, int j, int i, int qh, int qw)
{
    const int y = s->f * j + qh, x = s->f * i + qw;
    if (y < 0 || y >= s->h || x < 0 || x >= s->w) return NULL;
    return img + ((size_t)y * s->w + x) * s->c;
}

/* ---- the 1-d transforms, on 8 channels at a time ---- */

/* B^T d for d = (d0, d1, d2, d3), in place. */
VEC_FN void input_1d(__m256 *d0, __m256 *d1, __m256 *d2, __m256 *d3)
{
    const __m256 a = *d0, b = *d1, c = *d2, e = *d3;
    *d0 = _mm256_sub_ps(a, c);
    *d1 = _mm256_add_ps(b, c);
    *d2 = _mm256_sub_ps(c, b);
    *d3 = _mm256_sub_ps(b, e);
}

/* G g for a 3-tap g: (g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2). */
VEC_FN void kernel_1d(__m256 g0, __m256 g1, __m256 g2, __m256 u[4])
{
    const __m256 half = _mm256_set1_ps(0.5f), outer = _mm256_add_ps(g0, g2);
    u[0] = g0;
    u[1] = _mm256_mul_ps(half, _mm256_add_ps(outer, g1));
    u[2] = _mm256_mul_ps(half, _mm256_sub_ps(outer, g1));
    u[3] = g2;
}

/* G^T u, the adjoint of kernel_1d. */
VEC_FN void kernel_1d_adjoint(const __m256 u[4], __m256 g[3])
{
    const __m256 half = _mm256_set1_ps(0.5f);
    const __m256 s = _mm256_mul_ps(half, _mm256_add_ps(u[1], u[2]));
    g[0] = _mm256_add_ps(u[0], s);
    g[1] = _mm256_mul_ps(half, _mm256_sub_ps(u[1], u[2]));
    g[2] = _mm256_add_ps(s, u[3]);
}

/* A^T m for m of 4: (m0 + m1 + m2, m1 - m2 - m3). */
VEC_FN void output_1d(__m256 m0, __m256 m1, __m256 m2, __m256 m3, __m256 *y0, __m256 *y1)
{
    *y0 = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
    *y1 = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
}

/* A e for e of 2, the adjoint of output_1d: (e0, e0 + e1, e0 - e1, -e1). */
VEC_FN void output_1d_adjoint(__m256 e0, __m256 e1, __m256 m[4])
{
    m[0] = e0;
    m[1] = _mm256_add_ps(e0, e1);
    m[2] = _mm256_sub_ps(e0, e1);
    m[3] = _mm256_sub_ps(_mm256_setzero_ps(), e1);
}

VEC_FN __m256 load_or_zero(const float *p) { return p ? _mm256_loadu_ps(p) : _mm256_setzero_ps(); }

/* ---- kernels ---- */

/* Floats between two points of a kernel-sized array: a little more than
 * K x N, so that the 16 points do not share cache sets when K x N is a
 * large power of two. */
static size_t kernel_point(const st_conv2d_geom *g) { return (size_t)groups_of(g) * g->in_c * g->out_c + 16; }

/* Where block tap (y, x) of block-kernel row k = (qh, qw, c) lives in
 * the HWIO kernel: the offset of its out_c floats, or -1 (no kernel tap). */
static void block_taps(const st_conv2d_geom *g, const axis *ah, const axis *aw, int k, ptrdiff_t at[3][3])
{
    const int q = k / g->in_c, c = k % g->in_c, qh = q / g->stride_w, qw = q % g->stride_w;
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 3; x++) {
            const int th = tap_of(ah, y, qh), tw = tap_of(aw, x, qw);
            at[y][x] = th < 0 || tw < 0 ? -1 : ((ptrdiff_t)(th * g->k_w + tw) * g->in_c + c) * g->out_c;
        }
}

/* u = G g G^T for one block-kernel row and 8 output channels: g's taps
 * are read at w + at[y][x] (zero where at < 0), u's 16 points written
 * `point` floats apart from u. */
VEC_FN void hwio_to_points(const float *w, const ptrdiff_t at[3][3], float *u, size_t point)
{
    __m256 rows[4][3]; /* G g: 4 rows of 3 columns */
    UNROLL
    for (int x = 0; x < 3; x++) {
        __m256 col[3];
        UNROLL
        for (int y = 0; y < 3; y++) col[y] = at[y][x] < 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(w + at[y][x]);
        __m256 t[4];
        kernel_1d(col[0], col[1], col[2], t);
        UNROLL
        for (int y = 0; y < 4; y++) rows[y][x] = t[y];
    }
    UNROLL
    for (int y = 0; y < 4; y++) {
        __m256 t[4];
        kernel_1d(rows[y][0], rows[y][1], rows[y][2], t);
        UNROLL
        for (int x = 0; x < 4; x++) _mm256_storeu_ps(u + (y * 4 + x) * point, t[x]);
    }
}

/* The adjoint: dg = G^T du G, written to the taps that are kernel taps. */
VEC_FN void points_to_hwio(const float *du, size_t point, const ptrdiff_t at[3][3], float *dw)
{
    __m256 cols[4][3]; /* G^T along x for each of the 4 rows */
    UNROLL
    for (int y = 0; y < 4; y++) {
        __m256 u[4];
        UNROLL
        for (int x = 0; x < 4; x++) u[x] = _mm256_loadu_ps(du + (y * 4 + x) * point);
        kernel_1d_adjoint(u, cols[y]);
    }
    UNROLL
    for (int x = 0; x < 3; x++) {
        const __m256 u[4] = {cols[0][x], cols[1][x], cols[2][x], cols[3][x]};
        __m256 gx[3];
        kernel_1d_adjoint(u, gx);
        UNROLL
        for (int y = 0; y < 3; y++)
            if (at[y][x] >= 0) _mm256_storeu_ps(dw + at[y][x], gx[y]);
    }
}

/* The kernel transform u[point][k][n] = (G g G^T)[point], g the block
 * kernel of input channel k = (qh, qw, c) and output channel n, from the
 * HWIO kernel (to_points), or its adjoint from du back to the HWIO dw,
 * keeping the taps that are kernel taps. */
__attribute__((target("avx2,fma"))) static void kernel_pass(const st_conv2d_geom *g, const axis *ah, const axis *aw,
                                                            bool to_points, const float *src, float *dst)
{
    const int n_out = g->out_c;
    const size_t point = kernel_point(g);
    for (int k = 0; k < groups_of(g) * g->in_c; k++) {
        ptrdiff_t at[3][3];
        block_taps(g, ah, aw, k, at);
        for (int n0 = 0; n0 < n_out; n0 += 8) {
            const size_t row = (size_t)k * n_out + n0; /* within a point */
            if (to_points)
                hwio_to_points(src + n0, at, dst + row, point);
            else
                points_to_hwio(src + row, point, at, dst + n0);
        }
    }
}

/* The adjoint's kernel: flipping a 3-tap kernel swaps points 0 and 3 of
 * its transform, so point (a, b) of the flipped, transposed kernel is the
 * transpose of point (flip a, flip b) of u. */
static void transpose_kernel(const float *u, int k, int n, size_t point, float *ut)
{
    static const int flip[4] = {3, 1, 2, 0};
    for (int p = 0; p < POINTS; p++) {
        const float *src = u + (flip[p / 4] * 4 + flip[p % 4]) * point;
        float *dst = ut + p * point;
        for (int i = 0; i < k; i++)
            for (int j = 0; j < n; j++) dst[(size_t)j * k + i] = src[(size_t)i * n + j];
    }
}

/* ---- tile transforms ---- */

/* Where a chunk's arrays keep point pt of tile i: v at i * vt + pt * vp,
 * m at i * mt + pt * mp (tile-major: a tile's 16 points are written and
 * read together); kernel arrays keep point pt at pt * u. */
typedef struct strides {
    size_t vp, vt, u, mp, mt;
} strides;

/* The image a tile reads, copied into a zero-bordered frame that covers
 * every block its tiles read, so that the 4x4 blocks of a tile sit at
 * fixed offsets from the tile's corner. */
typedef struct frame {
    int image;  /* the image in buf, or -1 */
    int h, w;   /* frame size in pixels */
    int y0, x0; /* input pixel at frame (0, 0) */
    float *buf;
} frame;

static frame frame_of(const side *s, const tiling *tl, float *buf)
{
    return (frame){-1, s->f * (2 * tl->tiles_h + 2), s->f * (2 * tl->tiles_w + 2), s->f * tl->off_h, s->f * tl->off_w,
                   buf};
}

static size_t frame_floats(const side *s, const tiling *tl)
{
    return (size_t)s->f * (2 * tl->tiles_h + 2) * s->f * (2 * tl->tiles_w + 2) * s->c;
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
__attribute__((target("avx2,fma"))) static void transform_input(const side *s, const float *src, const tiling *tl,
                                                                frame *fr, int t0, int count, float *v, const strides *st)
{
    const int groups = s->f * s->f;
    const size_t row = (size_t)fr->w * s->c, vp = st->vp, vt = st->vt;
    size_t offset[4][16]; /* of each group's 16 pixels from the tile's corner */
    for (int gi = 0; gi < groups; gi++)
        for (int r = 0; r < 16; r++)
            offset[gi][r] = (size_t)(s->f * (r / 4) + gi / s->f) * row + (size_t)(s->f * (r % 4) + gi % s->f) * s->c;
    for (int i = 0; i < count; i++) {
        int n, by, bx;
        tile_at(tl, t0 + i, &n, &by, &bx);
        if (fr->image != n) frame_load(fr, s, src, n);
        const float *corner = fr->buf + (size_t)s->f * by * row + (size_t)s->f * bx * s->c;
        for (int gi = 0; gi < groups; gi++) {
            float *out = v + i * vt + (size_t)gi * s->c;
            for (int c0 = 0; c0 < s->c; c0 += 8) {
                __m256 d[16];
                UNROLL
                for (int r = 0; r < 16; r++) d[r] = _mm256_loadu_ps(corner + offset[gi][r] + c0);
                UNROLL
                for (int x = 0; x < 4; x++) input_1d(&d[x], &d[4 + x], &d[8 + x], &d[12 + x]);
                UNROLL
                for (int y = 0; y < 4; y++) input_1d(&d[4 * y], &d[4 * y + 1], &d[4 * y + 2], &d[4 * y + 3]);
                UNROLL
                for (int r = 0; r < 16; r++) _mm256_storeu_ps(out + r * vp + c0, d[r]);
            }
        }
    }
}

/* dm[i][point][n] = (A e A^T)[point] for the 2x2 output tiles of e (a
 * plain tensor); outputs outside e count as zero. */
__attribute__((target("avx2,fma"))) static void transform_output_grad(const side *s, const float *e,
                                                                      const tiling *tl, int t0, int count, float *dm,
                                                                      const strides *st)
{
    const size_t mp = st->mp, mt = st->mt;
    for (int i = 0; i < count; i++) {
        int n, by, bx;
        tile_at(tl, t0 + i, &n, &by, &bx);
        const float *img = e + (size_t)n * image_floats(s);
        const float *p[4];
        for (int r = 0; r < 4; r++) p[r] = block_pixel(s, img, by + r / 2, bx + r % 2, 0, 0);
        float *out = dm + i * mt;
        for (int c0 = 0; c0 < s->c; c0 += 8) {
            __m256 cols[2][4], m[4][4];
            UNROLL
            for (int x = 0; x < 2; x++) /* A along y: each output column becomes 4 rows */
                output_1d_adjoint(load_or_zero(p[x] ? p[x] + c0 : NULL), load_or_zero(p[2 + x] ? p[2 + x] + c0 : NULL),
                                  cols[x]);
            UNROLL
            for (int y = 0; y < 4; y++) output_1d_adjoint(cols[0][y], cols[1][y], m[y]);
            UNROLL
            for (int r = 0; r < 16; r++) _mm256_storeu_ps(out + r * mp + c0, m[r / 4][r % 4]);
        }
    }
}

/* What the output transform adds after A^T m A. */
typedef struct epilogue {
    const float *bias;     /* per channel of a group, or NULL */
    const float *residual; /* shaped like the output, or NULL */
    bool relu;
} epilogue;

/* dst's 2x2 output blocks of tiles t0 .. t0 + count - 1 from
 * m[i][point][(group, channel)]; pixels outside dst are not written. */
__attribute__((target("avx2,fma"))) static void transform_output(const side *s, float *dst, const tiling *tl,
                                                                 int t0, int count, const float *m, const strides *st,
                                                                 const epilogue *ep)
{
    const size_t mp = st->mp, mt = st->mt;
    const int groups = s->f * s->f;
    const __m256 zero = _mm256_setzero_ps();
    for (int i = 0; i < count; i++) {
        int n, by, bx;
        tile_at(tl, t0 + i, &n, &by, &bx);
        const size_t image = (size_t)n * image_floats(s);
        for (int gi = 0, qh = 0, qw = 0; gi < groups; gi++, qw = qw + 1 < s->f ? qw + 1 : 0, qh += !qw) {
            const float *p[4];
            for (int r = 0; r < 4; r++) p[r] = block_pixel(s, dst + image, by + r / 2, bx + r % 2, qh, qw);
            const float *in = m + i * mt + (size_t)gi * s->c;
            for (int c0 = 0; c0 < s->c; c0 += 8) {
                __m256 d[16], half[2][4], y[4];
                UNROLL
                for (int r = 0; r < 16; r++) d[r] = _mm256_loadu_ps(in + r * mp + c0);
                UNROLL
                for (int x = 0; x < 4; x++) output_1d(d[x], d[4 + x], d[8 + x], d[12 + x], &half[0][x], &half[1][x]);
                UNROLL
                for (int r = 0; r < 2; r++)
                    output_1d(half[r][0], half[r][1], half[r][2], half[r][3], &y[2 * r], &y[2 * r + 1]);
                const __m256 b = ep->bias ? _mm256_loadu_ps(ep->bias + c0) : zero;
                UNROLL
                for (int r = 0; r < 4; r++) {
                    if (!p[r]) continue;
                    const size_t at = (size_t)(p[r] - dst) + c0;
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

/* ---- the per-point products ---- */


/* The 16 products of a chunk: count tiles, K -> N per point. Block taps
 * that stand for no kernel tap make whole phase groups of the block
 * kernel zero at some points (a fifth of all products); `live` says
 * which groups are not. The groups split K in the forward pass and the
 * weight gradient, and N in the adjoint. */
typedef struct product {
    int count, k_all, n_all;
    int group; /* channels per phase group */
    bool groups_split_k;
    unsigned char live[POINTS]; /* bit q: group q is nonzero at this point */
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
    for (int pt = 0; pt < POINTS; pt++) {
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
                for (int j = 0; live_columns(pr, pt, n0) && j < n_runs; j++) {
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
    for (int pt = 0; pt < POINTS; pt++) {
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

bool st_winograd_fits(const st_conv2d_geom *g)
{
    /* Every padding works: for 5x5 stride 2 the 3 block taps D = dmin ..
     * dmin + 2 cover kernel taps 2 dmin + p .. 2 dmin + p + 5, which
     * include 0 .. 4; for 3x3 stride 1 they are the kernel taps. */
    const bool five = g->k_h == 5 && g->k_w == 5 && g->stride_h == 2 && g->stride_w == 2;
    /* with 16 input channels the per-point products are too short (K = 16)
     * to beat the direct kernel (ResNet-56's first stage, measured) */
    const bool three = g->k_h == 3 && g->k_w == 3 && g->stride_h == 1 && g->stride_w == 1 && g->in_c >= 32;
    /* transforms run on 8 channels at a time, products on 16 columns (the
     * adjoint's columns are the f x f phase groups of the input channels) */
    return (five || three) && g->in_c % 8 == 0 && g->out_c % ST_TILE_COLS == 0 &&
           groups_of(g) * g->in_c % ST_TILE_COLS == 0 && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma");
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
 * their transforms all 16 points of a tile: tile-major chunks keep both
 * sequential. The weight gradient walks one point down all tiles of a
 * large chunk: point-major keeps that walk within a few pages. */
static plan plan_of(const st_conv2d_geom *g, side in, side out, tiling tl, product pr, int chunk, bool tile_major,
                    int kernels, float *ws, size_t *floats)
{
    const int k_all = pr.k_all, n_all = pr.n_all;
    plan p = {in, out, tl, pr, chunk, g->batch * tl.tiles_h * tl.tiles_w, {0, 0, 0, 0, 0}, NULL, NULL, NULL, NULL, {0}};
    if (tile_major)
        p.st = (strides){(size_t)k_all, (size_t)POINTS * k_all, kernel_point(g), (size_t)n_all, (size_t)POINTS * n_all};
    else /* padded like kernel_point */
        p.st = (strides){(size_t)chunk * k_all + 16, (size_t)k_all, kernel_point(g), (size_t)chunk * n_all + 16,
                         (size_t)n_all};
    size_t at = 0;
    p.u = ws ? ws : NULL;
    at += p.st.u * POINTS;
    p.ut = ws && kernels > 1 ? ws + at : NULL;
    at += kernels > 1 ? p.st.u * POINTS : 0;
    p.v = ws ? ws + at : NULL;
    at += p.st.vp * POINTS + p.st.vt * chunk;
    p.m = ws ? ws + at : NULL;
    at += p.st.mp * POINTS + p.st.mt * chunk;
    p.fr = frame_of(&p.in, &p.tl, ws ? ws + at : NULL);
    at += frame_floats(&p.in, &p.tl);
    if (floats) *floats = at;
    return p;
}

/* Target floats per point of a chunk: forward and adjoint keep the whole
 * chunk (16 points) in L2; the weight gradient, which re-reads its
 * accumulators once per chunk, takes larger chunks. */
#define CHUNK_TARGET (CHUNK_FLOATS / POINTS)
#define GRAD_CHUNK_TARGET (32 * 1024)

/* The transform point (0 or 3) at which block taps of phase q along axis
 * a vanish, or -1: only the first or the last block tap can stand for no
 * kernel tap, and G's first and last rows pick exactly that tap. */
static int dead_point(const axis *a, int q)
{
    return tap_of(a, 0, q) < 0 ? 0 : tap_of(a, 2, q) < 0 ? 3 : -1;
}

/* live[point] for the block kernel (flipped: the adjoint's kernel, whose
 * point (a, b) is the block kernel's point (flip a, flip b)). */
static void live_groups(const axis *ah, const axis *aw, bool flipped, unsigned char live[POINTS])
{
    const int f = ah->f;
    static const int flip[4] = {3, 1, 2, 0};
    for (int pt = 0; pt < POINTS; pt++) {
        const int a = flipped ? flip[pt / 4] : pt / 4, b = flipped ? flip[pt % 4] : pt % 4;
        live[pt] = 0;
        for (int q = 0; q < f * f; q++)
            if (dead_point(ah, q / f) != a && dead_point(aw, q % f) != b) live[pt] |= (unsigned char)(1u << q);
    }
}

static plan forward_plan(const st_conv2d_geom *g, bool grad, float *ws, size_t *floats)
{
    const axis ah = axis_h(g), aw = axis_w(g);
    const side in = {g->in_h, g->in_w, g->in_c, g->stride_h}, out = {g->out_h, g->out_w, g->out_c, 1};
    const tiling tl = {tiles_of(g->out_h), tiles_of(g->out_w), ah.dmin, aw.dmin};
    const int k_all = groups_of(g) * g->in_c, n_all = g->out_c;
    product pr = {0, k_all, n_all, g->in_c, true, {0}};
    live_groups(&ah, &aw, false, pr.live);
    const int chunk = chunk_tiles(k_all + n_all, grad ? GRAD_CHUNK_TARGET : CHUNK_TARGET);
    return plan_of(g, in, out, tl, pr, chunk, !grad, 1, ws, floats);
}

static plan adjoint_plan(const st_conv2d_geom *g, float *ws, size_t *floats)
{
    const axis ah = axis_h(g), aw = axis_w(g);
    const side in = {g->out_h, g->out_w, g->out_c, 1}, out = {g->in_h, g->in_w, g->in_c, g->stride_h};
    /* block j = sum over T of src[j - dmin - T] times block tap T: a
     * correlation starting at j - dmin - 2 with the taps reversed */
    const tiling tl = {tiles_of(ah.blocks), tiles_of(aw.blocks), -ah.dmin - 2, -aw.dmin - 2};
    const int k_all = g->out_c, n_all = groups_of(g) * g->in_c;
    product pr = {0, k_all, n_all, g->in_c, false, {0}};
    live_groups(&ah, &aw, true, pr.live);
    return plan_of(g, in, out, tl, pr, chunk_tiles(k_all + n_all, CHUNK_TARGET), true, 2, ws, floats);
}

size_t st_winograd_workspace_floats(const st_conv2d_geom *g)
{
    size_t forward, adjoint, grad;
    forward_plan(g, false, NULL, &forward);
    adjoint_plan(g, NULL, &adjoint);
    forward_plan(g, true, NULL, &grad);
    size_t most = forward > adjoint ? forward : adjoint;
    return most > grad ? most : grad;
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

void st_winograd_forward(const st_conv2d_geom *g, const float *x, const float *w, const float *b,
                         const float *residual, bool relu, float *y, float *workspace)
{
    const axis ah = axis_h(g), aw = axis_w(g);
    plan p = forward_plan(g, false, workspace, NULL);
    kernel_pass(g, &ah, &aw, true, w, p.u);
    const epilogue ep = {b, residual, relu};
    convolve(&p, x, y, &ep);
}

void st_winograd_adjoint(const st_conv2d_geom *g, const float *src, const float *w, const float *b, float *dst,
                         float *workspace)
{
    const axis ah = axis_h(g), aw = axis_w(g);
    plan p = adjoint_plan(g, workspace, NULL);
    kernel_pass(g, &ah, &aw, true, w, p.ut);
    transpose_kernel(p.ut, p.pr.n_all, p.pr.k_all, p.st.u, p.u);
    const epilogue ep = {b, NULL, false};
    convolve(&p, src, dst, &ep);
}

void st_winograd_weight_grad(const st_conv2d_geom *g, const float *a, const float *e, float *dw, float *workspace)
{
    const axis ah = axis_h(g), aw = axis_w(g);
    plan p = forward_plan(g, true, workspace, NULL);
    for (int t0 = 0; t0 < p.tiles; t0 += p.chunk) {
        const int count = p.tiles - t0 < p.chunk ? p.tiles - t0 : p.chunk;
        transform_input(&p.in, a, &p.tl, &p.fr, t0, count, p.v, &p.st);
        transform_output_grad(&p.out, e, &p.tl, t0, count, p.m, &p.st);
        p.pr.count = count;
        accumulate(&p.pr, p.v, p.m, p.u, &p.st, t0 == 0);
    }
    kernel_pass(g, &ah, &aw, false, p.u, dw);
}
