/* A PyTorch checkpoint file as a tensor table: format detection, the zip
 * and legacy layouts, the record-size rule, and naming by key paths. See
 * pt.h; the format's rules in docs/datasets-and-method.md §4. */
#include "pt.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h"
#include "fileio.h"
#include "ptzip.h"
#include "unpickle.h"

#define LEGACY_FIRST_CHUNK (64u << 10)
#define MAX_WALK_NODES (1u << 24)
#define MAX_STORAGE_KEY (320 - 5 - 1) /* bytes; see map_zip_storages */
#define MAX_VERSION 10                /* kMaxSupportedFileFormatVersion of torch 1.13+ */

/* 0x1950a86a20f9469cfc6c, torch's legacy MAGIC_NUMBER, little-endian. */
static const uint8_t legacy_magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9,
					 0x20, 0x6a, 0xa8, 0x50, 0x19};
#define LEGACY_PROTOCOL_VERSION 1001

void cb_pt_free(struct cb_pt_file *file)
{
	if (!file)
		return;
	cb_pickle_free(file->pickle);
	free(file->path);
	free(file->archive_prefix);
	free(file->tensors);
	free(file->storages);
	free(file);
}

/* An array of n (at least one) elements that the caller writes whole:
 * cb_bulk_malloc (huge pages for big ones, no zeroing), with calloc's
 * overflow check. Free with free(). */
static void *bulk_array(size_t n, size_t size)
{
	size_t bytes;
	if (__builtin_mul_overflow(n ? n : 1, size, &bytes))
		return NULL;
	return cb_bulk_malloc(bytes);
}

/* ------------------------------------------------------------ naming */

/* Collects (name, tensor) pairs while walking the object tree. */
struct walk {
	struct cb_pt_file *file;
	struct cb_error *err;
	char *path; /* the key path so far; grows */
	size_t len, cap;
	size_t nodes;
	struct found {
		const char *name;
		const struct cb_pk_tensor *t;
	} * found;
	size_t n_found, found_cap;
};

static int walk_nomem(struct walk *w)
{
	return CB_FAIL(w->err, CB_ENOMEM, w->file->path, NULL, "out of memory");
}

static int path_append(struct walk *w, const char *component, size_t n)
{
	size_t need = w->len + 1 + n + 1;
	if (need > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < need)
			cap *= 2;
		char *p = realloc(w->path, cap);
		if (!p)
			return walk_nomem(w);
		w->path = p;
		w->cap = cap;
	}
	if (w->len)
		w->path[w->len++] = '.';
	memcpy(w->path + w->len, component, n);
	w->len += n;
	w->path[w->len] = '\0';
	return CB_OK;
}

/* Python's repr of a float, which str() of a dict key gives: the shortest
 * form that reads back, with ".0" on integral values. */
static void float_key(double f, char *buf, size_t size)
{
	if (isnan(f) || isinf(f)) {
		snprintf(buf, size, "%s", isnan(f) ? "nan" : f > 0 ? "inf" : "-inf");
		return;
	}
	for (int digits = 1; digits <= 17; digits++) {
		snprintf(buf, size, "%.*g", digits, f);
		if (strtod(buf, NULL) == f)
			break;
	}
	if (!strpbrk(buf, ".e"))
		strncat(buf, ".0", size - strlen(buf) - 1);
}

/* A dict key as str(key) spells it, for the scalar key types; other key
 * types are named by their type in angle brackets. */
static void key_text(const struct cb_pk_value *k, char *buf, size_t size, const char **out,
		     size_t *len)
{
	switch (k->type) {
	case CB_PK_STR:
		*out = k->u.str.s;
		*len = k->u.str.len;
		return;
	case CB_PK_INT: snprintf(buf, size, "%lld", (long long)k->u.i); break;
	case CB_PK_BOOL: snprintf(buf, size, "%s", k->u.b ? "True" : "False"); break;
	case CB_PK_NONE: snprintf(buf, size, "None"); break;
	case CB_PK_FLOAT: float_key(k->u.f, buf, size); break;
	default: snprintf(buf, size, "<%s>", cb_pk_type_name(k)); break;
	}
	*out = buf;
	*len = strlen(buf);
}

