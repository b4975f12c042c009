/* The results model (results_model.h): a results document checked, then
 * read into typed structs once. */
#include "results_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

/* The model as allocated: the public part first, so a pointer to one is a
 * pointer to the other. */
struct model {
	struct cb_results_file pub;
	json_t *doc; /* owned reference */
	char *path;  /* owned copy; may be NULL */
};

/* A string that may be null: NULL then. */
static const char *str_or_null(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* 1 true, 0 false, -1 anything else. */
static int tristate(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_true(v) ? 1 : json_is_false(v) ? 0 : -1;
}

/* ------------------------------------------------------------ canonical JSON */

static void put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* A number as the key spells it: an integral value as an integer (4 and
 * 4.0 are one value), else 17 significant digits. */
static void put_number(FILE *f, const json_t *v)
{
	if (json_is_integer(v)) {
		fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return;
	}
	double d = json_real_value(v);
	if (isfinite(d) && d == trunc(d) && fabs(d) < 9.2e18)
		fprintf(f, "%lld", (long long)d);
	else
		fprintf(f, "%.17g", d);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* v as canonical JSON: compact, object keys sorted. Returns false when out
 * of memory. */
static bool put_canonical(FILE *f, const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		size_t n = json_object_size(v), k = 0;
		const char **names = malloc((n + 1) * sizeof *names);
		if (!names)
			return false;
		for (void *it = json_object_iter((json_t *)v); it && k < n;
		     it = json_object_iter_next((json_t *)v, it))
			names[k++] = json_object_iter_key(it);
		qsort(names, k, sizeof *names, cmp_name);
		bool ok = true;
		fputc('{', f);
		for (size_t i = 0; i < k && ok; i++) {
			fputs(i ? "," : "", f);
			put_string(f, names[i]);
			fputc(':', f);
			ok = put_canonical(f, json_object_get(v, names[i]));
		}
		fputc('}', f);
		free(names);
		return ok;
	}
	case JSON_ARRAY: {
		bool ok = true;
		fputc('[', f);
		for (size_t i = 0; i < json_array_size(v) && ok; i++) {
			fputs(i ? "," : "", f);
			ok = put_canonical(f, json_array_get(v, i));
		}
		fputc(']', f);
		return ok;
	}
	case JSON_STRING: put_string(f, json_string_value(v)); return true;
	case JSON_INTEGER:
	case JSON_REAL: put_number(f, v); return true;
	case JSON_TRUE: fputs("true", f); return true;
	case JSON_FALSE: fputs("false", f); return true;
	default: fputs("null", f); return true;
	}
}

/* v as a new canonical JSON string, or NULL when out of memory. With
 * `bare`, a string is written as itself (a label's spelling). */
