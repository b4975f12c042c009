/* The comparison engine: two results files in, one ckptbench-compare/1
 * document out (see compare.h for its shape and the verdict rules). */
#include "compare.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "results_model.h"
#include "stats.h"
#include "verdict.h"

/* Calibration figures further apart than this are worth a warning. */
#define CALIBRATION_TOLERANCE 0.20

/* The machine description keys that say "the same machine". */
static const char *const machine_keys[] = {"hostname",     "cpu_model", "arch",      "pus",
					   "memory_bytes", "kernel",    "numa_nodes"};

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

/* ------------------------------------------------------------ pairing */

/* The two files and the cells the comparison names: every base cell and
 * the head cells paired with none, the set labels are computed among. */
struct sides {
	const struct cb_results_file *base, *head;
	const struct cb_results_cell **named;
	size_t n_named;
};

/* The cell of `other` that `c` (of `own`) pairs with when no cell there
 * has its key: the same cell but for its options (a loader's settings, or
 * their defaults, changed between the files), when that pairing is the
 * only one either way; else NULL. */
static const struct cb_results_cell *loose_partner(const struct cb_results_file *own,
						   const struct cb_results_cell *c,
						   const struct cb_results_file *other)
{
	if (cb_results_find(other, &c->key, CB_KEY_ALL))
		return NULL;
	const struct cb_results_cell *found = NULL;
	for (size_t i = 0; i < other->n_cells; i++) {
		const struct cb_results_cell *o = &other->cells[i];
		if (!cb_cell_key_equal(&o->key, &c->key, CB_KEY_BUT_OPTIONS) ||
		    cb_results_find(own, &o->key, CB_KEY_ALL))
			continue;
		if (found && !cb_cell_key_equal(&found->key, &o->key, CB_KEY_ALL))
			return NULL; /* two settings there: no telling which */
		found = found ? found : o;
	}
	for (size_t i = 0; found && i < own->n_cells; i++) {
		const struct cb_results_cell *s = &own->cells[i];
		if (cb_cell_key_equal(&s->key, &c->key, CB_KEY_BUT_OPTIONS) &&
		    !cb_cell_key_equal(&s->key, &c->key, CB_KEY_ALL) &&
		    !cb_results_find(other, &s->key, CB_KEY_ALL))
			return NULL; /* two settings here */
	}
	return found;
}

/* The cell of `other` paired with `c`: the first with its key, else its
 * loose partner; NULL when it is in its own file only. */
static const struct cb_results_cell *partner(const struct cb_results_file *own,
					     const struct cb_results_cell *c,
					     const struct cb_results_file *other)
{
	const struct cb_results_cell *o = cb_results_find(other, &c->key, CB_KEY_ALL);
	return o ? o : loose_partner(own, c, other);
}

static int sides_init(struct sides *sd, const struct cb_results_file *base,
		      const struct cb_results_file *head, struct cb_error *err)
{
	sd->base = base;
	sd->head = head;
	sd->n_named = 0;
	sd->named = calloc(base->n_cells + head->n_cells + 1, sizeof *sd->named);
	if (!sd->named)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < base->n_cells; i++)
		sd->named[sd->n_named++] = &base->cells[i];
	for (size_t i = 0; i < head->n_cells; i++)
		if (!partner(head, &head->cells[i], base))
			sd->named[sd->n_named++] = &head->cells[i];
	return CB_OK;
}

/* A new object holding the cell's key fields, the loader by its label
 * (cb_results_cell_label: the options where two cells differ only by
 * them). */
static json_t *cell_key(const struct sides *sd, const struct cb_results_cell *c)
{
	char label[512];
	cb_results_cell_label(c, sd->named, sd->n_named, label, sizeof label);
	return json_pack("{s:s, s:s, s:s, s:s}", "loader", label, "dataset", c->key.dataset,
			 "cache", c->key.cache, "device", c->key.device ? c->key.device : "");
}

/* Says how the options of a loosely paired cell differ: "chunk-mib: 4 in
 * base, 2 in head" ("-" where a side has no such option). */
static void options_warning(json_t *warnings, const struct cb_results_cell *b,
			    const struct cb_results_cell *h)
{
	char diff[512] = "";
	size_t len = 0;
	for (int side = 0; side < 2; side++) {
		const struct cb_results_cell *c = side ? h : b, *o = side ? b : h;
		for (size_t k = 0; k < c->n_options && len < sizeof diff; k++) {
			const struct cb_results_option *mine = &c->options[k], *theirs = NULL;
			for (size_t j = 0; j < o->n_options && !theirs; j++)
				theirs = strcmp(o->options[j].name, mine->name) == 0
						 ? &o->options[j]
						 : NULL;
			if (theirs && (side || strcmp(theirs->json, mine->json) == 0))
				continue; /* the same, or said from the base's side */
			const char *bv = side ? "-" : mine->text;
			const char *hv = side ? mine->text : theirs ? theirs->text : "-";
			len += (size_t)snprintf(diff + len, sizeof diff - len,
						"%s%s: %s in base, %s in head", len ? "; " : "",
						mine->name, bv, hv);
		}
	}
	warn(warnings, "%s %s %s %s: compared across different options (%s)", b->key.loader,
	     b->key.dataset, b->key.cache, b->key.device ? b->key.device : "-", diff);
}

