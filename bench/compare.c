/* The comparison engine: two results files in, one ckptbench-compare/1
 * document out (see compare.h for its shape and the verdict rules). */
#include "compare.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "results_load.h"
#include "stats.h"
#include "verdict.h"

/* Calibration figures further apart than this are worth a warning. */
#define CALIBRATION_TOLERANCE 0.20

/* The machine description keys that say "the same machine". */
static const char *const machine_keys[] = {"hostname",     "cpu_model", "arch",      "pus",
					   "memory_bytes", "kernel",    "numa_nodes"};

static const char *const cell_keys[] = {"loader", "dataset", "cache", "device"};

void cb_compare_default_opts(struct cb_compare_opts *o)
{
	o->alpha = CB_VERDICT_ALPHA;
	o->threshold = CB_VERDICT_THRESHOLD;
	o->metric = "wall";
}

int cb_compare_metric_known(const char *metric)
{
	return strcmp(metric, "wall") == 0 || strcmp(metric, "instructions") == 0 ||
	       strcmp(metric, "user+sys") == 0;
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static double num(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

static json_t *real_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static void warn(json_t *warnings, const char *fmt, ...) CB_PRINTF(2, 3);
static void warn(json_t *warnings, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	json_array_append_new(warnings, json_string(buf));
}

/* ------------------------------------------------------------ cells */

static int same_cell(const json_t *a, const json_t *b)
{
	for (size_t k = 0; k < sizeof cell_keys / sizeof cell_keys[0]; k++)
		if (strcmp(str(a, cell_keys[k]), str(b, cell_keys[k])) != 0)
			return 0;
	return 1;
}

/* The first cell of `cells` with the same key as `cell`, or NULL. */
static json_t *find_cell(const json_t *cells, const json_t *cell)
{
	for (size_t i = 0; i < json_array_size(cells); i++)
		if (same_cell(json_array_get(cells, i), cell))
			return json_array_get(cells, i);
	return NULL;
}

/* A new object holding the cell's key fields. */
static json_t *cell_key(const json_t *cell)
{
	json_t *o = json_object();
	for (size_t k = 0; k < sizeof cell_keys / sizeof cell_keys[0]; k++)
		json_object_set_new(o, cell_keys[k], json_string(str(cell, cell_keys[k])));
	return o;
}

static int trial_ok(const json_t *t)
{
	return strcmp(str(t, "outcome"), "ok") == 0;
}

/* The metric of one trial; NaN when the trial does not record it. */
static double metric_value(const json_t *t, const char *metric)
{
	if (strcmp(metric, "instructions") == 0)
		return num(t, "instructions");
	if (strcmp(metric, "user+sys") == 0)
		return num(t, "user_s") + num(t, "sys_s");
	return num(t, "wall_s");
}

/* A cell's ok trials' values of `key_or_metric` into a new array (caller
 * frees); *n_out values, *ok_out ok trials. `metric` selects metric_value,
 * else `key` is read as is (memory figures). */
static double *cell_values(const json_t *cell, const char *metric, const char *key, size_t *n_out,
			   size_t *ok_out)
{
	const json_t *trials = json_object_get(cell, "trials");
	double *v = malloc((json_array_size(trials) + 1) * sizeof *v);
	*n_out = *ok_out = 0;
	if (!v)
		return NULL;
	size_t i;
	const json_t *t;
	json_array_foreach(trials, i, t)
	{
		if (!trial_ok(t))
			continue;
		++*ok_out;
		double x = metric ? metric_value(t, metric) : num(t, key);
		if (isfinite(x))
			v[(*n_out)++] = x;
	}
	return v;
}

static json_t *side_json(const double *v, size_t n, size_t trials)
{
	json_t *o = json_object();
	struct cb_stats st;
	cb_stats_compute(v, n, &st);
	json_object_set_new(o, "median", real_or_null(st.median));
	json_object_set_new(o, "ci95", n ? json_pack("[ff]", st.ci95_lo, st.ci95_hi) : json_null());
	json_object_set_new(o, "n", json_integer((json_int_t)n));
	json_object_set_new(o, "trials", json_integer((json_int_t)trials));
	return o;
}

/* The median of a memory figure over ok trials; NaN when none has it. */
static double memory_median(const json_t *cell, const char *key)
{
	size_t n, ok;
	double *v = cell_values(cell, NULL, key, &n, &ok);
	if (!v) /* no memory: the figure is left out, as when not recorded */
		return NAN;
	struct cb_stats st;
	cb_stats_compute(v, n, &st);
	free(v);
	return st.median;
}

/* Adds memory.KEY when both sides have the figure; returns 1 on a memory
 * regression. */
static int memory_figure(json_t *memory, const char *key, const json_t *base, const json_t *head)
{
	double b = memory_median(base, key), h = memory_median(head, key);
	if (!isfinite(b) || !isfinite(h))
		return 0;
	enum cb_verdict v = cb_verdict_memory(b, h);
	json_object_set_new(memory, key,
			    json_pack("{s:I, s:I, s:I, s:s}", "base", (json_int_t)llround(b),
				      "head", (json_int_t)llround(h), "change_bytes",
				      (json_int_t)llround(h - b), "verdict", cb_verdict_name(v)));
	return v == CB_VERDICT_REGRESSION;
}

/* Why a cell has no time verdict, or NULL when it can have one. */
static const char *not_compared_reason(const json_t *base, const json_t *head, size_t base_ok,
				       size_t head_ok, char *buf, size_t size)
{
	if (strcmp(str(base, "status"), "skipped") == 0 ||
	    strcmp(str(head, "status"), "skipped") == 0) {
		const json_t *s = strcmp(str(base, "status"), "skipped") == 0 ? base : head;
		snprintf(buf, size, "skipped in %s: %s", s == base ? "base" : "head",
			 str(s, "reason"));
		return buf;
	}
	if (base_ok == 0) {
		snprintf(buf, size, "base has no successful trial");
		return buf;
	}
	(void)head_ok;
	return NULL;
}

struct tally {
	int regressions, improvements, unchanged, too_few, not_compared, memory_regressions;
};

/* Fills the time part of out: U test, ratio and verdict. */
static int time_verdict(json_t *out, const double *bv, size_t bn, const double *hv, size_t hn,
			const struct cb_compare_opts *o, enum cb_verdict *verdict,
			struct cb_error *err)
{
	struct cb_time_verdict tv;
	int rc = cb_verdict_time(bv, bn, hv, hn, o->alpha, o->threshold, &tv, err);
	if (rc != CB_OK)
		return rc;
	*verdict = tv.verdict;
	int have = bn > 0 && hn > 0;
	json_object_set_new(out, "ratio", real_or_null(tv.ratio.ratio));
	json_object_set_new(out, "ratio_ci95",
			    have && isfinite(tv.ratio.lo)
				    ? json_pack("[ff]", tv.ratio.lo, tv.ratio.hi)
				    : json_null());
	json_object_set_new(out, "ratio_of_medians", real_or_null(tv.ratio.of_medians));
	json_object_set_new(out, "u", have ? json_real(tv.mw.u1) : json_null());
	json_object_set_new(out, "p", real_or_null(tv.mw.p));
	json_object_set_new(out, "exact", json_boolean(have && tv.mw.exact));
	return CB_OK;
}

/* The note for a cell with too few values on a side. */
static void too_few_note(char *buf, size_t size, size_t bn, size_t hn, const char *metric)
{
	if (bn == 0 || hn == 0)
		snprintf(buf, size, "no %s values in %s", metric, bn == 0 ? "base" : "head");
	else
		snprintf(buf, size, "%zu base and %zu head values; the test needs %d a side", bn,
			 hn, CB_VERDICT_MIN_TRIALS);
}

/* One matched pair of cells as a compare cell; counts into *t. */
static int compare_cell(const json_t *base, const json_t *head, const struct cb_compare_opts *o,
			json_t **out_cell, struct tally *t, struct cb_error *err)
{
	size_t bn, bok, hn, hok;
	double *bv = cell_values(base, o->metric, NULL, &bn, &bok);
	double *hv = cell_values(head, o->metric, NULL, &hn, &hok);
	json_t *c = cell_key(base);
	*out_cell = c;
	if (!bv || !hv) {
		free(bv);
		free(hv);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory for a cell's trials");
	}
	json_object_set_new(c, "base",
			    side_json(bv, bn, json_array_size(json_object_get(base, "trials"))));
	json_object_set_new(c, "head",
			    side_json(hv, hn, json_array_size(json_object_get(head, "trials"))));
	enum cb_verdict tv = CB_VERDICT_TOO_FEW;
	int rc = time_verdict(c, bv, bn, hv, hn, o, &tv, err);
	free(bv);
	free(hv);
	if (rc != CB_OK)
		return rc;
	char note[512] = "";
	const char *verdict = cb_verdict_name(tv);
	const char *why = not_compared_reason(base, head, bok, hok, note, sizeof note);
	int regression = 0;
	if (why) {
		verdict = "not-compared";
		t->not_compared++;
	} else if (hok == 0) {
		verdict = "failed";
		snprintf(note, sizeof note, "no successful trial in head (base: %zu)", bok);
		regression = 1;
		t->regressions++;
	} else if (tv == CB_VERDICT_TOO_FEW) {
		too_few_note(note, sizeof note, bn, hn, o->metric);
		t->too_few++;
	} else {
		regression = tv == CB_VERDICT_REGRESSION;
		t->regressions += tv == CB_VERDICT_REGRESSION;
		t->improvements += tv == CB_VERDICT_IMPROVEMENT;
		t->unchanged += tv == CB_VERDICT_SAME;
	}
	json_object_set_new(c, "verdict", json_string(verdict));
	json_object_set_new(c, "note", json_string(note));
	json_t *memory = json_object();
	int mem = memory_figure(memory, "peak_rss_bytes", base, head);
	mem |= memory_figure(memory, "peak_vram_bytes", base, head);
	json_object_set_new(c, "memory", memory);
	t->memory_regressions += mem;
	json_object_set_new(c, "regression", json_boolean(regression || mem));
	return CB_OK;
}

/* ------------------------------------------------------------ warnings */

/* Appends "key a vs b" for each machine key the two describe differently. */
static void machine_warning(json_t *warnings, const json_t *bdoc, const json_t *hdoc)
{
	const json_t *bm = json_object_get(bdoc, "machine"), *hm = json_object_get(hdoc, "machine");
	char diff[768] = "";
	size_t len = 0;
	for (size_t k = 0; k < sizeof machine_keys / sizeof machine_keys[0]; k++) {
		const json_t *a = json_object_get(bm, machine_keys[k]);
		const json_t *b = json_object_get(hm, machine_keys[k]);
		if (!a || !b || json_equal((json_t *)a, (json_t *)b))
			continue;
		char *as = json_dumps(a, JSON_ENCODE_ANY), *bs = json_dumps(b, JSON_ENCODE_ANY);
		if (len < sizeof diff)
			len += (size_t)snprintf(diff + len, sizeof diff - len, "%s%s %s vs %s",
						len ? "; " : "", machine_keys[k], as ? as : "?",
						bs ? bs : "?");
		free(as);
		free(bs);
	}
	if (len)
		warn(warnings, "different machines (%s): the figures may differ for that alone",
		     diff);
}

static void calibration_warning(json_t *warnings, const json_t *bdoc, const json_t *hdoc)
{
	const json_t *bc = json_object_get(bdoc, "calibration");
	const json_t *hc = json_object_get(hdoc, "calibration");
	const char *key;
	const json_t *bv;
	json_object_foreach((json_t *)bc, key, bv)
	{
		double b = json_is_number(bv) ? json_number_value(bv) : NAN;
		double h = num(hc, key);
		if (!(b > 0) || !isfinite(h) || fabs(h - b) / b <= CALIBRATION_TOLERANCE)
			continue;
		warn(warnings, "different calibration: %s %.3g in base, %.3g in head (%+.0f%%)",
		     key, b, h, (h / b - 1) * 100);
	}
}

/* A metric no trial recorded (instructions where perf_event_open was not
 * allowed) would leave every cell without a verdict: say why once. */
static void metric_warning(json_t *warnings, const json_t *cells, const char *metric)
{
	for (size_t i = 0; i < json_array_size(cells); i++) {
		const json_t *c = json_array_get(cells, i);
		if (json_integer_value(json_object_get(json_object_get(c, "base"), "n")) > 0 &&
		    json_integer_value(json_object_get(json_object_get(c, "head"), "n")) > 0)
			return;
	}
	warn(warnings, "no cell has %s values on both sides%s", metric,
	     strcmp(metric, "instructions") == 0
		     ? " (counted only where perf_event_open is allowed and a PMU exists)"
		     : "");
}

static void unmatched(json_t *list, const json_t *cells, const json_t *other, const char *side)
{
	size_t i;
	const json_t *c;
	json_array_foreach(cells, i, c)
	{
		if (find_cell(other, c))
			continue;
		json_t *k = cell_key(c);
		json_object_set_new(k, "only_in", json_string(side));
		json_array_append_new(list, k);
	}
}

/* ------------------------------------------------------------ document */

static json_t *file_json(const char *path, const json_t *doc)
{
	const json_t *tool = json_object_get(doc, "tool");
	return json_pack("{s:s, s:s, s:s}", "path", path, "commit", str(tool, "commit"),
			 "timestamp", str(doc, "timestamp"));
}

static json_t *header(const char *bp, const json_t *bdoc, const char *hp, const json_t *hdoc,
		      const struct cb_compare_opts *o)
{
	int instr = strcmp(o->metric, "instructions") == 0;
	json_t *d = json_object();
	json_object_set_new(d, "schema", json_string(CB_COMPARE_SCHEMA));
	json_object_set_new(d, "base", file_json(bp, bdoc));
	json_object_set_new(d, "head", file_json(hp, hdoc));
	json_object_set_new(d, "metric", json_string(o->metric));
	json_object_set_new(d, "unit", json_string(instr ? "instructions" : "s"));
	json_object_set_new(d, "alpha", json_real(o->alpha));
	json_object_set_new(d, "threshold", json_real(o->threshold));
	json_object_set_new(d, "memory_allowance",
			    json_pack("{s:f, s:I}", "fraction", CB_VERDICT_MEM_FRACTION, "bytes",
				      (json_int_t)CB_VERDICT_MEM_BYTES));
	json_object_set_new(d, "min_trials", json_integer(CB_VERDICT_MIN_TRIALS));
	return d;
}

static int compare_all(json_t *d, const json_t *bcells, const json_t *hcells,
		       const struct cb_compare_opts *o, struct tally *t, struct cb_error *err)
{
	json_t *cells = json_array();
	json_object_set_new(d, "cells", cells);
	size_t i;
	const json_t *b;
	json_array_foreach(bcells, i, b)
	{
		const json_t *h = find_cell(hcells, b);
		/* a key twice in base: the first pairing is the one compared */
		if (!h || find_cell(bcells, b) != b)
			continue;
		json_t *c;
		int rc = compare_cell(b, h, o, &c, t, err);
		json_array_append_new(cells, c);
		if (rc != CB_OK)
			return rc;
	}
	return CB_OK;
}

static json_t *summary_json(const struct tally *t)
{
	return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i}", "regressions", t->regressions,
			 "improvements", t->improvements, "unchanged", t->unchanged, "too_few",
			 t->too_few, "not_compared", t->not_compared, "memory_regressions",
			 t->memory_regressions);
}

