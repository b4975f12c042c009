/* Calibration of compare's verdict on synthetic trials, through the same
 * function compare calls (cb_verdict_time): on unchanged code it must stay
 * quiet, and a real slowdown must be caught.
 *
 * Trials are 1.0 * (1 + 0.05 * N(0, 1)): 5% noise (coefficient of
 * variation), from a fixed seed, so the counts below are the same on every
 * machine and every run. Each scenario is 1,000 comparisons of 10 base
 * against 10 head trials, at the defaults (alpha 0.05, threshold 10%).
 */
#include <math.h>

#include "check.h"
#include "verdict.h"

#define COMPARISONS 1000
#define TRIALS 10
#define NOISE 0.05

static uint64_t rng_state = UINT64_C(20261126);

static uint64_t next_u64(void)
{
	uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* uniform in (0, 1): 53 random bits, never 0 (log below) */
static double uniform(void)
{
	return ((double)(next_u64() >> 11) + 0.5) * 0x1p-53;
}

/* standard normal by Box-Muller (one of the pair is enough here) */
static double normal(void)
{
	return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
}

/* Fills v with trials of the given centre; with outlier_rate > 0 that share
 * of trials is also hit by a 30% stall (a noisy neighbour). */
static void trials(double *v, double centre, double outlier_rate)
{
	for (int i = 0; i < TRIALS; i++) {
		v[i] = centre * (1 + NOISE * normal());
		if (outlier_rate > 0 && uniform() < outlier_rate)
			v[i] *= 1.30;
	}
}

struct tally {
	int regressions, improvements, significant; /* significant: p < alpha alone */
};

static struct tally scenario(double base_centre, double head_centre, double outlier_rate)
{
	struct tally t = {0};
	double base[TRIALS], head[TRIALS];
	for (int i = 0; i < COMPARISONS; i++) {
		trials(base, base_centre, outlier_rate);
		trials(head, head_centre, outlier_rate);
		struct cb_time_verdict v;
		struct cb_error err = CB_ERROR_INIT;
		CHECK(cb_verdict_time(base, TRIALS, head, TRIALS, CB_VERDICT_ALPHA,
				      CB_VERDICT_THRESHOLD, &v, &err) == CB_OK);
		t.regressions += v.verdict == CB_VERDICT_REGRESSION;
		t.improvements += v.verdict == CB_VERDICT_IMPROVEMENT;
		t.significant += v.mw.p < CB_VERDICT_ALPHA;
	}
	return t;
}

static void report(const char *name, struct tally t)
{
	fprintf(stderr, "%-34s regressions %4d  improvements %4d  p<alpha %4d  (of %d)\n", name,
		t.regressions, t.improvements, t.significant, COMPARISONS);
}

int main(void)
{
	/* A/A: the same code twice. At most 5% flagged either way. The U test
	 * alone must hold its level too: exact at n = 10, its true size is
	 * 0.0433; 6% allows for binomial spread (sd 0.64% over 1,000). */
	struct tally aa = scenario(1.0, 1.0, 0);
	report("A/A, 5% noise", aa);
	CHECK(aa.regressions + aa.improvements <= COMPARISONS * 5 / 100);
	CHECK(aa.significant <= COMPARISONS * 6 / 100);

	/* A/A on a noisy neighbour's machine: 10% of trials stalled by 30%. */
	struct tally noisy = scenario(1.0, 1.0, 0.10);
	report("A/A, 5% noise + 10% stalls", noisy);
	CHECK(noisy.regressions + noisy.improvements <= COMPARISONS * 5 / 100);

	/* A real 15% slowdown: caught in at least 95%, never called faster.
	 * The expected rate is 97.2% (20,000 simulated comparisons with numpy):
	 * the ratio estimate's spread (sd ~2.3% here) puts 2.8% of true 15%
	 * slowdowns under 10%. The ratio of medians would catch only 95.5%. */
	struct tally slow = scenario(1.0, 1.15, 0);
	report("15% slowdown, 5% noise", slow);
	CHECK(slow.regressions >= COMPARISONS * 95 / 100);
	CHECK(slow.improvements == 0);

	/* The mirror: 15% faster is reported as an improvement as reliably. */
	struct tally fast = scenario(1.15, 1.0, 0);
	report("15% speed-up, 5% noise", fast);
	CHECK(fast.improvements >= COMPARISONS * 95 / 100);
	CHECK(fast.regressions == 0);

	/* Below the threshold: a real but small 5% slowdown is significant
	 * often, but not a regression (the threshold is the minimum effect). */
	struct tally small = scenario(1.0, 1.05, 0);
	report("5% slowdown (under threshold)", small);
	CHECK(small.regressions <= COMPARISONS * 5 / 100);

	/* Too few trials: no verdict, said as such. */
	double b[4] = {1, 1.1, 0.9, 1}, h[4] = {2, 2.1, 1.9, 2};
	struct cb_time_verdict v;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_verdict_time(b, 4, h, 4, 0.05, 0.10, &v, &err) == CB_OK);
	CHECK(v.verdict == CB_VERDICT_TOO_FEW);
	CHECK_STR_EQ(cb_verdict_name(v.verdict), "too-few-trials");

	/* Memory: max(5%, 32 MiB). */
	double mib = 1024.0 * 1024;
	CHECK(cb_verdict_memory(100 * mib, 131 * mib) == CB_VERDICT_SAME);
	CHECK(cb_verdict_memory(100 * mib, 133 * mib) == CB_VERDICT_REGRESSION);
	CHECK(cb_verdict_memory(1000 * mib, 1049 * mib) == CB_VERDICT_SAME);
	CHECK(cb_verdict_memory(1000 * mib, 1051 * mib) == CB_VERDICT_REGRESSION);
	CHECK(cb_verdict_memory(1000 * mib, 900 * mib) == CB_VERDICT_IMPROVEMENT);
	return check_finish("test_verdict_calibration");
}
