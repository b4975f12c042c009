/* pickle-gpu: the classic path ending on the GPU (docs/loaders.md):
 *
 *     model = M(); model.load_state_dict(torch.load(p)); model.to("cuda")
 *
 *   init       the empty host model: every tensor allocated and its pages
 *              touched, as an initialiser would (1x the model in RSS);
 *   read       torch.load: the .pt's zip directory and pickle parsed, then
 *              every storage read into a fresh buffer (another 1x);
 *   copy       load_state_dict: each storage copied into the model's tensor
 *              (a strided view gathered row-major), then the storages freed:
 *              host peak about 2x;
 *   to_device  .to("cuda"): per tensor, cudaMalloc and cudaMemcpy from the
 *              pageable host model (device 1x), then the host model freed.
 * It deliberately does not pin memory, overlap, or read with threads: the
 * real path does none of these. A storage shared by two tensors is read
 * once per tensor (torch reads it once; the generated datasets share none).
 */
#include "cb_config.h"
#include "loader.h"

#if CB_HAVE_CUDA

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cuda/gpu.h"
#include "fileio.h"
#include "tensor_gather.h"

#define GATHER_CHUNK (UINT64_C(4) << 20)

struct pk_gpu {
	struct cb_gpu gpu;
	bool gpu_open;
	const struct cb_model *model;
	struct cb_ckpt *ckpt;
	int *fds;
	size_t n_fds;
	void **host;     /* the host model */
	void **storages; /* torch.load's buffers, NULL once copied */
	void **dev;
	uint64_t *dev_bytes;
	size_t n; /* entries allocated in the tables above */
};

static int pk_open(const struct cb_loader *self, void *priv, const struct cb_load_ctx *ctx,
		   struct cb_error *err)
{
	(void)self;
	struct pk_gpu *s = priv;
	s->gpu_open = true;
	return cb_gpu_open(&s->gpu, ctx->device_index, err);
}

static int tables(struct pk_gpu *s, size_t n, struct cb_error *err)
{
	s->host = calloc(n ? n : 1, sizeof *s->host);
	s->storages = calloc(n ? n : 1, sizeof *s->storages);
	s->dev = calloc(n ? n : 1, sizeof *s->dev);
	s->dev_bytes = calloc(n ? n : 1, sizeof *s->dev_bytes);
	if (!s->host || !s->storages || !s->dev || !s->dev_bytes)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	s->n = n;
	return CB_OK;
}

static int init_model(struct pk_gpu *s, const struct cb_manifest *arch, struct cb_error *err)
{
	for (size_t i = 0; i < arch->n_tensors; i++) {
		uint64_t nb = arch->tensors[i].nbytes;
		if (nb > SIZE_MAX)
			return CB_FAIL(err, CB_ELIMIT, NULL, arch->tensors[i].name, "too large");
		s->host[i] = malloc(nb ? (size_t)nb : 1);
		if (!s->host[i])
			return CB_FAIL(err, CB_ENOMEM, NULL, arch->tensors[i].name,
				       "cannot allocate %llu bytes", (unsigned long long)nb);
		memset(s->host[i], 0, (size_t)nb);
	}
	return CB_OK;
}

static int open_files(struct pk_gpu *s, struct cb_error *err)
{
	s->fds = malloc((s->ckpt->n_files ? s->ckpt->n_files : 1) * sizeof *s->fds);
	if (!s->fds)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	s->n_fds = s->ckpt->n_files;
	for (size_t i = 0; i < s->n_fds; i++)
		s->fds[i] = -1;
	for (size_t i = 0; i < s->n_fds; i++) {
		s->fds[i] = open(s->ckpt->files[i].path, O_RDONLY | O_CLOEXEC);
		if (s->fds[i] < 0)
			return CB_FAIL_ERRNO(err, errno, s->ckpt->files[i].path, "open");
	}
	return CB_OK;
}

/* torch.load: each contiguous tensor's storage bytes into a fresh buffer. */
static int read_storages(struct pk_gpu *s, const struct cb_manifest *arch, struct cb_error *err)
{
	for (size_t i = 0; i < arch->n_tensors; i++) {
		const struct cb_ckpt_tensor *t = cb_ckpt_find(s->ckpt, arch->tensors[i].name);
		int rc = cb_gpu_match(&arch->tensors[i], t, s->ckpt->path, true, err);
		if (rc != CB_OK)
			return rc;
		if (t->stride) /* gathered straight into the model in copy */
			continue;
		s->storages[i] = malloc(t->nbytes ? (size_t)t->nbytes : 1);
		if (!s->storages[i])
			return CB_FAIL(err, CB_ENOMEM, NULL, t->name, "cannot allocate a storage");
		rc = cb_pread_full(s->fds[t->file], s->storages[i], (size_t)t->nbytes, t->offset,
				   cb_ckpt_tensor_path(s->ckpt, t), err);
		if (rc != CB_OK)
			return rc;
	}
	return CB_OK;
}

struct gather_sink {
	char *dst;
	uint64_t at;
};

static int gather_into(void *ctx, const void *buf, size_t len, struct cb_error *err)
{
	struct gather_sink *g = ctx;
	(void)err;
	memcpy(g->dst + g->at, buf, len);
	g->at += len;
	return CB_OK;
}

