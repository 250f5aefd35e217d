/*
 * Row-gathered products on 8-bit weights ("q8", the Q8_0 idea of GGUF with an f32 scale).
 *
 * Storage: a weight buffer is a sequence of 36-byte blocks, block b = { float d; int8 q[32] }
 * holding elements 32b .. 32b+31 with value d * q. A view used by these kernels starts on a
 * block (offset, stride and cols multiples of 32), so row r of a view is cols/32 whole blocks at
 * w + r * wsb blocks. Only the listed rows are ever read.
 *
 *   matmul_q8:       out[t, i]  = sum_b dw[r,b] * dx[t,b] * sum_{k in b} q[r,k] * qx[t,k]
 *   matmul_t_add_q8: out[t, :] += sum_i a[t, i] * (d * q)[rows[i], :]        (a not quantized)
 *   ffn_q8:          the fused SwiGLU FFN: gate/up as matmul_q8, down^T as matmul_t_add_q8
 *
 * x is quantized like llama.cpp quantizes activations for Q8_0 (quantize_x_q8): per token and
 * block of 32, dx = max|x| / 127, qx = round-half-even(x * (1 / dx)) (all in f32; dx = 0 gives
 * qx = 0), stored widened to int16 so that i32x4.dot_i16x8_s multiplies and pairs in one op.
 * Block sums are exact in int32 (32 * 127 * 127 < 2^19); the f32 accumulation runs over blocks.
 */
#include "common.h"
#include "gemm.h"

#define QK 32
#define QB 36 /* bytes per block */
#define ROW(i) (rows ? (size_t)rows[i] : (size_t)(i))

static inline float bscale(const uint8_t* blk) { return *(const float*)blk; }

/* Quantize one block of 32 values: scale into *d, int16 values into q[0..32). */
static inline void quant_block(const float* x, float* d, int16_t* q) {
  v128_t m = wasm_f32x4_abs(LD(x));
  for (int k = 4; k < QK; k += 4) m = wasm_f32x4_max(m, wasm_f32x4_abs(LD(x + k)));
  float amax = hmax(m);
  float dd = amax / 127.0f;
  float id = dd != 0.0f ? 1.0f / dd : 0.0f;
  *d = dd;
  v128_t s = wasm_f32x4_splat(id);
  for (int k = 0; k < QK; k += 8) {
    v128_t a = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(LD(x + k), s)));
    v128_t b = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(LD(x + k + 4), s)));
    wasm_v128_store(q + k, wasm_i16x8_narrow_i32x4(a, b));
  }
}

/** Quantize x [T, K] (K % 32 == 0) per token and block: xs [T, K/32] scales, xi [T, K] int16. */
EXPORT("quantize_x_q8")
void quantize_x_q8(const float* x, int T, int K, float* xs, int16_t* xi) {
  int nb = K / QK;
  for (int t = 0; t < T; t++) {
    for (int b = 0; b < nb; b++) {
      size_t e = (size_t)t * K + (size_t)b * QK;
      quant_block(x + e, xs + (size_t)t * nb + b, xi + e);
    }
  }
}

/* int32x4 partial sums of one block: 32 int8 weights (at q) times 32 int16 activations. */
static inline v128_t bdot(const int8_t* q, const int16_t* xi) {
  v128_t w0 = LD(q), w1 = LD(q + 16);
  v128_t s = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(w0), LD(xi));
  s = wasm_i32x4_add(s, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(w0), LD(xi + 8)));
  s = wasm_i32x4_add(s, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(w1), LD(xi + 16)));
  s = wasm_i32x4_add(s, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(w1), LD(xi + 24)));
  return s;
}

/*
 * One q8 row of nb blocks (a single sequential stream) . one quantized token, the decode
 * (T == 1) order: one f32x4 accumulator over blocks in order, lanes summed at the end. T > 1 sums
 * each block exactly in int32 first (dot_q8_p below), so decode and prefill of one token differ
 * only by rounding (within the 1e-5 that sequence_fork_test allows forked against from-scratch).
 */
static inline float dot_q8(const uint8_t* w, const float* xs, const int16_t* xi, int nb) {
  v128_t a = wasm_f32x4_splat(0);
  for (int b = 0; b < nb; b++) {
    const uint8_t* p = w + (size_t)b * QB;
    FMA(a, wasm_f32x4_convert_i32x4(bdot((const int8_t*)(p + 4), xi + b * QK)),
        wasm_f32x4_splat(bscale(p) * xs[b]));
  }
  return hsum(a);
}

/*
 * Four q8 rows (four sequential streams) . one quantized token: s[j] = dot_q8(wj, ...) exactly
 * (per row one f32 accumulator, blocks in order; the int32 block sums are exact in any order).
 * The token's loads (xi, xs) are shared by the four rows: V8 bounds-checks every WASM load, so a
 * one-row decode dot is bound by instructions, not DRAM (kernels/wasm/README.md, "Several rows
 * per pass"). Callers pass rows i + j R/4, far apart, so each row stays one long stream.
 */
