/* The read ceilings' reads: the ways of bringing a checkpoint's files into
 * memory that a loader's figure is held against (docs/datasets-and-method.md
 * §5.4), each one timed pass over a set of files in the cache state the
 * caller prepared. The harness's paired reads (bench/harness/run_ceiling.c)
 * call it between the trials.
 *
 * Every method reads through what the loaders use, never a read loop of its
 * own: the read engine (read_engine.h) for the pread, fadvise and io_uring
 * methods, cb_populate (populate.h) for the mapping ones. So a ceiling and
 * a loader that read the same way measure the same code.
 *
 *   pread-1       one thread, large preads, each file into its place in a
 *                 pre-faulted buffer of the files' size;
 *   pread-N       the same on N threads (contiguous shares);
 *   willneed      posix_fadvise(POSIX_FADV_WILLNEED) on each whole file,
 *                 inside the timed pass, then pread-N: the kernel starts
 *                 reading the whole file ahead of the threads;
 *   uring-direct  io_uring, 32 reads in flight, O_DIRECT (no page cache,
 *                 no copy out of it); skipped, with the reason, where the
 *                 build has no io_uring, the kernel refuses it or the
 *                 filesystem refuses O_DIRECT;
 *   populate      each file mapped read-only and made resident with
 *                 MADV_POPULATE_READ from one thread, then unmapped: the
 *                 bytes reach memory (the page cache) without a copy;
 *   map           the mapping loaders' own way (safetensors-mmap,
 *                 pickle-mmap with their defaults): mapped shared
 *                 read-only, MADV_POPULATE_READ in 4 MiB slices on N
 *                 threads. The ceiling of a zero-copy loader.
 * The mapping methods time the map and the population, not the munmap
 * (a mapping loader unmaps in close(), outside its timed load).
 * cb_ceiling_map_touch is map's other way, the mapping loaders'
 * populate-read=0: one read per page instead of MADV_POPULATE_READ.
 */
#ifndef CB_CEILING_READ_H
#define CB_CEILING_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum cb_ceiling_method {
	CB_CEIL_PREAD_1,
	CB_CEIL_PREAD_N,
	CB_CEIL_WILLNEED,
	CB_CEIL_URING_DIRECT,
	CB_CEIL_POPULATE,
	CB_CEIL_MAP,
	CB_CEIL_COUNT
};

/* io_uring's reads in flight for uring-direct. */
#define CB_CEIL_URING_QD 32

/* "pread-1", "pread-N", "willneed", "uring-direct", "populate", "map": the
 * names the results file uses. */
const char *cb_ceiling_method_name(enum cb_ceiling_method m);

/* True for the methods that need a destination buffer (the pread, willneed
 * and io_uring ones); the mapping ones read into the page cache alone. */
bool cb_ceiling_method_buffered(enum cb_ceiling_method m);

/* The buffer those methods need for files of `bytes` bytes in `n` files:
 * each file's place starts O_DIRECT-aligned, so O_DIRECT reads go straight
 * into place. */
size_t cb_ceiling_buffer_len(uint64_t bytes, size_t n);

struct cb_ceiling_pass {
	uint64_t bytes; /* the files' bytes brought in */
	double seconds; /* the timed pass */
	bool skipped;   /* the method cannot run here; `note` says why */
	char note[160];
};

/* One timed pass of method `m` over files[0..n) in order, `threads` the N
 * of the N-thread methods (0: cb_engine_threads(0)). `dest` (dest_len
 * bytes, from cb_ceiling_buffer_len) is needed by the buffered methods and
 * may be NULL for the others. Returns CB_OK with out->skipped where the
 * method cannot run here; an error only when the files cannot be read. */
CB_NODISCARD int cb_ceiling_read(enum cb_ceiling_method m, const char *const *paths, size_t n,
				 unsigned threads, unsigned char *dest, size_t dest_len,
				 struct cb_ceiling_pass *out, struct cb_error *err);

/* The map method with one read per page on `threads` threads (0:
 * cb_engine_threads(0)) instead of MADV_POPULATE_READ: on files held in
 * large folios a fault maps a whole folio, so touching can map cached
 * pages faster than populating them page by page. */
CB_NODISCARD int cb_ceiling_map_touch(const char *const *paths, size_t n, unsigned threads,
				      struct cb_ceiling_pass *out, struct cb_error *err);

#endif
