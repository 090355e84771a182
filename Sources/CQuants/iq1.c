// iq1_s and iq1_m: ggml's quantize_iq1_s / quantize_iq1_m (ggml-quants.c) reproduced byte for byte,
// and their dequantizers.
//
// Both quantizers split a super-block of 256 values into blocks (iq1_s: 32, iq1_m: 16) that take
// the levels {-1, 0, +1} shifted by ±1/8, pick per block the split of the sorted values into the
// three levels that maximises the weighted fit, and snap each group of 8 levels to the 2048-point
// iq1 lattice (through the lattice's neighbour lists when the group is not a lattice point).
//
// Vectorised without changing a bit: the split trials of many blocks run side by side, one block
// per lane, each lane replaying ggml's sequential loop with ggml's operations; the neighbour
// searches put candidates in lanes, each candidate's error summed in ggml's order and the first
// smallest kept, as ggml's loop does; the sorts compute stable ranks, which is the order glibc's
// (merge-sort) qsort gives ggml. Every dispatch level therefore writes the same bytes.
//
// Where ggml's GGML_ASSERTs would abort (a NaN scale, no neighbour with a finite error — inputs
// with ±∞ or magnitudes near FLT_MAX) the block is written as ggml writes a block without a
// solution (scale 0, no lattice bits) instead of aborting.
#pragma STDC FP_CONTRACT OFF
#ifdef __clang__
#pragma clang fp contract(off)
#endif

#include "CQuants.h"
#include "scalar.h"
#include "CKernels.h"
#include "ggml_format.h"
#include "ggml_iq_grids.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define IQ1_X86 1
#include <immintrin.h>
// No "fma" here: the products and sums below must stay separately rounded.
#define IQ1_AVX2 __attribute__((target("avx2")))
#define IQ1_AVX512 __attribute__((target("avx2,avx512f,avx512bw,avx512dq,avx512vl")))
#else
#define IQ1_X86 0
#endif

enum {
    QK = GGML_QK_K,
    GRID_SIZE = 2048,
    S_BLOCK = 32,             // iq1_s block length
    M_BLOCK = 16,             // iq1_m block length
    S_BYTES = GGML_IQ1_S_BLOCK_BYTES,
    M_BYTES = GGML_IQ1_M_BLOCK_BYTES,
    PAD = 16,                 // slack after the neighbour lists, read a vector at a time
};

// Levels -1, 0, +1 shifted by +delta ("p") or -delta ("m"); ggml's IQ1S_DELTA = IQ1M_DELTA = 1/8.
#define IQ1_DELTA 0.125f
static const float lv_p[3] = { -1 + IQ1_DELTA, IQ1_DELTA, 1 + IQ1_DELTA };
static const float lv_m[3] = { -1 - IQ1_DELTA, -IQ1_DELTA, 1 - IQ1_DELTA };

// ---------------------------------------------------------------------------------------------
// Small exact helpers

static inline void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

// ---------------------------------------------------------------------------------------------
// Tables

// A group of 8 levels (0…2 each) is addressed two ways: its 2-bit code Σ l_j·4^j (ggml's kmap
// index, and what the vector kernels decode) and its base-3 code Σ l_j·3^j (a dense 6561-entry
// index into our own copy of the lookup).
enum { CODES3 = 6561 };

typedef struct {
    int32_t map3[CODES3];     // base-3 code → grid index, or −1 − offset of its list in `lists`
    uint16_t code[GRID_SIZE]; // grid index → 2-bit code
    uint16_t *lists;          // per off-lattice group: count, then the 2-bit codes of its neighbours
} iq1_tables;

static iq1_tables tables;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static int code2_of_code3(int t) {
    int c = 0;
    for (int i = 0; i < 8; ++i, t /= 3) c |= (t % 3) << 2 * i;
    return c;
}

static inline int code3_of_code2(unsigned c) {
    int t = 0;
    for (int i = 7; i >= 0; --i) t = 3 * t + (int)((c >> 2 * i) & 3);
    return t;
}

// The neighbour lists (which lattice points, in which order) are ggml's, from iq2_lattice.c; here
// they are only re-packed densely for the 4513 off-lattice groups that can occur (ggml's table
// also lists codes containing the unused level 3), so that they stay cache-resident, and stored
// as codes, which is what the searches read.
static void build_tables(void) {
    // Each byte of ggml_iq1s_grid is a level minus one (-1, 0, 1).
    for (int k = 0; k < GRID_SIZE; ++k) {
        uint16_t c = 0;
        for (int i = 0; i < 8; ++i) {
            const int level = (int8_t)(ggml_iq1s_grid[k] >> 8 * i) + 1;
            if (level < 0 || level > 2) abort(); // not the iq1 lattice
            c |= (uint16_t)(level << 2 * i);
        }
        tables.code[k] = c;
    }
    const eq_iq2_lattice *lat = eq_iq2_lattice_get(GRID_SIZE);
    if (!lat || !lat->map || !lat->neighbours) abort();
    size_t total = 0;
    for (int t = 0; t < CODES3; ++t) {
        const int m = lat->map[code2_of_code3(t)];
        if (m < 0) total += 1 + (size_t)lat->neighbours[-m - 1];
    }
    uint16_t *lists = calloc(total + PAD, sizeof(uint16_t));
    if (!lists) abort();
    size_t at = 0;
    for (int t = 0; t < CODES3; ++t) {
        const int m = lat->map[code2_of_code3(t)];
        if (m >= 0) {
            if (m >= GRID_SIZE) abort();
            tables.map3[t] = m;
            continue;
        }
        const uint16_t *src = lat->neighbours + (-m - 1);
        if (src[0] == 0) abort(); // ggml asserts a non-empty list
        tables.map3[t] = -1 - (int32_t)at;
        lists[at] = src[0];
        for (int j = 1; j <= src[0]; ++j) {
            if (src[j] >= GRID_SIZE) abort();
            lists[at + j] = tables.code[src[j]];
        }
        at += 1 + (size_t)src[0];
    }
    tables.lists = lists;
}

static const iq1_tables *get_tables(void) {
    pthread_once(&tables_once, build_tables);
    return &tables;
}

/// Correctly rounded square root without errno handling, so that the weight loops vectorise.
static inline float sqrt_exact(float v) {
#if defined(__has_builtin)
#if __has_builtin(__builtin_elementwise_sqrt)
    return __builtin_elementwise_sqrt(v);
#else
    return sqrtf(v);
#endif
#else
    return sqrtf(v);
#endif
}

// ---------------------------------------------------------------------------------------------
// Portable kernels

/// Neighbour search over `list` (count, then candidate codes) for the group `xval` with weights
/// `w`, scale and level values `xg`: ggml's d2 = Σ_i w_i·(scale·xg[l_i] − x_i)² summed over
/// i = 0…7 in order, the candidate kept by a strict `<` against a running best that starts at
/// FLT_MAX. Returns the winner's code, or −1 if no candidate's error is below FLT_MAX.
/// The per-coordinate terms depend only on (i, level), so they are computed once per call.
static int nb_best_generic(const uint16_t *list, const float *xval, const float *w, float scale, const float *xg) {
    float tt[8][3];
    for (int l = 0; l < 3; ++l) {
        const float sq = scale * xg[l];
        for (int i = 0; i < 8; ++i) {
            const float diff = sq - xval[i];
            tt[i][l] = w[i] * diff * diff;
        }
    }
    float best = FLT_MAX;
    int code = -1;
    for (int j = 1; j <= list[0]; ++j) {
        const unsigned c = list[j];
        float d2 = tt[0][c & 3]; // ggml starts from 0 + first term: same value up to the sign of 0
        for (int i = 1; i < 8; ++i) d2 += tt[i][(c >> 2 * i) & 3];
        if (d2 < best) {
            best = d2;
            code = (int)c;
        }
    }
    return code;
}

/// Stable ascending order of n values without NaN (ggml qsorts (value, index) pairs with a
/// comparator that sees only the value; glibc's qsort there is a merge sort, hence stable): value
/// i goes to rank #{j : x_j < x_i} + #{j < i : x_j == x_i}. Branch-free, so it vectorises.
static void sort_generic(const float *x, int n, uint8_t *order) {
    for (int i = 0; i < n; ++i) {
        int r = 0;
        for (int j = 0; j < i; ++j) r += x[j] <= x[i];
        for (int j = i + 1; j < n; ++j) r += x[j] < x[i];
        order[r] = (uint8_t)i;
    }
}

// ---------------------------------------------------------------------------------------------
// The split trials
//
// Per block, ggml tries every split i1 ≤ i2 of the block's values sorted ascending (level 0 below
// position i1, 1 up to i2, 2 from there) with every shift variant, in the order i1, i2, variant.
// It accepts a candidate when q2 > 0 and qx·qx > best·q2, and then sets best = (qx/q2)·qx; the
// last accepted candidate wins. Acceptance depends on that running best, so the sequence cannot be
// reordered; instead the kernels replay it for many blocks at once, one block per vector lane
// (see the tiles below). The per-block formulas here are the reference the kernels reproduce
// term by term, and what recomputes the winner's scale.

/// A block's winner: split points, variant (iq1_s: shift +1 or −1; iq1_m: 0…3) and scale qx/q2;
/// i1 < 0 when no candidate was accepted.
typedef struct {
    int i1, i2, sel;
    float scale;
} trial_pick;

// iq1_s, for split (i1, i2) of the 32 sorted values with prefix sums sx (of w·x) and sw (of w):
//   qx = ((sx[i1] − sx[0])·p0 + (sx[i2] − sx[i1])·p1) + (sx[32] − sx[i2])·p2
//   q2 = ((sw[i1] − sw[0])·p0·p0 + (sw[i2] − sw[i1])·p1·p1) + (sw[32] − sw[i2])·p2·p2
// with (p0, p1, p2) = lv_p for shift +1 and lv_m for shift −1: ggml's expression, term by term.
// As lv_m[1] = −lv_p[1], b·m1 = −(b·p1) and (bw·m1)·m1 = (bw·p1)·p1 exactly, so the kernels
// compute those products once for both shifts.
typedef struct {
    float sx[S_BLOCK + 1], sw[S_BLOCK + 1];
    float cxp[S_BLOCK + 1], cxm[S_BLOCK + 1], cwp[S_BLOCK + 1], cwm[S_BLOCK + 1]; // the i2-only terms
} s_terms;

