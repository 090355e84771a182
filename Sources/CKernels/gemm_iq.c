// I-quant weights (iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s, iq1_s, iq1_m, iq4_xs) × q8_K
// activations: ggml's generic vec_dot (ggml-cpu/quants.c, ggml_vec_dot_iq*_q8_K_generic), bit for
// bit, for one row (`ek_vec_dot_iq`) and for a block of rows × tokens (`ek_gemm_iq`).
//
// Every super-block (256 columns) is decoded to signed bytes v (the lattice point with its signs:
// iq2 ±{8,25,43}, iq3 ±{1…62}, iq4_xs kvalues_iq4nl, iq1_s {−1,0,1}, iq1_m 8·grid + delta ∈ [−9, 9]),
// an integer scale per group of 16 or 32 columns and the f32 super-block scale d. ggml's integer
// sums are then exact whatever the order of summation:
//   isum = Σ_g s_g · Σ_{k∈g} v_k·x_k
// and each super-block adds to the row sum in f32, in ggml's expression and order:
//   iq2_*, iq3_*:  sumf += (d·d_x)·isum                 (then ×0.125f for iq2, ×0.25f for iq3_xxs)
//   iq1_s:         sumf += (d·d_x)·(isum + 0.125f·isum1), isum1 = Σ_ib ls·delta·(bsums[2ib]+bsums[2ib+1])
//   iq1_m:         sumf += (d·d_x)·(0.125f·isum)         (ggml: sumi1 + 0.125f·sumi2 with
//                  isum = 8·sumi1 + sumi2; |sumi1|, |sumi2|, |isum| < 2^24, so both are exact in f32
//                  and the two expressions are the same float)
//   iq4_xs:        sumf += ((d·d_x)·(ls − 32))·Σ_{k∈32-group} v·x, per 32-column group
// No FMA contraction anywhere in this file (pragma below), so the float part is exactly the C of
// ggml's generic code. (ggml's own build of the generic functions with GCC contracts the iq1_s/iq1_m
// accumulation into an FMA; edgequant's convention is the uncontracted expression.)
//
// The GEMM decodes 32 weight rows once into a panel (per super-block 64 column quads × 2 row halves ×
// 64 bytes, as gemm_k.c) and reuses it for every token. The activations are made unsigned,
// xu = x + 128, so that `vpdpbusd` (u8 × s8) takes them as its unsigned operand against the signed
// weights: Σ v·xu = Σ v·x + 128·Σ v, and the accumulators start at −128·Σ_g s_g·Σ v (a per-row
// constant of the panel). That makes every integer exact for any q8_K bytes, independent of bsums
// (which only iq1_s reads, as ggml does).
//   AVX-512 VNNI: lattice points gathered and signs applied with byte masks (iq_decode512), 16×16
//     transposes into the panel, 32 rows × 4 tokens per tile; one or two tokens run row by row
//     (rows512, also `ek_vec_dot_iq`).
//   AVX2: the same panel with 8-row vectors, integer step `vpdpbusd` of AVX-VNNI where the CPU has
//     it, else `vpmaddubsw` + `vpmaddwd` — exact, as |v| ≤ 62 and xu ≤ 255 keep every int16 pair sum
//     ≤ 31620; iq4_xs (|v| ≤ 127) there splits v = 2·(v >> 1) + (v & 1) into two such products.
//     Decoding is the portable code. One token, and `ek_vec_dot_iq`, take the portable code
//     compiled for AVX2.
//   Otherwise: portable C (rows decoded once per call, then every token).
#include "CKernels.h"
#include "internal.h"
#include "ggml_iq_grids.h"

#include <stdlib.h>
#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif

#if defined(__clang__)
#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF
#endif

enum { QK = GGML_QK_K, Q8K_BYTES = GGML_Q8_K_BLOCK_BYTES };

/// Up to this many tokens the AVX-512 GEMM runs row by row (no panel): the measured crossover.
enum { ROWS_MAX_TOKENS = 2 };

/// Epilogue kinds (the float expression ggml applies per super-block).
enum { M_INT = 0, M_IQ1S = 1, M_IQ1M = 2, M_IQ4XS = 3 };

typedef struct {
    int block_bytes;
    int groups;     // integer scale groups per super-block: 8 (32 columns) or 16 (16 columns)
    int mode;       // M_*
    int has_post;   // ggml multiplies the row sum by `post` at the end
    float post;
} iq_info;

static int iq_info_for(int t, iq_info *i) {
    switch (t) {
    case EK_GGML_IQ2_XXS: *i = (iq_info){GGML_IQ2_XXS_BLOCK_BYTES, 8, M_INT, 1, 0.125f}; return 1;
    case EK_GGML_IQ2_XS: *i = (iq_info){GGML_IQ2_XS_BLOCK_BYTES, 16, M_INT, 1, 0.125f}; return 1;
    case EK_GGML_IQ2_S: *i = (iq_info){GGML_IQ2_S_BLOCK_BYTES, 16, M_INT, 1, 0.125f}; return 1;
    case EK_GGML_IQ3_XXS: *i = (iq_info){GGML_IQ3_XXS_BLOCK_BYTES, 8, M_INT, 1, 0.25f}; return 1;
    case EK_GGML_IQ3_S: *i = (iq_info){GGML_IQ3_S_BLOCK_BYTES, 8, M_INT, 0, 1.0f}; return 1;
    case EK_GGML_IQ1_S: *i = (iq_info){GGML_IQ1_S_BLOCK_BYTES, 8, M_IQ1S, 0, 1.0f}; return 1;
    case EK_GGML_IQ1_M: *i = (iq_info){GGML_IQ1_M_BLOCK_BYTES, 16, M_IQ1M, 0, 1.0f}; return 1;
    case EK_GGML_IQ4_XS: *i = (iq_info){GGML_IQ4_XS_BLOCK_BYTES, 8, M_IQ4XS, 0, 1.0f}; return 1;
    default: return 0;
    }
}

/// One decoded super-block's scales; its 256 signed values go to a separate buffer.
typedef struct {
    int32_t s[16]; // integer scale per group (groups[0…groups)); iq4_xs: ls − 32
    int32_t e[8];  // iq1_s: ls·delta per 32 columns
    float d;       // f32 super-block scale
} iq_meta;

static inline uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

// Byte-parallel (SWAR) helpers on 8 values in a uint64, byte j = value j (little-endian, as ggml
// reads its grids through uint8_t pointers).

/// 0x01 in byte j where bit j of `sb` is set (ggml's kmask_iq2xs[j] = 1 << j).
static inline uint64_t sign_ones(uint8_t sb) {
    const uint64_t m = ((uint64_t)sb * 0x0101010101010101ull) & 0x8040201008040201ull;
    return ((m + 0x7F7F7F7F7F7F7F7Full) & 0x8080808080808080ull) >> 7;
}

/// Lattice magnitudes (every byte in 1…127, so no carry crosses a byte) with ggml's sign byte:
/// byte j negated where bit j is set, as two's complement (g ^ 0xFF) + 1.
static inline uint64_t with_signs(uint64_t g, uint8_t sb) {
    const uint64_t one = sign_ones(sb);
    return (g ^ (one * 0xFF)) + one;
}

/// Byte-wise a + b (mod 256 per byte).
static inline uint64_t add_bytes(uint64_t a, uint64_t b) {
    return ((a & 0x7F7F7F7F7F7F7F7Full) + (b & 0x7F7F7F7F7F7F7F7Full)) ^ ((a ^ b) & 0x8080808080808080ull);
}

