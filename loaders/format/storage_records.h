/* The storage records of a PyTorch checkpoint: what `torch.load` reads.
 *
 * In torch's format a storage record (the zip's `data/<key>`, or a legacy
 * file's storage) is one storage: every tensor that names its key views it,
 * whether as itself, a slice, a strided view or a tied weight. torch.load
 * materialises each key once (`loaded_storages[key]`), so a loader that
 * stands for it reads each record once, however many tensors view it.
 *
 * A record is identified by where its bytes lie, (file, start): records never
 * overlap, and torch.save refuses two element types for one storage, as the
 * unpickler does (unpickle.c), so every tensor of one record agrees on its
 * size and type. Two tensors that claim the same start with different sizes
 * or types are refused as malformed rather than one of them chosen.
 */
#ifndef CB_STORAGE_RECORDS_H
#define CB_STORAGE_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"
#include "dtype.h"
#include "error.h"

/* The file offset of the first byte of the storage that tensor `t` views
 * (t->offset minus its storage offset in bytes; a safetensors tensor's own
 * offset), checked: CB_EFORMAT when the storage offset overflows or lies
 * before the file's start, or when a sub-byte dtype has one. */
CB_NODISCARD int cb_storage_start(const struct cb_ckpt_tensor *t, uint64_t *start,
				  struct cb_error *err);

struct cb_storage_record {
	uint32_t file;   /* index into the checkpoint's files */
	uint64_t start;  /* file offset of its first byte */
	uint64_t nbytes; /* the whole record */
	enum cb_dtype dtype;
};

/* Every distinct storage record that the checkpoint's tensors view, sorted
 * by (file, start), one per record. *out is the caller's to free (also
 * allocated, empty, for a checkpoint without tensors). */
CB_NODISCARD int cb_storage_records(const struct cb_ckpt *ckpt, struct cb_storage_record **out,
				    size_t *n, struct cb_error *err);

/* The index in `records` (as cb_storage_records made them) of the record
 * that `t` views; CB_EINTERNAL when there is none. */
CB_NODISCARD int cb_storage_record_of(const struct cb_storage_record *records, size_t n,
				      const struct cb_ckpt_tensor *t, size_t *index,
				      struct cb_error *err);

#endif
