/* The plan of a run and the record of each trial (see run_plan.h). */
#include "run_plan.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"
#include "gen.h"
#include "manifest.h"
#include "numparse.h"
#include "tensor_hash.h"

/* ------------------------------------------------------------- strlist */

static int strlist_push(struct cb_strlist *l, char *owned)
{
	if (l->n + 1 >= l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char **v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = owned;
	l->v[l->n] = NULL;
	return 0;
}

int cb_strlist_add(struct cb_strlist *l, const char *s)
{
	char *copy = strdup(s);
	if (!copy || strlist_push(l, copy) != 0) {
		free(copy);
		return -1;
	}
	return 0;
}

int cb_strlist_add_null(struct cb_strlist *l)
{
	/* strlist_push keeps v NULL-terminated; make sure v exists. */
	if (l->v)
		return 0;
	l->v = calloc(1, sizeof *l->v);
	l->cap = l->v ? 1 : 0;
	return l->v ? 0 : -1;
}

void cb_strlist_free(struct cb_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

/* ------------------------------------------------------------- loaders */

/* The effective value of every option, for the results and `loaders`. */
static json_t *opts_json(const struct cb_loader *l, const void *opts)
{
	json_t *o = json_object();
	for (const struct cb_loader_opt *p = l->opts; p && p->name; p++) {
		const char *slot = (const char *)opts + p->offset;
		bool b;
		uint64_t u;
		const char *s;
		switch (p->type) {
		case CB_OPT_BOOL:
			memcpy(&b, slot, sizeof b);
			json_object_set_new(o, p->name, json_boolean(b));
			break;
		case CB_OPT_U64:
			memcpy(&u, slot, sizeof u);
			json_object_set_new(o, p->name, json_integer((json_int_t)u));
			break;
		case CB_OPT_STRING:
			memcpy(&s, slot, sizeof s);
			json_object_set_new(o, p->name, s ? json_string(s) : json_null());
			break;
		}
	}
	return o;
}

/* "NAME:KEY=VALUE:KEY=VALUE" into a loader, its options and their JSON. */
static int parse_loader_spec(const char *spec, struct cb_plan_cell *proto, struct cb_error *err)
{
	char name[128];
	const char *colon = strchr(spec, ':');
	size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
	snprintf(name, sizeof name, "%.*s", (int)len, spec);
	proto->loader = cb_loader_find(name);
	if (!proto->loader)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
			       "no loader \"%s\" (see ckptbench loaders)", name);
	const struct cb_loader *l = proto->loader;
	void *opts = calloc(1, l->opts_size ? l->opts_size : 1);
	struct cb_strlist values = {0}; /* the option structs point into these */
	if (!opts)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	int rc = cb_loader_opts_defaults(l, opts, err);
	for (const char *p = colon; rc == CB_OK && p && *p; p = strchr(p + 1, ':')) {
		char kv[256], *eq;
		const char *next = strchr(p + 1, ':');
		snprintf(kv, sizeof kv, "%.*s", (int)(next ? next - p - 1 : (long)strlen(p + 1)),
			 p + 1);
		if (!(eq = strchr(kv, '=')))
			rc = CB_FAIL(err, CB_EUSAGE, NULL, l->name, "option \"%s\" lacks =VALUE",
				     kv);
		else if (cb_strlist_add(&proto->opts, kv) != 0 ||
			 cb_strlist_add(&values, eq + 1) != 0)
			rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		if (rc != CB_OK)
			break;
		*eq = '\0';
		const struct cb_loader_opt *o = cb_loader_opt_find(l, kv);
		rc = o ? cb_loader_opt_set(l, o, opts, values.v[values.n - 1], err)
		       : CB_FAIL(err, CB_EUSAGE, NULL, l->name, "loader has no option \"%s\"", kv);
	}
	if (rc == CB_OK)
		proto->opts_json = opts_json(l, opts);
	free(opts);
	cb_strlist_free(&values);
	return rc;
}

/* ------------------------------------------------------------ datasets */

/* Hashes the model and writes its manifest beside it, or in a temporary
 * file when that place is not writable. */
static int make_manifest(struct cb_plan_dataset *d, bool progress, struct cb_error *err)
{
	struct cb_ckpt *ckpt;
	int rc = cb_ckpt_open(d->path, CB_FORMAT_ANY, &ckpt, err);
	if (rc != CB_OK)
		return rc;
	if (progress)
		fprintf(stderr, "hashing %s for its manifest ...\n", d->path);
	uint64_t *hashes = calloc(ckpt->n_tensors ? ckpt->n_tensors : 1, sizeof *hashes);
	rc = hashes ? cb_ckpt_hash(ckpt, hashes, 0, err)
		    : CB_FAIL(err, CB_ENOMEM, d->path, NULL, "out of memory");
	json_t *doc = rc == CB_OK ? cb_manifest_build(ckpt, d->path, hashes) : NULL;
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	free(hashes);
	cb_ckpt_free(ckpt);
	if (rc != CB_OK)
		return rc;
	if (!text)
		return CB_FAIL(err, CB_ENOMEM, d->path, NULL, "out of memory");
	struct cb_error beside = CB_ERROR_INIT;
	if (cb_write_small_file(d->manifest, text, strlen(text), &beside) != CB_OK) {
		const char *tmp = getenv("TMPDIR");
		char *tmpl = NULL;
		int fd = -1;
		if (asprintf(&tmpl, "%s/ckptbench-manifest-XXXXXX", tmp && *tmp ? tmp : "/tmp") > 0)
			fd = mkstemp(tmpl);
		size_t len = strlen(text);
		rc = fd < 0 ? CB_FAIL_ERRNO(err, errno, tmpl, "create a temporary manifest")
			    : cb_pwrite_full(fd, text, len, 0, tmpl, err);
		if (fd >= 0)
			close(fd);
		free(d->manifest);
		d->manifest = tmpl;
		d->manifest_is_temp = fd >= 0;
	}
	free(text);
	return rc;
}

static int dataset_files(struct cb_plan_dataset *d, enum cb_format fmt)
{
	struct cb_ckpt *ckpt;
	struct cb_error ignored = CB_ERROR_INIT;
	struct cb_plan_files *f = &d->files[fmt];
	if (cb_ckpt_open(d->path, fmt, &ckpt, &ignored) != CB_OK || ckpt->format != fmt)
		return 0; /* this format is not there: cells using it are skipped */
	f->paths = calloc(ckpt->n_files, sizeof *f->paths);
	for (size_t i = 0; f->paths && i < ckpt->n_files; i++) {
		f->paths[i] = strdup(ckpt->files[i].path);
		f->n += f->paths[i] != NULL;
		f->bytes += ckpt->files[i].size;
	}
	f->present = f->paths && f->n == ckpt->n_files;
	cb_ckpt_free(ckpt);
	return f->present ? 0 : -1;
}

static char *base_name(const char *path)
{
	size_t len = strlen(path);
	while (len > 1 && path[len - 1] == '/')
		len--;
	size_t start = len;
	while (start > 0 && path[start - 1] != '/')
		start--;
	return strndup(path + start, len - start);
}

static int resolve_dataset(const char *arg, struct cb_plan_dataset *d, bool progress,
			   struct cb_error *err)
{
	struct stat st;
	d->path = stat(arg, &st) == 0 ? strdup(arg) : cb_path_join(cb_data_dir(), arg);
	if (d->path && stat(d->path, &st) != 0)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
			       "no dataset or model \"%s\" (not a path, nor in %s)", arg,
			       cb_data_dir());
	d->name = d->path ? base_name(d->path) : NULL;
	d->manifest =
		!d->path ? NULL
		: S_ISDIR(st.st_mode)
			? cb_path_join(d->path, "manifest.json")
			: (asprintf(&d->manifest, "%s.manifest.json", d->path) < 0 ? NULL
										   : d->manifest);
	if (!d->name || !d->manifest)
		return CB_FAIL(err, CB_ENOMEM, arg, NULL, "out of memory");
	int rc = access(d->manifest, R_OK) == 0 ? CB_OK : make_manifest(d, progress, err);
	struct cb_manifest *m = NULL;
	if (rc == CB_OK)
		rc = cb_manifest_read(d->manifest, &m, err);
	if (rc != CB_OK)
		return rc;
	d->model_bytes = m->total_bytes;
	cb_manifest_free(m);
	if (dataset_files(d, CB_FORMAT_SAFETENSORS) || dataset_files(d, CB_FORMAT_PYTORCH))
		return CB_FAIL(err, CB_ENOMEM, arg, NULL, "out of memory");
	return CB_OK;
}