static char *canonical(const json_t *v, bool bare)
{
	if (bare && json_is_string(v))
		return strdup(json_string_value(v));
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	bool ok = put_canonical(f, v);
	if (fclose(f) != 0 || !ok) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ------------------------------------------------------------ the key */

static bool same_text(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

bool cb_cell_key_equal(const struct cb_cell_key *a, const struct cb_cell_key *b, unsigned ignore)
{
	return same_text(a->loader, b->loader) && same_text(a->dataset, b->dataset) &&
	       same_text(a->cache, b->cache) && same_text(a->device, b->device) &&
	       same_text(a->selection, b->selection) && same_text(a->ranks, b->ranks) &&
	       same_text(a->storage, b->storage) &&
	       ((ignore & CB_KEY_BUT_OPTIONS) || same_text(a->options, b->options));
}

/* ------------------------------------------------------------ checking */

static int check_cell(const char *path, size_t index, const json_t *cell, struct cb_error *err)
{
	static const char *const text_keys[] = {"loader", "dataset", "cache", "status"};
	char where[64];
	snprintf(where, sizeof where, "cell %zu", index);
	if (!json_is_object(cell))
		return CB_FAIL(err, CB_EFORMAT, path, where, "a cell must be an object");
	for (size_t k = 0; k < sizeof text_keys / sizeof text_keys[0]; k++)
		if (!json_is_string(json_object_get(cell, text_keys[k])))
			return CB_FAIL(err, CB_EFORMAT, path, where, "a cell needs a \"%s\" string",
				       text_keys[k]);
	/* null in files written on 2026-12-06 between commits 24c3eb4 and
	 * d03385a (a GPU loader skipped under --device cpu; "cuda" since) */
	const json_t *device = json_object_get(cell, "device");
	if (!json_is_string(device) && !json_is_null(device))
		return CB_FAIL(err, CB_EFORMAT, path, where,
			       "a cell needs a \"device\" string (or null)");
	const json_t *options = json_object_get(cell, "options");
	if (options && !json_is_object(options) && !json_is_null(options))
		return CB_FAIL(err, CB_EFORMAT, path, where, "a cell's \"options\" is an object");
	if (!json_is_array(json_object_get(cell, "trials")))
		return CB_FAIL(err, CB_EFORMAT, path, where, "a cell needs a \"trials\" array");
	return CB_OK;
}

static int check_doc(const char *path, const json_t *doc, struct cb_error *err)
{
	const json_t *schema = json_object_get(doc, "schema");
	const json_t *cells = json_object_get(doc, "cells");
	if (!json_is_string(schema) || strcmp(json_string_value(schema), CB_RESULTS_SCHEMA) != 0)
		return CB_FAIL(err, CB_EFORMAT, path, NULL,
			       "not a ckptbench results file (schema \"%s\" expected)",
			       CB_RESULTS_SCHEMA);
	if (!json_is_array(cells))
		return CB_FAIL(err, CB_EFORMAT, path, NULL,
			       "a results file needs a \"cells\" array");
	for (size_t i = 0; i < json_array_size(cells); i++) {
		int rc = check_cell(path, i, json_array_get(cells, i), err);
		if (rc != CB_OK)
			return rc;
	}
	return CB_OK;
}

/* ------------------------------------------------------------ reading */

/* calloc for n entries (NULL for none); *fail set when out of memory. */
static void *array_of(size_t n, size_t size, bool *fail)
{
	if (n == 0)
		return NULL;
	void *p = calloc(n, size);
	if (!p)
		*fail = true;
	return p;
}

/* Reads each entry of a JSON array into a new array of `size`-byte
 * structs with `read`; *n_out entries (0 when out of memory: *fail). */
typedef void (*entry_reader)(const json_t *entry, void *out, bool *fail);
static void *read_list(const json_t *arr, size_t size, entry_reader read, size_t *n_out, bool *fail)
{
	size_t n = json_array_size(arr);
	char *v = array_of(n, size, fail);
	*n_out = v ? n : 0;
	for (size_t i = 0; i < *n_out; i++)
		read(json_array_get(arr, i), v + i * size, fail);
	return v;
}

static double *samples(const json_t *arr, size_t n, bool *fail)
{
	double *v = array_of(n, sizeof *v, fail);
	for (size_t i = 0; v && i < n; i++)
		v[i] = cb_json_at(arr, i);
	return v;
}

static void timeline_free(struct cb_results_timeline *tl)
{
	if (!tl)
		return;
	free(tl->t_s);
	free(tl->anon_bytes);
	free(tl->file_bytes);
	free(tl->vram_bytes);
	free(tl->phases);
	free(tl);
}

static void read_phase(const json_t *ph, void *to, bool *fail)
{
	(void)fail;
	*(struct cb_results_phase *)to = (struct cb_results_phase){
		cb_json_str(ph, "name"), cb_json_num(ph, "start_s"), cb_json_num(ph, "end_s")};
}

/* The trial's timeline, or NULL (none, or out of memory: *fail). */
static struct cb_results_timeline *read_timeline(const json_t *o, bool *fail)
{
	const json_t *t = json_object_get(o, "t_s");
	if (!json_is_object(o) || !json_is_array(t))
		return NULL;
	struct cb_results_timeline *tl = calloc(1, sizeof *tl);
	if (!tl) {
		*fail = true;
		return NULL;
	}
	bool bad = false;
	tl->n = json_array_size(t);
	tl->t_s = samples(t, tl->n, &bad);
	tl->anon_bytes = samples(json_object_get(o, "anon_bytes"), tl->n, &bad);
	tl->file_bytes = samples(json_object_get(o, "file_bytes"), tl->n, &bad);
	const json_t *vram = json_object_get(o, "vram_bytes");
	if (json_is_array(vram))
		tl->vram_bytes = samples(vram, tl->n, &bad);
	tl->phases = read_list(json_object_get(o, "phases"), sizeof *tl->phases, read_phase,
			       &tl->n_phases, &bad);
	if (bad) {
		timeline_free(tl);
		*fail = true;
		return NULL;
	}
	return tl;
}

static void read_trial(const json_t *t, void *to, bool *fail)
{
	struct cb_results_trial *out = to;
	const json_t *phases = json_object_get(t, "phases");
	*out = (struct cb_results_trial){
		.outcome = cb_json_str(t, "outcome"),
		.message = cb_json_str(t, "message"),
		.wall_s = cb_json_num(t, "wall_s"),
		.init_s = cb_json_num(phases, "init"),
		.read_s = cb_json_num(phases, "read"),
		.copy_s = cb_json_num(phases, "copy"),
		.to_device_s = cb_json_num(phases, "to_device"),
		.baseline_rss_bytes = cb_json_num(t, "baseline_rss_bytes"),
		.baseline_anon_bytes = cb_json_num(t, "baseline_anon_bytes"),
		.baseline_file_bytes = cb_json_num(t, "baseline_file_bytes"),
		.baseline_vram_bytes = cb_json_num(t, "baseline_vram_bytes"),
		.peak_rss_bytes = cb_json_num(t, "peak_rss_bytes"),
		.peak_anon_bytes = cb_json_num(t, "peak_anon_bytes"),
		.peak_file_bytes = cb_json_num(t, "peak_file_bytes"),
		.peak_vram_bytes = cb_json_num(t, "peak_vram_bytes"),
		.user_s = cb_json_num(t, "user_s"),
		.sys_s = cb_json_num(t, "sys_s"),
		.instructions = cb_json_num(t, "instructions"),
		.read_bytes = cb_json_num(t, "read_bytes"),
		.residency_before = cb_json_num(t, "residency_before"),
	};
	out->ok = strcmp(out->outcome, "ok") == 0;
	out->timeline = read_timeline(json_object_get(t, "timeline"), fail);
}

static void trials_free(struct cb_results_trial *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		timeline_free((struct cb_results_timeline *)v[i].timeline);
	free(v);
}

static void read_summary(const json_t *s, struct cb_results_summary *out)
{
	const json_t *ci = json_object_get(s, "ci95_s");
	double n = cb_json_num(s, "n");
	*out = (struct cb_results_summary){
		.present = json_is_object(s),
		.n = isfinite(n) && n > 0 ? (size_t)n : 0,
		.median_s = cb_json_num(s, "median_s"),
		.min_s = cb_json_num(s, "min_s"),
		.max_s = cb_json_num(s, "max_s"),
		.mean_s = cb_json_num(s, "mean_s"),
		.stddev_s = cb_json_num(s, "stddev_s"),
		.mad_s = cb_json_num(s, "mad_s"),
		.ci95_lo_s = cb_json_at(ci, 0),
		.ci95_hi_s = cb_json_at(ci, 1),
		.ci95_is_range = json_is_true(json_object_get(s, "ci95_is_range")),
		.gbps = cb_json_num(s, "gbps"),
		.ceiling = cb_json_str(s, "ceiling"),
		.ceiling_source = cb_json_str(s, "ceiling_source"),
		.ceiling_gbps = cb_json_num(s, "ceiling_gbps"),
		.ceiling_file_bytes = cb_json_num(s, "ceiling_file_bytes"),
		.ceiling_fraction = cb_json_num(s, "ceiling_fraction"),
		.init_median_s = cb_json_num(s, "init_median_s"),
		.load_median_s = cb_json_num(s, "load_median_s"),
		.load_gbps = cb_json_num(s, "load_gbps"),
		.load_ceiling_fraction = cb_json_num(s, "load_ceiling_fraction"),
		.best_load_ceiling_fraction = cb_json_num(s, "best_load_ceiling_fraction"),
		.ceiling_exceeded = json_is_true(json_object_get(s, "ceiling_exceeded")),
		.peak_rss_over_model = cb_json_num(s, "peak_rss_over_model"),
		.peak_anon_over_model = cb_json_num(s, "peak_anon_over_model"),
		.peak_file_over_model = cb_json_num(s, "peak_file_over_model"),
		.peak_vram_over_model = cb_json_num(s, "peak_vram_over_model"),
		.warning = cb_json_str(s, "warning"),
	};
}

static int cmp_option(const void *a, const void *b)
{
	return strcmp(((const struct cb_results_option *)a)->name,
		      ((const struct cb_results_option *)b)->name);
}

/* The cell's options, sorted, and its key's canonical options text. */
static void read_options(const json_t *o, struct cb_results_cell *c, bool *fail)
{
	if (!json_is_object(o) || json_object_size(o) == 0) {
		c->key.options = strdup("{}");
		*fail |= !c->key.options;
		return;
	}
	c->options = array_of(json_object_size(o), sizeof *c->options, fail);
	if (!c->options)
		return;
	const char *name;
	const json_t *v;
	json_object_foreach((json_t *)o, name, v)
	{
		struct cb_results_option *opt = &c->options[c->n_options++];
		opt->name = name;
		opt->json = canonical(v, false);
		opt->text = canonical(v, true);
		if (!opt->json || !opt->text)
			*fail = true;
	}
	qsort(c->options, c->n_options, sizeof *c->options, cmp_option);
	c->key.options = canonical(o, false);
	*fail |= !c->key.options;
}

/* The key's selection, ranks and storage parts (struct cb_cell_key). */
static void read_key_beyond(const json_t *j, struct cb_results_cell *c, bool *fail)
{
	const json_t *sel = json_object_get(j, "selection");
	if (json_is_object(sel)) {
		c->key.selection = canonical(sel, false);
		*fail |= !c->key.selection;
	}
	const json_t *ranks = json_object_get(j, "ranks");
	if (json_is_object(ranks)) {
		json_t *id = json_pack("{s:O?,s:O?}", "n", json_object_get(ranks, "n"), "dist",
				       json_object_get(ranks, "dist"));
		c->key.ranks = id ? canonical(id, false) : NULL;
		*fail |= !c->key.ranks;
		json_decref(id);
	}
	const json_t *storage = json_object_get(j, "storage");
	if (json_is_object(storage))
		c->key.storage = str_or_null(storage, "profile");
	else if (json_is_string(storage))
		c->key.storage = json_string_value(storage);
}

static void read_cell(const json_t *j, struct cb_results_file *f, size_t index, bool *fail)
{
	struct cb_results_cell *c = &f->cells[index];
	c->json = j;
	c->file = f;
	c->index = index;
	c->key.loader = cb_json_str(j, "loader");
	c->key.dataset = cb_json_str(j, "dataset");
	c->key.cache = cb_json_str(j, "cache");
	c->key.device = str_or_null(j, "device");
	read_options(json_object_get(j, "options"), c, fail);
	read_key_beyond(j, c, fail);
	c->format = cb_json_str(j, "format");
	c->dataset_path = cb_json_str(j, "dataset_path");
	c->status = cb_json_str(j, "status");
	c->reason = cb_json_str(j, "reason");
	c->model_bytes = cb_json_num(j, "model_bytes");
	c->incomplete = json_is_true(json_object_get(j, "incomplete"));
	c->trials = read_list(json_object_get(j, "trials"), sizeof *c->trials, read_trial,
			      &c->n_trials, fail);
	for (size_t i = 0; i < c->n_trials; i++)
		c->n_ok += c->trials[i].ok;
	c->warmup = read_list(json_object_get(j, "warmup"), sizeof *c->warmup, read_trial,
			      &c->n_warmup, fail);
	read_summary(json_object_get(j, "summary"), &c->summary);
}

static void cell_free(struct cb_results_cell *c)
{
	for (size_t i = 0; i < c->n_options; i++) {
		free(c->options[i].json);
		free(c->options[i].text);
	}
	free(c->options);
	free((char *)c->key.options);
	free((char *)c->key.selection);
	free((char *)c->key.ranks);
	trials_free(c->trials, c->n_trials);
	trials_free(c->warmup, c->n_warmup);
}

static void read_sized_ceiling(const json_t *e, void *to, bool *fail)
{
	(void)fail;
	*(struct cb_results_sized_ceiling *)to = (struct cb_results_sized_ceiling){
		.file_bytes = cb_json_num(e, "file_bytes"),
		.cold_read_gbps = cb_json_num(e, "cold_read_gbps"),
		.warm_read_gbps = cb_json_num(e, "warm_read_gbps"),
		.cold_read_best_gbps = cb_json_num(e, "cold_read_best_gbps"),
		.warm_read_best_gbps = cb_json_num(e, "warm_read_best_gbps"),
		.note = cb_json_str(e, "note"),
	};
}

static void read_paired_read(const json_t *e, void *to, bool *fail)
{
	(void)fail;
	*(struct cb_results_paired_read *)to = (struct cb_results_paired_read){
		.dataset = cb_json_str(e, "dataset"),
		.format = cb_json_str(e, "format"),
		.cache = cb_json_str(e, "cache"),
		.file_bytes = cb_json_num(e, "file_bytes"),
		.threads = cb_json_num(e, "threads"),
		.read_gbps = cb_json_num(e, "read_gbps"),
		.read_best_gbps = cb_json_num(e, "read_best_gbps"),
		.note = cb_json_str(e, "note"),
	};
}

static void read_calibration(const json_t *o, struct cb_results_calibration *out, bool *fail)
{
	*out = (struct cb_results_calibration){
		.present = json_is_object(o),
		.cold_read_gbps = cb_json_num(o, "cold_read_gbps"),
		.cold_read_direct_gbps = cb_json_num(o, "cold_read_direct_gbps"),
		.warm_read_gbps = cb_json_num(o, "warm_read_gbps"),
		.cold_read_best_gbps = cb_json_num(o, "cold_read_best_gbps"),
		.warm_read_best_gbps = cb_json_num(o, "warm_read_best_gbps"),
		.cold_read_reused_gbps = cb_json_num(o, "cold_read_reused_gbps"),
		.warm_read_reused_gbps = cb_json_num(o, "warm_read_reused_gbps"),
		.memcpy_gbps = cb_json_num(o, "memcpy_gbps"),
		.memcpy_all_gbps = cb_json_num(o, "memcpy_all_gbps"),
		.h2d_gbps = cb_json_num(o, "h2d_gbps"),
		.file_bytes = cb_json_num(o, "file_bytes"),
		.memcpy_bytes = cb_json_num(o, "memcpy_bytes"),
		.note = cb_json_str(o, "note"),
	};
	if (!out->present)
		return;
	out->figures = array_of(json_object_size(o), sizeof *out->figures, fail);
	const char *name;
	const json_t *v;
	json_object_foreach((json_t *)o, name, v)
	{
		if (out->figures && json_is_number(v))
			out->figures[out->n_figures++] =
				(struct cb_results_figure){name, json_number_value(v)};
	}
	out->by_size = read_list(json_object_get(o, "by_size"), sizeof *out->by_size,
				 read_sized_ceiling, &out->n_by_size, fail);
	out->paired_reads = read_list(json_object_get(o, "paired_reads"), sizeof *out->paired_reads,
				      read_paired_read, &out->n_paired_reads, fail);
}

static void read_gpu(const json_t *g, void *to, bool *fail)
{
	(void)fail;
	*(struct cb_results_gpu *)to =
		(struct cb_results_gpu){cb_json_str(g, "name"), cb_json_num(g, "memory_bytes")};
}

static void read_machine(const json_t *m, struct cb_results_machine *out, bool *fail)
{
	const json_t *dd = json_object_get(m, "data_dir");
	*out = (struct cb_results_machine){
		.hostname = cb_json_str(m, "hostname"),
		.cpu_model = cb_json_str(m, "cpu_model"),
		.arch = cb_json_str(m, "arch"),
		.os = cb_json_str(m, "os"),
		.kernel = cb_json_str(m, "kernel"),
		.thp = cb_json_str(m, "thp"),
		.packages = cb_json_num(m, "packages"),
		.cores = cb_json_num(m, "cores"),
		.pus = cb_json_num(m, "pus"),
		.numa_nodes = cb_json_num(m, "numa_nodes"),
		.memory_bytes = cb_json_num(m, "memory_bytes"),
		.hypervisor = tristate(m, "hypervisor"),
		.free_page_reporting_order = cb_json_num(m, "free_page_reporting_order"),
		.has_data_dir = json_is_object(dd),
		.data_dir_path = cb_json_str(dd, "path"),
		.data_dir_fs_type = cb_json_str(dd, "fs_type"),
		.data_dir_device = cb_json_str(dd, "device"),
		.data_dir_rotational = tristate(dd, "rotational"),
		.json = json_is_object(m) ? m : NULL,
	};
	out->gpus = read_list(json_object_get(m, "gpus"), sizeof *out->gpus, read_gpu, &out->n_gpus,
			      fail);
}

static void read_config(const json_t *o, struct cb_results_config *out)
{
	*out = (struct cb_results_config){
		.repeat = cb_json_num(o, "repeat"),
		.warmup = cb_json_num(o, "warmup"),
		.device = str_or_null(o, "device"),
		.ceilings = cb_json_str(o, "ceilings"),
		.order = cb_json_str(o, "order"),
		.ab_side = cb_json_str(json_object_get(o, "ab"), "side"),
	};
}

/* Builds the model of a checked document; steals the reference to doc. */
static int build(json_t *doc, const char *path, struct cb_results_file **out, struct cb_error *err)
{
	struct model *m = calloc(1, sizeof *m);
	if (!m) {
		json_decref(doc);
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	}
	bool fail = false;
	struct cb_results_file *f = &m->pub;
	m->doc = doc;
	f->json = doc;
	if (path && !(m->path = strdup(path)))
		fail = true;
	f->path = m->path ? m->path : "";
	const json_t *tool = json_object_get(doc, "tool");
	f->tool_version = cb_json_str(tool, "version");
	f->tool_commit = cb_json_str(tool, "commit");
	f->timestamp = cb_json_str(doc, "timestamp");
	f->interrupted = json_is_true(json_object_get(doc, "interrupted"));
	read_machine(json_object_get(doc, "machine"), &f->machine, &fail);
	read_calibration(json_object_get(doc, "calibration"), &f->calibration, &fail);
	read_config(json_object_get(doc, "config"), &f->config);
	const json_t *cells = json_object_get(doc, "cells");
	f->cells = array_of(json_array_size(cells), sizeof *f->cells, &fail);
	for (size_t i = 0; f->cells && i < json_array_size(cells); i++) {
		read_cell(json_array_get(cells, i), f, i, &fail);
		f->n_cells++;
	}
	if (fail) {
		cb_results_file_free(f);
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory reading the results");
	}
	*out = f;
	return CB_OK;
}

int cb_results_file_from_json(json_t *doc, const char *path, struct cb_results_file **out,
			      struct cb_error *err)
{
	*out = NULL;
	int rc = check_doc(path, doc, err);
	return rc != CB_OK ? rc : build(json_incref(doc), path, out, err);
}

int cb_results_file_load(const char *path, struct cb_results_file **out, struct cb_error *err)
{
	*out = NULL;
	char *text;
	size_t len;
	int rc = cb_read_small_file(path, CB_RESULTS_MAX_BYTES, &text, &len, err);
	if (rc != CB_OK)
		return rc;
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, 0, &jerr);
	free(text);
	if (!doc) {
		char where[64];
		snprintf(where, sizeof where, "line %d", jerr.line);
		return CB_FAIL(err, CB_EFORMAT, path, where, "not a JSON document: %s", jerr.text);
	}
	rc = check_doc(path, doc, err);
	if (rc != CB_OK) {
		json_decref(doc);
		return rc;
	}
	return build(doc, path, out, err);
}

void cb_results_file_free(struct cb_results_file *f)
{
	if (!f)
		return;
	struct model *m = (struct model *)f;
	for (size_t i = 0; i < f->n_cells; i++)
		cell_free(&f->cells[i]);
	free(f->cells);
	free(f->calibration.figures);
	free(f->calibration.by_size);
	free(f->calibration.paired_reads);
	free(f->machine.gpus);
	free(m->path);
	json_decref(m->doc);
	free(m);
}

/* ------------------------------------------------------------ accessors */

const struct cb_results_cell *cb_results_find(const struct cb_results_file *f,
					      const struct cb_cell_key *key, unsigned ignore)
{
	for (size_t i = 0; i < f->n_cells; i++)
		if (cb_cell_key_equal(&f->cells[i].key, key, ignore))
			return &f->cells[i];
	return NULL;
}

bool cb_results_cell_measured(const struct cb_results_cell *c)
{
	return strcmp(c->status, "ok") == 0 && c->summary.present && isfinite(c->summary.median_s);
}

bool cb_results_same_machine(const struct cb_results_machine *a, const struct cb_results_machine *b)
{
	if (!a->json || !b->json)
		return !a->json && !b->json;
	return json_equal((json_t *)a->json, (json_t *)b->json);
}

/* ------------------------------------------------------------ labels */

static const struct cb_results_option *option_named(const struct cb_results_cell *c,
						    const char *name)
{
	struct cb_results_option probe = {.name = name};
	if (c->n_options == 0) /* bsearch's base must not be NULL */
		return NULL;
	return bsearch(&probe, c->options, c->n_options, sizeof *c->options, cmp_option);
}

/* Two cells of `loader` among the set that differ only by their options. */
static bool loader_ambiguous(const char *loader, const struct cb_results_cell *const *among,
			     size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(among[i]->key.loader, loader) != 0)
			continue;
		for (size_t j = i + 1; j < n; j++)
			if (cb_cell_key_equal(&among[i]->key, &among[j]->key, CB_KEY_BUT_OPTIONS) &&
			    strcmp(among[i]->key.options, among[j]->key.options) != 0)
				return true;
	}
	return false;
}

