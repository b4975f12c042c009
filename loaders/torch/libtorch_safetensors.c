/* libtorch-safetensors(-gpu) and libtorch-safetensors-mmap(-gpu): the
 * safetensors paths with real ATen tensors as the model (docs/loaders.md).
 *
 * libtorch-safetensors: M() is at::empty per tensor, nothing written (the
 * model on the meta device, materialised empty, as from_pretrained does
 * before reading safetensors into it), then each tensor's bytes are read
 * straight into its data_ptr by the read engine's threads
 * (engine/read_engine.h), as safetensors-read does into plain memory: the
 * pair measures what ATen tensors cost over plain memory. On a GPU the
 * model is at::empty(cuda) and the bytes go through two pinned staging
 * tensors (at::empty(pin_memory)) with non_blocking copy_ into the model,
 * the double buffering a PyTorch program writes by hand: one reader (the
 * engine's, handing each chunk to that copy), the read of one chunk
 * overlapping the transfer of the one before.
 *
 * libtorch-safetensors-mmap: the file is mapped read-only, every tensor
 * wrapped by from_blob (no copy), then copy_'d into the model (ATen's copy,
 * or its pageable host-to-device copy on a GPU); the mapping is dropped at
 * the end of the load, as a script drops the loaded state dict.
 *
 * Not done: O_DIRECT, io_uring, cuFile (safetensors-gpu has those).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ckpt.h"
#include "engine/read_engine.h"
#include "engine/slice_read.h"
#include "host.h"
#include "torch_model.h"
#include "torch_module.h"
#include "torch_loaders.h"

/* Private state, zeroed by the stub; freed by st_close whatever failed. */
struct st {
	const struct cb_manifest *arch; /* the harness's, for fetch */
	struct cb_torch_model model;
	struct cb_ckpt *ckpt;
	struct cb_engine engine;           /* the read loaders' reads */
	struct cb_read_item *items;        /* one per model tensor */
	struct cb_slice_read slices;       /* a partial load's reads instead (CPU) */
	int *fds;                          /* the mmap loaders' files */
	struct cb_aten_tensor *staging[2]; /* pinned host buffers (GPU read) */
	size_t turn;                       /* chunks staged so far (GPU read) */
	int32_t kind, index;               /* the model's device */
	void **maps;                       /* one per file (mmap) */
	size_t *map_len;
	struct cb_aten_tensor **blobs; /* one per model tensor (mmap) */
	bool gpu;
};

static int st_open_cpu(void *priv, const struct cb_load_ctx *ctx, struct cb_error *err)
{
	struct st *s = priv;
	(void)err;
	s->arch = ctx->arch;
	return CB_OK;
}

static int st_open_gpu(void *priv, const struct cb_load_ctx *ctx, struct cb_error *err)
{
	struct st *s = priv;
	(void)err;
	s->arch = ctx->arch;
	s->gpu = true;
	return CB_OK;
}

/* The read loaders: their readers set up before the baseline. On the host
 * the engine's threads and contiguous shares, as safetensors-read's; on a
 * GPU one reader feeding the staging buffers. */
static int read_setup(struct st *s, const struct cb_load_ctx *ctx, struct cb_error *err)
{
	const struct cb_torch_read_opts *o = ctx->opts;
	struct cb_engine_config cfg = {
		.threads = s->gpu ? 1 : cb_engine_threads(o->threads),
		.chunk = o->chunk_mib << 20,
		.exact = ctx->slice != NULL,
	};
	return cb_engine_setup(&s->engine, &cfg, err);
}

static int read_open_cpu(void *priv, const struct cb_load_ctx *ctx, struct cb_error *err)
{
	int rc = st_open_cpu(priv, ctx, err);
	return rc == CB_OK ? read_setup(priv, ctx, err) : rc;
}

static int read_open_gpu(void *priv, const struct cb_load_ctx *ctx, struct cb_error *err)
{
	int rc = st_open_gpu(priv, ctx, err);
	return rc == CB_OK ? read_setup(priv, ctx, err) : rc;
}

static int device_of(const struct st *s, const struct cb_load_ctx *ctx, int32_t *index)
{
	*index = s->gpu ? ctx->device_index : 0;
	return s->gpu ? CB_ATEN_CUDA : CB_ATEN_CPU;
}

/* GPU: each chunk read into a pinned staging tensor (stage_buffer), then a
 * non_blocking copy_ into a uint8 view of the device tensor's bytes
 * (stage_copy). Two staging tensors: the synchronize before issuing chunk
 * k's copy waits for chunk k-1's, which ran while chunk k was read, and
 * frees the other buffer. */
static int stage_buffer(void *ctx, unsigned worker, const struct cb_read_chunk *c, void **buf,
			struct cb_error *err)
{
	struct st *s = ctx;
	(void)worker, (void)c;
	return cb_aten_data_ptr(s->staging[s->turn % 2], buf, err);
}