static void s_terms_finish(s_terms *t) {
    for (int j = 0; j <= S_BLOCK; ++j) {
        const float cx = t->sx[S_BLOCK] - t->sx[j], cw = t->sw[S_BLOCK] - t->sw[j];
        t->cxp[j] = cx * lv_p[2];
        t->cxm[j] = cx * lv_m[2];
        t->cwp[j] = cw * lv_p[2] * lv_p[2];
        t->cwm[j] = cw * lv_m[2] * lv_m[2];
    }
}

typedef struct {
    float a_xp, a_xm, a_wp, a_wm, s1, w1;
} s_row; // the i1-only terms

static inline s_row s_row_terms(const s_terms *t, int i1) {
    const float a = t->sx[i1] - t->sx[0], aw = t->sw[i1] - t->sw[0];
    s_row r = { a * lv_p[0], a * lv_m[0], aw * lv_p[0] * lv_p[0], aw * lv_m[0] * lv_m[0], t->sx[i1], t->sw[i1] };
    return r;
}

/// qx and q2 of one candidate (sel: +1 or −1).
static inline void s_candidate(const s_terms *t, const s_row *r, int i2, int sel, float *qx, float *q2) {
    const float bp = (t->sx[i2] - r->s1) * lv_p[1], bw2 = (t->sw[i2] - r->w1) * lv_p[1] * lv_p[1];
    *qx = sel == 1 ? (r->a_xp + bp) + t->cxp[i2] : (r->a_xm - bp) + t->cxm[i2];
    *q2 = sel == 1 ? (r->a_wp + bw2) + t->cwp[i2] : (r->a_wm + bw2) + t->cwm[i2];
}

// iq1_m keeps the prefix sums per half (h = 0, 1) of its 16 values, px (of w·x) and pw (of w),
// because each half has its own shift; for split (i1, i2):
//   qx_p[h] = tx[h]·p2 − (px[h][i1] + px[h][i2]),  qx_m[h] the same with m2,
//   q2_p[h] = (tw[h]·p2·p2 + pw[h][i1]·cp1) + pw[h][i2]·cp2,  q2_m[h] the same with m2, cm1, cm2,
// (tx, tw the totals) and the four variants combine the halves' signs (+,+), (+,−), (−,+), (−,−),
// tried in that order with qx = qx_a[0] + qx_b[1], q2 = q2_a[0] + q2_b[1].
typedef struct {
    float px[2][M_BLOCK + 1], pw[2][M_BLOCK + 1];
    float wp[2][M_BLOCK + 1], wm[2][M_BLOCK + 1]; // pw·cp2, pw·cm2
    float tx[2], tw[2];
} m_terms;

static const float m_p2 = 1 + IQ1_DELTA, m_m2 = 1 - IQ1_DELTA;
#define M_CP1 (lv_p[0] * lv_p[0] - lv_p[1] * lv_p[1])
#define M_CP2 (lv_p[1] * lv_p[1] - lv_p[2] * lv_p[2])
#define M_CM1 (lv_m[0] * lv_m[0] - lv_m[1] * lv_m[1])
#define M_CM2 (lv_m[1] * lv_m[1] - lv_m[2] * lv_m[2])

static void m_terms_finish(m_terms *t) {
    for (int h = 0; h < 2; ++h) {
        t->tx[h] = t->px[h][M_BLOCK];
        t->tw[h] = t->pw[h][M_BLOCK];
        for (int j = 0; j <= M_BLOCK; ++j) {
            t->wp[h][j] = t->pw[h][j] * M_CP2;
            t->wm[h][j] = t->pw[h][j] * M_CM2;
        }
    }
}

typedef struct {
    float ax[2], tp[2], tm[2], bp[2], bm[2];
} m_row; // the i1-only terms

static inline m_row m_row_terms(const m_terms *t, int i1) {
    m_row r;
    for (int h = 0; h < 2; ++h) {
        r.ax[h] = t->px[h][i1];
        r.tp[h] = t->tx[h] * m_p2;
        r.tm[h] = t->tx[h] * m_m2;
        r.bp[h] = t->tw[h] * m_p2 * m_p2 + t->pw[h][i1] * M_CP1;
        r.bm[h] = t->tw[h] * m_m2 * m_m2 + t->pw[h][i1] * M_CM1;
    }
    return r;
}

/// qx and q2 of the four variants of split (i1, i2).
static inline void m_candidates(const m_terms *t, const m_row *r, int i2, float *qx, float *q2) {
    float xp[2], xm[2], qp[2], qm[2];
    for (int h = 0; h < 2; ++h) {
        const float s = r->ax[h] + t->px[h][i2];
        xp[h] = r->tp[h] - s;
        xm[h] = r->tm[h] - s;
        qp[h] = r->bp[h] + t->wp[h][i2];
        qm[h] = r->bm[h] + t->wm[h][i2];
    }
    qx[0] = xp[0] + xp[1]; q2[0] = qp[0] + qp[1];
    qx[1] = xp[0] + xm[1]; q2[1] = qp[0] + qm[1];
    qx[2] = xm[0] + xp[1]; q2[2] = qm[0] + qp[1];
    qx[3] = xm[0] + xm[1]; q2[3] = qm[0] + qm[1];
}

// The kernels replay the trials of TILE blocks side by side, block b in lane b: every lane runs
// ggml's sequence over the same candidates with its own running best, so candidate order and tie
// rule are ggml's by construction. A tile holds the blocks' prefix sums (lane-minor); blocks
// without a trial hold zeros, so that q2 = 0 there and nothing is accepted. Each lane reports the
// id of its last acceptance, from which the pick (and its scale, recomputed with the same
// operations) follows.
enum { TILE = 32 };

typedef struct {
    float sx[S_BLOCK + 1][TILE], sw[S_BLOCK + 1][TILE];
} s_tile;

typedef struct {
    float px[2][M_BLOCK + 1][TILE], pw[2][M_BLOCK + 1][TILE];
} m_tile;

static void s_terms_of_lane(const s_tile *T, int b, s_terms *t) {
    for (int j = 0; j <= S_BLOCK; ++j) {
        t->sx[j] = T->sx[j][b];
        t->sw[j] = T->sw[j][b];
    }
    s_terms_finish(t);
}

static void m_terms_of_lane(const m_tile *T, int b, m_terms *t) {
    for (int h = 0; h < 2; ++h)
        for (int j = 0; j <= M_BLOCK; ++j) {
            t->px[h][j] = T->px[h][j][b];
            t->pw[h][j] = T->pw[h][j][b];
        }
    m_terms_finish(t);
}

// Lane ids: iq1_s i1 << 7 | i2 << 1 | (shift −1); iq1_m i1 << 8 | i2 << 2 | variant; −1: none.
static void s_tile_picks(const s_tile *T, const bool *active, const int32_t *win, trial_pick *pick) {
    for (int b = 0; b < TILE; ++b) {
        pick[b].i1 = -1;
        if (!active[b] || win[b] < 0) continue;
        s_terms t;
        s_terms_of_lane(T, b, &t);
        const int i1 = win[b] >> 7, i2 = (win[b] >> 1) & 63, sel = win[b] & 1 ? -1 : 1;
        const s_row r = s_row_terms(&t, i1);
        float qx, q2;
        s_candidate(&t, &r, i2, sel, &qx, &q2);
        pick[b] = (trial_pick){ i1, i2, sel, qx / q2 };
    }
}

static void m_tile_picks(const m_tile *T, const bool *active, const int32_t *win, trial_pick *pick) {
    for (int b = 0; b < TILE; ++b) {
        pick[b].i1 = -1;
        if (!active[b] || win[b] < 0) continue;
        m_terms t;
        m_terms_of_lane(T, b, &t);
        const int i1 = win[b] >> 8, i2 = (win[b] >> 2) & 63, k = win[b] & 3;
        const m_row r = m_row_terms(&t, i1);
        float qx[4], q2[4];
        m_candidates(&t, &r, i2, qx, q2);
        pick[b] = (trial_pick){ i1, i2, k, qx[k] / q2[k] };
    }
}

// The portable tile trials: the same side-by-side replay in plain C, the loops over lanes written
// without branches so that the compiler vectorises them (no lane depends on another).
static void trial_s_tile_generic(const s_tile *T, const bool *active, trial_pick *pick) {
    float cxp[S_BLOCK + 1][TILE], cxm[S_BLOCK + 1][TILE], cwp[S_BLOCK + 1][TILE], cwm[S_BLOCK + 1][TILE];
    for (int j = 0; j <= S_BLOCK; ++j)
        for (int b = 0; b < TILE; ++b) {
            const float cx = T->sx[S_BLOCK][b] - T->sx[j][b], cw = T->sw[S_BLOCK][b] - T->sw[j][b];
            cxp[j][b] = cx * lv_p[2];
            cxm[j][b] = cx * lv_m[2];
            cwp[j][b] = cw * lv_p[2] * lv_p[2];
            cwm[j][b] = cw * lv_m[2] * lv_m[2];
        }
    float best[TILE];
    int32_t win[TILE];
    for (int b = 0; b < TILE; ++b) {
        best[b] = -FLT_MAX;
        win[b] = -1;
    }
    const float p1 = lv_p[1];
    for (int i1 = 0; i1 <= S_BLOCK; ++i1) {
        float axp[TILE], axm[TILE], awp[TILE], awm[TILE];
        for (int b = 0; b < TILE; ++b) {
            const float a = T->sx[i1][b] - T->sx[0][b], aw = T->sw[i1][b] - T->sw[0][b];
            axp[b] = a * lv_p[0];
            axm[b] = a * lv_m[0];
            awp[b] = aw * lv_p[0] * lv_p[0];
            awm[b] = aw * lv_m[0] * lv_m[0];
        }
        for (int i2 = i1; i2 <= S_BLOCK; ++i2) {
            const int32_t id = i1 << 7 | i2 << 1;
            for (int b = 0; b < TILE; ++b) {
                const float bp = (T->sx[i2][b] - T->sx[i1][b]) * p1, bw2 = (T->sw[i2][b] - T->sw[i1][b]) * p1 * p1;
                const float qxp = (axp[b] + bp) + cxp[i2][b], q2p = (awp[b] + bw2) + cwp[i2][b];
                const float sp = qxp / q2p * qxp;
                const int okp = (q2p > 0) & (qxp * qxp > best[b] * q2p);
                best[b] = okp ? sp : best[b];
                win[b] = okp ? id : win[b];
                const float qxm = (axm[b] - bp) + cxm[i2][b], q2m = (awm[b] + bw2) + cwm[i2][b];
                const float sm = qxm / q2m * qxm;
                const int okm = (q2m > 0) & (qxm * qxm > best[b] * q2m);
                best[b] = okm ? sm : best[b];
                win[b] = okm ? id | 1 : win[b];
            }
        }
    }
    s_tile_picks(T, active, win, pick);
}

