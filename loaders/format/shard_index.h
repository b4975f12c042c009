/* The Hugging Face sharded layout: `<prefix>.index.json` holding
 * {"metadata": {"total_size": N, ...}, "weight_map": {tensor: shard file}}
 * beside the shard files. Shard names are plain file names in the index's
 * directory; anything with a path separator is refused, so an index can
 * never point a reader outside its directory.
 */
#ifndef CB_SHARD_INDEX_H
#define CB_SHARD_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct cb_ckpt;

#define CB_SHARD_INDEX_MAX_BYTES (256u << 20)

struct cb_shard_index {
	char *path; /* the index file */
	size_t n_files;
	char **files; /* full paths of the shards, sorted (= index order) */
	size_t n_entries;
	char **names;      /* weight_map keys, sorted byte-wise */
	uint32_t *file_of; /* per entry: index into files */
};

/* Reads and checks an index: JSON object, weight_map of string to plain file
 * name, no duplicate keys; every named shard exists. */
CB_NODISCARD int cb_shard_index_open(const char *path, struct cb_shard_index **out,
				     struct cb_error *err);

/* Checks the index against the tensors actually found in the shards: each
 * mapped tensor is in the shard it names, and each tensor of a shard is
 * mapped. `ckpt` must hold the shards in the index's file order. */
CB_NODISCARD int cb_shard_index_check(const struct cb_shard_index *index,
				      const struct cb_ckpt *ckpt, struct cb_error *err);

void cb_shard_index_free(struct cb_shard_index *index);

/* Writes an index for tensors `names[i]` held in shard `shard_names[file_of[i]]`
 * (plain file names), atomically. */
CB_NODISCARD int cb_shard_index_write(const char *path, uint64_t total_size,
				      const char *const *names, const uint32_t *file_of, size_t n,
				      const char *const *shard_names, struct cb_error *err);

#endif
