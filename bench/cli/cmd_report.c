/* ckptbench report: a write-up of one or more results files, in Markdown
 * or as one self-contained HTML page. Every figure comes from the files:
 * the tables print the cells' summaries, and the observations are
 * sentences computed from them, never canned text. The charts come from
 * the plot stage (cb_plot_make), drawn beside the report. */
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_commit.h"
#include "cb_config.h"
#include "cli.h"
#include "fileio.h"
#include "plotdata.h"
#include "results_model.h"
#include "stats.h"

static const char report_help[] =
	"usage: ckptbench report [-o FILE] [--format md|html] [--no-charts] RESULTS.json...\n"
	"\n"
	"Writes a report of the results: the machine, the calibrated ceilings, one\n"
	"table per cache state (loader, size, median, 95% CI, GB/s, % of the ceiling,\n"
	"peak RSS over the model's size, outcome), observations computed from the\n"
	"figures, and the charts of `ckptbench plot`.\n"
	"\n"
	"  -o FILE       the report (default: RESULTS-report.md or .html beside the first\n"
	"                file); the charts go to FILE's name with -charts, beside it\n"
	"  --format F    md (default; charts linked as PNG, each opening its SVG) or\n"
	"                html (one page, the SVG charts inline)\n"
	"  --no-charts   no charts, so no gnuplot needed\n";

/* ------------------------------------------------------------ small helpers */

/* Formats into one of a few rotating static buffers, so several can appear
 * in one printf. Not thread-safe; report is single-threaded. */
static const char *fmt(const char *f, ...) CB_PRINTF(1, 2);
static const char *fmt(const char *f, ...)
{
	static char bufs[32][1024];
	static unsigned next;
	char *b = bufs[next++ % 32];
	va_list ap;
	va_start(ap, f);
	vsnprintf(b, sizeof bufs[0], f, ap);
	va_end(ap);
	return b;
}

/* The figures as the report prints them; the tests read them back. */
static const char *secs(double v)
{
	return isfinite(v) ? fmt("%.4g s", v) : "–";
}

static const char *times_model(double v)
{
	return isfinite(v) ? fmt("%.2f×", v) : "–";
}

static const char *size_text(double bytes)
{
	char b[32];
	cb_plot_size_label(bytes, b, sizeof b);
	return fmt("%s", b);
}

static const char *ceiling_name(const char *key)
{
	if (strcmp(key, "cold_read_gbps") == 0)
		return "cold-read";
	if (strcmp(key, "warm_read_gbps") == 0)
		return "warm-read";
	if (strcmp(key, "memcpy_gbps") == 0)
		return "memcpy";
	if (strcmp(key, "h2d_gbps") == 0)
		return "host-to-device";
	return key;
}

/* ------------------------------------------------------------ the writer */

/* One document, two spellings: Markdown or HTML. Text passed to the
 * writer is plain; it escapes what its format needs. */
struct doc {
	FILE *f;
	bool html;
	const char *chart_dir;  /* relative to the report, for links */
	const char *chart_path; /* where the charts are, to inline them */
};

static void put_text(struct doc *d, const char *s)
{
	for (; *s; s++) {
		if (d->html && (*s == '<' || *s == '>' || *s == '&'))
			fputs(*s == '<' ? "&lt;" : *s == '>' ? "&gt;" : "&amp;", d->f);
		else if (!d->html && (*s == '|' || *s == '*' || *s == '_' || *s == '`'))
			fprintf(d->f, "\\%c", *s);
		else
			fputc(*s == '\n' ? ' ' : *s, d->f);
	}
}

static void heading(struct doc *d, int level, const char *s)
{
	if (d->html) {
		fprintf(d->f, "<h%d>", level);
		put_text(d, s);
		fprintf(d->f, "</h%d>\n", level);
	} else {
		fprintf(d->f, "\n%.*s ", level, "######");
		put_text(d, s);
		fputs("\n\n", d->f);
	}
}

static void para(struct doc *d, const char *s)
{
	fputs(d->html ? "<p>" : "", d->f);
	put_text(d, s);
	fputs(d->html ? "</p>\n" : "\n\n", d->f);
}

static void list_begin(struct doc *d)
{
	if (d->html)
		fputs("<ul>\n", d->f);
}

static void item(struct doc *d, const char *s)
{
	fputs(d->html ? "<li>" : "- ", d->f);
	put_text(d, s);
	fputs(d->html ? "</li>\n" : "\n", d->f);
}

static void list_end(struct doc *d)
{
	fputs(d->html ? "</ul>\n" : "\n", d->f);
}

static void row(struct doc *d, const char *const *cells, size_t n, bool header)
{
	fputs(d->html ? "<tr>" : "|", d->f);
	for (size_t i = 0; i < n; i++) {
		if (d->html)
			fputs(header ? "<th>" : "<td>", d->f);
		else
			fputc(' ', d->f);
		put_text(d, cells[i]);
		fputs(d->html ? (header ? "</th>" : "</td>") : " |", d->f);
	}
	fputs(d->html ? "</tr>\n" : "\n", d->f);
	if (header && !d->html) {
		fputc('|', d->f);
		/* Words left, figures right. */
		for (size_t i = 0; i < n; i++)
			fputs(strcmp(cells[i], "loader") == 0 || strcmp(cells[i], "dataset") == 0 ||
					      strcmp(cells[i], "outcome") == 0 ||
					      strcmp(cells[i], "device") == 0 ||
					      strcmp(cells[i], "ceiling") == 0
				      ? " --- |"
				      : " ---: |",
			      d->f);
		fputc('\n', d->f);
	}
}

static void table_begin(struct doc *d, const char *const *head, size_t n)
{
	fputs(d->html ? "<table>\n" : "", d->f);
	row(d, head, n, true);
}

static void table_end(struct doc *d)
{
	fputs(d->html ? "</table>\n" : "\n", d->f);
}

/* Copies an SVG chart into the page: from its <svg> element on, with its
 * ids prefixed by the chart's name so that several charts on one page do
 * not share gnuplot's ids. */
