// K-quant weights × q8_K activations with AVX-512 VNNI, in the form of gemm_q8.c.
//
// Every k-quant super-block (256 columns) is decoded to unsigned bytes u = q + offset (q6_K:
// offset 32; q3_K: 4; q2_K, q4_K, q5_K: 0) and, per 16-column group g, its integer scale s_g and
// (q2_K, q4_K, q5_K) integer min m_g. ggml's integers are then, per super-block,
//   isum = Σ_g s_g · (Σ_{k∈g} u_k·x_k − offset · bsum_g),   summ = Σ_g m_g · bsum_g
// (bsum_g: q8_K's per-16 sums of x), and the super-block adds (d·d_x)·isum − (dmin·d_x)·summ to
// the row's sum — ggml's generic vec_dot, bit for bit. Groups are accumulated with vpdpbusd, scaled
// with vpmulld; the mins are one vpdpwssd per pair of groups.
#include "CKernels.h"
#include "internal.h"

#include <stdlib.h>

enum { QK = GGML_QK_K };

typedef struct {
    int block_bytes, offset, has_min;
} ktype_info;

static int kinfo(int t, ktype_info *i) {
    switch (t) {
    case EK_GGML_Q2_K: *i = (ktype_info){GGML_Q2_K_BLOCK_BYTES, 0, 1}; return 1;
    case EK_GGML_Q3_K: *i = (ktype_info){GGML_Q3_K_BLOCK_BYTES, 4, 0}; return 1;
    case EK_GGML_Q4_K: *i = (ktype_info){GGML_Q4_K_BLOCK_BYTES, 0, 1}; return 1;
    case EK_GGML_Q5_K: *i = (ktype_info){GGML_Q5_K_BLOCK_BYTES, 0, 1}; return 1;
    case EK_GGML_Q6_K: *i = (ktype_info){GGML_Q6_K_BLOCK_BYTES, 32, 0}; return 1;
    default: return 0;
    }
}

/// One super-block → u[256], s[16], m[16], d, dmin (layouts of ggml-common.h).
static void decode_k(int t, const uint8_t *b, uint8_t *u, int32_t *s, int32_t *m, float *d, float *dmin) {
    *dmin = 0;
    for (int g = 0; g < 16; g++) m[g] = 0;
    switch (t) {
    case EK_GGML_Q2_K: { // scales[16], qs[64], d, dmin
        const uint8_t *sc = b, *qs = b + 16;
        *d = ek_half_to_float(ek_load_u16(b + 80));
        *dmin = ek_half_to_float(ek_load_u16(b + 82));
        for (int g = 0; g < 16; g++) { s[g] = sc[g] & 15; m[g] = sc[g] >> 4; }
        for (int k = 0; k < 2; k++)
            for (int j = 0; j < 4; j++)
                for (int l = 0; l < 32; l++) u[k * 128 + j * 32 + l] = (qs[32 * k + l] >> (2 * j)) & 3;
        break;
    }
    case EK_GGML_Q3_K: { // hmask[32], qs[64], scales[12], d
        const uint8_t *hm = b, *qs = b + 32, *sc = b + 96;
        *d = ek_half_to_float(ek_load_u16(b + 108));
        for (int i = 0; i < 4; i++) {
            s[i] = ((sc[i] & 0xF) | ((sc[8 + i] & 3) << 4)) - 32;
            s[4 + i] = ((sc[4 + i] & 0xF) | (((sc[8 + i] >> 2) & 3) << 4)) - 32;
            s[8 + i] = ((sc[i] >> 4) | (((sc[8 + i] >> 4) & 3) << 4)) - 32;
            s[12 + i] = ((sc[4 + i] >> 4) | (((sc[8 + i] >> 6) & 3) << 4)) - 32;
        }
        for (int j = 0; j < 2; j++)
            for (int sh = 0; sh < 4; sh++) {
                const int c = j * 4 + sh;
                for (int l = 0; l < 32; l++) {
                    // v = q − 4·(1 − h) ∈ [−4, 3]; u = v + 4
                    const int v = ((qs[32 * j + l] >> (2 * sh)) & 3) - 4 * (((hm[l] >> c) & 1) ^ 1);
                    u[c * 32 + l] = (uint8_t)(v + 4);
                }
            }
        break;
    }
    case EK_GGML_Q4_K:
    case EK_GGML_Q5_K: { // d, dmin, scales[12], (qh[32]), qs[128]
        const int five = t == EK_GGML_Q5_K;
        const uint8_t *sc = b + 4, *qh = b + 16, *qs = b + (five ? 48 : 16);
        *d = ek_half_to_float(ek_load_u16(b));
        *dmin = ek_half_to_float(ek_load_u16(b + 2));
        int32_t s8[8], m8[8];
        for (int j = 0; j < 4; j++) { s8[j] = sc[j] & 63; m8[j] = sc[j + 4] & 63; }
        for (int j = 4; j < 8; j++) {
            s8[j] = (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4);
            m8[j] = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
        }
        for (int g = 0; g < 16; g++) { s[g] = s8[g / 2]; m[g] = m8[g / 2]; }
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 32; l++) {
                uint8_t lo = qs[32 * j + l] & 0xF, hi = qs[32 * j + l] >> 4;
                if (five) { lo |= ((qh[l] >> (2 * j)) & 1) << 4; hi |= ((qh[l] >> (2 * j + 1)) & 1) << 4; }
                u[64 * j + l] = lo;
                u[64 * j + 32 + l] = hi;
            }
        break;
    }
    case EK_GGML_Q6_K: { // ql[128], qh[64], scales[16] (int8), d
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        *d = ek_half_to_float(ek_load_u16(b + 208));
        for (int g = 0; g < 16; g++) s[g] = sc[g];
        for (int h = 0; h < 2; h++) {
            const uint8_t *l4 = ql + 64 * h, *hh = qh + 32 * h;
            uint8_t *o = u + 128 * h;
            for (int l = 0; l < 32; l++) {
                o[l] = (l4[l] & 0xF) | ((hh[l] & 3) << 4);
                o[l + 32] = (l4[l + 32] & 0xF) | (((hh[l] >> 2) & 3) << 4);
                o[l + 64] = (l4[l] >> 4) | (((hh[l] >> 4) & 3) << 4);
                o[l + 96] = (l4[l + 32] >> 4) | (((hh[l] >> 6) & 3) << 4);
            }
        }
        break;
    }
    }
}

