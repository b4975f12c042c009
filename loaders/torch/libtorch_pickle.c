/* libtorch-pickle(-gpu) and libtorch-pickle-load(-gpu): the classic
 * `model = M(); model.load_state_dict(torch.load(p)); model.to(dev)` path
 * with real ATen tensors (docs/loaders.md).
 *
 * libtorch-pickle: M() is at::empty per tensor, zeroed (1x). Our C reader
 * (zip directory and restricted unpickler, pt.h) finds every storage record
 * (once, however many tensors view it: storage_records.h); each becomes a
 * fresh at::empty tensor that the record is read into, one read each through
 * the read engine on one thread, as `pickle` reads (1x, every storage of the
 * file, as torch.load reads them all); each tensor is
 * an as_strided view of its storage, as _rebuild_tensor_v2 makes it; then
 * load_state_dict's copy_ into the model, and the state dict is dropped.
 * Peak about 2x. On a GPU, the CPU model is then moved with .to(cuda).
 *
 * libtorch-pickle-load: torch::jit::pickle_load itself, libtorch's own
 * reader, on each file (read whole into a std::vector, storages copied out
 * of it: about 2x the file before the model's copy, so about 3x in all),
 * then copy_ into the model (on the GPU with -gpu). Where libtorch cannot
 * read the file (docs/datasets-and-method.md §4.5) the load returns
 * CB_EUNSUPPORTED with libtorch's message and the trial is "unsupported".
 * The files are found in open() (not timed): a C++ program knows its paths.
 *
 * Not done: torch.load(mmap=True) / assign=True (pickle-mmap has that).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "engine/read_engine.h"
#include "host.h"
#include "manifest.h"
#include "storage_records.h"
#include "torch_loaders.h"
#include "torch_model.h"

/* Private state, zeroed by the stub; freed by pk_close whatever failed. */
struct pk {
	const struct cb_manifest *arch;
	struct cb_torch_model model;
	bool gpu;
	/* libtorch-pickle */
	struct cb_ckpt *ckpt;
	struct cb_engine engine;           /* the records' reader: one thread, as torch.load */
	struct cb_storage_record *records; /* one per storage (storage_records.h) */
	struct cb_aten_tensor **storages;  /* per record: read into an ATen tensor */
	size_t n_storages;
	struct cb_aten_tensor **views; /* one per model tensor */
	/* libtorch-pickle-load */
	char **paths;
	size_t n_paths;
	struct cb_aten_tensor **loaded; /* one per model tensor */
};

static void drop_state_dict(struct pk *s)
{
	for (size_t i = 0; i < s->model.n; i++) {
		if (s->views)
			cb_aten_free(s->views[i]);
		if (s->loaded)
			cb_aten_free(s->loaded[i]);
	}
	free(s->views);
	free(s->loaded);
	s->views = s->loaded = NULL;
	for (size_t i = 0; s->storages && i < s->n_storages; i++)
		cb_aten_free(s->storages[i]);
	free(s->storages);
	free(s->records);
	s->storages = NULL;
	s->records = NULL;
	s->n_storages = 0;
}

/* Every distinct storage of the checkpoint, read into a fresh ATen tensor,
 * one read each on one thread: what torch.load does before the caller sees
 * the state dict. */
static int read_storages(struct pk *s, struct cb_error *err)
{
	const struct cb_ckpt *c = s->ckpt;
	int rc = cb_storage_records(c, &s->records, &s->n_storages, err);
	if (rc != CB_OK)
		return rc;
	s->storages = calloc(s->n_storages ? s->n_storages : 1, sizeof *s->storages);
	struct cb_read_item *items = calloc(s->n_storages ? s->n_storages : 1, sizeof *items);
	if (!s->storages || !items)
		rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; rc == CB_OK && i < s->n_storages; i++) {
		const struct cb_storage_record *r = &s->records[i];
		unsigned bits = cb_dtype_bits(r->dtype);
		if (bits == 0 || bits % 8) {
			rc = CB_FAIL(err, CB_EUNSUPPORTED, c->files[r->file].path, NULL,
				     "a storage of a sub-byte dtype");
			break;
		}
		int64_t numel = (int64_t)(r->nbytes / (bits / 8));
		void *data = NULL;
		rc = cb_aten_empty(r->dtype, 1, &numel, NULL, CB_ATEN_CPU, 0, 0, &s->storages[i],
				   err);
		if (rc == CB_OK)
			rc = cb_aten_data_ptr(s->storages[i], &data, err);
		items[i] = (struct cb_read_item){
			.file = r->file, .offset = r->start, .len = r->nbytes, .dest = data};
	}
	if (rc == CB_OK)
		rc = cb_host_open_ckpt_files(&s->engine, c, err);
	if (rc == CB_OK)
		rc = cb_engine_read(&s->engine, items, s->n_storages, err);
	cb_engine_close(&s->engine);
	free(items);
	return rc;
}

