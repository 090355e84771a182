// Generated from GGMLCore (GGMLTables.formatHeader()); GGMLCoreTests checks it is current.
// ggml type ids, block sizes and tables the C kernels use, so that no size is a literal there.
#ifndef EDGEQUANT_GGML_FORMAT_H
#define EDGEQUANT_GGML_FORMAT_H

#include <stdint.h>

#define GGML_QK_K 256
#define GGML_TYPE_Q4_0 2
#define GGML_Q4_0_BLOCK_BYTES 18
#define GGML_TYPE_Q4_1 3
#define GGML_Q4_1_BLOCK_BYTES 20
#define GGML_TYPE_Q5_0 6
#define GGML_Q5_0_BLOCK_BYTES 22
#define GGML_TYPE_Q5_1 7
#define GGML_Q5_1_BLOCK_BYTES 24
#define GGML_TYPE_Q8_0 8
#define GGML_Q8_0_BLOCK_BYTES 34
#define GGML_TYPE_Q8_1 9
#define GGML_Q8_1_BLOCK_BYTES 36
#define GGML_TYPE_IQ4_NL 20
#define GGML_IQ4_NL_BLOCK_BYTES 18
#define GGML_TYPE_Q2_K 10
#define GGML_Q2_K_BLOCK_BYTES 84
#define GGML_TYPE_Q3_K 11
#define GGML_Q3_K_BLOCK_BYTES 110
#define GGML_TYPE_Q4_K 12
#define GGML_Q4_K_BLOCK_BYTES 144
#define GGML_TYPE_Q5_K 13
#define GGML_Q5_K_BLOCK_BYTES 176
#define GGML_TYPE_Q6_K 14
#define GGML_Q6_K_BLOCK_BYTES 210
#define GGML_TYPE_Q8_K 15
#define GGML_Q8_K_BLOCK_BYTES 292
#define GGML_TYPE_IQ2_XXS 16
#define GGML_IQ2_XXS_BLOCK_BYTES 66
#define GGML_TYPE_IQ2_XS 17
#define GGML_IQ2_XS_BLOCK_BYTES 74
#define GGML_TYPE_IQ2_S 22
#define GGML_IQ2_S_BLOCK_BYTES 82
#define GGML_TYPE_IQ3_XXS 18
#define GGML_IQ3_XXS_BLOCK_BYTES 98
#define GGML_TYPE_IQ3_S 21
#define GGML_IQ3_S_BLOCK_BYTES 110
#define GGML_TYPE_IQ1_S 19
#define GGML_IQ1_S_BLOCK_BYTES 50
#define GGML_TYPE_IQ1_M 29
#define GGML_IQ1_M_BLOCK_BYTES 56
#define GGML_TYPE_IQ4_XS 23
#define GGML_IQ4_XS_BLOCK_BYTES 136

// block_q8_K field offsets
#define GGML_Q8_K_QS_OFFSET 4
#define GGML_Q8_K_BSUMS_OFFSET 260

static const int8_t ggml_kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

#endif
