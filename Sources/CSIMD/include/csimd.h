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

#endif