/* --preset P --sizes ...: make what is missing, add them to the list. */
static int generate(struct cb_run *run, struct cb_strlist *args, bool pytorch, struct cb_error *err)
{
	const struct cb_run_config *cfg = run->cfg;
	const struct cb_strlist *sizes = &cfg->sizes;
	static const char *const one_default[] = {"256M", NULL};
	size_t n = sizes->n ? sizes->n : 1;
	for (size_t i = 0; i < n; i++) {
		const char *text = sizes->n ? sizes->v[i] : one_default[0];
		struct cb_gen_options o;
		cb_gen_default_options(&o);
		o.preset = cfg->preset;
		o.pytorch = pytorch;
		o.progress = cfg->progress;
		if (!cb_parse_size(text, &o.size) || o.size == 0)
			return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "bad size \"%s\" in --sizes",
				       text);
		if (cfg->dtype && (o.dtype = cb_dtype_from_name(cfg->dtype, strlen(cfg->dtype))) ==
					  CB_DTYPE_INVALID)
			return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "unknown --dtype \"%s\"",
				       cfg->dtype);
		struct cb_gen_result r;
		int rc = cb_gen_dataset(&o, &r, err);
		if (rc == CB_OK && cb_strlist_add(args, r.dir) != 0)
			rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		cb_gen_result_free(&r);
		if (rc != CB_OK)
			return rc;
	}
	return CB_OK;
}

