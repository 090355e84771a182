// GPTQ's factorisation in double: the Cholesky factor of the damped, reversed H and the inverse of
// that factor (GPTQ.inverseCholeskyUpper). Every dot product is the one the Swift code defined
// first — four running sums of every fourth product, the tail added to the first, then
// (s0 + s1) + (s2 + s3), each product and sum rounded (no FMA) — so the factors, and every GPTQ
// file, are the same bits as before and on every level. One such dot is a chain of dependent adds;
// the speed comes from running independent ones at once that read the same memory: eight rows
// of L against one finished row (the factorisation), four columns of L⁻¹ against one row of L
// (the inverse). n is up to n_ff (1536 for SmolLM2: an 18 MB matrix, read n/6 times over).
#include "CKernels.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>

#pragma STDC FP_CONTRACT OFF

static double dot_scalar(const double *a, const double *b, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const double p0 = a[i] * b[i], p1 = a[i + 1] * b[i + 1], p2 = a[i + 2] * b[i + 2], p3 = a[i + 3] * b[i + 3];
        s0 = s0 + p0; s1 = s1 + p1; s2 = s2 + p2; s3 = s3 + p3;
    }
    for (; i < n; i++) { const double p = a[i] * b[i]; s0 = s0 + p; }
    return (s0 + s1) + (s2 + s3);
}

/// Four dots out[k] = dot(a[k], b[k], n[k]), each exactly `dot_scalar`.
typedef void (*dots4_fn)(const double *const a[4], const double *const b[4], const int64_t n[4], double out[4]);

static void dots4_generic(const double *const a[4], const double *const b[4], const int64_t n[4], double out[4]) {
    for (int k = 0; k < 4; k++) out[k] = n[k] > 0 ? dot_scalar(a[k], b[k], n[k]) : 0;
}

#if EK_X86
EK_AVX2 static double finish_dot(__m256d acc, const double *a, const double *b, int64_t i, int64_t n) {
    double l[4];
    _mm256_storeu_pd(l, acc);
    double s0 = l[0];
    for (; i < n; i++) { const double p = a[i] * b[i]; s0 = s0 + p; }
    return (s0 + l[1]) + (l[2] + l[3]);
}

EK_AVX2 static void dots4_avx2(const double *const a[4], const double *const b[4], const int64_t n[4], double out[4]) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd(), s2 = _mm256_setzero_pd(), s3 = _mm256_setzero_pd();
    int64_t m = n[0];
    for (int k = 1; k < 4; k++) if (n[k] < m) m = n[k];
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) {
        s0 = _mm256_add_pd(s0, _mm256_mul_pd(_mm256_loadu_pd(a[0] + i), _mm256_loadu_pd(b[0] + i)));
        s1 = _mm256_add_pd(s1, _mm256_mul_pd(_mm256_loadu_pd(a[1] + i), _mm256_loadu_pd(b[1] + i)));
        s2 = _mm256_add_pd(s2, _mm256_mul_pd(_mm256_loadu_pd(a[2] + i), _mm256_loadu_pd(b[2] + i)));
        s3 = _mm256_add_pd(s3, _mm256_mul_pd(_mm256_loadu_pd(a[3] + i), _mm256_loadu_pd(b[3] + i)));
    }
    __m256d acc[4] = {s0, s1, s2, s3};
    for (int k = 0; k < 4; k++) {
        if (n[k] <= 0) { out[k] = 0; continue; }
        __m256d s = acc[k];
        int64_t j = i;
        for (; j + 4 <= n[k]; j += 4) s = _mm256_add_pd(s, _mm256_mul_pd(_mm256_loadu_pd(a[k] + j), _mm256_loadu_pd(b[k] + j)));
        out[k] = finish_dot(s, a[k], b[k], j, n[k]);
    }
}
#endif

static dots4_fn pick_dots4(void) {
#if EK_X86
    if (ek_cpu_level() >= EK_LEVEL_AVX2) return dots4_avx2;
#endif
    return dots4_generic;
}

/// Eight dots of the same length against one shared row: out[k] = dot(a[k], b, n), each exactly
/// `dot_scalar` (the factorisation's rows of a block against one finished row).
typedef void (*dots8_fn)(const double *const a[8], const double *b, int64_t n, double out[8]);

static void dots8_generic(const double *const a[8], const double *b, int64_t n, double out[8]) {
    for (int k = 0; k < 8; k++) out[k] = n > 0 ? dot_scalar(a[k], b, n) : 0;
}

