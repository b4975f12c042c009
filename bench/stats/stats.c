/* Robust summary statistics: median, MAD, a distribution-free CI of the
 * median, modified z-score outliers. See stats.h for the definitions. */
#include "stats.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Samples sorted on the stack up to this count; above it on the heap. */
#define STACK_SAMPLES 1024

/* Exact binomial tails up to this n, the normal approximation above it
 * (binomial coefficients stay exact in a double well beyond 50). */
#define EXACT_CI_MAX_N 50

int cb_stats_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The median of sorted s[0..n), n >= 1: the mean of the middle two for even n. */
static double sorted_median(const double *s, size_t n);

double cb_stats_median_finite(double *v, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (isfinite(v[i]))
			v[k++] = v[i];
	if (!k)
		return NAN;
	qsort(v, k, sizeof *v, cb_stats_cmp_double);
	return sorted_median(v, k);
}

static double sorted_median(const double *s, size_t n)
{
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2.0;
}

/* MAD of sorted s[0..n) around med, using dev[0..n) as scratch. */
static double mad_of(const double *s, size_t n, double med, double *dev)
{
	for (size_t i = 0; i < n; i++)
		dev[i] = fabs(s[i] - med);
	qsort(dev, n, sizeof *dev, cb_stats_cmp_double);
	return sorted_median(dev, n);
}

/* The 1-based rank k of the lower CI bound: the largest k with
 * P(Binomial(n, 1/2) <= k - 1) <= 0.025, so that [x(k), x(n+1-k)] covers the
 * median with probability >= 95%. 0 when no such k exists (n < 6). */
static size_t exact_lower_rank(size_t n)
{
	double coef = 1.0; /* C(n, i), built up term by term */
	double tail = 0.0;
	double scale = ldexp(1.0, -(int)n);
	size_t k = 0;
	for (size_t i = 0; i <= n / 2; i++) {
		if (i > 0)
			coef = coef * (double)(n - i + 1) / (double)i;
		tail += coef * scale;
		if (tail > 0.025)
			break;
		k = i + 1;
	}
	return k;
}

/* The same rank by the normal approximation of the binomial (n large):
 * n/2 - 1.96 * sqrt(n)/2, rounded down so the interval stays conservative. */
static size_t normal_lower_rank(size_t n)
{
	double r = floor((double)n / 2.0 - 0.98 * sqrt((double)n));
	return r < 1.0 ? 1 : (size_t)r;
}

static void median_ci(const double *s, size_t n, struct cb_stats *out)
{
	size_t k = n <= EXACT_CI_MAX_N ? exact_lower_rank(n) : normal_lower_rank(n);
	if (k == 0) { /* n < 6: the widest interval is all there is */
		out->ci95_lo = s[0];
		out->ci95_hi = s[n - 1];
		return;
	}
	out->ci95_lo = s[k - 1];
	out->ci95_hi = s[n - k];
}

static void moments(const double *v, size_t n, struct cb_stats *out)
{
	double sum = 0, lo = v[0], hi = v[0];
	for (size_t i = 0; i < n; i++) {
		sum += v[i];
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	out->mean = sum / (double)n;
	out->min = lo;
	out->max = hi;
	double ss = 0;
	for (size_t i = 0; i < n; i++)
		ss += (v[i] - out->mean) * (v[i] - out->mean);
	out->stddev = n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
}

/* Points *sorted and *scratch at n doubles each: the stack buffers when
 * they fit, else one heap block the caller frees through *heap_out. */
static bool buffers(size_t n, double *stack_a, double *stack_b, double **sorted, double **scratch,
		    double **heap_out)
{
	*heap_out = NULL;
	if (n <= STACK_SAMPLES) {
		*sorted = stack_a;
		*scratch = stack_b;
		return true;
	}
	if (n > SIZE_MAX / (2 * sizeof(double)))
		return false;
	*heap_out = malloc(2 * n * sizeof(double));
	if (!*heap_out)
		return false;
	*sorted = *heap_out;
	*scratch = *heap_out + n;
	return true;
}

void cb_stats_compute(const double *v, size_t n, struct cb_stats *out)
{
	out->n = n;
	out->median = out->min = out->max = out->mean = out->stddev = NAN;
	out->mad = out->ci95_lo = out->ci95_hi = NAN;
	if (n == 0)
		return;
	moments(v, n, out);
	double stack_a[STACK_SAMPLES], stack_b[STACK_SAMPLES];
	double *sorted, *scratch, *heap;
	if (!buffers(n, stack_a, stack_b, &sorted, &scratch, &heap))
		return;
	memcpy(sorted, v, n * sizeof *v);
	qsort(sorted, n, sizeof *sorted, cb_stats_cmp_double);
	out->median = sorted_median(sorted, n);
	out->mad = mad_of(sorted, n, out->median, scratch);
	median_ci(sorted, n, out);
	free(heap);
}

void cb_stats_outliers(const double *v, size_t n, bool *is_outlier_out)
{
	struct cb_stats st;
	cb_stats_compute(v, n, &st);
	for (size_t i = 0; i < n; i++) {
		/* MAD 0 (or NaN from a failed allocation): no scale, no verdict. */
		bool scaled = st.mad > 0;
		is_outlier_out[i] =
			scaled && 0.6745 * fabs(v[i] - st.median) / st.mad > CB_STATS_OUTLIER_Z;
	}
}
