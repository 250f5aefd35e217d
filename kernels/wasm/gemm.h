/*
 * The register-blocked GEMMs of the prefill paths (T > 1).
 *
 * gemm_acc_f32, the transposed products (o_proj, FFN down):
 *   out[t, m] += sum_{i < n} a[t * lda + i] * w_i[m]      t < T, m < M; out row pitch ldo
 * with w_i given as n row pointers (f32; gathered rows, or a tile dequantized into scratch).
 * The coefficients are packed once per call (pk: per block of GACC_NT tokens, row-major with the
 * tokens contiguous). Micro-kernel: 8 outputs x 5 tokens; per row i two loads of w_i, one vector
 * of 4 tokens' coefficients splatted lane by lane with shuffles and one splat load feed 10
 * multiply-adds. Loop order m-block, token block, row: the n rows' 32 bytes at m stay in L1
 * while every token passes over them. Each output is one multiply-add chain over i in order
 * from its value in out, whatever the token block: the block size does not change a bit.
 *
 * gemm_dott, the products against gathered rows (q/k/v, lm_head, FFN gate and up):
 *   out[t, i] = sum_{k < K} x[t, k] * w_i[k]                t < T, i < n; out row pitch ldo
 * with w_i given as n f32 row pointers and x token-transposed once per call (pack_xt): an outer
 * product of 4 rows x 8 tokens per register block, each output one multiply-add chain over k
 * in order (see below). It replaced a dot block of 4 rows x 2 tokens (one accumulator per
 * output, horizontal sums; larger dot blocks and a packed 8-row panel with splat loads of x
 * measured slower in V8, see kernels/wasm/README.md).
 */
#ifndef SEAP_GEMM_H
#define SEAP_GEMM_H

#include "common.h"

#define SPLAT_LD(p) wasm_v128_load32_splat(p)

/* Tokens per register block of gemm_acc_f32: 10 accumulators (8 outputs x 5 tokens) + 2 weight
 * vectors + the coefficient vector + its splat = 14 of the 15 xmm registers V8 allocates on x64.
 * 6 tokens need 16 with shuffled coefficients (V8 then spills an accumulator, whose store/reload
 * joins its multiply-add chain: 0.75x). */
#define GACC_NT 5
/* Floats per row of a packed coefficient block (GACC_NT rounded up to a vector). */
#define GACC_GP 8
/* Token blocks per packed super-block (its coefficients on the stack: 8 x 32 x 8 floats). */
#define GACC_NB 8
/* Rows per packed super-block (the callers pass tiles of at most 32). */
#define GACC_ROWS 32

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* Lane l (a constant after unrolling) of v splatted by one shuffle. */
static ALWAYS_INLINE v128_t lane_splat(v128_t v, int l) {
  switch (l) {
    case 0: return wasm_i32x4_shuffle(v, v, 0, 0, 0, 0);
    case 1: return wasm_i32x4_shuffle(v, v, 1, 1, 1, 1);
    case 2: return wasm_i32x4_shuffle(v, v, 2, 2, 2, 2);
    default: return wasm_i32x4_shuffle(v, v, 3, 3, 3, 3);
  }
}

/*
 * out block [NT tokens, 8 outputs at m] += pk [n rows][GACC_GP] w[., m..m + 8), NT <= GACC_NT:
 * per row, two weight loads, one vector load of tokens 0..3's coefficients (lanes splatted by
 * shuffles: no memory access, so no V8 bounds check) and a splat load for token 4: 5 loads and 4
 * shuffles per 10 multiply-adds, where the 8 x 6 block of splat loads paid 9 loads per 12.
 */
static ALWAYS_INLINE void gacc_blk(const float* pk, const float* const* w, int n, int m, float* o,
                                   int ldo, const int NT) {
  v128_t p[GACC_NT], q[GACC_NT];
#pragma clang loop unroll(full)
  for (int j = 0; j < NT; j++) {
    p[j] = LD(o + (size_t)j * ldo);
    q[j] = LD(o + (size_t)j * ldo + 4);
  }
  for (int i = 0; i < n; i++) {
    v128_t v = LD(w[i] + m), u = LD(w[i] + m + 4);
    const float* c = pk + (size_t)i * GACC_GP;
    if (NT >= 4) {
      v128_t cv = LD(c);
#pragma clang loop unroll(full)
      for (int j = 0; j < 4; j++) {
        v128_t s = lane_splat(cv, j);
        FMA(p[j], s, v);
        FMA(q[j], s, u);
      }
    }
#pragma clang loop unroll(full)
    for (int j = NT >= 4 ? 4 : 0; j < NT; j++) {
      v128_t s = SPLAT_LD(c + j);
      FMA(p[j], s, v);
      FMA(q[j], s, u);
    }
  }
#pragma clang loop unroll(full)
  for (int j = 0; j < NT; j++) {
    wasm_v128_store(o + (size_t)j * ldo, p[j]);
    wasm_v128_store(o + (size_t)j * ldo + 4, q[j]);
  }
}

