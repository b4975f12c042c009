/* A tensor's logical bytes, streamed: row-major, contiguous, in chunks.
 *
 * What hashing, converting and verifying share: a contiguous tensor is read
 * straight through; a strided view (PyTorch) has its whole storage read once
 * and its elements gathered in row-major order, which is the tensor torch
 * sees after `contiguous()`. Offsets and strides were bounds-checked against
 * the storage when the checkpoint was opened.
 */
#ifndef CB_TENSOR_GATHER_H
#define CB_TENSOR_GATHER_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"
#include "error.h"

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
