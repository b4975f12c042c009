#include "host.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/fault.h"
#include "engine/read_engine.h"
#include "storage_records.h"
#include "tensor_gather.h"

/* Tensors from this size live in the model's arena (cb_host_model_alloc);
 * smaller ones come from malloc, as in a framework's allocator. */
#define OWN_MAP_MIN (1u << 20)
/* The transparent huge page size on x86-64 and most arm64 kernels. */
#define HUGE_PAGE ((size_t)2 << 20)
/* The initialiser writes the model in slices of this size, shared by the
 * threads, so one large tensor is still spread over all of them. */
#define TOUCH_SLICE ((size_t)8 << 20)

/* ------------------------------------------------------------ parallel */

struct par {
	cb_host_item_fn fn;
	void *arg;
	size_t n;
	atomic_size_t next;
	atomic_int failed;
	pthread_mutex_t lock; /* guards err */
	struct cb_error *err;
};

static void *par_worker(void *p)
{
	struct par *w = p;
	struct cb_error local = CB_ERROR_INIT;
	for (;;) {
		size_t i = atomic_fetch_add(&w->next, 1);
		if (i >= w->n || atomic_load(&w->failed))
			break;
		int rc = w->fn(w->arg, i, &local);
		if (rc != CB_OK) {
			if (local.code == CB_OK)
				CB_FAIL(&local, rc, NULL, NULL, "a worker failed");
			atomic_store(&w->failed, 1);
			pthread_mutex_lock(&w->lock);
			if (w->err && w->err->code == CB_OK)
				*w->err = local;
			pthread_mutex_unlock(&w->lock);
			break;
		}
	}
	return NULL;
}

int cb_host_parallel(unsigned threads, size_t n, cb_host_item_fn fn, void *arg,
		     struct cb_error *err)
{
	struct par w = {.fn = fn, .arg = arg, .n = n, .err = err};
	if (pthread_mutex_init(&w.lock, NULL) != 0)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "cannot create a mutex");
	pthread_t tids[CB_ENGINE_MAX_THREADS];
	unsigned started = 0;
	if (threads > CB_ENGINE_MAX_THREADS)
		threads = CB_ENGINE_MAX_THREADS;
	/* Fewer threads than asked still finish the work: creation failures
	 * are not errors. */
	while (started + 1 < threads && started + 1 < n &&
	       pthread_create(&tids[started], NULL, par_worker, &w) == 0)
		started++;
	par_worker(&w);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	pthread_mutex_destroy(&w.lock);
	if (atomic_load(&w.failed))
		return err && err->code != CB_OK ? (int)err->code : CB_EIO;
	return CB_OK;
}

/* --------------------------------------------------------------- model */

struct touch_job {
	struct cb_host_model *hm;
	const struct cb_manifest *arch;
	size_t *first_slice; /* per tensor: index of its first slice */
};

/* Slice i: find its tensor by binary search over first_slice. */
static int touch_slice(void *arg, size_t i, struct cb_error *err)
{
	const struct touch_job *j = arg;
	(void)err;
	size_t lo = 0, hi = j->hm->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (j->first_slice[mid] <= i)
			lo = mid;
		else
			hi = mid;
	}
	size_t nbytes = (size_t)j->arch->tensors[lo].nbytes;
	size_t off = (i - j->first_slice[lo]) * TOUCH_SLICE;
	if (off < nbytes)
		memset((char *)j->hm->data[lo] + off, 0,
		       nbytes - off < TOUCH_SLICE ? nbytes - off : TOUCH_SLICE);
	return CB_OK;
}

static int touch_model(struct cb_host_model *hm, const struct cb_manifest *arch, unsigned threads,
		       struct cb_error *err)
{
	size_t *first = calloc(hm->n ? hm->n : 1, sizeof *first);
	if (!first)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	size_t slices = 0;
	for (size_t i = 0; i < hm->n; i++) {
		first[i] = slices;
		/* an empty tensor still takes one (empty) slice, which keeps
		 * first[] strictly increasing for the search */
		slices += (size_t)arch->tensors[i].nbytes / TOUCH_SLICE + 1;
	}
	struct touch_job j = {hm, arch, first};
	int rc = cb_host_parallel(threads, slices, touch_slice, &j, err);
	free(first);
	return rc;
}

/* Large tensors are carved, page-aligned, from one anonymous mapping for
 * the whole model, its length a whole number of huge pages when `thp`:
 * every byte of the model can then be backed by 2 MiB pages with at most
 * one partial page of waste. (A mapping per tensor left each tensor whose
 * size is not a multiple of 2 MiB with small pages at its edges: ~5% of a
 * 256 MiB llama, which on the development VM, where small pages are ~10x
 * slower to copy into, made one reading thread take 1.7x as long as the
 * other.) Small tensors are malloc'd, as a framework's allocator would. */
