/* The results model (bench/results/results_model.h): every results file the project
 * has written (tests/data/results, tests/data/compare, results/reference)
 * loads, and what the model holds is what the raw JSON says; the cell key
 * keeps two cells that differ only by their options apart; labels name
 * them; malformed documents are refused. CKPTBENCH_SOURCE is the source
 * tree. */
#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "results_model.h"

static const char *source;

/* Both NaN, or equal. */
static bool same_num(double a, double b)
{
	return (isnan(a) && isnan(b)) || a == b;
}

static double raw_num(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* The raw cell's key as one string: what the model's key must tell apart. */
static char *raw_key(const json_t *c)
{
	const json_t *opts = json_object_get(c, "options");
	char *o = json_is_object(opts) && json_object_size(opts)
			  ? json_dumps(opts, JSON_COMPACT | JSON_SORT_KEYS)
			  : strdup("{}");
	const char *device = json_string_value(json_object_get(c, "device"));
	char *key = NULL;
	if (asprintf(&key, "%s|%s|%s|%s|%s", json_string_value(json_object_get(c, "loader")), o,
		     json_string_value(json_object_get(c, "dataset")),
		     json_string_value(json_object_get(c, "cache")),
		     device ? device : "(null)") < 0)
		key = NULL;
	free(o);
	return key;
}

/* ------------------------------------------------------------ every file */

static void check_trial(const struct cb_results_trial *t, const json_t *raw)
{
	CHECK_STR_EQ(t->outcome, json_string_value(json_object_get(raw, "outcome")));
	CHECK(t->ok == (strcmp(t->outcome, "ok") == 0));
	CHECK(same_num(t->wall_s, raw_num(raw, "wall_s")));
	CHECK(same_num(t->peak_rss_bytes, raw_num(raw, "peak_rss_bytes")));
	CHECK(same_num(t->peak_vram_bytes, raw_num(raw, "peak_vram_bytes")));
	CHECK(same_num(t->instructions, raw_num(raw, "instructions")));
	CHECK(same_num(t->init_s, raw_num(json_object_get(raw, "phases"), "init")));
	const json_t *tl = json_object_get(raw, "timeline");
	CHECK((t->timeline != NULL) == json_is_object(tl));
	if (t->timeline) {
		const json_t *ts = json_object_get(tl, "t_s");
		CHECK_EQ_U64(t->timeline->n, json_array_size(ts));
		CHECK_EQ_U64(t->timeline->n_phases, json_array_size(json_object_get(tl, "phases")));
		if (t->timeline->n)
			CHECK(same_num(t->timeline->t_s[t->timeline->n - 1],
				       json_number_value(json_array_get(ts, t->timeline->n - 1))));
	}
}

static void check_cell(const struct cb_results_file *f, size_t i, const json_t *raw,
		       const json_t *raw_cells)
{
	const struct cb_results_cell *c = &f->cells[i];
	CHECK(c->file == f && c->index == i && json_equal((json_t *)c->json, (json_t *)raw));
	CHECK_STR_EQ(c->key.loader, json_string_value(json_object_get(raw, "loader")));
	CHECK_STR_EQ(c->key.dataset, json_string_value(json_object_get(raw, "dataset")));
	CHECK_STR_EQ(c->key.cache, json_string_value(json_object_get(raw, "cache")));
	const char *device = json_string_value(json_object_get(raw, "device"));
	CHECK(device ? c->key.device && strcmp(c->key.device, device) == 0 : !c->key.device);
	/* The options as canonical JSON: jansson's compact sorted dump, for
	 * these files' options (no reals, no control characters). */
	const json_t *opts = json_object_get(raw, "options");
	char *want = json_object_size(opts) ? json_dumps(opts, JSON_COMPACT | JSON_SORT_KEYS)
					    : strdup("{}");
	CHECK_STR_EQ(c->key.options, want);
	free(want);
	CHECK_EQ_U64(c->n_options, json_object_size(opts));
	for (size_t k = 1; k < c->n_options; k++)
		CHECK(strcmp(c->options[k - 1].name, c->options[k].name) < 0);
	CHECK_STR_EQ(c->status, json_string_value(json_object_get(raw, "status")));
	CHECK(same_num(c->model_bytes, raw_num(raw, "model_bytes")));
	const json_t *trials = json_object_get(raw, "trials");
	CHECK_EQ_U64(c->n_trials, json_array_size(trials));
	size_t ok = 0;
	for (size_t t = 0; t < c->n_trials; t++) {
		check_trial(&c->trials[t], json_array_get(trials, t));
		ok += strcmp(json_string_value(
				     json_object_get(json_array_get(trials, t), "outcome")),
			     "ok") == 0;
	}
	CHECK_EQ_U64(c->n_ok, ok);
	CHECK_EQ_U64(c->n_warmup, json_array_size(json_object_get(raw, "warmup")));
	const json_t *s = json_object_get(raw, "summary");
	CHECK(c->summary.present == json_is_object(s));
	CHECK(same_num(c->summary.median_s, raw_num(s, "median_s")));
	CHECK(same_num(c->summary.peak_rss_over_model, raw_num(s, "peak_rss_over_model")));
	CHECK(same_num(c->summary.load_gbps, raw_num(s, "load_gbps")));
	const json_t *ci = json_object_get(s, "ci95_s");
	if (json_is_array(ci))
		CHECK(same_num(c->summary.ci95_hi_s, json_number_value(json_array_get(ci, 1))));
	CHECK(cb_results_cell_measured(c) ==
	      (strcmp(c->status, "ok") == 0 && isfinite(raw_num(s, "median_s"))));
	/* The key: find gives the first raw cell with the same key. */
	char *mine = raw_key(raw);
	size_t first = i;
	for (size_t j = 0; j < i && first == i; j++) {
		char *other = raw_key(json_array_get(raw_cells, j));
		if (mine && other && strcmp(mine, other) == 0)
			first = j;
		free(other);
	}
	free(mine);
	const struct cb_results_cell *found = cb_results_find(f, &c->key, CB_KEY_ALL);
	CHECK(found && found->index == first);
}

static void check_file(const char *path, size_t *loaded)
{
	json_t *raw = json_load_file(path, 0, NULL);
	if (!raw)
		return; /* not JSON: not a results file of ours */
	struct cb_results_file *f = NULL;
	struct cb_error err = CB_ERROR_INIT;
	int rc = cb_results_file_load(path, &f, &err);
	const char *schema = json_string_value(json_object_get(raw, "schema"));
	if (!schema || strcmp(schema, CB_RESULTS_SCHEMA) != 0) {
		CHECK(rc == CB_EFORMAT && f == NULL);
		CHECK_CONTAINS(err.msg, "not a ckptbench results file");
		json_decref(raw);
		return;
	}
	if (rc != CB_OK)
		fprintf(stderr, "%s: %s\n", path, err.msg);
	CHECK(rc == CB_OK && f);
	if (rc != CB_OK) {
		json_decref(raw);
		return;
	}
	++*loaded;
	CHECK_STR_EQ(f->path, path);
	CHECK_STR_EQ(f->timestamp, json_string_value(json_object_get(raw, "timestamp")));
	CHECK_STR_EQ(f->tool_commit,
		     json_string_value(json_object_get(json_object_get(raw, "tool"), "commit")));
	const json_t *m = json_object_get(raw, "machine");
	const char *host = json_string_value(json_object_get(m, "hostname"));
	CHECK_STR_EQ(f->machine.hostname, host ? host : "");
	CHECK(same_num(f->machine.memory_bytes, raw_num(m, "memory_bytes")));
	CHECK_EQ_U64(f->machine.n_gpus, json_array_size(json_object_get(m, "gpus")));
	const json_t *cal = json_object_get(raw, "calibration");
	CHECK(f->calibration.present == json_is_object(cal));
	CHECK(same_num(f->calibration.cold_read_gbps, raw_num(cal, "cold_read_gbps")));
	CHECK(same_num(f->calibration.h2d_gbps, raw_num(cal, "h2d_gbps")));
	CHECK_EQ_U64(f->calibration.n_by_size, json_array_size(json_object_get(cal, "by_size")));
	CHECK_EQ_U64(f->calibration.n_paired_reads,
		     json_array_size(json_object_get(cal, "paired_reads")));
	for (size_t i = 0; i < f->calibration.n_figures; i++)
		CHECK(same_num(f->calibration.figures[i].value,
			       raw_num(cal, f->calibration.figures[i].name)));
	CHECK(same_num(f->config.repeat, raw_num(json_object_get(raw, "config"), "repeat")));
	const json_t *cells = json_object_get(raw, "cells");
	CHECK_EQ_U64(f->n_cells, json_array_size(cells));
	for (size_t i = 0; i < f->n_cells && i < json_array_size(cells); i++)
		check_cell(f, i, json_array_get(cells, i), cells);
	cb_results_file_free(f);
	json_decref(raw);
}

/* Every *.json below dir, recursively. */
static void walk(const char *dir, size_t *loaded, size_t *seen)
{
	DIR *d = opendir(dir);
	CHECK(d != NULL);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *path = NULL;
		if (asprintf(&path, "%s/%s", dir, e->d_name) < 0)
			continue;
		struct stat st;
		size_t len = strlen(e->d_name);
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			walk(path, loaded, seen);
		} else if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0) {
			++*seen;
			check_file(path, loaded);
		}
		free(path);
	}
	closedir(d);
}

