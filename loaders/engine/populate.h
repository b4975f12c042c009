/* Making mapped file pages resident: the one way both mapping loaders
 * (safetensors-mmap, pickle-mmap) fault their model in.
 *
 * A mapping alone is lazy and would "load" in microseconds; the harness's
 * contract (docs/loaders.md) is that every page of the model is resident and
 * mapped when load() returns, so the faults are paid inside the timed
 * region, the same way for both formats. (The real `torch.load(mmap=True)`
 * and `safe_open` touch nothing themselves: the first use pays.)
 *
 * cb_populate splits the ranges, page-aligned and merged, into 4 MiB slices
 * shared by the loader's threads. Each slice is populated with
 * madvise(MADV_POPULATE_READ) (Linux 5.14), which faults every page in and
 * maps it in one call, far cheaper than a fault per page; where the kernel
 * lacks it (EINVAL), one read per page does the same. Not both: a slice
 * populated is not read again (a second pass over mapped pages costs TLB
 * misses, on the order of the population itself).
 *
 * The policy is one set of loader options, declared once here
 * (CB_POPULATE_OPTS) and exposed alike by both loaders: `threads`,
 * `populate-read` (default 1), `populate` (MAP_POPULATE), `willneed` and
 * `sequential` (madvise hints on the whole mapping, default 0: neither
 * torch nor safetensors gives them).
 */
#ifndef CB_POPULATE_H
#define CB_POPULATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"
#include "error.h"
#include "loader.h"
#include "read_engine.h" /* CB_ENGINE_MAX_THREADS */

/* The policy; a member of a loader's options struct, filled by the harness
 * from CB_POPULATE_OPTS. */
struct cb_populate_opts {
	uint64_t threads;   /* 0: one per CPU, at most 16 */
	bool map_populate;  /* mmap with MAP_POPULATE */
	bool willneed;      /* madvise(MADV_WILLNEED) on each mapping */
	bool sequential;    /* madvise(MADV_SEQUENTIAL) on each mapping */
	bool populate_read; /* madvise(MADV_POPULATE_READ) per slice */
};

/* The option-table entries of the policy, for a loader whose options struct
 * `type` holds a struct cb_populate_opts named `member`. */
/* clang-format off */
#define CB_POPULATE_OPTS(type, member)                                                   \
	{"threads", CB_OPT_U64, offsetof(type, member.threads), 0, CB_ENGINE_MAX_THREADS, "0", \
	 "threads making the pages resident (0: one per CPU, at most 16)"},              \
	{"populate", CB_OPT_BOOL, offsetof(type, member.map_populate), 0, 0, "0",        \
	 "map with MAP_POPULATE (mmap faults every page in)"},                           \
	{"willneed", CB_OPT_BOOL, offsetof(type, member.willneed), 0, 0, "0",            \
	 "madvise(MADV_WILLNEED) on each mapping (start read-ahead of all of it)"},      \
	{"sequential", CB_OPT_BOOL, offsetof(type, member.sequential), 0, 0, "0",        \
	 "madvise(MADV_SEQUENTIAL) on each mapping (larger read-ahead)"},                \
	{"populate-read", CB_OPT_BOOL, offsetof(type, member.populate_read), 0, 0, "1",  \
	 "madvise(MADV_POPULATE_READ) per slice (Linux 5.14+; else one read per page)"}
/* clang-format on */

/* One checkpoint file mapped whole, read-only. */
struct cb_mapped_file {
	void *addr; /* NULL for an empty file */
	size_t len;
};

/* Maps every file of `ckpt` whole, read-only, MAP_SHARED (`shared`, as
 * safetensors maps) or MAP_PRIVATE (as torch.load(mmap=True) does), with
 * the policy's MAP_POPULATE and hints; nothing is made resident yet (that is
 * cb_populate). *maps (one per file, in file order) is the caller's to give
 * to cb_unmap_files, also after a failure. */
CB_NODISCARD int cb_map_files(const struct cb_ckpt *ckpt, bool shared,
			      const struct cb_populate_opts *o, struct cb_mapped_file **maps,
			      struct cb_error *err);

void cb_unmap_files(struct cb_mapped_file *maps, size_t n);

struct cb_populate_range {
	const void *addr; /* inside a mapping; need not be page-aligned */
	size_t len;
};

/* What cb_populate did, for the loader's mode. */
struct cb_populate_stats {
	uint64_t bytes;   /* page-aligned bytes made resident */
	size_t slices;    /* of them */
	size_t populated; /* slices MADV_POPULATE_READ did */
	bool refused;     /* the kernel lacks MADV_POPULATE_READ */
	uint64_t sink;    /* the sum of the bytes read, so the reads are kept */
};

/* Makes every page of every range resident and mapped, on the policy's
 * threads (the calling one included). Ranges may overlap (tied weights).
 * CB_EIO when the kernel cannot populate a page (a file truncated under the
 * mapping, an I/O error), rather than the SIGBUS a read would take. */
CB_NODISCARD int cb_populate(const struct cb_populate_range *ranges, size_t n,
			     const struct cb_populate_opts *o, struct cb_populate_stats *stats,
			     struct cb_error *err);

/* "MAP_POPULATE, MADV_WILLNEED, every page populated (MADV_POPULATE_READ)"
 * and the like: the policy and what ran. */
void cb_populate_describe(const struct cb_populate_opts *o, const struct cb_populate_stats *stats,
			  char *buf, size_t len);

#endif
