/* ckptbench run: its options (docs/cli.md), then the matrix through the
 * harness (bench/harness/run.c, cb_run_execute), then the table of the run's
 * cells, read back through the results model as any results file is. */
#include <errno.h>
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
	"  --select P,..     load only the tensors the patterns name: globs (`*.mlp.*`)\n"
	"                    or dotted names with layer ranges (`layers.0-7`, `lm_head`)\n"
	"  --tp N[,N..][:R]  tensor-parallel splits: each rank of an N-way split is a\n"
	"                    cell of its own (with :R, rank R alone); 1 is the whole model\n"
	"  --tp-rules FILE   which tensors split how (default: the dataset's preset, or\n"
	"                    Hugging Face names); see docs/partial-loads.md\n"
	"  -o FILE           results file (default results/run-<time>.json)\n"
	"  --force           overwrite an existing results file\n"
	"  --quiet           no progress line\n"
	"  --storage P,..    run the matrix on each storage profile in turn (root):\n"
	"                    local, tmpfs, throttled:RATE[,IOPS], sata-ssd,\n"
	"                    cloud-volume, nvme, sshfs, nfs; see docs/storage.md\n"
	/* many ranks (docs/mpi.md) */
	"  --mpi             this process is one rank of an MPI job (mpirun -n N ckptbench\n"
	"                    run --mpi ..., or srun): every rank loads at once, rank 0\n"
	"                    writes the one results file; see docs/mpi.md\n"
	"  --ranks N         run N ranks on this machine: runs mpirun -n N for you\n"
	"  --dist MODE       replicate (every rank loads the whole model; the default),\n"
	"                    tp (rank r of N loads its tensor-parallel slice) or files\n"
	"                    (the checkpoint's files handed out round-robin)\n"
	"  --node-groups K   split the ranks into K pseudo-nodes of contiguous ranks, as if\n"
	"                    on K machines (to try the per-node paths on one)\n"
	"  --reorder         node k reads the files node k+1 warmed (IOR's -C); only\n"
	"                    --dist files gives nodes different files: with replicate or\n"
	"                    tp every node reads every file and it changes nothing\n";

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

/* --tp N[,N...][:R]: the splits, each of every rank or of rank R alone. */
static int parse_tp(const char *text, struct cb_run_config *cfg)
{
	char list[128];
	const char *colon = strchr(text, ':');
	size_t len = colon ? (size_t)(colon - text) : strlen(text);
	uint64_t v;
	if (len == 0 || len >= sizeof list)
		return cb_usage_error("run", "--tp takes N[,N...][:RANK]");
	memcpy(list, text, len);
	list[len] = '\0';
	cfg->n_tp = 0;
	for (char *save, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!cb_parse_u64(tok, &v) || v == 0 || v > 4096)
			return cb_usage_error("run",
					      "--tp: \"%s\" is not a split (1 to 4096 ranks)", tok);
		if (cfg->n_tp == sizeof cfg->tp / sizeof cfg->tp[0])
			return cb_usage_error("run", "--tp takes at most %zu splits",
					      sizeof cfg->tp / sizeof cfg->tp[0]);
		cfg->tp[cfg->n_tp++] = (unsigned)v;
	}
	if (cfg->n_tp == 0)
		return cb_usage_error("run", "--tp takes N[,N...][:RANK]");
	cfg->tp_rank = -1;
	if (colon) {
		if (!cb_parse_u64(colon + 1, &v) || v > 4095)
			return cb_usage_error("run", "--tp: bad rank \"%s\"", colon + 1);
		cfg->tp_rank = (int)v;
	}
	return 0;
}

/* --storage's value (no letter: its getopt code). */
#define CB_OPT_STORAGE 0x1000

/* --storage P1,P2: split at the commas, but a piece that starts with a
 * digit is the IOPS of the throttled profile before it
 * ("throttled:125M,3000,sshfs"); no profile's name starts with one. */
