// Conversion kernels with AVX2 and F16C, compiled for those instructions function by function
// and used only when the CPU has them, so the binary still runs on baseline x86-64.
#include "csimd.h"

#if defined(__x86_64__)
#include <immintrin.h>

// Computed on first use by whichever thread gets there; relaxed atomics make the benign race
// (every thread computes the same value) a defined one.
static int have_avx2_f16c(void) {
  static int cached = -1;
  int value = __atomic_load_n(&cached, __ATOMIC_RELAXED);
  if (value < 0) {
    value = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
    __atomic_store_n(&cached, value, __ATOMIC_RELAXED);
  }
  return value;
}

// Widening writes twice the bytes it reads. Past this size the output cannot stay in cache
// anyway, so it is written with non-temporal stores (no read-for-ownership), as memcpy does.
#define STREAM_BYTES (8u << 20)

// One loop for both 16-bit widenings (`bf16` is a constant at each call site, so the branch
// folds away): scalar head until dst is 32-byte aligned when streaming, then 8 lanes a time.
__attribute__((target("avx2,f16c"), always_inline))
static inline size_t widen16(const unsigned char *s, float *dst, size_t n, int bf16) {
  size_t i = 0;
  int stream = n * 4 >= STREAM_BYTES;
  for (; stream && i < n && ((uintptr_t)(dst + i) & 31); i++) {
    unsigned short h;
    __builtin_memcpy(&h, s + 2 * i, 2);
    unsigned int w = (unsigned int)h << 16;
    if (bf16) __builtin_memcpy(dst + i, &w, 4); else dst[i] = _cvtsh_ss(h);
  }
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128((const __m128i *)(s + 2 * i));
    __m256 f = bf16 ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)) : _mm256_cvtph_ps(h);
    if (stream) _mm256_stream_ps(dst + i, f); else _mm256_storeu_ps(dst + i, f);
  }
  if (stream) _mm_sfence();
  return i;
}

__attribute__((target("avx2,f16c")))
static size_t f16_to_f32(const void *src, float *dst, size_t n) { return widen16(src, dst, n, 0); }

__attribute__((target("avx2,f16c")))
static size_t bf16_to_f32(const void *src, float *dst, size_t n) { return widen16(src, dst, n, 1); }

// Round to nearest even; NaN becomes quiet (top mantissa bit set), as the portable loop does.
__attribute__((target("avx2")))
static size_t f32_to_bf16(const float *src, void *dst, size_t n) {
  unsigned char *d = dst;
  const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7FFF);
  const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF), inf = _mm256_set1_epi32(0x7F800000);
  const __m256i quiet = _mm256_set1_epi32(0x40);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i out[2];
    for (int half = 0; half < 2; half++) {
      __m256i x = _mm256_loadu_si256((const __m256i *)(src + i + 8 * half));
      __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), one);
      __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(x, bias), lsb), 16);
      __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, abs_mask), inf);
      __m256i q = _mm256_or_si256(_mm256_srli_epi32(x, 16), quiet);
      out[half] = _mm256_blendv_epi8(rounded, q, nan);
    }
    // Pack 2 x 8 values of 32 bits into 16 of 16 bits, in order.
    __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(out[0], out[1]), 0xD8);
    _mm256_storeu_si256((__m256i *)(d + 2 * i), packed);
  }
  return i;
}

__attribute__((target("avx2,f16c")))
static size_t f32_to_f16(const float *src, void *dst, size_t n) {
  unsigned char *d = dst;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128((__m128i *)(d + 2 * i), h);
  }
  return i;
}

// Eight values of `kind` at `s + i` as floats; their exponent bits all ones (NaN, infinity)
// ORed into `*bad`.
__attribute__((target("avx2,f16c"), always_inline))
static inline __m256 load8(const unsigned char *s, size_t i, int kind, __m256i *bad) {
  __m256 f;
  if (kind == CSIMD_F32) {
    f = _mm256_loadu_ps((const float *)s + i);
  } else {
    __m128i h = _mm_loadu_si128((const __m128i *)(s + 2 * i));
    f = kind == CSIMD_BF16 ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)) : _mm256_cvtph_ps(h);
  }
  const __m256i exponent = _mm256_set1_epi32(0x7F800000);
  *bad = _mm256_or_si256(*bad, _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(f), exponent), exponent));
  return f;
}

// One loop for widening (`accumulate` 0) and accumulating (1): a constant at each call site.
__attribute__((target("avx2,f16c"), always_inline))
static inline size_t scaled(const void *src, int kind, size_t n, double scale, double weight, double *dst,
                            uint32_t *nonfinite, int accumulate) {
  const unsigned char *s = src;
  const __m256d sc = _mm256_set1_pd(scale), w = _mm256_set1_pd(weight);
  __m256i bad = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 f = load8(s, i, kind, &bad);
    __m256d lo = _mm256_mul_pd(sc, _mm256_cvtps_pd(_mm256_castps256_ps128(f)));
    __m256d hi = _mm256_mul_pd(sc, _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1)));
    if (accumulate) {
      lo = _mm256_add_pd(_mm256_loadu_pd(dst + i), _mm256_mul_pd(w, lo));
      hi = _mm256_add_pd(_mm256_loadu_pd(dst + i + 4), _mm256_mul_pd(w, hi));
    }
    _mm256_storeu_pd(dst + i, lo);
    _mm256_storeu_pd(dst + i + 4, hi);
  }
  if (!_mm256_testz_si256(bad, bad)) *nonfinite = 1;
  return i;
}

