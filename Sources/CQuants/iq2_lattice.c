// The search tables of ggml's 2-bit-coordinate lattices (iq2xs_init_impl in ggml-quants.c), derived
// from the lattices themselves (ggml_iq_grids.h) rather than from ggml's hard-coded lattice codes.
//
// A point has eight coordinates, each one of the levels l = 0…3; the quantizers work with the odd
// values 2l+1 and address a point by its 16-bit code Σ l_i·4^i. The dequantization grids store
// other byte values per level (iq2: 0x08, 0x19, 0x2b; iq1: −1, 0, +1 as int8), so the level of a
// byte is its rank, as a signed value, among the distinct values the grid uses. All these grids use
// only levels 0…2, so ggml sizes the code map to cover codes up to 0xAAAA (+1) = 43692 entries;
// codes with level 3 below the top coordinate still fall inside it and get neighbour lists too.
//
// For every code in the map that is not a lattice point, ggml lists the lattice points at the
// `nwant` smallest distinct squared distances (iq2_xxs, iq2_xs: 2; iq2_s: 1; iq1_s/iq1_m: 3), in
// (distance, index) order since it qsorts such pairs. The quantizers take the first strictly best
// candidate of a list, so that order is part of the result and is reproduced exactly here.
#pragma STDC FP_CONTRACT OFF
#ifdef __clang__
#pragma clang fp contract(off)
#endif

#include "CQuants.h"
#include "ggml_iq_grids.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h> // baseline on x86-64; written out so that unoptimised (debug) builds stay quick
#define IQ2_LATTICE_SSE2 1
#else
#define IQ2_LATTICE_SSE2 0
#endif

enum {
    IQ2_MAP_SIZE = 43692, // ggml's kmap_size: every code whose top coordinate has level ≤ 2
    IQ2_COORDS = 8,
    IQ2_MAX_GRID = 2048,
};

typedef struct {
    eq_iq2_lattice tables;
    pthread_once_t once;
} lattice_slot;

static lattice_slot slot_256 = { { NULL, NULL, NULL }, PTHREAD_ONCE_INIT };
static lattice_slot slot_512 = { { NULL, NULL, NULL }, PTHREAD_ONCE_INIT };
static lattice_slot slot_1024 = { { NULL, NULL, NULL }, PTHREAD_ONCE_INIT };
static lattice_slot slot_2048 = { { NULL, NULL, NULL }, PTHREAD_ONCE_INIT };

static void *checked_malloc(size_t bytes) {
    void *p = malloc(bytes);
    if (!p) abort(); // well under a megabyte, once; nothing sensible to fall back to
    return p;
}

/// Fills `levels[k*8 + i]` with the level (0…3) of coordinate i of point k of `src`.
static void point_levels(const uint64_t *src, int n, uint8_t *levels) {
    // Rank the distinct values as signed bytes: the iq1 grid encodes its lowest level as 0xff.
    int used[256] = { 0 };
    for (int k = 0; k < n; ++k)
        for (int i = 0; i < IQ2_COORDS; ++i) used[(uint8_t)(src[k] >> 8 * i)] = 1;
    int rank[256];
    int count = 0;
    for (int v = -128; v < 128; ++v) {
        const uint8_t b = (uint8_t)v;
        rank[b] = used[b] ? count++ : -1;
    }
    if (count > 4) abort(); // not a 2-bit lattice
    for (int k = 0; k < n; ++k)
        for (int i = 0; i < IQ2_COORDS; ++i) levels[IQ2_COORDS * k + i] = (uint8_t)rank[(uint8_t)(src[k] >> 8 * i)];
}

/// Squared distances, in units of the odd values 2l+1, from the point with `code` to every point.
/// `odd` holds the points coordinate-major (odd[i*n + j] = 2·level + 1 of coordinate i of point j,
/// n a multiple of 8) so that the loop runs over points; the largest distance, 8·6², fits int16.
static void distances(const int16_t *odd, int n, int code, int16_t *d2) {
#if IQ2_LATTICE_SSE2
    __m128i p[IQ2_COORDS];
    for (int i = 0; i < IQ2_COORDS; ++i) p[i] = _mm_set1_epi16((short)(2 * ((code >> 2 * i) & 3) + 1));
    for (int j = 0; j < n; j += 8) {
        __m128i acc = _mm_setzero_si128();
        for (int i = 0; i < IQ2_COORDS; ++i) {
            const __m128i diff = _mm_sub_epi16(_mm_loadu_si128((const __m128i *)(odd + (size_t)i * n + j)), p[i]);
            acc = _mm_add_epi16(acc, _mm_mullo_epi16(diff, diff));
        }
        _mm_storeu_si128((__m128i *)(d2 + j), acc);
    }
#else
    for (int j = 0; j < n; ++j) d2[j] = 0;
    for (int i = 0; i < IQ2_COORDS; ++i) {
        const int16_t p = (int16_t)(2 * ((code >> 2 * i) & 3) + 1);
        const int16_t *row = odd + (size_t)i * n;
        for (int j = 0; j < n; ++j) {
            const int16_t diff = (int16_t)(row[j] - p);
            d2[j] = (int16_t)(d2[j] + diff * diff);
        }
    }
#endif
}

