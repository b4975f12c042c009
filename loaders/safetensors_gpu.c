/* safetensors-gpu: GPU-direct loading, the fast path (docs/loaders.md).
 *
 * Stands for what the fastest published loaders do (fastsafetensors,
 * ServerlessLLM, Run:ai streamer, InstantTensor; docs/datasets-and-method.md §5.6):
 *   init  cudaMalloc the destination: one allocation for the model with each
 *         tensor carved out at a 256-byte boundary (alloc=model), or one per
 *         tensor (alloc=tensor); then, on the pipeline path, the pinned ring
 *         (timed apart as pinned_alloc_s, reported through CTL_VRAM);
 *   read  the bytes go to the device by one of two paths:
 *         cufile    cuFileRead from several threads in <= 16 MiB requests,
 *                   files opened O_DIRECT, the model buffer registered; the
 *                   mode (GPUDirect or compatibility) is recorded;
 *         pipeline  reader threads pread (O_DIRECT where it helps) chunks
 *                   that span tensor boundaries into a small ring of pinned
 *                   slots, each slot's cudaMemcpyAsync on its own stream with
 *                   an event before the slot is refilled (pipeline.h), so
 *                   disk, PCIe and CPU overlap;
 *         register  the same threads and chunks without the ring: each chunk
 *                   of the file is mapped, its page-cache pages registered
 *                   read-only with CUDA (cudaHostRegister) and copied to the
 *                   device straight from there, then unregistered and
 *                   unmapped. No host copy at all; meant for warm loads,
 *                   where the pipeline's copy out of the page cache, not the
 *                   link, is what limits it.
 * mode=auto takes cuFile when the library loads and the files open with
 * O_DIRECT, else the pipeline. Reader threads are bound to the GPU's
 * NUMA-local CPUs, and the pinned slots are allocated from there.
 * direct=auto reads through the page cache when the files are mostly cached
 * already (a warm load), and with O_DIRECT otherwise.
 *
 * What it deliberately does not do: io_uring, cuFile batch or async APIs,
 * tensor-parallel sharding across GPUs, a device-side ring (the destination
 * is the whole model, as a loader that hands tensors to a framework needs),
 * keeping the pinned ring between loads (each trial is a fresh process).
 */
#include "cb_config.h"
#include "engine/read_engine.h"
#include "loader.h"

/* The options exist in every build, so a build without CUDA still takes
 * `safetensors-gpu:mode=register` and records the cell as skipped with the
 * reason, rather than refusing the option. */
struct st_gpu_opts {
	const char *mode;   /* auto | cufile | pipeline | register */
	const char *alloc;  /* model | tensor */
	const char *direct; /* auto | on | off */
	uint64_t threads;   /* 0: one per CPU, at most 16 */
	uint64_t chunk_mib;
	uint64_t slots; /* per thread */
	bool numa;
	const char *pinned_alloc; /* parallel | serial */
};