static inline void store_u64(int8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/// One super-block of type `t` (layouts of ggml-common.h) → v[256] and its scales.
static void iq_decode(int t, const uint8_t *b, int8_t *v, iq_meta *o) {
    switch (t) {
    case EK_GGML_IQ2_XXS: { // d, qs[32] (uint16): per 32 columns 4 grid bytes, then 4×7 sign bits + 4-bit scale
        o->d = ek_half_to_float(ek_load_u16(b));
        const uint8_t *q = b + 2;
        for (int ib = 0; ib < 8; ib++) {
            const uint32_t a1 = load_u32(q + 8 * ib + 4);
            o->s[ib] = (int32_t)(2 * (a1 >> 28) + 1);
            for (int l = 0; l < 4; l++)
                store_u64(v + 32 * ib + 8 * l, with_signs(ggml_iq2xxs_grid[q[8 * ib + l]], ggml_ksigns_iq2xs[(a1 >> (7 * l)) & 127]));
        }
        break;
    }
    case EK_GGML_IQ2_XS: { // d, qs[32] (uint16: 9-bit grid index, 7-bit sign index), scales[8]
        o->d = ek_half_to_float(ek_load_u16(b));
        const uint8_t *sc = b + 66;
        for (int ib = 0; ib < 8; ib++) {
            o->s[2 * ib] = 2 * (sc[ib] & 0xF) + 1;
            o->s[2 * ib + 1] = 2 * (sc[ib] >> 4) + 1;
            for (int l = 0; l < 4; l++) {
                const uint16_t q = ek_load_u16(b + 2 + 2 * (4 * ib + l));
                store_u64(v + 32 * ib + 8 * l, with_signs(ggml_iq2xs_grid[q & 511], ggml_ksigns_iq2xs[q >> 9]));
            }
        }
        break;
    }
    case EK_GGML_IQ2_S: { // d, qs[64] (32 grid indices, 32 sign bytes), qh[8], scales[8]
        o->d = ek_half_to_float(ek_load_u16(b));
        const uint8_t *qs = b + 2, *signs = b + 34, *qh = b + 66, *sc = b + 74;
        for (int ib = 0; ib < 8; ib++) {
            o->s[2 * ib] = 2 * (sc[ib] & 0xF) + 1;
            o->s[2 * ib + 1] = 2 * (sc[ib] >> 4) + 1;
            for (int l = 0; l < 4; l++) {
                const int idx = qs[4 * ib + l] | ((qh[ib] << (8 - 2 * l)) & 0x300);
                store_u64(v + 32 * ib + 8 * l, with_signs(ggml_iq2s_grid[idx], signs[4 * ib + l]));
            }
        }
        break;
    }
    case EK_GGML_IQ3_XXS: { // d, qs[64] grid indices, 8 × uint32 (4×7 sign bits, 4-bit scale)
        o->d = ek_half_to_float(ek_load_u16(b));
        const uint8_t *q3 = b + 2, *gas = b + 66;
        for (int ib = 0; ib < 8; ib++) {
            const uint32_t a = load_u32(gas + 4 * ib);
            o->s[ib] = (int32_t)(2 * (a >> 28) + 1);
            for (int l = 0; l < 4; l++) {
                const uint64_t g = ggml_iq3xxs_grid[q3[8 * ib + 2 * l]] | ((uint64_t)ggml_iq3xxs_grid[q3[8 * ib + 2 * l + 1]] << 32);
                store_u64(v + 32 * ib + 8 * l, with_signs(g, ggml_ksigns_iq2xs[(a >> (7 * l)) & 127]));
            }
        }
        break;
    }
    case EK_GGML_IQ3_S: { // d, qs[64], qh[8], signs[32], scales[4]
        o->d = ek_half_to_float(ek_load_u16(b));
        const uint8_t *qs = b + 2, *qh = b + 66, *signs = b + 74, *sc = b + 106;
        for (int ib = 0; ib < 8; ib++) {
            o->s[ib] = 2 * ((sc[ib / 2] >> (4 * (ib & 1))) & 0xF) + 1;
            for (int l = 0; l < 4; l++) {
                const int i1 = qs[8 * ib + 2 * l] | ((qh[ib] << (8 - 2 * l)) & 256);
                const int i2 = qs[8 * ib + 2 * l + 1] | ((qh[ib] << (7 - 2 * l)) & 256);
                const uint64_t g = ggml_iq3s_grid[i1] | ((uint64_t)ggml_iq3s_grid[i2] << 32);
                store_u64(v + 32 * ib + 8 * l, with_signs(g, signs[4 * ib + l]));
            }
        }
        break;
    }
    case EK_GGML_IQ1_S: { // d, qs[32], qh[8] (uint16: 4×3 index bits, 3-bit scale, delta sign)
        o->d = ek_half_to_float(ek_load_u16(b));
        const uint8_t *qs = b + 2;
        for (int ib = 0; ib < 8; ib++) {
            const uint16_t qh = ek_load_u16(b + 34 + 2 * ib);
            const int ls = 2 * ((qh >> 12) & 7) + 1;
            o->s[ib] = ls;
            o->e[ib] = (qh & 0x8000) ? -ls : ls;
            for (int l = 0; l < 4; l++)
                store_u64(v + 32 * ib + 8 * l, ggml_iq1s_grid[qs[4 * ib + l] | (((qh >> (3 * l)) & 7) << 8)]);
        }
        break;
    }
    case EK_GGML_IQ1_M: { // qs[32], qh[16], scales[8] (4 × uint16; top nibbles: the fp16 d)
        const uint8_t *qs = b, *qh = b + 32;
        uint16_t sc[4];
        for (int i = 0; i < 4; i++) sc[i] = ek_load_u16(b + 48 + 2 * i);
        const uint16_t d16 = (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000));
        o->d = ek_half_to_float(d16);
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *h = qh + 2 * ib;
            o->s[2 * ib] = 2 * ((sc[ib / 2] >> (6 * (ib % 2))) & 7) + 1;
            o->s[2 * ib + 1] = 2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 7) + 1;
            for (int l = 0; l < 4; l++) {
                const uint64_t g = ggml_iq1s_grid[qs[4 * ib + l] | (((uint16_t)h[l / 2] << (8 - 4 * (l % 2))) & 0x700)];
                const uint64_t delta = (h[l / 2] & (l % 2 ? 0x80 : 0x08)) ? 0xFFFFFFFFFFFFFFFFull : 0x0101010101010101ull;
                // 8·grid + delta, byte-wise (grid bytes −1, 0, 1)
                store_u64(v + 32 * ib + 8 * l, add_bytes((g << 3) & 0xF8F8F8F8F8F8F8F8ull, delta));
            }
        }
        break;
    }
    case EK_GGML_IQ4_XS: { // d, scales_h (uint16), scales_l[4], qs[128]
        o->d = ek_half_to_float(ek_load_u16(b));
        const uint16_t sh = ek_load_u16(b + 2);
        const uint8_t *sl = b + 4, *qs = b + 8;
        for (int ib = 0; ib < 8; ib++) {
            const int ls = ((sl[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((sh >> (2 * ib)) & 3) << 4);
            o->s[ib] = ls - 32;
            for (int j = 0; j < 16; j++) {
                v[32 * ib + j] = ggml_kvalues_iq4nl[qs[16 * ib + j] & 0xF];
                v[32 * ib + 16 + j] = ggml_kvalues_iq4nl[qs[16 * ib + j] >> 4];
            }
        }
        break;
    }
    }
}

/// sumf after one more super-block from its exact group sums p[g] = Σ_{k∈g} v_k·x_k: ggml's integer
/// combination and f32 expression (see the file comment).
static inline float sb_finish(const iq_info *ti, const int32_t *p, const iq_meta *sb, const uint8_t *xb, float sumf) {
    float dx;
    memcpy(&dx, xb, 4);
    if (ti->mode == M_IQ4XS) {
        const float d4d8 = sb->d * dx;
        for (int g = 0; g < 8; g++) sumf += (d4d8 * (float)sb->s[g]) * (float)p[g];
        return sumf;
    }
    int32_t isum = 0;
    for (int g = 0; g < ti->groups; g++) isum += sb->s[g] * p[g];
    const float dd = sb->d * dx;
    if (ti->mode == M_INT) return sumf + dd * (float)isum;
    if (ti->mode == M_IQ1M) return sumf + dd * (0.125f * (float)isum);
    // M_IQ1S
    int32_t isum1 = 0;
    for (int ib = 0; ib < 8; ib++) {
        int16_t b0, b1;
        memcpy(&b0, xb + GGML_Q8_K_BSUMS_OFFSET + 4 * ib, 2);
        memcpy(&b1, xb + GGML_Q8_K_BSUMS_OFFSET + 4 * ib + 2, 2);
        isum1 += sb->e[ib] * (b0 + b1);
    }
    return sumf + dd * ((float)isum + 0.125f * (float)isum1);
}

/// sumf after one more super-block, portable C (inlined, so that an AVX2 caller vectorizes it).
static inline __attribute__((always_inline)) float sb_dot(const iq_info *ti, const int8_t *v, const iq_meta *sb, const uint8_t *xb, float sumf) {
    const int8_t *x = (const int8_t *)(xb + GGML_Q8_K_QS_OFFSET);
    const int G = ti->groups, n = QK / G;
    int32_t p[16];
    for (int g = 0; g < G; g++) {
        int32_t acc = 0;
        for (int j = 0; j < n; j++) acc += (int32_t)v[g * n + j] * x[g * n + j];
        p[g] = acc;
    }
    return sb_finish(ti, p, sb, xb, sumf);
}

#define VEC_DOT_BODY                                                                                          \
    {                                                                                                         \
        int8_t v[QK];                                                                                         \
        iq_meta m;                                                                                            \
        float sumf = 0;                                                                                       \
        for (int b = 0; b < nb; b++) {                                                                        \
            iq_decode(t, w + (size_t)b * ti->block_bytes, v, &m);                                             \
            sumf = sb_dot(ti, v, &m, xq + (size_t)b * Q8K_BYTES, sumf);                                       \
        }                                                                                                     \
        *out = ti->has_post ? ti->post * sumf : sumf;                                                         \
    }

static void vec_dot_generic(const iq_info *ti, int t, int nb, const uint8_t *w, const uint8_t *xq, float *out) VEC_DOT_BODY

#if EK_X86
/// The same C compiled for AVX2 (the integer dot products vectorize with vpmaddwd); same bits.
EK_AVX2 static void vec_dot_avx2(const iq_info *ti, int t, int nb, const uint8_t *w, const uint8_t *xq, float *out) VEC_DOT_BODY
#endif