static void test_every_file(void)
{
	static const char *const dirs[] = {"tests/data/results", "tests/data/compare",
					   "results/reference"};
	size_t loaded = 0, seen = 0;
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		char *dir = NULL;
		if (asprintf(&dir, "%s/%s", source, dirs[i]) >= 0)
			walk(dir, &loaded, &seen);
		free(dir);
	}
	/* 3 + 7 + 8 files today; more may come, none may stop loading. */
	CHECK(loaded >= 18);
	CHECK(seen > loaded); /* compare/not-results.json is refused */
}

/* ------------------------------------------------------------ known files */

static struct cb_results_file *load(const char *rel)
{
	char *path = NULL;
	struct cb_results_file *f = NULL;
	struct cb_error err = CB_ERROR_INIT;
	if (asprintf(&path, "%s/%s", source, rel) >= 0 && cb_results_file_load(path, &f, &err))
		fprintf(stderr, "%s: %s\n", rel, err.msg);
	free(path);
	return f;
}

static void label_of(const struct cb_results_file *f, size_t i, char *buf, size_t size)
{
	const struct cb_results_cell **among = calloc(f->n_cells, sizeof *among);
	for (size_t k = 0; among && k < f->n_cells; k++)
		among[k] = &f->cells[k];
	cb_results_cell_label(&f->cells[i], among, among ? f->n_cells : 0, buf, size);
	free(among);
}

