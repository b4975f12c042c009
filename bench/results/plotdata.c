#include "plotdata.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "stats.h"

static const char *const chart_names[CB_CHART_COUNT] = {
	"memory",  "time", "throughput", "timeline",     "vram",
	"compare", "lazy", "storage",    "ranks-memory", "ranks-bandwidth",
};

const char *cb_chart_name(enum cb_chart chart)
{
	return chart < CB_CHART_COUNT ? chart_names[chart] : "?";
}

/* ------------------------------------------------------------ palette */

/* The loaders docs/loaders.md lists, in the order legends list them: the
 * safetensors family in blues and greens, the pickle family in reds and
 * oranges, the peers in purples. Colours from Okabe & Ito and Paul Tol. */
static const struct {
	const char *name;
	struct cb_plot_style style;
} known_styles[] = {
	{"safetensors-read", {0x0072B2, 1, 7, 6}},
	{"safetensors-mmap", {0x56B4E9, 2, 5, 4}},
	{"safetensors-gpu", {0x009E73, 1, 13, 12}},
	{"safetensors-gpu-naive", {0x117733, 4, 11, 10}},
	{"pickle", {0xD55E00, 3, 9, 8}},
	{"pickle-mmap", {0xE69F00, 5, 11, 10}},
	{"pickle-gpu", {0xAA3377, 6, 15, 14}},
	{"torch-load", {0xCC79A7, 4, 13, 12}},
	{"safetensors-py", {0x332288, 6, 15, 14}},
	{"libtorch-pickle", {0x882255, 2, 9, 8}},
	{"libtorch-safetensors", {0x44AA99, 3, 7, 6}},
};
#define N_KNOWN (sizeof known_styles / sizeof known_styles[0])

/* For names the table does not know: picked by a hash of the name, so a
 * new loader keeps its look from run to run. */
static const unsigned spare_rgb[] = {0x000000, 0x999933, 0x661100, 0x6699CC, 0x888888, 0xDDAA33};
static const int spare_points[][2] = {{7, 6}, {5, 4}, {9, 8}, {11, 10}, {13, 12}, {15, 14}};

static int known_index(const char *loader)
{
	for (size_t i = 0; i < N_KNOWN; i++)
		if (strcmp(known_styles[i].name, loader) == 0)
			return (int)i;
	return -1;
}

/* The known loader a series label names ("safetensors-gpu:mode=register"
 * is safetensors-gpu's), or -1: legends keep the family together. */
static int family_index(const char *label)
{
	size_t len = strcspn(label, ":");
	for (size_t i = 0; i < N_KNOWN; i++)
		if (strlen(known_styles[i].name) == len &&
		    strncmp(known_styles[i].name, label, len) == 0)
			return (int)i;
	return -1;
}

void cb_plot_style_of(const char *loader, struct cb_plot_style *out)
{
	int k = known_index(loader);
	if (k >= 0) {
		*out = known_styles[k].style;
		return;
	}
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)loader; *p; p++)
		h = (h ^ *p) * 16777619u;
	out->rgb = spare_rgb[h % (sizeof spare_rgb / sizeof spare_rgb[0])];
	out->dash = 1 + (int)((h >> 8) % 6);
	size_t pt = (h >> 16) % (sizeof spare_points / sizeof spare_points[0]);
	out->point = spare_points[pt][0];
	out->hollow_point = spare_points[pt][1];
}

/* ------------------------------------------------------------ helpers */

bool cb_pcell_measured(const struct cb_pcell *c)
{
	return cb_results_cell_measured(c->cell);
}

static const struct cb_results_summary *summary_of(const struct cb_pcell *c)
{
	return &c->cell->summary;
}

void cb_plot_size_label(double bytes, char *buf, size_t size)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	size_t u = 0;
	while (bytes >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
		bytes /= 1024;
		u++;
	}
	/* 1023 MiB, 12.5 MiB, 1.5 GiB: no exponent notation on an axis. */
	snprintf(buf, size, "%.*f %s",
		 bytes >= 100 || u == 0 ? 0
		 : bytes >= 10          ? 1
					: 2,
		 bytes, units[u]);
	char *dot = strchr(buf, '.');
	if (dot) {
		char *end = strchr(dot, ' ');
		char *last = end - 1;
		while (last > dot && *last == '0')
			last--;
		if (last == dot)
			last--;
		memmove(last + 1, end, strlen(end) + 1);
	}
}

/* A string as a gnuplot double-quoted literal's contents: backslash and
 * quote escaped (gnuplot interprets backslash escapes in "..."). */
static void put_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s == '\n' ? ' ' : *s, f);
	}
	fputc('"', f);
}

/* A value in a .dat file: "?" (the templates' missing marker) for NaN. */
static void put_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, " %.12g", v);
	else
		fputs(" ?", f);
}

/* A label in a .dat file: quoted, with quotes inside turned into
 * apostrophes (gnuplot's data reader has no escape for them). */
static void put_label(FILE *f, const char *s)
{
	fputs(" \"", f);
	for (; *s; s++)
		fputc(*s == '"' ? '\'' : *s == '\n' ? ' ' : *s, f);
	fputc('"', f);
}

/* A text file built in memory, then written atomically. */
struct sink {
	FILE *f;
	char *buf;
	size_t len;
};

static int sink_open(struct sink *s, struct cb_error *err)
{
	s->buf = NULL;
	s->len = 0;
	s->f = open_memstream(&s->buf, &s->len);
	return s->f ? CB_OK : CB_FAIL_ERRNO(err, errno, NULL, "open_memstream");
}

static int sink_close(struct sink *s, const char *dir, const char *name, struct cb_error *err)
{
	int rc = CB_OK;
	if (fclose(s->f) != 0)
		rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory writing %s", name);
	char *path = rc == CB_OK ? cb_path_join(dir, name) : NULL;
	if (rc == CB_OK && !path)
		rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	if (rc == CB_OK)
		rc = cb_write_small_file(path, s->buf, s->len, err);
	free(path);
	free(s->buf);
	return rc;
}

/* ------------------------------------------------------------ the set */

/* Palette order first (a loader's settings beside it), then unknown names
 * alphabetically: legends list series the same way on every chart and in
 * every run. */
static int cmp_series(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	int kx = family_index(x), ky = family_index(y);
	if ((kx >= 0 || ky >= 0) && kx != ky)
		return kx < 0 ? 1 : ky < 0 ? -1 : kx - ky;
	return strcmp(x, y);
}

static void add_cell(struct cb_plotset *set, const struct cb_results_cell *cell)
{
	struct cb_pcell c = {.cell = cell};
	/* A partial load's cells have a chart of their own (write_lazy): on
	 * the whole-model charts each rank would be a series. (A storage
	 * profile's cells are series of their own, "loader @profile", and have
	 * their own chart too.) */
	if (cell->key.selection)
		return;
	for (size_t i = 0; i < set->n_cells; i++)
		if (cb_cell_key_equal(&set->cells[i].cell->key, &cell->key, CB_KEY_ALL)) {
			set->cells[i] = c; /* a later run replaces an earlier one */
			return;
		}
	set->cells[set->n_cells++] = c;
}

/* Drops the cells of series that were skipped everywhere: a row of
 * "skipped" marks for every GPU loader on a CPU machine would bury the
 * chart's story. They are counted, not dropped silently. `labels` runs
 * parallel to the cells and is compacted with them (a dropped cell's label
 * is freed). */
static bool series_ever_ran(const struct cb_plotset *set, char *const *labels, const char *label)
{
	for (size_t k = 0; k < set->n_cells; k++)
		if (strcmp(labels[k], label) == 0 &&
		    strcmp(set->cells[k].cell->status, "skipped") != 0)
			return true;
	return false;
}

static bool drop_never_run(struct cb_plotset *set, char **labels)
{
	bool *keep = calloc(set->n_cells + 1, sizeof *keep);
	if (!keep)
		return false;
	/* Decide for every cell, and count each such series once (at its
	 * first cell), before compacting. */
	for (size_t i = 0; i < set->n_cells; i++) {
		bool ran = series_ever_ran(set, labels, labels[i]), first = true;
		keep[i] = ran || strcmp(set->cells[i].cell->status, "skipped") != 0;
		for (size_t k = 0; k < i && first; k++)
			first = strcmp(labels[k], labels[i]) != 0;
		if (first && !ran)
			set->n_not_run++;
	}
	size_t kept = 0;
	for (size_t i = 0; i < set->n_cells; i++) {
		if (keep[i]) {
			set->cells[kept] = set->cells[i];
			labels[kept++] = labels[i];
		} else {
			free(labels[i]);
		}
	}
	for (size_t i = kept; i < set->n_cells; i++) /* moved down, or freed */
		labels[i] = NULL;
	set->n_cells = kept;
	free(keep);
	return true;
}

/* The series (taking over the first of each label; labels[] is left with
 * what the caller frees) and the sizes, sorted. */
