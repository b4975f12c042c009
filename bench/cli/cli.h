/* What the subcommands share: the command table, argument helpers and the
 * error-to-exit-status rule. */
#ifndef CB_CLI_H
#define CB_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "numparse.h" /* cb_parse_size, cb_parse_u64 (base) */
#include "trial.h"

struct cb_command {
	const char *name;
	const char *summary;
	int (*main)(int argc, char **argv); /* returns the exit status */
	bool hidden;                        /* internal (trial children) */
};

int cb_cmd_ab(int argc, char **argv);
int cb_cmd_calibrate(int argc, char **argv);
int cb_cmd_compare(int argc, char **argv);
int cb_cmd_convert(int argc, char **argv);
int cb_cmd_gen(int argc, char **argv);
int cb_cmd_inspect(int argc, char **argv);
int cb_cmd_loaders(int argc, char **argv);
int cb_cmd_plot(int argc, char **argv);
int cb_cmd_report(int argc, char **argv);
int cb_cmd_run(int argc, char **argv);
int cb_cmd_storage(int argc, char **argv);
int cb_cmd_sysinfo(int argc, char **argv);
int cb_cmd_trial(int argc, char **argv);

/* What `trial` calls after the load (trial.h): NULL (trial_hook.c) in
 * ckptbench; ckptbench-slowable links tests/slowdown.c's in its place. */
extern cb_trial_hook *const cb_trial_after_load;

/* Prints the error as one line and returns its exit status. */
int cb_fail(const struct cb_error *err);

/* Prints "ckptbench CMD: msg" and the usage hint; returns 2. */
int cb_usage_error(const char *command, const char *fmt, ...) CB_PRINTF(2, 3);

#endif
