/*
 * Row-gathered matrix products (the memory-bound core of decode).
 *
 *   matmul:       out[t, i]  = sum_k x[t, k] * w[rows[i], k]        x [T, K], out [T, R]
 *   matmul_t_add: out[t, :] += sum_i a[t, i] * w[rows[i], :]        a [T, R], out [T, M]
 *
 * w row r starts at w + r * wstride (elements); rows == NULL means rows[i] = i. Only the listed
 * rows are ever read.
 * Decode (T == 1): each row one sequential stream, several accumulators. Four interleaved
 * neighbouring rows sharing x loads were 2.5x slower than one row at a time on the 2-core EPYC here
 * (the hardware prefetcher tracks one stream far better), in WASM and native C. But V8
 * bounds-checks every WASM load and store, so the decode kernels are bound by instructions: they
 * read several rows far apart per pass (i + j R/4 or i + R/2: each still one sequential stream),
 * sharing x's loads (dot) or the accumulator's (axpy): f32, f16 in both builds (the SEAP_FP16
 * build's dot4_f16n/axpy2_f16, the portable dot4_f16p/axpy4_f16p) and q8 (matmul_q8.c); see
 * kernels/wasm/README.md, "Several rows per pass".
 * Prefill (T > 1): the register-blocked kernels of gemm.h (gemm_dott: 4 rows x 8 tokens of a
 * token-transposed x, packed once per call into `scratch`; gemm_acc_f32: 8 outputs x 6 tokens),
 * so rows are read from memory once per call (per token block in the FFN) and then hit L1 for
 * every token. fp16 weights: decode converts in registers; T > 1 converts 4 rows (matmul) or 32
 * rows (matmul_t_add) once into `scratch`.
 */
#include "common.h"
#include "gemm.h"

#define ROW(i) (rows ? (size_t)rows[i] : (size_t)(i))

/* ---------- matmul micro-kernels ---------- */

/* One f32 row, 4 accumulators of 4 lanes: a single sequential stream (the hardware prefetcher
 * follows one stream per row far better than four interleaved ones: measured 2.5x on EPYC). */
static inline float dot1_f32(const float* x, const float* w, int K) {
  v128_t a = wasm_f32x4_splat(0), b = a, c = a, d = a;
  int k = 0;
  for (; k + 16 <= K; k += 16) {
    FMA(a, LD(x + k), LD(w + k));
    FMA(b, LD(x + k + 4), LD(w + k + 4));
    FMA(c, LD(x + k + 8), LD(w + k + 8));
    FMA(d, LD(x + k + 12), LD(w + k + 12));
  }
  for (; k + 4 <= K; k += 4) FMA(a, LD(x + k), LD(w + k));
  float s = hsum(wasm_f32x4_add(wasm_f32x4_add(a, b), wasm_f32x4_add(c, d)));
  for (; k < K; k++) s += x[k] * w[k];
  return s;
}

/*
 * Two f32 rows (rows i and i + R/2 from the callers: two long sequential streams) sharing x's
 * loads: s0 = dot1_f32(x, w0, K) and s1 = dot1_f32(x, w1, K) bit for bit (the same four
 * accumulators per row, the same tails and reduction). V8 bounds-checks every WASM load
 * (kernels/wasm/README.md, "Several rows per pass"); four rows would need 16 accumulators.
 */
static inline void dot2_f32(const float* x, const float* w0, const float* w1, int K, float* s0,
                            float* s1) {
  v128_t a0 = wasm_f32x4_splat(0), b0 = a0, c0 = a0, d0 = a0, a1 = a0, b1 = a0, c1 = a0, d1 = a0;
  int k = 0;
  for (; k + 16 <= K; k += 16) {
    v128_t x0 = LD(x + k), x1 = LD(x + k + 4), x2 = LD(x + k + 8), x3 = LD(x + k + 12);
    FMA(a0, x0, LD(w0 + k));
    FMA(b0, x1, LD(w0 + k + 4));
    FMA(c0, x2, LD(w0 + k + 8));
    FMA(d0, x3, LD(w0 + k + 12));
    FMA(a1, x0, LD(w1 + k));
    FMA(b1, x1, LD(w1 + k + 4));
    FMA(c1, x2, LD(w1 + k + 8));
    FMA(d1, x3, LD(w1 + k + 12));
  }
  for (; k + 4 <= K; k += 4) {
    v128_t xv = LD(x + k);
    FMA(a0, xv, LD(w0 + k));
    FMA(a1, xv, LD(w1 + k));
  }
  float t0 = hsum(wasm_f32x4_add(wasm_f32x4_add(a0, b0), wasm_f32x4_add(c0, d0)));
  float t1 = hsum(wasm_f32x4_add(wasm_f32x4_add(a1, b1), wasm_f32x4_add(c1, d1)));
  for (; k < K; k++) {
    t0 += x[k] * w0[k];
    t1 += x[k] * w1[k];
  }
  *s0 = t0;
  *s1 = t1;
}

/*
 * fp16 decode without a multiply per weight. Eight halves loaded as four i32 lanes hold an even
 * half in the low 16 bits and an odd half in the high 16 bits of each lane. For the odd halves,
 * (lane >>s 3) & 0x8FFFE000 is the f32 bit pattern s << 31 | (h & 0x7fff) << 13, i.e. the half's
 * value times 2^-112 (exact for normals, subnormals and zeros); the even halves take one more shift
 * (lane << 16 first). The 2^112 goes into the other operand once per call instead: x is stored
 * pre-multiplied by 2^112 and split per group of 8 into evens then odds ("xp", see
 * f16_prep_x), so a dot product of 8 weights is 1 load, 5 integer ops, 2 loads of xp and
 * 2 multiply-adds: 12 SIMD ops where unpacking to true f32 took 16 (measured in bench/).
 * The products x * 2^112 * (w * 2^-112) are ordinary floats; x is pre-scaled only when
 * max |x| < 2^15 (no overflow); otherwise the exact path with the multiply runs.
 */
#if defined(SEAP_FP16)
/* The half-precision SIMD build converts exactly with f32x4.promote_low_f16x8 (common.h): no
 * pre-scaling, x and the down/o accumulators stay in natural order. */