/* final.json holds safetensors-gpu twice per (dataset, cache): the default
 * 4 MiB chunks and chunk-mib=2. Four cells, not two. */
static void test_options_in_key(void)
{
	struct cb_results_file *f = load("results/reference/gpu-h100-tuned/final.json");
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK_EQ_U64(f->n_cells, 12);
	const struct cb_results_cell *a = &f->cells[0], *b = &f->cells[2];
	CHECK_STR_EQ(a->key.loader, "safetensors-gpu");
	CHECK_STR_EQ(b->key.loader, "safetensors-gpu");
	CHECK_STR_EQ(a->key.cache, "cold");
	CHECK_STR_EQ(b->key.cache, "cold");
	CHECK_STR_EQ(a->key.device, "cuda:0");
	CHECK(!cb_cell_key_equal(&a->key, &b->key, CB_KEY_ALL));
	CHECK(cb_cell_key_equal(&a->key, &b->key, CB_KEY_BUT_OPTIONS));
	CHECK_CONTAINS(a->key.options, "\"chunk-mib\":4");
	CHECK_CONTAINS(b->key.options, "\"chunk-mib\":2");
	CHECK(cb_results_find(f, &a->key, CB_KEY_ALL) == a);
	CHECK(cb_results_find(f, &b->key, CB_KEY_ALL) == b);
	CHECK(cb_results_find(f, &b->key, CB_KEY_BUT_OPTIONS) == a);
	CHECK(a->summary.median_s == 4.5505243 && b->summary.median_s == 4.56037896);
	/* Labels: the option that differs, and only for that loader. */
	char label[256];
	label_of(f, 0, label, sizeof label);
	CHECK_STR_EQ(label, "safetensors-gpu:chunk-mib=4");
	label_of(f, 3, label, sizeof label);
	CHECK_STR_EQ(label, "safetensors-gpu:chunk-mib=2");
	label_of(f, 6, label, sizeof label); /* a 1G cell: the same names */
	CHECK_STR_EQ(label, "safetensors-gpu:chunk-mib=4");
	label_of(f, 4, label, sizeof label);
	CHECK_STR_EQ(label, "safetensors-gpu-naive");
	/* A short buffer is cut, terminated. */
	label_of(f, 0, label, 20);
	CHECK_STR_EQ(label, "safetensors-gpu:chu");
	size_t distinct = 0;
	for (size_t i = 0; i < f->n_cells; i++)
		distinct += cb_results_find(f, &f->cells[i].key, CB_KEY_ALL) == &f->cells[i];
	CHECK_EQ_U64(distinct, 12);
	cb_results_file_free(f);
}

