/* The text and Markdown renderings of a comparison document (compare.h):
 * warnings first, then one row per cell, notes, and a one-line summary.
 * Every figure shown is read from the document, never recomputed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "results_model.h"

#define COLS 10

static const char *const headings[COLS] = {"loader",   "dataset", "cache",           "device",
					   "base",     "head",    "change [95% CI]", "p",
					   "peak RSS", "verdict"};

/* A table of strings, built row by row, printed with aligned columns. */
struct table {
	size_t rows, cap;
	char *(*cell)[COLS];
};

static void table_add(struct table *t, char *const row[COLS])
{
	if (t->rows == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		void *p = realloc(t->cell, cap * sizeof *t->cell);
		if (!p) /* a row too many for memory: leave it out, print the rest */
			return;
		t->cell = p;
		t->cap = cap;
	}
	for (size_t c = 0; c < COLS; c++)
		t->cell[t->rows][c] = strdup(row[c] ? row[c] : "");
	t->rows++;
}

static void table_free(struct table *t)
{
	for (size_t r = 0; r < t->rows; r++)
		for (size_t c = 0; c < COLS; c++)
			free(t->cell[r][c]);
	free(t->cell);
}

/* Display width: UTF-8 continuation bytes take no column. */
static size_t width(const char *s)
{
	size_t w = 0;
	for (; s && *s; s++)
		w += ((unsigned char)*s & 0xC0) != 0x80;
	return w;
}

static void print_text_table(const struct table *t, FILE *out)
{
	size_t w[COLS] = {0};
	for (size_t r = 0; r < t->rows; r++)
		for (size_t c = 0; c < COLS; c++)
			w[c] = width(t->cell[r][c]) > w[c] ? width(t->cell[r][c]) : w[c];
	for (size_t r = 0; r < t->rows; r++) {
		for (size_t c = 0; c < COLS; c++) {
			const char *s = t->cell[r][c];
			int pad = (int)(w[c] - width(s));
			fprintf(out, "%s%*s%s", s, c + 1 < COLS ? pad : 0, "",
				c + 1 < COLS ? "  " : "");
		}
		fputc('\n', out);
	}
}

/* A Markdown table cell: a '|' would end it, so it is escaped. */
static void md_cell(const char *s, FILE *out)
{
	fputs(" ", out);
	for (; *s; s++) {
		if (*s == '|')
			fputc('\\', out);
		fputc(*s, out);
	}
	fputs(" |", out);
}

static void print_md_table(const struct table *t, FILE *out)
{
	for (size_t r = 0; r < t->rows; r++) {
		fputs("|", out);
		for (size_t c = 0; c < COLS; c++)
			md_cell(t->cell[r][c], out);
		fputc('\n', out);
		/* numbers right-aligned, names and verdicts left */
		if (r == 0)
			fputs("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- "
			      "|\n",
			      out);
	}
}

/* ------------------------------------------------------------ figures */

/* v with three significant digits and no trailing point: 812, 38.2, 1.23. */
static void sig3(char *buf, size_t size, double v, const char *unit)
{
	snprintf(buf, size, v >= 99.95 ? "%.0f%s" : v >= 9.995 ? "%.1f%s" : "%.2f%s", v, unit);
}

/* A metric value with its unit: 38.2 ms, 1.23 s, 812 us; 1.23G (instructions). */
static void fmt_value(char *buf, size_t size, double v, int instructions)
{
	if (!isfinite(v))
		snprintf(buf, size, "-");
	else if (instructions && v >= 1e9)
		sig3(buf, size, v / 1e9, "G");
	else if (instructions && v >= 1e6)
		sig3(buf, size, v / 1e6, "M");
	else if (instructions)
		snprintf(buf, size, "%.0f", v);
	else if (v >= 1)
		sig3(buf, size, v, " s");
	else if (v >= 1e-3)
		sig3(buf, size, v * 1e3, " ms");
	else
		sig3(buf, size, v * 1e6, " us");
}

/* "38.2 ms ±3% (n=10)": the median and the half-width of its CI. */
static void fmt_side(char *buf, size_t size, const json_t *side, int instructions)
{
	double med = cb_json_num(side, "median");
	const json_t *ci = json_object_get(side, "ci95");
	char v[32];
	fmt_value(v, sizeof v, med, instructions);
	long long n = (long long)json_integer_value(json_object_get(side, "n"));
	if (!isfinite(med) || !json_is_array(ci) || !(med > 0)) {
		snprintf(buf, size, "%s (n=%lld)", v, n);
		return;
	}
	double lo = json_number_value(json_array_get(ci, 0));
	double hi = json_number_value(json_array_get(ci, 1));
	double half = fmax(hi - med, med - lo) / med * 100;
	snprintf(buf, size, "%s ±%.0f%% (n=%lld)", v, half, n);
}

