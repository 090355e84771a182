// ggml-cpu's tiled flash attention (ggml_compute_forward_flash_attn_ext_tiled, GGML_FA_TILE_Q =
// GGML_FA_TILE_KV = 64), which llama.cpp runs on the CPU for every batch of ≥ 64 queries, i.e.
// for perplexity. Reproduced operation for operation as an AVX-512 build of ggml performs it:
// scores are one FMA chain over the head dimension, scaled, masked; per 64-key tile the running
// max and sum are updated with libm expf, probabilities come from ggml_v_expf and are summed per
// 16 lanes (reduction tree) into a double; V is accumulated as one FMA chain over the tile's keys.
// Masked keys contribute exact zeros, so only the keys a query can see are visited.
#include "CKernels.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>

#pragma STDC FP_CONTRACT OFF

enum { TQ = 64, TKV = 64 };

/// ggml_v_expf (the AVX-512 variant), one lane.
static inline float v_expf1(float x) {
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                         fmaf(0x1.ffffecp-1f, b, 1.0f));
    if (fabsf(n) > 192) return n <= 0 ? 0.0f : INFINITY;
    return ldexpf(j, (int)n);
}

/// _mm512_reduce_add_ps's tree over 16 lanes.
static inline float reduce16(const float *v) {
    float t8[8], t4[4];
    for (int i = 0; i < 8; i++) t8[i] = v[i + 8] + v[i];
    for (int i = 0; i < 4; i++) t4[i] = t8[i + 4] + t8[i];
    const float a = t4[0] + t4[2], b = t4[1] + t4[3];
    return a + b;
}

/// ggml_vec_soft_max_f32 for 64 values (AVX-512 build): y = v_expf(x − max), Σ per 16 in double.
static double softmax64_scalar(float *x, float max) {
    double sum = 0;
    for (int g = 0; g < TKV; g += 16) {
        for (int i = 0; i < 16; i++) x[g + i] = v_expf1(x[g + i] - max);
        sum += (double)reduce16(x + g);
    }
    return sum;
}

typedef struct {
    const float *Q;  // query rows of the tile, stride ldq
    size_t ldq;
    const float *KT; // the key tile transposed: KT[d·64 + j] (ek_attention_pack_k)
    const float *V;  // value rows of the key tile, stride ldv
    size_t ldv;
    float *KQ, *VKQ;
    float S[TQ], M[TQ];
} scratch;

/// KQ[i][j] = Σ_d Q[i][d]·KT[d][j] (FMA chain from 0), rows [0, nrows).
static void kq_scalar(scratch *s, int nrows, int64_t dk) {
    for (int i = 0; i < nrows; i++)
        for (int j = 0; j < TKV; j++) {
            float acc = 0;
            for (int64_t d = 0; d < dk; d++) acc = fmaf(s->KT[d * TKV + j], s->Q[i * s->ldq + d], acc);
            s->KQ[i * TKV + j] = acc;
        }
}

/// VKQ[i][e] += Σ_j KQ[i][j]·V32[j][e] (FMA chain continuing from VKQ), rows [0, nrows).
static void vkq_scalar(scratch *s, int nrows, int nkeys, int64_t dv) {
    for (int i = 0; i < nrows; i++)
        for (int64_t e = 0; e < dv; e++) {
            float acc = s->VKQ[i * dv + e];
            for (int j = 0; j < nkeys; j++) acc = fmaf(s->V[j * s->ldv + e], s->KQ[i * TKV + j], acc);
            s->VKQ[i * dv + e] = acc;
        }
}

#if EK_X86
EK_AVX512 static inline __m512 v_expf512(__m512 x) {
    const __m512 r = _mm512_set1_ps(0x1.8p23f);
    const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
    const __m512 n = _mm512_sub_ps(z, r);
    const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f), _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
    const __mmask16 d = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192), _CMP_GT_OQ);
    const __m512 u = _mm512_mul_ps(b, b);
    const __m512 j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
                        _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
        u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0F)));
    const __m512 res = _mm512_scalef_ps(j, n);
    if (_mm512_kortestz(d, d)) return res;
    const __m512 zero = _mm512_setzero_ps();
    const __m512 alt = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(n, zero, _CMP_LE_OQ), _mm512_set1_ps(INFINITY), zero);
    return _mm512_mask_blend_ps(d, res, alt);
}

