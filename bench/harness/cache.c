/* Page-cache eviction, warming and residency (see cache.h for the method
 * and its limits). */
#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
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

/* The state the last preparation made (cache.h, cb_cache_last_state). */
static struct cb_cache_state last_state;
static bool last_state_ok;

static int evict_files(const char *const *paths, size_t n, bool drop_caches, struct cb_error *err)
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

/* Measures what a preparation made and keeps it as the last state. */
static int keep_state(const char *const *paths, size_t n, int rc, struct cb_error *err)
{
	last_state_ok = false;
	if (rc == CB_OK)
		rc = cb_cache_state(paths, n, &last_state, err);
	last_state_ok = rc == CB_OK;
	return rc;
}

int cb_cache_evict(const char *const *paths, size_t n, bool drop_caches, struct cb_error *err)
{
	return keep_state(paths, n, evict_files(paths, n, drop_caches, err), err);
}

const struct cb_cache_state *cb_cache_last_state(void)
{
	return last_state_ok ? &last_state : NULL;
}

/* The engine hands every chunk to its worker's scratch buffer: warming
 * keeps nothing, it only leaves the pages in the cache. */
static int warm_buffer(void *ctx, unsigned worker, const struct cb_read_chunk *c, void **buf,
		       struct cb_error *err)
{
	(void)c, (void)err;
	*buf = (unsigned char *)ctx + (size_t)worker * WARM_CHUNK;
	return CB_OK;
}

static int warm_consume(void *ctx, unsigned worker, const struct cb_read_chunk *c, void *buf,
			struct cb_error *err)
{
	(void)ctx, (void)worker, (void)c, (void)buf, (void)err;
	return CB_OK;
}

/* Evicted, then one read by the read engine on one thread per CPU in
 * contiguous shares of large chunks (cache.h says why this one way), then
 * the state measured. */
