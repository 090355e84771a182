// Legacy quantized weights × q8_0/q8_1 activations with AVX-512 VNNI.
//
// A block of 32 weight rows is decoded once into unsigned bytes u = q + offset (q4_0: the nibble,
// q − (−8); q8_0 and iq4_nl: value + 128; q5_0: the 5-bit value, offset 16; q4_1/q5_1: the raw
// unsigned quant, offset 0), laid out so that one 64-byte vector holds 4 consecutive k of 16 rows.
// `vpdpbusd` against 4 broadcast activation bytes then accumulates 16 rows' exact integer dot
// products at once; starting the accumulator at −offset·Σx turns Σ u·x into ggml's Σ q·x. Each
// block's integer is scaled in f32 exactly as ggml's generic vec_dot does, `(d_w·d_x)·sumi
// [+ m_w·s_x]`, and added to a running sum in block order — so the result equals vec_dot bit for bit.
#include "CKernels.h"
#include "internal.h"

#include <stdlib.h>



typedef struct {
    int block_bytes; // weight block size
    int offset;      // u = q + offset
    int has_min;     // q4_1 / q5_1: m·s term, q8_1 activations
} wtype_info;

static int info_for(int t, wtype_info *i) {
    switch (t) {
    case EK_GGML_Q4_0: *i = (wtype_info){GGML_Q4_0_BLOCK_BYTES, 8, 0}; return 1;
    case EK_GGML_Q4_1: *i = (wtype_info){GGML_Q4_1_BLOCK_BYTES, 0, 1}; return 1;
    case EK_GGML_Q5_0: *i = (wtype_info){GGML_Q5_0_BLOCK_BYTES, 16, 0}; return 1;
    case EK_GGML_Q5_1: *i = (wtype_info){GGML_Q5_1_BLOCK_BYTES, 0, 1}; return 1;
    case EK_GGML_Q8_0: *i = (wtype_info){GGML_Q8_0_BLOCK_BYTES, 128, 0}; return 1;
    case EK_GGML_IQ4_NL: *i = (wtype_info){GGML_IQ4_NL_BLOCK_BYTES, 128, 0}; return 1;
    default: return 0;
    }
}

