// ggml's 2-bit i-quants (quantize_iq2_xxs, quantize_iq2_xs, quantize_iq2_s in ggml-quants.c and
// their dequantizers), reproduced bit for bit.
//
// All three quantize groups of 8 values onto an E8-like lattice with coordinates 1, 3, 5 (levels
// 0…2; the sign of each value is stored apart). For every sub-block (32 values for iq2_xxs, 16 for
// the others) ggml tries a fan of scales; for each trial scale every group is rounded to levels and,
// when that code is not a lattice point, replaced by the nearest candidate of a precomputed
// neighbour list (nearest by weighted squared error at that trial's scale). The trial with the
// best weighted fit wins; a last pass at the fitted scale re-rounds the groups.
//
// That search is where the time goes. The trials do not depend on one another until the final
// "which is best" comparison, so this file runs them as a batch: the rounding and the two fit sums
// are computed with one trial per vector lane, and the neighbour searches of all trials of one
// group are packed into vector lanes one candidate each (x and weights are shared by the group,
// the scale is per lane). Every per-candidate and per-trial sum is still accumulated term by term
// in ggml's order, and ties are resolved in ggml's order (first candidate of a list, first trial),
// so the bytes are the same on every code path.
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
#define IQ2_X86 1
#include <immintrin.h>
#define IQ2_AVX2 __attribute__((target("avx2")))
#define IQ2_AVX512 __attribute__((target("avx2,avx512f,avx512bw,avx512dq,avx512vl")))
// Keeps the compiler from turning the short vector copy loops of the search into memcpy calls.
#if defined(__clang__)
#define IQ2_NO_MEMCPY __attribute__((no_builtin("memcpy")))
#else
#define IQ2_NO_MEMCPY
#endif
#else
#define IQ2_X86 0
#endif

enum {
    QK = GGML_QK_K,
    MAP_SIZE = 43692, // codes the lattice map covers (see iq2_lattice.c)
    MAX_TRIALS = 24,  // trial scales per sub-block (at most 19), rounded up to whole vectors
    MAX_VALUES = 32,  // values per sub-block
    LANE_CAP = 512,   // candidates buffered per batch of neighbour searches (≥ the longest list)
};

// ---------------------------------------------------------------------------------------------
// Scalar helpers with ggml's exact semantics.

static inline int clamp_level(int l) { return l < 0 ? 0 : l > 2 ? 2 : l; }

/// ggml's MAX(a, b) macro, including which operand survives a NaN.
static inline float max_like_ggml(float a, float b) { return a > b ? a : b; }

static inline void store_u16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

// ---------------------------------------------------------------------------------------------
// Search tables: the lattice of iq2_lattice.c plus, parallel to its neighbour lists, each
// candidate's 16-bit code, so that a candidate's levels are two shifts away (no grid gather).

typedef struct {
    const int *map;              // code → grid index, or −1 − (offset of its neighbour list)
    const uint16_t *neighbours;  // lists: count, then grid indices
    uint16_t *cand_codes;        // same layout as neighbours, each index replaced by its code
    uint16_t grid_codes[1024];   // code of each lattice point
    const uint64_t *grid;
} search_tables;

static search_tables tables_256, tables_512, tables_1024;
static pthread_once_t once_256 = PTHREAD_ONCE_INIT, once_512 = PTHREAD_ONCE_INIT,
                      once_1024 = PTHREAD_ONCE_INIT;

static void build_search(search_tables *t, int grid_size) {
    const eq_iq2_lattice *lat = eq_iq2_lattice_get(grid_size);
    t->map = lat->map;
    t->neighbours = lat->neighbours;
    t->grid = lat->grid;
    for (int j = 0; j < grid_size; ++j) {
        uint8_t bytes[8];
        memcpy(bytes, &lat->grid[j], 8);
        int code = 0;
        for (int i = 0; i < 8; ++i) code |= ((bytes[i] - 1) / 2) << 2 * i;
        t->grid_codes[j] = (uint16_t)code;
    }
    size_t total = 0; // where the list starting furthest in ends
    for (int c = 0; c < MAP_SIZE; ++c) {
        if (lat->map[c] >= 0) continue;
        const size_t off = (size_t)(-1 - lat->map[c]);
        const size_t end = off + 1 + lat->neighbours[off];
        if (end > total) total = end;
    }
    uint16_t *codes = malloc((total + 16) * sizeof(uint16_t)); // + a vector's over-read
    if (!codes) abort();
    memset(codes, 0, (total + 16) * sizeof(uint16_t));
    for (int c = 0; c < MAP_SIZE; ++c) {
        if (lat->map[c] >= 0) continue;
        const size_t off = (size_t)(-1 - lat->map[c]);
        const int n = lat->neighbours[off];
        if (n > LANE_CAP) abort(); // the vector search buffers a whole list; true of ggml's lattices
        codes[off] = (uint16_t)n;
        for (int j = 1; j <= n; ++j) codes[off + j] = t->grid_codes[lat->neighbours[off + j]];
    }
    t->cand_codes = codes;
}

static void build_256(void) { build_search(&tables_256, 256); }
static void build_512(void) { build_search(&tables_512, 512); }
static void build_1024(void) { build_search(&tables_1024, 1024); }

static const search_tables *get_tables(int grid_size) {
    switch (grid_size) {
    case 256: pthread_once(&once_256, build_256); return &tables_256;
    case 512: pthread_once(&once_512, build_512); return &tables_512;
    default: pthread_once(&once_1024, build_1024); return &tables_1024;
    }
}

// ---------------------------------------------------------------------------------------------
// The trial batch of one sub-block, laid out one trial per lane: lv[i*MAX_TRIALS + t] is the
// level of value i under trial t, codes[k*MAX_TRIALS + t] the code of group k under trial t.