int cb_cache_warm(const char *const *paths, size_t n, struct cb_error *err)
{
	const struct cb_engine_config cfg = {.threads = cb_engine_threads(0), .chunk = WARM_CHUNK};
	void *buf = malloc(WARM_CHUNK * (size_t)cfg.threads);
	struct cb_read_item *items = calloc(n ? n : 1, sizeof *items);
	struct cb_engine engine = {0};
	int rc = buf && items
			 ? CB_OK
			 : CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory for the warming buffer");
	if (rc == CB_OK)
		rc = evict_files(paths, n, false, err);
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
	return keep_state(paths, n, rc, err);
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

/* Opens `path` read-only and says its size; the descriptor is the
 * caller's to close (none is left open on failure). */
static int open_sized(const char *path, int *fd_out, uint64_t *size_out, struct cb_error *err)
{
	int rc = open_file(path, O_RDONLY, fd_out, err);
	if (rc != CB_OK)
		return rc;
	struct stat st;
	if (fstat(*fd_out, &st) != 0) {
		rc = CB_FAIL_ERRNO(err, errno, path, "fstat failed");
		close(*fd_out);
		*fd_out = -1;
		return rc;
	}
	*size_out = (uint64_t)st.st_size;
	return CB_OK;
}

/* Resident and total bytes of one file. A partly cached last page counts as
 * the file's remaining bytes, not a whole page. */
static int residency_one(const char *path, uint64_t page, uint64_t *resident_out,
			 uint64_t *total_out, struct cb_error *err)
{
	int fd = -1;
	uint64_t size = 0, pages = 0;
	int rc = open_sized(path, &fd, &size, err);
	if (rc != CB_OK)
		return rc;
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

/* ------------------------------------------------------------ folios */

/* Linux's page-flag bits in /proc/kpageflags (include/uapi/linux/
 * kernel-page-flags.h): a large folio is a compound page, its first page
 * the head, every other page a tail. */
#define KPF_COMPOUND_HEAD 15
#define KPF_COMPOUND_TAIL 16
/* /proc/PID/pagemap: bit 63 present, bits 0-54 the page frame (0 when the
 * reader lacks CAP_SYS_ADMIN). */
#define PM_PRESENT (UINT64_C(1) << 63)
#define PM_PFN_MASK ((UINT64_C(1) << 55) - 1)

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14, for older headers */
#endif

/* One walk's open /proc files and the folio being counted. */
struct folio_walk {
	int pagemap, kpageflags;
	uint64_t run_pages;    /* pages of the folio being counted; 0: none */
	uint64_t run_last_pfn; /* its last page's frame */
	struct cb_cache_state *st;
};

static void folio_close(struct folio_walk *w)
{
	if (!w->run_pages)
		return;
	unsigned k = 0;
	while (k + 1 < CB_CACHE_FOLIO_ORDERS && (UINT64_C(1) << k) < w->run_pages)
		k++;
	w->st->folios[k]++;
	w->run_pages = 0;
}

/* The next cached page in file order: continues the folio being counted
 * when it is a tail page right after it, else starts a new one (a head, a
 * single page, or a tail whose head lies outside what is looked at). */
static void folio_page(struct folio_walk *w, uint64_t pfn, uint64_t flags)
{
	bool tail = flags & (UINT64_C(1) << KPF_COMPOUND_TAIL);
	if (tail && w->run_pages && pfn == w->run_last_pfn + 1) {
		w->run_pages++;
		w->run_last_pfn = pfn;
		return;
	}
	folio_close(w);
	w->run_pages = 1;
	w->run_last_pfn = pfn;
}

/* Maps in the cached pages of [map, map + len) (vec from mincore) and no
 * other: MADV_POPULATE_READ per run of cached pages; MADV_RANDOM, set by
 * the caller, keeps those faults from reading ahead. */
static int map_cached(unsigned char *map, size_t npages, size_t page, const unsigned char *vec,
		      const char *path, struct cb_error *err)
{
	for (size_t i = 0; i < npages;) {
		if (!(vec[i] & 1)) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < npages && (vec[j] & 1))
			j++;
		if (madvise(map + i * page, (j - i) * page, MADV_POPULATE_READ) != 0) {
			if (errno != EINVAL && errno != ENOSYS)
				return CB_FAIL_ERRNO(err, errno, path,
						     "madvise(MADV_POPULATE_READ) of cached pages");
			/* Before Linux 5.14: one read per cached page. */
			for (size_t k = i; k < j; k++)
				(void)*(volatile unsigned char *)(map + k * page);
		}
		i = j;
	}
	return CB_OK;
}

/* The folios of one window of a file, mapped at `map` (npages pages). */
static int folio_window(struct folio_walk *w, unsigned char *map, size_t npages, size_t page,
			const unsigned char *vec, const char *path, struct cb_error *err)
{
	uint64_t *pm = malloc(npages * sizeof *pm);
	uint64_t *fl = malloc(npages * sizeof *fl);
	int rc = pm && fl ? CB_OK : CB_FAIL(err, CB_ENOMEM, path, NULL, "no memory for pagemap");
	uint64_t at = (uint64_t)((uintptr_t)map / page) * sizeof *pm;
	if (rc == CB_OK)
		rc = cb_pread_full(w->pagemap, pm, npages * sizeof *pm, at, "/proc/self/pagemap",
				   err);
	/* The flags of each cached page, read for runs of consecutive frames
	 * at once (a large folio is one run). */
	for (size_t i = 0; rc == CB_OK && i < npages;) {
		uint64_t pfn = pm[i] & PM_PFN_MASK;
		if (!(vec[i] & 1) || !(pm[i] & PM_PRESENT) || !pfn) {
			fl[i++] = 0;
			continue;
		}
		size_t j = i + 1;
		while (j < npages && (vec[j] & 1) && (pm[j] & PM_PRESENT) &&
		       (pm[j] & PM_PFN_MASK) == pfn + (j - i))
			j++;
		rc = cb_pread_full(w->kpageflags, fl + i, (j - i) * sizeof *fl, pfn * sizeof *fl,
				   "/proc/kpageflags", err);
		i = j;
	}
	for (size_t i = 0; rc == CB_OK && i < npages; i++) {
		uint64_t pfn = pm[i] & PM_PFN_MASK;
		if (!(vec[i] & 1) || !(pm[i] & PM_PRESENT) || !pfn) {
			folio_close(w); /* a page not cached (or gone since) ends a folio */
			continue;
		}
		folio_page(w, pfn, fl[i]);
	}
	folio_close(w);
	free(pm);
	free(fl);
	return rc;
}

/* Resident pages and, with w, the folios of one file. */
static int state_one(const char *path, size_t page, struct folio_walk *w, uint64_t *resident_out,
		     uint64_t *total_out, struct cb_error *err)
{
	int fd = -1;
	uint64_t size = 0, pages = 0;
	int rc = open_sized(path, &fd, &size, err);
	if (rc != CB_OK)
		return rc;
	unsigned char *vec = malloc(MINCORE_WINDOW / page);
	if (!vec)
		rc = CB_FAIL(err, CB_ENOMEM, path, NULL, "no memory for the mincore vector");
	for (uint64_t off = 0; rc == CB_OK && off < size; off += MINCORE_WINDOW) {
		size_t len = (size_t)(size - off < MINCORE_WINDOW ? size - off : MINCORE_WINDOW);
		size_t npages = (len + page - 1) / page;
		unsigned char *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)off);
		if (map == MAP_FAILED) {
			rc = CB_FAIL_ERRNO(err, errno, path, "mmap for the cache state failed");
			break;
		}
		(void)madvise(map, len, MADV_RANDOM); /* a hint; see map_cached */
		if (mincore(map, len, vec) != 0)
			rc = CB_FAIL_ERRNO(err, errno, path, "mincore failed");
		for (size_t i = 0; rc == CB_OK && i < npages; i++)
			pages += vec[i] & 1;
		if (rc == CB_OK && w)
			rc = map_cached(map, npages, page, vec, path, err);
		if (rc == CB_OK && w)
			rc = folio_window(w, map, npages, page, vec, path, err);
		munmap(map, len);
	}
	free(vec);
	close(fd);
	uint64_t bytes = pages * page;
	*resident_out = bytes < size ? bytes : size;
	*total_out = size;
	return rc;
}

