#include "tensor_gather.h"

#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "storage_records.h"

#define MAX_RANK 64 /* CB_PK_MAX_RANK and CB_ST_MAX_RANK */

/* The one odometer: elements [first, first + count) of view `t`, in
 * row-major order, from `storage` (its whole storage record) into `out`.
 * Every dimension but the last is a digit; the last is a run, copied in one
 * memcpy when its stride is 1. `esize` is the element's bytes (not 0). */
static void gather_elements(uint8_t *out, const uint8_t *storage, const struct cb_ckpt_tensor *t,
			    size_t esize, uint64_t first, uint64_t count)
{
	const uint8_t *base = storage + t->storage_offset * esize;
	uint32_t rank = t->rank;
	if (count == 0)
		return;
	if (rank == 0) { /* a scalar view: one element or none */
		memcpy(out, base, (size_t)count * esize);
		return;
	}
	uint64_t index[MAX_RANK];
	for (uint32_t d = rank; d-- > 0;) {
		index[d] = first % t->shape[d]; /* count > 0: no dimension is 0 */
		first /= t->shape[d];
	}
	uint64_t inner = t->shape[rank - 1];
	int64_t inner_stride = t->stride[rank - 1];
	while (count > 0) {
		int64_t e = 0;
		for (uint32_t d = 0; d + 1 < rank; d++)
			e += (int64_t)index[d] * t->stride[d];
		uint64_t k0 = index[rank - 1];
		uint64_t run = inner - k0 < count ? inner - k0 : count;
		const uint8_t *src = base + (e + (int64_t)k0 * inner_stride) * (int64_t)esize;
		if (inner_stride == 1) {
			memcpy(out, src, (size_t)run * esize);
		} else {
			for (uint64_t k = 0; k < run; k++)
				memcpy(out + k * esize,
				       src + (int64_t)k * inner_stride * (int64_t)esize, esize);
		}
		out += run * esize;
		count -= run;
		index[rank - 1] = 0;
		for (uint32_t d = rank - 1; d-- > 0;) {
			if (++index[d] < t->shape[d])
				break;
			index[d] = 0;
		}
	}
}

/* The element size of a view that can be gathered, or 0 with the error. */
static size_t view_esize(const struct cb_ckpt_tensor *t, const char *path, struct cb_error *err)
{
	unsigned bits = cb_dtype_bits(t->dtype);
	if (bits == 0 || bits % 8 != 0) {
		CB_FAIL(err, CB_EUNSUPPORTED, path, t->name, "a strided view of a sub-byte dtype");
		return 0;
	}
	if (t->rank > MAX_RANK) {
		CB_FAIL(err, CB_EUNSUPPORTED, path, t->name, "a view of more than %d dimensions",
			MAX_RANK);
		return 0;
	}
	return bits / 8;
}

int cb_tensor_gather(void *dst, const void *storage, const struct cb_ckpt_tensor *t,
		     struct cb_error *err)
{
	if (!t->stride || t->numel == 0) {
		uint64_t start;
		int rc = cb_storage_start(t, &start, err);
		if (rc == CB_OK)
			memcpy(dst, (const uint8_t *)storage + (t->offset - start),
			       (size_t)t->nbytes);
		return rc;
	}
	size_t esize = view_esize(t, NULL, err);
	if (esize == 0)
		return CB_EUNSUPPORTED;
	gather_elements(dst, storage, t, esize, 0, t->numel);
	return CB_OK;
}

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

/* The whole storage read once, then gathered a chunk's worth of elements at
 * a time. */
static int stream_strided(int fd, const char *path, const struct cb_ckpt_tensor *t, uint8_t *chunk,
			  size_t chunk_size, cb_tensor_sink sink, void *ctx, struct cb_error *err)
{
	size_t esize = view_esize(t, path, err);
	if (esize == 0)
		return CB_EUNSUPPORTED;
	if (chunk_size < esize)
		return CB_FAIL(err, CB_EINTERNAL, path, t->name, "a chunk smaller than an element");
	if (t->storage_nbytes > SIZE_MAX)
		return CB_FAIL(err, CB_ELIMIT, path, t->name, "a storage larger than memory");
	uint64_t start;
	int rc = cb_storage_start(t, &start, err);
	if (rc != CB_OK)
		return rc;
	uint8_t *storage = malloc(t->storage_nbytes ? (size_t)t->storage_nbytes : 1);
	if (!storage)
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	rc = cb_pread_full(fd, storage, (size_t)t->storage_nbytes, start, path, err);
	uint64_t per_chunk = chunk_size / esize;
	for (uint64_t e = 0; rc == CB_OK && e < t->numel; e += per_chunk) {
		uint64_t n = t->numel - e < per_chunk ? t->numel - e : per_chunk;
		gather_elements(chunk, storage, t, esize, e, n);
		rc = sink(ctx, chunk, (size_t)n * esize, err);
	}
	free(storage);
	return rc;
}

int cb_tensor_stream(int fd, const char *path, const struct cb_ckpt_tensor *t, uint8_t *chunk,
		     size_t chunk_size, cb_tensor_sink sink, void *ctx, struct cb_error *err)
{
	if (t->stride && t->numel > 0)
		return stream_strided(fd, path, t, chunk, chunk_size, sink, ctx, err);
	return stream_contiguous(fd, path, t->offset, t->nbytes, chunk, chunk_size, sink, ctx, err);
}
