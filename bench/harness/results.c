/* The results file and its CSV mirror (see results.h). */
#include "cb_commit.h"
#include "results.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cb_config.h"
#include "dist.h"
#include "docjson.h"
#include "engine/ceiling_read.h"
#include "fileio.h"
#include "loader.h"
#include "stats.h"

#define MAX_TRIALS 4096

static char *csv_name(const char *path)
{
	size_t len = strlen(path);
	char *out = malloc(len + 5);
	if (!out)
		return NULL;
	memcpy(out, path, len + 1);
	if (len > 5 && strcmp(path + len - 5, ".json") == 0)
		out[len - 5] = '\0';
	strcat(out, ".csv");
	return out;
}

static int make_parent(const char *path, struct cb_error *err)
{
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return CB_OK;
	char dir[1024];
	if ((size_t)(slash - path) >= sizeof dir)
		return CB_FAIL(err, CB_ELIMIT, path, NULL, "path too long");
	snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	return cb_mkdir_p(dir, err);
}

int cb_results_open(struct cb_results *r, const char *path, bool force, struct cb_error *err)
{
	memset(r, 0, sizeof *r);
	struct stat st;
	if (!force && stat(path, &st) == 0)
		return CB_FAIL(err, CB_EUSAGE, path, NULL,
			       "results file exists; pick another -o or add --force");
	int rc = make_parent(path, err);
	if (rc != CB_OK)
		return rc;
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
	r->path = strdup(path);
	r->csv_path = csv_name(path);
	r->root = json_pack("{s:s,s:{s:s,s:s},s:s}", "schema", CB_RESULTS_SCHEMA, "tool", "version",
			    CB_VERSION, "commit", CB_COMMIT, "timestamp", stamp);
	r->cells = json_array();
	if (!r->path || !r->csv_path || !r->root || !r->cells) {
		cb_results_free(r);
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	}
	json_object_set(r->root, "cells", r->cells);
	json_decref(r->cells); /* the root holds it now; r->cells is borrowed */
	return CB_OK;
}

void cb_results_set(struct cb_results *r, const char *key, json_t *value)
{
	/* "cells" stays last in the file: re-add it after the new key. */
	json_incref(r->cells);
	json_object_del(r->root, "cells");
	json_object_set_new(r->root, key, value ? value : json_null());
	json_object_set_new(r->root, "cells", r->cells);
}

json_t *cb_results_add_cell(struct cb_results *r)
{
	json_t *cell = json_object();
	if (!cell || json_array_append_new(r->cells, cell) != 0)
		return NULL;
	return cell;
}

/* ------------------------------------------------------------- summary */

static json_t *real_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

/* (peak - baseline) / model for each ok trial, then the median. */
static double ratio_median(json_t *const *trials, size_t n, const char *peak, const char *base,
			   double model)
{
	double v[MAX_TRIALS];
	for (size_t i = 0; i < n; i++)
		v[i] = (cb_json_num(trials[i], peak) - cb_json_num(trials[i], base)) / model;
	return model > 0 ? cb_stats_median_finite(v, n) : NAN;
}

static void summary_ratios(json_t *s, json_t *const *ok, size_t n, double model)
{
	json_object_set_new(
		s, "peak_rss_over_model",
		real_or_null(ratio_median(ok, n, "peak_rss_bytes", "baseline_rss_bytes", model)));
	json_object_set_new(
		s, "peak_anon_over_model",
		real_or_null(ratio_median(ok, n, "peak_anon_bytes", "baseline_anon_bytes", model)));
	json_object_set_new(
		s, "peak_file_over_model",
		real_or_null(ratio_median(ok, n, "peak_file_bytes", "baseline_file_bytes", model)));
	json_object_set_new(
		s, "peak_vram_over_model",
		real_or_null(ratio_median(ok, n, "peak_vram_bytes", "baseline_vram_bytes", model)));
}

/* The checkpoint's load without the model's construction: each ok trial's
 * wall time less its init phase (the empty model, which every loader that
 * has one pays before it touches the file), then the median. The ceilings
 * are what reading the file can reach, so this is the figure they are held
 * against; the whole wall time is compared too, in ceiling_fraction. */
