/* A checkpoint as one model: every tensor's name, type, shape and where its
 * bytes lie, whatever the format and however many files hold it.
 *
 * This is what `inspect`, the manifest, `convert` and the loaders' planning
 * share. Opening reads and validates headers and indexes only, never tensor
 * data. A PATH is a checkpoint file, a sharded directory (Hugging Face layout,
 * `*.index.json` + shards), a dataset directory made by `gen`, or an index
 * file itself.
 */
#ifndef CB_CKPT_H
#define CB_CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "error.h"
#include "safetensors.h"

enum cb_format {
	CB_FORMAT_ANY = 0, /* for cb_ckpt_open: take what is there */
	CB_FORMAT_SAFETENSORS,
	CB_FORMAT_PYTORCH,
};

/* "safetensors", "pytorch", "any". */
const char *cb_format_name(enum cb_format format);

struct cb_ckpt_file {
	char *path; /* owned */
	uint64_t size;
};

struct cb_ckpt_tensor {
	const char *name; /* owned by the checkpoint */
	enum cb_dtype dtype;
	uint32_t rank;
	const uint64_t *shape; /* rank entries */
	uint64_t numel;
	uint64_t nbytes; /* logical bytes: numel × bits / 8 */
	uint32_t file;   /* index into files[] */
	uint64_t offset; /* absolute file offset of the first element */
	/* Element strides of a view into a larger storage (PyTorch); NULL when
	 * the tensor is contiguous row-major, as every safetensors tensor is. */
	const int64_t *stride;
	uint64_t storage_offset; /* elements; the storage's bytes start at
				  * offset - storage_offset × element size */
	uint64_t storage_nbytes; /* bytes of the whole storage record */
};

struct cb_ckpt {
	enum cb_format format;
	char *path; /* as given; owned */
	bool sharded;
	size_t n_files;
	struct cb_ckpt_file *files; /* in index order */
	size_t n_tensors;
	struct cb_ckpt_tensor *tensors; /* sorted by name, byte-wise */
	bool has_metadata;
	size_t n_meta;
	const struct cb_kv *meta; /* borrowed from the first file */
	uint64_t total_bytes;     /* sum of nbytes */
	/* private: what the tensors point into */
	struct cb_st_file **st_files;
	void *format_private;
	void (*free_private)(void *format_private);
};

/* Opens PATH as one model. `want` picks the format where a directory holds
 * both (CB_FORMAT_ANY prefers safetensors). On success *out is the caller's,
 * to free with cb_ckpt_free. */
CB_NODISCARD int cb_ckpt_open(const char *path, enum cb_format want, struct cb_ckpt **out,
			      struct cb_error *err);

void cb_ckpt_free(struct cb_ckpt *ckpt);

/* Binary search by name; NULL when absent. */
const struct cb_ckpt_tensor *cb_ckpt_find(const struct cb_ckpt *ckpt, const char *name);

/* The path of the file that holds a tensor. */
static inline const char *cb_ckpt_tensor_path(const struct cb_ckpt *ckpt,
					      const struct cb_ckpt_tensor *t)
{
	return ckpt->files[t->file].path;
}

#endif
