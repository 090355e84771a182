// The search tables of ggml's 3-bit lattices (iq3xs_init_impl in ggml-quants.c), derived from the
// lattices themselves (ggml_iq_grids.h) rather than from ggml's hard-coded lattice codes.
//
// A lattice point has four coordinates, each one of eight levels l = 0…7; the quantizers work with
// the odd values 2l+1 and address a point by its 12-bit code Σ l_i·8^i. ggml's dequantization
// grids store other byte values per level (iq3_xxs: 4, 12, …, 62; iq3_s: 1, 3, …, 15), so the
// level of a byte is its rank among the eight distinct byte values the grid uses.
//
// For every code that is not a lattice point, ggml lists the lattice points at the smallest
// (iq3_xxs: two, iq3_s: three) distinct squared distances, ordered by distance and then by index
// (it qsorts (distance, index) pairs). The quantizers take the first best candidate of a list, so
// that order is part of the result and is reproduced exactly here.
#pragma STDC FP_CONTRACT OFF
#ifdef __clang__
#pragma clang fp contract(off)
#endif

#include "CQuants.h"
#include "ggml_iq_grids.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { IQ3_CODES = 4096, IQ3_LEVELS = 8 };

typedef struct {
    eq_iq3_lattice tables;
    pthread_once_t once;
} lattice_slot;

static lattice_slot slot_256 = { { NULL, NULL, NULL }, PTHREAD_ONCE_INIT };
static lattice_slot slot_512 = { { NULL, NULL, NULL }, PTHREAD_ONCE_INIT };

static void *checked_malloc(size_t bytes) {
    void *p = malloc(bytes);
    if (!p) abort(); // a few kilobytes at start-up; nothing sensible to fall back to
    return p;
}

/// Fills `levels[k*4 + i]` with the level (0…7) of coordinate i of point k of `src`.
static void point_levels(const uint32_t *src, int n, uint8_t *levels) {
    // The distinct byte values, ascending, are the levels' encodings.
    int used[256] = { 0 };
    for (int k = 0; k < n; ++k)
        for (int i = 0; i < 4; ++i) used[(src[k] >> 8 * i) & 0xFF] = 1;
    int rank[256];
    int count = 0;
    for (int b = 0; b < 256; ++b) rank[b] = used[b] ? count++ : -1;
    if (count != IQ3_LEVELS) abort(); // not a 3-bit lattice
    for (int k = 0; k < n; ++k)
        for (int i = 0; i < 4; ++i) levels[4 * k + i] = (uint8_t)rank[(src[k] >> 8 * i) & 0xFF];
}

/// Appends to `out` the neighbour list of the off-lattice `code`: the points at the `nwant` smallest
/// distinct squared distances, by distance and then by index. Returns the number appended.
static int neighbours_of(const uint8_t *levels, int n, int code, int nwant, int *d2, uint16_t *out) {
    int c[4];
    for (int i = 0; i < 4; ++i) c[i] = (code >> 3 * i) & 7;
    // The nwant smallest distinct distances so far, ascending (unfilled slots hold INT_MAX).
    int radius[3] = { INT_MAX, INT_MAX, INT_MAX };
    for (int j = 0; j < n; ++j) {
        int s = 0;
        for (int i = 0; i < 4; ++i) {
            const int diff = 2 * (levels[4 * j + i] - c[i]); // in units of the odd values 2l+1
            s += diff * diff;
        }
        d2[j] = s;
        if (s >= radius[nwant - 1]) continue;
        int r = 0;
        while (radius[r] < s) ++r;
        if (radius[r] == s) continue;
        for (int m = nwant - 1; m > r; --m) radius[m] = radius[m - 1];
        radius[r] = s;
    }
    int count = 0;
    for (int r = 0; r < nwant && radius[r] != INT_MAX; ++r)
        for (int j = 0; j < n; ++j)
            if (d2[j] == radius[r]) out[count++] = (uint16_t)j;
    return count;
}

static void build(lattice_slot *slot, const uint32_t *src, int n, int nwant) {
    uint8_t *levels = checked_malloc((size_t)n * 4);
    point_levels(src, n, levels);

    uint32_t *grid = checked_malloc((size_t)n * sizeof(uint32_t));
    int *map = checked_malloc(IQ3_CODES * sizeof(int));
    for (int c = 0; c < IQ3_CODES; ++c) map[c] = -1;
    for (int k = 0; k < n; ++k) {
        uint8_t bytes[4];
        int code = 0;
        for (int i = 0; i < 4; ++i) {
            bytes[i] = (uint8_t)(2 * levels[4 * k + i] + 1);
            code |= levels[4 * k + i] << 3 * i;
        }
        memcpy(&grid[k], bytes, 4); // byte i is coordinate i, as ggml reads it through an int8_t*
        if (map[code] >= 0) abort(); // two points with one code
        map[code] = k;
    }

    // Each list is a count followed by at most n indices; the buffer grows as needed.
    int *d2 = checked_malloc((size_t)n * sizeof(int));
    size_t cap = (size_t)(IQ3_CODES - n) * 8, at = 0;
    uint16_t *neighbours = checked_malloc(cap * sizeof(uint16_t));
    for (int c = 0; c < IQ3_CODES; ++c) {
        if (map[c] >= 0) continue;
        if (cap - at < (size_t)n + 1) {
            cap = 2 * cap + (size_t)n + 1;
            neighbours = realloc(neighbours, cap * sizeof(uint16_t));
            if (!neighbours) abort();
        }
        const int count = neighbours_of(levels, n, c, nwant, d2, neighbours + at + 1);
        neighbours[at] = (uint16_t)count;
        map[c] = -1 - (int)at;
        at += 1 + (size_t)count;
    }
    free(d2);
    free(levels);

    slot->tables.grid = grid;
    slot->tables.map = map;
    slot->tables.neighbours = neighbours;
}

static void build_256(void) { build(&slot_256, ggml_iq3xxs_grid, 256, 2); }
static void build_512(void) { build(&slot_512, ggml_iq3s_grid, 512, 3); }

const eq_iq3_lattice *eq_iq3_lattice_get(int grid_size) {
    switch (grid_size) {
    case 256:
        pthread_once(&slot_256.once, build_256);
        return &slot_256.tables;
    case 512:
        pthread_once(&slot_512.once, build_512);
        return &slot_512.tables;
    default:
        return NULL;
    }
}
