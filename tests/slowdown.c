/* A slowdown on purpose, for the end-to-end test of `ckptbench ab`: only
 * the test executable ckptbench-slowable links this file, whose
 * cb_trial_after_load (cli.h) takes the place of the shipped binary's
 * (bench/cli/trial_hook.c, NULL); the shipped ckptbench has no trace of it.
 *
 * With CKPTBENCH_TEST_SLOWDOWN=LOADER=FRACTION in the environment (e.g.
 * "safetensors-read=0.5"), a trial of LOADER spins on the CPU after its load
 * until the timed region has lasted (1 + FRACTION) times as long: wall time,
 * CPU time and instructions all grow, as with a real slowdown. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Called right after the load, with the CLOCK_MONOTONIC start of it. */
static void slowdown(const char *loader, double start_s)
{
	const char *spec = getenv("CKPTBENCH_TEST_SLOWDOWN");
	size_t len = strlen(loader);
	if (!spec || strncmp(spec, loader, len) != 0 || spec[len] != '=')
		return;
	double fraction = strtod(spec + len + 1, NULL);
	if (!(fraction > 0 && fraction < 100))
		return;
	double target = now_s() + (now_s() - start_s) * fraction;
	/* volatile: the loop is the point, the compiler must keep it */
	for (volatile unsigned long spins = 0; now_s() < target; spins++)
		;
}

cb_trial_hook *const cb_trial_after_load = slowdown;
