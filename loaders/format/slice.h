/* Partial loads: which part of which tensors one load takes
 * (docs/partial-loads.md).
 *
 * A plan is built from a manifest (manifest.h), a selection of tensors
 * (selection.h; NULL takes them all) and, for tensor parallelism, the split
 * rules (tp_rules.h), a TP size and a rank. Each selected tensor becomes a
 * slice of its row-major bytes: a whole tensor, or, split on dim d into
 * [lo, hi), the runs of the rows [lo, hi) of d, one run per index of the
 * dims before d:
 *
 *   - column, row: dim d of size S must divide by the TP size N; rank r
 *     takes [r S/N, (r+1) S/N). Else CB_EUSAGE: vLLM refuses such a size.
 *   - vocab: vLLM pads the vocabulary to a multiple of N, so rank r takes
 *     [r c, min(S, (r+1) c)) with c = ceil(S/N), clamped to S: the last ranks
 *     may take fewer rows, or none.
 *   - replicate, whole, and a tensor no rule matches (counted as unmatched):
 *     the whole tensor.
 *
 * A split on dim 0 is one contiguous run; on a later dim, one run per
 * index of the dims before it, `stride` bytes apart. A split whose runs
 * together cover the tensor (N = 1, a dim of size 1, ...) is stored as one
 * run. Every product of dims is overflow-checked, and a manifest whose
 * nbytes disagrees with its shape and dtype is CB_EFORMAT. A slice of a
 * sub-byte dtype (F4, F6_*) must start and end on byte boundaries, else
 * CB_EUNSUPPORTED.
 */
#ifndef CB_SLICE_H
#define CB_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"
#include "error.h"
#include "manifest.h"
#include "selection.h"
#include "tp_rules.h"

/* The most dims a tensor of a plan may have (CB_EUNSUPPORTED above it):
 * real checkpoints stay far below, and it keeps a plan's entry small. */
#define CB_SLICE_MAX_RANK 16

/* One tensor of a partial load: which part of the whole tensor's row-major
 * bytes it is. The slice is n_runs runs of run_len bytes, the first at byte
 * `first` of the tensor, each next `stride` bytes after the one before
 * (n_runs == 1 for a contiguous slice, with stride == run_len; n_runs == 0
 * and run_len == 0 for an empty one, a vocab split's rank past the end). Its
 * logical shape is `shape` (rank dims). */
struct cb_slice_tensor {
	size_t index;     /* into the manifest's tensors (sorted by name) */
	const char *name; /* the manifest's; borrowed, valid while it lives */
	enum cb_split_role role;
	unsigned dim;       /* the split dim, for COLUMN/ROW/VOCAB; 0 otherwise */
	bool unmatched;     /* replicated because no rule matched */
	unsigned rule_line; /* the rule's line in the rules file; 0: none */
	uint32_t rank;
	uint64_t shape[CB_SLICE_MAX_RANK];
	uint64_t nbytes; /* run_len * n_runs */
	uint64_t first, run_len, stride, n_runs;
};

struct cb_slice_plan {
	size_t n;
	struct cb_slice_tensor *tensors; /* in manifest order, selected ones only; owned */
	unsigned tp, rank;               /* 1, 0 when no split */
	uint64_t asked_bytes;            /* sum of nbytes */
	size_t n_unmatched;              /* the tensors with unmatched set */
	/* "tp<N>-r<R>-<16 hex digits>": a short, stable id of (selection text,
	 * rules file content hash, tp, rank), for cache file names. */
	char key[64];
};

/* Builds the plan of `sel` (NULL: every tensor) split by `rules` for rank
 * `rank` of `tp`. `rules` is NULL when tp is 1 (and ignored then); tp > 1
 * without rules is CB_EINTERNAL. tp == 0 or rank >= tp is CB_EUSAGE, one
 * line; so is a selection pattern that matches no tensor ("selection X
 * matches no tensor of DATASET", DATASET the manifest's dataset name or
 * path), a rule whose DIM the tensor does not have, and an even split that
 * does not divide its dim. On success free *out with cb_slice_plan_free; on
 * failure *out is empty. */
CB_NODISCARD int cb_slice_plan_build(const struct cb_manifest *m, const struct cb_selection *sel,
				     const struct cb_tp_rules *rules, unsigned tp, unsigned rank,
				     struct cb_slice_plan *out, struct cb_error *err);

void cb_slice_plan_free(struct cb_slice_plan *p);

/* The preset a dataset's manifest says made it (gen's "dataset": {"preset"}),
 * for cb_tp_rules_default; NULL when it names none (a model given by path).
 * Borrowed from the manifest. */
const char *cb_slice_manifest_preset(const struct cb_manifest *m);

/* The expected XXH3-64 (seed 0, as tensor_hash.h) of each slice's bytes
 * (its runs concatenated), hashes_out[i] for plan->tensors[i].
 *
 * Read from the checkpoint at `ckpt_path` (cb_ckpt_open, `fmt`): a
 * contiguous tensor's bytes from the first run's start to the last run's
 * end, a strided PyTorch view whole through tensor_gather.h's stream. Each
 * tensor must have the manifest's dtype and shape (CB_EMISMATCH), and a
 * tensor read whole must have the manifest's xxh3 (CB_EMISMATCH), so the
 * slices' hashes come from bytes the manifest vouches for.
 *
 * Cached in `<manifest_path>.slices/<key>.json`, written atomically on the
 * first call; a later call takes the hashes from it when the manifest's
 * size and XXH3 and the plan (names and runs) are the same as when it was
 * written, and computes them again (rewriting it) otherwise. A cache that
 * cannot be written (a read-only dataset) costs only the caching: the
 * hashes are still returned. Reads the whole selection once: never inside
 * a timed region. Single-threaded. */
CB_NODISCARD int cb_slice_hashes(const char *ckpt_path, enum cb_format fmt,
				 const char *manifest_path, const struct cb_manifest *m,
				 const struct cb_slice_plan *plan, uint64_t *hashes_out,
				 struct cb_error *err);

/* The cache file's path for a plan ("<manifest_path>.slices/<key>.json");
 * false when it does not fit in `size`. */
bool cb_slice_cache_path(const char *manifest_path, const struct cb_slice_plan *plan, char *out,
			 size_t size);

/* Copies a slice out of a whole tensor's row-major bytes into dst
 * (s->nbytes bytes): for loaders that read whole and narrow, and for tests. */
void cb_slice_extract(void *dst, const void *whole_tensor, const struct cb_slice_tensor *s);

/* The inverse: places a slice's bytes where they lie in a whole tensor
 * buffer, leaving the rest of it as it was. */
void cb_slice_place(void *whole_tensor, const void *slice, const struct cb_slice_tensor *s);

#endif