static int split_storage(const char *text, struct cb_strlist *out)
{
	struct cb_strlist pieces = {0};
	int rc = split_list(text, &pieces);
	for (size_t i = 0; rc == 0 && i < pieces.n; i++) {
		const char *piece = pieces.v[i];
		if (*piece >= '0' && *piece <= '9' && out->n) {
			char *joined = NULL;
			if (asprintf(&joined, "%s,%s", out->v[out->n - 1], piece) < 0) {
				rc = -1;
				break;
			}
			free(out->v[out->n - 1]);
			out->v[out->n - 1] = joined;
		} else {
			rc = cb_strlist_add(out, piece);
		}
	}
	cb_strlist_free(&pieces);
	return rc;
}

/* ------------------------------------------------------ many ranks */

/* The options of many ranks (docs/mpi.md); codes past any letter. */
enum {
	CB_OPT_MPI = 0x2000,
	CB_OPT_RANKS,
	CB_OPT_DIST,
	CB_OPT_NODE_GROUPS,
	CB_OPT_REORDER,
};

/* --ranks N: run's own mpirun (run_ranks); 0 when not given. The CLI's
 * alone: the harness only ever sees --mpi. */
static unsigned ranks_wanted;

static int parse_rank_option(int c, const char *arg, struct cb_run_config *cfg)
{
	uint64_t v;
	switch (c) {
	case CB_OPT_MPI: cfg->mpi = true; return 0;
	case CB_OPT_RANKS:
		if (!cb_parse_u64(arg, &v) || v < 1 || v > 65536)
			return cb_usage_error("run", "--ranks takes 1 to 65536");
		ranks_wanted = (unsigned)v;
		return 0;
	case CB_OPT_DIST:
		if (cb_dist_mode_parse(arg, &cfg->dist) != 0)
			return cb_usage_error("run", "--dist takes replicate, tp or files");
		return 0;
	case CB_OPT_NODE_GROUPS:
		if (!cb_parse_u64(arg, &v) || v < 1 || v > 65536)
			return cb_usage_error("run", "--node-groups takes 1 to 65536");
		cfg->node_groups = (unsigned)v;
		return 0;
	case CB_OPT_REORDER: cfg->reorder = true; return 0;
	}
	return cb_usage_error("run", "unknown option");
}

/* The rank options' rules, once every option is read. Without MPI in the
 * build, --mpi and --ranks say how to get it (exit 2). */
static int check_rank_options(const struct cb_run_config *cfg)
{
	bool ranks = cfg->mpi || ranks_wanted;
	if (ranks && !cb_dist_available()) {
		fprintf(stderr, "ckptbench run: %s\n", CB_DIST_HOWTO);
		return 2;
	}
	if (cfg->mpi && ranks_wanted)
		return cb_usage_error("run", "--ranks starts mpirun itself: not with --mpi");
	if (!ranks && (cfg->dist != CB_DIST_REPLICATE || cfg->node_groups || cfg->reorder))
		return cb_usage_error("run", "--dist, --node-groups and --reorder need --mpi "
					     "or --ranks");
	if (ranks && cfg->storage.n)
		return cb_usage_error("run", "--storage is not supported with --mpi or --ranks");
	return 0;
}

/* --ranks N: this same run as N ranks, by `mpirun -n N [--oversubscribe]
 * [--allow-run-as-root] <this binary> run --mpi <the other arguments>`,
 * exec'd (no shell), so mpirun's exit status is run's. --oversubscribe:
 * mpirun counts a machine's cores as its slots and refuses more ranks;
 * --allow-run-as-root: it refuses root without it. */