static inline void dot4_q8(const uint8_t* w0, const uint8_t* w1, const uint8_t* w2,
                           const uint8_t* w3, const float* xs, const int16_t* xi, int nb,
                           float* s) {
  v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (int b = 0; b < nb; b++) {
    size_t o = (size_t)b * QB;
    const int16_t* x = xi + b * QK;
    v128_t x0 = LD(x), x1 = LD(x + 8), x2 = LD(x + 16), x3 = LD(x + 24);
    float xd = xs[b];
#define DOT4_ROW(w, a)                                                                        \
  do {                                                                                        \
    v128_t v0 = LD((w) + o + 4), v1 = LD((w) + o + 20);                                       \
    v128_t t = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(v0), x0);                     \
    t = wasm_i32x4_add(t, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(v0), x1));        \
    t = wasm_i32x4_add(t, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(v1), x2));         \
    t = wasm_i32x4_add(t, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(v1), x3));        \
    FMA(a, wasm_f32x4_convert_i32x4(t), wasm_f32x4_splat(bscale((w) + o) * xd));              \
  } while (0)
    DOT4_ROW(w0, a0);
    DOT4_ROW(w1, a1);
    DOT4_ROW(w2, a2);
    DOT4_ROW(w3, a3);
#undef DOT4_ROW
  }
  s[0] = hsum(a0);
  s[1] = hsum(a1);
  s[2] = hsum(a2);
  s[3] = hsum(a3);
}

/*
 * T > 1 (prefill) order, shared by every output of tile_q8 whatever its place in a tile: per
 * block the integer dot product is summed exactly to one int32 (|sum| <= 32 * 127 * 127), converted
 * to f32 (exact, < 2^24) and fused-multiply-added with the f32 product d_w * d_x into a
 * per-output f32 accumulator, blocks in order (llama.cpp's order for Q8_0 x Q8_0). Four outputs
 * (2 rows x 2 tokens) share one f32x4: lanes [r0 t0, r0 t1, r1 t0, r1 t1]; a lone output uses
 * lane 0 of the same operations, so tile edges round exactly like tile interiors.
 */

/* [sum a, sum b, sum c, sum d] of four int32x4 (exact). */
static inline v128_t hsum4_i32(v128_t a, v128_t b, v128_t c, v128_t d) {
  v128_t h0 = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
  v128_t h1 = wasm_i32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
  return wasm_i32x4_add(wasm_i32x4_shuffle(h0, h1, 0, 1, 4, 5), wasm_i32x4_shuffle(h0, h1, 2, 3, 6, 7));
}

/* One row . one token in the T > 1 order (lane 0 of the 2 x 2 kernel's arithmetic). */
static inline float dot_q8_p(const uint8_t* w, const float* xs, const int16_t* xi, int nb) {
  v128_t a = wasm_f32x4_splat(0);
  for (int b = 0; b < nb; b++) {
    const uint8_t* p = w + (size_t)b * QB;
    v128_t s = bdot((const int8_t*)(p + 4), xi + b * QK);
    s = wasm_i32x4_add(s, wasm_i32x4_shuffle(s, s, 2, 3, 0, 1));
    s = wasm_i32x4_add(s, wasm_i32x4_shuffle(s, s, 1, 0, 3, 2));
    FMA(a, wasm_f32x4_convert_i32x4(s), wasm_f32x4_splat(bscale(p) * xs[b]));
  }
  return wasm_f32x4_extract_lane(a, 0);
}

