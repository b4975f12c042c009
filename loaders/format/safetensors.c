/* safetensors reader and writer. See safetensors.h for the rules and where
 * they depart from the reference.
 *
 * The JSON itself is parsed by jansson (strict UTF-8, duplicate keys refused,
 * byte positions in its errors). Two cheap passes run before it so that the
 * errors name the rule the way a user needs: a UTF-8 check (the reference's
 * InvalidHeader) and a nesting-depth scan (jansson's own bound is 2048
 * recursive levels; ours is far lower and reported with its byte offset).
 */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "fileio.h"
#include "utf8.h"

#define LENGTH_FIELD 8u

static uint64_t read_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void byte_where(char *buf, size_t size, uint64_t offset)
{
	snprintf(buf, size, "byte %" PRIu64, offset);
}

static void tensor_where(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "tensor \"%.200s\"", name);
}

/* Most "header too large" reports in the wild are files that are not
 * safetensors at all; say what the first bytes look like. */
static const char *guess_other_format(const uint8_t *first8)
{
	if (memcmp(first8, "PK\x03\x04", 4) == 0)
		return "; it starts like a zip archive (a PyTorch .pt/.bin checkpoint?)";
	if (first8[0] == 0x80 && first8[1] <= 5)
		return "; it starts like a Python pickle (a legacy PyTorch checkpoint?)";
	if (memcmp(first8, "version ", 8) == 0)
		return "; it starts like a Git LFS pointer, not the model itself";
	bool text = true;
	for (int i = 0; i < 8; i++)
		if (first8[i] < 0x09 || first8[i] > 0x7e)
			text = false;
	/* Only text counts as markup: a binary length field whose low byte is
	 * 60 ('<') is not a web page. */
	if (text && first8[0] == '<')
		return "; it starts like an HTML or XML page (a failed download?)";
	return text ? "; its first 8 bytes are text, so it is probably not safetensors" : "";
}

static int check_length_field(const char *label, const uint8_t *first8, uint64_t file_size,
			      struct cb_error *err)
{
	uint64_t n = read_le64(first8);
	if (n > CB_ST_MAX_HEADER)
		return CB_FAIL(err, CB_EFORMAT, label, "byte 0",
			       "header too large: the length field says %" PRIu64
			       " bytes, the limit is %u%s",
			       n, CB_ST_MAX_HEADER, guess_other_format(first8));
	if (n > file_size - LENGTH_FIELD)
		return CB_FAIL(err, CB_EFORMAT, label, "byte 0",
			       "invalid header length: the %" PRIu64
			       "-byte header runs past the end of the %" PRIu64 "-byte file",
			       n, file_size);
	return CB_OK;
}

static int too_small(const char *label, uint64_t file_size, struct cb_error *err)
{
	return CB_FAIL(err, CB_EFORMAT, label, "byte 0",
		       "header too small: the file has %" PRIu64
		       " bytes, fewer than the 8 of the length field",
		       file_size);
}

/* Bounds nesting before jansson recurses into it. Strings are skipped with
 * their escapes, so brackets inside names do not count. */
static int check_depth(const char *label, const uint8_t *json, uint64_t n, struct cb_error *err)
{
	unsigned depth = 0;
	bool in_string = false;
	for (uint64_t i = 0; i < n; i++) {
		uint8_t c = json[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
			continue;
		}
		if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			if (++depth > CB_ST_MAX_DEPTH) {
				char where[64];
				byte_where(where, sizeof where, LENGTH_FIELD + i);
				return CB_FAIL(err, CB_ELIMIT, label, where,
					       "JSON nesting deeper than %d levels",
					       CB_ST_MAX_DEPTH);
			}
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
		}
	}
	return CB_OK;
}

static int json_failure(const char *label, const json_error_t *jerr, struct cb_error *err)
{
	char where[64];
	byte_where(where, sizeof where, LENGTH_FIELD + (uint64_t)jerr->position);
	if (strstr(jerr->text, "duplicate object key"))
		return CB_FAIL(err, CB_EFORMAT, label, where,
			       "duplicate key in header: refused (the reference would "
			       "silently keep the last one)");
	if (strstr(jerr->text, "too big integer"))
		return CB_FAIL(err, CB_EFORMAT, label, where,
			       "invalid JSON in header: integer out of range (above 2^63-1)");
	if (strstr(jerr->text, "\\u0000"))
		return CB_FAIL(err, CB_EFORMAT, label, where,
			       "invalid JSON in header: NUL (\\u0000) in a string is refused");
	return CB_FAIL(err, CB_EFORMAT, label, where, "invalid JSON in header: %s", jerr->text);
}

