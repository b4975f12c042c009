/* safetensors-read: loading straight into the model (docs/loaders.md).
 *
 * Stands for the modern path of a framework that builds the model empty and
 * then reads each tensor's bytes from the file into the tensor's own memory
 * (`from_pretrained` with safetensors: the model made on the meta device,
 * each tensor materialised and read straight into place; fastsafetensors-
 * style loaders):
 *   init  allocate every tensor, nothing written: memory about to be
 *         overwritten is not initialised first, so the reads are the first
 *         touch of the model's pages;
 *   read  parse the header(s), then read each tensor into place through the
 *         read engine (engine/read_engine.h): large tensors split into
 *         chunks, each thread one contiguous share of the files (pread), or
 *         one shared queue, or an io_uring; files in index order, each
 *         advised POSIX_FADV_SEQUENTIAL.
 * No copy phase: with buffered reads the bytes land where they stay.
 *
 * O_DIRECT (option `direct`) bypasses the page cache; the engine reads the
 * aligned blocks around a chunk, straight into place where it can, through
 * a bounce buffer elsewhere, and reads buffered where the filesystem
 * refuses (tmpfs before Linux 6.6). io_uring that cannot be set up (old
 * kernel, seccomp, built without liburing) gets the pread threads. The mode
 * that really ran is reported through CB_LOADER_CTL_MODE.
 *
 * What it deliberately does not do: keep a thread pool or buffers across
 * loads (every trial is one load), register buffers with io_uring, or
 * allocate the model in one piece (a framework allocates per tensor).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "engine/read_engine.h"
#include "engine/slice_read.h"
#include "host.h"
#include "loader.h"

struct st_read_opts {
	uint64_t threads; /* 0: one per online CPU, at most 16 */
	uint64_t chunk;   /* bytes each read moves at most */
	bool direct;      /* O_DIRECT where the filesystem allows */
	bool uring;       /* io_uring instead of pread threads */
	uint64_t qd;      /* io_uring queue depth */
	bool thp;         /* ask for transparent huge pages for the model */
	bool shares;      /* each thread a contiguous share of the file, not a queue */
	uint64_t gap;     /* a partial load's runs closer than this: one read */
};

