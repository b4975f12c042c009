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
 * The reads are made here, in the harness, into a pre-faulted buffer of
 * the files' size (cb_read_buffer), by one thread and by one per CPU
 * (cb_engine_threads(0)), with the loaders' read engine; as in the
 * calibration, the faster method's median is the ceiling. They are
 * kept in the calibration's "paired_reads" (docs/results-schema.md). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "calibrate.h"
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
		if (strcmp(json_string_value(json_object_get(e, "dataset")), d->name) == 0 &&
		    strcmp(json_string_value(json_object_get(e, "format")), format) == 0 &&
		    strcmp(json_string_value(json_object_get(e, "cache")), cache) == 0)
			return e;
	}
	json_t *e = json_pack("{s:s,s:s,s:s,s:n,s:I,s:[],s:[],s:n,s:n,s:n}", "dataset", d->name,
			      "format", format, "cache", cache, "file_bytes", "threads",
			      (json_int_t)all, "one_thread_gbps", "all_threads_gbps", "read_gbps",
			      "read_best_gbps", "note");
	if (!e || json_array_append_new(list, e) != 0)
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

/* The reads' destination: pre-faulted, the files' size; allocated for the
 * one read alone, so the harness does not hold a model's worth of memory
 * while the trials run (a loader that doubles the model would find that
 * much less). */
struct paired_buffer {
	unsigned char *p; /* NULL when the memory was not there */
	size_t len;
};

static int paired_format(struct cb_run *run, struct cb_plan_dataset *d, enum cb_format fmt,
			 bool cold, const struct paired_buffer *buf, struct cb_error *err)
{
	const struct cb_plan_files *files = &d->files[fmt];
	unsigned all = cb_engine_threads(0);
	json_t *e = paired_entry(run, d, cb_format_name(fmt), cold, all);
	if (!e)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	json_object_set_new(e, "file_bytes", json_integer((json_int_t)files->bytes));
	if (!buf->p) {
		json_object_set_new(e, "note",
				    json_string("no memory for a buffer of the files' "
						"size; not measured"));
		return CB_OK;
	}
	static const char *const lists[2] = {"one_thread_gbps", "all_threads_gbps"};
	/* The methods take turns going first: the first read after a trial
	 * can find the host's cache colder than the second does. */
	unsigned methods = all > 1 ? 2u : 1u;
	unsigned first = (unsigned)(json_array_size(json_object_get(e, lists[0])) % methods);
	for (unsigned i = 0; i < methods; i++) {
		unsigned m = (first + i) % methods;
		struct cb_error local = CB_ERROR_INIT;
		json_t *figure = json_null();
		if (paired_cache(run, files, cold, e, &local)) {
			uint64_t bytes;
			double seconds;
			int rc =
				cb_read_files((const char *const *)files->paths, files->n,
					      m ? all : 1, buf->p, buf->len, &bytes, &seconds, err);
			if (rc != CB_OK)
				return rc; /* the files a trial is about to load cannot be read */
			if (seconds > 0)
				figure = json_real((double)bytes / seconds / 1e9);
		}
		json_array_append_new(json_object_get(e, lists[m]), figure);
	}
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
	struct cb_plan_dataset *d = &run->plan.datasets[dataset];
	uint64_t bytes = d->files[fmt].bytes;
	struct paired_buffer buf = {NULL, 0};
	if (bytes <= SIZE_MAX && (buf.p = cb_read_buffer((size_t)bytes)) != NULL)
		buf.len = (size_t)bytes;
	int rc = paired_format(run, d, fmt, cold, &buf, err);
	if (buf.p)
		munmap(buf.p, buf.len);
	return rc;
}
