/* What the subcommands share: the command table, argument helpers and the
 * error-to-exit-status rule. */
#ifndef CB_CLI_H
#define CB_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

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
int cb_cmd_sysinfo(int argc, char **argv);
int cb_cmd_trial(int argc, char **argv);

/* Parses "512", "64K", "256M", "1G", "1.5G" (powers of 1024) into bytes.
 * False on anything else, or on overflow. */
bool cb_parse_size(const char *text, uint64_t *bytes_out);

/* Parses a non-negative decimal integer that fits in uint64_t. */
bool cb_parse_u64(const char *text, uint64_t *out);

/* Prints the error as one line and returns its exit status. */
int cb_fail(const struct cb_error *err);

/* Prints "ckptbench CMD: msg" and the usage hint; returns 2. */
int cb_usage_error(const char *command, const char *fmt, ...) CB_PRINTF(2, 3);

#endif
