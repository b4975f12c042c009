/* safetensors-mmap: safetensors on the CPU, zero-copy (docs/loaders.md).
 *
 * Stands for `safetensors.safe_open(..., framework="pt")` / `load_file` on
 * CPU: each file mapped read-only and shared, every tensor a view into the
 * mapping; no model is allocated (the tensors are the mapping). Every page
 * of the tensors is then made resident inside the timed region, so the load
 * ends with every byte resident and mapped as it must for a fair comparison
 * (a mapping alone is lazy and would "load" in microseconds):
 * engine/populate.h, the same policy, options and defaults as pickle-mmap
 * (MADV_POPULATE_READ per slice from every thread; one read per page where
 * the kernel lacks it; MAP_POPULATE, WILLNEED and SEQUENTIAL as options).
 * The mode reports which ran.
 *
 * Anonymous memory stays near zero: every tensor byte is a file-backed page
 * (RssFile), reclaimable, ~1x the model.
 *
 * What it deliberately does not do: copy anything, write to the mapping
 * (views are read-only, so a strided or misaligned tensor would be a copy,
 * and safetensors has neither), or keep mappings across loads.
 */
#include <stdio.h>
#include <stdlib.h>

#include "ckpt.h"
#include "engine/populate.h"
#include "host.h"
#include "loader.h"

struct st_mmap_opts {
	struct cb_populate_opts populate; /* how the pages are made resident */
};

static const struct cb_loader_opt st_mmap_opts[] = {
	CB_POPULATE_OPTS(struct st_mmap_opts, populate),
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

/* Private state (zeroed by the harness); the mappings are the model and
 * live until close. */
struct st_mmap {
	struct cb_ckpt *ckpt;
	struct cb_mapped_file *maps; /* one per checkpoint file */
	size_t n_maps;
	struct cb_populate_opts populate; /* the options, for the mode */
	struct cb_populate_stats populated;
	void **copies; /* a partial load's strided slices, copied out; owned */
	size_t n_copies;
};

static int st_mmap_open(const struct cb_loader *self, void *priv, const struct cb_load_ctx *ctx,
			struct cb_error *err)
{
	(void)self;
	(void)priv, (void)ctx, (void)err;
	return CB_OK;
}

/* Slice tensor i's runs, from its whole tensor's mapped bytes at `whole`,
 * into a buffer of its own. */
static int copy_runs(struct st_mmap *s, size_t i, const char *whole,
		     const struct cb_slice_tensor *part, struct cb_model *model,
		     struct cb_error *err)
{
	s->copies[i] = malloc(part->nbytes ? (size_t)part->nbytes : 1);
	if (!s->copies[i])
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory for a slice");
	cb_slice_extract(s->copies[i], whole, part);
	model->tensors[i].data = s->copies[i];
	model->tensors[i].location = CB_LOC_HOST;
	return CB_OK;
}

static int st_mmap_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
			struct cb_error *err)
{
	struct st_mmap *s = priv;
	const struct st_mmap_opts *o = ctx->opts;
	s->populate = o->populate;
	/* No init phase: a zero-copy load allocates no model. */
	cb_loader_phase(ctx, CB_PHASE_READ);
	int rc = cb_ckpt_open(ctx->path, CB_FORMAT_SAFETENSORS, &s->ckpt, err);
	if (rc == CB_OK) { /* MAP_SHARED, as safetensors maps */
		s->n_maps = s->ckpt->n_files;
		rc = cb_map_files(s->ckpt, true, &o->populate, &s->maps, err);
	}
	size_t n = ctx->arch->n_tensors;
	struct cb_populate_range *ranges = NULL;
	if (rc == CB_OK && !(ranges = calloc(n ? n : 1, sizeof *ranges)))
		rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	if (rc == CB_OK && ctx->slice && !(s->copies = calloc(n ? n : 1, sizeof *s->copies)))
		rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	s->n_copies = s->copies ? n : 0;
	/* The views: model tensors point into the mappings. */
	for (size_t i = 0; rc == CB_OK && i < n; i++) {
		const struct cb_slice_tensor *part = ctx->slice ? &ctx->slice->tensors[i] : NULL;
		const struct cb_manifest_tensor *want =
			part ? &ctx->whole->tensors[part->index] : &ctx->arch->tensors[i];
		const struct cb_ckpt_tensor *have = cb_ckpt_find(s->ckpt, want->name);
		rc = cb_host_match(want, have, false, s->ckpt->path, err);
		if (rc != CB_OK)
			break;
		const struct cb_mapped_file *m = &s->maps[have->file];
		uint64_t off = have->offset, len = have->nbytes;
		if (part && part->n_runs > 1 && m->addr) {
			/* A strided slice is not a view: get_slice copies it out,
			 * touching only the runs' pages (and so does this). */
			rc = copy_runs(s, i, (const char *)m->addr + off, part, model, err);
			continue;
		}
		if (part) { /* one run: a view of just its bytes */
			off += part->first;
			len = part->nbytes;
		}
		/* An empty tensor in an empty data section still needs a non-NULL
		 * pointer: any address in the mapping's place will do. */
		model->tensors[i].data = m->addr ? (char *)m->addr + off : (void *)s;
		model->tensors[i].location = CB_LOC_HOST;
		if (m->addr)
			ranges[i] = (struct cb_populate_range){model->tensors[i].data, (size_t)len};
	}
	/* Still the read phase: faulting the pages in is where the bytes are
	 * read from the file (or found in the page cache). */
	if (rc == CB_OK)
		rc = cb_populate(ranges, n, &o->populate, &s->populated, err);
	free(ranges);
	cb_loader_phase(ctx, CB_PHASE_NONE);
	return rc;
}

static int st_mmap_control(void *priv, int op, void *arg, struct cb_error *err)
{
	struct st_mmap *s = priv;
	(void)err;
	if (op != CB_LOADER_CTL_MODE)
		return CB_EUNSUPPORTED;
	char how[160];
	cb_populate_describe(&s->populate, &s->populated, how, sizeof how);
	snprintf(arg, CB_LOADER_MODE_MAX, "mmap shared read-only, %zu files, %s", s->n_maps, how);
	return CB_OK;
}

static void st_mmap_close(void *priv)
{
	struct st_mmap *s = priv;
	cb_unmap_files(s->maps, s->n_maps);
	for (size_t i = 0; i < s->n_copies; i++)
		free(s->copies[i]);
	free(s->copies);
	cb_ckpt_free(s->ckpt);
}

const struct cb_loader cb_loader_safetensors_mmap = {
	.abi = CB_LOADER_ABI,
	.name = "safetensors-mmap",
	.summary = "map each file read-only shared, tensors are views, every page made resident",
	.format = CB_FORMAT_SAFETENSORS,
	.device = CB_DEVICE_CPU,
	.caps = CB_CAP_HOST_MEM | CB_CAP_ZERO_COPY | CB_CAP_THREADS | CB_CAP_PARTIAL,
	.opts = st_mmap_opts,
	.opts_size = sizeof(struct st_mmap_opts),
	.priv_size = sizeof(struct st_mmap),
	.open = st_mmap_open,
	.load = st_mmap_load,
	.close = st_mmap_close,
	.control = st_mmap_control,
};