EK_AVX512 static inline float reduce512(__m512 v) {
    const __m256 h = _mm256_add_ps(_mm512_extractf32x8_ps(v, 1), _mm512_castps512_ps256(v));
    const __m128 q = _mm_add_ps(_mm256_extractf128_ps(h, 1), _mm256_castps256_ps128(h));
    const __m128 p = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(p, _mm_movehdup_ps(p)));
}

EK_AVX512 static double softmax64_512(float *x, float max) {
    double sum = 0;
    const __m512 mv = _mm512_set1_ps(max);
    for (int g = 0; g < TKV; g += 16) {
        const __m512 val = v_expf512(_mm512_sub_ps(_mm512_loadu_ps(x + g), mv));
        _mm512_storeu_ps(x + g, val);
        sum += (double)reduce512(val);
    }
    return sum;
}

// 4 query rows × 64 keys (4 vectors): 16 accumulators, one FMA chain per score.
#define EK_KQ_DECL(a) __m512 c##a##0 = _mm512_setzero_ps(), c##a##1 = c##a##0, c##a##2 = c##a##0, c##a##3 = c##a##0; \
                      const float *q##a = s->Q + (size_t)(i + a) * s->ldq;
#define EK_KQ_STEP(a) { const __m512 qb = _mm512_set1_ps(q##a[d]); \
    c##a##0 = _mm512_fmadd_ps(k0, qb, c##a##0); c##a##1 = _mm512_fmadd_ps(k1, qb, c##a##1); \
    c##a##2 = _mm512_fmadd_ps(k2, qb, c##a##2); c##a##3 = _mm512_fmadd_ps(k3, qb, c##a##3); }
#define EK_KQ_STORE(a) { float *o = s->KQ + (i + a) * TKV; _mm512_storeu_ps(o, c##a##0); _mm512_storeu_ps(o + 16, c##a##1); \
                         _mm512_storeu_ps(o + 32, c##a##2); _mm512_storeu_ps(o + 48, c##a##3); }
#define EK_KQ_ROWS(N, REP)                                                                              \
    EK_AVX512 static void kq512_##N(scratch *s, int i, int64_t dk) {                                    \
        REP(EK_KQ_DECL)                                                                                 \
        for (int64_t d = 0; d < dk; d++) {                                                              \
            const float *kt = s->KT + d * TKV;                                                          \
            const __m512 k0 = _mm512_loadu_ps(kt), k1 = _mm512_loadu_ps(kt + 16), k2 = _mm512_loadu_ps(kt + 32), \
                         k3 = _mm512_loadu_ps(kt + 48);                                                 \
            REP(EK_KQ_STEP)                                                                             \
        }                                                                                               \
        REP(EK_KQ_STORE)                                                                                \
    }
EK_KQ_ROWS(4, EK_REP4)
EK_KQ_ROWS(1, EK_REP1)

EK_AVX512 static void kq512(scratch *s, int nrows, int64_t dk) {
    int i = 0;
    for (; i + 4 <= nrows; i += 4) kq512_4(s, i, dk);
    for (; i < nrows; i++) kq512_1(s, i, dk);
}

// 4 query rows × 64 output columns (4 vectors), continuing the FMA chains held in VKQ.
#define EK_VKQ_DECL(a) float *o##a = s->VKQ + (size_t)(i + a) * dv + e0; \
    __m512 c##a##0 = _mm512_loadu_ps(o##a), c##a##1 = _mm512_loadu_ps(o##a + 16), \
           c##a##2 = _mm512_loadu_ps(o##a + 32), c##a##3 = _mm512_loadu_ps(o##a + 48); \
    const float *p##a = s->KQ + (i + a) * TKV;