static void summary_load(json_t *s, json_t *const *ok, size_t n, double model, double cap,
			 double best_cap)
{
	double init[MAX_TRIALS], load[MAX_TRIALS];
	for (size_t i = 0; i < n; i++) {
		double wall = cb_json_num(ok[i], "wall_s");
		double in = cb_json_num(json_object_get(ok[i], "phases"), "init");
		init[i] = isfinite(in) ? in : 0;
		load[i] = wall - init[i] > 0 ? wall - init[i] : NAN;
	}
	double load_best = INFINITY;
	for (size_t i = 0; i < n; i++)
		load_best = isfinite(load[i]) && load[i] < load_best ? load[i] : load_best;
	double init_median = cb_stats_median_finite(init, n),
	       load_median = cb_stats_median_finite(load, n);
	double gbps = model > 0 && load_median > 0 ? model / load_median / 1e9 : NAN;
	json_object_set_new(s, "init_median_s", real_or_null(n ? init_median : NAN));
	json_object_set_new(s, "load_median_s", real_or_null(load_median));
	json_object_set_new(s, "load_gbps", real_or_null(gbps));
	double frac = cap > 0 ? gbps / cap : NAN;
	json_object_set_new(s, "load_ceiling_fraction", real_or_null(frac));
	json_object_set_new(s, "ceiling_exceeded",
			    isfinite(frac) ? json_boolean(frac > CB_CEILING_EXCEEDED)
					   : json_null());
	/* The fastest load against the fastest pass of the same ceiling: what
	 * each can do when the machine lets it, for a machine whose noise is
	 * slow stretches that a handful of trials cannot outvote. */
	double best_gbps =
		model > 0 && isfinite(load_best) && load_best > 0 ? model / load_best / 1e9 : NAN;
	json_object_set_new(s, "best_load_ceiling_fraction",
			    real_or_null(best_cap > 0 ? best_gbps / best_cap : NAN));
}

/* The ceiling's method and every bounding method's median (paired
 * ceilings; null otherwise), and, for a cell above its ceiling, which of
 * its figures beat which (steals `medians`). */
static void summary_method(json_t *s, const char *method, json_t *medians, double cap)
{
	json_object_set_new(s, "ceiling_method", method ? json_string(method) : json_null());
	json_object_set_new(s, "ceiling_methods_gbps",
			    json_object_size(medians) ? medians : json_null());
	if (!json_object_size(medians))
		json_decref(medians);
	if (!json_is_true(json_object_get(s, "ceiling_exceeded")))
		return;
	json_object_set_new(s, "ceiling_beaten_by",
			    json_pack("{s:s,s:o,s:o,s:o}", "figure", "load_gbps", "gbps",
				      json_deep_copy(json_object_get(s, "load_gbps")), "method",
				      method ? json_string(method) : json_null(), "ceiling_gbps",
				      real_or_null(cap)));
}

/* Major faults per MiB of the model: each ok trial's major_faults (the
 * child's, wait4) over the model's MiB, then the median. A load that reads
 * its bytes by faulting them in from storage shows here. */
static void summary_faults(json_t *s, json_t *const *ok, size_t n, double model)
{
	double v[MAX_TRIALS];
	for (size_t i = 0; i < n; i++)
		v[i] = cb_json_num(ok[i], "major_faults") / (model / (1 << 20));
	json_object_set_new(s, "major_faults_per_mib",
			    real_or_null(model > 0 ? cb_stats_median_finite(v, n) : NAN));
}

static void summary_outliers(json_t *s, const double *t, size_t n)
{
	bool flags[MAX_TRIALS];
	cb_stats_outliers(t, n, flags);
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++)
		if (flags[i])
			json_array_append_new(list, json_integer((json_int_t)i));
	json_object_set_new(s, "outliers", list);
	if (n > 2 && flags[0])
		json_object_set_new(s, "warning",
				    json_string("the first trial is an outlier: caches or lazy "
						"setup may not have been ready until after it; "
						"consider more --warmup"));
}

