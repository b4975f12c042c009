#include "tensor_gather.h"

#include <stdlib.h>
#include <string.h>

#include "fileio.h"

static int stream_contiguous(int fd, const char *path, uint64_t offset, uint64_t nbytes,
			     uint8_t *chunk, size_t chunk_size, cb_tensor_sink sink, void *ctx,
			     struct cb_error *err)
{
	while (nbytes > 0) {
		size_t n = nbytes < chunk_size ? (size_t)nbytes : chunk_size;
		int rc = cb_pread_full(fd, chunk, n, offset, path, err);
		if (rc == CB_OK)
			rc = sink(ctx, chunk, n, err);
		if (rc != CB_OK)
			return rc;
		offset += n;
		nbytes -= n;
	}
	return CB_OK;
}

/* An odometer over the shape walks the elements in row-major order. */
static int stream_strided(int fd, const char *path, const struct cb_ckpt_tensor *t, uint8_t *chunk,
			  size_t chunk_size, cb_tensor_sink sink, void *ctx, struct cb_error *err)
{
	size_t esize = cb_dtype_bits(t->dtype) / 8;
	uint64_t storage_start = t->offset - t->storage_offset * esize;
	uint8_t *storage = malloc(t->storage_nbytes ? (size_t)t->storage_nbytes : 1);
	uint64_t *index = calloc(t->rank ? t->rank : 1, sizeof *index);
	int rc = CB_OK;
	if (!storage || !index || esize == 0 || chunk_size < esize) {
		rc = storage && index ? CB_FAIL(err, CB_EINTERNAL, path, t->name,
						"cannot gather a view of this dtype")
				      : CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
		goto out;
	}
	rc = cb_pread_full(fd, storage, (size_t)t->storage_nbytes, storage_start, path, err);
	size_t filled = 0;
	for (uint64_t e = 0; rc == CB_OK && e < t->numel; e++) {
		int64_t element = (int64_t)t->storage_offset;
		for (uint32_t d = 0; d < t->rank; d++)
			element += (int64_t)index[d] * t->stride[d];
		memcpy(chunk + filled, storage + (uint64_t)element * esize, esize);
		filled += esize;
		if (filled + esize > chunk_size) {
			rc = sink(ctx, chunk, filled, err);
			filled = 0;
		}
		for (uint32_t d = t->rank; d-- > 0;) {
			if (++index[d] < t->shape[d])
				break;
			index[d] = 0;
		}
	}
	if (rc == CB_OK && filled > 0)
		rc = sink(ctx, chunk, filled, err);
out:
	free(storage);
	free(index);
	return rc;
}

int cb_tensor_stream(int fd, const char *path, const struct cb_ckpt_tensor *t, uint8_t *chunk,
		     size_t chunk_size, cb_tensor_sink sink, void *ctx, struct cb_error *err)
{
	if (t->stride)
		return stream_strided(fd, path, t, chunk, chunk_size, sink, ctx, err);
	return stream_contiguous(fd, path, t->offset, t->nbytes, chunk, chunk_size, sink, ctx, err);
}