#define EK_VKQ_STEP(a) { const __m512 pb = _mm512_set1_ps(p##a[j]); \
    c##a##0 = _mm512_fmadd_ps(v0, pb, c##a##0); c##a##1 = _mm512_fmadd_ps(v1, pb, c##a##1); \
    c##a##2 = _mm512_fmadd_ps(v2, pb, c##a##2); c##a##3 = _mm512_fmadd_ps(v3, pb, c##a##3); }
#define EK_VKQ_STORE(a) _mm512_storeu_ps(o##a, c##a##0); _mm512_storeu_ps(o##a + 16, c##a##1); \
                        _mm512_storeu_ps(o##a + 32, c##a##2); _mm512_storeu_ps(o##a + 48, c##a##3);
#define EK_VKQ_ROWS(N, REP)                                                                             \
    EK_AVX512 static void vkq512_##N(scratch *s, int i, int nkeys, int64_t dv, int64_t e0) {            \
        REP(EK_VKQ_DECL)                                                                                \
        for (int j = 0; j < nkeys; j++) {                                                               \
            const float *vr = s->V + (size_t)j * s->ldv + e0;                                           \
            const __m512 v0 = _mm512_loadu_ps(vr), v1 = _mm512_loadu_ps(vr + 16), v2 = _mm512_loadu_ps(vr + 32), \
                         v3 = _mm512_loadu_ps(vr + 48);                                                 \
            REP(EK_VKQ_STEP)                                                                            \
        }                                                                                               \
        REP(EK_VKQ_STORE)                                                                               \
    }
EK_VKQ_ROWS(4, EK_REP4)
EK_VKQ_ROWS(1, EK_REP1)

EK_AVX512 static void vkq512(scratch *s, int nrows, int nkeys, int64_t dv) {
    if (dv % 64) { vkq_scalar(s, nrows, nkeys, dv); return; }
    for (int64_t e0 = 0; e0 < dv; e0 += 64) {
        int i = 0;
        for (; i + 4 <= nrows; i += 4) vkq512_4(s, i, nkeys, dv, e0);
        for (; i < nrows; i++) vkq512_1(s, i, nkeys, dv, e0);
    }
}

/// Scale, mask (keys j < `first` or ≥ `valid` → −inf) and max of one 64-score row, vectorised.
EK_AVX512 static float prep_row512(float *row, float scale, int first, int valid) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    const __m512 sc = _mm512_set1_ps(scale), ninf = _mm512_set1_ps(-INFINITY);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int g = 0; g < TKV; g += 16) {
        const __m512i idx = _mm512_add_epi32(lane, _mm512_set1_epi32(g));
        const __mmask16 keep = _mm512_cmplt_epi32_mask(idx, _mm512_set1_epi32(valid)) &
                               _mm512_cmpge_epi32_mask(idx, _mm512_set1_epi32(first));
        const __m512 x = _mm512_mask_blend_ps(keep, ninf, _mm512_mul_ps(_mm512_loadu_ps(row + g), sc));
        _mm512_storeu_ps(row + g, x);
        mx = _mm512_max_ps(mx, x);
    }
    return _mm512_reduce_max_ps(mx);
}

EK_AVX512 static void scale_row512(float *x, int64_t n, float v) {
    int64_t e = 0;
    const __m512 vv = _mm512_set1_ps(v);
    for (; e + 16 <= n; e += 16) _mm512_storeu_ps(x + e, _mm512_mul_ps(_mm512_loadu_ps(x + e), vv));
    for (; e < n; e++) x[e] *= v;
}

// AVX2: 16 ymm registers, so tiles of 6 rows × 16 columns (12 accumulators, 2 loaded vectors, one
// broadcast), the same FMA chains per output as above.
#define EK_KQ2_DECL(a) __m256 c##a##0 = _mm256_setzero_ps(), c##a##1 = c##a##0; \
                       const float *q##a = s->Q + (size_t)(i + a) * s->ldq;
