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
#include "engine/fault.h"
#include "ci.h"
#include "dist.h"
#include "docjson.h"
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
	/* --storage sshfs: the served originals are on this machine too; cold
	 * is cold on both sides. */
	if (rc == CB_OK && cold && files->n_backing)
		rc = cb_cache_evict((const char *const *)files->backing_paths, files->n_backing,
				    false, err);
	if (rc == CB_OK)
		rc = cb_cache_residency(paths, files->n, residency_out, err);
	return rc;
}

static int rank_argv(const struct cb_run *rc, const struct cb_plan_cell *cell,
		     struct cb_strlist *argv);
static void ranks_lost(struct cb_run *rc);

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
	if (l->device == CB_DEVICE_CUDA && !rc->dist) { /* --mpi: rank_argv's */
		bad |= cb_strlist_add(argv, "--device");
		bad |= cb_strlist_add(argv, rc->cfg->device ? rc->cfg->device : "cuda:0");
	}
	if (rc->cfg->bind) {
		bad |= cb_strlist_add(argv, "--bind");
		bad |= cb_strlist_add(argv, rc->cfg->bind);
	}
	if (cell->part) {
		bad |= cb_strlist_add(argv, "--part");
		bad |= cb_strlist_add(argv, cell->part->path);
	}
	if (rc->dist)
		bad |= rank_argv(rc, cell, argv);
	bad |= cb_strlist_add_null(argv);
	return bad ? -1 : 0;
}

/* A partial load's trial: how much of its files the page cache gained
 * while it ran (the files' residency after it, less before), a second
 * measure of the bytes it read from storage beside /proc/PID/io's. */
static void record_cache_growth(const struct cb_plan_files *files, double before, json_t *trial)
{
	double after = NAN;
	struct cb_error ignored = CB_ERROR_INIT;
	if (!isfinite(before) || cb_cache_residency((const char *const *)files->paths, files->n,
						    &after, &ignored) != CB_OK)
		return;
	double grown = (after - before) * (double)files->bytes;
	json_object_set_new(trial, "cache_growth_bytes",
			    json_integer((json_int_t)(grown > 0 ? grown : 0)));
}

/* ------------------------------------------------------- many ranks */

/* Under --mpi (docs/mpi.md, dist.h) every rank runs this same matrix in
 * the same order; what differs is below: a trial's cache state is put by
 * the node leaders, the children start at one gate, and the ranks' records
 * go to rank 0, the only writer. Without --mpi none of it runs. */

static bool is_root(const struct cb_run *rc)
{
	return !rc->dist || cb_dist_where(rc->dist)->rank == 0;
}

/* How long a rank waits for the others before the watchdog ends the job:
 * the trial's own limit, reading or evicting the files at 50 MB/s (a
 * leader's cache preparation), and a margin for reaping and gathering. */
static double rank_deadline(const struct cb_run *rc, uint64_t bytes)
{
	return rc->cfg->timeout_s * 1.25 + (double)bytes / 50e6 + 10;
}

/* The GPU of a GPU loader's trial on this rank: --device's index (0 by
 * default) plus the local rank, modulo the GPUs visible. */
static int rank_gpu(const struct cb_run *rc)
{
	const struct cb_dist_where *w = cb_dist_where(rc->dist);
	const char *dev = rc->cfg->device;
	int base = dev && strncmp(dev, "cuda:", 5) == 0 ? atoi(dev + 5) : 0;
	return w->gpus_visible > 0 ? (base + w->local_rank) % w->gpus_visible : base;
}

static void rank_device(const struct cb_run *rc, const struct cb_plan_cell *cell, char *buf,
			size_t size)
{
	if (cell->loader->device == CB_DEVICE_CUDA)
		snprintf(buf, size, "cuda:%d", rank_gpu(rc));
	else
		snprintf(buf, size, "cpu");
}

/* How long after the ranks' common start their children's loads begin:
 * enough for a trial child's setup (reading the manifest, the loader's
 * open) and for a Python peer's (importing torch), on a loaded machine. */
