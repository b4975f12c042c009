/* ckptbench compare: two results files, cell by cell, with a verdict a CI
 * job can act on (exit 1 on a regression). The engine is compare.c. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "compare.h"

static const char compare_help[] =
	"usage: ckptbench compare BASE.json HEAD.json [--threshold 0.10] [--alpha 0.05]\n"
	"                         [--format text|md|json] [--metric wall|instructions|user+sys]\n"
	"\n"
	"Matches the cells of two results files by (loader, options, dataset, cache,\n"
	"device); a cell whose options differ between the files, the only such on each\n"
	"side, is paired anyway, with a warning. Says, for each pair, whether HEAD is\n"
	"slower, faster or not distinguishable from BASE:\n"
	"a regression when the two-sided Mann-Whitney U test on the trials gives\n"
	"p < alpha and HEAD is slower by more than the threshold (the Hodges-Lehmann\n"
	"ratio head/base, with its 95% CI); `~` when not significant. Memory (median peak\n"
	"RSS, peak VRAM) regresses when it grows by more than max(5%, 32 MiB). Cells with\n"
	"under 5 trials a side get no verdict, and say so. A different machine or\n"
	"calibration is a warning shown first.\n"
	"\n"
	"  --threshold X  the smallest change that counts, as a fraction or a percentage\n"
	"                 (default 0.10 = 10%)\n"
	"  --alpha A      significance level of the U test (default 0.05)\n"
	"  --format F     text (default), md (a pull-request comment) or json\n"
	"                 (schema ckptbench-compare/1, documented in bench/results/compare.h)\n"
	"  --metric M     wall (default), instructions (needs perf_event_open when run)\n"
	"                 or user+sys (the trial's CPU time)\n"
	"  -o FILE        write the output to FILE instead of stdout\n"
	"\n"
	"Exit status: 0 no regression, 1 one or more regressions (time, memory, or a\n"
	"cell that fails in HEAD only), 2 the files cannot be compared (not results\n"
	"files, no cell in common) or a usage error.\n";

/* "0.1", "10%": a fraction in (0, 10). */
static int parse_fraction(const char *text, double *out)
{
	char *end;
	double v = strtod(text, &end);
	if (end == text)
		return 0;
	if (*end == '%') {
		v /= 100;
		end++;
	}
	if (*end || !isfinite(v) || v <= 0 || v >= 10)
		return 0;
	*out = v;
	return 1;
}

struct compare_args {
	struct cb_compare_opts o;
	const char *format;
	const char *output;
};

/* Parses options; returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct compare_args *a)
{
	static const struct option options[] = {
		{"threshold", required_argument, NULL, 't'},
		{"alpha", required_argument, NULL, 'a'},
		{"format", required_argument, NULL, 'f'},
		{"metric", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "ho:", options, NULL)) != -1) {
		switch (c) {
		case 't':
			if (!parse_fraction(optarg, &a->o.threshold))
				return cb_usage_error("compare", "bad --threshold \"%s\"", optarg);
			break;
		case 'a':
			if (!parse_fraction(optarg, &a->o.alpha) || a->o.alpha >= 1)
				return cb_usage_error("compare", "bad --alpha \"%s\"", optarg);
			break;
		case 'f': a->format = optarg; break;
		case 'm': a->o.metric = optarg; break;
		case 'o': a->output = optarg; break;
		case 'h': fputs(compare_help, stdout); return 0;
		default: return cb_usage_error("compare", "unknown option");
		}
	}
	if (strcmp(a->format, "text") && strcmp(a->format, "md") && strcmp(a->format, "json"))
		return cb_usage_error("compare", "--format is text, md or json, not \"%s\"",
				      a->format);
	if (!cb_compare_metric_known(a->o.metric))
		return cb_usage_error("compare", "--metric is wall, instructions or user+sys");
	if (argc - optind != 2)
		return cb_usage_error("compare", "two results files are needed, BASE and HEAD");
	return -1;
}

/* Prints the document to a file or stdout; warnings also go to stderr
 * when stdout is not where they are read (md, json, or -o). */
static int emit(const json_t *doc, const struct compare_args *a)
{
	const json_t *w = json_object_get(doc, "warnings");
	if (strcmp(a->format, "text") != 0 || a->output)
		for (size_t i = 0; i < json_array_size(w); i++)
			fprintf(stderr, "ckptbench compare: warning: %s\n",
				json_string_value(json_array_get(w, i)));
	FILE *out = a->output ? fopen(a->output, "w") : stdout;
	if (!out) {
		struct cb_error err = CB_ERROR_INIT;
		CB_FAIL_ERRNO(&err, errno, a->output, "cannot create the output");
		cb_error_print(&err);
		return 3;
	}
	cb_compare_print(doc, a->format, out);
	if (out != stdout && fclose(out) != 0) {
		fprintf(stderr, "ckptbench: %s: write failed\n", a->output);
		return 3;
	}
	return cb_compare_exit_status(doc);
}

int cb_cmd_compare(int argc, char **argv)
{
	struct compare_args a = {.format = "text"};
	cb_compare_default_opts(&a.o);
	int rc = parse_args(argc, argv, &a);
	if (rc >= 0)
		return rc;
	json_t *doc;
	struct cb_error err = CB_ERROR_INIT;
	if (cb_compare_files(argv[optind], argv[optind + 1], &a.o, &doc, &err) != CB_OK) {
		cb_error_print(&err);
		return 2; /* whatever the cause, the files cannot be compared */
	}
	rc = emit(doc, &a);
	json_decref(doc);
	return rc;
}