static int found_add(struct walk *w, const struct cb_pk_tensor *t)
{
	if (w->n_found == w->found_cap) {
		size_t cap = w->found_cap ? w->found_cap * 2 : 256;
		struct found *f = realloc(w->found, cap * sizeof *f);
		if (!f)
			return walk_nomem(w);
		w->found = f;
		w->found_cap = cap;
	}
	char *name = cb_pickle_alloc(w->file->pickle, w->len + 1);
	if (!name)
		return walk_nomem(w);
	memcpy(name, w->path ? w->path : "", w->len + 1);
	w->found[w->n_found++] = (struct found){name, t};
	return CB_OK;
}

static int walk_value(struct walk *w, const struct cb_pk_value *v, unsigned depth);

static int walk_child(struct walk *w, const char *component, size_t n,
		      const struct cb_pk_value *child, unsigned depth)
{
	size_t saved = w->len;
	int rc = path_append(w, component, n);
	if (rc == CB_OK)
		rc = walk_value(w, child, depth + 1);
	w->len = saved;
	if (w->path)
		w->path[saved] = '\0';
	return rc;
}

/* Depth and node count are bounded: the value graph may share nodes (the
 * same tensor under two keys) and even be cyclic (a list holding itself). */
static int walk_value(struct walk *w, const struct cb_pk_value *v, unsigned depth)
{
	if (depth > CB_PK_MAX_DEPTH)
		return CB_FAIL(w->err, CB_ELIMIT, w->file->path, NULL,
			       "containers nest deeper than %u levels (at \"%.200s\")",
			       CB_PK_MAX_DEPTH, w->path ? w->path : "");
	if (++w->nodes > MAX_WALK_NODES)
		return CB_FAIL(w->err, CB_ELIMIT, w->file->path, NULL,
			       "the checkpoint's containers reach more than %u values",
			       MAX_WALK_NODES);
	char buf[64];
	int rc = CB_OK;
	switch (v->type) {
	case CB_PK_TENSOR: return found_add(w, v->u.tensor);
	case CB_PK_DICT:
		for (size_t i = 0; i < v->u.dict.n && rc == CB_OK; i++) {
			const char *key;
			size_t len;
			key_text(v->u.dict.kv[2 * i], buf, sizeof buf, &key, &len);
			rc = walk_child(w, key, len, v->u.dict.kv[2 * i + 1], depth);
		}
		return rc;
	case CB_PK_LIST:
	case CB_PK_TUPLE:
		for (size_t i = 0; i < v->u.seq.n && rc == CB_OK; i++) {
			int len = snprintf(buf, sizeof buf, "%zu", i);
			rc = walk_child(w, buf, (size_t)len, v->u.seq.items[i], depth);
		}
		return rc;
	default:
		/* Sets are unordered, so their members have no key path. */
		w->file->n_other_leaves++;
		return CB_OK;
	}
}

/* ------------------------------------------------------------ the table */

static int compare_tensor_names(const void *a, const void *b)
{
	const struct cb_pt_tensor *x = a, *y = b;
	return strcmp(x->name, y->name);
}

static bool is_contiguous(const struct cb_pk_tensor *t)
{
	if (t->numel == 0)
		return true;
	uint64_t expected = 1;
	for (uint32_t d = t->rank; d-- > 0;) {
		if (t->shape[d] == 1)
			continue;
		if ((uint64_t)t->stride[d] != expected)
			return false;
		expected *= t->shape[d];
	}
	return true;
}

/* Turns the walk's findings into the table; storages[] already hold each
 * record's file offset and checked size. */
static int build_tensors(struct cb_pt_file *file, const struct walk *w, struct cb_error *err)
{
	file->tensors = bulk_array(w->n_found, sizeof *file->tensors); /* written whole below */
	if (!file->tensors)
		return CB_FAIL(err, CB_ENOMEM, file->path, NULL, "out of memory");
	for (size_t i = 0; i < w->n_found; i++) {
		const struct cb_pk_tensor *t = w->found[i].t;
		const struct cb_pt_storage *s = &file->storages[t->storage->index];
		struct cb_pt_tensor *out = &file->tensors[file->n_tensors++];
		*out = (struct cb_pt_tensor){
			.name = w->found[i].name,
			.dtype = t->dtype,
			.rank = t->rank,
			.shape = t->shape,
			.stride = is_contiguous(t) ? NULL : t->stride,
			.numel = t->numel,
			.nbytes = t->numel * t->elsize, /* checked by the unpickler */
			.offset = s->offset + t->storage_offset * t->elsize,
			.storage_offset = t->storage_offset,
			.storage = (uint32_t)t->storage->index,
			.requires_grad = t->requires_grad,
		};
	}
	qsort(file->tensors, file->n_tensors, sizeof *file->tensors, compare_tensor_names);
	for (size_t i = 1; i < file->n_tensors; i++) {
		if (strcmp(file->tensors[i - 1].name, file->tensors[i].name) == 0) {
			char where[300];
			snprintf(where, sizeof where, "tensor \"%.200s\"", file->tensors[i].name);
			return CB_FAIL(err, CB_EFORMAT, file->path, where,
				       "two tensors have this name (duplicate keys)");
		}
	}
	return CB_OK;
}

