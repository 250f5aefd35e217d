/*
 * Row-gathered matrix products (the memory-bound core of decode).
 *
 *   matmul:       out[t, i]  = sum_k x[t, k] * w[rows[i], k]        x [T, K], out [T, R]
 *   matmul_t_add: out[t, :] += sum_i a[t, i] * w[rows[i], :]        a [T, R], out [T, M]
 *
 * w row r starts at w + r * wstride (elements); rows == NULL means rows[i] = i. Only the listed
 * rows are ever read. Rows go in groups of four sharing the x loads; tokens go in blocks of `tb`
 * so a group's rows are read from memory once per block and then hit L1 for every token.
 * fp16 weights: decode (T == 1) converts in registers; T > 1 converts a group once into
 * `scratch` (4 * row length floats) and reuses the f32 path.
 */
#include "common.h"

#define ROW(i) (rows ? (size_t)rows[i] : (size_t)(i))
#define LD(p) wasm_v128_load(p)
#define FMA(acc, a, b) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(a, b))

/* ---------- matmul micro-kernels ---------- */

/* 4 rows x 1 token, f32 weights, 8 accumulators. */
static inline void dot4x1_f32(const float* x, const float* w0, const float* w1, const float* w2,
                              const float* w3, int K, float* o) {
  v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    v128_t xa = LD(x + k), xb = LD(x + k + 4);
    FMA(a0, xa, LD(w0 + k)); FMA(b0, xb, LD(w0 + k + 4));
    FMA(a1, xa, LD(w1 + k)); FMA(b1, xb, LD(w1 + k + 4));
    FMA(a2, xa, LD(w2 + k)); FMA(b2, xb, LD(w2 + k + 4));
    FMA(a3, xa, LD(w3 + k)); FMA(b3, xb, LD(w3 + k + 4));
  }
  float s0 = hsum(wasm_f32x4_add(a0, b0)), s1 = hsum(wasm_f32x4_add(a1, b1));
  float s2 = hsum(wasm_f32x4_add(a2, b2)), s3 = hsum(wasm_f32x4_add(a3, b3));
  for (; k < K; k++) {
    s0 += x[k] * w0[k]; s1 += x[k] * w1[k]; s2 += x[k] * w2[k]; s3 += x[k] * w3[k];
  }
  o[0] = s0; o[1] = s1; o[2] = s2; o[3] = s3;
}

/* 4 rows x 2 tokens (x, y = x + K), f32 weights, 8 accumulators. */
static inline void dot4x2_f32(const float* x, const float* y, const float* w0, const float* w1,
                              const float* w2, const float* w3, int K, float* ox, float* oy) {
  v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  int k = 0;
  for (; k + 4 <= K; k += 4) {
    v128_t xa = LD(x + k), ya = LD(y + k);
    v128_t v0 = LD(w0 + k), v1 = LD(w1 + k), v2 = LD(w2 + k), v3 = LD(w3 + k);
    FMA(a0, xa, v0); FMA(b0, ya, v0);
    FMA(a1, xa, v1); FMA(b1, ya, v1);
    FMA(a2, xa, v2); FMA(b2, ya, v2);
    FMA(a3, xa, v3); FMA(b3, ya, v3);
  }
  float s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
  float t0 = hsum(b0), t1 = hsum(b1), t2 = hsum(b2), t3 = hsum(b3);
  for (; k < K; k++) {
    s0 += x[k] * w0[k]; s1 += x[k] * w1[k]; s2 += x[k] * w2[k]; s3 += x[k] * w3[k];
    t0 += y[k] * w0[k]; t1 += y[k] * w1[k]; t2 += y[k] * w2[k]; t3 += y[k] * w3[k];
  }
  ox[0] = s0; ox[1] = s1; ox[2] = s2; ox[3] = s3;
  oy[0] = t0; oy[1] = t1; oy[2] = t2; oy[3] = t3;
}

static inline float dot1_f32(const float* x, const float* w, int K) {
  v128_t a = wasm_f32x4_splat(0), b = a;
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    FMA(a, LD(x + k), LD(w + k));
    FMA(b, LD(x + k + 4), LD(w + k + 4));
  }
  float s = hsum(wasm_f32x4_add(a, b));
  for (; k < K; k++) s += x[k] * w[k];
  return s;
}