#define F16_PRESCALED 0
#else
#define F16_PRESCALED 1
#endif
#define F16_XSCALE 0x1p112f
#define F16_WSCALE 0x1p-112f
#define F16_MASK 0x8FFFE000
/* Eight halves -> f32 bit patterns scaled by 2^-112: ev = halves 0,2,4,6; od = 1,3,5,7. */
#define H2B8(h, ev, od)                                                                         \
  do {                                                                                          \
    (od) = wasm_v128_and(wasm_i32x4_shr((h), 3), wasm_i32x4_splat((int32_t)F16_MASK));         \
    (ev) = wasm_v128_and(wasm_i32x4_shr(wasm_i32x4_shl((h), 16), 3),                          \
                         wasm_i32x4_splat((int32_t)F16_MASK));                                \
  } while (0)

/* H2B8 with the mask given (mk = F16_MASK in every lane, from f16_mask). */
#define H2B8M(h, ev, od, mk)                                                                  \
  do {                                                                                        \
    (od) = wasm_v128_and(wasm_i32x4_shr((h), 3), (mk));                                       \
    (ev) = wasm_v128_and(wasm_i32x4_shr(wasm_i32x4_shl((h), 16), 3), (mk));                   \
  } while (0)

/* F16_MASK in every lane, read through a volatile stack slot: clang then keeps it in one register
 * across the loop, where a v128.const used in the loop is rebuilt by V8 on every iteration
 * (kernels/wasm/README.md, "What V8 runs"). */
static inline v128_t f16_mask(void) {
  volatile v128_t m = wasm_i32x4_splat((int32_t)F16_MASK);
  return m;
}

/*
 * One portable f16 step of 8 weights at w: converted into their even and odd lanes e, o (H2B8M,
 * mask mk), then ae += ce * e and ao += co * o. The four-row dot (ce, co: the two x vectors; ae, ao:
 * a row's accumulators) and the four-row axpy (ce = co: a row's coefficient; ae, ao: the output)
 * are both this step once per row.
 */
#define F16P_FMA8(w, e, o, mk, ae, ao, ce, co)                                                \
  do {                                                                                        \
    H2B8M(LD(w), e, o, mk);                                                                   \
    FMA(ae, ce, e);                                                                           \
    FMA(ao, co, o);                                                                           \
  } while (0)

/* One half's bit pattern scaled by 2^-112 (scalar tails of the pre-scaled path). */
static inline float h2b(half h) {
  union { uint32_t u; float f; } v;
  v.u = ((uint32_t)(int32_t)(int16_t)h << 13) & (uint32_t)F16_MASK;
  return v.f;
}

/*
 * xp = x * 2^112, each full group of 8 reordered as x0 x2 x4 x6 x1 x3 x5 x7 (the tail keeps
 * its order). Returns 0 (xp untouched) when some |x| >= 2^15, where x * 2^112 could overflow.
 */
static int f16_prep_x(const float* x, int K, float* xp) {
  if (!F16_PRESCALED) return 0;
  v128_t mx = wasm_f32x4_splat(0);
  int k = 0;
  for (; k + 4 <= K; k += 4) mx = wasm_f32x4_max(mx, wasm_f32x4_abs(LD(x + k)));
  float m = hmax(mx);
  for (; k < K; k++) m = m > (x[k] < 0 ? -x[k] : x[k]) ? m : (x[k] < 0 ? -x[k] : x[k]);
  if (!(m < 0x1p15f)) return 0;
  v128_t s = wasm_f32x4_splat(F16_XSCALE);
  for (k = 0; k + 8 <= K; k += 8) {
    v128_t a = LD(x + k), b = LD(x + k + 4);
    wasm_v128_store(xp + k, wasm_f32x4_mul(wasm_i32x4_shuffle(a, b, 0, 2, 4, 6), s));
    wasm_v128_store(xp + k + 4, wasm_f32x4_mul(wasm_i32x4_shuffle(a, b, 1, 3, 5, 7), s));
  }
  for (; k < K; k++) xp[k] = x[k] * F16_XSCALE;
  return 1;
}

#if !defined(SEAP_FP16)
/*
 * Dot of a pre-scaled, reordered xp (f16_prep_x) with one fp16 row: two accumulators (evens,
 * odds), 8 weights per step, then the scalar tail. This is one row of dot4_f16p, bit for bit, so
 * a row's value does not depend on whether it was read alone or in a group of four (the thread
 * pool cuts matmul by rows, lib/backends/wasm_threads_cuts.ts). Only rows left over by the
 * groups of four come here.
 */
static inline float dot1_f16p(const float* xp, const half* w, int K) {
  v128_t a = wasm_f32x4_splat(0), b = a, e, o;
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    H2B8(LD(w + k), e, o);
    FMA(a, LD(xp + k), e);
    FMA(b, LD(xp + k + 4), o);
  }
  float s = hsum(wasm_f32x4_add(a, b));
  for (; k < K; k++) s += xp[k] * h2b(w[k]);
  return s;
}

/*
 * Four fp16 rows' dots with the pre-scaled xp, its loads shared (portable decode; callers pass
 * rows i + j R/4, four long sequential streams). V8 bounds-checks every WASM load
 * (kernels/wasm/README.md, "Several rows per pass"): 6 loads per 32 weights here where four
 * dot1_f16p calls take 12. s[j] = dot1_f16p(xp, wj, K) bit for bit.
 */
static inline void dot4_f16p(const float* xp, const half* w0, const half* w1, const half* w2,
                             const half* w3, int K, float* s) {
  v128_t a0 = wasm_f32x4_splat(0), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
  v128_t e, o, mk = f16_mask();
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    v128_t x0 = LD(xp + k), x1 = LD(xp + k + 4);
    F16P_FMA8(w0 + k, e, o, mk, a0, b0, x0, x1);
    F16P_FMA8(w1 + k, e, o, mk, a1, b1, x0, x1);
    F16P_FMA8(w2 + k, e, o, mk, a2, b2, x0, x1);
    F16P_FMA8(w3 + k, e, o, mk, a3, b3, x0, x1);
  }
  float t0 = hsum(wasm_f32x4_add(a0, b0)), t1 = hsum(wasm_f32x4_add(a1, b1));
  float t2 = hsum(wasm_f32x4_add(a2, b2)), t3 = hsum(wasm_f32x4_add(a3, b3));
  for (; k < K; k++) {
    float xk = xp[k];
    t0 += xk * h2b(w0[k]);
    t1 += xk * h2b(w1[k]);
    t2 += xk * h2b(w2[k]);
    t3 += xk * h2b(w3[k]);
  }
  s[0] = t0;
  s[1] = t1;
  s[2] = t2;
  s[3] = t3;
}
#endif

