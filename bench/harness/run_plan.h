/* What `run` works from: its options, the datasets it resolved, the cells of
 * the matrix, and the record of each trial (run_plan.c). The harness's
 * interface to `run`: bench/cli/cmd_run.c fills a cb_run_config and calls
 * cb_run_execute.
 */
#ifndef CB_RUN_PLAN_H
#define CB_RUN_PLAN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ckpt.h"
#include "error.h"
#include "loader.h"
#include "results.h"
#include "sampler.h"

/* A growable NULL-terminable list of owned strings. */
struct cb_strlist {
	char **v;
	size_t n, cap;
};

int cb_strlist_add(struct cb_strlist *l, const char *s); /* 0, or -1 on ENOMEM */
int cb_strlist_add_null(struct cb_strlist *l);           /* terminates v for execv */
void cb_strlist_free(struct cb_strlist *l);

/* The read ceiling a cell is held against, besides the calibration file's:
 *   PAIRED: the dataset's own files, read by the ceilings' method once per
 *           round of its block, between the trials (run_ceiling.c);
 *   SIZED:  scratch files of each dataset's size, read before the run;
 *   ONE:    the calibration file alone. */
enum cb_run_ceilings { CB_CEILINGS_PAIRED, CB_CEILINGS_SIZED, CB_CEILINGS_ONE };

struct cb_run_config {
	struct cb_strlist loader_specs; /* NAME[:KEY=VALUE...]; empty = all */
	struct cb_strlist dataset_args; /* names or paths */
	const char *preset;             /* generate first, with sizes */
	struct cb_strlist sizes;
	const char *dtype;
	bool cold, warm;
	bool drop_caches;
	unsigned repeat, warmup;
	const char *device; /* NULL, "cpu", "cuda:N" */
	uint64_t mem_limit; /* 0: none */
	const char *bind;
	bool timeline;
	double timeout_s;
	unsigned sample_ms;
	bool calibrate;
	enum cb_run_ceilings ceilings; /* which read ceilings the cells are held against */
	bool fixed_order;              /* each round in the cells' order, not shuffled */
	bool seed_given;
	uint64_t order_seed; /* the shuffle's seed (run.c) */
	const char *out;
	bool force;
	bool progress;
};

/* The files of one format of a dataset, for cache control. */
struct cb_plan_files {
	char **paths;
	size_t n;
	uint64_t bytes;
	bool present; /* the dataset has this format */
};

struct cb_plan_dataset {
	char *name;            /* directory or file name */
	char *path;            /* what loaders open */
	char *manifest;        /* the manifest file */
	bool manifest_is_temp; /* removed at the end */
	uint64_t model_bytes;
	struct cb_plan_files files[3]; /* by enum cb_format */
};

struct cb_plan_cell {
	const struct cb_loader *loader;
	struct cb_strlist opts; /* KEY=VALUE as given */
	json_t *opts_json;      /* every option's effective value; owned */
	char *peer_path;        /* resolved peer program, if a peer */
	struct cb_plan_dataset *dataset;
	size_t dataset_index;
	bool cold;
	bool skipped;
	char reason[512];
	json_t *json; /* the cell in the results (borrowed) */
};

struct cb_plan {
	struct cb_plan_dataset *datasets;
	size_t n_datasets;
	struct cb_plan_cell *cells;
	size_t n_cells;
	char *data_dir; /* where calibration and sysinfo look */
};

struct cb_run {
	const struct cb_run_config *cfg;
	struct cb_plan plan;
	struct cb_results results;
	json_t *calibration; /* owned reference; may be JSON null */
	char self_exe[4096]; /* this binary, for the trial children */
	double started;
	size_t done, total; /* trials */
	bool wrong_bytes;
};

/* Resolves loaders, datasets (generating and hashing as needed) and the
 * cells. CB_EUSAGE for a bad loader or dataset argument. */
int cb_plan_build(struct cb_run *run, struct cb_error *err);

/* Adds every cell to the results (skipped ones with their reason). */
void cb_plan_add_cells(struct cb_run *run);

/* The "config" object of the results. New reference. */
json_t *cb_plan_config_json(const struct cb_run *run);

/* The trial's record (docs/results-schema.md, cells[].trials[]) from the
 * child's report and the parent's measurements. New reference. `cache_err`
 * says why the cache could not be prepared, or is NULL. */
json_t *cb_trial_record(const struct cb_run *run, const struct cb_plan_cell *cell, bool cold,
			const struct cb_child_run *child, double residency,
			const struct cb_error *cache_err);

/* Status, reason and summary of a cell after a trial was added. */
void cb_plan_cell_update(struct cb_run *run, struct cb_plan_cell *cell);

/* After an interruption: marks the document and unfinished cells. */
void cb_plan_mark_interrupted(struct cb_run *run);

/* What `run` calls once the matrix has run to its end uninterrupted, with
 * the run's document and its path (the CLI prints its table from them,
 * bench/cli/cmd_run.c, through the results model). */
typedef void cb_run_done_fn(json_t *doc, const char *path, const struct cb_run_config *cfg);

/* Runs the matrix cfg describes (bench/harness/run.c): plans it, calibrates,
 * runs every trial and writes the results file (cfg->out, or
 * results/run-<time>.json when NULL), then calls `done` (which may be
 * NULL) and prints where the results are. Returns the exit status: 0, 1
 * when a load gave wrong bytes, 130 when interrupted, or an error's status
 * (the error already printed); 2 with *usage filled in when the plan
 * refused a loader or dataset argument, which the caller reports as a
 * usage error. */
int cb_run_execute(struct cb_run_config *cfg, cb_run_done_fn *done, struct cb_error *usage);

/* A seed for the rounds' order when none is given: from the clock and the
 * process id. */
uint64_t cb_run_random_seed(void);

void cb_plan_free(struct cb_run *run);

/* Puts the files into the cache state asked (evicted when cold, read in
 * when warm) and measures the state: *residency_out is the fraction of
 * their bytes cached (run.c). */
int cb_run_prepare_cache(const struct cb_run_config *cfg, const struct cb_plan_files *files,
			 bool cold, double *residency_out, struct cb_error *err);

/* The paired read ceilings (run_ceiling.c). cb_run_paired_wanted: whether
 * the (dataset, cache) block has cells still to run that read this
 * format's files, the ceilings are paired and the run calibrates. Then,
 * once in each measured round of the block, cb_run_paired_read puts the
 * files in the block's cache state and reads them by one thread and by one
 * per CPU (calibrate.h), adding the figures to the calibration's
 * "paired_reads" entry for (dataset, format, cache). A pass whose cache
 * could not be put in its state is not counted (the entry's note says so). */
bool cb_run_paired_wanted(const struct cb_run *run, size_t dataset, bool cold, enum cb_format fmt);
int cb_run_paired_read(struct cb_run *run, size_t dataset, bool cold, enum cb_format fmt,
		       struct cb_error *err);

/* "paired", "sized" or "one". */
const char *cb_run_ceilings_name(enum cb_run_ceilings c);

#endif
