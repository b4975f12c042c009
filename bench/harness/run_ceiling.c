/* The paired read ceilings: the dataset's own files read by the
 * calibration's method between a run's trials.
 *
 * Why: a read ceiling measured on a scratch file before the run is held
 * against loads of other files, later. On a virtual disk those differ by
 * more than the margins the targets are about: on the development VM a
 * freshly written 1 GiB scratch file read cold at 5.1-5.4 GB/s while the
 * 1 GiB dataset, the same way, read at 3.6-4.1 (and a byte-for-byte copy
 * of it, written anew, at 5.2 again), and cold reads drifted between 1 and
 * 4 GB/s within minutes as the host's cache came and went. So in each
 * measured round of a (dataset, cache) block the files its cells load are
 * read the ceiling's way, in the same cache state, at a random place among
 * the round's trials (run.c), and each cell is held against the median of
 * those reads: the same bytes, at the same time, interleaved with the
 * trials exactly as the loaders are with each other.
 *
 * The reads are made here, in the harness, by the ceiling methods of
 * engine/ceiling_read.h (the read engine and cb_populate, the loaders'
 * own code): pread-1 and pread-N into a pre-faulted buffer of the files'
 * size (cb_read_buffer), willneed, uring-direct and populate in cold
 * blocks, and map (the mapping loaders' way) where a zero-copy loader
 * reads the files. Each method's passes are kept in the calibration's
 * "paired_reads" (docs/results-schema.md), and each cell is held against
 * the best median among the methods that bound it (results.c). One thread
 * and N threads stay in one_thread_gbps and all_threads_gbps, and
 * read_gbps keeps its meaning (the faster of those two). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "calibrate.h"
#include "engine/ceiling_read.h"
#include "engine/read_engine.h"
#include "run_plan.h"
#include "stats.h"

/* A pass counts only where eviction left at most this much cached, or
 * warming cached at least 1 - this (as the calibration's own reads). */
#define PAIRED_MAX_OFF_STATE 0.05

const char *cb_run_ceilings_name(enum cb_run_ceilings c)
{
	switch (c) {
	case CB_CEILINGS_PAIRED: return "paired";
	case CB_CEILINGS_SIZED: return "sized";
	case CB_CEILINGS_ONE: return "one";
	}
	return "?";
}

/* The entry for (dataset, format, cache), made on first use; borrowed from
 * the calibration. NULL on allocation failure. */
static json_t *paired_entry(struct cb_run *run, const struct cb_plan_dataset *d, const char *format,
			    bool cold, unsigned all)
{
	json_t *list = json_object_get(run->calibration, "paired_reads");
	if (!list) {
		list = json_array();
		if (!list || json_object_set_new(run->calibration, "paired_reads", list) != 0)
			return NULL;
	}
	const char *cache = cold ? "cold" : "warm";
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *e = json_array_get(list, i);
		/* --storage: the entry of the dataset on the same profile
		 * (no "storage" key without --storage). */
		const char *storage = json_string_value(json_object_get(e, "storage"));
		bool same_storage =
			d->storage_name ? storage && !strcmp(storage, d->storage_name) : !storage;
		if (strcmp(json_string_value(json_object_get(e, "dataset")), d->name) == 0 &&
		    strcmp(json_string_value(json_object_get(e, "format")), format) == 0 &&
		    strcmp(json_string_value(json_object_get(e, "cache")), cache) == 0 &&
		    same_storage)
			return e;
	}
	json_t *e = json_pack("{s:s,s:s,s:s,s:n,s:I,s:[],s:[],s:n,s:n,s:n}", "dataset", d->name,
			      "format", format, "cache", cache, "file_bytes", "threads",
			      (json_int_t)all, "one_thread_gbps", "all_threads_gbps", "read_gbps",
			      "read_best_gbps", "note");
	if (!e || json_array_append_new(list, e) != 0)
		return NULL;
	if (d->storage_name && json_object_set_new(e, "storage", json_string(d->storage_name)) != 0)
		return NULL;
	/* The ceiling methods' passes (paired_methods): each method's list of
	 * GB/s, the methods that cannot run here with why, the rounds made. */
	if (json_object_set_new(e, "methods", json_object()) != 0 ||
	    json_object_set_new(e, "methods_skipped", json_object()) != 0 ||
	    json_object_set_new(e, "rounds", json_integer(0)) != 0)
		return NULL;
	return e;
}

