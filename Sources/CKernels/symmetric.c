// H·d for a symmetric f32 H and a few rows d: GPTQ's output error dᵀ H d per row, which the
// sensitivity analysis takes for every candidate type of every matrix (32 rows × ~12 types, H up
// to n_ff²). Each output is the scalar loop's value `s = 0; for j: s = s + H[i][j]·d[j]` — one
// rounded multiply and one rounded add per term, j ascending, no FMA — on every level, so the
// errors (and the plans made from them) do not depend on the machine. The scalar loop is one
// dependent add per element; here H's symmetry (H[i][j] = H[j][i]) turns row j of H into a vector
// over i, so 16 outputs × 4 rows advance per load.
#include "CKernels.h"
#include "internal.h"

#pragma STDC FP_CONTRACT OFF

static void symv_generic(const float *h, int64_t n, const float *d, int64_t nrows, float *y) {
    for (int64_t r = 0; r < nrows; r++) {
        const float *dr = d + r * n;
        for (int64_t i = 0; i < n; i++) {
            const float *hi = h + i * n;
            float s = 0;
            for (int64_t j = 0; j < n; j++) {
                const float p = hi[j] * dr[j];
                s = s + p;
            }
            y[r * n + i] = s;
        }
    }
}

#if EK_X86
// 4 rows × 32 outputs (two zmm each): 8 independent add chains hide the add latency.
#define EK_S512_DECL(r) __m512 a0_##r = _mm512_setzero_ps(), a1_##r = _mm512_setzero_ps();
#define EK_S512_STEP(r) { const __m512 b = _mm512_set1_ps(d[(r) * n + j]); \
                          a0_##r = _mm512_add_ps(a0_##r, _mm512_mul_ps(h0, b)); \
                          a1_##r = _mm512_add_ps(a1_##r, _mm512_mul_ps(h1, b)); }
#define EK_S512_STORE(r) _mm512_mask_storeu_ps(y + (r) * n + i0, m0, a0_##r); \
                         _mm512_mask_storeu_ps(y + (r) * n + i0 + 16, m1, a1_##r);
#define EK_S512_TILE(R, REP)                                                                             \
    EK_AVX512 static void symv512_##R(const float *h, int64_t n, const float *d, float *y) {             \
        for (int64_t i0 = 0; i0 < n; i0 += 32) {                                                         \
            const int64_t left = n - i0;                                                                 \
            const __mmask16 m0 = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);                    \
            const __mmask16 m1 = left >= 32 ? 0xFFFF : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1); \
            REP(EK_S512_DECL)                                                                            \
            for (int64_t j = 0; j < n; j++) {                                                            \
                const float *hj = h + j * n + i0;                                                        \
                const __m512 h0 = _mm512_maskz_loadu_ps(m0, hj), h1 = _mm512_maskz_loadu_ps(m1, hj + 16); \
                REP(EK_S512_STEP)                                                                        \
            }                                                                                            \
            REP(EK_S512_STORE)                                                                           \
        }                                                                                                \
    }
EK_S512_TILE(4, EK_REP4)
EK_S512_TILE(1, EK_REP1)

// The same with 16 outputs (two ymm) × 4 rows; the last partial block of outputs goes scalar.
#define EK_S256_DECL(r) __m256 a0_##r = _mm256_setzero_ps(), a1_##r = _mm256_setzero_ps();
#define EK_S256_STEP(r) { const __m256 b = _mm256_set1_ps(d[(r) * n + j]); \
                          a0_##r = _mm256_add_ps(a0_##r, _mm256_mul_ps(h0, b)); \
                          a1_##r = _mm256_add_ps(a1_##r, _mm256_mul_ps(h1, b)); }
#define EK_S256_STORE(r) _mm256_storeu_ps(y + (r) * n + i0, a0_##r); _mm256_storeu_ps(y + (r) * n + i0 + 8, a1_##r);
#define EK_S256_TILE(R, REP)                                                                             \
    EK_AVX2 static void symv256_##R(const float *h, int64_t n, const float *d, float *y) {               \
        int64_t i0 = 0;                                                                                  \
        for (; i0 + 16 <= n; i0 += 16) {                                                                 \
            REP(EK_S256_DECL)                                                                            \
            for (int64_t j = 0; j < n; j++) {                                                            \
                const float *hj = h + j * n + i0;                                                        \
                const __m256 h0 = _mm256_loadu_ps(hj), h1 = _mm256_loadu_ps(hj + 8);                     \
                REP(EK_S256_STEP)                                                                        \
            }                                                                                            \
            REP(EK_S256_STORE)                                                                           \
        }                                                                                                \
        for (int64_t r = 0; r < R; r++)                                                                  \
            for (int64_t i = i0; i < n; i++) {                                                           \
                float s = 0;                                                                             \
                for (int64_t j = 0; j < n; j++) { const float p = h[j * n + i] * d[r * n + j]; s = s + p; } \
                y[r * n + i] = s;                                                                        \
            }                                                                                            \
    }
EK_S256_TILE(4, EK_REP4)
EK_S256_TILE(1, EK_REP1)
#endif

void ek_symv_rows(const float *h, int64_t n, const float *d, int64_t nrows, float *y) {
    if (n <= 0 || nrows <= 0) return;
#if EK_X86
    const ek_level level = ek_cpu_level();
    if (level >= EK_LEVEL_AVX2) {
        int64_t r = 0;
        for (; r + 4 <= nrows; r += 4) {
            if (level == EK_LEVEL_AVX512) symv512_4(h, n, d + r * n, y + r * n);
            else symv256_4(h, n, d + r * n, y + r * n);
        }
        for (; r < nrows; r++) {
            if (level == EK_LEVEL_AVX512) symv512_1(h, n, d + r * n, y + r * n);
            else symv256_1(h, n, d + r * n, y + r * n);
        }
        return;
    }
#endif
    symv_generic(h, n, d, nrows, y);
}

void ek_add_squares(const float *x, size_t ldx, int64_t rows, int64_t n, float *restrict s) {
    for (int64_t t = 0; t < rows; t++) {
        const float *restrict xt = x + (size_t)t * ldx;
        for (int64_t c = 0; c < n; c++) {
            const float p = xt[c] * xt[c];
            s[c] = s[c] + p;
        }
    }
}

void ek_add_upper_block(const float *g, float *restrict sums, int64_t n, int64_t i0, int64_t i1) {
    for (int64_t j = 0; j < i1; j++) {
        const int64_t lo = j > i0 ? j : i0;
        const float *restrict gr = g + (size_t)j * n;
        float *restrict sr = sums + (size_t)j * n;
        for (int64_t i = lo; i < i1; i++) sr[i] = sr[i] + gr[i];
    }
}
