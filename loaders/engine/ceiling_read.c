/* The read ceilings' reads (see ceiling_read.h for the methods). */
#include "ceiling_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "populate.h"
#include "read_engine.h"

/* The pread methods' read size: large, as the calibration's reads (few
 * calls; read-ahead keeps up). */
#define CEIL_CHUNK (UINT64_C(8) << 20)
/* io_uring's read size: 32 in flight of 1 MiB keep 32 MiB queued, plenty
 * for one disk, without a slot's bounce buffer growing large. */
#define CEIL_URING_CHUNK (UINT64_C(1) << 20)

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

const char *cb_ceiling_method_name(enum cb_ceiling_method m)
{
	static const char *const names[CB_CEIL_COUNT] = {
		[CB_CEIL_PREAD_1] = "pread-1",   [CB_CEIL_PREAD_N] = "pread-N",
		[CB_CEIL_WILLNEED] = "willneed", [CB_CEIL_URING_DIRECT] = "uring-direct",
		[CB_CEIL_POPULATE] = "populate", [CB_CEIL_MAP] = "map",
	};
	return m >= 0 && m < CB_CEIL_COUNT ? names[m] : "?";
}

bool cb_ceiling_method_buffered(enum cb_ceiling_method m)
{
	return m != CB_CEIL_POPULATE && m != CB_CEIL_MAP;
}

static uint64_t align_up(uint64_t v)
{
	return (v + CB_ENGINE_DIRECT_ALIGN - 1) / CB_ENGINE_DIRECT_ALIGN * CB_ENGINE_DIRECT_ALIGN;
}

size_t cb_ceiling_buffer_len(uint64_t bytes, size_t n)
{
	uint64_t len = bytes + (uint64_t)n * CB_ENGINE_DIRECT_ALIGN;
	return len > SIZE_MAX ? SIZE_MAX : (size_t)len;
}

/* The engine's methods: every file one item into its aligned place in
 * dest, one cb_engine_read for the set, timed from the first fadvise (for
 * willneed) to the last byte. Set-up (threads, bounce buffers, opens) is
 * outside the pass, as a loader's is outside its load. */
static int engine_pass(enum cb_ceiling_method m, const char *const *paths, size_t n,
		       unsigned threads, unsigned char *dest, size_t dest_len,
		       struct cb_ceiling_pass *out, struct cb_error *err)
{
	struct cb_engine_config cfg = {.threads = m == CB_CEIL_PREAD_1 ? 1 : threads,
				       .chunk = CEIL_CHUNK};
	if (m == CB_CEIL_URING_DIRECT)
		cfg = (struct cb_engine_config){.threads = 1,
						.chunk = CEIL_URING_CHUNK,
						.direct = true,
						.uring = true,
						.qd = CB_CEIL_URING_QD};
	struct cb_engine e = {0};
	struct cb_read_item *items = calloc(n ? n : 1, sizeof *items);
	int rc = items ? cb_engine_setup(&e, &cfg, err)
		       : CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	if (rc == CB_OK)
		rc = cb_engine_open(&e, paths, n, err);
	uint64_t at = 0;
	for (size_t i = 0; rc == CB_OK && i < n; i++) {
		uint64_t size = e.files[i].size;
		if (at + size > dest_len) {
			rc = CB_FAIL(err, CB_ELIMIT, paths[i], NULL,
				     "the files are larger than the %zu-byte read buffer",
				     dest_len);
			break;
		}
		items[i] =
			(struct cb_read_item){.file = (uint32_t)i, .len = size, .dest = dest + at};
		out->bytes += size;
		at = align_up(at + size);
	}
	if (rc == CB_OK && m == CB_CEIL_URING_DIRECT && !e.cfg.uring) {
		out->skipped = true;
		snprintf(out->note, sizeof out->note, "uring-direct: %s", e.report.uring_note);
	}
	if (rc == CB_OK && !out->skipped) {
		double t0 = now_s();
		/* A hint: a refusal leaves a plain pread-N pass. */
		for (size_t i = 0; m == CB_CEIL_WILLNEED && i < n; i++)
			(void)posix_fadvise(e.files[i].fd, 0, 0, POSIX_FADV_WILLNEED);
		rc = cb_engine_read(&e, items, n, err);
		out->seconds = now_s() - t0;
	}
	/* What ran is checked after the pass: the engine falls back to pread
	 * threads or buffered reads without failing, and such a pass is not
	 * this method's. */
	if (rc == CB_OK && m == CB_CEIL_URING_DIRECT && !out->skipped &&
	    (!e.report.uring || e.report.direct_files < n || e.report.direct_refused)) {
		out->skipped = true;
		snprintf(out->note, sizeof out->note, "uring-direct: %s",
			 !e.report.uring ? (*e.report.uring_note ? e.report.uring_note
								 : "io_uring did not run")
					 : "O_DIRECT refused by the filesystem");
	}
	cb_engine_teardown(&e);
	free(items);
	return rc;
}

