// Hot loops of edgequant's CPU inference, in C so that they can be compiled for AVX2/AVX-512
// (per function, with runtime dispatch) while the rest of the binary stays baseline x86-64.
// Every function is pure arithmetic on caller-owned memory; threading is the caller's.
#ifndef EDGEQUANT_CKERNELS_H
#define EDGEQUANT_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "ggml_format.h"

#ifdef __cplusplus
extern "C" {
#endif

/// What the CPU and OS support, as far as these kernels care.
typedef enum {
    EK_LEVEL_GENERIC = 0, ///< portable C
    EK_LEVEL_AVX2 = 1,    ///< AVX2 + FMA + F16C
    EK_LEVEL_AVX512 = 2,  ///< AVX-512 F/BW/DQ/VL + VNNI
} ek_level;

/// The highest level this machine supports (detected once), capped by the environment variable
/// EDGEQUANT_KERNELS=generic|avx2|avx512 so every path can be exercised on one machine.
ek_level ek_cpu_level(void);

/// What the hardware supports, ignoring EDGEQUANT_KERNELS and `ek_force_level`.
ek_level ek_detected_level(void);

/// Caps the level the calling thread uses from now on (at most what the hardware supports), until
/// `ek_unforce_level`: for tests that compare the code paths on one machine. Other threads, and
/// work the caller hands to them, keep the process's level.
void ek_force_level(ek_level level);

/// The calling thread back on the process's level.
void ek_unforce_level(void);

/// Whether `ek_gemm_bf16` runs on VDPBF16PS: the CPU has AVX512-BF16, the level is AVX-512, and
/// neither EDGEQUANT_KERNELS=avx512 nor `ek_force_bf16(0)` on the calling thread turned it off.
int ek_cpu_has_bf16(void);

/// `ek_force_bf16(0)`: the calling thread runs `ek_gemm_bf16` without VDPBF16PS (as a machine
/// without it would); 1: with it where the hardware has it; -1: as the process does.
void ek_force_bf16(int on);

/// Float weight element types for `ek_gemm_float`.
typedef enum { EK_W_F32 = 0, EK_W_F16 = 1, EK_W_BF16 = 2 } ek_float_type;

/// y[t·ldy + r] = Σ_k w_r[k] · x[t·ldx + k] for rows r in [r0, r1) and tokens t in [0, ntok).
/// Row r of the weights starts at `w + r·wrow_bytes` (f32, f16 or bf16 elements). Each output
/// is one f32 fused-multiply-add chain over k in order, so it is the same on every level.
void ek_gemm_float(ek_float_type wtype, const void *w, size_t wrow_bytes, int64_t r0, int64_t r1,
                   const float *x, size_t ldx, int64_t ntok, int64_t k, float *y, size_t ldy);

/// The rows of one panel of `ek_gemm_float`'s f32 kernels on the calling thread's level (32 with
/// AVX-512, else 16): what `ek_pack_float_panels` must be given for `ek_gemm_float_panels` here.
int ek_float_panel_rows(void);

/// f32 rows [0, rows) of k floats (row r at w + r·k) packed once as `ek_gemm_float` packs them on
/// every call, `mr` (`ek_float_panel_rows()`) rows a panel: `panels` holds ceil(rows/mr)·mr·k floats.
void ek_pack_float_panels(const float *w, int64_t rows, int64_t k, int mr, float *panels);

/// `ek_gemm_float(EK_W_F32, …)` over rows [r0, r1) (r0 a multiple of mr) of weights packed by
/// `ek_pack_float_panels` with `mr` = `ek_float_panel_rows()` of the calling thread: the same bits.
void ek_gemm_float_panels(const float *panels, int mr, int64_t r0, int64_t r1, const float *x, size_t ldx, int64_t ntok,
                          int64_t k, float *y, size_t ldy);

/// y[t·ldy + r] = Σ_k w_r[k] · x[t·ldx + k] for bf16 weights and bf16 activations (`x`: ntok rows
/// of ldx bf16 values, ggml's vec_dot type for bf16), in VDPBF16PS's arithmetic on every level:
/// per pair of columns (2p, 2p+1), acc += w·x at 2p+1, then at 2p, each an f32 fused multiply-add
/// (a bf16 product is exact in f32); bf16 subnormals read as zero, a subnormal sum flushed to zero
/// of its sign; an odd k ends with a zero pair member. With AVX512-BF16 one instruction advances 16
/// outputs by a pair, twice what an f32 FMA does; elsewhere the f32 kernels run the same sums.
void ek_gemm_bf16(const void *w, size_t wrow_bytes, int64_t r0, int64_t r1,
                  const uint16_t *x, size_t ldx, int64_t ntok, int64_t k, float *y, size_t ldy);

/// `n` floats to bf16 as ggml_cpu_fp32_to_bf16 with AVX512-BF16 rounds them: to nearest even,
/// subnormals flushed to a signed zero, NaN kept quiet.
void ek_f32_to_bf16(const float *x, int64_t n, uint16_t *y);

/// out[c·rows + t] = bf16(x[t·ldx + c]·(t == 0 ? first : 1)) for t < rows, c < cols (rounded as
/// `ek_f32_to_bf16`): activations turned column-major for XᵀX, the first row scaled.
void ek_transpose_bf16(const float *x, size_t ldx, int64_t rows, int64_t cols, float first, uint16_t *out);

/// y[r·n + i] = Σ_j h[i·n + j] · d[r·n + j] for `nrows` rows d (n floats each) and a symmetric
/// n × n `h` (row-major): each output is `s = 0; for j ascending: s = s + h[i][j]·d[j]` with the
/// product and the sum each rounded to f32 (no FMA), so it is the same on every level.
void ek_symv_rows(const float *h, int64_t n, const float *d, int64_t nrows, float *y);

/// s[c] += x[t][c]·x[t][c] for t = 0, 1, … in order (product and sum each rounded, no FMA): the
/// importance matrix's Σx², as llama-imatrix sums it, for `rows` rows of `n` at `x`, `ldx` apart.
void ek_add_squares(const float *x, size_t ldx, int64_t rows, int64_t n, float *s);

/// sums[j][i] += g[j][i] for i0 ≤ i < i1 and j ≤ i (n × n, row-major): one column block of the
/// upper triangle.
void ek_add_upper_block(const float *g, float *sums, int64_t n, int64_t i0, int64_t i1);

/// GPTQ's factorisation (GPTQ.inverseCholeskyUpper), in double, every dot product summed as
/// four running sums of every fourth product, the tail into the first, (s0 + s1) + (s2 + s3),
/// nothing fused, on every level. `ek_cholesky_lower`: `a` (n × n, row-major, lower half read)
/// becomes its Cholesky factor L in place, row by row; 0 when a pivot is not positive and finite.
int ek_cholesky_lower(double *a, int64_t n);

/// Columns c0, c0 + step, c0 + 2·step, … of L⁻¹ (L from `ek_cholesky_lower`) by forward
/// substitution, each stored reversed: u[(n−1−i)·n + (n−1−c)] = (L⁻¹)[i][c] for i ≥ c.
void ek_lower_inverse_columns(const double *l, int64_t n, int64_t c0, int64_t step, double *u);

/// Legacy and k-quant weight types the integer kernels read (ggml type ids, from ggml_format.h).
enum {
    EK_GGML_Q4_0 = GGML_TYPE_Q4_0, EK_GGML_Q4_1 = GGML_TYPE_Q4_1, EK_GGML_Q5_0 = GGML_TYPE_Q5_0,
    EK_GGML_Q5_1 = GGML_TYPE_Q5_1, EK_GGML_Q8_0 = GGML_TYPE_Q8_0, EK_GGML_IQ4_NL = GGML_TYPE_IQ4_NL,
    EK_GGML_Q2_K = GGML_TYPE_Q2_K, EK_GGML_Q3_K = GGML_TYPE_Q3_K, EK_GGML_Q4_K = GGML_TYPE_Q4_K,
    EK_GGML_Q5_K = GGML_TYPE_Q5_K, EK_GGML_Q6_K = GGML_TYPE_Q6_K,
    EK_GGML_IQ2_XXS = GGML_TYPE_IQ2_XXS, EK_GGML_IQ2_XS = GGML_TYPE_IQ2_XS, EK_GGML_IQ2_S = GGML_TYPE_IQ2_S,
    EK_GGML_IQ3_XXS = GGML_TYPE_IQ3_XXS, EK_GGML_IQ3_S = GGML_TYPE_IQ3_S, EK_GGML_IQ1_S = GGML_TYPE_IQ1_S,
    EK_GGML_IQ1_M = GGML_TYPE_IQ1_M, EK_GGML_IQ4_XS = GGML_TYPE_IQ4_XS,
};

/// Whether `ek_gemm_q8` runs natively here (AVX-512 VNNI); otherwise callers use their own path.
int ek_gemm_q8_available(void);

/// ggml's mul_mat for a legacy weight type against activations already quantized to its vec_dot
/// type (`xq`: ntok rows of `xrow_bytes`, ggml block_q8_0 for q4_0/q5_0/q8_0/iq4_nl, block_q8_1
/// for q4_1/q5_1). Per 32-block an exact integer dot product, then in f32, block by block:
/// `sumf += (d_w·d_x)·sumi [+ m_w·s_x]` — ggml's generic vec_dot, bit for bit.
void ek_gemm_q8(int wtype, const void *w, size_t wrow_bytes, int64_t r0, int64_t r1,
                const void *xq, size_t xrow_bytes, int64_t ntok, int64_t k, float *y, size_t ldy);

/// Whether `ek_gemm_k` runs natively here (AVX-512 VNNI).
int ek_gemm_k_available(void);

/// `ek_gemm_q8` for the k-quants (q2_K … q6_K) against q8_K activations (`xq`: ntok rows of
/// `xrow_bytes`, block_q8_K {f32 d; i8 qs[256]; i16 bsums[16]}): exact integer sums per
/// super-block, then `(d·d_x)·isum − (dmin·d_x)·summ` in f32, as ggml's generic vec_dot.
void ek_gemm_k(int wtype, const void *w, size_t wrow_bytes, int64_t r0, int64_t r1,
               const void *xq, size_t xrow_bytes, int64_t ntok, int64_t k, float *y, size_t ldy);

/// One i-quant weight row (iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s, iq1_s, iq1_m, iq4_xs; `n` columns,
/// a multiple of 256) · one q8_K activation row: ggml's generic vec_dot bit for bit — exact integer
/// sums per super-block, then its f32 expression in its order (including the final 0.125f / 0.25f and
/// IQ1S_DELTA / IQ1M_DELTA), without FMA contraction. Portable; every level gives the same bits.
void ek_vec_dot_iq(int wtype, int64_t n, const void *w_row, const void *xq_row, float *out);

/// `ek_gemm_k` for the i-quants: y[t·ldy + r] = `ek_vec_dot_iq`(row r, token t) bit for bit, for rows
/// [r0, r1) of `w` (row r at w + r·wrow_bytes) and tokens [0, ntok) of `xq` (q8_K rows of `xrow_bytes`).
/// Each weight super-block is decoded once per call and reused over all tokens.
void ek_gemm_iq(int wtype, const void *w, size_t wrow_bytes, int64_t r0, int64_t r1,
                const void *xq, size_t xrow_bytes, int64_t ntok, int64_t k, float *y, size_t ldy);

/// Causal attention for one head as ggml-cpu's tiled flash attention computes it for a batch of at
/// least 64 queries (ggml_compute_forward_flash_attn_ext_tiled, 64×64 tiles): f32 queries, keys
/// and values (holding the f16 KV cache's values), scores and softmax in f32 with ggml_v_expf,
/// sums of probabilities in double per 64-key tile, output accumulated in f32.
/// Query rows [q0, q1) of `q` (row t at q + t·ldq, position past + t) attend to key/value rows
/// 0...past+t: keys packed by `ek_attention_pack_k`, value row s at v + s·ldkv. Output row t goes
/// to out + t·ldo. `window` > 0 masks keys at positions ≤ pos − window (a sliding-window layer);
/// `softcap` > 0 caps scores as softcap·tanh(score/softcap) (Gemma 2), before the mask.
void ek_attention_tiled(const float *q, size_t ldq, const float *kt, const float *v, size_t ldkv,
                        int64_t past, int64_t q0, int64_t q1, int64_t dk, int64_t dv, float scale,
                        int64_t window, float softcap, float *out, size_t ldo);

/// One head's keys (row s at k + s·ldkv, `nkv` rows of `dk`) transposed into 64-key tiles for
/// `ek_attention_tiled`: element d of key ic + j at kt[(ic/64)·dk·64 + d·64 + j], zero-padded to a
/// whole tile. `kt` holds ceil(nkv/64)·64·dk floats.
void ek_attention_pack_k(const float *k, size_t ldkv, int64_t nkv, int64_t dk, float *kt);

/// x ← silu(x)·g for `rows` rows of `n` (contiguous), as an AVX-512 build of ggml_vec_swiglu_f32
/// computes each row: x/(1 + ggml_v_expf(−x))·g for whole sixteens, with libm expf for the rest;
/// the same bits on every level.
void ek_swiglu_rows(float *x, const float *g, int64_t rows, int64_t n);

/// Rows of `x` (`rows` of `n` logits, `ldx` apart) replaced by their log-softmax: x − max −
/// log Σ exp(x − max), the exponentials ggml_v_expf's, summed 16 at a time in f32 (the tree of
/// `_mm512_reduce_add_ps`) and the sixteens in double, as ggml_vec_soft_max_f32 sums them; the same
/// bits on every level for finite logits.
void ek_log_softmax_rows(float *x, size_t ldx, int64_t rows, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
