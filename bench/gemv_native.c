/*
 * Native baseline for the masked GEMV bench: out[i] = sum_k x[k] * w[rows[i], k] over the kept
 * rows of `copies` rotating copies of W [N, K] (so the weights come from DRAM, not cache).
 * Built by bench/gemv_bench.ts with `gcc -O3 -march=native`; GCC vector extensions of VEC_BYTES
 * bytes (default 32: 8 lanes with AVX2; the bench also builds -DVEC_BYTES=16, the 128-bit width
 * WASM SIMD has, to tell the cost of the width from the cost of WASM).
 *
 *   usage: gemv_native N K rows_file copies min_ms reps
 *   rows_file: the kept row indices, little-endian int32 (the same mask the other runs use)
 *   prints: <best microseconds per GEMV> <checksum>
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef VEC_BYTES
#define VEC_BYTES 32
#endif
#define L (VEC_BYTES / 4)
typedef float v8 __attribute__((vector_size(VEC_BYTES)));

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline v8 ld(const float* p) {
  v8 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

static inline float hs(v8 v) {
  float s = 0;
  for (int i = 0; i < L; i++) s += v[i];
  return s;
}

/* One row at a time, 4 accumulators of L lanes: one sequential stream per row (measured 2.5x
 * faster here than four interleaved rows sharing x loads); the same scheme as the WASM kernel. */
static void gemv(const float* x, const float* w, int K, const int32_t* rows, int R, float* out) {
  for (int i = 0; i < R; i++) {
    const float* wr = w + (size_t)rows[i] * K;
    v8 a = {0}, b = {0}, c = {0}, d = {0};
    int k = 0;
    for (; k + 4 * L <= K; k += 4 * L) {
      a += ld(x + k) * ld(wr + k);
      b += ld(x + k + L) * ld(wr + k + L);
      c += ld(x + k + 2 * L) * ld(wr + k + 2 * L);
      d += ld(x + k + 3 * L) * ld(wr + k + 3 * L);
    }
    for (; k + L <= K; k += L) a += ld(x + k) * ld(wr + k);
    float s = hs(a + b + c + d);
    for (; k < K; k++) s += x[k] * wr[k];
    out[i] = s;
  }
}

int main(int argc, char** argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: %s N K rows_file copies min_ms reps\n", argv[0]);
    return 2;
  }
  int N = atoi(argv[1]), K = atoi(argv[2]), copies = atoi(argv[4]);
  double min_ms = atof(argv[5]);
  int reps = atoi(argv[6]);
  uint32_t s = 12345;
  float* x = malloc(sizeof(float) * K);
  for (int k = 0; k < K; k++) x[k] = (float)((s = s * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
  float** w = malloc(sizeof(float*) * copies);
  for (int c = 0; c < copies; c++) {
    w[c] = aligned_alloc(64, ((sizeof(float) * (size_t)N * K + 63) / 64) * 64);
    for (size_t i = 0; i < (size_t)N * K; i++) w[c][i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
  }
  int32_t* rows = malloc(sizeof(int32_t) * (N > 0 ? N : 1));
  FILE* f = fopen(argv[3], "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", argv[3]);
    return 2;
  }
  int R = (int)fread(rows, sizeof(int32_t), N, f);
  fclose(f);
  for (int i = 0; i < R; i++) {
    if (rows[i] < 0 || rows[i] >= N) {
      fprintf(stderr, "row %d out of range\n", rows[i]);
      return 2;
    }
  }
  float* out = malloc(sizeof(float) * (R > 0 ? R : 1));
  double best = 1e30, check = 0;
  for (int c = 0; c < copies; c++) gemv(x, w[c], K, rows, R, out); /* warm up */
  for (int rep = 0; rep < reps; rep++) {
    long n = 0;
    double t0 = now_ms(), t1;
    do {
      gemv(x, w[n % copies], K, rows, R, out);
      check += out[0];
      n++;
      t1 = now_ms();
    } while (t1 - t0 < min_ms);
    double us = (t1 - t0) * 1e3 / n;
    if (us < best) best = us;
  }
  printf("%.3f %g\n", best, check);
  return 0;
}
