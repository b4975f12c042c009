/* A slowdown on purpose, for the end-to-end test of `ckptbench ab`: only
 * the test executable ckptbench-slowable is built with it (tests/meson.build
 * defines CB_TEST_SLOWDOWN for that target alone); the shipped ckptbench has
 * no trace of it.
 *
 * With CKPTBENCH_TEST_SLOWDOWN=LOADER=FRACTION in the environment (e.g.
 * "safetensors-read=0.5"), a trial of LOADER spins on the CPU after its load
 * until the timed region has lasted (1 + FRACTION) times as long: wall time,
 * CPU time and instructions all grow, as with a real slowdown. */
#ifndef CB_TEST_SLOWDOWN_H
#define CB_TEST_SLOWDOWN_H

/* Called right after the load, with the CLOCK_MONOTONIC start of it. */
void cb_test_slowdown(const char *loader, double start_s);

#endif