static void trial_m_tile_generic(const m_tile *T, const bool *active, trial_pick *pick) {
    float wp[2][M_BLOCK + 1][TILE], wm[2][M_BLOCK + 1][TILE], tp[2][TILE], tm[2][TILE], tpp[2][TILE], tmm[2][TILE];
    for (int h = 0; h < 2; ++h) {
        for (int b = 0; b < TILE; ++b) {
            const float tx = T->px[h][M_BLOCK][b], tw = T->pw[h][M_BLOCK][b];
            tp[h][b] = tx * m_p2;
            tm[h][b] = tx * m_m2;
            tpp[h][b] = tw * m_p2 * m_p2;
            tmm[h][b] = tw * m_m2 * m_m2;
        }
        for (int j = 0; j <= M_BLOCK; ++j)
            for (int b = 0; b < TILE; ++b) {
                wp[h][j][b] = T->pw[h][j][b] * M_CP2;
                wm[h][j][b] = T->pw[h][j][b] * M_CM2;
            }
    }
    float best[TILE];
    int32_t win[TILE];
    for (int b = 0; b < TILE; ++b) {
        best[b] = -FLT_MAX;
        win[b] = -1;
    }
    for (int i1 = 0; i1 <= M_BLOCK; ++i1) {
        float bp[2][TILE], bm[2][TILE];
        for (int h = 0; h < 2; ++h)
            for (int b = 0; b < TILE; ++b) {
                bp[h][b] = tpp[h][b] + T->pw[h][i1][b] * M_CP1;
                bm[h][b] = tmm[h][b] + T->pw[h][i1][b] * M_CM1;
            }
        for (int i2 = i1; i2 <= M_BLOCK; ++i2) {
            const int32_t id = i1 << 8 | i2 << 2;
            for (int b = 0; b < TILE; ++b) {
                const float s0 = T->px[0][i1][b] + T->px[0][i2][b], s1 = T->px[1][i1][b] + T->px[1][i2][b];
                const float xp0 = tp[0][b] - s0, xm0 = tm[0][b] - s0, xp1 = tp[1][b] - s1, xm1 = tm[1][b] - s1;
                const float qp0 = bp[0][b] + wp[0][i2][b], qm0 = bm[0][b] + wm[0][i2][b];
                const float qp1 = bp[1][b] + wp[1][i2][b], qm1 = bm[1][b] + wm[1][i2][b];
                const float qx[4] = { xp0 + xp1, xp0 + xm1, xm0 + xp1, xm0 + xm1 };
                const float q2[4] = { qp0 + qp1, qp0 + qm1, qm0 + qp1, qm0 + qm1 };
                for (int k = 0; k < 4; ++k) {
                    const float sv = qx[k] / q2[k] * qx[k];
                    const int ok = (q2[k] > 0) & (qx[k] * qx[k] > best[b] * q2[k]);
                    best[b] = ok ? sv : best[b];
                    win[b] = ok ? id | k : win[b];
                }
            }
        }
    }
    m_tile_picks(T, active, win, pick);
}

#if IQ1_X86

/// The rank of value i in a stable ascending sort: #{j : x_j < x_i} + #{j < i : x_j == x_i}.
IQ1_AVX2 static void sort_avx2(const float *x, int n, uint8_t *order) {
    __m256i acc[4] = { _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256() };
    __m256 xv[4];
    const int nv = n / 8;
    for (int v = 0; v < nv; ++v) xv[v] = _mm256_loadu_ps(x + 8 * v);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int j = 0; j < n; ++j) {
        const __m256 xj = _mm256_broadcast_ss(x + j);
        const int vj = j >> 3;
        for (int v = 0; v < nv; ++v) {
            __m256 hit;
            if (v < vj) {
                hit = _mm256_cmp_ps(xj, xv[v], _CMP_LT_OQ); // i < j: strictly smaller only
            } else if (v > vj) {
                hit = _mm256_cmp_ps(xj, xv[v], _CMP_LE_OQ); // i > j: ties count too
            } else {
                const __m256 after = _mm256_castsi256_ps(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32(j & 7)));
                hit = _mm256_blendv_ps(_mm256_cmp_ps(xj, xv[v], _CMP_LT_OQ), _mm256_cmp_ps(xj, xv[v], _CMP_LE_OQ), after);
            }
            acc[v] = _mm256_sub_epi32(acc[v], _mm256_castps_si256(hit));
        }
    }
    int32_t rank[32];
    for (int v = 0; v < nv; ++v) _mm256_storeu_si256((__m256i *)(rank + 8 * v), acc[v]);
    for (int i = 0; i < n; ++i) order[rank[i]] = (uint8_t)i;
}

IQ1_AVX512 static void sort_avx512(const float *x, int n, uint8_t *order) {
    __m512i acc[2] = { _mm512_setzero_si512(), _mm512_setzero_si512() };
    __m512 xv[2];
    const int nv = n / 16;
    for (int v = 0; v < nv; ++v) xv[v] = _mm512_loadu_ps(x + 16 * v);
    const __m512i one = _mm512_set1_epi32(1);
    for (int j = 0; j < n; ++j) {
        const __m512 xj = _mm512_set1_ps(x[j]);
        const int vj = j >> 4;
        for (int v = 0; v < nv; ++v) {
            __mmask16 hit;
            if (v < vj) {
                hit = _mm512_cmp_ps_mask(xj, xv[v], _CMP_LT_OQ);
            } else if (v > vj) {
                hit = _mm512_cmp_ps_mask(xj, xv[v], _CMP_LE_OQ);
            } else {
                const __mmask16 after = (__mmask16)(0xFFFFu << ((j & 15) + 1)); // lanes i > j
                hit = (__mmask16)((_mm512_cmp_ps_mask(xj, xv[v], _CMP_LE_OQ) & after) |
                                  (_mm512_cmp_ps_mask(xj, xv[v], _CMP_LT_OQ) & (__mmask16)~after));
            }
            acc[v] = _mm512_mask_add_epi32(acc[v], hit, acc[v], one);
        }
    }
    int32_t rank[32];
    for (int v = 0; v < nv; ++v) _mm512_storeu_si512(rank + 16 * v, acc[v]);
    for (int i = 0; i < n; ++i) order[rank[i]] = (uint8_t)i;
}

// The tile trials. One step per candidate and lane: accept where q2 > 0 and qx·qx > best·q2, then
// best = (qx/q2)·qx and the lane's id = this candidate. The division does not depend on the
// running best, so it stays off the per-lane chain; two (AVX-512) or two-of-four (AVX2)
// independent lane vectors are interleaved to cover that chain's latency.
#define STEP_512(v, qx, q2, id)                                                                         \
    do {                                                                                                \
        const __m512 qx_ = (qx), q2_ = (q2);                                                            \
        const __mmask16 ok = _mm512_mask_cmp_ps_mask(_mm512_cmp_ps_mask(q2_, zero, _CMP_GT_OQ),         \
                                                     _mm512_mul_ps(qx_, qx_), _mm512_mul_ps(best[v], q2_), _CMP_GT_OQ); \
        best[v] = _mm512_mask_mov_ps(best[v], ok, _mm512_mul_ps(_mm512_div_ps(qx_, q2_), qx_));         \
        win[v] = _mm512_mask_mov_epi32(win[v], ok, _mm512_set1_epi32(id));                              \
    } while (0)

#define STEP_256(v, qx, q2, id)                                                                         \
    do {                                                                                                \
        const __m256 qx_ = (qx), q2_ = (q2);                                                            \
        const __m256 ok = _mm256_and_ps(_mm256_cmp_ps(q2_, zero, _CMP_GT_OQ),                           \
                                        _mm256_cmp_ps(_mm256_mul_ps(qx_, qx_), _mm256_mul_ps(best[v], q2_), _CMP_GT_OQ)); \
        best[v] = _mm256_blendv_ps(best[v], _mm256_mul_ps(_mm256_div_ps(qx_, q2_), qx_), ok);            \
        win[v] = _mm256_blendv_ps(win[v], _mm256_castsi256_ps(_mm256_set1_epi32(id)), ok);              \
    } while (0)

static bool any_active(const bool *active, int n) {
    bool any = false;
    for (int i = 0; i < n; ++i) any |= active[i];
    return any;
}