static void gemm_acc_f32(const float* a, int lda, int T, const float* const* w, int n, int M,
                         float* out, int ldo) {
  /* pk[b][i][j] = a[t0 + GACC_NT b + j, i0 + i] for j < GACC_NT (zero past T): the coefficients
   * of a token block row-major with its tokens contiguous, packed once per call (per 40 tokens and
   * 32 rows) and read by every 8-output block. */
  float pk[GACC_NB * GACC_ROWS * GACC_GP];
  const int TS = GACC_NB * GACC_NT;
  for (int i0 = 0; i0 < n; i0 += GACC_ROWS) {
    int nn = n - i0 < GACC_ROWS ? n - i0 : GACC_ROWS;
    for (int t0 = 0; t0 < T; t0 += TS) {
      int ts = T - t0 < TS ? T - t0 : TS, nb = (ts + GACC_NT - 1) / GACC_NT;
      for (int b = 0; b < nb; b++) {
        float* d = pk + (size_t)b * GACC_ROWS * GACC_GP;
        for (int i = 0; i < nn; i++) {
          for (int j = 0; j < GACC_NT; j++) {
            int t = t0 + GACC_NT * b + j;
            d[i * GACC_GP + j] = t < T ? a[(size_t)t * lda + i0 + i] : 0.0f;
          }
        }
      }
      for (int m = 0; m + 8 <= M; m += 8) {
        for (int b = 0; b < nb; b++) {
          const float* p = pk + (size_t)b * GACC_ROWS * GACC_GP;
          int t = t0 + GACC_NT * b, nt = ts - GACC_NT * b < GACC_NT ? ts - GACC_NT * b : GACC_NT;
          float* o = out + (size_t)t * ldo + m;
          switch (nt) {
            case 5: gacc_blk(p, w + i0, nn, m, o, ldo, 5); break;
            case 4: gacc_blk(p, w + i0, nn, m, o, ldo, 4); break;
            case 3: gacc_blk(p, w + i0, nn, m, o, ldo, 3); break;
            case 2: gacc_blk(p, w + i0, nn, m, o, ldo, 2); break;
            default: gacc_blk(p, w + i0, nn, m, o, ldo, 1); break;
          }
        }
      }
    }
  }
  for (int m = M / 8 * 8; m < M; m++) {
    for (int t = 0; t < T; t++) {
      float s = out[(size_t)t * ldo + m];
      for (int i = 0; i < n; i++) s += a[(size_t)t * lda + i] * w[i][m];
      out[(size_t)t * ldo + m] = s;
    }
  }
}

/*
 * The dot products of the prefill paths on a token-transposed x ("xt"): x [T, K] repacked once
 * per call into groups of XT_G tokens, xt[g][k][j] = x[XT_G g + j, k] (zero for tokens past T),
 * so one vector load holds 4 tokens' value at k. A register block of 4 rows x 8 tokens is then
 * an outer product: per 2 k, one 8-byte load of w_r[k], w_r[k + 1] per row and 4 loads of xt;
 * each w_r lane is splatted by a shuffle (no memory access, so no bounds check in V8) and
 * multiply-added into 8 accumulators of 4 tokens each: 8 loads + 8 shuffles per 16
 * multiply-adds, where the 4 x 2 dot block paid 6 loads per 8 (each load costs V8 a cmp + jae
 * bounds check, kernels/wasm/README.md); no horizontal sums.
 * Order of every output: one multiply-add chain over k = 0, 1, ..., K - 1 in a lane, from 0;
 * the same whatever the block, the token's place in its group, T or a thread's cut.
 */
#define XT_G 8

/* Floats of the token-transposed copy of T tokens of K values. */
#define XT_FLOATS(T, K) ((size_t)(((T) + XT_G - 1) / XT_G) * XT_G * (size_t)(K))

