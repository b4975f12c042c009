/* pickle: the classic PyTorch path (docs/loaders.md; docs/datasets-and-method.md
 * §5.2), `model = M(); model.load_state_dict(torch.load(p))`:
 *   init  M(): allocate every parameter and run its initialiser (every page
 *         written), 1x the model in anonymous memory;
 *   read  torch.load: parse data.pkl (the repository's restricted
 *         unpickler, through ckpt.h), then read every storage record of the
 *         file (once, however many tensors view it: storage_records.h) into
 *         a freshly allocated buffer, as PyTorchStreamReader::getRecord does
 *         (one read per record through the read engine on one thread, as
 *         torch.load reads, records in file order): another 1x, all
 *         referenced until the copy is done;
 *   copy  load_state_dict: param.copy_(loaded) for each tensor, honouring
 *         the view's offset and strides (ATen spreads large copies over its
 *         threads; so does this, option `threads`);
 *   then  `del sd`: the loaded storages are freed.
 * A partial load (ctx->slice) is `torch.load`, then `narrow` of each
 * tensor to its slice, then `copy_`: every record is still read whole
 * (torch.load cannot read less), and only the slice is copied.
 * Peak anonymous memory is therefore ~2x the model: the memory doubling the
 * suite exists to show. It is the point, not a defect; do not optimise it
 * away.
 *
 * A sharded .bin model loads as transformers' classic loop does: for each
 * shard in index order torch.load it, load_state_dict(strict=False) it, and
 * free it, so the peak is 1x plus the largest shard.
 *
 * What it deliberately does not do: read a record straight into the model
 * (that is safetensors-read's path), map the file (pickle-mmap), skip
 * storages the model does not need (torch.load materialises them all), or
 * run the pickle's Python (the unpickler only rebuilds tensors).
 *
 * The host half (cb_pickle_host_load, pickle_host.h) is also pickle-gpu's,
 * which then moves the model to the device.
 */
#include "pickle_host.h"

#include <stdio.h>
#include <stdlib.h>

#include "fileio.h"
#include "tensor_gather.h"

const struct cb_loader_opt cb_pickle_opts[] = {
	{"threads", CB_OPT_U64, offsetof(struct cb_pickle_opts, threads), 0, 64, "0",
	 "threads of the initialiser and of copy_ (0: one per CPU, at most 16); "
	 "records are read on one, as torch.load does"},
	{"thp", CB_OPT_BOOL, offsetof(struct cb_pickle_opts, thp), 0, 0, "1",
	 "transparent huge pages for the model's large tensors (madvise)"},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

static int by_file(const void *a, const void *b)
{
	const struct cb_pickle_copy *x = a, *y = b;
	if (x->src->file != y->src->file)
		return x->src->file < y->src->file ? -1 : 1;
	return x->tensor < y->tensor ? -1 : x->tensor > y->tensor;
}

/* Every distinct storage of every tensor in the checkpoint (tied weights and
 * views share one; storage_records.h), whether or not the model asks for
 * it, and which one each model tensor is copied from. */
static int plan(struct cb_pickle_host *s, const struct cb_load_ctx *ctx, struct cb_error *err)
{
	const struct cb_manifest *arch = ctx->arch;
	int rc = cb_storage_records(s->ckpt, &s->records, &s->n_records, err);
	if (rc != CB_OK)
		return rc;
	s->bufs = calloc(s->n_records ? s->n_records : 1, sizeof *s->bufs);
	s->copies = calloc(arch->n_tensors ? arch->n_tensors : 1, sizeof *s->copies);
	if (!s->bufs || !s->copies)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < arch->n_tensors; i++) {
		/* A part is matched as its whole tensor: the checkpoint's. */
		const struct cb_manifest_tensor *want =
			ctx->slice ? &ctx->whole->tensors[ctx->slice->tensors[i].index]
				   : &arch->tensors[i];
		const struct cb_ckpt_tensor *t = cb_ckpt_find(s->ckpt, want->name);
		size_t r = 0;
		rc = cb_host_match(want, t, true, s->ckpt->path, err);
		if (rc == CB_OK)
			rc = cb_storage_record_of(s->records, s->n_records, t, &r, err);
		if (rc != CB_OK)
			return rc;
		s->copies[s->n_copies++] = (struct cb_pickle_copy){i, t, r};
		s->strided += t->stride != NULL;
	}
	qsort(s->copies, s->n_copies, sizeof *s->copies, by_file);
	return CB_OK;
}

/* torch.load of one file: every record into a fresh buffer, in file order,
 * one read each. */
static int read_file_records(struct cb_pickle_host *s, uint32_t file, struct cb_error *err)
{
	const char *path = s->ckpt->files[file].path;
	struct cb_read_item *items = calloc(s->n_records ? s->n_records : 1, sizeof *items);
	if (!items)
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	size_t n = 0;
	int rc = CB_OK;
	for (size_t i = 0; i < s->n_records; i++) {
		const struct cb_storage_record *r = &s->records[i];
		if (r->file != file)
			continue;
		if (r->nbytes > SIZE_MAX) {
			rc = CB_FAIL(err, CB_ELIMIT, path, NULL, "record larger than memory");
			break;
		}
		/* c10's CPU allocator: 64-byte aligned, untouched until read. */
		if (posix_memalign(&s->bufs[i], 64, r->nbytes ? (size_t)r->nbytes : 1) != 0) {
			s->bufs[i] = NULL;
			rc = CB_FAIL(err, CB_ENOMEM, path, NULL,
				     "cannot allocate a %llu-byte storage",
				     (unsigned long long)r->nbytes);
			break;
		}
		items[n++] = (struct cb_read_item){
			.file = file, .offset = r->start, .len = r->nbytes, .dest = s->bufs[i]};
	}
	if (rc == CB_OK)
		rc = cb_engine_read(&s->engine, items, n, err);
	free(items);
	return rc;
}