static int inline_svg(struct doc *d, const char *name, struct cb_error *err)
{
	char file[64];
	snprintf(file, sizeof file, "%s.svg", name);
	char *path = cb_path_join(d->chart_path, file);
	char *svg = NULL;
	size_t len;
	int rc = path ? cb_read_small_file(path, 64u << 20, &svg, &len, err)
		      : CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	free(path);
	if (rc != CB_OK)
		return rc;
	const char *p = strstr(svg, "<svg");
	static const char *const marks[] = {"id='", "id=\"", "href='#", "href=\"#", "url(#"};
	fputs("<figure>", d->f);
	while (p && *p) {
		size_t best = strlen(p), which = 0;
		for (size_t m = 0; m < 5; m++) {
			const char *hit = strstr(p, marks[m]);
			if (hit && (size_t)(hit - p) < best) {
				best = (size_t)(hit - p);
				which = m + 1;
			}
		}
		fwrite(p, 1, best, d->f);
		p += best;
		if (!which)
			break;
		fprintf(d->f, "%s%s-", marks[which - 1], name);
		p += strlen(marks[which - 1]);
	}
	fputs("</figure>\n", d->f);
	free(svg);
	return CB_OK;
}

static int chart(struct doc *d, const char *name, const char *alt, struct cb_error *err)
{
	if (d->html)
		return inline_svg(d, name, err);
	fprintf(d->f, "[![%s](%s/%s.png)](%s/%s.svg)\n\n", alt, d->chart_dir, name, d->chart_dir,
		name);
	return CB_OK;
}

/* ------------------------------------------------------------ sections */

static void section_runs(struct doc *d, const struct cb_plotset *set)
{
	heading(d, 2, "Runs");
	list_begin(d);
	for (size_t i = 0; i < set->n_files; i++) {
		const struct cb_results_file *f = set->files[i];
		item(d, fmt("%s: %s, ckptbench %s (%s), %zu cells", f->path,
			    *f->timestamp ? f->timestamp : "no timestamp",
			    *f->tool_version ? f->tool_version : "?",
			    *f->tool_commit ? f->tool_commit : "?", f->n_cells));
	}
	list_end(d);
}

static void machine_items(struct doc *d, const struct cb_results_machine *m)
{
	list_begin(d);
	item(d, fmt("CPU: %s (%s), %.0f package(s), %.0f cores, %.0f hardware threads, "
		    "%.0f NUMA node(s)",
		    *m->cpu_model ? m->cpu_model : "unknown", *m->arch ? m->arch : "?", m->packages,
		    m->cores, m->pus, m->numa_nodes));
	item(d,
	     fmt("Memory: %s", isfinite(m->memory_bytes) ? size_text(m->memory_bytes) : "unknown"));
	item(d, fmt("System: %s, Linux %s, transparent huge pages: %s", *m->os ? m->os : "?",
		    m->kernel, *m->thp ? m->thp : "?"));
	if (m->hypervisor == 1)
		item(d, isfinite(m->free_page_reporting_order)
				? fmt("Virtual machine, with free page reporting (blocks of order "
				      "%.0f): "
				      "memory a trial frees goes back to the host, so the next "
				      "trial's first touches of fresh pages are host faults too",
				      m->free_page_reporting_order)
				: "Virtual machine");
	if (m->has_data_dir)
		item(d, fmt("Data directory: %s on %s (device %s, %s)", m->data_dir_path,
			    *m->data_dir_fs_type ? m->data_dir_fs_type : "?",
			    *m->data_dir_device ? m->data_dir_device : "?",
			    m->data_dir_rotational == 1   ? "rotational"
			    : m->data_dir_rotational == 0 ? "non-rotational"
							  : "rotation unknown"));
	if (m->n_gpus == 0)
		item(d, "GPUs: none");
	for (size_t i = 0; i < m->n_gpus; i++) {
		const struct cb_results_gpu *g = &m->gpus[i];
		item(d, fmt("GPU %zu: %s, %s", i, g->name,
			    isfinite(g->memory_bytes) ? size_text(g->memory_bytes)
						      : "memory unknown"));
	}
	list_end(d);
}

static void section_machine(struct doc *d, const struct cb_plotset *set)
{
	heading(d, 2, "Machine");
	const struct cb_results_machine *shown[16];
	size_t n_shown = 0;
	for (size_t i = 0; i < set->n_files && n_shown < 16; i++) {
		const struct cb_results_machine *m = &set->files[i]->machine;
		bool seen = !m->json;
		for (size_t k = 0; k < n_shown && !seen; k++)
			seen = cb_results_same_machine(m, shown[k]);
		if (seen)
			continue;
		if (set->n_files > 1)
			para(d, fmt("From %s%s:", set->files[i]->path,
				    n_shown ? " (a different machine)" : ""));
		machine_items(d, m);
		shown[n_shown++] = m;
	}
	if (!n_shown)
		para(d, "The results do not describe their machine.");
}

static void section_calibration(struct doc *d, const struct cb_plotset *set)
{
	static const char *const names[] = {"cold read (from the disk)",
					    "warm read (from the page cache)", "memcpy, one thread",
					    "memcpy, all cores", "host to device (H2D)"};
	heading(d, 2, "Calibration");
	const struct cb_results_calibration *cal = set->calibration;
	if (!cal->present) {
		para(d, "The results hold no calibration.");
		return;
	}
	const char *held = "";
	if (cal->n_paired_reads)
		held = "; each cell is held against the read of its dataset's own files, in its "
		       "cache state, made at the start of each round of its trials (the paired "
		       "ceilings, listed after the machine's)";
	else if (cal->n_by_size)
		held = "; each cell is held against the read ceiling measured nearest its model's "
		       "size";
	para(d, fmt("The machine's ceilings, measured before the run%s (GB/s are 10^9 "
		    "bytes/s)%s:",
		    isfinite(cal->file_bytes) && cal->file_bytes > 0
			    ? fmt(" with a %s scratch file", size_text(cal->file_bytes))
			    : "",
		    held));
	static const char *const head[] = {"ceiling", "GB/s"};
	table_begin(d, head, 2);
	const double figures[] = {cal->cold_read_gbps, cal->warm_read_gbps, cal->memcpy_gbps,
				  cal->memcpy_all_gbps, cal->h2d_gbps};
	for (size_t i = 0; i < 5; i++) {
		double v = figures[i];
		const char *cells[] = {names[i], isfinite(v) ? fmt("%.2f", v) : "not measured"};
		row(d, cells, 2, false);
	}
	/* The read ceilings measured at the datasets' own sizes. */
	for (size_t i = 0; i < cal->n_by_size; i++) {
		const struct cb_results_sized_ceiling *e = &cal->by_size[i];
		for (size_t k = 0; k < 2; k++) {
			double v = k ? e->warm_read_gbps : e->cold_read_gbps;
			const char *cells[] = {
				fmt("%s, a %s file", names[k], size_text(e->file_bytes)),
				isfinite(v) ? fmt("%.2f", v) : "not measured"};
			row(d, cells, 2, false);
		}
	}
	/* The paired ceilings: the datasets' own files, read during the run. */
	for (size_t i = 0; i < cal->n_paired_reads; i++) {
		const struct cb_results_paired_read *e = &cal->paired_reads[i];
		double v = e->read_gbps;
		const char *cells[] = {fmt("%s read of %s (%s, %s), between the trials", e->cache,
					   e->dataset, e->format, size_text(e->file_bytes)),
				       isfinite(v) ? fmt("%.2f", v) : "not measured"};
		row(d, cells, 2, false);
	}
	table_end(d);
}