static void test_compare_base(void)
{
	struct cb_results_file *f = load("tests/data/compare/base.json");
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK_EQ_U64(f->n_cells, 4);
	const struct cb_results_cell *c = &f->cells[0];
	CHECK_STR_EQ(c->key.loader, "safetensors-read");
	CHECK_STR_EQ(c->key.options, "{}");
	CHECK_STR_EQ(c->key.device, "cpu");
	CHECK_EQ_U64(c->n_trials, 10);
	CHECK_EQ_U64(c->n_ok, 10);
	CHECK(c->trials[0].wall_s == 0.04);
	CHECK(c->summary.present && isnan(c->summary.median_s)); /* "summary": {} */
	CHECK(!cb_results_cell_measured(c));
	CHECK_STR_EQ(f->cells[3].status, "skipped");
	CHECK_STR_EQ(f->cells[3].reason, "no GPU visible");
	CHECK_STR_EQ(f->machine.hostname, "bench-vm");
	CHECK(f->machine.pus == 2 && f->machine.hypervisor == -1);
	CHECK(f->calibration.cold_read_gbps == 2.1 && isnan(f->calibration.h2d_gbps));
	CHECK_STR_EQ(f->tool_commit, "aaaaaaaaaaaa");
	char label[64];
	label_of(f, 0, label, sizeof label);
	CHECK_STR_EQ(label, "safetensors-read");
	cb_results_file_free(f);
}

/* ------------------------------------------------------------ in memory */

static int from_text(const char *text, struct cb_results_file **f, struct cb_error *err)
{
	json_t *doc = json_loads(text, 0, NULL);
	CHECK(doc != NULL);
	int rc = doc ? cb_results_file_from_json(doc, "mem.json", f, err) : CB_EINTERNAL;
	json_decref(doc); /* the model keeps its own reference */
	return rc;
}

#define CELL(loader, options, device)                                                     \
	"{\"loader\": \"" loader "\", \"dataset\": \"d\", \"cache\": \"cold\", "          \
	"\"device\": " device ", \"status\": \"ok\", \"trials\": [{\"outcome\": \"ok\", " \
	"\"wall_s\": 1.5}]" options "}"