static void index_series_and_sizes(struct cb_plotset *set, char **labels)
{
	for (size_t i = 0; i < set->n_cells; i++) {
		bool seen = false;
		for (size_t k = 0; k < set->n_series && !seen; k++)
			seen = strcmp(set->series[k], labels[i]) == 0;
		if (!seen) {
			set->series[set->n_series++] = labels[i];
			labels[i] = NULL;
		}
		double bytes = set->cells[i].cell->model_bytes;
		seen = !isfinite(bytes);
		for (size_t k = 0; k < set->n_sizes && !seen; k++)
			seen = set->sizes[k] == bytes;
		if (!seen)
			set->sizes[set->n_sizes++] = bytes;
	}
	qsort(set->series, set->n_series, sizeof *set->series, cmp_series);
	for (size_t i = 1; i < set->n_sizes; i++) /* insertion sort: a handful of sizes */
		for (size_t j = i; j > 0 && set->sizes[j - 1] > set->sizes[j]; j--) {
			double t = set->sizes[j];
			set->sizes[j] = set->sizes[j - 1];
			set->sizes[j - 1] = t;
		}
}

/* Each cell's series, from its label (the labels still held, or those
 * handed to the series). */
static void assign_series(struct cb_plotset *set, const struct cb_results_cell *const *among,
			  size_t n_among)
{
	char label[512];
	for (size_t i = 0; i < set->n_cells; i++) {
		cb_results_cell_label(set->cells[i].cell, among, n_among, label, sizeof label);
		for (size_t k = 0; k < set->n_series; k++)
			if (strcmp(set->series[k], label) == 0) {
				set->cells[i].series = k;
				set->cells[i].label = set->series[k];
			}
	}
}

