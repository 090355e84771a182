// iq3_xxs and iq3_s: ggml's quantize_iq3_xxs / quantize_iq3_s (ggml-quants.c) reproduced bit for
// bit, and their dequantization.
//
// Both quantizers work on sub-blocks of 32 values, split into eight groups of four. For each of a
// fan of trial scales (31 for iq3_xxs, 19 for iq3_s) every group is rounded to the nearest point of
// the 8⁴ cube of levels; a point that is not on the 3-bit lattice is replaced by the best of its
// lattice neighbours (smallest weighted squared error, first in list order on ties). The trial
// whose least-squares fit is best wins; groups it left off the lattice are searched once more at
// the fitted scale, and the scale is refitted.
//
// The searches (up to 31 × 8 per sub-block) and the per-trial sums are what cost the time, so they
// are arranged differently from ggml without changing a single float operation:
//  * The trial scales are vector lanes (16 on AVX-512, 8 on AVX2, and arrays of 8 that the compiler
//    may vectorise in the portable path): each lane rounds its values, looks up its codes, searches
//    and sums its own trial, element by element in ggml's order.
//  * A search scores every candidate of a list in all lanes that landed on that list's code (most
//    lanes of a group do). A candidate's error is Σ_i (w_i·(s·q_i − x_i))·(s·q_i − x_i) in ggml's
//    coordinate order, and q_i takes only eight values, so the 4×8 possible terms are computed once
//    per group and each candidate costs four additions of looked-up terms. Each lane keeps the first
//    strict minimum, as ggml's scan does.
//  * The one search per group after the best trial (at the fitted scale) scores eight candidates per
//    vector and takes the first of the smallest errors.
// All float arithmetic is plain IEEE single precision with no contraction, as ggml's build has it.
#pragma STDC FP_CONTRACT OFF
#ifdef __clang__
#pragma clang fp contract(off)
#endif

#include "CKernels.h"
#include "CQuants.h"
#include "scalar.h"
#include "ggml_format.h"
#include "ggml_iq_grids.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define IQ3_X86 1
#include <immintrin.h>
#define IQ3_AVX2 __attribute__((target("avx2")))
#define IQ3_AVX512 __attribute__((target("avx2,avx512f,avx512bw,avx512dq,avx512vl")))
#else
#define IQ3_X86 0
#endif

enum {
    QK = 256,          // values per block
    SUB = 32,          // values per sub-block (one scale each)
    NSUB = QK / SUB,   // sub-blocks per block
    NGROUP = SUB / 4,  // lattice points per sub-block
    MAX_TRIALS = 32,   // trial scales per sub-block, rounded up to whole vectors
    LANES = 8,         // candidates per vector in the neighbour search
};

// ---------------------------------------------------------------------------------------------
// Scalar helpers with ggml's exact semantics.

static inline int clamp_level(int l) { return l < 0 ? 0 : l > 7 ? 7 : l; }

/// ggml's MAX(a, b) macro, including which operand survives a NaN.
static inline float max_like_ggml(float a, float b) { return a > b ? a : b; }

// ---------------------------------------------------------------------------------------------
// Search tables: ggml's neighbour lists, as the lattice codes of the candidates (so that a
// candidate's levels are at hand without going through the grid), each list padded to whole
// vectors by repeating its first candidate (a repeat never beats the original, which comes first).

typedef struct {
    const int *map;       // code → grid index, or < 0 when the code is off the lattice
    int32_t *cand;        // candidate codes
    uint8_t *slot;        // per candidate, for coordinate i: 8·i + its level (a term table index)
    uint32_t *list;       // per off-lattice code: offset into cand << 8 | number of candidates
} search_tables;

static search_tables tables_256, tables_512;
static pthread_once_t once_256 = PTHREAD_ONCE_INIT, once_512 = PTHREAD_ONCE_INIT;

static void build_search(search_tables *t, int grid_size) {
    const eq_iq3_lattice *lat = eq_iq3_lattice_get(grid_size);
    size_t total = 0;
    for (int u = 0; u < 4096; ++u)
        if (lat->map[u] < 0) {
            const int n = lat->neighbours[-lat->map[u] - 1];
            total += (size_t)(n + LANES - 1) / LANES * LANES;
        }
    t->cand = malloc(total * sizeof(int32_t));
    t->slot = malloc(total * 4);
    t->list = calloc(4096, sizeof(uint32_t));
    if (!t->cand || !t->slot || !t->list) abort();
    size_t at = 0;
    for (int u = 0; u < 4096; ++u) {
        if (lat->map[u] >= 0) continue;
        const uint16_t *nb = lat->neighbours + (-lat->map[u] - 1);
        const int n = nb[0];
        const int padded = (n + LANES - 1) / LANES * LANES;
        t->list[u] = (uint32_t)at << 8 | (uint32_t)n;
        for (int j = 0; j < padded; ++j) {
            uint8_t pg[4];
            memcpy(pg, &lat->grid[nb[1 + (j < n ? j : 0)]], 4);
            int code = 0;
            for (int i = 0; i < 4; ++i) {
                const int l = (pg[i] - 1) / 2;
                code |= l << 3 * i;
                t->slot[4 * (at + (size_t)j) + (size_t)i] = (uint8_t)(8 * i + l);
            }
            t->cand[at + (size_t)j] = code;
        }
        at += (size_t)padded;
    }
    t->map = lat->map;
}

static void build_256(void) { build_search(&tables_256, 256); }
static void build_512(void) { build_search(&tables_512, 512); }

