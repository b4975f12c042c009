/* The two-sided Mann-Whitney U test (Wilcoxon rank-sum) and the ratio
 * head/base with its confidence interval: the statistics behind
 * `ckptbench compare` (benchstat's and google-benchmark compare.py's choice:
 * no assumption about the shape of the noise, robust to the odd slow run).
 *
 * Conventions (those of scipy.stats.mannwhitneyu, so published values can be
 * checked against it):
 *   U1 = R1 - n1(n1+1)/2 = #{(i,j): a_i > b_j} + #{(i,j): a_i == b_j} / 2
 *   U2 = n1*n2 - U1
 * The p-value is two-sided:
 *   - exact (the permutation distribution of U, by counting) when there are
 *     no ties and both samples have at most CB_MW_EXACT_MAX values:
 *     p = min(1, 2 * P(U >= max(U1, U2)));
 *   - otherwise the normal approximation with the tie correction of the
 *     variance and a continuity correction of 1/2:
 *     z = (|U1 - n1n2/2| - 1/2) / sigma, p = erfc(z / sqrt 2), with
 *     sigma^2 = n1n2/12 * ((n+1) - sum(t^3 - t) / (n(n-1))).
 *
 * Pure functions, no state, safe from any thread. NaN inputs are the
 * caller's bug and give meaningless output.
 */
#ifndef CB_MANNWHITNEY_H
#define CB_MANNWHITNEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* The exact distribution is used up to this many values per sample. Counts
 * of arrangements stay exact integers in a double up to C(40, 20) ~ 1.4e11,
 * far below 2^53, and counting costs O(n1 * n1 * n2). */
#define CB_MW_EXACT_MAX 20

struct cb_mw {
	size_t n1, n2;
	double u1;  /* U of the first sample (see above) */
	double u2;  /* n1 * n2 - u1 */
	double z;   /* the corrected normal score; 0 when exact or sigma is 0 */
	double p;   /* two-sided p-value in [0, 1] */
	bool exact; /* p from the exact distribution */
	bool ties;  /* some value occurs more than once in the pooled sample */
};

/* Tests a[0..n1) against b[0..n2). Both n1 and n2 must be at least 1
 * (CB_EUSAGE otherwise). Allocates scratch internally and frees it;
 * CB_ENOMEM when that fails. When every pooled value is equal, p = 1. */
CB_NODISCARD int cb_mannwhitney(const double *a, size_t n1, const double *b, size_t n2,
				struct cb_mw *out, struct cb_error *err);

/* P(U <= u) under the null hypothesis for samples of n1 and n2 values
 * without ties, by counting arrangements. NaN when n1 or n2 exceeds
 * CB_MW_EXACT_MAX or the scratch cannot be allocated. */
double cb_mw_exact_cdf(size_t n1, size_t n2, double u);

/* How much slower or faster: the ratio head/base estimated by
 * Hodges-Lehmann on the log scale, i.e. the median of the n1 * n2 pairwise
 * ratios head_j / base_i, with its distribution-free 95% interval (Moses):
 * the k-th smallest and k-th largest pairwise ratios, k - 1 the largest u
 * with P(U <= u) <= 0.025 (exact up to CB_MW_EXACT_MAX values a side, the
 * normal approximation above). It is the estimate that goes with the U test:
 * the interval excludes 1 about when p < 0.05.
 *
 * Why not the ratio of the medians: it is noisier. On 10 against 10 trials
 * with 5% noise its spread makes a 15% slowdown read as under 10% in about
 * 4.5% of cases, against about 1.5% for this estimate (the calibration test
 * shows the difference); it is still given, as of_medians, for display. */
struct cb_ratio {
	double ratio;      /* NaN when a value is <= 0 (no ratio of times) */
	double lo, hi;     /* the 95% interval; see ci_full */
	bool ci_full;      /* false when no k reaches 95% (n1, n2 tiny): [min, max] */
	double of_medians; /* median(head) / median(base); NaN when median(base) <= 0 */
};

/* Both n1 and n2 must be at least 1 (CB_EUSAGE otherwise); CB_ENOMEM when
 * the n1 * n2 pairwise ratios cannot be held in memory. */
CB_NODISCARD int cb_ratio_estimate(const double *base, size_t n1, const double *head, size_t n2,
				   struct cb_ratio *out, struct cb_error *err);

#endif
