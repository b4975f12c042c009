/* ckptbench run: the benchmark matrix (docs/loaders.md, "A trial's life";
 * the file it writes: docs/results-schema.md).
 *
 * Cells are (loader, dataset, cache state). For each dataset and cache
 * state, repetitions run in rounds of one trial per cell, each round in a
 * random order drawn from a recorded seed (--fixed-order: the order of
 * --loaders), so drift hits every loader alike; warm-ups first, recorded
 * apart. Every trial
 * is a fresh child (bench/trial.c, or a peer program) watched by the sampler
 * (bench/sampler.c); its outcome, whatever it is, is recorded and the matrix
 * goes on. The results file is rewritten atomically after every trial.
 *
 * The core names no loader: everything about one comes from its vtable.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "calibrate.h"
#include "ckpt.h"
#include "ci.h"
#include "cli.h"
#include "fileio.h"
#include "gen.h"
#include "loader.h"
#include "manifest.h"
#include "results.h"
#include "run_plan.h"
#include "sampler.h"
#include "sysinfo.h"
#include "tensor_hash.h"

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

/* Set by SIGINT/SIGTERM: the running child is killed, the file kept. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

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

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
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
		rc = cb_run_apply_ci_preset(cfg); /* bench/ci.c */
	if (rc == 0 && cfg->sizes.n && !cfg->preset)
		rc = cb_usage_error("run", "--sizes needs --preset");
	if (rc == 0 && !cfg->seed_given) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t mix = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
			       ((uint64_t)getpid() << 32);
		cfg->order_seed = splitmix64(&mix);
	}
	return rc;
}

/* ------------------------------------------------------------ trials */

static const char *cache_name(bool cold)
{
	return cold ? "cold" : "warm";
}

int cb_run_prepare_cache(const struct cb_run_config *cfg, const struct cb_plan_files *files,
			 bool cold, double *residency_out, struct cb_error *err)
{
	const char *const *paths = (const char *const *)files->paths;
	int rc = cold ? cb_cache_evict(paths, files->n, cfg->drop_caches, err)
		      : cb_cache_warm(paths, files->n, err);
	if (rc == CB_OK)
		rc = cb_cache_residency(paths, files->n, residency_out, err);
	return rc;
}

/* The trial's argv: ckptbench trial ... or a peer program. */
static int build_argv(const struct cb_run *rc, const struct cb_plan_cell *cell,
		      struct cb_strlist *argv)
{
	const struct cb_loader *l = cell->loader;
	int bad = 0;
	if (l->caps & CB_CAP_PEER) {
		bad |= cb_strlist_add(argv, cell->peer_path);
		bad |= cb_strlist_add(argv, "--format");
		bad |= cb_strlist_add(argv, cb_format_name(l->format));
	} else {
		bad |= cb_strlist_add(argv, rc->self_exe);
		bad |= cb_strlist_add(argv, "trial");
	}
	const char *fixed[] = {"--loader",    l->name,
			       "--path",      cell->dataset->path,
			       "--manifest",  cell->dataset->manifest,
			       "--report-fd", CB_STR(CB_REPORT_FD)};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		bad |= cb_strlist_add(argv, fixed[i]);
	for (size_t i = 0; i < cell->opts.n; i++) {
		bad |= cb_strlist_add(argv, "--opt");
		bad |= cb_strlist_add(argv, cell->opts.v[i]);
	}
	if (l->device == CB_DEVICE_CUDA) {
		bad |= cb_strlist_add(argv, "--device");
		bad |= cb_strlist_add(argv, rc->cfg->device ? rc->cfg->device : "cuda:0");
	}
	if (rc->cfg->bind) {
		bad |= cb_strlist_add(argv, "--bind");
		bad |= cb_strlist_add(argv, rc->cfg->bind);
	}
	bad |= cb_strlist_add_null(argv);
	return bad ? -1 : 0;
}

/* One trial from cache preparation to its JSON record; NULL when the run
 * was interrupted during it (the trial is discarded). */
static json_t *run_trial(struct cb_run *rc, struct cb_plan_cell *cell, bool cold,
			 struct cb_error *err)
{
	double residency = NAN;
	struct cb_error cache_err = CB_ERROR_INIT;
	const struct cb_plan_files *files = &cell->dataset->files[cell->loader->format];
	if (cb_run_prepare_cache(rc->cfg, files, cold, &residency, &cache_err) != CB_OK)
		residency = NAN; /* recorded as unknown; the message says why */
	struct cb_strlist argv = {0};
	if (build_argv(rc, cell, &argv) != 0) {
		cb_strlist_free(&argv);
		CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		return NULL;
	}
	struct cb_child_run child = {
		.argv = argv.v,
		.timeout_s = rc->cfg->timeout_s,
		.mem_limit = rc->cfg->mem_limit,
		.interval_ms = rc->cfg->sample_ms,
		.stop = &interrupted,
	};
	int status = cb_child_run(&child, err);
	cb_strlist_free(&argv);
	json_t *trial = NULL;
	if (status == CB_OK && !child.interrupted && !interrupted)
		trial = cb_trial_record(rc, cell, cold, &child, residency,
					cache_err.code ? &cache_err : NULL);
	cb_child_run_free(&child);
	return trial;
}

