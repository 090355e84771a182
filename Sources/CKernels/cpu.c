#include "CKernels.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#if EK_X86
#include <cpuid.h>

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static ek_level detect(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return EK_LEVEL_GENERIC;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!(osxsave && avx && fma && f16c)) return EK_LEVEL_GENERIC;
    const uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return EK_LEVEL_GENERIC; // the OS saves ymm state
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return EK_LEVEL_GENERIC;
    const int avx2 = (b >> 5) & 1;
    if (!avx2) return EK_LEVEL_GENERIC;
    const int f512 = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    const int vnni = (c >> 11) & 1;
    if (f512 && dq && bw && vl && vnni && (xcr0 & 0xE6) == 0xE6) return EK_LEVEL_AVX512;
    return EK_LEVEL_AVX2;
}

static int detect_bf16(void) {
    unsigned a, b, c, d;
    if (detect() != EK_LEVEL_AVX512 || !__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 5) & 1;
}
#else
static ek_level detect(void) { return EK_LEVEL_GENERIC; }
static int detect_bf16(void) { return 0; }
#endif

static ek_level cached = (ek_level)-1;
// Tests force a level on their own thread only: a process-wide switch would also move the kernels
// of tests running in parallel on other threads (one suite's forward passes once ran half on one
// level and half on another, and compared unequal).
static _Thread_local int forced = -1;
static _Thread_local int forced_bf16 = -1;
static int cached_bf16 = -1;

ek_level ek_detected_level(void) { return detect(); }

void ek_force_level(ek_level level) {
    const ek_level top = detect();
    forced = (int)(level < top ? level : top);
}

void ek_unforce_level(void) { forced = -1; }

ek_level ek_cpu_level(void) {
    if (forced >= 0) return (ek_level)forced;
    // Racing first calls compute the same value; an int store is atomic on every target we build for.
    ek_level l = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if ((int)l >= 0) return l;
    l = detect();
    const char *cap = getenv("EDGEQUANT_KERNELS");
    if (cap) {
        if (strcmp(cap, "generic") == 0) l = EK_LEVEL_GENERIC;
        else if (strcmp(cap, "avx2") == 0 && l > EK_LEVEL_AVX2) l = EK_LEVEL_AVX2;
    }
    __atomic_store_n(&cached, l, __ATOMIC_RELAXED);
    return l;
}

int ek_cpu_has_bf16(void) {
    if (ek_cpu_level() != EK_LEVEL_AVX512 || forced_bf16 == 0) return 0;
    int b = __atomic_load_n(&cached_bf16, __ATOMIC_RELAXED);
    if (b >= 0) return b;
    b = detect_bf16();
    const char *cap = getenv("EDGEQUANT_KERNELS");
    if (cap && strcmp(cap, "avx512") == 0) b = 0;
    __atomic_store_n(&cached_bf16, b, __ATOMIC_RELAXED);
    return b;
}

void ek_force_bf16(int on) { forced_bf16 = on < 0 ? -1 : on != 0; }
