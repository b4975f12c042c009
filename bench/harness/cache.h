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
 * Thread-safety: no shared state; safe from any thread.
 */
#ifndef CB_CACHE_H
#define CB_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* Drops the files' pages from the page cache. With drop_caches true and
 * effective uid 0 it also runs sync() and writes "1" to
 * /proc/sys/vm/drop_caches (the whole machine's clean page cache); without
 * root that part is skipped silently, the per-file eviction still happens.
 * Fails (CB_EIO / CB_ENOTFOUND) only when a file cannot be opened or
 * advised. */
int cb_cache_evict(const char *const *paths, size_t n, bool drop_caches, struct cb_error *err);

/* Reads every byte of every file with large preads, so that each is fully
 * in the page cache (as far as memory allows). */
int cb_cache_warm(const char *const *paths, size_t n, struct cb_error *err);

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