/* ------------------------------------------------------------ progress */

static void progress(struct cb_run *rc, const struct cb_plan_cell *cell, bool cold,
		     const char *what)
{
	if (!rc->cfg->progress)
		return;
	double elapsed = cb_mono_now() - rc->started;
	double eta = rc->done ? elapsed / (double)rc->done * (double)(rc->total - rc->done) : NAN;
	char eta_text[32] = "--:--";
	if (isfinite(eta))
		snprintf(eta_text, sizeof eta_text, "%02d:%02d", (int)eta / 60, (int)eta % 60);
	fprintf(stderr, "\r\033[K[%zu/%zu] %s %s %s %s  ETA %s", rc->done + 1, rc->total,
		cell->loader->name, cell->dataset->name, cache_name(cold), what, eta_text);
	fflush(stderr);
}

/* ---------------------------------------------------------------- matrix */

static int record(struct cb_run *rc, struct cb_plan_cell *cell, json_t *trial, bool warmup,
		  struct cb_error *err)
{
	const char *outcome = json_string_value(json_object_get(trial, "outcome"));
	if (outcome && strcmp(outcome, "wrong-bytes") == 0)
		rc->wrong_bytes = true;
	json_array_append_new(json_object_get(cell->json, warmup ? "warmup" : "trials"), trial);
	cb_plan_cell_update(rc, cell);
	return cb_results_write(&rc->results, err);
}

/* Trials of a cell still to come in a run of `rounds` per cell. */
static size_t trials_left(const struct cb_plan_cell *c, unsigned rounds)
{
	size_t run = json_array_size(json_object_get(c->json, "warmup")) +
		     json_array_size(json_object_get(c->json, "trials"));
	return run < rounds ? rounds - run : 0;
}

/* A trial that came back "unsupported" (the loader cannot read this
 * checkpoint at all: trial.c) would come back so every time, cold or warm:
 * its cell and the same loader's cell for the dataset with the other cache
 * state are not run again. The cell keeps its trial and reason; the other,
 * if it had not run yet, is skipped with the same reason, said to be
 * carried over. */
static void stop_unsupported(struct cb_run *rc, struct cb_plan_cell *cell, const json_t *trial)
{
	const char *outcome = json_string_value(json_object_get(trial, "outcome"));
	if (!outcome || strcmp(outcome, "unsupported") != 0)
		return;
	unsigned rounds = rc->cfg->warmup + rc->cfg->repeat;
	const char *message = json_string_value(json_object_get(trial, "message"));
	for (size_t i = 0; i < rc->plan.n_cells; i++) {
		struct cb_plan_cell *c = &rc->plan.cells[i];
		if (c->skipped || c->loader != cell->loader ||
		    c->dataset_index != cell->dataset_index ||
		    !json_equal(c->opts_json, cell->opts_json))
			continue;
		size_t left = trials_left(c, rounds);
		rc->total -= left < rc->total ? left : rc->total;
		c->skipped = true;
		if (c == cell || left < rounds)
			continue;
		snprintf(c->reason, sizeof c->reason,
			 "unsupported: %s (as with the %s cache; not run)", message ? message : "",
			 cell->cold ? "cold" : "warm");
		json_object_set_new(c->json, "status", json_string("skipped"));
		json_object_set_new(c->json, "reason", json_string(c->reason));
	}
}

/* One thing a round does: a cell's trial, or the paired read of one
 * format's files (run_ceiling.c). */
struct round_item {
	bool paired;
	size_t index; /* the cell's, or the enum cb_format */
};

/* A random order for one round (Fisher-Yates). The state comes from the
 * run's order seed and the block and round alone, so --seed gives the same
 * order again. Why shuffle: on a shared or virtual machine a trial is
 * faster right after one that read the same file (the host still caches
 * it) and slower after a long gap or a large free. In a fixed order the
 * same loader always pays that, and the paired read always comes first. */