static const search_tables *get_tables(int grid_size) {
    if (grid_size == 256) {
        pthread_once(&once_256, build_256);
        return &tables_256;
    }
    pthread_once(&once_512, build_512);
    return &tables_512;
}

// ---------------------------------------------------------------------------------------------
// The neighbour search, scalar. Returns the winning candidate's code: the first candidate with
// the smallest error, where only errors below FLT_MAX count (ggml starts its scan there). When none
// does (infinite or NaN weights) ggml aborts; we take the first candidate instead.

static int search_scalar(const search_tables *t, int code, const float *xv, const float *wa, float scale) {
    const uint32_t entry = t->list[code];
    const int32_t *cand = t->cand + (entry >> 8);
    const int n = (int)(entry & 0xFF);
    float best = FLT_MAX;
    int win = -1;
    for (int j = 0; j < n; ++j) {
        const int c = cand[j];
        float d2 = 0;
        for (int i = 0; i < 4; ++i) {
            const float q = (float)(2 * ((c >> 3 * i) & 7) + 1);
            const float diff = scale * q - xv[i];
            d2 += wa[i] * diff * diff;
        }
        if (d2 < best) {
            best = d2;
            win = c;
        }
    }
    return win >= 0 ? win : cand[0];
}

// ---------------------------------------------------------------------------------------------
// One sub-block.

typedef struct {
    float xval[SUB];   // |x|, with iq3_xxs's parity flip applied
    float weight[SUB]; // importance of each value
    float waux[SUB];   // √weight, the search's weights
    float wx[SUB];     // weight·xval, the first factor of ggml's sumqx terms
} sub_data;

/// The trial scales' results: levels element-major (`lv[i][s]`), off-lattice groups as bit masks,
/// and each trial's two sums.
typedef struct {
    int32_t lv[SUB][MAX_TRIALS];
    uint8_t offgrid[MAX_TRIALS];
    float sumqx[MAX_TRIALS];
    float sumq2[MAX_TRIALS];
} trials;

typedef void (*trial_fn)(const search_tables *t, const sub_data *sd, const float *id, const float *step,
                         int ntrial, trials *out);

/// The portable path does what the vector paths do, with the lanes as short arrays (loops over
/// lanes that compilers can vectorise for whatever the baseline target offers; the arithmetic per
/// lane is the same either way). Trials s0…s0+7; lanes at or past `ntrial` are left unwritten.
static void chunk_generic(const search_tables *t, const sub_data *sd, const float *id, const float *step, int s0,
                          int ntrial, trials *out) {
    enum { GL = 8 };
    const int live = ntrial - s0 < GL ? ntrial - s0 : GL;
    float sq[8][GL];
    for (int l = 0; l < 8; ++l)
        for (int j = 0; j < GL; ++j) sq[l][j] = step[s0 + j] * (float)(2 * l + 1);
    uint8_t off[GL] = { 0 };
    for (int k = 0; k < NGROUP; ++k) {
        int32_t lv[4][GL], code[GL];
        for (int j = 0; j < GL; ++j) code[j] = 0;
        for (int i = 0; i < 4; ++i) {
            const float x = sd->xval[4 * k + i];
            for (int j = 0; j < GL; ++j) {
                lv[i][j] = clamp_level(nearest_int(0.5f * (id[s0 + j] * x - 1)));
                code[j] |= lv[i][j] << 3 * i;
            }
        }
        unsigned miss = 0;
        for (int j = 0; j < live; ++j) miss |= (unsigned)(t->map[code[j]] < 0) << j;
        if (miss) {
            const float *xv = sd->xval + 4 * k, *wa = sd->waux + 4 * k;
            float term[32][GL];
            for (int i = 0; i < 4; ++i)
                for (int l = 0; l < 8; ++l)
                    for (int j = 0; j < GL; ++j) {
                        const float d = sq[l][j] - xv[i];
                        term[8 * i + l][j] = wa[i] * d * d;
                    }
            while (miss) {
                const int u = code[__builtin_ctz(miss)];
                const uint32_t entry = t->list[u];
                const int n = (int)(entry & 0xFF);
                const int32_t *cand = t->cand + (entry >> 8);
                const uint8_t *slot = t->slot + 4 * (size_t)(entry >> 8);
                float best[GL];
                int32_t win[GL];
                for (int j = 0; j < GL; ++j) {
                    best[j] = FLT_MAX;
                    win[j] = cand[0]; // kept when no error is below FLT_MAX (ggml aborts)
                }
                for (int c = 0; c < n; ++c, slot += 4) {
                    const float *t0 = term[slot[0]], *t1 = term[slot[1]], *t2 = term[slot[2]], *t3 = term[slot[3]];
                    for (int j = 0; j < GL; ++j) {
                        const float d2 = (((0.0f + t0[j]) + t1[j]) + t2[j]) + t3[j];
                        const bool better = d2 < best[j];
                        best[j] = better ? d2 : best[j];
                        win[j] = better ? cand[c] : win[j];
                    }
                }
                for (unsigned m = miss; m; m &= m - 1) {
                    const int j = __builtin_ctz(m);
                    if (code[j] != u) continue;
                    miss &= ~(1u << j);
                    off[j] |= (uint8_t)(1u << k);
                    for (int i = 0; i < 4; ++i) lv[i][j] = (win[j] >> 3 * i) & 7;
                }
            }
        }
        for (int i = 0; i < 4; ++i)
            for (int j = 0; j < GL; ++j) out->lv[4 * k + i][s0 + j] = lv[i][j];
    }
    float sqx[GL], sq2[GL];
    for (int j = 0; j < GL; ++j) sqx[j] = sq2[j] = 0;
    for (int i = 0; i < SUB; ++i)
        for (int j = 0; j < GL; ++j) {
            const float q = (float)(2 * out->lv[i][s0 + j] + 1);
            sqx[j] += sd->wx[i] * q;
            sq2[j] += sd->weight[i] * q * q;
        }
    for (int j = 0; j < live; ++j) {
        out->offgrid[s0 + j] = off[j];
        out->sumqx[s0 + j] = sqx[j];
        out->sumq2[s0 + j] = sq2[j];
    }
}

