/* Page-cache eviction, warming and residency (see cache.h for the method
 * and its limits). */
#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/read_engine.h"
#include "fileio.h"

/* Large preads for warming: few syscalls, and readahead keeps up. */
#define WARM_CHUNK (8u << 20)

/* mincore looks at the file through windows of this size, so a file larger
 * than the address space we care to reserve still works. */
#define MINCORE_WINDOW (UINT64_C(1) << 30)

/* cachestat(2), Linux 6.5+. glibc has no wrapper yet, so the structures are
 * declared here as the kernel's uapi defines them. 451 is the number on
 * every architecture that uses the generic table (x86_64 and aarch64). */
#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif

struct cachestat_range {
	uint64_t off;
	uint64_t len; /* 0: to the end of the file */
};

struct cachestat_counts {
	uint64_t nr_cache;
	uint64_t nr_dirty;
	uint64_t nr_writeback;
	uint64_t nr_evicted;
	uint64_t nr_recently_evicted;
};

static int open_file(const char *path, int flags, int *fd_out, struct cb_error *err)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return CB_FAIL_ERRNO(err, errno, path, "cannot open");
	*fd_out = fd;
	return CB_OK;
}

/* Root only; a refusal (a container's read-only /proc/sys) is ignored: the
 * per-file eviction has already run and the residency check is the proof. */
static void drop_all_caches(void)
{
	if (geteuid() != 0)
		return;
	sync();
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "1", 1) < 0) {
		/* ignored, see above */
	}
	close(fd);
}

static int evict_one(const char *path, struct cb_error *err)
{
	int fd = -1;
	int rc = open_file(path, O_RDONLY, &fd, err);
	if (rc != CB_OK)
		return rc;
	/* Dirty pages are not dropped by DONTNEED, so write them out first.
	 * fdatasync on a read-only descriptor is allowed on Linux; EINVAL
	 * means the file cannot be synced at all (a special file), which
	 * leaves nothing dirty to worry about. */
	if (fdatasync(fd) != 0 && errno != EINVAL && errno != EROFS) {
		rc = CB_FAIL_ERRNO(err, errno, path, "fdatasync before eviction failed");
		close(fd);
		return rc;
	}
	int adv = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	if (adv != 0)
		return CB_FAIL_ERRNO(err, adv, path, "posix_fadvise(DONTNEED) failed");
	return CB_OK;
}

int cb_cache_evict(const char *const *paths, size_t n, bool drop_caches, struct cb_error *err)
{
	for (size_t i = 0; i < n; i++) {
		int rc = evict_one(paths[i], err);
		if (rc != CB_OK)
			return rc;
	}
	if (drop_caches)
		drop_all_caches();
	return CB_OK;
}

/* The engine hands every chunk to the one scratch buffer: warming keeps
 * nothing, it only leaves the pages in the cache. */
static int warm_buffer(void *ctx, unsigned worker, const struct cb_read_chunk *c, void **buf,
		       struct cb_error *err)
{
	(void)worker, (void)c, (void)err;
	*buf = ctx;
	return CB_OK;
}

static int warm_consume(void *ctx, unsigned worker, const struct cb_read_chunk *c, void *buf,
			struct cb_error *err)
{
	(void)ctx, (void)worker, (void)c, (void)buf, (void)err;
	return CB_OK;
}

/* One sequential reader through the read engine, in large chunks, so the
 * warm state is made the same way whatever loader comes next. */
int cb_cache_warm(const char *const *paths, size_t n, struct cb_error *err)
{
	void *buf = malloc(WARM_CHUNK);
	struct cb_read_item *items = calloc(n ? n : 1, sizeof *items);
	struct cb_engine engine = {0};
	const struct cb_engine_config cfg = {.threads = 1, .chunk = WARM_CHUNK};
	int rc = buf && items
			 ? CB_OK
			 : CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory for the warming buffer");
	if (rc == CB_OK)
		rc = cb_engine_setup(&engine, &cfg, err);
	if (rc == CB_OK)
		rc = cb_engine_open(&engine, paths, n, err);
	for (size_t i = 0; rc == CB_OK && i < n; i++)
		items[i] = (struct cb_read_item){.file = (uint32_t)i, .len = engine.files[i].size};
	const struct cb_engine_consumer sink = {
		.ctx = buf, .buffer = warm_buffer, .consume = warm_consume};
	if (rc == CB_OK)
		rc = cb_engine_run(&engine, items, n, &sink, err);
	cb_engine_teardown(&engine);
	free(items);
	free(buf);
	return rc;
}