/* ------------------------------------------------------------ header walk */

struct pending_tensor {
	struct cb_st_tensor tensor;
	bool numel_overflow;
};

struct parse_state {
	const char *label;
	struct cb_st_file *file;
	char *strings_cursor;
	uint64_t *shapes_cursor;
	/* Tensors as walked, with the overflow found while walking: it is
	 * reported only in sorted order, as the reference does (offsets first,
	 * then overflow, then alignment). */
	struct pending_tensor *pending;
};

static char *copy_string(struct parse_state *ps, const char *s, size_t len)
{
	char *out = ps->strings_cursor;
	memcpy(out, s, len);
	out[len] = '\0';
	ps->strings_cursor += len + 1;
	return out;
}

static int parse_metadata(struct parse_state *ps, json_t *value, struct cb_error *err)
{
	struct cb_st_file *file = ps->file;
	if (!json_is_object(value))
		return CB_FAIL(err, CB_EFORMAT, ps->label, "key \"__metadata__\"",
			       "invalid JSON in header: __metadata__ must be an object of "
			       "strings, not %s",
			       json_is_null(value) ? "null" : "another JSON type");
	file->has_metadata = true;
	const char *key;
	json_t *item;
	json_object_foreach(value, key, item)
	{
		if (!json_is_string(item))
			return CB_FAIL(err, CB_EFORMAT, ps->label, "key \"__metadata__\"",
				       "invalid JSON in header: __metadata__ value of \"%.200s\" "
				       "is not a string",
				       key);
		struct cb_kv *kv = &file->meta[file->n_meta++];
		kv->key = copy_string(ps, key, strlen(key));
		kv->value = copy_string(ps, json_string_value(item), json_string_length(item));
	}
	return CB_OK;
}