/// The smallest value of d2[0..n) above `floor`, or INT16_MAX if there is none.
static int smallest_above(const int16_t *d2, int n, int floor) {
#if IQ2_LATTICE_SSE2
    const __m128i fl = _mm_set1_epi16((short)floor), none = _mm_set1_epi16(INT16_MAX);
    __m128i m = none;
    for (int j = 0; j < n; j += 8) {
        const __m128i v = _mm_loadu_si128((const __m128i *)(d2 + j));
        const __m128i above = _mm_cmpgt_epi16(v, fl);
        m = _mm_min_epi16(m, _mm_or_si128(_mm_and_si128(above, v), _mm_andnot_si128(above, none)));
    }
    m = _mm_min_epi16(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm_min_epi16(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(2, 3, 0, 1)));
    m = _mm_min_epi16(m, _mm_shufflelo_epi16(m, _MM_SHUFFLE(2, 3, 0, 1)));
    return (int16_t)_mm_cvtsi128_si32(m);
#else
    int best = INT16_MAX;
    for (int j = 0; j < n; ++j)
        if (d2[j] > floor && d2[j] < best) best = d2[j];
    return best;
#endif
}

/// The `nwant` smallest distinct values of d2[0..n), ascending; returns how many exist.
static int smallest_distinct(const int16_t *d2, int n, int nwant, int *out) {
    int have = 0;
    for (int floor = -1; have < nwant;) {
        const int v = smallest_above(d2, n, floor);
        if (v == INT16_MAX) break;
        out[have++] = floor = v;
    }
    return have;
}

/// Appends to `out` the indices j with d2[j] == value, ascending; returns the new end.
static uint16_t *append_equal(const int16_t *d2, int n, int value, uint16_t *out) {
#if IQ2_LATTICE_SSE2
    const __m128i target = _mm_set1_epi16((short)value);
    for (int j = 0; j < n; j += 8) {
        // A 16-bit lane sets two bits of the byte mask; keep one per lane.
        unsigned hits = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_loadu_si128((const __m128i *)(d2 + j)), target)) & 0x5555u;
        for (; hits; hits &= hits - 1) *out++ = (uint16_t)(j + __builtin_ctz(hits) / 2);
    }
#else
    for (int j = 0; j < n; ++j)
        if (d2[j] == value) *out++ = (uint16_t)j;
#endif
    return out;
}

static void build(lattice_slot *slot, const uint64_t *src, int n, int nwant) {
    uint8_t *levels = checked_malloc((size_t)n * IQ2_COORDS);
    point_levels(src, n, levels);

    uint64_t *grid = checked_malloc((size_t)n * sizeof(uint64_t));
    int16_t *odd = checked_malloc((size_t)n * IQ2_COORDS * sizeof(int16_t));
    int *map = checked_malloc(IQ2_MAP_SIZE * sizeof(int));
    for (int c = 0; c < IQ2_MAP_SIZE; ++c) map[c] = -1;
    for (int k = 0; k < n; ++k) {
        uint8_t bytes[IQ2_COORDS];
        int code = 0;
        for (int i = 0; i < IQ2_COORDS; ++i) {
            const int l = levels[IQ2_COORDS * k + i];
            bytes[i] = (uint8_t)(2 * l + 1);
            odd[(size_t)i * n + k] = (int16_t)(2 * l + 1);
            code |= l << 2 * i;
        }
        memcpy(&grid[k], bytes, sizeof bytes); // byte i is coordinate i, as ggml reads it via int8_t*
        if (code >= IQ2_MAP_SIZE || map[code] >= 0) abort(); // outside ggml's map, or a duplicate
        map[code] = k;
    }
    free(levels);

    // One pass: lists are appended to a buffer that grows as needed (its final size is known only
    // at the end; ggml runs the search twice instead).
    size_t cap = (size_t)IQ2_MAP_SIZE * 16, at = 0;
    uint16_t *neighbours = checked_malloc(cap * sizeof(uint16_t));
    int16_t *d2 = checked_malloc((size_t)n * sizeof(int16_t));
    for (int c = 0; c < IQ2_MAP_SIZE; ++c) {
        if (map[c] >= 0) continue;
        distances(odd, n, c, d2);
        int radii[3];
        const int nr = smallest_distinct(d2, n, nwant, radii);
        if (at + 1 + (size_t)n > cap) {
            cap = 2 * cap + (size_t)n;
            uint16_t *grown = realloc(neighbours, cap * sizeof(uint16_t));
            if (!grown) abort();
            neighbours = grown;
        }
        map[c] = -1 - (int)at;
        const size_t head = at++;
        // Ascending distance, then ascending index: ggml's (distance, index) sort order.
        uint16_t *end = neighbours + at;
        for (int r = 0; r < nr; ++r) end = append_equal(d2, n, radii[r], end);
        at = (size_t)(end - neighbours);
        neighbours[head] = (uint16_t)(at - head - 1);
    }
    free(d2);
    free(odd);
    uint16_t *fitted = realloc(neighbours, at * sizeof(uint16_t));
    if (fitted) neighbours = fitted;

    slot->tables.grid = grid;
    slot->tables.map = map;
    slot->tables.neighbours = neighbours;
}

static void build_256(void) { build(&slot_256, ggml_iq2xxs_grid, 256, 2); }
static void build_512(void) { build(&slot_512, ggml_iq2xs_grid, 512, 2); }
static void build_1024(void) { build(&slot_1024, ggml_iq2s_grid, 1024, 1); }
static void build_2048(void) { build(&slot_2048, ggml_iq1s_grid, 2048, 3); }

const eq_iq2_lattice *eq_iq2_lattice_get(int grid_size) {
    switch (grid_size) {
    case 256:
        pthread_once(&slot_256.once, build_256);
        return &slot_256.tables;
    case 512:
        pthread_once(&slot_512.once, build_512);
        return &slot_512.tables;
    case 1024:
        pthread_once(&slot_1024.once, build_1024);
        return &slot_1024.tables;
    case IQ2_MAX_GRID:
        pthread_once(&slot_2048.once, build_2048);
        return &slot_2048.tables;
    default:
        return NULL;
    }
}