/* Block sums of rows p0, p1 (block pointers) x the two tokens held in x0..x3, y0..y3 (int16). */
static inline v128_t pair_block(const uint8_t* p0, const uint8_t* p1, v128_t x0, v128_t x1,
                                v128_t x2, v128_t x3, v128_t y0, v128_t y1, v128_t y2,
                                v128_t y3) {
  v128_t v0 = LD(p0 + 4), v1 = LD(p0 + 20);
  v128_t l = wasm_i16x8_extend_low_i8x16(v0), h = wasm_i16x8_extend_high_i8x16(v0);
  v128_t s00 = wasm_i32x4_add(wasm_i32x4_dot_i16x8(l, x0), wasm_i32x4_dot_i16x8(h, x1));
  v128_t s01 = wasm_i32x4_add(wasm_i32x4_dot_i16x8(l, y0), wasm_i32x4_dot_i16x8(h, y1));
  l = wasm_i16x8_extend_low_i8x16(v1), h = wasm_i16x8_extend_high_i8x16(v1);
  s00 = wasm_i32x4_add(s00, wasm_i32x4_add(wasm_i32x4_dot_i16x8(l, x2), wasm_i32x4_dot_i16x8(h, x3)));
  s01 = wasm_i32x4_add(s01, wasm_i32x4_add(wasm_i32x4_dot_i16x8(l, y2), wasm_i32x4_dot_i16x8(h, y3)));
  v0 = LD(p1 + 4), v1 = LD(p1 + 20);
  l = wasm_i16x8_extend_low_i8x16(v0), h = wasm_i16x8_extend_high_i8x16(v0);
  v128_t s10 = wasm_i32x4_add(wasm_i32x4_dot_i16x8(l, x0), wasm_i32x4_dot_i16x8(h, x1));
  v128_t s11 = wasm_i32x4_add(wasm_i32x4_dot_i16x8(l, y0), wasm_i32x4_dot_i16x8(h, y1));
  l = wasm_i16x8_extend_low_i8x16(v1), h = wasm_i16x8_extend_high_i8x16(v1);
  s10 = wasm_i32x4_add(s10, wasm_i32x4_add(wasm_i32x4_dot_i16x8(l, x2), wasm_i32x4_dot_i16x8(h, x3)));
  s11 = wasm_i32x4_add(s11, wasm_i32x4_add(wasm_i32x4_dot_i16x8(l, y2), wasm_i32x4_dot_i16x8(h, y3)));
  return hsum4_i32(s00, s01, s10, s11);
}

/* Scales [d0 xs0, d0 xs1, d1 xs0, d1 xs1] of a 2 x 2 block. */
static inline v128_t pair_scale(const uint8_t* p0, const uint8_t* p1, float s0, float s1) {
  float d0 = bscale(p0), d1 = bscale(p1);
  return wasm_f32x4_make(d0 * s0, d0 * s1, d1 * s0, d1 * s1);
}

/* Stores the four outputs of a 2 x 2 accumulator (rows i, i+1; tokens at dst, dst + ld). */
static inline void put_2x2(v128_t a, float* dst, int ld, int i) {
  dst[i] = wasm_f32x4_extract_lane(a, 0);
  dst[(size_t)ld + i] = wasm_f32x4_extract_lane(a, 1);
  dst[i + 1] = wasm_f32x4_extract_lane(a, 2);
  dst[(size_t)ld + i + 1] = wasm_f32x4_extract_lane(a, 3);
}

/*
 * Q8_ROWS rows (wr[0..Q8_ROWS)) x two tokens: both tokens' quantized blocks are loaded once per
 * block and reused by every row pair; one f32x4 accumulator per row pair.
 */
#define Q8_ROWS 4
#define Q8_XQ 128
static inline void dot_q8_r4t2(const uint8_t* const* wr, const float* xs0, const int16_t* xi0,
                               const float* xs1, const int16_t* xi1, int nb, float* dst, int ld,
                               int i) {
  v128_t a0 = wasm_f32x4_splat(0), a1 = a0;
  for (int b = 0; b < nb; b++) {
    const int16_t *x = xi0 + b * QK, *y = xi1 + b * QK;
    v128_t x0 = LD(x), x1 = LD(x + 8), x2 = LD(x + 16), x3 = LD(x + 24);
    v128_t y0 = LD(y), y1 = LD(y + 8), y2 = LD(y + 16), y3 = LD(y + 24);
    float s0 = xs0[b], s1 = xs1[b];
    size_t o = (size_t)b * QB;
    const uint8_t *p0 = wr[0] + o, *p1 = wr[1] + o, *p2 = wr[2] + o, *p3 = wr[3] + o;
    FMA(a0, wasm_f32x4_convert_i32x4(pair_block(p0, p1, x0, x1, x2, x3, y0, y1, y2, y3)),
        pair_scale(p0, p1, s0, s1));
    FMA(a1, wasm_f32x4_convert_i32x4(pair_block(p2, p3, x0, x1, x2, x3, y0, y1, y2, y3)),
        pair_scale(p2, p3, s0, s1));
  }
  put_2x2(a0, dst, ld, i);
  put_2x2(a1, dst, ld, i + 2);
}

/*
 * Two rows x four tokens (int16 blocks at xi[0..4), scales interleaved in xq: per block
 * [t0, t1, t0, t1, t2, t3, t2, t3], built once per token quad): each half block of both rows is
 * widened once and reused by the four tokens; accumulators a0 (tokens 0, 1), a1 (tokens 2, 3).
 * Each lane's scale d_w * d_x is the same f32 product as pair_scale's, so outputs equal the
 * 4 x 2 kernel's bit for bit.
 */