/// Rows [r, r+32) → panel (per super-block 64 column quads × 2 row groups × 64 bytes), scales
/// s[b][16][32], mins as int16 pairs m2[b][8][32] (int32 lanes), d/dmin[b][32].
static void pack_k(int t, const ktype_info *ti, const uint8_t *w, size_t rb, int64_t r, int64_t rend, int nb,
                   uint8_t *panel, int32_t *s, int32_t *m2, float *d, float *dmin) {
    uint8_t u[QK];
    int32_t sg[16], mg[16];
    for (int i = 0; i < 32; i++) {
        const int g2 = i >> 4, lane = i & 15;
        for (int b = 0; b < nb; b++) {
            float dd = 0, dm = 0;
            if (r + i < rend) {
                decode_k(t, w + (size_t)(r + i) * rb + (size_t)b * ti->block_bytes, u, sg, mg, &dd, &dm);
            } else {
                memset(u, 0, QK);
                for (int g = 0; g < 16; g++) sg[g] = mg[g] = 0;
            }
            d[b * 32 + i] = dd;
            dmin[b * 32 + i] = dm;
            for (int g = 0; g < 16; g++) s[((size_t)b * 16 + g) * 32 + i] = sg[g];
            for (int p = 0; p < 8; p++) {
                const uint32_t lo = (uint16_t)(int16_t)mg[2 * p], hi = (uint16_t)(int16_t)mg[2 * p + 1];
                m2[((size_t)b * 8 + p) * 32 + i] = (int32_t)(lo | (hi << 16));
            }
            for (int kq = 0; kq < 64; kq++)
                memcpy(panel + (((size_t)b * 64 + kq) * 2 + g2) * 64 + lane * 4, u + kq * 4, 4);
        }
    }
}