static int run_ranks(int argc, char **argv)
{
	char self[4096], n[16];
	ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
	if (len <= 0) {
		fprintf(stderr, "ckptbench run: cannot find this program (/proc/self/exe)\n");
		return 3;
	}
	self[len] = '\0';
	snprintf(n, sizeof n, "%u", ranks_wanted);
	char **args = calloc((size_t)argc + 10, sizeof *args);
	if (!args)
		return 3;
	size_t k = 0;
	args[k++] = "mpirun";
	args[k++] = "-n";
	args[k++] = n;
	args[k++] = "--oversubscribe";
	if (geteuid() == 0)
		args[k++] = "--allow-run-as-root";
	args[k++] = self;
	args[k++] = "run";
	args[k++] = "--mpi";
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--ranks") == 0) {
			i++; /* and its value */
			continue;
		}
		if (strncmp(argv[i], "--ranks=", 8) == 0)
			continue;
		args[k++] = argv[i];
	}
	args[k] = NULL;
	fflush(NULL);
	execvp(args[0], args);
	fprintf(stderr,
		"ckptbench run: cannot run mpirun (%s): apt-get install openmpi-bin, or run "
		"mpirun -n %u ckptbench run --mpi ... yourself\n",
		strerror(errno), ranks_wanted);
	free(args);
	return 3;
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
		{"select", required_argument, NULL, 'E'},
		{"tp", required_argument, NULL, 'Y'},
		{"tp-rules", required_argument, NULL, 'U'},
		{"storage", required_argument, NULL, CB_OPT_STORAGE},
		{"mpi", no_argument, NULL, CB_OPT_MPI},
		{"ranks", required_argument, NULL, CB_OPT_RANKS},
		{"dist", required_argument, NULL, CB_OPT_DIST},
		{"node-groups", required_argument, NULL, CB_OPT_NODE_GROUPS},
		{"reorder", no_argument, NULL, CB_OPT_REORDER},
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
		case CB_OPT_STORAGE: rc = split_storage(optarg, &cfg->storage) ? 3 : 0; break;
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
		case 'E':
			if (!*optarg)
				rc = cb_usage_error("run", "--select takes PATTERN[,PATTERN...]");
			cfg->select = optarg;
			break;
		case 'Y': rc = parse_tp(optarg, cfg); break;
		case 'U': cfg->tp_rules = optarg; break;
		case CB_OPT_MPI:
		case CB_OPT_RANKS:
		case CB_OPT_DIST:
		case CB_OPT_NODE_GROUPS:
		case CB_OPT_REORDER: rc = parse_rank_option(c, optarg, cfg); break;
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
	if (rc == 0)
		rc = check_rank_options(cfg);
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
	fprintf(out, "%-*s %-*s %-5s %10s %8s %8s %6s %9s %6s %-12s %10s %9s  %s\n", loader_w,
		"loader", dataset_w, "dataset", "cache", "median_s", "init_s", "GB/s", "%ceil",
		"%ceil_all", "%best", "ceil_by", "majflt/MiB", "RSSxmodel", "outcome");
	for (size_t i = 0; i < f->n_cells; i++) {
		const struct cb_results_cell *c = &f->cells[i];
		const struct cb_results_summary *s = &c->summary;
		char med[32], init[32], gbps[32], pct[32], pct_all[32], pct_best[32], rss[32];
		char outcome[160], majflt[32];
		/* The ceiling's method and the major faults per MiB: keys the
		 * results model does not carry, read from the cell's summary. */
		const json_t *sj = json_object_get(c->json, "summary");
		const char *method = cb_json_str(sj, "ceiling_method");
		fmt_num(majflt, sizeof majflt, cb_json_num(sj, "major_faults_per_mib"), "%.2f");
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
		fprintf(out, "%-*s %-*s %-5s %10s %8s %8s %6s %9s %6s %-12s %10s %9s  %s\n",
			loader_w, labels[i], dataset_w, c->key.dataset, c->key.cache, med, init,
			gbps, pct, pct_all, pct_best, *method ? method : "-", majflt, rss, outcome);
	}
	free(among);
	free(labels);
	cb_results_file_free(f);
	if (exceeded)
		fprintf(out,
			"!: %zu cell(s) above %.0f%% of the ceiling: the ceiling (its method in "
			"ceil_by) is too low for them (mapping pages is not reading them, or "
			"another way of reading beats it), so their share says nothing.\n",
			exceeded, CB_CEILING_EXCEEDED * 100);
	static const char *const against[] = {
		[CB_CEILINGS_PAIRED] = "the read of the dataset's own files between the trials",
		[CB_CEILINGS_SIZED] = "the calibrated read of a file the dataset's size",
		[CB_CEILINGS_ONE] = "the calibrated read",
	};
	fprintf(out,
		"GB/s and %%ceil: the load after the model is built (median_s - init_s) "
		"against the read ceiling (%s); %%ceil_all: median_s against it; "
		"%%best: the fastest load against the fastest pass of that read; ceil_by: the "
		"ceiling's method (the best of the ways of reading the files, and for a zero-copy "
		"loader the mapping of them, map); majflt/MiB: major faults per MiB of the "
		"model.\n",
		cfg->ceilings <= CB_CEILINGS_ONE ? against[cfg->ceilings] : "?");
}