/// Portable GEMM: decode a few rows once, then run every token over them.
static void gemm_generic(const iq_info *ti, int t, const uint8_t *w, size_t rb, int64_t r0, int64_t r1,
                         const uint8_t *xq, size_t xrb, int64_t ntok, int nb, float *y, size_t ldy) {
    enum { RB = 8 };
    int8_t *v = (int8_t *)malloc((size_t)QK * nb * RB);
    iq_meta *m = (iq_meta *)malloc(sizeof(iq_meta) * (size_t)nb * RB);
    if (!v || !m) { // no memory for the decoded rows: one row at a time through vec_dot
        free(v); free(m);
        for (int64_t tk = 0; tk < ntok; tk++)
            for (int64_t r = r0; r < r1; r++)
                vec_dot_generic(ti, t, nb, w + (size_t)r * rb, xq + (size_t)tk * xrb, &y[(size_t)tk * ldy + (size_t)r]);
        return;
    }
    for (int64_t r = r0; r < r1; r += RB) {
        const int nr = (int)(r1 - r < RB ? r1 - r : RB);
        for (int i = 0; i < nr; i++)
            for (int b = 0; b < nb; b++)
                iq_decode(t, w + (size_t)(r + i) * rb + (size_t)b * ti->block_bytes, v + ((size_t)i * nb + b) * QK, &m[i * nb + b]);
        for (int64_t tk = 0; tk < ntok; tk++) {
            const uint8_t *x = xq + (size_t)tk * xrb;
            for (int i = 0; i < nr; i++) {
                float sumf = 0;
                for (int b = 0; b < nb; b++)
                    sumf = sb_dot(ti, v + ((size_t)i * nb + b) * QK, &m[i * nb + b], x + (size_t)b * Q8K_BYTES, sumf);
                y[(size_t)tk * ldy + (size_t)(r + i)] = ti->has_post ? ti->post * sumf : sumf;
            }
        }
    }
    free(v);
    free(m);
}

#if EK_X86
// ---------------------------------------------------------------------------------------------
// Panel of 32 rows (shared by the AVX-512 and AVX2 tiles).
//   panel: per super-block b, column quad kq, row half h: 64 bytes = 16 rows × 4 signed bytes
//   sc:    int32 [nb][groups][32]  integer group scales (iq4_xs: as f32, ls − 32)
//   cr:    int32 [nb][32] (iq4_xs: [nb][8][32])  −128·Σ_g s_g·Σ v (iq4_xs: −128·Σ_{k∈g} v)
//   ex:    int32 [nb][8][32]  iq1_s: (ls·delta, ls·delta) as an int16 pair
//   dw:    f32 [nb][32]  d
//   vbuf:  16 decoded rows of one super-block (scratch)
typedef struct {
    int8_t *panel, *vbuf;
    int32_t *sc, *cr, *ex;
    float *dw;
} iq_panel;

static void panel_free(iq_panel *p) {
    free(p->panel); free(p->vbuf); free(p->sc); free(p->cr); free(p->ex); free(p->dw);
}

static int panel_alloc(iq_panel *p, int nb) {
    p->panel = (int8_t *)aligned_alloc(64, (size_t)nb * 64 * 128);
    p->vbuf = (int8_t *)aligned_alloc(64, 16 * QK);
    p->sc = (int32_t *)aligned_alloc(64, (size_t)nb * 16 * 32 * 4);
    p->cr = (int32_t *)aligned_alloc(64, (size_t)nb * 8 * 32 * 4);
    p->ex = (int32_t *)aligned_alloc(64, (size_t)nb * 8 * 32 * 4);
    p->dw = (float *)aligned_alloc(64, (size_t)nb * 32 * 4);
    if (p->panel && p->vbuf && p->sc && p->cr && p->ex && p->dw) return 1;
    panel_free(p);
    return 0;
}

typedef void (*iq_decoder)(int, const uint8_t *, int8_t *, iq_meta *);

/// Decodes rows r + 16h … r + 16h + 15 (zeros past `rend`) of super-block b into p->vbuf and
/// their scales into the panel's tables.
static void decode16(const iq_info *ti, int t, iq_decoder dec, const uint8_t *w, size_t rb, int64_t r, int64_t rend, int b, int h, iq_panel *p) {
    const int G = ti->groups;
    for (int i = 0; i < 16; i++) {
        const int ri = 16 * h + i;
        int8_t *v = p->vbuf + i * QK;
        iq_meta m;
        if (r + ri < rend) {
            const uint8_t *blk = w + (size_t)(r + ri) * rb + (size_t)b * ti->block_bytes;
            __builtin_prefetch(blk + 4 * ti->block_bytes); // the rows are 32 interleaved streams
            dec(t, blk, v, &m);
        } else {
            memset(v, 0, QK);
            memset(&m, 0, sizeof m);
        }
        p->dw[b * 32 + ri] = m.d;
        if (ti->mode == M_IQ4XS) {
            for (int g = 0; g < 8; g++) {
                const float f = (float)m.s[g];
                memcpy(&p->sc[((size_t)b * 8 + g) * 32 + ri], &f, 4);
            }
        } else {
            for (int g = 0; g < G; g++) p->sc[((size_t)b * G + g) * 32 + ri] = m.s[g];
        }
        if (ti->mode == M_IQ1S)
            for (int g = 0; g < 8; g++) {
                const uint32_t e = (uint16_t)(int16_t)m.e[g];
                p->ex[((size_t)b * 8 + g) * 32 + ri] = (int32_t)(e | (e << 16));
            }
    }
}

/// Activations as unsigned bytes xu = x + 128, row t at xu + t·nb·256.
static uint8_t *make_xu(const uint8_t *xq, size_t xrb, int64_t ntok, int nb) {
    uint8_t *xu = (uint8_t *)aligned_alloc(64, (size_t)ntok * nb * QK);
    if (!xu) return NULL;
    for (int64_t t = 0; t < ntok; t++)
        for (int b = 0; b < nb; b++) {
            const uint8_t *s = xq + (size_t)t * xrb + (size_t)b * Q8K_BYTES + GGML_Q8_K_QS_OFFSET;
            uint8_t *o = xu + ((size_t)t * nb + b) * QK;
            for (int j = 0; j < QK; j++) o[j] = (uint8_t)(s[j] ^ 0x80);
        }
    return xu;
}

static inline float load_f32(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}

static inline int32_t load_i32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

// ---------------------------------------------------------------------------------------------
// AVX-512 decoding, packing, and the row-by-row path.

/// ggml's ksigns_iq2xs for 16 bytes of 7-bit indices, computed: every entry of the table is the
/// index with its parity in bit 7 (ksigns_iq2xs[i] = i | parity(i) << 7, checked for all 128).
EK_AVX512 static inline __m128i ksigns16(__m128i i7) {
    const __m128i par4 = _mm_setr_epi8(0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0), m15 = _mm_set1_epi8(15);
    const __m128i par = _mm_xor_si128(_mm_shuffle_epi8(par4, _mm_and_si128(i7, m15)),
                                      _mm_shuffle_epi8(par4, _mm_and_si128(_mm_srli_epi16(i7, 4), m15)));
    return _mm_or_si128(i7, _mm_slli_epi16(par, 7));
}

/// The 8 sign bytes of two iq2_xxs/iq3_xxs words (4 × 7-bit indices each) as a 64-value mask.
EK_AVX512 static inline __mmask64 xxs_signs(uint32_t a, uint32_t b) {
    const __m256i w = _mm256_setr_epi32((int)a, (int)a, (int)a, (int)a, (int)b, (int)b, (int)b, (int)b);
    const __m256i i7 = _mm256_and_si256(_mm256_srlv_epi32(w, _mm256_setr_epi32(0, 7, 14, 21, 0, 7, 14, 21)), _mm256_set1_epi32(127));
    return _cvtu64_mask64((uint64_t)_mm_cvtsi128_si64(ksigns16(_mm256_cvtepi32_epi8(i7))));
}