/* 4 rows x 1 token, fp16 weights converted in registers. */
static inline void dot4x1_f16(const float* x, const half* w0, const half* w1, const half* w2,
                              const half* w3, int K, float* o) {
  v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    v128_t xa = LD(x + k), xb = LD(x + k + 4);
    v128_t h0 = LD(w0 + k), h1 = LD(w1 + k), h2 = LD(w2 + k), h3 = LD(w3 + k);
    FMA(a0, xa, h2f_lo(h0)); FMA(b0, xb, h2f_hi(h0));
    FMA(a1, xa, h2f_lo(h1)); FMA(b1, xb, h2f_hi(h1));
    FMA(a2, xa, h2f_lo(h2)); FMA(b2, xb, h2f_hi(h2));
    FMA(a3, xa, h2f_lo(h3)); FMA(b3, xb, h2f_hi(h3));
  }
  float s0 = hsum(wasm_f32x4_add(a0, b0)), s1 = hsum(wasm_f32x4_add(a1, b1));
  float s2 = hsum(wasm_f32x4_add(a2, b2)), s3 = hsum(wasm_f32x4_add(a3, b3));
  for (; k < K; k++) {
    s0 += x[k] * h2f(w0[k]); s1 += x[k] * h2f(w1[k]);
    s2 += x[k] * h2f(w2[k]); s3 += x[k] * h2f(w3[k]);
  }
  o[0] = s0; o[1] = s1; o[2] = s2; o[3] = s3;
}

static inline float dot1_f16(const float* x, const half* w, int K) {
  v128_t a = wasm_f32x4_splat(0), b = a;
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    v128_t h = LD(w + k);
    FMA(a, LD(x + k), h2f_lo(h));
    FMA(b, LD(x + k + 4), h2f_hi(h));
  }
  float s = hsum(wasm_f32x4_add(a, b));
  for (; k < K; k++) s += x[k] * h2f(w[k]);
  return s;
}

/* fp16 -> f32 for n values. */
static void cvt_f16(const half* src, int n, float* dst) {
  int k = 0;
  for (; k + 8 <= n; k += 8) {
    v128_t h = LD(src + k);
    wasm_v128_store(dst + k, h2f_lo(h));
    wasm_v128_store(dst + k + 4, h2f_hi(h));
  }
  for (; k < n; k++) dst[k] = h2f(src[k]);
}

/* Tokens [t0, t1) of one group of four f32 rows; output columns i..i+3. */
static inline void group4_tokens(const float* x, int t0, int t1, int K, const float* w0,
                                 const float* w1, const float* w2, const float* w3, float* out,
                                 int R, int i) {
  int t = t0;
  for (; t + 2 <= t1; t += 2) {
    dot4x2_f32(x + (size_t)t * K, x + (size_t)(t + 1) * K, w0, w1, w2, w3, K,
               out + (size_t)t * R + i, out + (size_t)(t + 1) * R + i);
  }
  if (t < t1) dot4x1_f32(x + (size_t)t * K, w0, w1, w2, w3, K, out + (size_t)t * R + i);
}

/** Row-gathered matmul, f32 weights. x [T, K], out [T, R]. */
EXPORT("matmul_f32")
void matmul_f32(const float* x, int T, int K, const float* w, int wstride, const int32_t* rows,
                int R, float* out, int tb) {
  if (tb < 1) tb = 1;
  for (int t0 = 0; t0 < T; t0 += tb) {
    int t1 = t0 + tb < T ? t0 + tb : T;
    int i = 0;
    for (; i + 4 <= R; i += 4) {
      const float* w0 = w + ROW(i) * wstride;
      const float* w1 = w + ROW(i + 1) * wstride;
      const float* w2 = w + ROW(i + 2) * wstride;
      const float* w3 = w + ROW(i + 3) * wstride;
      if (t1 - t0 == 1) dot4x1_f32(x + (size_t)t0 * K, w0, w1, w2, w3, K, out + (size_t)t0 * R + i);
      else group4_tokens(x, t0, t1, K, w0, w1, w2, w3, out, R, i);
    }
    for (; i < R; i++) {
      const float* wr = w + ROW(i) * wstride;
      for (int t = t0; t < t1; t++) out[(size_t)t * R + i] = dot1_f32(x + (size_t)t * K, wr, K);
    }
  }
}