int cb_plotset_build(const struct cb_results_file *const *files, size_t n_files,
		     struct cb_plotset *set, struct cb_error *err)
{
	memset(set, 0, sizeof *set);
	if (n_files == 0)
		return CB_FAIL(err, CB_EINTERNAL, NULL, NULL, "no results file to draw");
	set->files = files;
	set->n_files = n_files;
	size_t total = 0;
	for (size_t d = 0; d < n_files; d++)
		total += files[d]->n_cells;
	size_t n = total ? total : 1;
	set->cells = calloc(n, sizeof *set->cells);
	set->series = calloc(n, sizeof *set->series);
	set->sizes = calloc(n, sizeof *set->sizes);
	char **labels = calloc(n, sizeof *labels);
	const struct cb_results_cell **among = calloc(n, sizeof *among);
	bool ok = set->cells && set->series && set->sizes && labels && among;
	set->calibration = &files[n_files - 1]->calibration;
	for (size_t d = 0; ok && d < n_files; d++) {
		for (size_t i = 0; i < files[d]->n_cells; i++)
			add_cell(set, &files[d]->cells[i]);
		if (files[d]->calibration.present)
			set->calibration = &files[d]->calibration;
	}
	/* Labels over the merged cells, so one setting keeps one name. */
	size_t n_among = ok ? set->n_cells : 0;
	for (size_t i = 0; i < n_among; i++)
		among[i] = set->cells[i].cell;
	char label[512];
	for (size_t i = 0; ok && i < set->n_cells; i++) {
		cb_results_cell_label(set->cells[i].cell, among, n_among, label, sizeof label);
		ok = (labels[i] = strdup(label)) != NULL;
	}
	if (ok && (ok = drop_never_run(set, labels))) {
		index_series_and_sizes(set, labels);
		assign_series(set, among, n_among);
	}
	for (size_t i = 0; labels && i < n; i++)
		free(labels[i]);
	free(labels);
	free(among);
	if (!ok) {
		cb_plotset_free(set);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	return CB_OK;
}

void cb_plotset_free(struct cb_plotset *set)
{
	for (size_t i = 0; set->series && i < set->n_series; i++)
		free(set->series[i]);
	free(set->cells);
	free(set->series);
	free(set->sizes);
	memset(set, 0, sizeof *set);
}

const struct cb_pcell *cb_plotset_find(const struct cb_plotset *set, size_t series,
				       double model_bytes, const char *cache)
{
	for (size_t i = 0; i < set->n_cells; i++) {
		const struct cb_pcell *c = &set->cells[i];
		if (c->series == series && c->cell->model_bytes == model_bytes &&
		    strcmp(c->cell->key.cache, cache) == 0)
			return c;
	}
	return NULL;
}

/* ------------------------------------------------------------ subtitle */

static void machine_text(const struct cb_results_machine *m, char *buf, size_t size)
{
	size_t used = 0;
#define ADD(...)                                                                        \
	do {                                                                            \
		if (used < size)                                                        \
			used += (size_t)snprintf(buf + used, size - used, __VA_ARGS__); \
	} while (0)
	buf[0] = '\0';
	ADD("%s", *m->cpu_model ? m->cpu_model : "unknown CPU");
	if (isfinite(m->cores))
		ADD(", %.0f cores", m->cores);
	if (isfinite(m->memory_bytes))
		ADD(", %.0f GiB RAM", m->memory_bytes / (1024.0 * 1024 * 1024));
	if (m->n_gpus > 0)
		ADD(", %zu\u00d7 %s", m->n_gpus, m->gpus[0].name);
	if (m->has_data_dir && *m->data_dir_fs_type)
		ADD(", %s on %s", m->data_dir_fs_type,
		    *m->data_dir_device ? m->data_dir_device : "?");
	if (*m->kernel)
		ADD(", Linux %s", m->kernel);
#undef ADD
}

void cb_plot_subtitle(const struct cb_plotset *set, char *buf, size_t size)
{
	char machine[512] = "unknown machine";
	const char *first = NULL, *last = NULL;
	size_t others = 0;
	const struct cb_results_machine *m0 = NULL;
	for (size_t d = 0; d < set->n_files; d++) {
		const struct cb_results_machine *m = &set->files[d]->machine;
		if (!m0 && m->json) {
			m0 = m;
			machine_text(m, machine, sizeof machine);
		} else if (m0 && m->json && strcmp(m->hostname, m0->hostname) != 0) {
			others++;
		}
		const char *ts = set->files[d]->timestamp;
		if (strlen(ts) >= 10) {
			if (!first || strncmp(ts, first, 10) < 0)
				first = ts;
			if (!last || strncmp(ts, last, 10) > 0)
				last = ts;
		}
	}
	int used = snprintf(buf, size, "%s%s", machine, others ? " (and other machines)" : "");
	if (first && used >= 0 && (size_t)used < size)
		snprintf(buf + used, size - (size_t)used,
			 strncmp(first, last, 10) == 0 ? " \u00b7 %.10s" : " \u00b7 %.10s to %.10s",
			 first, last);
}

/* ------------------------------------------------------------ series.gp */

static void put_var(FILE *f, const char *name, double v)
{
	if (isfinite(v))
		fprintf(f, "%s = %.12g\n", name, v);
	else
		fprintf(f, "%s = NaN\n", name);
}

static void put_str_var(FILE *f, const char *name, const char *value)
{
	fprintf(f, "%s = ", name);
	put_quoted(f, value);
	fputc('\n', f);
}

/* A gnuplot `set xtics (...)` list over the model sizes: at the sizes
 * themselves, or at 0, 1, ... (bar groups) when `by_index`. */
static void put_xtics(FILE *f, const char *name, const double *sizes, size_t n, bool by_index)
{
	fprintf(f, "%s = \"(", name);
	for (size_t i = 0; i < n; i++) {
		char label[32];
		cb_plot_size_label(sizes[i], label, sizeof label);
		fprintf(f, "%s\\\"%s\\\" %.12g", i ? ", " : "", label,
			by_index ? (double)i : sizes[i]);
	}
	fputs(")\"\n", f);
}

/* The series list: the 1-based loader numbers of a file's blocks. */
static void put_series(FILE *f, const char *name, const size_t *list, size_t n)
{
	fprintf(f, "%s = \"", name);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%zu", i ? " " : "", list[i] + 1);
	fputs("\"\n", f);
}

static void put_loaders(FILE *f, const struct cb_plotset *set)
{
	static const char *const keys[] = {"LOADERS", "COLORS", "DASHES", "POINTS", "HOLLOW"};
	for (size_t k = 0; k < 5; k++) {
		fprintf(f, "%s = \"", keys[k]);
		for (size_t i = 0; i < set->n_series; i++) {
			struct cb_plot_style st;
			cb_plot_style_of(set->series[i], &st);
			fputs(i ? " " : "", f);
			if (k == 0) /* one word each (an option's value may hold a space) */
				for (const char *p = set->series[i]; *p; p++)
					fputc(*p == ' ' || *p == '"' || *p == '\\' ? '_' : *p, f);
			else if (k == 1)
				fprintf(f, "#%06X", st.rgb);
			else
				fprintf(f, "%d",
					k == 2   ? st.dash
					: k == 3 ? st.point
						 : st.hollow_point);
		}
		fputs("\"\n", f);
	}
	fprintf(f, "NLOADERS = %zu\n", set->n_series);
}

/* ------------------------------------------------------------ marks */

/* What a chart shows where a cell has no figure: "pickle failed (oom)"
 * (the first bad trial's outcome), "torch-load skipped". */
static void mark_text(const struct cb_pcell *c, char *buf, size_t size)
{
	const char *status = c->cell->status, *why = status;
	for (size_t i = 0; i < c->cell->n_trials; i++) {
		const char *o = c->cell->trials[i].outcome;
		if (*o && strcmp(o, "ok") != 0) {
			why = o;
			break;
		}
	}
	if (strcmp(status, "skipped") == 0)
		snprintf(buf, size, "%s skipped", c->label);
	else if (strcmp(status, "ok") == 0 && strcmp(why, "ok") == 0)
		snprintf(buf, size, "%s: no figure", c->label);
	else
		snprintf(buf, size, "%s failed (%s)", c->label, why);
}

/* ------------------------------------------------------------ charts */

struct chart_ctx {
	const struct cb_plotset *set;
	const char *dir;
	FILE *vars;       /* series.gp */
	size_t *list;     /* scratch, n_series entries */
	size_t *per_size; /* scratch, n_sizes entries: marks placed per size */
};

static bool has_cache(const struct cb_plotset *set, const char *cache)
{
	for (size_t i = 0; i < set->n_cells; i++)
		if (strcmp(set->cells[i].cell->key.cache, cache) == 0)
			return true;
	return false;
}

/* Time and throughput: one block per loader (size, figures...), for one
 * cache state, and the marks of cells without figures at y = `mark_y`. */
static int write_xy(struct chart_ctx *x, const char *chart, const char *cache,
		    const char *series_var, const char *marks_var, double mark_y,
		    struct cb_error *err)
{
	const struct cb_plotset *set = x->set;
	char name[64];
	struct sink s, m;
	int rc = sink_open(&s, err);
	if (rc == CB_OK && (rc = sink_open(&m, err)) != CB_OK)
		fclose(s.f), free(s.buf);
	if (rc != CB_OK)
		return rc;
	bool time = strcmp(chart, "time") == 0;
	fprintf(s.f,
		"# ckptbench plot: %s, %s cache; one block per loader (%s)\n# model_bytes %s\n",
		chart, cache, series_var, time ? "median_s ci95_lo_s ci95_hi_s" : "gbps");
	fprintf(m.f, "# cells without a figure: model_bytes y label\n");
	memset(x->per_size, 0, set->n_sizes * sizeof *x->per_size);
	size_t n_series = 0, n_marks = 0;
	for (size_t l = 0; l < set->n_series; l++) {
		size_t rows = 0;
		for (size_t k = 0; k < set->n_sizes; k++) {
			const struct cb_pcell *c = cb_plotset_find(set, l, set->sizes[k], cache);
			if (!c)
				continue;
			if (!cb_pcell_measured(c)) {
				char label[160];
				mark_text(c, label, sizeof label);
				/* Stacked upwards where several share a size
				 * (the y axes are logarithmic). */
				double y = mark_y * pow(1.7, (double)x->per_size[k]++);
				fprintf(m.f, "%.12g %.9g", set->sizes[k], y);
				put_label(m.f, label);
				fputc('\n', m.f);
				n_marks++;
				continue;
			}
			if (rows++ == 0 && n_series)
				fputs("\n\n", s.f);
			fprintf(s.f, "%.12g", set->sizes[k]);
			if (time) {
				put_num(s.f, summary_of(c)->median_s);
				put_num(s.f, summary_of(c)->ci95_lo_s);
				put_num(s.f, summary_of(c)->ci95_hi_s);
			} else {
				put_num(s.f, summary_of(c)->gbps);
			}
			fputc('\n', s.f);
		}
		if (rows)
			x->list[n_series++] = l;
	}
	put_series(x->vars, series_var, x->list, n_series);
	fprintf(x->vars, "%s = %zu\n", marks_var, n_marks);
	snprintf(name, sizeof name, "%s-%s.dat", chart, cache);
	rc = sink_close(&s, x->dir, name, err);
	snprintf(name, sizeof name, "%s-marks-%s.dat", chart, cache);
	if (rc == CB_OK)
		rc = sink_close(&m, x->dir, name, err);
	else
		fclose(m.f), free(m.buf);
	return rc;
}

/* The y range the time and throughput charts share across their panels,
 * so cold and warm compare by eye. */
static void xy_range(const struct cb_plotset *set, bool time, double *lo, double *hi)
{
	*lo = INFINITY;
	*hi = -INFINITY;
	for (size_t i = 0; i < set->n_cells; i++) {
		const struct cb_pcell *c = &set->cells[i];
		if (!cb_pcell_measured(c))
			continue;
		const struct cb_results_summary *s = summary_of(c);
		double a = time ? s->median_s : s->gbps;
		double b = a;
		if (time) { /* fmin and fmax pass over a NaN end */
			a = fmin(a, s->ci95_lo_s);
			b = fmax(b, s->ci95_hi_s);
		}
		if (a > 0)
			*lo = fmin(*lo, a);
		*hi = fmax(*hi, b);
	}
	if (!isfinite(*lo) || !isfinite(*hi)) {
		*lo = 0.01;
		*hi = 1;
	}
}

/* The read ceilings measured at several file sizes, as a curve for the
 * throughput panel of `cache`: the paired reads of the datasets' safetensors
 * files where the run made them (the ceilings its cells were held against),
 * else the calibration's own file and its "by_size" entries.
 * throughput-ceil-CACHE.dat has rows "file_bytes gbps" by size (none unless
 * there are two sizes or more), and VAR the number of rows. Widens
 * [*lo, *hi] to them. */
static int write_ceiling_curve(struct chart_ctx *x, const char *cache, const char *var, double *lo,
			       double *hi, struct cb_error *err)
{
	const struct cb_results_calibration *cal = x->set->calibration;
	bool cold = strcmp(cache, "cold") == 0;
	double bytes[65], gbps[65];
	size_t n = 0;
	for (size_t i = 0; i < cal->n_paired_reads && n < 65; i++) {
		const struct cb_results_paired_read *e = &cal->paired_reads[i];
		if (!strcmp(e->format, "safetensors") && !strcmp(e->cache, cache) &&
		    e->file_bytes > 0 && e->read_gbps > 0)
			bytes[n] = e->file_bytes, gbps[n++] = e->read_gbps;
	}
	bool have_paired = n > 0;
	double main_gbps = cold ? cal->cold_read_gbps : cal->warm_read_gbps;
	if (!have_paired && cal->file_bytes > 0 && main_gbps > 0)
		bytes[n] = cal->file_bytes, gbps[n++] = main_gbps;
	for (size_t i = 0; !have_paired && i < cal->n_by_size && n < 65; i++) {
		const struct cb_results_sized_ceiling *e = &cal->by_size[i];
		double v = cold ? e->cold_read_gbps : e->warm_read_gbps;
		if (e->file_bytes > 0 && v > 0)
			bytes[n] = e->file_bytes, gbps[n++] = v;
	}
	for (size_t i = 1; i < n; i++) /* by size: a handful of rows */
		for (size_t j = i; j > 0 && bytes[j - 1] > bytes[j]; j--) {
			double b = bytes[j], g = gbps[j];
			bytes[j] = bytes[j - 1], gbps[j] = gbps[j - 1];
			bytes[j - 1] = b, gbps[j - 1] = g;
		}
	struct sink c;
	int rc = sink_open(&c, err);
	if (rc != CB_OK)
		return rc;
	fprintf(c.f,
		"# ckptbench plot: the %s read ceiling at each calibrated file size\n"
		"# file_bytes gbps\n",
		cache);
	if (n < 2) /* one size: the horizontal line says it all */
		n = 0;
	for (size_t i = 0; i < n; i++) {
		fprintf(c.f, "%.12g", bytes[i]);
		put_num(c.f, gbps[i]);
		fputc('\n', c.f);
		*lo = fmin(*lo, gbps[i]);
		*hi = fmax(*hi, gbps[i]);
	}
	fprintf(x->vars, "%s = %zu\n", var, n);
	char name[64];
	snprintf(name, sizeof name, "throughput-ceil-%s.dat", cache);
	return sink_close(&c, x->dir, name, err);
}

static int write_time_and_throughput(struct chart_ctx *x, struct cb_error *err)
{
	double lo, hi;
	xy_range(x->set, true, &lo, &hi);
	put_var(x->vars, "TIME_YMIN", lo / 4);
	put_var(x->vars, "TIME_YMAX", hi * 2);
	int rc = write_xy(x, "time", "cold", "TIME_COLD", "TIME_MARKS_COLD", lo / 3, err);
	if (rc == CB_OK)
		rc = write_xy(x, "time", "warm", "TIME_WARM", "TIME_MARKS_WARM", lo / 3, err);
	xy_range(x->set, false, &lo, &hi);
	const struct cb_results_calibration *cal = x->set->calibration;
	const double ceilings[] = {cal->cold_read_gbps, cal->warm_read_gbps, cal->memcpy_gbps,
				   cal->h2d_gbps};
	for (size_t i = 0; i < 4; i++)
		if (isfinite(ceilings[i]) && ceilings[i] > 0) {
			lo = fmin(lo, ceilings[i]);
			hi = fmax(hi, ceilings[i]);
		}
	if (rc == CB_OK)
		rc = write_ceiling_curve(x, "cold", "THR_CEIL_COLD", &lo, &hi, err);
	if (rc == CB_OK)
		rc = write_ceiling_curve(x, "warm", "THR_CEIL_WARM", &lo, &hi, err);
	put_var(x->vars, "THR_YMIN", lo / 4);
	put_var(x->vars, "THR_YMAX", hi * 2.5);
	put_var(x->vars, "CEIL_COLD_READ", cal->cold_read_gbps);
	put_var(x->vars, "CEIL_WARM_READ", cal->warm_read_gbps);
	put_var(x->vars, "CEIL_MEMCPY", cal->memcpy_gbps);
	put_var(x->vars, "CEIL_H2D", cal->h2d_gbps);
	if (rc == CB_OK)
		rc = write_xy(x, "throughput", "cold", "THR_COLD", "THR_MARKS_COLD", lo / 3, err);
	if (rc == CB_OK)
		rc = write_xy(x, "throughput", "warm", "THR_WARM", "THR_MARKS_WARM", lo / 3, err);
	return rc;
}

static double vram_of(const struct cb_pcell *c)
{
	return c ? summary_of(c)->peak_vram_over_model : NAN;
}

/* Bar charts group the cells by size at x = 0, 1, ...; each loader with a
 * cell in the cache state (with a VRAM figure, when `vram`) keeps one
 * slot in every group, so its bar sits in the same place across sizes.
 * slot[] gets SIZE_MAX for loaders without a slot; returns the count. */
static size_t bar_slots(const struct cb_plotset *set, const char *cache, bool vram, size_t *slot)
{
	size_t slots = 0;
	for (size_t l = 0; l < set->n_series; l++) {
		slot[l] = SIZE_MAX;
		for (size_t k = 0; k < set->n_sizes && slot[l] == SIZE_MAX; k++) {
			const struct cb_pcell *c = cb_plotset_find(set, l, set->sizes[k], cache);
			if (c && (!vram || isfinite(vram_of(c))))
				slot[l] = slots++;
		}
	}
	return slots;
}

static double bar_x(size_t group, size_t slot, size_t slots, double width)
{
	return (double)group + ((double)slot - (double)(slots - 1) / 2) * width;
}

/* Memory: grouped bars, anonymous and file-backed stacked (bar_slots). */
static int write_memory(struct chart_ctx *x, struct cb_error *err)
{
	const struct cb_plotset *set = x->set;
	const char *cache = has_cache(set, "cold") ? "cold" : "warm";
	size_t *slot = calloc(set->n_series + 1, sizeof *slot);
	if (!slot)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	size_t slots = bar_slots(set, cache, false, slot);
	double width = 0.84 / (double)(slots ? slots : 1);
	struct sink s, m;
	int rc = sink_open(&s, err);
	if (rc == CB_OK && (rc = sink_open(&m, err)) != CB_OK)
		fclose(s.f), free(s.buf);
	if (rc != CB_OK) {
		free(slot);
		return rc;
	}
	fprintf(s.f,
		"# ckptbench plot: memory, %s cache; one block per loader (MEM_SERIES)\n"
		"# x anon_over_model file_over_model rss_over_model model_bytes\n",
		cache);
	fprintf(m.f, "# cells without a figure: x y label\n");
	size_t n_series = 0, n_marks = 0;
	double ymax = 2.0;
	for (size_t l = 0; l < set->n_series; l++) {
		size_t rows = 0;
		for (size_t k = 0; k < set->n_sizes && slot[l] != SIZE_MAX; k++) {
			const struct cb_pcell *c = cb_plotset_find(set, l, set->sizes[k], cache);
			double bx = bar_x(k, slot[l], slots, width);
			double rss = c ? summary_of(c)->peak_rss_over_model : NAN;
			if (!c)
				continue;
			if (!cb_pcell_measured(c) || !isfinite(rss)) {
				char label[160];
				mark_text(c, label, sizeof label);
				fprintf(m.f, "%.12g 0.04", bx);
				put_label(m.f, label);
				fputc('\n', m.f);
				n_marks++;
				continue;
			}
			if (rows++ == 0 && n_series)
				fputs("\n\n", s.f);
			double anon = summary_of(c)->peak_anon_over_model;
			double file = summary_of(c)->peak_file_over_model;
			fprintf(s.f, "%.12g", bx);
			put_num(s.f, isfinite(anon) ? fmax(anon, 0) : NAN);
			put_num(s.f, isfinite(file) ? fmax(file, 0) : NAN);
			put_num(s.f, rss);
			fprintf(s.f, " %.12g\n", set->sizes[k]);
			ymax = fmax(ymax, rss);
		}
		if (rows)
			x->list[n_series++] = l;
	}
	free(slot);
	put_str_var(x->vars, "MEM_CACHE", cache);
	put_series(x->vars, "MEM_SERIES", x->list, n_series);
	fprintf(x->vars, "MEM_MARKS = %zu\nMEM_GROUPS = %zu\n", n_marks, set->n_sizes);
	put_var(x->vars, "MEM_BARW", width);
	put_var(x->vars, "MEM_YMAX", ymax * 1.32);
	put_xtics(x->vars, "MEM_XTICS", set->sizes, set->n_sizes, true);
	rc = sink_close(&s, x->dir, "memory.dat", err);
	if (rc == CB_OK)
		rc = sink_close(&m, x->dir, "memory-marks.dat", err);
	else
		fclose(m.f), free(m.buf);
	return rc;
}

/* VRAM: peak VRAM above baseline over the model's size, as bars like the
 * memory chart's, for the cache state with the most such cells. */
static int write_vram(struct chart_ctx *x, bool *any, struct cb_error *err)
{
	const struct cb_plotset *set = x->set;
	size_t count[2] = {0, 0};
	for (size_t i = 0; i < set->n_cells; i++)
		if (isfinite(vram_of(&set->cells[i])))
			count[strcmp(set->cells[i].cell->key.cache, "cold") == 0 ? 0 : 1]++;
	*any = count[0] + count[1] > 0;
	if (!*any)
		return CB_OK;
	const char *cache = count[0] >= count[1] ? "cold" : "warm";
	size_t *slot = calloc(set->n_series + 1, sizeof *slot);
	struct sink s;
	int rc = slot ? sink_open(&s, err) : CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	if (rc != CB_OK) {
		free(slot);
		return rc;
	}
	size_t slots = bar_slots(set, cache, true, slot);
	double width = 0.84 / (double)(slots ? slots : 1);
	fprintf(s.f,
		"# ckptbench plot: vram, %s cache; one block per loader (VRAM_SERIES)\n"
		"# x vram_over_model model_bytes\n",
		cache);
	size_t n_series = 0;
	double ymax = 1.0;
	for (size_t l = 0; l < set->n_series; l++) {
		size_t rows = 0;
		for (size_t k = 0; k < set->n_sizes && slot[l] != SIZE_MAX; k++) {
			double v = vram_of(cb_plotset_find(set, l, set->sizes[k], cache));
			if (!isfinite(v))
				continue;
			if (rows++ == 0 && n_series)
				fputs("\n\n", s.f);
			fprintf(s.f, "%.12g %.9g %.12g\n", bar_x(k, slot[l], slots, width), v,
				set->sizes[k]);
			ymax = fmax(ymax, v);
		}
		if (rows)
			x->list[n_series++] = l;
	}
	free(slot);
	put_str_var(x->vars, "VRAM_CACHE", cache);
	put_series(x->vars, "VRAM_SERIES", x->list, n_series);
	put_var(x->vars, "VRAM_BARW", width);
	put_var(x->vars, "VRAM_YMAX", fmax(ymax * 1.32, 2.4));
	return sink_close(&s, x->dir, "vram.dat", err);
}

/* ------------------------------------------------------------ timeline */

static const struct cb_results_trial *timeline_trial(const struct cb_pcell *c)
{
	if (!cb_pcell_measured(c))
		return NULL;
	for (size_t i = 0; i < c->cell->n_trials; i++) {
		const struct cb_results_trial *t = &c->cell->trials[i];
		if (t->ok && t->timeline && t->timeline->n > 1)
			return t;
	}
	return NULL;
}

/* The (dataset, cache) with timelines for the most series; cold before
 * warm, then the larger model, on ties. */
static const struct cb_pcell *pick_timeline(const struct cb_plotset *set)
{
	const struct cb_pcell *best = NULL;
	size_t best_n = 0;
	for (size_t i = 0; i < set->n_cells; i++) {
		const struct cb_pcell *c = &set->cells[i];
		if (!timeline_trial(c))
			continue;
		const struct cb_cell_key *k = &c->cell->key;
		size_t n = 0;
		for (size_t j = 0; j < set->n_cells; j++)
			if (strcmp(set->cells[j].cell->key.dataset, k->dataset) == 0 &&
			    strcmp(set->cells[j].cell->key.cache, k->cache) == 0 &&
			    timeline_trial(&set->cells[j]))
				n++;
		const struct cb_cell_key *b = best ? &best->cell->key : NULL;
		bool better = !best || n > best_n ||
			      (n == best_n && strcmp(k->cache, "cold") == 0 &&
			       strcmp(b->cache, "cold") != 0) ||
			      (n == best_n && strcmp(k->cache, b->cache) == 0 &&
			       c->cell->model_bytes > best->cell->model_bytes);
		if (better) {
			best = c;
			best_n = n;
		}
	}
	return best;
}

/* The figure the samples are measured from: the trial's own baseline when
 * the harness recorded one, else the first sample. */
static double base_of(double baseline, const double *v)
{
	return isfinite(baseline) ? baseline : v[0];
}

struct tl_extent {
	double tmax, ymax;
	bool vram;
};

static void write_one_timeline(FILE *s, FILE *p, const struct cb_pcell *c,
			       const struct cb_results_trial *trial, struct tl_extent *ext)
{
	const struct cb_results_timeline *tl = trial->timeline;
	double model = c->cell->model_bytes > 0 ? c->cell->model_bytes : NAN;
	double b_anon = base_of(trial->baseline_anon_bytes, tl->anon_bytes);
	double b_file = base_of(trial->baseline_file_bytes, tl->file_bytes);
	double b_vram = tl->vram_bytes ? base_of(trial->baseline_vram_bytes, tl->vram_bytes) : NAN;
	if (tl->vram_bytes && isfinite(trial->peak_vram_bytes))
		ext->vram = true;
	for (size_t i = 0; i < tl->n; i++) {
		double a = (tl->anon_bytes[i] - b_anon) / model,
		       f = (tl->file_bytes[i] - b_file) / model;
		double v = tl->vram_bytes ? (tl->vram_bytes[i] - b_vram) / model : NAN;
		fprintf(s, "%.12g", tl->t_s[i]);
		put_num(s, a);
		put_num(s, f);
		put_num(s, v);
		fputc('\n', s);
		ext->tmax = fmax(ext->tmax, tl->t_s[i]);
		ext->ymax = fmax(ext->ymax, fmax(a, fmax(f, isfinite(v) ? v : 0)));
	}
	for (size_t i = 0; i < tl->n_phases; i++) {
		fprintf(p, "%.12g %.9g", tl->phases[i].start_s, tl->phases[i].end_s);
		put_label(p, tl->phases[i].name);
		fputc('\n', p);
	}
	if (!tl->n_phases)
		fputs("? ? \"\"\n", p); /* keeps the block numbering */
}

static int write_timeline(struct chart_ctx *x, bool *any, struct cb_error *err)
{
	const struct cb_plotset *set = x->set;
	const struct cb_pcell *pick = pick_timeline(set);
	*any = pick != NULL;
	if (!pick)
		return CB_OK;
	const char *dataset = pick->cell->key.dataset, *cache = pick->cell->key.cache;
	struct sink s, p;
	int rc = sink_open(&s, err);
	if (rc == CB_OK && (rc = sink_open(&p, err)) != CB_OK)
		fclose(s.f), free(s.buf);
	if (rc != CB_OK)
		return rc;
	fprintf(s.f,
		"# ckptbench plot: timeline of %s, %s cache; one block per loader "
		"(TL_SERIES)\n# t_s anon_over_model file_over_model vram_over_model "
		"(above the trial's baseline)\n",
		dataset, cache);
	fprintf(p.f, "# phases, one block per loader (TL_SERIES): start_s end_s name\n");
	struct tl_extent ext = {0, 2.0, false};
	size_t n_series = 0;
	for (size_t l = 0; l < set->n_series; l++)
		for (size_t i = 0; i < set->n_cells; i++) {
			const struct cb_pcell *c = &set->cells[i];
			const struct cb_results_trial *trial = timeline_trial(c);
			if (c->series != l || !trial ||
			    strcmp(c->cell->key.dataset, dataset) != 0 ||
			    strcmp(c->cell->key.cache, cache) != 0)
				continue;
			if (n_series) {
				fputs("\n\n", s.f);
				fputs("\n\n", p.f);
			}
			write_one_timeline(s.f, p.f, c, trial, &ext);
			x->list[n_series++] = l;
			break;
		}
	char size[32];
	cb_plot_size_label(pick->cell->model_bytes, size, sizeof size);
	put_series(x->vars, "TL_SERIES", x->list, n_series);
	fprintf(x->vars, "TL_N = %zu\nTL_VRAM = %d\n", n_series, ext.vram);
	put_str_var(x->vars, "TL_DATASET", dataset);
	put_str_var(x->vars, "TL_CACHE", cache);
	put_str_var(x->vars, "TL_SIZE", size);
	put_var(x->vars, "TL_TMAX", ext.tmax);
	put_var(x->vars, "TL_YMAX", ext.ymax * 1.2);
	rc = sink_close(&s, x->dir, "timeline.dat", err);
	if (rc == CB_OK)
		rc = sink_close(&p, x->dir, "timeline-phases.dat", err);
	else
		fclose(p.f), free(p.buf);
	return rc;
}

/* ------------------------------------------------------------ all */

/* ------------------------------------------------------------ chart blocks */

/* Whether a later file of the set holds cell c (of file f) again: the
 * charts drawn from the files themselves take the latest, as the set's
 * cells do. */
static bool superseded(const struct cb_plotset *set, size_t f, const struct cb_results_cell *c)
{
	for (size_t g = set->n_files; g-- > f + 1;)
		if (cb_results_find(set->files[g], &c->key, CB_KEY_ALL))
			return true;
	return false;
}

/* The one (dataset, cache state) a chart of the cells `accept` takes is
 * drawn from: the first such cell's dataset, in `prefer` where the dataset
 * has an accepted cell in it, else in `otherwise`. False when no cell is
 * accepted. */
static bool pick_block(const struct cb_plotset *set, bool (*accept)(const struct cb_results_cell *),
		       const char *prefer, const char *otherwise, const char **dataset_out,
		       const char **cache_out)
{
	*dataset_out = NULL;
	*cache_out = otherwise;
	for (size_t f = 0; f < set->n_files; f++)
		for (size_t i = 0; i < set->files[f]->n_cells; i++) {
			const struct cb_results_cell *c = &set->files[f]->cells[i];
			if (!accept(c))
				continue;
			if (!*dataset_out)
				*dataset_out = c->key.dataset;
			if (strcmp(c->key.dataset, *dataset_out) == 0 &&
			    strcmp(c->key.cache, prefer) == 0)
				*cache_out = prefer;
		}
	return *dataset_out != NULL;
}

/* ------------------------------------------------------------ lazy loading */

/* The lazy-loading chart (plots/lazy.gp; docs/partial-loads.md): for each
 * loader, against the tensor-parallel split (1, 2, 4, 8 ranks), its read
 * amplification (bytes read from storage over the bytes its rank asked
 * for; ideal 1x) and its peak memory over the whole model (ideal 1/N). A
 * split's point is the median over its ranks. The split of 1 is the whole
 * model's cell, whose bytes read are its trials' median over the model.
 * Drawn from one dataset (the first with a split) in one cache state (cold
 * where there is one: warm loads read nothing from storage). */

#define LAZY_MAX_SPLITS 16
#define LAZY_MAX_LOADERS 32

struct lazy_series {
	char loader[64], options[512];
	char name[160]; /* the loader, with its options where it has two series */
	double tp[LAZY_MAX_SPLITS];
	double amp[LAZY_MAX_SPLITS][64], peak[LAZY_MAX_SPLITS][64]; /* per rank */
	size_t n_rank[LAZY_MAX_SPLITS];
	size_t n_tp;
};

/* Bytes read from storage over the bytes asked for: the summary's for a
 * part; for a whole-model cell, its trials' median read over the model. */
static double lazy_amplification(const struct cb_results_cell *c)
{
	const json_t *s = json_object_get(c->json, "summary");
	if (c->key.selection)
		return cb_json_num(s, "read_amplification");
	const json_t *trials = json_object_get(c->json, "trials");
	double v[256];
	size_t n = 0;
	for (size_t i = 0; i < json_array_size(trials) && n < 256; i++) {
		const json_t *t = json_array_get(trials, i);
		if (strcmp(cb_json_str(t, "outcome"), "ok") == 0)
			v[n++] = cb_json_num(t, "read_bytes");
	}
	return c->model_bytes > 0 ? cb_stats_median_finite(v, n) / c->model_bytes : NAN;
}

/* The series of (loader, options), made on first use: named after the
 * loader, and after its options too where the loader has another series. */
static struct lazy_series *lazy_find(struct lazy_series *list, size_t *n, const char *loader,
				     const char *options)
{
	bool twin = false;
	for (size_t i = 0; i < *n; i++) {
		if (strcmp(list[i].loader, loader) != 0)
			continue;
		if (strcmp(list[i].options, options) == 0)
			return &list[i];
		twin = true;
	}
	if (*n == LAZY_MAX_LOADERS)
		return NULL;
	struct lazy_series *l = &list[(*n)++];
	memset(l, 0, sizeof *l);
	snprintf(l->loader, sizeof l->loader, "%s", loader);
	snprintf(l->options, sizeof l->options, "%s", options);
	snprintf(l->name, sizeof l->name, "%s%s%s", loader, twin ? ":" : "", twin ? options : "");
	return l;
}

static void lazy_add(struct lazy_series *l, double tp, double amp, double peak)
{
	size_t k = 0;
	while (k < l->n_tp && l->tp[k] != tp)
		k++;
	if (k == l->n_tp) {
		if (l->n_tp == LAZY_MAX_SPLITS)
			return;
		l->tp[l->n_tp++] = tp;
	}
	if (l->n_rank[k] < 64) {
		l->amp[k][l->n_rank[k]] = amp;
		l->peak[k][l->n_rank[k]++] = peak;
	}
}

/* The cell's place on the chart: its split (1 for the whole model), or 0
 * when it is not on it (another dataset or cache, a selection of tensors,
 * not measured). */
static double lazy_split(const struct cb_results_cell *c, const char *dataset, const char *cache)
{
	if (strcmp(c->key.dataset, dataset) != 0 || strcmp(c->key.cache, cache) != 0 ||
	    c->key.ranks || c->key.storage || !cb_results_cell_measured(c))
		return 0;
	if (!c->key.selection)
		return 1;
	const json_t *sel = json_object_get(c->json, "selection");
	if (json_array_size(json_object_get(sel, "select")))
		return 0; /* a selection of tensors is not a split of the model */
	return cb_json_num(sel, "tp");
}

/* A tensor-parallel cell of 2 ranks or more: the lazy chart's. */
static bool is_split(const struct cb_results_cell *c)
{
	return c->key.selection && lazy_split(c, c->key.dataset, c->key.cache) >= 2;
}

static int write_lazy(struct chart_ctx *x, bool *any, struct cb_error *err)
{
	*any = false;
	const char *dataset, *cache;
	if (!pick_block(x->set, is_split, "cold", "warm", &dataset, &cache))
		return CB_OK;
	struct lazy_series *list = calloc(LAZY_MAX_LOADERS, sizeof *list);
	if (!list)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	size_t n = 0;
	/* Later files first: a cell measured again replaces the earlier one
	 * (as the set's cells do), so each (loader, split, rank) counts once. */
	for (size_t f = x->set->n_files; f-- > 0;)
		for (size_t i = 0; i < x->set->files[f]->n_cells; i++) {
			const struct cb_results_cell *c = &x->set->files[f]->cells[i];
			double tp = lazy_split(c, dataset, cache);
			if (tp < 1)
				continue;
			if (superseded(x->set, f, c))
				continue;
			struct lazy_series *l = lazy_find(list, &n, c->key.loader, c->key.options);
			if (l)
				lazy_add(l, tp, lazy_amplification(c),
					 cb_json_num(json_object_get(c->json, "summary"),
						     "peak_rss_over_model"));
		}
	struct sink dat;
	int rc = sink_open(&dat, err);
	double amp_max = 1, tp_max = 1;
	fprintf(x->vars, "LAZY_NAMES = \"");
	for (size_t i = 0; rc == CB_OK && i < n; i++) {
		fprintf(x->vars, "%s", i ? " " : "");
		for (const char *p = list[i].name; *p; p++)
			fputc(*p == ' ' || *p == '"' || *p == '\\' ? '_' : *p, x->vars);
		fprintf(dat.f, "%s# %s: split  read_amplification  peak_rss_over_model\n",
			i ? "\n\n" : "", list[i].name);
		/* The splits in ascending order: each the least above the last. */
		for (double last = 0;;) {
			size_t k = list[i].n_tp;
			for (size_t b = 0; b < list[i].n_tp; b++)
				if (list[i].tp[b] > last &&
				    (k == list[i].n_tp || list[i].tp[b] < list[i].tp[k]))
					k = b;
			if (k == list[i].n_tp)
				break;
			last = list[i].tp[k];
			double amp = cb_stats_median_finite(list[i].amp[k], list[i].n_rank[k]);
			double peak = cb_stats_median_finite(list[i].peak[k], list[i].n_rank[k]);
			fprintf(dat.f, "%g", last);
			put_num(dat.f, amp);
			put_num(dat.f, peak);
			fputc('\n', dat.f);
			amp_max = isfinite(amp) && amp > amp_max ? amp : amp_max;
			tp_max = last > tp_max ? last : tp_max;
		}
	}
	fprintf(x->vars, "\"\nLAZY_COLORS = \"");
	for (size_t i = 0; i < n; i++) {
		struct cb_plot_style st;
		cb_plot_style_of(list[i].name, &st);
		fprintf(x->vars, "%s#%06X", i ? " " : "", st.rgb);
	}
	fprintf(x->vars, "\"\nLAZY_POINTS = \"");
	for (size_t i = 0; i < n; i++) {
		struct cb_plot_style st;
		cb_plot_style_of(list[i].name, &st);
		fprintf(x->vars, "%s%d", i ? " " : "", st.point);
	}
	fprintf(x->vars, "\"\nLAZY_N = %zu\n", n);
	put_str_var(x->vars, "LAZY_DATASET", dataset);
	put_str_var(x->vars, "LAZY_CACHE", cache);
	put_var(x->vars, "LAZY_AMP_MAX", amp_max);
	put_var(x->vars, "LAZY_TP_MAX", tp_max);
	free(list);
	if (rc == CB_OK)
		rc = sink_close(&dat, x->dir, "lazy.dat", err);
	*any = rc == CB_OK && n > 0;
	return rc;
}

/* ------------------------------------------------------------ storage */

/* The first `len` bytes of a name, NUL-terminated, in a static buffer. */
static const char *fmt_dataset(const char *name, size_t len)
{
	static char buf[256];
	snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), name);
	return buf;
}