typedef struct {
    int n;         // values in the sub-block (16 or 32)
    int ntrials;   // trial scales (13 or 19)
    float num[MAX_TRIALS];    // 5 + 0.1·is: the inverse trial scales times the divisor
    float id[MAX_TRIALS];     // inverse trial scales
    float scale[MAX_TRIALS];  // trial scales (1/id, as ggml computes them)
    int32_t lv[MAX_VALUES * MAX_TRIALS];
    int32_t codes[4 * MAX_TRIALS];
    float sumqx[MAX_TRIALS], sumq2[MAX_TRIALS];
} trial_batch;

/// One neighbour search: list at `off` in the tables, at trial scale `scale`.
typedef struct {
    int off;
    float scale;
} search_req;

/// The CPU-specific kernels. All compute exactly what the generic ones compute.
typedef struct {
    /// weight_i = qw_i·√(sigma2 + x_i²), or 0.25·sigma2 + x_i² without qw; waux_i = √weight_i.
    void (*weights)(int n, const float *xb, const float *qw, float sigma2, float *weight, float *waux);
    /// id = num/div and scale = 1/id of every trial, then lv and codes from xval.
    void (*round_trials)(trial_batch *b, float div, const float *xval);
    /// make_qp_quants' eight trial scales (is = −4…−1, 1…4) for levels 0…nmax: their inverse
    /// scales and weighted squared errors.
    void (*qp_trials)(int n, int nmax, float max, const float *x, const float *w, float *iscale, float *mse);
    /// sumqx and sumq2 of every trial from lv.
    void (*fit_sums)(trial_batch *b, const float *xval, const float *weight);
    /// For each request, the grid index of the first candidate with the smallest
    /// Σ_i waux_i·(scale·q_i − xv_i)² (accumulated in i order), or −1 if none is below FLT_MAX.
    void (*search)(const search_tables *t, int nreq, const search_req *req, const float *xv,
                   const float *wa, int *best);
} kernels;

static void weights_generic(int n, const float *xb, const float *qw, float sigma2, float *weight, float *waux) {
    if (qw) {
        for (int i = 0; i < n; ++i) weight[i] = qw[i] * sqrtf(sigma2 + xb[i] * xb[i]);
    } else {
        for (int i = 0; i < n; ++i) weight[i] = 0.25f * sigma2 + xb[i] * xb[i];
    }
    for (int i = 0; i < n; ++i) waux[i] = sqrtf(weight[i]);
}

static const int qp_is[8] = { -4, -3, -2, -1, 1, 2, 3, 4 };

static void qp_trials_generic(int n, int nmax, float max, const float *x, const float *w, float *iscale, float *mse) {
    for (int t = 0; t < 8; ++t) {
        const float iscale_is = (0.1f * (float)qp_is[t] + (float)nmax) / max;
        const float scale_is = 1 / iscale_is;
        float sum = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale_is * x[i]);
            l = l < nmax ? l : nmax;
            const float diff = x[i] - scale_is * (float)l;
            sum += w[i] * diff * diff;
        }
        iscale[t] = iscale_is;
        mse[t] = sum;
    }
}

static void round_trials_generic(trial_batch *b, float div, const float *xval) {
    const int ngroups = b->n / 8;
    for (int t = 0; t < MAX_TRIALS; ++t) {
        b->id[t] = b->num[t] / div;
        b->scale[t] = 1 / b->id[t];
    }
    for (int t = 0; t < b->ntrials; ++t) {
        for (int k = 0; k < ngroups; ++k) {
            int code = 0;
            for (int i = 0; i < 8; ++i) {
                const int l = clamp_level(nearest_int(0.5f * (b->id[t] * xval[8 * k + i] - 1)));
                b->lv[(8 * k + i) * MAX_TRIALS + t] = l;
                code |= l << 2 * i;
            }
            b->codes[k * MAX_TRIALS + t] = code;
        }
    }
}

static void fit_sums_generic(trial_batch *b, const float *xval, const float *weight) {
    for (int t = 0; t < b->ntrials; ++t) {
        float sumqx = 0, sumq2 = 0;
        for (int i = 0; i < b->n; ++i) {
            const float w = weight[i];
            const float q = (float)(2 * b->lv[i * MAX_TRIALS + t] + 1);
            sumqx += w * xval[i] * q;
            sumq2 += w * q * q;
        }
        b->sumqx[t] = sumqx;
        b->sumq2[t] = sumq2;
    }
}

static void search_generic(const search_tables *t, int nreq, const search_req *req, const float *xv,
                           const float *wa, int *best) {
    for (int r = 0; r < nreq; ++r) {
        const uint16_t *list = t->neighbours + req[r].off;
        const float scale = req[r].scale;
        float best_d2 = FLT_MAX;
        int index = -1;
        for (int j = 1; j <= list[0]; ++j) {
            uint8_t pg[8];
            memcpy(pg, &t->grid[list[j]], 8);
            float d2 = 0;
            for (int i = 0; i < 8; ++i) {
                const float diff = scale * (float)pg[i] - xv[i];
                d2 += wa[i] * diff * diff;
            }
            if (d2 < best_d2) {
                best_d2 = d2;
                index = list[j];
            }
        }
        best[r] = index;
    }
}

#if IQ2_X86
/// nearest_int and the clamp to 0…2 on eight lanes.
IQ2_AVX2 static inline __m256i round_clamp8(__m256 v) {
    const __m256i bits = _mm256_castps_si256(_mm256_add_ps(v, _mm256_set1_ps(12582912.f)));
    const __m256i l = _mm256_sub_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                       _mm256_set1_epi32(0x00400000));
    return _mm256_max_epi32(_mm256_setzero_si256(), _mm256_min_epi32(_mm256_set1_epi32(2), l));
}