static bool json_to_u64(json_t *v, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

static int entry_error(struct parse_state *ps, const char *name, const char *what,
		       struct cb_error *err)
{
	char where[256];
	tensor_where(where, sizeof where, name);
	return CB_FAIL(err, CB_EFORMAT, ps->label, where, "invalid JSON in header: %s", what);
}

static int parse_tensor(struct parse_state *ps, const char *name, json_t *entry,
			struct cb_error *err)
{
	struct cb_st_file *file = ps->file;
	if (!json_is_object(entry))
		return entry_error(ps, name, "a tensor entry must be an object", err);
	json_t *dtype = json_object_get(entry, "dtype");
	json_t *shape = json_object_get(entry, "shape");
	json_t *offsets = json_object_get(entry, "data_offsets");
	if (!dtype)
		return entry_error(ps, name, "missing field \"dtype\"", err);
	if (!shape)
		return entry_error(ps, name, "missing field \"shape\"", err);
	if (!offsets)
		return entry_error(ps, name, "missing field \"data_offsets\"", err);
	if (!json_is_string(dtype))
		return entry_error(ps, name, "\"dtype\" must be a string", err);

	struct pending_tensor *pending = &ps->pending[file->n_tensors];
	struct cb_st_tensor *t = &pending->tensor;
	t->dtype = cb_dtype_from_name(json_string_value(dtype), json_string_length(dtype));
	if (t->dtype == CB_DTYPE_INVALID) {
		char what[320];
		snprintf(what, sizeof what, "unknown dtype \"%.64s\"", json_string_value(dtype));
		return entry_error(ps, name, what, err);
	}
	if (!json_is_array(shape))
		return entry_error(ps, name, "\"shape\" must be an array of non-negative integers",
				   err);
	size_t rank = json_array_size(shape);
	if (rank > CB_ST_MAX_RANK) {
		char where[256];
		tensor_where(where, sizeof where, name);
		return CB_FAIL(err, CB_ELIMIT, ps->label, where,
			       "rank %zu is above the limit of %d", rank, CB_ST_MAX_RANK);
	}
	t->rank = (uint32_t)rank;
	t->shape = ps->shapes_cursor;
	ps->shapes_cursor += rank;
	uint64_t numel = 1;
	bool overflow = false;
	for (size_t d = 0; d < rank; d++) {
		uint64_t dim;
		if (!json_to_u64(json_array_get(shape, d), &dim))
			return entry_error(ps, name,
					   "\"shape\" must be an array of non-negative integers",
					   err);
		((uint64_t *)t->shape)[d] = dim;
		if (__builtin_mul_overflow(numel, dim, &numel))
			overflow = true;
	}
	/* A zero dimension makes the product 0 whatever overflowed before it,
	 * but the reference's try_fold stops at the first overflow: keep its
	 * verdict. */
	t->numel = overflow ? 0 : numel;
	pending->numel_overflow = overflow;

	if (!json_is_array(offsets) || json_array_size(offsets) != 2 ||
	    !json_to_u64(json_array_get(offsets, 0), &t->begin) ||
	    !json_to_u64(json_array_get(offsets, 1), &t->end))
		return entry_error(ps, name,
				   "\"data_offsets\" must be an array of two non-negative integers",
				   err);
	t->name = copy_string(ps, name, strlen(name));
	file->n_tensors++;
	return CB_OK;
}

/* First pass: how much to allocate, and the limits. */
static int measure(struct parse_state *ps, json_t *root, size_t *n_tensors, size_t *n_meta,
		   size_t *string_bytes, size_t *shape_dims, struct cb_error *err)
{
	const char *key;
	json_t *value;
	*n_tensors = *n_meta = *string_bytes = *shape_dims = 0;
	json_object_foreach(root, key, value)
	{
		size_t key_len = strlen(key);
		if (strcmp(key, "__metadata__") == 0) {
			const char *k;
			json_t *v;
			if (json_is_object(value))
				json_object_foreach(value, k, v)
				{
					(*n_meta)++;
					*string_bytes +=
						strlen(k) + 1 +
						(json_is_string(v) ? json_string_length(v) : 0) + 1;
				}
			continue;
		}
		if (key_len > CB_ST_MAX_NAME)
			return CB_FAIL(err, CB_ELIMIT, ps->label, NULL,
				       "a tensor name of %zu bytes is above the limit of %d",
				       key_len, CB_ST_MAX_NAME);
		if (++*n_tensors > CB_ST_MAX_TENSORS)
			return CB_FAIL(err, CB_ELIMIT, ps->label, NULL, "more than %u tensors",
				       CB_ST_MAX_TENSORS);
		*string_bytes += key_len + 1;
		json_t *shape = json_is_object(value) ? json_object_get(value, "shape") : NULL;
		if (json_is_array(shape) && json_array_size(shape) <= CB_ST_MAX_RANK)
			*shape_dims += json_array_size(shape);
	}
	return CB_OK;
}

static int compare_by_offsets(const void *a, const void *b)
{
	const struct cb_st_tensor *x = &((const struct pending_tensor *)a)->tensor;
	const struct cb_st_tensor *y = &((const struct pending_tensor *)b)->tensor;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void shape_text(const struct cb_st_tensor *t, char *buf, size_t size)
{
	size_t used = (size_t)snprintf(buf, size, "[");
	for (uint32_t d = 0; d < t->rank && used < size; d++)
		used += (size_t)snprintf(buf + used, size - used, "%s%" PRIu64, d ? "," : "",
					 t->shape[d]);
	if (used < size)
		snprintf(buf + used, size - used, "]");
}

/* The reference's Metadata::validate(), with messages that say which way the
 * tiling broke. Precondition: tensors sorted by (begin, end). */
static int validate_tiling(struct parse_state *ps, struct cb_error *err)
{
	struct cb_st_file *file = ps->file;
	uint64_t expected_begin = 0;
	char where[256];
	for (size_t i = 0; i < file->n_tensors; i++) {
		const struct cb_st_tensor *t = &ps->pending[i].tensor;
		tensor_where(where, sizeof where, t->name);
		if (t->end < t->begin)
			return CB_FAIL(err, CB_EFORMAT, ps->label, where,
				       "invalid offset: data_offsets [%" PRIu64 ", %" PRIu64
				       "] end before they begin",
				       t->begin, t->end);
		if (t->begin != expected_begin)
			return CB_FAIL(err, CB_EFORMAT, ps->label, where,
				       "invalid offset: data_offsets [%" PRIu64 ", %" PRIu64
				       "] should begin at %" PRIu64 " (%s)",
				       t->begin, t->end, expected_begin,
				       t->begin > expected_begin
					       ? (i == 0 ? "the first tensor must begin at 0"
							 : "a hole in the data buffer")
					       : "overlaps the tensor before it");
		expected_begin = t->end;
		if (ps->pending[i].numel_overflow)
			return CB_FAIL(err, CB_EFORMAT, ps->label, where,
				       "validation overflow: the element count of the shape "
				       "overflows 64 bits");
		bool misaligned;
		uint64_t nbytes;
		if (!cb_dtype_nbytes(t->dtype, t->numel, &nbytes, &misaligned)) {
			if (misaligned)
				return CB_FAIL(err, CB_EFORMAT, ps->label, where,
					       "misaligned slice: %" PRIu64 " elements of %s are "
					       "not a whole number of bytes",
					       t->numel, cb_dtype_name(t->dtype));
			return CB_FAIL(err, CB_EFORMAT, ps->label, where,
				       "validation overflow: %" PRIu64 " elements of %s "
				       "overflow 64 bits",
				       t->numel, cb_dtype_name(t->dtype));
		}
		if (t->end - t->begin != nbytes) {
			char shape[256];
			shape_text(t, shape, sizeof shape);
			return CB_FAIL(err, CB_EFORMAT, ps->label, where,
				       "invalid tensor info: %s of shape %s needs %" PRIu64
				       " bytes but data_offsets [%" PRIu64 ", %" PRIu64
				       "] hold %" PRIu64,
				       cb_dtype_name(t->dtype), shape, nbytes, t->begin, t->end,
				       t->end - t->begin);
		}
	}
	uint64_t data_size = file->file_size - file->data_start;
	if (expected_begin != data_size)
		return CB_FAIL(err, CB_EFORMAT, ps->label, NULL,
			       "incomplete metadata: the tensors cover %" PRIu64
			       " bytes of data but the file holds %" PRIu64 " (%s)",
			       expected_begin, data_size,
			       expected_begin < data_size ? "trailing bytes after the last tensor"
							  : "the file is cut short");
	return CB_OK;
}

static uint64_t name_hash(const char *name)
{
	return XXH3_64bits(name, strlen(name));
}

static int build_index(struct cb_st_file *file, struct cb_error *err)
{
	size_t slots = 16;
	while (slots < file->n_tensors * 2)
		slots <<= 1;
	file->index = malloc(slots * sizeof *file->index);
	if (!file->index)
		return CB_FAIL(err, CB_ENOMEM, file->label, NULL, "out of memory");
	memset(file->index, 0xff, slots * sizeof *file->index);
	file->index_mask = slots - 1;
	for (size_t i = 0; i < file->n_tensors; i++) {
		size_t slot = name_hash(file->tensors[i].name) & file->index_mask;
		while (file->index[slot] != UINT32_MAX)
			slot = (slot + 1) & file->index_mask;
		file->index[slot] = (uint32_t)i;
	}
	return CB_OK;
}

const struct cb_st_tensor *cb_st_find(const struct cb_st_file *file, const char *name)
{
	size_t slot = name_hash(name) & file->index_mask;
	while (file->index[slot] != UINT32_MAX) {
		const struct cb_st_tensor *t = &file->tensors[file->index[slot]];
		if (strcmp(t->name, name) == 0)
			return t;
		slot = (slot + 1) & file->index_mask;
	}
	return NULL;
}

uint64_t cb_st_data_size(const struct cb_st_file *file)
{
	return file->file_size - file->data_start;
}

void cb_st_free(struct cb_st_file *file)
{
	if (!file)
		return;
	free(file->label);
	free(file->tensors);
	free(file->meta);
	free(file->strings);
	free(file->shapes);
	free(file->index);
	free(file);
}

static int fill_from_json(struct parse_state *ps, json_t *root, struct cb_error *err)
{
	struct cb_st_file *file = ps->file;
	size_t n_tensors, n_meta, string_bytes, shape_dims;
	int rc = measure(ps, root, &n_tensors, &n_meta, &string_bytes, &shape_dims, err);
	if (rc != CB_OK)
		return rc;
	file->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *file->tensors);
	ps->pending = calloc(n_tensors ? n_tensors : 1, sizeof *ps->pending);
	file->meta = calloc(n_meta ? n_meta : 1, sizeof *file->meta);
	file->strings = malloc(string_bytes ? string_bytes : 1);
	file->shapes = malloc((shape_dims ? shape_dims : 1) * sizeof *file->shapes);
	if (!file->tensors || !ps->pending || !file->meta || !file->strings || !file->shapes)
		return CB_FAIL(err, CB_ENOMEM, ps->label, NULL, "out of memory");
	ps->strings_cursor = file->strings;
	ps->shapes_cursor = file->shapes;

	const char *key;
	json_t *value;
	json_object_foreach(root, key, value)
	{
		rc = strcmp(key, "__metadata__") == 0 ? parse_metadata(ps, value, err)
						      : parse_tensor(ps, key, value, err);
		if (rc != CB_OK)
			return rc;
	}
	qsort(ps->pending, file->n_tensors, sizeof *ps->pending, compare_by_offsets);
	rc = validate_tiling(ps, err);
	if (rc != CB_OK)
		return rc;
	for (size_t i = 0; i < file->n_tensors; i++)
		file->tensors[i] = ps->pending[i].tensor;
	return build_index(file, err);
}

int cb_st_parse_header(const char *label, const void *json_bytes, uint64_t n, uint64_t file_size,
		       struct cb_st_file **out, struct cb_error *err)
{
	*out = NULL;
	if (file_size < LENGTH_FIELD)
		return too_small(label, file_size, err);
	if (n > CB_ST_MAX_HEADER || n > file_size - LENGTH_FIELD)
		return CB_FAIL(err, CB_EFORMAT, label, "byte 0",
			       "invalid header length %" PRIu64 " for a %" PRIu64 "-byte file", n,
			       file_size);
	const uint8_t *json = json_bytes;
	uint64_t bad_at;
	if (!cb_utf8_valid(json, (size_t)n, &bad_at)) {
		char where[64];
		byte_where(where, sizeof where, LENGTH_FIELD + bad_at);
		return CB_FAIL(err, CB_EFORMAT, label, where, "invalid UTF-8 in header");
	}
	/* jansson stops at a raw NUL and reports "end of file expected near end
	 * of file"; NUL padding is a known third-party writer bug (the
	 * reference refuses it as trailing characters), so name it. */
	const uint8_t *nul = memchr(json, 0, (size_t)n);
	if (nul) {
		char where[64];
		byte_where(where, sizeof where, LENGTH_FIELD + (uint64_t)(nul - json));
		return CB_FAIL(err, CB_EFORMAT, label, where,
			       "invalid JSON in header: a NUL byte (headers are padded with "
			       "spaces, not NULs)");
	}
	int rc = check_depth(label, json, n, err);
	if (rc != CB_OK)
		return rc;
	json_error_t jerr;
	json_t *root = json_loadb((const char *)json, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return json_failure(label, &jerr, err);
	if (!json_is_object(root)) {
		json_decref(root);
		return CB_FAIL(err, CB_EFORMAT, label, "byte 8",
			       "invalid JSON in header: the top level must be an object");
	}
	struct cb_st_file *file = calloc(1, sizeof *file);
	struct parse_state ps = {.label = label, .file = file};
	if (!file || !(file->label = strdup(label ? label : ""))) {
		free(file);
		json_decref(root);
		return CB_FAIL(err, CB_ENOMEM, label, NULL, "out of memory");
	}
	file->file_size = file_size;
	file->header_len = n;
	file->data_start = LENGTH_FIELD + n;
	rc = fill_from_json(&ps, root, err);
	json_decref(root);
	free(ps.pending);
	if (rc != CB_OK) {
		cb_st_free(file);
		return rc;
	}
	*out = file;
	return CB_OK;
}

int cb_st_parse_buffer(const char *label, const void *buf, size_t len, struct cb_st_file **out,
		       struct cb_error *err)
{
	*out = NULL;
	if (len < LENGTH_FIELD)
		return too_small(label, len, err);
	int rc = check_length_field(label, buf, len, err);
	if (rc != CB_OK)
		return rc;
	return cb_st_parse_header(label, (const uint8_t *)buf + LENGTH_FIELD, read_le64(buf), len,
				  out, err);
}

int cb_st_open(const char *path, struct cb_st_file **out, struct cb_error *err)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return CB_FAIL_ERRNO(err, errno, path, "cannot open");
	struct stat st;
	int rc = CB_OK;
	uint8_t first8[LENGTH_FIELD];
	void *json = NULL;
	if (fstat(fd, &st) != 0) {
		rc = CB_FAIL_ERRNO(err, errno, path, "cannot stat");
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = CB_FAIL(err, CB_EFORMAT, path, NULL, "not a regular file");
		goto out;
	}
	uint64_t size = (uint64_t)st.st_size;
	if (size < LENGTH_FIELD) {
		rc = too_small(path, size, err);
		goto out;
	}
	/* The header alone, with no read-ahead: what follows it is tensor data,
	 * the loader's to read as it reads. Read ahead here, it would be read on
	 * the loader's behalf, and the marked pages would set off more
	 * read-ahead when the loader reached them (a partial load's bytes read
	 * from storage are a result, docs/partial-loads.md). */
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	if ((rc = cb_pread_full(fd, first8, LENGTH_FIELD, 0, path, err)) != CB_OK ||
	    (rc = check_length_field(path, first8, size, err)) != CB_OK)
		goto out;
	uint64_t n = read_le64(first8);
	json = malloc(n ? (size_t)n : 1);
	if (!json) {
		rc = CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
		goto out;
	}
	if ((rc = cb_pread_full(fd, json, (size_t)n, LENGTH_FIELD, path, err)) != CB_OK)
		goto out;
	rc = cb_st_parse_header(path, json, n, size, out, err);
out:
	free(json);
	close(fd);
	return rc;
}

/* ------------------------------------------------------------------ writer */

/* A growing byte buffer for the header. */
struct sbuf {
	char *data;
	size_t len, cap;
	bool failed;
};

static void sb_reserve(struct sbuf *sb, size_t more)
{
	if (sb->failed || sb->len + more <= sb->cap)
		return;
	size_t cap = sb->cap ? sb->cap : 256;
	while (cap < sb->len + more)
		cap *= 2;
	char *grown = realloc(sb->data, cap);
	if (!grown) {
		sb->failed = true;
		return;
	}
	sb->data = grown;
	sb->cap = cap;
}

static void sb_put(struct sbuf *sb, const char *s, size_t len)
{
	sb_reserve(sb, len);
	if (sb->failed)
		return;
	memcpy(sb->data + sb->len, s, len);
	sb->len += len;
}

static void sb_puts(struct sbuf *sb, const char *s)
{
	sb_put(sb, s, strlen(s));
}

/* serde_json's escaping, byte for byte: `"` `\` and control characters only;
 * everything else, non-ASCII included, written raw. */
static void sb_json_string(struct sbuf *sb, const char *s)
{
	sb_put(sb, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[8];
		switch (*p) {
		case '"': sb_puts(sb, "\\\""); break;
		case '\\': sb_puts(sb, "\\\\"); break;
		case '\b': sb_puts(sb, "\\b"); break;
		case '\f': sb_puts(sb, "\\f"); break;
		case '\n': sb_puts(sb, "\\n"); break;
		case '\r': sb_puts(sb, "\\r"); break;
		case '\t': sb_puts(sb, "\\t"); break;
		default:
			if (*p < 0x20) {
				snprintf(esc, sizeof esc, "\\u%04x", *p);
				sb_puts(sb, esc);
			} else {
				sb_put(sb, (const char *)p, 1);
			}
		}
	}
	sb_put(sb, "\"", 1);
}

static void sb_u64(struct sbuf *sb, uint64_t v)
{
	char num[24];
	int len = snprintf(num, sizeof num, "%" PRIu64, v);
	sb_put(sb, num, (size_t)len);
}

/* qsort has no context argument; the specs pointer travels in each key. */
struct order_key {
	const struct cb_st_spec *spec;
	size_t index;
};

static int compare_write_order(const void *a, const void *b)
{
	const struct order_key *x = a, *y = b;
	if (x->spec->dtype != y->spec->dtype)
		return x->spec->dtype > y->spec->dtype ? -1 : 1; /* descending */
	return strcmp(x->spec->name, y->spec->name);
}

static int compare_names(const void *a, const void *b)
{
	const struct order_key *x = a, *y = b;
	return strcmp(x->spec->name, y->spec->name);
}

static int check_spec(const struct cb_st_spec *spec, uint64_t *nbytes, struct cb_error *err)
{
	if (!spec->name)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "a tensor without a name");
	char where[256];
	tensor_where(where, sizeof where, spec->name);
	if (strcmp(spec->name, "__metadata__") == 0)
		return CB_FAIL(err, CB_EUSAGE, NULL, where,
			       "the name __metadata__ is reserved for the metadata");
	uint64_t bad_at;
	if (!cb_utf8_valid((const uint8_t *)spec->name, strlen(spec->name), &bad_at))
		return CB_FAIL(err, CB_EUSAGE, NULL, where, "tensor name is not valid UTF-8");
	if (spec->dtype < 0 || spec->dtype >= CB_DTYPE_COUNT)
		return CB_FAIL(err, CB_EUSAGE, NULL, where, "invalid dtype");
	if (spec->rank > CB_ST_MAX_RANK)
		return CB_FAIL(err, CB_ELIMIT, NULL, where, "rank %u is above the limit of %d",
			       spec->rank, CB_ST_MAX_RANK);
	uint64_t numel = 1;
	for (uint32_t d = 0; d < spec->rank; d++)
		if (__builtin_mul_overflow(numel, spec->shape[d], &numel))
			return CB_FAIL(err, CB_EUSAGE, NULL, where,
				       "validation overflow: the element count overflows 64 bits");
	bool misaligned;
	if (!cb_dtype_nbytes(spec->dtype, numel, nbytes, &misaligned))
		return CB_FAIL(err, CB_EUSAGE, NULL, where,
			       misaligned ? "misaligned slice: not a whole number of bytes"
					  : "validation overflow: the byte size overflows 64 bits");
	return CB_OK;
}

