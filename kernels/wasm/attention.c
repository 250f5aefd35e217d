/*
 * Causal attention of T new queries over the KV cache (GQA through a slot -> kv-head map).
 *   q [T, S * d], kc / vc [nKv * maxT, d] (kv head h, position p at row h * maxT + p),
 *   kv_of [S], out [T, S * d]; query t sees positions 0 ..= pos0 + t.
 * scratch: maxT floats for one row of scores.
 */
#include "common.h"


static inline float dotd(const float* a, const float* b, int d) {
  v128_t s0 = wasm_f32x4_splat(0), s1 = s0;
  int k = 0;
  for (; k + 8 <= d; k += 8) {
    FMA(s0, LD(a + k), LD(b + k));
    FMA(s1, LD(a + k + 4), LD(b + k + 4));
  }
  float s = hsum(wasm_f32x4_add(s0, s1));
  for (; k < d; k++) s += a[k] * b[k];
  return s;
}

/** Causal softmax attention; see the file comment for shapes. */
EXPORT("attention")
void attention(const float* q, int T, int S, int d, const float* kc, const float* vc,
               const int32_t* kv_of, int max_t, int pos0, float scale, float* out,
               float* scratch) {
  for (int t = 0; t < T; t++) {
    int n = pos0 + t + 1;
    for (int s = 0; s < S; s++) {
      const float* qv = q + ((size_t)t * S + s) * d;
      const float* kb = kc + (size_t)kv_of[s] * max_t * d;
      const float* vb = vc + (size_t)kv_of[s] * max_t * d;
      float* o = out + ((size_t)t * S + s) * d;
      /* Scores four positions at a time: one q load feeds four k rows, and the four dot
       * products are reduced together with shuffles instead of four horizontal sums. */
      v128_t vmax = wasm_f32x4_splat(-3.402823466e38f), vsc = wasm_f32x4_splat(scale);
      int p = 0;
      if ((d & 3) == 0) {
        for (; p + 4 <= n; p += 4) {
          const float* k0 = kb + (size_t)p * d;
          v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
          for (int k = 0; k < d; k += 4) {
            v128_t qq = LD(qv + k);
            FMA(a0, qq, LD(k0 + k));
            FMA(a1, qq, LD(k0 + d + k));
            FMA(a2, qq, LD(k0 + 2 * d + k));
            FMA(a3, qq, LD(k0 + 3 * d + k));
          }
          v128_t u01 = wasm_f32x4_add(wasm_i32x4_shuffle(a0, a1, 0, 4, 1, 5),
                                      wasm_i32x4_shuffle(a0, a1, 2, 6, 3, 7));
          v128_t u23 = wasm_f32x4_add(wasm_i32x4_shuffle(a2, a3, 0, 4, 1, 5),
                                      wasm_i32x4_shuffle(a2, a3, 2, 6, 3, 7));
          v128_t sc = wasm_f32x4_add(wasm_i32x4_shuffle(u01, u23, 0, 1, 4, 5),
                                     wasm_i32x4_shuffle(u01, u23, 2, 3, 6, 7));
          sc = wasm_f32x4_mul(sc, vsc);
          wasm_v128_store(scratch + p, sc);
          vmax = wasm_f32x4_max(vmax, sc);
        }
      }
      float mx = hmax(vmax);
      for (; p < n; p++) {
        float sc = dotd(qv, kb + (size_t)p * d, d) * scale;
        scratch[p] = sc;
        mx = sc > mx ? sc : mx;
      }
      v128_t vm = wasm_f32x4_splat(mx), vs = wasm_f32x4_splat(0);
      p = 0;
      for (; p + 4 <= n; p += 4) {
        v128_t e = vexp(wasm_f32x4_sub(LD(scratch + p), vm));
        wasm_v128_store(scratch + p, e);
        vs = wasm_f32x4_add(vs, e);
      }
      float sum = hsum(vs);
      for (; p < n; p++) {
        float e = sexp(scratch[p] - mx);
        scratch[p] = e;
        sum += e;
      }
      float inv = 1.0f / sum;
      /* out = sum_p e_p v_p / sum: 32 output values at a time stay in registers over all
       * positions (no load/store of out per position). */
      int k = 0;
      for (; k + 32 <= d; k += 32) {
        v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
               a7 = a0;
        for (p = 0; p < n; p++) {
          const float* vr = vb + (size_t)p * d + k;
          v128_t c = wasm_f32x4_splat(scratch[p]);
          a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(c, LD(vr)));
          a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(c, LD(vr + 4)));
          a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(c, LD(vr + 8)));
          a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(c, LD(vr + 12)));
          a4 = wasm_f32x4_add(a4, wasm_f32x4_mul(c, LD(vr + 16)));
          a5 = wasm_f32x4_add(a5, wasm_f32x4_mul(c, LD(vr + 20)));
          a6 = wasm_f32x4_add(a6, wasm_f32x4_mul(c, LD(vr + 24)));
          a7 = wasm_f32x4_add(a7, wasm_f32x4_mul(c, LD(vr + 28)));
        }
        v128_t vi = wasm_f32x4_splat(inv);
        wasm_v128_store(o + k, wasm_f32x4_mul(a0, vi));
        wasm_v128_store(o + k + 4, wasm_f32x4_mul(a1, vi));
        wasm_v128_store(o + k + 8, wasm_f32x4_mul(a2, vi));
        wasm_v128_store(o + k + 12, wasm_f32x4_mul(a3, vi));
        wasm_v128_store(o + k + 16, wasm_f32x4_mul(a4, vi));
        wasm_v128_store(o + k + 20, wasm_f32x4_mul(a5, vi));
        wasm_v128_store(o + k + 24, wasm_f32x4_mul(a6, vi));
        wasm_v128_store(o + k + 28, wasm_f32x4_mul(a7, vi));
      }
      for (; k < d; k++) {
        float acc = 0;
        for (p = 0; p < n; p++) acc += scratch[p] * vb[(size_t)p * d + k];
        o[k] = acc * inv;
      }
    }
  }
}