#define RANK_TRIAL_SETUP_S 0.3
#define RANK_PEER_SETUP_S 4.0

/* The trial's arguments for this rank: its GPU, and its share of the
 * checkpoint (a part file, for tp and files). */
static int rank_argv(const struct cb_run *rc, const struct cb_plan_cell *cell,
		     struct cb_strlist *argv)
{
	int bad = 0;
	char text[4096];
	if (cell->loader->device == CB_DEVICE_CUDA) {
		rank_device(rc, cell, text, sizeof text);
		bad |= cb_strlist_add(argv, "--device");
		bad |= cb_strlist_add(argv, text);
	}
	/* The loads start together, not only the children: each child sleeps
	 * after its setup until a common time (IOR's ranks all begin their I/O
	 * after one barrier), set far enough ahead for the setup to be done:
	 * a trial child's is milliseconds, a peer's imports take seconds. */
	double ahead = cell->loader->caps & CB_CAP_PEER ? RANK_PEER_SETUP_S : RANK_TRIAL_SETUP_S;
	snprintf(text, sizeof text, "%.6f", cb_dist_start_mono(rc->dist, ahead));
	bad |= cb_strlist_add(argv, "--start-at");
	bad |= cb_strlist_add(argv, text);
	/* tp and files: the rank's share as a part file (cb_plan_rank_parts),
	 * which the trial and the peers load as any partial load. */
	const struct cb_plan_part *share = &cell->dataset->rank_part[cell->loader->format];
	if (rc->cfg->dist != CB_DIST_REPLICATE) {
		bad |= !share->path;
		bad |= cb_strlist_add(argv, "--part");
		bad |= cb_strlist_add(argv, share->path ? share->path : "");
	}
	return bad;
}

/* A list of some of a format's files (paths borrowed), by want[]. */
static struct cb_plan_files some_files(const struct cb_plan_files *all, const bool *want)
{
	struct cb_plan_files f = {.paths = calloc(all->n ? all->n : 1, sizeof *f.paths)};
	for (size_t i = 0; f.paths && i < all->n; i++)
		if (want[i])
			f.paths[f.n++] = all->paths[i];
	f.present = f.paths != NULL;
	return f;
}

/* The bytes this rank's trial loaded: what the child says it was asked
 * for (a slice's, a share's), else the whole model in replicate mode. */
static double rank_bytes(const struct cb_run *rc, const struct cb_plan_cell *cell,
			 const json_t *report)
{
	double asked = cb_json_num(report, "asked_bytes");
	if (isfinite(asked))
		return asked;
	return rc->cfg->dist == CB_DIST_REPLICATE ? (double)cell->dataset->model_bytes : NAN;
}

/* A gate the whole job passes; a stop anywhere (a signal, a failed rank)
 * stops every rank: true then. */
static bool rank_gate(struct cb_run *rc, const char *what, double deadline, unsigned *flags,
		      struct cb_error *err)
{
	if (interrupted)
		*flags |= CB_GATE_STOP;
	if (cb_dist_gate(rc->dist, what, deadline, flags, err) != CB_OK)
		*flags |= CB_GATE_STOP;
	if (*flags & CB_GATE_STOP) {
		interrupted = 1;
		/* mpirun's SIGKILL follows its SIGTERM by milliseconds: rank 0
		 * says what it knows and keeps what it has at once. */
		if (is_root(rc)) {
			ranks_lost(rc);
			cb_plan_mark_interrupted(rc);
			struct cb_error write_err = CB_ERROR_INIT;
			if (cb_results_write(&rc->results, &write_err) != CB_OK)
				cb_error_print(&write_err);
		}
	}
	return *flags & CB_GATE_STOP;
}

/* The cell's trial child (or peer) run to its end under the sampler
 * (sampler.h). *made is false when its arguments could not be made (out
 * of memory; nothing to free); else the caller frees `child` with
 * cb_child_run_free, whatever the status. */
