// Scalar helpers with ggml-base's exact semantics, shared by the i-quant files (private to CQuants).
#ifndef EDGEQUANT_CQUANTS_SCALAR_H
#define EDGEQUANT_CQUANTS_SCALAR_H

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/// ggml's nearest_int: add 1.5·2²³ and read the mantissa. Round to nearest even for |f| ≤ 2²²;
/// beyond that (or for NaN) the same arbitrary integer ggml gets.
static inline int nearest_int(float f) {
    return (int)(f32_bits(f + 12582912.f) & 0x007fffffu) - 0x00400000;
}

/// float → IEEE half as ggml-base computes it without F16C (scaling by 2¹¹² then 2⁻¹¹⁰ rounds the
/// mantissa in float arithmetic; NaN becomes 0x7E00 with its sign).
static inline uint16_t half_from_float(float f) {
    float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
    const uint32_t w = f32_bits(f);
    const uint32_t twice = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = twice & 0xFF000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = bits_f32((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = f32_bits(base);
    const uint32_t nonsign = ((bits >> 13) & 0x00007C00u) + (bits & 0x00000FFFu);
    return (uint16_t)((sign >> 16) | (twice > 0xFF000000u ? 0x7E00u : nonsign));
}

/// IEEE half → float with ggml-base's operations (exact for numbers; NaNs come out as ggml's do).
static inline float half_to_float(uint16_t h) {
    const uint32_t w = (uint32_t)h << 16, sign = w & 0x80000000u, two_w = w + w;
    const float normal = bits_f32((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    const float denormal = bits_f32((two_w >> 17) | (126u << 23)) - 0.5f;
    return bits_f32(sign | (two_w < (1u << 27) ? f32_bits(denormal) : f32_bits(normal)));
}

#endif