static void trials_generic(const search_tables *t, const sub_data *sd, const float *id, const float *step,
                           int ntrial, trials *out) {
    for (int s0 = 0; s0 < ntrial; s0 += 8) chunk_generic(t, sd, id, step, s0, ntrial, out);
}

#if IQ3_X86
/// Eight candidates per step: the 4×8 error terms of this group at this scale sit in four
/// registers, and a candidate's code picks its four terms with one permute per coordinate (vpermps
/// reads only the low three bits of each index, which is exactly one coordinate's level).
IQ3_AVX2 static int search_avx2(const search_tables *t, int code, const float *xv, const float *wa, float scale) {
    const uint32_t entry = t->list[code];
    const int32_t *cand = t->cand + (entry >> 8);
    const int n = (int)(entry & 0xFF);
    const __m256 q = _mm256_setr_ps(1, 3, 5, 7, 9, 11, 13, 15);
    const __m256 s = _mm256_set1_ps(scale);
    __m256 term[4];
    for (int i = 0; i < 4; ++i) {
        const __m256 diff = _mm256_sub_ps(_mm256_mul_ps(s, q), _mm256_set1_ps(xv[i]));
        term[i] = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(wa[i]), diff), diff);
    }
    const __m256 limit = _mm256_set1_ps(FLT_MAX);
    const __m256 inf = _mm256_set1_ps(INFINITY);
    float best = FLT_MAX;
    int win = -1;
    for (int j = 0; j < n; j += LANES) {
        const __m256i c = _mm256_loadu_si256((const __m256i *)(cand + j));
        __m256 d2 = _mm256_add_ps(_mm256_setzero_ps(), _mm256_permutevar8x32_ps(term[0], c));
        d2 = _mm256_add_ps(d2, _mm256_permutevar8x32_ps(term[1], _mm256_srli_epi32(c, 3)));
        d2 = _mm256_add_ps(d2, _mm256_permutevar8x32_ps(term[2], _mm256_srli_epi32(c, 6)));
        d2 = _mm256_add_ps(d2, _mm256_permutevar8x32_ps(term[3], _mm256_srli_epi32(c, 9)));
        // Only errors below FLT_MAX can win (NaN compares false); the rest become +inf so that the
        // minimum below is an ordinary one.
        const __m256 ok = _mm256_cmp_ps(d2, limit, _CMP_LT_OQ);
        const __m256 v = _mm256_blendv_ps(inf, d2, ok);
        __m256 m = _mm256_min_ps(v, _mm256_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
        m = _mm256_min_ps(m, _mm256_permute_ps(m, _MM_SHUFFLE(1, 0, 3, 2)));
        m = _mm256_min_ps(m, _mm256_permute2f128_ps(m, m, 1));
        const int hit = _mm256_movemask_ps(_mm256_and_ps(_mm256_cmp_ps(v, m, _CMP_EQ_OQ), ok));
        if (hit) {
            const float lo = _mm256_cvtss_f32(m);
            if (lo < best) { // strict: an earlier vector keeps ties
                best = lo;
                win = cand[j + __builtin_ctz((unsigned)hit)];
            }
        }
    }
    return win >= 0 ? win : cand[0];
}

/// One group's neighbour searches for eight trial lanes at once. Lanes that landed on the same
/// off-lattice code share its candidate list, and every candidate is scored in all lanes, each
/// with its own scale. A candidate's error is ggml's Σ_i (w_i·(s·q_i − x_i))·(s·q_i − x_i), summed
/// in coordinate order; each term depends only on the coordinate and its level, so the terms the
/// lists need are computed once (`sq[l]` = s·(2l+1) is per trial chunk) and every candidate costs
/// four additions. Lanes keep the first strict minimum, as ggml's scan does. Returns the winners'
/// codes (meaningful in the lanes of `miss`).
IQ3_AVX2 static __m256i search_lanes_avx2(const search_tables *t, __m256i code, unsigned miss, const float *xv,
                                          const float *wa, const __m256 *sq) {
    int32_t codes[8];
    _mm256_storeu_si256((__m256i *)codes, code);
    __m256 term[32];
    for (int i = 0; i < 4; ++i) {
        const __m256 x = _mm256_set1_ps(xv[i]), w = _mm256_set1_ps(wa[i]);
        for (int l = 0; l < 8; ++l) {
            const __m256 d = _mm256_sub_ps(sq[l], x);
            term[8 * i + l] = _mm256_mul_ps(_mm256_mul_ps(w, d), d);
        }
    }
    __m256i result = _mm256_setzero_si256();
    while (miss) {
        const int u = codes[__builtin_ctz(miss)];
        const __m256i same = _mm256_cmpeq_epi32(code, _mm256_set1_epi32(u));
        miss &= ~(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(same));
        const uint32_t entry = t->list[u];
        const int n = (int)(entry & 0xFF);
        const int32_t *cand = t->cand + (entry >> 8);
        const uint8_t *slot = t->slot + 4 * (size_t)(entry >> 8);
        __m256 best = _mm256_set1_ps(FLT_MAX);
        __m256i win = _mm256_set1_epi32(cand[0]); // kept when no error is below FLT_MAX (ggml aborts)
        for (int j = 0; j < n; ++j, slot += 4) {
            __m256 d2 = _mm256_add_ps(_mm256_setzero_ps(), term[slot[0]]);
            d2 = _mm256_add_ps(d2, term[slot[1]]);
            d2 = _mm256_add_ps(d2, term[slot[2]]);
            d2 = _mm256_add_ps(d2, term[slot[3]]);
            const __m256 better = _mm256_cmp_ps(d2, best, _CMP_LT_OQ);
            best = _mm256_blendv_ps(best, d2, better);
            win = _mm256_blendv_epi8(win, _mm256_set1_epi32(cand[j]), _mm256_castps_si256(better));
        }
        result = _mm256_blendv_epi8(result, win, same);
    }
    return result;
}