/* The storage chart (plots/storage.gp; docs/storage.md): for each storage
 * profile, each loader's load time, its share of that profile's ceiling
 * (the paired read of the same files on the same storage) and its peak
 * memory over the model: where mapping wins (local, warm) and where it
 * loses (throttled, network), and what reading the whole file first costs
 * in memory. One dataset (the first with a profile), one cache state (cold
 * where there is one). Whole-model cells of one process only. */

#define STORAGE_MAX_PROFILES 16
#define STORAGE_MAX_LOADERS 32

/* The cell's dataset as generated: the name before "@PROFILE". */
static size_t storage_base_len(const char *dataset)
{
	const char *at = strrchr(dataset, '@');
	return at ? (size_t)(at - dataset) : strlen(dataset);
}

static bool storage_cell(const struct cb_results_cell *c, const char *dataset, size_t len,
			 const char *cache)
{
	return c->key.storage && !c->key.selection && !c->key.ranks &&
	       storage_base_len(c->key.dataset) == len &&
	       strncmp(c->key.dataset, dataset, len) == 0 && strcmp(c->key.cache, cache) == 0;
}

static size_t storage_index(const char **list, size_t *n, size_t max, const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(list[i], name) == 0)
			return i;
	if (*n == max)
		return SIZE_MAX;
	list[*n] = name;
	return (*n)++;
}

