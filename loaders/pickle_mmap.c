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
 *         (phase read again) every page of every tensor is touched, inside
 *         the timed region, so the load ends with the model resident as
 *         for every loader.
 * No init phase: a meta-device model allocates nothing. Anonymous memory
 * stays near zero; the model is file-backed pages (~1x RssFile).
 *
 * What it deliberately does not do: copy aligned contiguous tensors,
 * allocate the model, or write to the mapping (a byte-swap of a big-endian
 * file would; torch.save writes little-endian).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ckpt.h"
#include "dtype.h"
#include "host.h"
#include "loader.h"

#define RECORD_ALIGN 64 /* torch.save's kFieldAlignment */

struct pmmap_opts {
	uint64_t threads;
	bool willneed;
};

static const struct cb_loader_opt pmmap_opts[] = {
	{"threads", CB_OPT_U64, offsetof(struct pmmap_opts, threads), 0, 64, "0",
	 "threads touching the pages (0: one per CPU, at most 16)"},
	{"willneed", CB_OPT_BOOL, offsetof(struct pmmap_opts, willneed), 0, 0, "1",
	 "madvise(MADV_WILLNEED | MADV_SEQUENTIAL) on each mapping"},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

struct mapping {
	void *addr;
	size_t len;
};

/* Private state (zeroed by the harness). The mappings and the copies are
 * the model and live until close. */
struct pmmap {
	struct cb_ckpt *ckpt;
	struct mapping *maps;
	size_t n_maps;
	void **copies; /* per architecture tensor: a copy, or NULL */
	size_t n_copies;
	struct cb_model *model;
	uint64_t n_views, n_strided, n_misaligned;
	uint64_t sink;
};

static int pmmap_open(const struct cb_loader *self, void *priv, const struct cb_load_ctx *ctx,
		      struct cb_error *err)
{
	(void)self;
	(void)priv, (void)ctx, (void)err;
	return CB_OK;
}

static int map_files(struct pmmap *s, bool willneed, struct cb_error *err)
{
	s->maps = calloc(s->ckpt->n_files ? s->ckpt->n_files : 1, sizeof *s->maps);
	if (!s->maps)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	s->n_maps = s->ckpt->n_files;
	for (size_t i = 0; i < s->n_maps; i++) {
		const struct cb_ckpt_file *f = &s->ckpt->files[i];
		if (f->size == 0 || f->size > SIZE_MAX)
			return CB_FAIL(err, CB_EFORMAT, f->path, NULL,
				       "cannot map this file's size");
		int fd = open(f->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return CB_FAIL_ERRNO(err, errno, f->path, "open");
		void *p = mmap(NULL, (size_t)f->size, PROT_READ, MAP_PRIVATE, fd, 0);
		int saved = errno;
		close(fd); /* the mapping keeps the file */
		if (p == MAP_FAILED)
			return CB_FAIL_ERRNO(err, saved, f->path, "mmap");
		s->maps[i] = (struct mapping){p, (size_t)f->size};
		if (willneed) { /* hints */
			(void)madvise(p, (size_t)f->size, MADV_SEQUENTIAL);
			(void)madvise(p, (size_t)f->size, MADV_WILLNEED);
		}
	}
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

static int assign(struct pmmap *s, const struct cb_manifest *arch, struct cb_model *model,
		  struct cb_error *err)
{
	s->copies = calloc(arch->n_tensors ? arch->n_tensors : 1, sizeof *s->copies);
	if (!s->copies)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	s->n_copies = arch->n_tensors;
	for (size_t i = 0; i < arch->n_tensors; i++) {
		const struct cb_ckpt_tensor *t = cb_ckpt_find(s->ckpt, arch->tensors[i].name);
		int rc = cb_host_match(&arch->tensors[i], t, true, s->ckpt->path, err);
		if (rc != CB_OK)
			return rc;
		const uint8_t *storage =
			(const uint8_t *)s->maps[t->file].addr + cb_host_storage_start(t);
		bool aligned = cb_host_storage_start(t) % RECORD_ALIGN == 0;
		bool dense = is_dense(t);
		model->tensors[i].location = CB_LOC_HOST;
		if (aligned && dense) {
			model->tensors[i].data = (char *)s->maps[t->file].addr + t->offset;
			s->n_views++;
			continue;
		}
		s->n_strided += !dense;
		s->n_misaligned += dense && !aligned;
		if (posix_memalign(&s->copies[i], RECORD_ALIGN,
				   t->nbytes ? (size_t)t->nbytes : 1)) {
			s->copies[i] = NULL;
			return CB_FAIL(err, CB_ENOMEM, NULL, t->name, "out of memory");
		}
		rc = cb_host_gather(s->copies[i], storage, t, err);
		if (rc != CB_OK)
			return rc;
		model->tensors[i].data = s->copies[i];
	}
	return CB_OK;
}

/* Touches every page of tensor i (views only: copies were just written). */
static int touch_tensor(void *arg, size_t i, struct cb_error *err)
{
	struct pmmap *s = arg;
	(void)err;
	if (!s->copies[i]) {
		uint64_t v = cb_host_touch_pages(s->model->tensors[i].data,
						 (size_t)s->model->tensors[i].nbytes);
		__atomic_fetch_add(&s->sink, v, __ATOMIC_RELAXED);
	}
	return CB_OK;
}

static int pmmap_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
		      struct cb_error *err)
{
	struct pmmap *s = priv;
	const struct pmmap_opts *o = ctx->opts;
	cb_loader_phase(ctx, CB_PHASE_READ);
	int rc = cb_ckpt_open(ctx->path, CB_FORMAT_PYTORCH, &s->ckpt, err);
	if (rc == CB_OK)
		rc = map_files(s, o->willneed, err);
	cb_loader_phase(ctx, CB_PHASE_COPY);
	if (rc == CB_OK)
		rc = assign(s, ctx->arch, model, err);
	s->model = model;
	cb_loader_phase(ctx, CB_PHASE_READ); /* the page faults read the file */
	if (rc == CB_OK)
		rc = cb_host_parallel(cb_host_threads(o->threads), ctx->arch->n_tensors,
				      touch_tensor, s, err);
	cb_loader_phase(ctx, CB_PHASE_NONE);
	return rc;
}

static int pmmap_control(void *priv, int op, void *arg, struct cb_error *err)
{
	const struct pmmap *s = priv;
	(void)err;
	if (op != CB_LOADER_CTL_MODE)
		return CB_EUNSUPPORTED;
	snprintf(arg, 256,
		 "mmap private read-only, %llu views, %llu strided copied, "
		 "%llu misaligned copied, %zu files",
		 (unsigned long long)s->n_views, (unsigned long long)s->n_strided,
		 (unsigned long long)s->n_misaligned, s->n_maps);
	return CB_OK;
}

static void pmmap_close(void *priv)
{
	struct pmmap *s = priv;
	for (size_t i = 0; s->maps && i < s->n_maps; i++)
		if (s->maps[i].addr)
			munmap(s->maps[i].addr, s->maps[i].len);
	free(s->maps);
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
	.caps = CB_CAP_HOST_MEM | CB_CAP_ZERO_COPY | CB_CAP_THREADS,
	.opts = pmmap_opts,
	.opts_size = sizeof(struct pmmap_opts),
	.priv_size = sizeof(struct pmmap),
	.open = pmmap_open,
	.load = pmmap_load,
	.close = pmmap_close,
	.control = pmmap_control,
};