/* The option's value differs in (or is missing from) another cell of the
 * loader among the set. */
static bool option_varies(const struct cb_results_option *o, const char *loader,
			  const struct cb_results_cell *const *among, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(among[i]->key.loader, loader) != 0)
			continue;
		const struct cb_results_option *other = option_named(among[i], o->name);
		if (!other || strcmp(other->json, o->json) != 0)
			return true;
	}
	return false;
}

static void label_beyond(const struct cb_results_cell *c, char *buf, size_t size);

void cb_results_cell_label(const struct cb_results_cell *c,
			   const struct cb_results_cell *const *among, size_t n, char *buf,
			   size_t size)
{
	if (size == 0)
		return;
	const char *loader = c->key.loader;
	int w = snprintf(buf, size, "%s", loader);
	size_t used = w > 0 ? (size_t)w : 0;
	if (!loader_ambiguous(loader, among, n)) {
		label_beyond(c, buf, size);
		return;
	}
	for (size_t k = 0; k < c->n_options && used < size; k++) {
		const struct cb_results_option *o = &c->options[k];
		if (!option_varies(o, loader, among, n))
			continue;
		w = snprintf(buf + used, size - used, ":%s=%s", o->name, o->text);
		used += w > 0 ? (size_t)w : 0;
	}
	label_beyond(c, buf, size);
}