#define EK_KQ2_STEP(a) { const __m256 qb = _mm256_broadcast_ss(q##a + d); \
    c##a##0 = _mm256_fmadd_ps(k0, qb, c##a##0); c##a##1 = _mm256_fmadd_ps(k1, qb, c##a##1); }
#define EK_KQ2_STORE(a) { float *o = s->KQ + (i + a) * TKV + j0; _mm256_storeu_ps(o, c##a##0); _mm256_storeu_ps(o + 8, c##a##1); }
#define EK_KQ2_ROWS(N, REP)                                                                             \
    EK_AVX2 static void kq256_##N(scratch *s, int i, int j0, int64_t dk) {                              \
        REP(EK_KQ2_DECL)                                                                                \
        for (int64_t d = 0; d < dk; d++) {                                                              \
            const float *kt = s->KT + d * TKV + j0;                                                     \
            const __m256 k0 = _mm256_loadu_ps(kt), k1 = _mm256_loadu_ps(kt + 8);                        \
            REP(EK_KQ2_STEP)                                                                            \
        }                                                                                               \
        REP(EK_KQ2_STORE)                                                                               \
    }
EK_KQ2_ROWS(6, EK_REP6)
EK_KQ2_ROWS(2, EK_REP2)
EK_KQ2_ROWS(1, EK_REP1)

EK_AVX2 static void kq_avx2(scratch *s, int nrows, int64_t dk) {
    for (int j0 = 0; j0 < TKV; j0 += 16) {
        int i = 0;
        for (; i + 6 <= nrows; i += 6) kq256_6(s, i, j0, dk);
        for (; i + 2 <= nrows; i += 2) kq256_2(s, i, j0, dk);
        for (; i < nrows; i++) kq256_1(s, i, j0, dk);
    }
}

#define EK_VKQ2_DECL(a) float *o##a = s->VKQ + (size_t)(i + a) * dv + e0; \
    __m256 c##a##0 = _mm256_loadu_ps(o##a), c##a##1 = _mm256_loadu_ps(o##a + 8); \
    const float *p##a = s->KQ + (i + a) * TKV;
#define EK_VKQ2_STEP(a) { const __m256 pb = _mm256_broadcast_ss(p##a + j); \
    c##a##0 = _mm256_fmadd_ps(v0, pb, c##a##0); c##a##1 = _mm256_fmadd_ps(v1, pb, c##a##1); }
#define EK_VKQ2_STORE(a) _mm256_storeu_ps(o##a, c##a##0); _mm256_storeu_ps(o##a + 8, c##a##1);
#define EK_VKQ2_ROWS(N, REP)                                                                            \
    EK_AVX2 static void vkq256_##N(scratch *s, int i, int nkeys, int64_t dv, int64_t e0) {              \
        REP(EK_VKQ2_DECL)                                                                               \
        for (int j = 0; j < nkeys; j++) {                                                               \
            const float *vr = s->V + (size_t)j * s->ldv + e0;                                           \
            const __m256 v0 = _mm256_loadu_ps(vr), v1 = _mm256_loadu_ps(vr + 8);                        \
            REP(EK_VKQ2_STEP)                                                                           \
        }                                                                                               \
        REP(EK_VKQ2_STORE)                                                                              \
    }
EK_VKQ2_ROWS(6, EK_REP6)
EK_VKQ2_ROWS(2, EK_REP2)
EK_VKQ2_ROWS(1, EK_REP1)

EK_AVX2 static void vkq_avx2(scratch *s, int nrows, int nkeys, int64_t dv) {
    if (dv % 16) { vkq_scalar(s, nrows, nkeys, dv); return; }
    for (int64_t e0 = 0; e0 < dv; e0 += 16) {
        int i = 0;
        for (; i + 6 <= nrows; i += 6) vkq256_6(s, i, nkeys, dv, e0);
        for (; i + 2 <= nrows; i += 2) vkq256_2(s, i, nkeys, dv, e0);
        for (; i < nrows; i++) vkq256_1(s, i, nkeys, dv, e0);
    }
}