static int write_storage(struct chart_ctx *x, bool *any, struct cb_error *err)
{
	*any = false;
	const struct cb_plotset *set = x->set;
	const char *dataset = NULL, *cache = "warm";
	for (size_t f = 0; f < set->n_files; f++)
		for (size_t i = 0; i < set->files[f]->n_cells; i++) {
			const struct cb_results_cell *c = &set->files[f]->cells[i];
			if (!c->key.storage || c->key.selection || c->key.ranks)
				continue;
			if (!dataset)
				dataset = c->key.dataset;
			size_t len = storage_base_len(dataset);
			if (storage_base_len(c->key.dataset) == len &&
			    strncmp(c->key.dataset, dataset, len) == 0 &&
			    strcmp(c->key.cache, "cold") == 0)
				cache = "cold";
		}
	if (!dataset)
		return CB_OK;
	size_t len = storage_base_len(dataset);
	const char *profiles[STORAGE_MAX_PROFILES], *loaders[STORAGE_MAX_LOADERS];
	size_t n_prof = 0, n_load = 0;
	for (size_t f = 0; f < set->n_files; f++)
		for (size_t i = 0; i < set->files[f]->n_cells; i++) {
			const struct cb_results_cell *c = &set->files[f]->cells[i];
			if (!storage_cell(c, dataset, len, cache) || !cb_results_cell_measured(c))
				continue;
			storage_index(profiles, &n_prof, STORAGE_MAX_PROFILES, c->key.storage);
			storage_index(loaders, &n_load, STORAGE_MAX_LOADERS, c->key.loader);
		}
	if (!n_prof || !n_load)
		return CB_OK;
	struct sink dat;
	int rc = sink_open(&dat, err);
	if (rc != CB_OK)
		return rc;
	double width = 0.84 / (double)n_load;
	double t_max = 0, frac_max = 1, rss_max = 2;
	fprintf(dat.f,
		"# ckptbench plot: storage, %s cache; one block per loader (STO_NAMES)\n"
		"# x median_s load_ceiling_fraction peak_rss_over_model "
		"major_faults_per_mib\n",
		cache);
	for (size_t l = 0; l < n_load; l++) {
		fprintf(dat.f, "%s# %s\n", l ? "\n\n" : "", loaders[l]);
		for (size_t p = 0; p < n_prof; p++) {
			/* The latest file's cell for (loader, profile). */
			const struct cb_results_cell *pick = NULL;
			for (size_t f = 0; f < set->n_files; f++)
				for (size_t i = 0; i < set->files[f]->n_cells; i++) {
					const struct cb_results_cell *c = &set->files[f]->cells[i];
					if (storage_cell(c, dataset, len, cache) &&
					    strcmp(c->key.loader, loaders[l]) == 0 &&
					    strcmp(c->key.storage, profiles[p]) == 0 &&
					    cb_results_cell_measured(c))
						pick = c;
				}
			if (!pick)
				continue;
			const json_t *sj = json_object_get(pick->json, "summary");
			double t = pick->summary.median_s;
			double frac = pick->summary.load_ceiling_fraction;
			double rss = pick->summary.peak_rss_over_model;
			fprintf(dat.f, "%.12g", bar_x(p, l, n_load, width));
			put_num(dat.f, t);
			put_num(dat.f, frac);
			put_num(dat.f, rss);
			put_num(dat.f, cb_json_num(sj, "major_faults_per_mib"));
			fputc('\n', dat.f);
			t_max = isfinite(t) && t > t_max ? t : t_max;
			frac_max = isfinite(frac) && frac > frac_max ? frac : frac_max;
			rss_max = isfinite(rss) && rss > rss_max ? rss : rss_max;
		}
	}
	fprintf(x->vars, "STO_NAMES = \"");
	for (size_t l = 0; l < n_load; l++)
		fprintf(x->vars, "%s%s", l ? " " : "", loaders[l]);
	fprintf(x->vars, "\"\nSTO_COLORS = \"");
	for (size_t l = 0; l < n_load; l++) {
		struct cb_plot_style st;
		cb_plot_style_of(loaders[l], &st);
		fprintf(x->vars, "%s#%06X", l ? " " : "", st.rgb);
	}
	fprintf(x->vars, "\"\nSTO_XTICS = \"(");
	for (size_t p = 0; p < n_prof; p++) {
		fprintf(x->vars, "%s\\\"", p ? ", " : "");
		for (const char *q = profiles[p]; *q; q++)
			fputc(*q == '"' || *q == '\\' ? '_' : *q, x->vars);
		fprintf(x->vars, "\\\" %zu", p);
	}
	fprintf(x->vars, ")\"\nSTO_N = %zu\nSTO_GROUPS = %zu\n", n_load, n_prof);
	fprintf(x->vars, "STO_DATASET = ");
	put_quoted(x->vars, fmt_dataset(dataset, len));
	fputc('\n', x->vars);
	put_str_var(x->vars, "STO_CACHE", cache);
	put_var(x->vars, "STO_BARW", width);
	put_var(x->vars, "STO_TMAX", t_max * 1.3);
	put_var(x->vars, "STO_FRACMAX", frac_max * 1.2);
	put_var(x->vars, "STO_RSSMAX", rss_max * 1.25);
	rc = sink_close(&dat, x->dir, "storage.dat", err);
	*any = rc == CB_OK;
	return rc;
}