IQ2_AVX2 static void weights_avx2(int n, const float *xb, const float *qw, float sigma2, float *weight, float *waux) {
    const __m256 s2 = _mm256_set1_ps(sigma2), quarter = _mm256_set1_ps(0.25f * sigma2);
    for (int i = 0; i < n; i += 8) {
        const __m256 x = _mm256_loadu_ps(xb + i);
        const __m256 w = qw ? _mm256_mul_ps(_mm256_loadu_ps(qw + i), _mm256_sqrt_ps(_mm256_add_ps(s2, _mm256_mul_ps(x, x))))
                            : _mm256_add_ps(quarter, _mm256_mul_ps(x, x));
        _mm256_storeu_ps(weight + i, w);
        _mm256_storeu_ps(waux + i, _mm256_sqrt_ps(w));
    }
}

IQ2_AVX2 static void qp_trials_avx2(int n, int nmax, float max, const float *x, const float *w, float *iscale,
                                    float *mse) {
    const __m256i is = _mm256_loadu_si256((const __m256i *)qp_is);
    const __m256 iscale_is = _mm256_div_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(0.1f), _mm256_cvtepi32_ps(is)),
                                                         _mm256_set1_ps((float)nmax)),
                                           _mm256_set1_ps(max));
    const __m256 scale_is = _mm256_div_ps(_mm256_set1_ps(1.0f), iscale_is);
    const __m256i top = _mm256_set1_epi32(nmax);
    __m256 sum = _mm256_setzero_ps();
    for (int i = 0; i < n; ++i) {
        const __m256 xi = _mm256_set1_ps(x[i]);
        const __m256i bits = _mm256_castps_si256(_mm256_add_ps(_mm256_mul_ps(iscale_is, xi), _mm256_set1_ps(12582912.f)));
        const __m256i l = _mm256_min_epi32(_mm256_sub_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                                            _mm256_set1_epi32(0x00400000)),
                                           top);
        const __m256 diff = _mm256_sub_ps(xi, _mm256_mul_ps(scale_is, _mm256_cvtepi32_ps(l)));
        sum = _mm256_add_ps(sum, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(w[i]), diff), diff));
    }
    _mm256_storeu_ps(iscale, iscale_is);
    _mm256_storeu_ps(mse, sum);
}

IQ2_AVX2 static void round_trials_avx2(trial_batch *b, float div, const float *xval) {
    const int ngroups = b->n / 8;
    const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f), d = _mm256_set1_ps(div);
    for (int t = 0; t < b->ntrials; t += 8) {
        const __m256 id = _mm256_div_ps(_mm256_loadu_ps(b->num + t), d);
        _mm256_storeu_ps(b->id + t, id);
        _mm256_storeu_ps(b->scale + t, _mm256_div_ps(one, id));
        for (int k = 0; k < ngroups; ++k) {
            __m256i code = _mm256_setzero_si256();
            for (int i = 0; i < 8; ++i) {
                const __m256 x = _mm256_set1_ps(xval[8 * k + i]);
                const __m256i l = round_clamp8(_mm256_mul_ps(half, _mm256_sub_ps(_mm256_mul_ps(id, x), one)));
                _mm256_storeu_si256((__m256i *)(b->lv + (8 * k + i) * MAX_TRIALS + t), l);
                code = _mm256_or_si256(code, _mm256_sll_epi32(l, _mm_cvtsi32_si128(2 * i)));
            }
            _mm256_storeu_si256((__m256i *)(b->codes + k * MAX_TRIALS + t), code);
        }
    }
}

IQ2_AVX2 static void fit_sums_avx2(trial_batch *b, const float *xval, const float *weight) {
    const __m256i one = _mm256_set1_epi32(1);
    for (int t = 0; t < b->ntrials; t += 8) {
        __m256 sumqx = _mm256_setzero_ps(), sumq2 = _mm256_setzero_ps();
        for (int i = 0; i < b->n; ++i) {
            const __m256i l = _mm256_loadu_si256((const __m256i *)(b->lv + i * MAX_TRIALS + t));
            const __m256 q = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_add_epi32(l, l), one));
            const __m256 w = _mm256_set1_ps(weight[i]);
            const __m256 wx = _mm256_set1_ps(weight[i] * xval[i]);
            sumqx = _mm256_add_ps(sumqx, _mm256_mul_ps(wx, q));
            sumq2 = _mm256_add_ps(sumq2, _mm256_mul_ps(_mm256_mul_ps(w, q), q));
        }
        _mm256_storeu_ps(b->sumqx + t, sumqx);
        _mm256_storeu_ps(b->sumq2 + t, sumq2);
    }
}

/// Candidates of several searches, one per lane, request after request. The slack lets the copies
/// and fills run in whole vectors past the last lane.
typedef struct {
    int n;
    int start[MAX_TRIALS], count[MAX_TRIALS];
    uint16_t code[LANE_CAP + 16];
    float scale[LANE_CAP + 16];
    float d2[LANE_CAP + 16];
} lane_buf;

/// Appends the candidates of list `off` at `scale` as request r (lanes up to the next multiple of
/// 16 are written too, so that no vector reads an unset lane).
IQ2_AVX2 IQ2_NO_MEMCPY static inline void append_lanes(lane_buf *lb, const search_tables *t, int r, int off, float scale) {
    const int count = t->neighbours[off];
    const int p0 = lb->n;
    lb->start[r] = p0;
    lb->count[r] = count;
    const uint16_t *src = t->cand_codes + off + 1; // padded: reading 16 past a list is fine
    for (int j = 0; j < count; j += 16)
        _mm256_storeu_si256((__m256i *)(lb->code + p0 + j), _mm256_loadu_si256((const __m256i *)(src + j)));
    const __m256 s = _mm256_set1_ps(scale);
    for (int j = 0; j < count; j += 16) {
        _mm256_storeu_ps(lb->scale + p0 + j, s);
        _mm256_storeu_ps(lb->scale + p0 + j + 8, s);
    }
    lb->n = p0 + count;
}