__attribute__((target("avx2,f16c")))
static size_t accumulate_f64(const void *src, int kind, size_t n, double scale, double weight, double *dst,
                             uint32_t *nonfinite) {
  return scaled(src, kind, n, scale, weight, dst, nonfinite, 1);
}

// One value of `kind` as a float, its exponent bits all ones ORed into `*bad`.
__attribute__((target("avx2,f16c"), always_inline))
static inline float load1(const unsigned char *s, size_t i, int kind, uint32_t *bad) {
  float f;
  if (kind == CSIMD_F32) {
    __builtin_memcpy(&f, s + 4 * i, 4);
  } else {
    unsigned short h;
    __builtin_memcpy(&h, s + 2 * i, 2);
    if (kind == CSIMD_BF16) {
      unsigned int w = (unsigned int)h << 16;
      __builtin_memcpy(&f, &w, 4);
    } else {
      f = _cvtsh_ss(h);
    }
  }
  unsigned int bits;
  __builtin_memcpy(&bits, &f, 4);
  *bad |= (bits & 0x7F800000u) == 0x7F800000u;
  return f;
}

__attribute__((target("avx2,f16c")))
static size_t widen_rows_f64(const void *src, int kind, size_t rows, size_t cols, size_t src_stride, double scale,
                             double *dst, size_t dst_stride, uint32_t *nonfinite) {
  uint32_t bad = 0;
  for (size_t r = 0; r < rows; r++) {
    const unsigned char *row = (const unsigned char *)src + r * src_stride;
    double *out = dst + r * dst_stride;
    size_t c = scaled(row, kind, cols, scale, 1, out, nonfinite, 0);
    for (; c < cols; c++) out[c] = scale * (double)load1(row, c, kind, &bad);
  }
  if (bad) *nonfinite = 1;
  return rows;
}

__attribute__((target("avx2")))
static size_t axpy_f64(const double *x, size_t n, double a, double *y) {
  const __m256d va = _mm256_set1_pd(a);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    _mm256_storeu_pd(y + i, _mm256_add_pd(_mm256_loadu_pd(y + i), _mm256_mul_pd(va, _mm256_loadu_pd(x + i))));
  }
  return i;
}

size_t csimd_accumulate_f64(const void *src, int kind, size_t n, double scale, double weight, double *dst,
                            uint32_t *nonfinite) {
  return have_avx2_f16c() ? accumulate_f64(src, kind, n, scale, weight, dst, nonfinite) : 0;
}
size_t csimd_widen_rows_f64(const void *src, int kind, size_t rows, size_t cols, size_t src_stride, double scale,
                            double *dst, size_t dst_stride, uint32_t *nonfinite) {
  return have_avx2_f16c() ? widen_rows_f64(src, kind, rows, cols, src_stride, scale, dst, dst_stride, nonfinite) : 0;
}
size_t csimd_axpy_f64(const double *x, size_t n, double a, double *y) { return have_avx2_f16c() ? axpy_f64(x, n, a, y) : 0; }
size_t csimd_f16_to_f32(const void *src, float *dst, size_t n) { return have_avx2_f16c() ? f16_to_f32(src, dst, n) : 0; }
size_t csimd_bf16_to_f32(const void *src, float *dst, size_t n) { return have_avx2_f16c() ? bf16_to_f32(src, dst, n) : 0; }
size_t csimd_f32_to_bf16(const float *src, void *dst, size_t n) { return have_avx2_f16c() ? f32_to_bf16(src, dst, n) : 0; }
size_t csimd_f32_to_f16(const float *src, void *dst, size_t n) { return have_avx2_f16c() ? f32_to_f16(src, dst, n) : 0; }

#else
size_t csimd_accumulate_f64(const void *src, int kind, size_t n, double scale, double weight, double *dst,
                            uint32_t *nonfinite) { return 0; }
size_t csimd_widen_rows_f64(const void *src, int kind, size_t rows, size_t cols, size_t src_stride, double scale,
                            double *dst, size_t dst_stride, uint32_t *nonfinite) { return 0; }
size_t csimd_axpy_f64(const double *x, size_t n, double a, double *y) { return 0; }
size_t csimd_f16_to_f32(const void *src, float *dst, size_t n) { return 0; }
size_t csimd_bf16_to_f32(const void *src, float *dst, size_t n) { return 0; }
size_t csimd_f32_to_bf16(const float *src, void *dst, size_t n) { return 0; }
size_t csimd_f32_to_f16(const float *src, void *dst, size_t n) { return 0; }
#endif
