/* bench/stats: median, MAD, the CI of the median from order statistics and
 * modified z-score outliers, against values worked out by hand. */
#include <math.h>
#include <stdbool.h>

#include "check.h"
#include "stats.h"

#define CHECK_NEAR(a, b) CHECK(fabs((a) - (b)) < 1e-9)

static void test_odd(void)
{
	const double v[] = {5, 1, 4, 2, 3};
	struct cb_stats s;
	cb_stats_compute(v, 5, &s);
	CHECK_EQ_U64(s.n, 5);
	CHECK_NEAR(s.median, 3);
	CHECK_NEAR(s.min, 1);
	CHECK_NEAR(s.max, 5);
	CHECK_NEAR(s.mean, 3);
	CHECK_NEAR(s.stddev, sqrt(2.5)); /* sum of squares 10 over n - 1 = 4 */
	CHECK_NEAR(s.mad, 1);            /* |x - 3| = 2 2 1 1 0 */
	/* n < 6: no 95% interval exists, [min, max] is what there is. */
	CHECK_NEAR(s.ci95_lo, 1);
	CHECK_NEAR(s.ci95_hi, 5);
}

static void test_even_and_ties(void)
{
	const double v[] = {4, 1, 3, 2};
	struct cb_stats s;
	cb_stats_compute(v, 4, &s);
	CHECK_NEAR(s.median, 2.5);
	CHECK_NEAR(s.mad, 1.0); /* |x - 2.5| = 1.5 1.5 0.5 0.5 */
	CHECK_NEAR(s.stddev, sqrt(5.0 / 3.0));

	const double ties[] = {2, 2, 9, 2, 2};
	cb_stats_compute(ties, 5, &s);
	CHECK_NEAR(s.median, 2);
	CHECK_NEAR(s.mad, 0);
	bool out[5];
	cb_stats_outliers(ties, 5, out);
	for (int i = 0; i < 5; i++)
		CHECK(!out[i]); /* MAD 0: no scale, so no verdict */

	const double one[] = {0.25};
	cb_stats_compute(one, 1, &s);
	CHECK_NEAR(s.median, 0.25);
	CHECK_NEAR(s.stddev, 0);
	CHECK_NEAR(s.mad, 0);
	CHECK_NEAR(s.ci95_lo, 0.25);
	CHECK_NEAR(s.ci95_hi, 0.25);

	cb_stats_compute(NULL, 0, &s);
	CHECK_EQ_U64(s.n, 0);
	CHECK(isnan(s.median) && isnan(s.mad) && isnan(s.ci95_lo));
}

/* 1..n in a scrambled order, so the code has to sort. */
static void ramp(double *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		v[i] = (double)((i * 7919) % n + 1);
}

static void test_ci_order_statistics(void)
{
	double v[2001];
	struct cb_stats s;

	/* n = 10: P(B <= 1) = 11/1024 = 0.0107 <= 0.025 < P(B <= 2) = 56/1024,
	 * so the interval is [x(2), x(9)] (coverage 97.9%). */
	ramp(v, 10);
	cb_stats_compute(v, 10, &s);
	CHECK_NEAR(s.median, 5.5);
	CHECK_NEAR(s.mad, 2.5); /* |i - 5.5|: 0.5 0.5 1.5 1.5 2.5 2.5 ... */
	CHECK_NEAR(s.ci95_lo, 2);
	CHECK_NEAR(s.ci95_hi, 9);

	/* n = 20: P(B <= 5) = 0.0207, P(B <= 6) = 0.0577: [x(6), x(15)]. */
	ramp(v, 20);
	cb_stats_compute(v, 20, &s);
	CHECK_NEAR(s.median, 10.5);
	CHECK_NEAR(s.ci95_lo, 6);
	CHECK_NEAR(s.ci95_hi, 15);

	/* n = 6: P(B <= 0) = 1/64 = 0.0156: [x(1), x(6)], a real 96.9% interval.
	 * n = 9: P(B <= 1) = 10/512 = 0.0195: [x(2), x(8)]. */
	ramp(v, 6);
	cb_stats_compute(v, 6, &s);
	CHECK_NEAR(s.ci95_lo, 1);
	CHECK_NEAR(s.ci95_hi, 6);
	ramp(v, 9);
	cb_stats_compute(v, 9, &s);
	CHECK_NEAR(s.ci95_lo, 2);
	CHECK_NEAR(s.ci95_hi, 8);

	/* n = 100 by the normal approximation: floor(50 - 0.98 * 10) = 40, so
	 * [x(40), x(61)], which is also the exact table's answer. */
	ramp(v, 100);
	cb_stats_compute(v, 100, &s);
	CHECK_NEAR(s.ci95_lo, 40);
	CHECK_NEAR(s.ci95_hi, 61);

	/* n = 2001 (the heap path): values 0..2000, median 1000, MAD 500;
	 * floor(1000.5 - 0.98 * sqrt(2001)) = 956: [x(956), x(1046)]. */
	for (size_t i = 0; i < 2001; i++)
		v[i] = (double)((i * 7919) % 2001);
	cb_stats_compute(v, 2001, &s);
	CHECK_NEAR(s.median, 1000);
	CHECK_NEAR(s.mad, 500);
	CHECK_NEAR(s.ci95_lo, 955);
	CHECK_NEAR(s.ci95_hi, 1045);
}

static void test_outliers(void)
{
	/* Median 11, MAD 1: the cut is |x - 11| > 3.5 / 0.6745 = 5.19. */
	double v[] = {10, 11, 10, 12, 11, 10, 11, 17};
	bool out[8];
	cb_stats_outliers(v, 8, out);
	for (int i = 0; i < 7; i++)
		CHECK(!out[i]);
	CHECK(out[7]); /* z = 0.6745 * 6 = 4.05 */

	v[7] = 16; /* z = 3.37: kept */
	cb_stats_outliers(v, 8, out);
	CHECK(!out[7]);

	v[7] = 11;
	v[0] = 5; /* a fast outlier counts too (MAD is 0.5 now: z = 8.1) */
	cb_stats_outliers(v, 8, out);
	CHECK(out[0]);
	for (int i = 1; i < 8; i++)
		CHECK(!out[i]);
}

int main(void)
{
	test_odd();
	test_even_and_ties();
	test_ci_order_statistics();
	test_outliers();
	return check_finish("test_stats");
}
