/*
 * Shared helpers of the SEAP WASM SIMD kernels: export macro, fp16 -> fp32 conversion,
 * horizontal sums and a vectorised expf. No libc: built with -nostdlib.
 */
#ifndef SEAP_COMMON_H
#define SEAP_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name))) __attribute__((visibility("default")))

typedef uint16_t half;

#define LD(p) wasm_v128_load(p)

/* acc += a * b on four lanes. With relaxed SIMD (build.sh passes -mrelaxed-simd) one fused
 * multiply-add where the CPU has one (V8 emits vfmadd231ps with FMA3; one rounding instead of
 * two, within every kernel's tolerance), else a multiply and an add. */
#if defined(__wasm_relaxed_simd__)
#define FMA(acc, a, b) acc = wasm_f32x4_relaxed_madd((a), (b), (acc))
#else
#define FMA(acc, a, b) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(a, b))
#endif

#if defined(SEAP_FP16)
/*
 * Half-precision SIMD (the fp16 proposal; V8 behind --experimental-wasm-fp16): the build with
 * -DSEAP_FP16 (build.sh <target>-fp16 -> seap_kernels*_fp16.wasm, every target) converts with
 * f32x4.promote_low_f16x8 (exact, inf/nan included). clang 19 has no builtin for it, so the C
 * calls this `const` import as a placeholder and kernels/wasm/fp16_rewrite.ts turns every call
 * into the opcode (same stack signature: v128 -> v128) and drops the import after linking.
 */
__attribute__((import_module("seap_fp16"), import_name("f32x4.promote_low_f16x8"), const))
v128_t seap_promote_low_f16x8(v128_t h);

/* Eight packed fp16 values -> two f32x4 (lo = halves 0..3, hi = 4..7), natural order. */
#define H2F8(h, lo, hi)                                                  \
  do {                                                                   \
    v128_t h8_ = (h);                                                    \
    (lo) = seap_promote_low_f16x8(h8_);                                  \
    (hi) = seap_promote_low_f16x8(wasm_i64x2_shuffle(h8_, h8_, 1, 1));   \
  } while (0)

static inline v128_t h2f_lo(v128_t h) { return seap_promote_low_f16x8(h); }
static inline v128_t h2f_hi(v128_t h) {
  return seap_promote_low_f16x8(wasm_i64x2_shuffle(h, h, 1, 1));
}
#else
/* Four fp16 values (sign-extended to i32 lanes) -> f32x4. Exact for normals, subnormals and
 * zeros; inf/nan are not preserved (weights never hold them). */
static inline v128_t h2f_i32(v128_t s) {
  v128_t bits = wasm_v128_and(wasm_i32x4_shl(s, 13), wasm_i32x4_splat((int32_t)0x8FFFE000u));
  return wasm_f32x4_mul(bits, wasm_f32x4_splat(0x1p112f));
}

/* Eight packed fp16 values -> two f32x4 (lo = halves 0..3, hi = 4..7). The f32 bit pattern
 * s << 31 | (h & 0x7fff) << 13 is assembled in the 16-bit domain (high half: sign and the top
 * 12 bits, low half: the last 3 mantissa bits) and interleaved: fewer ops than widening first. */
#define H2F8(h, lo, hi)                                                                  \
  do {                                                                                   \
    v128_t hi16_ = wasm_v128_and(wasm_i16x8_shr((h), 3), wasm_i16x8_splat((int16_t)0x8fff)); \
    v128_t lo16_ = wasm_i16x8_shl((h), 13);                                              \
    (lo) = wasm_f32x4_mul(wasm_i16x8_shuffle(lo16_, hi16_, 0, 8, 1, 9, 2, 10, 3, 11),     \
                          wasm_f32x4_splat(0x1p112f));                                   \
    (hi) = wasm_f32x4_mul(wasm_i16x8_shuffle(lo16_, hi16_, 4, 12, 5, 13, 6, 14, 7, 15),   \
                          wasm_f32x4_splat(0x1p112f));                                   \
  } while (0)

static inline v128_t h2f_lo(v128_t h) { return h2f_i32(wasm_i32x4_extend_low_i16x8(h)); }
static inline v128_t h2f_hi(v128_t h) { return h2f_i32(wasm_i32x4_extend_high_i16x8(h)); }
#endif

/* One fp16 value -> f32 (scalar tails). */
static inline float h2f(half h) {
  union { uint32_t u; float f; } v;
  int32_t s = (int16_t)h;
  v.u = ((uint32_t)s << 13) & 0x8FFFE000u;
  return v.f * 0x1p112f;
}

/* Element i of a weight vector stored as f32 (f16 == 0) or f16 (f16 != 0). */
static inline float wload(const void* p, size_t i, int f16) {
  return f16 ? h2f(((const half*)p)[i]) : ((const float*)p)[i];
}

static inline float hsum(v128_t v) {
  return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) +
         wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3);
}

static inline float hmax(v128_t v) {
  float a = wasm_f32x4_extract_lane(v, 0), b = wasm_f32x4_extract_lane(v, 1);
  float c = wasm_f32x4_extract_lane(v, 2), d = wasm_f32x4_extract_lane(v, 3);
  a = a > b ? a : b;
  c = c > d ? c : d;
  return a > c ? a : c;
}

/* expf on four lanes (Cephes polynomial, ~1 ulp on [-87, 88]; clamps outside). */
static inline v128_t vexp(v128_t x) {
  x = wasm_f32x4_min(x, wasm_f32x4_splat(88.3762626647949f));
  x = wasm_f32x4_max(x, wasm_f32x4_splat(-87.3365447505531f));
  /* Round x / ln2 to an integer with the 1.5 * 2^23 trick: the integer lands in the low
   * mantissa bits of t (cheaper than f32x4.nearest + i32x4.trunc_sat in V8). */
  v128_t t = wasm_f32x4_add(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)),
                            wasm_f32x4_splat(12582912.0f));
  v128_t fx = wasm_f32x4_sub(t, wasm_f32x4_splat(12582912.0f));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(fx, wasm_f32x4_splat(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(fx, wasm_f32x4_splat(-2.12194440e-4f)));
  v128_t y = wasm_f32x4_splat(1.9875691500e-4f);
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), wasm_f32x4_splat(1.3981999507e-3f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), wasm_f32x4_splat(8.3334519073e-3f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), wasm_f32x4_splat(4.1665795894e-2f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), wasm_f32x4_splat(1.6666665459e-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), wasm_f32x4_splat(5.0000001201e-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(y, r), r), r);
  y = wasm_f32x4_add(y, wasm_f32x4_splat(1.0f));
  v128_t n = wasm_i32x4_sub(t, wasm_i32x4_splat(0x4B400000));
  v128_t pow2 = wasm_i32x4_shl(wasm_i32x4_add(n, wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(y, pow2);
}

static inline float sexp(float x) { return wasm_f32x4_extract_lane(vexp(wasm_f32x4_splat(x)), 0); }

/* SiLU of one value (the decode FFNs; the prefill tiles do the same per lane, gemm.h). */
static inline float silu(float g) { return g / (1.0f + sexp(-g)); }

/*
 * The four-neuron decode step's activations a[j] = silu(g[j]) * u[j] of neurons i + j q, stored
 * into act (when not NULL) at those positions: shared by ffn_f32, ffn_f16 and ffn_q8.
 */
static inline void swiglu4(const float* g, const float* u, float* a, float* act, int i, int q) {
  for (int j = 0; j < 4; j++) a[j] = silu(g[j]) * u[j];
  if (act) {
    for (int j = 0; j < 4; j++) act[i + j * q] = a[j];
  }
}

#endif