static void shuffle_round(const struct cb_run *rc, size_t d, bool cold, unsigned round,
			  struct round_item *items, size_t n)
{
	uint64_t state = rc->cfg->order_seed ^ ((uint64_t)d << 40) ^ ((uint64_t)cold << 32) ^ round;
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)(splitmix64(&state) % i);
		struct round_item t = items[i - 1];
		items[i - 1] = items[j];
		items[j] = t;
	}
}

/* A cell's trial in a round; CB_OK with *stop when the run was interrupted. */
static int round_trial(struct cb_run *rc, struct cb_plan_cell *cell, unsigned round, bool *stop,
		       struct cb_error *err)
{
	bool warmup = round < rc->cfg->warmup;
	char what[48];
	snprintf(what, sizeof what, "%s %u/%u", warmup ? "warm-up" : "trial",
		 warmup ? round + 1 : round - rc->cfg->warmup + 1,
		 warmup ? rc->cfg->warmup : rc->cfg->repeat);
	progress(rc, cell, cell->cold, what);
	json_t *trial = run_trial(rc, cell, cell->cold, err);
	if (interrupted) {
		*stop = true;
		return CB_OK;
	}
	if (!trial)
		return err->code ? (int)err->code : CB_EINTERNAL;
	rc->done++;
	stop_unsupported(rc, cell, trial);
	return record(rc, cell, trial, warmup, err);
}

/* The paired read of one format's files; then the summaries of the cells
 * already summarized that read them, since a read can come after a cell's
 * last trial of the round. */
static int paired_read(struct cb_run *rc, size_t d, bool cold, enum cb_format fmt,
		       struct cb_error *err)
{
	int status = cb_run_paired_read(rc, d, cold, fmt, err);
	if (status != CB_OK)
		return status;
	for (size_t i = 0; i < rc->plan.n_cells; i++) {
		struct cb_plan_cell *cell = &rc->plan.cells[i];
		if (cell->dataset_index == d && cell->cold == cold && cell->loader->format == fmt &&
		    json_is_object(json_object_get(cell->json, "summary")))
			cb_results_summarize(cell->json, rc->calibration);
	}
	return cb_results_write(&rc->results, err);
}

/* One (dataset, cache) block: warm-ups then repetitions, one trial of each
 * loader per round, and in each measured round the paired reads (none in
 * warm-up rounds, whose trials are not counted either). */
static int run_block(struct cb_run *rc, size_t d, bool cold, struct cb_error *err)
{
	unsigned rounds = rc->cfg->warmup + rc->cfg->repeat;
	struct round_item *items = calloc(rc->plan.n_cells + CB_FORMAT_PYTORCH + 1, sizeof *items);
	if (!items)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	int status = CB_OK;
	bool stop = false;
	for (unsigned round = 0; status == CB_OK && !stop && round < rounds; round++) {
		size_t n = 0;
		for (int fmt = CB_FORMAT_SAFETENSORS; fmt <= CB_FORMAT_PYTORCH; fmt++)
			if (round >= rc->cfg->warmup &&
			    cb_run_paired_wanted(rc, d, cold, (enum cb_format)fmt))
				items[n++] = (struct round_item){true, (size_t)fmt};
		for (size_t i = 0; i < rc->plan.n_cells; i++) {
			const struct cb_plan_cell *cell = &rc->plan.cells[i];
			if (cell->dataset_index == d && cell->cold == cold && !cell->skipped)
				items[n++] = (struct round_item){false, i};
		}
		if (!rc->cfg->fixed_order)
			shuffle_round(rc, d, cold, round, items, n);
		for (size_t k = 0; status == CB_OK && !stop && k < n; k++) {
			if (items[k].paired) {
				if (rc->cfg->progress) {
					fprintf(stderr,
						"\r\033[K[%zu/%zu] %s %s: reading its %s files "
						"for the ceiling",
						rc->done + 1, rc->total, rc->plan.datasets[d].name,
						cache_name(cold),
						cb_format_name((enum cb_format)items[k].index));
					fflush(stderr);
				}
				status = paired_read(rc, d, cold, (enum cb_format)items[k].index,
						     err);
				stop = interrupted;
				continue;
			}
			struct cb_plan_cell *cell = &rc->plan.cells[items[k].index];
			if (!cell->skipped) /* an unsupported outcome this round may skip it */
				status = round_trial(rc, cell, round, &stop, err);
		}
	}
	free(items);
	return status;
}

static int run_matrix(struct cb_run *rc, struct cb_error *err)
{
	for (size_t d = 0; d < rc->plan.n_datasets && !interrupted; d++)
		for (int c = 0; c < 2 && !interrupted; c++) {
			bool cold = c == 0;
			if ((cold && !rc->cfg->cold) || (!cold && !rc->cfg->warm))
				continue;
			int status = run_block(rc, d, cold, err);
			if (status != CB_OK)
				return status;
		}
	return CB_OK;
}

