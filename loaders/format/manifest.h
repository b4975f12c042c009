/* The `inspect --json` document of a model (docs/datasets-and-method.md §2),
 * which `gen` also writes beside each dataset as manifest.json so the
 * harness never has to hash a dataset again.
 */
#ifndef CB_MANIFEST_H
#define CB_MANIFEST_H

#include <jansson.h>
#include <stdint.h>

#include "ckpt.h"
#include "error.h"

/* Builds the document: {"path", "format", "metadata", "tensors": [...]},
 * tensors in the checkpoint's (name) order. `hashes` may be NULL (no
 * "xxh3" keys). Returns a new reference, NULL on ENOMEM. */
json_t *cb_manifest_build(const struct cb_ckpt *ckpt, const char *path, const uint64_t *hashes);

/* One tensor as the manifest records it. */
struct cb_manifest_tensor {
	const char *name;
	enum cb_dtype dtype;
	uint32_t rank;
	const uint64_t *shape;
	uint64_t nbytes;
	uint64_t xxh3;
	bool has_hash;
};

struct cb_manifest {
	char *format;
	size_t n_tensors;
	struct cb_manifest_tensor *tensors; /* sorted by name */
	uint64_t total_bytes;
	/* private */
	json_t *root;
	uint64_t *shapes;
};

/* Reads and checks a manifest file. The caller frees *out with
 * cb_manifest_free. */
CB_NODISCARD int cb_manifest_read(const char *path, struct cb_manifest **out, struct cb_error *err);
void cb_manifest_free(struct cb_manifest *manifest);

/* Binary search by name; NULL when absent. */
const struct cb_manifest_tensor *cb_manifest_find(const struct cb_manifest *manifest,
						  const char *name);

#endif
