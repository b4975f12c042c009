#include "shard_index.h"

#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt.h"
#include "fileio.h"

void cb_shard_index_free(struct cb_shard_index *index)
{
	if (!index)
		return;
	for (size_t i = 0; i < index->n_files; i++)
		free(index->files[i]);
	for (size_t i = 0; i < index->n_entries; i++)
		free(index->names[i]);
	free(index->files);
	free(index->names);
	free(index->file_of);
	free(index->path);
	free(index);
}

static bool plain_file_name(const char *name)
{
	return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
	       strcmp(name, "..") != 0;
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct entry {
	const char *name;
	const char *file;
};

static int compare_entries(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static int find_file(const struct cb_shard_index *index, const char *dir, const char *file)
{
	for (size_t i = 0; i < index->n_files; i++) {
		const char *base = index->files[i] + strlen(dir) + 1;
		if (strcmp(base, file) == 0)
			return (int)i;
	}
	return -1;
}

static int collect(struct cb_shard_index *index, const char *dir, json_t *map, struct cb_error *err)
{
	size_t n = json_object_size(map);
	struct entry *entries = calloc(n ? n : 1, sizeof *entries);
	char **names = calloc(n ? n : 1, sizeof *names);
	if (!entries || !names) {
		free(entries);
		free(names);
		return CB_FAIL(err, CB_ENOMEM, index->path, NULL, "out of memory");
	}
	size_t k = 0, n_unique = 0;
	const char *key;
	json_t *value;
	int rc = CB_OK;
	json_object_foreach(map, key, value)
	{
		if (!json_is_string(value) || !plain_file_name(json_string_value(value))) {
			char where[300];
			snprintf(where, sizeof where, "tensor \"%.200s\"", key);
			rc = CB_FAIL(err, CB_EFORMAT, index->path, where,
				     "weight_map must name a plain file in the index's directory");
			goto out;
		}
		entries[k++] = (struct entry){key, json_string_value(value)};
	}
	/* The distinct shard files, sorted: the order of HF's -0000K-of-0000N. */
	for (size_t i = 0; i < n; i++)
		names[i] = (char *)entries[i].file;
	qsort(names, n, sizeof *names, compare_strings);
	index->files = calloc(n ? n : 1, sizeof *index->files);
	if (!index->files) {
		rc = CB_FAIL(err, CB_ENOMEM, index->path, NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(names[i], names[i - 1]) == 0)
			continue;
		char *full = cb_path_join(dir, names[i]);
		struct stat st;
		if (!full) {
			rc = CB_FAIL(err, CB_ENOMEM, index->path, NULL, "out of memory");
			goto out;
		}
		index->files[n_unique++] = full;
		index->n_files = n_unique;
		if (stat(full, &st) != 0) {
			rc = CB_FAIL(err, CB_EFORMAT, index->path, NULL,
				     "the shard %s named in weight_map does not exist", names[i]);
			goto out;
		}
	}
	qsort(entries, n, sizeof *entries, compare_entries);
	index->names = calloc(n ? n : 1, sizeof *index->names);
	index->file_of = calloc(n ? n : 1, sizeof *index->file_of);
	if (!index->names || !index->file_of) {
		rc = CB_FAIL(err, CB_ENOMEM, index->path, NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		index->names[i] = strdup(entries[i].name);
		if (!index->names[i]) {
			rc = CB_FAIL(err, CB_ENOMEM, index->path, NULL, "out of memory");
			goto out;
		}
		index->n_entries = i + 1;
		index->file_of[i] = (uint32_t)find_file(index, dir, entries[i].file);
	}
out:
	free(entries);
	free(names);
	return rc;
}

int cb_shard_index_open(const char *path, struct cb_shard_index **out, struct cb_error *err)
{
	*out = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc = cb_read_small_file(path, CB_SHARD_INDEX_MAX_BYTES, &text, &len, err);
	if (rc != CB_OK)
		return rc;
	json_error_t jerr;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (!root) {
		char where[64];
		snprintf(where, sizeof where, "byte %d", jerr.position);
		return CB_FAIL(err, CB_EFORMAT, path, where, "invalid JSON in index: %s",
			       jerr.text);
	}
	json_t *map = json_object_get(root, "weight_map");
	if (!json_is_object(root) || !json_is_object(map)) {
		json_decref(root);
		return CB_FAIL(err, CB_EFORMAT, path, NULL,
			       "an index must be an object with a \"weight_map\" object");
	}
	struct cb_shard_index *index = calloc(1, sizeof *index);
	char *copy = strdup(path);
	if (!index || !copy || !(index->path = strdup(path))) {
		free(index);
		free(copy);
		json_decref(root);
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	}
	rc = collect(index, dirname(copy), map, err);
	free(copy);
	json_decref(root);
	if (rc != CB_OK) {
		cb_shard_index_free(index);
		return rc;
	}
	*out = index;
	return CB_OK;
}

int cb_shard_index_check(const struct cb_shard_index *index, const struct cb_ckpt *ckpt,
			 struct cb_error *err)
{
	/* Both lists are sorted by name: walk them together. */
	size_t i = 0, k = 0;
	char where[300];
	while (i < index->n_entries || k < ckpt->n_tensors) {
		int order = i == index->n_entries  ? 1
			    : k == ckpt->n_tensors ? -1
						   : strcmp(index->names[i], ckpt->tensors[k].name);
		if (order < 0) {
			snprintf(where, sizeof where, "tensor \"%.200s\"", index->names[i]);
			return CB_FAIL(err, CB_EFORMAT, index->path, where,
				       "weight_map names a tensor that %s does not hold",
				       index->files[index->file_of[i]]);
		}
		const struct cb_ckpt_tensor *t = &ckpt->tensors[k];
		snprintf(where, sizeof where, "tensor \"%.200s\"", t->name);
		if (order > 0)
			return CB_FAIL(err, CB_EFORMAT, index->path, where,
				       "the tensor is in %s but not in weight_map",
				       ckpt->files[t->file].path);
		if (index->file_of[i] != t->file)
			return CB_FAIL(err, CB_EFORMAT, index->path, where,
				       "weight_map puts the tensor in %s but it is in %s",
				       index->files[index->file_of[i]], ckpt->files[t->file].path);
		i++;
		k++;
	}
	return CB_OK;
}

int cb_shard_index_write(const char *path, uint64_t total_size, const char *const *names,
			 const uint32_t *file_of, size_t n, const char *const *shard_names,
			 struct cb_error *err)
{
	json_t *root = json_object();
	json_t *meta = json_object();
	json_t *map = json_object();
	int rc = CB_OK;
	if (!root || !meta || !map ||
	    json_object_set_new(meta, "total_size", json_integer((json_int_t)total_size)) ||
	    json_object_set_new(root, "metadata", meta) ||
	    json_object_set_new(root, "weight_map", map)) {
		rc = CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
		goto out;
	}
	meta = map = NULL; /* owned by root now */
	json_t *weight_map = json_object_get(root, "weight_map");
	for (size_t i = 0; i < n; i++)
		if (json_object_set_new(weight_map, names[i],
					json_string(shard_names[file_of[i]]))) {
			rc = CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
			goto out;
		}
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text) {
		rc = CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
		goto out;
	}
	size_t len = strlen(text);
	text[len] = '\n'; /* json_dumps leaves room only for the NUL: rewrite */
	rc = cb_write_small_file(path, text, len + 1, err);
	free(text);
out:
	json_decref(meta);
	json_decref(map);
	json_decref(root);
	return rc;
}
