/* A tensor's logical bytes, row-major and contiguous: the one gather of a
 * strided view, in memory or streamed from a file.
 *
 * What the loaders, hashing, converting and verifying share: a contiguous
 * tensor is its bytes as they lie; a strided view (PyTorch) is gathered from
 * its storage in row-major order, which is the tensor torch sees after
 * `contiguous()`, one innermost run at a time (one memcpy when the innermost
 * stride is 1). Offsets and strides were bounds-checked against the storage
 * when the checkpoint was opened; the storage's start is computed with
 * overflow checks (storage_records.h).
 */
#ifndef CB_TENSOR_GATHER_H
#define CB_TENSOR_GATHER_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"
#include "error.h"

/* Copies tensor `t` in row-major order into `dst` (t->nbytes bytes) from
 * `storage`, the bytes of its whole storage record in memory (for a
 * safetensors tensor, its own bytes). CB_EUNSUPPORTED for a strided view of
 * a sub-byte dtype or of more than 64 dimensions. */
CB_NODISCARD int cb_tensor_gather(void *dst, const void *storage, const struct cb_ckpt_tensor *t,
				  struct cb_error *err);

/* Receives the next `len` bytes of the tensor; a non-zero return stops the
 * stream and is passed back. */
typedef int (*cb_tensor_sink)(void *ctx, const void *buf, size_t len, struct cb_error *err);

/* Streams tensor `t`, held in the file open as `fd` (named `path` in
 * messages), to `sink` in chunks of at most `chunk_size` bytes, using
 * `chunk` (the caller's, at least chunk_size bytes and more than one element)
 * as the buffer. A strided view also allocates its storage's size for the
 * duration of the call. */
CB_NODISCARD int cb_tensor_stream(int fd, const char *path, const struct cb_ckpt_tensor *t,
				  uint8_t *chunk, size_t chunk_size, cb_tensor_sink sink, void *ctx,
				  struct cb_error *err);

#endif