static int build_datasets(struct cb_run *run, bool pytorch, struct cb_error *err)
{
	struct cb_strlist args = {0};
	const struct cb_strlist *given = &run->cfg->dataset_args;
	for (size_t i = 0; i < given->n; i++)
		if (cb_strlist_add(&args, given->v[i]) != 0)
			return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	int rc = run->cfg->preset ? generate(run, &args, pytorch, err) : CB_OK;
	if (rc == CB_OK && args.n == 0)
		rc = CB_FAIL(err, CB_EUSAGE, NULL, NULL,
			     "no datasets: give --datasets or --preset");
	struct cb_plan *p = &run->plan;
	if (rc == CB_OK && !(p->datasets = calloc(args.n, sizeof *p->datasets)))
		rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; rc == CB_OK && i < args.n; i++) {
		p->n_datasets++;
		rc = resolve_dataset(args.v[i], &p->datasets[i], run->cfg->progress, err);
	}
	if (rc == CB_OK) {
		struct stat st;
		const char *first = p->datasets[0].path;
		if (stat(first, &st) == 0 && S_ISDIR(st.st_mode))
			p->data_dir = strdup(first);
		else
			p->data_dir = strndup(first, strrchr(first, '/')
							     ? (size_t)(strrchr(first, '/') - first)
							     : 0);
		if (p->data_dir && !*p->data_dir) {
			free(p->data_dir);
			p->data_dir = strdup(".");
		}
	}
	cb_strlist_free(&args);
	return rc;
}

/* --------------------------------------------------------------- cells */

static void skip_reason(const struct cb_run *run, struct cb_plan_cell *c)
{
	struct cb_error why = CB_ERROR_INIT;
	const struct cb_loader *l = c->loader;
	c->skipped = true;
	if (cb_loader_available(l, &why) != CB_OK)
		snprintf(c->reason, sizeof c->reason, "%.500s", why.msg);
	else if (!c->dataset->files[l->format].present)
		snprintf(c->reason, sizeof c->reason, "the dataset has no %s checkpoint",
			 cb_format_name(l->format));
	else if (l->device == CB_DEVICE_CUDA && run->cfg->device &&
		 strcmp(run->cfg->device, "cpu") == 0)
		snprintf(c->reason, sizeof c->reason, "a GPU loader, and --device is cpu");
	else if ((l->caps & CB_CAP_PEER) && !c->peer_path)
		snprintf(c->reason, sizeof c->reason, "peer program \"%s\" not found", l->peer);
	else if (c->part && !(l->caps & CB_CAP_PARTIAL))
		snprintf(c->reason, sizeof c->reason, "the loader cannot load a part of the model");
	else
		c->skipped = false;
}

