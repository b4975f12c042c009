#include "storage_records.h"

#include <stdlib.h>

int cb_storage_start(const struct cb_ckpt_tensor *t, uint64_t *start, struct cb_error *err)
{
	unsigned bits = cb_dtype_bits(t->dtype);
	uint64_t skip = 0;
	/* storage_offset counts elements; a sub-byte element has no byte
	 * offset of its own, and torch has no sub-byte dtype to give one */
	if (t->storage_offset && bits % 8 != 0)
		return CB_FAIL(err, CB_EFORMAT, NULL, t->name,
			       "a storage offset in a sub-byte dtype");
	if (__builtin_mul_overflow(t->storage_offset, (uint64_t)(bits / 8), &skip) ||
	    skip > t->offset)
		return CB_FAIL(err, CB_EFORMAT, NULL, t->name,
			       "the storage offset lies before the file's start");
	*start = t->offset - skip;
	return CB_OK;
}

static int by_place(const void *a, const void *b)
{
	const struct cb_storage_record *x = a, *y = b;
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

int cb_storage_records(const struct cb_ckpt *ckpt, struct cb_storage_record **out, size_t *n,
		       struct cb_error *err)
{
	size_t count = ckpt->n_tensors;
	struct cb_storage_record *r = calloc(count ? count : 1, sizeof *r);
	*out = NULL;
	*n = 0;
	if (!r)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < count; i++) {
		const struct cb_ckpt_tensor *t = &ckpt->tensors[i];
		r[i] = (struct cb_storage_record){
			.file = t->file, .nbytes = t->storage_nbytes, .dtype = t->dtype};
		int rc = cb_storage_start(t, &r[i].start, err);
		if (rc != CB_OK) {
			free(r);
			return rc;
		}
	}
	qsort(r, count, sizeof *r, by_place);
	size_t unique = 0;
	for (size_t i = 0; i < count; i++) {
		if (unique && by_place(&r[unique - 1], &r[i]) == 0) {
			if (r[unique - 1].nbytes != r[i].nbytes ||
			    r[unique - 1].dtype != r[i].dtype) {
				/* Taken before the free: the message names them. */
				const char *path = ckpt->files[r[i].file].path;
				unsigned long long start = r[i].start;
				free(r);
				return CB_FAIL(err, CB_EFORMAT, path, NULL,
					       "two storages of different sizes or types start at "
					       "byte %llu",
					       start);
			}
			continue;
		}
		r[unique++] = r[i];
	}
	*out = r;
	*n = unique;
	return CB_OK;
}

int cb_storage_record_of(const struct cb_storage_record *records, size_t n,
			 const struct cb_ckpt_tensor *t, size_t *index, struct cb_error *err)
{
	struct cb_storage_record key = {.file = t->file};
	int rc = cb_storage_start(t, &key.start, err);
	if (rc != CB_OK)
		return rc;
	const struct cb_storage_record *r = bsearch(&key, records, n, sizeof key, by_place);
	if (!r)
		return CB_FAIL(err, CB_EINTERNAL, NULL, t->name,
			       "no storage record for this tensor");
	*index = (size_t)(r - records);
	return CB_OK;
}
