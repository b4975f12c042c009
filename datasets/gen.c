#include "gen.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "ckpt.h"
#include "fileio.h"
#include "manifest.h"
#include "presets.h"
#include "pt_write.h"
#include "safetensors.h"
#include "shard_index.h"
#include "values.h"

#define GEN_CHUNK (4u << 20)

const char *cb_data_dir(void)
{
	const char *data = getenv("CKPTBENCH_DATA");
	return data && *data ? data : "datasets/data";
}

void cb_gen_default_options(struct cb_gen_options *opts)
{
	*opts = (struct cb_gen_options){
		.preset = "llama",
		.dtype = CB_DTYPE_INVALID,
		.seed = 1,
		.out_dir = cb_data_dir(),
		.safetensors = true,
		.pytorch = true,
	};
}

void cb_format_size_label(uint64_t bytes, char *out, size_t size)
{
	static const char units[] = "BKMGT";
	double v = (double)bytes;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0) {
		snprintf(out, size, "%" PRIu64, bytes);
		return;
	}
	/* Three significant digits at most, and no trailing zeros: 256M, 1.5G. */
	char num[32];
	snprintf(num, sizeof num, "%.*f", v >= 100 ? 0 : v >= 10 ? 1 : 2, v);
	char *dot = strchr(num, '.');
	if (dot) {
		char *end = num + strlen(num) - 1;
		while (end > dot && *end == '0')
			*end-- = '\0';
		if (end == dot)
			*end = '\0';
	}
	snprintf(out, size, "%s%c", num, units[u]);
}

static enum cb_dtype effective_dtype(const struct cb_gen_options *opts)
{
	return opts->dtype == CB_DTYPE_INVALID ? cb_preset_default_dtype(opts->preset)
					       : opts->dtype;
}

int cb_gen_dataset_name(const struct cb_gen_options *opts, char *out, size_t size,
			struct cb_error *err)
{
	char label[32];
	enum cb_dtype dtype = effective_dtype(opts);
	if (cb_preset_fixed_size(opts->preset)) {
		struct cb_model_spec spec;
		int rc = cb_preset_build(opts->preset, 0, dtype, &spec, err);
		if (rc != CB_OK)
			return rc;
		cb_format_size_label(spec.total_bytes, label, sizeof label);
		cb_model_spec_free(&spec);
	} else {
		uint64_t bytes = opts->size ? opts->size : cb_preset_default_size(opts->preset);
		cb_format_size_label(bytes, label, sizeof label);
	}
	snprintf(out, size, "%s-%s-%s-s%" PRIu64 "%s", opts->preset, label, cb_dtype_name(dtype),
		 opts->seed, opts->shards > 1 ? "" : "");
	if (opts->shards > 1) {
		size_t used = strlen(out);
		snprintf(out + used, size - used, "-x%u", opts->shards);
	}
	return CB_OK;
}

void cb_gen_result_free(struct cb_gen_result *result)
{
	free(result->dir);
	result->dir = NULL;
}

/* ------------------------------------------------------------ the writers */

/* One tensor to make: where its bytes go (safetensors, .pt, or both: the
 * values are made once and written twice) and the hashes of what was made. */
struct gen_item {
	const char *name;
	int fd; /* -1: no safetensors file */
	const char *path;
	uint64_t offset, nbytes;
	int pt_fd; /* -1: no .pt file */
	const char *pt_path;
	uint64_t pt_offset;
	uint64_t xxh3;
	uint32_t crc; /* CRC-32 for the .pt record's descriptor */
};

struct gen_job {
	struct gen_item *items;
	const size_t *order; /* items in the order to make them */
	size_t n_items;
	uint64_t seed;
	const struct cb_value_table *table;
	atomic_size_t next;
	atomic_uint_fast64_t done_bytes;
	atomic_int failed;
	atomic_int running;
	pthread_mutex_t err_lock;
	struct cb_error err;
};