static const struct cb_loader_opt st_gpu_opts[] = {
	{"mode", CB_OPT_STRING, offsetof(struct st_gpu_opts, mode), 0, 0, "auto",
	 "auto (cuFile where usable, else pipeline), cufile, pipeline, or register (map the page "
	 "cache and DMA from it)"},
	{"alloc", CB_OPT_STRING, offsetof(struct st_gpu_opts, alloc), 0, 0, "model",
	 "model: one cudaMalloc carved into tensors; tensor: one cudaMalloc each"},
	{"direct", CB_OPT_STRING, offsetof(struct st_gpu_opts, direct), 0, 0, "auto",
	 "O_DIRECT reads: auto (unless the files are mostly cached), on, off"},
	{"threads", CB_OPT_U64, offsetof(struct st_gpu_opts, threads), 0, CB_ENGINE_MAX_THREADS,
	 "0", "reader threads (0: one per CPU, at most 16)"},
	{"chunk-mib", CB_OPT_U64, offsetof(struct st_gpu_opts, chunk_mib), 1, 256, "4",
	 "MiB per read (pipeline slot size; cuFile requests are at most 16 MiB)"},
	{"slots", CB_OPT_U64, offsetof(struct st_gpu_opts, slots), 1, 16, "2",
	 "pinned slots per reader thread (2: double buffering)"},
	{"numa", CB_OPT_BOOL, offsetof(struct st_gpu_opts, numa), 0, 0, "true",
	 "bind reader threads and pinned slots to the GPU's NUMA-local CPUs"},
	{"pinned-alloc", CB_OPT_STRING, offsetof(struct st_gpu_opts, pinned_alloc), 0, 0,
	 "parallel",
	 "parallel: each reader thread page-locks its own slots at once; serial: "
	 "one thread allocates the whole ring"},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

#if CB_HAVE_CUDA

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cuda/gpu.h"
#include "host.h" /* cb_host_match */

#define CARVE_ALIGN UINT64_C(256) /* cudaMalloc's own alignment */
#define CUFILE_MAX_IO (UINT64_C(16) << 20)

/* Private state, zeroed by the harness; all of it freed by st_gpu_close. */
struct st_gpu {
	struct cb_gpu gpu;
	bool gpu_open;
	const struct cb_model *model;
	struct cb_ckpt *ckpt;
	int *fds;
	size_t n_fds;
	void *base; /* alloc=model */
	uint64_t base_bytes;
	void **tensor_bufs; /* alloc=tensor */
	uint64_t *tensor_bytes;
	size_t n_tensor_bufs;
	struct cb_pipe_range *ranges;
	size_t n_ranges;
	char mode[CB_LOADER_MODE_MAX];
	/* cuFile */
	struct cb_cufile cufile;
	bool cufile_open;
	CUfileHandle_t *handles;
	bool base_registered;
};

static bool is(const char *value, const char *want)
{
	return value && strcmp(value, want) == 0;
}

static int st_gpu_open(const struct cb_loader *self, void *priv, const struct cb_load_ctx *ctx,
		       struct cb_error *err)
{
	(void)self;
	struct st_gpu *s = priv;
	const struct st_gpu_opts *o = ctx->opts;
	if (!is(o->mode, "auto") && !is(o->mode, "cufile") && !is(o->mode, "pipeline") &&
	    !is(o->mode, "register"))
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
			       "mode takes auto, cufile, pipeline or register");
	if (!is(o->alloc, "model") && !is(o->alloc, "tensor"))
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "alloc takes model or tensor");
	if (!is(o->direct, "auto") && !is(o->direct, "on") && !is(o->direct, "off"))
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "direct takes auto, on or off");
	if (!is(o->pinned_alloc, "parallel") && !is(o->pinned_alloc, "serial"))
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "pinned-alloc takes parallel or serial");
	s->gpu_open = true;
	int rc = cb_gpu_open(&s->gpu, ctx->device_index, err);
	if (rc != CB_OK)
		return rc;
	if (is(o->mode, "register")) {
		int ro = 0;
		CB_CUDA_TRY(err,
			    cudaDeviceGetAttribute(&ro, cudaDevAttrHostRegisterReadOnlySupported,
						   s->gpu.device));
		if (!ro)
			return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL,
				       "mode=register: this GPU cannot register read-only host "
				       "memory (cudaDevAttrHostRegisterReadOnlySupported is 0)");
		return CB_OK;
	}
	/* The cuFile driver is set-up too: opened here, outside the load. */
	if (!is(o->mode, "pipeline")) {
		struct cb_error e = CB_ERROR_INIT;
		s->cufile_open = cb_cufile_open(&s->cufile, &e) == CB_OK;
		if (!s->cufile_open) {
			cb_cufile_close(&s->cufile);
			if (is(o->mode, "cufile")) {
				*err = e;
				return e.code;
			}
			snprintf(s->mode, sizeof s->mode, "cuFile unavailable (%.150s); ", e.msg);
		}
	}
	return CB_OK;
}

