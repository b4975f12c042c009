/* A PyTorch checkpoint file (.pt, .pth, .bin) as a table of tensors.
 *
 * Reads what torch.save writes: the zip format (PyTorch >= 1.6; ptzip.h) and
 * the legacy pre-1.6 stream (magic number, protocol, sys_info, the object
 * pickle, the storage key list, then each storage as a u64 element count and
 * its raw bytes). The still older tar format and the pre-1.0 PYTORCH1
 * preview archive are recognised and refused with a message naming them;
 * TorchScript archives are refused as unsafe (torch.load(weights_only=True)
 * refuses them too, CVE-2025-32434).
 *
 * The pickle goes through the restricted unpickler (unpickle.h); then every
 * storage's record must hold exactly the bytes its persistent id promises
 * (CVE-2026-24747) before any tensor points into it. Tensors are named by
 * the path of keys through nested dicts, lists and tuples joined with '.'
 * (docs/datasets-and-method.md §2); non-tensor leaves are counted, not listed.
 *
 * No tensor data is read: only the zip directory, the small text records,
 * data.pkl (or the legacy pickles and element counts).
 */
#ifndef CB_PT_H
#define CB_PT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "error.h"

struct cb_ckpt;
struct cb_pickle;

#define CB_PT_MAX_PICKLE (1ull << 30) /* bytes of data.pkl or of one legacy pickle */

struct cb_pt_storage {
	const char *key;     /* "0", "1", ... (zip) or a decimal pointer (legacy) */
	uint64_t offset;     /* absolute file offset of the storage's first byte */
	uint64_t nbytes;     /* the record's size, equal to what the pickle says */
	enum cb_dtype dtype; /* CB_DTYPE_INVALID when no tensor typed it */
};

struct cb_pt_tensor {
	const char *name; /* key path, e.g. "model.0.weight" */
	enum cb_dtype dtype;
	uint32_t rank;
	const uint64_t *shape;
	const int64_t *stride; /* element strides; NULL when contiguous row-major */
	uint64_t numel;
	uint64_t nbytes;         /* numel × element size */
	uint64_t offset;         /* absolute file offset of element 0 of the view */
	uint64_t storage_offset; /* elements from the start of the storage */
	uint32_t storage;        /* index into storages[]; shared storages share it */
	bool requires_grad;
};

struct cb_pt_file {
	char *path; /* owned */
	uint64_t file_size;
	bool legacy;          /* the pre-1.6 stream format */
	char *archive_prefix; /* zip: the record-name prefix; NULL for legacy */
	size_t n_tensors;
	struct cb_pt_tensor *tensors; /* sorted by name, byte-wise, unique */
	size_t n_storages;
	struct cb_pt_storage *storages; /* in order of first appearance */
	size_t n_other_leaves;          /* non-tensor leaves (ints, strings, ...) not listed */
	struct cb_pickle *pickle;       /* private: owns names, shapes and strides */
};

/* Opens and validates one checkpoint file. On success *out is the
 * caller's, to free with cb_pt_free. */
CB_NODISCARD int cb_pt_open(const char *path, struct cb_pt_file **out, struct cb_error *err);

void cb_pt_free(struct cb_pt_file *file);

/* Fills a PyTorch checkpoint's tensor table (cb_ckpt_open calls it once the
 * files are known): every file of ckpt->files is opened with cb_pt_open,
 * files[].size, tensors (unsorted; the caller sorts), total_bytes are set,
 * and format_private/free_private keep the opened files, which the tensors'
 * names, shapes and strides point into. */
CB_NODISCARD int cb_pt_populate(struct cb_ckpt *ckpt, struct cb_error *err);

#endif
