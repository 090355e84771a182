// Float weights × f32 activations. The weights of a block of rows are repacked k-major ("panel":
// element k of row i at panel[k·MR + i]) so that one vector load holds MR rows at one k; each
// activation element is broadcast against it. A register tile of MR rows × NR tokens accumulates
// with FMA in k order, so every output is the same single FMA chain on every instruction set.
#include "CKernels.h"
#include "internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>


/// Converts row `r` (f32/f16/bf16) to f32.
static void load_row(ek_float_type t, const void *w, size_t rb, int64_t r, int64_t k, float *dst) {
    const char *src = (const char *)w + (size_t)r * rb;
    switch (t) {
    case EK_W_F32: memcpy(dst, src, (size_t)k * 4); break;
    case EK_W_F16: for (int64_t i = 0; i < k; i++) dst[i] = ek_half_to_float(ek_load_u16(src + 2 * i)); break;
    case EK_W_BF16: for (int64_t i = 0; i < k; i++) dst[i] = ek_bf16_to_float(ek_load_u16(src + 2 * i)); break;
    }
}

/// Packs rows [r, r + MR) (zeros past `rend`) into `panel`.
static void pack(ek_float_type t, const void *w, size_t rb, int64_t r, int64_t rend, int64_t k, int MR,
                 float *panel, float *tmp) {
    for (int i = 0; i < MR; i++) {
        if (r + i < rend) {
            const float *src = tmp;
            if (t == EK_W_F32) src = (const float *)((const char *)w + (size_t)(r + i) * rb);
            else load_row(t, w, rb, r + i, k, tmp);
            for (int64_t kk = 0; kk < k; kk++) panel[kk * MR + i] = src[kk];
        } else {
            for (int64_t kk = 0; kk < k; kk++) panel[kk * MR + i] = 0;
        }
    }
}

static void gemm_generic(const float *panel, int nrows, const float *x, size_t ldx, int64_t ntok, int64_t k,
                         float *y, size_t ldy, int MR) {
    for (int64_t t = 0; t < ntok; t++) {
        const float *xt = x + (size_t)t * ldx;
        for (int i = 0; i < nrows; i++) {
            float acc = 0;
            for (int64_t kk = 0; kk < k; kk++) acc = fmaf(panel[kk * MR + i], xt[kk], acc);
            y[(size_t)t * ldy + i] = acc;
        }
    }
}

#if EK_X86
// MR = 32 rows (two zmm) × NR tokens; NR ∈ {12, 4, 1}. 24 accumulators + 2 weight registers.
#define EK_F512_TILE(NR, REP)                                                                              \
    EK_AVX512 static void tile512_##NR(const float *panel, const float *x, size_t ldx, int64_t k,          \
                                       float *y, size_t ldy, __mmask16 m0, __mmask16 m1) {                 \
        REP(EK_F512_DECL)                                                                                  \
        for (int64_t kk = 0; kk < k; kk++) {                                                               \
            const __m512 w0 = _mm512_loadu_ps(panel + kk * 32), w1 = _mm512_loadu_ps(panel + kk * 32 + 16); \
            REP(EK_F512_STEP)                                                                              \
        }                                                                                                  \
        REP(EK_F512_STORE)                                                                                 \
    }
#define EK_F512_DECL(j) __m512 a0_##j = _mm512_setzero_ps(), a1_##j = _mm512_setzero_ps(); \
                        const float *x_##j = x + (size_t)(j) * ldx;
#define EK_F512_STEP(j) { const __m512 b = _mm512_set1_ps(x_##j[kk]); \
                          a0_##j = _mm512_fmadd_ps(w0, b, a0_##j); a1_##j = _mm512_fmadd_ps(w1, b, a1_##j); }