static const struct cb_loader_opt st_read_opts[] = {
	{"threads", CB_OPT_U64, offsetof(struct st_read_opts, threads), 0, CB_ENGINE_MAX_THREADS,
	 "0", "reader threads (0: one per CPU, at most 16)"},
	{"chunk", CB_OPT_U64, offsetof(struct st_read_opts, chunk), 64 << 10, 1 << 30, "4M",
	 "bytes per read; larger tensors are split into chunks shared by the threads"},
	{"direct", CB_OPT_BOOL, offsetof(struct st_read_opts, direct), 0, 0, "0",
	 "O_DIRECT reads (bypass the page cache); buffered where the filesystem refuses"},
	{"uring", CB_OPT_BOOL, offsetof(struct st_read_opts, uring), 0, 0, "0",
	 "io_uring instead of pread threads; pread where io_uring is unavailable"},
	{"qd", CB_OPT_U64, offsetof(struct st_read_opts, qd), 1, 256, "8",
	 "io_uring queue depth (reads in flight)"},
	{"thp", CB_OPT_BOOL, offsetof(struct st_read_opts, thp), 0, 0, "1",
	 "transparent huge pages for the model's large tensors (madvise)"},
	{"shares", CB_OPT_BOOL, offsetof(struct st_read_opts, shares), 0, 0, "1",
	 "each thread reads one contiguous share of the chunks (0: one shared queue)"},
	{"gap", CB_OPT_U64, offsetof(struct st_read_opts, gap), 0, 1 << 20, "16K",
	 "a partial load: runs of a slice closer than this are read as one span "
	 "(0: each run its own read, only the runs' pages)"},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

/* Private state, allocated zeroed by the harness; everything in it is owned
 * here and freed by st_read_close, whatever state a failure left it in. */
struct st_read {
	struct cb_host_model model;
	struct cb_ckpt *ckpt;
	struct cb_engine engine;
	struct cb_read_item *items;  /* one per model tensor */
	struct cb_slice_read slices; /* a partial load's reads instead */
	bool partial;
};

static int st_read_open(const struct cb_loader *self, void *priv, const struct cb_load_ctx *ctx,
			struct cb_error *err)
{
	(void)self;
	struct st_read *s = priv;
	const struct st_read_opts *o = ctx->opts;
	/* The readers and their bounce buffers are set-up, made before the
	 * baseline. */
	struct cb_engine_config cfg = {
		.threads = cb_engine_threads(o->threads),
		.chunk = o->chunk,
		.queue = !o->shares,
		.direct = o->direct,
		.uring = o->uring,
		.qd = (unsigned)o->qd,
		.exact = ctx->slice != NULL,
	};
	s->partial = ctx->slice != NULL;
	return cb_engine_setup(&s->engine, &cfg, err);
}

static int st_read_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
			struct cb_error *err)
{
	struct st_read *s = priv;
	const struct st_read_opts *o = ctx->opts;
	cb_loader_phase(ctx, CB_PHASE_INIT);
	/* touch=false: no initialiser pass; the reads fault the pages in. */
	int rc = cb_host_model_alloc(&s->model, ctx->arch, model, false, o->thp,
				     s->engine.n_workers, err);
	if (rc != CB_OK)
		return rc;
	cb_loader_phase(ctx, CB_PHASE_READ);
	rc = cb_ckpt_open(ctx->path, CB_FORMAT_SAFETENSORS, &s->ckpt, err);
	if (rc == CB_OK && !s->partial)
		rc = cb_engine_model_items(s->ckpt, ctx->arch, model, false, &s->items, err);
	else if (rc == CB_OK) /* only the slices' bytes (slice_read.h) */
		rc = cb_slice_read_plan(s->ckpt, ctx->whole, ctx->slice, model, o->gap, &s->slices,
					err);
	if (rc == CB_OK)
		rc = cb_host_open_ckpt_files(&s->engine, s->ckpt, err);
	if (rc == CB_OK && !s->partial)
		rc = cb_engine_read(&s->engine, s->items, ctx->arch->n_tensors, err);
	else if (rc == CB_OK)
		rc = cb_slice_read_run(&s->engine, &s->slices, err);
	cb_loader_phase(ctx, CB_PHASE_NONE);
	return rc;
}

static int st_read_control(void *priv, int op, void *arg, struct cb_error *err)
{
	struct st_read *s = priv;
	(void)err;
	if (op != CB_LOADER_CTL_MODE)
		return CB_EUNSUPPORTED;
	cb_engine_describe(&s->engine, arg, CB_LOADER_MODE_MAX);
	if (s->partial) {
		char how[160];
		cb_slice_read_describe(&s->slices, how, sizeof how);
		size_t used = strlen(arg);
		snprintf((char *)arg + used, CB_LOADER_MODE_MAX - used, "; %s", how);
	}
	return CB_OK;
}

static void st_read_close(void *priv)
{
	struct st_read *s = priv;
	cb_engine_teardown(&s->engine);
	cb_host_model_free(&s->model);
	free(s->items);
	cb_slice_read_free(&s->slices);
	cb_ckpt_free(s->ckpt);
}

const struct cb_loader cb_loader_safetensors_read = {
	.abi = CB_LOADER_ABI,
	.name = "safetensors-read",
	.summary = "allocate the model, then read each tensor into place "
		   "(pread threads or io_uring, optional O_DIRECT)",
	.format = CB_FORMAT_SAFETENSORS,
	.device = CB_DEVICE_CPU,
	.caps = CB_CAP_HOST_MEM | CB_CAP_THREADS | CB_CAP_O_DIRECT | CB_CAP_PARTIAL,
	.opts = st_read_opts,
	.opts_size = sizeof(struct st_read_opts),
	.priv_size = sizeof(struct st_read),
	.open = st_read_open,
	.load = st_read_load,
	.close = st_read_close,
	.control = st_read_control,
};