/// `iq_decode` with AVX-512: lattice points gathered, signs applied with a byte mask. Same output.
EK_AVX512 static void iq_decode512(int t, const uint8_t *b, int8_t *v, iq_meta *o) {
    const __m512i z = _mm512_setzero_si512();
    switch (t) {
    case EK_GGML_IQ2_XXS: {
        o->d = ek_half_to_float(ek_load_u16(b));
        const uint8_t *q = b + 2;
        for (int c = 0; c < 4; c++) {
            const __m128i raw = _mm_loadu_si128((const __m128i *)(q + 16 * c));
            const __m512i idx = _mm512_cvtepu8_epi64(_mm_shuffle_epi8(raw, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, -1, -1, -1, -1, -1, -1, -1, -1)));
            const __m512i g = _mm512_i64gather_epi64(idx, (const void *)ggml_iq2xxs_grid, 8);
            const uint32_t a0 = load_u32(q + 16 * c + 4), a1 = load_u32(q + 16 * c + 12);
            o->s[2 * c] = (int32_t)(2 * (a0 >> 28) + 1);
            o->s[2 * c + 1] = (int32_t)(2 * (a1 >> 28) + 1);
            _mm512_store_si512(v + 64 * c, _mm512_mask_sub_epi8(g, xxs_signs(a0, a1), z, g));
        }
        break;
    }
    case EK_GGML_IQ2_XS: {
        o->d = ek_half_to_float(ek_load_u16(b));
        const uint8_t *sc = b + 66;
        for (int ib = 0; ib < 8; ib++) {
            o->s[2 * ib] = 2 * (sc[ib] & 0xF) + 1;
            o->s[2 * ib + 1] = 2 * (sc[ib] >> 4) + 1;
        }
        for (int c = 0; c < 4; c++) {
            const __m128i raw = _mm_loadu_si128((const __m128i *)(b + 2 + 16 * c));
            const __m512i idx = _mm512_and_si512(_mm512_cvtepu16_epi64(raw), _mm512_set1_epi64(511));
            const __m512i g = _mm512_i64gather_epi64(idx, (const void *)ggml_iq2xs_grid, 8);
            const __m128i i7 = _mm_packus_epi16(_mm_srli_epi16(raw, 9), _mm_setzero_si128());
            const __mmask64 k = _cvtu64_mask64((uint64_t)_mm_cvtsi128_si64(ksigns16(i7)));
            _mm512_store_si512(v + 64 * c, _mm512_mask_sub_epi8(g, k, z, g));
        }
        break;
    }
    case EK_GGML_IQ2_S: {
        o->d = ek_half_to_float(ek_load_u16(b));
        const uint8_t *qs = b + 2, *signs = b + 34, *qh = b + 66, *sc = b + 74;
        for (int ib = 0; ib < 8; ib++) {
            o->s[2 * ib] = 2 * (sc[ib] & 0xF) + 1;
            o->s[2 * ib + 1] = 2 * (sc[ib] >> 4) + 1;
        }
        for (int c = 0; c < 4; c++) {
            // index j = qs[8c + j] | ((qh[2c + j/4] >> 2·(j%4)) & 3) << 8: bits 2j, 2j+1 of qh[2c] | qh[2c+1] << 8
            const __m512i hb = _mm512_set1_epi64(ek_load_u16(qh + 2 * c));
            const __m512i hi = _mm512_slli_epi64(_mm512_and_si512(_mm512_srlv_epi64(hb, _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14)), _mm512_set1_epi64(3)), 8);
            const __m512i idx = _mm512_or_si512(_mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i *)(qs + 8 * c))), hi);
            const __m512i g = _mm512_i64gather_epi64(idx, (const void *)ggml_iq2s_grid, 8);
            uint64_t sg;
            memcpy(&sg, signs + 8 * c, 8);
            _mm512_store_si512(v + 64 * c, _mm512_mask_sub_epi8(g, _cvtu64_mask64(sg), z, g));
        }
        break;
    }
    case EK_GGML_IQ3_XXS: {
        o->d = ek_half_to_float(ek_load_u16(b));
        const uint8_t *q3 = b + 2, *gas = b + 66;
        for (int c = 0; c < 4; c++) {
            const __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q3 + 16 * c)));
            const __m512i g = _mm512_i32gather_epi32(idx, (const void *)ggml_iq3xxs_grid, 4);
            const uint32_t a0 = load_u32(gas + 8 * c), a1 = load_u32(gas + 8 * c + 4);
            o->s[2 * c] = (int32_t)(2 * (a0 >> 28) + 1);
            o->s[2 * c + 1] = (int32_t)(2 * (a1 >> 28) + 1);
            _mm512_store_si512(v + 64 * c, _mm512_mask_sub_epi8(g, xxs_signs(a0, a1), z, g));
        }
        break;
    }
    case EK_GGML_IQ3_S: {
        o->d = ek_half_to_float(ek_load_u16(b));
        const uint8_t *qs = b + 2, *qh = b + 66, *signs = b + 74, *sc = b + 106;
        for (int ib = 0; ib < 8; ib++) o->s[ib] = 2 * ((sc[ib / 2] >> (4 * (ib & 1))) & 0xF) + 1;
        for (int c = 0; c < 4; c++) {
            // index j = qs[16c + j] | bit j of (qh[2c] | qh[2c+1] << 8) << 8
            const __m512i lo = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs + 16 * c)));
            const __m512i idx = _mm512_mask_or_epi32(lo, _cvtu32_mask16(ek_load_u16(qh + 2 * c)), lo, _mm512_set1_epi32(256));
            const __m512i g = _mm512_i32gather_epi32(idx, (const void *)ggml_iq3s_grid, 4);
            uint64_t sg;
            memcpy(&sg, signs + 8 * c, 8);
            _mm512_store_si512(v + 64 * c, _mm512_mask_sub_epi8(g, _cvtu64_mask64(sg), z, g));
        }
        break;
    }
    case EK_GGML_IQ1_S: {
        o->d = ek_half_to_float(ek_load_u16(b));
        const uint8_t *qs = b + 2;
        for (int ib = 0; ib < 8; ib++) {
            const uint16_t qh = ek_load_u16(b + 34 + 2 * ib);
            const int ls = 2 * ((qh >> 12) & 7) + 1;
            o->s[ib] = ls;
            o->e[ib] = (qh & 0x8000) ? -ls : ls;
        }
        for (int c = 0; c < 4; c++) {
            const long long h0 = ek_load_u16(b + 34 + 4 * c), h1 = ek_load_u16(b + 36 + 4 * c);
            const __m512i hb = _mm512_setr_epi64(h0, h0, h0, h0, h1, h1, h1, h1);
            const __m512i hi = _mm512_slli_epi64(_mm512_and_si512(_mm512_srlv_epi64(hb, _mm512_setr_epi64(0, 3, 6, 9, 0, 3, 6, 9)), _mm512_set1_epi64(7)), 8);
            const __m512i idx = _mm512_or_si512(_mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i *)(qs + 8 * c))), hi);
            _mm512_store_si512(v + 64 * c, _mm512_i64gather_epi64(idx, (const void *)ggml_iq1s_grid, 8));
        }
        break;
    }
    case EK_GGML_IQ1_M: {
        const uint8_t *qs = b, *qh = b + 32;
        uint16_t sc[4];
        for (int i = 0; i < 4; i++) sc[i] = ek_load_u16(b + 48 + 2 * i);
        const uint16_t d16 = (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000));
        o->d = ek_half_to_float(d16);
        for (int ib = 0; ib < 8; ib++) {
            o->s[2 * ib] = 2 * ((sc[ib / 2] >> (6 * (ib % 2))) & 7) + 1;
            o->s[2 * ib + 1] = 2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 7) + 1;
        }
        for (int c = 0; c < 4; c++) {
            // 8-value group j of the chunk: nibble j of qh[4c…4c+3] (3 index bits, delta sign in bit 3)
            const __m512i nib = _mm512_and_si512(_mm512_srlv_epi64(_mm512_set1_epi64(load_u32(qh + 4 * c)), _mm512_setr_epi64(0, 4, 8, 12, 16, 20, 24, 28)), _mm512_set1_epi64(15));
            const __m512i idx = _mm512_or_si512(_mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i *)(qs + 8 * c))),
                                                _mm512_slli_epi64(_mm512_and_si512(nib, _mm512_set1_epi64(7)), 8));
            const __m512i g = _mm512_i64gather_epi64(idx, (const void *)ggml_iq1s_grid, 8);
            const __mmask8 neg = _mm512_test_epi64_mask(nib, _mm512_set1_epi64(8));
            const __m512i delta = _mm512_mask_blend_epi64(neg, _mm512_set1_epi8(1), _mm512_set1_epi8(-1));
            const __m512i g8 = _mm512_and_si512(_mm512_slli_epi16(g, 3), _mm512_set1_epi8((char)0xF8));
            _mm512_store_si512(v + 64 * c, _mm512_add_epi8(g8, delta));
        }
        break;
    }
    case EK_GGML_IQ4_XS: {
        o->d = ek_half_to_float(ek_load_u16(b));
        const uint16_t sh = ek_load_u16(b + 2);
        const uint8_t *sl = b + 4, *qs = b + 8;
        for (int ib = 0; ib < 8; ib++) {
            const int ls = ((sl[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((sh >> (2 * ib)) & 3) << 4);
            o->s[ib] = ls - 32;
        }
        const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)ggml_kvalues_iq4nl)), m15 = _mm256_set1_epi8(15);
        for (int c = 0; c < 4; c++) {
            const __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            const __m256i lo = _mm256_shuffle_epi8(kv, _mm256_and_si256(raw, m15));
            const __m256i hi = _mm256_shuffle_epi8(kv, _mm256_and_si256(_mm256_srli_epi16(raw, 4), m15));
            // [lo(ib 2c), lo(ib 2c+1), hi(2c), hi(2c+1)] → [lo 2c, hi 2c, lo 2c+1, hi 2c+1]
            const __m512i x = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
            _mm512_store_si512(v + 64 * c, _mm512_shuffle_i64x2(x, x, 0xD8));
        }
        break;
    }
    }
}