IQ1_AVX512 static void trial_s_tile_avx512(const s_tile *T, const bool *active, trial_pick *pick) {
    const __m512 zero = _mm512_setzero_ps();
    const __m512 p0 = _mm512_set1_ps(lv_p[0]), p1 = _mm512_set1_ps(lv_p[1]), p2 = _mm512_set1_ps(lv_p[2]);
    const __m512 m0 = _mm512_set1_ps(lv_m[0]), m2 = _mm512_set1_ps(lv_m[2]);
    __m512 cxp[2][S_BLOCK + 1], cxm[2][S_BLOCK + 1], cwp[2][S_BLOCK + 1], cwm[2][S_BLOCK + 1];
    for (int v = 0; v < 2; ++v) {
        const __m512 tx = _mm512_loadu_ps(T->sx[S_BLOCK] + 16 * v), tw = _mm512_loadu_ps(T->sw[S_BLOCK] + 16 * v);
        for (int j = 0; j <= S_BLOCK; ++j) {
            const __m512 cx = _mm512_sub_ps(tx, _mm512_loadu_ps(T->sx[j] + 16 * v));
            const __m512 cw = _mm512_sub_ps(tw, _mm512_loadu_ps(T->sw[j] + 16 * v));
            cxp[v][j] = _mm512_mul_ps(cx, p2);
            cxm[v][j] = _mm512_mul_ps(cx, m2);
            cwp[v][j] = _mm512_mul_ps(_mm512_mul_ps(cw, p2), p2);
            cwm[v][j] = _mm512_mul_ps(_mm512_mul_ps(cw, m2), m2);
        }
    }
    __m512 best[2] = { _mm512_set1_ps(-FLT_MAX), _mm512_set1_ps(-FLT_MAX) };
    __m512i win[2] = { _mm512_set1_epi32(-1), _mm512_set1_epi32(-1) };
    for (int i1 = 0; i1 <= S_BLOCK; ++i1) {
        __m512 x1[2], w1[2], axp[2], axm[2], awp[2], awm[2];
        for (int v = 0; v < 2; ++v) {
            x1[v] = _mm512_loadu_ps(T->sx[i1] + 16 * v);
            w1[v] = _mm512_loadu_ps(T->sw[i1] + 16 * v);
            const __m512 a = _mm512_sub_ps(x1[v], _mm512_loadu_ps(T->sx[0] + 16 * v));
            const __m512 aw = _mm512_sub_ps(w1[v], _mm512_loadu_ps(T->sw[0] + 16 * v));
            axp[v] = _mm512_mul_ps(a, p0);
            axm[v] = _mm512_mul_ps(a, m0);
            awp[v] = _mm512_mul_ps(_mm512_mul_ps(aw, p0), p0);
            awm[v] = _mm512_mul_ps(_mm512_mul_ps(aw, m0), m0);
        }
        for (int i2 = i1; i2 <= S_BLOCK; ++i2) {
            const int id = i1 << 7 | i2 << 1;
            for (int v = 0; v < 2; ++v) {
                const __m512 bp = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(T->sx[i2] + 16 * v), x1[v]), p1);
                const __m512 bw = _mm512_sub_ps(_mm512_loadu_ps(T->sw[i2] + 16 * v), w1[v]);
                const __m512 bw2 = _mm512_mul_ps(_mm512_mul_ps(bw, p1), p1);
                STEP_512(v, _mm512_add_ps(_mm512_add_ps(axp[v], bp), cxp[v][i2]), _mm512_add_ps(_mm512_add_ps(awp[v], bw2), cwp[v][i2]), id);
                STEP_512(v, _mm512_add_ps(_mm512_sub_ps(axm[v], bp), cxm[v][i2]), _mm512_add_ps(_mm512_add_ps(awm[v], bw2), cwm[v][i2]), id | 1);
            }
        }
    }
    int32_t w[TILE];
    _mm512_storeu_si512(w, win[0]);
    _mm512_storeu_si512(w + 16, win[1]);
    s_tile_picks(T, active, w, pick);
}

/// Lanes base…base+15 of an iq1_s tile, as two vectors of 8.
IQ1_AVX2 static void trial_s_half_avx2(const s_tile *T, int base, int32_t *w) {
    const __m256 zero = _mm256_setzero_ps();
    const __m256 p0 = _mm256_set1_ps(lv_p[0]), p1 = _mm256_set1_ps(lv_p[1]), p2 = _mm256_set1_ps(lv_p[2]);
    const __m256 m0 = _mm256_set1_ps(lv_m[0]), m2 = _mm256_set1_ps(lv_m[2]);
    __m256 cxp[2][S_BLOCK + 1], cxm[2][S_BLOCK + 1], cwp[2][S_BLOCK + 1], cwm[2][S_BLOCK + 1];
    for (int v = 0; v < 2; ++v) {
        const int o = base + 8 * v;
        const __m256 tx = _mm256_loadu_ps(T->sx[S_BLOCK] + o), tw = _mm256_loadu_ps(T->sw[S_BLOCK] + o);
        for (int j = 0; j <= S_BLOCK; ++j) {
            const __m256 cx = _mm256_sub_ps(tx, _mm256_loadu_ps(T->sx[j] + o));
            const __m256 cw = _mm256_sub_ps(tw, _mm256_loadu_ps(T->sw[j] + o));
            cxp[v][j] = _mm256_mul_ps(cx, p2);
            cxm[v][j] = _mm256_mul_ps(cx, m2);
            cwp[v][j] = _mm256_mul_ps(_mm256_mul_ps(cw, p2), p2);
            cwm[v][j] = _mm256_mul_ps(_mm256_mul_ps(cw, m2), m2);
        }
    }
    __m256 best[2] = { _mm256_set1_ps(-FLT_MAX), _mm256_set1_ps(-FLT_MAX) };
    __m256 win[2] = { _mm256_castsi256_ps(_mm256_set1_epi32(-1)), _mm256_castsi256_ps(_mm256_set1_epi32(-1)) };
    for (int i1 = 0; i1 <= S_BLOCK; ++i1) {
        __m256 x1[2], w1[2], axp[2], axm[2], awp[2], awm[2];
        for (int v = 0; v < 2; ++v) {
            const int o = base + 8 * v;
            x1[v] = _mm256_loadu_ps(T->sx[i1] + o);
            w1[v] = _mm256_loadu_ps(T->sw[i1] + o);
            const __m256 a = _mm256_sub_ps(x1[v], _mm256_loadu_ps(T->sx[0] + o));
            const __m256 aw = _mm256_sub_ps(w1[v], _mm256_loadu_ps(T->sw[0] + o));
            axp[v] = _mm256_mul_ps(a, p0);
            axm[v] = _mm256_mul_ps(a, m0);
            awp[v] = _mm256_mul_ps(_mm256_mul_ps(aw, p0), p0);
            awm[v] = _mm256_mul_ps(_mm256_mul_ps(aw, m0), m0);
        }
        for (int i2 = i1; i2 <= S_BLOCK; ++i2) {
            const int id = i1 << 7 | i2 << 1;
            for (int v = 0; v < 2; ++v) {
                const int o = base + 8 * v;
                const __m256 bp = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(T->sx[i2] + o), x1[v]), p1);
                const __m256 bw = _mm256_sub_ps(_mm256_loadu_ps(T->sw[i2] + o), w1[v]);
                const __m256 bw2 = _mm256_mul_ps(_mm256_mul_ps(bw, p1), p1);
                STEP_256(v, _mm256_add_ps(_mm256_add_ps(axp[v], bp), cxp[v][i2]), _mm256_add_ps(_mm256_add_ps(awp[v], bw2), cwp[v][i2]), id);
                STEP_256(v, _mm256_add_ps(_mm256_sub_ps(axm[v], bp), cxm[v][i2]), _mm256_add_ps(_mm256_add_ps(awm[v], bw2), cwm[v][i2]), id | 1);
            }
        }
    }
    _mm256_storeu_ps((float *)w, win[0]);
    _mm256_storeu_ps((float *)(w + 8), win[1]);
}

IQ1_AVX2 static void trial_s_tile_avx2(const s_tile *T, const bool *active, trial_pick *pick) {
    int32_t w[TILE];
    for (int base = 0; base < TILE; base += 16) {
        if (any_active(active + base, 16)) trial_s_half_avx2(T, base, w + base);
        else
            for (int b = base; b < base + 16; ++b) w[b] = -1;
    }
    s_tile_picks(T, active, w, pick);
}