/** Row-gathered matmul, fp16 weights. scratch: 4 * K floats (used when T > 1). */
EXPORT("matmul_f16")
void matmul_f16(const float* x, int T, int K, const half* w, int wstride, const int32_t* rows,
                int R, float* out, int tb, float* scratch) {
  if (tb < 1) tb = 1;
  for (int t0 = 0; t0 < T; t0 += tb) {
    int t1 = t0 + tb < T ? t0 + tb : T;
    int i = 0;
    for (; i + 4 <= R; i += 4) {
      const half* w0 = w + ROW(i) * wstride;
      const half* w1 = w + ROW(i + 1) * wstride;
      const half* w2 = w + ROW(i + 2) * wstride;
      const half* w3 = w + ROW(i + 3) * wstride;
      if (t1 - t0 == 1) {
        dot4x1_f16(x + (size_t)t0 * K, w0, w1, w2, w3, K, out + (size_t)t0 * R + i);
      } else {
        cvt_f16(w0, K, scratch);
        cvt_f16(w1, K, scratch + K);
        cvt_f16(w2, K, scratch + 2 * K);
        cvt_f16(w3, K, scratch + 3 * K);
        group4_tokens(x, t0, t1, K, scratch, scratch + K, scratch + 2 * K, scratch + 3 * K, out,
                      R, i);
      }
    }
    for (; i < R; i++) {
      const half* wr = w + ROW(i) * wstride;
      for (int t = t0; t < t1; t++) out[(size_t)t * R + i] = dot1_f16(x + (size_t)t * K, wr, K);
    }
  }
}

/** out[t, i] += bias[rows[i]] (bias f32 or f16). out [T, R]. */
EXPORT("add_bias_gather")
void add_bias_gather(float* out, int T, int R, const int32_t* rows, const void* bias, int f16) {
  for (int i = 0; i < R; i++) {
    float b = wload(bias, ROW(i), f16);
    for (int t = 0; t < T; t++) out[(size_t)t * R + i] += b;
  }
}

/* ---------- matmul_t_add ---------- */

/* o[0..M) += c0 w0 + c1 w1 + c2 w2 + c3 w3, f32 rows. */
static inline void axpy4_f32(float* o, int M, float c0, float c1, float c2, float c3,
                             const float* w0, const float* w1, const float* w2, const float* w3) {
  v128_t k0 = wasm_f32x4_splat(c0), k1 = wasm_f32x4_splat(c1);
  v128_t k2 = wasm_f32x4_splat(c2), k3 = wasm_f32x4_splat(c3);
  int m = 0;
  for (; m + 8 <= M; m += 8) {
    v128_t s = wasm_f32x4_add(wasm_f32x4_mul(k0, LD(w0 + m)), wasm_f32x4_mul(k1, LD(w1 + m)));
    v128_t u = wasm_f32x4_add(wasm_f32x4_mul(k2, LD(w2 + m)), wasm_f32x4_mul(k3, LD(w3 + m)));
    v128_t s2 = wasm_f32x4_add(wasm_f32x4_mul(k0, LD(w0 + m + 4)), wasm_f32x4_mul(k1, LD(w1 + m + 4)));
    v128_t u2 = wasm_f32x4_add(wasm_f32x4_mul(k2, LD(w2 + m + 4)), wasm_f32x4_mul(k3, LD(w3 + m + 4)));
    wasm_v128_store(o + m, wasm_f32x4_add(LD(o + m), wasm_f32x4_add(s, u)));
    wasm_v128_store(o + m + 4, wasm_f32x4_add(LD(o + m + 4), wasm_f32x4_add(s2, u2)));
  }
  for (; m < M; m++) o[m] += c0 * w0[m] + c1 * w1[m] + c2 * w2[m] + c3 * w3[m];
}

static inline void axpy4_f16(float* o, int M, float c0, float c1, float c2, float c3,
                             const half* w0, const half* w1, const half* w2, const half* w3) {
  v128_t k0 = wasm_f32x4_splat(c0), k1 = wasm_f32x4_splat(c1);
  v128_t k2 = wasm_f32x4_splat(c2), k3 = wasm_f32x4_splat(c3);
  int m = 0;
  for (; m + 8 <= M; m += 8) {
    v128_t h0 = LD(w0 + m), h1 = LD(w1 + m), h2 = LD(w2 + m), h3 = LD(w3 + m);
    v128_t s = wasm_f32x4_add(wasm_f32x4_mul(k0, h2f_lo(h0)), wasm_f32x4_mul(k1, h2f_lo(h1)));
    v128_t u = wasm_f32x4_add(wasm_f32x4_mul(k2, h2f_lo(h2)), wasm_f32x4_mul(k3, h2f_lo(h3)));
    v128_t s2 = wasm_f32x4_add(wasm_f32x4_mul(k0, h2f_hi(h0)), wasm_f32x4_mul(k1, h2f_hi(h1)));
    v128_t u2 = wasm_f32x4_add(wasm_f32x4_mul(k2, h2f_hi(h2)), wasm_f32x4_mul(k3, h2f_hi(h3)));
    wasm_v128_store(o + m, wasm_f32x4_add(LD(o + m), wasm_f32x4_add(s, u)));
    wasm_v128_store(o + m + 4, wasm_f32x4_add(LD(o + m + 4), wasm_f32x4_add(s2, u2)));
  }
  for (; m < M; m++) {
    o[m] += c0 * h2f(w0[m]) + c1 * h2f(w1[m]) + c2 * h2f(w2[m]) + c3 * h2f(w3[m]);
  }
}

