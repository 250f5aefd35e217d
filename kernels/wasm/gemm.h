/*
 * The register-blocked GEMMs of the prefill paths (T > 1).
 *
 * gemm_acc_f32, the transposed products (o_proj, FFN down):
 *   out[t, m] += sum_{i < n} a[t * lda + i] * w_i[m]      t < T, m < M; out row pitch ldo
 * with w_i given as n row pointers (f32; gathered rows, or a tile dequantized into scratch).
 * Micro-kernel: 8 outputs x GEMM_NT tokens; per row i two loads of w_i and GEMM_NT splatted
 * coefficients feed 2 * GEMM_NT multiply-adds. Loop order m-block, token block, row: the n rows'
 * 32 bytes at m stay in L1 while every token passes over them. Each output is one multiply-add
 * chain over i in order, whatever the token block: the block size does not change a bit.
 *
 * gemm_dot, the products against gathered rows (q/k/v, lm_head, FFN gate and up):
 *   out[t, i] = sum_{k < K} x[t * ldx + k] * w_i[k]        t < T, i < n; out row pitch ldo
 * with w_i given as n f32 row pointers: DOT_R rows x DOT_N tokens per register block, one
 * f32x4 accumulator per output over k. Larger blocks (4 x 3, 3 x 3, 3 x 4, 5 x 2) and a packed
 * 8-row panel with an outer-product kernel (8 x 4 .. 8 x 6) measured slower in V8 (see
 * kernels/wasm/README.md), so the block stays 4 x 2; it is written once for any block shape.
 */
#ifndef SEAP_GEMM_H
#define SEAP_GEMM_H

#include "common.h"

#define SPLAT_LD(p) wasm_v128_load32_splat(p)

/* Tokens per register block of gemm_acc_f32: 12 accumulators + 2 weight vectors + 1 splat = 15
 * of the 16 xmm registers of x64 (6 measured 1.1-1.15x the 4 of before on prefill_t, best of
 * rounds, bench/kernel_bench.ts --cases=prefill). */
#define GEMM_NT 6

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* out block [NT tokens, 8 outputs at m] += a [NT, n] w[., m..m+8). */
static ALWAYS_INLINE void gacc_8xN(const float* c, int lda, const float* const* w, int n, int m,
                                   float* o, int ldo, const int NT) {
  v128_t p[GEMM_NT], q[GEMM_NT];
#pragma clang loop unroll(full)
  for (int j = 0; j < NT; j++) {
    p[j] = LD(o + (size_t)j * ldo);
    q[j] = LD(o + (size_t)j * ldo + 4);
  }
  for (int i = 0; i < n; i++) {
    v128_t v = LD(w[i] + m), u = LD(w[i] + m + 4);
#pragma clang loop unroll(full)
    for (int j = 0; j < NT; j++) {
      v128_t s = SPLAT_LD(c + (size_t)j * lda + i);
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
  int m = 0;
  for (; m + 8 <= M; m += 8) {
    int t = 0;
    for (; t + GEMM_NT <= T; t += GEMM_NT) {
      gacc_8xN(a + (size_t)t * lda, lda, w, n, m, out + (size_t)t * ldo + m, ldo, GEMM_NT);
    }
    const float* c = a + (size_t)t * lda;
    float* o = out + (size_t)t * ldo + m;
    switch (T - t) {
      case 5: gacc_8xN(c, lda, w, n, m, o, ldo, 5); break;
      case 4: gacc_8xN(c, lda, w, n, m, o, ldo, 4); break;
      case 3: gacc_8xN(c, lda, w, n, m, o, ldo, 3); break;
      case 2: gacc_8xN(c, lda, w, n, m, o, ldo, 2); break;
      case 1: gacc_8xN(c, lda, w, n, m, o, ldo, 1); break;
      default: break;
    }
  }
  for (; m < M; m++) {
    for (int t = 0; t < T; t++) {
      float s = out[(size_t)t * ldo + m];
      for (int i = 0; i < n; i++) s += a[(size_t)t * lda + i] * w[i][m];
      out[(size_t)t * ldo + m] = s;
    }
  }
}

/* Rows and tokens per dot block of gemm_dot: 8 accumulators. */
#define DOT_R 4
#define DOT_N 2

/*
 * o[j * ldo + r] = x_j . w_r for r < NR rows, j < NT tokens (x_j = x + j * ldx, K values). One
 * f32x4 accumulator per output over k in steps of 4, then ((l0 + l1) + l2) + l3, then the K % 4
 * tail in order: the order of every dot product of these kernels, whatever NR and NT.
 */
static ALWAYS_INLINE void dot_blk(const float* x, int ldx, const float* const* w, int K, float* o,
                                  int ldo, const int NR, const int NT) {
  v128_t acc[DOT_R][DOT_N];
#pragma clang loop unroll(full)
  for (int r = 0; r < NR; r++) {
#pragma clang loop unroll(full)
    for (int j = 0; j < NT; j++) acc[r][j] = wasm_f32x4_splat(0);
  }
  int k = 0;
  for (; k + 4 <= K; k += 4) {
    v128_t xv[DOT_N];
#pragma clang loop unroll(full)
    for (int j = 0; j < NT; j++) xv[j] = LD(x + (size_t)j * ldx + k);
#pragma clang loop unroll(full)
    for (int r = 0; r < NR; r++) {
      v128_t v = LD(w[r] + k);
#pragma clang loop unroll(full)
      for (int j = 0; j < NT; j++) FMA(acc[r][j], xv[j], v);
    }
  }
#pragma clang loop unroll(full)
  for (int r = 0; r < NR; r++) {
#pragma clang loop unroll(full)
    for (int j = 0; j < NT; j++) {
      float s = hsum(acc[r][j]);
      for (int kk = k; kk < K; kk++) s += x[(size_t)j * ldx + kk] * w[r][kk];
      o[(size_t)j * ldo + r] = s;
    }
  }
}

/* Tokens [0, T) against NR rows: blocks of DOT_N tokens, then the remainder. */
static ALWAYS_INLINE void dot_rows(const float* x, int ldx, int T, const float* const* w, int K,
                                   float* o, int ldo, const int NR) {
  int t = 0;
  for (; t + DOT_N <= T; t += DOT_N) {
    dot_blk(x + (size_t)t * ldx, ldx, w, K, o + (size_t)t * ldo, ldo, NR, DOT_N);
  }
  for (; t < T; t++) dot_blk(x + (size_t)t * ldx, ldx, w, K, o + (size_t)t * ldo, ldo, NR, 1);
}

/*
 * out[t * ldo + i] = x[t] . w_i for t < T, i < n (f32 row pointers), x [T, ldx] with K values
 * per token: DOT_R rows x DOT_N tokens per register block, the DOT_R rows (DOT_R * K floats)
 * staying in L1 while every token passes over them. Each output's order is that of dot_blk, so
 * it depends neither on T, nor on its place in a block, nor on a thread's cut.
 */
static void gemm_dot(const float* x, int ldx, int T, int K, const float* const* w, int n,
                     float* out, int ldo) {
  int i = 0;
  for (; i + DOT_R <= n; i += DOT_R) dot_rows(x, ldx, T, w + i, K, out + i, ldo, DOT_R);
  for (; i < n; i++) dot_rows(x, ldx, T, w + i, K, out + i, ldo, 1);
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