/// Per element, its sumqx and sumq2 terms for each of the eight levels (ggml's (w·x)·q and (w·q)·q),
/// for the trial lanes to pick by level.
typedef struct {
    __m256 qx[SUB], q2[SUB];
} sum_terms;

IQ3_AVX2 static void sum_terms_avx2(const sub_data *sd, sum_terms *st) {
    const __m256 q = _mm256_setr_ps(1, 3, 5, 7, 9, 11, 13, 15);
    for (int i = 0; i < SUB; ++i) {
        st->qx[i] = _mm256_mul_ps(_mm256_set1_ps(sd->wx[i]), q);
        st->q2[i] = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(sd->weight[i]), q), q);
    }
}

/// Trials s0…s0+7 as vector lanes (those at or past `ntrial` compute a duplicate and are dropped):
/// each lane rounds its values, forms the group codes, looks them up, searches where off the
/// lattice, and accumulates its sums element by element.
IQ3_AVX2 static void chunk_avx2(const search_tables *t, const sub_data *sd, const float *id, const float *step,
                                int s0, int ntrial, const sum_terms *st, trials *out) {
    const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
    const __m256 magic = _mm256_set1_ps(12582912.f);
    const __m256i mant = _mm256_set1_epi32(0x007fffff), bias = _mm256_set1_epi32(0x00400000);
    const __m256i zero = _mm256_setzero_si256(), seven = _mm256_set1_epi32(7);
    const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256 idv = _mm256_loadu_ps(id + s0);
    const __m256 stepv = _mm256_loadu_ps(step + s0);
    __m256 sq[8];
    for (int l = 0; l < 8; ++l) sq[l] = _mm256_mul_ps(stepv, _mm256_set1_ps((float)(2 * l + 1)));
    const unsigned live = ntrial - s0 >= 8 ? 0xFFu : (1u << (ntrial - s0)) - 1;
    __m256i off = zero;
    for (int k = 0; k < NGROUP; ++k) {
        __m256i lv[4];
        __m256i c = zero;
        for (int i = 0; i < 4; ++i) {
            const __m256 x = _mm256_set1_ps(sd->xval[4 * k + i]);
            const __m256 f = _mm256_mul_ps(half, _mm256_sub_ps(_mm256_mul_ps(idv, x), one));
            const __m256i l = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(_mm256_add_ps(f, magic)), mant), bias);
            lv[i] = _mm256_max_epi32(zero, _mm256_min_epi32(seven, l));
            c = _mm256_or_si256(c, _mm256_sll_epi32(lv[i], _mm_cvtsi32_si128(3 * i)));
        }
        int32_t cs[8];
        _mm256_storeu_si256((__m256i *)cs, c);
        unsigned miss = 0;
        for (int j = 0; j < 8; ++j) miss |= (unsigned)(t->map[cs[j]] < 0) << j;
        miss &= live;
        if (miss) {
            const __m256i missv = _mm256_cmpgt_epi32(_mm256_and_si256(_mm256_set1_epi32((int)miss), lane_bit), zero);
            off = _mm256_or_si256(off, _mm256_and_si256(missv, _mm256_set1_epi32(1 << k)));
            const __m256i w = search_lanes_avx2(t, c, miss, sd->xval + 4 * k, sd->waux + 4 * k, sq);
            for (int i = 0; i < 4; ++i)
                lv[i] = _mm256_blendv_epi8(lv[i], _mm256_and_si256(_mm256_srli_epi32(w, 3 * i), seven), missv);
        }
        for (int i = 0; i < 4; ++i) _mm256_storeu_si256((__m256i *)&out->lv[4 * k + i][s0], lv[i]);
    }
    int32_t offs[8];
    _mm256_storeu_si256((__m256i *)offs, off);
    for (int j = 0; j < 8; ++j) out->offgrid[s0 + j] = (uint8_t)offs[j];
    __m256 sqx = _mm256_setzero_ps(), sq2 = _mm256_setzero_ps();
    for (int i = 0; i < SUB; ++i) {
        const __m256i l = _mm256_loadu_si256((const __m256i *)&out->lv[i][s0]);
        sqx = _mm256_add_ps(sqx, _mm256_permutevar8x32_ps(st->qx[i], l));
        sq2 = _mm256_add_ps(sq2, _mm256_permutevar8x32_ps(st->q2[i], l));
    }
    _mm256_storeu_ps(&out->sumqx[s0], sqx);
    _mm256_storeu_ps(&out->sumq2[s0], sq2);
}