static int build_cells(struct cb_run *run, struct cb_plan_cell *protos, size_t n_protos,
		       struct cb_error *err)
{
	struct cb_plan *p = &run->plan;
	size_t caches = (size_t)run->cfg->cold + (size_t)run->cfg->warm, most_parts = 0;
	for (size_t d = 0; d < p->n_datasets; d++)
		if (p->datasets[d].n_parts + 1 > most_parts)
			most_parts = p->datasets[d].n_parts + 1;
	p->cells = calloc(p->n_datasets * n_protos * caches * most_parts, sizeof *p->cells);
	if (!p->cells)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t d = 0; d < p->n_datasets; d++)
		for (size_t i = 0; i < n_protos; i++)
			/* The whole model (part -1), then each part of it. */
			for (ptrdiff_t part = -1; part < (ptrdiff_t)p->datasets[d].n_parts; part++)
				for (int k = 0; k < 2; k++) {
					if (part < 0 && !p->datasets[d].whole_too)
						break;
					bool cold = k == 0;
					if ((cold && !run->cfg->cold) || (!cold && !run->cfg->warm))
						continue;
					struct cb_plan_cell *c = &p->cells[p->n_cells++];
					c->loader = protos[i].loader;
					for (size_t o = 0; o < protos[i].opts.n; o++)
						if (cb_strlist_add(&c->opts, protos[i].opts.v[o]) !=
						    0)
							return CB_FAIL(err, CB_ENOMEM, NULL, NULL,
								       "out of memory");
					c->opts_json = json_deep_copy(protos[i].opts_json);
					c->peer_path = protos[i].peer_path
							       ? strdup(protos[i].peer_path)
							       : NULL;
					c->dataset = &p->datasets[d];
					c->dataset_index = d;
					c->part = part < 0 ? NULL : &p->datasets[d].parts[part];
					c->cold = cold;
					skip_reason(run, c);
					if (!c->skipped)
						run->total += run->cfg->warmup + run->cfg->repeat;
				}
	return CB_OK;
}

static void free_protos(struct cb_plan_cell *protos, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		cb_strlist_free(&protos[i].opts);
		json_decref(protos[i].opts_json);
		free(protos[i].peer_path);
	}
	free(protos);
}

/* A copy of a dataset's entry (before its parts are planned), for another
 * storage profile. The manifest file is shared, and stays the original's
 * to remove. */
static int dataset_copy(const struct cb_plan_dataset *from, struct cb_plan_dataset *to)
{
	*to = (struct cb_plan_dataset){.model_bytes = from->model_bytes};
	bool bad = !(to->name = strdup(from->name)) || !(to->path = strdup(from->path)) ||
		   !(to->manifest = strdup(from->manifest));
	for (int f = 0; f < 3 && !bad; f++) {
		const struct cb_plan_files *src = &from->files[f];
		struct cb_plan_files *dst = &to->files[f];
		dst->bytes = src->bytes;
		dst->present = src->present;
		if (!src->n)
			continue;
		bad = !(dst->paths = calloc(src->n, sizeof *dst->paths));
		for (size_t k = 0; !bad && k < src->n; k++)
			bad = !(dst->paths[k] = strdup(src->paths[k])) || !++dst->n;
	}
	return bad ? -1 : 0;
}

/* --storage: every dataset once per profile, "NAME@PROFILE", so that the
 * blocks, the paired reads and every reader of the results tell them
 * apart with nothing more to match on. */
static int storage_expand(struct cb_run *run, struct cb_error *err)
{
	const struct cb_strlist *names = &run->cfg->storage;
	struct cb_plan *p = &run->plan;
	if (names->n == 0)
		return CB_OK;
	p->storage_profiles = calloc(names->n, sizeof *p->storage_profiles);
	p->storage_mounts = calloc(names->n, sizeof *p->storage_mounts);
	if (!p->storage_profiles || !p->storage_mounts)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	p->n_storage = names->n;
	for (size_t s = 0; s < names->n; s++) {
		int rc = cb_storage_parse(names->v[s], &p->storage_profiles[s], err);
		if (rc != CB_OK)
			return rc;
	}
	size_t base = p->n_datasets;
	struct cb_plan_dataset *all = calloc(base * names->n, sizeof *all);
	if (!all)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	int rc = CB_OK;
	for (size_t b = 0; b < base; b++) {
		for (size_t s = 1; s < names->n; s++)
			if (dataset_copy(&p->datasets[b], &all[s * base + b]) != 0)
				rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		all[b] = p->datasets[b]; /* the first profile's takes the original */
	}
	free(p->datasets);
	p->datasets = all;
	p->n_datasets = base * names->n;
	for (size_t i = 0; rc == CB_OK && i < p->n_datasets; i++) {
		struct cb_plan_dataset *d = &p->datasets[i];
		d->storage_index = i / base;
		d->storage_name = cb_storage_profile_name(p->storage_profiles[d->storage_index]);
		char *name = NULL;
		if (asprintf(&name, "%s@%s", d->name, d->storage_name) < 0)
			rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		else {
			free(d->name);
			d->name = name;
		}
	}
	return rc;
}