/* "ok (10/10 trials)", "failed: oom: message", "skipped: reason". */
static const char *outcome_text(const struct cb_results_cell *c)
{
	if (strcmp(c->status, "ok") == 0)
		return fmt("ok (%zu/%zu trials)", c->n_ok, c->n_trials);
	return fmt("%s%s%.180s", c->status, *c->reason ? ": " : "", c->reason);
}

/* " of its files" where the cell's ceiling is its files' paired read,
 * " at 257 MiB" where it is a size-matched one. */
static const char *ceiling_size_text(const struct cb_results_summary *s)
{
	if (strcmp(s->ceiling_source, "paired") == 0)
		return " of its files";
	double bytes = s->ceiling_file_bytes;
	return isfinite(bytes) && bytes > 0 ? fmt(" at %s", size_text(bytes)) : "";
}

/* " (whole time: 35%; fastest: 96%)": the whole time's share, and the
 * fastest load's against the fastest pass of the ceiling, where known. */
static const char *ceiling_notes(const struct cb_results_summary *s, double frac_all)
{
	double best = s->best_load_ceiling_fraction;
	if (!isfinite(frac_all))
		return "";
	if (!isfinite(best))
		return fmt(" (whole time: %.0f%%)", frac_all * 100);
	return fmt(" (whole time: %.0f%%; fastest: %.0f%%)", frac_all * 100, best * 100);
}

/* The ceiling's method (summary.ceiling_method; "" in files before it or
 * without paired ceilings): read from the cell's summary, since the results
 * model does not carry it. */
static const char *ceiling_method(const struct cb_results_cell *c)
{
	return cb_json_str(json_object_get(c->json, "summary"), "ceiling_method");
}

/* "; beat pread-N (3.61 GB/s); ceiling too low" for a cell above its
 * ceiling: the method whose figure its load beat, then the mark. */
static const char *ceiling_too_low(const struct cb_results_cell *c)
{
	const struct cb_results_summary *s = &c->summary;
	if (!s->ceiling_exceeded)
		return "";
	const char *method = ceiling_method(c);
	if (!*method)
		return "; ceiling too low";
	return fmt("; beat %s (%.2f GB/s); ceiling too low", method, s->ceiling_gbps);
}

static void cell_row(struct doc *d, const struct cb_pcell *pc, bool devices)
{
	const struct cb_results_cell *c = pc->cell;
	const struct cb_results_summary *s = &c->summary;
	bool ok = cb_pcell_measured(pc);
	const char *ci_text = "–";
	if (ok && isfinite(s->ci95_lo_s) && isfinite(s->ci95_hi_s))
		ci_text = fmt("%s%.4g – %.4g s", s->ci95_is_range ? "range " : "", s->ci95_lo_s,
			      s->ci95_hi_s);
	/* The load after the model is built, as the run's table shows it; a
	 * results file older than those keys has only the whole time. */
	bool has_load = isfinite(s->load_gbps);
	double gbps = ok ? (has_load ? s->load_gbps : s->gbps) : NAN;
	double frac = ok ? (has_load ? s->load_ceiling_fraction : s->ceiling_fraction) : NAN;
	double frac_all = ok && has_load ? s->ceiling_fraction : NAN;
	double rss = ok ? s->peak_rss_over_model : NAN;
	const char *rss_text = "–";
	if (isfinite(rss))
		rss_text = fmt("%s (anon %s, file %s)", times_model(rss),
			       times_model(s->peak_anon_over_model),
			       times_model(s->peak_file_over_model));
	const char *cells[] = {
		pc->label,
		c->key.dataset,
		isfinite(c->model_bytes) ? size_text(c->model_bytes) : "?",
		ok ? secs(s->median_s) : "–",
		ci_text,
		isfinite(gbps) ? fmt("%.2f", gbps) : "–",
		isfinite(frac)
			? fmt("%.0f%% of %s%s%s%s", frac * 100, ceiling_name(s->ceiling),
			      ceiling_size_text(s), ceiling_notes(s, frac_all), ceiling_too_low(c))
			: "–",
		rss_text,
		outcome_text(c),
		c->key.device ? c->key.device : "–",
	};
	row(d, cells, devices ? 10 : 9, false);
}

/* The cache states in the order the tables come: cold, warm, then any
 * other the results name. */
static size_t cache_states(const struct cb_plotset *set, const char **out, size_t max)
{
	size_t n = 0;
	static const char *const first[] = {"cold", "warm"};
	for (size_t k = 0; k < 2; k++)
		for (size_t i = 0; i < set->n_cells; i++)
			if (strcmp(set->cells[i].cell->key.cache, first[k]) == 0) {
				out[n++] = first[k];
				break;
			}
	for (size_t i = 0; i < set->n_cells && n < max; i++) {
		const char *cache = set->cells[i].cell->key.cache;
		bool seen = false;
		for (size_t k = 0; k < n && !seen; k++)
			seen = strcmp(out[k], cache) == 0;
		if (!seen)
			out[n++] = cache;
	}
	return n;
}

