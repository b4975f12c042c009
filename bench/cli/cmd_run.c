/* ckptbench run: its options (docs/cli.md), then the matrix through the
 * harness (bench/harness/run.c, cb_run_execute), then the table of the run's
 * cells, read back through the results model as any results file is. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ci.h"
#include "cli.h"
#include "results_model.h"
#include "run_plan.h"
#include "sysinfo.h"

static const char run_help[] =
	"usage: ckptbench run [--loaders A,B] [--datasets D,..] [--preset P --sizes S,..]\n"
	"                     [--cache cold,warm] [--repeat N] [--warmup N] [--device cpu|cuda:N]\n"
	"                     [--mem-limit SIZE] [--bind SPEC] [--timeline] [-o FILE] [--force]\n"
	"\n"
	"Loads each dataset with each loader, one fresh process per trial, and writes a\n"
	"results file (JSON, schema ckptbench/1) and a CSV beside it.\n"
	"\n"
	"  --loaders L       loaders to run (default: all; see `ckptbench loaders`);\n"
	"                    options as NAME:KEY=VALUE:KEY=VALUE\n"
	"  --datasets D      dataset names (under $CKPTBENCH_DATA or datasets/data) or\n"
	"                    paths to a model (a file, or a sharded directory); a missing\n"
	"                    manifest is made on first use and kept beside the model\n"
	"  --preset P        generate P datasets of --sizes first where missing\n"
	"                    (ci: the fixed CI matrix, see README \"Regression checks\")\n"
	"  --sizes S,..      sizes for --preset (default 256M); --dtype D as in gen\n"
	"  --cache L         cold, warm or both (default cold,warm)\n"
	"  --drop-caches     also drop the whole page cache before cold trials (root)\n"
	"  --repeat N        measured trials per cell (default 10)\n"
	"  --warmup N        trials run first and kept out of the summary (default 1)\n"
	"  --device D        cpu: skip GPU loaders; cuda:N: the GPU they use (default cuda:0)\n"
	"  --mem-limit SIZE  kill a trial whose non-reclaimable memory exceeds SIZE\n"
	"  --bind SPEC       node:N or core:LIST, applied in each trial\n"
	"  --timeout SEC     kill a trial after SEC seconds (default 600)\n"
	"  --timeline        keep each trial's memory timeline and phase spans\n"
	"  --sample-ms N     memory sampling period (default 10; 0: off)\n"
	"  --no-calibrate    skip measuring the machine's ceilings\n"
	"  --sized-ceilings  hold each cell against a scratch file of its dataset's size\n"
	"                    read before the run, not against its dataset's own files\n"
	"                    read between the trials (the paired ceilings, the default)\n"
	"  --one-ceiling     hold every cell against the one calibration file\n"
	"  --fixed-order     run each round's trials in the order of --loaders, not in\n"
	"                    a random order (with the paired reads first)\n"
	"  --seed N          the random order's seed (default: from the clock; the\n"
	"                    results' config.order_seed repeats a run's order)\n"
	"  -o FILE           results file (default results/run-<time>.json)\n"
	"  --force           overwrite an existing results file\n"
	"  --quiet           no progress line\n";

/* ---------------------------------------------------------- options */

