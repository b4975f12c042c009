/* The results model: a finished results file (docs/results-schema.md,
 * schema "ckptbench/1") read once into typed structs. Every stage that
 * reads one goes through it: `plot` and `report` (plotdata.c), `compare`
 * and `ab` (compare.c, cmd_ab.c) and the table `run` prints at its end
 * (run_record.c). The writer side, results.h, builds the document during a
 * run; nothing here changes a document.
 *
 * What it holds: the file (tool, timestamp, the machine, the calibration
 * with its by_size and paired reads, the config), and its cells, each with
 * its key, its options, its trials (warm-ups apart) and its summary. Keys
 * a struct does not type stay reachable as JSON where the schema calls the
 * object open (the machine) and, for writers that copy a cell (ab's
 * merge), as the cell's own JSON.
 *
 * Ownership: cb_results_file_load and cb_results_file_from_json give the
 * caller a model to release with cb_results_file_free. Everything reachable
 * from it (cells, trials, timelines, strings, arrays, the JSON handles) is
 * the model's and lives until that call; the caller frees nothing else,
 * and must not change the JSON it reaches through the model. The few
 * functions that write into a caller's buffer say so.
 *
 * Missing values: a number that is null, absent or not a number is NaN; a
 * count that is absent is 0; a string that is null or absent is "" (never
 * NULL), except where a field says NULL stands for null (a cell's device,
 * the config's device). Arrays with no entries are NULL with a count of 0.
 * A NULL model or cell passed to a function here is a caller's bug, unless
 * the function says otherwise.
 *
 * Thread-safety: loading keeps no global state (jansson is safe on
 * separate documents), so files may be loaded from several threads at
 * once. A loaded model is never changed: any number of threads may read
 * one at the same time. Freeing it must not race with its readers.
 */
#ifndef CB_RESULTS_MODEL_H
#define CB_RESULTS_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "docjson.h" /* the schema name and cb_json_num/str/at (base) */
#include "error.h"

#define CB_RESULTS_MAX_BYTES (1u << 30)

/* ------------------------------------------------------------ the key */

/* What identifies a cell across files and within one: two cells with equal
 * keys measured the same thing, so a later file's replaces an earlier
 * one's (plot, report), ab's rounds append trials to it, and compare pairs
 * base with head by it. `options` is part of it: one loader run with two
 * settings is two cells.
 *
 * Extend the key here and only here: a new part of a cell's identity (a
 * partial-load selection, a rank, a storage profile) gets a field below, a
 * line in cb_cell_key_equal (and a CB_KEY_* bit if a caller may ever need
 * to match without it), and the part of the model's parser that fills it
 * in; every reader then matches on it. docs/results-schema.md, "Cells, and
 * how they are matched", says what the key is. */
struct cb_cell_key {
	const char *loader;
	/* The options object as canonical JSON: compact, keys sorted, a real
	 * with an integral value written as that integer, so that two objects
	 * equal as JSON values have the same text. "{}" for a cell without
	 * options (or, in a hand-made file, without the key). */
	const char *options;
	const char *dataset;
	const char *cache;
	/* NULL where the file says null: files written on 2026-12-06 between
	 * commits 24c3eb4 and d03385a, for a GPU loader under --device cpu. */
	const char *device;
	/* The parts beyond one whole model, one process, one disk; NULL where
	 * the cell has none (the whole model; one process; the data directory
	 * as it is), which is every cell of a file written before them.
	 * selection: the cell's "selection" object as canonical JSON (the
	 * patterns, the split and the rank); ranks: {"dist", "n"} of its
	 * "ranks" object as canonical JSON (the per-rank figures are results,
	 * not identity); storage: its storage profile's name. */
	const char *selection;
	const char *ranks;
	const char *storage;
};

/* Parts of the key cb_cell_key_equal may leave out. */
enum {
	CB_KEY_ALL = 0,
	CB_KEY_BUT_OPTIONS = 1u << 0, /* the cell's place, whatever its settings */
};

/* True when the keys are equal in every part not named in `ignore`
 * (CB_KEY_* bits). Strings compare byte for byte; two NULL devices are
 * equal. Pure. */
bool cb_cell_key_equal(const struct cb_cell_key *a, const struct cb_cell_key *b, unsigned ignore);

/* ------------------------------------------------------------ trials */

/* A phase span of a timeline. */
struct cb_results_phase {
	const char *name;
	double start_s, end_s;
};