/* ------------------------------------------------------------ ranks */

/* The many-ranks charts (plots/ranks-memory.gp, plots/ranks-bandwidth.gp;
 * docs/mpi.md): for each loader and distribution, against the ranks per
 * node (1, 2, 4, 8, from one or several runs), the node's memory over the
 * model (its ranks' anonymous memory added up, and the drop of
 * MemAvailable), with the N x and 2N x lines; and the aggregate GB/s
 * against the ranks in all. One dataset (the first run under MPI), one
 * cache state (warm where there is one: the doubling is a warm load's). */

#define RANKS_MAX_SERIES 32
#define RANKS_MAX_POINTS 16

struct ranks_series {
	char name[96]; /* "pickle/replicate": the loader and the distribution */
	double per_node[RANKS_MAX_POINTS], ranks[RANKS_MAX_POINTS];
	double anon[RANKS_MAX_POINTS], drop[RANKS_MAX_POINTS], agg[RANKS_MAX_POINTS];
	size_t n;
};

/* A measured cell run under MPI: the many-ranks charts'. */
static bool is_ranked(const struct cb_results_cell *c)
{
	return c->key.ranks && cb_results_cell_measured(c);
}

static int write_ranks(struct chart_ctx *x, bool *any, struct cb_error *err)
{
	*any = false;
	const struct cb_plotset *set = x->set;
	const char *dataset, *cache;
	if (!pick_block(set, is_ranked, "warm", "cold", &dataset, &cache))
		return CB_OK;
	struct ranks_series *list = calloc(RANKS_MAX_SERIES, sizeof *list);
	if (!list)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	size_t n = 0;
	double per_node_max = 1, ranks_max = 1, ymax = 2, gmax = 0;
	/* Later files replace earlier ones' points of the same key. */
	for (size_t f = set->n_files; f-- > 0;)
		for (size_t i = 0; i < set->files[f]->n_cells; i++) {
			const struct cb_results_cell *c = &set->files[f]->cells[i];
			if (!c->key.ranks || strcmp(c->key.dataset, dataset) != 0 ||
			    strcmp(c->key.cache, cache) != 0 || c->key.selection ||
			    !cb_results_cell_measured(c))
				continue;
			if (superseded(set, f, c))
				continue;
			const json_t *r = json_object_get(c->json, "ranks");
			const json_t *sj = json_object_get(c->json, "summary");
			char name[96];
			snprintf(name, sizeof name, "%s/%s", c->key.loader, cb_json_str(r, "dist"));
			size_t k = 0;
			while (k < n && strcmp(list[k].name, name) != 0)
				k++;
			if (k == n) {
				if (n == RANKS_MAX_SERIES)
					continue;
				snprintf(list[n++].name, sizeof list[0].name, "%s", name);
			}
			struct ranks_series *l = &list[k];
			double ranks = cb_json_num(r, "n"), nodes = cb_json_num(r, "nodes");
			if (l->n == RANKS_MAX_POINTS || !(ranks > 0) || !(nodes > 0))
				continue;
			size_t at = l->n++;
			/* kept in ascending order of ranks per node */
			while (at > 0 && l->per_node[at - 1] > ranks / nodes) {
				l->per_node[at] = l->per_node[at - 1];
				l->ranks[at] = l->ranks[at - 1];
				l->anon[at] = l->anon[at - 1];
				l->drop[at] = l->drop[at - 1];
				l->agg[at] = l->agg[at - 1];
				at--;
			}
			l->per_node[at] = ranks / nodes;
			l->ranks[at] = ranks;
			l->anon[at] = cb_json_num(sj, "node_anon_over_model");
			l->drop[at] = cb_json_num(sj, "node_memavailable_drop_over_model");
			l->agg[at] = cb_json_num(sj, "aggregate_gbps");
			per_node_max = fmax(per_node_max, ranks / nodes);
			ranks_max = fmax(ranks_max, ranks);
			if (isfinite(l->anon[at]))
				ymax = fmax(ymax, l->anon[at]);
			if (isfinite(l->drop[at]))
				ymax = fmax(ymax, l->drop[at]);
			if (isfinite(l->agg[at]))
				gmax = fmax(gmax, l->agg[at]);
		}
	struct sink dat;
	int rc = n ? sink_open(&dat, err) : CB_OK;
	for (size_t k = 0; rc == CB_OK && k < n; k++) {
		fprintf(dat.f,
			"%s# %s: ranks_per_node ranks node_anon_over_model "
			"node_memavailable_drop_over_model aggregate_gbps\n",
			k ? "\n\n" : "", list[k].name);
		for (size_t p = 0; p < list[k].n; p++) {
			fprintf(dat.f, "%g %g", list[k].per_node[p], list[k].ranks[p]);
			put_num(dat.f, list[k].anon[p]);
			put_num(dat.f, list[k].drop[p]);
			put_num(dat.f, list[k].agg[p]);
			fputc('\n', dat.f);
		}
	}
	if (rc == CB_OK && n) {
		fprintf(x->vars, "RANKS_NAMES = \"");
		for (size_t k = 0; k < n; k++)
			fprintf(x->vars, "%s%s", k ? " " : "", list[k].name);
		fprintf(x->vars, "\"\nRANKS_COLORS = \"");
		for (size_t k = 0; k < n; k++) {
			struct cb_plot_style st;
			char loader[96];
			snprintf(loader, sizeof loader, "%.*s", (int)strcspn(list[k].name, "/"),
				 list[k].name);
			cb_plot_style_of(loader, &st);
			fprintf(x->vars, "%s#%06X", k ? " " : "", st.rgb);
		}
		fprintf(x->vars, "\"\nRANKS_N = %zu\n", n);
		put_str_var(x->vars, "RANKS_DATASET", dataset);
		put_str_var(x->vars, "RANKS_CACHE", cache);
		put_var(x->vars, "RANKS_PER_NODE_MAX", per_node_max);
		put_var(x->vars, "RANKS_MAX", ranks_max);
		put_var(x->vars, "RANKS_YMAX", fmax(ymax, 2 * per_node_max) * 1.15);
		put_var(x->vars, "RANKS_GMAX", gmax * 1.2 + 0.01);
		rc = sink_close(&dat, x->dir, "ranks.dat", err);
		*any = rc == CB_OK;
	}
	free(list);
	return rc;
}

