/* The part file (part_file.h). */
#include "part_file.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "fileio.h"
#include "tensor_hash.h"

/* A part file lists at most every tensor of a model with a few figures
 * each: far below this. */
#define PART_FILE_MAX_BYTES (64u << 20)

/* Bytes of one index of dim `dim` of tensor t (the product of the dims
 * after it, times the element size); false on overflow or a sub-byte
 * remainder. */
static bool row_bytes(const struct cb_manifest_tensor *t, unsigned dim, uint64_t *out)
{
	uint64_t numel = 1;
	for (uint32_t d = dim + 1; d < t->rank; d++)
		if (__builtin_mul_overflow(numel, t->shape[d], &numel))
			return false;
	return cb_dtype_nbytes(t->dtype, numel, out, NULL);
}

/* ------------------------------------------------------------ writing */

static json_t *tensor_json(const struct cb_manifest *m, const struct cb_slice_tensor *s,
			   uint64_t hash)
{
	const struct cb_manifest_tensor *t = &m->tensors[s->index];
	bool split =
		s->role == CB_SPLIT_COLUMN || s->role == CB_SPLIT_ROW || s->role == CB_SPLIT_VOCAB;
	uint64_t start = 0, length = t->rank ? t->shape[0] : 1, row = 0;
	unsigned dim = split ? s->dim : 0;
	if (split && row_bytes(t, dim, &row) && row) {
		start = s->first / row; /* the first run starts at row `start` */
		length = s->run_len / row;
	}
	json_t *shape = json_array();
	for (uint32_t d = 0; shape && d < s->rank; d++)
		json_array_append_new(shape, json_integer((json_int_t)s->shape[d]));
	char hex[17];
	cb_hash_hex(hash, hex);
	return json_pack("{s:s,s:s,s:I,s:I,s:I,s:o*,s:I,s:I,s:I,s:I,s:I,s:s}", "name", t->name,
			 "role", cb_split_role_name(s->role), "dim", (json_int_t)dim, "start",
			 (json_int_t)start, "length", (json_int_t)length, "shape", shape, "nbytes",
			 (json_int_t)s->nbytes, "first", (json_int_t)s->first, "run_len",
			 (json_int_t)s->run_len, "stride", (json_int_t)s->stride, "n_runs",
			 (json_int_t)s->n_runs, "xxh3", hex);
}

int cb_part_file_write(const char *path, const struct cb_manifest *m,
		       const struct cb_slice_plan *plan, const uint64_t *hashes, const char *select,
		       const char *rules, struct cb_error *err)
{
	json_t *tensors = json_array(), *unmatched = json_array(), *patterns = NULL;
	if (select) {
		struct cb_selection *sel = NULL;
		if (cb_selection_parse(select, &sel, err) != CB_OK) {
			json_decref(tensors);
			json_decref(unmatched);
			return err->code;
		}
		patterns = json_array();
		for (size_t i = 0; patterns && i < cb_selection_count(sel); i++)
			json_array_append_new(patterns, json_string(cb_selection_pattern(sel, i)));
		cb_selection_free(sel);
	}
	for (size_t i = 0; tensors && unmatched && i < plan->n; i++) {
		const struct cb_slice_tensor *s = &plan->tensors[i];
		json_array_append_new(tensors, tensor_json(m, s, hashes[i]));
		if (s->unmatched)
			json_array_append_new(unmatched, json_string(m->tensors[s->index].name));
	}
	json_t *doc = json_pack(
		"{s:s,s:{s:o*,s:I,s:I,s:s?},s:I,s:o*,s:o*}", "schema", "ckptbench-part/1",
		"selection", "select", patterns ? patterns : json_null(), "tp",
		(json_int_t)plan->tp, "rank", (json_int_t)plan->rank, "rules", rules, "asked_bytes",
		(json_int_t)plan->asked_bytes, "unmatched", unmatched, "tensors", tensors);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!text)
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	int rc = cb_write_small_file(path, text, strlen(text), err);
	free(text);
	return rc;
}

/* ------------------------------------------------------------ reading */