IQ3_AVX2 static void trials_avx2(const search_tables *t, const sub_data *sd, const float *id, const float *step,
                                 int ntrial, trials *out) {
    sum_terms st;
    sum_terms_avx2(sd, &st);
    for (int s0 = 0; s0 < ntrial; s0 += 8) chunk_avx2(t, sd, id, step, s0, ntrial, &st, out);
}

/// search_lanes_avx2 with sixteen lanes.
IQ3_AVX512 static __m512i search_lanes_avx512(const search_tables *t, __m512i code, __mmask16 miss, const float *xv,
                                              const float *wa, const __m512 *sq) {
    __m512 term[32];
    for (int i = 0; i < 4; ++i) {
        const __m512 x = _mm512_set1_ps(xv[i]), w = _mm512_set1_ps(wa[i]);
        for (int l = 0; l < 8; ++l) {
            const __m512 d = _mm512_sub_ps(sq[l], x);
            term[8 * i + l] = _mm512_mul_ps(_mm512_mul_ps(w, d), d);
        }
    }
    int32_t codes[16];
    _mm512_storeu_si512(codes, code);
    __m512i result = _mm512_setzero_si512();
    while (miss) {
        const int u = codes[__builtin_ctz(miss)];
        const __mmask16 same = _mm512_cmpeq_epi32_mask(code, _mm512_set1_epi32(u));
        miss &= (__mmask16)~same;
        const uint32_t entry = t->list[u];
        const int n = (int)(entry & 0xFF);
        const int32_t *cand = t->cand + (entry >> 8);
        const uint8_t *slot = t->slot + 4 * (size_t)(entry >> 8);
        __m512 best = _mm512_set1_ps(FLT_MAX);
        __m512i win = _mm512_set1_epi32(cand[0]); // kept when no error is below FLT_MAX (ggml aborts)
        for (int j = 0; j < n; ++j, slot += 4) {
            __m512 d2 = _mm512_add_ps(_mm512_setzero_ps(), term[slot[0]]);
            d2 = _mm512_add_ps(d2, term[slot[1]]);
            d2 = _mm512_add_ps(d2, term[slot[2]]);
            d2 = _mm512_add_ps(d2, term[slot[3]]);
            const __mmask16 better = _mm512_cmp_ps_mask(d2, best, _CMP_LT_OQ);
            best = _mm512_mask_mov_ps(best, better, d2);
            win = _mm512_mask_set1_epi32(win, better, cand[j]);
        }
        result = _mm512_mask_mov_epi32(result, same, win);
    }
    return result;
}

/// chunk_avx2 with sixteen lanes, trials s0…s0+15.
IQ3_AVX512 static void chunk_avx512(const search_tables *t, const sub_data *sd, const float *id, const float *step,
                                    int s0, int ntrial, const sum_terms *st, trials *out) {
    const __m512 one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
    const __m512 magic = _mm512_set1_ps(12582912.f);
    const __m512i mant = _mm512_set1_epi32(0x007fffff), bias = _mm512_set1_epi32(0x00400000);
    const __m512i zero = _mm512_setzero_si512(), seven = _mm512_set1_epi32(7);
    const __m512 idv = _mm512_loadu_ps(id + s0);
    const __m512 stepv = _mm512_loadu_ps(step + s0);
    __m512 sq[8];
    for (int l = 0; l < 8; ++l) sq[l] = _mm512_mul_ps(stepv, _mm512_set1_ps((float)(2 * l + 1)));
    const __mmask16 live = (__mmask16)(ntrial - s0 >= 16 ? 0xFFFFu : (1u << (ntrial - s0)) - 1);
    __m512i off = zero;
    for (int k = 0; k < NGROUP; ++k) {
        __m512i lv[4];
        __m512i c = zero;
        for (int i = 0; i < 4; ++i) {
            const __m512 x = _mm512_set1_ps(sd->xval[4 * k + i]);
            const __m512 f = _mm512_mul_ps(half, _mm512_sub_ps(_mm512_mul_ps(idv, x), one));
            const __m512i l = _mm512_sub_epi32(_mm512_and_si512(_mm512_castps_si512(_mm512_add_ps(f, magic)), mant), bias);
            lv[i] = _mm512_max_epi32(zero, _mm512_min_epi32(seven, l));
            c = _mm512_or_si512(c, _mm512_slli_epi32(lv[i], (unsigned)(3 * i)));
        }
        int32_t cs[16];
        _mm512_storeu_si512(cs, c);
        unsigned m = 0;
        for (int j = 0; j < 16; ++j) m |= (unsigned)(t->map[cs[j]] < 0) << j;
        const __mmask16 miss = (__mmask16)(m & live);
        if (miss) {
            off = _mm512_mask_or_epi32(off, miss, off, _mm512_set1_epi32(1 << k));
            const __m512i w = search_lanes_avx512(t, c, miss, sd->xval + 4 * k, sd->waux + 4 * k, sq);
            for (int i = 0; i < 4; ++i)
                lv[i] = _mm512_mask_mov_epi32(lv[i], miss, _mm512_and_si512(_mm512_srli_epi32(w, (unsigned)(3 * i)), seven));
        }
        for (int i = 0; i < 4; ++i) _mm512_storeu_si512(&out->lv[4 * k + i][s0], lv[i]);
    }
    _mm_storeu_si128((__m128i *)&out->offgrid[s0], _mm512_cvtepi32_epi8(off));
    __m512 sqx = _mm512_setzero_ps(), sq2 = _mm512_setzero_ps();
    for (int i = 0; i < SUB; ++i) {
        const __m512i l = _mm512_loadu_si512(&out->lv[i][s0]);
        sqx = _mm512_add_ps(sqx, _mm512_permutexvar_ps(l, _mm512_castps256_ps512(st->qx[i])));
        sq2 = _mm512_add_ps(sq2, _mm512_permutexvar_ps(l, _mm512_castps256_ps512(st->q2[i])));
    }
    _mm512_storeu_ps(&out->sumqx[s0], sqx);
    _mm512_storeu_ps(&out->sumq2[s0], sq2);
}

