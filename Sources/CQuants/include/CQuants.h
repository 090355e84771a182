// The i-quant quantizers in C: ggml's quantize_iq* (ggml-quants.c) reproduced byte for byte, with
// the lattice searches vectorised over candidates (each candidate's sums still in ggml's order, so
// no result changes) and dispatched at run time. Pure functions of caller-owned memory apart from
// the neighbour tables, built once on first use (thread-safe); threading is the caller's.
#ifndef EDGEQUANT_CQUANTS_H
#define EDGEQUANT_CQUANTS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// ggml `quantize_<type>(src, dst, nrow, n_per_row, quant_weights)`: `nrow` rows of `n_per_row`
/// floats (a multiple of 256) into whole rows of blocks; `quant_weights` is NULL or `n_per_row`
/// importance values shared by every row. Returns the bytes written. iq2_xxs, iq2_xs and iq1_s
/// require quant_weights, as ggml does (callers check; NULL there is a programming error).
size_t eq_quantize_iq2_xxs(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *quant_weights);
size_t eq_quantize_iq2_xs(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *quant_weights);
size_t eq_quantize_iq2_s(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *quant_weights);
size_t eq_quantize_iq3_xxs(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *quant_weights);
size_t eq_quantize_iq3_s(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *quant_weights);
size_t eq_quantize_iq1_s(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *quant_weights);
size_t eq_quantize_iq1_m(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *quant_weights);
size_t eq_quantize_iq4_xs(const float *src, void *dst, int64_t nrow, int64_t n_per_row, const float *quant_weights);

/// ggml `dequantize_row_<type>`: `k` (a multiple of 256) values from k/256 blocks.
void eq_dequantize_row_iq2_xxs(const void *src, float *dst, int64_t k);
void eq_dequantize_row_iq2_xs(const void *src, float *dst, int64_t k);
void eq_dequantize_row_iq2_s(const void *src, float *dst, int64_t k);
void eq_dequantize_row_iq3_xxs(const void *src, float *dst, int64_t k);
void eq_dequantize_row_iq3_s(const void *src, float *dst, int64_t k);
void eq_dequantize_row_iq1_s(const void *src, float *dst, int64_t k);
void eq_dequantize_row_iq1_m(const void *src, float *dst, int64_t k);
void eq_dequantize_row_iq4_xs(const void *src, float *dst, int64_t k);

/// The tables ggml's `iq2xs_init_impl` builds for one 2-bit-coordinate lattice: `grid` the lattice
/// (one of ggml_iq_grids.h), `map` from a point's 16-bit code (2 bits per coordinate) to its grid
/// index or −1 − (offset of its neighbour list), `neighbours` the lists (count, then indices).
/// grid_size: 256 (iq2_xxs), 512 (iq2_xs), 1024 (iq2_s), 2048 (iq1_s, iq1_m). Built on first call.
typedef struct {
    const uint64_t *grid;
    const int *map;
    const uint16_t *neighbours;
} eq_iq2_lattice;
const eq_iq2_lattice *eq_iq2_lattice_get(int grid_size);

/// `iq3xs_init_impl`'s tables for grid_size 256 (iq3_xxs) or 512 (iq3_s), as above with 3-bit
/// coordinates (12-bit codes).
typedef struct {
    const uint32_t *grid;
    const int *map;
    const uint16_t *neighbours;
} eq_iq3_lattice;
const eq_iq3_lattice *eq_iq3_lattice_get(int grid_size);

#ifdef __cplusplus
}
#endif
#endif