int cb_plan_build(struct cb_run *run, struct cb_error *err)
{
	ssize_t n = readlink("/proc/self/exe", run->self_exe, sizeof run->self_exe - 1);
	if (n <= 0)
		return CB_FAIL_ERRNO(err, errno, "/proc/self/exe", "find this program");
	run->self_exe[n] = '\0';
	size_t n_all;
	const struct cb_loader *const *all = cb_loader_list(&n_all);
	const struct cb_strlist *specs = &run->cfg->loader_specs;
	size_t n_protos = specs->n ? specs->n : n_all;
	struct cb_plan_cell *protos = calloc(n_protos ? n_protos : 1, sizeof *protos);
	if (!protos)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	int rc = CB_OK;
	bool pytorch = false;
	for (size_t i = 0; rc == CB_OK && i < n_protos; i++) {
		rc = parse_loader_spec(specs->n ? specs->v[i] : all[i]->name, &protos[i], err);
		if (rc == CB_OK) {
			pytorch = pytorch || protos[i].loader->format == CB_FORMAT_PYTORCH;
			/* A peer that is nowhere is a skipped cell (skip_reason). */
			struct cb_error nowhere = CB_ERROR_INIT;
			if (protos[i].loader->caps & CB_CAP_PEER && protos[i].loader->peer)
				protos[i].peer_path =
					cb_loader_peer_path(protos[i].loader, &nowhere);
		}
	}
	if (rc == CB_OK)
		rc = build_datasets(run, pytorch, err);
	if (rc == CB_OK)
		rc = storage_expand(run, err); /* --storage: once per profile */
	if (rc == CB_OK)
		rc = cb_plan_parts_build(run, err);
	if (rc == CB_OK)
		rc = build_cells(run, protos, n_protos, err);
	free_protos(protos, n_protos);
	return rc;
}

json_t *cb_plan_config_json(const struct cb_run *run)
{
	const struct cb_run_config *c = run->cfg;
	json_t *loaders = json_array(), *datasets = json_array(), *cache = json_array();
	for (size_t i = 0; i < c->loader_specs.n; i++)
		json_array_append_new(loaders, json_string(c->loader_specs.v[i]));
	for (size_t i = 0; i < run->plan.n_datasets; i++)
		json_array_append_new(datasets, json_string(run->plan.datasets[i].path));
	if (c->cold)
		json_array_append_new(cache, json_string("cold"));
	if (c->warm)
		json_array_append_new(cache, json_string("warm"));
	json_t *o =
		json_pack("{s:o,s:o,s:o,s:I,s:I,s:b,s:f,s:I,s:b}", "loaders", loaders, "datasets",
			  datasets, "cache", cache, "repeat", (json_int_t)c->repeat, "warmup",
			  (json_int_t)c->warmup, "timeline", c->timeline, "timeout_s", c->timeout_s,
			  "sample_ms", (json_int_t)c->sample_ms, "drop_caches", c->drop_caches);
	json_object_set_new(o, "device", c->device ? json_string(c->device) : json_null());
	json_object_set_new(o, "mem_limit_bytes",
			    c->mem_limit ? json_integer((json_int_t)c->mem_limit) : json_null());
	json_object_set_new(o, "bind", c->bind ? json_string(c->bind) : json_null());
	json_object_set_new(o, "preset", c->preset ? json_string(c->preset) : json_null());
	json_object_set_new(o, "ceilings", json_string(cb_run_ceilings_name(c->ceilings)));
	json_object_set_new(o, "order", json_string(c->fixed_order ? "fixed" : "shuffled"));
	/* As a string: JSON numbers lose integers above 2^53 in most readers. */
	char seed[24];
	snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->order_seed);
	json_object_set_new(o, "order_seed", json_string(seed));
	if (c->storage.n) { /* --storage only: without it the config is as before */
		json_t *storage = json_array();
		for (size_t i = 0; i < c->storage.n; i++)
			json_array_append_new(storage, json_string(c->storage.v[i]));
		json_object_set_new(o, "storage", storage);
	}
	return o;
}