/// Sixteen trials per step while more than eight remain (iq3_xxs: 16 + 15), the rest eight wide.
IQ3_AVX512 static void trials_avx512(const search_tables *t, const sub_data *sd, const float *id, const float *step,
                                     int ntrial, trials *out) {
    sum_terms st;
    sum_terms_avx2(sd, &st);
    int s0 = 0;
    for (; ntrial - s0 > 8; s0 += 16) chunk_avx512(t, sd, id, step, s0, ntrial, &st, out);
    if (s0 < ntrial) chunk_avx2(t, sd, id, step, s0, ntrial, &st, out);
}
#endif

typedef int (*search_fn)(const search_tables *t, int code, const float *xv, const float *wa, float scale);

typedef struct {
    trial_fn trials;
    search_fn search;
} kernels;

static kernels pick_kernels(void) {
    kernels k = { trials_generic, search_scalar };
#if IQ3_X86
    if (ek_cpu_level() >= EK_LEVEL_AVX2) {
        k.trials = ek_cpu_level() >= EK_LEVEL_AVX512 ? trials_avx512 : trials_avx2;
        k.search = search_avx2;
    }
#endif
    return k;
}

/// The two variants differ in a handful of places; this says which.
typedef struct {
    int half_trials; // trial scales run from −half_trials to +half_trials in steps of 0.2
    bool xxs;
} variant;

/// Quantizes one sub-block: levels L, the sign bytes and the scale. Returns false when ggml skips
/// the sub-block (nothing to quantize), in which case only *scale (0) is set.
static bool quantize_sub(const variant *var, const search_tables *t, const kernels *kern, const float *xb,
                         const float *qw, float sigma2, int8_t *L, uint8_t *signs, float *scale_out,
                         trials *tr) {
    sub_data sd;
    if (qw) {
        for (int i = 0; i < SUB; ++i) sd.weight[i] = qw[i] * sqrtf(sigma2 + xb[i] * xb[i]);
    } else {
        for (int i = 0; i < SUB; ++i) sd.weight[i] = xb[i] * xb[i];
    }
    for (int i = 0; i < SUB; ++i) sd.waux[i] = sqrtf(sd.weight[i]);
    for (int k = 0; k < SUB / 8; ++k) {
        uint8_t s = 0;
        int nflip = 0;
        for (int i = 0; i < 8; ++i) {
            const float v = xb[8 * k + i];
            if (v >= 0) {
                sd.xval[8 * k + i] = v;
            } else {
                sd.xval[8 * k + i] = -v;
                ++nflip;
                s |= (uint8_t)(1u << i);
            }
        }
        if (var->xxs) {
            // iq3_xxs stores seven signs per eight values; the eighth is implied by even parity,
            // so an odd count flips the value where that costs least.
            if (nflip % 2) {
                int imin = 0;
                float min = sd.weight[8 * k] * xb[8 * k] * xb[8 * k];
                for (int i = 1; i < 8; ++i) {
                    const float ax = sd.weight[8 * k + i] * xb[8 * k + i] * xb[8 * k + i];
                    if (ax < min) {
                        min = ax;
                        imin = i;
                    }
                }
                sd.xval[8 * k + imin] = -sd.xval[8 * k + imin];
                s ^= (uint8_t)(1u << imin);
            }
            s &= 127;
        }
        signs[k] = s;
    }
    float max = sd.xval[0];
    for (int i = 1; i < SUB; ++i) max = max_like_ggml(max, sd.xval[i]);
    memset(L, 0, SUB);
    if (var->xxs ? max < 1e-8f : !max) {
        *scale_out = 0;
        return false;
    }
    for (int i = 0; i < SUB; ++i) sd.wx[i] = sd.weight[i] * sd.xval[i];

    const int ntrial = 2 * var->half_trials + 1;
    float id[MAX_TRIALS], step[MAX_TRIALS];
    for (int s = 0; s < MAX_TRIALS; ++s) {
        const int is = (s < ntrial ? s : ntrial - 1) - var->half_trials;
        id[s] = (15 + is * 0.2f) / max;
        step[s] = 1 / id[s];
    }
    kern->trials(t, &sd, id, step, ntrial, tr);

    float best = 0;
    float scale = max / 15;
    int chosen = -1;
    for (int s = 0; s < ntrial; ++s) {
        const float sumqx = tr->sumqx[s], sumq2 = tr->sumq2[s];
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            chosen = s;
        }
    }
    // Before any trial is taken, iq3_xxs counts every group as on the lattice, iq3_s as off it.
    unsigned offgrid = chosen >= 0 ? tr->offgrid[chosen] : var->xxs ? 0u : 0xFFu;
    if (chosen >= 0)
        for (int i = 0; i < SUB; ++i) L[i] = (int8_t)tr->lv[i][chosen];

    if (offgrid && scale > 0) {
        const float id1 = 1 / scale;
        for (int k = 0; k < NGROUP; ++k) {
            // iq3_xxs revisits only the off-lattice groups, iq3_s all of them.
            if (var->xxs && !(offgrid >> k & 1)) continue;
            int code = 0;
            for (int i = 0; i < 4; ++i) code |= clamp_level(nearest_int(0.5f * (id1 * sd.xval[4 * k + i] - 1))) << 3 * i;
            if (t->map[code] < 0) code = kern->search(t, code, sd.xval + 4 * k, sd.waux + 4 * k, scale);
            for (int i = 0; i < 4; ++i) L[4 * k + i] = (int8_t)((code >> 3 * i) & 7);
        }
        float sumqx = 0, sumq2 = 0;
        for (int i = 0; i < SUB; ++i) {
            const float q = (float)(2 * L[i] + 1);
            sumqx += sd.weight[i] * sd.xval[i] * q;
            sumq2 += sd.weight[i] * q * q;
        }
        if (sumq2 > 0) scale = sumqx / sumq2;
    }
    if (scale < 0) {
        // Not expected (ggml says so too), but the scale is stored unsigned: flip it and the signs.
        scale = -scale;
        for (int k = 0; k < SUB / 8; ++k) signs[k] = (uint8_t)(var->xxs ? ~signs[k] & 127 : ~signs[k]);
    }
    *scale_out = scale;
    return true;
}