static inline void dot_q8_r2t4(const uint8_t* w0, const uint8_t* w1, const float* xq,
                               const int16_t* const* xi, int nb, float* dst, int ld, int i) {
  v128_t a0 = wasm_f32x4_splat(0), a1 = a0;
  for (int b = 0; b < nb; b++) {
    size_t o = (size_t)b * QB;
    const uint8_t *p0 = w0 + o, *p1 = w1 + o;
    const int16_t *x0 = xi[0] + b * QK, *x1 = xi[1] + b * QK, *x2 = xi[2] + b * QK,
                  *x3 = xi[3] + b * QK;
    v128_t s00 = wasm_i32x4_splat(0), s01 = s00, s02 = s00, s03 = s00;
    v128_t s10 = s00, s11 = s00, s12 = s00, s13 = s00;
    for (int h = 0; h < 2; h++) {
      v128_t v0 = LD(p0 + 4 + 16 * h), v1 = LD(p1 + 4 + 16 * h);
      v128_t l0 = wasm_i16x8_extend_low_i8x16(v0), h0 = wasm_i16x8_extend_high_i8x16(v0);
      v128_t l1 = wasm_i16x8_extend_low_i8x16(v1), h1 = wasm_i16x8_extend_high_i8x16(v1);
#define Q8_T(S0, S1, X)                                                                       \
  do {                                                                                        \
    v128_t xa = LD((X) + 16 * h), xb = LD((X) + 16 * h + 8);                                  \
    S0 = wasm_i32x4_add(S0, wasm_i32x4_add(wasm_i32x4_dot_i16x8(l0, xa),                      \
                                           wasm_i32x4_dot_i16x8(h0, xb)));                    \
    S1 = wasm_i32x4_add(S1, wasm_i32x4_add(wasm_i32x4_dot_i16x8(l1, xa),                      \
                                           wasm_i32x4_dot_i16x8(h1, xb)));                    \
  } while (0)
      Q8_T(s00, s10, x0);
      Q8_T(s01, s11, x1);
      Q8_T(s02, s12, x2);
      Q8_T(s03, s13, x3);
#undef Q8_T
    }
    v128_t dv = wasm_i32x4_shuffle(wasm_v128_load32_splat(p0), wasm_v128_load32_splat(p1), 0, 1,
                                   4, 5);
    FMA(a0, wasm_f32x4_convert_i32x4(hsum4_i32(s00, s01, s10, s11)),
        wasm_f32x4_mul(dv, LD(xq + 8 * b)));
    FMA(a1, wasm_f32x4_convert_i32x4(hsum4_i32(s02, s03, s12, s13)),
        wasm_f32x4_mul(dv, LD(xq + 8 * b + 4)));
  }
  put_2x2(a0, dst, ld, i);
  put_2x2(a1, dst + (size_t)2 * ld, ld, i);
}

/* Two rows x two tokens in the same order (the row tail of a tile). */
static inline void dot_q8_r2t2(const uint8_t* w0, const uint8_t* w1, const float* xs0,
                               const int16_t* xi0, const float* xs1, const int16_t* xi1, int nb,
                               float* dst, int ld, int i) {
  v128_t a0 = wasm_f32x4_splat(0);
  for (int b = 0; b < nb; b++) {
    const int16_t *x = xi0 + b * QK, *y = xi1 + b * QK;
    size_t o = (size_t)b * QB;
    const uint8_t *p0 = w0 + o, *p1 = w1 + o;
    FMA(a0,
        wasm_f32x4_convert_i32x4(pair_block(p0, p1, LD(x), LD(x + 8), LD(x + 16), LD(x + 24),
                                            LD(y), LD(y + 8), LD(y + 16), LD(y + 24))),
        pair_scale(p0, p1, xs0[b], xs1[b]));
  }
  put_2x2(a0, dst, ld, i);
}

/*
 * Tokens [0, nt) x rows [0, n) of a tile: dst[t * ld + i] = row_i . token t (quantized xs/xi,
 * nb blocks per token). Token pairs outer, rows inner: the tile's rows (n * nb * 36 bytes) stay
 * in L1 while every token pair passes over them. Every output in the T > 1 order above.
 */