/// Horizontal minimum of eight floats (none NaN).
IQ2_AVX2 static inline float hmin8(__m256 v) {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

/// Distances of the buffered candidates, then for each request [r0, r1) the first candidate of
/// smallest distance among those below FLT_MAX (NaN never qualifies), as ggml's strict-< loop picks.
IQ2_AVX2 static void finish_lanes(lane_buf *lb, const search_tables *t, int r0, int r1, const float *xv,
                                  const float *wa, int *best) {
    // q = 2·level + 1 is the grid byte ggml converts to float; the table is indexed by the low 3 bits
    // of the shifted code (the level and one bit of the next coordinate, hence the repeat).
    const __m256 qtab = _mm256_setr_ps(1, 3, 5, 7, 1, 3, 5, 7);
    __m256 x[8], w[8];
    for (int i = 0; i < 8; ++i) {
        x[i] = _mm256_set1_ps(xv[i]);
        w[i] = _mm256_set1_ps(wa[i]);
    }
    for (int p = 0; p < lb->n; p += 8) {
        const __m256i code = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(lb->code + p)));
        const __m256 s = _mm256_loadu_ps(lb->scale + p);
        __m256 d2 = _mm256_setzero_ps();
        for (int i = 0; i < 8; ++i) {
            const __m256 q = _mm256_permutevar8x32_ps(qtab, _mm256_srli_epi32(code, 2 * i));
            const __m256 diff = _mm256_sub_ps(_mm256_mul_ps(s, q), x[i]);
            d2 = _mm256_add_ps(d2, _mm256_mul_ps(_mm256_mul_ps(w[i], diff), diff));
        }
        _mm256_storeu_ps(lb->d2 + p, d2);
    }
    const __m256 big = _mm256_set1_ps(FLT_MAX);
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int r = r0; r < r1; ++r) {
        const float *d2 = lb->d2 + lb->start[r];
        const int count = lb->count[r];
        // Lanes past the list or not below FLT_MAX become FLT_MAX, which never wins.
        __m256 m = big;
        for (int j = 0; j < count; j += 8) {
            const __m256 inside = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(count - j), iota));
            const __m256 v = _mm256_loadu_ps(d2 + j);
            const __m256 ok = _mm256_and_ps(inside, _mm256_cmp_ps(v, big, _CMP_LT_OQ));
            m = _mm256_min_ps(m, _mm256_blendv_ps(big, v, ok));
        }
        const float mn = hmin8(m);
        int index = -1;
        if (mn < FLT_MAX) {
            const __m256 target = _mm256_set1_ps(mn);
            // Lanes past the list come after all of its lanes, so the first hit is its first minimum.
            for (int j = 0;; j += 8) {
                const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(d2 + j), target, _CMP_EQ_OQ));
                if (hit) {
                    index = t->map[lb->code[lb->start[r] + j + __builtin_ctz((unsigned)hit)]];
                    break;
                }
            }
        }
        best[r] = index;
    }
    lb->n = 0;
}

IQ2_AVX2 IQ2_NO_MEMCPY static void search_avx2(const search_tables *t, int nreq, const search_req *req,
                                               const float *xv, const float *wa, int *best) {
    lane_buf lb;
    lb.n = 0;
    int first = 0;
    for (int r = 0; r < nreq; ++r) {
        if (lb.n + t->neighbours[req[r].off] > LANE_CAP) {
            finish_lanes(&lb, t, first, r, xv, wa, best);
            first = r;
        }
        append_lanes(&lb, t, r, req[r].off, req[r].scale);
    }
    finish_lanes(&lb, t, first, nreq, xv, wa, best);
}

/// finish_lanes on sixteen lanes.
IQ2_AVX512 static void finish_lanes_avx512(lane_buf *lb, const search_tables *t, int r0, int r1, const float *xv,
                                           const float *wa, int *best) {
    const __m512 qtab = _mm512_setr_ps(1, 3, 5, 7, 1, 3, 5, 7, 1, 3, 5, 7, 1, 3, 5, 7); // 4 index bits
    __m512 x[8], w[8];
    for (int i = 0; i < 8; ++i) {
        x[i] = _mm512_set1_ps(xv[i]);
        w[i] = _mm512_set1_ps(wa[i]);
    }
    for (int p = 0; p < lb->n; p += 16) {
        const __m512i code = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(lb->code + p)));
        const __m512 s = _mm512_loadu_ps(lb->scale + p);
        __m512 d2 = _mm512_setzero_ps();
        for (int i = 0; i < 8; ++i) {
            const __m512 q = _mm512_permutexvar_ps(_mm512_srli_epi32(code, 2 * i), qtab);
            const __m512 diff = _mm512_sub_ps(_mm512_mul_ps(s, q), x[i]);
            d2 = _mm512_add_ps(d2, _mm512_mul_ps(_mm512_mul_ps(w[i], diff), diff));
        }
        _mm512_storeu_ps(lb->d2 + p, d2);
    }
    const __m512 big = _mm512_set1_ps(FLT_MAX);
    for (int r = r0; r < r1; ++r) {
        const float *d2 = lb->d2 + lb->start[r];
        const int count = lb->count[r];
        __m512 m = big;
        for (int j = 0; j < count; j += 16) {
            const __mmask16 inside = count - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (count - j)) - 1);
            const __m512 v = _mm512_loadu_ps(d2 + j);
            m = _mm512_mask_min_ps(m, _mm512_mask_cmp_ps_mask(inside, v, big, _CMP_LT_OQ), m, v);
        }
        const float mn = _mm512_reduce_min_ps(m);
        int index = -1;
        if (mn < FLT_MAX) {
            const __m512 target = _mm512_set1_ps(mn);
            for (int j = 0;; j += 16) {
                const unsigned hit = _mm512_cmp_ps_mask(_mm512_loadu_ps(d2 + j), target, _CMP_EQ_OQ);
                if (hit) {
                    index = t->map[lb->code[lb->start[r] + j + __builtin_ctz(hit)]];
                    break;
                }
            }
        }
        best[r] = index;
    }
    lb->n = 0;
}