static inline int grid_index_of(const search_tables *t, const int8_t *L) {
    const int code = L[0] | L[1] << 3 | L[2] << 6 | L[3] << 9;
    return t->map[code];
}

static void quantize_block_xxs(const search_tables *t, const kernels *kern, const float *xbl, const float *qw,
                               uint8_t *blk, trials *tr) {
    static const variant var = { 15, true };
    // Layout: half d, 64 grid indices, 8 × u32 (4 × 7 sign bits | 4-bit scale << 28).
    uint8_t index[NSUB * NGROUP];
    uint32_t packed[NSUB];
    memset(index, 0, sizeof index);
    memset(packed, 0, sizeof packed);
    uint16_t d16 = half_from_float(0.f);
    float sumx2 = 0;
    for (int i = 0; i < QK; ++i) sumx2 += xbl[i] * xbl[i];
    const float sigma2 = 2 * sumx2 / QK;
    float scales[NSUB];
    float max_scale = 0;
    for (int ib = 0; ib < NSUB; ++ib) {
        int8_t L[SUB];
        uint8_t signs[4];
        if (!quantize_sub(&var, t, kern, xbl + SUB * ib, qw ? qw + SUB * ib : NULL, sigma2, L, signs, &scales[ib], tr))
            continue;
        for (int k = 0; k < NGROUP; ++k) index[NGROUP * ib + k] = (uint8_t)grid_index_of(t, L + 4 * k);
        packed[ib] = signs[0] | (uint32_t)signs[1] << 7 | (uint32_t)signs[2] << 14 | (uint32_t)signs[3] << 21;
        max_scale = max_like_ggml(max_scale, scales[ib]);
    }
    if (!max_scale) {
        memset(blk, 0, GGML_IQ3_XXS_BLOCK_BYTES);
        memcpy(blk, &d16, 2);
        return;
    }
    const float d = max_scale / 31;
    d16 = half_from_float(d * 1.0125f);
    const float id = 1 / d;
    for (int ib = 0; ib < NSUB; ++ib) {
        int ls = nearest_int(0.5f * (id * scales[ib] - 1));
        ls = ls < 0 ? 0 : ls > 15 ? 15 : ls;
        packed[ib] |= (uint32_t)ls << 28;
    }
    memcpy(blk, &d16, 2);
    memcpy(blk + 2, index, sizeof index);
    memcpy(blk + 2 + QK / 4, packed, sizeof packed);
}

static void quantize_block_s(const search_tables *t, const kernels *kern, const float *xbl, const float *qw,
                             uint8_t *blk, trials *tr) {
    static const variant var = { 9, false };
    // Layout: half d, qs[64] (low 8 bits of the grid indices), qh[8] (their 9th bits), signs[32],
    // scales[4] (two 4-bit scales each).
    memset(blk, 0, GGML_IQ3_S_BLOCK_BYTES);
    uint8_t *qs = blk + 2, *qh = blk + 2 + QK / 4, *sg = blk + 2 + QK / 4 + QK / 32;
    uint8_t *sc = sg + QK / 8;
    uint16_t d16 = half_from_float(0.f);
    memcpy(blk, &d16, 2);
    float sumx2 = 0;
    for (int i = 0; i < QK; ++i) sumx2 += xbl[i] * xbl[i];
    const float sigma2 = 2 * sumx2 / QK;
    float scales[NSUB];
    float max_scale = 0;
    for (int ib = 0; ib < NSUB; ++ib) {
        int8_t L[SUB];
        uint8_t signs[4];
        // ggml advances its qs and signs cursors only past sub-blocks it quantized, so a skipped
        // (all-zero) sub-block shifts the following ones' bytes down; qh is indexed by position.
        if (!quantize_sub(&var, t, kern, xbl + SUB * ib, qw ? qw + SUB * ib : NULL, sigma2, L, signs, &scales[ib], tr))
            continue;
        for (int k = 0; k < NGROUP; ++k) {
            const int gi = grid_index_of(t, L + 4 * k);
            qs[k] = (uint8_t)(gi & 255);
            qh[ib] |= (uint8_t)((gi >> 8) << k);
        }
        qs += NGROUP;
        memcpy(sg, signs, 4);
        sg += 4;
        max_scale = max_like_ggml(max_scale, scales[ib]);
    }
    if (!max_scale) return;
    const float d = max_scale / 31;
    d16 = half_from_float(d * 1.033f);
    memcpy(blk, &d16, 2);
    const float id = 1 / d;
    for (int ib = 0; ib < NSUB; ib += 2) {
        int l1 = nearest_int(0.5f * (id * scales[ib + 0] - 1));
        l1 = l1 < 0 ? 0 : l1 > 15 ? 15 : l1;
        int l2 = nearest_int(0.5f * (id * scales[ib + 1] - 1));
        l2 = l2 < 0 ? 0 : l2 > 15 ? 15 : l2;
        sc[ib / 2] = (uint8_t)(l1 | l2 << 4);
    }
}