/* The init phase: device memory for every tensor, tracked. */
static int alloc_model(struct st_gpu *s, const struct cb_manifest *arch, bool one,
		       struct cb_model *model, struct cb_error *err)
{
	size_t n = arch->n_tensors;
	if (one) {
		uint64_t total = 0;
		for (size_t i = 0; i < n; i++) {
			uint64_t padded =
				(arch->tensors[i].nbytes + CARVE_ALIGN - 1) & ~(CARVE_ALIGN - 1);
			if (__builtin_add_overflow(total, padded, &total))
				return CB_FAIL(err, CB_ELIMIT, NULL, NULL, "model too large");
		}
		int rc = cb_dev_malloc(&s->gpu.alloc, &s->base, total, err);
		if (rc != CB_OK)
			return rc;
		s->base_bytes = total;
		uint64_t at = 0;
		for (size_t i = 0; i < n; i++) {
			model->tensors[i].data = (char *)s->base + at;
			model->tensors[i].location = CB_LOC_DEVICE;
			at += (arch->tensors[i].nbytes + CARVE_ALIGN - 1) & ~(CARVE_ALIGN - 1);
		}
		return CB_OK;
	}
	s->tensor_bufs = calloc(n ? n : 1, sizeof *s->tensor_bufs);
	s->tensor_bytes = calloc(n ? n : 1, sizeof *s->tensor_bytes);
	if (!s->tensor_bufs || !s->tensor_bytes)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		int rc = cb_dev_malloc(&s->gpu.alloc, &s->tensor_bufs[i], arch->tensors[i].nbytes,
				       err);
		if (rc != CB_OK)
			return rc;
		s->tensor_bytes[i] = arch->tensors[i].nbytes;
		s->n_tensor_bufs = i + 1;
		model->tensors[i].data = s->tensor_bufs[i];
		model->tensors[i].location = CB_LOC_DEVICE;
	}
	return CB_OK;
}

/* Headers parsed, each model tensor matched, its byte range planned. */
static int plan_ranges(struct st_gpu *s, const struct cb_load_ctx *ctx, struct cb_model *model,
		       struct cb_error *err)
{
	const struct cb_manifest *arch = ctx->arch;
	s->ranges = calloc(arch->n_tensors ? arch->n_tensors : 1, sizeof *s->ranges);
	if (!s->ranges)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < arch->n_tensors; i++) {
		const struct cb_ckpt_tensor *have = cb_ckpt_find(s->ckpt, arch->tensors[i].name);
		int rc = cb_host_match(&arch->tensors[i], have, false, s->ckpt->path, err);
		if (rc != CB_OK)
			return rc;
		s->ranges[i] = (struct cb_pipe_range){.file = have->file,
						      .offset = have->offset,
						      .len = have->nbytes,
						      .dst = model->tensors[i].data};
	}
	s->n_ranges = arch->n_tensors;
	return CB_OK;
}

/* Fraction of the checkpoint's bytes in the page cache (mincore). */
static double cached_fraction(const struct cb_ckpt *ckpt)
{
	uint64_t pages = 0, resident = 0;
	long psz = sysconf(_SC_PAGESIZE);
	unsigned char *vec = NULL;
	for (size_t i = 0; i < ckpt->n_files; i++) {
		size_t len = (size_t)ckpt->files[i].size;
		int fd = open(ckpt->files[i].path, O_RDONLY | O_CLOEXEC);
		void *map =
			fd >= 0 && len ? mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
		if (fd >= 0)
			close(fd);
		if (map == MAP_FAILED)
			continue;
		size_t n = (len + (size_t)psz - 1) / (size_t)psz;
		unsigned char *v = realloc(vec, n);
		if (v && mincore(map, len, v) == 0) {
			vec = v;
			for (size_t k = 0; k < n; k++)
				resident += v[k] & 1;
			pages += n;
		} else if (v) {
			vec = v;
		}
		munmap(map, len);
	}
	free(vec);
	return pages ? (double)resident / (double)pages : 0.0;
}