static int name_tensors(struct cb_pt_file *file, struct cb_error *err)
{
	struct walk w = {.file = file, .err = err};
	int rc = walk_value(&w, file->pickle->root, 0);
	if (rc == CB_OK)
		rc = build_tensors(file, &w, err);
	free(w.path);
	free(w.found);
	return rc;
}

static int alloc_storages(struct cb_pt_file *file, struct cb_error *err)
{
	size_t n = file->pickle->n_storages;
	file->storages = bulk_array(n, sizeof *file->storages); /* written whole below */
	if (!file->storages)
		return CB_FAIL(err, CB_ENOMEM, file->path, NULL, "out of memory");
	file->n_storages = n;
	for (size_t i = 0; i < n; i++) {
		const struct cb_pk_storage *s = file->pickle->storages[i];
		file->storages[i] = (struct cb_pt_storage){
			.key = s->key, .nbytes = s->nbytes, .dtype = s->dtype};
	}
	return CB_OK;
}

/* ------------------------------------------------------------ zip format */

static int read_small_record(int fd, const struct cb_ptzip *zip, const char *rel, char *buf,
			     size_t size, bool *present, struct cb_error *err)
{
	const struct cb_ptzip_record *rec = cb_ptzip_find(zip, rel);
	*present = rec != NULL;
	if (!rec)
		return CB_OK;
	uint8_t *data;
	int rc = cb_ptzip_read(fd, zip, rec, size - 1, &data, err);
	if (rc != CB_OK)
		return rc;
	memcpy(buf, data, (size_t)rec->size + 1);
	free(data);
	return CB_OK;
}

/* The archive must be a torch.save checkpoint of a version torch reads, in
 * little-endian byte order (ptzip has already refused TorchScript). */
static int check_archive(int fd, const struct cb_ptzip *zip, struct cb_error *err)
{
	char text[64];
	bool present;
	int rc = read_small_record(fd, zip, ".data/version", text, sizeof text, &present, err);
	if (rc == CB_OK && !present)
		rc = read_small_record(fd, zip, "version", text, sizeof text, &present, err);
	if (rc != CB_OK)
		return rc;
	if (!present)
		return CB_FAIL(err, CB_EFORMAT, zip->path, NULL,
			       "the archive has no \"version\" record, so it is not a torch.save "
			       "checkpoint");
	char *end;
	errno = 0;
	unsigned long version = strtoul(text, &end, 10);
	if (end == text || (*end && strcmp(end, "\n") != 0) || errno || text[0] == '-')
		return CB_FAIL(err, CB_EFORMAT, zip->path, "record \"version\"",
			       "the version record is not a decimal number");
	if (version < 1 || version > MAX_VERSION)
		return CB_FAIL(err, CB_EUNSUPPORTED, zip->path, "record \"version\"",
			       "file format version %lu is not supported (1 to %d are)", version,
			       MAX_VERSION);
	if ((rc = read_small_record(fd, zip, "byteorder", text, sizeof text, &present, err)) !=
	    CB_OK)
		return rc;
	if (present && strcmp(text, "big") == 0)
		return CB_FAIL(err, CB_EUNSUPPORTED, zip->path, "record \"byteorder\"",
			       "a big-endian checkpoint is not supported");
	if (present && strcmp(text, "little") != 0)
		return CB_FAIL(err, CB_EFORMAT, zip->path, "record \"byteorder\"",
			       "byteorder is neither \"little\" nor \"big\"");
	return CB_OK;
}