/* The methods a cell may be held against (engine/ceiling_read.h): the
 * ways of reading the files into memory, and for a zero-copy loader (its
 * tensors views of the mapped files: loader caps CB_CAP_ZERO_COPY) the map
 * ceiling too. Warm, a zero-copy cell is held against the map ceiling
 * alone: mapping cached pages is not reading them, so a warm read bounds
 * nothing there. A cell of a loader this build does not know is taken as
 * a reader. */
static bool method_bounds(enum cb_ceiling_method m, bool zero_copy, bool warm)
{
	if (m == CB_CEIL_MAP)
		return zero_copy;
	return !(zero_copy && warm);
}

/* The best method among those that bound the cell, from a paired entry's
 * "methods": its name, its median (returned), the fastest pass of it in
 * *best; every candidate's median goes into `medians` (name -> GB/s). NAN
 * when the entry has none (a file written before the methods). */
static double method_ceiling(const json_t *e, bool zero_copy, bool warm, const char **method,
			     double *best, json_t *medians)
{
	const json_t *methods = json_object_get(e, "methods");
	double cap = NAN;
	for (int pass = 0; pass < 2 && !isfinite(cap); pass++) {
		for (int m = 0; m < CB_CEIL_COUNT; m++) {
			const char *name = cb_ceiling_method_name((enum cb_ceiling_method)m);
			const json_t *list = json_object_get(methods, name);
			/* Second pass, only where none bounds the cell (a warm
			 * zero-copy cell with no map ceiling): the reads. */
			bool ok = pass == 0 ? method_bounds((enum cb_ceiling_method)m, zero_copy,
							    warm)
					    : m != CB_CEIL_MAP;
			if (!ok || !json_is_array(list))
				continue;
			double v[MAX_TRIALS], fastest = NAN;
			size_t k = 0;
			for (size_t i = 0; i < json_array_size(list) && k < MAX_TRIALS; i++) {
				double x = cb_json_at(list, i);
				if (isfinite(x)) {
					v[k++] = x;
					fastest = fmax(fastest, x);
				}
			}
			double med = cb_stats_median_finite(v, k);
			if (!isfinite(med))
				continue;
			json_object_set_new(medians, name, json_real(med));
			if (!(med <= cap)) { /* the larger, or the first */
				cap = med;
				*method = name;
				*best = fastest;
			}
		}
	}
	return cap;
}

/* The paired read ceiling of the cell's own files in its cache state
 * ("paired_reads", run_ceiling.c); NAN where none was measured. *method is
 * the best bounding method's name (NULL in a file without the methods,
 * where the ceiling is read_gbps). */
static double paired_ceiling(const json_t *calibration, const json_t *cell, double *file_bytes,
			     double *best, const char **method, json_t *medians)
{
	const char *dataset = json_string_value(json_object_get(cell, "dataset"));
	const char *format = json_string_value(json_object_get(cell, "format"));
	const char *cache = json_string_value(json_object_get(cell, "cache"));
	const char *loader = json_string_value(json_object_get(cell, "loader"));
	const struct cb_loader *l = loader ? cb_loader_find(loader) : NULL;
	bool zero_copy = l && (l->caps & CB_CAP_ZERO_COPY);
	bool warm = cache && strcmp(cache, "warm") == 0;
	const json_t *list = json_object_get(calibration, "paired_reads");
	for (size_t i = 0; dataset && format && cache && i < json_array_size(list); i++) {
		const json_t *e = json_array_get(list, i);
		const char *d = json_string_value(json_object_get(e, "dataset"));
		const char *f = json_string_value(json_object_get(e, "format"));
		const char *c = json_string_value(json_object_get(e, "cache"));
		if (d && f && c && !strcmp(d, dataset) && !strcmp(f, format) && !strcmp(c, cache)) {
			*file_bytes = cb_json_num(e, "file_bytes");
			double cap = method_ceiling(e, zero_copy, warm, method, best, medians);
			if (isfinite(cap))
				return cap;
			*method = NULL;
			*best = cb_json_num(e, "read_best_gbps");
			return cb_json_num(e, "read_gbps");
		}
	}
	return NAN;
}