static int split_list(const char *text, struct cb_strlist *out)
{
	char *copy = strdup(text);
	if (!copy)
		return -1;
	for (char *save, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (cb_strlist_add(out, tok) != 0) {
			free(copy);
			return -1;
		}
	free(copy);
	return 0;
}

static int parse_cache(const char *text, struct cb_run_config *cfg)
{
	cfg->cold = cfg->warm = false;
	struct cb_strlist l = {0};
	if (split_list(text, &l) != 0)
		return 3;
	int rc = 0;
	for (size_t i = 0; i < l.n && rc == 0; i++) {
		if (strcmp(l.v[i], "cold") == 0)
			cfg->cold = true;
		else if (strcmp(l.v[i], "warm") == 0)
			cfg->warm = true;
		else
			rc = cb_usage_error("run", "--cache takes cold, warm or cold,warm");
	}
	cb_strlist_free(&l);
	return rc;
}

static int parse_number(const char *opt, const char *text, uint64_t max, uint64_t *out)
{
	if (!cb_parse_u64(text, out) || *out > max)
		return cb_usage_error("run", "%s takes 0 to %llu", opt, (unsigned long long)max);
	return 0;
}

static int parse_args(struct cb_run_config *cfg, int argc, char **argv)
{
	static const struct option options[] = {
		{"loaders", required_argument, NULL, 'L'},
		{"datasets", required_argument, NULL, 'D'},
		{"preset", required_argument, NULL, 'P'},
		{"sizes", required_argument, NULL, 'S'},
		{"dtype", required_argument, NULL, 'T'},
		{"cache", required_argument, NULL, 'c'},
		{"repeat", required_argument, NULL, 'r'},
		{"warmup", required_argument, NULL, 'w'},
		{"device", required_argument, NULL, 'd'},
		{"mem-limit", required_argument, NULL, 'm'},
		{"bind", required_argument, NULL, 'b'},
		{"timeline", no_argument, NULL, 't'},
		{"timeout", required_argument, NULL, 'O'},
		{"sample-ms", required_argument, NULL, 's'},
		{"no-calibrate", no_argument, NULL, 'n'},
		{"drop-caches", no_argument, NULL, 'X'},
		{"one-ceiling", no_argument, NULL, '1'},
		{"sized-ceilings", no_argument, NULL, 'Z'},
		{"fixed-order", no_argument, NULL, 'R'},
		{"seed", required_argument, NULL, 'e'},
		{"force", no_argument, NULL, 'F'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c, rc = 0;
	optind = 1;
	while (rc == 0 && (c = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
		switch (c) {
		case 'L': rc = split_list(optarg, &cfg->loader_specs) ? 3 : 0; break;
		case 'D': rc = split_list(optarg, &cfg->dataset_args) ? 3 : 0; break;
		case 'P': cfg->preset = optarg; break;
		case 'S': rc = split_list(optarg, &cfg->sizes) ? 3 : 0; break;
		case 'T': cfg->dtype = optarg; break;
		case 'c': rc = parse_cache(optarg, cfg); break;
		case 'r':
			rc = parse_number("--repeat", optarg, 4000, &v);
			cfg->repeat = (unsigned)v;
			break;
		case 'w':
			rc = parse_number("--warmup", optarg, 100, &v);
			cfg->warmup = (unsigned)v;
			break;
		case 'd': cfg->device = optarg; break;
		case 'm':
			if (!cb_parse_size(optarg, &cfg->mem_limit) || cfg->mem_limit == 0)
				rc = cb_usage_error("run", "bad --mem-limit \"%s\"", optarg);
			break;
		case 'b': cfg->bind = optarg; break;
		case 't': cfg->timeline = true; break;
		case 'O':
			rc = parse_number("--timeout", optarg, 86400, &v);
			cfg->timeout_s = (double)v;
			break;
		case 's':
			rc = parse_number("--sample-ms", optarg, 10000, &v);
			cfg->sample_ms = (unsigned)v;
			break;
		case 'n': cfg->calibrate = false; break;
		case '1': cfg->ceilings = CB_CEILINGS_ONE; break;
		case 'Z': cfg->ceilings = CB_CEILINGS_SIZED; break;
		case 'R': cfg->fixed_order = true; break;
		case 'e':
			rc = parse_number("--seed", optarg, UINT64_MAX, &cfg->order_seed);
			cfg->seed_given = true;
			break;
		case 'X': cfg->drop_caches = true; break;
		case 'o': cfg->out = optarg; break;
		case 'F': cfg->force = true; break;
		case 'q': cfg->progress = false; break;
		case 'h': fputs(run_help, stdout); return -1;
		default: rc = cb_usage_error("run", "unknown option");
		}
	}
	if (rc == 0 && optind < argc)
		rc = cb_usage_error("run", "unexpected argument \"%s\"", argv[optind]);
	if (rc == 0 && cfg->repeat == 0)
		rc = cb_usage_error("run", "--repeat must be at least 1");
	if (rc == 0 && !cfg->cold && !cfg->warm)
		rc = cb_usage_error("run", "--cache names no state");
	if (rc == 0 && cfg->device && strcmp(cfg->device, "cpu") != 0 &&
	    !(strncmp(cfg->device, "cuda:", 5) == 0 && cb_parse_u64(cfg->device + 5, &v)))
		rc = cb_usage_error("run", "--device takes cpu or cuda:N");
	if (rc == 0 && cfg->bind) {
		struct cb_bind bind;
		struct cb_error err = CB_ERROR_INIT;
		if (cb_bind_parse(cfg->bind, &bind, &err) != CB_OK)
			rc = cb_usage_error("run", "%s", err.msg);
	}
	if (rc == 0 && cfg->preset && strcmp(cfg->preset, CB_CI_PRESET) == 0)
		rc = cb_run_apply_ci_preset(cfg); /* bench/harness/ci.c */
	if (rc == 0 && cfg->sizes.n && !cfg->preset)
		rc = cb_usage_error("run", "--sizes needs --preset");
	if (rc == 0 && !cfg->seed_given)
		cfg->order_seed = cb_run_random_seed();
	return rc;
}

/* ---------------------------------------------------------------- table */

static void fmt_num(char *buf, size_t size, double v, const char *fmt)
{
	if (isfinite(v))
		snprintf(buf, size, fmt, v);
	else
		snprintf(buf, size, "-");
}

static void outcome_text(const struct cb_results_cell *c, char *buf, size_t size)
{
	if (strcmp(c->status, "ok") == 0)
		snprintf(buf, size, "ok %zu/%zu", c->summary.n, c->n_trials);
	else
		snprintf(buf, size, "%s: %.90s", *c->status ? c->status : "?", c->reason);
}

/* The table reads the run's document as any results file is read, through
 * the results model; its rows are the cells, in the plan's order, named as
 * every table names them (cb_results_cell_label: the loader, with the
 * options where two cells differ only by them). */
static void print_table(json_t *doc, const char *path, const struct cb_run_config *cfg)
{
	FILE *out = stdout;
	struct cb_results_file *f = NULL;
	struct cb_error err = CB_ERROR_INIT;
	const struct cb_results_cell **among = NULL;
	char(*labels)[256] = NULL;
	if (cb_results_file_from_json(doc, path, &f, &err) == CB_OK) {
		among = calloc(f->n_cells + 1, sizeof *among);
		labels = calloc(f->n_cells + 1, sizeof *labels);
		if (!among || !labels)
			CB_FAIL(&err, CB_ENOMEM, NULL, NULL, "out of memory for the table");
	}
	if (err.code) {
		cb_error_print(&err);
		free(among);
		free(labels);
		cb_results_file_free(f);
		return;
	}
	for (size_t i = 0; i < f->n_cells; i++)
		among[i] = &f->cells[i];
	/* Columns as wide as the longest loader and dataset names, so a long
	 * name (libtorch-safetensors-mmap-gpu) does not shift its row. */
	size_t exceeded = 0;
	int loader_w = 6, dataset_w = 7;
	for (size_t i = 0; i < f->n_cells; i++) {
		cb_results_cell_label(&f->cells[i], among, f->n_cells, labels[i], sizeof labels[i]);
		int l = (int)strlen(labels[i]);
		int d = (int)strlen(f->cells[i].key.dataset);
		loader_w = l > loader_w ? l : loader_w;
		dataset_w = d > dataset_w ? d : dataset_w;
	}
	fprintf(out, "%-*s %-*s %-5s %10s %8s %8s %6s %9s %6s %9s  %s\n", loader_w, "loader",
		dataset_w, "dataset", "cache", "median_s", "init_s", "GB/s", "%ceil", "%ceil_all",
		"%best", "RSSxmodel", "outcome");
	for (size_t i = 0; i < f->n_cells; i++) {
		const struct cb_results_cell *c = &f->cells[i];
		const struct cb_results_summary *s = &c->summary;
		char med[32], init[32], gbps[32], pct[32], pct_all[32], pct_best[32], rss[32];
		char outcome[160];
		fmt_num(med, sizeof med, s->median_s, "%.4f");
		fmt_num(init, sizeof init, s->init_median_s, "%.4f");
		fmt_num(gbps, sizeof gbps, s->load_gbps, "%.2f");
		fmt_num(pct, sizeof pct, s->load_ceiling_fraction * 100,
			s->ceiling_exceeded ? "%.0f%%!" : "%.0f%%");
		exceeded += s->ceiling_exceeded;
		fmt_num(pct_all, sizeof pct_all, s->ceiling_fraction * 100, "%.0f%%");
		fmt_num(pct_best, sizeof pct_best, s->best_load_ceiling_fraction * 100, "%.0f%%");
		fmt_num(rss, sizeof rss, s->peak_rss_over_model, "%.2f");
		outcome_text(c, outcome, sizeof outcome);
		fprintf(out, "%-*s %-*s %-5s %10s %8s %8s %6s %9s %6s %9s  %s\n", loader_w,
			labels[i], dataset_w, c->key.dataset, c->key.cache, med, init, gbps, pct,
			pct_all, pct_best, rss, outcome);
	}
	free(among);
	free(labels);
	cb_results_file_free(f);
	if (exceeded)
		fprintf(out,
			"!: %zu cell(s) above %.0f%% of the ceiling: the ceiling is too low for "
			"them (mapping pages is not reading them, or another way of reading "
			"beats it), so their share says nothing.\n",
			exceeded, CB_CEILING_EXCEEDED * 100);
	static const char *const against[] = {
		[CB_CEILINGS_PAIRED] = "the read of the dataset's own files between the trials",
		[CB_CEILINGS_SIZED] = "the calibrated read of a file the dataset's size",
		[CB_CEILINGS_ONE] = "the calibrated read",
	};
	fprintf(out,
		"GB/s and %%ceil: the load after the model is built (median_s - init_s) "
		"against the read ceiling (%s); %%ceil_all: median_s against it; "
		"%%best: the fastest load against the fastest pass of that read.\n",
		cfg->ceilings <= CB_CEILINGS_ONE ? against[cfg->ceilings] : "?");
}

int cb_cmd_run(int argc, char **argv)
{
	struct cb_run_config cfg = {
		.cold = true,
		.warm = true,
		.repeat = 10,
		.warmup = 1,
		.timeout_s = 600,
		.sample_ms = 10,
		.calibrate = true,
		.ceilings = CB_CEILINGS_PAIRED,
		.progress = isatty(STDERR_FILENO),
	};
	int status = parse_args(&cfg, argc, argv);
	if (status == 0) {
		struct cb_error usage = CB_ERROR_INIT;
		status = cb_run_execute(&cfg, print_table, &usage);
		if (usage.code)
			status = cb_usage_error("run", "%s", usage.msg);
	}
	cb_strlist_free(&cfg.loader_specs);
	cb_strlist_free(&cfg.dataset_args);
	cb_strlist_free(&cfg.sizes);
	return status < 0 ? 0 : status;
}