/* Each storage's record "data/<key>" must exist and hold exactly the
 * bytes the pickle claims (CVE-2026-24747: torch before 2.10 trusted the
 * pickle's count and let tensors reach past the record). The record is
 * found by key (cb_ptzip_find_data), and its name formatted only for an
 * error. */
static int map_zip_storages(struct cb_pt_file *file, const struct cb_ptzip *zip,
			    struct cb_error *err)
{
	char where[400];
	for (size_t i = 0; i < file->n_storages; i++) {
		struct cb_pt_storage *s = &file->storages[i];
		/* Keys that "data/<key>" does not fit a 320-byte name for were
		 * always refused as having no record; they still are. */
		const struct cb_ptzip_record *rec =
			strlen(s->key) < MAX_STORAGE_KEY ? cb_ptzip_find_data(zip, s->key) : NULL;
		if (rec && rec->size == s->nbytes) {
			s->offset = rec->data_offset;
			continue;
		}
		snprintf(where, sizeof where, "record \"%.200s/data/%.100s\"", zip->prefix, s->key);
		if (!rec)
			return CB_FAIL(
				err, CB_EFORMAT, file->path, where,
				"the pickle refers to storage \"%.100s\", which has no record",
				s->key);
		return CB_FAIL(err, CB_EFORMAT, file->path, where,
			       "the record holds %llu bytes but the pickle says the storage "
			       "has %llu; refusing the mismatch",
			       (unsigned long long)rec->size, (unsigned long long)s->nbytes);
	}
	return CB_OK;
}

static int open_zip(int fd, struct cb_pt_file *file, struct cb_error *err)
{
	struct cb_ptzip *zip = NULL;
	uint8_t *pkl = NULL;
	char label[300];
	int rc = cb_ptzip_open_fd(fd, file->path, file->file_size, &zip, err);
	if (rc == CB_OK)
		rc = check_archive(fd, zip, err);
	const struct cb_ptzip_record *rec = rc == CB_OK ? cb_ptzip_find(zip, "data.pkl") : NULL;
	if (rc == CB_OK && !rec)
		rc = CB_FAIL(err, CB_EFORMAT, file->path, NULL,
			     "the archive has no data.pkl record");
	if (rc == CB_OK)
		rc = cb_ptzip_read(fd, zip, rec, CB_PT_MAX_PICKLE, &pkl, err);
	if (rc == CB_OK) {
		snprintf(label, sizeof label, "%.200s/data.pkl", zip->prefix);
		struct cb_pk_options opt = {.path = file->path, .label = label};
		rc = cb_unpickle(pkl, (size_t)rec->size, &opt, &file->pickle, err);
	}
	free(pkl);
	if (rc == CB_OK && !(file->archive_prefix = strdup(zip->prefix)))
		rc = CB_FAIL(err, CB_ENOMEM, file->path, NULL, "out of memory");
	if (rc == CB_OK)
		rc = alloc_storages(file, err);
	if (rc == CB_OK)
		rc = map_zip_storages(file, zip, err);
	cb_ptzip_free(zip);
	return rc;
}

/* ------------------------------------------------------------ legacy format */

/* Parses the pickle that starts at `offset`, whose length is only known by
 * parsing it: reads a chunk, and a larger one while the pickle runs on. */
static int read_pickle_at(int fd, struct cb_pt_file *file, uint64_t offset, bool legacy_ids,
			  struct cb_pickle **out, struct cb_error *err)
{
	uint64_t avail = file->file_size - offset;
	uint64_t chunk = LEGACY_FIRST_CHUNK;
	for (;;) {
		uint64_t want = chunk < avail ? chunk : avail;
		if (want > CB_PT_MAX_PICKLE)
			want = CB_PT_MAX_PICKLE;
		uint8_t *buf = malloc(want ? (size_t)want : 1);
		if (!buf)
			return CB_FAIL(err, CB_ENOMEM, file->path, NULL, "out of memory");
		int rc = cb_pread_full(fd, buf, (size_t)want, offset, file->path, err);
		if (rc != CB_OK) {
			free(buf);
			return rc;
		}
		bool truncated = false;
		struct cb_error local = CB_ERROR_INIT;
		struct cb_pk_options opt = {.path = file->path,
					    .label = "pickle",
					    .base_offset = offset,
					    .legacy = legacy_ids,
					    .truncated_out = &truncated};
		rc = cb_unpickle(buf, (size_t)want, &opt, out, &local);
		free(buf);
		if (rc == CB_OK)
			return CB_OK;
		if (truncated && want < avail && want < CB_PT_MAX_PICKLE) {
			chunk *= 4;
			continue;
		}
		if (err && err->code == CB_OK)
			*err = local;
		return rc;
	}
}