/* The device a cell's tensors end on: "cpu", or the GPU --device names
 * (cuda:0 by default); a GPU loader under --device cpu is skipped without a
 * GPU being chosen for it, so its cell names only the kind, "cuda". */
static const char *cell_device(const struct cb_run *run, const struct cb_loader *l)
{
	const char *asked = run->cfg->device;
	if (l->device != CB_DEVICE_CUDA)
		return "cpu";
	if (asked && strcmp(asked, "cpu") == 0)
		return cb_device_kind_name(CB_DEVICE_CUDA);
	return asked && strncmp(asked, "cuda:", 5) == 0 ? asked : "cuda:0";
}

void cb_plan_add_cells(struct cb_run *run)
{
	for (size_t i = 0; i < run->plan.n_cells; i++) {
		struct cb_plan_cell *c = &run->plan.cells[i];
		const struct cb_loader *l = c->loader;
		c->json = cb_results_add_cell(&run->results);
		if (!c->json)
			continue;
		const char *device = cell_device(run, l);
		json_t *fields = json_pack(
			"{s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:O,s:[],s:[]}", "loader", l->name,
			"dataset", c->dataset->name, "dataset_path", c->dataset->path, "format",
			cb_format_name(l->format), "model_bytes",
			(json_int_t)c->dataset->model_bytes, "cache", c->cold ? "cold" : "warm",
			"device", device, "status", c->skipped ? "skipped" : "ok", "options",
			c->opts_json, "trials", "warmup");
		json_object_update(c->json, fields);
		json_decref(fields);
		json_object_set_new(c->json, "reason",
				    c->skipped ? json_string(c->reason) : json_null());
		if (c->part) {
			json_object_set_new(c->json, "selection",
					    json_deep_copy(c->part->selection));
			json_object_set_new(c->json, "asked_bytes",
					    json_integer((json_int_t)c->part->asked_bytes));
			json_object_set_new(c->json, "asked_page_bytes",
					    json_integer((json_int_t)c->part->asked_page_bytes));
			json_object_set_new(c->json, "unmatched_tensors",
					    json_integer((json_int_t)c->part->unmatched));
		}
		cb_results_summarize(c->json, run->calibration);
	}
}

/* ------------------------------------------------------------- storage */

/* The dataset's paths moved onto the profile: `to` is where its path now
 * is; its files lie under it as they lay under the old path. With
 * serves_originals the old file paths are kept as the backing ones. */
static int storage_remap(struct cb_plan_dataset *d, const char *to, bool serves_originals,
			 struct cb_error *err)
{
	size_t old_len = strlen(d->path);
	for (int f = 0; f < 3; f++) {
		struct cb_plan_files *files = &d->files[f];
		char **moved = calloc(files->n ? files->n : 1, sizeof *moved);
		if (!moved)
			return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		for (size_t k = 0; k < files->n; k++) {
			const char *old = files->paths[k];
			if (strncmp(old, d->path, old_len) != 0 ||
			    asprintf(&moved[k], "%s%s", to, old + old_len) < 0) {
				for (size_t j = 0; j < k; j++)
					free(moved[j]);
				free(moved);
				return CB_FAIL(err, CB_EINTERNAL, old, NULL,
					       "a dataset file not under the dataset's path");
			}
		}
		if (serves_originals) {
			files->backing_paths = files->paths;
			files->n_backing = files->n;
		} else {
			for (size_t k = 0; k < files->n; k++)
				free(files->paths[k]);
			free(files->paths);
		}
		files->paths = moved;
	}
	char *path = strdup(to);
	if (!path)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	free(d->path);
	d->path = path;
	return CB_OK;
}

