/* Page-cache control for cold and warm trials, and proof of the state.
 *
 * Eviction is the root-free method fio uses (posix_fadvise DONTNEED on the
 * whole file, after fdatasync so dirty pages can go too), optionally backed
 * by drop_caches when running as root. The kernel refuses to evict pages that
 * any process still maps, so call cb_cache_evict only after every child that
 * mapped the files has exited. Residency is measured, never assumed.
 *
 * Every function takes a list of n paths; each path is opened read-only (or
 * read-write for fdatasync when permitted) and closed before returning.
 * Thread-safety: safe from any thread, except that cb_cache_warm and
 * cb_cache_evict keep the state they made in one static record
 * (cb_cache_last_state).
 */
#ifndef CB_CACHE_H
#define CB_CACHE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Drops the files' pages from the page cache. With drop_caches true and
 * effective uid 0 it also runs sync() and writes "1" to
 * /proc/sys/vm/drop_caches (the whole machine's clean page cache); without
 * root that part is skipped silently, the per-file eviction still happens.
 * Fails (CB_EIO / CB_ENOTFOUND) only when a file cannot be opened or
 * advised. */
int cb_cache_evict(const char *const *paths, size_t n, bool drop_caches, struct cb_error *err);

/* The warm state, one defined state whatever put the files in the cache
 * before (docs/datasets-and-method.md §5.3): every file evicted as
 * cb_cache_evict does (no drop_caches), then read once by the harness's own
 * read, always the same: large preads through the read engine, one thread
 * per CPU (at most 16) in contiguous shares. Why: how a file entered the
 * page cache decides the folios that hold it (a file just written by `cp`
 * sits in small ones, a file read by large reads in large ones), and a warm
 * mapping's cost follows the folios (a fault maps one folio's pages), so a
 * warm trial of a file freshly copied and one of the same bytes after cold
 * cycles would otherwise measure two states under one name. The state made
 * is then measured (cb_cache_state) and kept as the last state
 * (cb_cache_last_state). */
int cb_cache_warm(const char *const *paths, size_t n, struct cb_error *err);

/* Folio sizes the state reports: 4 KiB << k, k < CB_CACHE_FOLIO_ORDERS
 * (4 KiB to 4 MiB; larger ones count in the last). */
#define CB_CACHE_FOLIO_ORDERS 11

/* What the page cache holds of a set of files. */
struct cb_cache_state {
	double resident;   /* fraction of the files' bytes cached (mincore) */
	bool folios_known; /* folios[] was measured */
	/* Folios backing the files' cached pages, by size 4 KiB << k. */
	uint64_t folios[CB_CACHE_FOLIO_ORDERS];
	const char *method; /* "pagemap+kpageflags", or "mincore" without folio sizes */
	char note[160];     /* why the folio sizes are unknown; "" when known */
};

/* Measures the state of the files in the page cache without changing it:
 * each file is mapped read-only (MADV_RANDOM, so no fault reads ahead),
 * mincore says which pages are cached, only those are mapped in
 * (MADV_POPULATE_READ per run of cached pages), /proc/self/pagemap gives
 * their page frames and /proc/kpageflags the compound-page flags that show
 * where each folio starts and ends. The mapping is gone on return. Page
 * frame numbers and kpageflags need CAP_SYS_ADMIN: without it the folio
 * sizes are unknown (folios_known false, note saying why) and only the
 * resident fraction is measured. */
int cb_cache_state(const char *const *paths, size_t n, struct cb_cache_state *out,
		   struct cb_error *err);

/* The state the last cb_cache_warm or cb_cache_evict left and measured (for
 * the trial's record, made after the child ran); NULL when the last one
 * failed or none ran. Owned here: one static record, so one preparation at
 * a time (the run's parent is single-threaded). */
const struct cb_cache_state *cb_cache_last_state(void);

/* A state as the trial record's "cache_state" (docs/results-schema.md):
 * {"resident", "folio_kib": {"4": n, "16": n, ...} or null, "method",
 * "note"}; JSON null for a NULL state. New reference. */
json_t *cb_cache_state_json(const struct cb_cache_state *s);

/* *fraction_out = resident bytes / total bytes over all files, in [0, 1]
 * (1 when the total is 0). Uses the cachestat syscall (Linux 6.5+) where
 * the kernel has it, else mmap + mincore in chunks. The environment variable
 * CKPTBENCH_RESIDENCY=mincore forces the fallback (for its tests). */
int cb_cache_residency(const char *const *paths, size_t n, double *fraction_out,
		       struct cb_error *err);

/* "cachestat" or "mincore": the method cb_cache_residency uses on this
 * kernel (probed once per call; a static string). */
const char *cb_cache_residency_method(void);

#endif