IQ1_AVX512 static void trial_m_tile_avx512(const m_tile *T, const bool *active, trial_pick *pick) {
    const __m512 zero = _mm512_setzero_ps();
    const __m512 cp1 = _mm512_set1_ps(M_CP1), cm1 = _mm512_set1_ps(M_CM1);
    const __m512 cp2 = _mm512_set1_ps(M_CP2), cm2 = _mm512_set1_ps(M_CM2);
    const __m512 p2 = _mm512_set1_ps(m_p2), m2 = _mm512_set1_ps(m_m2);
    // [lane vector v][half h]
    __m512 tp[2][2], tm[2][2], tpp[2][2], tmm[2][2], wp[2][2][M_BLOCK + 1], wm[2][2][M_BLOCK + 1];
    for (int v = 0; v < 2; ++v)
        for (int h = 0; h < 2; ++h) {
            const __m512 tx = _mm512_loadu_ps(T->px[h][M_BLOCK] + 16 * v), tw = _mm512_loadu_ps(T->pw[h][M_BLOCK] + 16 * v);
            tp[v][h] = _mm512_mul_ps(tx, p2);
            tm[v][h] = _mm512_mul_ps(tx, m2);
            tpp[v][h] = _mm512_mul_ps(_mm512_mul_ps(tw, p2), p2);
            tmm[v][h] = _mm512_mul_ps(_mm512_mul_ps(tw, m2), m2);
            for (int j = 0; j <= M_BLOCK; ++j) {
                const __m512 pw = _mm512_loadu_ps(T->pw[h][j] + 16 * v);
                wp[v][h][j] = _mm512_mul_ps(pw, cp2);
                wm[v][h][j] = _mm512_mul_ps(pw, cm2);
            }
        }
    __m512 best[2] = { _mm512_set1_ps(-FLT_MAX), _mm512_set1_ps(-FLT_MAX) };
    __m512i win[2] = { _mm512_set1_epi32(-1), _mm512_set1_epi32(-1) };
    for (int i1 = 0; i1 <= M_BLOCK; ++i1) {
        __m512 ax[2][2], bp[2][2], bm[2][2];
        for (int v = 0; v < 2; ++v)
            for (int h = 0; h < 2; ++h) {
                const __m512 pw = _mm512_loadu_ps(T->pw[h][i1] + 16 * v);
                ax[v][h] = _mm512_loadu_ps(T->px[h][i1] + 16 * v);
                bp[v][h] = _mm512_add_ps(tpp[v][h], _mm512_mul_ps(pw, cp1));
                bm[v][h] = _mm512_add_ps(tmm[v][h], _mm512_mul_ps(pw, cm1));
            }
        for (int i2 = i1; i2 <= M_BLOCK; ++i2) {
            const int id = i1 << 8 | i2 << 2;
            for (int v = 0; v < 2; ++v) {
                const __m512 s0 = _mm512_add_ps(ax[v][0], _mm512_loadu_ps(T->px[0][i2] + 16 * v));
                const __m512 s1 = _mm512_add_ps(ax[v][1], _mm512_loadu_ps(T->px[1][i2] + 16 * v));
                const __m512 xp0 = _mm512_sub_ps(tp[v][0], s0), xm0 = _mm512_sub_ps(tm[v][0], s0);
                const __m512 xp1 = _mm512_sub_ps(tp[v][1], s1), xm1 = _mm512_sub_ps(tm[v][1], s1);
                const __m512 qp0 = _mm512_add_ps(bp[v][0], wp[v][0][i2]), qm0 = _mm512_add_ps(bm[v][0], wm[v][0][i2]);
                const __m512 qp1 = _mm512_add_ps(bp[v][1], wp[v][1][i2]), qm1 = _mm512_add_ps(bm[v][1], wm[v][1][i2]);
                STEP_512(v, _mm512_add_ps(xp0, xp1), _mm512_add_ps(qp0, qp1), id | 0);
                STEP_512(v, _mm512_add_ps(xp0, xm1), _mm512_add_ps(qp0, qm1), id | 1);
                STEP_512(v, _mm512_add_ps(xm0, xp1), _mm512_add_ps(qm0, qp1), id | 2);
                STEP_512(v, _mm512_add_ps(xm0, xm1), _mm512_add_ps(qm0, qm1), id | 3);
            }
        }
    }
    int32_t w[TILE];
    _mm512_storeu_si512(w, win[0]);
    _mm512_storeu_si512(w + 16, win[1]);
    m_tile_picks(T, active, w, pick);
}

/// Lanes base…base+15 of an iq1_m tile, as two vectors of 8.
IQ1_AVX2 static void trial_m_half_avx2(const m_tile *T, int base, int32_t *w) {
    const __m256 zero = _mm256_setzero_ps();
    const __m256 cp1 = _mm256_set1_ps(M_CP1), cm1 = _mm256_set1_ps(M_CM1);
    const __m256 cp2 = _mm256_set1_ps(M_CP2), cm2 = _mm256_set1_ps(M_CM2);
    const __m256 p2 = _mm256_set1_ps(m_p2), m2 = _mm256_set1_ps(m_m2);
    __m256 tp[2][2], tm[2][2], tpp[2][2], tmm[2][2], wp[2][2][M_BLOCK + 1], wm[2][2][M_BLOCK + 1];
    for (int v = 0; v < 2; ++v)
        for (int h = 0; h < 2; ++h) {
            const int o = base + 8 * v;
            const __m256 tx = _mm256_loadu_ps(T->px[h][M_BLOCK] + o), tw = _mm256_loadu_ps(T->pw[h][M_BLOCK] + o);
            tp[v][h] = _mm256_mul_ps(tx, p2);
            tm[v][h] = _mm256_mul_ps(tx, m2);
            tpp[v][h] = _mm256_mul_ps(_mm256_mul_ps(tw, p2), p2);
            tmm[v][h] = _mm256_mul_ps(_mm256_mul_ps(tw, m2), m2);
            for (int j = 0; j <= M_BLOCK; ++j) {
                const __m256 pw = _mm256_loadu_ps(T->pw[h][j] + o);
                wp[v][h][j] = _mm256_mul_ps(pw, cp2);
                wm[v][h][j] = _mm256_mul_ps(pw, cm2);
            }
        }
    __m256 best[2] = { _mm256_set1_ps(-FLT_MAX), _mm256_set1_ps(-FLT_MAX) };
    __m256 win[2] = { _mm256_castsi256_ps(_mm256_set1_epi32(-1)), _mm256_castsi256_ps(_mm256_set1_epi32(-1)) };
    for (int i1 = 0; i1 <= M_BLOCK; ++i1) {
        __m256 ax[2][2], bp[2][2], bm[2][2];
        for (int v = 0; v < 2; ++v)
            for (int h = 0; h < 2; ++h) {
                const int o = base + 8 * v;
                const __m256 pw = _mm256_loadu_ps(T->pw[h][i1] + o);
                ax[v][h] = _mm256_loadu_ps(T->px[h][i1] + o);
                bp[v][h] = _mm256_add_ps(tpp[v][h], _mm256_mul_ps(pw, cp1));
                bm[v][h] = _mm256_add_ps(tmm[v][h], _mm256_mul_ps(pw, cm1));
            }
        for (int i2 = i1; i2 <= M_BLOCK; ++i2) {
            const int id = i1 << 8 | i2 << 2;
            for (int v = 0; v < 2; ++v) {
                const int o = base + 8 * v;
                const __m256 s0 = _mm256_add_ps(ax[v][0], _mm256_loadu_ps(T->px[0][i2] + o));
                const __m256 s1 = _mm256_add_ps(ax[v][1], _mm256_loadu_ps(T->px[1][i2] + o));
                const __m256 xp0 = _mm256_sub_ps(tp[v][0], s0), xm0 = _mm256_sub_ps(tm[v][0], s0);
                const __m256 xp1 = _mm256_sub_ps(tp[v][1], s1), xm1 = _mm256_sub_ps(tm[v][1], s1);
                const __m256 qp0 = _mm256_add_ps(bp[v][0], wp[v][0][i2]), qm0 = _mm256_add_ps(bm[v][0], wm[v][0][i2]);
                const __m256 qp1 = _mm256_add_ps(bp[v][1], wp[v][1][i2]), qm1 = _mm256_add_ps(bm[v][1], wm[v][1][i2]);
                STEP_256(v, _mm256_add_ps(xp0, xp1), _mm256_add_ps(qp0, qp1), id | 0);
                STEP_256(v, _mm256_add_ps(xp0, xm1), _mm256_add_ps(qp0, qm1), id | 1);
                STEP_256(v, _mm256_add_ps(xm0, xp1), _mm256_add_ps(qm0, qp1), id | 2);
                STEP_256(v, _mm256_add_ps(xm0, xm1), _mm256_add_ps(qm0, qm1), id | 3);
            }
        }
    }
    _mm256_storeu_ps((float *)w, win[0]);
    _mm256_storeu_ps((float *)(w + 8), win[1]);
}

IQ1_AVX2 static void trial_m_tile_avx2(const m_tile *T, const bool *active, trial_pick *pick) {
    int32_t w[TILE];
    for (int base = 0; base < TILE; base += 16) {
        if (any_active(active + base, 16)) trial_m_half_avx2(T, base, w + base);
        else
            for (int b = base; b < base + 16; ++b) w[b] = -1;
    }
    m_tile_picks(T, active, w, pick);
}

#undef STEP_512
#undef STEP_256

// Reductions of the neighbour searches: per lane the first candidate with the smallest error is
// kept; the answer is the smallest position among the lanes holding the overall minimum (ggml's
// sequential answer), or −1 when no error was below FLT_MAX.
IQ1_AVX2 static inline int nb_reduce_avx2(__m256 best, __m256i bpos) {
    __m256 m = _mm256_min_ps(best, _mm256_permute2f128_ps(best, best, 1));
    m = _mm256_min_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm256_min_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(2, 3, 0, 1)));
    if (!(_mm256_cvtss_f32(m) < FLT_MAX)) return -1;
    __m256i p = _mm256_blendv_epi8(_mm256_set1_epi32(INT32_MAX), bpos, _mm256_castps_si256(_mm256_cmp_ps(best, m, _CMP_EQ_OQ)));
    p = _mm256_min_epi32(p, _mm256_permute2x128_si256(p, p, 1));
    p = _mm256_min_epi32(p, _mm256_shuffle_epi32(p, _MM_SHUFFLE(1, 0, 3, 2)));
    p = _mm256_min_epi32(p, _mm256_shuffle_epi32(p, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm256_cvtsi256_si32(p);
}

IQ1_AVX512 static inline int nb_reduce_avx512(__m512 best, __m512i bpos) {
    const float m = _mm512_reduce_min_ps(best);
    if (!(m < FLT_MAX)) return -1;
    return _mm512_mask_reduce_min_epi32(_mm512_cmp_ps_mask(best, _mm512_set1_ps(m), _CMP_EQ_OQ), bpos);
}

// A candidate's code holds its level for coordinate i in bits 2i, 2i+1. vpermps reads the low 3
// (AVX-512: 4) bits of each index, so each coordinate's table [t(0), t(1), t(2), ·] is repeated
// across the vector and the code is only shifted, not masked. Table entry for level l of
// coordinate i: (w_i·(scale·xg[l] − x_i))·(scale·xg[l] − x_i), ggml's term.
IQ1_AVX2 static int nb_best_avx2(const uint16_t *list, const float *xval, const float *w, float scale, const float *xg) {
    const float s0 = scale * xg[0], s1 = scale * xg[1], s2 = scale * xg[2];
    const __m256 sq = _mm256_setr_ps(s0, s1, s2, 0, s0, s1, s2, 0);
    __m256 T[8];
    for (int i = 0; i < 8; ++i) {
        const __m256 diff = _mm256_sub_ps(sq, _mm256_broadcast_ss(xval + i));
        T[i] = _mm256_mul_ps(_mm256_mul_ps(_mm256_broadcast_ss(w + i), diff), diff);
    }
    const int n = list[0];
    const uint16_t *codes = list + 1;
    __m256 best = _mm256_set1_ps(FLT_MAX);
    __m256i bpos = _mm256_set1_epi32(-1);
    __m256i pos = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i vn = _mm256_set1_epi32(n), eight = _mm256_set1_epi32(8);
    for (int c = 0; c < n; c += 8) {
        const __m256i cw = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(codes + c)));
        __m256 d = _mm256_permutevar8x32_ps(T[0], cw);
        d = _mm256_add_ps(d, _mm256_permutevar8x32_ps(T[1], _mm256_srli_epi32(cw, 2)));
        d = _mm256_add_ps(d, _mm256_permutevar8x32_ps(T[2], _mm256_srli_epi32(cw, 4)));
        d = _mm256_add_ps(d, _mm256_permutevar8x32_ps(T[3], _mm256_srli_epi32(cw, 6)));
        d = _mm256_add_ps(d, _mm256_permutevar8x32_ps(T[4], _mm256_srli_epi32(cw, 8)));
        d = _mm256_add_ps(d, _mm256_permutevar8x32_ps(T[5], _mm256_srli_epi32(cw, 10)));
        d = _mm256_add_ps(d, _mm256_permutevar8x32_ps(T[6], _mm256_srli_epi32(cw, 12)));
        d = _mm256_add_ps(d, _mm256_permutevar8x32_ps(T[7], _mm256_srli_epi32(cw, 14)));
        const __m256 lt = _mm256_and_ps(_mm256_cmp_ps(d, best, _CMP_LT_OQ), _mm256_castsi256_ps(_mm256_cmpgt_epi32(vn, pos)));
        best = _mm256_blendv_ps(best, d, lt);
        bpos = _mm256_blendv_epi8(bpos, pos, _mm256_castps_si256(lt));
        pos = _mm256_add_epi32(pos, eight);
    }
    const int p = nb_reduce_avx2(best, bpos);
    return p < 0 ? -1 : codes[p];
}

