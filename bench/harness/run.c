/* ckptbench run: the benchmark matrix (docs/loaders.md, "A trial's life";
 * the file it writes: docs/results-schema.md).
 *
 * Cells are (loader, dataset, cache state). For each dataset and cache
 * state, repetitions run in rounds of one trial per cell, each round in a
 * random order drawn from a recorded seed (--fixed-order: the order of
 * --loaders), so drift hits every loader alike; warm-ups first, recorded
 * apart. Every trial
 * is a fresh child (bench/harness/trial.c, or a peer program) watched by the
 * sampler (bench/harness/sampler.c); its outcome, whatever it is, is recorded and the matrix
 * goes on. The results file is rewritten atomically after every trial.
 *
 * The core names no loader: everything about one comes from its vtable.
 */
#include <errno.h>
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
#include "fileio.h"
#include "gen.h"
#include "loader.h"
#include "manifest.h"
#include "results.h"
#include "run_plan.h"
#include "sampler.h"
#include "sysinfo.h"
#include "tensor_hash.h"

/* Set by SIGINT/SIGTERM: the running child is killed, the file kept. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* ------------------------------------------------------------ seed */

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

uint64_t cb_run_random_seed(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t mix = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
		       ((uint64_t)getpid() << 32);
	return splitmix64(&mix);
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

/* A failure: printed as one line, its exit status returned (as the CLI's
 * cb_fail does). */
static int fail(const struct cb_error *err)
{
	cb_error_print(err);
	return cb_error_exit_status(err->code);
}

int cb_run_execute(struct cb_run_config *cfg, cb_run_done_fn *done, struct cb_error *usage)
{
	char *out = NULL;
	if (!cfg->out)
		cfg->out = out = default_out();
	struct cb_run rc = {.cfg = cfg};
	struct cb_error err = CB_ERROR_INIT;
	int status = 0;
	if (cb_plan_build(&rc, &err) != CB_OK) {
		if (err.code == CB_EUSAGE) {
			*usage = err;
			status = 2;
		} else {
			status = fail(&err);
		}
	}
	if (status == 0 && start_results(&rc, &err) != CB_OK)
		status = fail(&err);
	if (status == 0) {
		install_signals();
		rc.started = cb_mono_now();
		if (run_matrix(&rc, &err) != CB_OK)
			status = fail(&err);
		if (cfg->progress)
			fprintf(stderr, "\r\033[K");
		if (interrupted) {
			cb_plan_mark_interrupted(&rc);
			if (cb_results_write(&rc.results, &err) != CB_OK)
				cb_error_print(&err);
			fprintf(stderr, "ckptbench run: interrupted; finished trials are in %s\n",
				cfg->out);
			status = 130;
		} else if (status == 0) {
			if (done)
				done(rc.results.root, rc.results.path, cfg);
			printf("results: %s (and .csv)\n", cfg->out);
			status = rc.wrong_bytes ? 1 : 0;
		}
	}
	cb_plan_free(&rc);
	cb_results_free(&rc.results);
	json_decref(rc.calibration);
	if (out)
		cfg->out = NULL;
	free(out);
	return status;
}