/* The state dict: each model tensor's view of its storage. */
static int make_views(struct pk *s, const struct cb_manifest *arch, struct cb_error *err)
{
	s->views = calloc(arch->n_tensors ? arch->n_tensors : 1, sizeof *s->views);
	if (!s->views)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < arch->n_tensors; i++) {
		const struct cb_manifest_tensor *want = &arch->tensors[i];
		const struct cb_ckpt_tensor *have = cb_ckpt_find(s->ckpt, want->name);
		size_t r = 0;
		int64_t shape[CB_ATEN_MAX_RANK], stride[CB_ATEN_MAX_RANK];
		int rc = cb_host_match(want, have, true, s->ckpt->path, err);
		if (rc == CB_OK)
			rc = cb_storage_record_of(s->records, s->n_storages, have, &r, err);
		if (rc != CB_OK)
			return rc;
		if (!cb_torch_shape(want->rank, want->shape, shape))
			return CB_FAIL(err, CB_EINTERNAL, NULL, want->name, "no shape");
		if (have->stride)
			memcpy(stride, have->stride, want->rank * sizeof *stride);
		else
			cb_torch_contiguous_strides(want->rank, shape, stride);
		rc = cb_aten_as_strided(s->storages[r], want->rank, shape, stride,
					(int64_t)have->storage_offset, &s->views[i], err);
		if (rc != CB_OK)
			return rc;
	}
	return CB_OK;
}

/* -gpu: model.to(cuda), tensor by tensor (the CPU copy is freed as each
 * moves, as Module.to replaces each parameter). */
static int to_device(struct pk *s, const struct cb_load_ctx *ctx, struct cb_model *model,
		     struct cb_error *err)
{
	for (size_t i = 0; i < s->model.n; i++) {
		struct cb_aten_tensor *moved = NULL;
		void *data = NULL;
		int rc = cb_aten_to(s->model.t[i], CB_ATEN_CUDA, ctx->device_index, 0, &moved, err);
		if (rc == CB_OK)
			rc = cb_aten_data_ptr(moved, &data, err);
		if (rc != CB_OK) {
			cb_aten_free(moved);
			return rc;
		}
		cb_aten_free(s->model.t[i]);
		s->model.t[i] = moved;
		model->tensors[i].data = data ? data : (void *)&s->model.t[i];
		model->tensors[i].location = CB_LOC_DEVICE;
	}
	s->model.device_kind = CB_ATEN_CUDA;
	s->model.device_index = ctx->device_index;
	return cb_aten_synchronize(CB_ATEN_CUDA, ctx->device_index, err);
}

static int pk_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
		   struct cb_error *err)
{
	struct pk *s = priv;
	cb_loader_phase(ctx, CB_PHASE_INIT);
	int rc = cb_torch_model_init(&s->model, ctx->arch, CB_ATEN_CPU, 0, cb_torch_opt_thp(ctx),
				     model, err);
	if (rc != CB_OK)
		return rc;
	cb_loader_phase(ctx, CB_PHASE_READ);
	rc = cb_ckpt_open(ctx->path, CB_FORMAT_PYTORCH, &s->ckpt, err);
	if (rc == CB_OK)
		rc = read_storages(s, err);
	if (rc == CB_OK)
		rc = make_views(s, ctx->arch, err);
	cb_loader_phase(ctx, CB_PHASE_COPY);
	for (size_t i = 0; rc == CB_OK && i < s->model.n; i++)
		rc = cb_aten_copy(s->model.t[i], s->views[i], 0, err);
	drop_state_dict(s);
	if (rc == CB_OK && s->gpu) {
		cb_loader_phase(ctx, CB_PHASE_TO_DEVICE);
		rc = to_device(s, ctx, model, err);
	}
	cb_loader_phase(ctx, CB_PHASE_NONE);
	return rc;
}

/* ---------------------------------------------------- libtorch-pickle-load */

static int pl_open(void *priv, const struct cb_load_ctx *ctx, struct cb_error *err)
{
	struct pk *s = priv;
	struct cb_ckpt *c = NULL;
	s->arch = ctx->arch;
	int rc = cb_ckpt_open(ctx->path, CB_FORMAT_PYTORCH, &c, err);
	if (rc != CB_OK)
		return rc;
	s->paths = calloc(c->n_files ? c->n_files : 1, sizeof *s->paths);
	for (size_t i = 0; s->paths && i < c->n_files; i++, s->n_paths++)
		if (!(s->paths[i] = strdup(c->files[i].path)))
			break;
	if (!s->paths || s->n_paths != c->n_files)
		rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	cb_ckpt_free(c);
	return rc;
}

static int pl_open_gpu(void *priv, const struct cb_load_ctx *ctx, struct cb_error *err)
{
	((struct pk *)priv)->gpu = true;
	return pl_open(priv, ctx, err);
}

static int pk_open(void *priv, const struct cb_load_ctx *ctx, struct cb_error *err)
{
	struct pk *s = priv;
	s->arch = ctx->arch;
	/* torch.load reads its records on the calling thread, one after the
	 * other: one reader. */
	const struct cb_engine_config one_reader = {.threads = 1};
	return cb_engine_setup(&s->engine, &one_reader, err);
}