IQ2_AVX512 IQ2_NO_MEMCPY static void search_avx512(const search_tables *t, int nreq, const search_req *req,
                                                   const float *xv, const float *wa, int *best) {
    lane_buf lb;
    lb.n = 0;
    int first = 0;
    for (int r = 0; r < nreq; ++r) {
        if (lb.n + t->neighbours[req[r].off] > LANE_CAP) {
            finish_lanes_avx512(&lb, t, first, r, xv, wa, best);
            first = r;
        }
        append_lanes(&lb, t, r, req[r].off, req[r].scale);
    }
    finish_lanes_avx512(&lb, t, first, nreq, xv, wa, best);
}
#endif

static kernels pick_kernels(void) {
    kernels k = { weights_generic, round_trials_generic, qp_trials_generic, fit_sums_generic, search_generic };
#if IQ2_X86
    if (ek_cpu_level() >= EK_LEVEL_AVX2) {
        k.weights = weights_avx2;
        k.qp_trials = qp_trials_avx2;
        k.round_trials = round_trials_avx2;
        k.fit_sums = fit_sums_avx2;
        k.search = search_avx2;
    }
    if (ek_cpu_level() >= EK_LEVEL_AVX512) k.search = search_avx512;
#endif
    return k;
}

// ---------------------------------------------------------------------------------------------
// The per-sub-block algorithm shared by the three types.

/// Grid index of the code of levels `L`, or of the best neighbour at `scale`; ggml asserts that a
/// search finds a candidate (it cannot when every distance is NaN or ≥ FLT_MAX, i.e. non-finite
/// input) and aborts. We take the list's first candidate then, so such input yields some block.
static int nearest_point(const search_tables *t, const kernels *kern, int code, const float *xv,
                         const float *wa, float scale) {
    const int m = t->map[code];
    if (m >= 0) return m;
    const search_req req = { -1 - m, scale };
    int best;
    kern->search(t, 1, &req, xv, wa, &best);
    return best >= 0 ? best : t->neighbours[req.off + 1];
}

static void set_levels(const search_tables *t, int grid_index, int8_t *L) {
    const int code = t->grid_codes[grid_index];
    for (int i = 0; i < 8; ++i) L[i] = (int8_t)((code >> 2 * i) & 3);
}

/// ggml's trial loop over the scales id_t = (5 + 0.1·is)/div for is in [first_is, −first_is]:
/// on return L, *scale and on_grid hold the best trial's levels, fitted scale and per-group
/// "rounded onto the lattice directly" flags; they are left untouched if no trial fits.
static void run_trials(const search_tables *t, const kernels *kern, trial_batch *b, int first_is, float div,
                       const float *xval, const float *weight, const float *waux, int8_t *L, float *scale,
                       bool *on_grid) {
    const int ngroups = b->n / 8;
    if (b->ntrials != 1 - 2 * first_is) {
        b->ntrials = 1 - 2 * first_is;
        for (int tr = 0; tr < MAX_TRIALS; ++tr) {
            const int is = tr < b->ntrials ? first_is + tr : 0; // padding lanes: any finite trial
            b->num[tr] = 5 + (float)is * 0.1f;
        }
    }
    kern->round_trials(b, div, xval);

    bool aux_on_grid[MAX_TRIALS][4];
    for (int k = 0; k < ngroups; ++k) {
        search_req req[MAX_TRIALS];
        int which[MAX_TRIALS], best[MAX_TRIALS];
        int nreq = 0;
        for (int tr = 0; tr < b->ntrials; ++tr) { // branch-free: on or off the lattice is a coin toss
            const int m = t->map[b->codes[k * MAX_TRIALS + tr]];
            aux_on_grid[tr][k] = m >= 0;
            req[nreq].off = -1 - m;
            req[nreq].scale = b->scale[tr];
            which[nreq] = tr;
            nreq += m < 0;
        }
        if (!nreq) continue;
        kern->search(t, nreq, req, xval + 8 * k, waux + 8 * k, best);
        for (int r = 0; r < nreq; ++r) {
            const int g = best[r] >= 0 ? best[r] : t->neighbours[req[r].off + 1];
            const int code = t->grid_codes[g];
            for (int i = 0; i < 8; ++i) b->lv[(8 * k + i) * MAX_TRIALS + which[r]] = (code >> 2 * i) & 3;
        }
    }
    kern->fit_sums(b, xval, weight);

    float best = 0;
    int chosen = -1;
    for (int tr = 0; tr < b->ntrials; ++tr) {
        const float sumqx = b->sumqx[tr], sumq2 = b->sumq2[tr];
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            *scale = sumqx / sumq2;
            best = *scale * sumqx;
            chosen = tr;
        }
    }
    if (chosen < 0) return;
    for (int i = 0; i < b->n; ++i) L[i] = (int8_t)b->lv[i * MAX_TRIALS + chosen];
    if (on_grid)
        for (int k = 0; k < ngroups; ++k) on_grid[k] = aux_on_grid[chosen][k];
}

/// Σ w·x·q and Σ w·q² with q = 2L+1, in ggml's order.
static void fit(int n, const float *xval, const float *weight, const int8_t *L, float *sumqx, float *sumq2) {
    float sx = 0, s2 = 0;
    for (int i = 0; i < n; ++i) {
        const float w = weight[i];
        const float q = (float)(2 * L[i] + 1);
        sx += w * xval[i] * q;
        s2 += w * q * q;
    }
    *sumqx = sx;
    *sumq2 = s2;
}

/// Code of 8 levels; levels outside 0…2 (only from a failed fit on non-finite input, where ggml
/// aborts) give a code that the map does not cover.
static int code_of(const int8_t *L) {
    int code = 0;
    for (int i = 0; i < 8; ++i) {
        if (L[i] < 0 || L[i] > 2) return -1;
        code |= L[i] << 2 * i;
    }
    return code;
}

/// Grid index for the final levels; ggml aborts ("point not on grid") where this returns 0.
static int final_index(const search_tables *t, const int8_t *L) {
    const int code = code_of(L);
    const int m = code >= 0 ? t->map[code] : -1;
    return m >= 0 ? m : 0;
}