/// v_expf1 on 8 lanes. Where every lane's 2^n is a normal float (or n < −192, giving 0) the
/// product j·2^n is exact as ldexpf's is; any other lane (subnormal results, overflow, NaN) sends
/// the 8 to the scalar path, so the bits are always v_expf1's.
EK_AVX2 static inline void v_expf8(float *x, __m256 in) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(in, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f), _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), in));
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0F)));
    const __m256 normal = _mm256_and_ps(_mm256_cmp_ps(n, _mm256_set1_ps(-125), _CMP_GE_OQ),
                                        _mm256_cmp_ps(n, _mm256_set1_ps(127), _CMP_LE_OQ));
    const __m256 under = _mm256_cmp_ps(n, _mm256_set1_ps(-192), _CMP_LT_OQ); // → 0, as |n| > 192, n ≤ 0
    if (_mm256_movemask_ps(_mm256_or_ps(normal, under)) != 0xFF) {
        _mm256_storeu_ps(x, in);
        for (int i = 0; i < 8; i++) x[i] = v_expf1(x[i]);
        return;
    }
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(_mm256_and_ps(n, normal)), _mm256_set1_epi32(127)), 23);
    _mm256_storeu_ps(x, _mm256_and_ps(_mm256_mul_ps(j, _mm256_castsi256_ps(e)), normal));
}

EK_AVX2 static double softmax64_avx2(float *x, float max) {
    double sum = 0;
    const __m256 mv = _mm256_set1_ps(max);
    for (int g = 0; g < TKV; g += 16) {
        v_expf8(x + g, _mm256_sub_ps(_mm256_loadu_ps(x + g), mv));
        v_expf8(x + g + 8, _mm256_sub_ps(_mm256_loadu_ps(x + g + 8), mv));
        // reduce16's tree: lanes i + 8 and i, then i + 4 and i, then (0 + 2) + (1 + 3)
        const __m256 t8 = _mm256_add_ps(_mm256_loadu_ps(x + g + 8), _mm256_loadu_ps(x + g));
        const __m128 t4 = _mm_add_ps(_mm256_extractf128_ps(t8, 1), _mm256_castps256_ps128(t8));
        const __m128 p = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
        sum += (double)_mm_cvtss_f32(_mm_add_ss(p, _mm_movehdup_ps(p)));
    }
    return sum;
}

EK_AVX2 static float prep_row256(float *row, float scale, int first, int valid) {
    __m256 mx = _mm256_set1_ps(-INFINITY);
    const __m256 sc = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(-INFINITY);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i vfirst = _mm256_set1_epi32(first - 1), vvalid = _mm256_set1_epi32(valid);
    for (int g = 0; g < TKV; g += 8) {
        const __m256i idx = _mm256_add_epi32(lane, _mm256_set1_epi32(g));
        const __m256i keep = _mm256_and_si256(_mm256_cmpgt_epi32(vvalid, idx), _mm256_cmpgt_epi32(idx, vfirst));
        const __m256 x = _mm256_blendv_ps(ninf, _mm256_mul_ps(_mm256_loadu_ps(row + g), sc), _mm256_castsi256_ps(keep));
        _mm256_storeu_ps(row + g, x);
        mx = _mm256_max_ps(mx, x);
    }
    float m[8], best = -INFINITY;
    _mm256_storeu_ps(m, mx);
    for (int i = 0; i < 8; i++) best = best > m[i] ? best : m[i];
    return best;
}

EK_AVX2 static void scale_row256(float *x, int64_t n, float v) {
    int64_t e = 0;
    const __m256 vv = _mm256_set1_ps(v);
    for (; e + 8 <= n; e += 8) _mm256_storeu_ps(x + e, _mm256_mul_ps(_mm256_loadu_ps(x + e), vv));
    for (; e < n; e++) x[e] *= v;
}
#endif