static void tile_q8(const uint8_t* const* wr, int n, const float* xs, const int16_t* xi, int nt,
                    int nb, float* dst, int ld) {
  int K = nb * QK;
  int t = 0;
  /* Per block [xs t0, t1, t0, t1, t2, t3, t2, t3] of a token quad (K <= 32 * Q8_XQ; wider rows
   * take the 4 x 2 kernel, whose outputs are the same bit for bit). */
  float xq[8 * Q8_XQ];
  for (; nb <= Q8_XQ && t + 4 <= nt; t += 4) {
    const float* s4[4];
    const int16_t* x4[4];
    for (int k = 0; k < 4; k++) {
      s4[k] = xs + (size_t)(t + k) * nb;
      x4[k] = xi + (size_t)(t + k) * K;
    }
    for (int b = 0; b < nb; b++) {
      xq[8 * b] = xq[8 * b + 2] = s4[0][b];
      xq[8 * b + 1] = xq[8 * b + 3] = s4[1][b];
      xq[8 * b + 4] = xq[8 * b + 6] = s4[2][b];
      xq[8 * b + 5] = xq[8 * b + 7] = s4[3][b];
    }
    float* d = dst + (size_t)t * ld;
    int i = 0;
    for (; i + 2 <= n; i += 2) dot_q8_r2t4(wr[i], wr[i + 1], xq, x4, nb, d, ld, i);
    for (; i < n; i++) {
      for (int k = 0; k < 4; k++) d[(size_t)k * ld + i] = dot_q8_p(wr[i], s4[k], x4[k], nb);
    }
  }
  for (; t + 2 <= nt; t += 2) {
    const float *s0 = xs + (size_t)t * nb, *s1 = s0 + nb;
    const int16_t *x0 = xi + (size_t)t * K, *x1 = x0 + K;
    float* d = dst + (size_t)t * ld;
    int i = 0;
    for (; i + Q8_ROWS <= n; i += Q8_ROWS) dot_q8_r4t2(wr + i, s0, x0, s1, x1, nb, d, ld, i);
    for (; i + 2 <= n; i += 2) dot_q8_r2t2(wr[i], wr[i + 1], s0, x0, s1, x1, nb, d, ld, i);
    for (; i < n; i++) {
      d[i] = dot_q8_p(wr[i], s0, x0, nb);
      d[(size_t)ld + i] = dot_q8_p(wr[i], s1, x1, nb);
    }
  }
  for (; t < nt; t++) {
    for (int i = 0; i < n; i++) {
      dst[(size_t)t * ld + i] = dot_q8_p(wr[i], xs + (size_t)t * nb, xi + (size_t)t * K, nb);
    }
  }
}

/* Rows per tile of the T > 1 paths (row pointers gathered once per tile). */
#define TILE_ROWS 32

/**
 * Row-gathered matmul, q8 weights. x [T, K] (K % 32 == 0), out [T, R]; w points at block 0 of
 * row 0, rows are wsb blocks apart. scratch: T * (K / 32) floats + T * K int16 (the quantized
 * x). T > 1 runs tiles of TILE_ROWS rows x tb tokens (a GEMM; rows re-read from cache).
 */
EXPORT("matmul_q8")
void matmul_q8(const float* x, int T, int K, const uint8_t* w, int wsb, const int32_t* rows,
               int R, float* out, int tb, void* scratch) {
  int nb = K / QK;
  float* xs = (float*)scratch;
  int16_t* xi = (int16_t*)(xs + (size_t)T * nb);
  quantize_x_q8(x, T, K, xs, xi);
  size_t rb = (size_t)wsb * QB;
  if (T == 1) {
    /* Rows i + j R/4 (j = 0..3) together: four sequential streams, x loaded once (dot4_q8). */
    int q = R / 4;
    for (int i = 0; i < q; i++) {
      float s[4];
      dot4_q8(w + ROW(i) * rb, w + ROW(i + q) * rb, w + ROW(i + 2 * q) * rb,
              w + ROW(i + 3 * q) * rb, xs, xi, nb, s);
      out[i] = s[0];
      out[i + q] = s[1];
      out[i + 2 * q] = s[2];
      out[i + 3 * q] = s[3];
    }
    for (int i = 4 * q; i < R; i++) out[i] = dot_q8(w + ROW(i) * rb, xs, xi, nb);
    return;
  }
  if (tb < 2) tb = 2;
  const uint8_t* wr[TILE_ROWS];
  for (int i0 = 0; i0 < R; i0 += TILE_ROWS) {
    int n = i0 + TILE_ROWS < R ? TILE_ROWS : R - i0;
    for (int j = 0; j < n; j++) wr[j] = w + ROW(i0 + j) * rb;
    for (int t0 = 0; t0 < T; t0 += tb) {
      int nt = t0 + tb < T ? tb : T - t0;
      tile_q8(wr, n, xs + (size_t)t0 * nb, xi + (size_t)t0 * K, nt, nb, out + (size_t)t0 * R + i0,
              R);
    }
  }
}

/*
 * Sixteen int8 (one v128) -> four f32x4 without widening through i16: as i32 lanes, byte k of
 * lane j is (lane << (24 - 8k)) >>s 24, so vector k holds elements 4j + k (j = 0..3): a 4 x 4
 * transposed order, undone once per call by q8_untranspose_add. (Widening with extend_low/high
 * and then converting is scalarised by clang 14 into 16 f32.convert_i32_s: 4x slower.)
 */