static int start_child(struct cb_run *rc, const struct cb_plan_cell *cell,
		       struct cb_child_run *child, bool *made, struct cb_error *err)
{
	struct cb_strlist argv = {0};
	*made = build_argv(rc, cell, &argv) == 0;
	if (!*made) {
		cb_strlist_free(&argv);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	*child = (struct cb_child_run){
		.argv = argv.v,
		.timeout_s = rc->cfg->timeout_s,
		.mem_limit = rc->cfg->mem_limit,
		.interval_ms = rc->cfg->sample_ms,
		.stop = &interrupted,
	};
	int status = cb_child_run(child, err);
	cb_strlist_free(&argv); /* the child is past exec: its arguments are done with */
	child->argv = NULL;
	return status;
}

/* What a rank's trial gives rank 0 besides its record (dist.h,
 * cb_dist_entry_text): its bytes, and its child's spawn, load start and
 * end on the common clock. */
struct rank_times {
	double bytes, spawn, start, end;
};

/* This rank's child, measured as every trial is: its record, NULL when the
 * child could not be run or was stopped. */
static json_t *rank_child(struct cb_run *rc, struct cb_plan_cell *cell, bool cold, double residency,
			  struct rank_times *t, struct cb_error *err)
{
	struct cb_child_run child;
	bool made = false;
	int status = start_child(rc, cell, &child, &made, err);
	if (!made)
		return NULL;
	json_t *rec = NULL;
	if (status == CB_OK && !child.interrupted && !interrupted) {
		const struct cb_dist *d = rc->dist;
		json_t *report = child.report ? json_loads(child.report, 0, NULL) : NULL;
		double start = cb_json_num(report, "load_start_mono");
		double end = cb_json_num(report, "load_end_mono");
		t->bytes = rank_bytes(rc, cell, report);
		t->spawn = cb_dist_common_time(d, child.start_mono);
		t->start = isfinite(start) ? cb_dist_common_time(d, start) : NAN;
		t->end = isfinite(end) ? cb_dist_common_time(d, end) : NAN;
		json_decref(report);
		rec = cb_trial_record(rc, cell, cold, &child, residency, NULL);
	}
	cb_child_run_free(&child);
	return rec;
}

/* One trial on every rank (dist.h): the node leaders prepare the cache
 * for their node's files, each rank measures its own files' residency,
 * the leaders start their node's memory sampler, every rank starts its
 * child at one gate, and the entries go to rank 0, which returns the
 * trial's record; the other ranks return a stand-in that carries only
 * the outcome rank 0 decided (stop_unsupported needs it). NULL when the
 * run stops (interrupted set). */
static json_t *rank_trial(struct cb_run *rc, struct cb_plan_cell *cell, bool cold,
			  struct cb_error *err)
{
	struct cb_dist *d = rc->dist;
	const struct cb_dist_where *w = cb_dist_where(d);
	const struct cb_plan_files *files = &cell->dataset->files[cell->loader->format];
	double deadline = rank_deadline(rc, files->bytes);
	unsigned flags = 0;
	bool *want = calloc(files->n ? files->n : 1, sizeof *want);
	size_t *idx = calloc(files->n ? files->n : 1, sizeof *idx);
	if (!want || !idx) {
		free(want);
		free(idx);
		CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		flags |= CB_GATE_STOP;
	}
	/* One rank per node puts the cache in its state, so that no rank
	 * evicts what another is reading. Its failure shows in every rank's
	 * residency and cache_ok, measured next. */
	size_t prepared = 0;
	if (want && idx && w->local_rank == 0) {
		prepared = cb_dist_node_files(rc->cfg->dist, files->n, cb_dist_node_of(d), w->size,
					      w->node, w->nodes, rc->cfg->reorder, cold, want);
		struct cb_plan_files node_files = some_files(files, want);
		struct cb_error cache_err = CB_ERROR_INIT;
		double unused;
		if (node_files.paths)
			cb_run_prepare_cache(rc->cfg, &node_files, cold, &unused, &cache_err);
		free(node_files.paths);
	}
	if (rank_gate(rc, "the cache prepared", deadline, &flags, err)) {
		free(want);
		free(idx);
		return NULL;
	}
	size_t mine = cb_dist_rank_files(rc->cfg->dist, files->n, w->rank, w->size, idx);
	for (size_t i = 0; i < files->n; i++)
		want[i] = false;
	for (size_t i = 0; i < mine; i++)
		want[idx[i]] = true;
	struct cb_plan_files my_files = some_files(files, want);
	double residency = NAN;
	struct cb_error ignored = CB_ERROR_INIT;
	if (!my_files.paths || cb_cache_residency((const char *const *)my_files.paths, my_files.n,
						  &residency, &ignored) != CB_OK)
		residency = NAN;
	free(my_files.paths);
	free(want);
	free(idx);
	/* The leader's sampler starts before the start gate, so it has the
	 * node's baseline before any child exists. */
	struct cb_node_sampler *ns = NULL;
	if (w->local_rank == 0 && rc->cfg->sample_ms)
		ns = cb_node_sampler_start(cb_dist_node_pids(d), (size_t)w->local_size,
					   (const char *const *)files->paths, files->n,
					   files->bytes, rc->cfg->sample_ms);
	json_t *rec = NULL;
	struct rank_times t = {NAN, NAN, NAN, NAN};
	/* Every rank starts its child at one time (cb_dist_start_at), which
	 * is the spawn skew the trial records; a lead of 20 ms and a tenth
	 * of one per rank is what the time takes to reach them. */
	if (!rank_gate(rc, "the start", deadline, &flags, err)) {
		cb_dist_start_at(d, 0.02 + 1e-4 * w->size, deadline, err);
		rec = rank_child(rc, cell, cold, residency, &t, err);
		if (!rec)
			flags |= CB_GATE_STOP;
		if (!rec && err->code) /* this rank's own failure: said here */
			cb_error_print(err);
		rank_gate(rc, "the trial's end", deadline, &flags, err);
	}
	/* After every rank's child is done, so the node's figures cover
	 * the whole of its ranks' loads. */
	struct cb_node_figures node;
	cb_node_sampler_stop(ns, &node);
	node.prepared_files = prepared;
	if (flags & CB_GATE_STOP) {
		json_decref(rec);
		return NULL;
	}
	char device[32];
	rank_device(rc, cell, device, sizeof device);
	char *text = cb_dist_entry_text(w, device, t.bytes, t.spawn, t.start, t.end, rec,
					w->local_rank == 0 ? &node : NULL);
	if (!text) {
		CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		interrupted = 1; /* the others stop at the next gate */
		return NULL;
	}
	char **texts = NULL;
	int status = cb_dist_gather(d, text, deadline, &texts, err);
	free(text);
	if (interrupted) /* stopped in the gather: rank 0 has no record */
		status = CB_EINTERNAL;
	json_t *trial = NULL;
	unsigned outcome = 0;
	if (status == CB_OK && is_root(rc)) {
		trial = cb_dist_combine(texts, (size_t)w->size, (double)cell->dataset->model_bytes);
		const char *o = json_string_value(json_object_get(trial, "outcome"));
		outcome = o && strcmp(o, "unsupported") == 0 ? CB_GATE_UNSUPPORTED : 0;
		if (!trial)
			CB_FAIL(err, CB_EINTERNAL, NULL, NULL, "a rank's record is not JSON");
	}
	for (int r = 0; texts && r < w->size; r++)
		free(texts[r]);
	free(texts);
	/* rank 0's verdict, for stop_unsupported on every rank */
	if (status == CB_OK)
		status = cb_dist_share(d, &outcome, sizeof outcome, deadline, err);
	if (status != CB_OK || interrupted || (is_root(rc) && !trial)) {
		json_decref(trial);
		return NULL;
	}
	if (!is_root(rc))
		trial = json_pack("{s:s,s:s}", "outcome",
				  outcome & CB_GATE_UNSUPPORTED ? "unsupported" : "ok", "message",
				  "");
	return trial;
}

/* One trial from cache preparation to its JSON record; NULL when the run
 * was interrupted during it (the trial is discarded). */
static json_t *run_trial(struct cb_run *rc, struct cb_plan_cell *cell, bool cold,
			 struct cb_error *err)
{
	if (rc->dist)
		return rank_trial(rc, cell, cold, err);
	double residency = NAN;
	struct cb_error cache_err = CB_ERROR_INIT;
	const struct cb_plan_files *files = &cell->dataset->files[cell->loader->format];
	if (cb_run_prepare_cache(rc->cfg, files, cold, &residency, &cache_err) != CB_OK)
		residency = NAN; /* recorded as unknown; the message says why */
	struct cb_child_run child;
	bool made = false;
	int status = start_child(rc, cell, &child, &made, err);
	if (!made)
		return NULL;
	json_t *trial = NULL;
	if (status == CB_OK && !child.interrupted && !interrupted)
		trial = cb_trial_record(rc, cell, cold, &child, residency,
					cache_err.code ? &cache_err : NULL);
	if (trial && cell->part)
		record_cache_growth(files, residency, trial);
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
	/* --mpi: rank 0 alone writes; its record is every rank's. */
	return is_root(rc) ? cb_results_write(&rc->results, err) : CB_OK;
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
		    c->dataset_index != cell->dataset_index || c->part != cell->part ||
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

/* --mpi: the paired read on rank 0 alone (its node's leader), between the
 * trials as without MPI, while every other rank waits at a gate. */
static int rank_paired_read(struct cb_run *rc, size_t d, bool cold, enum cb_format fmt,
			    struct cb_error *err)
{
	unsigned flags = 0;
	int status = is_root(rc) ? paired_read(rc, d, cold, fmt, err) : CB_OK;
	if (status != CB_OK)
		flags |= CB_GATE_STOP;
	struct cb_error gate_err = CB_ERROR_INIT;
	/* four passes of the files, at worst */
	rank_gate(rc, "the paired read", rank_deadline(rc, 4 * rc->plan.datasets[d].model_bytes),
		  &flags, &gate_err);
	return status;
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
				status = rc->dist
						 ? rank_paired_read(rc, d, cold,
								    (enum cb_format)items[k].index,
								    err)
						 : paired_read(rc, d, cold,
							       (enum cb_format)items[k].index, err);
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

/* The blocks of datasets [first, first + n). */
static int run_datasets(struct cb_run *rc, size_t first, size_t n, struct cb_error *err)
{
	for (size_t d = first; d < first + n && !interrupted; d++)
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

static int run_matrix(struct cb_run *rc, struct cb_error *err)
{
	size_t profiles = rc->plan.n_storage;
	if (profiles == 0)
		return run_datasets(rc, 0, rc->plan.n_datasets, err);
	/* --storage: each profile in turn, up around its datasets' blocks
	 * (and this process in its cgroup, so the trials are too). */
	size_t per = rc->plan.n_datasets / profiles;
	int status = CB_OK;
	for (size_t s = 0; status == CB_OK && s < profiles && !interrupted; s++) {
		bool skipped = false;
		status = cb_plan_storage_up(rc, s, &skipped, err);
		if (status == CB_OK && !skipped)
			status = run_datasets(rc, s * per, per, err);
		cb_plan_storage_down(rc, s, err);
	}
	return status;
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

/* --mpi, rank 0: what the job is in the config, and a "ranks" object in
 * every cell (docs/results-schema.md), its per_rank filled in by the
 * summary (dist_record.c). */
static void rank_cells(struct cb_run *rc)
{
	const struct cb_dist_where *w = cb_dist_where(rc->dist);
	json_t *config = json_object_get(rc->results.root, "config");
	json_object_set_new(config, "ranks",
			    json_pack("{s:i,s:i,s:s,s:i,s:b}", "n", w->size, "nodes", w->nodes,
				      "dist", cb_dist_mode_name(rc->cfg->dist), "node_groups",
				      (int)rc->cfg->node_groups, "reorder", rc->cfg->reorder));
	for (size_t i = 0; i < rc->plan.n_cells; i++) {
		struct cb_plan_cell *c = &rc->plan.cells[i];
		json_object_set_new(c->json, "ranks", cb_dist_cell_json(w, rc->cfg->dist));
		cb_results_summarize(c->json, rc->calibration);
	}
}

/* --mpi, every rank but 0: the cells in memory alone, never written (only
 * rank 0 opens the results file), with a calibration that is an empty
 * object where rank 0 has one, so that every rank plans the same paired
 * reads into its rounds. */
static int mirror_results(struct cb_run *rc, bool calibrated, struct cb_error *err)
{
	rc->results.root = json_object();
	rc->results.cells = json_array();
	if (!rc->results.root || !rc->results.cells ||
	    json_object_set_new(rc->results.root, "cells", rc->results.cells) != 0)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	rc->calibration = calibrated ? json_object() : json_null();
	cb_plan_add_cells(rc);
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
	if (rc->dist)
		rank_cells(rc);
	return cb_results_write(&rc->results, err);
}

/* A failure: printed as one line, its exit status returned (as the CLI's
 * cb_fail does). */
static int fail(const struct cb_error *err)
{
	cb_error_print(err);
	return cb_error_exit_status(err->code);
}

/* The watchdog's last act on rank 0 (dist.h), before MPI_Abort: the
 * results so far, marked, with what happened. */
static void ranks_abort(void *ctx, const char *why)
{
	struct cb_run *rc = ctx;
	struct cb_error err = CB_ERROR_INIT;
	char text[2600];
	snprintf(text, sizeof text, "%s (after %zu of %zu trials)", why, rc->done, rc->total);
	cb_plan_mark_interrupted(rc);
	cb_results_set(&rc->results, "ranks_error", json_string(text));
	if (cb_results_write(&rc->results, &err) != CB_OK)
		cb_error_print(&err);
	else
		fprintf(stderr,
			"ckptbench run: after %zu of %zu trials; those finished are in %s\n",
			rc->done, rc->total, rc->cfg->out);
}

/* Rank 0 stopped by a signal: when ranks had not reached the gate it was
 * waiting at, they most likely died, and mpirun, which ends the whole job
 * when one rank exits abnormally, sent the signal. Said, and kept in the
 * results. */
static void ranks_lost(struct cb_run *rc)
{
	const char *missing = cb_dist_find_lost(rc->dist);
	if (!*missing || json_object_get(rc->results.root, "ranks_error"))
		return; /* nothing known, or said already */
	char why[2400];
	snprintf(why, sizeof why,
		 "%s had not finished the trial or was gone when the run was stopped: most "
		 "likely it died, and mpirun ended the job",
		 missing);
	cb_results_set(&rc->results, "ranks_error", json_string(why));
	fprintf(stderr, "ckptbench run: %s\n", why);
}

/* --mpi: MPI up, this rank's place, rank 0's order seed (dist.h). Only
 * rank 0 reports and shows progress. */
static int ranks_start(struct cb_run *rc, struct cb_error *usage)
{
	struct cb_run_config *cfg = (struct cb_run_config *)rc->cfg;
	struct cb_error err = CB_ERROR_INIT;
	int status = cb_dist_start(cfg->node_groups, &cfg->order_seed, &rc->dist, &err);
	bool root = is_root(rc);
	if (!root)
		cfg->progress = false;
	if (status == CB_OK) {
		cb_dist_on_abort(rc->dist, ranks_abort, rc);
		cb_dist_set_stop(rc->dist, &interrupted);
		return 0;
	}
	if (rc->dist) /* MPI is up: end it here, rank 0 alone says why */
		cb_dist_end(rc->dist, true);
	rc->dist = NULL;
	if (err.code == CB_EUSAGE && root) {
		*usage = err;
		return 2;
	}
	return root ? fail(&err) : cb_error_exit_status(err.code);
}

/* --mpi: the other ranks plan once rank 0 has (and made what was
 * missing); rank 0's status and skipped cells are every rank's, so that
 * all run the same rounds. The day's plan takes as long as making the
 * datasets: a day's deadline. */
static int ranks_plan(struct cb_run *rc, int status)
{
	const double day = 86400;
	struct cb_error err = CB_ERROR_INIT;
	unsigned flags = status == 0 && is_root(rc) ? CB_GATE_ROOT_OK : 0;
	int32_t shared = status;
	cb_dist_gate(rc->dist, "the plan", day, &flags, &err);
	cb_dist_share(rc->dist, &shared, sizeof shared, day, &err);
	if (shared != 0) /* rank 0 said why */
		return is_root(rc) ? status : shared;
	if (!is_root(rc) && cb_plan_build(rc, &err) != CB_OK)
		status = fail(&err);
	/* Each rank's share of the model for tp and files, outside every
	 * timed region (it reads the checkpoint for the slices' hashes). */
	if (status == 0 && cb_plan_rank_parts(rc, cb_dist_where(rc->dist)->rank,
					      cb_dist_where(rc->dist)->size, &err) != CB_OK)
		status = fail(&err);
	/* Every rank's plan: the cells' count, then rank 0's skips. */
	flags = status == 0 ? 0 : CB_GATE_STOP;
	cb_dist_gate(rc->dist, "the plans", day, &flags, &err);
	if (flags & CB_GATE_STOP)
		return status ? status : 3;
	uint64_t n = rc->plan.n_cells;
	uint64_t n0 = n;
	cb_dist_share(rc->dist, &n0, sizeof n0, day, &err);
	unsigned char *skipped = calloc(n ? n : 1, 1);
	if (n0 != n || !skipped) {
		fprintf(stderr, "ckptbench run: rank %d planned %llu cells, rank 0 %llu\n",
			cb_dist_where(rc->dist)->rank, (unsigned long long)n,
			(unsigned long long)n0);
		free(skipped);
		return 4;
	}
	for (size_t i = 0; i < n; i++) {
		struct cb_plan_cell *c = &rc->plan.cells[i];
		/* files mode: a rank without a file would have nothing to load */
		size_t nf = c->dataset->files[c->loader->format].n;
		if (rc->cfg->dist != CB_DIST_REPLICATE && !c->skipped &&
		    !(c->loader->caps & CB_CAP_PARTIAL)) {
			c->skipped = true;
			snprintf(c->reason, sizeof c->reason,
				 "--dist %s: the loader cannot load a part of the model",
				 cb_dist_mode_name(rc->cfg->dist));
			rc->total -= rc->cfg->warmup + rc->cfg->repeat;
		}
		if (rc->cfg->dist == CB_DIST_FILES && !c->skipped &&
		    nf < (size_t)cb_dist_where(rc->dist)->size) {
			c->skipped = true;
			snprintf(c->reason, sizeof c->reason,
				 "--dist files: %zu file(s) for %d ranks (every rank needs one; "
				 "gen --shards N makes more)",
				 nf, cb_dist_where(rc->dist)->size);
			rc->total -= rc->cfg->warmup + rc->cfg->repeat;
		}
		skipped[i] = c->skipped;
	}
	cb_dist_share(rc->dist, skipped, n ? n : 1, day, &err);
	for (size_t i = 0; i < n; i++) {
		struct cb_plan_cell *c = &rc->plan.cells[i];
		if (skipped[i] && !c->skipped) {
			c->skipped = true;
			snprintf(c->reason, sizeof c->reason, "skipped on rank 0");
			rc->total -= rc->cfg->warmup + rc->cfg->repeat;
		}
		c->skipped = skipped[i];
	}
	free(skipped);
	return 0;
}

/* --mpi: rank 0 has opened the results and calibrated; the others make
 * their in-memory cells, knowing whether it calibrated. */
static int ranks_results(struct cb_run *rc, int status)
{
	struct cb_error err = CB_ERROR_INIT;
	unsigned flags = status ? CB_GATE_STOP : 0;
	if (is_root(rc) && status == 0 && json_is_object(rc->calibration))
		flags |= CB_GATE_CALIBRATED;
	/* Calibrating reads a scratch file of a gigabyte or more. */
	cb_dist_gate(rc->dist, "the results started", 3600, &flags, &err);
	if (flags & CB_GATE_STOP) /* a rank failed, and said why */
		return status ? status : 3;
	if (!is_root(rc) && mirror_results(rc, flags & CB_GATE_CALIBRATED, &err) != CB_OK)
		return fail(&err);
	return 0;
}

int cb_run_execute(struct cb_run_config *cfg, cb_run_done_fn *done, struct cb_error *usage)
{
	/* A test build's injected faults (engine/fault.h) are for the trials,
	 * which read CKPTBENCH_FAULT from the environment they inherit: the
	 * harness's own reads (cache preparation, ceilings) take none, so a
	 * fault that fires is always a trial's. A no-op in shipped builds. */
	(void)cb_fault_arm(NULL);
	char *out = NULL;
	if (!cfg->out)
		cfg->out = out = default_out();
	struct cb_run rc = {.cfg = cfg};
	struct cb_error err = CB_ERROR_INIT;
	int status = 0;
	/* --storage: the guardian first, before any profile is up, so that
	 * none outlives this process however it ends. */
	if (cfg->storage.n && cb_storage_guardian_start(&err) != CB_OK)
		status = fail(&err);
	if (status == 0 && cfg->mpi)
		status = ranks_start(&rc, usage);
	/* --mpi: rank 0 plans first (it makes the datasets and manifests the
	 * others then find), ranks_plan the others. */
	if (status == 0 && is_root(&rc) && cb_plan_build(&rc, &err) != CB_OK) {
		if (err.code == CB_EUSAGE) {
			*usage = err;
			status = 2;
		} else {
			status = fail(&err);
		}
	}
	if (rc.dist)
		status = ranks_plan(&rc, status);
	if (status == 0 && is_root(&rc) && start_results(&rc, &err) != CB_OK)
		status = fail(&err);
	if (rc.dist)
		status = ranks_results(&rc, status);
	if (status == 0) {
		install_signals();
		rc.started = cb_mono_now();
		if (run_matrix(&rc, &err) != CB_OK)
			status = fail(&err);
		if (cfg->progress)
			fprintf(stderr, "\r\033[K");
		if (interrupted && !is_root(&rc)) {
			status = 130; /* rank 0 says what happened */
		} else if (interrupted) {
			cb_plan_mark_interrupted(&rc);
			if (rc.dist)
				ranks_lost(&rc);
			if (cb_results_write(&rc.results, &err) != CB_OK)
				cb_error_print(&err);
			fprintf(stderr, "ckptbench run: interrupted; finished trials are in %s\n",
				cfg->out);
			status = 130;
		} else if (status == 0 && is_root(&rc)) {
			if (done)
				done(rc.results.root, rc.results.path, cfg);
			printf("results: %s (and .csv)\n", cfg->out);
			status = rc.wrong_bytes ? 1 : 0;
		}
	}
	/* Finalize only when every rank got here in step; a stopped job has
	 * requests in flight (dist.h). */
	if (rc.dist)
		cb_dist_end(rc.dist, !interrupted);
	cb_plan_free(&rc);
	cb_results_free(&rc.results);
	json_decref(rc.calibration);
	if (out)
		cfg->out = NULL;
	free(out);
	return status;
}