/* ------------------------------------------------------------ cells */

enum figure { FIGURE_METRIC, FIGURE_RSS, FIGURE_VRAM };

/* A figure of one trial; NaN when the trial does not record it. */
static double figure_of(const struct cb_results_trial *t, enum figure f, const char *metric)
{
	if (f == FIGURE_RSS)
		return t->peak_rss_bytes;
	if (f == FIGURE_VRAM)
		return t->peak_vram_bytes;
	if (strcmp(metric, "instructions") == 0)
		return t->instructions;
	if (strcmp(metric, "user+sys") == 0)
		return t->user_s + t->sys_s;
	return t->wall_s;
}

/* A cell's ok trials' values of the figure into a new array (caller
 * frees); *n_out values. NULL when out of memory. */
static double *cell_values(const struct cb_results_cell *cell, enum figure f, const char *metric,
			   size_t *n_out)
{
	double *v = malloc((cell->n_trials + 1) * sizeof *v);
	*n_out = 0;
	for (size_t i = 0; v && i < cell->n_trials; i++) {
		double x = cell->trials[i].ok ? figure_of(&cell->trials[i], f, metric) : NAN;
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
static double memory_median(const struct cb_results_cell *cell, enum figure f)
{
	size_t n;
	double *v = cell_values(cell, f, NULL, &n);
	if (!v) /* no memory: the figure is left out, as when not recorded */
		return NAN;
	struct cb_stats st;
	cb_stats_compute(v, n, &st);
	free(v);
	return st.median;
}

/* Adds memory.KEY when both sides have the figure; returns 1 on a memory
 * regression. */
static int memory_figure(json_t *memory, const char *key, enum figure f,
			 const struct cb_results_cell *base, const struct cb_results_cell *head)
{
	double b = memory_median(base, f), h = memory_median(head, f);
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
static const char *not_compared_reason(const struct cb_results_cell *base,
				       const struct cb_results_cell *head, char *buf, size_t size)
{
	bool base_skipped = strcmp(base->status, "skipped") == 0;
	if (base_skipped || strcmp(head->status, "skipped") == 0) {
		const struct cb_results_cell *s = base_skipped ? base : head;
		snprintf(buf, size, "skipped in %s: %s", base_skipped ? "base" : "head", s->reason);
		return buf;
	}
	if (base->n_ok == 0) {
		snprintf(buf, size, "base has no successful trial");
		return buf;
	}
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
static int compare_cell(const struct sides *sd, const struct cb_results_cell *base,
			const struct cb_results_cell *head, const struct cb_compare_opts *o,
			json_t **out_cell, struct tally *t, struct cb_error *err)
{
	size_t bn, hn;
	double *bv = cell_values(base, FIGURE_METRIC, o->metric, &bn);
	double *hv = cell_values(head, FIGURE_METRIC, o->metric, &hn);
	json_t *c = cell_key(sd, base);
	*out_cell = c;
	if (!bv || !hv) {
		free(bv);
		free(hv);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory for a cell's trials");
	}
	json_object_set_new(c, "base", side_json(bv, bn, base->n_trials));
	json_object_set_new(c, "head", side_json(hv, hn, head->n_trials));
	enum cb_verdict tv = CB_VERDICT_TOO_FEW;
	int rc = time_verdict(c, bv, bn, hv, hn, o, &tv, err);
	free(bv);
	free(hv);
	if (rc != CB_OK)
		return rc;
	char note[512] = "";
	const char *verdict = cb_verdict_name(tv);
	const char *why = not_compared_reason(base, head, note, sizeof note);
	int regression = 0;
	if (why) {
		verdict = "not-compared";
		t->not_compared++;
	} else if (head->n_ok == 0) {
		verdict = "failed";
		snprintf(note, sizeof note, "no successful trial in head (base: %zu)", base->n_ok);
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
	int mem = memory_figure(memory, "peak_rss_bytes", FIGURE_RSS, base, head);
	mem |= memory_figure(memory, "peak_vram_bytes", FIGURE_VRAM, base, head);
	json_object_set_new(c, "memory", memory);
	t->memory_regressions += mem;
	json_object_set_new(c, "regression", json_boolean(regression || mem));
	return CB_OK;
}

/* ------------------------------------------------------------ warnings */

/* Appends "key a vs b" for each machine key the two describe differently
 * (the machine is an open object: its keys are compared as JSON). */
static void machine_warning(json_t *warnings, const struct cb_results_file *bf,
			    const struct cb_results_file *hf)
{
	const json_t *bm = bf->machine.json, *hm = hf->machine.json;
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

static void calibration_warning(json_t *warnings, const struct cb_results_calibration *bc,
				const struct cb_results_calibration *hc)
{
	for (size_t i = 0; i < bc->n_figures; i++) {
		const struct cb_results_figure *fb = &bc->figures[i];
		double b = fb->value, h = NAN;
		for (size_t k = 0; k < hc->n_figures && isnan(h); k++)
			if (strcmp(hc->figures[k].name, fb->name) == 0)
				h = hc->figures[k].value;
		if (!(b > 0) || !isfinite(h) || fabs(h - b) / b <= CALIBRATION_TOLERANCE)
			continue;
		warn(warnings, "different calibration: %s %.3g in base, %.3g in head (%+.0f%%)",
		     fb->name, b, h, (h / b - 1) * 100);
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

static void unmatched(json_t *list, const struct sides *sd, const struct cb_results_file *own,
		      const struct cb_results_file *other, const char *side)
{
	for (size_t i = 0; i < own->n_cells; i++) {
		const struct cb_results_cell *c = &own->cells[i];
		if (partner(own, c, other))
			continue;
		json_t *k = cell_key(sd, c);
		json_object_set_new(k, "only_in", json_string(side));
		json_array_append_new(list, k);
	}
}

/* ------------------------------------------------------------ document */

static json_t *file_json(const struct cb_results_file *f)
{
	return json_pack("{s:s, s:s, s:s}", "path", f->path, "commit", f->tool_commit, "timestamp",
			 f->timestamp);
}

static json_t *header(const struct cb_results_file *bf, const struct cb_results_file *hf,
		      const struct cb_compare_opts *o)
{
	int instr = strcmp(o->metric, "instructions") == 0;
	json_t *d = json_object();
	json_object_set_new(d, "schema", json_string(CB_COMPARE_SCHEMA));
	json_object_set_new(d, "base", file_json(bf));
	json_object_set_new(d, "head", file_json(hf));
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

static int compare_all(json_t *d, json_t *warnings, const struct sides *sd,
		       const struct cb_compare_opts *o, struct tally *t, struct cb_error *err)
{
	json_t *cells = json_array();
	json_object_set_new(d, "cells", cells);
	for (size_t i = 0; i < sd->base->n_cells; i++) {
		const struct cb_results_cell *b = &sd->base->cells[i];
		const struct cb_results_cell *h = partner(sd->base, b, sd->head);
		/* a key twice in base: the first pairing is the one compared */
		if (!h || cb_results_find(sd->base, &b->key, CB_KEY_ALL) != b)
			continue;
		if (!cb_cell_key_equal(&b->key, &h->key, CB_KEY_ALL))
			options_warning(warnings, b, h);
		json_t *c;
		int rc = compare_cell(sd, b, h, o, &c, t, err);
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

static int build(const struct cb_results_file *bf, const struct cb_results_file *hf,
		 const struct cb_compare_opts *o, json_t **doc_out, struct cb_error *err)
{
	struct sides sd;
	int rc = sides_init(&sd, bf, hf, err);
	if (rc != CB_OK)
		return rc;
	json_t *d = header(bf, hf, o);
	json_t *warnings = json_array();
	json_object_set_new(d, "warnings", warnings);
	machine_warning(warnings, bf, hf);
	calibration_warning(warnings, &bf->calibration, &hf->calibration);
	struct tally t = {0};
	rc = compare_all(d, warnings, &sd, o, &t, err);
	json_t *um = json_array();
	json_object_set_new(d, "unmatched", um);
	unmatched(um, &sd, bf, hf, "base");
	unmatched(um, &sd, hf, bf, "head");
	free(sd.named);
	if (rc == CB_OK && json_array_size(json_object_get(d, "cells")) == 0)
		rc = CB_FAIL(err, CB_EUSAGE, hf->path, NULL, "no cell in common with %s", bf->path);
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
	struct cb_results_file *bf = NULL, *hf = NULL;
	int rc = cb_results_file_load(base_path, &bf, err);
	if (rc == CB_OK)
		rc = cb_results_file_load(head_path, &hf, err);
	if (rc == CB_OK)
		rc = build(bf, hf, o, doc_out, err);
	cb_results_file_free(bf);
	cb_results_file_free(hf);
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