/* "+15.4% [+12.1%, +19.0%]" from the ratio and its interval. */
static void fmt_change(char *buf, size_t size, const json_t *c)
{
	double r = cb_json_num(c, "ratio");
	const json_t *ci = json_object_get(c, "ratio_ci95");
	if (!isfinite(r)) {
		snprintf(buf, size, "-");
		return;
	}
	if (!json_is_array(ci)) {
		snprintf(buf, size, "%+.1f%%", (r - 1) * 100);
		return;
	}
	snprintf(buf, size, "%+.1f%% [%+.1f%%, %+.1f%%]", (r - 1) * 100,
		 (json_number_value(json_array_get(ci, 0)) - 1) * 100,
		 (json_number_value(json_array_get(ci, 1)) - 1) * 100);
}

static void fmt_p(char *buf, size_t size, const json_t *c)
{
	double p = cb_json_num(c, "p");
	if (!isfinite(p))
		snprintf(buf, size, "-");
	else if (p < 0.001)
		snprintf(buf, size, "<0.001");
	else
		snprintf(buf, size, "%.3f", p);
}

static void fmt_mib(char *buf, size_t size, double bytes)
{
	snprintf(buf, size, "%.1f", bytes / (1024.0 * 1024));
}

/* "75.9 → 140.2 MiB" for the peak RSS medians. */
static void fmt_memory(char *buf, size_t size, const json_t *c)
{
	const json_t *rss = json_object_get(json_object_get(c, "memory"), "peak_rss_bytes");
	if (!rss) {
		snprintf(buf, size, "-");
		return;
	}
	char b[32], h[32];
	fmt_mib(b, sizeof b, cb_json_num(rss, "base"));
	fmt_mib(h, sizeof h, cb_json_num(rss, "head"));
	snprintf(buf, size, "%s \u2192 %s MiB", b, h);
}

/* Memory figures that regressed or improved, as ", peak RSS REGRESSION
 * +100 MiB" (capitals for a regression in text, bold in Markdown). */
static void memory_verdicts(char *buf, size_t size, const json_t *c, int md)
{
	static const char *const keys[] = {"peak_rss_bytes", "peak_vram_bytes"};
	static const char *const names[] = {"peak RSS", "peak VRAM"};
	size_t len = 0;
	buf[0] = '\0';
	for (int k = 0; k < 2; k++) {
		const json_t *m = json_object_get(json_object_get(c, "memory"), keys[k]);
		const char *v = cb_json_str(m, "verdict");
		if (!m || strcmp(v, "~") == 0 || len >= size)
			continue;
		int bad = strcmp(v, "regression") == 0;
		len += (size_t)snprintf(buf + len, size - len, ", %s%s %s%s %+.1f MiB",
					md && bad ? "**" : "", names[k],
					bad && !md ? "REGRESSION" : v, md && bad ? "**" : "",
					cb_json_num(m, "change_bytes") / (1024.0 * 1024));
	}
}

/* The verdict column: the time verdict, memory changes after it; a
 * regression stands out (capitals in text, bold in Markdown). */
static void fmt_verdict(char *buf, size_t size, const json_t *c, int md)
{
	const char *v = cb_json_str(c, "verdict");
	char mem[256];
	memory_verdicts(mem, sizeof mem, c, md);
	int bad = strcmp(v, "regression") == 0 || strcmp(v, "failed") == 0;
	char shown[32];
	snprintf(shown, sizeof shown, "%s", v);
	for (char *p = shown; bad && !md && *p; p++)
		*p = (char)(*p - ('a' <= *p && *p <= 'z' ? 'a' - 'A' : 0));
	snprintf(buf, size, "%s%s%s%s", md && bad ? "**" : "", shown, md && bad ? "**" : "", mem);
}

static void cell_row(struct table *t, const json_t *c, int instructions, int md)
{
	char base[96], head[96], change[96], p[32], mem[96], verdict[320];
	fmt_side(base, sizeof base, json_object_get(c, "base"), instructions);
	fmt_side(head, sizeof head, json_object_get(c, "head"), instructions);
	fmt_change(change, sizeof change, c);
	fmt_p(p, sizeof p, c);
	fmt_memory(mem, sizeof mem, c);
	fmt_verdict(verdict, sizeof verdict, c, md);
	char *row[COLS] = {(char *)cb_json_str(c, "loader"),
			   (char *)cb_json_str(c, "dataset"),
			   (char *)cb_json_str(c, "cache"),
			   (char *)cb_json_str(c, "device"),
			   base,
			   head,
			   change,
			   p,
			   mem,
			   verdict};
	table_add(t, row);
}

/* ------------------------------------------------------------ layout */

static const char *metric_words(const char *metric)
{
	if (strcmp(metric, "instructions") == 0)
		return "instructions retired by the trial";
	if (strcmp(metric, "user+sys") == 0)
		return "CPU time (user + system) of the trial";
	return "wall time";
}

