/* What the loaders share on the host: the empty model in host memory (the
 * "M()" step), a tiny parallel-for, the strict tensor match of
 * load_state_dict (every loader's, the GPU ones' too), and a checkpoint's
 * files opened as the read engine's set.
 *
 * Nothing here reads a checkpoint; each loader does its own I/O, because how
 * it reads is what distinguishes it. The gather of a strided view is
 * tensor_gather.h's; a PyTorch file's storage records, storage_records.h's;
 * making mapped pages resident, engine/populate.h's.
 */
#ifndef CB_HOST_H
#define CB_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"
#include "error.h"
#include "loader.h"
#include "manifest.h"

/* Runs fn(arg, i, err) for every i in [0, n) on up to `threads` threads (the
 * calling one included), items taken in order from a shared counter. The
 * first failure stops the others from taking new items and is the one in
 * err. fn must be safe to run concurrently for different i. */
typedef int (*cb_host_item_fn)(void *arg, size_t i, struct cb_error *err);
CB_NODISCARD int cb_host_parallel(unsigned threads, size_t n, cb_host_item_fn fn, void *arg,
				  struct cb_error *err);

/* The model's host memory: small tensors malloc'd one by one (64-byte
 * aligned) as a framework's allocator makes them, large ones carved from one
 * anonymous mapping for the model (cb_host_model_alloc says why). */
struct cb_host_model {
	size_t n;
	void **data;    /* per architecture tensor; owned (malloc'd), or in the arena */
	bool *in_arena; /* data[i] is carved from `arena`, not malloc'd */
	void *arena;    /* one mapping holding every large tensor; NULL when none */
	size_t arena_len;
};

/* Allocates every tensor of `arch` and points model->tensors[i].data at it:
 * tensors of 1 MiB or more page-aligned in one mapping for the model (whole
 * huge pages, advised MADV_HUGEPAGE, when `thp`), smaller ones malloc'd.
 * When `touch`, writes every byte (zeros) on `threads` threads, as a
 * model's initialiser does, so the pages are resident before any load.
 * Free with cb_host_model_free, also after a failure. */
CB_NODISCARD int cb_host_model_alloc(struct cb_host_model *hm, const struct cb_manifest *arch,
				     struct cb_model *model, bool touch, bool thp, unsigned threads,
				     struct cb_error *err);

void cb_host_model_free(struct cb_host_model *hm);

/* Gives tensor i's memory back, as dropping the last reference to a tensor
 * does (`model.to(device)` replacing a parameter): a malloc'd tensor is
 * freed, an arena tensor's pages are discarded (MADV_DONTNEED; the range
 * stays mapped until cb_host_model_free). Its data must not be used after. */
void cb_host_model_release(struct cb_host_model *hm, size_t i, uint64_t nbytes);

struct cb_engine;

/* Opens every file of `ckpt`, in file order, as the read engine's set
 * (cb_engine_open, engine/read_engine.h). */
CB_NODISCARD int cb_host_open_ckpt_files(struct cb_engine *e, const struct cb_ckpt *ckpt,
					 struct cb_error *err);

/* load_state_dict(strict=True)'s check: the checkpoint holds the tensor,
 * with the architecture's dtype, shape and bytes. `have` may be NULL. A
 * strided view (PyTorch) passes only when `views_ok`. */
CB_NODISCARD int cb_host_match(const struct cb_manifest_tensor *want,
			       const struct cb_ckpt_tensor *have, bool views_ok, const char *path,
			       struct cb_error *err);

/* load_state_dict's copy of one tensor, or of its part (`part` NULL: the
 * whole tensor) as `narrow` then `copy_` does: from `storage`, the bytes of
 * t's whole storage record in memory, into dst (t->nbytes, or
 * part->nbytes). A contiguous tensor's part is copied run by run; a strided
 * view is gathered whole into a temporary first, as `contiguous()` would. */
CB_NODISCARD int cb_host_gather_part(void *dst, const void *storage, const struct cb_ckpt_tensor *t,
				     const struct cb_slice_tensor *part, struct cb_error *err);

#endif