static const struct cb_pk_value *dict_get(const struct cb_pk_value *d, const char *key)
{
	for (size_t i = 0; d->type == CB_PK_DICT && i < d->u.dict.n; i++) {
		const struct cb_pk_value *k = d->u.dict.kv[2 * i];
		if (k->type == CB_PK_STR && strcmp(k->u.str.s, key) == 0)
			return d->u.dict.kv[2 * i + 1];
	}
	return NULL;
}

/* The three small pickles before the object: magic, protocol, sys_info. */
static int check_legacy_header(const struct cb_pickle *p, int which, const char *path,
			       struct cb_error *err)
{
	const struct cb_pk_value *v = p->root;
	if (which == 0) {
		if (v->type == CB_PK_BIGINT && v->u.str.len == sizeof legacy_magic &&
		    memcmp(v->u.str.s, legacy_magic, sizeof legacy_magic) == 0)
			return CB_OK;
		return CB_FAIL(err, CB_EFORMAT, path, "byte 0",
			       "not a PyTorch checkpoint: a pickle, but not torch's legacy magic "
			       "number");
	}
	if (which == 1) {
		if (v->type == CB_PK_INT && v->u.i == LEGACY_PROTOCOL_VERSION)
			return CB_OK;
		return CB_FAIL(err, CB_EUNSUPPORTED, path, NULL,
			       "legacy checkpoint protocol version is not %d",
			       LEGACY_PROTOCOL_VERSION);
	}
	const struct cb_pk_value *little = dict_get(v, "little_endian");
	if (v->type != CB_PK_DICT || !little || little->type != CB_PK_BOOL)
		return CB_FAIL(err, CB_EFORMAT, path, NULL,
			       "the legacy sys_info pickle is not a dict with little_endian");
	if (!little->u.b)
		return CB_FAIL(err, CB_EUNSUPPORTED, path, NULL,
			       "a big-endian legacy checkpoint is not supported");
	return CB_OK;
}

static int compare_storage_keys(const void *a, const void *b)
{
	const struct cb_pt_storage *const *x = a, *const *y = b;
	return strcmp((*x)->key, (*y)->key);
}

/* After the key list: for each key, a u64 element count (which must be the
 * pickle's) and the raw bytes. Every storage the pickle names must appear
 * exactly once. */