static void test_in_memory(void)
{
	static const char doc[] =
		"{\"schema\": \"ckptbench/1\", \"calibration\": null, \"cells\": ["
		/* 0, 1: the same options, keys in another order, 1 and 1.0 */
		CELL("L", ", \"options\": {\"b\": \"x y\", \"a\": 1}", "\"cpu\"") ", " CELL(
			"L", ", \"options\": {\"a\": 1.0, \"b\": \"x y\"}", "\"cpu\"") ", "
		/* 2: another value of a */
		CELL("L", ", \"options\": {\"a\": 2, \"b\": \"x y\"}", "\"cpu\"") ", "
		/* 3: no options at all; 4: a device of null; 5: options null */
		CELL("M", "", "\"cpu\"") ", " CELL("G", ", \"options\": {\"t\": true}",
						   "null") ", " CELL("M", ", \"options\": null",
								     "\"cpu\"") "]}";
	struct cb_results_file *f = NULL;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(from_text(doc, &f, &err) == CB_OK);
	if (!f)
		return;
	CHECK_STR_EQ(f->path, "mem.json");
	CHECK(!f->calibration.present && isnan(f->calibration.cold_read_gbps));
	CHECK(!f->machine.json && f->machine.n_gpus == 0 && *f->machine.hostname == '\0');
	CHECK_EQ_U64(f->n_cells, 6);
	const struct cb_results_cell *c = f->cells;
	CHECK_STR_EQ(c[0].key.options, "{\"a\":1,\"b\":\"x y\"}");
	CHECK(cb_cell_key_equal(&c[0].key, &c[1].key, CB_KEY_ALL));
	CHECK(!cb_cell_key_equal(&c[0].key, &c[2].key, CB_KEY_ALL));
	CHECK(cb_cell_key_equal(&c[0].key, &c[2].key, CB_KEY_BUT_OPTIONS));
	CHECK(cb_results_find(f, &c[1].key, CB_KEY_ALL) == &c[0]);
	CHECK_STR_EQ(c[3].key.options, "{}");
	CHECK(cb_cell_key_equal(&c[3].key, &c[5].key, CB_KEY_ALL));
	CHECK(c[4].key.device == NULL);
	CHECK(cb_cell_key_equal(&c[4].key, &c[4].key, CB_KEY_ALL));
	CHECK(!cb_cell_key_equal(&c[4].key, &c[3].key, CB_KEY_BUT_OPTIONS));
	CHECK_STR_EQ(c[4].options[0].text, "true");
	CHECK_STR_EQ(c[0].options[1].name, "b");
	CHECK_STR_EQ(c[0].options[1].json, "\"x y\"");
	CHECK_STR_EQ(c[0].options[1].text, "x y");
	CHECK(c[0].trials[0].ok && c[0].trials[0].wall_s == 1.5 && isnan(c[0].trials[0].user_s));
	CHECK(!c[0].trials[0].timeline && !c[0].summary.present);

	const struct cb_results_cell *among[6];
	for (size_t i = 0; i < 6; i++)
		among[i] = &c[i];
	char label[64];
	cb_results_cell_label(&c[0], among, 6, label, sizeof label);
	CHECK_STR_EQ(label, "L:a=1"); /* b is the same everywhere: not shown */
	cb_results_cell_label(&c[2], among, 6, label, sizeof label);
	CHECK_STR_EQ(label, "L:a=2");
	cb_results_cell_label(&c[3], among, 6, label, sizeof label);
	CHECK_STR_EQ(label, "M"); /* 3 and 5 are one key */
	cb_results_cell_label(&c[4], among, 6, label, sizeof label);
	CHECK_STR_EQ(label, "G");
	/* Among cells 0 and 1 alone (one setting), L is plain. */
	cb_results_cell_label(&c[0], among, 2, label, sizeof label);
	CHECK_STR_EQ(label, "L");
	/* Across files: the same cell of two files, other options. */
	struct cb_results_file *g = NULL;
	CHECK(from_text("{\"schema\": \"ckptbench/1\", \"cells\": [" CELL(
				"M", ", \"options\": {\"a\": 3}", "\"cpu\"") "]}",
			&g, &err) == CB_OK);
	if (g) {
		const struct cb_results_cell *two[] = {&c[3], &g->cells[0]};
		cb_results_cell_label(&g->cells[0], two, 2, label, sizeof label);
		CHECK_STR_EQ(label, "M:a=3");
		cb_results_cell_label(&c[3], two, 2, label, sizeof label);
		CHECK_STR_EQ(label, "M"); /* it has no option a to show */
		CHECK(cb_results_find(g, &c[3].key, CB_KEY_ALL) == NULL);
		CHECK(cb_results_find(g, &c[3].key, CB_KEY_BUT_OPTIONS) == &g->cells[0]);
	}
	cb_results_file_free(g);
	cb_results_file_free(f);
	cb_results_file_free(NULL);
}