/* The median of a list of GB/s (nulls, the passes not counted, left out);
 * *best gets the largest. NAN for both when there is none (or no memory). */
static double list_median(const json_t *list, double *best)
{
	size_t n = 0, len = json_array_size(list);
	double *v = malloc((len ? len : 1) * sizeof *v);
	for (size_t i = 0; v && i < len; i++) {
		const json_t *x = json_array_get(list, i);
		if (json_is_number(x))
			v[n++] = json_number_value(x);
	}
	struct cb_stats st;
	cb_stats_compute(v, n, &st);
	free(v);
	*best = n ? st.max : NAN;
	return n ? st.median : NAN;
}

/* read_gbps: the faster method's median; read_best_gbps: the fastest pass. */
static void paired_update(json_t *e)
{
	double best1, bestn;
	double one = list_median(json_object_get(e, "one_thread_gbps"), &best1);
	double all = list_median(json_object_get(e, "all_threads_gbps"), &bestn);
	double med = fmax(one, all), best = fmax(best1, bestn); /* fmax ignores a NAN */
	json_object_set_new(e, "read_gbps", isfinite(med) ? json_real(med) : json_null());
	json_object_set_new(e, "read_best_gbps", isfinite(best) ? json_real(best) : json_null());
}

/* Puts the files in the cache state and checks it; false, with the
 * entry's note set, when the state could not be had. */
static bool paired_cache(const struct cb_run *run, const struct cb_plan_files *files, bool cold,
			 json_t *e, struct cb_error *err)
{
	double resident = NAN;
	int rc = cb_run_prepare_cache(run->cfg, files, cold, &resident, err);
	char note[160] = "";
	if (rc != CB_OK)
		snprintf(note, sizeof note, "a pass was not counted: %.120s", err->msg);
	else if (cold ? resident > PAIRED_MAX_OFF_STATE : resident < 1 - PAIRED_MAX_OFF_STATE)
		snprintf(note, sizeof note, "a pass was not counted: %.0f%% of the files cached",
			 resident * 100);
	if (!*note)
		return true;
	json_object_set_new(e, "note", json_string(note));
	return false;
}

/* The reads' destination: pre-faulted, the files' size (each file's place
 * O_DIRECT-aligned: cb_ceiling_buffer_len); allocated for the one read
 * alone, so the harness does not hold a model's worth of memory while the
 * trials run (a loader that doubles the model would find that much less),
 * and only in a round that reads into a buffer. */
struct paired_buffer {
	unsigned char *p; /* NULL when the memory was not there */
	size_t len;
};

/* Every method in every one of the first PAIRED_ALL_ROUNDS measured
 * rounds of a block; after them, only the map ceiling (where wanted) and
 * the read methods whose median is within PAIRED_KEEP of the best read
 * method's. Why: with six methods a round, each a full pass over the files
 * in their cache state (a cold one evicts and reads the files again), the
 * paired reads would cost more than the trials of a small matrix; three
 * rounds are enough to see which methods lead (on the development VM the
 * cold leaders were the mapping and pread-N reads, and the same ones in
 * every round), and the leaders keep being read in every round, so the
 * ceiling still follows the machine's drift as the trials do. The default
 * run (--repeat 3) reads every method in every round. */
#define PAIRED_ALL_ROUNDS 3
#define PAIRED_KEEP 0.9

