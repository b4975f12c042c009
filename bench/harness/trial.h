/* A trial, the child's side of `run` (trial.c): one load in this process,
 * timed, measured and verified, reported as one JSON line on a descriptor
 * (docs/peer-protocol.md gives its keys). */
#ifndef CB_TRIAL_H
#define CB_TRIAL_H

#include <stddef.h>

#define CB_TRIAL_MAX_OPTS 32

/* Called right after the load, with the loader's name and the
 * CLOCK_MONOTONIC start of the load (a test binary's slowdown). */
typedef void cb_trial_hook(const char *loader, double start_s);

struct cb_trial_config {
	const char *loader, *path, *manifest; /* required */
	int report_fd;                        /* required: >= 0 */
	const char *opts[CB_TRIAL_MAX_OPTS];  /* KEY=VALUE */
	size_t n_opts;
	const char *device;        /* NULL, "cpu", "cuda:N" */
	const char *bind;          /* a --bind SPEC, or NULL */
	const char *part;          /* a partial load's part file (part_file.h), or NULL */
	double start_at;           /* CLOCK_MONOTONIC seconds the load waits for; 0: none */
	cb_trial_hook *after_load; /* NULL in every shipped binary */
};

/* Runs the trial and writes its report. Returns the exit status: 0 ok,
 * 1 wrong bytes or a loader error, 2 no such loader, 3 unsupported or the
 * report could not be written. */
int cb_trial_execute(const struct cb_trial_config *cfg);

#endif