IQ1_AVX512 static int nb_best_avx512(const uint16_t *list, const float *xval, const float *w, float scale, const float *xg) {
    const float s0 = scale * xg[0], s1 = scale * xg[1], s2 = scale * xg[2];
    const __m512 sq = _mm512_broadcast_f32x4(_mm_setr_ps(s0, s1, s2, 0));
    __m512 T[8];
    for (int i = 0; i < 8; ++i) {
        const __m512 diff = _mm512_sub_ps(sq, _mm512_set1_ps(xval[i]));
        T[i] = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(w[i]), diff), diff);
    }
    const int n = list[0];
    const uint16_t *codes = list + 1;
    __m512 best = _mm512_set1_ps(FLT_MAX);
    __m512i bpos = _mm512_set1_epi32(-1);
    __m512i pos = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i vn = _mm512_set1_epi32(n), sixteen = _mm512_set1_epi32(16);
    for (int c = 0; c < n; c += 16) {
        const __m512i cw = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(codes + c)));
        __m512 d = _mm512_permutexvar_ps(cw, T[0]);
        d = _mm512_add_ps(d, _mm512_permutexvar_ps(_mm512_srli_epi32(cw, 2), T[1]));
        d = _mm512_add_ps(d, _mm512_permutexvar_ps(_mm512_srli_epi32(cw, 4), T[2]));
        d = _mm512_add_ps(d, _mm512_permutexvar_ps(_mm512_srli_epi32(cw, 6), T[3]));
        d = _mm512_add_ps(d, _mm512_permutexvar_ps(_mm512_srli_epi32(cw, 8), T[4]));
        d = _mm512_add_ps(d, _mm512_permutexvar_ps(_mm512_srli_epi32(cw, 10), T[5]));
        d = _mm512_add_ps(d, _mm512_permutexvar_ps(_mm512_srli_epi32(cw, 12), T[6]));
        d = _mm512_add_ps(d, _mm512_permutexvar_ps(_mm512_srli_epi32(cw, 14), T[7]));
        const __mmask16 lt = _mm512_mask_cmp_ps_mask(_mm512_cmpgt_epi32_mask(vn, pos), d, best, _CMP_LT_OQ);
        best = _mm512_mask_blend_ps(lt, best, d);
        bpos = _mm512_mask_blend_epi32(lt, bpos, pos);
        pos = _mm512_add_epi32(pos, sixteen);
    }
    const int p = nb_reduce_avx512(best, bpos);
    return p < 0 ? -1 : codes[p];
}

#endif // IQ1_X86

typedef struct {
    void (*sort)(const float *x, int n, uint8_t *order);
    void (*trial_s)(const s_tile *T, const bool *active, trial_pick *pick);
    void (*trial_m)(const m_tile *T, const bool *active, trial_pick *pick);
    int (*nb_best)(const uint16_t *list, const float *xval, const float *w, float scale, const float *xg);
} iq1_kernels;

static const iq1_kernels kernels_generic = { sort_generic, trial_s_tile_generic, trial_m_tile_generic, nb_best_generic };
#if IQ1_X86
static const iq1_kernels kernels_avx2 = { sort_avx2, trial_s_tile_avx2, trial_m_tile_avx2, nb_best_avx2 };
static const iq1_kernels kernels_avx512 = { sort_avx512, trial_s_tile_avx512, trial_m_tile_avx512, nb_best_avx512 };
#endif

static const iq1_kernels *pick_kernels(void) {
#if IQ1_X86
    switch (ek_cpu_level()) {
    case EK_LEVEL_AVX512: return &kernels_avx512;
    case EK_LEVEL_AVX2: return &kernels_avx2;
    default: break;
    }
#endif
    return &kernels_generic;
}

// ---------------------------------------------------------------------------------------------
// Snapping a group of 8 levels to the lattice

typedef struct {
    const iq1_tables *tab;
    const iq1_kernels *k;
    const float *src_end; // end of the caller's source array (see grid_fallback)
} iq1_ctx;

/// ggml's last resort when every listed neighbour's error is NaN or ≥ FLT_MAX: a scan of the
/// whole lattice. ggml's loop there subtracts xval[i] with i the lattice index (not the
/// coordinate), reading up to 2047 floats past the group; we read the same floats while they lie
/// inside the caller's source array and skip lattice points whose float lies beyond it.
static int grid_fallback(const iq1_ctx *c, const float *xval, const float *w, float scale, const float *xg) {
    float best = FLT_MAX;
    int index = -1;
    for (int i = 0; i < GRID_SIZE; ++i) {
        if (xval + i >= c->src_end) break;
        const unsigned code = c->tab->code[i];
        float d2 = 0;
        for (int j = 0; j < 8; ++j) {
            const float q = xg[(code >> 2 * j) & 3];
            const float diff = scale * q - xval[i];
            d2 += w[j] * diff * diff;
        }
        if (d2 < best) {
            best = d2;
            index = i;
        }
    }
    return index;
}

/// Snaps groups k = 0…ng−1 of the levels L (8 each) to lattice indices: ggml's kmap lookup, else
/// iq1_find_best_neighbour2 with level values xg[k]. Returns false where ggml's
/// GGML_ASSERT(grid_index >= 0) would fire; *on_grid tells whether every group was a lattice point.
static bool snap_groups(const iq1_ctx *c, const int8_t *L, int ng, const float *xb, const float *w, float scale,
                        const float *const *xg, int *index, bool *on_grid) {
    const iq1_tables *tab = c->tab;
    int32_t m[S_BLOCK / 8];
    for (int k = 0; k < ng; ++k) {
        int t = 0;
        for (int j = 7; j >= 0; --j) t = 3 * t + L[8 * k + j];
        m[k] = tab->map3[t];
        if (m[k] < 0) __builtin_prefetch(tab->lists + (-m[k] - 1));
    }
    *on_grid = true;
    for (int k = 0; k < ng; ++k) {
        if (m[k] >= 0) {
            index[k] = m[k];
            continue;
        }
        *on_grid = false;
        const int code = c->k->nb_best(tab->lists + (-m[k] - 1), xb + 8 * k, w + 8 * k, scale, xg[k]);
        index[k] = code >= 0 ? tab->map3[code3_of_code2((unsigned)code)]
                             : grid_fallback(c, xb + 8 * k, w + 8 * k, scale, xg[k]);
        if (index[k] < 0) return false;
    }
    return true;
}

static inline int grid_level(const iq1_tables *tab, int index, int j) { return (tab->code[index] >> 2 * j) & 3; }

/// max |x_i| as the bit pattern of a float: for values that are not NaN the unsigned order of
/// those patterns is the order of the magnitudes, and any NaN yields a pattern above +∞'s. (The
/// order in which ggml takes its maximum matters only with NaN, and blocks with NaN are never
/// tried.) Integer, so it vectorises.
static inline uint32_t block_absmax_bits(const float *x, int n) {
    uint32_t m = 0;
    for (int i = 0; i < n; ++i) {
        const uint32_t a = f32_bits(x[i]) & 0x7FFFFFFFu;
        m = m > a ? m : a;
    }
    return m;
}

static const uint32_t INF_BITS = 0x7F800000u;

enum { SIGMA_BATCH = 8 };

/// ggml's sigma2 = 2·Σx²/256 for `count` (≤ 8) consecutive super-blocks, each Σ summed
/// sequentially as ggml does. The chains are interleaved (always 8 of them, surplus ones repeating
/// the last super-block) so that they overlap and stay in registers.
static void super_sigma2(const float *x, int count, float *sigma2) {
    const float *p[SIGMA_BATCH];
    for (int g = 0; g < SIGMA_BATCH; ++g) p[g] = x + QK * (g < count ? g : count - 1);
    float s[SIGMA_BATCH] = { 0, 0, 0, 0, 0, 0, 0, 0 };
    for (int i = 0; i < QK; ++i)
        for (int g = 0; g < SIGMA_BATCH; ++g) s[g] += p[g][i] * p[g][i];
    for (int g = 0; g < count; ++g) sigma2[g] = 2 * s[g] / QK;
}

