/*
 * Elementwise and per-row ops: rmsnorm, rope (with a host-built cos/sin table), silu_mul,
 * embed, add, add_row. Weight vectors may be stored as f32 or f16 (flag per call).
 */
#include "common.h"


/** RMSNorm over groups of c values: x, out [rows, G * c] seen as [rows * G, c]. */
EXPORT("rmsnorm")
void rmsnorm(const float* x, int n_groups, int c, const void* w, int w_f16, float eps,
             float* out) {
  for (int g = 0; g < n_groups; g++) {
    const float* xr = x + (size_t)g * c;
    float* o = out + (size_t)g * c;
    v128_t a = wasm_f32x4_splat(0), b = a;
    int k = 0;
    for (; k + 8 <= c; k += 8) {
      v128_t u = LD(xr + k), v = LD(xr + k + 4);
      a = wasm_f32x4_add(a, wasm_f32x4_mul(u, u));
      b = wasm_f32x4_add(b, wasm_f32x4_mul(v, v));
    }
    float ss = hsum(wasm_f32x4_add(a, b));
    for (; k < c; k++) ss += xr[k] * xr[k];
    float r = 1.0f / __builtin_sqrtf(ss / (float)c + eps);
    v128_t vr = wasm_f32x4_splat(r);
    k = 0;
    if (w_f16) {
      const half* wh = (const half*)w;
      for (; k + 8 <= c; k += 8) {
        v128_t h = LD(wh + k);
        wasm_v128_store(o + k, wasm_f32x4_mul(wasm_f32x4_mul(LD(xr + k), vr), h2f_lo(h)));
        wasm_v128_store(o + k + 4, wasm_f32x4_mul(wasm_f32x4_mul(LD(xr + k + 4), vr), h2f_hi(h)));
      }
    } else {
      const float* wf = (const float*)w;
      for (; k + 4 <= c; k += 4) {
        wasm_v128_store(o + k, wasm_f32x4_mul(wasm_f32x4_mul(LD(xr + k), vr), LD(wf + k)));
      }
    }
    for (; k < c; k++) o[k] = xr[k] * r * wload(w, k, w_f16);
  }
}

/**
 * Rotary embedding in place ("rotate_half"): x [T, nh * d]; cs [T, d] holds for token t the
 * d/2 cosines followed by the d/2 sines.
 */
EXPORT("rope")
void rope(float* x, int T, int nh, int d, const float* cs) {
  int h2 = d / 2;
  for (int t = 0; t < T; t++) {
    const float* co = cs + (size_t)t * d;
    const float* si = co + h2;
    for (int h = 0; h < nh; h++) {
      float* a = x + ((size_t)t * nh + h) * d;
      float* b = a + h2;
      int i = 0;
      for (; i + 4 <= h2; i += 4) {
        v128_t x1 = LD(a + i), x2 = LD(b + i), c = LD(co + i), s = LD(si + i);
        wasm_v128_store(a + i, wasm_f32x4_sub(wasm_f32x4_mul(x1, c), wasm_f32x4_mul(x2, s)));
        wasm_v128_store(b + i, wasm_f32x4_add(wasm_f32x4_mul(x2, c), wasm_f32x4_mul(x1, s)));
      }
      for (; i < h2; i++) {
        float x1 = a[i], x2 = b[i];
        a[i] = x1 * co[i] - x2 * si[i];
        b[i] = x2 * co[i] + x1 * si[i];
      }
    }
  }
}

/** out = silu(g) * u over n values; out may alias g or u. */
EXPORT("silu_mul")
void silu_mul(const float* g, const float* u, int n, float* out) {
  int k = 0;
  v128_t one = wasm_f32x4_splat(1.0f);
  for (; k + 4 <= n; k += 4) {
    v128_t gv = LD(g + k);
    v128_t e = vexp(wasm_f32x4_neg(gv));
    v128_t s = wasm_f32x4_div(gv, wasm_f32x4_add(one, e));
    wasm_v128_store(out + k, wasm_f32x4_mul(s, LD(u + k)));
  }
  for (; k < n; k++) out[k] = g[k] / (1.0f + sexp(-g[k])) * u[k];
}

/** x += y over n values. */
EXPORT("add")
void add(float* x, const float* y, int n) {
  int k = 0;
  for (; k + 4 <= n; k += 4) wasm_v128_store(x + k, wasm_f32x4_add(LD(x + k), LD(y + k)));
  for (; k < n; k++) x[k] += y[k];
}

/** x[t, :] += b for T rows of c values; b f32 or f16. */
EXPORT("add_row")
void add_row(float* x, int T, int c, const void* b, int b_f16) {
  for (int t = 0; t < T; t++) {
    float* r = x + (size_t)t * c;
    for (int k = 0; k < c; k++) r[k] += wload(b, k, b_f16);
  }
}

/** out[t, :] = table[ids[t], :] (row r at table + r * stride), f32 or f16 table. */
EXPORT("embed")
void embed(const void* table, int stride, int f16, const int32_t* ids, int T, int c, float* out) {
  for (int t = 0; t < T; t++) {
    float* o = out + (size_t)t * c;
    size_t base = (size_t)ids[t] * stride;
    if (f16) {
      const half* src = (const half*)table + base;
      int k = 0;
      for (; k + 8 <= c; k += 8) {
        v128_t h = LD(src + k);
        wasm_v128_store(o + k, h2f_lo(h));
        wasm_v128_store(o + k + 4, h2f_hi(h));
      }
      for (; k < c; k++) o[k] = h2f(src[k]);
    } else {
      const float* src = (const float*)table + base;
      for (int k = 0; k < c; k++) o[k] = src[k];
    }
  }
}