/* The read ceiling `key` for the cell, whose model is `model` bytes: the
 * paired one of its own files where measured, else the size-matched one
 * ("by_size", calibrate.h) whose file is nearest the model's size (by
 * ratio), else the calibration's own. *file_bytes is the size read,
 * *source says which ("paired", "size-matched", "calibration"), and *best
 * is the fastest pass of that same read (`best_key` of the calibration's
 * own and size-matched ones). */
static double ceiling_for(const json_t *calibration, const json_t *cell, const char *key,
			  const char *best_key, double model, double *file_bytes,
			  const char **source, double *best, const char **method, json_t *medians)
{
	*file_bytes = NAN;
	*source = NULL;
	*best = NAN;
	*method = NULL;
	if (!calibration || !json_is_object(calibration))
		return NAN;
	double paired = paired_ceiling(calibration, cell, file_bytes, best, method, medians);
	if (isfinite(paired) && paired > 0) {
		*source = "paired";
		return paired;
	}
	*method = NULL;
	json_object_clear(medians);
	*source = "calibration";
	*best = cb_json_num(calibration, best_key);
	double cap = cb_json_num(calibration, key);
	double bytes = cb_json_num(calibration, "file_bytes");
	*file_bytes = bytes;
	if (!(model > 0))
		return cap;
	double nearest = isfinite(bytes) && bytes > 0 ? fabs(log(bytes / model)) : INFINITY;
	const json_t *by_size = json_object_get(calibration, "by_size");
	for (size_t i = 0; i < json_array_size(by_size); i++) {
		const json_t *e = json_array_get(by_size, i);
		double b = cb_json_num(e, "file_bytes"), v = cb_json_num(e, key);
		if (b > 0 && isfinite(v) && fabs(log(b / model)) < nearest) {
			nearest = fabs(log(b / model));
			cap = v;
			*file_bytes = b;
			*source = "size-matched";
			*best = cb_json_num(e, best_key);
		}
	}
	return cap;
}

/* The median over the ok trials of a trial figure (NAN where none has it). */
static double trial_median(json_t *const *ok, size_t n, const char *key)
{
	double v[MAX_TRIALS];
	for (size_t i = 0; i < n; i++)
		v[i] = cb_json_num(ok[i], key);
	return cb_stats_median_finite(v, n);
}

/* What a partial load cost (docs/partial-loads.md), for a cell with a part:
 * the bytes asked for (the part), the bytes read from storage (the trial's
 * /proc/PID/io read_bytes, and the page cache's growth around it as the
 * parent saw it), their ratio, the read amplification, the peak against
 * the part's size, and the file-backed memory the load mapped in (its peak
 * RssFile over the baseline: the pages a mapping loader touched). */
static void summary_partial(json_t *s, json_t *const *ok, size_t n, const json_t *cell)
{
	double asked = cb_json_num(cell, "asked_bytes");
	if (!isfinite(asked))
		return;
	double read = trial_median(ok, n, "read_bytes");
	double grown = trial_median(ok, n, "cache_growth_bytes");
	double v[MAX_TRIALS];
	for (size_t i = 0; i < n; i++)
		v[i] = cb_json_num(ok[i], "peak_file_bytes") -
		       cb_json_num(ok[i], "baseline_file_bytes");
	double resident = cb_stats_median_finite(v, n);
	json_object_set_new(s, "asked_bytes", json_integer((json_int_t)asked));
	json_object_set_new(s, "read_bytes",
			    isfinite(read) ? json_integer((json_int_t)read) : json_null());
	json_object_set_new(s, "cache_growth_bytes",
			    isfinite(grown) ? json_integer((json_int_t)grown) : json_null());
	json_object_set_new(s, "read_amplification", real_or_null(asked > 0 ? read / asked : NAN));
	double pages = cb_json_num(cell, "asked_page_bytes");
	json_object_set_new(s, "read_over_pages", real_or_null(pages > 0 ? read / pages : NAN));
	json_object_set_new(s, "file_resident_bytes",
			    isfinite(resident) ? json_integer((json_int_t)resident) : json_null());
	json_object_set_new(
		s, "peak_rss_over_asked",
		real_or_null(ratio_median(ok, n, "peak_rss_bytes", "baseline_rss_bytes", asked)));
}