/// Rows [r0, r1) × ntok tokens one row at a time: each super-block decoded once (AVX-512), then per
/// token its exact group sums with vpdpbusd (xu = x ^ 0x80 against v, minus 128·Σ v) and ggml's
/// epilogue. For a few tokens, where the panel does not pay, and for `ek_vec_dot_iq`.
EK_AVX512 static void rows512(const iq_info *ti, int t, const uint8_t *w, size_t rb, int64_t r0, int64_t r1,
                              const uint8_t *xq, size_t xrb, int64_t ntok, int nb, float *y, size_t ldy) {
    enum { MAXT = 4 };
    _Alignas(64) int8_t v[QK];
    _Alignas(64) int32_t p[16];
    const __m512i ones = _mm512_set1_epi8(1), flip = _mm512_set1_epi8((char)0x80);
    // u (below): slot 4L + m = the sum of 128-bit lane L of chunk m. Group sums: G = 16:
    // p_g = u[4(g%4) + g/4]; G = 8: p_g = u[8(g%2) + g/2] + u[8(g%2) + 4 + g/2].
    const __m512i i16 = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m512i i8a = _mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i i8b = _mm512_setr_epi32(4, 12, 5, 13, 6, 14, 7, 15, 0, 0, 0, 0, 0, 0, 0, 0);
    for (int64_t t0 = 0; t0 < ntok; t0 += MAXT) {
        const int nt = (int)(ntok - t0 < MAXT ? ntok - t0 : MAXT);
        for (int64_t r = r0; r < r1; r++) {
            float sumf[MAXT] = {0};
            for (int b = 0; b < nb; b++) {
                iq_meta m;
                iq_decode512(t, w + (size_t)r * rb + (size_t)b * ti->block_bytes, v, &m);
                const __m512i sv = _mm512_maskz_loadu_epi32(ti->groups == 16 ? 0xFFFF : 0x00FF, m.s);
                __m512i vc[4], nq[4];
                for (int c = 0; c < 4; c++) {
                    vc[c] = _mm512_load_si512(v + 64 * c);
                    nq[c] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, vc[c]), 7));
                }
                for (int j = 0; j < nt; j++) {
                    const uint8_t *xb = xq + (size_t)(t0 + j) * xrb + (size_t)b * Q8K_BYTES;
                    __m512i dp[4];
                    for (int c = 0; c < 4; c++)
                        dp[c] = _mm512_dpbusd_epi32(nq[c], _mm512_xor_si512(_mm512_loadu_si512(xb + GGML_Q8_K_QS_OFFSET + 64 * c), flip), vc[c]);
                    const __m512i t1 = _mm512_add_epi32(_mm512_unpacklo_epi32(dp[0], dp[1]), _mm512_unpackhi_epi32(dp[0], dp[1]));
                    const __m512i t2 = _mm512_add_epi32(_mm512_unpacklo_epi32(dp[2], dp[3]), _mm512_unpackhi_epi32(dp[2], dp[3]));
                    const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t1, t2), _mm512_unpackhi_epi64(t1, t2));
                    const __m512i pv = ti->groups == 16 ? _mm512_permutexvar_epi32(i16, u)
                                                        : _mm512_add_epi32(_mm512_permutexvar_epi32(i8a, u), _mm512_permutexvar_epi32(i8b, u));
                    if (ti->mode == M_INT) { // sb_finish, with isum reduced in a vector
                        const float dd = m.d * load_f32(xb);
                        sumf[j] = sumf[j] + dd * (float)_mm512_reduce_add_epi32(_mm512_mullo_epi32(pv, sv));
                    } else if (ti->mode == M_IQ1M) {
                        const float dd = m.d * load_f32(xb);
                        sumf[j] = sumf[j] + dd * (0.125f * (float)_mm512_reduce_add_epi32(_mm512_mullo_epi32(pv, sv)));
                    } else {
                        _mm512_store_si512(p, pv);
                        sumf[j] = sb_finish(ti, p, &m, xb, sumf[j]);
                    }
                }
            }
            for (int j = 0; j < nt; j++) y[(size_t)(t0 + j) * ldy + (size_t)r] = ti->has_post ? ti->post * sumf[j] : sumf[j];
        }
    }
}

/// The 16 decoded rows in p->vbuf → their −128·Σ corrections and the panel (16×16 transposes of
/// 4-byte quads: 64 bytes of a row hold 16 quads; the panel wants one quad of 16 rows per 64 bytes).
EK_AVX512 static void finish16_512(const iq_info *ti, int b, int h, iq_panel *p) {
    const int G = ti->groups;
    const __m512i ones = _mm512_set1_epi8(1), lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const int qshift = G == 16 ? 2 : 3; // quads per group: 4 or 8
    for (int i = 0; i < 16; i++) {
        const int ri = 16 * h + i;
        const int8_t *v = p->vbuf + i * QK;
        __m512i qsum[4];
        for (int c = 0; c < 4; c++) qsum[c] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, _mm512_load_si512(v + 64 * c));
        if (ti->mode == M_IQ4XS) {
            for (int c = 0; c < 4; c++) {
                p->cr[((size_t)b * 8 + 2 * c) * 32 + ri] = -128 * _mm512_mask_reduce_add_epi32(0x00FF, qsum[c]);
                p->cr[((size_t)b * 8 + 2 * c + 1) * 32 + ri] = -128 * _mm512_mask_reduce_add_epi32(0xFF00, qsum[c]);
            }
        } else {
            // this row's group scales, from the panel's table (stride 32)
            const __m512i sv = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), G == 16 ? 0xFFFF : 0x00FF,
                                                           _mm512_mullo_epi32(lane, _mm512_set1_epi32(32)),
                                                           p->sc + (size_t)b * G * 32 + ri, 4);
            __m512i acc = _mm512_setzero_si512();
            for (int c = 0; c < 4; c++) {
                const __m512i gi = _mm512_srli_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32(16 * c)), qshift);
                acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(qsum[c], _mm512_permutexvar_epi32(gi, sv)));
            }
            p->cr[(size_t)b * 32 + ri] = -128 * _mm512_reduce_add_epi32(acc);
        }
    }
    for (int c = 0; c < 4; c++) {
        __m512i a[16], bq[16];
        for (int i = 0; i < 16; i++) a[i] = _mm512_load_si512(p->vbuf + i * QK + 64 * c);
        for (int i = 0; i < 16; i += 2) {
            bq[i] = _mm512_unpacklo_epi32(a[i], a[i + 1]);
            bq[i + 1] = _mm512_unpackhi_epi32(a[i], a[i + 1]);
        }
        for (int i = 0; i < 16; i += 4) {
            a[i] = _mm512_unpacklo_epi64(bq[i], bq[i + 2]);
            a[i + 1] = _mm512_unpackhi_epi64(bq[i], bq[i + 2]);
            a[i + 2] = _mm512_unpacklo_epi64(bq[i + 1], bq[i + 3]);
            a[i + 3] = _mm512_unpackhi_epi64(bq[i + 1], bq[i + 3]);
        }
        // a[4i + m], 128-bit lane L: rows 4i…4i+3 of quad 4L + m
        int8_t *out = p->panel + ((size_t)b * 64 + 16 * c) * 128 + h * 64;
        for (int m = 0; m < 4; m++) {
            const __m512i c0 = _mm512_shuffle_i32x4(a[m], a[4 + m], 0x44), c1 = _mm512_shuffle_i32x4(a[m], a[4 + m], 0xEE);
            const __m512i c2 = _mm512_shuffle_i32x4(a[8 + m], a[12 + m], 0x44), c3 = _mm512_shuffle_i32x4(a[8 + m], a[12 + m], 0xEE);
            _mm512_store_si512(out + (size_t)m * 128, _mm512_shuffle_i32x4(c0, c2, 0x88));
            _mm512_store_si512(out + (size_t)(4 + m) * 128, _mm512_shuffle_i32x4(c0, c2, 0xDD));
            _mm512_store_si512(out + (size_t)(8 + m) * 128, _mm512_shuffle_i32x4(c1, c3, 0x88));
            _mm512_store_si512(out + (size_t)(12 + m) * 128, _mm512_shuffle_i32x4(c1, c3, 0xDD));
        }
    }
}

static void pack512(const iq_info *ti, int t, const uint8_t *w, size_t rb, int64_t r, int64_t rend, int nb, iq_panel *p) {
    for (int b = 0; b < nb; b++)
        for (int h = 0; h < 2; h++) {
            decode16(ti, t, iq_decode512, w, rb, r, rend, b, h, p);
            finish16_512(ti, b, h, p);
        }
}

