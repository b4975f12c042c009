/* What the CPU loaders share: the empty model in host memory (the "M()"
 * step), a tiny parallel-for, the strict tensor match of load_state_dict,
 * and the in-memory gather of a strided PyTorch view.
 *
 * Nothing here reads a checkpoint; each loader does its own I/O, because how
 * it reads is what distinguishes it.
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

/* Worker threads for a thread option: `opt` when non-zero, else one per
 * online CPU, at most CB_DEFAULT_THREADS_MAX (16). */
unsigned cb_host_threads(uint64_t opt);

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

/* load_state_dict(strict=True)'s check: the checkpoint holds the tensor,
 * with the architecture's dtype, shape and bytes. `have` may be NULL. A
 * strided view (PyTorch) passes only when `views_ok`. */
CB_NODISCARD int cb_host_match(const struct cb_manifest_tensor *want,
			       const struct cb_ckpt_tensor *have, bool views_ok, const char *path,
			       struct cb_error *err);

/* The file offset of the first byte of the storage a PyTorch tensor views
 * (its own offset for a safetensors tensor). */
uint64_t cb_host_storage_start(const struct cb_ckpt_tensor *t);

/* Copies tensor `t` in row-major order into `dst` (t->nbytes bytes) from
 * `storage`, the bytes of its whole storage record in memory. A contiguous
 * tensor is one memcpy; a view is gathered one innermost run at a time.
 * Offsets and strides were bounds-checked when the checkpoint was opened.
 * CB_EUNSUPPORTED for a strided view of a sub-byte dtype. */
CB_NODISCARD int cb_host_gather(void *dst, const uint8_t *storage, const struct cb_ckpt_tensor *t,
				struct cb_error *err);

/* Reads one byte of every page of [p, p + len) so that each is resident;
 * returns a value the caller must use (so the reads are not elided). */
uint64_t cb_host_touch_pages(const void *p, size_t len);

#endif