/* load_state_dict: storages into the model, then freed. */
static int copy_in(struct pk_gpu *s, const struct cb_manifest *arch, struct cb_error *err)
{
	uint8_t *chunk = NULL;
	int rc = CB_OK;
	for (size_t i = 0; rc == CB_OK && i < arch->n_tensors; i++) {
		const struct cb_ckpt_tensor *t = cb_ckpt_find(s->ckpt, arch->tensors[i].name);
		if (s->storages[i]) {
			memcpy(s->host[i], s->storages[i], (size_t)t->nbytes);
			continue;
		}
		if (!chunk && !(chunk = malloc(GATHER_CHUNK)))
			return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		struct gather_sink g = {s->host[i], 0};
		rc = cb_tensor_stream(s->fds[t->file], cb_ckpt_tensor_path(s->ckpt, t), t, chunk,
				      GATHER_CHUNK, gather_into, &g, err);
	}
	free(chunk);
	for (size_t i = 0; i < s->n; i++) {
		free(s->storages[i]);
		s->storages[i] = NULL;
	}
	return rc;
}

/* model.to("cuda"): tensor by tensor from pageable memory. */
static int to_device(struct pk_gpu *s, const struct cb_manifest *arch, struct cb_model *model,
		     struct cb_error *err)
{
	for (size_t i = 0; i < arch->n_tensors; i++) {
		uint64_t nb = arch->tensors[i].nbytes;
		int rc = cb_dev_malloc(&s->gpu.alloc, &s->dev[i], nb, err);
		if (rc != CB_OK)
			return rc;
		s->dev_bytes[i] = nb;
		if (nb) {
			cudaError_t c = cudaMemcpy(s->dev[i], s->host[i], (size_t)nb,
						   cudaMemcpyHostToDevice);
			if (c != cudaSuccess)
				return cb_cuda_fail(err, c, arch->tensors[i].name, "cudaMemcpy");
		}
		model->tensors[i].data = s->dev[i];
		model->tensors[i].location = CB_LOC_DEVICE;
		/* .to() returns new tensors; the host ones go with the old model. */
		free(s->host[i]);
		s->host[i] = NULL;
	}
	return CB_OK;
}

static int pk_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
		   struct cb_error *err)
{
	struct pk_gpu *s = priv;
	s->model = model;
	cb_loader_phase(ctx, CB_PHASE_INIT);
	int rc = tables(s, ctx->arch->n_tensors, err);
	if (rc == CB_OK)
		rc = init_model(s, ctx->arch, err);
	cb_loader_phase(ctx, CB_PHASE_READ);
	if (rc == CB_OK)
		rc = cb_ckpt_open(ctx->path, CB_FORMAT_PYTORCH, &s->ckpt, err);
	if (rc == CB_OK)
		rc = open_files(s, err);
	if (rc == CB_OK)
		rc = read_storages(s, ctx->arch, err);
	cb_loader_phase(ctx, CB_PHASE_COPY);
	if (rc == CB_OK)
		rc = copy_in(s, ctx->arch, err);
	cb_loader_phase(ctx, CB_PHASE_TO_DEVICE);
	if (rc == CB_OK)
		rc = to_device(s, ctx->arch, model, err);
	cb_loader_phase(ctx, CB_PHASE_NONE);
	return rc;
}

static void pk_close(void *priv)
{
	struct pk_gpu *s = priv;
	for (size_t i = 0; i < s->n; i++) {
		free(s->host[i]);
		free(s->storages[i]);
		cb_dev_free(&s->gpu.alloc, s->dev[i], s->dev_bytes[i]);
	}
	free(s->host);
	free(s->storages);
	free(s->dev);
	free(s->dev_bytes);
	for (size_t i = 0; i < s->n_fds; i++)
		if (s->fds[i] >= 0)
			close(s->fds[i]);
	free(s->fds);
	cb_ckpt_free(s->ckpt);
	if (s->gpu_open)
		cb_gpu_close(&s->gpu);
}

static int pk_control(void *priv, int op, void *arg, struct cb_error *err)
{
	struct pk_gpu *s = priv;
	return cb_gpu_control(&s->gpu, s->model, "host model + storages, then .to(cuda) per tensor",
			      op, arg, err);
}

const struct cb_loader cb_loader_pickle_gpu = {
	.abi = CB_LOADER_ABI,
	.name = "pickle-gpu",
	.summary = "M(); load_state_dict(torch.load(p)); .to(\"cuda\"): host 2x, device 1x",
	.format = CB_FORMAT_PYTORCH,
	.device = CB_DEVICE_CUDA,
	.caps = CB_CAP_DEVICE_MEM | CB_CAP_HOST_MEM,
	.priv_size = sizeof(struct pk_gpu),
	.probe = cb_gpu_probe,
	.open = pk_open,
	.load = pk_load,
	.close = pk_close,
	.control = pk_control,
};

#else /* no CUDA toolkit at build time: listed, never run */

const struct cb_loader cb_loader_pickle_gpu = {
	.abi = CB_LOADER_ABI,
	.name = "pickle-gpu",
	.summary = "M(); load_state_dict(torch.load(p)); .to(\"cuda\"): host 2x, device 1x",
	.format = CB_FORMAT_PYTORCH,
	.device = CB_DEVICE_CUDA,
	.caps = CB_CAP_DEVICE_MEM | CB_CAP_HOST_MEM,
	.unavailable_reason = "not built: no CUDA toolkit",
};

#endif