static int map_legacy_storages(int fd, struct cb_pt_file *file, const struct cb_pickle *keys,
			       uint64_t pos, struct cb_error *err)
{
	const struct cb_pk_value *list = keys->root;
	if (list->type != CB_PK_LIST)
		return CB_FAIL(err, CB_EFORMAT, file->path, NULL,
			       "the legacy storage key list is a %s, not a list",
			       cb_pk_type_name(list));
	size_t n = file->n_storages;
	struct cb_pt_storage **sorted = calloc(n ? n : 1, sizeof *sorted);
	bool *seen = calloc(n ? n : 1, sizeof *seen);
	int rc = CB_OK;
	if (!sorted || !seen)
		rc = CB_FAIL(err, CB_ENOMEM, file->path, NULL, "out of memory");
	for (size_t i = 0; i < n && rc == CB_OK; i++)
		sorted[i] = &file->storages[i];
	if (rc == CB_OK)
		qsort(sorted, n, sizeof *sorted, compare_storage_keys);
	char where[300];
	for (size_t i = 0; i < list->u.seq.n && rc == CB_OK; i++) {
		const struct cb_pk_value *k = list->u.seq.items[i];
		snprintf(where, sizeof where, "byte %llu", (unsigned long long)pos);
		if (k->type != CB_PK_STR) {
			rc = CB_FAIL(err, CB_EFORMAT, file->path, where,
				     "a legacy storage key is not a str");
			break;
		}
		struct cb_pt_storage key = {.key = k->u.str.s}, *kp = &key;
		struct cb_pt_storage **hit =
			bsearch(&kp, sorted, n, sizeof *sorted, compare_storage_keys);
		if (!hit || seen[*hit - file->storages]) {
			rc = CB_FAIL(err, CB_EFORMAT, file->path, where, "storage \"%.100s\" is %s",
				     k->u.str.s,
				     hit ? "listed twice" : "listed but no tensor refers to it");
			break;
		}
		struct cb_pt_storage *s = *hit;
		seen[s - file->storages] = true;
		const struct cb_pk_storage *ps = file->pickle->storages[s - file->storages];
		uint8_t count_le[8];
		uint64_t end;
		if (pos > file->file_size || file->file_size - pos < 8) {
			rc = CB_FAIL(err, CB_EFORMAT, file->path, where,
				     "the file ends before storage \"%.100s\"", s->key);
			break;
		}
		if ((rc = cb_pread_full(fd, count_le, 8, pos, file->path, err)) != CB_OK)
			break;
		uint64_t count = 0;
		for (int b = 7; b >= 0; b--)
			count = count << 8 | count_le[b];
		if (count != ps->numel) {
			rc = CB_FAIL(
				err, CB_EFORMAT, file->path, where,
				"storage \"%.100s\" holds %llu elements but the pickle says %llu",
				s->key, (unsigned long long)count, (unsigned long long)ps->numel);
			break;
		}
		s->offset = pos + 8;
		if (__builtin_add_overflow(s->offset, s->nbytes, &end) || end > file->file_size) {
			rc = CB_FAIL(
				err, CB_EFORMAT, file->path, where,
				"storage \"%.100s\" (%llu bytes) runs past the end of the file",
				s->key, (unsigned long long)s->nbytes);
			break;
		}
		pos = end;
	}
	for (size_t i = 0; i < n && rc == CB_OK; i++)
		if (!seen[i])
			rc = CB_FAIL(err, CB_EFORMAT, file->path, NULL,
				     "storage \"%.100s\" is missing from the legacy storage list",
				     file->storages[i].key);
	free(sorted);
	free(seen);
	return rc;
}

static int open_legacy(int fd, struct cb_pt_file *file, struct cb_error *err)
{
	uint64_t pos = 0;
	int rc = CB_OK;
	file->legacy = true;
	for (int which = 0; which < 3 && rc == CB_OK; which++) {
		struct cb_pickle *p = NULL;
		rc = read_pickle_at(fd, file, pos, false, &p, err);
		if (rc == CB_OK)
			rc = check_legacy_header(p, which, file->path, err);
		if (p)
			pos += p->consumed;
		cb_pickle_free(p);
	}
	if (rc == CB_OK)
		rc = read_pickle_at(fd, file, pos, true, &file->pickle, err);
	if (rc != CB_OK)
		return rc;
	pos += file->pickle->consumed;
	struct cb_pickle *keys = NULL;
	if ((rc = alloc_storages(file, err)) == CB_OK)
		rc = read_pickle_at(fd, file, pos, false, &keys, err);
	if (rc == CB_OK)
		rc = map_legacy_storages(fd, file, keys, pos + keys->consumed, err);
	cb_pickle_free(keys);
	return rc;
}

/* ------------------------------------------------------------ opening */

enum kind { KIND_ZIP, KIND_LEGACY, KIND_TAR, KIND_PREVIEW, KIND_UNKNOWN };

static enum kind sniff(const uint8_t *head, size_t n)
{
	if (n >= 8 && memcmp(head, "PYTORCH1", 8) == 0)
		return KIND_PREVIEW;
	if (n >= 4 && memcmp(head, "PK\x03\x04", 4) == 0)
		return KIND_ZIP;
	if (n >= 262 && memcmp(head + 257, "ustar", 5) == 0)
		return KIND_TAR;
	if (n >= 2 && head[0] == 0x80)
		return KIND_LEGACY;
	return KIND_UNKNOWN;
}