static void install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a signal must wake the sampler's poll at once. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static char *default_out(void)
{
	char stamp[32], *out;
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
	return asprintf(&out, "results/run-%s.json", stamp) < 0 ? NULL : out;
}

/* Read ceilings matched to the datasets' sizes (calibrate.h), as the
 * calibration's "by_size": one per distinct size, none where the main
 * calibration's file is within a quarter of it. */
static int matched_ceilings(struct cb_run *rc, json_t *cal, uint64_t main_bytes,
			    struct cb_error *err)
{
	json_t *list = json_array();
	if (!list || json_object_set_new(cal, "by_size", list) != 0)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < rc->plan.n_datasets; i++) {
		double size = (double)rc->plan.datasets[i].model_bytes;
		bool covered =
			!(size > 0) || (main_bytes && fabs(log(main_bytes / size)) < log(1.25));
		for (size_t k = 0; !covered && k < json_array_size(list); k++) {
			double b = json_number_value(
				json_object_get(json_array_get(list, k), "file_bytes"));
			covered = fabs(log(b / size)) < log(1.1);
		}
		if (covered)
			continue;
		if (rc->cfg->progress)
			fprintf(stderr, "calibrating the read ceilings for %s (%.0f MiB) ...\n",
				rc->plan.datasets[i].name, size / (1 << 20));
		struct cb_read_ceiling c;
		int status = cb_calibrate_reads(rc->plan.data_dir, (uint64_t)size, &c, err);
		if (status != CB_OK)
			return status;
		json_t *entry = cb_read_ceiling_json(&c);
		if (!entry || json_array_append_new(list, entry) != 0)
			return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	return CB_OK;
}

static int start_results(struct cb_run *rc, struct cb_error *err)
{
	int status = cb_results_open(&rc->results, rc->cfg->out, rc->cfg->force, err);
	if (status != CB_OK)
		return status;
	cb_results_set(&rc->results, "machine", cb_sysinfo_json(rc->plan.data_dir));
	json_t *cal = json_null();
	if (rc->cfg->calibrate) {
		struct cb_calibration c;
		if (rc->cfg->progress)
			fprintf(stderr, "calibrating the ceilings in %s ...\n", rc->plan.data_dir);
		if (cb_calibrate(rc->plan.data_dir, &c, err) != CB_OK)
			return err->code;
		cal = cb_calibration_json(&c);
		if (!cal)
			return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		if (rc->cfg->ceilings == CB_CEILINGS_SIZED &&
		    matched_ceilings(rc, cal, c.file_bytes, err) != CB_OK) {
			json_decref(cal);
			return err->code;
		}
	}
	rc->calibration = cal;
	json_incref(cal);
	cb_results_set(&rc->results, "calibration", cal);
	cb_results_set(&rc->results, "config", cb_plan_config_json(rc));
	cb_plan_add_cells(rc);
	return cb_results_write(&rc->results, err);
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
	char *out = NULL;
	if (status == 0 && !cfg.out)
		cfg.out = out = default_out();
	struct cb_run rc = {.cfg = &cfg};
	struct cb_error err = CB_ERROR_INIT;
	if (status == 0 && cb_plan_build(&rc, &err) != CB_OK)
		status = err.code == CB_EUSAGE ? cb_usage_error("run", "%s", err.msg)
					       : cb_fail(&err);
	if (status == 0 && start_results(&rc, &err) != CB_OK)
		status = cb_fail(&err);
	if (status == 0) {
		install_signals();
		rc.started = cb_mono_now();
		if (run_matrix(&rc, &err) != CB_OK)
			status = cb_fail(&err);
		if (cfg.progress)
			fprintf(stderr, "\r\033[K");
		if (interrupted) {
			cb_plan_mark_interrupted(&rc);
			if (cb_results_write(&rc.results, &err) != CB_OK)
				cb_error_print(&err);
			fprintf(stderr, "ckptbench run: interrupted; finished trials are in %s\n",
				cfg.out);
			status = 130;
		} else if (status == 0) {
			cb_plan_print_table(&rc, stdout);
			printf("results: %s (and .csv)\n", cfg.out);
			status = rc.wrong_bytes ? 1 : 0;
		}
	}
	cb_plan_free(&rc);
	cb_results_free(&rc.results);
	json_decref(rc.calibration);
	cb_strlist_free(&cfg.loader_specs);
	cb_strlist_free(&cfg.dataset_args);
	cb_strlist_free(&cfg.sizes);
	free(out);
	return status < 0 ? 0 : status;
}
