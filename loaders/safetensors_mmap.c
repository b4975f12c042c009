/* safetensors-mmap: safetensors on the CPU, zero-copy (docs/loaders.md).
 *
 * Stands for `safetensors.safe_open(..., framework="pt")` / `load_file` on
 * CPU: each file mapped read-only and shared, every tensor a view into the
 * mapping; no model is allocated (the tensors are the mapping). Every page
 * is then faulted in inside the timed region, so the load ends with every
 * byte resident and mapped as it must for a fair comparison (a mapping
 * alone is lazy and would "load" in microseconds). By default each thread
 * asks madvise(MADV_POPULATE_READ) (Linux 5.14) to fault its slice in, so
 * the page cache fills from several threads at once; where the kernel
 * refuses, one read per page does it. WILLNEED (read-ahead of the whole file queued from one thread) and
 * SEQUENTIAL (which also drops pages behind) are options: on the
 * development VM, cold, gpt2, a bare loop with two threads populating read
 * 3.4-3.6 GB/s against 1.6-3.3 with WILLNEED and 0.9-2.0 with SEQUENTIAL;
 * in this loader the default ran 3.7-4.0 GB/s against 3.7 for WILLNEED +
 * SEQUENTIAL. MAP_POPULATE makes mmap itself fault everything in. The mode
 * reports which ran.
 *
 * Anonymous memory stays near zero: every tensor byte is a file-backed page
 * (RssFile), reclaimable, ~1x the model.
 *
 * What it deliberately does not do: copy anything, write to the mapping
 * (views are read-only, so a strided or misaligned tensor would be a copy,
 * and safetensors has neither), or keep mappings across loads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Linux 5.14's value, for C libraries whose headers predate it. */
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

#include "ckpt.h"
#include "host.h"
#include "loader.h"

struct st_mmap_opts {
	uint64_t threads;   /* touching threads; 0: one per CPU, at most 16 */
	bool populate;      /* MAP_POPULATE */
	bool willneed;      /* madvise(MADV_WILLNEED) */
	bool sequential;    /* madvise(MADV_SEQUENTIAL) */
	bool populate_read; /* madvise(MADV_POPULATE_READ) per touched slice */
};

static const struct cb_loader_opt st_mmap_opts[] = {
	{"threads", CB_OPT_U64, offsetof(struct st_mmap_opts, threads), 0, 64, "0",
	 "threads touching the pages (0: one per CPU, at most 16)"},
	{"populate", CB_OPT_BOOL, offsetof(struct st_mmap_opts, populate), 0, 0, "0",
	 "map with MAP_POPULATE (mmap faults every page in)"},
	{"willneed", CB_OPT_BOOL, offsetof(struct st_mmap_opts, willneed), 0, 0, "0",
	 "madvise(MADV_WILLNEED) on each mapping (start read-ahead of all of it)"},
	{"sequential", CB_OPT_BOOL, offsetof(struct st_mmap_opts, sequential), 0, 0, "0",
	 "madvise(MADV_SEQUENTIAL) on each mapping (larger read-ahead)"},
	{"populate-read", CB_OPT_BOOL, offsetof(struct st_mmap_opts, populate_read), 0, 0, "1",
	 "madvise(MADV_POPULATE_READ) on each slice before touching it (Linux 5.14+)"},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

/* Pages are touched in slices of this size, shared by the threads. */
#define TOUCH_SLICE ((size_t)4 << 20)

struct mapping {
	void *addr; /* MAP_FAILED or NULL when not mapped */
	size_t len;
};

/* Private state (zeroed by the harness); the mappings are the model and
 * live until close. */
struct st_mmap {
	struct cb_ckpt *ckpt;
	struct mapping *maps; /* one per checkpoint file */
	size_t n_maps;
	size_t *first_slice; /* per file: index of its first touch slice */
	size_t n_slices;
	char advice[96];      /* what the kernel was told, for the mode */
	uint64_t sink;        /* the touched bytes' sum, so reads are kept */
	bool populate_read;   /* the option, for the touching threads */
	int populate_refused; /* slices whose MADV_POPULATE_READ failed (old kernel) */
};

static int st_mmap_open(const struct cb_loader *self, void *priv, const struct cb_load_ctx *ctx,
			struct cb_error *err)
{
	(void)self;
	(void)priv, (void)ctx, (void)err;
	return CB_OK;
}

static int map_files(struct st_mmap *s, const struct st_mmap_opts *o, struct cb_error *err)
{
	s->maps = calloc(s->ckpt->n_files ? s->ckpt->n_files : 1, sizeof *s->maps);
	s->first_slice = calloc(s->ckpt->n_files + 1, sizeof *s->first_slice);
	if (!s->maps || !s->first_slice)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	s->n_maps = s->ckpt->n_files;
	for (size_t i = 0; i < s->n_maps; i++) {
		const struct cb_ckpt_file *f = &s->ckpt->files[i];
		if (f->size > SIZE_MAX)
			return CB_FAIL(err, CB_ELIMIT, f->path, NULL, "file larger than memory");
		s->first_slice[i] = s->n_slices;
		s->n_slices += (size_t)f->size / TOUCH_SLICE + 1;
		int fd = open(f->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return CB_FAIL_ERRNO(err, errno, f->path, "open");
		s->maps[i].len = (size_t)f->size;
		/* The mapping outlives the descriptor. */
		void *p = f->size ? mmap(NULL, (size_t)f->size, PROT_READ,
					 MAP_SHARED | (o->populate ? MAP_POPULATE : 0), fd, 0)
				  : NULL;
		int saved = errno;
		close(fd);
		if (p == MAP_FAILED)
			return CB_FAIL_ERRNO(err, saved, f->path, "mmap");
		s->maps[i].addr = p;
		if (p && o->sequential)
			(void)madvise(p, (size_t)f->size, MADV_SEQUENTIAL); /* hints */
		if (p && o->willneed)
			(void)madvise(p, (size_t)f->size, MADV_WILLNEED);
	}
	s->first_slice[s->n_maps] = s->n_slices;
	return CB_OK;
}

/* Touch slice i: which file by binary search, then one read per page. */
static int touch_slice(void *arg, size_t i, struct cb_error *err)
{
	struct st_mmap *s = arg;
	(void)err;
	size_t lo = 0, hi = s->n_maps;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->first_slice[mid] <= i)
			lo = mid;
		else
			hi = mid;
	}
	const struct mapping *m = &s->maps[lo];
	size_t off = (i - s->first_slice[lo]) * TOUCH_SLICE;
	if (m->addr && off < m->len) {
		size_t len = m->len - off < TOUCH_SLICE ? m->len - off : TOUCH_SLICE;
		/* Slices start on TOUCH_SLICE multiples of a page-aligned mapping,
		 * so the range is page-aligned as madvise needs. MADV_POPULATE_READ
		 * faults every page of the slice in and maps it, which is what a
		 * read of one byte per page does, so a slice it populated is not
		 * read again (on the development VM that second pass cost ~2 us a
		 * page in TLB misses, more than the population). Refused (EINVAL
		 * before 5.14): one read per page faults them in. */
		if (s->populate_read &&
		    madvise((char *)m->addr + off, len, MADV_POPULATE_READ) == 0)
			return CB_OK;
		if (s->populate_read)
			__atomic_fetch_add(&s->populate_refused, 1, __ATOMIC_RELAXED);
		uint64_t v = cb_host_touch_pages((const char *)m->addr + off, len);
		__atomic_fetch_add(&s->sink, v, __ATOMIC_RELAXED);
	}
	return CB_OK;
}