static int build(const char *bp, json_t *bdoc, const char *hp, json_t *hdoc,
		 const struct cb_compare_opts *o, json_t **doc_out, struct cb_error *err)
{
	const json_t *bcells = json_object_get(bdoc, "cells");
	const json_t *hcells = json_object_get(hdoc, "cells");
	json_t *d = header(bp, bdoc, hp, hdoc, o);
	json_t *warnings = json_array();
	json_object_set_new(d, "warnings", warnings);
	machine_warning(warnings, bdoc, hdoc);
	calibration_warning(warnings, bdoc, hdoc);
	struct tally t = {0};
	int rc = compare_all(d, bcells, hcells, o, &t, err);
	json_t *um = json_array();
	json_object_set_new(d, "unmatched", um);
	unmatched(um, bcells, hcells, "base");
	unmatched(um, hcells, bcells, "head");
	if (rc == CB_OK && json_array_size(json_object_get(d, "cells")) == 0)
		rc = CB_FAIL(err, CB_EUSAGE, hp, NULL, "no cell in common with %s", bp);
	if (rc != CB_OK) {
		json_decref(d);
		return rc;
	}
	if (json_array_size(um))
		warn(warnings, "%zu cells are in only one of the files (see \"unmatched\")",
		     json_array_size(um));
	metric_warning(warnings, json_object_get(d, "cells"), o->metric);
	json_object_set_new(d, "summary", summary_json(&t));
	*doc_out = d;
	return CB_OK;
}

int cb_compare_files(const char *base_path, const char *head_path, const struct cb_compare_opts *o,
		     json_t **doc_out, struct cb_error *err)
{
	*doc_out = NULL;
	json_t *bdoc = NULL, *hdoc = NULL;
	int rc = cb_results_load(base_path, &bdoc, err);
	if (rc == CB_OK)
		rc = cb_results_load(head_path, &hdoc, err);
	if (rc == CB_OK)
		rc = build(base_path, bdoc, head_path, hdoc, o, doc_out, err);
	json_decref(bdoc);
	json_decref(hdoc);
	return rc;
}

int cb_compare_exit_status(const json_t *doc)
{
	const json_t *cells = json_object_get(doc, "cells");
	for (size_t i = 0; i < json_array_size(cells); i++)
		if (json_is_true(json_object_get(json_array_get(cells, i), "regression")))
			return 1;
	return 0;
}
