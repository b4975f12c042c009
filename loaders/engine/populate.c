#include "populate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "host.h"
#include "read_engine.h"

/* Linux 5.14's value, for C libraries whose headers predate it. */
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

/* Pages are made resident in slices of this size, shared by the threads. */
#define SLICE ((size_t)4 << 20)
/* EINTR/EAGAIN retries of one slice before it is read page by page. */
#define RETRIES 8

int cb_map_files(const struct cb_ckpt *ckpt, bool shared, const struct cb_populate_opts *o,
		 struct cb_mapped_file **maps, struct cb_error *err)
{
	struct cb_mapped_file *m = calloc(ckpt->n_files ? ckpt->n_files : 1, sizeof *m);
	*maps = m;
	if (!m)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	int flags = (shared ? MAP_SHARED : MAP_PRIVATE) | (o->map_populate ? MAP_POPULATE : 0);
	for (size_t i = 0; i < ckpt->n_files; i++) {
		const struct cb_ckpt_file *f = &ckpt->files[i];
		if (f->size > SIZE_MAX)
			return CB_FAIL(err, CB_ELIMIT, f->path, NULL, "file larger than memory");
		if (f->size == 0)
			continue;
		int fd = open(f->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return CB_FAIL_ERRNO(err, errno, f->path, "open");
		void *p = mmap(NULL, (size_t)f->size, PROT_READ, flags, fd, 0);
		int saved = errno;
		close(fd); /* the mapping keeps the file */
		if (p == MAP_FAILED)
			return CB_FAIL_ERRNO(err, saved, f->path, "mmap");
		m[i] = (struct cb_mapped_file){p, (size_t)f->size};
		if (o->sequential) /* hints: refused changes nothing */
			(void)madvise(p, (size_t)f->size, MADV_SEQUENTIAL);
		if (o->willneed)
			(void)madvise(p, (size_t)f->size, MADV_WILLNEED);
	}
	return CB_OK;
}

void cb_unmap_files(struct cb_mapped_file *maps, size_t n)
{
	for (size_t i = 0; maps && i < n; i++)
		if (maps[i].addr)
			munmap(maps[i].addr, maps[i].len);
	free(maps);
}

/* One page-aligned run of memory, merged from the caller's ranges. */
struct run {
	uintptr_t start, end;
	size_t first_slice; /* index of its first slice */
};

struct job {
	struct run *runs;
	size_t n_runs;
	bool populate_read;
	atomic_bool refused; /* MADV_POPULATE_READ is not in this kernel */
	atomic_size_t populated;
	atomic_uint_fast64_t sink;
};

static int by_start(const void *a, const void *b)
{
	const struct run *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* One read per page; returns their sum, which the caller keeps. */
static uint64_t touch_pages(const void *p, size_t len, size_t page)
{
	const volatile uint8_t *b = p;
	uint64_t sum = 0;
	for (size_t off = 0; off < len; off += page)
		sum += b[off];
	return sum;
}

/* MADV_POPULATE_READ on one slice: *done when it did it; CB_OK with *done
 * false when it is off, the kernel lacks it or it was interrupted throughout
 * (the caller reads the pages); else the error (EFAULT, EIO, ENOMEM: a
 * page the kernel cannot bring in, which a read would take as SIGBUS). */
static int populate_slice(struct job *j, void *addr, size_t len, bool *done, struct cb_error *err)
{
	*done = false;
	if (!j->populate_read || atomic_load_explicit(&j->refused, memory_order_relaxed))
		return CB_OK;
	for (int tries = 0; tries < RETRIES; tries++) {
		if (madvise(addr, len, MADV_POPULATE_READ) == 0) {
			*done = true;
			return CB_OK;
		}
		if (errno == EINVAL || errno == ENOSYS) { /* before Linux 5.14 */
			atomic_store(&j->refused, true);
			return CB_OK;
		}
		if (errno != EINTR && errno != EAGAIN)
			return CB_FAIL_ERRNO(err, errno, NULL,
					     "madvise(MADV_POPULATE_READ) of a mapped file");
	}
	return CB_OK; /* interrupted throughout: the reads do it */
}

static int do_slice(void *arg, size_t i, struct cb_error *err)
{
	struct job *j = arg;
	size_t lo = 0, hi = j->n_runs;
	while (hi - lo > 1) { /* the run that holds slice i */
		size_t mid = lo + (hi - lo) / 2;
		if (j->runs[mid].first_slice <= i)
			lo = mid;
		else
			hi = mid;
	}
	const struct run *r = &j->runs[lo];
	uintptr_t from = r->start + (i - r->first_slice) * SLICE;
	size_t len = r->end - from < SLICE ? (size_t)(r->end - from) : SLICE;
	bool done;
	int rc = populate_slice(j, (void *)from, len, &done, err);
	if (rc != CB_OK)
		return rc;
	if (done) {
		atomic_fetch_add_explicit(&j->populated, 1, memory_order_relaxed);
		return CB_OK;
	}
	uint64_t v = touch_pages((const void *)from, len, (size_t)sysconf(_SC_PAGESIZE));
	atomic_fetch_add_explicit(&j->sink, v, memory_order_relaxed);
	return CB_OK;
}

int cb_populate(const struct cb_populate_range *ranges, size_t n, const struct cb_populate_opts *o,
		struct cb_populate_stats *stats, struct cb_error *err)
{
	*stats = (struct cb_populate_stats){0};
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	struct run *runs = calloc(n ? n : 1, sizeof *runs);
	if (!runs)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!ranges[i].len)
			continue;
		uintptr_t a = (uintptr_t)ranges[i].addr, end;
		if (__builtin_add_overflow(a, ranges[i].len, &end) || end > UINTPTR_MAX - page) {
			free(runs);
			return CB_FAIL(err, CB_EINTERNAL, NULL, NULL,
				       "a range past the address space");
		}
		runs[k++] = (struct run){a / page * page, (end + page - 1) / page * page, 0};
	}
	qsort(runs, k, sizeof *runs, by_start);
	size_t merged = 0, slices = 0;
	for (size_t i = 0; i < k; i++) {
		if (merged && runs[i].start <= runs[merged - 1].end) {
			if (runs[i].end > runs[merged - 1].end)
				runs[merged - 1].end = runs[i].end;
			continue;
		}
		runs[merged++] = runs[i];
	}
	for (size_t i = 0; i < merged; i++) {
		runs[i].first_slice = slices;
		slices += (runs[i].end - runs[i].start + SLICE - 1) / SLICE;
		stats->bytes += runs[i].end - runs[i].start;
	}
	struct job j = {.runs = runs, .n_runs = merged, .populate_read = o->populate_read};
	int rc = cb_host_parallel(cb_engine_threads(o->threads), slices, do_slice, &j, err);
	stats->slices = slices;
	stats->populated = atomic_load(&j.populated);
	stats->refused = atomic_load(&j.refused);
	stats->sink = atomic_load(&j.sink);
	free(runs);
	return rc;
}

void cb_populate_describe(const struct cb_populate_opts *o, const struct cb_populate_stats *stats,
			  char *buf, size_t len)
{
	const char *how = !o->populate_read ? "every page touched"
			  : stats->refused
				  ? "MADV_POPULATE_READ refused (kernel), every page touched"
			  : stats->populated < stats->slices
				  ? "every page populated (MADV_POPULATE_READ; some slices touched)"
				  : "every page populated (MADV_POPULATE_READ)";
	snprintf(buf, len, "%s%s%s%s", o->map_populate ? "MAP_POPULATE, " : "",
		 o->willneed ? "MADV_WILLNEED, " : "", o->sequential ? "MADV_SEQUENTIAL, " : "",
		 how);
}
