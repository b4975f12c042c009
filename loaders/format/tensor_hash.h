/* XXH3-64 (seed 0) of every tensor of a checkpoint, as
 * docs/datasets-and-method.md §2 defines it: the tensor's logical bytes in
 * row-major order (for a strided view, the bytes of its contiguous copy).
 * Data is streamed with large preads, tensors spread over worker threads.
 */
#ifndef CB_TENSOR_HASH_H
#define CB_TENSOR_HASH_H

#include <stdint.h>

#include "ckpt.h"
#include "error.h"

/* Fills hashes_out[i] for ckpt->tensors[i]. `threads` 0 picks one per CPU
 * (at most 8). Reads never go outside a tensor's bytes (or, for views, its
 * storage), which cb_ckpt_open has bounds-checked. */
CB_NODISCARD int cb_ckpt_hash(const struct cb_ckpt *ckpt, uint64_t *hashes_out, unsigned threads,
			      struct cb_error *err);

/* Formats a hash as 16 lowercase hex digits plus NUL. */
void cb_hash_hex(uint64_t hash, char out[17]);

#endif
