/* safetensors-eager: the whole file read into one buffer, then copied out
 * (docs/loaders.md).
 *
 * Stands for `model = M(); model.load_state_dict(safetensors.torch.load(
 * open(f, "rb").read()))`, the eager path of code that has the bytes first
 * (a download, a blob store) or that avoids mappings:
 *   init  M(): allocate every parameter and run its initialiser (every page
 *         written), 1x the model in anonymous memory;
 *   read  parse the header, then `open(f).read()`: the whole file into one
 *         freshly allocated buffer (never touched before the read, as a
 *         bytes object is not), one read on one thread through the read
 *         engine (engine/read_engine.h), as Python reads a regular file:
 *         another 1x;
 *   copy  safetensors.torch.load's tensors are slices of that buffer, and
 *         load_state_dict copies each into the model (ATen spreads large
 *         copies over its threads; so does this, option `threads`);
 *   then  the buffer is freed.
 * Peak anonymous memory is therefore ~2x the model, like pickle's: the class
 * this loader exists to show next to safetensors-read's 1x.
 *
 * A sharded model loads as transformers' classic loop does: for each shard
 * in index order read it, load_state_dict(strict=False) it, free it, so the
 * peak is 1x plus the largest shard.
 *
 * What it deliberately does not do: read a tensor straight into the model
 * (that is safetensors-read), map the file (safetensors-mmap), read on
 * several threads (f.read() does not), or keep the buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "engine/read_engine.h"
#include "host.h"
#include "loader.h"

struct st_eager_opts {
	uint64_t threads; /* of the initialiser and the copy; 0: one per CPU, at most 16 */
	bool thp;         /* transparent huge pages for the model */
};

static const struct cb_loader_opt st_eager_opts[] = {
	{"threads", CB_OPT_U64, offsetof(struct st_eager_opts, threads), 0, CB_ENGINE_MAX_THREADS,
	 "0",
	 "threads of the initialiser and of the copy (0: one per CPU, at most 16); "
	 "the file is read on one, as f.read() does"},
	{"thp", CB_OPT_BOOL, offsetof(struct st_eager_opts, thp), 0, 0, "1",
	 "transparent huge pages for the model's large tensors (madvise)"},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

/* Private state (zeroed by the harness); everything in it is owned here
 * and freed by st_eager_close, whatever a failure left behind. */
struct st_eager {
	struct cb_host_model model;
	struct cb_ckpt *ckpt;
	struct cb_engine engine;
	const struct cb_ckpt_tensor **src; /* per architecture tensor */
	unsigned char *buf;                /* the shard being loaded; NULL between shards */
};

/* One shard's copy: the model tensors whose bytes lie in `file`. */
struct copy_job {
	const struct st_eager *s;
	const struct cb_model *model;
	uint32_t file;
};

static int copy_one(void *arg, size_t i, struct cb_error *err)
{
	(void)err;
	const struct copy_job *j = arg;
	const struct cb_ckpt_tensor *t = j->s->src[i];
	if (t->file == j->file && t->nbytes)
		memcpy(j->model->tensors[i].data, j->s->buf + t->offset, (size_t)t->nbytes);
	return CB_OK;
}

static int st_eager_open(const struct cb_loader *self, void *priv, const struct cb_load_ctx *ctx,
			 struct cb_error *err)
{
	(void)self, (void)ctx;
	struct st_eager *s = priv;
	/* One reader and no chunking: a file is one read, as f.read() makes
	 * it (the engine retries what a single read returns short). */
	const struct cb_engine_config cfg = {.threads = 1, .chunk = 0};
	return cb_engine_setup(&s->engine, &cfg, err);
}

static int st_eager_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
			 struct cb_error *err)
{
	struct st_eager *s = priv;
	const struct st_eager_opts *o = ctx->opts;
	unsigned threads = cb_engine_threads(o->threads);
	size_t n = ctx->arch->n_tensors;
	cb_loader_phase(ctx, CB_PHASE_INIT);
	/* touch=true: M() runs every parameter's initialiser. */
	int rc = cb_host_model_alloc(&s->model, ctx->arch, model, true, o->thp, threads, err);
	if (rc != CB_OK)
		return rc;
	cb_loader_phase(ctx, CB_PHASE_READ);
	rc = cb_ckpt_open(ctx->path, CB_FORMAT_SAFETENSORS, &s->ckpt, err);
	if (rc == CB_OK && !(s->src = calloc(n ? n : 1, sizeof *s->src)))
		rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	/* load_state_dict(strict=True)'s check, before any byte is read. */
	for (size_t i = 0; rc == CB_OK && i < n; i++) {
		s->src[i] = cb_ckpt_find(s->ckpt, ctx->arch->tensors[i].name);
		rc = cb_host_match(&ctx->arch->tensors[i], s->src[i], false, s->ckpt->path, err);
	}
	if (rc == CB_OK)
		rc = cb_host_open_ckpt_files(&s->engine, s->ckpt, err);
	for (uint32_t f = 0; rc == CB_OK && f < s->ckpt->n_files; f++) {
		cb_loader_phase(ctx, CB_PHASE_READ);
		uint64_t size = s->engine.files[f].size;
		/* The bytes object: allocated, not written, so the read is the
		 * first touch of its pages. */
		if (size > SIZE_MAX || !(s->buf = malloc(size ? (size_t)size : 1))) {
			rc = CB_FAIL(err, CB_ENOMEM, s->ckpt->files[f].path, NULL,
				     "no memory for the file's %llu bytes",
				     (unsigned long long)size);
			break;
		}
		const struct cb_read_item whole = {.file = f, .len = size, .dest = s->buf};
		rc = cb_engine_read(&s->engine, &whole, 1, err);
		if (rc == CB_OK) {
			cb_loader_phase(ctx, CB_PHASE_COPY);
			struct copy_job job = {s, model, f};
			rc = cb_host_parallel(threads, n, copy_one, &job, err);
		}
		free(s->buf); /* `del sd`: the shard's buffer goes */
		s->buf = NULL;
	}
	for (size_t i = 0; rc == CB_OK && i < n; i++)
		model->tensors[i].location = CB_LOC_HOST;
	cb_loader_phase(ctx, CB_PHASE_NONE);
	return rc;
}

static int st_eager_control(void *priv, int op, void *arg, struct cb_error *err)
{
	struct st_eager *s = priv;
	(void)err;
	if (op != CB_LOADER_CTL_MODE)
		return CB_EUNSUPPORTED;
	cb_engine_describe(&s->engine, arg, CB_LOADER_MODE_MAX);
	return CB_OK;
}

static void st_eager_close(void *priv)
{
	struct st_eager *s = priv;
	cb_engine_teardown(&s->engine);
	cb_host_model_free(&s->model);
	free(s->buf);
	free(s->src);
	cb_ckpt_free(s->ckpt);
}

const struct cb_loader cb_loader_safetensors_eager = {
	.abi = CB_LOADER_ABI,
	.name = "safetensors-eager",
	.summary = "M(), then the whole file read into one buffer and each tensor copied out "
		   "(safetensors.load(open(f).read()))",
	.format = CB_FORMAT_SAFETENSORS,
	.device = CB_DEVICE_CPU,
	.caps = CB_CAP_HOST_MEM | CB_CAP_THREADS,
	.opts = st_eager_opts,
	.opts_size = sizeof(struct st_eager_opts),
	.priv_size = sizeof(struct st_eager),
	.open = st_eager_open,
	.load = st_eager_load,
	.close = st_eager_close,
	.control = st_eager_control,
};