#if EK_X86
// Eight independent add chains hide the add latency that bounds four, and b is loaded once for
// all eight: about twice dots4's speed on Zen 4.
EK_AVX2 static void dots8_avx2(const double *const a[8], const double *b, int64_t n, double out[8]) {
    __m256d s[8];
    for (int k = 0; k < 8; k++) s[k] = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const __m256d bv = _mm256_loadu_pd(b + i);
        s[0] = _mm256_add_pd(s[0], _mm256_mul_pd(_mm256_loadu_pd(a[0] + i), bv));
        s[1] = _mm256_add_pd(s[1], _mm256_mul_pd(_mm256_loadu_pd(a[1] + i), bv));
        s[2] = _mm256_add_pd(s[2], _mm256_mul_pd(_mm256_loadu_pd(a[2] + i), bv));
        s[3] = _mm256_add_pd(s[3], _mm256_mul_pd(_mm256_loadu_pd(a[3] + i), bv));
        s[4] = _mm256_add_pd(s[4], _mm256_mul_pd(_mm256_loadu_pd(a[4] + i), bv));
        s[5] = _mm256_add_pd(s[5], _mm256_mul_pd(_mm256_loadu_pd(a[5] + i), bv));
        s[6] = _mm256_add_pd(s[6], _mm256_mul_pd(_mm256_loadu_pd(a[6] + i), bv));
        s[7] = _mm256_add_pd(s[7], _mm256_mul_pd(_mm256_loadu_pd(a[7] + i), bv));
    }
    for (int k = 0; k < 8; k++) out[k] = n > 0 ? finish_dot(s[k], a[k], b, i, n) : 0;
}
#endif

static dots8_fn pick_dots8(void) {
#if EK_X86
    if (ek_cpu_level() >= EK_LEVEL_AVX2) return dots8_avx2;
#endif
    return dots8_generic;
}

int ek_cholesky_lower(double *a, int64_t n) {
    const dots8_fn dots8 = pick_dots8();
    for (int64_t i0 = 0; i0 < n; i0 += 8) {
        const int rows = n - i0 < 8 ? (int)(n - i0) : 8;
        double *r[8];
        for (int k = 0; k < 8; k++) r[k] = a + (i0 + (k < rows ? k : 0)) * n;
        // the block's entries left of it, against rows already finished: eight dots per row j
        for (int64_t j = 0; j < i0; j++) {
            const double *rj = a + j * n;
            double d[8];
            dots8((const double *const *)r, rj, j, d);
            for (int k = 0; k < rows; k++) r[k][j] = (r[k][j] - d[k]) / rj[j];
        }
        // inside the block, row after row as the plain algorithm goes
        for (int k = 0; k < rows; k++) {
            const int64_t i = i0 + k;
            double *ri = a + i * n;
            for (int64_t j = i0; j <= i; j++) {
                const double *rj = a + j * n;
                const double s = ri[j] - dot_scalar(ri, rj, j);
                if (i == j) {
                    if (!(s > 0) || !isfinite(s)) return 0;
                    ri[i] = sqrt(s);
                } else {
                    ri[j] = s / rj[j];
                }
            }
        }
    }
    return 1;
}

void ek_lower_inverse_columns(const double *l, int64_t n, int64_t c0, int64_t step, double *u) {
    const dots4_fn dots4 = pick_dots4();
    double *m = (double *)malloc((size_t)n * 4 * sizeof(double));
    for (int64_t g = c0; g < n; g += 4 * step) {
        int64_t c[4];
        int cols = 0;
        for (int k = 0; k < 4; k++) {
            c[k] = g + k * step;
            if (c[k] < n) cols++;
        }
        for (int k = cols; k < 4; k++) c[k] = c[0];
        double *mk[4];
        for (int k = 0; k < 4; k++) {
            mk[k] = m + (size_t)k * n;
            mk[k][c[k]] = 1 / l[c[k] * n + c[k]];
        }
        // row i of L serves every column that has reached it
        for (int64_t i = c[0] + 1; i < n; i++) {
            const double *row = l + i * n;
            const double *a[4], *b[4];
            int64_t len[4];
            for (int k = 0; k < 4; k++) {
                const int live = k < cols && i > c[k];
                a[k] = row + c[k];
                b[k] = mk[k] + c[k];
                len[k] = live ? i - c[k] : 0;
            }
            double d[4];
            dots4(a, b, len, d);
            for (int k = 0; k < cols; k++) if (i > c[k]) mk[k][i] = -d[k] / row[i];
        }
        for (int k = 0; k < cols; k++) {
            const int64_t uc = n - 1 - c[k];
            for (int64_t i = c[k]; i < n; i++) u[(n - 1 - i) * n + uc] = mk[k][i];
        }
    }
    free(m);
}
