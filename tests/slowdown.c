/* The test-only slowdown of tests/slowdown.h. */
#include "slowdown.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cb_test_slowdown(const char *loader, double start_s)
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