/// One weight block → 32 unsigned bytes (u = q + offset) and its d (and m).
static void decode_block(int t, const uint8_t *blk, uint8_t *u, float *d, float *m) {
    *d = ek_half_to_float(ek_load_u16(blk));
    *m = 0;
    switch (t) {
    case EK_GGML_Q4_0:
        for (int j = 0; j < 16; j++) { u[j] = blk[2 + j] & 15; u[j + 16] = blk[2 + j] >> 4; }
        break;
    case EK_GGML_Q4_1:
        *m = ek_half_to_float(ek_load_u16(blk + 2));
        for (int j = 0; j < 16; j++) { u[j] = blk[4 + j] & 15; u[j + 16] = blk[4 + j] >> 4; }
        break;
    case EK_GGML_Q5_0:
    case EK_GGML_Q5_1: {
        const int o = t == EK_GGML_Q5_1 ? 4 : 2;
        if (t == EK_GGML_Q5_1) *m = ek_half_to_float(ek_load_u16(blk + 2));
        uint32_t qh;
        memcpy(&qh, blk + o, 4);
        const uint8_t *qs = blk + o + 4;
        for (int j = 0; j < 16; j++) {
            u[j] = (uint8_t)((qs[j] & 15) | (((qh >> j) & 1) << 4));
            u[j + 16] = (uint8_t)((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
        }
        break;
    }
    case EK_GGML_Q8_0:
        for (int j = 0; j < 32; j++) u[j] = (uint8_t)(blk[2 + j] ^ 0x80);
        break;
    case EK_GGML_IQ4_NL:
        for (int j = 0; j < 16; j++) {
            u[j] = (uint8_t)(ggml_kvalues_iq4nl[blk[2 + j] & 15] + 128);
            u[j + 16] = (uint8_t)(ggml_kvalues_iq4nl[blk[2 + j] >> 4] + 128);
        }
        break;
    }
}

/// Rows [r, r + 32) (zero past `rend`) → panel (nb·8 steps × 2 groups × 64 bytes), dw/mw (nb × 32).
static void pack(int t, const wtype_info *ti, const uint8_t *w, size_t rb, int64_t r, int64_t rend, int nb,
                 uint8_t *panel, float *dw, float *mw) {
    uint8_t u[32];
    for (int i = 0; i < 32; i++) {
        const int g = i >> 4, lane = i & 15;
        for (int b = 0; b < nb; b++) {
            float d = 0, m = 0;
            if (r + i < rend) {
                decode_block(t, w + (size_t)(r + i) * rb + (size_t)b * ti->block_bytes, u, &d, &m);
            } else {
                memset(u, 0, 32);
            }
            dw[b * 32 + i] = d;
            mw[b * 32 + i] = m;
            for (int kq = 0; kq < 8; kq++) memcpy(panel + (((size_t)b * 8 + kq) * 2 + g) * 64 + lane * 4, u + kq * 4, 4);
        }
    }
}

#if EK_X86
// 32 rows (two groups of 16 lanes) × NR tokens; per token two int32 and two f32 accumulators.
#define EK_Q8_TILE(NR, REP)                                                                                \
    EK_AVX512 static void tile_##NR(const uint8_t *panel, const float *dw, const float *mw, int nb,         \
                                    const uint8_t *xq, size_t xrb, int xbb, int xqo,                       \
                                    const float *xd, const float *xs, const int32_t *xoff, int has_min,    \
                                    float *y, size_t ldy, __mmask16 k0, __mmask16 k1) {                    \
        REP(EK_Q8_DECL)                                                                                    \
        for (int b = 0; b < nb; b++) {                                                                     \
            REP(EK_Q8_INIT)                                                                                \
            const uint8_t *pb = panel + (size_t)b * 8 * 128;                                               \
            for (int kq = 0; kq < 8; kq++) {                                                               \
                const __m512i w0 = _mm512_load_si512(pb + kq * 128), w1 = _mm512_load_si512(pb + kq * 128 + 64); \
                REP(EK_Q8_STEP)                                                                            \
            }                                                                                              \
            const __m512 d0 = _mm512_loadu_ps(dw + b * 32), d1 = _mm512_loadu_ps(dw + b * 32 + 16);        \
            if (has_min) {                                                                                 \
                const __m512 m0 = _mm512_loadu_ps(mw + b * 32), m1 = _mm512_loadu_ps(mw + b * 32 + 16);    \
                REP(EK_Q8_SCALE_MIN)                                                                       \
            } else {                                                                                       \
                REP(EK_Q8_SCALE)                                                                           \
            }                                                                                              \
        }                                                                                                  \
        REP(EK_Q8_STORE)                                                                                   \
    }
#define EK_Q8_DECL(j) __m512 f0_##j = _mm512_setzero_ps(), f1_##j = _mm512_setzero_ps(); __m512i i0_##j, i1_##j; \
                      const uint8_t *x_##j = xq + (size_t)(j) * xrb + xqo;
#define EK_Q8_INIT(j) i0_##j = i1_##j = _mm512_set1_epi32(xoff[(size_t)(j) * nb + b]);
#define EK_Q8_STEP(j) { int32_t a; memcpy(&a, x_##j + (size_t)b * xbb + kq * 4, 4); const __m512i av = _mm512_set1_epi32(a); \
                        i0_##j = _mm512_dpbusd_epi32(i0_##j, w0, av); i1_##j = _mm512_dpbusd_epi32(i1_##j, w1, av); }
/* (d_w·d_x)·sumi, then added: ggml's generic vec_dot order, no FMA */
#define EK_Q8_SCALE(j) { const __m512 dx = _mm512_set1_ps(xd[(size_t)(j) * nb + b]); \
    f0_##j = _mm512_add_ps(f0_##j, _mm512_mul_ps(_mm512_mul_ps(d0, dx), _mm512_cvtepi32_ps(i0_##j))); \
    f1_##j = _mm512_add_ps(f1_##j, _mm512_mul_ps(_mm512_mul_ps(d1, dx), _mm512_cvtepi32_ps(i1_##j))); }
#define EK_Q8_SCALE_MIN(j) { const __m512 dx = _mm512_set1_ps(xd[(size_t)(j) * nb + b]), sx = _mm512_set1_ps(xs[(size_t)(j) * nb + b]); \
    f0_##j = _mm512_add_ps(f0_##j, _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(d0, dx), _mm512_cvtepi32_ps(i0_##j)), _mm512_mul_ps(m0, sx))); \
    f1_##j = _mm512_add_ps(f1_##j, _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(d1, dx), _mm512_cvtepi32_ps(i1_##j)), _mm512_mul_ps(m1, sx))); }
#define EK_Q8_STORE(j) _mm512_mask_storeu_ps(y + (size_t)(j) * ldy, k0, f0_##j); \
                       _mm512_mask_storeu_ps(y + (size_t)(j) * ldy + 16, k1, f1_##j);
EK_Q8_TILE(6, EK_REP6)
EK_Q8_TILE(4, EK_REP4)
EK_Q8_TILE(2, EK_REP2)
EK_Q8_TILE(1, EK_REP1)

EK_AVX512 static void sweep(const uint8_t *panel, const float *dw, const float *mw, int nb, int nrows,
                            const uint8_t *xq, size_t xrb, int xbb, int xqo, const float *xd, const float *xs,
                            const int32_t *xoff, int has_min, int64_t ntok, float *y, size_t ldy) {
    const __mmask16 k0 = nrows >= 16 ? 0xFFFF : (__mmask16)((1u << nrows) - 1);
    const __mmask16 k1 = nrows >= 32 ? 0xFFFF : nrows <= 16 ? 0 : (__mmask16)((1u << (nrows - 16)) - 1);
#define EK_TILE(NR) tile_##NR(panel, dw, mw, nb, xq + (size_t)t * xrb, xrb, xbb, xqo, xd + (size_t)t * nb, \
                              xs + (size_t)t * nb, xoff + (size_t)t * nb, has_min, y + (size_t)t * ldy, ldy, k0, k1)
    int64_t t = 0;
    if (has_min) {
        for (; t + 4 <= ntok; t += 4) EK_TILE(4);
    } else {
        for (; t + 6 <= ntok; t += 6) EK_TILE(6);
        for (; t + 2 <= ntok; t += 2) EK_TILE(2);
    }
    for (; t < ntok; t++) EK_TILE(1);
#undef EK_TILE
}
#endif

int ek_gemm_q8_available(void) { return ek_cpu_level() == EK_LEVEL_AVX512; }

void ek_gemm_q8(int wtype, const void *w, size_t wrow_bytes, int64_t r0, int64_t r1,
                const void *xq, size_t xrow_bytes, int64_t ntok, int64_t k, float *y, size_t ldy) {
#if EK_X86
    wtype_info ti;
    if (!info_for(wtype, &ti) || !ek_gemm_q8_available() || r1 <= r0 || ntok <= 0) return;
    const int nb = (int)(k / 32);
    // the 32 quants end each activation block (after d, and s for q8_1)
    const int xbb = ti.has_min ? GGML_Q8_1_BLOCK_BYTES : GGML_Q8_0_BLOCK_BYTES, xqo = xbb - 32;
    float *xd = (float *)malloc((size_t)ntok * nb * 4), *xs = (float *)malloc((size_t)ntok * nb * 4);
    int32_t *xoff = (int32_t *)malloc((size_t)ntok * nb * 4);
    for (int64_t t = 0; t < ntok; t++) {
        for (int b = 0; b < nb; b++) {
            const uint8_t *blk = (const uint8_t *)xq + (size_t)t * xrow_bytes + (size_t)b * xbb;
            xd[t * nb + b] = ek_half_to_float(ek_load_u16(blk));
            xs[t * nb + b] = ti.has_min ? ek_half_to_float(ek_load_u16(blk + 2)) : 0;
            int32_t s = 0;
            for (int j = 0; j < 32; j++) s += (int8_t)blk[xqo + j];
            xoff[t * nb + b] = -ti.offset * s;
        }
    }
    uint8_t *panel = (uint8_t *)aligned_alloc(64, (size_t)nb * 8 * 128);
    float *dw = (float *)malloc((size_t)nb * 32 * 4), *mw = (float *)malloc((size_t)nb * 32 * 4);
    for (int64_t r = r0; r < r1; r += 32) {
        const int nrows = (int)(r1 - r < 32 ? r1 - r : 32);
        pack(wtype, &ti, (const uint8_t *)w, wrow_bytes, r, r1, nb, panel, dw, mw);
        sweep(panel, dw, mw, nb, nrows, (const uint8_t *)xq, xrow_bytes, xbb, xqo, xd, xs, xoff, ti.has_min,
              ntok, y + r, ldy);
    }
    free(dw); free(mw); free(panel); free(xd); free(xs); free(xoff);
#else
    (void)wtype; (void)w; (void)wrow_bytes; (void)r0; (void)r1; (void)xq; (void)xrow_bytes; (void)ntok; (void)k; (void)y; (void)ldy;
#endif
}
