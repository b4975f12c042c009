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
#include "dist.h"
#include "error.h"
#include "loader.h"
#include "results.h"
#include "sampler.h"
#include "storage.h"

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
	/* A partial load (docs/partial-loads.md): the selection's text, the
	 * tensor-parallel splits (tp[0..n_tp), e.g. 1, 2, 4, 8), the one rank
	 * of each to load (-1: every rank) and a rules file (NULL: the shipped
	 * rules for the dataset). */
	const char *select;
	unsigned tp[8];
	size_t n_tp;
	int tp_rank;
	const char *tp_rules;
	/* --storage: the storage profiles (bench/storage/storage.h) the whole
	 * matrix runs on, one after the other; empty: the datasets where they
	 * are, and no "storage" key is written. */
	struct cb_strlist storage;
	/* Many ranks (docs/mpi.md, dist.h): --mpi (this process is one rank
	 * of an MPI job), --node-groups K (K pseudo-nodes of contiguous ranks;
	 * 0: the machines), --dist and --reorder. */
	bool mpi;
	unsigned node_groups;
	enum cb_dist_mode dist;
	bool reorder;
};

/* The files of one format of a dataset, for cache control. */
struct cb_plan_files {
	char **paths;
	size_t n;
	uint64_t bytes;
	bool present; /* the dataset has this format */
	/* --storage sshfs: the served originals of `paths` on this machine,
	 * evicted with them for a cold state (cb_run_prepare_cache); else
	 * none. Owned. */
	char **backing_paths;
	size_t n_backing;
};

/* One part of a dataset a partial load's cells load (run_parts.c). */
struct cb_plan_part {
	unsigned tp, rank;
	char *path;                /* its part file (part_file.h), given to each trial */
	json_t *selection;         /* the cells' "selection" object; owned */
	uint64_t asked_bytes;      /* the part's bytes */
	uint64_t asked_page_bytes; /* the file pages they lie in (each once) */
	size_t unmatched;          /* tensors replicated because no split rule matched */
};

struct cb_plan_dataset {
	char *name;            /* directory or file name */
	char *path;            /* what loaders open */
	char *manifest;        /* the manifest file */
	bool manifest_is_temp; /* removed at the end */
	uint64_t model_bytes;
	struct cb_plan_files files[3]; /* by enum cb_format */
	struct cb_plan_part *parts;    /* a partial load's parts; owned */
	/* Under MPI with --dist tp or files: this rank's share, per format
	 * (cb_plan_rank_parts); path NULL otherwise. Owned. */
	struct cb_plan_part rank_part[3];
	size_t n_parts;
	bool whole_too; /* the whole model is a cell too (no partial load, or tp 1) */
	/* --storage: the profile this instance of the dataset is on (an index
	 * into the plan's storage lists) and its name, NULL without --storage.
	 * `path` and `files` are the original ones until the profile is up,
	 * then where the profile has them (cb_plan_storage_up). */
	size_t storage_index;
	const char *storage_name;
};

struct cb_plan_cell {
	const struct cb_loader *loader;
	struct cb_strlist opts; /* KEY=VALUE as given */
	json_t *opts_json;      /* every option's effective value; owned */
	char *peer_path;        /* resolved peer program, if a peer */
	struct cb_plan_dataset *dataset;
	size_t dataset_index;
	const struct cb_plan_part *part; /* NULL: the whole model */
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
	/* --storage: the profiles, parsed, and each one's mount while it is up.
	 * The datasets are then n_storage blocks of n_datasets / n_storage,
	 * the same datasets in the same order, one block per profile. */
	struct cb_storage_profile **storage_profiles;
	struct cb_storage_mount *storage_mounts;
	size_t n_storage;
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
	/* --mpi: this rank's place in the job (owned; ended by run.c), NULL
	 * otherwise. Only rank 0 has the results file open; the other ranks'
	 * `results` hold the cells alone, in memory, never written. */
	struct cb_dist *dist;
};

/* Resolves loaders, datasets (generating and hashing as needed) and the
 * cells. CB_EUSAGE for a bad loader or dataset argument. */
int cb_plan_build(struct cb_run *run, struct cb_error *err);

/* The parts of every dataset for the run's --select and --tp
 * (run_parts.c): plans, expected hashes and part files, before any trial.
 * CB_EUSAGE for a selection or split the datasets cannot take. */
int cb_plan_parts_build(struct cb_run *run, struct cb_error *err);
void cb_plan_parts_free(struct cb_plan_dataset *d);

/* Under MPI, --dist tp or files: the part rank `rank` of `size` loads of
 * each dataset and format (a tensor-parallel slice, or the whole tensors
 * of its files), as part files its trials are given (run_parts.c). */
int cb_plan_rank_parts(struct cb_run *run, int rank, int size, struct cb_error *err);

/* --storage (run_plan.c): brings profile `s` up with the datasets' files,
 * moves its datasets' paths onto it, records its "storage" object in their
 * cells and puts this process in its throttling cgroup. A profile that
 * cannot come up is not an error: its cells are skipped with the reason
 * (*skipped) and the run goes on. Negative only when the results cannot be
 * written. cb_plan_storage_down leaves the cgroup and takes it down. */
int cb_plan_storage_up(struct cb_run *run, size_t s, bool *skipped, struct cb_error *err);
int cb_plan_storage_down(struct cb_run *run, size_t s, struct cb_error *err);

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