/// xval = |x| with, when `even_signs`, the smallest-weighted value of an odd-negative group flipped
/// so that the group has an even number of sign flips (iq2_xxs and iq2_xs store 7 sign bits).
static uint8_t fold_signs(const float *xb, const float *weight, float *xval, bool even_signs) {
    // Branch-free: the signs are random. A NaN counts as negative and −0 as non-negative, as in ggml.
    unsigned s = 0;
    for (int i = 0; i < 8; ++i) {
        const unsigned neg = !(xb[i] >= 0);
        xval[i] = bits_f32(f32_bits(xb[i]) ^ neg << 31); // −x flips the sign bit, of a NaN too
        s |= neg << i;
    }
    if (even_signs && (__builtin_popcount(s) & 1)) {
        int imin = 0;
        float min = weight[0] * xb[0] * xb[0];
        for (int i = 1; i < 8; ++i) {
            const float ax = weight[i] * xb[i] * xb[i];
            if (ax < min) {
                min = ax;
                imin = i;
            }
        }
        xval[imin] = -xval[imin];
        s ^= 1u << imin;
    }
    return (uint8_t)s;
}

/// ggml's make_qp_quants(n, nmax, x, L, w): a non-negative scale for levels 0…nmax.
static float make_qp_quants(const kernels *kern, int n, int nmax, const float *x, uint8_t *L, const float *w) {
    float max = 0;
    for (int i = 0; i < n; ++i) max = max_like_ggml(max, x[i]);
    if (max < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = (float)nmax / max;
    for (int i = 0; i < n; ++i) L[i] = (uint8_t)nearest_int(iscale * x[i]);
    const float scale0 = 1 / iscale;
    float best_mse = 0;
    for (int i = 0; i < n; ++i) {
        const float diff = x[i] - scale0 * L[i];
        best_mse += w[i] * diff * diff;
    }
    float iscales[8], mses[8];
    kern->qp_trials(n, nmax, max, x, w, iscales, mses);
    for (int t = 0; t < 8; ++t) {
        if (mses[t] < best_mse) {
            best_mse = mses[t];
            iscale = iscales[t];
        }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * x[i]);
        l = l < nmax ? l : nmax;
        L[i] = (uint8_t)l;
        sumlx += w[i] * x[i] * (float)l;
        suml2 += w[i] * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            const float wi = w[i];
            float slx = sumlx - wi * x[i] * L[i];
            float sl2 = suml2 - wi * L[i] * L[i];
            if (slx > 0 && sl2 > 0) {
                int new_l = nearest_int(x[i] * sl2 / slx);
                new_l = new_l < nmax ? new_l : nmax;
                if (new_l != L[i]) {
                    slx += wi * x[i] * (float)new_l;
                    sl2 += wi * (float)new_l * (float)new_l;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (uint8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

static float block_sigma2(const float *xbl, float factor) {
    float sumx2 = 0;
    for (int i = 0; i < QK; ++i) sumx2 += xbl[i] * xbl[i];
    return factor * sumx2 / (float)QK;
}

/// The 4-bit sub-block scale code ggml stores: nearest_int(0.5·(scale/d − 1)) clamped to 0…15.
static int scale_code(float id, float scale) {
    const int l = nearest_int(0.5f * (id * scale - 1));
    return l < 0 ? 0 : l > 15 ? 15 : l;
}

// ---------------------------------------------------------------------------------------------
// iq2_xxs: 8 sub-blocks of 32; per sub-block 4 grid bytes, then 4×7 sign bits and a 4-bit scale.

static void quantize_block_xxs(const search_tables *t, const kernels *kern, trial_batch *b, const float *xbl,
                               const float *qw, uint8_t *out) {
    float scales[QK / 32];
    uint32_t q2[QK / 16];
    memset(q2, 0, sizeof q2);
    float max_scale = 0;
    const float sigma2 = block_sigma2(xbl, 1);

    for (int ib = 0; ib < QK / 32; ++ib) {
        const float *xb = xbl + 32 * ib;
        const float *w = qw + 32 * ib;
        float weight[32], waux[32], xval[32];
        int8_t L[32];
        uint8_t signs[4];
        kern->weights(32, xb, w, sigma2, weight, waux);
        for (int k = 0; k < 4; ++k) signs[k] = fold_signs(xb + 8 * k, weight + 8 * k, xval + 8 * k, true) & 127;
        float max = xval[0];
        for (int i = 1; i < 32; ++i) max = max_like_ggml(max, xval[i]);
        if (max < 1e-15f) {
            scales[ib] = 0;
            continue;
        }
        float scale = make_qp_quants(kern, 32, 4, xval, (uint8_t *)L, weight);
        const float eff_max = scale * 3;
        if (eff_max <= 0) {
            scales[ib] = 0;
            continue;
        }
        b->n = 32;
        run_trials(t, kern, b, -6, eff_max, xval, weight, waux, L, &scale, NULL);
        if (scale > 0) {
            const float id = 1 / scale;
            for (int k = 0; k < 4; ++k) {
                int code = 0;
                for (int i = 0; i < 8; ++i) code |= clamp_level(nearest_int(0.5f * (id * xval[8 * k + i] - 1))) << 2 * i;
                set_levels(t, nearest_point(t, kern, code, xval + 8 * k, waux + 8 * k, scale), L + 8 * k);
            }
            float sumqx, sumq2;
            fit(32, xval, weight, L, &sumqx, &sumq2);
            if (sumq2 > 0) scale = sumqx / sumq2;
        }
        if (scale < 0) {
            // Unreachable for finite input (ggml keeps it in case); the scale is stored unsigned.
            scale = -scale;
            for (int k = 0; k < 4; ++k) signs[k] = (uint8_t)(~signs[k] & 127);
        }
        for (int k = 0; k < 4; ++k) {
            q2[2 * ib + 0] |= (uint32_t)final_index(t, L + 8 * k) << 8 * k;
            q2[2 * ib + 1] |= (uint32_t)signs[k] << 7 * k;
        }
        scales[ib] = scale;
        max_scale = max_like_ggml(max_scale, scale);
    }

    if (max_scale == 0) {
        memset(out, 0, GGML_IQ2_XXS_BLOCK_BYTES);
        return;
    }
    const float d = max_scale / 31;
    store_u16(out, half_from_float(d));
    const float id = 1 / d;
    for (int ib = 0; ib < QK / 32; ++ib) q2[2 * ib + 1] |= (uint32_t)scale_code(id, scales[ib]) << 28;
    memcpy(out + 2, q2, sizeof q2);
}

// ---------------------------------------------------------------------------------------------
// iq2_xs and iq2_s: 16 sub-blocks of 16. They differ in the lattice (512 vs 1024 points), the
// sign handling (7 bits with even parity vs 8 free bits), the weights without an imatrix (iq2_s
// only), the "all small" threshold, a 0.9875 factor on d (iq2_s), and the block layout.

/// One 16-value sub-block: its levels L, signs and scale. Returns false for a sub-block of (near)
/// zeros, which ggml leaves all zero in the output (scale 0, no grid index, no signs).
static bool quantize_sub16(const search_tables *t, const kernels *kern, trial_batch *b, bool iq2_s,
                           const float *xb, const float *qw, float sigma2, int8_t *L, uint8_t *signs,
                           float *scale_out) {
    float weight[16], waux[16], xval[16];
    kern->weights(16, xb, qw, sigma2, weight, waux);
    for (int k = 0; k < 2; ++k) {
        const uint8_t s = fold_signs(xb + 8 * k, weight + 8 * k, xval + 8 * k, !iq2_s);
        signs[k] = iq2_s ? s : (uint8_t)(s & 127);
    }
    float max = xval[0];
    for (int i = 1; i < 16; ++i) max = max_like_ggml(max, xval[i]);
    memset(L, 0, 16);
    *scale_out = 0;
    if (max < (iq2_s ? 1e-8f : 1e-15f)) return false;

    float scale = max / 5;
    bool on_grid[2] = { true, true };
    b->n = 16;
    run_trials(t, kern, b, -9, max, xval, weight, waux, L, &scale, on_grid);
    if ((!on_grid[0] || !on_grid[1]) && scale > 0) {
        const float id = 1 / scale;
        for (int k = 0; k < 2; ++k) {
            if (on_grid[k]) continue;
            int code = 0;
            for (int i = 0; i < 8; ++i) {
                const int l = clamp_level(nearest_int(0.5f * (id * xval[8 * k + i] - 1)));
                code |= l << 2 * i;
                L[8 * k + i] = (int8_t)l;
            }
            if (t->map[code] < 0)
                set_levels(t, nearest_point(t, kern, code, xval + 8 * k, waux + 8 * k, scale), L + 8 * k);
        }
        float sumqx, sumq2;
        fit(16, xval, weight, L, &sumqx, &sumq2);
        if (sumq2 > 0) scale = sumqx / sumq2;
    }
    if (scale < 0) {
        // Unreachable for finite input (ggml keeps it in case); the scale is stored unsigned.
        scale = -scale;
        for (int k = 0; k < 2; ++k) signs[k] = iq2_s ? (uint8_t)~signs[k] : (uint8_t)(~signs[k] & 127);
    }
    *scale_out = scale;
    return true;
}

static void quantize_block_xs(const search_tables *t, const kernels *kern, trial_batch *b, const float *xbl,
                              const float *qw, uint8_t *out) {
    float scales[QK / 16];
    uint16_t q2[QK / 8];
    float max_scale = 0;
    const float sigma2 = block_sigma2(xbl, 1);
    for (int ib = 0; ib < QK / 16; ++ib) {
        int8_t L[16];
        uint8_t signs[2];
        float scale;
        q2[2 * ib] = q2[2 * ib + 1] = 0;
        if (quantize_sub16(t, kern, b, false, xbl + 16 * ib, qw + 16 * ib, sigma2, L, signs, &scale))
            for (int k = 0; k < 2; ++k) q2[2 * ib + k] = (uint16_t)(final_index(t, L + 8 * k) | signs[k] << 9);
        scales[ib] = scale;
        max_scale = max_like_ggml(max_scale, scale);
    }
    // d (2 bytes), qs (QK/8 uint16), scales (QK/32 bytes)
    memset(out, 0, GGML_IQ2_XS_BLOCK_BYTES);
    if (max_scale == 0) return;
    const float d = max_scale / 31;
    store_u16(out, half_from_float(d));
    const float id = 1 / d;
    uint8_t *sc = out + 2 + QK / 4;
    for (int ib = 0; ib < QK / 16; ++ib) sc[ib / 2] |= (uint8_t)(scale_code(id, scales[ib]) << 4 * (ib % 2));
    memcpy(out + 2, q2, sizeof q2);
}

static void quantize_block_s(const search_tables *t, const kernels *kern, trial_batch *b, const float *xbl,
                             const float *qw, uint8_t *out) {
    // d (2 bytes), qs (QK/8 grid low bytes, then QK/8 sign bytes), qh (QK/32), scales (QK/32)
    memset(out, 0, GGML_IQ2_S_BLOCK_BYTES);
    uint8_t *qs = out + 2, *signs_out = out + 2 + QK / 8, *qh = out + 2 + QK / 4, *sc = qh + QK / 32;
    float scales[QK / 16];
    float max_scale = 0;
    const float sigma2 = block_sigma2(xbl, 2);
    for (int ib = 0; ib < QK / 16; ++ib) {
        int8_t L[16];
        uint8_t signs[2];
        float scale;
        if (quantize_sub16(t, kern, b, true, xbl + 16 * ib, qw ? qw + 16 * ib : NULL, sigma2, L, signs, &scale))
            for (int k = 0; k < 2; ++k) {
                const int i8 = 2 * ib + k;
                const int g = final_index(t, L + 8 * k);
                qs[i8] = (uint8_t)(g & 255);
                qh[i8 / 4] |= (uint8_t)((g >> 8) << 2 * (i8 % 4));
                signs_out[i8] = signs[k];
            }
        scales[ib] = scale;
        max_scale = max_like_ggml(max_scale, scale);
    }
    if (max_scale == 0) return; // d and the scales stay zero; ggml keeps the indices and signs written
    const float d = max_scale / 31;
    store_u16(out, half_from_float(d * 0.9875f));
    const float id = 1 / d;
    for (int ib = 0; ib < QK / 16; ++ib) sc[ib / 2] |= (uint8_t)(scale_code(id, scales[ib]) << 4 * (ib % 2));
}

// ---------------------------------------------------------------------------------------------
// Public entry points.

typedef void (*block_fn)(const search_tables *, const kernels *, trial_batch *, const float *, const float *,
                         uint8_t *);

static size_t quantize_rows(block_fn fn, int grid_size, size_t block_bytes, const float *src, void *dst,
                            int64_t nrow, int64_t n_per_row, const float *quant_weights) {
    const search_tables *t = get_tables(grid_size);
    const kernels kern = pick_kernels();
    trial_batch b;
    memset(&b, 0, sizeof b);
    const int64_t nblock = n_per_row / QK;
    uint8_t *out = dst;
    for (int64_t row = 0; row < nrow; ++row) {
        const float *x = src + row * n_per_row;
        for (int64_t ibl = 0; ibl < nblock; ++ibl) {
            fn(t, &kern, &b, x + QK * ibl, quant_weights ? quant_weights + QK * ibl : NULL, out);
            out += block_bytes;
        }
    }
    return (size_t)(nrow * nblock) * block_bytes;
}

size_t eq_quantize_iq2_xxs(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *quant_weights) {
    if (!quant_weights) abort(); // ggml requires an importance matrix for this type
    return quantize_rows(quantize_block_xxs, 256, GGML_IQ2_XXS_BLOCK_BYTES, src, dst, nrow, n_per_row, quant_weights);
}

size_t eq_quantize_iq2_xs(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *quant_weights) {
    if (!quant_weights) abort(); // ggml requires an importance matrix for this type
    return quantize_rows(quantize_block_xs, 512, GGML_IQ2_XS_BLOCK_BYTES, src, dst, nrow, n_per_row, quant_weights);
}

size_t eq_quantize_iq2_s(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *quant_weights) {
    return quantize_rows(quantize_block_s, 1024, GGML_IQ2_S_BLOCK_BYTES, src, dst, nrow, n_per_row, quant_weights);
}

/// 8 values of one group: db · grid byte, negated where the sign bit is set (ggml multiplies by ±1).
static void dequant_group(float db, uint64_t grid_point, uint8_t signs, float *y) {
    uint8_t g[8];
    memcpy(g, &grid_point, 8);
    for (int j = 0; j < 8; ++j) y[j] = db * (float)g[j] * (signs & ggml_kmask_iq2xs[j] ? -1.f : 1.f);
}

void eq_dequantize_row_iq2_xxs(const void *src, float *y, int64_t k) {
    const uint8_t *x = src;
    for (int64_t i = 0; i < k / QK; ++i, x += GGML_IQ2_XXS_BLOCK_BYTES) {
        const float d = half_to_float(load_u16(x));
        for (int ib = 0; ib < QK / 32; ++ib) {
            uint32_t aux[2];
            memcpy(aux, x + 2 + 8 * ib, 8);
            const float db = d * (0.5f + (float)(aux[1] >> 28)) * 0.25f;
            for (int l = 0; l < 4; ++l, y += 8)
                dequant_group(db, ggml_iq2xxs_grid[(aux[0] >> 8 * l) & 255], ggml_ksigns_iq2xs[(aux[1] >> 7 * l) & 127], y);
        }
    }
}

void eq_dequantize_row_iq2_xs(const void *src, float *y, int64_t k) {
    const uint8_t *x = src;
    for (int64_t i = 0; i < k / QK; ++i, x += GGML_IQ2_XS_BLOCK_BYTES) {
        const float d = half_to_float(load_u16(x));
        const uint8_t *sc = x + 2 + QK / 4;
        for (int ib = 0; ib < QK / 32; ++ib) {
            const float db[2] = { d * (0.5f + (float)(sc[ib] & 0xf)) * 0.25f, d * (0.5f + (float)(sc[ib] >> 4)) * 0.25f };
            for (int l = 0; l < 4; ++l, y += 8) {
                const uint16_t q = load_u16(x + 2 + 2 * (4 * ib + l));
                dequant_group(db[l / 2], ggml_iq2xs_grid[q & 511], ggml_ksigns_iq2xs[q >> 9], y);
            }
        }
    }
}

void eq_dequantize_row_iq2_s(const void *src, float *y, int64_t k) {
    const uint8_t *x = src;
    for (int64_t i = 0; i < k / QK; ++i, x += GGML_IQ2_S_BLOCK_BYTES) {
        const float d = half_to_float(load_u16(x));
        const uint8_t *qs = x + 2, *signs = x + 2 + QK / 8, *qh = x + 2 + QK / 4, *sc = qh + QK / 32;
        for (int ib = 0; ib < QK / 32; ++ib) {
            const float db[2] = { d * (0.5f + (float)(sc[ib] & 0xf)) * 0.25f, d * (0.5f + (float)(sc[ib] >> 4)) * 0.25f };
            for (int l = 0; l < 4; ++l, y += 8) {
                const int g = qs[4 * ib + l] | ((qh[ib] << (8 - 2 * l)) & 0x300);
                dequant_group(db[l / 2], ggml_iq2s_grid[g], signs[4 * ib + l], y);
            }
        }
    }
}