void ek_attention_pack_k(const float *k, size_t ldkv, int64_t nkv, int64_t dk, float *kt) {
    for (int64_t ic = 0; ic < nkv; ic += TKV) {
        float *dst = kt + (size_t)(ic / TKV) * dk * TKV;
        const int kvt = (int)(nkv - ic < TKV ? nkv - ic : TKV);
        for (int j = 0; j < TKV; j++) {
            const float *src = k + (size_t)(ic + j) * ldkv;
            for (int64_t d = 0; d < dk; d++) dst[d * TKV + j] = j < kvt ? src[d] : 0.0f;
        }
    }
}

static float prep_row_scalar(float *row, float scale, int first, int valid) {
    float tile_max = -INFINITY;
    for (int j = 0; j < TKV; j++) {
        float x = row[j] * scale;
        if (j >= valid || j < first) x = -INFINITY;
        row[j] = x;
        tile_max = tile_max > x ? tile_max : x;
    }
    return tile_max;
}

/// ggml with a logit soft-cap: score·(scale/cap), tanhf, ·cap, then the mask.
static float prep_row_softcap(float *row, float scale, float cap, int first, int valid) {
    const float s = scale / cap;
    float tile_max = -INFINITY;
    for (int j = 0; j < TKV; j++) {
        float x = cap * tanhf(row[j] * s);
        if (j >= valid || j < first) x = -INFINITY;
        row[j] = x;
        tile_max = tile_max > x ? tile_max : x;
    }
    return tile_max;
}

static void scale_row_scalar(float *x, int64_t n, float v) {
    for (int64_t e = 0; e < n; e++) x[e] *= v;
}

void ek_attention_tiled(const float *q, size_t ldq, const float *kt, const float *v, size_t ldkv,
                        int64_t past, int64_t q0, int64_t q1, int64_t dk, int64_t dv, float scale,
                        int64_t window, float softcap, float *out, size_t ldo) {
    // One implementation per step, chosen once: every level computes the same bits.
    void (*kq)(scratch *, int, int64_t) = kq_scalar;
    void (*vkq)(scratch *, int, int, int64_t) = vkq_scalar;
    double (*softmax64)(float *, float) = softmax64_scalar;
    float (*prep_row)(float *, float, int, int) = prep_row_scalar;
    void (*scale_row)(float *, int64_t, float) = scale_row_scalar;
#if EK_X86
    const ek_level level = ek_cpu_level();
    if (level == EK_LEVEL_AVX512) {
        kq = kq512; vkq = vkq512; softmax64 = softmax64_512; prep_row = prep_row512; scale_row = scale_row512;
    } else if (level == EK_LEVEL_AVX2) {
        kq = kq_avx2; vkq = vkq_avx2; softmax64 = softmax64_avx2; prep_row = prep_row256; scale_row = scale_row256;
    }
#endif
    scratch s;
    s.ldq = ldq;
    s.ldv = ldkv;
    s.KQ = (float *)aligned_alloc(64, (size_t)TQ * TKV * 4);
    s.VKQ = (float *)aligned_alloc(64, ((size_t)TQ * dv * 4 + 63) / 64 * 64);
    for (int64_t i0 = q0; i0 < q1; i0 += TQ) {
        const int rows = (int)(q1 - i0 < TQ ? q1 - i0 : TQ);
        s.Q = q + (size_t)i0 * ldq;
        for (int i = 0; i < TQ; i++) { s.S[i] = 0; s.M[i] = -INFINITY; }
        memset(s.VKQ, 0, (size_t)TQ * dv * 4);
        const int64_t nkv = past + i0 + rows; // keys the last row of the tile sees
        // tiles every row's window has left behind hold only masked keys: ggml skips them too
        const int64_t lo = window > 0 && past + i0 - window + 1 > 0 ? past + i0 - window + 1 : 0;
        for (int64_t ic = lo / TKV * TKV; ic < nkv; ic += TKV) {
            const int kvt = (int)(nkv - ic < TKV ? nkv - ic : TKV);
            s.KT = kt + (size_t)(ic / TKV) * dk * TKV;
            s.V = v + (size_t)ic * ldkv;
            kq(&s, rows, dk);
            int skip[TQ];
            for (int i = 0; i < rows; i++) {
                float *row = s.KQ + i * TKV;
                const int64_t vis = past + i0 + i - ic + 1; // keys j < vis are unmasked
                const int valid = (int)(vis < 0 ? 0 : vis < kvt ? vis : kvt);
                const int64_t f = window > 0 ? vis - window : 0; // and j ≥ f inside the window
                const int first = (int)(f < 0 ? 0 : f > TKV ? TKV : f);
                const float tile_max = softcap > 0 ? prep_row_softcap(row, scale, softcap, first, valid)
                                                   : prep_row(row, scale, first, valid);
                skip[i] = tile_max == -INFINITY;
                if (skip[i]) continue;
                const float Mold = s.M[i], Mnew = fmaxf(Mold, tile_max);
                if (Mnew > Mold) {
                    const float ms = expf(Mold - Mnew);
                    scale_row(s.VKQ + i * dv, dv, ms);
                    s.S[i] *= ms;
                }
                s.M[i] = Mnew;
                s.S[i] = (float)((double)s.S[i] + softmax64(row, Mnew));
            }
            for (int i = 0; i < rows; i++) if (skip[i]) memset(s.KQ + i * TKV, 0, TKV * 4);
            vkq(&s, rows, kvt, dv);
        }
        for (int i = 0; i < rows; i++) {
            const float inv = s.S[i] == 0.0f ? 0.0f : 1.0f / s.S[i];
            float *o = out + (size_t)(i0 + i) * ldo;
            for (int64_t e = 0; e < dv; e++) o[e] = s.VKQ[i * dv + e] * inv;
        }
    }
    free(s.KQ); free(s.VKQ);
}