/* The methods of a (cache, zero-copy) block, in their listing order:
 * O_DIRECT, fadvise and populate bring files in, so they say something
 * only cold; in a warm block the reads are pread-1 and pread-N, and a warm
 * mapping is its own figure (map). pread-N and map need more than one
 * thread to differ from pread-1 and populate. */
static size_t block_methods(bool cold, bool zero_copy, unsigned all,
			    enum cb_ceiling_method out[CB_CEIL_COUNT])
{
	size_t n = 0;
	out[n++] = CB_CEIL_PREAD_1;
	if (all > 1)
		out[n++] = CB_CEIL_PREAD_N;
	if (cold) {
		out[n++] = CB_CEIL_WILLNEED;
		out[n++] = CB_CEIL_URING_DIRECT;
		out[n++] = CB_CEIL_POPULATE;
	}
	if (zero_copy)
		out[n++] = CB_CEIL_MAP;
	return n;
}

/* The methods this round reads (see PAIRED_ALL_ROUNDS), the ones that
 * cannot run here left out. */
static size_t round_methods(json_t *e, const enum cb_ceiling_method *all_m, size_t n_all,
			    json_int_t round, enum cb_ceiling_method out[CB_CEIL_COUNT])
{
	const json_t *methods = json_object_get(e, "methods");
	const json_t *skipped = json_object_get(e, "methods_skipped");
	double med[CB_CEIL_COUNT], best_read = NAN;
	for (size_t i = 0; i < n_all; i++) {
		const char *name = cb_ceiling_method_name(all_m[i]);
		double fastest;
		med[i] = list_median(json_object_get(methods, name), &fastest);
		if (all_m[i] != CB_CEIL_MAP)
			best_read = fmax(best_read, med[i]); /* fmax ignores a NAN */
	}
	size_t n = 0;
	for (size_t i = 0; i < n_all; i++) {
		if (json_object_get(skipped, cb_ceiling_method_name(all_m[i])))
			continue;
		bool keep = round < PAIRED_ALL_ROUNDS || all_m[i] == CB_CEIL_MAP ||
			    !isfinite(best_read) ||
			    (isfinite(med[i]) && med[i] >= PAIRED_KEEP * best_read);
		if (keep)
			out[n++] = all_m[i];
	}
	return n;
}

/* Appends a pass's figure (a new reference, JSON null when it did not
 * count) to the method's list, and pread-1's and pread-N's to the lists of
 * the one- and N-thread reads too. */
static void paired_record(json_t *e, enum cb_ceiling_method m, json_t *figure)
{
	const char *name = cb_ceiling_method_name(m);
	json_t *methods = json_object_get(e, "methods");
	json_t *list = json_object_get(methods, name);
	if (!list) {
		list = json_array();
		json_object_set_new(methods, name, list);
	}
	if (m == CB_CEIL_PREAD_1 || m == CB_CEIL_PREAD_N)
		json_array_append(json_object_get(e, m == CB_CEIL_PREAD_1 ? "one_thread_gbps"
									  : "all_threads_gbps"),
				  figure);
	json_array_append_new(list, figure);
}