static int make_tensor(struct gen_job *job, struct gen_item *item, uint8_t *buf,
		       struct cb_error *err)
{
	uint64_t state = cb_value_stream_seed(job->seed, item->name);
	XXH3_state_t hash;
	XXH3_64bits_reset(&hash);
	uint32_t crc = 0;
	for (uint64_t done = 0; done < item->nbytes;) {
		size_t n =
			item->nbytes - done < GEN_CHUNK ? (size_t)(item->nbytes - done) : GEN_CHUNK;
		cb_values_fill(job->table, &state, buf, n);
		XXH3_64bits_update(&hash, buf, n);
		int rc = CB_OK;
		if (item->fd >= 0)
			rc = cb_pwrite_full(item->fd, buf, n, item->offset + done, item->path, err);
		if (rc == CB_OK && item->pt_fd >= 0) {
			crc = cb_crc32_update(crc, buf, n);
			rc = cb_pwrite_full(item->pt_fd, buf, n, item->pt_offset + done,
					    item->pt_path, err);
		}
		if (rc != CB_OK)
			return rc;
		done += n;
		atomic_fetch_add(&job->done_bytes, n);
	}
	item->xxh3 = XXH3_64bits_digest(&hash);
	item->crc = crc;
	return CB_OK;
}

static void *gen_worker(void *arg)
{
	struct gen_job *job = arg;
	uint8_t *buf = aligned_alloc(64, GEN_CHUNK);
	struct cb_error local = CB_ERROR_INIT;
	if (!buf)
		CB_FAIL(&local, CB_ENOMEM, NULL, NULL, "out of memory");
	while (buf && !atomic_load(&job->failed)) {
		size_t i = atomic_fetch_add(&job->next, 1);
		if (i >= job->n_items)
			break;
		if (make_tensor(job, &job->items[job->order[i]], buf, &local) != CB_OK)
			break;
	}
	if (local.code != CB_OK) {
		pthread_mutex_lock(&job->err_lock);
		if (job->err.code == CB_OK)
			job->err = local;
		pthread_mutex_unlock(&job->err_lock);
		atomic_store(&job->failed, 1);
	}
	free(buf);
	atomic_fetch_sub(&job->running, 1);
	return NULL;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void print_progress(const char *name, uint64_t done, uint64_t total, double elapsed)
{
	char d[32], t[32];
	cb_format_size_label(done, d, sizeof d);
	cb_format_size_label(total, t, sizeof t);
	fprintf(stderr, "\rgen %s: %s / %s (%.2f GB/s)   ", name, d, t,
		elapsed > 0 ? (double)done / elapsed / 1e9 : 0.0);
}

static unsigned worker_count(unsigned asked, size_t items)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = asked ? asked : (cpus > 0 ? (unsigned)cpus : 1);
	if (n > 16)
		n = 16;
	if (n > items)
		n = items ? (unsigned)items : 1;
	return n;
}