static int open_files(struct st_gpu *s, bool direct, struct cb_error *err)
{
	s->fds = malloc((s->ckpt->n_files ? s->ckpt->n_files : 1) * sizeof *s->fds);
	if (!s->fds)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	s->n_fds = s->ckpt->n_files;
	for (size_t i = 0; i < s->n_fds; i++)
		s->fds[i] = -1;
	int rc = CB_OK;
	for (size_t i = 0; rc == CB_OK && i < s->n_fds; i++)
		rc = cb_engine_open_file(s->ckpt->files[i].path, direct, &s->fds[i], err);
	return rc;
}

static void close_files(struct st_gpu *s)
{
	for (size_t i = 0; i < s->n_fds; i++) {
		if (s->handles && s->handles[i])
			s->cufile.handle_deregister(s->handles[i]);
		if (s->fds[i] >= 0)
			close(s->fds[i]);
	}
	free(s->handles);
	free(s->fds);
	s->handles = NULL;
	s->fds = NULL;
	s->n_fds = 0;
}

/* --- the pipeline path ------------------------------------------------------ */

/* The pinned ring, allocated from the GPU's NUMA node: cb_pipe_setup binds
 * each allocating thread there (cfg->on_thread; pages are placed where first
 * touched), this one included, which is moved back afterwards. Timed apart. */
static int setup_ring(struct st_gpu *s, const struct st_gpu_opts *o, struct cb_pipe *pipe,
		      struct cb_copy_engine engine, const struct cb_pipe_config *cfg,
		      struct cb_error *err)
{
	cpu_set_t saved;
	bool moved = o->numa && s->gpu.have_local_cpus &&
		     pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) == 0;
	double t0 = cb_gpu_now();
	int rc = cb_pipe_setup(pipe, engine, cfg, err);
	s->gpu.pinned_alloc_s = cb_gpu_now() - t0;
	s->gpu.pinned_bytes = (uint64_t)cfg->threads * cfg->slots_per_thread * cfg->slot_bytes;
	if (moved)
		pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
	return rc;
}

/* O_DIRECT or not, by the option; the files opened accordingly. */
static int open_for_pipeline(struct st_gpu *s, const struct st_gpu_opts *o, bool *direct, char *why,
			     size_t why_size, struct cb_error *err)
{
	*direct = is(o->direct, "on");
	snprintf(why, why_size, "direct=%s", o->direct);
	if (is(o->direct, "auto")) {
		/* A warm load reads from the page cache; O_DIRECT would go to
		 * the disk again. */
		double cached = cached_fraction(s->ckpt);
		*direct = cached < 0.5;
		snprintf(why, why_size, "%.0f%% cached", cached * 100);
	}
	int rc = open_files(s, *direct, err);
	if (rc != CB_OK && *direct && is(o->direct, "auto")) {
		/* A filesystem without O_DIRECT (tmpfs): through the cache. */
		cb_error_clear(err);
		close_files(s);
		*direct = false;
		snprintf(why, why_size, "no O_DIRECT on this filesystem");
		rc = open_files(s, false, err);
	}
	return rc;
}

/* The pipeline, or with `map` the register path: the same plan, threads and
 * slots, chunks mapped and registered instead of read into a pinned ring. */
