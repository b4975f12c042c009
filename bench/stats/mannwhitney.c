/* The Mann-Whitney U test and the Hodges-Lehmann ratio; see
 * mannwhitney.h for the conventions and the formulas. */
#include "mannwhitney.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

struct pooled {
	double v;
	int first; /* 1 for a value of the first sample */
};

static int cmp_pooled(const void *x, const void *y)
{
	double a = ((const struct pooled *)x)->v, b = ((const struct pooled *)y)->v;
	return (a > b) - (a < b);
}

/* Ranks the sorted pool with midranks for ties: returns the rank sum of the
 * first sample, and the tie term sum(t^3 - t) over groups of t equal values. */
static double rank_sum_first(const struct pooled *s, size_t n, double *tie_term)
{
	double r1 = 0;
	*tie_term = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && s[j].v == s[i].v)
			j++;
		double t = (double)(j - i);
		double midrank = ((double)i + 1 + (double)j) / 2.0; /* ranks i+1 .. j */
		for (size_t k = i; k < j; k++)
			r1 += s[k].first ? midrank : 0;
		*tie_term += t * t * t - t;
		i = j;
	}
	return r1;
}

/* The number of arrangements of n1 + n2 untied values for each U = 0..n1*n2:
 * the coefficients of the Gaussian binomial [n1+n2 choose n1]_q, built as
 * prod_{i=1..n1} (1 - q^(n2+i)) / (1 - q^i). Each partial product is itself
 * the polynomial [n2+i choose i]_q, so every division is exact. Returns a
 * heap array of n1*n2 + 1 counts the caller frees, or NULL. */
static double *u_counts(size_t n1, size_t n2)
{
	size_t top = n1 * n2 + n1; /* highest degree before a division */
	double *c = calloc(top + 1, sizeof *c);
	if (!c)
		return NULL;
	c[0] = 1;
	size_t deg = 0;
	for (size_t i = 1; i <= n1; i++) {
		size_t m = n2 + i;
		for (size_t k = deg + m; k >= m; k--) /* times (1 - q^m) */
			c[k] -= c[k - m];
		for (size_t k = i; k <= deg + m; k++) /* divided by (1 - q^i) */
			c[k] += c[k - i];
		deg = i * n2;
	}
	return c;
}

double cb_mw_exact_cdf(size_t n1, size_t n2, double u)
{
	if (n1 == 0 || n2 == 0 || n1 > CB_MW_EXACT_MAX || n2 > CB_MW_EXACT_MAX)
		return NAN;
	double *c = u_counts(n1, n2);
	if (!c)
		return NAN;
	double below = 0, total = 0;
	for (size_t k = 0; k <= n1 * n2; k++) {
		total += c[k];
		below += (double)k <= u ? c[k] : 0;
	}
	free(c);
	return below / total;
}

/* Two-sided exact p: twice the upper tail at the larger U (the distribution
 * is symmetric, so this is twice the smaller tail), at most 1. */
static double exact_p(size_t n1, size_t n2, double u1)
{
	double umax = fmax(u1, (double)(n1 * n2) - u1);
	/* P(U >= umax) = P(U <= n1n2 - umax) by symmetry. */
	double p = 2.0 * cb_mw_exact_cdf(n1, n2, (double)(n1 * n2) - umax);
	return p > 1.0 ? 1.0 : p;
}

static void normal_p(struct cb_mw *out, double tie_term)
{
	double n1 = (double)out->n1, n2 = (double)out->n2, n = n1 + n2;
	double var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)));
	if (!(var > 0)) { /* every value equal: no evidence of a difference */
		out->z = 0;
		out->p = 1;
		return;
	}
	double dev = fabs(out->u1 - n1 * n2 / 2.0) - 0.5;
	out->z = dev > 0 ? dev / sqrt(var) : 0;
	out->p = erfc(out->z / sqrt(2.0));
}

int cb_mannwhitney(const double *a, size_t n1, const double *b, size_t n2, struct cb_mw *out,
		   struct cb_error *err)
{
	memset(out, 0, sizeof *out);
	if (n1 == 0 || n2 == 0)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
			       "the U test needs two non-empty samples");
	size_t n = n1 + n2;
	struct pooled *s = malloc(n * sizeof *s);
	if (!s)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory to rank %zu values", n);
	for (size_t i = 0; i < n1; i++)
		s[i] = (struct pooled){a[i], 1};
	for (size_t j = 0; j < n2; j++)
		s[n1 + j] = (struct pooled){b[j], 0};
	qsort(s, n, sizeof *s, cmp_pooled);
	double tie_term;
	double r1 = rank_sum_first(s, n, &tie_term);
	free(s);
	out->n1 = n1;
	out->n2 = n2;
	out->u1 = r1 - (double)n1 * ((double)n1 + 1) / 2.0;
	out->u2 = (double)n1 * (double)n2 - out->u1;
	out->ties = tie_term > 0;
	out->exact = !out->ties && n1 <= CB_MW_EXACT_MAX && n2 <= CB_MW_EXACT_MAX;
	if (out->exact) {
		out->p = exact_p(n1, n2, out->u1);
		if (isnan(out->p))
			return CB_FAIL(err, CB_ENOMEM, NULL, NULL,
				       "no memory for the U distribution");
		return CB_OK;
	}
	normal_p(out, tie_term);
	return CB_OK;
}

