/* safetensors-gpu-naive: `load_file(path, device="cuda")` done plainly
 * (docs/loaders.md).
 *
 * Stands for the straightforward way to put a safetensors file on a GPU:
 *   read       parse the header(s) and map each file read-only;
 *   to_device  per tensor, cudaMalloc its memory and cudaMemcpy its bytes
 *              straight from the mapping: pageable memory, so the driver
 *              stages every page through its own small pinned buffer and
 *              the page faults of a cold file serialise the copy.
 * It exists to show what the fast path fixes (docs/datasets-and-method.md §5.6;
 * safetensors #729). It deliberately does not pin, prefetch, use threads or
 * streams, or madvise the mapping.
 */
#include "cb_config.h"
#include "loader.h"

#if CB_HAVE_CUDA

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cuda/gpu.h"
#include "host.h" /* cb_host_match */

struct st_naive {
	struct cb_gpu gpu;
	bool gpu_open;
	const struct cb_model *model;
	struct cb_ckpt *ckpt;
	void **maps;
	size_t *map_lens;
	size_t n_maps;
	void **bufs;
	uint64_t *buf_bytes;
	size_t n_bufs;
};

static int naive_open(const struct cb_loader *self, void *priv, const struct cb_load_ctx *ctx,
		      struct cb_error *err)
{
	(void)self;
	struct st_naive *s = priv;
	s->gpu_open = true;
	return cb_gpu_open(&s->gpu, ctx->device_index, err);
}

static int map_files(struct st_naive *s, struct cb_error *err)
{
	size_t n = s->ckpt->n_files;
	s->maps = calloc(n ? n : 1, sizeof *s->maps);
	s->map_lens = calloc(n ? n : 1, sizeof *s->map_lens);
	if (!s->maps || !s->map_lens)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct cb_ckpt_file *f = &s->ckpt->files[i];
		/* Not the read engine's open: safetensors' load_file opens and
		 * maps the file (memmap2) with no read-ahead hint, and so does
		 * this. */
		int fd = open(f->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return CB_FAIL_ERRNO(err, errno, f->path, "open");
		void *m =
			f->size ? mmap(NULL, (size_t)f->size, PROT_READ, MAP_SHARED, fd, 0) : NULL;
		int e = errno;
		close(fd);
		if (m == MAP_FAILED)
			return CB_FAIL_ERRNO(err, e, f->path, "mmap");
		s->maps[i] = m;
		s->map_lens[i] = (size_t)f->size;
		s->n_maps = i + 1;
	}
	return CB_OK;
}

static int copy_tensors(struct st_naive *s, const struct cb_manifest *arch, struct cb_model *model,
			struct cb_error *err)
{
	size_t n = arch->n_tensors;
	s->bufs = calloc(n ? n : 1, sizeof *s->bufs);
	s->buf_bytes = calloc(n ? n : 1, sizeof *s->buf_bytes);
	if (!s->bufs || !s->buf_bytes)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct cb_manifest_tensor *want = &arch->tensors[i];
		const struct cb_ckpt_tensor *have = cb_ckpt_find(s->ckpt, want->name);
		int rc = cb_host_match(want, have, false, s->ckpt->path, err);
		if (rc == CB_OK)
			rc = cb_dev_malloc(&s->gpu.alloc, &s->bufs[i], want->nbytes, err);
		if (rc != CB_OK)
			return rc;
		s->buf_bytes[i] = want->nbytes;
		s->n_bufs = i + 1;
		const char *src = (const char *)s->maps[have->file] + have->offset;
		if (want->nbytes) {
			cudaError_t c = cudaMemcpy(s->bufs[i], src, (size_t)want->nbytes,
						   cudaMemcpyHostToDevice);
			if (c != cudaSuccess)
				return cb_cuda_fail(err, c, want->name, "cudaMemcpy");
		}
		model->tensors[i].data = s->bufs[i];
		model->tensors[i].location = CB_LOC_DEVICE;
	}
	return CB_OK;
}

static int naive_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
		      struct cb_error *err)
{
	struct st_naive *s = priv;
	s->model = model;
	cb_loader_phase(ctx, CB_PHASE_READ);
	int rc = cb_ckpt_open(ctx->path, CB_FORMAT_SAFETENSORS, &s->ckpt, err);
	if (rc == CB_OK)
		rc = map_files(s, err);
	cb_loader_phase(ctx, CB_PHASE_TO_DEVICE);
	if (rc == CB_OK)
		rc = copy_tensors(s, ctx->arch, model, err);
	cb_loader_phase(ctx, CB_PHASE_NONE);
	return rc;
}

static void naive_close(void *priv)
{
	struct st_naive *s = priv;
	for (size_t i = 0; i < s->n_bufs; i++)
		cb_dev_free(&s->gpu.alloc, s->bufs[i], s->buf_bytes[i]);
	free(s->bufs);
	free(s->buf_bytes);
	for (size_t i = 0; i < s->n_maps; i++)
		if (s->maps[i])
			munmap(s->maps[i], s->map_lens[i]);
	free(s->maps);
	free(s->map_lens);
	cb_ckpt_free(s->ckpt);
	if (s->gpu_open)
		cb_gpu_close(&s->gpu);
}

static int naive_control(void *priv, int op, void *arg, struct cb_error *err)
{
	struct st_naive *s = priv;
	return cb_gpu_control(&s->gpu, s->model, "mmap + cudaMemcpy per tensor (pageable)", op, arg,
			      err);
}

#endif

const struct cb_loader cb_loader_safetensors_gpu_naive = {
	.abi = CB_LOADER_ABI,
	.name = "safetensors-gpu-naive",
	.summary = "load_file(device=\"cuda\") plainly: mmap, cudaMemcpy each tensor from pageable "
		   "memory",
	.format = CB_FORMAT_SAFETENSORS,
	.device = CB_DEVICE_CUDA,
	.caps = CB_CAP_DEVICE_MEM,
#if CB_HAVE_CUDA
	.priv_size = sizeof(struct st_naive),
	.probe = cb_gpu_probe,
	.open = naive_open,
	.load = naive_load,
	.close = naive_close,
	.control = naive_control,
#else /* no CUDA toolkit at build time: listed, never run */
	.unavailable_reason = "not built: no CUDA toolkit",
#endif
};