static int run_workers(struct gen_job *job, unsigned threads, const char *name, uint64_t total,
		       bool progress, struct cb_error *err)
{
	pthread_t tids[16];
	unsigned started = 0;
	double t0 = now_seconds();
	atomic_store(&job->running, (int)threads);
	for (; started < threads; started++)
		if (pthread_create(&tids[started], NULL, gen_worker, job) != 0)
			break;
	if (started == 0)
		return CB_FAIL(err, CB_EENV, NULL, NULL, "cannot start a thread");
	atomic_fetch_sub(&job->running, (int)(threads - started));
	while (progress && atomic_load(&job->running) > 0) {
		print_progress(name, atomic_load(&job->done_bytes), total, now_seconds() - t0);
		struct timespec pause = {0, 200 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
	for (unsigned k = 0; k < started; k++)
		pthread_join(tids[k], NULL);
	if (progress) {
		print_progress(name, atomic_load(&job->done_bytes), total, now_seconds() - t0);
		fputc('\n', stderr);
	}
	if (job->err.code != CB_OK) {
		if (err && err->code == CB_OK)
			*err = job->err;
		return job->err.code;
	}
	return CB_OK;
}

/* ------------------------------------------------------------ one dataset */

struct shard_plan {
	size_t first, count; /* a run of spec tensors, in architecture order */
	char file_name[96];
	struct cb_atomic_file file;
	struct cb_st_layout layout;
	char pt_name[96]; /* the same tensors as a .pt/.bin */
	struct cb_atomic_file pt_file;
	struct cb_pt_layout pt_layout;
};

static void plan_shards(const struct cb_model_spec *spec, unsigned n_shards,
			struct shard_plan *plans)
{
	uint64_t cursor = 0;
	unsigned prev = 0;
	for (size_t i = 0; i < spec->n; i++) {
		uint64_t numel = 1;
		for (uint32_t d = 0; d < spec->tensors[i].rank; d++)
			numel *= spec->tensors[i].shape[d];
		/* The shard whose share of the bytes this tensor starts in, but
		 * never skipping a shard (a huge tensor may span several shares)
		 * and moving on early when only as many tensors remain as shards
		 * to fill: every shard gets at least one tensor. */
		unsigned k =
			spec->total_bytes
				? (unsigned)((__uint128_t)cursor * n_shards / spec->total_bytes)
				: 0;
		if (i == 0)
			k = 0;
		else if (k < prev)
			k = prev;
		else if (k > prev + 1)
			k = prev + 1;
		if (i > 0 && spec->n - i <= n_shards - 1 - prev)
			k = prev + 1;
		if (plans[k].count == 0)
			plans[k].first = i;
		plans[k].count++;
		prev = k;
		cursor += numel * cb_dtype_bits(spec->dtype) / 8;
	}
	for (unsigned k = 0; k < n_shards; k++) {
		if (n_shards == 1) {
			snprintf(plans[k].file_name, sizeof plans[k].file_name,
				 "model.safetensors");
			snprintf(plans[k].pt_name, sizeof plans[k].pt_name, "model.pt");
		} else {
			snprintf(plans[k].file_name, sizeof plans[k].file_name,
				 "model-%05u-of-%05u.safetensors", k + 1, n_shards);
			/* Hugging Face's names for PyTorch shards */
			snprintf(plans[k].pt_name, sizeof plans[k].pt_name,
				 "pytorch_model-%05u-of-%05u.bin", k + 1, n_shards);
		}
	}
}

static int compare_items_by_name(const void *a, const void *b)
{
	return strcmp(((const struct gen_item *)a)->name, ((const struct gen_item *)b)->name);
}

static int write_manifest(const char *dir, enum cb_format format, const char *model_path,
			  const struct cb_gen_options *opts, const struct cb_model_spec *spec,
			  struct gen_item *items, size_t n_items, const char *name,
			  struct cb_error *err)
{
	struct cb_ckpt *ckpt;
	int rc = cb_ckpt_open(dir, format, &ckpt, err);
	if (rc != CB_OK)
		return rc;
	qsort(items, n_items, sizeof *items, compare_items_by_name);
	uint64_t *hashes = calloc(n_items ? n_items : 1, sizeof *hashes);
	if (!hashes || ckpt->n_tensors != n_items) {
		free(hashes);
		cb_ckpt_free(ckpt);
		return CB_FAIL(err, hashes ? CB_EINTERNAL : CB_ENOMEM, dir, NULL,
			       "the written model does not hold the generated tensors");
	}
	for (size_t i = 0; i < n_items; i++)
		hashes[i] = items[i].xxh3;
	json_t *doc = cb_manifest_build(ckpt, model_path, hashes);
	/* The size asked for, as in the name; model_bytes is what it came to. */
	char size_label[32];
	if (cb_preset_fixed_size(opts->preset))
		cb_format_size_label(spec->total_bytes, size_label, sizeof size_label);
	else
		cb_format_size_label(opts->size ? opts->size : cb_preset_default_size(opts->preset),
				     size_label, sizeof size_label);
	json_t *info = json_pack("{s:s, s:s, s:s, s:s, s:I, s:i, s:I, s:s}", "name", name, "preset",
				 opts->preset, "dtype", cb_dtype_name(spec->dtype), "size",
				 size_label, "seed", (json_int_t)opts->seed, "shards",
				 opts->shards > 1 ? (int)opts->shards : 1, "model_bytes",
				 (json_int_t)spec->total_bytes, "description", spec->description);
	char *text = NULL;
	if (doc && info && json_object_set_new(doc, "dataset", info) == 0)
		text = json_dumps(doc, JSON_COMPACT);
	else
		json_decref(info);
	json_decref(doc);
	free(hashes);
	cb_ckpt_free(ckpt);
	if (!text)
		return CB_FAIL(err, CB_ENOMEM, dir, NULL, "out of memory");
	char *path = cb_path_join(dir, "manifest.json");
	size_t len = strlen(text);
	text[len] = '\n'; /* the NUL's byte becomes the final newline */
	rc = path ? cb_write_small_file(path, text, len + 1, err)
		  : CB_FAIL(err, CB_ENOMEM, dir, NULL, "out of memory");
	free(path);
	free(text);
	return rc;
}

static int write_index(const char *dir, const struct cb_model_spec *spec, struct shard_plan *plans,
		       unsigned n_shards, bool pt, struct cb_error *err)
{
	const char **names = calloc(spec->n ? spec->n : 1, sizeof *names);
	uint32_t *file_of = calloc(spec->n ? spec->n : 1, sizeof *file_of);
	const char **shard_names = calloc(n_shards, sizeof *shard_names);
	char *path = cb_path_join(dir, pt ? "pytorch_model.bin.index.json"
					  : "model.safetensors.index.json");
	int rc;
	if (!names || !file_of || !shard_names || !path) {
		rc = CB_FAIL(err, CB_ENOMEM, dir, NULL, "out of memory");
		goto out;
	}
	for (unsigned k = 0; k < n_shards; k++) {
		shard_names[k] = pt ? plans[k].pt_name : plans[k].file_name;
		for (size_t j = 0; j < plans[k].count; j++) {
			names[plans[k].first + j] = spec->tensors[plans[k].first + j].name;
			file_of[plans[k].first + j] = k;
		}
	}
	rc = cb_shard_index_write(path, spec->total_bytes, names, file_of, spec->n, shard_names,
				  err);
out:
	free(names);
	free(file_of);
	free(shard_names);
	free(path);
	return rc;
}

/* Lays out one safetensors shard, opens its temporary file and writes its
 * header; its tensors join the work in file order. */
static int prepare_st_shard(const char *path, const struct cb_st_spec *st_specs,
			    struct shard_plan *plan, struct gen_item *items, size_t *order,
			    size_t *n_order, struct cb_error *err)
{
	static const struct cb_kv meta[] = {{"format", "pt"}};
	int rc = cb_st_layout_build(st_specs + plan->first, plan->count, meta, 1, &plan->layout,
				    err);
	if (rc == CB_OK)
		rc = cb_atomic_open(&plan->file, path, err);
	if (rc == CB_OK)
		rc = cb_pwrite_full(plan->file.fd, plan->layout.header, plan->layout.header_size, 0,
				    path, err);
	/* Size the file first: workers then fill it in any order. */
	if (rc == CB_OK && ftruncate(plan->file.fd, (off_t)plan->layout.file_size) != 0)
		rc = CB_FAIL_ERRNO(err, errno, path, "cannot size the file");
	for (size_t j = 0; rc == CB_OK && j < plan->count; j++) {
		size_t ord = plan->layout.order[j];
		struct gen_item *item = &items[plan->first + ord];
		item->fd = plan->file.fd;
		item->path = plan->file.final_path;
		item->offset = plan->layout.offset[ord];
		order[(*n_order)++] = plan->first + ord;
	}
	return rc;
}

/* Lays out the same tensors as a .pt state dict (one storage per tensor, in
 * architecture order), opens its temporary file and writes everything but
 * the storages and the trailer. */
static int prepare_pt_shard(const char *path, const struct cb_model_spec *spec,
			    struct shard_plan *plan, struct gen_item *items, size_t *order,
			    size_t *n_order, struct cb_error *err)
{
	size_t n = plan->count;
	struct cb_pkl_tensor *tensors = calloc(n ? n : 1, sizeof *tensors);
	struct cb_pkl_storage *storages = calloc(n ? n : 1, sizeof *storages);
	int rc = CB_OK;
	if (!tensors || !storages) {
		rc = CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
		goto out;
	}
	for (size_t j = 0; j < n; j++) {
		const struct cb_preset_tensor *t = &spec->tensors[plan->first + j];
		tensors[j] = (struct cb_pkl_tensor){.name = t->name,
						    .storage = (uint32_t)j,
						    .rank = t->rank,
						    .shape = t->shape};
		storages[j] = (struct cb_pkl_storage){spec->dtype, 1};
		for (uint32_t d = 0; d < t->rank; d++)
			storages[j].numel *= t->shape[d];
	}
	rc = cb_pt_layout_build(path, tensors, n, storages, n, NULL, &plan->pt_layout, err);
	if (rc == CB_OK)
		rc = cb_atomic_open(&plan->pt_file, path, err);
	if (rc == CB_OK)
		rc = cb_pt_write_head(&plan->pt_layout, plan->pt_file.fd, path, err);
	for (size_t j = 0; rc == CB_OK && j < n; j++) {
		struct gen_item *item = &items[plan->first + j];
		item->pt_fd = plan->pt_file.fd;
		item->pt_path = plan->pt_file.final_path;
		item->pt_offset = cb_pt_storage_offset(&plan->pt_layout, j);
		if (order)
			order[(*n_order)++] = plan->first + j;
	}
out:
	free(tensors);
	free(storages);
	return rc;
}

/* Lays out every shard in every format asked for and lists the tensors as
 * work items: in safetensors file order when there is one (the bigger win
 * for sequential writes), else in .pt order. */
static int prepare_shards(const char *dir, const struct cb_gen_options *opts,
			  const struct cb_model_spec *spec, struct shard_plan *plans,
			  unsigned n_shards, struct gen_item *items, size_t *order,
			  struct cb_error *err)
{
	struct cb_st_spec *st_specs = calloc(spec->n ? spec->n : 1, sizeof *st_specs);
	if (!st_specs)
		return CB_FAIL(err, CB_ENOMEM, dir, NULL, "out of memory");
	for (size_t i = 0; i < spec->n; i++) {
		st_specs[i] = (struct cb_st_spec){spec->tensors[i].name, spec->dtype,
						  spec->tensors[i].rank, spec->tensors[i].shape};
		uint64_t numel = 1;
		for (uint32_t d = 0; d < spec->tensors[i].rank; d++)
			numel *= spec->tensors[i].shape[d];
		items[i] = (struct gen_item){.name = spec->tensors[i].name, .fd = -1, .pt_fd = -1};
		(void)cb_dtype_nbytes(spec->dtype, numel, &items[i].nbytes, NULL);
	}
	int rc = CB_OK;
	size_t n_order = 0;
	for (unsigned k = 0; k < n_shards && rc == CB_OK; k++) {
		struct shard_plan *plan = &plans[k];
		char *path = opts->safetensors ? cb_path_join(dir, plan->file_name) : NULL;
		char *pt_path = opts->pytorch ? cb_path_join(dir, plan->pt_name) : NULL;
		if ((opts->safetensors && !path) || (opts->pytorch && !pt_path))
			rc = CB_FAIL(err, CB_ENOMEM, dir, NULL, "out of memory");
		if (rc == CB_OK && path &&
		    (rc = prepare_st_shard(path, st_specs, plan, items, order, &n_order, err)) !=
			    CB_OK)
			cb_error_set_path(err, path);
		if (rc == CB_OK && pt_path &&
		    (rc = prepare_pt_shard(pt_path, spec, plan, items, path ? NULL : order,
					   &n_order, err)) != CB_OK)
			cb_error_set_path(err, pt_path);
		free(path);
		free(pt_path);
	}
	free(st_specs);
	return rc;
}

/* Sets each storage's CRC, writes the trailer of every .pt shard. */
static int finish_pt_shards(struct shard_plan *plans, unsigned n_shards,
			    const struct gen_item *items, struct cb_error *err)
{
	for (unsigned k = 0; k < n_shards; k++) {
		struct shard_plan *plan = &plans[k];
		for (size_t j = 0; j < plan->count; j++)
			cb_pt_set_storage_crc(&plan->pt_layout, j, items[plan->first + j].crc);
		int rc = cb_pt_write_tail(&plan->pt_layout, plan->pt_file.fd,
					  plan->pt_file.final_path, err);
		if (rc != CB_OK)
			return rc;
	}
	return CB_OK;
}

static bool file_exists(const char *dir, const char *name)
{
	char *path = cb_path_join(dir, name);
	bool exists = path && access(path, F_OK) == 0;
	free(path);
	return exists;
}

/* Finished (a manifest) and holding every format asked for. */
static bool dataset_exists(const char *dir, const struct cb_gen_options *opts)
{
	bool sharded = opts->shards > 1;
	return file_exists(dir, "manifest.json") &&
	       (!opts->safetensors ||
		file_exists(dir, sharded ? "model.safetensors.index.json" : "model.safetensors")) &&
	       (!opts->pytorch ||
		file_exists(dir, sharded ? "pytorch_model.bin.index.json" : "model.pt"));
}

static int generate(const struct cb_gen_options *opts, const struct cb_model_spec *spec,
		    struct cb_gen_result *out, struct cb_error *err)
{
	unsigned n_shards = opts->shards > 1 ? opts->shards : 1;
	if (n_shards > spec->n)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "%u shards for a model of %zu tensors",
			       n_shards, spec->n);
	struct shard_plan *plans = calloc(n_shards, sizeof *plans);
	struct gen_item *items = calloc(spec->n ? spec->n : 1, sizeof *items);
	size_t *order = calloc(spec->n ? spec->n : 1, sizeof *order);
	struct cb_value_table *table = malloc(sizeof *table);
	int rc = CB_OK;
	if (!plans || !items || !order || !table) {
		rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		goto out;
	}
	for (unsigned k = 0; k < n_shards; k++)
		plans[k].file.fd = plans[k].pt_file.fd = -1;
	cb_value_table_init(table, spec->dtype);
	plan_shards(spec, n_shards, plans);
	double t0 = now_seconds();
	if ((rc = prepare_shards(out->dir, opts, spec, plans, n_shards, items, order, err)) !=
	    CB_OK)
		goto out;
	struct gen_job job = {.items = items,
			      .order = order,
			      .n_items = spec->n,
			      .seed = opts->seed,
			      .table = table};
	pthread_mutex_init(&job.err_lock, NULL);
	rc = run_workers(&job, worker_count(opts->threads, spec->n), out->name, spec->total_bytes,
			 opts->progress, err);
	pthread_mutex_destroy(&job.err_lock);
	if (rc == CB_OK && opts->pytorch)
		rc = finish_pt_shards(plans, n_shards, items, err);
	double t_sync = now_seconds();
	for (unsigned k = 0; k < n_shards && rc == CB_OK && opts->safetensors; k++) {
		out->written_bytes += plans[k].layout.file_size;
		rc = cb_atomic_commit(&plans[k].file, !opts->no_sync, err);
	}
	for (unsigned k = 0; k < n_shards && rc == CB_OK && opts->pytorch; k++) {
		out->written_bytes += cb_pt_file_size(&plans[k].pt_layout);
		rc = cb_atomic_commit(&plans[k].pt_file, !opts->no_sync, err);
	}
	out->sync_seconds = now_seconds() - t_sync;
	if (rc == CB_OK && n_shards > 1 && opts->safetensors)
		rc = write_index(out->dir, spec, plans, n_shards, false, err);
	if (rc == CB_OK && n_shards > 1 && opts->pytorch)
		rc = write_index(out->dir, spec, plans, n_shards, true, err);
	out->seconds = now_seconds() - t0;
	/* One manifest for both formats: the tensors are the same bytes. */
	if (rc == CB_OK && opts->safetensors)
		rc = write_manifest(out->dir, CB_FORMAT_SAFETENSORS,
				    n_shards > 1 ? "model.safetensors.index.json"
						 : "model.safetensors",
				    opts, spec, items, spec->n, out->name, err);
	else if (rc == CB_OK)
		rc = write_manifest(out->dir, CB_FORMAT_PYTORCH,
				    n_shards > 1 ? "pytorch_model.bin.index.json" : "model.pt",
				    opts, spec, items, spec->n, out->name, err);
out:
	for (unsigned k = 0; plans && k < n_shards; k++) {
		cb_atomic_abort(&plans[k].file);
		cb_st_layout_free(&plans[k].layout);
		cb_atomic_abort(&plans[k].pt_file);
		cb_pt_layout_free(&plans[k].pt_layout);
	}
	free(plans);
	free(items);
	free(order);
	free(table);
	return rc;
}

int cb_gen_dataset(const struct cb_gen_options *opts, struct cb_gen_result *out,
		   struct cb_error *err)
{
	memset(out, 0, sizeof *out);
	if (!opts->safetensors && !opts->pytorch)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "no format to write");
	int rc = cb_gen_dataset_name(opts, out->name, sizeof out->name, err);
	if (rc != CB_OK)
		return rc;
	out->dir = cb_path_join(opts->out_dir, out->name);
	if (!out->dir)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	struct cb_model_spec spec;
	uint64_t size = opts->size ? opts->size : cb_preset_default_size(opts->preset);
	if ((rc = cb_preset_build(opts->preset, size, effective_dtype(opts), &spec, err)) != CB_OK)
		return rc;
	out->model_bytes = spec.total_bytes;
	out->n_tensors = spec.n;
	snprintf(out->description, sizeof out->description, "%s", spec.description);
	/* Before anything is touched: a dtype torch cannot hold. */
	if (opts->pytorch && (rc = cb_pkl_check_dtype(spec.dtype, NULL, NULL, err)) != CB_OK) {
		cb_model_spec_free(&spec);
		return rc;
	}
	if (!opts->force && dataset_exists(out->dir, opts)) {
		out->existed = true;
		cb_model_spec_free(&spec);
		return CB_OK;
	}
	if ((rc = cb_mkdir_p(out->dir, err)) == CB_OK) {
		/* No manifest while the files change: the dataset reads as unfinished. */
		char *manifest = cb_path_join(out->dir, "manifest.json");
		if (manifest)
			unlink(manifest);
		free(manifest);
		rc = generate(opts, &spec, out, err);
	}
	cb_model_spec_free(&spec);
	return rc;
}