int cb_plan_storage_up(struct cb_run *run, size_t s, bool *skipped, struct cb_error *err)
{
	struct cb_plan *p = &run->plan;
	size_t per = p->n_datasets / p->n_storage;
	struct cb_plan_dataset *ds = &p->datasets[s * per];
	struct cb_storage_mount *m = &p->storage_mounts[s];
	const char *name = cb_storage_profile_name(p->storage_profiles[s]);
	const char **paths = calloc(per ? per : 1, sizeof *paths);
	if (!paths)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t b = 0; b < per; b++)
		paths[b] = ds[b].path;
	char *data_dir = cb_storage_common_dir(paths, per);
	if (run->cfg->progress)
		fprintf(stderr, "\r\033[Kstorage %s: bringing it up ...", name);
	/* Every failure to have the profile, whatever it is, skips its cells:
	 * the other profiles' cells still run. */
	struct cb_error why = CB_ERROR_INIT;
	int rc = data_dir ? cb_storage_up(p->storage_profiles[s], data_dir, paths, per, true, m,
					  &why)
			  : CB_FAIL(&why, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t b = 0; rc == CB_OK && b < per; b++)
		rc = storage_remap(&ds[b], m->dataset_paths[b], m->serves_originals, &why);
	if (rc == CB_OK)
		rc = cb_storage_enter(m, &why);
	free(paths);
	free(data_dir);
	*skipped = rc != CB_OK;
	if (*skipped) {
		struct cb_error ignored = CB_ERROR_INIT;
		cb_storage_down(m, &ignored); /* what the remap or the cgroup left up */
		snprintf(m->profile, sizeof m->profile, "%s", name);
		snprintf(m->note, sizeof m->note, "%s", why.msg);
	}
	unsigned rounds = run->cfg->warmup + run->cfg->repeat;
	for (size_t i = 0; i < p->n_cells; i++) {
		struct cb_plan_cell *c = &p->cells[i];
		if (c->dataset_index / per != s)
			continue;
		if (*skipped && !c->skipped) {
			c->skipped = true;
			snprintf(c->reason, sizeof c->reason, "storage %s: %.450s", name, why.msg);
			run->total -= rounds < run->total ? rounds : run->total;
			json_object_set_new(c->json, "status", json_string("skipped"));
			json_object_set_new(c->json, "reason", json_string(c->reason));
		}
		json_object_set_new(c->json, "storage", cb_storage_json(m));
	}
	if (run->cfg->progress || *skipped)
		fprintf(stderr, "%sstorage %s: %s%s\n", run->cfg->progress ? "\r\033[K" : "", name,
			*skipped ? "skipped: " : "up", *skipped ? why.msg : "");
	return cb_results_write(&run->results, err);
}

int cb_plan_storage_down(struct cb_run *run, size_t s, struct cb_error *err)
{
	(void)err;
	struct cb_storage_mount *m = &run->plan.storage_mounts[s];
	struct cb_error why = CB_ERROR_INIT;
	/* A teardown that fails is said, not fatal: the results stand, and
	 * the guardian tries again when the run ends. */
	if (cb_storage_down(m, &why) != CB_OK)
		cb_error_print(&why);
	return CB_OK;
}

void cb_plan_free(struct cb_run *run)
{
	struct cb_plan *p = &run->plan;
	for (size_t i = 0; i < p->n_cells; i++) {
		cb_strlist_free(&p->cells[i].opts);
		json_decref(p->cells[i].opts_json);
		free(p->cells[i].peer_path);
	}
	free(p->cells);
	for (size_t i = 0; i < p->n_datasets; i++) {
		struct cb_plan_dataset *d = &p->datasets[i];
		if (d->manifest_is_temp)
			unlink(d->manifest);
		free(d->name);
		free(d->path);
		free(d->manifest);
		cb_plan_parts_free(d);
		for (int f = 0; f < 3; f++) {
			for (size_t k = 0; k < d->files[f].n; k++)
				free(d->files[f].paths[k]);
			free(d->files[f].paths);
			for (size_t k = 0; k < d->files[f].n_backing; k++)
				free(d->files[f].backing_paths[k]);
			free(d->files[f].backing_paths);
		}
	}
	free(p->datasets);
	free(p->data_dir);
	/* --storage: a profile still up (a run that stopped on an error) goes
	 * down here; the guardian would otherwise do it at exit. */
	for (size_t s = 0; s < p->n_storage; s++) {
		struct cb_error ignored = CB_ERROR_INIT;
		if (p->storage_mounts)
			cb_storage_down(&p->storage_mounts[s], &ignored);
		if (p->storage_profiles)
			cb_storage_profile_free(p->storage_profiles[s]);
	}
	free(p->storage_profiles);
	free(p->storage_mounts);
	memset(p, 0, sizeof *p);
}