// ---------------------------------------------------------------------------------------------
// AVX-512 VNNI: 32 rows (two zmm) × NT tokens. Per token: f32 row sums f, super-block integer sums
// t, group sums a. G groups per super-block (compile-time), MODE the epilogue.
#define IQ_TILE512(NAME, NT, REP, G, MODE)                                                                    \
    EK_AVX512 static void NAME(const iq_panel *P, int nb, const uint8_t *xu, const uint8_t *xq, size_t xrb,    \
                               float post, int has_post, float *y, size_t ldy, __mmask16 k0, __mmask16 k1) {  \
        const size_t xus = (size_t)nb * QK;                                                                   \
        REP(Z_DECL)                                                                                           \
        for (int b = 0; b < nb; b++) {                                                                        \
            const __m512 d0 = _mm512_loadu_ps(P->dw + b * 32), d1 = _mm512_loadu_ps(P->dw + b * 32 + 16);    \
            if (MODE == M_IQ4XS) {                                                                            \
                REP(Z_DD)                                                                                     \
            } else {                                                                                          \
                const __m512i c0 = _mm512_load_si512(P->cr + b * 32), c1 = _mm512_load_si512(P->cr + b * 32 + 16); \
                REP(Z_TINIT)                                                                                  \
            }                                                                                                 \
            for (int g = 0; g < (G); g++) {                                                                   \
                if (MODE == M_IQ4XS) {                                                                        \
                    const __m512i c0 = _mm512_load_si512(P->cr + (b * 8 + g) * 32), c1 = _mm512_load_si512(P->cr + (b * 8 + g) * 32 + 16); \
                    REP(Z_AINIT)                                                                              \
                } else {                                                                                      \
                    REP(Z_AZERO)                                                                              \
                }                                                                                             \
                const int8_t *pg = P->panel + ((size_t)b * 64 + g * (64 / (G))) * 128;                       \
                const size_t xo = (size_t)b * QK + (size_t)g * (QK / (G));                                    \
                for (int kq = 0; kq < 64 / (G); kq++) {                                                       \
                    const __m512i w0 = _mm512_load_si512(pg + kq * 128), w1 = _mm512_load_si512(pg + kq * 128 + 64); \
                    REP(Z_STEP)                                                                               \
                }                                                                                             \
                if (MODE == M_IQ4XS) {                                                                        \
                    const __m512 s0 = _mm512_load_ps((const float *)P->sc + (b * 8 + g) * 32), s1 = _mm512_load_ps((const float *)P->sc + (b * 8 + g) * 32 + 16); \
                    REP(Z_G4)                                                                                 \
                } else {                                                                                      \
                    const __m512i s0 = _mm512_load_si512(P->sc + (b * (G) + g) * 32), s1 = _mm512_load_si512(P->sc + (b * (G) + g) * 32 + 16); \
                    REP(Z_GADD)                                                                               \
                }                                                                                             \
            }                                                                                                 \
            if (MODE == M_INT) { REP(Z_FINT) }                                                                \
            if (MODE == M_IQ1M) { REP(Z_F1M) }                                                                \
            if (MODE == M_IQ1S) {                                                                             \
                REP(Z_AZERO)                                                                                  \
                for (int p = 0; p < 8; p++) {                                                                 \
                    const __m512i e0 = _mm512_load_si512(P->ex + (b * 8 + p) * 32), e1 = _mm512_load_si512(P->ex + (b * 8 + p) * 32 + 16); \
                    REP(Z_ESTEP)                                                                              \
                }                                                                                             \
                REP(Z_F1S)                                                                                    \
            }                                                                                                 \
        }                                                                                                     \
        if (has_post) { const __m512 pv = _mm512_set1_ps(post); REP(Z_POST) }                                \
        REP(Z_STORE)                                                                                          \
    }
#define Z_DECL(j) __m512 f0_##j = _mm512_setzero_ps(), f1_##j = _mm512_setzero_ps(), dd0_##j, dd1_##j;        \
                  __m512i t0_##j = _mm512_setzero_si512(), t1_##j = _mm512_setzero_si512(), a0_##j, a1_##j;   \
                  const uint8_t *x_##j = xu + (size_t)(j) * xus, *q_##j = xq + (size_t)(j) * xrb;             \
                  (void)dd0_##j; (void)dd1_##j; (void)t0_##j; (void)t1_##j;
/* d4d8 = d·d_x */
#define Z_DD(j) { const __m512 dx = _mm512_set1_ps(load_f32(q_##j + (size_t)b * Q8K_BYTES));                  \
                  dd0_##j = _mm512_mul_ps(d0, dx); dd1_##j = _mm512_mul_ps(d1, dx); }
#define Z_TINIT(j) t0_##j = c0; t1_##j = c1;
#define Z_AINIT(j) a0_##j = c0; a1_##j = c1;
#define Z_AZERO(j) a0_##j = _mm512_setzero_si512(); a1_##j = _mm512_setzero_si512();
#define Z_STEP(j) { const __m512i xv = _mm512_set1_epi32(load_i32(x_##j + xo + kq * 4));                      \
                    a0_##j = _mm512_dpbusd_epi32(a0_##j, xv, w0); a1_##j = _mm512_dpbusd_epi32(a1_##j, xv, w1); }
#define Z_GADD(j) t0_##j = _mm512_add_epi32(t0_##j, _mm512_mullo_epi32(a0_##j, s0));                          \
                  t1_##j = _mm512_add_epi32(t1_##j, _mm512_mullo_epi32(a1_##j, s1));
/* sumf += (d4d8·(ls − 32))·sumi */
#define Z_G4(j) f0_##j = _mm512_add_ps(f0_##j, _mm512_mul_ps(_mm512_mul_ps(dd0_##j, s0), _mm512_cvtepi32_ps(a0_##j))); \
                f1_##j = _mm512_add_ps(f1_##j, _mm512_mul_ps(_mm512_mul_ps(dd1_##j, s1), _mm512_cvtepi32_ps(a1_##j)));
/* sumf += (d·d_x)·isum */
#define Z_FINT(j) { const __m512 dx = _mm512_set1_ps(load_f32(q_##j + (size_t)b * Q8K_BYTES));                \
                    f0_##j = _mm512_add_ps(f0_##j, _mm512_mul_ps(_mm512_mul_ps(d0, dx), _mm512_cvtepi32_ps(t0_##j))); \
                    f1_##j = _mm512_add_ps(f1_##j, _mm512_mul_ps(_mm512_mul_ps(d1, dx), _mm512_cvtepi32_ps(t1_##j))); }
/* sumf += (d·d_x)·(0.125f·isum) */
#define Z_F1M(j) { const __m512 dx = _mm512_set1_ps(load_f32(q_##j + (size_t)b * Q8K_BYTES)), e8 = _mm512_set1_ps(0.125f); \
                   f0_##j = _mm512_add_ps(f0_##j, _mm512_mul_ps(_mm512_mul_ps(d0, dx), _mm512_mul_ps(e8, _mm512_cvtepi32_ps(t0_##j)))); \
                   f1_##j = _mm512_add_ps(f1_##j, _mm512_mul_ps(_mm512_mul_ps(d1, dx), _mm512_mul_ps(e8, _mm512_cvtepi32_ps(t1_##j)))); }
/* isum1 += (ls·delta)·(bsums[2p] + bsums[2p+1]) */
#define Z_ESTEP(j) { const __m512i bv = _mm512_set1_epi32(load_i32(q_##j + (size_t)b * Q8K_BYTES + GGML_Q8_K_BSUMS_OFFSET + p * 4)); \
                     a0_##j = _mm512_dpwssd_epi32(a0_##j, e0, bv); a1_##j = _mm512_dpwssd_epi32(a1_##j, e1, bv); }
/* sumf += (d·d_x)·(isum + 0.125f·isum1) */
#define Z_F1S(j) { const __m512 dx = _mm512_set1_ps(load_f32(q_##j + (size_t)b * Q8K_BYTES)), e8 = _mm512_set1_ps(0.125f); \
                   f0_##j = _mm512_add_ps(f0_##j, _mm512_mul_ps(_mm512_mul_ps(d0, dx), _mm512_add_ps(_mm512_cvtepi32_ps(t0_##j), _mm512_mul_ps(e8, _mm512_cvtepi32_ps(a0_##j))))); \
                   f1_##j = _mm512_add_ps(f1_##j, _mm512_mul_ps(_mm512_mul_ps(d1, dx), _mm512_add_ps(_mm512_cvtepi32_ps(t1_##j), _mm512_mul_ps(e8, _mm512_cvtepi32_ps(a1_##j))))); }