static int copy_one(void *arg, size_t i, struct cb_error *err)
{
	struct cb_pickle_host *s = arg;
	const struct cb_pickle_copy *c = &s->copies[s->copy_from + i];
	const struct cb_slice_tensor *part = s->slice ? &s->slice->tensors[c->tensor] : NULL;
	return cb_host_gather_part(s->dest->tensors[c->tensor].data, s->bufs[c->record], c->src,
				   part, err);
}

static void free_file_records(struct cb_pickle_host *s, uint32_t file)
{
	for (size_t i = 0; i < s->n_records; i++) {
		if (s->records[i].file == file) {
			free(s->bufs[i]);
			s->bufs[i] = NULL;
		}
	}
}

int cb_pickle_host_open(struct cb_pickle_host *s, struct cb_error *err)
{
	/* torch.load reads its records on the calling thread, one after the
	 * other: one reader, whatever `threads` says (that is copy_'s). */
	const struct cb_engine_config one_reader = {.threads = 1};
	return cb_engine_setup(&s->engine, &one_reader, err);
}

int cb_pickle_host_load(struct cb_pickle_host *s, const struct cb_load_ctx *ctx,
			const struct cb_pickle_opts *o, struct cb_model *model,
			struct cb_error *err)
{
	unsigned threads = cb_engine_threads(o->threads);
	cb_loader_phase(ctx, CB_PHASE_INIT);
	int rc = cb_host_model_alloc(&s->model, ctx->arch, model, true, o->thp, threads, err);
	if (rc != CB_OK)
		return rc;
	cb_loader_phase(ctx, CB_PHASE_READ);
	rc = cb_ckpt_open(ctx->path, CB_FORMAT_PYTORCH, &s->ckpt, err);
	if (rc == CB_OK)
		rc = plan(s, ctx, err);
	if (rc == CB_OK)
		rc = cb_host_open_ckpt_files(&s->engine, s->ckpt, err);
	s->dest = model;
	s->slice = ctx->slice;
	size_t next = 0;
	for (uint32_t f = 0; rc == CB_OK && f < s->ckpt->n_files; f++) {
		cb_loader_phase(ctx, CB_PHASE_READ);
		rc = read_file_records(s, f, err);
		size_t end = next;
		while (end < s->n_copies && s->copies[end].src->file == f)
			end++;
		cb_loader_phase(ctx, CB_PHASE_COPY);
		s->copy_from = next;
		if (rc == CB_OK)
			rc = cb_host_parallel(threads, end - next, copy_one, s, err);
		next = end;
		free_file_records(s, f); /* del sd */
	}
	cb_engine_close(&s->engine);
	return rc;
}

void cb_pickle_host_mode(const struct cb_pickle_host *s, char *buf, size_t len)
{
	char how[160] = "";
	if (s->engine.workers)
		cb_engine_describe(&s->engine, how, sizeof how);
	snprintf(buf, len,
		 "%zu records read into fresh buffers, %zu tensors copied (%llu strided), "
		 "%zu files; reads: %.110s",
		 s->n_records, s->n_copies, (unsigned long long)s->strided,
		 s->ckpt ? s->ckpt->n_files : (size_t)0, how);
}

void cb_pickle_host_free(struct cb_pickle_host *s)
{
	for (size_t i = 0; s->bufs && i < s->n_records; i++)
		free(s->bufs[i]);
	free(s->bufs);
	free(s->records);
	free(s->copies);
	cb_host_model_free(&s->model);
	cb_ckpt_free(s->ckpt);
	cb_engine_teardown(&s->engine);
	*s = (struct cb_pickle_host){0};
}

/* ------------------------------------------------------------ the loader */

static int pickle_open(const struct cb_loader *self, void *priv, const struct cb_load_ctx *ctx,
		       struct cb_error *err)
{
	(void)self, (void)ctx;
	return cb_pickle_host_open(priv, err);
}

static int pickle_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
		       struct cb_error *err)
{
	int rc = cb_pickle_host_load(priv, ctx, ctx->opts, model, err);
	cb_loader_phase(ctx, CB_PHASE_NONE);
	return rc;
}

static int pickle_control(void *priv, int op, void *arg, struct cb_error *err)
{
	(void)err;
	if (op != CB_LOADER_CTL_MODE)
		return CB_EUNSUPPORTED;
	cb_pickle_host_mode(priv, arg, CB_LOADER_MODE_MAX);
	return CB_OK;
}

static void pickle_close(void *priv)
{
	cb_pickle_host_free(priv);
}

const struct cb_loader cb_loader_pickle = {
	.abi = CB_LOADER_ABI,
	.name = "pickle",
	.summary = "model = M(); model.load_state_dict(torch.load(p)): init, read every "
		   "record into fresh buffers, copy in, free (peak ~2x)",
	.format = CB_FORMAT_PYTORCH,
	.device = CB_DEVICE_CPU,
	.caps = CB_CAP_HOST_MEM | CB_CAP_THREADS | CB_CAP_PARTIAL,
	.opts = cb_pickle_opts,
	.opts_size = sizeof(struct cb_pickle_opts),
	.priv_size = sizeof(struct cb_pickle_host),
	.open = pickle_open,
	.load = pickle_load,
	.close = pickle_close,
	.control = pickle_control,
};
