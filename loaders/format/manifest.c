#include "manifest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "tensor_hash.h"

#define MANIFEST_MAX_BYTES (1u << 30)

static json_t *metadata_object(const struct cb_ckpt *ckpt)
{
	if (!ckpt->has_metadata)
		return json_null();
	json_t *meta = json_object();
	for (size_t i = 0; meta && i < ckpt->n_meta; i++)
		if (json_object_set_new(meta, ckpt->meta[i].key,
					json_string(ckpt->meta[i].value))) {
			json_decref(meta);
			return NULL;
		}
	return meta;
}

static json_t *tensor_object(const struct cb_ckpt_tensor *t, const uint64_t *hash)
{
	json_t *shape = json_array();
	for (uint32_t d = 0; shape && d < t->rank; d++)
		if (json_array_append_new(shape, json_integer((json_int_t)t->shape[d]))) {
			json_decref(shape);
			return NULL;
		}
	json_t *obj = json_object();
	if (!obj || !shape || json_object_set_new(obj, "name", json_string(t->name)) ||
	    json_object_set_new(obj, "dtype", json_string(cb_dtype_name(t->dtype))) ||
	    json_object_set_new(obj, "shape", shape) ||
	    json_object_set_new(obj, "nbytes", json_integer((json_int_t)t->nbytes))) {
		json_decref(obj);
		return NULL;
	}
	if (hash) {
		char hex[17];
		cb_hash_hex(*hash, hex);
		if (json_object_set_new(obj, "xxh3", json_string(hex))) {
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
}

json_t *cb_manifest_build(const struct cb_ckpt *ckpt, const char *path, const uint64_t *hashes)
{
	json_t *root = json_object();
	json_t *tensors = json_array();
	json_t *meta = metadata_object(ckpt);
	if (!root || !tensors || !meta) {
		json_decref(root);
		json_decref(tensors);
		json_decref(meta);
		return NULL;
	}
	if (json_object_set_new(root, "path", json_string(path)) ||
	    json_object_set_new(root, "format", json_string(cb_format_name(ckpt->format))) ||
	    json_object_set_new(root, "metadata", meta) ||
	    json_object_set_new(root, "tensors", tensors)) {
		json_decref(root);
		return NULL;
	}
	for (size_t i = 0; i < ckpt->n_tensors; i++)
		if (json_array_append_new(tensors, tensor_object(&ckpt->tensors[i],
								 hashes ? &hashes[i] : NULL))) {
			json_decref(root);
			return NULL;
		}
	return root;
}

void cb_manifest_free(struct cb_manifest *manifest)
{
	if (!manifest)
		return;
	json_decref(manifest->root);
	free(manifest->tensors);
	free(manifest->shapes);
	free(manifest);
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(((const struct cb_manifest_tensor *)a)->name,
		      ((const struct cb_manifest_tensor *)b)->name);
}

const struct cb_manifest_tensor *cb_manifest_find(const struct cb_manifest *manifest,
						  const char *name)
{
	struct cb_manifest_tensor key = {.name = name};
	return bsearch(&key, manifest->tensors, manifest->n_tensors, sizeof key, compare_names);
}

static bool parse_hex64(const char *s, uint64_t *out)
{
	if (strlen(s) != 16)
		return false;
	uint64_t v = 0;
	for (int i = 0; i < 16; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return true;
}

static int read_tensor(const char *path, json_t *obj, struct cb_manifest_tensor *t,
		       uint64_t **shape_cursor, struct cb_error *err)
{
	json_t *name = json_object_get(obj, "name"), *dtype = json_object_get(obj, "dtype");
	json_t *shape = json_object_get(obj, "shape"), *nbytes = json_object_get(obj, "nbytes");
	json_t *hash = json_object_get(obj, "xxh3");
	if (!json_is_string(name) || !json_is_string(dtype) || !json_is_array(shape) ||
	    !json_is_integer(nbytes) || json_integer_value(nbytes) < 0)
		return CB_FAIL(err, CB_EFORMAT, path, NULL,
			       "manifest tensors need name, dtype, shape and nbytes");
	t->name = json_string_value(name);
	t->dtype = cb_dtype_from_name(json_string_value(dtype), json_string_length(dtype));
	if (t->dtype == CB_DTYPE_INVALID)
		return CB_FAIL(err, CB_EFORMAT, path, t->name, "unknown dtype in manifest");
	t->rank = (uint32_t)json_array_size(shape);
	t->shape = *shape_cursor;
	for (uint32_t d = 0; d < t->rank; d++) {
		json_t *dim = json_array_get(shape, d);
		if (!json_is_integer(dim) || json_integer_value(dim) < 0)
			return CB_FAIL(err, CB_EFORMAT, path, t->name, "bad shape in manifest");
		(*shape_cursor)[d] = (uint64_t)json_integer_value(dim);
	}
	*shape_cursor += t->rank;
	t->nbytes = (uint64_t)json_integer_value(nbytes);
	t->has_hash = hash != NULL;
	if (hash && (!json_is_string(hash) || !parse_hex64(json_string_value(hash), &t->xxh3)))
		return CB_FAIL(err, CB_EFORMAT, path, t->name, "bad xxh3 in manifest");
	return CB_OK;
}

int cb_manifest_read(const char *path, struct cb_manifest **out, struct cb_error *err)
{
	*out = NULL;
	char *text;
	size_t len;
	int rc = cb_read_small_file(path, MANIFEST_MAX_BYTES, &text, &len, err);
	if (rc != CB_OK)
		return rc;
	json_error_t jerr;
	struct cb_manifest *m = calloc(1, sizeof *m);
	if (!m) {
		free(text);
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	}
	m->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	json_t *tensors = json_object_get(m->root, "tensors");
	json_t *format = json_object_get(m->root, "format");
	if (!m->root || !json_is_array(tensors) || !json_is_string(format)) {
		cb_manifest_free(m);
		return CB_FAIL(err, CB_EFORMAT, path, NULL, "not a ckptbench manifest");
	}
	m->format = (char *)json_string_value(format);
	size_t n = json_array_size(tensors), dims = 0;
	for (size_t i = 0; i < n; i++)
		dims += json_array_size(json_object_get(json_array_get(tensors, i), "shape"));
	m->tensors = calloc(n ? n : 1, sizeof *m->tensors);
	m->shapes = calloc(dims ? dims : 1, sizeof *m->shapes);
	if (!m->tensors || !m->shapes) {
		cb_manifest_free(m);
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	}
	uint64_t *cursor = m->shapes;
	for (size_t i = 0; i < n; i++) {
		if ((rc = read_tensor(path, json_array_get(tensors, i), &m->tensors[i], &cursor,
				      err)) != CB_OK) {
			cb_manifest_free(m);
			return rc;
		}
		m->total_bytes += m->tensors[i].nbytes;
	}
	m->n_tensors = n;
	qsort(m->tensors, n, sizeof *m->tensors, compare_names);
	*out = m;
	return CB_OK;
}