int cb_plotdata_write(const struct cb_plotset *set, const char *dir, unsigned *charts_out,
		      struct cb_error *err)
{
	*charts_out = 0;
	struct chart_ctx x = {.set = set, .dir = dir};
	x.list = calloc(set->n_series + 1, sizeof *x.list);
	x.per_size = calloc(set->n_sizes + 1, sizeof *x.per_size);
	struct sink vars;
	int rc = x.list && x.per_size ? sink_open(&vars, err)
				      : CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	if (rc != CB_OK) {
		free(x.list);
		free(x.per_size);
		return rc;
	}
	x.vars = vars.f;
	char subtitle[1024];
	cb_plot_subtitle(set, subtitle, sizeof subtitle);
	if (set->n_not_run) {
		size_t used = strlen(subtitle);
		snprintf(subtitle + used, sizeof subtitle - used,
			 " · %zu loader%s not run here (see the report)", set->n_not_run,
			 set->n_not_run == 1 ? "" : "s");
	}
	fprintf(x.vars, "# ckptbench plot: the variables the templates in plots/ read.\n");
	put_str_var(x.vars, "SUBTITLE", subtitle);
	put_loaders(x.vars, set);
	put_xtics(x.vars, "XTICS", set->sizes, set->n_sizes, false);
	put_var(x.vars, "SIZE_MIN", set->n_sizes ? set->sizes[0] : 1);
	put_var(x.vars, "SIZE_MAX", set->n_sizes ? set->sizes[set->n_sizes - 1] : 2);
	bool timeline = false, vram = false;
	rc = write_memory(&x, err);
	if (rc == CB_OK)
		rc = write_time_and_throughput(&x, err);
	if (rc == CB_OK)
		rc = write_timeline(&x, &timeline, err);
	if (rc == CB_OK)
		rc = write_vram(&x, &vram, err);
	bool lazy = false, storage = false;
	if (rc == CB_OK)
		rc = write_lazy(&x, &lazy, err);
	if (rc == CB_OK)
		rc = write_storage(&x, &storage, err);
	bool ranks = false;
	if (rc == CB_OK)
		rc = write_ranks(&x, &ranks, err);
	if (rc == CB_OK)
		rc = sink_close(&vars, dir, "series.gp", err);
	else
		fclose(vars.f), free(vars.buf);
	free(x.list);
	free(x.per_size);
	if (rc != CB_OK)
		return rc;
	if (set->n_cells)
		*charts_out |=
			1u << CB_CHART_MEMORY | 1u << CB_CHART_TIME | 1u << CB_CHART_THROUGHPUT;
	*charts_out |= (timeline ? 1u << CB_CHART_TIMELINE : 0) | (vram ? 1u << CB_CHART_VRAM : 0);
	*charts_out |= lazy ? 1u << CB_CHART_LAZY : 0;
	*charts_out |= storage ? 1u << CB_CHART_STORAGE : 0;
	*charts_out |= ranks ? 1u << CB_CHART_RANKS_MEMORY | 1u << CB_CHART_RANKS_BANDWIDTH : 0;
	return CB_OK;
}