static int stage_copy(void *ctx, unsigned worker, const struct cb_read_chunk *c, void *buf,
		      struct cb_error *err)
{
	struct st *s = ctx;
	struct cb_aten_tensor *stage = s->staging[s->turn++ % 2], *src = NULL, *dst = NULL;
	int64_t n = (int64_t)c->len, one = 1;
	(void)worker, (void)buf;
	int rc = cb_aten_synchronize(s->kind, s->index, err);
	if (rc == CB_OK) /* a view keeps the pinned storage, so the copy is async */
		rc = cb_aten_as_strided(stage, 1, &n, &one, 0, &src, err);
	if (rc == CB_OK)
		rc = cb_aten_from_blob(c->dest, CB_DTYPE_U8, 1, &n, NULL, s->kind, s->index, &dst,
				       err);
	if (rc == CB_OK)
		rc = cb_aten_copy(dst, src, 1, err);
	cb_aten_free(src);
	cb_aten_free(dst);
	return rc;
}

/* Last, failed or not: no copy may still read a staging buffer. */
static int stage_finish(void *ctx, unsigned worker, int rc, struct cb_error *err)
{
	struct st *s = ctx;
	(void)worker, (void)rc;
	return cb_aten_synchronize(s->kind, s->index, err);
}

static int read_staged(struct st *s, uint64_t chunk, struct cb_error *err)
{
	int64_t len = (int64_t)chunk;
	int rc = CB_OK;
	for (int b = 0; rc == CB_OK && b < 2; b++)
		rc = cb_aten_empty(CB_DTYPE_U8, 1, &len, NULL, CB_ATEN_CPU, 0, 1, &s->staging[b],
				   err);
	const struct cb_engine_consumer stage = {
		.ctx = s, .buffer = stage_buffer, .consume = stage_copy, .finish = stage_finish};
	if (rc == CB_OK)
		rc = cb_engine_run(&s->engine, s->items, s->model.n, &stage, err);
	return rc;
}

static int st_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
		   struct cb_error *err)
{
	struct st *s = priv;
	const struct cb_torch_read_opts *o = ctx->opts;
	s->kind = device_of(s, ctx, &s->index);
	cb_loader_phase(ctx, CB_PHASE_INIT);
	int rc = cb_torch_model_empty(&s->model, ctx->arch, s->kind, s->index,
				      cb_torch_opt_thp(ctx), model, err);
	if (rc != CB_OK)
		return rc;
	cb_loader_phase(ctx, CB_PHASE_READ);
	rc = cb_ckpt_open(ctx->path, CB_FORMAT_SAFETENSORS, &s->ckpt, err);
	if (rc == CB_OK && ctx->slice) { /* a part (CPU): only its slices' bytes */
		if (s->gpu)
			rc = CB_FAIL(err, CB_EUNSUPPORTED, NULL, NULL,
				     "a part of the model is loaded on the host only");
		if (rc == CB_OK)
			rc = cb_slice_read_plan(s->ckpt, ctx->whole, ctx->slice, model,
						CB_SLICE_GAP_MAX, &s->slices, err);
		if (rc == CB_OK)
			rc = cb_host_open_ckpt_files(&s->engine, s->ckpt, err);
		if (rc == CB_OK)
			rc = cb_slice_read_run(&s->engine, &s->slices, err);
		cb_loader_phase(ctx, CB_PHASE_NONE);
		return rc;
	}
	if (rc == CB_OK)
		rc = cb_engine_model_items(s->ckpt, ctx->arch, model, true, &s->items, err);
	if (rc == CB_OK)
		rc = cb_host_open_ckpt_files(&s->engine, s->ckpt, err);
	if (rc == CB_OK && !s->gpu)
		rc = cb_engine_read(&s->engine, s->items, ctx->arch->n_tensors, err);
	else if (rc == CB_OK)
		rc = read_staged(s, o->chunk_mib << 20, err);
	cb_loader_phase(ctx, CB_PHASE_NONE);
	return rc;
}

static void unmap_all(struct st *s)
{
	for (size_t i = 0; s->blobs && i < s->model.n; i++)
		cb_aten_free(s->blobs[i]);
	free(s->blobs);
	s->blobs = NULL;
	for (size_t i = 0; s->maps && s->ckpt && i < s->ckpt->n_files; i++)
		if (s->maps[i] && s->maps[i] != MAP_FAILED)
			munmap(s->maps[i], s->map_len[i]);
	free(s->maps);
	free(s->map_len);
	s->maps = NULL;
	s->map_len = NULL;
}

static int map_files(struct st *s, struct cb_error *err)
{
	size_t n = s->ckpt->n_files;
	s->maps = calloc(n ? n : 1, sizeof *s->maps);
	s->map_len = calloc(n ? n : 1, sizeof *s->map_len);
	if (!s->maps || !s->map_len)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		uint64_t size = s->ckpt->files[i].size;
		if (size == 0 || size > SIZE_MAX)
			return CB_FAIL(err, CB_EFORMAT, s->ckpt->files[i].path, NULL,
				       "cannot map a file of this size");
		s->map_len[i] = (size_t)size;
		s->maps[i] = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, s->fds[i], 0);
		if (s->maps[i] == MAP_FAILED)
			return CB_FAIL_ERRNO(err, errno, s->ckpt->files[i].path, "mmap");
	}
	return CB_OK;
}