/* xt[g][k][j] = x[(XT_G g + j) * ldx + k] for j < XT_G, zero past T (the layout above). */
static void pack_xt(const float* x, int ldx, int T, int K, float* xt) {
  for (int t0 = 0; t0 < T; t0 += XT_G) {
    float* d = xt + (size_t)t0 * K;
    if (t0 + XT_G <= T) {
      int k = 0;
      for (; k + 4 <= K; k += 4) {
#pragma clang loop unroll(full)
        for (int h = 0; h < 2; h++) {
          const float* s = x + (size_t)(t0 + 4 * h) * ldx + k;
          v128_t a0 = LD(s), a1 = LD(s + ldx), a2 = LD(s + 2 * (size_t)ldx),
                 a3 = LD(s + 3 * (size_t)ldx);
          v128_t u0 = wasm_i32x4_shuffle(a0, a1, 0, 4, 1, 5);
          v128_t u1 = wasm_i32x4_shuffle(a2, a3, 0, 4, 1, 5);
          v128_t u2 = wasm_i32x4_shuffle(a0, a1, 2, 6, 3, 7);
          v128_t u3 = wasm_i32x4_shuffle(a2, a3, 2, 6, 3, 7);
          float* o = d + (size_t)k * XT_G + 4 * h;
          wasm_v128_store(o, wasm_i32x4_shuffle(u0, u1, 0, 1, 4, 5));
          wasm_v128_store(o + XT_G, wasm_i32x4_shuffle(u0, u1, 2, 3, 6, 7));
          wasm_v128_store(o + 2 * XT_G, wasm_i32x4_shuffle(u2, u3, 0, 1, 4, 5));
          wasm_v128_store(o + 3 * XT_G, wasm_i32x4_shuffle(u2, u3, 2, 3, 6, 7));
        }
      }
      for (; k < K; k++) {
        for (int j = 0; j < XT_G; j++) d[(size_t)k * XT_G + j] = x[(size_t)(t0 + j) * ldx + k];
      }
    } else {
      for (int k = 0; k < K; k++) {
        for (int j = 0; j < XT_G; j++) {
          d[(size_t)k * XT_G + j] = t0 + j < T ? x[(size_t)(t0 + j) * ldx + k] : 0.0f;
        }
      }
    }
  }
}

/* Row vector lane L splatted (one shuffle). */
#define LANE(v, L) wasm_i32x4_shuffle((v), (v), L, L, L, L)

/*
 * o[j * ldo + r] = sum_k xt[k][j] w_r[k] for r < NR rows, j < nt tokens of one group (xt: the
 * group's [K][XT_G] block; NV = 1 computes tokens 0..3 only, nt <= 4).
 */
static ALWAYS_INLINE void dott_blk(const float* xt, const float* const* w, int K, float* o,
                                   int ldo, int nt, const int NR, const int NV) {
  v128_t acc[4][2];
  const float* wr[4];
#pragma clang loop unroll(full)
  for (int r = 0; r < NR; r++) {
    wr[r] = w[r];
#pragma clang loop unroll(full)
    for (int v = 0; v < NV; v++) acc[r][v] = wasm_f32x4_splat(0);
  }
  int k = 0;
  for (; k + 2 <= K; k += 2) {
    /* Two k per step: rows' pairs w_r[k], w_r[k + 1] in one 8-byte load each, xt of both k (4
     * vectors) live with the 8 accumulators, a row pair and a splat: 14 registers. clang orders
     * the step rows outer whatever the source order; with four k per step that order needed 8
     * xt vectors live and V8 spilled accumulators every step. */
    const float* xp = xt + (size_t)k * XT_G;
    v128_t x00 = LD(xp), x01 = x00, x10 = LD(xp + XT_G), x11 = x10;
    if (NV > 1) {
      x01 = LD(xp + 4);
      x11 = LD(xp + XT_G + 4);
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < NR; r++) {
      v128_t wv = wasm_v128_load64_zero(wr[r] + k);
      v128_t s0 = LANE(wv, 0), s1 = LANE(wv, 1);
      FMA(acc[r][0], s0, x00);
      if (NV > 1) FMA(acc[r][1], s0, x01);
      FMA(acc[r][0], s1, x10);
      if (NV > 1) FMA(acc[r][1], s1, x11);
    }
  }
  for (; k < K; k++) {
    const float* xp = xt + (size_t)k * XT_G;
    v128_t x0 = LD(xp), x1 = x0;
    if (NV > 1) x1 = LD(xp + 4);
#pragma clang loop unroll(full)
    for (int r = 0; r < NR; r++) {
      v128_t s = SPLAT_LD(wr[r] + k);
      FMA(acc[r][0], s, x0);
      if (NV > 1) FMA(acc[r][1], s, x1);
    }
  }
#pragma clang loop unroll(full)
  for (int v = 0; v < NV; v++) {
    int j0 = 4 * v, nj = nt - j0 < 4 ? nt - j0 : 4;
    if (NR == 4 && nj == 4) {
      /* 4 x 4 transpose: vector j = the four rows' outputs of token j0 + j. */
      v128_t u0 = wasm_i32x4_shuffle(acc[0][v], acc[1][v], 0, 4, 1, 5);
      v128_t u1 = wasm_i32x4_shuffle(acc[2][v], acc[3][v], 0, 4, 1, 5);
      v128_t u2 = wasm_i32x4_shuffle(acc[0][v], acc[1][v], 2, 6, 3, 7);
      v128_t u3 = wasm_i32x4_shuffle(acc[2][v], acc[3][v], 2, 6, 3, 7);
      float* p = o + (size_t)j0 * ldo;
      wasm_v128_store(p, wasm_i32x4_shuffle(u0, u1, 0, 1, 4, 5));
      wasm_v128_store(p + ldo, wasm_i32x4_shuffle(u0, u1, 2, 3, 6, 7));
      wasm_v128_store(p + 2 * (size_t)ldo, wasm_i32x4_shuffle(u2, u3, 0, 1, 4, 5));
      wasm_v128_store(p + 3 * (size_t)ldo, wasm_i32x4_shuffle(u2, u3, 2, 3, 6, 7));
    } else {
#pragma clang loop unroll(full)
      for (int r = 0; r < NR; r++) {
        float l[4];
        wasm_v128_store(l, acc[r][v]);
        for (int j = 0; j < nj; j++) o[(size_t)(j0 + j) * ldo + r] = l[j];
      }
    }
  }
}

