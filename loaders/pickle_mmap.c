/* pickle-mmap: `torch.load(p, mmap=True)` then
 * `model.load_state_dict(sd, assign=True)` into a model built on the meta
 * device (docs/loaders.md; docs/datasets-and-method.md §5.2):
 *   read  parse data.pkl (the repository's unpickler, through ckpt.h) and
 *         map each .pt file whole, private (torch's default, MAP_PRIVATE
 *         from UntypedStorage.from_file), read-only here;
 *   copy  assign: each tensor becomes a view into its record, which
 *         torch.save aligned to 64 bytes. Only a tensor that cannot be a
 *         plain view of its bytes is copied into a fresh buffer: a strided
 *         or offset view whose row-major bytes are not contiguous in the
 *         file (the model wants it contiguous), or a record that is not
 *         64-byte aligned (legacy files). The mode says how many. Then
 *         (phase read again) every page the views cover is made resident,
 *         inside the timed region, so the load ends with the model resident
 *         as for every loader: engine/populate.h, the same policy, options
 *         and defaults as safetensors-mmap (the real torch.load(mmap=True)
 *         touches nothing itself; the model's first use would pay).
 * No init phase: a meta-device model allocates nothing. Anonymous memory
 * stays near zero; the model is file-backed pages (~1x RssFile).
 *
 * What it deliberately does not do: copy aligned contiguous tensors,
 * allocate the model, or write to the mapping (a byte-swap of a big-endian
 * file would; torch.save writes little-endian).
 */
#include <stdio.h>
#include <stdlib.h>

#include "ckpt.h"
#include "engine/populate.h"
#include "host.h"
#include "loader.h"
#include "storage_records.h"
#include "tensor_gather.h"

#define RECORD_ALIGN 64 /* torch.save's kFieldAlignment */

struct pmmap_opts {
	struct cb_populate_opts populate; /* how the pages are made resident */
};