static inline void axpy1_f32(float* o, int M, float c, const float* w) {
  v128_t k = wasm_f32x4_splat(c);
  int m = 0;
  for (; m + 4 <= M; m += 4) wasm_v128_store(o + m, wasm_f32x4_add(LD(o + m), wasm_f32x4_mul(k, LD(w + m))));
  for (; m < M; m++) o[m] += c * w[m];
}

static inline void axpy1_f16(float* o, int M, float c, const half* w) {
  int m = 0;
  for (; m < M; m++) o[m] += c * h2f(w[m]);
}

/** Row-gathered transposed product, accumulated; f32 weights. a [T, R], out [T, M]. */
EXPORT("matmul_t_add_f32")
void matmul_t_add_f32(const float* a, int T, int R, const float* w, int wstride,
                      const int32_t* rows, int M, float* out, int tb) {
  if (tb < 1) tb = 1;
  for (int t0 = 0; t0 < T; t0 += tb) {
    int t1 = t0 + tb < T ? t0 + tb : T;
    int i = 0;
    for (; i + 4 <= R; i += 4) {
      const float* w0 = w + ROW(i) * wstride;
      const float* w1 = w + ROW(i + 1) * wstride;
      const float* w2 = w + ROW(i + 2) * wstride;
      const float* w3 = w + ROW(i + 3) * wstride;
      for (int t = t0; t < t1; t++) {
        const float* c = a + (size_t)t * R + i;
        axpy4_f32(out + (size_t)t * M, M, c[0], c[1], c[2], c[3], w0, w1, w2, w3);
      }
    }
    for (; i < R; i++) {
      const float* wr = w + ROW(i) * wstride;
      for (int t = t0; t < t1; t++) axpy1_f32(out + (size_t)t * M, M, a[(size_t)t * R + i], wr);
    }
  }
}

/** Row-gathered transposed product, accumulated; fp16 weights. scratch: 4 * M floats. */
EXPORT("matmul_t_add_f16")
void matmul_t_add_f16(const float* a, int T, int R, const half* w, int wstride,
                      const int32_t* rows, int M, float* out, int tb, float* scratch) {
  if (tb < 1) tb = 1;
  for (int t0 = 0; t0 < T; t0 += tb) {
    int t1 = t0 + tb < T ? t0 + tb : T;
    int i = 0;
    for (; i + 4 <= R; i += 4) {
      const half* w0 = w + ROW(i) * wstride;
      const half* w1 = w + ROW(i + 1) * wstride;
      const half* w2 = w + ROW(i + 2) * wstride;
      const half* w3 = w + ROW(i + 3) * wstride;
      if (t1 - t0 == 1) {
        const float* c = a + (size_t)t0 * R + i;
        axpy4_f16(out + (size_t)t0 * M, M, c[0], c[1], c[2], c[3], w0, w1, w2, w3);
        continue;
      }
      cvt_f16(w0, M, scratch);
      cvt_f16(w1, M, scratch + M);
      cvt_f16(w2, M, scratch + 2 * M);
      cvt_f16(w3, M, scratch + 3 * M);
      for (int t = t0; t < t1; t++) {
        const float* c = a + (size_t)t * R + i;
        axpy4_f32(out + (size_t)t * M, M, c[0], c[1], c[2], c[3], scratch, scratch + M,
                  scratch + 2 * M, scratch + 3 * M);
      }
    }
    for (; i < R; i++) {
      const half* wr = w + ROW(i) * wstride;
      for (int t = t0; t < t1; t++) axpy1_f16(out + (size_t)t * M, M, a[(size_t)t * R + i], wr);
    }
  }
}

/** fp16 -> f32 conversion of n values (exported for host-side reads of fp16 weights). */
EXPORT("f16_to_f32")
void f16_to_f32(const half* src, int n, float* dst) { cvt_f16(src, n, dst); }