static void test_refusals(void)
{
	static const struct {
		const char *doc, *msg;
	} bad[] = {
		{"{\"schema\": \"ckptbench/2\", \"cells\": []}", "not a ckptbench results file"},
		{"[1, 2]", "not a ckptbench results file"},
		{"{\"schema\": \"ckptbench/1\", \"cells\": {}}", "needs a \"cells\" array"},
		{"{\"schema\": \"ckptbench/1\", \"cells\": [3]}", "a cell must be an object"},
		{"{\"schema\": \"ckptbench/1\", \"cells\": [{\"loader\": \"L\"}]}",
		 "needs a \"dataset\" string"},
		{"{\"schema\": \"ckptbench/1\", \"cells\": [" CELL("L", "", "5") "]}",
		 "\"device\" string (or null)"},
		{"{\"schema\": \"ckptbench/1\", \"cells\": [" CELL("L", ", \"options\": [1]",
								   "\"cpu\"") "]}",
		 "\"options\" is an object"},
		{"{\"schema\": \"ckptbench/1\", \"cells\": [{\"loader\": \"L\", \"dataset\": "
		 "\"d\", "
		 "\"cache\": \"cold\", \"device\": \"cpu\", \"status\": \"ok\"}]}",
		 "needs a \"trials\" array"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct cb_results_file *f = (struct cb_results_file *)1;
		struct cb_error err = CB_ERROR_INIT;
		CHECK(from_text(bad[i].doc, &f, &err) == CB_EFORMAT);
		CHECK(f == NULL);
		CHECK_CONTAINS(err.msg, bad[i].msg);
		CHECK_STR_EQ(err.path, "mem.json");
	}
	/* A file: missing, and not JSON. */
	struct cb_results_file *f = NULL;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_results_file_load("/nonexistent/r.json", &f, &err) != CB_OK && !f);
	char *path = NULL;
	struct cb_error err2 = CB_ERROR_INIT;
	if (asprintf(&path, "%s/tests/data/results/make_results.py", source) >= 0)
		CHECK(cb_results_file_load(path, &f, &err2) == CB_EFORMAT && !f);
	CHECK_CONTAINS(err2.msg, "not a JSON document");
	free(path);
}

static void test_json_helpers(void)
{
	json_t *o = json_pack("{s:i, s:f, s:s, s:n, s:[i, s]}", "i", 3, "f", 0.5, "s", "x", "n",
			      "a", 7, "y");
	CHECK(cb_json_num(o, "i") == 3 && cb_json_num(o, "f") == 0.5);
	CHECK(isnan(cb_json_num(o, "s")) && isnan(cb_json_num(o, "n")));
	CHECK(isnan(cb_json_num(o, "missing")) && isnan(cb_json_num(NULL, "i")));
	CHECK_STR_EQ(cb_json_str(o, "s"), "x");
	CHECK_STR_EQ(cb_json_str(o, "i"), "");
	CHECK_STR_EQ(cb_json_str(NULL, "s"), "");
	const json_t *a = json_object_get(o, "a");
	CHECK(cb_json_at(a, 0) == 7 && isnan(cb_json_at(a, 1)) && isnan(cb_json_at(a, 2)));
	CHECK(isnan(cb_json_at(NULL, 0)) && isnan(cb_json_at(o, 0)));
	json_decref(o);
}

int main(void)
{
	source = getenv("CKPTBENCH_SOURCE");
	if (!source) {
		fprintf(stderr, "CKPTBENCH_SOURCE is not set: run through meson test\n");
		return 77;
	}
	test_every_file();
	test_options_in_key();
	test_compare_base();
	test_in_memory();
	test_refusals();
	test_json_helpers();
	return check_finish("test_results_model");
}