void cb_st_layout_free(struct cb_st_layout *layout)
{
	free(layout->order);
	free(layout->nbytes);
	free(layout->offset);
	free(layout->header);
	memset(layout, 0, sizeof *layout);
}

static int serialise_header(const struct cb_st_spec *specs, const struct cb_kv *meta, size_t n_meta,
			    struct cb_st_layout *layout, struct cb_error *err)
{
	struct sbuf sb = {0};
	sb_put(&sb, "\0\0\0\0\0\0\0\0{", 9);
	if (meta) {
		sb_puts(&sb, "\"__metadata__\":{");
		for (size_t i = 0; i < n_meta; i++) {
			if (i)
				sb_put(&sb, ",", 1);
			sb_json_string(&sb, meta[i].key);
			sb_put(&sb, ":", 1);
			sb_json_string(&sb, meta[i].value);
		}
		sb_put(&sb, "}", 1);
		if (layout->n)
			sb_put(&sb, ",", 1);
	}
	uint64_t data_base = 0; /* offsets are written relative to the data */
	for (size_t k = 0; k < layout->n; k++) {
		const struct cb_st_spec *spec = &specs[layout->order[k]];
		if (k)
			sb_put(&sb, ",", 1);
		sb_json_string(&sb, spec->name);
		sb_puts(&sb, ":{\"dtype\":\"");
		sb_puts(&sb, cb_dtype_name(spec->dtype));
		sb_puts(&sb, "\",\"shape\":[");
		for (uint32_t d = 0; d < spec->rank; d++) {
			if (d)
				sb_put(&sb, ",", 1);
			sb_u64(&sb, spec->shape[d]);
		}
		sb_puts(&sb, "],\"data_offsets\":[");
		sb_u64(&sb, data_base);
		sb_put(&sb, ",", 1);
		data_base += layout->nbytes[layout->order[k]];
		sb_u64(&sb, data_base);
		sb_puts(&sb, "]}");
	}
	sb_put(&sb, "}", 1);
	while (!sb.failed && sb.len % 8 != 0)
		sb_put(&sb, " ", 1);
	if (sb.failed) {
		free(sb.data);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	uint64_t n = sb.len - LENGTH_FIELD;
	if (n > CB_ST_MAX_HEADER) {
		free(sb.data);
		return CB_FAIL(err, CB_ELIMIT, NULL, NULL,
			       "header too large: %" PRIu64 " bytes, the limit is %u", n,
			       CB_ST_MAX_HEADER);
	}
	for (int i = 0; i < 8; i++)
		sb.data[i] = (char)(n >> (8 * i));
	layout->header = (uint8_t *)sb.data;
	layout->header_size = sb.len;
	return CB_OK;
}

int cb_st_layout_build(const struct cb_st_spec *specs, size_t n, const struct cb_kv *meta,
		       size_t n_meta, struct cb_st_layout *out, struct cb_error *err)
{
	memset(out, 0, sizeof *out);
	out->n = n;
	struct order_key *keys = calloc(n ? n : 1, sizeof *keys);
	out->order = calloc(n ? n : 1, sizeof *out->order);
	out->nbytes = calloc(n ? n : 1, sizeof *out->nbytes);
	out->offset = calloc(n ? n : 1, sizeof *out->offset);
	int rc = CB_OK;
	if (!keys || !out->order || !out->nbytes || !out->offset) {
		rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		if ((rc = check_spec(&specs[i], &out->nbytes[i], err)) != CB_OK)
			goto fail;
		keys[i] = (struct order_key){&specs[i], i};
	}
	qsort(keys, n, sizeof *keys, compare_names);
	for (size_t i = 1; i < n; i++)
		if (strcmp(keys[i - 1].spec->name, keys[i].spec->name) == 0) {
			char where[256];
			tensor_where(where, sizeof where, keys[i].spec->name);
			rc = CB_FAIL(err, CB_EUSAGE, NULL, where, "duplicate tensor name");
			goto fail;
		}
	for (size_t i = 0; i < n_meta; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(meta[i].key, meta[j].key) == 0) {
				rc = CB_FAIL(err, CB_EUSAGE, NULL, NULL,
					     "duplicate metadata key \"%.200s\"", meta[i].key);
				goto fail;
			}
	qsort(keys, n, sizeof *keys, compare_write_order);
	for (size_t k = 0; k < n; k++)
		out->order[k] = keys[k].index;
	if ((rc = serialise_header(specs, meta, n_meta, out, err)) != CB_OK)
		goto fail;
	uint64_t cursor = out->header_size;
	for (size_t k = 0; k < n; k++) {
		size_t i = out->order[k];
		out->offset[i] = cursor;
		if (__builtin_add_overflow(cursor, out->nbytes[i], &cursor)) {
			rc = CB_FAIL(err, CB_EUSAGE, NULL, NULL, "total size overflows 64 bits");
			goto fail;
		}
	}
	out->file_size = cursor;
	free(keys);
	return CB_OK;
fail:
	free(keys);
	cb_st_layout_free(out);
	return rc;
}

int cb_st_write_file(const char *path, const struct cb_st_spec *specs, const void *const *data,
		     size_t n, const struct cb_kv *meta, size_t n_meta, bool durable,
		     struct cb_error *err)
{
	struct cb_st_layout layout;
	int rc = cb_st_layout_build(specs, n, meta, n_meta, &layout, err);
	if (rc != CB_OK) {
		cb_error_set_path(err, path);
		return rc;
	}
	struct cb_atomic_file file;
	if ((rc = cb_atomic_open(&file, path, err)) != CB_OK) {
		cb_st_layout_free(&layout);
		return rc;
	}
	rc = cb_pwrite_full(file.fd, layout.header, layout.header_size, 0, path, err);
	for (size_t i = 0; rc == CB_OK && i < n; i++)
		rc = cb_pwrite_full(file.fd, data[i], (size_t)layout.nbytes[i], layout.offset[i],
				    path, err);
	cb_st_layout_free(&layout);
	if (rc != CB_OK) {
		cb_atomic_abort(&file);
		return rc;
	}
	return cb_atomic_commit(&file, durable, err);
}