/* ------------------------------------------------------------ compare */

bool cb_plotdata_is_compare(const json_t *doc)
{
	const char *schema = cb_json_str(doc, "schema");
	return strstr(schema, "compare") != NULL ||
	       (!*schema && json_is_array(json_object_get(doc, "cells")) &&
		json_object_get(json_array_get(json_object_get(doc, "cells"), 0), "verdict"));
}

/* A side's median and CI: nested ("base": {"median", "ci95"}, as compare
 * writes them; "median_s", "ci95_s" too) or flat ("base_median_s",
 * "base_ci95_s"). */
static void side_figures(const json_t *c, const char *side, double out[3])
{
	const json_t *o = json_object_get(c, side);
	char key[64];
	snprintf(key, sizeof key, "%s_median_s", side);
	out[0] = !json_is_object(o)                   ? cb_json_num(c, key)
		 : isfinite(cb_json_num(o, "median")) ? cb_json_num(o, "median")
						      : cb_json_num(o, "median_s");
	snprintf(key, sizeof key, "%s_ci95_s", side);
	const json_t *ci =
		!json_is_object(o)
			? json_object_get(c, key)
			: json_object_get(o, json_object_get(o, "ci95") ? "ci95" : "ci95_s");
	out[1] = json_is_array(ci) ? cb_json_at(ci, 0) : NAN;
	out[2] = json_is_array(ci) ? cb_json_at(ci, 1) : NAN;
}

int cb_plotdata_write_compare(const json_t *doc, const char *path, const char *dir,
			      struct cb_error *err)
{
	const json_t *cells = json_object_get(doc, "cells");
	struct sink s;
	int rc = sink_open(&s, err);
	if (rc != CB_OK)
		return rc;
	fprintf(s.f, "# ckptbench plot: compare\n# i base_median base_lo base_hi head_median "
		     "head_lo head_hi rgb verdict label\n");
	size_t n = 0;
	double lo = INFINITY, hi = -INFINITY;
	for (size_t i = 0; i < json_array_size(cells); i++) {
		const json_t *c = json_array_get(cells, i);
		double b[3], h[3];
		side_figures(c, "base", b);
		side_figures(c, "head", h);
		if (!isfinite(b[0]) || !isfinite(h[0]))
			continue;
		struct cb_plot_style st;
		cb_plot_style_of(cb_json_str(c, "loader"), &st);
		char label[256], size[32] = "";
		if (isfinite(cb_json_num(c, "model_bytes")))
			cb_plot_size_label(cb_json_num(c, "model_bytes"), size, sizeof size);
		snprintf(label, sizeof label, "%s %s %s", cb_json_str(c, "loader"),
			 *size ? size : cb_json_str(c, "dataset"), cb_json_str(c, "cache"));
		fprintf(s.f, "%zu", n++);
		for (int k = 0; k < 3; k++)
			put_num(s.f, b[k]);
		for (int k = 0; k < 3; k++)
			put_num(s.f, h[k]);
		fprintf(s.f, " %u", st.rgb);
		/* The verdict with the change it judged: "regression +19.8%". */
		char verdict[160];
		double ratio = cb_json_num(c, "ratio");
		snprintf(verdict, sizeof verdict, isfinite(ratio) ? "%s %+.1f%%" : "%s",
			 *cb_json_str(c, "verdict") ? cb_json_str(c, "verdict") : "?",
			 (ratio - 1) * 100);
		put_label(s.f, verdict);
		put_label(s.f, label);
		fputc('\n', s.f);
		for (int k = 0; k < 3; k++) {
			if (b[k] > 0)
				lo = fmin(lo, b[k]);
			if (h[k] > 0)
				lo = fmin(lo, h[k]);
			hi = fmax(hi, fmax(b[k], h[k]));
		}
	}
	if (n == 0) {
		fclose(s.f);
		free(s.buf);
		return CB_FAIL(err, CB_EFORMAT, path, NULL,
			       "no cell of the comparison has both a base and a head median");
	}
	rc = sink_close(&s, dir, "compare.dat", err);
	if (rc != CB_OK || (rc = sink_open(&s, err)) != CB_OK)
		return rc;
	char sub[600];
	const json_t *base = json_object_get(doc, "base"), *head = json_object_get(doc, "head");
	snprintf(sub, sizeof sub, "base %s \u00b7 head %s",
		 json_is_object(base) ? cb_json_str(base, "path") : "?",
		 json_is_object(head) ? cb_json_str(head, "path") : "?");
	fprintf(s.f, "# ckptbench plot: the variables plots/compare.gp reads.\n");
	put_str_var(s.f, "CMP_SUBTITLE", sub);
	fprintf(s.f, "CMP_N = %zu\n", n);
	/* What was compared: wall time in seconds unless the document says
	 * otherwise (compare --metric instructions). */
	const char *metric = *cb_json_str(doc, "metric") ? cb_json_str(doc, "metric") : "wall";
	const char *unit = *cb_json_str(doc, "unit") ? cb_json_str(doc, "unit") : "s";
	char axis[160];
	snprintf(axis, sizeof axis, "%s (%s)", strcmp(metric, "wall") == 0 ? "load time" : metric,
		 unit);
	put_str_var(s.f, "CMP_YLABEL", axis);
	put_var(s.f, "CMP_YMIN", isfinite(lo) ? lo / 2 : 0.001);
	put_var(s.f, "CMP_YMAX", isfinite(hi) ? hi * 3 : 1);
	return sink_close(&s, dir, "compare.gp", err);
}