static int run_pipeline(struct st_gpu *s, const struct cb_load_ctx *ctx, bool map,
			struct cb_error *err)
{
	const struct st_gpu_opts *o = ctx->opts;
	bool direct = false;
	char why[64];
	int rc;
	if (map) {
		snprintf(why, sizeof why, "%.0f%% cached", cached_fraction(s->ckpt) * 100);
		rc = open_files(s, false, err);
	} else {
		rc = open_for_pipeline(s, o, &direct, why, sizeof why, err);
	}
	if (rc != CB_OK)
		return rc;
	struct cb_pipe_file *files = calloc(s->n_fds ? s->n_fds : 1, sizeof *files);
	if (!files)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < s->n_fds; i++)
		files[i] = (struct cb_pipe_file){s->fds[i], s->ckpt->files[i].path};
	uint64_t chunk = o->chunk_mib << 20;
	unsigned threads = cb_engine_threads(o->threads);
	struct cb_pipe_plan plan = {0};
	struct cb_pipe pipe = {0};
	struct cb_copy_engine engine = {0};
	rc = cb_pipe_plan_make(s->ranges, s->n_ranges, chunk, &plan, err);
	if (rc == CB_OK && plan.n_chunks < threads)
		threads = plan.n_chunks ? (unsigned)plan.n_chunks : 1;
	struct cb_pipe_config cfg = {
		.threads = threads,
		.slots_per_thread = (unsigned)o->slots,
		.slot_bytes = chunk,
		.map = map,
		.serial_setup = is(o->pinned_alloc, "serial"),
		.on_thread = o->numa ? cb_gpu_bind_thread : NULL,
		.thread_ctx = &s->gpu,
	};
	if (rc == CB_OK)
		rc = cb_cuda_engine_new(&s->gpu, (size_t)threads * o->slots, &engine, err);
	cb_loader_phase(ctx, CB_PHASE_INIT);
	if (rc == CB_OK)
		rc = setup_ring(s, o, &pipe, engine, &cfg, err);
	cb_loader_phase(ctx, CB_PHASE_READ);
	if (rc == CB_OK)
		rc = cb_pipe_run(&pipe, &plan, files, s->n_fds, err);
	cb_pipe_teardown(&pipe);
	cb_cuda_engine_free(&engine);
	cb_pipe_plan_free(&plan);
	free(files);
	size_t used = strlen(s->mode);
	if (map)
		snprintf(s->mode + used, sizeof s->mode - used,
			 "register: page cache mapped and cudaHostRegister'd read-only per chunk "
			 "(%s), %u threads x %llu chunks in flight x %llu MiB, NUMA %s, alloc=%s",
			 why, threads, (unsigned long long)o->slots,
			 (unsigned long long)o->chunk_mib,
			 o->numa && s->gpu.have_local_cpus ? "bound" : "not bound", o->alloc);
	else
		snprintf(s->mode + used, sizeof s->mode - used,
			 "pipeline: %s (%s), %u threads x %llu pinned slots x %llu MiB (allocated "
			 "in %s), NUMA %s, alloc=%s",
			 direct ? "O_DIRECT" : "buffered", why, threads,
			 (unsigned long long)o->slots, (unsigned long long)o->chunk_mib,
			 o->pinned_alloc, o->numa && s->gpu.have_local_cpus ? "bound" : "not bound",
			 o->alloc);
	return rc;
}

/* --- the cuFile path ----------------------------------------------------------- */

/* The cuFile readers are the read engine's threads and queue
 * (engine/read_engine.h), its chunks of at most 16 MiB, each consumed by a
 * cuFileRead (the engine itself reads nothing): cuFile moves the bytes, as
 * the loaders it stands for call it. */
struct cf_run {
	struct st_gpu *s;
	bool numa;
};

static int cf_start(void *ctx, unsigned worker, struct cb_error *err)
{
	struct cf_run *r = ctx;
	(void)worker;
	if (r->numa)
		cb_gpu_bind_thread(&r->s->gpu);
	if (cudaSetDevice(r->s->gpu.device) != cudaSuccess)
		return CB_FAIL(err, CB_EENV, NULL, NULL, "cudaSetDevice failed in a reader");
	return CB_OK;
}

static int cf_no_buffer(void *ctx, unsigned worker, const struct cb_read_chunk *c, void **buf,
			struct cb_error *err)
{
	(void)ctx, (void)worker, (void)c, (void)err;
	*buf = NULL;
	return CB_OK;
}

/* One request: into the registered model buffer at the tensor's offset, or
 * into the tensor's own (unregistered) buffer. */
static int cf_read(void *ctx, unsigned worker, const struct cb_read_chunk *c, void *buf,
		   struct cb_error *err)
{
	struct st_gpu *s = ((struct cf_run *)ctx)->s;
	const char *path = s->ckpt->files[c->file].path;
	void *base = s->base_registered ? s->base : c->dest;
	uint64_t dev_off = s->base_registered ? (uint64_t)(c->dest - (char *)s->base) : 0;
	(void)worker, (void)buf;
	for (uint64_t done = 0; done < c->len;) {
		ssize_t n = s->cufile.read(s->handles[c->file], base, (size_t)(c->len - done),
					   (off_t)(c->offset + done), (off_t)(dev_off + done));
		char where[64];
		snprintf(where, sizeof where, "byte %llu", (unsigned long long)(c->offset + done));
		if (n == 0)
			return CB_FAIL(err, CB_EFORMAT, path, where,
				       "the file ends before the tensor data does");
		if (n < 0)
			return CB_FAIL(err, CB_EIO, path, where, "cuFileRead failed: %s",
				       n == -1 ? strerror(errno) : "a cuFile error");
		done += (uint64_t)n;
	}
	return CB_OK;
}