#if EK_X86
// 32 rows × NR tokens. Per token: f32 sums (2), super-block integer sums (2), a group's sums (2).
#define EK_K_TILE(NR, REP)                                                                                 \
    EK_AVX512 static void ktile_##NR(const uint8_t *panel, const int32_t *s, const int32_t *m2, const float *dw,  \
                                     const float *dmw, int nb, int has_min, const uint8_t *xq, size_t xrb,  \
                                     const int32_t *xoff, float *y, size_t ldy, __mmask16 k0, __mmask16 k1) { \
        REP(EK_K_DECL)                                                                                     \
        for (int b = 0; b < nb; b++) {                                                                     \
            REP(EK_K_ZERO)                                                                                 \
            for (int g = 0; g < 16; g++) {                                                                 \
                REP(EK_K_GINIT)                                                                            \
                const uint8_t *pg = panel + ((size_t)b * 64 + g * 4) * 128;                                \
                for (int kq = 0; kq < 4; kq++) {                                                           \
                    const __m512i w0 = _mm512_load_si512(pg + kq * 128), w1 = _mm512_load_si512(pg + kq * 128 + 64); \
                    REP(EK_K_STEP)                                                                         \
                }                                                                                          \
                const __m512i s0 = _mm512_loadu_si512(s + ((size_t)b * 16 + g) * 32), s1 = _mm512_loadu_si512(s + ((size_t)b * 16 + g) * 32 + 16); \
                REP(EK_K_GADD)                                                                             \
            }                                                                                              \
            const __m512 d0 = _mm512_loadu_ps(dw + b * 32), d1 = _mm512_loadu_ps(dw + b * 32 + 16);        \
            REP(EK_K_SCALE)                                                                                \
            if (has_min) {                                                                                 \
                REP(EK_K_MZERO)                                                                            \
                for (int p = 0; p < 8; p++) {                                                              \
                    const __m512i mp0 = _mm512_loadu_si512(m2 + ((size_t)b * 8 + p) * 32), mp1 = _mm512_loadu_si512(m2 + ((size_t)b * 8 + p) * 32 + 16); \
                    REP(EK_K_MSTEP)                                                                        \
                }                                                                                          \
                const __m512 e0 = _mm512_loadu_ps(dmw + b * 32), e1 = _mm512_loadu_ps(dmw + b * 32 + 16);  \
                REP(EK_K_MSCALE)                                                                           \
            }                                                                                              \
        }                                                                                                  \
        REP(EK_K_STORE)                                                                                    \
    }
#define EK_K_DECL(j) __m512 f0_##j = _mm512_setzero_ps(), f1_##j = _mm512_setzero_ps(); \
                     __m512i t0_##j, t1_##j, g0_##j, g1_##j; const uint8_t *x_##j = xq + (size_t)(j) * xrb;
#define EK_K_ZERO(j) t0_##j = _mm512_setzero_si512(); t1_##j = _mm512_setzero_si512();
#define EK_K_GINIT(j) g0_##j = g1_##j = _mm512_set1_epi32(xoff[((size_t)(j) * nb + b) * 16 + g]);
#define EK_K_STEP(j) { int32_t a; memcpy(&a, x_##j + (size_t)b * GGML_Q8_K_BLOCK_BYTES + GGML_Q8_K_QS_OFFSET + (g * 4 + kq) * 4, 4); const __m512i av = _mm512_set1_epi32(a); \
                       g0_##j = _mm512_dpbusd_epi32(g0_##j, w0, av); g1_##j = _mm512_dpbusd_epi32(g1_##j, w1, av); }
#define EK_K_GADD(j) t0_##j = _mm512_add_epi32(t0_##j, _mm512_mullo_epi32(g0_##j, s0)); \
                     t1_##j = _mm512_add_epi32(t1_##j, _mm512_mullo_epi32(g1_##j, s1));
/* f += cvt(isum) · (d · d_x) */
#define EK_K_SCALE(j) { float dx; memcpy(&dx, x_##j + (size_t)b * GGML_Q8_K_BLOCK_BYTES, 4); const __m512 dxv = _mm512_set1_ps(dx); \
    f0_##j = _mm512_add_ps(f0_##j, _mm512_mul_ps(_mm512_cvtepi32_ps(t0_##j), _mm512_mul_ps(d0, dxv))); \
    f1_##j = _mm512_add_ps(f1_##j, _mm512_mul_ps(_mm512_cvtepi32_ps(t1_##j), _mm512_mul_ps(d1, dxv))); }
#define EK_K_MZERO(j) t0_##j = _mm512_setzero_si512(); t1_##j = _mm512_setzero_si512();
#define EK_K_MSTEP(j) { int32_t a; memcpy(&a, x_##j + (size_t)b * GGML_Q8_K_BLOCK_BYTES + GGML_Q8_K_BSUMS_OFFSET + p * 4, 4); const __m512i av = _mm512_set1_epi32(a); \
                        t0_##j = _mm512_dpwssd_epi32(t0_##j, mp0, av); t1_##j = _mm512_dpwssd_epi32(t1_##j, mp1, av); }