/* The mapping methods: every file mapped whole, read-only and shared (as
 * safetensors maps), then made resident by cb_populate on `threads`
 * threads; unmapped after the clock stops. */
static int map_pass(const char *const *paths, size_t n, unsigned threads, bool populate_read,
		    struct cb_ceiling_pass *out, struct cb_error *err)
{
	struct cb_populate_range *ranges = calloc(n ? n : 1, sizeof *ranges);
	if (!ranges)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	struct cb_populate_opts o = {.threads = threads, .populate_read = populate_read};
	struct cb_populate_stats stats;
	int rc = CB_OK;
	double t0 = now_s();
	size_t mapped = 0;
	for (; rc == CB_OK && mapped < n; mapped++) {
		int fd = open(paths[mapped], O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) != 0) {
			rc = CB_FAIL_ERRNO(err, errno, paths[mapped], "open for the map ceiling");
			if (fd >= 0)
				close(fd);
			break;
		}
		size_t len = (size_t)st.st_size;
		void *p = len ? mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0) : NULL;
		int saved = errno;
		close(fd); /* the mapping keeps the file */
		if (p == MAP_FAILED) {
			rc = CB_FAIL_ERRNO(err, saved, paths[mapped], "mmap for the map ceiling");
			break;
		}
		ranges[mapped] = (struct cb_populate_range){p, len};
		out->bytes += len;
	}
	if (rc == CB_OK)
		rc = cb_populate(ranges, n, &o, &stats, err);
	out->seconds = now_s() - t0;
	if (rc == CB_OK && stats.refused) {
		out->skipped = true;
		snprintf(out->note, sizeof out->note,
			 "populate, map: the kernel lacks MADV_POPULATE_READ");
	}
	for (size_t i = 0; i < mapped; i++)
		if (ranges[i].len)
			munmap((void *)ranges[i].addr, ranges[i].len);
	free(ranges);
	return rc;
}

int cb_ceiling_read(enum cb_ceiling_method m, const char *const *paths, size_t n, unsigned threads,
		    unsigned char *dest, size_t dest_len, struct cb_ceiling_pass *out,
		    struct cb_error *err)
{
	*out = (struct cb_ceiling_pass){0};
	unsigned all = cb_engine_threads(threads);
	switch (m) {
	case CB_CEIL_POPULATE: return map_pass(paths, n, 1, true, out, err);
	case CB_CEIL_MAP: return map_pass(paths, n, all, true, out, err);
	case CB_CEIL_PREAD_1:
	case CB_CEIL_PREAD_N:
	case CB_CEIL_WILLNEED:
	case CB_CEIL_URING_DIRECT:
		if (!dest)
			return CB_FAIL(err, CB_EINTERNAL, NULL, NULL,
				       "%s needs a destination buffer", cb_ceiling_method_name(m));
		return engine_pass(m, paths, n, all, dest, dest_len, out, err);
	case CB_CEIL_COUNT: break;
	}
	return CB_FAIL(err, CB_EINTERNAL, NULL, NULL, "unknown ceiling method %d", (int)m);
}

int cb_ceiling_map_touch(const char *const *paths, size_t n, unsigned threads,
			 struct cb_ceiling_pass *out, struct cb_error *err)
{
	*out = (struct cb_ceiling_pass){0};
	return map_pass(paths, n, cb_engine_threads(threads), false, out, err);
}