static int st_mmap_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
			struct cb_error *err)
{
	struct st_mmap *s = priv;
	const struct st_mmap_opts *o = ctx->opts;
	snprintf(s->advice, sizeof s->advice, "%s%s%s", o->populate ? "MAP_POPULATE, " : "",
		 o->willneed ? "MADV_WILLNEED, " : "", o->sequential ? "MADV_SEQUENTIAL, " : "");
	s->populate_read = o->populate_read;
	/* No init phase: a zero-copy load allocates no model. */
	cb_loader_phase(ctx, CB_PHASE_READ);
	int rc = cb_ckpt_open(ctx->path, CB_FORMAT_SAFETENSORS, &s->ckpt, err);
	if (rc == CB_OK)
		rc = map_files(s, o, err);
	/* The views: model tensors point into the mappings. */
	for (size_t i = 0; rc == CB_OK && i < ctx->arch->n_tensors; i++) {
		const struct cb_manifest_tensor *want = &ctx->arch->tensors[i];
		const struct cb_ckpt_tensor *have = cb_ckpt_find(s->ckpt, want->name);
		rc = cb_host_match(want, have, false, s->ckpt->path, err);
		if (rc != CB_OK)
			break;
		const struct mapping *m = &s->maps[have->file];
		/* An empty tensor in an empty data section still needs a non-NULL
		 * pointer: any address in the mapping's place will do. */
		model->tensors[i].data = m->addr ? (char *)m->addr + have->offset : (void *)s;
		model->tensors[i].location = CB_LOC_HOST;
	}
	/* Still the read phase: faulting the pages in is where the bytes are
	 * read from the file (or found in the page cache). */
	if (rc == CB_OK)
		rc = cb_host_parallel(cb_host_threads(o->threads), s->n_slices, touch_slice, s,
				      err);
	cb_loader_phase(ctx, CB_PHASE_NONE);
	return rc;
}

static int st_mmap_control(void *priv, int op, void *arg, struct cb_error *err)
{
	struct st_mmap *s = priv;
	(void)err;
	if (op != CB_LOADER_CTL_MODE)
		return CB_EUNSUPPORTED;
	const char *populate = !s->populate_read ? "every page touched"
			       : s->populate_refused
				       ? "MADV_POPULATE_READ refused (kernel), every page touched"
				       : "every page populated (MADV_POPULATE_READ)";
	snprintf(arg, 256, "mmap shared read-only, %s%zu files, %s", s->advice, s->n_maps,
		 populate);
	return CB_OK;
}

static void st_mmap_close(void *priv)
{
	struct st_mmap *s = priv;
	for (size_t i = 0; s->maps && i < s->n_maps; i++)
		if (s->maps[i].addr && s->maps[i].addr != MAP_FAILED)
			munmap(s->maps[i].addr, s->maps[i].len);
	free(s->maps);
	free(s->first_slice);
	cb_ckpt_free(s->ckpt);
}

const struct cb_loader cb_loader_safetensors_mmap = {
	.abi = CB_LOADER_ABI,
	.name = "safetensors-mmap",
	.summary = "map each file read-only shared, tensors are views, every page touched",
	.format = CB_FORMAT_SAFETENSORS,
	.device = CB_DEVICE_CPU,
	.caps = CB_CAP_HOST_MEM | CB_CAP_ZERO_COPY | CB_CAP_THREADS,
	.opts = st_mmap_opts,
	.opts_size = sizeof(struct st_mmap_opts),
	.priv_size = sizeof(struct st_mmap),
	.open = st_mmap_open,
	.load = st_mmap_load,
	.close = st_mmap_close,
	.control = st_mmap_control,
};