#define I8X16_TO_F32(v, f0, f1, f2, f3)                                                   \
  do {                                                                                    \
    (f0) = wasm_f32x4_convert_i32x4(wasm_i32x4_shr(wasm_i32x4_shl((v), 24), 24));          \
    (f1) = wasm_f32x4_convert_i32x4(wasm_i32x4_shr(wasm_i32x4_shl((v), 16), 24));          \
    (f2) = wasm_f32x4_convert_i32x4(wasm_i32x4_shr(wasm_i32x4_shl((v), 8), 24));           \
    (f3) = wasm_f32x4_convert_i32x4(wasm_i32x4_shr((v), 24));                              \
  } while (0)

/*
 * op[0..M) += c * row (q8, M % 32 == 0) in the transposed order of I8X16_TO_F32: per block a
 * coefficient c * d on 32 values, one sequential stream, one fused multiply-add per 4 weights.
 */
static inline void axpy1_q8t(float* op, int M, float c, const uint8_t* w) {
  for (int m = 0; m < M; m += QK) {
    const uint8_t* p = w + (size_t)(m / QK) * QB;
    v128_t k = wasm_f32x4_splat(c * bscale(p)), f0, f1, f2, f3;
    for (int h = 0; h < 2; h++) {
      I8X16_TO_F32(LD(p + 4 + 16 * h), f0, f1, f2, f3);
      float* q = op + m + 16 * h;
      v128_t o0 = LD(q), o1 = LD(q + 4), o2 = LD(q + 8), o3 = LD(q + 12);
      FMA(o0, k, f0);
      FMA(o1, k, f1);
      FMA(o2, k, f2);
      FMA(o3, k, f3);
      wasm_v128_store(q, o0);
      wasm_v128_store(q + 4, o1);
      wasm_v128_store(q + 8, o2);
      wasm_v128_store(q + 12, o3);
    }
  }
}

/*
 * op[0..M) += c[0] w0, then c[1] w1, c[2] w2, c[3] w3: four rows per pass over op (op loaded
 * and stored once per four rows, not once per row). Each lane gets exactly the fused
 * multiply-adds of axpy1_q8t(c[0], w0) ... axpy1_q8t(c[3], w3), in that order.
 */
static inline void axpy4_q8t(float* op, int M, const float* c, const uint8_t* w0,
                             const uint8_t* w1, const uint8_t* w2, const uint8_t* w3) {
  for (int m = 0; m < M; m += QK) {
    size_t ob = (size_t)(m / QK) * QB;
    v128_t k0 = wasm_f32x4_splat(c[0] * bscale(w0 + ob));
    v128_t k1 = wasm_f32x4_splat(c[1] * bscale(w1 + ob));
    v128_t k2 = wasm_f32x4_splat(c[2] * bscale(w2 + ob));
    v128_t k3 = wasm_f32x4_splat(c[3] * bscale(w3 + ob));
    for (int h = 0; h < 2; h++) {
      size_t off = ob + 4 + 16 * h;
      float* q = op + m + 16 * h;
      v128_t o0 = LD(q), o1 = LD(q + 4), o2 = LD(q + 8), o3 = LD(q + 12), f0, f1, f2, f3;
#define AXPY4_ROW(w, k)                      \
  do {                                       \
    I8X16_TO_F32(LD((w) + off), f0, f1, f2, f3); \
    FMA(o0, k, f0);                          \
    FMA(o1, k, f1);                          \
    FMA(o2, k, f2);                          \
    FMA(o3, k, f3);                          \
  } while (0)
      AXPY4_ROW(w0, k0);
      AXPY4_ROW(w1, k1);
      AXPY4_ROW(w2, k2);
      AXPY4_ROW(w3, k3);
#undef AXPY4_ROW
      wasm_v128_store(q, o0);
      wasm_v128_store(q + 4, o1);
      wasm_v128_store(q + 8, o2);
      wasm_v128_store(q + 12, o3);
    }
  }
}

/*
 * The T == 1 down/o_proj sum, shared by matmul_t_add_q8 and ffn_q8 so that both add the rows
 * in the same order (the threaded FFN runs its down rows through matmul_t_add_q8, see
 * lib/backends/wasm_threads_cuts.ts): op[0..M) += a[i] * row i, rows i, i + q, i + 2q, i + 3q
 * per pass (q = R/4; four sequential streams), then rows 4q .. R-1 one at a time. The order
 * depends on R only, not on how a thread cuts out's columns.
 */
static void axpy_rows_q8t(float* op, int M, const float* a, const uint8_t* w, size_t rb,
                          const int32_t* rows, int R) {
  int q = R / 4;
  for (int i = 0; i < q; i++) {
    float c[4] = {a[i], a[i + q], a[i + 2 * q], a[i + 3 * q]};
    axpy4_q8t(op, M, c, w + ROW(i) * rb, w + ROW(i + q) * rb, w + ROW(i + 2 * q) * rb,
              w + ROW(i + 3 * q) * rb);
  }
  for (int i = 4 * q; i < R; i++) axpy1_q8t(op, M, a[i], w + ROW(i) * rb);
}