/* from_blob over the mapping for every model tensor. */
static int wrap_tensors(struct st *s, const struct cb_manifest *arch, struct cb_error *err)
{
	s->blobs = calloc(arch->n_tensors ? arch->n_tensors : 1, sizeof *s->blobs);
	if (!s->blobs)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < arch->n_tensors; i++) {
		const struct cb_manifest_tensor *want = &arch->tensors[i];
		const struct cb_ckpt_tensor *have = cb_ckpt_find(s->ckpt, want->name);
		int64_t shape[CB_ATEN_MAX_RANK];
		int rc = cb_host_match(want, have, true, s->ckpt->path, err);
		if (rc != CB_OK)
			return rc;
		if (!cb_torch_shape(want->rank, want->shape, shape))
			return CB_FAIL(err, CB_ELIMIT, NULL, want->name, "shape beyond int64");
		char *data = (char *)s->maps[have->file] + have->offset;
		rc = cb_aten_from_blob(data, want->dtype, want->rank, shape, NULL, CB_ATEN_CPU, 0,
				       &s->blobs[i], err);
		if (rc != CB_OK)
			return rc;
	}
	return CB_OK;
}

static int mmap_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
		     struct cb_error *err)
{
	struct st *s = priv;
	int32_t index;
	int32_t kind = device_of(s, ctx, &index);
	cb_loader_phase(ctx, CB_PHASE_INIT);
	int rc = cb_torch_model_init(&s->model, ctx->arch, kind, index, cb_torch_opt_thp(ctx),
				     model, err);
	if (rc != CB_OK)
		return rc;
	cb_loader_phase(ctx, CB_PHASE_READ);
	rc = cb_ckpt_open(ctx->path, CB_FORMAT_SAFETENSORS, &s->ckpt, err);
	if (rc == CB_OK)
		rc = cb_torch_open_files(s->ckpt, &s->fds, err);
	if (rc == CB_OK)
		rc = map_files(s, err);
	if (rc == CB_OK)
		rc = wrap_tensors(s, ctx->arch, err);
	cb_loader_phase(ctx, CB_PHASE_COPY);
	for (size_t i = 0; rc == CB_OK && i < ctx->arch->n_tensors; i++)
		rc = cb_aten_copy(s->model.t[i], s->blobs[i], 0, err);
	if (rc == CB_OK)
		rc = cb_aten_synchronize(kind, index, err);
	cb_loader_phase(ctx, CB_PHASE_NONE);
	unmap_all(s);
	return rc;
}

static void st_close(void *priv)
{
	struct st *s = priv;
	unmap_all(s);
	cb_slice_read_free(&s->slices);
	for (int b = 0; b < 2; b++)
		cb_aten_free(s->staging[b]);
	cb_torch_model_free(&s->model);
	cb_engine_teardown(&s->engine);
	if (s->ckpt)
		cb_torch_close_files(s->fds, s->ckpt->n_files);
	else
		free(s->fds);
	free(s->items);
	cb_ckpt_free(s->ckpt);
}

static int st_control(void *priv, int op, void *arg, struct cb_error *err)
{
	struct st *s = priv;
	if (op == CB_LOADER_CTL_FETCH)
		return cb_torch_model_fetch(&s->model, s->arch, arg, err);
	if (op != CB_LOADER_CTL_MODE || !s->engine.workers) /* the mmap loaders: no mode */
		return CB_EUNSUPPORTED;
	char how[CB_LOADER_MODE_MAX];
	cb_engine_describe(&s->engine, how, sizeof how);
	snprintf(arg, CB_LOADER_MODE_MAX, "%s%.200s", s->gpu ? "two pinned staging buffers, " : "",
		 how);
	return CB_OK;
}

const struct cb_torch_hooks cb_torch_safetensors = {
	"libtorch-safetensors",
	sizeof(struct st),
	NULL,
	read_open_cpu,
	st_load,
	st_close,
	st_control,
};
const struct cb_torch_hooks cb_torch_safetensors_gpu = {
	"libtorch-safetensors-gpu",
	sizeof(struct st),
	cb_torch_probe_gpu,
	read_open_gpu,
	st_load,
	st_close,
	st_control,
};
const struct cb_torch_hooks cb_torch_safetensors_mmap = {
	"libtorch-safetensors-mmap",
	sizeof(struct st),
	NULL,
	st_open_cpu,
	mmap_load,
	st_close,
	st_control,
};
const struct cb_torch_hooks cb_torch_safetensors_mmap_gpu = {
	"libtorch-safetensors-mmap-gpu",
	sizeof(struct st),
	cb_torch_probe_gpu,
	st_open_gpu,
	mmap_load,
	st_close,
	st_control,
};