static void print_rule(const json_t *d, FILE *out)
{
	double thr = cb_json_num(d, "threshold") * 100;
	fprintf(out,
		"Metric: %s. A cell regresses when the Mann-Whitney U test gives p < %g and the\n"
		"head is more than %g%% slower (improves: more than %g%% faster, on the log "
		"scale);\n"
		"memory regresses when a median peak grows by more than max(5%%, 32 MiB).\n"
		"change: head/base - 1 (Hodges-Lehmann, 95%% CI); base, head: median ± CI "
		"half-width.\n",
		metric_words(cb_json_str(d, "metric")), cb_json_num(d, "alpha"), thr, thr);
}

static void print_notes(const json_t *cells, FILE *out, int md)
{
	int first = 1;
	for (size_t i = 0; i < json_array_size(cells); i++) {
		const json_t *c = json_array_get(cells, i);
		if (!*cb_json_str(c, "note"))
			continue;
		if (first)
			fprintf(out, md ? "\n**Notes**\n\n" : "\nnotes:\n");
		first = 0;
		fprintf(out, md ? "- `%s` `%s` %s %s: %s: %s\n" : "  %s %s %s %s: %s: %s\n",
			cb_json_str(c, "loader"), cb_json_str(c, "dataset"),
			cb_json_str(c, "cache"), cb_json_str(c, "device"),
			cb_json_str(c, "verdict"), cb_json_str(c, "note"));
	}
}

static void print_unmatched(const json_t *um, FILE *out, int md)
{
	for (size_t i = 0; i < json_array_size(um); i++) {
		const json_t *c = json_array_get(um, i);
		fprintf(out, md ? "- only in %s: `%s` `%s` %s %s\n" : "  only in %s: %s %s %s %s\n",
			cb_json_str(c, "only_in"), cb_json_str(c, "loader"),
			cb_json_str(c, "dataset"), cb_json_str(c, "cache"),
			cb_json_str(c, "device"));
	}
}

static void print_summary(const json_t *d, FILE *out)
{
	const json_t *s = json_object_get(d, "summary");
	long long reg = (long long)json_integer_value(json_object_get(s, "regressions"));
	long long mem = (long long)json_integer_value(json_object_get(s, "memory_regressions"));
	fprintf(out,
		"%lld regression%s (time or failure), %lld memory regression%s, %lld "
		"improvement%s, "
		"%lld unchanged, %lld with too few trials, %lld not compared\n",
		reg, reg == 1 ? "" : "s", mem, mem == 1 ? "" : "s",
		(long long)json_integer_value(json_object_get(s, "improvements")),
		json_integer_value(json_object_get(s, "improvements")) == 1 ? "" : "s",
		(long long)json_integer_value(json_object_get(s, "unchanged")),
		(long long)json_integer_value(json_object_get(s, "too_few")),
		(long long)json_integer_value(json_object_get(s, "not_compared")));
}

static void print_side(const char *label, const json_t *f, FILE *out, int md)
{
	if (md)
		fprintf(out, "**%s** `%s` (%s, %s)  \n", label, cb_json_str(f, "commit"),
			cb_json_str(f, "path"), cb_json_str(f, "timestamp"));
	else
		fprintf(out, "%s  %s  (commit %s, %s)\n", label, cb_json_str(f, "path"),
			cb_json_str(f, "commit"), cb_json_str(f, "timestamp"));
}

static void print_doc(const json_t *d, FILE *out, int md)
{
	const json_t *warnings = json_object_get(d, "warnings");
	const json_t *cells = json_object_get(d, "cells");
	int regressions = 0;
	for (size_t i = 0; i < json_array_size(cells); i++)
		regressions +=
			json_is_true(json_object_get(json_array_get(cells, i), "regression"));
	for (size_t i = 0; i < json_array_size(warnings); i++)
		fprintf(out, md ? "> **Warning:** %s\n\n" : "warning: %s\n",
			json_string_value(json_array_get(warnings, i)));
	if (md)
		fprintf(out, "### ckptbench compare: %s\n\n",
			regressions ? "regression found" : "no regression");
	print_side("base", json_object_get(d, "base"), out, md);
	print_side("head", json_object_get(d, "head"), out, md);
	fputc('\n', out);
	print_rule(d, out);
	fputc('\n', out);
	struct table t = {0};
	char *head_row[COLS];
	memcpy(head_row, headings, sizeof head_row);
	table_add(&t, head_row);
	int instructions = strcmp(cb_json_str(d, "metric"), "instructions") == 0;
	for (size_t i = 0; i < json_array_size(cells); i++)
		cell_row(&t, json_array_get(cells, i), instructions, md);
	(md ? print_md_table : print_text_table)(&t, out);
	table_free(&t);
	print_notes(cells, out, md);
	print_unmatched(json_object_get(d, "unmatched"), out, md);
	fputc('\n', out);
	print_summary(d, out);
}

void cb_compare_print(const json_t *doc, const char *format, FILE *out)
{
	if (strcmp(format, "json") == 0) {
		json_dumpf(doc, out, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
		fputc('\n', out);
		return;
	}
	print_doc(doc, out, strcmp(format, "md") == 0);
}