void cb_results_summarize(json_t *cell, const json_t *calibration)
{
	json_t *trials = json_object_get(cell, "trials");
	json_t *ok[MAX_TRIALS];
	double t[MAX_TRIALS];
	size_t n = 0;
	for (size_t i = 0; i < json_array_size(trials) && n < MAX_TRIALS; i++) {
		json_t *tr = json_array_get(trials, i);
		const char *outcome = json_string_value(json_object_get(tr, "outcome"));
		if (outcome && strcmp(outcome, "ok") == 0 && isfinite(cb_json_num(tr, "wall_s"))) {
			ok[n] = tr;
			t[n++] = cb_json_num(tr, "wall_s");
		}
	}
	struct cb_stats st;
	cb_stats_compute(t, n, &st);
	double model = cb_json_num(cell, "model_bytes");
	/* The bytes a load brings, for its GB/s: the model's, or a partial
	 * load's part (the memory ratios stay over the whole model). */
	double loaded = isfinite(cb_json_num(cell, "asked_bytes"))
				? cb_json_num(cell, "asked_bytes")
				: model;
	const char *cache = json_string_value(json_object_get(cell, "cache"));
	bool warm = cache && strcmp(cache, "warm") == 0;
	const char *ceiling = warm ? "warm_read_gbps" : "cold_read_gbps";
	const char *best_key = warm ? "warm_read_best_gbps" : "cold_read_best_gbps";
	double gbps = n && st.median > 0 ? loaded / st.median / 1e9 : NAN;
	double ceiling_bytes = NAN;
	const char *source, *method;
	double best_cap;
	json_t *medians = json_object();
	double cap = ceiling_for(calibration, cell, ceiling, best_key, model, &ceiling_bytes,
				 &source, &best_cap, &method, medians);
	json_t *s = json_pack("{s:I}", "n", (json_int_t)n);
	json_object_set_new(s, "median_s", real_or_null(st.median));
	json_object_set_new(s, "min_s", real_or_null(st.min));
	json_object_set_new(s, "max_s", real_or_null(st.max));
	json_object_set_new(s, "mean_s", real_or_null(st.mean));
	json_object_set_new(s, "stddev_s", real_or_null(st.stddev));
	json_object_set_new(s, "mad_s", real_or_null(st.mad));
	json_object_set_new(
		s, "ci95_s",
		n ? json_pack("[o,o]", real_or_null(st.ci95_lo), real_or_null(st.ci95_hi))
		  : json_null());
	json_object_set_new(s, "ci95_is_range", json_boolean(n < CB_STATS_MIN_CI_N));
	json_object_set_new(s, "gbps", real_or_null(gbps));
	json_object_set_new(s, "ceiling", json_string(ceiling));
	json_object_set_new(s, "ceiling_source", source ? json_string(source) : json_null());
	json_object_set_new(s, "ceiling_gbps", real_or_null(cap));
	json_object_set_new(s, "ceiling_file_bytes",
			    isfinite(ceiling_bytes) ? json_integer((json_int_t)ceiling_bytes)
						    : json_null());
	json_object_set_new(s, "ceiling_fraction", real_or_null(cap > 0 ? gbps / cap : NAN));
	summary_load(s, ok, n, loaded, cap, best_cap);
	summary_method(s, method, medians, cap);
	summary_faults(s, ok, n, model);
	summary_ratios(s, ok, n, model);
	summary_outliers(s, t, n);
	summary_partial(s, ok, n, cell);
	/* --mpi: the rank figures (dist_record.c), only in cells that have
	 * "ranks" */
	if (json_is_object(json_object_get(cell, "ranks")))
		cb_dist_summarize(cell, s);
	json_object_set_new(cell, "summary", s);
}

/* ----------------------------------------------------------------- CSV */