static double mib(double bytes)
{
	return bytes / (1 << 20);
}

/* The partial loads' own table, when the run has any (docs/partial-loads.md):
 * what each part asked for, what was read from storage for it, and what it
 * held. */
static void print_partial_table(json_t *doc)
{
	const json_t *cells = json_object_get(doc, "cells");
	bool any = false;
	for (size_t i = 0; i < json_array_size(cells); i++)
		any |= json_is_object(json_object_get(json_array_get(cells, i), "selection"));
	if (!any)
		return;
	printf("\npartial loads:\n%-22s %-5s %-16s %10s %10s %8s %10s %10s %10s\n", "loader",
	       "cache", "part", "asked_MiB", "read_MiB", "read_x", "read/pages", "peak/asked",
	       "mapped_MiB");
	for (size_t i = 0; i < json_array_size(cells); i++) {
		const json_t *c = json_array_get(cells, i);
		const json_t *sel = json_object_get(c, "selection");
		const json_t *s = json_object_get(c, "summary");
		if (!json_is_object(sel) || !json_is_object(s) || !cb_json_num(s, "n"))
			continue;
		char part[64], read[32], amp[32], pages[32], peak[32], mapped[32];
		const json_t *pats = json_object_get(sel, "select");
		snprintf(part, sizeof part, "%s%s%.0f/r%.0f",
			 json_array_size(pats) ? json_string_value(json_array_get(pats, 0)) : "",
			 json_array_size(pats) > 1 ? ",.. "
			 : json_array_size(pats)   ? " "
						   : "tp",
			 cb_json_num(sel, "tp"), cb_json_num(sel, "rank"));
		fmt_num(read, sizeof read, mib(cb_json_num(s, "read_bytes")), "%.1f");
		fmt_num(amp, sizeof amp, cb_json_num(s, "read_amplification"), "%.2f");
		fmt_num(pages, sizeof pages, cb_json_num(s, "read_over_pages"), "%.2f");
		fmt_num(peak, sizeof peak, cb_json_num(s, "peak_rss_over_asked"), "%.2f");
		fmt_num(mapped, sizeof mapped, mib(cb_json_num(s, "file_resident_bytes")), "%.1f");
		printf("%-22s %-5s %-16s %10.1f %10s %8s %10s %10s %10s\n",
		       cb_json_str(c, "loader"), cb_json_str(c, "cache"), part,
		       mib(cb_json_num(s, "asked_bytes")), read, amp, pages, peak, mapped);
	}
	printf("read_x: bytes read from storage (/proc/PID/io) over the bytes asked for; "
	       "read/pages: over the file pages those bytes lie in (the least storage can "
	       "read); peak/asked: the load's peak memory over the bytes asked for; "
	       "mapped_MiB: file pages mapped in.\n");
}

/* Many ranks (docs/mpi.md): each rank cell's figures over all its ranks,
 * only when the run has such cells. Read from the cells' JSON: the results
 * model does not carry them. */