static int open_by_kind(int fd, struct cb_pt_file *file, struct cb_error *err)
{
	uint8_t head[512];
	size_t n = file->file_size < sizeof head ? (size_t)file->file_size : sizeof head;
	int rc = cb_pread_full(fd, head, n, 0, file->path, err);
	if (rc != CB_OK)
		return rc;
	switch (sniff(head, n)) {
	case KIND_ZIP: return open_zip(fd, file, err);
	case KIND_LEGACY: return open_legacy(fd, file, err);
	case KIND_TAR:
		return CB_FAIL(err, CB_EUNSUPPORTED, file->path, NULL,
			       "a tar-format PyTorch checkpoint (torch 0.1-0.3): not supported; "
			       "re-save it with torch >= 1.6");
	case KIND_PREVIEW:
		return CB_FAIL(err, CB_EUNSUPPORTED, file->path, NULL,
			       "a pre-1.0 PyTorch preview archive (PYTORCH1): not supported");
	default:
		return CB_FAIL(err, CB_EFORMAT, file->path, "byte 0",
			       "not a PyTorch checkpoint: neither a zip archive nor a pickle");
	}
}

int cb_pt_open(const char *path, struct cb_pt_file **out, struct cb_error *err)
{
	*out = NULL;
	struct cb_pt_file *file = calloc(1, sizeof *file);
	if (!file || !(file->path = strdup(path))) {
		free(file);
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	int rc = CB_OK;
	if (fd < 0)
		rc = CB_FAIL_ERRNO(err, errno, path, "cannot open");
	else if (fstat(fd, &st) != 0)
		rc = CB_FAIL_ERRNO(err, errno, path, "cannot stat");
	else if (!S_ISREG(st.st_mode))
		rc = CB_FAIL(err, CB_EFORMAT, path, NULL, "not a regular file");
	if (rc == CB_OK) {
		file->file_size = (uint64_t)st.st_size;
		rc = open_by_kind(fd, file, err);
	}
	if (rc == CB_OK)
		rc = name_tensors(file, err);
	if (fd >= 0)
		close(fd);
	if (rc != CB_OK) {
		cb_pt_free(file);
		return rc;
	}
	*out = file;
	return CB_OK;
}

/* ------------------------------------------------------------ cb_ckpt */

struct pt_private {
	size_t n;
	struct cb_pt_file **files;
};

static void free_private(void *p)
{
	struct pt_private *priv = p;
	if (!priv)
		return;
	for (size_t i = 0; i < priv->n; i++)
		cb_pt_free(priv->files[i]);
	free(priv->files);
	free(priv);
}

int cb_pt_populate(struct cb_ckpt *ckpt, struct cb_error *err)
{
	struct pt_private *priv = calloc(1, sizeof *priv);
	if (priv)
		priv->files = calloc(ckpt->n_files ? ckpt->n_files : 1, sizeof *priv->files);
	if (!priv || !priv->files) {
		free(priv);
		return CB_FAIL(err, CB_ENOMEM, ckpt->path, NULL, "out of memory");
	}
	/* Owned by the checkpoint from here on, also on failure. */
	ckpt->format_private = priv;
	ckpt->free_private = free_private;
	size_t total = 0;
	for (size_t i = 0; i < ckpt->n_files; i++) {
		int rc = cb_pt_open(ckpt->files[i].path, &priv->files[i], err);
		if (rc != CB_OK)
			return rc;
		priv->n++;
		ckpt->files[i].size = priv->files[i]->file_size;
		total += priv->files[i]->n_tensors;
	}
	/* Written whole below; cb_ckpt_free frees it like any malloc'd array. */
	ckpt->tensors = bulk_array(total, sizeof *ckpt->tensors);
	if (!ckpt->tensors)
		return CB_FAIL(err, CB_ENOMEM, ckpt->path, NULL, "out of memory");
	for (size_t i = 0; i < ckpt->n_files; i++) {
		const struct cb_pt_file *f = priv->files[i];
		for (size_t k = 0; k < f->n_tensors; k++) {
			const struct cb_pt_tensor *src = &f->tensors[k];
			ckpt->tensors[ckpt->n_tensors++] = (struct cb_ckpt_tensor){
				.name = src->name,
				.dtype = src->dtype,
				.rank = src->rank,
				.shape = src->shape,
				.numel = src->numel,
				.nbytes = src->nbytes,
				.file = (uint32_t)i,
				.offset = src->offset,
				.stride = src->stride,
				.storage_offset = src->storage_offset,
				.storage_nbytes = f->storages[src->storage].nbytes,
			};
			ckpt->total_bytes += src->nbytes;
		}
	}
	ckpt->has_metadata = false;
	return CB_OK;
}