#define EK_F512_STORE(j) _mm512_mask_storeu_ps(y + (size_t)(j) * ldy, m0, a0_##j); \
                         _mm512_mask_storeu_ps(y + (size_t)(j) * ldy + 16, m1, a1_##j);
EK_F512_TILE(12, EK_REP12)
EK_F512_TILE(4, EK_REP4)
EK_F512_TILE(1, EK_REP1)

/// 16 rows of 16 floats → 16 columns of 16 (v[j][i] = old v[i][j]): unpack pairs, then quads,
/// then 128-bit lanes twice.
EK_AVX512 static inline void transpose16(__m512 v[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(v[i], v[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(v[i], v[i + 1]);
    }
    for (int g = 0; g < 16; g += 4) {
        v[g] = _mm512_shuffle_ps(t[g], t[g + 2], 0x44);
        v[g + 1] = _mm512_shuffle_ps(t[g], t[g + 2], 0xEE);
        v[g + 2] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0x44);
        v[g + 3] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(v[i], v[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(v[i], v[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_f32x4(v[i + 8], v[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(v[i + 8], v[i + 12], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        v[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        v[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
        v[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
        v[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
    }
}

/// `pack` for 32 rows, 16 columns at a time through register transposes: the scalar one stores
/// one float at a time 128 bytes apart, a third of the product's time on a 256-token pass. Rows
/// are read as f32 where they are (f32), widened in registers (bf16, exact), or from `rows32`
/// (f16, converted by `load_row`: 32·k floats). Same panel, bit for bit.
EK_AVX512 static void pack512(ek_float_type t, const void *w, size_t rb, int64_t r, int64_t rend, int64_t k,
                              float *panel, float *rows32) {
    const int live = (int)(rend - r < 32 ? rend - r : 32);
    if (t == EK_W_F16)
        for (int i = 0; i < live; i++) load_row(t, w, rb, r + i, k, rows32 + (size_t)i * k);
    int64_t kk0 = 0;
    for (; kk0 + 16 <= k; kk0 += 16) {
        for (int h = 0; h < 32; h += 16) {
            __m512 v[16];
            for (int i = 0; i < 16; i++) {
                const int row = h + i;
                if (row >= live) { v[i] = _mm512_setzero_ps(); continue; }
                const char *src = (const char *)w + (size_t)(r + row) * rb;
                if (t == EK_W_F32) v[i] = _mm512_loadu_ps((const float *)src + kk0);
                else if (t == EK_W_BF16)
                    v[i] = _mm512_castsi512_ps(_mm512_slli_epi32(
                        _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + 2 * kk0))), 16));
                else v[i] = _mm512_loadu_ps(rows32 + (size_t)row * k + kk0);
            }
            transpose16(v);
            for (int j = 0; j < 16; j++) _mm512_storeu_ps(panel + (kk0 + j) * 32 + h, v[j]);
        }
    }
    for (int i = 0; i < 32; i++) {
        const char *src = (const char *)w + (size_t)(r + i) * rb;
        for (int64_t kk = kk0; kk < k; kk++) {
            float x = 0;
            if (i < live) {
                if (t == EK_W_F32) memcpy(&x, src + 4 * kk, 4);
                else if (t == EK_W_BF16) x = ek_bf16_to_float(ek_load_u16(src + 2 * kk));
                else x = rows32[(size_t)i * k + kk];
            }
            panel[kk * 32 + i] = x;
        }
    }
}

EK_AVX512 static void gemm512(const float *panel, int nrows, const float *x, size_t ldx, int64_t ntok, int64_t k,
                              float *y, size_t ldy) {
    const __mmask16 m0 = nrows >= 16 ? 0xFFFF : (__mmask16)((1u << nrows) - 1);
    const __mmask16 m1 = nrows >= 32 ? 0xFFFF : nrows <= 16 ? 0 : (__mmask16)((1u << (nrows - 16)) - 1);
    int64_t t = 0;
    for (; t + 12 <= ntok; t += 12) tile512_12(panel, x + (size_t)t * ldx, ldx, k, y + (size_t)t * ldy, ldy, m0, m1);
    for (; t + 4 <= ntok; t += 4) tile512_4(panel, x + (size_t)t * ldx, ldx, k, y + (size_t)t * ldy, ldy, m0, m1);
    for (; t < ntok; t++) tile512_1(panel, x + (size_t)t * ldx, ldx, k, y + (size_t)t * ldy, ldy, m0, m1);
}

// MR = 16 rows (two ymm) × NR tokens; NR ∈ {6, 2, 1}. 12 accumulators + 2 weight registers.
// The tokens come packed k-major per tile (xp[kk·NR + j], `pack_x`): the broadcasts then read one
// stream instead of NR rows a row length apart (a microbenchmark on Zen 1 read 23–30 → 32–33 GFLOP/s a
// core, a noisy machine; end to end, perplexity on SmolLM2 showed no difference one way or the other).
#define EK_F256_TILE(NR, REP)                                                                              \
    EK_AVX2 static void tile256_##NR(const float *panel, const float *xp, int64_t k,                       \
                                     float *y, size_t ldy, __m256i m0, __m256i m1) {                       \
        REP(EK_F256_DECL)                                                                                  \
        for (int64_t kk = 0; kk < k; kk++) {                                                               \
            const __m256 w0 = _mm256_loadu_ps(panel + kk * 16), w1 = _mm256_loadu_ps(panel + kk * 16 + 8); \
            const float *xk = xp + kk * NR;                                                                \
            REP(EK_F256_STEP)                                                                              \
        }                                                                                                  \
        REP(EK_F256_STORE)                                                                                 \
    }
#define EK_F256_DECL(j) __m256 a0_##j = _mm256_setzero_ps(), a1_##j = _mm256_setzero_ps();
#define EK_F256_STEP(j) { const __m256 b = _mm256_broadcast_ss(xk + (j)); \
                          a0_##j = _mm256_fmadd_ps(w0, b, a0_##j); a1_##j = _mm256_fmadd_ps(w1, b, a1_##j); }
#define EK_F256_STORE(j) _mm256_maskstore_ps(y + (size_t)(j) * ldy, m0, a0_##j); \
                         _mm256_maskstore_ps(y + (size_t)(j) * ldy + 8, m1, a1_##j);
EK_F256_TILE(6, EK_REP6)
EK_F256_TILE(2, EK_REP2)
EK_F256_TILE(1, EK_REP1)

/// Token tiles as gemm256 walks them: 6 while 6 remain, then 2, then 1.
static inline int tile_width(int64_t left) { return left >= 6 ? 6 : left >= 2 ? 2 : 1; }

/// Packs tokens [0, ntok) of `x` tile by tile, each tile k-major.
static void pack_x(const float *x, size_t ldx, int64_t ntok, int64_t k, float *xp) {
    for (int64_t t = 0; t < ntok;) {
        const int nr = tile_width(ntok - t);
        for (int j = 0; j < nr; j++) {
            const float *src = x + (size_t)(t + j) * ldx;
            for (int64_t kk = 0; kk < k; kk++) xp[kk * nr + j] = src[kk];
        }
        xp += (size_t)k * nr;
        t += nr;
    }
}

/// Tokens per block for gemm256: their packed copy (`pack_x`) stays near 4 MB, and every weight
/// panel is packed (or read) once a block.
static int64_t avx2_token_block(int64_t k, int64_t ntok) {
    int64_t block = ((int64_t)(4 << 20) / (k * 4)) / 6 * 6;
    if (block < 6) block = 6;
    return block > ntok ? ntok : block;
}

EK_AVX2 static void gemm256(const float *panel, int nrows, const float *xp, int64_t ntok, int64_t k,
                            float *y, size_t ldy) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nrows), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nrows - 8), lane);
    for (int64_t t = 0; t < ntok;) {
        const int nr = tile_width(ntok - t);
        float *yt = y + (size_t)t * ldy;
        if (nr == 6) tile256_6(panel, xp, k, yt, ldy, m0, m1);
        else if (nr == 2) tile256_2(panel, xp, k, yt, ldy, m0, m1);
        else tile256_1(panel, xp, k, yt, ldy, m0, m1);
        xp += (size_t)k * nr;
        t += nr;
    }
}
#endif

void ek_gemm_float(ek_float_type wtype, const void *w, size_t wrow_bytes, int64_t r0, int64_t r1,
                   const float *x, size_t ldx, int64_t ntok, int64_t k, float *y, size_t ldy) {
    if (r1 <= r0 || ntok <= 0) return;
    const ek_level level = ek_cpu_level();
    const int MR = level == EK_LEVEL_AVX512 ? 32 : 16;
    float *panel = (float *)aligned_alloc(64, (size_t)((k * MR + 15) / 16) * 64);
#if EK_X86
    if (level == EK_LEVEL_AVX512) {
        float *rows32 = wtype == EK_W_F16 ? (float *)malloc((size_t)k * 32 * 4) : NULL;
        for (int64_t r = r0; r < r1; r += MR) {
            const int nrows = (int)(r1 - r < MR ? r1 - r : MR);
            pack512(wtype, w, wrow_bytes, r, r1, k, panel, rows32);
            gemm512(panel, nrows, x, ldx, ntok, k, y + r, ldy);
        }
        free(rows32); free(panel);
        return;
    }
#endif
    float *tmp = (float *)malloc((size_t)k * 4 + 4);
#if EK_X86
    if (level == EK_LEVEL_AVX2) {
        const int64_t block = avx2_token_block(k, ntok);
        float *xp = (float *)malloc((size_t)block * (size_t)k * 4);
        for (int64_t t0 = 0; t0 < ntok; t0 += block) {
            const int64_t nt = ntok - t0 < block ? ntok - t0 : block;
            pack_x(x + (size_t)t0 * ldx, ldx, nt, k, xp);
            for (int64_t r = r0; r < r1; r += MR) {
                const int nrows = (int)(r1 - r < MR ? r1 - r : MR);
                pack(wtype, w, wrow_bytes, r, r1, k, MR, panel, tmp);
                gemm256(panel, nrows, xp, nt, k, y + (size_t)t0 * ldy + r, ldy);
            }
        }
        free(xp); free(tmp); free(panel);
        return;
    }
#endif
    for (int64_t r = r0; r < r1; r += MR) {
        const int nrows = (int)(r1 - r < MR ? r1 - r : MR);
        pack(wtype, w, wrow_bytes, r, r1, k, MR, panel, tmp);
        float *yr = y + r;
        gemm_generic(panel, nrows, x, ldx, ntok, k, yr, ldy, MR);
    }
    free(tmp);
    free(panel);
}

// ---- f32 weights packed once (ek_pack_float_panels) ----

int ek_float_panel_rows(void) { return ek_cpu_level() == EK_LEVEL_AVX512 ? 32 : 16; }

void ek_pack_float_panels(const float *w, int64_t rows, int64_t k, int mr, float *panels) {
    for (int64_t r = 0; r < rows; r += mr) {
        float *panel = panels + (size_t)(r / mr) * (size_t)mr * (size_t)k;
#if EK_X86
        if (mr == 32 && ek_cpu_level() == EK_LEVEL_AVX512) { pack512(EK_W_F32, w, (size_t)k * 4, r, rows, k, panel, NULL); continue; }
#endif
        pack(EK_W_F32, w, (size_t)k * 4, r, rows, k, mr, panel, NULL);
    }
}

void ek_gemm_float_panels(const float *panels, int mr, int64_t r0, int64_t r1, const float *x, size_t ldx, int64_t ntok,
                          int64_t k, float *y, size_t ldy) {
    if (r1 <= r0 || ntok <= 0) return;
    const float *first = panels + (size_t)(r0 / mr) * (size_t)mr * (size_t)k;
#if EK_X86
    const ek_level level = ek_cpu_level();
    if (level == EK_LEVEL_AVX512) {
        for (int64_t r = r0; r < r1; r += 32, first += (size_t)32 * (size_t)k)
            gemm512(first, (int)(r1 - r < 32 ? r1 - r : 32), x, ldx, ntok, k, y + r, ldy);
        return;
    }
    if (level == EK_LEVEL_AVX2) {
        const int64_t block = avx2_token_block(k, ntok);
        float *xp = (float *)malloc((size_t)block * (size_t)k * 4);
        for (int64_t t0 = 0; t0 < ntok; t0 += block) {
            const int64_t nt = ntok - t0 < block ? ntok - t0 : block;
            pack_x(x + (size_t)t0 * ldx, ldx, nt, k, xp);
            const float *panel = first;
            for (int64_t r = r0; r < r1; r += 16, panel += (size_t)16 * (size_t)k)
                gemm256(panel, (int)(r1 - r < 16 ? r1 - r : 16), xp, nt, k, y + (size_t)t0 * ldy + r, ldy);
        }
        free(xp);
        return;
    }
#endif
    for (int64_t r = r0; r < r1; r += mr, first += (size_t)mr * (size_t)k)
        gemm_generic(first, (int)(r1 - r < mr ? r1 - r : mr), x, ldx, ntok, k, y + r, ldy, mr);
}

// ---- bf16 × bf16 (ek_gemm_bf16) ----

/// A bf16 value as VDPBF16PS reads it: subnormals as zero of their sign.
static inline float bf16_daz(uint16_t h) { return ek_bf16_to_float((h & 0x7F80) == 0 ? (uint16_t)(h & 0x8000) : h); }

/// acc + w·x rounded once, a subnormal result flushed to zero of its sign (VDPBF16PS's FTZ).
static inline float fma_ftz(float w, float x, float acc) {
    acc = fmaf(w, x, acc);
    return fabsf(acc) < FLT_MIN ? copysignf(0.0f, acc) : acc;
}

static void gemm_bf16_generic(const char *w, size_t rb, int64_t r0, int64_t r1, const uint16_t *x, size_t ldx,
                              int64_t ntok, int64_t k, float *y, size_t ldy) {
    for (int64_t t = 0; t < ntok; t++) {
        const uint16_t *xt = x + (size_t)t * ldx;
        for (int64_t r = r0; r < r1; r++) {
            const char *wr = w + (size_t)r * rb;
            float acc = 0;
            for (int64_t kk = 0; kk < k; kk += 2) {
                if (kk + 1 < k) acc = fma_ftz(bf16_daz(ek_load_u16(wr + 2 * (kk + 1))), bf16_daz(xt[kk + 1]), acc);
                else acc = fma_ftz(0, 0, acc);
                acc = fma_ftz(bf16_daz(ek_load_u16(wr + 2 * kk)), bf16_daz(xt[kk]), acc);
            }
            y[(size_t)t * ldy + r] = acc;
        }
    }
}

#if EK_X86
#define EK_AVX512BF16 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512bf16")))
typedef uint32_t ek_u32u __attribute__((aligned(1), may_alias));

// 32 rows (two zmm of 16 pairs) × NR tokens, one pair of columns per step.
#define EK_B512_TILE(NR, REP)                                                                              \
    EK_AVX512BF16 static void btile512_##NR(const uint32_t *panel, const uint16_t *x, size_t ldx, int64_t kp, \
                                            float *y, size_t ldy, __mmask16 m0, __mmask16 m1) {            \
        REP(EK_B512_DECL)                                                                                  \
        for (int64_t p = 0; p < kp; p++) {                                                                 \
            const __m512bh w0 = (__m512bh)_mm512_loadu_si512(panel + p * 32);                              \
            const __m512bh w1 = (__m512bh)_mm512_loadu_si512(panel + p * 32 + 16);                         \
            REP(EK_B512_STEP)                                                                              \
        }                                                                                                  \
        REP(EK_F512_STORE)                                                                                 \
    }
#define EK_B512_DECL(j) __m512 a0_##j = _mm512_setzero_ps(), a1_##j = _mm512_setzero_ps(); \
                        const ek_u32u *x_##j = (const ek_u32u *)(x + (size_t)(j) * ldx);
#define EK_B512_STEP(j) { const __m512bh b = (__m512bh)_mm512_set1_epi32((int)x_##j[p]); \
                          a0_##j = _mm512_dpbf16_ps(a0_##j, w0, b); a1_##j = _mm512_dpbf16_ps(a1_##j, w1, b); }
EK_B512_TILE(12, EK_REP12)
EK_B512_TILE(4, EK_REP4)
EK_B512_TILE(1, EK_REP1)

/// Rows [r, r + 32) (zeros past `rend`) as pairs: panel[p·32 + i] = row i's columns 2p, 2p+1 (the
/// second zero past an odd k), transposed 16 × 16 pairs at a time.
EK_AVX512BF16 static void pack_bf16(const char *w, size_t rb, int64_t r, int64_t rend, int64_t k, uint32_t *panel) {
    const int live = (int)(rend - r < 32 ? rend - r : 32);
    const int64_t kp = (k + 1) / 2, full = k / 2;
    int64_t p0 = 0;
    for (; p0 + 16 <= full; p0 += 16) {
        for (int h = 0; h < 32; h += 16) {
            __m512 v[16];
            for (int i = 0; i < 16; i++)
                v[i] = h + i < live ? _mm512_loadu_ps((const float *)(w + (size_t)(r + h + i) * rb) + p0) : _mm512_setzero_ps();
            transpose16(v);
            for (int j = 0; j < 16; j++) _mm512_storeu_ps((float *)(panel + (p0 + j) * 32 + h), v[j]);
        }
    }
    for (int i = 0; i < 32; i++) {
        const char *src = w + (size_t)(r + i) * rb;
        for (int64_t p = p0; p < kp; p++) {
            uint32_t pair = 0;
            if (i < live) {
                pair = ek_load_u16(src + 4 * p);
                if (2 * p + 1 < k) pair |= (uint32_t)ek_load_u16(src + 4 * p + 2) << 16;
            }
            panel[p * 32 + i] = pair;
        }
    }
}

EK_AVX512BF16 static void gemm_bf16_512(const char *w, size_t rb, int64_t r0, int64_t r1, const uint16_t *x, size_t ldx,
                                        int64_t ntok, int64_t k, float *y, size_t ldy) {
    // an odd k reads one value past each activation row: those go through a copy with a zero there
    uint16_t *xpad = NULL;
    if (k & 1) {
        xpad = (uint16_t *)malloc((size_t)ntok * (size_t)(k + 1) * 2);
        for (int64_t t = 0; t < ntok; t++) {
            memcpy(xpad + (size_t)t * (k + 1), x + (size_t)t * ldx, (size_t)k * 2);
            xpad[(size_t)t * (k + 1) + k] = 0;
        }
        x = xpad;
        ldx = (size_t)(k + 1);
    }
    const int64_t kp = (k + 1) / 2;
    uint32_t *panel = (uint32_t *)aligned_alloc(64, (size_t)((kp * 32 + 15) / 16) * 64);
    for (int64_t r = r0; r < r1; r += 32) {
        const int nrows = (int)(r1 - r < 32 ? r1 - r : 32);
        pack_bf16(w, rb, r, r1, k, panel);
        const __mmask16 m0 = nrows >= 16 ? 0xFFFF : (__mmask16)((1u << nrows) - 1);
        const __mmask16 m1 = nrows >= 32 ? 0xFFFF : nrows <= 16 ? 0 : (__mmask16)((1u << (nrows - 16)) - 1);
        int64_t t = 0;
        float *yr = y + r;
        for (; t + 12 <= ntok; t += 12) btile512_12(panel, x + (size_t)t * ldx, ldx, kp, yr + (size_t)t * ldy, ldy, m0, m1);
        for (; t + 4 <= ntok; t += 4) btile512_4(panel, x + (size_t)t * ldx, ldx, kp, yr + (size_t)t * ldy, ldy, m0, m1);
        for (; t < ntok; t++) btile512_1(panel, x + (size_t)t * ldx, ldx, kp, yr + (size_t)t * ldy, ldy, m0, m1);
    }
    free(panel);
    free(xpad);
}

/// The f32 kernels on the same sums: both operands' columns swapped within each pair (and padded
/// to even), so their one FMA chain in column order takes 2p+1 before 2p; MXCSR's DAZ and FTZ
/// for the reading and flushing VDPBF16PS does.
EK_AVX2 static void gemm_bf16_swapped(ek_level level, const char *w, size_t rb, int64_t r0, int64_t r1, const uint16_t *x,
                                      size_t ldx, int64_t ntok, int64_t k, float *y, size_t ldy) {
    const int64_t kpad = (k + 1) & ~(int64_t)1;
    const int MR = level == EK_LEVEL_AVX512 ? 32 : 16;
    float *xs = (float *)malloc((size_t)ntok * (size_t)kpad * 4);
    for (int64_t t = 0; t < ntok; t++)
        for (int64_t kk = 0; kk < kpad; kk++)
            xs[(size_t)t * kpad + kk] = (kk ^ 1) < k ? bf16_daz(x[(size_t)t * ldx + (kk ^ 1)]) : 0;
    float *rows = (float *)malloc((size_t)MR * (size_t)kpad * 4);
    float *panel = (float *)aligned_alloc(64, (size_t)((kpad * MR + 15) / 16) * 64);
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040); // FTZ | DAZ
    float *xp = NULL;
    int64_t block = ntok;
    if (level != EK_LEVEL_AVX512) {
        block = avx2_token_block(kpad, ntok);
        xp = (float *)malloc((size_t)block * (size_t)kpad * 4);
    }
    for (int64_t r = r0; r < r1; r += MR) {
        const int nrows = (int)(r1 - r < MR ? r1 - r : MR);
        for (int i = 0; i < nrows; i++) {
            const char *src = w + (size_t)(r + i) * rb;
            for (int64_t kk = 0; kk < kpad; kk++)
                rows[(size_t)i * kpad + kk] = (kk ^ 1) < k ? bf16_daz(ek_load_u16(src + 2 * (kk ^ 1))) : 0;
        }
        if (level == EK_LEVEL_AVX512) {
            pack512(EK_W_F32, rows, (size_t)kpad * 4, 0, nrows, kpad, panel, NULL);
            gemm512(panel, nrows, xs, (size_t)kpad, ntok, kpad, y + r, ldy);
        } else {
            pack(EK_W_F32, rows, (size_t)kpad * 4, 0, nrows, kpad, MR, panel, NULL);
            for (int64_t t0 = 0; t0 < ntok; t0 += block) {
                const int64_t nt = ntok - t0 < block ? ntok - t0 : block;
                pack_x(xs + (size_t)t0 * kpad, (size_t)kpad, nt, kpad, xp);
                gemm256(panel, nrows, xp, nt, kpad, y + (size_t)t0 * ldy + r, ldy);
            }
        }
    }
    _mm_setcsr(csr);
    free(xp); free(panel); free(rows); free(xs);
}
#endif

void ek_gemm_bf16(const void *w, size_t wrow_bytes, int64_t r0, int64_t r1,
                  const uint16_t *x, size_t ldx, int64_t ntok, int64_t k, float *y, size_t ldy) {
    if (r1 <= r0 || ntok <= 0) return;
#if EK_X86
    if (ek_cpu_has_bf16()) { gemm_bf16_512((const char *)w, wrow_bytes, r0, r1, x, ldx, ntok, k, y, ldy); return; }
    const ek_level level = ek_cpu_level();
    if (level >= EK_LEVEL_AVX2) { gemm_bf16_swapped(level, (const char *)w, wrow_bytes, r0, r1, x, ldx, ntok, k, y, ldy); return; }
#endif
    gemm_bf16_generic((const char *)w, wrow_bytes, r0, r1, x, ldx, ntok, k, y, ldy);
}

static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7F800000u) == 0) u &= 0x80000000u;
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u | 0x00400000u) >> 16);
    return (uint16_t)((u + (0x7FFFu + ((u >> 16) & 1))) >> 16);
}