/* Registers the files (O_DIRECT) and the model buffer. A failure here is
 * "cuFile not usable" (the caller may fall back); err says why. */
static int cufile_prepare(struct st_gpu *s, struct cb_error *err)
{
	int rc = open_files(s, true, err);
	if (rc != CB_OK)
		return rc;
	s->handles = calloc(s->n_fds ? s->n_fds : 1, sizeof *s->handles);
	if (!s->handles)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < s->n_fds; i++) {
		CUfileDescr_t d = {.type = CU_FILE_HANDLE_TYPE_OPAQUE_FD, .handle.fd = s->fds[i]};
		CUfileError_t e = s->cufile.handle_register(&s->handles[i], &d);
		if (e.err != CU_FILE_SUCCESS) {
			s->handles[i] = NULL;
			return cb_cufile_fail(err, s->ckpt->files[i].path, "cuFileHandleRegister",
					      e);
		}
	}
	/* Registering pins the buffer's BAR1 mapping once, not per request;
	 * per-tensor buffers go unregistered (cuFile bounces them). */
	if (s->base &&
	    s->cufile.buf_register(s->base, (size_t)s->base_bytes, 0).err == CU_FILE_SUCCESS)
		s->base_registered = true;
	return CB_OK;
}

static int run_cufile(struct st_gpu *s, const struct cb_load_ctx *ctx, struct cb_error *err)
{
	const struct st_gpu_opts *o = ctx->opts;
	uint64_t max_io = o->chunk_mib << 20 < CUFILE_MAX_IO ? o->chunk_mib << 20 : CUFILE_MAX_IO;
	struct cb_read_item *items = calloc(s->n_ranges ? s->n_ranges : 1, sizeof *items);
	const char **paths = calloc(s->n_fds ? s->n_fds : 1, sizeof *paths);
	struct cf_run r = {.s = s, .numa = o->numa};
	const struct cb_engine_consumer cufile = {
		.ctx = &r, .start = cf_start, .buffer = cf_no_buffer, .consume = cf_read};
	struct cb_engine_config cfg = {
		.threads = cb_engine_threads(o->threads), .chunk = max_io, .queue = true};
	struct cb_engine engine = {0};
	int rc = items && paths ? CB_OK : CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; rc == CB_OK && i < s->n_ranges; i++)
		items[i] = (struct cb_read_item){.file = s->ranges[i].file,
						 .offset = s->ranges[i].offset,
						 .len = s->ranges[i].len,
						 .dest = s->ranges[i].dst};
	for (size_t i = 0; rc == CB_OK && i < s->n_fds; i++)
		paths[i] = s->ckpt->files[i].path;
	if (rc == CB_OK)
		rc = cb_engine_setup(&engine, &cfg, err);
	if (rc == CB_OK)
		rc = cb_engine_adopt(&engine, s->fds, paths, s->n_fds, err);
	if (rc == CB_OK)
		rc = cb_engine_run(&engine, items, s->n_ranges, &cufile, err);
	size_t chunks = engine.report.chunks;
	unsigned threads =
		engine.n_workers < chunks ? engine.n_workers : (unsigned)(chunks ? chunks : 1);
	cb_engine_teardown(&engine);
	free(items);
	free(paths);
	size_t used = strlen(s->mode);
	snprintf(s->mode + used, sizeof s->mode - used,
		 "cufile: %s, %u threads, <= %llu MiB requests, buffer %s, alloc=%s",
		 cb_cufile_mode(), threads, (unsigned long long)(max_io >> 20),
		 s->base_registered ? "registered" : "not registered", o->alloc);
	if (rc != CB_OK)
		return rc;
	/* cuFileRead returns when the bytes are on the device; the sync is
	 * for any copy the compatibility path left queued. */
	CB_CUDA_TRY(err, cudaDeviceSynchronize());
	return CB_OK;
}