/* Resident pages by cachestat. Returns -ENOSYS (or another -errno) when the
 * syscall is unusable here, so the caller can fall back. */
static int resident_cachestat(int fd, uint64_t *pages_out)
{
	/* Tests force the fallback to check it on kernels that have both. */
	const char *force = getenv("CKPTBENCH_RESIDENCY");
	if (force && strcmp(force, "mincore") == 0)
		return -ENOSYS;
	struct cachestat_range range = {0, 0};
	struct cachestat_counts cs;
	memset(&cs, 0, sizeof cs);
	if (syscall(SYS_cachestat, (unsigned)fd, &range, &cs, 0u) != 0)
		return -errno;
	*pages_out = cs.nr_cache;
	return 0;
}

static int resident_mincore(int fd, uint64_t size, uint64_t page, uint64_t *pages_out,
			    const char *path, struct cb_error *err)
{
	unsigned char *vec = malloc(MINCORE_WINDOW / page);
	if (!vec)
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "no memory for the mincore vector");
	uint64_t pages = 0;
	int rc = CB_OK;
	for (uint64_t off = 0; off < size && rc == CB_OK; off += MINCORE_WINDOW) {
		size_t len = (size_t)(size - off < MINCORE_WINDOW ? size - off : MINCORE_WINDOW);
		/* A mapping takes no page-cache references until touched, so
		 * mapping to look does not change what it looks at. */
		void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)off);
		if (map == MAP_FAILED) {
			rc = CB_FAIL_ERRNO(err, errno, path, "mmap for mincore failed");
			break;
		}
		if (mincore(map, len, vec) != 0)
			rc = CB_FAIL_ERRNO(err, errno, path, "mincore failed");
		size_t npages = (len + page - 1) / page;
		for (size_t i = 0; i < npages && rc == CB_OK; i++)
			pages += vec[i] & 1;
		munmap(map, len);
	}
	free(vec);
	*pages_out = pages;
	return rc;
}

/* Resident and total bytes of one file. A partly cached last page counts as
 * the file's remaining bytes, not a whole page. */
static int residency_one(const char *path, uint64_t page, uint64_t *resident_out,
			 uint64_t *total_out, struct cb_error *err)
{
	int fd = -1;
	int rc = open_file(path, O_RDONLY, &fd, err);
	if (rc != CB_OK)
		return rc;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = CB_FAIL_ERRNO(err, errno, path, "fstat failed");
		close(fd);
		return rc;
	}
	uint64_t size = (uint64_t)st.st_size, pages = 0;
	if (size > 0 && resident_cachestat(fd, &pages) != 0)
		rc = resident_mincore(fd, size, page, &pages, path, err);
	close(fd);
	uint64_t bytes = pages > UINT64_MAX / page ? UINT64_MAX : pages * page;
	*resident_out = bytes < size ? bytes : size;
	*total_out = size;
	return rc;
}

int cb_cache_residency(const char *const *paths, size_t n, double *fraction_out,
		       struct cb_error *err)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t resident = 0, total = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t r = 0, t = 0;
		int rc = residency_one(paths[i], page, &r, &t, err);
		if (rc != CB_OK)
			return rc;
		resident += r;
		total += t;
	}
	*fraction_out = total ? (double)resident / (double)total : 1.0;
	return CB_OK;
}

const char *cb_cache_residency_method(void)
{
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return "mincore";
	uint64_t pages;
	int rc = resident_cachestat(fd, &pages);
	close(fd);
	return rc == 0 ? "cachestat" : "mincore";
}