static void print_ranks_table(json_t *doc)
{
	const json_t *cells = json_object_get(doc, "cells");
	bool any = false;
	for (size_t i = 0; i < json_array_size(cells); i++)
		any |= json_is_object(json_object_get(json_array_get(cells, i), "ranks"));
	if (!any)
		return;
	printf("\nmany ranks:\n%-24s %-5s %-9s %5s %5s %8s %8s %8s %8s %8s %7s %7s %7s %7s\n",
	       "loader", "cache", "dist", "ranks", "nodes", "agg_GB/s", "eff_GB/s", "first_s",
	       "last_s", "skew_ms", "anon_x", "file_x", "avail_x", "read_x");
	for (size_t i = 0; i < json_array_size(cells); i++) {
		const json_t *c = json_array_get(cells, i);
		const json_t *r = json_object_get(c, "ranks");
		const json_t *s = json_object_get(c, "summary");
		if (!json_is_object(r) || !json_is_object(s) || !cb_json_num(s, "n"))
			continue;
		char f[9][32];
		fmt_num(f[0], sizeof f[0], cb_json_num(s, "aggregate_gbps"), "%.2f");
		fmt_num(f[1], sizeof f[1], cb_json_num(s, "effective_gbps"), "%.2f");
		fmt_num(f[2], sizeof f[2], cb_json_num(s, "first_done_s"), "%.3f");
		fmt_num(f[3], sizeof f[3], cb_json_num(s, "last_done_s"), "%.3f");
		fmt_num(f[4], sizeof f[4], cb_json_num(s, "start_skew_s") * 1e3, "%.2f");
		fmt_num(f[5], sizeof f[5], cb_json_num(s, "node_anon_over_model"), "%.2f");
		fmt_num(f[6], sizeof f[6], cb_json_num(s, "node_file_over_model"), "%.2f");
		fmt_num(f[7], sizeof f[7], cb_json_num(s, "node_memavailable_drop_over_model"),
			"%.2f");
		fmt_num(f[8], sizeof f[8], cb_json_num(s, "ranks_read_amplification"), "%.2f");
		printf("%-24s %-5s %-9s %5.0f %5.0f %8s %8s %8s %8s %8s %7s %7s %7s %7s\n",
		       cb_json_str(c, "loader"), cb_json_str(c, "cache"), cb_json_str(r, "dist"),
		       cb_json_num(r, "n"), cb_json_num(r, "nodes"), f[0], f[1], f[2], f[3], f[4],
		       f[5], f[6], f[7], f[8]);
	}
	printf("agg: every rank's bytes over the window from the first load's start to the "
	       "last one's end; eff: the model's bytes over it; first/last: when the first "
	       "and the last rank were done; skew: the loads' start skew; anon/file/avail: "
	       "the worst node's anonymous memory, the files' page cache and MemAvailable's "
	       "drop, each over the model; read: what storage gave all the ranks together, "
	       "over the model (medians over the trials).\n");
}

static void print_tables(json_t *doc, const char *path, const struct cb_run_config *cfg)
{
	print_table(doc, path, cfg);
	print_partial_table(doc);
	print_ranks_table(doc);
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
	ranks_wanted = 0;
	int status = parse_args(&cfg, argc, argv);
	if (status == 0 && ranks_wanted)
		status = run_ranks(argc, argv); /* returns only when mpirun cannot start */
	else if (status == 0) {
		struct cb_error usage = CB_ERROR_INIT;
		status = cb_run_execute(&cfg, print_tables, &usage);
		if (usage.code)
			status = cb_usage_error("run", "%s", usage.msg);
	}
	cb_strlist_free(&cfg.loader_specs);
	cb_strlist_free(&cfg.dataset_args);
	cb_strlist_free(&cfg.sizes);
	cb_strlist_free(&cfg.storage);
	return status < 0 ? 0 : status;
}
