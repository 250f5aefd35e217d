/*
 * Causal attention of T new queries over the KV cache (GQA through a slot -> kv-head map).
 *   q [T, S * d], kc / vc [nKv * maxT, d] (kv head h, position p at row h * maxT + p),
 *   kv_of [S], out [T, S * d]; query t sees positions 0 ..= pos0 + t.
 * scratch: maxT floats for one row of scores.
 */
#include "common.h"

#define LD(p) wasm_v128_load(p)
#define FMA(acc, a, b) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(a, b))

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
      float mx = -3.402823466e38f;
      for (int p = 0; p < n; p++) {
        float sc = dotd(qv, kb + (size_t)p * d, d) * scale;
        scratch[p] = sc;
        mx = sc > mx ? sc : mx;
      }
      v128_t vm = wasm_f32x4_splat(mx), vs = wasm_f32x4_splat(0);
      int p = 0;
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
      int k = 0;
      for (; k + 4 <= d; k += 4) wasm_v128_store(o + k, wasm_f32x4_splat(0));
      for (; k < d; k++) o[k] = 0;
      for (p = 0; p < n; p++) {
        float c = scratch[p] * inv;
        const float* vr = vb + (size_t)p * d;
        v128_t vcf = wasm_f32x4_splat(c);
        k = 0;
        for (; k + 4 <= d; k += 4) wasm_v128_store(o + k, wasm_f32x4_add(LD(o + k), wasm_f32x4_mul(vcf, LD(vr + k))));
        for (; k < d; k++) o[k] += c * vr[k];
      }
    }
  }
}
