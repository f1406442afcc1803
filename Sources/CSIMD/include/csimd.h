#ifndef FEDLORA_CSIMD_H
#define FEDLORA_CSIMD_H
#include <stddef.h>
#include <stdint.h>

// AVX2/F16C conversion kernels, chosen at run time. Each returns how many leading elements it
// converted (0 when the CPU lacks the instructions); the caller converts the rest with its
// portable loop. Pointers need no alignment.
size_t csimd_f16_to_f32(const void *src, float *dst, size_t n);
size_t csimd_bf16_to_f32(const void *src, float *dst, size_t n);
size_t csimd_f32_to_bf16(const float *src, void *dst, size_t n);
size_t csimd_f32_to_f16(const float *src, void *dst, size_t n);

// Widening to fp64 for the aggregation's sums, in one pass over the stored bytes. `kind` is
// CSIMD_F32, CSIMD_F16 or CSIMD_BF16. Each value goes through Float, as the portable path's does,
// and is multiplied without fusing (mul, then add), so the results are the portable loop's bit
// for bit. `*nonfinite` is set to 1 when a converted value is NaN or infinite (never cleared).
enum { CSIMD_F32 = 0, CSIMD_F16 = 1, CSIMD_BF16 = 2 };
// dst[i] += weight * (scale * x[i])
size_t csimd_accumulate_f64(const void *src, int kind, size_t n, double scale, double weight, double *dst,
                            uint32_t *nonfinite);
// dst[r * dst_stride + c] = scale * x[r][c] for a block of `rows` x `cols` values whose rows
// start `src_stride` bytes apart; returns the rows done: all of them, or 0 without AVX2/F16C.
size_t csimd_widen_rows_f64(const void *src, int kind, size_t rows, size_t cols, size_t src_stride, double scale,
                            double *dst, size_t dst_stride, uint32_t *nonfinite);
// y[i] += a * x[i]
size_t csimd_axpy_f64(const double *x, size_t n, double a, double *y);

#endif