static void section_tables(struct doc *d, const struct cb_plotset *set)
{
	bool devices = false;
	for (size_t i = 0; i < set->n_cells; i++) {
		const char *device = set->cells[i].cell->key.device;
		devices |= device && strcmp(device, "cpu") != 0;
	}
	const char *caches[16];
	size_t n = cache_states(set, caches, 16);
	static const char *const head[] = {"loader",  "dataset",   "model",      "median",
					   "95% CI",  "load GB/s", "of ceiling", "peak RSS × model",
					   "outcome", "device"};
	for (size_t k = 0; k < n; k++) {
		heading(d, 2, fmt("Results: %s cache", caches[k]));
		if (k == 0)
			para(d,
			     "Median: the whole load, the empty model's construction included. "
			     "Load GB/s and the share of the ceiling: the model's bytes over the "
			     "time after the model is built (median less the init phase), the part "
			     "a read ceiling bounds; the whole time's share is in brackets, and "
			     "the "
			     "fastest trial's load against the ceiling's fastest pass.");
		table_begin(d, head, devices ? 10 : 9);
		for (size_t l = 0; l < set->n_series; l++)
			for (size_t s = 0; s < set->n_sizes; s++)
				for (size_t i = 0; i < set->n_cells; i++) {
					const struct cb_pcell *c = &set->cells[i];
					if (c->series == l &&
					    c->cell->model_bytes == set->sizes[s] &&
					    strcmp(c->cell->key.cache, caches[k]) == 0)
						cell_row(d, c, devices);
				}
		/* Cells without a known size come last, as they are. */
		for (size_t i = 0; i < set->n_cells; i++) {
			const struct cb_results_cell *c = set->cells[i].cell;
			if (!isfinite(c->model_bytes) && strcmp(c->key.cache, caches[k]) == 0)
				cell_row(d, &set->cells[i], devices);
		}
		table_end(d);
		size_t exceeded = 0;
		/* Which methods were beaten, and how often: "pread-N 2, map 1". */
		char beaten[256] = "";
		for (size_t i = 0; i < set->n_cells; i++) {
			const struct cb_results_cell *c = set->cells[i].cell;
			if (strcmp(c->key.cache, caches[k]) != 0 || !c->summary.ceiling_exceeded)
				continue;
			exceeded++;
			const char *m = ceiling_method(c);
			if (!*m || strstr(beaten, fmt("%s ", m)))
				continue;
			size_t times = 0;
			for (size_t j = 0; j < set->n_cells; j++) {
				const struct cb_results_cell *o = set->cells[j].cell;
				times += strcmp(o->key.cache, caches[k]) == 0 &&
					 o->summary.ceiling_exceeded &&
					 strcmp(ceiling_method(o), m) == 0;
			}
			size_t used = strlen(beaten);
			snprintf(beaten + used, sizeof beaten - used, "%s%s %zu", used ? ", " : "",
				 m, times);
		}
		if (exceeded)
			para(d,
			     fmt("%zu cell(s) above %.0f%% of their ceiling, marked \"ceiling too "
				 "low\": the read they are held against does not bound them "
				 "(mapping pages is not reading them, or another way of reading "
				 "is faster), so their share says nothing about the loader.%s%s%s",
				 exceeded, CB_CEILING_EXCEEDED * 100,
				 *beaten ? " Ceilings beaten, by method: " : "", beaten,
				 *beaten ? "." : ""));
	}
	para(d, "Median and CI over the ok trials; GB/s is the model's bytes over the median; "
		"peak RSS × model is the median over trials of (peak − baseline) / model size.");
}

/* ------------------------------------------------------------ observations */

/* A figure of a cell's summary, for the observations to sort by. */
typedef double (*figure_fn)(const struct cb_results_summary *);

static double median_fig(const struct cb_results_summary *s)
{
	return s->median_s;
}

static double rss_fig(const struct cb_results_summary *s)
{
	return s->peak_rss_over_model;
}

static double vram_fig(const struct cb_results_summary *s)
{
	return s->peak_vram_over_model;
}

static bool in_block(const struct cb_pcell *c, double size, const char *cache)
{
	return c->cell->model_bytes == size && strcmp(c->cell->key.cache, cache) == 0;
}

/* The size where the most series have the figure in `cache`, the larger
 * on ties (the one that says most), if at least `need` do; else NaN. */
static double largest_size(const struct cb_plotset *set, const char *cache, size_t need,
			   bool (*has)(const struct cb_pcell *))
{
	double best = NAN;
	size_t best_n = 0;
	for (size_t s = set->n_sizes; s-- > 0;) {
		size_t n = 0;
		for (size_t i = 0; i < set->n_cells; i++)
			n += in_block(&set->cells[i], set->sizes[s], cache) && has(&set->cells[i]);
		if (n >= need && n > best_n) {
			best = set->sizes[s];
			best_n = n;
		}
	}
	return best;
}

static bool has_rss(const struct cb_pcell *c)
{
	return cb_pcell_measured(c) && isfinite(c->cell->summary.peak_rss_over_model);
}

static bool has_vram(const struct cb_pcell *c)
{
	return cb_pcell_measured(c) && isfinite(c->cell->summary.peak_vram_over_model);
}

