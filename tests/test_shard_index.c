/* Sharded models (Hugging Face layout): shards written with
 * cb_st_write_file, the index written by hand, each case in its own temp
 * directory. Valid ones open as one model; each broken one is refused with
 * a message naming what is wrong, and exit status 1.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ckpt.h"
#include "safetensors.h"
#include "shard_index.h"
#include "testfs.h"

#define INDEX_NAME "model.safetensors.index.json"
#define SHARD_A "model-00001-of-00002.safetensors"
#define SHARD_B "model-00002-of-00002.safetensors"

static void print_error(const struct cb_error *err)
{
	char line[2048];
	cb_error_format(err, line, sizeof line);
	fprintf(stderr, "    error: %s [%s]\n", line, cb_error_name(err->code));
}

/* Writes a shard holding the named tensors: U8 [4], bytes from the name,
 * so that equal names hold equal bytes. `names` is NULL-terminated. */
static void write_shard(const char *dir, const char *file, const char *const *names)
{
	static const uint64_t four[] = {4};
	struct cb_st_spec specs[8];
	uint8_t bytes[8][4];
	const void *data[8];
	size_t n = 0;
	for (; names[n]; n++) {
		specs[n] = (struct cb_st_spec){names[n], CB_DTYPE_U8, 1, four};
		for (int k = 0; k < 4; k++)
			bytes[n][k] = (uint8_t)(names[n][0] + k);
		data[n] = bytes[n];
	}
	char *path = NULL;
	if (asprintf(&path, "%s/%s", dir, file) < 0)
		abort();
	struct cb_error err = CB_ERROR_INIT;
	const struct cb_kv meta = {"format", "pt"};
	int rc = cb_st_write_file(path, specs, data, n, &meta, 1, false, &err);
	CHECK(rc == CB_OK);
	if (rc != CB_OK)
		print_error(&err);
	free(path);
}

/* A case directory: shard A holds a_names, shard B b_names (either may be
 * NULL: not written), and the index text. Returns the directory. */
static char *make_case(const char *const *a_names, const char *const *b_names, const char *index)
{
	char *dir = testfs_mkdtemp("shards");
	if (!dir)
		abort();
	if (a_names)
		write_shard(dir, SHARD_A, a_names);
	if (b_names)
		write_shard(dir, SHARD_B, b_names);
	CHECK(testfs_write(dir, INDEX_NAME, index) == 0);
	return dir;
}

/* An index over weight_map entries given as "name", "file", ... NULL. */
static char *index_json(const char *first, ...)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		abort();
	fprintf(f, "{\n  \"metadata\": {\"total_size\": 12},\n  \"weight_map\": {");
	va_list ap;
	va_start(ap, first);
	const char *name = first;
	for (int i = 0; name; i++) {
		const char *file = va_arg(ap, const char *);
		fprintf(f, "%s\n    \"%s\": \"%s\"", i ? "," : "", name, file);
		name = va_arg(ap, const char *);
	}
	va_end(ap);
	fprintf(f, "\n  }\n}\n");
	fclose(f);
	return text;
}

static const char *const ab[] = {"a", "b", NULL};
static const char *const c_only[] = {"c", NULL};
static const char *const bc[] = {"b", "c", NULL};

static void test_valid(void)
{
	/* weight_map in no particular order; shards in file-name order. */
	char *index = index_json("c", SHARD_B, "a", SHARD_A, "b", SHARD_A, NULL);
	char *dir = make_case(ab, c_only, index);
	char *index_path = NULL;
	if (asprintf(&index_path, "%s/%s", dir, INDEX_NAME) < 0)
		abort();
	const char *paths[2] = {dir, index_path};
	for (int k = 0; k < 2; k++) {
		struct cb_ckpt *ckpt = NULL;
		struct cb_error err = CB_ERROR_INIT;
		int rc = cb_ckpt_open(paths[k], CB_FORMAT_ANY, &ckpt, &err);
		CHECK(rc == CB_OK);
		if (rc != CB_OK) {
			print_error(&err);
			continue;
		}
		CHECK(ckpt->sharded && ckpt->format == CB_FORMAT_SAFETENSORS);
		CHECK_EQ_U64(ckpt->n_files, 2);
		CHECK_EQ_U64(ckpt->n_tensors, 3);
		CHECK_EQ_U64(ckpt->total_bytes, 12);
		CHECK_CONTAINS(ckpt->files[0].path, SHARD_A);
		CHECK_CONTAINS(ckpt->files[1].path, SHARD_B);
		static const char *const names[] = {"a", "b", "c"};
		static const uint32_t files[] = {0, 0, 1};
		for (size_t i = 0; i < 3 && i < ckpt->n_tensors; i++) {
			CHECK_STR_EQ(ckpt->tensors[i].name, names[i]);
			CHECK_EQ_U64(ckpt->tensors[i].file, files[i]);
		}
		CHECK(ckpt->has_metadata && ckpt->n_meta == 1);
		cb_ckpt_free(ckpt);
	}

	/* The index alone, read and checked. */
	struct cb_shard_index *idx = NULL;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_shard_index_open(index_path, &idx, &err) == CB_OK);
	if (idx) {
		CHECK_EQ_U64(idx->n_files, 2);
		CHECK_EQ_U64(idx->n_entries, 3);
		CHECK(idx->n_entries == 3 && strcmp(idx->names[0], "a") == 0 &&
		      idx->file_of[0] == 0 && idx->file_of[2] == 1);
		cb_shard_index_free(idx);
	}
	free(index_path);
	testfs_remove_tree(dir);
	free(dir);
	free(index);

	/* The index as our own writer makes it opens too. */
	dir = make_case(ab, c_only, "{}");
	if (asprintf(&index_path, "%s/%s", dir, INDEX_NAME) < 0)
		abort();
	const char *const all[] = {"a", "b", "c"};
	const uint32_t file_of[] = {0, 0, 1};
	const char *const shard_names[] = {SHARD_A, SHARD_B};
	cb_error_clear(&err);
	CHECK(cb_shard_index_write(index_path, 12, all, file_of, 3, shard_names, &err) == CB_OK);
	struct cb_ckpt *ckpt = NULL;
	CHECK(cb_ckpt_open(dir, CB_FORMAT_ANY, &ckpt, &err) == CB_OK);
	CHECK(ckpt && ckpt->n_tensors == 3 && ckpt->n_files == 2);
	cb_ckpt_free(ckpt);
	free(index_path);
	testfs_remove_tree(dir);
	free(dir);
}