/* A trial's memory over time (cells[].trials[].timeline): n samples, every
 * array n long; an entry the file lacks or holds as a non-number is NaN. */
struct cb_results_timeline {
	size_t n;
	double *t_s;
	double *anon_bytes;
	double *file_bytes;
	double *vram_bytes; /* NULL when the file has no array (null today) */
	struct cb_results_phase *phases;
	size_t n_phases;
};

/* One trial (cells[].trials[] or cells[].warmup[]). */
struct cb_results_trial {
	const char *outcome; /* "ok", "crash", ...; "" when missing */
	const char *message;
	bool ok; /* outcome is "ok" */
	double wall_s;
	/* phases.*: NaN when the trial has no phases (null) */
	double init_s, read_s, copy_s, to_device_s;
	double baseline_rss_bytes, baseline_anon_bytes, baseline_file_bytes, baseline_vram_bytes;
	double peak_rss_bytes, peak_anon_bytes, peak_file_bytes, peak_vram_bytes;
	double user_s, sys_s, instructions, read_bytes, residency_before;
	const struct cb_results_timeline *timeline; /* NULL without one */
};

/* ------------------------------------------------------------ cells */

/* cells[].summary, as the run computed it (results.c); present is false
 * for a cell without a summary object. */
struct cb_results_summary {
	bool present;
	size_t n; /* the ok trials it covers */
	double median_s, min_s, max_s, mean_s, stddev_s, mad_s;
	double ci95_lo_s, ci95_hi_s; /* NaN when ci95_s is null */
	bool ci95_is_range;
	double gbps;
	const char *ceiling;        /* "cold_read_gbps" or "warm_read_gbps" */
	const char *ceiling_source; /* "paired", "size-matched", "calibration" */
	double ceiling_gbps, ceiling_file_bytes, ceiling_fraction;
	double init_median_s, load_median_s, load_gbps, load_ceiling_fraction;
	double best_load_ceiling_fraction;
	/* The load above CB_CEILING_EXCEEDED of its ceiling: the ceiling is too
	 * low for the cell (false where the key is absent or null). */
	bool ceiling_exceeded;
	double peak_rss_over_model, peak_anon_over_model, peak_file_over_model;
	double peak_vram_over_model;
	const char *warning; /* "" without one */
};

/* One option of a cell, as its options object holds it. */
struct cb_results_option {
	const char *name;
	char *json; /* the value as canonical JSON (the key's spelling) */
	char *text; /* as a label shows it: a string bare, true, 16, ... */
};

struct cb_results_file;

struct cb_results_cell {
	struct cb_cell_key key;
	struct cb_results_option *options; /* sorted by name */
	size_t n_options;
	const char *format;       /* "safetensors" or "pytorch" */
	const char *dataset_path; /* "" in files without it */
	const char *status;       /* "ok", "failed" or "skipped" */
	const char *reason;       /* "" when null */
	double model_bytes;
	bool incomplete;
	struct cb_results_trial *trials; /* the measured trials, in order */
	size_t n_trials;
	size_t n_ok; /* of them, those whose outcome is "ok" */
	struct cb_results_trial *warmup;
	size_t n_warmup;
	struct cb_results_summary summary;
	const struct cb_results_file *file; /* the file it is in */
	size_t index;                       /* its place in the file's cells */
	/* The cell object as written, for a writer that copies or extends
	 * cells into a new document (ab's merge); readers use the fields. */
	const json_t *json;
};

/* ------------------------------------------------------------ the file */

/* A read ceiling at a dataset's size (calibration.by_size[]). */
struct cb_results_sized_ceiling {
	double file_bytes;
	double cold_read_gbps, warm_read_gbps;
	double cold_read_best_gbps, warm_read_best_gbps;
	const char *note;
};

/* A paired read of a dataset's own files (calibration.paired_reads[]). */
struct cb_results_paired_read {
	const char *dataset, *format, *cache;
	double file_bytes, threads;
	double read_gbps, read_best_gbps;
	const char *note;
};

/* One numeric figure of the calibration object by its key. */
struct cb_results_figure {
	const char *name;
	double value;
};