/* --- the loader ---------------------------------------------------------------- */

static int st_gpu_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
		       struct cb_error *err)
{
	struct st_gpu *s = priv;
	const struct st_gpu_opts *o = ctx->opts;
	s->model = model;
	cb_loader_phase(ctx, CB_PHASE_READ);
	int rc = cb_ckpt_open(ctx->path, CB_FORMAT_SAFETENSORS, &s->ckpt, err);
	cb_loader_phase(ctx, CB_PHASE_INIT);
	if (rc == CB_OK)
		rc = alloc_model(s, ctx->arch, is(o->alloc, "model"), model, err);
	if (rc == CB_OK)
		rc = plan_ranges(s, ctx, model, err);
	if (rc != CB_OK)
		return rc;
	if (s->cufile_open) {
		struct cb_error why = CB_ERROR_INIT;
		rc = cufile_prepare(s, &why);
		if (rc == CB_OK) {
			cb_loader_phase(ctx, CB_PHASE_READ);
			rc = run_cufile(s, ctx, err);
			cb_loader_phase(ctx, CB_PHASE_NONE);
			return rc;
		}
		if (is(o->mode, "cufile")) {
			*err = why;
			return rc;
		}
		/* Not usable here (no O_DIRECT, a refused handle): the pipeline,
		 * with the reason in the recorded mode. */
		close_files(s);
		if (s->base_registered)
			s->cufile.buf_deregister(s->base);
		s->base_registered = false;
		snprintf(s->mode, sizeof s->mode, "cuFile not usable (%.150s); ", why.msg);
	}
	rc = run_pipeline(s, ctx, is(o->mode, "register"), err);
	cb_loader_phase(ctx, CB_PHASE_NONE);
	return rc;
}

static void st_gpu_close(void *priv)
{
	struct st_gpu *s = priv;
	if (s->base_registered)
		s->cufile.buf_deregister(s->base);
	close_files(s);
	if (s->cufile_open)
		cb_cufile_close(&s->cufile);
	cb_dev_free(&s->gpu.alloc, s->base, s->base_bytes);
	for (size_t i = 0; i < s->n_tensor_bufs; i++)
		cb_dev_free(&s->gpu.alloc, s->tensor_bufs[i], s->tensor_bytes[i]);
	free(s->tensor_bufs);
	free(s->tensor_bytes);
	free(s->ranges);
	cb_ckpt_free(s->ckpt);
	if (s->gpu_open)
		cb_gpu_close(&s->gpu);
}

static int st_gpu_control(void *priv, int op, void *arg, struct cb_error *err)
{
	struct st_gpu *s = priv;
	return cb_gpu_control(&s->gpu, s->model, s->mode, op, arg, err);
}

#endif

const struct cb_loader cb_loader_safetensors_gpu = {
	.abi = CB_LOADER_ABI,
	.name = "safetensors-gpu",
	.summary = "GPU-direct: cuFile, or pread into a pinned ring + cudaMemcpyAsync per slot",
	.format = CB_FORMAT_SAFETENSORS,
	.device = CB_DEVICE_CUDA,
	.caps = CB_CAP_DEVICE_MEM | CB_CAP_THREADS | CB_CAP_O_DIRECT,
	.opts = st_gpu_opts,
	.opts_size = sizeof(struct st_gpu_opts),
#if CB_HAVE_CUDA
	.priv_size = sizeof(struct st_gpu),
	.probe = cb_gpu_probe,
	.open = st_gpu_open,
	.load = st_gpu_load,
	.close = st_gpu_close,
	.control = st_gpu_control,
#else /* no CUDA toolkit at build time: listed, never run */
	.unavailable_reason = "not built: no CUDA toolkit",
#endif
};
