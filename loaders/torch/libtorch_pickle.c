/* libtorch-pickle(-gpu) and libtorch-pickle-load(-gpu): the classic
 * `model = M(); model.load_state_dict(torch.load(p)); model.to(dev)` path
 * with real ATen tensors (docs/loaders.md).
 *
 * libtorch-pickle: M() is at::empty per tensor, zeroed (1x). Our C reader
 * (zip directory and restricted unpickler, pt.h) finds every storage record;
 * each becomes a fresh at::empty tensor that the record is pread into (1x,
 * every storage of the file, as torch.load reads them all); each tensor is
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
#include "fileio.h"
#include "host.h"
#include "manifest.h"
#include "torch_loaders.h"
#include "torch_model.h"

/* One storage record read into an ATen tensor. */
struct storage {
	uint32_t file;
	uint64_t start; /* file offset of the storage's first byte */
	enum cb_dtype dtype;
	uint64_t nbytes;
	struct cb_aten_tensor *t;
};

/* Private state, zeroed by the stub; freed by pk_close whatever failed. */
struct pk {
	const struct cb_manifest *arch;
	struct cb_torch_model model;
	bool gpu;
	/* libtorch-pickle */
	struct cb_ckpt *ckpt;
	int *fds;
	struct storage *storages;
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
	for (size_t i = 0; i < s->n_storages; i++)
		cb_aten_free(s->storages[i].t);
	free(s->storages);
	s->storages = NULL;
	s->n_storages = 0;
}

static int storage_cmp(const void *pa, const void *pb)
{
	const struct storage *a = pa, *b = pb;
	if (a->file != b->file)
		return a->file < b->file ? -1 : 1;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	return (a->dtype > b->dtype) - (a->dtype < b->dtype);
}

static int elsize_of(const struct cb_ckpt_tensor *t, uint64_t *out, struct cb_error *err)
{
	unsigned bits = cb_dtype_bits(t->dtype);
	if (bits == 0 || bits % 8)
		return CB_FAIL(err, CB_EUNSUPPORTED, NULL, t->name, "no whole-byte dtype");
	*out = bits / 8;
	return CB_OK;
}

/* The storage of a checkpoint tensor, described (not yet read). */
static int storage_of(const struct cb_ckpt_tensor *t, struct storage *out, struct cb_error *err)
{
	uint64_t el = 0, skip;
	int rc = elsize_of(t, &el, err);
	if (rc != CB_OK)
		return rc;
	if (__builtin_mul_overflow(t->storage_offset, el, &skip) || skip > t->offset)
		return CB_FAIL(err, CB_EFORMAT, NULL, t->name, "storage offset before the record");
	*out = (struct storage){.file = t->file,
				.start = t->offset - skip,
				.dtype = t->dtype,
				.nbytes = t->storage_nbytes};
	return CB_OK;
}

/* Every distinct storage of the checkpoint, read into a fresh ATen tensor:
 * what torch.load does before the caller sees the state dict. */
static int read_storages(struct pk *s, struct cb_error *err)
{
	const struct cb_ckpt *c = s->ckpt;
	s->storages = calloc(c->n_tensors ? c->n_tensors : 1, sizeof *s->storages);
	if (!s->storages)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < c->n_tensors; i++) {
		int rc = storage_of(&c->tensors[i], &s->storages[i], err);
		if (rc != CB_OK)
			return rc;
	}
	qsort(s->storages, c->n_tensors, sizeof *s->storages, storage_cmp);
	size_t n = 0; /* unique, in place */
	for (size_t i = 0; i < c->n_tensors; i++)
		if (n == 0 || storage_cmp(&s->storages[n - 1], &s->storages[i]) != 0)
			s->storages[n++] = s->storages[i];
	s->n_storages = n;
	for (size_t i = 0; i < n; i++) {
		struct storage *st = &s->storages[i];
		uint64_t el = cb_dtype_bits(st->dtype) / 8;
		int64_t numel = (int64_t)(st->nbytes / el);
		void *data = NULL;
		int rc = cb_aten_empty(st->dtype, 1, &numel, NULL, CB_ATEN_CPU, 0, 0, &st->t, err);
		if (rc == CB_OK)
			rc = cb_aten_data_ptr(st->t, &data, err);
		if (rc == CB_OK && st->nbytes)
			rc = cb_pread_full(s->fds[st->file], data, (size_t)st->nbytes, st->start,
					   c->files[st->file].path, err);
		if (rc != CB_OK)
			return rc;
	}
	return CB_OK;
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
		struct storage key;
		int64_t shape[CB_ATEN_MAX_RANK], stride[CB_ATEN_MAX_RANK];
		int rc = cb_host_match(want, have, true, s->ckpt->path, err);
		if (rc == CB_OK)
			rc = storage_of(have, &key, err);
		if (rc != CB_OK)
			return rc;
		const struct storage *st =
			bsearch(&key, s->storages, s->n_storages, sizeof *s->storages, storage_cmp);
		if (!st || !cb_torch_shape(want->rank, want->shape, shape))
			return CB_FAIL(err, CB_EINTERNAL, NULL, want->name, "no storage or shape");
		if (have->stride)
			memcpy(stride, have->stride, want->rank * sizeof *stride);
		else
			cb_torch_contiguous_strides(want->rank, shape, stride);
		rc = cb_aten_as_strided(st->t, want->rank, shape, stride,
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
		rc = cb_torch_open_files(s->ckpt, &s->fds, err);
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
	(void)err;
	((struct pk *)priv)->arch = ctx->arch;
	return CB_OK;
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
	if (s->ckpt)
		cb_torch_close_files(s->fds, s->ckpt->n_files);
	else
		free(s->fds);
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