#if EK_X86
/// 16 floats to bf16 as `f32_to_bf16`.
EK_AVX512 static inline __m256i bf16x16(__m512 v) {
    __m512i u = _mm512_castps_si512(v);
    const __mmask16 sub = _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7F800000));
    u = _mm512_mask_and_epi32(u, sub, u, _mm512_set1_epi32((int)0x80000000u));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_epi32(u, _mm512_set1_epi32(0x7FFFFFFF)), _mm512_set1_epi32(0x7F800000));
    const __m512i lsb = _mm512_and_epi32(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb));
    r = _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x400000));
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}

EK_AVX512 static void f32_to_bf16_512(const float *x, int64_t n, uint16_t *y) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm256_storeu_si256((__m256i *)(y + i), bf16x16(_mm512_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = f32_to_bf16(x[i]);
}

EK_AVX512 static void transpose_bf16_512(const float *x, size_t ldx, int64_t rows, int64_t cols, float first, uint16_t *out) {
    int64_t t0 = 0;
    for (; t0 + 16 <= rows; t0 += 16) {
        int64_t c0 = 0;
        for (; c0 + 16 <= cols; c0 += 16) {
            __m512 v[16];
            for (int i = 0; i < 16; i++) v[i] = _mm512_loadu_ps(x + (size_t)(t0 + i) * ldx + c0);
            if (t0 == 0) v[0] = _mm512_mul_ps(v[0], _mm512_set1_ps(first));
            transpose16(v);
            for (int j = 0; j < 16; j++) _mm256_storeu_si256((__m256i *)(out + (size_t)(c0 + j) * rows + t0), bf16x16(v[j]));
        }
        for (; c0 < cols; c0++)
            for (int64_t t = t0; t < t0 + 16; t++) out[(size_t)c0 * rows + t] = f32_to_bf16(x[(size_t)t * ldx + c0] * (t == 0 ? first : 1));
    }
    for (; t0 < rows; t0++)
        for (int64_t c = 0; c < cols; c++) out[(size_t)c * rows + t0] = f32_to_bf16(x[(size_t)t0 * ldx + c] * (t0 == 0 ? first : 1));
}
#endif

void ek_f32_to_bf16(const float *x, int64_t n, uint16_t *y) {
#if EK_X86
    if (ek_cpu_level() == EK_LEVEL_AVX512) { f32_to_bf16_512(x, n, y); return; }
#endif
    for (int64_t i = 0; i < n; i++) y[i] = f32_to_bf16(x[i]);
}

void ek_transpose_bf16(const float *x, size_t ldx, int64_t rows, int64_t cols, float first, uint16_t *out) {
#if EK_X86
    if (ek_cpu_level() == EK_LEVEL_AVX512) { transpose_bf16_512(x, ldx, rows, cols, first, out); return; }
#endif
    // in 16-token strips, so a column's stores share cache lines
    for (int64_t t0 = 0; t0 < rows; t0 += 16) {
        const int64_t t1 = rows - t0 < 16 ? rows : t0 + 16;
        for (int64_t c = 0; c < cols; c++)
            for (int64_t t = t0; t < t1; t++) out[(size_t)c * rows + t] = f32_to_bf16(x[(size_t)t * ldx + c] * (t == 0 ? first : 1));
    }
}