// ---- log-softmax of logit rows (the planner's KL divergences) ----

/// Σ v_expf(x[i] − max) over one row, 16 values at a time summed by `reduce16`'s tree (absent
/// lanes of the last group as 0) and the groups added in double: ggml_vec_soft_max_f32's sums.
static double expsum_scalar(const float *x, int64_t n, float max) {
    double sum = 0;
    for (int64_t g = 0; g < n; g += 16) {
        float e[16];
        for (int i = 0; i < 16; i++) e[i] = g + i < n ? v_expf1(x[g + i] - max) : 0;
        sum += (double)reduce16(e);
    }
    return sum;
}

static float rowmax_scalar(const float *x, int64_t n) {
    float m = x[0];
    for (int64_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

#if EK_X86
EK_AVX512 static void log_softmax_512(float *x, int64_t n) {
    __m512 m = _mm512_set1_ps(x[0]);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) m = _mm512_max_ps(_mm512_loadu_ps(x + i), m);
    float max = _mm512_reduce_max_ps(m);
    for (; i < n; i++) max = x[i] > max ? x[i] : max;
    const __m512 mv = _mm512_set1_ps(max);
    double sum = 0;
    for (int64_t g = 0; g < n; g += 16) {
        const __mmask16 live = n - g >= 16 ? 0xFFFF : (__mmask16)((1u << (n - g)) - 1);
        const __m512 e = _mm512_maskz_mov_ps(live, v_expf512(_mm512_sub_ps(_mm512_maskz_loadu_ps(live, x + g), mv)));
        sum += (double)reduce512(e);
    }
    const __m512 lse = _mm512_set1_ps(max + (float)log(sum));
    for (int64_t g = 0; g < n; g += 16) {
        const __mmask16 live = n - g >= 16 ? 0xFFFF : (__mmask16)((1u << (n - g)) - 1);
        _mm512_mask_storeu_ps(x + g, live, _mm512_sub_ps(_mm512_maskz_loadu_ps(live, x + g), lse));
    }
}

EK_AVX2 static void log_softmax_avx2(float *x, int64_t n) {
    __m256 m = _mm256_set1_ps(x[0]);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) m = _mm256_max_ps(_mm256_loadu_ps(x + i), m);
    float lanes[8];
    _mm256_storeu_ps(lanes, m);
    float max = lanes[0];
    for (int k = 1; k < 8; k++) max = lanes[k] > max ? lanes[k] : max;
    for (; i < n; i++) max = x[i] > max ? x[i] : max;
    const __m256 mv = _mm256_set1_ps(max);
    double sum = 0;
    int64_t g = 0;
    for (; g + 16 <= n; g += 16) {
        float e[16];
        v_expf8(e, _mm256_sub_ps(_mm256_loadu_ps(x + g), mv));
        v_expf8(e + 8, _mm256_sub_ps(_mm256_loadu_ps(x + g + 8), mv));
        sum += (double)reduce16(e);
    }
    if (g < n) sum += expsum_scalar(x + g, n - g, max);
    const float lse = max + (float)log(sum);
    for (i = 0; i < n; i++) x[i] -= lse;
}
#endif

