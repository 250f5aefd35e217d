/*
 * The register-blocked GEMM of the prefill paths' transposed products (o_proj, FFN down):
 *
 *   out[t, m] += sum_{i < n} a[t * lda + i] * w_i[m]      t < T, m < M; out row pitch ldo
 *
 * with w_i given as n row pointers (f32; gathered rows, or a tile dequantized into scratch).
 * Micro-kernel: 8 outputs x 4 tokens in 8 accumulators; per row i two loads of w_i and four
 * splatted coefficients feed 8 multiply-adds (0.75 loads per FMA, where a 4-row axpy per token
 * needs 1.5 and loads and stores out once per 4 rows). Loop order m-block, token block, row: the
 * n rows' 32 bytes at m stay in L1 while every token passes over them.
 */
#ifndef SEAP_GEMM_H
#define SEAP_GEMM_H

#include "common.h"

#define SPLAT_LD(p) wasm_v128_load32_splat(p)

static void gemm_acc_f32(const float* a, int lda, int T, const float* const* w, int n, int M,
                         float* out, int ldo) {
  int m = 0;
  for (; m + 8 <= M; m += 8) {
    int t = 0;
    for (; t + 4 <= T; t += 4) {
      float* o0 = out + (size_t)t * ldo + m;
      float* o1 = o0 + ldo;
      float* o2 = o1 + ldo;
      float* o3 = o2 + ldo;
      v128_t p0 = LD(o0), q0 = LD(o0 + 4), p1 = LD(o1), q1 = LD(o1 + 4);
      v128_t p2 = LD(o2), q2 = LD(o2 + 4), p3 = LD(o3), q3 = LD(o3 + 4);
      const float* c = a + (size_t)t * lda;
      for (int i = 0; i < n; i++) {
        v128_t v = LD(w[i] + m), u = LD(w[i] + m + 4), s;
        s = SPLAT_LD(c + i);
        FMA(p0, s, v);
        FMA(q0, s, u);
        s = SPLAT_LD(c + lda + i);
        FMA(p1, s, v);
        FMA(q1, s, u);
        s = SPLAT_LD(c + 2 * (size_t)lda + i);
        FMA(p2, s, v);
        FMA(q2, s, u);
        s = SPLAT_LD(c + 3 * (size_t)lda + i);
        FMA(p3, s, v);
        FMA(q3, s, u);
      }
      wasm_v128_store(o0, p0);
      wasm_v128_store(o0 + 4, q0);
      wasm_v128_store(o1, p1);
      wasm_v128_store(o1 + 4, q1);
      wasm_v128_store(o2, p2);
      wasm_v128_store(o2 + 4, q2);
      wasm_v128_store(o3, p3);
      wasm_v128_store(o3 + 4, q3);
    }
    for (; t < T; t++) {
      float* o = out + (size_t)t * ldo + m;
      v128_t p = LD(o), q = LD(o + 4);
      const float* c = a + (size_t)t * lda;
      for (int i = 0; i < n; i++) {
        v128_t s = SPLAT_LD(c + i);
        FMA(p, s, LD(w[i] + m));
        FMA(q, s, LD(w[i] + m + 4));
      }
      wasm_v128_store(o, p);
      wasm_v128_store(o + 4, q);
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

#endif
