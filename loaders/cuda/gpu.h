/* What the GPU loaders share: CUDA errors in ckptbench's vocabulary, the
 * probe, the tracked device allocator, and a session that owns the CUDA
 * context, the VRAM watch and the copy back for verification.
 *
 * The session (struct cb_gpu) is opened in a loader's open(), never in
 * load(): creating the CUDA context (hundreds of milliseconds, hundreds of
 * MiB of device and host memory) is a step of its own, measured once
 * (context_s, context_bytes) and kept out of the load's time.
 *
 * VRAM figures (docs/datasets-and-method.md §5.5):
 *   alloc_peak   exact: every byte this loader cudaMallocs goes through
 *                cb_dev_malloc/cb_dev_free, which keep the high-water mark;
 *   device peak  device-wide memory in use, sampled every 2 ms by a watcher
 *                thread from the end of open() to cb_gpu_vram() (NVML when
 *                libnvidia-ml loads, else cudaMemGetInfo), raised to
 *                baseline + alloc_peak since sampling can miss a spike;
 *   context      device memory the context itself took (NVML, measured
 *                before and after creating it), shown apart.
 *
 * Only in builds with CUDA (CB_HAVE_CUDA); the loader files carry the
 * "not built" stubs.
 */
#ifndef CB_GPU_H
#define CB_GPU_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "../host.h" /* cb_host_match: load_state_dict's one strict check */
#include "dynlib.h"
#include "loader.h"
#include "pipeline.h"

/* Records "WHAT: cudaErrorName (description)" as CB_EENV (CB_ENOMEM for an
 * allocation failure) and returns the code. */
int cb_cuda_fail(struct cb_error *err, cudaError_t rc, const char *where, const char *what);

/* Evaluates a CUDA runtime call; on failure records it and returns. */
#define CB_CUDA_TRY(err, call)                                                \
	do {                                                                  \
		cudaError_t cb_cuda_rc_ = (call);                             \
		if (cb_cuda_rc_ != cudaSuccess)                               \
			return cb_cuda_fail((err), cb_cuda_rc_, NULL, #call); \
	} while (0)

/* The probe of every GPU loader: CB_OK when a CUDA device is visible, else
 * CB_EUNAVAILABLE "no CUDA device: <cudaGetDeviceCount's error>". */
int cb_gpu_probe(const struct cb_loader *self, struct cb_error *err);

/* The tracked allocator. Thread-safe. */
struct cb_dev_alloc {
	atomic_uint_fast64_t live, peak;
};
int cb_dev_malloc(struct cb_dev_alloc *a, void **ptr, uint64_t bytes, struct cb_error *err);
void cb_dev_free(struct cb_dev_alloc *a, void *ptr, uint64_t bytes);

struct cb_gpu {
	int device;
	char bus_id[32];        /* "0000:3b:00.0" (lower case) or "" */
	double context_s;       /* creating the context */
	uint64_t context_bytes; /* its device memory; 0 when unknown */
	struct cb_nvml nvml;
	nvmlDevice_t nvdev;  /* NULL without NVML */
	char nvml_note[160]; /* why NVML is not used; "" when it is */
	struct cb_dev_alloc alloc;
	/* The NUMA-local CPUs of the GPU (sysfs local_cpulist). */
	cpu_set_t local_cpus;
	bool have_local_cpus;
	/* The watch. */
	pthread_t watcher;
	bool watching;
	atomic_bool stop;
	atomic_uint_fast64_t device_peak;
	uint64_t baseline; /* device memory in use when the watch began */
	bool device_known; /* the watch could read device memory */
	/* Page-locked host memory a loader staged through (reported). */
	uint64_t pinned_bytes;
	double pinned_alloc_s;
};

/* Creates the context on ctx->device_index (cudaSetDevice + cudaFree(0)),
 * measures it, loads NVML if it can and starts the watch. The struct must
 * be zeroed; cb_gpu_close it whatever this returns. */
int cb_gpu_open(struct cb_gpu *g, int device_index, struct cb_error *err);
void cb_gpu_close(struct cb_gpu *g);

/* Ends the watch (idempotent) and fills the report. */
void cb_gpu_vram(struct cb_gpu *g, struct cb_loader_vram *out);

/* Copies `bytes` of device memory at `dev` to `host`, in chunks. */
int cb_gpu_fetch(struct cb_gpu *g, const void *dev, void *host, uint64_t bytes,
		 struct cb_error *err);

/* The control() hook shared by the GPU loaders: FETCH from `model` (as the
 * load left it), VRAM, and MODE from `mode` (may be ""). */
int cb_gpu_control(struct cb_gpu *g, const struct cb_model *model, const char *mode, int op,
		   void *arg, struct cb_error *err);

/* Binds the calling thread to the GPU's local CPUs (no-op without them).
 * `ctx` is the struct cb_gpu; the signature is the pipeline's on_thread. */
void cb_gpu_bind_thread(void *ctx);

double cb_gpu_now(void);

/* The pipeline's CUDA copy engine (cuda_engine.c): per slot a cudaHostAlloc
 * buffer (portable, page-locked; none for the map source), a non-blocking
 * stream and an event; copy = cudaMemcpyAsync host to device on the slot's
 * stream, fence = cudaEventRecord, wait = cudaStreamSynchronize, pin =
 * cudaHostRegister(read-only) of a mapped chunk, unpin = cudaHostUnregister.
 * Reader threads get the session's device made current. *out is freed with
 * cb_cuda_engine_free after the pipe's teardown. */
int cb_cuda_engine_new(struct cb_gpu *g, size_t n_slots, struct cb_copy_engine *out,
		       struct cb_error *err);
void cb_cuda_engine_free(struct cb_copy_engine *engine);

#endif