static int paired_format(struct cb_run *run, struct cb_plan_dataset *d, enum cb_format fmt,
			 bool cold, bool zero_copy, struct cb_error *err)
{
	const struct cb_plan_files *files = &d->files[fmt];
	const char *const *paths = (const char *const *)files->paths;
	unsigned all = cb_engine_threads(0);
	json_t *e = paired_entry(run, d, cb_format_name(fmt), cold, all);
	if (!e)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	json_object_set_new(e, "file_bytes", json_integer((json_int_t)files->bytes));
	enum cb_ceiling_method block[CB_CEIL_COUNT], methods[CB_CEIL_COUNT];
	size_t n_block = block_methods(cold, zero_copy, all, block);
	json_int_t round = json_integer_value(json_object_get(e, "rounds"));
	size_t n = round_methods(e, block, n_block, round, methods);
	struct paired_buffer buf = {NULL, 0};
	bool buffered = false;
	for (size_t i = 0; i < n; i++)
		buffered = buffered || cb_ceiling_method_buffered(methods[i]);
	size_t len = cb_ceiling_buffer_len(files->bytes, files->n);
	if (buffered && len < SIZE_MAX && (buf.p = cb_read_buffer(len)) != NULL)
		buf.len = len;
	else if (buffered)
		json_object_set_new(e, "note",
				    json_string("no memory for a buffer of the files' size; the "
						"reads into memory not measured"));
	/* The methods take turns going first: the first read after a trial
	 * can find the host's cache colder than the second does. */
	int rc = CB_OK;
	for (size_t i = 0; rc == CB_OK && i < n; i++) {
		enum cb_ceiling_method m = methods[((size_t)round + i) % n];
		if (cb_ceiling_method_buffered(m) && !buf.p)
			continue;
		struct cb_error local = CB_ERROR_INIT;
		json_t *figure = json_null();
		if (paired_cache(run, files, cold, e, &local)) {
			struct cb_ceiling_pass pass;
			rc = cb_ceiling_read(m, paths, files->n, all, buf.p, buf.len, &pass, err);
			if (rc != CB_OK)
				break; /* the files a trial is about to load cannot be read */
			/* Warm, the map ceiling is the faster of the mapping
			 * loaders' two ways (populate-read=1 and 0: on large
			 * folios touching maps cached pages faster); cold, a
			 * second pass would no longer be cold, and there the
			 * two read the disk alike. */
			struct cb_ceiling_pass touch;
			if (m == CB_CEIL_MAP && !cold && !pass.skipped) {
				rc = cb_ceiling_map_touch(paths, files->n, all, &touch, err);
				if (rc != CB_OK)
					break;
				if (touch.seconds > 0 && touch.seconds < pass.seconds)
					pass = touch;
			}
			if (pass.skipped) {
				json_object_set_new(json_object_get(e, "methods_skipped"),
						    cb_ceiling_method_name(m),
						    json_string(pass.note));
				continue;
			}
			if (pass.seconds > 0)
				figure = json_real((double)pass.bytes / pass.seconds / 1e9);
		}
		paired_record(e, m, figure);
	}
	if (buf.p)
		munmap(buf.p, buf.len);
	if (rc != CB_OK)
		return rc;
	json_object_set_new(e, "rounds", json_integer(round + 1));
	paired_update(e);
	return CB_OK;
}

bool cb_run_paired_wanted(const struct cb_run *run, size_t dataset, bool cold, enum cb_format fmt)
{
	if (run->cfg->ceilings != CB_CEILINGS_PAIRED || !json_is_object(run->calibration) ||
	    !run->plan.datasets[dataset].files[fmt].present)
		return false;
	for (size_t i = 0; i < run->plan.n_cells; i++) {
		const struct cb_plan_cell *c = &run->plan.cells[i];
		if (c->dataset_index == dataset && c->cold == cold && !c->skipped &&
		    c->loader->format == fmt)
			return true;
	}
	return false;
}

int cb_run_paired_read(struct cb_run *run, size_t dataset, bool cold, enum cb_format fmt,
		       struct cb_error *err)
{
	/* The map ceiling is read where a zero-copy loader (its tensors views
	 * of the mapped files) loads these files in this block. */
	bool zero_copy = false;
	for (size_t i = 0; i < run->plan.n_cells; i++) {
		const struct cb_plan_cell *c = &run->plan.cells[i];
		zero_copy = zero_copy ||
			    (c->dataset_index == dataset && c->cold == cold && !c->skipped &&
			     c->loader->format == fmt && (c->loader->caps & CB_CAP_ZERO_COPY));
	}
	return paired_format(run, &run->plan.datasets[dataset], fmt, cold, zero_copy, err);
}
