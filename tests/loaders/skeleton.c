/* skeleton: the smallest complete loader, kept to be copied. It loads a
 * safetensors checkpoint into host memory, one malloc'd buffer per tensor,
 * every byte read through the read engine. It is built into the test
 * binary only (tests/loaders/test_loaders.h) and goes through every check
 * the registry walk makes (tests/test_registry_walk.py), so a copy of it
 * starts out correct.
 *
 * To add a loader (docs/loaders.md, "Adding a loader"):
 *   1. copy this file to loaders/NAME.c and rename `skeleton`;
 *   2. say what real code path it stands for in its first comment and in
 *      .summary, and make it do what that path does (how it allocates, reads,
 *      copies), since that is what the benchmark measures;
 *   3. add it to CB_LOADERS in loaders/registry.c and to loaders/meson.build.
 * The harness does the rest: a fresh process per trial, the cache state,
 * the baseline, the timing, verification against the manifest, memory
 * sampling, the results file.
 */
#include <stdlib.h>

#include "ckpt.h"
#include "engine/read_engine.h"
#include "test_loaders.h"

/* The options struct: filled by the harness from NAME:KEY=VALUE before
 * open(), described by the table below (offsets into this struct). */
struct skeleton_opts {
	uint64_t threads;
};

static const struct cb_loader_opt skeleton_opts[] = {
	{"threads", CB_OPT_U64, offsetof(struct skeleton_opts, threads), 0, CB_ENGINE_MAX_THREADS,
	 "0", "reader threads (0: one per CPU, at most 16)"},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

/* Private state: the harness allocates priv_size zeroed bytes before
 * open() and frees them after close(). Everything in it is the loader's,
 * and close() must free it whatever state a failure left it in. */
struct skeleton {
	struct cb_engine engine;
	struct cb_ckpt *ckpt;
	void **buffers; /* one per model tensor, malloc'd; handed to model->tensors */
	size_t n;
};

/* Set-up that is not loading, before the trial's baseline: the engine's
 * threads. No tensor data is read here. */
static int skeleton_open(const struct cb_loader *self, void *priv, const struct cb_load_ctx *ctx,
			 struct cb_error *err)
{
	(void)self;
	struct skeleton *s = priv;
	const struct skeleton_opts *o = ctx->opts;
	struct cb_engine_config cfg = {.threads = cb_engine_threads(o->threads)};
	return cb_engine_setup(&s->engine, &cfg, err);
}

/* Timed: from nothing to every tensor resident in host memory. */
static int skeleton_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
			 struct cb_error *err)
{
	struct skeleton *s = priv;
	cb_loader_phase(ctx, CB_PHASE_READ);
	int rc = cb_ckpt_open(ctx->path, CB_FORMAT_SAFETENSORS, &s->ckpt, err);
	if (rc != CB_OK)
		return rc;

	/* The empty model: a buffer per tensor, untouched, so the reads are
	 * the first touch of its memory. */
	cb_loader_phase(ctx, CB_PHASE_INIT);
	s->n = model->n;
	s->buffers = calloc(s->n ? s->n : 1, sizeof *s->buffers);
	struct cb_read_item *items = calloc(s->n ? s->n : 1, sizeof *items);
	if (!s->buffers || !items) {
		free(items);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	for (size_t i = 0; rc == CB_OK && i < s->n; i++) {
		struct cb_model_tensor *mt = &model->tensors[i];
		const struct cb_ckpt_tensor *t = cb_ckpt_find(s->ckpt, mt->name);
		if (!t || t->nbytes != mt->nbytes) {
			rc = CB_FAIL(err, CB_EMISMATCH, ctx->path, mt->name,
				     "the checkpoint lacks this tensor or has another size");
			break;
		}
		s->buffers[i] = malloc(t->nbytes ? t->nbytes : 1);
		if (!s->buffers[i]) {
			rc = CB_FAIL(err, CB_ENOMEM, NULL, mt->name, "out of memory");
			break;
		}
		items[i] = (struct cb_read_item){.file = t->file,
						 .offset = t->offset,
						 .len = t->nbytes,
						 .dest = s->buffers[i]};
		mt->data = s->buffers[i];
		mt->location = CB_LOC_HOST;
	}

	/* What to read and where; the engine decides how. */
	cb_loader_phase(ctx, CB_PHASE_READ);
	const char **paths = rc == CB_OK ? calloc(s->ckpt->n_files, sizeof *paths) : NULL;
	if (rc == CB_OK && !paths && s->ckpt->n_files)
		rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t f = 0; rc == CB_OK && f < s->ckpt->n_files; f++)
		paths[f] = s->ckpt->files[f].path;
	if (rc == CB_OK)
		rc = cb_engine_open(&s->engine, paths, s->ckpt->n_files, err);
	if (rc == CB_OK)
		rc = cb_engine_read(&s->engine, items, s->n, err);
	free(paths);
	free(items);
	cb_loader_phase(ctx, CB_PHASE_NONE);
	return rc;
}

/* What ran, in words, for the trial's "mode". */
static int skeleton_control(void *priv, int op, void *arg, struct cb_error *err)
{
	(void)err;
	if (op != CB_LOADER_CTL_MODE)
		return CB_EUNSUPPORTED;
	struct skeleton *s = priv;
	cb_engine_describe(&s->engine, arg, CB_LOADER_MODE_MAX);
	return CB_OK;
}

static void skeleton_close(void *priv)
{
	struct skeleton *s = priv;
	for (size_t i = 0; s->buffers && i < s->n; i++)
		free(s->buffers[i]);
	free(s->buffers);
	cb_engine_teardown(&s->engine);
	cb_ckpt_free(s->ckpt);
}

const struct cb_loader cb_loader_skeleton = {
	.abi = CB_LOADER_ABI,
	.name = "skeleton",
	.summary = "a template to copy: each tensor malloc'd, then read into place by the engine",
	.format = CB_FORMAT_SAFETENSORS,
	.device = CB_DEVICE_CPU,
	.caps = CB_CAP_HOST_MEM | CB_CAP_THREADS,
	.opts = skeleton_opts,
	.opts_size = sizeof(struct skeleton_opts),
	.priv_size = sizeof(struct skeleton),
	.open = skeleton_open,
	.load = skeleton_load,
	.close = skeleton_close,
	.control = skeleton_control,
};