/* out[0..M) += op undoing the 4 x 4 transposed order of each group of 16 (M % 16 == 0). */
static void q8_untranspose_add(float* out, int M, const float* op) {
  for (int m = 0; m < M; m += 16) {
    v128_t a0 = LD(op + m), a1 = LD(op + m + 4), a2 = LD(op + m + 8), a3 = LD(op + m + 12);
    v128_t t0 = wasm_i32x4_shuffle(a0, a1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(a2, a3, 0, 4, 1, 5);
    v128_t t2 = wasm_i32x4_shuffle(a0, a1, 2, 6, 3, 7), t3 = wasm_i32x4_shuffle(a2, a3, 2, 6, 3, 7);
    v128_t r0 = wasm_i64x2_shuffle(t0, t1, 0, 2), r1 = wasm_i64x2_shuffle(t0, t1, 1, 3);
    v128_t r2 = wasm_i64x2_shuffle(t2, t3, 0, 2), r3 = wasm_i64x2_shuffle(t2, t3, 1, 3);
    wasm_v128_store(out + m, wasm_f32x4_add(LD(out + m), r0));
    wasm_v128_store(out + m + 4, wasm_f32x4_add(LD(out + m + 4), r1));
    wasm_v128_store(out + m + 8, wasm_f32x4_add(LD(out + m + 8), r2));
    wasm_v128_store(out + m + 12, wasm_f32x4_add(LD(out + m + 12), r3));
  }
}

/* n values of a q8 row (n % 32 == 0) -> f32, in natural order. */
static void dequant_row(const uint8_t* w, int n, float* dst) {
  for (int m = 0; m < n; m += QK) {
    const uint8_t* p = w + (size_t)(m / QK) * QB;
    v128_t k = wasm_f32x4_splat(bscale(p)), a0, a1, a2, a3;
    for (int h = 0; h < 2; h++) {
      I8X16_TO_F32(LD(p + 4 + 16 * h), a0, a1, a2, a3);
      v128_t t0 = wasm_i32x4_shuffle(a0, a1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(a2, a3, 0, 4, 1, 5);
      v128_t t2 = wasm_i32x4_shuffle(a0, a1, 2, 6, 3, 7), t3 = wasm_i32x4_shuffle(a2, a3, 2, 6, 3, 7);
      float* q = dst + m + 16 * h;
      wasm_v128_store(q, wasm_f32x4_mul(k, wasm_i64x2_shuffle(t0, t1, 0, 2)));
      wasm_v128_store(q + 4, wasm_f32x4_mul(k, wasm_i64x2_shuffle(t0, t1, 1, 3)));
      wasm_v128_store(q + 8, wasm_f32x4_mul(k, wasm_i64x2_shuffle(t2, t3, 0, 2)));
      wasm_v128_store(q + 12, wasm_f32x4_mul(k, wasm_i64x2_shuffle(t2, t3, 1, 3)));
    }
  }
}

/*
 * out [T, M] += a [T, n] (column pitch lda) times n dequantized rows f [n, M] (f32), through the
 * register-blocked GEMM (gemm.h).
 */
static void down_rows(const float* a, int lda, int T, const float* f, int n, int M, float* out) {
  const float* fp[TILE_ROWS];
  for (int j = 0; j < n; j++) fp[j] = f + (size_t)j * M;
  gemm_acc_f32(a, lda, T, fp, n, M, out, M);
}

/**
 * Row-gathered transposed product, accumulated; q8 weights (M % 32 == 0). a [T, R], out [T, M].
 * scratch: TILE_ROWS * M floats (T == 1: the transposed-order accumulator; T > 1: a tile of rows
 * dequantized once, reused by every token).
 */
EXPORT("matmul_t_add_q8")
void matmul_t_add_q8(const float* a, int T, int R, const uint8_t* w, int wsb,
                     const int32_t* rows, int M, float* out, float* scratch) {
  size_t rb = (size_t)wsb * QB;
  if (T == 1) {
    __builtin_memset(scratch, 0, (size_t)M * sizeof(float));
    axpy_rows_q8t(scratch, M, a, w, rb, rows, R);
    q8_untranspose_add(out, M, scratch);
    return;
  }
  for (int i0 = 0; i0 < R; i0 += TILE_ROWS) {
    int n = i0 + TILE_ROWS < R ? TILE_ROWS : R - i0;
    for (int j = 0; j < n; j++) dequant_row(w + ROW(i0 + j) * rb, M, scratch + (size_t)j * M);
    down_rows(a + i0, R, T, scratch, n, M, out);
  }
}


/**
 * Fused SwiGLU FFN, q8 weights: for each kept neuron i (r = rows[i]),
 *   a[t] = silu(x[t] . gate_r) * (x[t] . up_r)  (x quantized as in matmul_q8),
 *   out[t, :] += a[t] * down_r (dequantized, a not quantized);  act[t, i] = a[t].
 * gate/up/down point at block 0 of row 0 of each view; gsb/usb/dsb are row strides in blocks.
 * With the bundled [gate | up | down^T] layout a neuron is one contiguous run of blocks.
 * x [T, K], out [T, M], act [T, R] or NULL. K, M % 32 == 0.
 * scratch: T * (K/32) floats + T * K int16, then M floats (T == 1: the transposed-order down
 * accumulator) or 2 * T * TILE_ROWS + TILE_ROWS * M floats (T > 1).
 */
EXPORT("ffn_q8")
void ffn_q8(const float* x, int T, int K, const uint8_t* gate, int gsb, const uint8_t* up,
            int usb, const uint8_t* down, int dsb, int M, const int32_t* rows, int R, float* out,
            float* act, int tb, void* scratch) {
  int nb = K / QK;
  float* xs = (float*)scratch;
  int16_t* xi = (int16_t*)(xs + (size_t)T * nb);
  quantize_x_q8(x, T, K, xs, xi);
  size_t gb = (size_t)gsb * QB, ub = (size_t)usb * QB, db = (size_t)dsb * QB;
  if (T == 1) {
    float* op = (float*)(xi + K);
    __builtin_memset(op, 0, (size_t)M * sizeof(float));
    /* Neurons i + j R/4 (j = 0..3) together: gate and up dots share x's loads (dot4_q8), one
     * pass over op adds the four down rows (axpy4_q8t); the rows' order is axpy_rows_q8t's, so
     * the threaded FFN (down through matmul_t_add_q8) gives the same bits. */
    int q = R / 4;
    for (int i = 0; i < q; i++) {
      size_t r0 = ROW(i), r1 = ROW(i + q), r2 = ROW(i + 2 * q), r3 = ROW(i + 3 * q);
      float g[4], u[4], a[4];
      dot4_q8(gate + r0 * gb, gate + r1 * gb, gate + r2 * gb, gate + r3 * gb, xs, xi, nb, g);
      dot4_q8(up + r0 * ub, up + r1 * ub, up + r2 * ub, up + r3 * ub, xs, xi, nb, u);
      swiglu4(g, u, a, act, i, q);
      axpy4_q8t(op, M, a, down + r0 * db, down + r1 * db, down + r2 * db, down + r3 * db);
    }
    for (int i = 4 * q; i < R; i++) {
      size_t r = ROW(i);
      float a = silu(dot_q8(gate + r * gb, xs, xi, nb)) * dot_q8(up + r * ub, xs, xi, nb);
      if (act) act[i] = a;
      axpy1_q8t(op, M, a, down + r * db);
    }
    q8_untranspose_add(out, M, op);
    return;
  }
  (void)tb;
  /* Tiles of TILE_ROWS neurons over all T tokens: G, U [T, TILE_ROWS], then the tile's down
   * rows dequantized once into F [TILE_ROWS, M] and applied to every token. */
  float* G = (float*)(xi + (size_t)T * K);
  float* U = G + (size_t)T * TILE_ROWS;
  float* F = U + (size_t)T * TILE_ROWS;
  const uint8_t* wg[TILE_ROWS];
  const uint8_t* wu[TILE_ROWS];
  for (int i0 = 0; i0 < R; i0 += TILE_ROWS) {
    int n = i0 + TILE_ROWS < R ? TILE_ROWS : R - i0;
    for (int j = 0; j < n; j++) {
      size_t r = ROW(i0 + j);
      wg[j] = gate + r * gb;
      wu[j] = up + r * ub;
    }
    tile_q8(wg, n, xs, xi, T, nb, G, TILE_ROWS);
    tile_q8(wu, n, xs, xi, T, nb, U, TILE_ROWS);
    silu_mul_tile(G, U, TILE_ROWS, T, n, act ? act + i0 : 0, R);
    for (int j = 0; j < n; j++) dequant_row(down + ROW(i0 + j) * db, M, F + (size_t)j * M);
    down_rows(G, TILE_ROWS, T, F, n, M, out);
  }
}

/**
 * n values of a q8 buffer starting at element e0 (any alignment) -> f32 dst. For embedding rows
 * and the rare q8 vector handed to an elementwise op.
 */
EXPORT("q8_to_f32")
void q8_to_f32(const uint8_t* base, int e0, int n, float* dst) {
  for (int j = 0; j < n; j++) {
    size_t e = (size_t)e0 + (size_t)j;
    const uint8_t* p = base + (e / QK) * QB;
    dst[j] = bscale(p) * (float)((const int8_t*)(p + 4))[e % QK];
  }
}