/* f −= cvt(summ) · (dmin · d_x) */
#define EK_K_MSCALE(j) { float dx; memcpy(&dx, x_##j + (size_t)b * GGML_Q8_K_BLOCK_BYTES, 4); const __m512 dxv = _mm512_set1_ps(dx); \
    f0_##j = _mm512_sub_ps(f0_##j, _mm512_mul_ps(_mm512_cvtepi32_ps(t0_##j), _mm512_mul_ps(e0, dxv))); \
    f1_##j = _mm512_sub_ps(f1_##j, _mm512_mul_ps(_mm512_cvtepi32_ps(t1_##j), _mm512_mul_ps(e1, dxv))); }
#define EK_K_STORE(j) _mm512_mask_storeu_ps(y + (size_t)(j) * ldy, k0, f0_##j); \
                      _mm512_mask_storeu_ps(y + (size_t)(j) * ldy + 16, k1, f1_##j);
EK_K_TILE(4, EK_REP4)
EK_K_TILE(1, EK_REP1)
#endif

int ek_gemm_k_available(void) { return ek_cpu_level() == EK_LEVEL_AVX512; }

void ek_gemm_k(int wtype, const void *w, size_t wrow_bytes, int64_t r0, int64_t r1,
               const void *xq, size_t xrow_bytes, int64_t ntok, int64_t k, float *y, size_t ldy) {
#if EK_X86
    ktype_info ti;
    if (!kinfo(wtype, &ti) || !ek_gemm_k_available() || r1 <= r0 || ntok <= 0) return;
    const int nb = (int)(k / QK);
    // −offset · bsum_g per token, super-block and group (the group sums' starting value)
    int32_t *xoff = (int32_t *)malloc((size_t)ntok * nb * 16 * 4);
    for (int64_t t = 0; t < ntok; t++)
        for (int b = 0; b < nb; b++)
            for (int g = 0; g < 16; g++) {
                int16_t bs;
                memcpy(&bs, (const uint8_t *)xq + (size_t)t * xrow_bytes + (size_t)b * GGML_Q8_K_BLOCK_BYTES + GGML_Q8_K_BSUMS_OFFSET + g * 2, 2);
                xoff[((size_t)t * nb + b) * 16 + g] = -ti.offset * bs;
            }
    uint8_t *panel = (uint8_t *)aligned_alloc(64, (size_t)nb * 64 * 128);
    int32_t *s = (int32_t *)malloc((size_t)nb * 16 * 32 * 4), *m2 = (int32_t *)malloc((size_t)nb * 8 * 32 * 4);
    float *d = (float *)malloc((size_t)nb * 32 * 4), *dmin = (float *)malloc((size_t)nb * 32 * 4);
    for (int64_t r = r0; r < r1; r += 32) {
        const int nrows = (int)(r1 - r < 32 ? r1 - r : 32);
        const __mmask16 k0 = nrows >= 16 ? 0xFFFF : (__mmask16)((1u << nrows) - 1);
        const __mmask16 k1 = nrows >= 32 ? 0xFFFF : nrows <= 16 ? 0 : (__mmask16)((1u << (nrows - 16)) - 1);
        pack_k(wtype, &ti, (const uint8_t *)w, wrow_bytes, r, r1, nb, panel, s, m2, d, dmin);
        int64_t t = 0;
        for (; t + 4 <= ntok; t += 4)
            ktile_4(panel, s, m2, d, dmin, nb, ti.has_min, (const uint8_t *)xq + (size_t)t * xrow_bytes, xrow_bytes,
                    xoff + (size_t)t * nb * 16, y + (size_t)t * ldy + r, ldy, k0, k1);
        for (; t < ntok; t++)
            ktile_1(panel, s, m2, d, dmin, nb, ti.has_min, (const uint8_t *)xq + (size_t)t * xrow_bytes, xrow_bytes,
                    xoff + (size_t)t * nb * 16, y + (size_t)t * ldy + r, ldy, k0, k1);
    }
    free(xoff); free(panel); free(s); free(m2); free(d); free(dmin);
#else
    (void)wtype; (void)w; (void)wrow_bytes; (void)r0; (void)r1; (void)xq; (void)xrow_bytes; (void)ntok; (void)k; (void)y; (void)ldy;
#endif
}
