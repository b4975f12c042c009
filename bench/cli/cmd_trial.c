/* ckptbench trial: one load in a fresh process (hidden; `run` execs it).
 *
 *   ckptbench trial --loader NAME --path CKPT --manifest FILE --report-fd N
 *                   [--opt KEY=VALUE]... [--device cpu|cuda:N] [--bind SPEC]
 *                   [--part FILE] [--start-at MONOTONIC_S]
 *
 * The options into a cb_trial_config; the trial itself is the harness's
 * (bench/harness/trial.c). Exit status: 0 ok, 1 wrong bytes or a loader
 * error, 2 usage, 3 unsupported.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "trial.h"

static int parse_args(struct cb_trial_config *t, int argc, char **argv)
{
	static const struct option options[] = {
		{"loader", required_argument, NULL, 'l'},
		{"path", required_argument, NULL, 'p'},
		{"manifest", required_argument, NULL, 'm'},
		{"report-fd", required_argument, NULL, 'r'},
		{"opt", required_argument, NULL, 'o'},
		{"device", required_argument, NULL, 'd'},
		{"bind", required_argument, NULL, 'b'},
		{"part", required_argument, NULL, 'P'},
		{"start-at", required_argument, NULL, 'S'},
		{NULL, 0, NULL, 0},
	};
	uint64_t fd;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'l': t->loader = optarg; break;
		case 'p': t->path = optarg; break;
		case 'm': t->manifest = optarg; break;
		case 'r':
			if (!cb_parse_u64(optarg, &fd) || fd > 1024)
				return cb_usage_error("trial", "bad --report-fd");
			t->report_fd = (int)fd;
			break;
		case 'o':
			if (t->n_opts == CB_TRIAL_MAX_OPTS || !strchr(optarg, '='))
				return cb_usage_error("trial", "--opt takes KEY=VALUE (at most %d)",
						      CB_TRIAL_MAX_OPTS);
			t->opts[t->n_opts++] = optarg;
			break;
		case 'd': t->device = optarg; break;
		case 'b': t->bind = optarg; break;
		case 'P': t->part = optarg; break;
		case 'S': {
			char *end = NULL;
			t->start_at = strtod(optarg, &end);
			if (!*optarg || *end || !(t->start_at >= 0))
				return cb_usage_error("trial", "bad --start-at");
			break;
		}
		default: return cb_usage_error("trial", "unknown option");
		}
	}
	if (!t->loader || !t->path || !t->manifest || t->report_fd < 0)
		return cb_usage_error("trial",
				      "needs --loader, --path, --manifest and --report-fd");
	return 0;
}

int cb_cmd_trial(int argc, char **argv)
{
	struct cb_trial_config cfg = {.report_fd = -1, .after_load = cb_trial_after_load};
	int status = parse_args(&cfg, argc, argv);
	if (status != 0)
		return status;
	return cb_trial_execute(&cfg);
}
