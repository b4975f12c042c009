/* pickle-gpu: the classic path ending on the GPU (docs/loaders.md):
 *
 *     model = M(); model.load_state_dict(torch.load(p)); model.to("cuda")
 *
 *   init, read, copy  exactly `pickle` (its host half, pickle_host.h, with
 *              its options): the model built and initialised in host memory,
 *              every storage record read once into a fresh buffer, the
 *              tensors copied in (views gathered), the storages freed: host
 *              peak about 2x;
 *   to_device  .to("cuda"): per tensor, cudaMalloc and cudaMemcpy from the
 *              pageable host model (device 1x), each host tensor released as
 *              it moves, as Module.to replaces each parameter.
 * It deliberately does not pin memory, overlap, or read with threads: the
 * real path does none of these.
 */
#include "cb_config.h"
#include "loader.h"
#include "pickle_host.h"

#if CB_HAVE_CUDA

#include <stdio.h>
#include <stdlib.h>

#include "cuda/gpu.h"

struct pk_gpu {
	struct cb_pickle_host host; /* pickle's state: the host model and all */
	struct cb_gpu gpu;
	bool gpu_open;
	const struct cb_model *model;
	void **dev;
	uint64_t *dev_bytes;
	size_t n; /* entries of dev and dev_bytes */
};

static int pk_open(const struct cb_loader *self, void *priv, const struct cb_load_ctx *ctx,
		   struct cb_error *err)
{
	(void)self;
	struct pk_gpu *s = priv;
	int rc = cb_pickle_host_open(&s->host, err);
	if (rc != CB_OK)
		return rc;
	s->gpu_open = true;
	return cb_gpu_open(&s->gpu, ctx->device_index, err);
}

/* model.to("cuda"): tensor by tensor from pageable memory. */
static int to_device(struct pk_gpu *s, const struct cb_manifest *arch, struct cb_model *model,
		     struct cb_error *err)
{
	size_t n = arch->n_tensors;
	s->dev = calloc(n ? n : 1, sizeof *s->dev);
	s->dev_bytes = calloc(n ? n : 1, sizeof *s->dev_bytes);
	if (!s->dev || !s->dev_bytes)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	s->n = n;
	for (size_t i = 0; i < n; i++) {
		uint64_t nb = arch->tensors[i].nbytes;
		int rc = cb_dev_malloc(&s->gpu.alloc, &s->dev[i], nb, err);
		if (rc != CB_OK)
			return rc;
		s->dev_bytes[i] = nb;
		if (nb) {
			cudaError_t c = cudaMemcpy(s->dev[i], model->tensors[i].data, (size_t)nb,
						   cudaMemcpyHostToDevice);
			if (c != cudaSuccess)
				return cb_cuda_fail(err, c, arch->tensors[i].name, "cudaMemcpy");
		}
		model->tensors[i].data = s->dev[i];
		model->tensors[i].location = CB_LOC_DEVICE;
		/* .to() returns new tensors; the host ones go with the old model. */
		cb_host_model_release(&s->host.model, i, nb);
	}
	return CB_OK;
}

static int pk_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
		   struct cb_error *err)
{
	struct pk_gpu *s = priv;
	s->model = model;
	int rc = cb_pickle_host_load(&s->host, ctx, ctx->opts, model, err);
	cb_loader_phase(ctx, CB_PHASE_TO_DEVICE);
	if (rc == CB_OK)
		rc = to_device(s, ctx->arch, model, err);
	cb_loader_phase(ctx, CB_PHASE_NONE);
	return rc;
}

static void pk_close(void *priv)
{
	struct pk_gpu *s = priv;
	for (size_t i = 0; i < s->n; i++)
		cb_dev_free(&s->gpu.alloc, s->dev[i], s->dev_bytes[i]);
	free(s->dev);
	free(s->dev_bytes);
	cb_pickle_host_free(&s->host);
	if (s->gpu_open)
		cb_gpu_close(&s->gpu);
}

static int pk_control(void *priv, int op, void *arg, struct cb_error *err)
{
	struct pk_gpu *s = priv;
	char host[256], mode[256] = "";
	if (op == CB_LOADER_CTL_MODE) {
		cb_pickle_host_mode(&s->host, host, sizeof host);
		snprintf(mode, sizeof mode, "%.200s, then .to(cuda) per tensor", host);
	}
	return cb_gpu_control(&s->gpu, s->model, mode, op, arg, err);
}

#endif

/* Listed in every build; without the CUDA toolkit, never run. */
const struct cb_loader cb_loader_pickle_gpu = {
	.abi = CB_LOADER_ABI,
	.name = "pickle-gpu",
	.summary = "M(); load_state_dict(torch.load(p)); .to(\"cuda\"): host 2x, device 1x",
	.format = CB_FORMAT_PYTORCH,
	.device = CB_DEVICE_CUDA,
	.caps = CB_CAP_DEVICE_MEM | CB_CAP_HOST_MEM | CB_CAP_THREADS,
	.opts = cb_pickle_opts,
	.opts_size = sizeof(struct cb_pickle_opts),
#if CB_HAVE_CUDA
	.priv_size = sizeof(struct pk_gpu),
	.probe = cb_gpu_probe,
	.open = pk_open,
	.load = pk_load,
	.close = pk_close,
	.control = pk_control,
#else
	.unavailable_reason = "not built: no CUDA toolkit",
#endif
};