/// ggml's importance weights qw·√(sigma2 + x²), or x² without an importance matrix (iq1_m).
static void super_weights(const float *x, const float *qw, float sigma2, float *w) {
    if (qw)
        for (int i = 0; i < QK; ++i) w[i] = qw[i] * sqrt_exact(sigma2 + x[i] * x[i]);
    else
        for (int i = 0; i < QK; ++i) w[i] = x[i] * x[i];
}

// ---------------------------------------------------------------------------------------------
// Super-blocks are quantized in groups whose blocks fill one tile (iq1_s: 4 × 8 blocks, iq1_m:
// 2 × 16): first every block is sorted and its prefix sums go to the tile, then the tile's trials
// run, then each super-block is finished block by block in ggml's order.

enum {
    S_PER_SUPER = QK / S_BLOCK,
    M_PER_SUPER = QK / M_BLOCK,
    S_GROUP = TILE / S_PER_SUPER,
    M_GROUP = TILE / M_PER_SUPER,
};

// iq1_s: per 256 values, f16 d, 32 bytes of low index bits, 8 × u16 qh (3 high index bits per
// group of 8, a 3-bit block scale at bit 12 and the shift sign at bit 15).

/// Sorts a block and writes its prefix sums (in sorted order, as ggml sums them) to `lane`.
static void s_prepare_block(const iq1_ctx *c, const float *xb, const float *w, bool active, s_tile *T, int lane,
                            uint8_t *order) {
    if (!active) {
        for (int j = 0; j <= S_BLOCK; ++j) T->sx[j][lane] = T->sw[j][lane] = 0;
        return;
    }
    c->k->sort(xb, S_BLOCK, order);
    float ax = 0, aw = 0;
    T->sx[0][lane] = T->sw[0][lane] = 0;
    for (int j = 0; j < S_BLOCK; ++j) {
        const int i = order[j];
        T->sx[j + 1][lane] = ax = ax + w[i] * xb[i];
        T->sw[j + 1][lane] = aw = aw + w[i];
    }
}

/// ggml's quantize_row_iq1_s_impl from the trial's winner on, for one super-block.
static void s_finish(const iq1_ctx *c, const float *xbl, const float *weight, const bool *active,
                     const uint8_t (*order)[S_BLOCK], const trial_pick *picks, uint8_t *y) {
    const iq1_tables *tab = c->tab;
    float scales[S_PER_SUPER];
    int8_t shifts[S_PER_SUPER];
    uint16_t qh[S_PER_SUPER] = { 0 };
    float max_scale = 0;
    for (int ib = 0; ib < S_PER_SUPER; ++ib) {
        const float *xb = xbl + S_BLOCK * ib;
        const float *w = weight + S_BLOCK * ib;
        const trial_pick pick = picks[ib];
        scales[ib] = 0;
        shifts[ib] = 1;
        if (!active[ib] || pick.i1 < 0) continue;

        int8_t L[S_BLOCK];
        for (int j = 0; j < S_BLOCK; ++j) L[order[ib][j]] = (int8_t)(j < pick.i1 ? 0 : j < pick.i2 ? 1 : 2);
        float scale = pick.scale;
        int shift = pick.sel;
        if (scale < 0) {
            for (int j = 0; j < S_BLOCK; ++j) L[j] = (int8_t)(2 - L[j]);
            scale = -scale;
            shift = -shift;
        }
        const float *xx = shift == 1 ? lv_p : lv_m;
        const float *const xg[S_BLOCK / 8] = { xx, xx, xx, xx };
        int index[S_BLOCK / 8];
        bool on_grid;
        if (!snap_groups(c, L, S_BLOCK / 8, xb, w, scale, xg, index, &on_grid)) continue; // ggml aborts here
        if (!on_grid) {
            float sumqx = 0, sumq2 = 0;
            for (int k = 0; k < S_BLOCK / 8; ++k)
                for (int j = 0; j < 8; ++j) {
                    const float wj = w[8 * k + j], q = xx[grid_level(tab, index[k], j)];
                    sumqx += wj * q * xb[8 * k + j];
                    sumq2 += wj * q * q;
                }
            if (sumqx > 0 && sumq2 > 0) scale = sumqx / sumq2;
        }
        if (!(scale >= 0)) continue; // ggml aborts here (NaN scale)
        uint16_t h = 0;
        for (int k = 0; k < S_BLOCK / 8; ++k) {
            y[2 + (S_BLOCK / 8) * ib + k] = (uint8_t)(index[k] & 255);
            h |= (uint16_t)((index[k] >> 8) << 3 * k);
        }
        qh[ib] = h;
        scales[ib] = scale;
        shifts[ib] = (int8_t)shift;
        max_scale = max_scale > scale ? max_scale : scale;
    }
    if (!max_scale) {
        for (int ib = 0; ib < S_PER_SUPER; ++ib) put_u16(y + 34 + 2 * ib, qh[ib]);
        return;
    }
    const float d = max_scale / 15;
    put_u16(y, half_from_float(d * 1.125f));
    const float id = 1 / d;
    for (int ib = 0; ib < S_PER_SUPER; ++ib) {
        int l = nearest_int(0.5f * (id * scales[ib] - 1));
        l = l < 0 ? 0 : l > 7 ? 7 : l;
        if (shifts[ib] == -1) l |= 8;
        put_u16(y + 34 + 2 * ib, (uint16_t)(qh[ib] | (l << 12)));
    }
}

static void quantize_group_s(const iq1_ctx *c, int count, const float *const *x, const float *const *qw,
                             const float *sigma2, uint8_t *const *y) {
    float weight[S_GROUP][QK];
    uint8_t order[TILE][S_BLOCK];
    bool active[TILE], live[S_GROUP];
    s_tile T;
    trial_pick picks[TILE];
    for (int g = 0; g < S_GROUP; ++g) {
        // A NaN anywhere makes all of the super-block's weights NaN, every trial fails and its
        // bytes are all zeros; the sort must not see NaN, so such a super-block stops here.
        live[g] = g < count && sigma2[g] == sigma2[g];
        if (g < count) memset(y[g], 0, S_BYTES);
        if (live[g]) super_weights(x[g], qw[g], sigma2[g], weight[g]);
        for (int ib = 0; ib < S_PER_SUPER; ++ib) {
            const int lane = g * S_PER_SUPER + ib;
            active[lane] = live[g] && !(bits_f32(block_absmax_bits(x[g] + S_BLOCK * ib, S_BLOCK)) < 1e-12f);
            s_prepare_block(c, live[g] ? x[g] + S_BLOCK * ib : NULL, weight[g] + S_BLOCK * ib, active[lane], &T, lane,
                            order[lane]);
        }
    }
    c->k->trial_s(&T, active, picks);
    for (int g = 0; g < count; ++g)
        if (live[g])
            s_finish(c, x[g], weight[g], active + g * S_PER_SUPER, order + g * S_PER_SUPER, picks + g * S_PER_SUPER, y[g]);
}

// iq1_m: per 256 values, 32 bytes of low index bits, 16 bytes qh (per group of 8: 3 high index
// bits and the shift sign), 8 bytes of 3-bit block scales with the f16 super-scale spread over
// their top nibbles.

/// Sorts a block and writes its per-half prefix sums (ggml's px, pw) to `lane`. Each step adds
/// to one half's sums; adding +0 to the other half instead leaves it unchanged (the sums start at
/// +0 and so are never −0), which keeps the loop free of data-dependent branches.
static void m_prepare_block(const iq1_ctx *c, const float *xb, const float *w, bool active, m_tile *T, int lane,
                            uint8_t *order) {
    if (!active) {
        for (int h = 0; h < 2; ++h)
            for (int j = 0; j <= M_BLOCK; ++j) T->px[h][j][lane] = T->pw[h][j][lane] = 0;
        return;
    }
    c->k->sort(xb, M_BLOCK, order);
    float hx[2][M_BLOCK], hw[2][M_BLOCK];
    for (int i = 0; i < M_BLOCK; ++i) {
        const int h = i >= M_BLOCK / 2;
        hx[h][i] = w[i] * xb[i];
        hw[h][i] = w[i];
        hx[1 - h][i] = hw[1 - h][i] = 0;
    }
    float ax[2] = { 0, 0 }, aw[2] = { 0, 0 };
    T->px[0][0][lane] = T->px[1][0][lane] = T->pw[0][0][lane] = T->pw[1][0][lane] = 0;
    for (int j = 0; j < M_BLOCK; ++j) {
        const int i = order[j];
        T->px[0][j + 1][lane] = ax[0] = ax[0] + hx[0][i];
        T->px[1][j + 1][lane] = ax[1] = ax[1] + hx[1][i];
        T->pw[0][j + 1][lane] = aw[0] = aw[0] + hw[0][i];
        T->pw[1][j + 1][lane] = aw[1] = aw[1] + hw[1][i];
    }
}