size_t eq_quantize_iq3_xxs(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *quant_weights) {
    const search_tables *t = get_tables(256);
    const kernels kern = pick_kernels();
    const int64_t nblock = n_per_row / QK;
    uint8_t *out = dst;
    trials tr;
    for (int64_t r = 0; r < nrow; ++r)
        for (int64_t b = 0; b < nblock; ++b) {
            quantize_block_xxs(t, &kern, src + r * n_per_row + b * QK, quant_weights ? quant_weights + b * QK : NULL,
                               out, &tr);
            out += GGML_IQ3_XXS_BLOCK_BYTES;
        }
    return (size_t)(nrow * nblock) * GGML_IQ3_XXS_BLOCK_BYTES;
}

size_t eq_quantize_iq3_s(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *quant_weights) {
    const search_tables *t = get_tables(512);
    const kernels kern = pick_kernels();
    const int64_t nblock = n_per_row / QK;
    uint8_t *out = dst;
    trials tr;
    for (int64_t r = 0; r < nrow; ++r)
        for (int64_t b = 0; b < nblock; ++b) {
            quantize_block_s(t, &kern, src + r * n_per_row + b * QK, quant_weights ? quant_weights + b * QK : NULL,
                             out, &tr);
            out += GGML_IQ3_S_BLOCK_BYTES;
        }
    return (size_t)(nrow * nblock) * GGML_IQ3_S_BLOCK_BYTES;
}

// ---------------------------------------------------------------------------------------------
// Dequantization: value = block scale · sub-block scale · lattice coordinate · sign. ggml writes
// the sign as a product with ±1, which its compiler (and ours when optimising) emits as a negation;
// written as one here, so that a NaN scale keeps the same sign bit at every optimisation level.

void eq_dequantize_row_iq3_xxs(const void *src, float *y, int64_t k) {
    const uint8_t *blk = src;
    for (int64_t b = 0; b < k / QK; ++b, blk += GGML_IQ3_XXS_BLOCK_BYTES) {
        uint16_t h;
        memcpy(&h, blk, 2);
        const float d = half_to_float(h);
        const uint8_t *qs = blk + 2;
        for (int ib = 0; ib < NSUB; ++ib) {
            uint32_t aux;
            memcpy(&aux, blk + 2 + QK / 4 + 4 * ib, 4);
            const float db = d * (0.5f + (float)(aux >> 28)) * 0.5f;
            for (int l = 0; l < 4; ++l) {
                const uint8_t sign = ggml_ksigns_iq2xs[(aux >> 7 * l) & 127];
                for (int h2 = 0; h2 < 2; ++h2) {
                    const uint32_t g = ggml_iq3xxs_grid[qs[2 * l + h2]];
                    for (int j = 0; j < 4; ++j) {
                        const float v = db * (float)((g >> 8 * j) & 0xFF);
                        y[4 * h2 + j] = sign & ggml_kmask_iq2xs[4 * h2 + j] ? -v : v;
                    }
                }
                y += 8;
            }
            qs += 8;
        }
    }
}

void eq_dequantize_row_iq3_s(const void *src, float *y, int64_t k) {
    const uint8_t *blk = src;
    for (int64_t b = 0; b < k / QK; ++b, blk += GGML_IQ3_S_BLOCK_BYTES) {
        uint16_t h;
        memcpy(&h, blk, 2);
        const float d = half_to_float(h);
        const uint8_t *qs = blk + 2, *qh = blk + 2 + QK / 4, *signs = qh + QK / 32, *scales = signs + QK / 8;
        for (int ib = 0; ib < NSUB; ++ib) {
            const int sc = ib % 2 ? scales[ib / 2] >> 4 : scales[ib / 2] & 0xF;
            const float db = d * (float)(1 + 2 * sc);
            for (int l = 0; l < 4; ++l) {
                for (int h2 = 0; h2 < 2; ++h2) {
                    const int idx = qs[2 * l + h2] | ((qh[ib] >> (2 * l + h2) & 1) << 8);
                    const uint32_t g = ggml_iq3s_grid[idx];
                    for (int j = 0; j < 4; ++j) {
                        const float v = db * (float)((g >> 8 * j) & 0xFF);
                        y[4 * h2 + j] = signs[l] & ggml_kmask_iq2xs[4 * h2 + j] ? -v : v;
                    }
                }
                y += 8;
            }
            qs += 8;
            signs += 4;
        }
    }
}
