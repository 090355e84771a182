// Shared by the kernel files; not part of the module's public interface.
#ifndef EDGEQUANT_CKERNELS_INTERNAL_H
#define EDGEQUANT_CKERNELS_INTERNAL_H

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define EK_X86 1
#include <immintrin.h>
#define EK_AVX2 __attribute__((target("avx2,fma,f16c")))
#define EK_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))
#else
#define EK_X86 0
#endif

/// Statement repetition for register tiles: compilers keep named vector variables in registers,
/// while small arrays of vectors indexed in loops are only promoted after full unrolling, which
/// SwiftPM's optimisation level does not reliably do (measured: accumulators spilled to the stack).
#define EK_REP1(M) M(0)
#define EK_REP2(M) M(0) M(1)
#define EK_REP4(M) M(0) M(1) M(2) M(3)
#define EK_REP6(M) M(0) M(1) M(2) M(3) M(4) M(5)
#define EK_REP12(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11)

/// IEEE half → float, exactly (ggml_compute_fp16_to_fp32 without F16C).
static inline float ek_half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (man << 13);
    } else if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {
            // subnormal: normalise
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3FF) << 13);
        }
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline float ek_bf16_to_float(uint16_t h) {
    const uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t ek_load_u16(const void *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

#endif