static bool get_u64(const json_t *o, const char *key, uint64_t *out)
{
	const json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

static enum cb_split_role role_of(const char *name, bool *ok)
{
	static const enum cb_split_role roles[] = {CB_SPLIT_WHOLE, CB_SPLIT_REPLICATE,
						   CB_SPLIT_COLUMN, CB_SPLIT_ROW, CB_SPLIT_VOCAB};
	for (size_t i = 0; name && i < sizeof roles / sizeof roles[0]; i++)
		if (strcmp(name, cb_split_role_name(roles[i])) == 0)
			return roles[i];
	*ok = false;
	return CB_SPLIT_WHOLE;
}

/* One tensor's entry, checked against the manifest: its runs lie within
 * the whole tensor and add up to its shape's bytes. */
static int read_tensor(const char *path, const struct cb_manifest *m, const json_t *e,
		       struct cb_slice_tensor *s, uint64_t *hash, struct cb_error *err)
{
	const char *name = json_string_value(json_object_get(e, "name"));
	const struct cb_manifest_tensor *t = name ? cb_manifest_find(m, name) : NULL;
	if (!t)
		return CB_FAIL(err, CB_EFORMAT, path, name,
			       "part names a tensor the manifest does not have");
	bool ok = true;
	uint64_t dim = 0, end = 0, numel = 1, nbytes = 0;
	*s = (struct cb_slice_tensor){.index = (size_t)(t - m->tensors), .name = t->name};
	s->role = role_of(json_string_value(json_object_get(e, "role")), &ok);
	ok = ok && get_u64(e, "dim", &dim) && get_u64(e, "nbytes", &s->nbytes) &&
	     get_u64(e, "first", &s->first) && get_u64(e, "run_len", &s->run_len) &&
	     get_u64(e, "stride", &s->stride) && get_u64(e, "n_runs", &s->n_runs);
	const json_t *shape = json_object_get(e, "shape");
	ok = ok && json_is_array(shape) && json_array_size(shape) == t->rank &&
	     t->rank <= CB_SLICE_MAX_RANK && (t->rank == 0 || dim < t->rank);
	for (uint32_t d = 0; ok && d < t->rank; d++) {
		const json_t *v = json_array_get(shape, d);
		ok = json_is_integer(v) && json_integer_value(v) >= 0 &&
		     (uint64_t)json_integer_value(v) <= t->shape[d];
		if (ok) {
			s->shape[d] = (uint64_t)json_integer_value(v);
			ok = !__builtin_mul_overflow(numel, s->shape[d], &numel);
		}
	}
	s->rank = t->rank;
	s->dim = (unsigned)dim;
	/* The runs: n_runs × run_len == nbytes == the shape's bytes, and the
	 * last run ends within the whole tensor. */
	ok = ok && cb_dtype_nbytes(t->dtype, numel, &nbytes, NULL) && nbytes == s->nbytes &&
	     !__builtin_mul_overflow(s->n_runs, s->run_len, &end) && end == s->nbytes &&
	     s->stride >= s->run_len &&
	     (s->n_runs == 0 ||
	      (!__builtin_mul_overflow(s->n_runs - 1, s->stride, &end) &&
	       !__builtin_add_overflow(end, s->first, &end) &&
	       !__builtin_add_overflow(end, s->run_len, &end) && end <= t->nbytes));
	const char *hex = json_string_value(json_object_get(e, "xxh3"));
	char *stop = NULL;
	ok = ok && hex && strlen(hex) == 16;
	if (ok) {
		*hash = strtoull(hex, &stop, 16);
		ok = *stop == '\0';
	}
	if (!ok)
		return CB_FAIL(err, CB_EFORMAT, path, t->name,
			       "part does not fit the manifest's tensor");
	return CB_OK;
}

int cb_part_file_read(const char *path, const struct cb_manifest *m, struct cb_slice_plan *plan_out,
		      uint64_t **hashes_out, struct cb_error *err)
{
	*plan_out = (struct cb_slice_plan){.tp = 1};
	*hashes_out = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc = cb_read_small_file(path, PART_FILE_MAX_BYTES, &text, &len, err);
	if (rc != CB_OK)
		return rc;
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, 0, &jerr);
	free(text);
	const json_t *tensors = json_object_get(doc, "tensors");
	const json_t *sel = json_object_get(doc, "selection");
	const char *schema = json_string_value(json_object_get(doc, "schema"));
	uint64_t tp = 0, rank = 0;
	if (!schema || strcmp(schema, "ckptbench-part/1") != 0 || !json_is_array(tensors) ||
	    !get_u64(sel, "tp", &tp) || !get_u64(sel, "rank", &rank) || tp == 0 || rank >= tp ||
	    tp > UINT32_MAX || json_array_size(tensors) > m->n_tensors) {
		json_decref(doc);
		return CB_FAIL(err, CB_EFORMAT, path, NULL, "not a ckptbench-part/1 document");
	}
	size_t n = json_array_size(tensors);
	plan_out->tensors = calloc(n ? n : 1, sizeof *plan_out->tensors);
	*hashes_out = calloc(n ? n : 1, sizeof **hashes_out);
	if (!plan_out->tensors || !*hashes_out)
		rc = CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	plan_out->tp = (unsigned)tp;
	plan_out->rank = (unsigned)rank;
	for (size_t i = 0; rc == CB_OK && i < n; i++) {
		struct cb_slice_tensor *s = &plan_out->tensors[i];
		rc = read_tensor(path, m, json_array_get(tensors, i), s, &(*hashes_out)[i], err);
		if (rc == CB_OK) {
			plan_out->n++;
			plan_out->asked_bytes += s->nbytes; /* each bounded by a tensor's */
		}
	}
	snprintf(plan_out->key, sizeof plan_out->key, "part");
	json_decref(doc);
	if (rc != CB_OK) {
		cb_slice_plan_free(plan_out);
		free(*hashes_out);
		*hashes_out = NULL;
	}
	return rc;
}
