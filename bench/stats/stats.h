/* Summary statistics of a cell's trial times, robust to the odd slow run.
 *
 * The headline figure is the median with a distribution-free 95% confidence
 * interval (benchstat's choice), and outliers are flagged, never dropped,
 * with the modified z-score of Iglewicz and Hoaglin.
 *
 * Pure functions: no allocation visible to the caller, no state, safe from
 * any thread. NaN inputs are the caller's bug and give meaningless output.
 */
#ifndef CB_STATS_H
#define CB_STATS_H

#include <stdbool.h>
#include <stddef.h>

struct cb_stats {
	size_t n;
	double median;
	double min, max;
	double mean;
	double stddev; /* sample standard deviation (n - 1); 0 when n < 2 */
	/* Median absolute deviation, UNSCALED: median(|x - median|). Multiply
	 * by 1.4826 for a consistent estimate of sigma under normality. */
	double mad;
	/* 95% confidence interval of the median from binomial order
	 * statistics: exact binomial(n, 1/2) tails for n <= 50, the normal
	 * approximation above. With n < 6 no pair of order statistics reaches
	 * 95% coverage, so the interval is [min, max] (coverage 1 - 2^(1-n),
	 * i.e. less than 95%); callers that print it should say so. */
	double ci95_lo, ci95_hi;
};

/* Below this many samples the CI is [min, max] and is not a 95% interval. */
#define CB_STATS_MIN_CI_N 6

/* Fills *out from v[0..n). v is not modified (a sorted copy is made on the
 * stack for n <= 1024, else on the heap; on allocation failure every field
 * but n, min, max and mean is NaN). n == 0 gives n = 0 and NaN everywhere. */
void cb_stats_compute(const double *v, size_t n, struct cb_stats *out);

/* Marks outliers by the modified z-score: 0.6745 * |x - median| / MAD > 3.5
 * (Iglewicz & Hoaglin 1993). When MAD is 0 (over half the samples equal)
 * nothing is marked: the score is undefined and such data is not noisy.
 * is_outlier_out has n entries, all written. */
void cb_stats_outliers(const double *v, size_t n, bool *is_outlier_out);

/* The threshold above, for callers that print it. */
#define CB_STATS_OUTLIER_Z 3.5

/* qsort's comparator for doubles, ascending (NaN compares equal to all). */
int cb_stats_cmp_double(const void *a, const void *b);

/* The median of the finite values of v[0..n) (the mean of the middle two
 * for an even count); NAN when there is none. Reorders v: the finite
 * values first, sorted. */
double cb_stats_median_finite(double *v, size_t n);

#endif
