// Float weights × f32 activations. The weights of a block of rows are repacked k-major ("panel":
// element k of row i at panel[k·MR + i]) so that one vector load holds MR rows at one k; each
// activation element is broadcast against it. A register tile of MR rows × NR tokens accumulates
// with FMA in k order, so every output is the same single FMA chain on every instruction set.
#include "CKernels.h"
#include "internal.h"

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
        // tokens in blocks whose packed copy stays near 4 MB (every panel is packed once a block)
        int64_t block = ((int64_t)(4 << 20) / (k * 4)) / 6 * 6;
        if (block < 6) block = 6;
        if (block > ntok) block = ntok;
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