#define Z_POST(j) f0_##j = _mm512_mul_ps(pv, f0_##j); f1_##j = _mm512_mul_ps(pv, f1_##j);
#define Z_STORE(j) _mm512_mask_storeu_ps(y + (size_t)(j) * ldy, k0, f0_##j);                                   \
                   _mm512_mask_storeu_ps(y + (size_t)(j) * ldy + 16, k1, f1_##j);

#define IQ_TILES512(SUF, G, MODE)                                                                             \
    IQ_TILE512(z4_##SUF, 4, EK_REP4, G, MODE)                                                                 \
    IQ_TILE512(z1_##SUF, 1, EK_REP1, G, MODE)
IQ_TILES512(int8, 8, M_INT)
IQ_TILES512(int16, 16, M_INT)
IQ_TILES512(iq1s, 8, M_IQ1S)
IQ_TILES512(iq1m, 16, M_IQ1M)
IQ_TILES512(iq4xs, 8, M_IQ4XS)

typedef void (*tile_fn)(const iq_panel *, int, const uint8_t *, const uint8_t *, size_t, float, int, float *, size_t,
                        __mmask16, __mmask16);

static void gemm_avx512(const iq_info *ti, int t, const uint8_t *w, size_t rb, int64_t r0, int64_t r1,
                        const uint8_t *xq, size_t xrb, int64_t ntok, int nb, float *y, size_t ldy) {
    tile_fn f4, f1;
    switch (ti->mode) {
    case M_IQ1S: f4 = z4_iq1s; f1 = z1_iq1s; break;
    case M_IQ1M: f4 = z4_iq1m; f1 = z1_iq1m; break;
    case M_IQ4XS: f4 = z4_iq4xs; f1 = z1_iq4xs; break;
    default:
        if (ti->groups == 16) { f4 = z4_int16; f1 = z1_int16; } else { f4 = z4_int8; f1 = z1_int8; }
    }
    uint8_t *xu = make_xu(xq, xrb, ntok, nb);
    iq_panel P;
    if (!xu || !panel_alloc(&P, nb)) {
        free(xu);
        gemm_generic(ti, t, w, rb, r0, r1, xq, xrb, ntok, nb, y, ldy);
        return;
    }
    const size_t xus = (size_t)nb * QK;
    for (int64_t r = r0; r < r1; r += 32) {
        const int nrows = (int)(r1 - r < 32 ? r1 - r : 32);
        const __mmask16 k0 = nrows >= 16 ? 0xFFFF : (__mmask16)((1u << nrows) - 1);
        const __mmask16 k1 = nrows >= 32 ? 0xFFFF : nrows <= 16 ? 0 : (__mmask16)((1u << (nrows - 16)) - 1);
        pack512(ti, t, w, rb, r, r1, nb, &P);
        int64_t tk = 0;
        for (; tk + 4 <= ntok; tk += 4)
            f4(&P, nb, xu + (size_t)tk * xus, xq + (size_t)tk * xrb, xrb, ti->post, ti->has_post, y + (size_t)tk * ldy + r, ldy, k0, k1);
        for (; tk < ntok; tk++)
            f1(&P, nb, xu + (size_t)tk * xus, xq + (size_t)tk * xrb, xrb, ti->post, ti->has_post, y + (size_t)tk * ldy + r, ldy, k0, k1);
    }
    free(xu);
    panel_free(&P);
}

// ---------------------------------------------------------------------------------------------
// AVX2: the same panel, 8 rows (one ymm: half of a 64-byte row group) × NT tokens. The integer step
// is MAC(a, xu, w) with one of
//   VNNI  AVX-VNNI vpdpbusd
//   MADD  vpmaddubsw + vpmaddwd(1): exact, as |v| ≤ 62 and xu ≤ 255 keep each int16 pair sum ≤ 31620
//   MADD2 iq4_xs (|v| ≤ 127) without VNNI: v = 2·(v >> 1) + (v & 1), two exact vpmaddubsw
#define EK_AVX2VNNI __attribute__((target("avx2,fma,f16c,avxvnni")))

/// Arithmetic v >> 1 per byte.
EK_AVX2 static inline __m256i srai1_epi8(__m256i v) {
    const __m256i lo = _mm256_srai_epi16(_mm256_slli_epi16(v, 8), 9), hi = _mm256_srai_epi16(v, 1);
    return _mm256_blendv_epi8(lo, hi, _mm256_set1_epi16((short)0xFF00));
}

#define MAC_VNNI(a, xv, w) a = _mm256_dpbusd_avx_epi32(a, xv, w);
#define MAC_MADD(a, xv, w) a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_maddubs_epi16(xv, w), _mm256_set1_epi16(1)));
#define MAC_MADD2(a, xv, w) a = _mm256_add_epi32(a, _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(xv, w##h), _mm256_set1_epi16(2)), \
                                                                     _mm256_madd_epi16(_mm256_maddubs_epi16(xv, w##l), _mm256_set1_epi16(1))));
#define WPREP_VNNI(w)
#define WPREP_MADD(w)
#define WPREP_MADD2(w) const __m256i w##h = srai1_epi8(w), w##l = _mm256_and_si256(w, _mm256_set1_epi8(1));
/* isum1 += (ls·delta)·(bsums pair) */
#define DPW_VNNI(a, e, bv) a = _mm256_dpwssd_avx_epi32(a, e, bv);
#define DPW_MADD(a, e, bv) a = _mm256_add_epi32(a, _mm256_madd_epi16(e, bv));
#define DPW_MADD2 DPW_MADD

#define IQ_TILE256(NAME, ATTR, NT, REP, G, MODE, MAC)                                                          \
    ATTR static void NAME(const iq_panel *P, int nb, int o, const uint8_t *xu, const uint8_t *xq, size_t xrb,  \
                          float post, int has_post, float *y, size_t ldy, int nrows) {                        \
        const size_t xus = (size_t)nb * QK;                                                                    \
        const int po = (o >> 1) * 64 + (o & 1) * 32, ro = 8 * o; /* panel byte offset, row offset */          \
        REP(Y_DECL)                                                                                            \
        for (int b = 0; b < nb; b++) {                                                                         \
            const __m256 d0 = _mm256_loadu_ps(P->dw + b * 32 + ro);                                           \
            if (MODE != M_IQ4XS) {                                                                             \
                const __m256i c0 = _mm256_loadu_si256((const __m256i *)(P->cr + b * 32 + ro));                \
                REP(Y_TINIT)                                                                                   \
            }                                                                                                  \
            for (int g = 0; g < (G); g++) {                                                                    \
                if (MODE == M_IQ4XS) {                                                                         \
                    const __m256i c0 = _mm256_loadu_si256((const __m256i *)(P->cr + (b * 8 + g) * 32 + ro));  \
                    REP(Y_AINIT)                                                                               \
                } else {                                                                                       \
                    REP(Y_AZERO)                                                                               \
                }                                                                                              \
                const int8_t *pg = P->panel + ((size_t)b * 64 + g * (64 / (G))) * 128 + po;                   \
                const size_t xo = (size_t)b * QK + (size_t)g * (QK / (G));                                     \
                for (int kq = 0; kq < 64 / (G); kq++) {                                                        \
                    const __m256i w0 = _mm256_loadu_si256((const __m256i *)(pg + kq * 128));                  \
                    WPREP_##MAC(w0)                                                                            \
                    REP(Y_STEP_##MAC)                                                                          \
                }                                                                                              \
                if (MODE == M_IQ4XS) {                                                                         \
                    const __m256 s0 = _mm256_loadu_ps((const float *)P->sc + (b * 8 + g) * 32 + ro);          \
                    REP(Y_G4)                                                                                  \
                } else {                                                                                       \
                    const __m256i s0 = _mm256_loadu_si256((const __m256i *)(P->sc + (b * (G) + g) * 32 + ro)); \
                    REP(Y_GADD)                                                                                \
                }                                                                                              \
            }                                                                                                  \
            if (MODE == M_INT) { REP(Y_FINT) }                                                                 \
            if (MODE == M_IQ1M) { REP(Y_F1M) }                                                                 \
            if (MODE == M_IQ1S) {                                                                              \
                REP(Y_AZERO)                                                                                   \
                for (int p = 0; p < 8; p++) {                                                                  \
                    const __m256i e0 = _mm256_loadu_si256((const __m256i *)(P->ex + (b * 8 + p) * 32 + ro));  \
                    REP(Y_ESTEP_##MAC)                                                                         \
                }                                                                                              \
                REP(Y_F1S)                                                                                     \
            }                                                                                                  \
        }                                                                                                      \
        if (has_post) { const __m256 pv = _mm256_set1_ps(post); REP(Y_POST) }                                 \
        REP(Y_STORE)                                                                                           \
    }
#define Y_DECL(j) __m256 f_##j = _mm256_setzero_ps(); __m256i t_##j = _mm256_setzero_si256(), a_##j;           \
                  const uint8_t *x_##j = xu + (size_t)(j) * xus, *q_##j = xq + (size_t)(j) * xrb; (void)t_##j;
#define Y_TINIT(j) t_##j = c0;
#define Y_AINIT(j) a_##j = c0;
#define Y_AZERO(j) a_##j = _mm256_setzero_si256();
#define Y_STEP_VNNI(j) { const __m256i xv = _mm256_set1_epi32(load_i32(x_##j + xo + kq * 4)); MAC_VNNI(a_##j, xv, w0) }
#define Y_STEP_MADD(j) { const __m256i xv = _mm256_set1_epi32(load_i32(x_##j + xo + kq * 4)); MAC_MADD(a_##j, xv, w0) }
#define Y_STEP_MADD2(j) { const __m256i xv = _mm256_set1_epi32(load_i32(x_##j + xo + kq * 4)); MAC_MADD2(a_##j, xv, w0) }
#define Y_GADD(j) t_##j = _mm256_add_epi32(t_##j, _mm256_mullo_epi32(a_##j, s0));
#define Y_DX(j) const __m256 dx = _mm256_set1_ps(load_f32(q_##j + (size_t)b * Q8K_BYTES));
/* sumf += (d4d8·(ls − 32))·sumi */
#define Y_G4(j) { Y_DX(j) f_##j = _mm256_add_ps(f_##j, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(d0, dx), s0), _mm256_cvtepi32_ps(a_##j))); }
/* sumf += (d·d_x)·isum */
#define Y_FINT(j) { Y_DX(j) f_##j = _mm256_add_ps(f_##j, _mm256_mul_ps(_mm256_mul_ps(d0, dx), _mm256_cvtepi32_ps(t_##j))); }
/* sumf += (d·d_x)·(0.125f·isum) */
#define Y_F1M(j) { Y_DX(j) f_##j = _mm256_add_ps(f_##j, _mm256_mul_ps(_mm256_mul_ps(d0, dx), _mm256_mul_ps(_mm256_set1_ps(0.125f), _mm256_cvtepi32_ps(t_##j)))); }
#define Y_ESTEP_(j, DPW) { const __m256i bv = _mm256_set1_epi32(load_i32(q_##j + (size_t)b * Q8K_BYTES + GGML_Q8_K_BSUMS_OFFSET + p * 4)); DPW(a_##j, e0, bv) }
#define Y_ESTEP_VNNI(j) Y_ESTEP_(j, DPW_VNNI)
#define Y_ESTEP_MADD(j) Y_ESTEP_(j, DPW_MADD)
#define Y_ESTEP_MADD2(j) Y_ESTEP_(j, DPW_MADD)
/* sumf += (d·d_x)·(isum + 0.125f·isum1) */
#define Y_F1S(j) { Y_DX(j) f_##j = _mm256_add_ps(f_##j, _mm256_mul_ps(_mm256_mul_ps(d0, dx), _mm256_add_ps(_mm256_cvtepi32_ps(t_##j), _mm256_mul_ps(_mm256_set1_ps(0.125f), _mm256_cvtepi32_ps(a_##j))))); }
#define Y_POST(j) f_##j = _mm256_mul_ps(pv, f_##j);
#define Y_STORE(j) if (nrows >= 8) _mm256_storeu_ps(y + (size_t)(j) * ldy, f_##j);                              \
                   else { float tmp[8]; _mm256_storeu_ps(tmp, f_##j); memcpy(y + (size_t)(j) * ldy, tmp, sizeof(float) * (size_t)nrows); }

#define IQ_TILES256(SUF, ATTR, G, MODE, MAC)                                                                  \
    IQ_TILE256(y4_##SUF, ATTR, 4, EK_REP4, G, MODE, MAC)                                                      \
    IQ_TILE256(y1_##SUF, ATTR, 1, EK_REP1, G, MODE, MAC)
IQ_TILES256(int8_v, EK_AVX2VNNI, 8, M_INT, VNNI)
IQ_TILES256(int16_v, EK_AVX2VNNI, 16, M_INT, VNNI)
IQ_TILES256(iq1s_v, EK_AVX2VNNI, 8, M_IQ1S, VNNI)
IQ_TILES256(iq1m_v, EK_AVX2VNNI, 16, M_IQ1M, VNNI)
IQ_TILES256(iq4xs_v, EK_AVX2VNNI, 8, M_IQ4XS, VNNI)
IQ_TILES256(int8_m, EK_AVX2, 8, M_INT, MADD)
IQ_TILES256(int16_m, EK_AVX2, 16, M_INT, MADD)
IQ_TILES256(iq1s_m, EK_AVX2, 8, M_IQ1S, MADD)
IQ_TILES256(iq1m_m, EK_AVX2, 16, M_IQ1M, MADD)
IQ_TILES256(iq4xs_m, EK_AVX2, 8, M_IQ4XS, MADD2)

typedef void (*tile256_fn)(const iq_panel *, int, int, const uint8_t *, const uint8_t *, size_t, float, int, float *, size_t, int);

/// Whether the CPU has AVX-VNNI (CPUID.(7,1):EAX[4]); EDGEQUANT_AVXVNNI=0 turns it off (for tests).
static int has_avxvnni(void) {
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v >= 0) return v;
    unsigned a = 0, bx = 0, c = 0, d = 0;
    v = __get_cpuid_count(7, 1, &a, &bx, &c, &d) ? (int)((a >> 4) & 1) : 0;
    const char *env = getenv("EDGEQUANT_AVXVNNI");
    if (env && strcmp(env, "0") == 0) v = 0;
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return v;
}

/// The 16 decoded rows in p->vbuf → their −128·Σ corrections and the panel (portable C).
static void finish16_c(const iq_info *ti, int b, int h, iq_panel *p) {
    const int G = ti->groups, n = QK / G;
    for (int i = 0; i < 16; i++) {
        const int ri = 16 * h + i;
        const int8_t *v = p->vbuf + i * QK;
        int32_t corr = 0;
        for (int g = 0; g < G; g++) {
            int32_t vs = 0;
            for (int j = 0; j < n; j++) vs += v[g * n + j];
            if (ti->mode == M_IQ4XS) p->cr[((size_t)b * 8 + g) * 32 + ri] = -128 * vs;
            else corr += p->sc[((size_t)b * G + g) * 32 + ri] * vs;
        }
        if (ti->mode != M_IQ4XS) p->cr[(size_t)b * 32 + ri] = -128 * corr;
        for (int kq = 0; kq < 64; kq++) memcpy(p->panel + (((size_t)b * 64 + kq) * 2 + h) * 64 + i * 4, v + kq * 4, 4);
    }
}

static void gemm_avx2(const iq_info *ti, int t, const uint8_t *w, size_t rb, int64_t r0, int64_t r1,
                      const uint8_t *xq, size_t xrb, int64_t ntok, int nb, float *y, size_t ldy) {
    tile256_fn f4, f1;
    const int vnni = has_avxvnni();
    switch (ti->mode) {
    case M_IQ1S: f4 = vnni ? y4_iq1s_v : y4_iq1s_m; f1 = vnni ? y1_iq1s_v : y1_iq1s_m; break;
    case M_IQ1M: f4 = vnni ? y4_iq1m_v : y4_iq1m_m; f1 = vnni ? y1_iq1m_v : y1_iq1m_m; break;
    case M_IQ4XS: f4 = vnni ? y4_iq4xs_v : y4_iq4xs_m; f1 = vnni ? y1_iq4xs_v : y1_iq4xs_m; break;
    default:
        if (ti->groups == 16) { f4 = vnni ? y4_int16_v : y4_int16_m; f1 = vnni ? y1_int16_v : y1_int16_m; }
        else { f4 = vnni ? y4_int8_v : y4_int8_m; f1 = vnni ? y1_int8_v : y1_int8_m; }
    }
    uint8_t *xu = make_xu(xq, xrb, ntok, nb);
    iq_panel P;
    if (!xu || !panel_alloc(&P, nb)) {
        free(xu);
        gemm_generic(ti, t, w, rb, r0, r1, xq, xrb, ntok, nb, y, ldy);
        return;
    }
    const size_t xus = (size_t)nb * QK;
    for (int64_t r = r0; r < r1; r += 32) {
        const int nrows = (int)(r1 - r < 32 ? r1 - r : 32);
        for (int b = 0; b < nb; b++)
            for (int h = 0; h < 2; h++) {
                decode16(ti, t, iq_decode, w, rb, r, r1, b, h, &P);
                finish16_c(ti, b, h, &P);
            }
        for (int o = 0; o < 4 && 8 * o < nrows; o++) {
            const int nr = nrows - 8 * o < 8 ? nrows - 8 * o : 8;
            float *yo = y + r + 8 * o;
            int64_t tk = 0;
            for (; tk + 4 <= ntok; tk += 4)
                f4(&P, nb, o, xu + (size_t)tk * xus, xq + (size_t)tk * xrb, xrb, ti->post, ti->has_post, yo + (size_t)tk * ldy, ldy, nr);
            for (; tk < ntok; tk++)
                f1(&P, nb, o, xu + (size_t)tk * xus, xq + (size_t)tk * xrb, xrb, ti->post, ti->has_post, yo + (size_t)tk * ldy, ldy, nr);
        }
    }
    free(xu);
    panel_free(&P);
}
#endif

void ek_vec_dot_iq(int wtype, int64_t n, const void *w_row, const void *xq_row, float *out) {
    iq_info ti;
    if (!iq_info_for(wtype, &ti)) { *out = 0; return; }
#if EK_X86
    if (ek_cpu_level() == EK_LEVEL_AVX512) {
        rows512(&ti, wtype, (const uint8_t *)w_row, 0, 0, 1, (const uint8_t *)xq_row, 0, 1, (int)(n / QK), out, 0);
        return;
    }
    if (ek_cpu_level() == EK_LEVEL_AVX2) {
        vec_dot_avx2(&ti, wtype, (int)(n / QK), (const uint8_t *)w_row, (const uint8_t *)xq_row, out);
        return;
    }
#endif
    vec_dot_generic(&ti, wtype, (int)(n / QK), (const uint8_t *)w_row, (const uint8_t *)xq_row, out);
}

void ek_gemm_iq(int wtype, const void *w, size_t wrow_bytes, int64_t r0, int64_t r1,
                const void *xq, size_t xrow_bytes, int64_t ntok, int64_t k, float *y, size_t ldy) {
    iq_info ti;
    if (!iq_info_for(wtype, &ti) || r1 <= r0 || ntok <= 0) return;
    const int nb = (int)(k / QK);
#if EK_X86
    if (ek_cpu_level() == EK_LEVEL_AVX512 && ntok <= ROWS_MAX_TOKENS) {
        rows512(&ti, wtype, (const uint8_t *)w, wrow_bytes, r0, r1, (const uint8_t *)xq, xrow_bytes, ntok, nb, y, ldy);
        return;
    }
    if (ek_cpu_level() == EK_LEVEL_AVX512) {
        gemm_avx512(&ti, wtype, (const uint8_t *)w, wrow_bytes, r0, r1, (const uint8_t *)xq, xrow_bytes, ntok, nb, y, ldy);
        return;
    }
    if (ek_cpu_level() == EK_LEVEL_AVX2 && ntok == 1) { // the panel does not pay for one token
        for (int64_t r = r0; r < r1; r++)
            vec_dot_avx2(&ti, wtype, nb, (const uint8_t *)w + (size_t)r * wrow_bytes, (const uint8_t *)xq, y + r);
        return;
    }
    if (ek_cpu_level() == EK_LEVEL_AVX2) {
        gemm_avx2(&ti, wtype, (const uint8_t *)w, wrow_bytes, r0, r1, (const uint8_t *)xq, xrow_bytes, ntok, nb, y, ldy);
        return;
    }
#endif
    gemm_generic(&ti, wtype, (const uint8_t *)w, wrow_bytes, r0, r1, (const uint8_t *)xq, xrow_bytes, ntok, nb, y, ldy);
}