int cb_host_model_alloc(struct cb_host_model *hm, const struct cb_manifest *arch,
			struct cb_model *model, bool touch, bool thp, unsigned threads,
			struct cb_error *err)
{
	if (cb_fault_alloc())
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory for the model (injected)");
	size_t n = arch->n_tensors;
	hm->data = calloc(n ? n : 1, sizeof *hm->data);
	hm->in_arena = calloc(n ? n : 1, sizeof *hm->in_arena);
	if (!hm->data || !hm->in_arena)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "cannot allocate the model's table");
	hm->n = n;
	size_t page = (size_t)sysconf(_SC_PAGESIZE), arena = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t nbytes = arch->tensors[i].nbytes;
		if (nbytes < OWN_MAP_MIN)
			continue;
		if (nbytes > SIZE_MAX - page ||
		    (nbytes + page - 1) / page * page > SIZE_MAX - arena)
			return CB_FAIL(err, CB_ELIMIT, NULL, arch->tensors[i].name,
				       "the model is larger than the address space");
		arena += (size_t)(nbytes + page - 1) / page * page;
	}
	if (thp && arena > SIZE_MAX - HUGE_PAGE)
		return CB_FAIL(err, CB_ELIMIT, NULL, NULL,
			       "the model is larger than the address space");
	if (thp) /* whole huge pages: the kernel then aligns the mapping to one */
		arena = (arena + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
	if (arena) {
		void *p = mmap(NULL, arena, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			       0);
		if (p == MAP_FAILED)
			return CB_FAIL(err, CB_ENOMEM, NULL, NULL,
				       "cannot map %zu bytes for the model", arena);
		hm->arena = p;
		hm->arena_len = arena;
		if (thp) /* a hint: refused or unsupported changes nothing */
			(void)madvise(p, arena, MADV_HUGEPAGE);
	}
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t nbytes = arch->tensors[i].nbytes;
		if (nbytes >= OWN_MAP_MIN) {
			hm->data[i] = (char *)hm->arena + used;
			hm->in_arena[i] = true;
			used += (size_t)(nbytes + page - 1) / page * page;
		} else if (posix_memalign(&hm->data[i], 64, nbytes ? (size_t)nbytes : 1) != 0) {
			/* nbytes 0 still gets a pointer: NULL means "failed" */
			hm->data[i] = NULL;
			return CB_FAIL(err, CB_ENOMEM, NULL, arch->tensors[i].name,
				       "cannot allocate %llu bytes", (unsigned long long)nbytes);
		}
		model->tensors[i].data = hm->data[i];
		model->tensors[i].location = CB_LOC_HOST;
	}
	return touch ? touch_model(hm, arch, threads, err) : CB_OK;
}

void cb_host_model_free(struct cb_host_model *hm)
{
	for (size_t i = 0; hm->data && i < hm->n; i++)
		if (!hm->in_arena[i])
			free(hm->data[i]);
	if (hm->arena)
		munmap(hm->arena, hm->arena_len);
	free(hm->data);
	free(hm->in_arena);
	*hm = (struct cb_host_model){0};
}

void cb_host_model_release(struct cb_host_model *hm, size_t i, uint64_t nbytes)
{
	if (!hm->data || i >= hm->n || !hm->data[i])
		return;
	if (!hm->in_arena[i]) {
		free(hm->data[i]);
	} else if (nbytes) {
		/* page-aligned and page-rounded in the arena (cb_host_model_alloc) */
		size_t page = (size_t)sysconf(_SC_PAGESIZE);
		(void)madvise(hm->data[i], ((size_t)nbytes + page - 1) / page * page,
			      MADV_DONTNEED);
	}
	hm->data[i] = NULL;
	hm->in_arena[i] = false;
}

int cb_host_open_ckpt_files(struct cb_engine *e, const struct cb_ckpt *ckpt, struct cb_error *err)
{
	const char **paths = calloc(ckpt->n_files ? ckpt->n_files : 1, sizeof *paths);
	if (!paths)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < ckpt->n_files; i++)
		paths[i] = ckpt->files[i].path;
	int rc = cb_engine_open(e, paths, ckpt->n_files, err);
	free(paths);
	return rc;
}

/* -------------------------------------------------------------- tensors */

int cb_host_match(const struct cb_manifest_tensor *want, const struct cb_ckpt_tensor *have,
		  bool views_ok, const char *path, struct cb_error *err)
{
	if (!have)
		return CB_FAIL(err, CB_EMISMATCH, path, want->name,
			       "the checkpoint lacks a tensor of the model");
	bool same = have->dtype == want->dtype && have->rank == want->rank &&
		    have->nbytes == want->nbytes;
	for (uint32_t d = 0; same && d < want->rank; d++)
		same = have->shape[d] == want->shape[d];
	if (!same)
		return CB_FAIL(err, CB_EMISMATCH, path, want->name,
			       "the checkpoint's tensor differs in dtype or shape from the model");
	if (have->stride && !views_ok)
		return CB_FAIL(err, CB_EUNSUPPORTED, path, want->name,
			       "a strided view, which this loader cannot read into place");
	return CB_OK;
}

int cb_host_gather_part(void *dst, const void *storage, const struct cb_ckpt_tensor *t,
			const struct cb_slice_tensor *part, struct cb_error *err)
{
	if (!part)
		return cb_tensor_gather(dst, storage, t, err);
	if (!t->stride || t->numel == 0) {
		uint64_t start;
		int rc = cb_storage_start(t, &start, err);
		if (rc == CB_OK)
			cb_slice_extract(dst, (const uint8_t *)storage + (t->offset - start), part);
		return rc;
	}
	void *whole = malloc(t->nbytes ? (size_t)t->nbytes : 1);
	if (!whole)
		return CB_FAIL(err, CB_ENOMEM, NULL, t->name, "no memory to gather a view");
	int rc = cb_tensor_gather(whole, storage, t, err);
	if (rc == CB_OK)
		cb_slice_extract(dst, whole, part);
	free(whole);
	return rc;
}