/* NR rows against tokens [0, T) of xt (groups of XT_G, the last one possibly partial). */
static ALWAYS_INLINE void dott_rows(const float* xt, int T, const float* const* w, int K, float* o,
                                    int ldo, const int NR) {
  for (int t0 = 0; t0 < T; t0 += XT_G) {
    int nt = T - t0 < XT_G ? T - t0 : XT_G;
    const float* g = xt + (size_t)t0 * K;
    float* p = o + (size_t)t0 * ldo;
    if (nt > 4) dott_blk(g, w, K, p, ldo, nt, NR, 2);
    else dott_blk(g, w, K, p, ldo, nt, NR, 1);
  }
}

/*
 * out[t * ldo + i] = x[t] . w_i for t < T, i < n (f32 row pointers), from xt = pack_xt(x) (T
 * tokens; a token block starting at a multiple of XT_G is xt + t0 * K). Rows outer, 4 at a time:
 * their 4 K floats stay in L1 while every token group passes over them.
 */
static void gemm_dott(const float* xt, int T, int K, const float* const* w, int n, float* out,
                      int ldo) {
  int i = 0;
  for (; i + 4 <= n; i += 4) dott_rows(xt, T, w + i, K, out + i, ldo, 4);
  for (; i < n; i++) dott_rows(xt, T, w + i, K, out + i, ldo, 1);
}

/*
 * The prefill FFN's activation over a tile: G[t * ldg + j] = silu(G) * U (U with the same
 * pitch), copied to act[t * act_pitch + j] when act is given; t < nt, j < n. Four neurons per
 * vector: the same operations per lane as silu(g) * u on one value (vexp is lane-wise), so the
 * values are those of the scalar loop it replaced.
 */
static void silu_mul_tile(float* G, const float* U, int ldg, int nt, int n, float* act,
                          int act_pitch) {
  v128_t one = wasm_f32x4_splat(1.0f);
  for (int t = 0; t < nt; t++) {
    float* g = G + (size_t)t * ldg;
    const float* u = U + (size_t)t * ldg;
    float* a = act ? act + (size_t)t * act_pitch : 0;
    int j = 0;
    for (; j + 4 <= n; j += 4) {
      v128_t x = LD(g + j);
      v128_t s = wasm_f32x4_div(x, wasm_f32x4_add(one, vexp(wasm_f32x4_neg(x))));
      v128_t v = wasm_f32x4_mul(s, LD(u + j));
      wasm_v128_store(g + j, v);
      if (a) wasm_v128_store(a + j, v);
    }
    for (; j < n; j++) {
      float v = g[j] / (1.0f + sexp(-g[j])) * u[j];
      g[j] = v;
      if (a) a[j] = v;
    }
  }
}

#endif