static int pk_open_gpu(void *priv, const struct cb_load_ctx *ctx, struct cb_error *err)
{
	((struct pk *)priv)->gpu = true;
	return pk_open(priv, ctx, err);
}

/* pickle_load's callback: keep the tensors the model has, by name. */
static int collect(void *cookie, const char *name, const struct cb_aten_tensor *t,
		   struct cb_error *err)
{
	struct pk *s = cookie;
	const struct cb_manifest_tensor *a = cb_manifest_find(s->arch, name);
	if (!a)
		return CB_OK; /* load_state_dict(strict) would complain; the harness's
			       * architecture is the model, extra entries are ignored */
	size_t i = (size_t)(a - s->arch->tensors);
	if (s->loaded[i])
		return CB_FAIL(err, CB_EFORMAT, NULL, name, "two tensors of this name");
	return cb_aten_share(t, &s->loaded[i], err);
}

/* load_state_dict's strict check on what libtorch produced. */
static int check_loaded(const struct cb_manifest_tensor *want, const struct cb_aten_tensor *t,
			const char *path, struct cb_error *err)
{
	struct cb_aten_desc d;
	if (!t)
		return CB_FAIL(err, CB_EMISMATCH, path, want->name,
			       "libtorch's state dict lacks a tensor of the model");
	int rc = cb_aten_describe(t, &d, err);
	if (rc != CB_OK)
		return rc;
	bool same = d.dtype == (int32_t)want->dtype && d.rank == want->rank;
	for (uint32_t k = 0; same && k < want->rank; k++)
		same = d.sizes[k] >= 0 && (uint64_t)d.sizes[k] == want->shape[k];
	if (!same)
		return CB_FAIL(err, CB_EMISMATCH, path, want->name,
			       "libtorch's tensor differs in dtype or shape from the model");
	return CB_OK;
}

static int pl_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
		   struct cb_error *err)
{
	struct pk *s = priv;
	int32_t kind = s->gpu ? CB_ATEN_CUDA : CB_ATEN_CPU;
	int32_t index = s->gpu ? ctx->device_index : 0;
	cb_loader_phase(ctx, CB_PHASE_INIT);
	int rc = cb_torch_model_init(&s->model, ctx->arch, kind, index, cb_torch_opt_thp(ctx),
				     model, err);
	if (rc != CB_OK)
		return rc;
	cb_loader_phase(ctx, CB_PHASE_READ);
	s->loaded = calloc(s->model.n ? s->model.n : 1, sizeof *s->loaded);
	if (!s->loaded)
		rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t f = 0; rc == CB_OK && f < s->n_paths; f++)
		rc = cb_aten_pickle_load_file(s->paths[f], collect, s, NULL, err);
	cb_loader_phase(ctx, CB_PHASE_COPY);
	for (size_t i = 0; rc == CB_OK && i < s->model.n; i++) {
		rc = check_loaded(&ctx->arch->tensors[i], s->loaded[i], ctx->path, err);
		if (rc == CB_OK)
			rc = cb_aten_copy(s->model.t[i], s->loaded[i], 0, err);
	}
	if (rc == CB_OK)
		rc = cb_aten_synchronize(kind, index, err);
	drop_state_dict(s);
	cb_loader_phase(ctx, CB_PHASE_NONE);
	return rc;
}

static void pk_close(void *priv)
{
	struct pk *s = priv;
	drop_state_dict(s);
	cb_torch_model_free(&s->model);
	cb_engine_teardown(&s->engine);
	cb_ckpt_free(s->ckpt);
	for (size_t i = 0; i < s->n_paths; i++)
		free(s->paths[i]);
	free(s->paths);
}

static int pk_control(void *priv, int op, void *arg, struct cb_error *err)
{
	struct pk *s = priv;
	if (op == CB_LOADER_CTL_FETCH)
		return cb_torch_model_fetch(&s->model, s->arch, arg, err);
	return CB_EUNSUPPORTED;
}

const struct cb_torch_hooks cb_torch_pickle = {
	"libtorch-pickle", sizeof(struct pk), NULL, pk_open, pk_load, pk_close, pk_control,
};
const struct cb_torch_hooks cb_torch_pickle_gpu = {
	"libtorch-pickle-gpu",
	sizeof(struct pk),
	cb_torch_probe_gpu,
	pk_open_gpu,
	pk_load,
	pk_close,
	pk_control,
};
const struct cb_torch_hooks cb_torch_pickle_load = {
	"libtorch-pickle-load", sizeof(struct pk), NULL, pl_open, pl_load, pk_close, pk_control,
};
const struct cb_torch_hooks cb_torch_pickle_load_gpu = {
	"libtorch-pickle-load-gpu",
	sizeof(struct pk),
	cb_torch_probe_gpu,
	pl_open_gpu,
	pl_load,
	pk_close,
	pk_control,
};