/// ggml's quantize_row_iq1_m_impl from the trial's winner on, for one super-block.
static void m_finish(const iq1_ctx *c, const float *xbl, const float *weight, const bool *active,
                     const uint8_t (*order)[M_BLOCK], const trial_pick *picks, uint8_t *y) {
    const iq1_tables *tab = c->tab;
    static const uint8_t shift_bits[4] = { 0x00, 0x80, 0x08, 0x88 };
    float scales[M_PER_SUPER];
    int shifts[M_PER_SUPER];
    int index[M_PER_SUPER][2];
    float max_scale = 0;
    for (int ib = 0; ib < M_PER_SUPER; ++ib) {
        const float *xb = xbl + M_BLOCK * ib;
        const float *w = weight + M_BLOCK * ib;
        const trial_pick pick = picks[ib];
        scales[ib] = 0;
        shifts[ib] = 0;
        index[ib][0] = index[ib][1] = 0;
        if (!active[ib] || pick.i1 < 0) continue;

        int8_t L[M_BLOCK];
        for (int j = 0; j < M_BLOCK; ++j) L[order[ib][j]] = (int8_t)(j < pick.i1 ? 0 : j < pick.i2 ? 1 : 2);
        float scale = pick.scale;
        int k4 = pick.sel;
        if (scale < 0) {
            for (int j = 0; j < M_BLOCK; ++j) L[j] = (int8_t)(2 - L[j]);
            scale = -scale;
            k4 = 3 - k4; // both halves change sign
        }
        const float *const xx[2] = { k4 < 2 ? lv_p : lv_m, k4 % 2 == 0 ? lv_p : lv_m };
        int idx[2];
        bool on_grid;
        if (!snap_groups(c, L, 2, xb, w, scale, xx, idx, &on_grid)) continue; // ggml aborts here
        if (!on_grid) {
            float sumqx = 0, sumq2 = 0;
            for (int k = 0; k < 2; ++k)
                for (int j = 0; j < 8; ++j) {
                    const float wj = w[8 * k + j], q = xx[k][grid_level(tab, idx[k], j)];
                    sumqx += wj * q * xb[8 * k + j];
                    sumq2 += wj * q * q;
                }
            if (sumqx > 0 && sumq2 > 0) scale = sumqx / sumq2;
        }
        if (!(scale >= 0)) continue; // ggml aborts here (NaN scale)
        index[ib][0] = idx[0];
        index[ib][1] = idx[1];
        scales[ib] = scale;
        shifts[ib] = k4;
        max_scale = max_scale > scale ? max_scale : scale;
    }
    for (int ib = 0; ib < M_PER_SUPER; ++ib) {
        y[2 * ib] = (uint8_t)(index[ib][0] & 255);
        y[2 * ib + 1] = (uint8_t)(index[ib][1] & 255);
        y[32 + ib] = (uint8_t)((index[ib][0] >> 8) | ((index[ib][1] >> 8) << 4));
    }
    if (!max_scale) return;

    // Block scales on 3 bits, then the super-scale refitted over all blocks (in ggml's order).
    uint16_t sc[4] = { 0, 0, 0, 0 };
    float d = max_scale / 15;
    const float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int ib = 0; ib < M_PER_SUPER; ++ib) {
        int l = nearest_int(0.5f * (id * scales[ib] - 1));
        l = l < 0 ? 0 : l > 7 ? 7 : l;
        sc[ib / 4] |= (uint16_t)(l << 3 * (ib % 4));
        y[32 + ib] |= shift_bits[shifts[ib]];
        const float *xb = xbl + M_BLOCK * ib;
        const float *w = weight + M_BLOCK * ib;
        const float *const xx[2] = { shifts[ib] < 2 ? lv_p : lv_m, shifts[ib] % 2 == 0 ? lv_p : lv_m };
        for (int k = 0; k < 2; ++k)
            for (int j = 0; j < 8; ++j) {
                const float wj = w[8 * k + j], q = xx[k][grid_level(tab, index[ib][k], j)] * (2 * l + 1);
                sumqx += wj * q * xb[8 * k + j];
                sumq2 += wj * q * q;
            }
    }
    if (sumq2 > 0) d = sumqx / sumq2;
    const uint16_t s = half_from_float(d * 1.1125f);
    sc[0] |= (uint16_t)((s & 0x000f) << 12);
    sc[1] |= (uint16_t)((s & 0x00f0) << 8);
    sc[2] |= (uint16_t)((s & 0x0f00) << 4);
    sc[3] |= (uint16_t)(s & 0xf000);
    for (int i = 0; i < 4; ++i) put_u16(y + 48 + 2 * i, sc[i]);
}

static void quantize_group_m(const iq1_ctx *c, int count, const float *const *x, const float *const *qw,
                             const float *sigma2, uint8_t *const *y) {
    float weight[M_GROUP][QK];
    uint8_t order[TILE][M_BLOCK];
    bool active[TILE];
    m_tile T;
    trial_pick picks[TILE];
    for (int g = 0; g < M_GROUP; ++g) {
        if (g < count) {
            memset(y[g], 0, M_BYTES);
            super_weights(x[g], qw[g], sigma2[g], weight[g]);
        }
        for (int ib = 0; ib < M_PER_SUPER; ++ib) {
            const int lane = g * M_PER_SUPER + ib;
            const float *xb = g < count ? x[g] + M_BLOCK * ib : NULL;
            // A NaN value makes the weights of its half (with an importance matrix, all weights)
            // NaN, so every trial of its block fails; the sort must not see it.
            const uint32_t amax = xb ? block_absmax_bits(xb, M_BLOCK) : 0;
            active[lane] = xb && amax <= INF_BITS && !(bits_f32(amax) < 1e-7f);
            m_prepare_block(c, xb, weight[g] + M_BLOCK * ib, active[lane], &T, lane, order[lane]);
        }
    }
    c->k->trial_m(&T, active, picks);
    for (int g = 0; g < count; ++g)
        m_finish(c, x[g], weight[g], active + g * M_PER_SUPER, order + g * M_PER_SUPER, picks + g * M_PER_SUPER, y[g]);
}

/// Both quantizers over nrow rows: super-block s of the whole array (rows are contiguous) uses
/// the importance values of its column range.
static void quantize_rows(bool iq1m, const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *qw) {
    const iq1_ctx c = { get_tables(), pick_kernels(), src + nrow * n_per_row };
    const int group = iq1m ? M_GROUP : S_GROUP;
    const int64_t bytes = iq1m ? M_BYTES : S_BYTES;
    const int64_t nsb = n_per_row / QK, total = nrow * nsb;
    uint8_t *out = dst;
    for (int64_t b0 = 0; b0 < total; b0 += SIGMA_BATCH) {
        const int batch = total - b0 < SIGMA_BATCH ? (int)(total - b0) : SIGMA_BATCH;
        float sigma2[SIGMA_BATCH];
        super_sigma2(src + b0 * QK, batch, sigma2);
        for (int s0 = 0; s0 < batch; s0 += group) {
            const int count = batch - s0 < group ? batch - s0 : group;
            const float *x[S_GROUP], *w[S_GROUP];
            uint8_t *y[S_GROUP];
            for (int g = 0; g < count; ++g) {
                const int64_t sb = b0 + s0 + g;
                x[g] = src + sb * QK;
                w[g] = qw ? qw + (sb % nsb) * QK : NULL;
                y[g] = out + sb * bytes;
            }
            if (iq1m)
                quantize_group_m(&c, count, x, w, sigma2 + s0, y);
            else
                quantize_group_s(&c, count, x, w, sigma2 + s0, y);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Public entry points

size_t eq_quantize_iq1_s(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *quant_weights) {
    if (!quant_weights) abort(); // ggml requires an importance matrix for iq1_s
    quantize_rows(false, src, dst, nrow, n_per_row, quant_weights);
    return (size_t)(nrow * (n_per_row / QK) * S_BYTES);
}

/// Unlike iq1_s, ggml's iq1_m accepts no importance matrix (weights x² then).
size_t eq_quantize_iq1_m(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *quant_weights) {
    quantize_rows(true, src, dst, nrow, n_per_row, quant_weights);
    return (size_t)(nrow * (n_per_row / QK) * M_BYTES);
}

void eq_dequantize_row_iq1_s(const void *src, float *dst, int64_t k) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < k / QK; ++i, b += S_BYTES) {
        const float d = half_to_float(get_u16(b));
        const uint8_t *qs = b + 2;
        for (int ib = 0; ib < QK / 32; ++ib) {
            const unsigned h = get_u16(b + 34 + 2 * ib);
            const float dl = d * (float)(2 * ((h >> 12) & 7) + 1);
            const float delta = h & 0x8000 ? -IQ1_DELTA : IQ1_DELTA;
            for (int l = 0; l < 4; ++l) {
                const uint64_t g = ggml_iq1s_grid[qs[4 * ib + l] | (((h >> 3 * l) & 7) << 8)];
                for (int j = 0; j < 8; ++j) dst[j] = dl * ((float)(int8_t)(g >> 8 * j) + delta);
                dst += 8;
            }
        }
    }
}

void eq_dequantize_row_iq1_m(const void *src, float *dst, int64_t k) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < k / QK; ++i, b += M_BYTES) {
        uint16_t sc[4];
        for (int j = 0; j < 4; ++j) sc[j] = get_u16(b + 48 + 2 * j);
        const uint16_t s = (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
        const float d = half_to_float(s);
        const uint8_t *qs = b, *qh = b + 32;
        for (int ib = 0; ib < QK / 32; ++ib) {
            const float dl[2] = { d * (float)(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 0)) & 7) + 1),
                                  d * (float)(2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 7) + 1) };
            const int idx[4] = { qs[0] | ((qh[0] << 8) & 0x700), qs[1] | ((qh[0] << 4) & 0x700),
                                 qs[2] | ((qh[1] << 8) & 0x700), qs[3] | ((qh[1] << 4) & 0x700) };
            const float delta[4] = { qh[0] & 0x08 ? -IQ1_DELTA : IQ1_DELTA, qh[0] & 0x80 ? -IQ1_DELTA : IQ1_DELTA,
                                     qh[1] & 0x08 ? -IQ1_DELTA : IQ1_DELTA, qh[1] & 0x80 ? -IQ1_DELTA : IQ1_DELTA };
            for (int l = 0; l < 4; ++l) {
                const uint64_t g = ggml_iq1s_grid[idx[l]];
                for (int j = 0; j < 8; ++j) dst[j] = dl[l / 2] * ((float)(int8_t)(g >> 8 * j) + delta[l]);
                dst += 8;
            }
            qs += 4;
            qh += 2;
        }
    }
}