struct cb_results_calibration {
	bool present; /* false when null (--no-calibrate, ab) or absent */
	double cold_read_gbps, cold_read_direct_gbps, warm_read_gbps;
	double cold_read_best_gbps, warm_read_best_gbps;
	double cold_read_reused_gbps, warm_read_reused_gbps;
	double memcpy_gbps, memcpy_all_gbps, h2d_gbps;
	double file_bytes, memcpy_bytes;
	const char *note;
	/* Every key of the object whose value is a number, in the file's
	 * order, known to this build or not (compare warns on each). */
	struct cb_results_figure *figures;
	size_t n_figures;
	struct cb_results_sized_ceiling *by_size;
	size_t n_by_size;
	struct cb_results_paired_read *paired_reads;
	size_t n_paired_reads;
};

struct cb_results_gpu {
	const char *name;
	double memory_bytes;
};

/* The machine (an open object: its keys depend on the machine and the
 * build). The fields are the keys the readers use; `json` has all of them
 * (NULL when the file has no machine object). */
struct cb_results_machine {
	const char *hostname, *cpu_model, *arch, *os, *kernel, *thp;
	double packages, cores, pus, numa_nodes, memory_bytes;
	int hypervisor; /* 1 a VM, 0 not, -1 unknown */
	double free_page_reporting_order;
	bool has_data_dir;
	const char *data_dir_path, *data_dir_fs_type, *data_dir_device;
	int data_dir_rotational; /* 1, 0, -1 unknown */
	struct cb_results_gpu *gpus;
	size_t n_gpus;
	const json_t *json;
};

struct cb_results_config {
	double repeat, warmup; /* NaN when absent */
	const char *device;    /* NULL: not given (null) */
	const char *ceilings;  /* "paired", "sized", "one" */
	const char *order;     /* "shuffled", "fixed" */
	const char *ab_side;   /* "base" or "head" in ab's files, else "" */
};

struct cb_results_file {
	const char *path; /* as given ("" from cb_results_file_from_json without one) */
	const char *tool_version, *tool_commit, *timestamp;
	bool interrupted;
	struct cb_results_machine machine;
	struct cb_results_calibration calibration;
	struct cb_results_config config;
	struct cb_results_cell *cells;
	size_t n_cells;
	const json_t *json; /* the whole document */
};

/* Reads `path` and builds its model. Refuses (CB_EFORMAT, naming the file
 * and the cell) anything but a "ckptbench/1" document whose "cells" is an
 * array of objects, each with "loader", "dataset", "cache" and "status"
 * strings, "device" a string or null, "trials" an array and "options" an
 * object (or absent). A file it cannot read is the error cb_read_small_file
 * gives. On success *out is the caller's, for cb_results_file_free; on
 * failure *out is NULL and err says why. */
CB_NODISCARD int cb_results_file_load(const char *path, struct cb_results_file **out,
				      struct cb_error *err);

/* The same from a document already in memory (the run's own, for its
 * table): the model takes a reference of its own to `doc` (the caller
 * keeps its own) and points into it, so the caller must not change the
 * document until the model is freed. `path` names it in errors and in the
 * model; it is copied, and may be NULL. */
CB_NODISCARD int cb_results_file_from_json(json_t *doc, const char *path,
					   struct cb_results_file **out, struct cb_error *err);

/* Frees the model and everything it owns. NULL is a no-op. */
void cb_results_file_free(struct cb_results_file *f);

/* The file's first cell whose key equals `key` but for the parts in
 * `ignore` (CB_KEY_*), or NULL. The cell is the file's. */
const struct cb_results_cell *cb_results_find(const struct cb_results_file *f,
					      const struct cb_cell_key *key, unsigned ignore);

/* True when the cell has figures to show: status "ok" and a summary with a
 * median time (one ok trial at least). */
bool cb_results_cell_measured(const struct cb_results_cell *c);

/* True when two files describe the same machine (their machine objects are
 * equal as JSON; two files without one are alike). */
bool cb_results_same_machine(const struct cb_results_machine *a,
			     const struct cb_results_machine *b);

/* The name a table row, a chart's series or a comparison shows for `c`,
 * written into buf (size bytes, always terminated). It is the loader's name,
 * unless two cells of that loader among `among` (n cells, which may come
 * from several files and need not include c) differ only by their options:
 * then every cell of the loader is named with the options whose values
 * differ between its cells, as `safetensors-gpu:mode=register:threads=16`
 * (options in name order), so one setting keeps one name across datasets,
 * cache states and files. */
void cb_results_cell_label(const struct cb_results_cell *c,
			   const struct cb_results_cell *const *among, size_t n, char *buf,
			   size_t size);

#endif