/* Cells of (size, cache) passing `has`, sorted by `fig` descending. */
static size_t pick_sorted(const struct cb_plotset *set, double size, const char *cache,
			  bool (*has)(const struct cb_pcell *), figure_fn fig,
			  const struct cb_pcell **out)
{
	size_t n = 0;
	for (size_t i = 0; i < set->n_cells; i++) {
		const struct cb_pcell *c = &set->cells[i];
		if (in_block(c, size, cache) && has(c))
			out[n++] = c;
	}
	for (size_t i = 1; i < n; i++) /* insertion sort: a few loaders */
		for (size_t j = i;
		     j > 0 && fig(&out[j]->cell->summary) > fig(&out[j - 1]->cell->summary); j--) {
			const struct cb_pcell *t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return n;
}

/* "pickle peaked at 2.03× the model's size above its baseline (anonymous
 * 2.03×); safetensors-read at 1.01× ...", at the largest size. */
static void observe_memory(struct doc *d, const struct cb_plotset *set, const char *cache,
			   const struct cb_pcell **buf)
{
	double size = largest_size(set, cache, 1, has_rss);
	if (!isfinite(size))
		return;
	size_t n = pick_sorted(set, size, cache, has_rss, rss_fig, buf);
	char line[2048];
	size_t used =
		(size_t)snprintf(line, sizeof line, "At %s (%s cache), ", size_text(size), cache);
	for (size_t i = 0; i < n && used < sizeof line; i++) {
		const struct cb_results_summary *s = &buf[i]->cell->summary;
		double file = s->peak_file_over_model;
		used += (size_t)snprintf(line + used, sizeof line - used,
					 "%s%s %s %s%s (anonymous %s%s%s)", i ? "; " : "",
					 buf[i]->label, i ? "at" : "peaked at",
					 times_model(s->peak_rss_over_model),
					 i ? "" : " the model's size above its baseline",
					 times_model(s->peak_anon_over_model),
					 isfinite(file) && file >= 0.05 ? ", file-backed " : "",
					 isfinite(file) && file >= 0.05 ? times_model(file) : "");
	}
	if (used < sizeof line)
		snprintf(line + used, sizeof line - used, ".");
	item(d, line);
}

/* Fastest and slowest at the largest size where two or more series ran. */
static void observe_time(struct doc *d, const struct cb_plotset *set, const char *cache,
			 const struct cb_pcell **buf)
{
	double size = largest_size(set, cache, 2, cb_pcell_measured);
	if (!isfinite(size))
		return;
	size_t n = pick_sorted(set, size, cache, cb_pcell_measured, median_fig, buf);
	const struct cb_pcell *fast = buf[n - 1], *slow = buf[0];
	const struct cb_results_summary *fs = &fast->cell->summary;
	double frac = fs->ceiling_fraction;
	item(d,
	     fmt("With a %s cache, at %s, %s was fastest (median %s, %.2f GB/s%s); %s took %.2f× "
		 "as long "
		 "(median %s).",
		 cache, size_text(size), fast->label, secs(fs->median_s), fs->gbps,
		 isfinite(frac)
			 ? fmt(", %.0f%% of the %s ceiling", frac * 100, ceiling_name(fs->ceiling))
			 : "",
		 slow->label, slow->cell->summary.median_s / fs->median_s,
		 secs(slow->cell->summary.median_s)));
}

static void observe_vram(struct doc *d, const struct cb_plotset *set, const char *cache,
			 const struct cb_pcell **buf)
{
	double size = largest_size(set, cache, 1, has_vram);
	if (!isfinite(size))
		return;
	size_t n = pick_sorted(set, size, cache, has_vram, vram_fig, buf);
	char line[1024];
	size_t used = (size_t)snprintf(line, sizeof line,
				       "At %s (%s cache), peak VRAM above "
				       "baseline: ",
				       size_text(size), cache);
	for (size_t i = 0; i < n && used < sizeof line; i++)
		used += (size_t)snprintf(line + used, sizeof line - used, "%s%s %s", i ? ", " : "",
					 buf[i]->label,
					 times_model(buf[i]->cell->summary.peak_vram_over_model));
	if (used < sizeof line)
		snprintf(line + used, sizeof line - used, " the model's size.");
	item(d, line);
}

static void observe_failures(struct doc *d, const struct cb_plotset *set)
{
	size_t short_ci = 0, ok = 0;
	for (size_t i = 0; i < set->n_cells; i++) {
		const struct cb_pcell *pc = &set->cells[i];
		const struct cb_results_cell *c = pc->cell;
		if (cb_pcell_measured(pc)) {
			ok++;
			short_ci += c->summary.ci95_is_range;
			continue;
		}
		item(d, fmt("%s %s at %s, %s cache: %.300s", pc->label,
			    strcmp(c->status, "skipped") == 0 ? "was skipped" : "failed",
			    isfinite(c->model_bytes) ? size_text(c->model_bytes) : c->key.dataset,
			    c->key.cache, *c->reason ? c->reason : c->status));
	}
	if (short_ci)
		item(d, fmt("%zu of %zu measured cells had fewer than 6 ok trials: their interval "
			    "is the [min, max] range, which covers less than 95%%.",
			    short_ci, ok));
}

static int section_observations(struct doc *d, const struct cb_plotset *set)
{
	const struct cb_pcell **buf = calloc(set->n_cells + 1, sizeof *buf);
	if (!buf)
		return CB_ENOMEM;
	heading(d, 2, "Observations");
	list_begin(d);
	const char *caches[16];
	size_t n = cache_states(set, caches, 16);
	for (size_t k = 0; k < n; k++)
		observe_memory(d, set, caches[k], buf);
	for (size_t k = 0; k < n; k++)
		observe_time(d, set, caches[k], buf);
	for (size_t k = 0; k < n && k < 1; k++)
		observe_vram(d, set, caches[k], buf);
	observe_failures(d, set);
	list_end(d);
	free(buf);
	return CB_OK;
}

/* ------------------------------------------------------------ partial loads */

/* The cell's part as a table cell: "tp 4, rank 1", "layers.0-7", or both. */
static const char *part_text(const json_t *sel)
{
	const json_t *pats = json_object_get(sel, "select");
	char patterns[160] = "";
	for (size_t i = 0; i < json_array_size(pats); i++) {
		size_t used = strlen(patterns);
		snprintf(patterns + used, sizeof patterns - used, "%s%s", i ? "," : "",
			 json_string_value(json_array_get(pats, i)));
	}
	double tp = cb_json_num(sel, "tp");
	if (tp > 1)
		return fmt("%s%stp %.0f, rank %.0f", patterns, *patterns ? "; " : "", tp,
			   cb_json_num(sel, "rank"));
	return fmt("%s", patterns);
}

static const char *ratio_text(double v)
{
	return isfinite(v) ? fmt("%.2f×", v) : "–";
}

/* A loader's medians over the cold tensor-parallel cells of one split. */
struct split_figures {
	double amp, peak_model, peak_asked, read_pages;
	size_t n;
};

static void split_figures(const struct cb_plotset *set, const char *loader, double tp,
			  struct split_figures *out)
{
	double amp[256], pm[256], pa[256], rp[256];
	size_t n = 0;
	for (size_t f = 0; f < set->n_files; f++)
		for (size_t i = 0; i < set->files[f]->n_cells && n < 256; i++) {
			const struct cb_results_cell *c = &set->files[f]->cells[i];
			const json_t *sel = json_object_get(c->json, "selection");
			const json_t *s = json_object_get(c->json, "summary");
			if (!c->key.selection || strcmp(c->key.loader, loader) != 0 ||
			    strcmp(c->key.cache, "cold") != 0 || cb_json_num(sel, "tp") != tp ||
			    json_array_size(json_object_get(sel, "select")) ||
			    !cb_results_cell_measured(c))
				continue;
			amp[n] = cb_json_num(s, "read_amplification");
			pm[n] = cb_json_num(s, "peak_rss_over_model");
			pa[n] = cb_json_num(s, "peak_rss_over_asked");
			rp[n++] = cb_json_num(s, "read_over_pages");
		}
	struct cb_stats st;
	*out = (struct split_figures){.n = n};
	cb_stats_compute(amp, n, &st);
	out->amp = n ? st.median : NAN;
	cb_stats_compute(pm, n, &st);
	out->peak_model = n ? st.median : NAN;
	cb_stats_compute(pa, n, &st);
	out->peak_asked = n ? st.median : NAN;
	cb_stats_compute(rp, n, &st);
	out->read_pages = n ? st.median : NAN;
}

/* What the cold splits show, one sentence per kind of loader: those that
 * read the whole file for a slice, and those that read about the slice. */
static void observe_partial(struct doc *d, const struct cb_plotset *set)
{
	double tp = 0;
	for (size_t f = 0; f < set->n_files; f++)
		for (size_t i = 0; i < set->files[f]->n_cells; i++) {
			const struct cb_results_cell *c = &set->files[f]->cells[i];
			double n = cb_json_num(json_object_get(c->json, "selection"), "tp");
			if (c->key.selection && strcmp(c->key.cache, "cold") == 0 && n > tp)
				tp = n;
		}
	if (!(tp > 1))
		return;
	char whole[256] = "", exact[512] = "";
	double whole_amp = 0, whole_peak = 0;
	const char *seen[64];
	size_t n_seen = 0;
	for (size_t f = 0; f < set->n_files; f++)
		for (size_t i = 0; i < set->files[f]->n_cells && n_seen < 64; i++) {
			const char *loader = set->files[f]->cells[i].key.loader;
			bool dup = false;
			for (size_t k = 0; k < n_seen && !dup; k++)
				dup = strcmp(seen[k], loader) == 0;
			if (dup)
				continue;
			seen[n_seen++] = loader;
			struct split_figures sf;
			split_figures(set, loader, tp, &sf);
			if (!sf.n || !isfinite(sf.amp))
				continue;
			if (sf.amp >= 0.95 * tp) { /* read at least 0.95x the whole file */
				size_t used = strlen(whole);
				snprintf(whole + used, sizeof whole - used, "%s%s",
					 used ? " and " : "", loader);
				whole_amp = sf.amp > whole_amp ? sf.amp : whole_amp;
				whole_peak =
					sf.peak_model > whole_peak ? sf.peak_model : whole_peak;
			} else if (isfinite(sf.read_pages) && sf.read_pages < 1.1) {
				size_t used = strlen(exact);
				snprintf(exact + used, sizeof exact - used,
					 "%s%s read %.2f× its slice (%.2f× the pages it lies in) "
					 "and "
					 "peaked at %.2f× it",
					 used ? "; " : "", loader, sf.amp, sf.read_pages,
					 sf.peak_asked);
			}
		}
	if (*whole)
		item(d, fmt("One rank of a %.0f-way tensor-parallel split, cold: %s read the "
			    "whole checkpoint "
			    "for each rank's slice (up to %.2f× the slice's bytes) and peaked at "
			    "up to %.2f× the whole model, above the model plus the slice: "
			    "torch.load materialises every record before narrow keeps a part.",
			    tp, whole, whole_amp, whole_peak));
	if (*exact)
		item(d, fmt("One rank of a %.0f-way tensor-parallel split, cold: %s.", tp, exact));
}

static void partial_row(struct doc *d, const struct cb_results_cell *c)
{
	const json_t *s = json_object_get(c->json, "summary");
	bool ok = cb_results_cell_measured(c);
	const char *cells[] = {
		c->key.loader,
		c->key.dataset,
		c->key.cache,
		part_text(json_object_get(c->json, "selection")),
		size_text(cb_json_num(c->json, "asked_bytes")),
		ok ? secs(c->summary.median_s) : "–",
		ok && isfinite(cb_json_num(s, "read_bytes"))
			? size_text(cb_json_num(s, "read_bytes"))
			: "–",
		ok ? ratio_text(cb_json_num(s, "read_amplification")) : "–",
		ok ? ratio_text(cb_json_num(s, "read_over_pages")) : "–",
		ok ? ratio_text(cb_json_num(s, "peak_rss_over_asked")) : "–",
		outcome_text(c),
	};
	row(d, cells, 11, false);
}

/* Every partial load's cell: what it asked for, read and held. */
static void section_partial(struct doc *d, const struct cb_plotset *set)
{
	bool any = false;
	for (size_t f = 0; f < set->n_files && !any; f++)
		for (size_t i = 0; i < set->files[f]->n_cells && !any; i++)
			any = set->files[f]->cells[i].key.selection != NULL;
	if (!any)
		return;
	heading(d, 2, "Partial loads");
	para(d, "Each cell loads a part of the model: a selection of tensors, or one rank's "
		"tensor-parallel slice. Read: the bytes the trial read from storage "
		"(/proc/PID/io), median over trials; read × asked: the read amplification; "
		"read × pages: over the file pages the slice lies in (the least storage "
		"reads); peak × asked: the peak memory above baseline over the slice's bytes.");
	list_begin(d);
	observe_partial(d, set);
	list_end(d);
	static const char *const head[] = {"loader",       "dataset",      "cache",  "part",
					   "asked",        "median",       "read",   "read × asked",
					   "read × pages", "peak × asked", "outcome"};
	table_begin(d, head, 11);
	for (size_t f = 0; f < set->n_files; f++)
		for (size_t i = 0; i < set->files[f]->n_cells; i++)
			if (set->files[f]->cells[i].key.selection)
				partial_row(d, &set->files[f]->cells[i]);
	table_end(d);
}

/* ------------------------------------------------------------ storage */

/* One line per (storage profile, cache state): the loaders from fastest to
 * slowest, each with its time against the fastest, its peak memory and,
 * where it faulted its pages in, its major faults per MiB: which loader to
 * use on that storage, and what it costs. */
static void observe_storage(struct doc *d, const struct cb_plotset *set, const char *profile,
			    const char *cache)
{
	const struct cb_results_cell *list[64];
	size_t n = 0;
	for (size_t f = 0; f < set->n_files; f++)
		for (size_t i = 0; i < set->files[f]->n_cells && n < 64; i++) {
			const struct cb_results_cell *c = &set->files[f]->cells[i];
			if (c->key.storage && strcmp(c->key.storage, profile) == 0 &&
			    strcmp(c->key.cache, cache) == 0 && !c->key.selection &&
			    !c->key.ranks && cb_results_cell_measured(c))
				list[n++] = c;
		}
	if (!n)
		return;
	for (size_t i = 1; i < n; i++) /* by median time, insertion sort */
		for (size_t j = i;
		     j > 0 && list[j]->summary.median_s < list[j - 1]->summary.median_s; j--) {
			const struct cb_results_cell *t = list[j];
			list[j] = list[j - 1];
			list[j - 1] = t;
		}
	/* Named as every table names cells (the options where two differ by
	 * them), without the profile this line is about. */
	static char names[64][160];
	for (size_t i = 0; i < n; i++) {
		cb_results_cell_label(list[i], list, n, names[i], sizeof names[i]);
		char *at = strstr(names[i], " @");
		if (at)
			*at = '\0';
	}
	char text[1024];
	double faults0 =
		cb_json_num(json_object_get(list[0]->json, "summary"), "major_faults_per_mib");
	int used = snprintf(text, sizeof text, "On %s, %s: %s was fastest (%s, peak %s%s)", profile,
			    cache, names[0], secs(list[0]->summary.median_s),
			    times_model(list[0]->summary.peak_rss_over_model),
			    isfinite(faults0) && faults0 >= 0.01
				    ? fmt(", %.1f major faults per MiB", faults0)
				    : "");
	for (size_t i = 1; i < n && used > 0 && (size_t)used < sizeof text; i++) {
		const json_t *sj = json_object_get(list[i]->json, "summary");
		double faults = cb_json_num(sj, "major_faults_per_mib");
		used += snprintf(text + used, sizeof text - (size_t)used,
				 "%s %s %.2f× its time%s%s", i == 1 ? "; then" : ",", names[i],
				 list[i]->summary.median_s / list[0]->summary.median_s,
				 list[i]->summary.peak_rss_over_model > 1.5 ? " at a peak of " : "",
				 list[i]->summary.peak_rss_over_model > 1.5
					 ? times_model(list[i]->summary.peak_rss_over_model)
					 : "");
		if (isfinite(faults) && faults >= 0.01 && (size_t)used < sizeof text)
			used += snprintf(text + used, sizeof text - (size_t)used,
					 " (%.1f major faults per MiB)", faults);
	}
	if (used > 0 && (size_t)used < sizeof text - 1)
		snprintf(text + used, sizeof text - (size_t)used, ".");
	item(d, text);
}

/* The best loader per storage profile, when the files hold profiles. */
static void section_storage(struct doc *d, const struct cb_plotset *set)
{
	const char *profiles[32];
	size_t n = 0;
	for (size_t f = 0; f < set->n_files; f++)
		for (size_t i = 0; i < set->files[f]->n_cells && n < 32; i++) {
			const char *p = set->files[f]->cells[i].key.storage;
			bool seen = !p;
			for (size_t k = 0; k < n && !seen; k++)
				seen = strcmp(profiles[k], p) == 0;
			if (!seen)
				profiles[n++] = p;
		}
	if (!n)
		return;
	heading(d, 2, "Storage profiles");
	para(d, "The same loads on each storage profile (docs/storage.md), fastest first. "
		"Each cell's share of its ceiling is against the best read of the same files on "
		"the same storage, in the tables above.");
	list_begin(d);
	static const char *const caches[] = {"cold", "warm"};
	for (size_t k = 0; k < n; k++)
		for (size_t c = 0; c < 2; c++)
			observe_storage(d, set, profiles[k], caches[c]);
	list_end(d);
}

/* ------------------------------------------------------------ many ranks */

/* One rank cell (docs/mpi.md): its job and the medians of its aggregate and
 * node figures, read from the cell's JSON (the results model keeps only the
 * ranks' part of the key). */
static void ranks_row(struct doc *d, const struct cb_results_cell *c)
{
	const json_t *r = json_object_get(c->json, "ranks");
	const json_t *s = json_object_get(c->json, "summary");
	bool ok = cb_results_cell_measured(c);
	const char *na = "–";
	const char *cells[] = {
		c->key.loader,
		c->key.dataset,
		c->key.cache,
		fmt("%.0f × %s on %.0f", cb_json_num(r, "n"), cb_json_str(r, "dist"),
		    cb_json_num(r, "nodes")),
		ok ? fmt("%.2f", cb_json_num(s, "aggregate_gbps")) : na,
		ok ? fmt("%.2f", cb_json_num(s, "effective_gbps")) : na,
		ok ? secs(cb_json_num(s, "first_done_s")) : na,
		ok ? secs(cb_json_num(s, "last_done_s")) : na,
		ok ? fmt("%.1f ms", cb_json_num(s, "start_skew_s") * 1e3) : na,
		ok ? times_model(cb_json_num(s, "node_anon_over_model")) : na,
		ok ? times_model(cb_json_num(s, "node_file_over_model")) : na,
		ok ? times_model(cb_json_num(s, "node_memavailable_drop_over_model")) : na,
		outcome_text(c),
	};
	row(d, cells, 13, false);
}

/* Every cell of a run with many ranks (run --mpi, --ranks). */
static void section_ranks(struct doc *d, const struct cb_plotset *set)
{
	bool any = false;
	for (size_t f = 0; f < set->n_files && !any; f++)
		for (size_t i = 0; i < set->files[f]->n_cells && !any; i++)
			any = json_is_object(
				json_object_get(set->files[f]->cells[i].json, "ranks"));
	if (!any)
		return;
	heading(d, 2, "Many ranks");
	para(d, "Every rank of an MPI job loading at once (docs/mpi.md); medians over the "
		"trials. Aggregate: every rank's bytes over the window from the first load's "
		"start to the last one's end; effective: the model's bytes over it; first and "
		"last: when the first and the last rank were done; skew: how far apart the "
		"loads started. Node memory, the worst node's, over the model: the anonymous "
		"memory of its trial processes together, the checkpoint's pages in its page "
		"cache, and how far MemAvailable fell (the machine's, whatever else ran).");
	static const char *const head[] = {
		"loader", "dataset", "cache", "ranks",     "aggregate GB/s", "effective GB/s",
		"first",  "last",    "skew",  "node anon", "node file",      "MemAvailable drop",
		"outcome"};
	table_begin(d, head, 13);
	for (size_t f = 0; f < set->n_files; f++)
		for (size_t i = 0; i < set->files[f]->n_cells; i++)
			if (json_is_object(json_object_get(set->files[f]->cells[i].json, "ranks")))
				ranks_row(d, &set->files[f]->cells[i]);
	table_end(d);
}

static int section_charts(struct doc *d, unsigned charts, struct cb_error *err)
{
	static const char *const alts[CB_CHART_COUNT] = {
		[CB_CHART_MEMORY] = "peak RSS above baseline per model size, against 1x and 2x "
				    "the model",
		[CB_CHART_TIME] = "load time against model size, cold and warm, with 95% CIs",
		[CB_CHART_THROUGHPUT] = "throughput against model size under the calibrated "
					"ceilings",
		[CB_CHART_TIMELINE] = "RSS and VRAM during one load per loader",
		[CB_CHART_VRAM] = "peak VRAM above baseline per model size",
		[CB_CHART_COMPARE] = "base against head per cell",
		[CB_CHART_LAZY] = "read amplification and peak memory of one tensor-parallel "
				  "rank against the split",
		[CB_CHART_STORAGE] = "load time, share of the ceiling and peak memory per "
				     "storage profile",
		[CB_CHART_RANKS_MEMORY] = "the node's memory over the model against the ranks "
					  "per node, with the Nx and 2Nx lines",
		[CB_CHART_RANKS_BANDWIDTH] = "aggregate GB/s against the ranks",
	};
	if (!charts)
		return CB_OK;
	heading(d, 2, "Charts");
	int rc = CB_OK;
	for (int c = 0; c < CB_CHART_COUNT && rc == CB_OK; c++)
		if (charts & (1u << c))
			rc = chart(d, cb_chart_name(c), alts[c], err);
	return rc;
}

/* ------------------------------------------------------------ the command */

static const char html_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	"<title>ckptbench report</title>\n<style>\n"
	"body{font-family:'DejaVu Sans',sans-serif;max-width:72rem;margin:2rem auto;"
	"padding:0 1rem;color:#222;line-height:1.45}\n"
	"table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}\n"
	"th,td{border-bottom:1px solid #ddd;padding:.25rem .6rem;text-align:right}\n"
	"th:first-child,td:first-child,td:nth-child(2),td:nth-child(9){text-align:left}\n"
	"figure{margin:1.5rem 0}figure svg{width:100%;height:auto}\n"
	"</style>\n</head>\n<body>\n";

static int write_report(struct doc *d, const struct cb_plotset *set, unsigned charts,
			struct cb_error *err)
{
	if (d->html)
		fputs(html_head, d->f);
	heading(d, 1, "ckptbench report");
	char sub[1024];
	cb_plot_subtitle(set, sub, sizeof sub);
	para(d, fmt("%.250s. Written by ckptbench %s (%s) from %zu results file%s.", sub,
		    CB_VERSION, CB_COMMIT, set->n_files, set->n_files == 1 ? "" : "s"));
	section_runs(d, set);
	section_machine(d, set);
	section_calibration(d, set);
	int rc = section_observations(d, set);
	if (rc != CB_OK)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	section_tables(d, set);
	section_partial(d, set);
	section_storage(d, set);
	section_ranks(d, set);
	rc = section_charts(d, charts, err);
	if (d->html)
		fputs("</body>\n</html>\n", d->f);
	return rc;
}

/* FILE.md -> FILE-charts (and its last path component, for links). */
static char *charts_dir_for(const char *out)
{
	const char *dot = strrchr(out, '.');
	const char *slash = strrchr(out, '/');
	size_t len = dot && (!slash || dot > slash) ? (size_t)(dot - out) : strlen(out);
	char *dir = malloc(len + sizeof "-charts");
	if (dir)
		snprintf(dir, len + sizeof "-charts", "%.*s-charts", (int)len, out);
	return dir;
}

static char *default_output(const char *first, bool html)
{
	size_t len = strlen(first);
	if (len > 5 && strcmp(first + len - 5, ".json") == 0)
		len -= 5;
	const char *ext = html ? "-report.html" : "-report.md";
	char *out = malloc(len + strlen(ext) + 1);
	if (out)
		sprintf(out, "%.*s%s", (int)len, first, ext);
	return out;
}

static int report(char **files, size_t n, const char *out, bool html, bool charts_on,
		  struct cb_error *err)
{
	char *chart_path = charts_dir_for(out);
	if (!chart_path)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	struct cb_results_file **loaded = calloc(n, sizeof *loaded);
	int rc = loaded ? CB_OK : CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; rc == CB_OK && i < n; i++)
		rc = cb_results_file_load(files[i], &loaded[i], err);
	struct cb_plotset set;
	bool built = false;
	if (rc == CB_OK)
		built = (rc = cb_plotset_build((const struct cb_results_file *const *)loaded, n,
					       &set, err)) == CB_OK;
	unsigned charts = 0;
	if (rc == CB_OK && charts_on)
		rc = cb_plot_draw(&set, NULL, NULL, chart_path, false, &charts, err);
	struct sink_t {
		char *buf;
		size_t len;
	} sink = {NULL, 0};
	FILE *f = rc == CB_OK ? open_memstream(&sink.buf, &sink.len) : NULL;
	if (rc == CB_OK && !f)
		rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	if (f) {
		const char *slash = strrchr(chart_path, '/');
		struct doc d = {f, html, slash ? slash + 1 : chart_path, chart_path};
		rc = write_report(&d, &set, charts, err);
		fclose(f);
	}
	if (rc == CB_OK)
		rc = cb_write_small_file(out, sink.buf, sink.len, err);
	free(sink.buf);
	if (built)
		cb_plotset_free(&set);
	for (size_t i = 0; loaded && i < n; i++)
		cb_results_file_free(loaded[i]);
	free(loaded);
	free(chart_path);
	return rc;
}

int cb_cmd_report(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'o'},
		{"format", required_argument, NULL, 'f'},
		{"no-charts", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *out = NULL;
	bool html = false, charts = true;
	int opt;
	while ((opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'o': out = optarg; break;
		case 'f':
			if (strcmp(optarg, "md") != 0 && strcmp(optarg, "html") != 0)
				return cb_usage_error("report",
						      "--format is md or html, not \"%s\"", optarg);
			html = strcmp(optarg, "html") == 0;
			break;
		case 'n': charts = false; break;
		case 'h': fputs(report_help, stdout); return 0;
		default: return cb_usage_error("report", "unknown option");
		}
	}
	if (optind >= argc)
		return cb_usage_error("report", "no results file given");
	char *owned = out ? NULL : default_output(argv[optind], html);
	if (!out && !owned) {
		fprintf(stderr, "ckptbench: out of memory\n");
		return 3;
	}
	struct cb_error err = CB_ERROR_INIT;
	const char *path = out ? out : owned;
	int rc = report(argv + optind, (size_t)(argc - optind), path, html, charts, &err);
	if (rc == CB_OK)
		printf("%s\n", path);
	free(owned);
	return rc == CB_OK ? 0 : cb_fail(&err);
}