/* Opens the /proc files of the folio walk; false, with the note, where the
 * kernel or the privileges do not allow it. */
static bool folio_walk_open(struct folio_walk *w, struct cb_cache_state *st)
{
	*w = (struct folio_walk){.pagemap = -1, .kpageflags = -1, .st = st};
	w->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	w->kpageflags = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	if (w->pagemap >= 0 && w->kpageflags >= 0) {
		/* Page frames read as 0 without CAP_SYS_ADMIN: look at one of
		 * our own pages first. */
		static volatile uint64_t probe = 1;
		uint64_t e = 0;
		size_t page = (size_t)sysconf(_SC_PAGESIZE);
		off_t at = (off_t)((uintptr_t)&probe / page * sizeof e);
		probe++;
		if (pread(w->pagemap, &e, sizeof e, at) == (ssize_t)sizeof e && (e & PM_PFN_MASK))
			return true;
		snprintf(st->note, sizeof st->note,
			 "folio sizes unknown: page frames are hidden without CAP_SYS_ADMIN");
	} else {
		snprintf(st->note, sizeof st->note,
			 "folio sizes unknown: cannot open %s (%s; needs root)",
			 w->pagemap < 0 ? "/proc/self/pagemap" : "/proc/kpageflags",
			 strerror(errno));
	}
	if (w->pagemap >= 0)
		close(w->pagemap);
	if (w->kpageflags >= 0)
		close(w->kpageflags);
	w->pagemap = w->kpageflags = -1;
	return false;
}

int cb_cache_state(const char *const *paths, size_t n, struct cb_cache_state *out,
		   struct cb_error *err)
{
	*out = (struct cb_cache_state){.resident = NAN, .method = "mincore"};
	struct folio_walk w;
	bool folios = folio_walk_open(&w, out);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t resident = 0, total = 0;
	int rc = CB_OK;
	for (size_t i = 0; rc == CB_OK && i < n; i++) {
		uint64_t r = 0, t = 0;
		rc = state_one(paths[i], page, folios ? &w : NULL, &r, &t, err);
		resident += r;
		total += t;
	}
	if (folios) {
		close(w.pagemap);
		close(w.kpageflags);
	}
	out->resident = total ? (double)resident / (double)total : 1.0;
	out->folios_known = folios && rc == CB_OK;
	if (out->folios_known)
		out->method = "pagemap+kpageflags";
	return rc;
}

json_t *cb_cache_state_json(const struct cb_cache_state *s)
{
	if (!s)
		return json_null();
	json_t *folios = json_null();
	if (s->folios_known) {
		folios = json_object();
		for (unsigned k = 0; k < CB_CACHE_FOLIO_ORDERS; k++) {
			char kib[24];
			snprintf(kib, sizeof kib, "%u", 4u << k);
			if (s->folios[k])
				json_object_set_new(folios, kib,
						    json_integer((json_int_t)s->folios[k]));
		}
	}
	return json_pack("{s:o,s:o,s:s,s:o}", "resident",
			 isfinite(s->resident) ? json_real(s->resident) : json_null(), "folio_kib",
			 folios, "method", s->method, "note",
			 *s->note ? json_string(s->note) : json_null());
}