/* The parts of the key beyond one whole model, one process, one disk, as a
 * label's suffix: " [layers.0-7] tp4/r1 @sshfs 4x replicate". */
static void label_beyond(const struct cb_results_cell *c, char *buf, size_t size)
{
	size_t used = strnlen(buf, size);
	const json_t *sel = json_object_get(c->json, "selection");
	const json_t *pats = json_object_get(sel, "select");
	for (size_t i = 0; i < json_array_size(pats) && used < size; i++) {
		int w = snprintf(buf + used, size - used, "%s%s%s", i ? "," : " [",
				 json_string_value(json_array_get(pats, i)),
				 i + 1 == json_array_size(pats) ? "]" : "");
		used += w > 0 ? (size_t)w : 0;
	}
	double tp = cb_json_num(sel, "tp");
	if (isfinite(tp) && tp > 1 && used < size) {
		int w = snprintf(buf + used, size - used, " tp%.0f/r%.0f", tp,
				 cb_json_num(sel, "rank"));
		used += w > 0 ? (size_t)w : 0;
	}
	if (c->key.storage && used < size) {
		int w = snprintf(buf + used, size - used, " @%s", c->key.storage);
		used += w > 0 ? (size_t)w : 0;
	}
	const json_t *ranks = json_object_get(c->json, "ranks");
	if (json_is_object(ranks) && used < size)
		snprintf(buf + used, size - used, " %.0fx %s", cb_json_num(ranks, "n"),
			 json_string_value(json_object_get(ranks, "dist"))
				 ? json_string_value(json_object_get(ranks, "dist"))
				 : "?");
}