static const struct cb_loader_opt pmmap_opts[] = {
	CB_POPULATE_OPTS(struct pmmap_opts, populate),
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

/* Private state (zeroed by the harness). The mappings and the copies are
 * the model and live until close. */
struct pmmap {
	struct cb_ckpt *ckpt;
	struct cb_mapped_file *maps; /* one per file */
	size_t n_maps;
	void **copies; /* per architecture tensor: a copy, or NULL */
	size_t n_copies;
	uint64_t n_views, n_strided, n_misaligned;
	struct cb_populate_opts populate; /* the options, for the mode */
	struct cb_populate_stats populated;
};

static int pmmap_open(const struct cb_loader *self, void *priv, const struct cb_load_ctx *ctx,
		      struct cb_error *err)
{
	(void)self;
	(void)priv, (void)ctx, (void)err;
	return CB_OK;
}

/* Whether the tensor's row-major bytes are one run of its storage: no
 * strides, or strides that are exactly the contiguous ones. */
static bool is_dense(const struct cb_ckpt_tensor *t)
{
	if (!t->stride)
		return true;
	int64_t want = 1;
	for (uint32_t d = t->rank; d-- > 0;) {
		if (t->shape[d] != 1 && t->stride[d] != want)
			return false;
		want *= (int64_t)t->shape[d];
	}
	return true;
}

static int assign(struct pmmap *s, const struct cb_load_ctx *ctx, struct cb_model *model,
		  struct cb_error *err)
{
	const struct cb_manifest *arch = ctx->arch;
	s->copies = calloc(arch->n_tensors ? arch->n_tensors : 1, sizeof *s->copies);
	if (!s->copies)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	s->n_copies = arch->n_tensors;
	for (size_t i = 0; i < arch->n_tensors; i++) {
		/* A part (ctx->slice) is `narrow` of its whole tensor: a view
		 * when it is one run of it, else a copy of its runs (`clone`). */
		const struct cb_slice_tensor *part = ctx->slice ? &ctx->slice->tensors[i] : NULL;
		const struct cb_manifest_tensor *want =
			part ? &ctx->whole->tensors[part->index] : &arch->tensors[i];
		const struct cb_ckpt_tensor *t = cb_ckpt_find(s->ckpt, want->name);
		uint64_t start = 0;
		int rc = cb_host_match(want, t, true, s->ckpt->path, err);
		if (rc == CB_OK)
			rc = cb_storage_start(t, &start, err);
		if (rc != CB_OK)
			return rc;
		bool aligned = start % RECORD_ALIGN == 0;
		bool dense = is_dense(t);
		model->tensors[i].location = CB_LOC_HOST;
		if (aligned && dense && (!part || part->n_runs <= 1)) {
			model->tensors[i].data = (char *)s->maps[t->file].addr + t->offset +
						 (part ? part->first : 0);
			s->n_views++;
			continue;
		}
		s->n_strided += !dense;
		s->n_misaligned += dense && !aligned;
		uint64_t nbytes = arch->tensors[i].nbytes; /* the part's, if a part */
		if (posix_memalign(&s->copies[i], RECORD_ALIGN, nbytes ? (size_t)nbytes : 1)) {
			s->copies[i] = NULL;
			return CB_FAIL(err, CB_ENOMEM, NULL, t->name, "out of memory");
		}
		rc = cb_host_gather_part(
			s->copies[i], (const uint8_t *)s->maps[t->file].addr + start, t, part, err);
		if (rc != CB_OK)
			return rc;
		model->tensors[i].data = s->copies[i];
	}
	return CB_OK;
}

/* The pages of every view (copies were just written): resident. */
static int make_resident(struct pmmap *s, const struct cb_manifest *arch,
			 const struct cb_model *model, struct cb_error *err)
{
	struct cb_populate_range *r = calloc(arch->n_tensors ? arch->n_tensors : 1, sizeof *r);
	if (!r)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	size_t n = 0;
	for (size_t i = 0; i < arch->n_tensors; i++)
		if (!s->copies[i])
			r[n++] = (struct cb_populate_range){model->tensors[i].data,
							    (size_t)arch->tensors[i].nbytes};
	int rc = cb_populate(r, n, &s->populate, &s->populated, err);
	free(r);
	return rc;
}

static int pmmap_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
		      struct cb_error *err)
{
	struct pmmap *s = priv;
	const struct pmmap_opts *o = ctx->opts;
	s->populate = o->populate;
	cb_loader_phase(ctx, CB_PHASE_READ);
	int rc = cb_ckpt_open(ctx->path, CB_FORMAT_PYTORCH, &s->ckpt, err);
	if (rc == CB_OK) { /* MAP_PRIVATE, as UntypedStorage.from_file maps */
		s->n_maps = s->ckpt->n_files;
		rc = cb_map_files(s->ckpt, false, &o->populate, &s->maps, err);
	}
	cb_loader_phase(ctx, CB_PHASE_COPY);
	if (rc == CB_OK)
		rc = assign(s, ctx, model, err);
	cb_loader_phase(ctx, CB_PHASE_READ); /* the page faults read the file */
	if (rc == CB_OK)
		rc = make_resident(s, ctx->arch, model, err);
	cb_loader_phase(ctx, CB_PHASE_NONE);
	return rc;
}

static int pmmap_control(void *priv, int op, void *arg, struct cb_error *err)
{
	const struct pmmap *s = priv;
	(void)err;
	if (op != CB_LOADER_CTL_MODE)
		return CB_EUNSUPPORTED;
	char how[160];
	cb_populate_describe(&s->populate, &s->populated, how, sizeof how);
	snprintf(arg, CB_LOADER_MODE_MAX,
		 "mmap private read-only, %llu views, %llu strided copied, "
		 "%llu misaligned copied, %zu files, %s",
		 (unsigned long long)s->n_views, (unsigned long long)s->n_strided,
		 (unsigned long long)s->n_misaligned, s->n_maps, how);
	return CB_OK;
}

static void pmmap_close(void *priv)
{
	struct pmmap *s = priv;
	cb_unmap_files(s->maps, s->n_maps);
	for (size_t i = 0; i < s->n_copies; i++)
		free(s->copies[i]);
	free(s->copies);
	cb_ckpt_free(s->ckpt);
}

const struct cb_loader cb_loader_pickle_mmap = {
	.abi = CB_LOADER_ABI,
	.name = "pickle-mmap",
	.summary = "torch.load(mmap=True) + load_state_dict(assign=True): tensors are views "
		   "into the mapped .pt records",
	.format = CB_FORMAT_PYTORCH,
	.device = CB_DEVICE_CPU,
	.caps = CB_CAP_HOST_MEM | CB_CAP_ZERO_COPY | CB_CAP_THREADS | CB_CAP_PARTIAL,
	.opts = pmmap_opts,
	.opts_size = sizeof(struct pmmap_opts),
	.priv_size = sizeof(struct pmmap),
	.open = pmmap_open,
	.load = pmmap_load,
	.close = pmmap_close,
	.control = pmmap_control,
};