/* Opens a case that must be refused: CB_EFORMAT, exit status 1, the
 * message holding `needle` and `where` (when given) exactly. */
static void refused(const char *what, const char *const *a_names, const char *const *b_names,
		    const char *index, const char *needle, const char *where)
{
	char *dir = make_case(a_names, b_names, index);
	struct cb_ckpt *ckpt = NULL;
	struct cb_error err = CB_ERROR_INIT;
	int before = check_failures;
	int rc = cb_ckpt_open(dir, CB_FORMAT_ANY, &ckpt, &err);
	CHECK(rc == CB_EFORMAT);
	CHECK(ckpt == NULL);
	CHECK_EQ_U64(cb_error_exit_status(rc), 1);
	CHECK_CONTAINS(err.msg, needle);
	if (where)
		CHECK_STR_EQ(err.where, where);
	if (check_failures != before) {
		fprintf(stderr, "  in case \"%s\"\n", what);
		print_error(&err);
	}
	cb_ckpt_free(ckpt);
	testfs_remove_tree(dir);
	free(dir);
}

static void test_refused(void)
{
	char *index = index_json("a", SHARD_A, "b", SHARD_A, "c",
				 "model-00003-of-00003.safetensors", NULL);
	refused("missing shard", ab, c_only, index,
		"the shard model-00003-of-00003.safetensors named in weight_map does not exist",
		NULL);
	free(index);

	static const char *const bad_names[] = {"sub/" SHARD_B, "../" SHARD_B, "..", ".", "",
						"/etc/passwd"};
	for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
		index = index_json("a", SHARD_A, "b", SHARD_A, "c", bad_names[i], NULL);
		char what[64];
		snprintf(what, sizeof what, "shard named \"%s\"", bad_names[i]);
		refused(what, ab, c_only, index,
			"weight_map must name a plain file in the index's directory",
			"tensor \"c\"");
		free(index);
	}

	index = index_json("a", SHARD_A, "b", SHARD_A, "c", SHARD_B, NULL);
	refused("tensor in two shards", ab, bc, index, "the tensor is in two shards",
		"tensor \"b\"");
	free(index);

	index = index_json("a", SHARD_A, "c", SHARD_B, NULL);
	refused("tensor absent from weight_map", ab, c_only, index, "the tensor is in",
		"tensor \"b\"");
	refused("tensor absent from weight_map (message)", ab, c_only, index,
		"but not in weight_map", "tensor \"b\"");
	free(index);

	index = index_json("a", SHARD_A, "b", SHARD_B, "c", SHARD_B, NULL);
	refused("weight_map points to the wrong shard", ab, c_only, index,
		"weight_map puts the tensor in", "tensor \"b\"");
	free(index);

	index = index_json("a", SHARD_A, "b", SHARD_A, "c", SHARD_B, "d", SHARD_B, NULL);
	refused("weight_map names a tensor no shard holds", ab, c_only, index,
		"weight_map names a tensor that", "tensor \"d\"");
	free(index);

	refused("index not JSON", ab, c_only, "{\"weight_map\": {\"a\": ", "invalid JSON in index",
		NULL);
	refused("index empty", ab, c_only, "", "invalid JSON in index", NULL);
	refused("index without weight_map", ab, c_only, "{\"metadata\": {}}",
		"an index must be an object with a \"weight_map\" object", NULL);
	refused("weight_map not an object", ab, c_only, "{\"weight_map\": []}",
		"an index must be an object with a \"weight_map\" object", NULL);
	refused("weight_map value not a string", ab, c_only,
		"{\"weight_map\": {\"a\": 1, \"b\": \"" SHARD_A "\"}}",
		"weight_map must name a plain file", "tensor \"a\"");

	index = index_json("a", SHARD_A, "b", SHARD_A, "a", SHARD_A, "c", SHARD_B, NULL);
	refused("duplicate key in weight_map", ab, c_only, index, "duplicate", NULL);
	free(index);
}

int main(void)
{
	test_valid();
	test_refused();
	return check_finish("test_shard_index");
}