void ek_log_softmax_rows(float *x, size_t ldx, int64_t rows, int64_t n) {
    if (n <= 0) return;
#if EK_X86
    const ek_level level = ek_cpu_level();
#endif
    for (int64_t r = 0; r < rows; r++) {
        float *row = x + (size_t)r * ldx;
#if EK_X86
        if (level == EK_LEVEL_AVX512) { log_softmax_512(row, n); continue; }
        if (level == EK_LEVEL_AVX2) { log_softmax_avx2(row, n); continue; }
#endif
        const float max = rowmax_scalar(row, n);
        const float lse = max + (float)log(expsum_scalar(row, n, max));
        for (int64_t i = 0; i < n; i++) row[i] -= lse;
    }
}

// ---- SwiGLU ----

/// One row as an AVX-512 build of ggml_vec_swiglu_f32: x/(1 + v_expf(−x))·g for whole sixteens,
/// libm expf (ggml_silu_f32) for the rest.
static void swiglu_row_scalar(float *x, const float *g, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) x[i + k] = x[i + k] / (1.0f + v_expf1(0.0f - x[i + k])) * g[i + k];
    for (; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i])) * g[i];
}

#if EK_X86
EK_AVX512 static void swiglu_row_512(float *x, const float *g, int64_t n) {
    int64_t i = 0;
    const __m512 one = _mm512_set1_ps(1);
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        const __m512 silu = _mm512_div_ps(v, _mm512_add_ps(one, v_expf512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
        _mm512_storeu_ps(x + i, _mm512_mul_ps(silu, _mm512_loadu_ps(g + i)));
    }
    for (; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i])) * g[i];
}

EK_AVX2 static void swiglu_row_avx2(float *x, const float *g, int64_t n) {
    int64_t i = 0;
    const __m256 one = _mm256_set1_ps(1);
    const int64_t whole = n / 16 * 16;
    for (; i + 8 <= whole; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        float e[8];
        v_expf8(e, _mm256_sub_ps(_mm256_setzero_ps(), v));
        const __m256 silu = _mm256_div_ps(v, _mm256_add_ps(one, _mm256_loadu_ps(e)));
        _mm256_storeu_ps(x + i, _mm256_mul_ps(silu, _mm256_loadu_ps(g + i)));
    }
    for (; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i])) * g[i];
}
#endif

void ek_swiglu_rows(float *x, const float *g, int64_t rows, int64_t n) {
#if EK_X86
    const ek_level level = ek_cpu_level();
#endif
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * n;
        const float *gr = g + (size_t)r * n;
#if EK_X86
        if (level == EK_LEVEL_AVX512) { swiglu_row_512(xr, gr, n); continue; }
        if (level == EK_LEVEL_AVX2) { swiglu_row_avx2(xr, gr, n); continue; }
#endif
        swiglu_row_scalar(xr, gr, n);
    }
}