/* The median of v[0..n), sorting v in place. */
static double median_inplace(double *v, size_t n)
{
	qsort(v, n, sizeof *v, cb_stats_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* moses_rank by the normal approximation of U with a continuity
 * correction: the largest u with Phi((u + 1/2 - N/2) / sigma) <= 0.025.
 * Without the tie correction: ties shrink the variance, so this errs wide. */
static size_t moses_rank_normal(size_t n1, size_t n2)
{
	double big_n = (double)n1 * (double)n2;
	double sigma = sqrt(big_n * ((double)(n1 + n2) + 1) / 12.0);
	double u = floor(big_n / 2.0 - 0.5 - 1.959963984540054 * sigma);
	return u < 0 ? 0 : (size_t)u + 1;
}

/* The 1-based rank k of the interval's ends among the N = n1*n2 sorted
 * pairwise differences: k - 1 is the largest u with P(U <= u) <= 0.025;
 * 0 when no such u exists. */
static size_t moses_rank(size_t n1, size_t n2)
{
	if (n1 > CB_MW_EXACT_MAX || n2 > CB_MW_EXACT_MAX)
		return moses_rank_normal(n1, n2);
	double *c = u_counts(n1, n2);
	if (!c) /* a few KiB: should it fail, the normal rank serves */
		return moses_rank_normal(n1, n2);
	double total = 0, below = 0;
	for (size_t u = 0; u <= n1 * n2; u++)
		total += c[u];
	size_t k = 0;
	for (size_t u = 0; u <= n1 * n2 / 2; u++) {
		below += c[u];
		if (below / total > 0.025)
			break;
		k = u + 1;
	}
	free(c);
	return k;
}

/* log(v[i]) into out; false when a value is not positive. */
static bool logs(const double *v, size_t n, double *out)
{
	for (size_t i = 0; i < n; i++) {
		if (!(v[i] > 0))
			return false;
		out[i] = log(v[i]);
	}
	return true;
}

/* The ratio of medians, from sorted copies in scratch[0..n1+n2). */
static double ratio_of_medians(const double *base, size_t n1, const double *head, size_t n2,
			       double *scratch)
{
	memcpy(scratch, base, n1 * sizeof *scratch);
	memcpy(scratch + n1, head, n2 * sizeof *scratch);
	double mb = median_inplace(scratch, n1), mh = median_inplace(scratch + n1, n2);
	return mb > 0 ? mh / mb : NAN;
}

int cb_ratio_estimate(const double *base, size_t n1, const double *head, size_t n2,
		      struct cb_ratio *out, struct cb_error *err)
{
	out->ratio = out->lo = out->hi = out->of_medians = NAN;
	out->ci_full = false;
	if (n1 == 0 || n2 == 0)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "a ratio needs two non-empty samples");
	size_t pairs;
	if (__builtin_mul_overflow(n1, n2, &pairs) || pairs > SIZE_MAX / sizeof(double) - n1 - n2)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "too many trials to pair");
	/* scratch: the logs of both samples, then the pairwise differences */
	double *scratch = malloc((n1 + n2 + pairs) * sizeof *scratch);
	if (!scratch)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory for %zu pairs", pairs);
	double *lb = scratch, *lh = scratch + n1, *d = scratch + n1 + n2;
	out->of_medians = ratio_of_medians(base, n1, head, n2, scratch);
	if (logs(base, n1, lb) && logs(head, n2, lh)) {
		for (size_t i = 0; i < n1; i++)
			for (size_t j = 0; j < n2; j++)
				d[i * n2 + j] = lh[j] - lb[i];
		out->ratio = exp(median_inplace(d, pairs)); /* sorts d */
		size_t k = moses_rank(n1, n2);
		out->ci_full = k > 0;
		out->lo = exp(k ? d[k - 1] : d[0]);
		out->hi = exp(k ? d[pairs - k] : d[pairs - 1]);
	}
	free(scratch);
	return CB_OK;
}