/* Exact-path dot (x not pre-scaled): unpack to true f32 with a multiply. */
static inline float dot1_f16(const float* x, const half* w, int K) {
  v128_t a = wasm_f32x4_splat(0), b = a, c = a, d = a, l0, h0, l1, h1;
  int k = 0;
  for (; k + 16 <= K; k += 16) {
    H2F8(LD(w + k), l0, h0);
    H2F8(LD(w + k + 8), l1, h1);
    FMA(a, LD(x + k), l0);
    FMA(b, LD(x + k + 4), h0);
    FMA(c, LD(x + k + 8), l1);
    FMA(d, LD(x + k + 12), h1);
  }
  for (; k + 8 <= K; k += 8) {
    H2F8(LD(w + k), l0, h0);
    FMA(a, LD(x + k), l0);
    FMA(b, LD(x + k + 4), h0);
  }
  float s = hsum(wasm_f32x4_add(wasm_f32x4_add(a, b), wasm_f32x4_add(c, d)));
  for (; k < K; k++) s += x[k] * h2f(w[k]);
  return s;
}

#if defined(SEAP_FP16)
/* Native-conversion dot (SEAP_FP16 build): 32 weights per step into 8 accumulators, 8 halves =
 * 1 load, 1 shuffle, 2 promotes, 2 loads of x, 2 multiply-adds. */
static inline float dot1_f16n(const float* x, const half* w, int K) {
  v128_t a = wasm_f32x4_splat(0), b = a, c = a, d = a, a2 = a, b2 = a, c2 = a, d2 = a;
  v128_t l0, h0, l1, h1;
  int k = 0;
  for (; k + 32 <= K; k += 32) {
    H2F8(LD(w + k), l0, h0);
    H2F8(LD(w + k + 8), l1, h1);
    FMA(a, LD(x + k), l0);
    FMA(b, LD(x + k + 4), h0);
    FMA(c, LD(x + k + 8), l1);
    FMA(d, LD(x + k + 12), h1);
    H2F8(LD(w + k + 16), l0, h0);
    H2F8(LD(w + k + 24), l1, h1);
    FMA(a2, LD(x + k + 16), l0);
    FMA(b2, LD(x + k + 20), h0);
    FMA(c2, LD(x + k + 24), l1);
    FMA(d2, LD(x + k + 28), h1);
  }
  a = wasm_f32x4_add(a, a2);
  b = wasm_f32x4_add(b, b2);
  c = wasm_f32x4_add(c, c2);
  d = wasm_f32x4_add(d, d2);
  for (; k + 8 <= K; k += 8) {
    H2F8(LD(w + k), l0, h0);
    FMA(a, LD(x + k), l0);
    FMA(b, LD(x + k + 4), h0);
  }
  float s = hsum(wasm_f32x4_add(wasm_f32x4_add(a, b), wasm_f32x4_add(c, d)));
  for (; k < K; k++) s += x[k] * h2f(w[k]);
  return s;
}
#endif

#if defined(SEAP_FP16)
/*
 * Four rows' dots sharing x's loads (SEAP_FP16 decode): 8 weights per row per step into 2
 * accumulators per row. With the native conversion the one-row dot was bound by its loads (each
 * carries an explicit bounds check in V8): here 6 loads per 32 weights instead of 12. Callers
 * pass rows i + j R/4, four long sequential streams. s[j] = x . wj.
 */
static inline void dot4_f16n(const float* x, const half* w0, const half* w1, const half* w2,
                             const half* w3, int K, float* s0, float* s1, float* s2, float* s3) {
  v128_t a0 = wasm_f32x4_splat(0), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
  v128_t l, h;
  int k = 0;
  for (; k + 8 <= K; k += 8) {
    v128_t x0 = LD(x + k), x1 = LD(x + k + 4);
    H2F8(LD(w0 + k), l, h);
    FMA(a0, x0, l);
    FMA(b0, x1, h);
    H2F8(LD(w1 + k), l, h);
    FMA(a1, x0, l);
    FMA(b1, x1, h);
    H2F8(LD(w2 + k), l, h);
    FMA(a2, x0, l);
    FMA(b2, x1, h);
    H2F8(LD(w3 + k), l, h);
    FMA(a3, x0, l);
    FMA(b3, x1, h);
  }
  float t0 = hsum(wasm_f32x4_add(a0, b0)), t1 = hsum(wasm_f32x4_add(a1, b1));
  float t2 = hsum(wasm_f32x4_add(a2, b2)), t3 = hsum(wasm_f32x4_add(a3, b3));
  for (; k < K; k++) {
    float xk = x[k];
    t0 += xk * h2f(w0[k]);
    t1 += xk * h2f(w1[k]);
    t2 += xk * h2f(w2[k]);
    t3 += xk * h2f(w3[k]);
  }
  *s0 = t0;
  *s1 = t1;
  *s2 = t2;
  *s3 = t3;
}
#endif

/* One row of fp16 weights, x given as both the original and (when ok) the pre-scaled copy. */
static inline float dot1_f16x(const float* x, const float* xp, int ok, const half* w, int K) {
#if defined(SEAP_FP16)
  (void)xp;
  (void)ok;
  return dot1_f16n(x, w, K);
#else
  return ok ? dot1_f16p(xp, w, K) : dot1_f16(x, w, K);
#endif
}

#if !defined(SEAP_FP16)
/* Four fp16 rows' dots (portable decode): dot4_f16p when x is pre-scaled (ok), else four exact
 * dot1_f16. s[j] = dot1_f16x(x, xp, ok, wj, K). */
static inline void dot4_f16x(const float* x, const float* xp, int ok, const half* w0,
                             const half* w1, const half* w2, const half* w3, int K, float* s) {
  if (ok) {
    dot4_f16p(xp, w0, w1, w2, w3, K, s);
  } else {
    s[0] = dot1_f16(x, w0, K);
    s[1] = dot1_f16(x, w1, K);
    s[2] = dot1_f16(x, w2, K);
    s[3] = dot1_f16(x, w3, K);
  }
}
#endif

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

/* T > 1 matmul, f32 rows: x token-transposed once into xt (pack_xt), then rows in tiles of 32
 * pointers through the outer-product blocks of gemm.h (each output summed in one order, see
 * gemm_dott). */
static void gemm_rows_f32(const float* x, int T, int K, const float* w, int wstride,
                          const int32_t* rows, int R, float* out, float* xt) {
  const float* wp[32];
  pack_xt(x, K, T, K, xt);
  for (int i0 = 0; i0 < R; i0 += 32) {
    int n = i0 + 32 < R ? 32 : R - i0;
    for (int j = 0; j < n; j++) wp[j] = w + ROW(i0 + j) * wstride;
    gemm_dott(xt, T, K, wp, n, out + i0, R);
  }
}