static const char *const csv_cols[] = {
	"outcome",
	"wall_s",
	"phases.init",
	"phases.read",
	"phases.copy",
	"phases.to_device",
	"baseline_rss_bytes",
	"peak_rss_bytes",
	"peak_anon_bytes",
	"peak_file_bytes",
	"peak_vram_bytes",
	"major_faults",
	"minor_faults",
	"read_bytes",
	"user_s",
	"sys_s",
	"residency_before",
	"verified",
	"message",
};

/* A value as one CSV field: quoted when needed, empty for null. */
static void csv_field(FILE *f, const json_t *v)
{
	if (json_is_string(v)) {
		fputc('"', f);
		for (const char *p = json_string_value(v); *p; p++) {
			if (*p == '"')
				fputc('"', f);
			fputc(*p == '\n' || *p == '\r' ? ' ' : *p, f);
		}
		fputc('"', f);
	} else if (json_is_integer(v)) {
		fprintf(f, "%lld", (long long)json_integer_value(v));
	} else if (json_is_real(v)) {
		fprintf(f, "%.9g", json_real_value(v));
	} else if (json_is_boolean(v)) {
		fputs(json_is_true(v) ? "true" : "false", f);
	}
}

static const json_t *lookup(const json_t *o, const char *key)
{
	const char *dot = strchr(key, '.');
	if (!dot)
		return json_object_get(o, key);
	char head[64];
	snprintf(head, sizeof head, "%.*s", (int)(dot - key), key);
	return json_object_get(json_object_get(o, head), dot + 1);
}

static void csv_rows(FILE *f, const json_t *cell, const char *list, bool warmup)
{
	const json_t *trials = json_object_get(cell, list);
	char *opts = json_dumps(json_object_get(cell, "options"), JSON_COMPACT | JSON_SORT_KEYS);
	for (size_t i = 0; i < json_array_size(trials); i++) {
		const json_t *tr = json_array_get(trials, i);
		static const char *const cell_keys[] = {"loader", "dataset", "format", "cache",
							"device"};
		for (size_t k = 0; k < 5; k++) {
			csv_field(f, json_object_get(cell, cell_keys[k]));
			fputc(',', f);
		}
		json_t *o = json_string(opts ? opts : "");
		csv_field(f, o);
		json_decref(o);
		fprintf(f, ",%zu,%s", i, warmup ? "true" : "false");
		for (size_t k = 0; k < sizeof csv_cols / sizeof csv_cols[0]; k++) {
			fputc(',', f);
			csv_field(f, lookup(tr, csv_cols[k]));
		}
		fputc('\n', f);
	}
	free(opts);
}

static int write_csv(const struct cb_results *r, struct cb_error *err)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return CB_FAIL(err, CB_ENOMEM, r->csv_path, NULL, "out of memory");
	fputs("loader,dataset,format,cache,device,options,trial,warmup", f);
	for (size_t k = 0; k < sizeof csv_cols / sizeof csv_cols[0]; k++)
		fprintf(f, ",%s", csv_cols[k]);
	fputc('\n', f);
	for (size_t i = 0; i < json_array_size(r->cells); i++) {
		csv_rows(f, json_array_get(r->cells, i), "warmup", true);
		csv_rows(f, json_array_get(r->cells, i), "trials", false);
	}
	if (fclose(f) != 0) {
		free(buf);
		return CB_FAIL(err, CB_ENOMEM, r->csv_path, NULL, "out of memory");
	}
	int rc = cb_write_small_file(r->csv_path, buf, len, err);
	free(buf);
	return rc;
}

int cb_results_write(struct cb_results *r, struct cb_error *err)
{
	char *text = json_dumps(r->root, JSON_INDENT(1) | JSON_REAL_PRECISION(9));
	if (!text)
		return CB_FAIL(err, CB_ENOMEM, r->path, NULL, "cannot serialise the results");
	size_t len = strlen(text);
	text[len] = '\n'; /* replaces the NUL; the length is known */
	int rc = cb_write_small_file(r->path, text, len + 1, err);
	free(text);
	return rc == CB_OK ? write_csv(r, err) : rc;
}

void cb_results_free(struct cb_results *r)
{
	free(r->path);
	free(r->csv_path);
	json_decref(r->root);
	memset(r, 0, sizeof *r);
}