/**
 * Row-gathered matmul, f32 weights. x [T, K], out [T, R]. scratch (T > 1): XT_FLOATS(T, K)
 * floats (x token-transposed); unused at T == 1. tb: unused (kept for the callers' signature).
 */
EXPORT("matmul_f32")
void matmul_f32(const float* x, int T, int K, const float* w, int wstride, const int32_t* rows,
                int R, float* out, int tb, float* scratch) {
  (void)tb;
  if (T == 1) {
    /* Rows i and i + R/2 together: two sequential streams, x loaded once (dot2_f32). */
    int h = R / 2;
    for (int i = 0; i < h; i++) {
      dot2_f32(x, w + ROW(i) * wstride, w + ROW(i + h) * wstride, K, out + i, out + i + h);
    }
    if (R & 1) out[R - 1] = dot1_f32(x, w + ROW(R - 1) * wstride, K);
    return;
  }
  gemm_rows_f32(x, T, K, w, wstride, rows, R, out, scratch);
}

/**
 * Row-gathered matmul, fp16 weights. scratch: 4 * K floats (T == 1), 4 * K + XT_FLOATS(T, K)
 * (T > 1: four converted rows, then x token-transposed). tb: unused.
 */
EXPORT("matmul_f16")
void matmul_f16(const float* x, int T, int K, const half* w, int wstride, const int32_t* rows,
                int R, float* out, int tb, float* scratch) {
  (void)tb;
  if (T == 1) {
#if defined(SEAP_FP16)
    /* Rows i + j R/4 (j = 0..3) together: four sequential weight streams, x loaded once. */
    int q = R / 4;
    for (int i = 0; i < q; i++) {
      dot4_f16n(x, w + ROW(i) * wstride, w + ROW(i + q) * wstride, w + ROW(i + 2 * q) * wstride,
                w + ROW(i + 3 * q) * wstride, K, out + i, out + i + q, out + i + 2 * q,
                out + i + 3 * q);
    }
    for (int i = 4 * q; i < R; i++) out[i] = dot1_f16n(x, w + ROW(i) * wstride, K);
    return;
#else
    /* Rows i + j R/4 (j = 0..3) together, xp's loads shared (dot4_f16x); each row's value is
     * dot1_f16x's whatever the grouping, so cutting rows across threads changes no bit. */
    int ok = f16_prep_x(x, K, scratch);
    int q = R / 4;
    for (int i = 0; i < q; i++) {
      float s[4];
      dot4_f16x(x, scratch, ok, w + ROW(i) * wstride, w + ROW(i + q) * wstride,
                w + ROW(i + 2 * q) * wstride, w + ROW(i + 3 * q) * wstride, K, s);
      for (int j = 0; j < 4; j++) out[i + j * q] = s[j];
    }
    for (int i = 4 * q; i < R; i++) out[i] = dot1_f16x(x, scratch, ok, w + ROW(i) * wstride, K);
    return;
#endif
  }
  /* Groups of 4 rows converted once into scratch, then the outer-product blocks over every
   * token of the token-transposed x. */
  const float* sp[4];
  float* xt = scratch + (size_t)4 * K;
  pack_xt(x, K, T, K, xt);
  for (int j = 0; j < 4; j++) sp[j] = scratch + (size_t)j * K;
  for (int i = 0; i < R; i += 4) {
    int n = i + 4 <= R ? 4 : R - i;
    for (int j = 0; j < n; j++) cvt_f16(w + ROW(i + j) * wstride, K, scratch + (size_t)j * K);
    gemm_dott(xt, T, K, sp, n, out + i, R);
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

/* o[0..M) += c w: one row, one sequential stream (decode path, see dot1_f32). */
static inline void axpy1_f32(float* o, int M, float c, const float* w) {
  v128_t k = wasm_f32x4_splat(c);
  int m = 0;
  for (; m + 8 <= M; m += 8) {
    wasm_v128_store(o + m, wasm_f32x4_add(LD(o + m), wasm_f32x4_mul(k, LD(w + m))));
    wasm_v128_store(o + m + 4, wasm_f32x4_add(LD(o + m + 4), wasm_f32x4_mul(k, LD(w + m + 4))));
  }
  for (; m < M; m++) o[m] += c * w[m];
}

/*
 * o[0..M) += c[0] w0, then c[1] w1, c[2] w2, c[3] w3: four rows per pass over o (o loaded and
 * stored once per four rows). Each lane gets exactly axpy1_f32(c[0], w0) ... axpy1_f32(c[3], w3)
 * in that order (the same multiply, then add, per row).
 */
static inline void axpy4_f32(float* o, int M, const float* c, const float* w0, const float* w1,
                             const float* w2, const float* w3) {
  v128_t k0 = wasm_f32x4_splat(c[0]), k1 = wasm_f32x4_splat(c[1]);
  v128_t k2 = wasm_f32x4_splat(c[2]), k3 = wasm_f32x4_splat(c[3]);
  int m = 0;
  for (; m + 8 <= M; m += 8) {
    v128_t o0 = LD(o + m), o1 = LD(o + m + 4);
    o0 = wasm_f32x4_add(o0, wasm_f32x4_mul(k0, LD(w0 + m)));
    o1 = wasm_f32x4_add(o1, wasm_f32x4_mul(k0, LD(w0 + m + 4)));
    o0 = wasm_f32x4_add(o0, wasm_f32x4_mul(k1, LD(w1 + m)));
    o1 = wasm_f32x4_add(o1, wasm_f32x4_mul(k1, LD(w1 + m + 4)));
    o0 = wasm_f32x4_add(o0, wasm_f32x4_mul(k2, LD(w2 + m)));
    o1 = wasm_f32x4_add(o1, wasm_f32x4_mul(k2, LD(w2 + m + 4)));
    o0 = wasm_f32x4_add(o0, wasm_f32x4_mul(k3, LD(w3 + m)));
    o1 = wasm_f32x4_add(o1, wasm_f32x4_mul(k3, LD(w3 + m + 4)));
    wasm_v128_store(o + m, o0);
    wasm_v128_store(o + m + 4, o1);
  }
  for (; m < M; m++) {
    o[m] += c[0] * w0[m];
    o[m] += c[1] * w1[m];
    o[m] += c[2] * w2[m];
    o[m] += c[3] * w3[m];
  }
}

/*
 * The T == 1 down/o_proj sum of f32 rows, shared by matmul_t_add_f32 and ffn_f32 so that both
 * add the rows in the same order (the threaded FFN runs its down rows through matmul_t_add_f32,
 * lib/backends/wasm_threads_cuts.ts): rows i, i + q, i + 2q, i + 3q per pass (q = R/4; four
 * sequential streams), then rows 4q .. R-1 one at a time. The order depends on R only.
 */
static void axpy_rows_f32(float* out, int M, const float* a, const float* w, int wstride,
                          const int32_t* rows, int R) {
  int q = R / 4;
  for (int i = 0; i < q; i++) {
    float c[4] = {a[i], a[i + q], a[i + 2 * q], a[i + 3 * q]};
    axpy4_f32(out, M, c, w + ROW(i) * wstride, w + ROW(i + q) * wstride,
              w + ROW(i + 2 * q) * wstride, w + ROW(i + 3 * q) * wstride);
  }
  for (int i = 4 * q; i < R; i++) axpy1_f32(out, M, a[i], w + ROW(i) * wstride);
}

static inline void axpy1_f16(float* o, int M, float c, const half* w) {
  v128_t k = wasm_f32x4_splat(c), lo, hi;
  int m = 0;
#if defined(SEAP_FP16)
  /* Native conversion: 16 weights per step, one multiply-add per 4 (+11-18% on the down/o axpy
   * in bench/kernel_bench.ts against the mul + add loop below). */
  for (; m + 16 <= M; m += 16) {
    v128_t lo2, hi2;
    H2F8(LD(w + m), lo, hi);
    H2F8(LD(w + m + 8), lo2, hi2);
    v128_t o0 = LD(o + m), o1 = LD(o + m + 4), o2 = LD(o + m + 8), o3 = LD(o + m + 12);
    FMA(o0, k, lo);
    FMA(o1, k, hi);
    FMA(o2, k, lo2);
    FMA(o3, k, hi2);
    wasm_v128_store(o + m, o0);
    wasm_v128_store(o + m + 4, o1);
    wasm_v128_store(o + m + 8, o2);
    wasm_v128_store(o + m + 12, o3);
  }
#endif
  for (; m + 8 <= M; m += 8) {
    H2F8(LD(w + m), lo, hi);
    wasm_v128_store(o + m, wasm_f32x4_add(LD(o + m), wasm_f32x4_mul(k, lo)));
    wasm_v128_store(o + m + 4, wasm_f32x4_add(LD(o + m + 4), wasm_f32x4_mul(k, hi)));
  }
  for (; m < M; m++) o[m] += c * h2f(w[m]);
}

#if defined(SEAP_FP16)
/*
 * o[0..M) += c0 w0, then += c1 w1: two rows per pass over o (SEAP_FP16 decode: the native
 * conversion left the axpy bound by o's loads and stores, one pair per 4 weights). Each lane
 * gets exactly axpy1_f16(c0, w0) followed by axpy1_f16(c1, w1) (same operations, same order).
 * Callers pair rows i and i + R/4 (then i + R/2 and i + 3R/4), not i and i + 1: long sequential
 * streams keep the hardware prefetcher on (adjacent pairs measured 0.78x from DRAM, see
 * kernels/wasm/README.md).
 */
static inline void axpy2_f16(float* o, int M, float c0, const half* w0, float c1, const half* w1) {
  v128_t k0 = wasm_f32x4_splat(c0), k1 = wasm_f32x4_splat(c1), lo, hi, lo2, hi2;
  int m = 0;
  for (; m + 16 <= M; m += 16) {
    v128_t o0 = LD(o + m), o1 = LD(o + m + 4), o2 = LD(o + m + 8), o3 = LD(o + m + 12);
    H2F8(LD(w0 + m), lo, hi);
    H2F8(LD(w0 + m + 8), lo2, hi2);
    FMA(o0, k0, lo);
    FMA(o1, k0, hi);
    FMA(o2, k0, lo2);
    FMA(o3, k0, hi2);
    H2F8(LD(w1 + m), lo, hi);
    H2F8(LD(w1 + m + 8), lo2, hi2);
    FMA(o0, k1, lo);
    FMA(o1, k1, hi);
    FMA(o2, k1, lo2);
    FMA(o3, k1, hi2);
    wasm_v128_store(o + m, o0);
    wasm_v128_store(o + m + 4, o1);
    wasm_v128_store(o + m + 8, o2);
    wasm_v128_store(o + m + 12, o3);
  }
  if (m < M) {
    axpy1_f16(o + m, M - m, c0, w0 + m);
    axpy1_f16(o + m, M - m, c1, w1 + m);
  }
}
#endif

/*
 * op[0..M8) += c * w * 2^-112 per full group of 8, in the even/odd order of H2B8 (c is the
 * coefficient pre-multiplied by 2^112, so op holds true values); M8 = M rounded down to 8. One
 * multiply-add per lane, as each row of axpy4_f16p.
 */
static inline void axpy1_f16p(float* op, int M8, float c, const half* w) {
  v128_t k = wasm_f32x4_splat(c), e, o;
  for (int m = 0; m < M8; m += 8) {
    H2B8(LD(w + m), e, o);
    v128_t o0 = LD(op + m), o1 = LD(op + m + 4);
    FMA(o0, k, e);
    FMA(o1, k, o);
    wasm_v128_store(op + m, o0);
    wasm_v128_store(op + m + 4, o1);
  }
}

#if !defined(SEAP_FP16)
/*
 * Four rows per pass over op (portable decode; rows i + j R/4 from the callers, four sequential
 * streams): op loaded and stored once per four rows, where axpy1_f16p loads and stores it per
 * row (every access bounds-checked by V8). Each lane gets exactly axpy1_f16p(c[0], w0) ...
 * axpy1_f16p(c[3], w3) in that order (one multiply-add per row). c pre-multiplied by 2^112.
 */
static inline void axpy4_f16p(float* op, int M8, const float* c, const half* w0, const half* w1,
                              const half* w2, const half* w3) {
  v128_t k0 = wasm_f32x4_splat(c[0]), k1 = wasm_f32x4_splat(c[1]);
  v128_t k2 = wasm_f32x4_splat(c[2]), k3 = wasm_f32x4_splat(c[3]), e, o, mk = f16_mask();
  for (int m = 0; m < M8; m += 8) {
    v128_t o0 = LD(op + m), o1 = LD(op + m + 4);
    F16P_FMA8(w0 + m, e, o, mk, o0, o1, k0, k0);
    F16P_FMA8(w1 + m, e, o, mk, o0, o1, k1, k1);
    F16P_FMA8(w2 + m, e, o, mk, o0, o1, k2, k2);
    F16P_FMA8(w3 + m, e, o, mk, o0, o1, k3, k3);
    wasm_v128_store(op + m, o0);
    wasm_v128_store(op + m + 4, o1);
  }
}
#endif

/* out[0..M8) += op back in natural order (undoes the even/odd split of axpy1_f16p). */
static void f16_unsplit_add(float* out, int M8, const float* op) {
  for (int m = 0; m < M8; m += 8) {
    v128_t e = LD(op + m), o = LD(op + m + 4);
    wasm_v128_store(out + m, wasm_f32x4_add(LD(out + m), wasm_i32x4_shuffle(e, o, 0, 4, 1, 5)));
    wasm_v128_store(out + m + 4,
                    wasm_f32x4_add(LD(out + m + 4), wasm_i32x4_shuffle(e, o, 2, 6, 3, 7)));
  }
}

/*
 * out[0..M) += c * w for one fp16 row: the pre-scaled path into op when |c| < 2^15 (full groups
 * of 8; the tail goes straight to out), else the exact path.
 */
static inline void axpy1_f16x(float* out, float* op, int M, float c, const half* w) {
  float ac = c < 0 ? -c : c;
  if (F16_PRESCALED && ac < 0x1p15f) {
    int M8 = M & ~7;
    axpy1_f16p(op, M8, c * F16_XSCALE, w);
    for (int m = M8; m < M; m++) out[m] += c * h2f(w[m]);
  } else {
    axpy1_f16(out, M, c, w);
  }
}

#if !defined(SEAP_FP16)
/*
 * out[0..M) += c[0] w0 + ... + c[3] w3 (portable decode, four fp16 rows): all four through
 * axpy4_f16p into op when every |c[j]| < 2^15, else row by row through axpy1_f16x. Either way
 * op, out and each lane get what axpy1_f16x(c[0], w0) ... axpy1_f16x(c[3], w3) give.
 */
static inline void axpy4_f16x(float* out, float* op, int M, const float* c, const half* w0,
                              const half* w1, const half* w2, const half* w3) {
  float ac[4];
  for (int j = 0; j < 4; j++) ac[j] = c[j] < 0 ? -c[j] : c[j];
  if (ac[0] < 0x1p15f && ac[1] < 0x1p15f && ac[2] < 0x1p15f && ac[3] < 0x1p15f) {
    int M8 = M & ~7;
    float cs[4] = {c[0] * F16_XSCALE, c[1] * F16_XSCALE, c[2] * F16_XSCALE, c[3] * F16_XSCALE};
    axpy4_f16p(op, M8, cs, w0, w1, w2, w3);
    for (int m = M8; m < M; m++) {
      out[m] += c[0] * h2f(w0[m]);
      out[m] += c[1] * h2f(w1[m]);
      out[m] += c[2] * h2f(w2[m]);
      out[m] += c[3] * h2f(w3[m]);
    }
  } else {
    axpy1_f16x(out, op, M, c[0], w0);
    axpy1_f16x(out, op, M, c[1], w1);
    axpy1_f16x(out, op, M, c[2], w2);
    axpy1_f16x(out, op, M, c[3], w3);
  }
}

/*
 * The portable T == 1 down/o_proj sum of fp16 rows, shared by matmul_t_add_f16 and ffn_f16 so
 * that both add the rows in the same order (the threaded FFN runs its down rows through
 * matmul_t_add_f16, lib/backends/wasm_threads_cuts.ts): rows i, i + q, i + 2q, i + 3q per pass
 * (q = R/4, axpy4_f16x), then rows 4q .. R-1 one at a time. The order depends on R only. op: the
 * even/odd accumulator [M & ~7], cleared by the caller and added to out with f16_unsplit_add.
 */
static void axpy_rows_f16(float* out, float* op, int M, const float* a, const half* w, int wstride,
                          const int32_t* rows, int R) {
  int q = R / 4;
  for (int i = 0; i < q; i++) {
    float c[4] = {a[i], a[i + q], a[i + 2 * q], a[i + 3 * q]};
    axpy4_f16x(out, op, M, c, w + ROW(i) * wstride, w + ROW(i + q) * wstride,
               w + ROW(i + 2 * q) * wstride, w + ROW(i + 3 * q) * wstride);
  }
  for (int i = 4 * q; i < R; i++) axpy1_f16x(out, op, M, a[i], w + ROW(i) * wstride);
}
#endif

/** Row-gathered transposed product, accumulated; f32 weights. a [T, R], out [T, M]. */
EXPORT("matmul_t_add_f32")
void matmul_t_add_f32(const float* a, int T, int R, const float* w, int wstride,
                      const int32_t* rows, int M, float* out, int tb) {
  if (tb < 1) tb = 1;
  if (T == 1) {
    axpy_rows_f32(out, M, a, w, wstride, rows, R);
    return;
  }
  /* Tiles of 32 rows through the register-blocked GEMM (gemm.h), every token per tile. */
  (void)tb;
  const float* wp[32];
  for (int i0 = 0; i0 < R; i0 += 32) {
    int n = i0 + 32 < R ? 32 : R - i0;
    for (int j = 0; j < n; j++) wp[j] = w + ROW(i0 + j) * wstride;
    gemm_acc_f32(a + i0, R, T, wp, n, M, out, M);
  }
}

/*
 * T > 1 transposed product on fp16 rows: tiles of 32 rows converted to f32 in scratch [32, M],
 * then the register-blocked GEMM (gemm.h): each output one multiply-add chain over the rows in
 * order, as in ffn_f16's down product. Measured 1.5x the 4-row axpy per token that it replaced
 * (bench/kernel_bench.ts --cases=prefill --formats=f16, prefill_t).
 */
static void t_add_f16_tiles(const float* a, int T, int R, const half* w, int wstride,
                            const int32_t* rows, int M, float* out, float* scratch) {
  const float* wp[32];
  for (int i0 = 0; i0 < R; i0 += 32) {
    int n = i0 + 32 < R ? 32 : R - i0;
    for (int j = 0; j < n; j++) {
      cvt_f16(w + ROW(i0 + j) * wstride, M, scratch + (size_t)j * M);
      wp[j] = scratch + (size_t)j * M;
    }
    gemm_acc_f32(a + i0, R, T, wp, n, M, out, M);
  }
}

/**
 * Row-gathered transposed product, accumulated; fp16 weights. a [T, R], out [T, M].
 * scratch: M floats (T == 1) or 32 * M floats (T > 1).
 */
EXPORT("matmul_t_add_f16")
void matmul_t_add_f16(const float* a, int T, int R, const half* w, int wstride,
                      const int32_t* rows, int M, float* out, int tb, float* scratch) {
  if (tb < 1) tb = 1;
  if (T == 1) {
#if defined(SEAP_FP16)
    /* Rows i, i + R/4, i + R/2, i + 3R/4 in two passes over out, two sequential weight streams
     * each (axpy2_f16), then the rest one by one: ffn_f16's T == 1 order, so the threaded FFN
     * (down through this kernel, cut by out's columns) gives the one-thread bits. */
    int q = R / 4;
    for (int i = 0; i < q; i++) {
      axpy2_f16(out, M, a[i], w + ROW(i) * wstride, a[i + q], w + ROW(i + q) * wstride);
      axpy2_f16(out, M, a[i + 2 * q], w + ROW(i + 2 * q) * wstride, a[i + 3 * q],
                w + ROW(i + 3 * q) * wstride);
    }
    for (int i = 4 * q; i < R; i++) axpy1_f16(out, M, a[i], w + ROW(i) * wstride);
    return;
#else
    /* Four rows per pass over the even/odd accumulator, in axpy_rows_f16's order. */
    __builtin_memset(scratch, 0, (size_t)M * sizeof(float));
    axpy_rows_f16(out, scratch, M, a, w, wstride, rows, R);
    f16_unsplit_add(out, M & ~7, scratch);
    return;
#endif
  }
  (void)tb;
  t_add_f16_tiles(a, T, R, w, wstride, rows, M, out, scratch);
}

/**
 * The T > 1 fp16 transposed product with no T == 1 path and no token-block argument: the
 * threaded FFN's second phase (lib/backends/wasm_threads_cuts.ts). scratch: 32 * M floats.
 */
EXPORT("matmul_t_add_f16_tiled")
void matmul_t_add_f16_tiled(const float* a, int T, int R, const half* w, int wstride,
                            const int32_t* rows, int M, float* out, float* scratch) {
  t_add_f16_tiles(a, T, R, w, wstride, rows, M, out, scratch);
}

/* ---------- fused FFN over kept neurons ---------- */


/* Neurons per chunk of the T > 1 path: a chunk's bundles (32 x 6.9 KB for SmolLM2) stay in L2
 * across the gate, up and down passes. */
#define FFN_CHUNK 32

/* Tokens per block of the T > 1 FFN: tb rounded down to a multiple of XT_G (at least XT_G), so
 * blocks start on the token groups of pack_xt. */
#define FFN_TB(tb) ((tb) < XT_G ? XT_G : (tb) / XT_G * XT_G)

/*
 * T > 1 FFN over one chunk of n kept neurons for nt tokens (xt: their token-transposed x,
 * pack_xt): gate and up (n f32 row pointers each) through the outer-product blocks of gemm.h
 * (gemm_dott) into G, U [nt, n], a = silu(G) U (copied to act [nt, act_pitch] when given), then
 * out [nt, M] += a down (n f32 row pointers) with the register-blocked GEMM.
 */
static void ffn_chunk(const float* xt, int nt, int K, const float* const* gp,
                      const float* const* up, const float* const* dp, int M, int n, float* out,
                      float* act, int act_pitch, float* G, float* U) {
  gemm_dott(xt, nt, K, gp, n, G, n);
  gemm_dott(xt, nt, K, up, n, U, n);
  silu_mul_tile(G, U, n, nt, n, act, act_pitch);
  gemm_acc_f32(G, n, nt, dp, n, M, out, M);
}

/**
 * Fused SwiGLU FFN, f32 weights: for each kept neuron i (r = rows[i]):
 *   a[t] = silu(x[t] . gate_r) * (x[t] . up_r);  out[t, :] += a[t] * down_r;  act[t, i] = a[t].
 * gate/up rows have K values, down rows M; each has its own base and stride, so with the
 * bundled layout [gate | up | down^T] a neuron is one contiguous stream, read once (T == 1) or
 * once per call (T > 1: chunks of FFN_CHUNK neurons, each over every token block).
 * x [T, K], out [T, M], act [T, R] or NULL. scratch (T > 1): 2 * FFN_TB(tb) * FFN_CHUNK +
 * XT_FLOATS(T, K) floats (G, U, then x token-transposed).
 */
EXPORT("ffn_f32")
void ffn_f32(const float* x, int T, int K, const float* gate, int gs, const float* up, int us,
             const float* down, int ds, int M, const int32_t* rows, int R, float* out,
             float* act, int tb, float* scratch) {
  if (tb < 1) tb = 1;
  if (T == 1) {
    /* Neurons i + j R/4 (j = 0..3) together: gate and up dots two rows at a time sharing x's
     * loads (dot2_f32), one pass over out adds the four down rows (axpy4_f32) in
     * axpy_rows_f32's order, so the threaded FFN (down through matmul_t_add_f32) gives the same
     * bits. */
    int q = R / 4;
    for (int i = 0; i < q; i++) {
      size_t r0 = ROW(i), r1 = ROW(i + q), r2 = ROW(i + 2 * q), r3 = ROW(i + 3 * q);
      float g[4], u[4], a[4];
      dot2_f32(x, gate + r0 * gs, gate + r1 * gs, K, g, g + 1);
      dot2_f32(x, up + r0 * us, up + r1 * us, K, u, u + 1);
      dot2_f32(x, gate + r2 * gs, gate + r3 * gs, K, g + 2, g + 3);
      dot2_f32(x, up + r2 * us, up + r3 * us, K, u + 2, u + 3);
      swiglu4(g, u, a, act, i, q);
      axpy4_f32(out, M, a, down + r0 * ds, down + r1 * ds, down + r2 * ds, down + r3 * ds);
    }
    for (int i = 4 * q; i < R; i++) {
      size_t r = ROW(i);
      float a = silu(dot1_f32(x, gate + r * gs, K)) * dot1_f32(x, up + r * us, K);
      if (act) act[i] = a;
      axpy1_f32(out, M, a, down + r * ds);
    }
    return;
  }
  /* Chunk outer, token blocks inner: a chunk's rows come from memory once per call, and each
   * out[t, :] still adds the chunks in order (the same sums as token blocks outer). x is
   * token-transposed once per call (pack_xt); token blocks start at multiples of XT_G. */
  tb = FFN_TB(tb);
  float *G = scratch, *U = scratch + (size_t)tb * FFN_CHUNK;
  float* xt = U + (size_t)tb * FFN_CHUNK;
  pack_xt(x, K, T, K, xt);
  for (int c0 = 0; c0 < R; c0 += FFN_CHUNK) {
    int n = c0 + FFN_CHUNK < R ? FFN_CHUNK : R - c0;
    const float *gp[FFN_CHUNK], *up_[FFN_CHUNK], *dp[FFN_CHUNK];
    for (int j = 0; j < n; j++) {
      size_t r = ROW(c0 + j);
      gp[j] = gate + r * gs;
      up_[j] = up + r * us;
      dp[j] = down + r * ds;
    }
    for (int t0 = 0; t0 < T; t0 += tb) {
      int nt = t0 + tb < T ? tb : T - t0;
      ffn_chunk(xt + (size_t)t0 * K, nt, K, gp, up_, dp, M, n, out + (size_t)t0 * M,
                act ? act + (size_t)t0 * R + c0 : 0, R, G, U);
    }
  }
}

/**
 * Fused SwiGLU FFN, fp16 weights. T == 1 uses the pre-scaled path (scratch: K + M floats: xp and
 * the even/odd-ordered down accumulator); T > 1 converts each chunk's rows once per call.
 * scratch (T > 1): 2 * FFN_TB(tb) * FFN_CHUNK + FFN_CHUNK * (2 * K + M) + XT_FLOATS(T, K)
 * floats; (T == 1) K + M floats.
 */
EXPORT("ffn_f16")
void ffn_f16(const float* x, int T, int K, const half* gate, int gs, const half* up, int us,
             const half* down, int ds, int M, const int32_t* rows, int R, float* out,
             float* act, int tb, float* scratch) {
  if (tb < 1) tb = 1;
  if (T == 1) {
#if defined(SEAP_FP16)
    /* Neurons i + j R/4 (j = 0..3) together: their gate, up and down rows are four sequential
     * streams, the gate and up dots of all four share x's loads (dot4_f16n), and each pass over
     * out adds two down rows (axpy2_f16). */
    int q = R / 4;
    for (int i = 0; i < q; i++) {
      size_t r0 = ROW(i), r1 = ROW(i + q), r2 = ROW(i + 2 * q), r3 = ROW(i + 3 * q);
      float g[4], u[4], a[4];
      dot4_f16n(x, gate + r0 * gs, gate + r1 * gs, gate + r2 * gs, gate + r3 * gs, K, g, g + 1,
                g + 2, g + 3);
      dot4_f16n(x, up + r0 * us, up + r1 * us, up + r2 * us, up + r3 * us, K, u, u + 1, u + 2,
                u + 3);
      swiglu4(g, u, a, act, i, q);
      axpy2_f16(out, M, a[0], down + r0 * ds, a[1], down + r1 * ds);
      axpy2_f16(out, M, a[2], down + r2 * ds, a[3], down + r3 * ds);
    }
    for (int i = 4 * q; i < R; i++) {
      size_t r = ROW(i);
      float a = silu(dot1_f16n(x, gate + r * gs, K)) * dot1_f16n(x, up + r * us, K);
      if (act) act[i] = a;
      axpy1_f16(out, M, a, down + r * ds);
    }
    return;
#else
    /* Neurons i + j R/4 (j = 0..3) together: the gate and up dots of all four share xp's loads
     * (dot4_f16x), one pass over the even/odd accumulator adds the four down rows (axpy4_f16x) in
     * axpy_rows_f16's order, so the threaded FFN (down through matmul_t_add_f16) gives the same
     * bits. */
    float *xp = scratch, *op = scratch + K;
    int ok = f16_prep_x(x, K, xp);
    __builtin_memset(op, 0, (size_t)M * sizeof(float));
    int q = R / 4;
    for (int i = 0; i < q; i++) {
      size_t r0 = ROW(i), r1 = ROW(i + q), r2 = ROW(i + 2 * q), r3 = ROW(i + 3 * q);
      float g[4], u[4], a[4];
      dot4_f16x(x, xp, ok, gate + r0 * gs, gate + r1 * gs, gate + r2 * gs, gate + r3 * gs, K, g);
      dot4_f16x(x, xp, ok, up + r0 * us, up + r1 * us, up + r2 * us, up + r3 * us, K, u);
      swiglu4(g, u, a, act, i, q);
      axpy4_f16x(out, op, M, a, down + r0 * ds, down + r1 * ds, down + r2 * ds, down + r3 * ds);
    }
    for (int i = 4 * q; i < R; i++) {
      size_t r = ROW(i);
      float a = silu(dot1_f16x(x, xp, ok, gate + r * gs, K)) *
                dot1_f16x(x, xp, ok, up + r * us, K);
      if (act) act[i] = a;
      axpy1_f16x(out, op, M, a, down + r * ds);
    }
    f16_unsplit_add(out, M & ~7, op);
    return;
#endif
  }
  tb = FFN_TB(tb);
  float *G = scratch, *U = scratch + (size_t)tb * FFN_CHUNK;
  float* cw = U + (size_t)tb * FFN_CHUNK; /* [FFN_CHUNK, K] gate, then up, then [FFN_CHUNK, M] */
  float *cg = cw, *cu = cw + (size_t)FFN_CHUNK * K, *cd = cw + (size_t)2 * FFN_CHUNK * K;
  float* xt = cd + (size_t)FFN_CHUNK * M; /* x token-transposed, XT_FLOATS(T, K) */
  pack_xt(x, K, T, K, xt);
  /* Chunk outer (its rows converted once per call), token blocks inner: same sums as ffn_f32. */
  for (int c0 = 0; c0 < R; c0 += FFN_CHUNK) {
    int n = c0 + FFN_CHUNK < R ? FFN_CHUNK : R - c0;
    const float *gp[FFN_CHUNK], *up_[FFN_CHUNK], *dp[FFN_CHUNK];
    for (int j = 0; j < n; j++) {
      size_t r = ROW(c0 + j);
      gp[j] = cg + (size_t)j * K;
      up_[j] = cu + (size_t)j * K;
      dp[j] = cd + (size_t)j * M;
      cvt_f16(gate + r * gs, K, cg + (size_t)j * K);
      cvt_f16(up + r * us, K, cu + (size_t)j * K);
      cvt_f16(down + r * ds, M, cd + (size_t)j * M);
    }
    for (int t0 = 0; t0 < T; t0 += tb) {
      int nt = t0 + tb < T ? tb : T - t0;
      ffn_chunk(xt + (size_t)t0 * K, nt, K, gp, up_, dp, M, n, out + (size_t)t0 * M,
                act ? act + (size_t)t0 * R + c0 : 0, R, G, U);
    }
  }
}
