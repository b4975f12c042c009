/* .pt files as tensor tables: the golden nn.Linear file, views and their
 * hashes (as torch's t.contiguous() bytes), key-path names, the legacy
 * format, sharded .bin directories through cb_ckpt_open; and refusals with
 * their rule and exit status 1: record sizes that disagree with the pickle
 * (CVE-2026-24747), missing records, TorchScript archives, versions and byte
 * orders, tar and PYTORCH1 files, nesting too deep or cyclic, duplicates. */
#include <stdint.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "check.h"
#include "ckpt.h"
#include "pt.h"
#include "pt_fixture.h"
#include "tensor_hash.h"

/* A zip checkpoint of a pickle and storages data/0..n-1, prefix "m". */
static const char *write_pt(const char *file, const struct buf *pkl, const struct buf *storages,
			    size_t n, const char *version)
{
	static const char *const names[] = {"m/data/0", "m/data/1", "m/data/2", "m/data/3"};
	struct zrec recs[8];
	size_t k = 0;
	recs[k++] = (struct zrec){"m/data.pkl", pkl->p, pkl->len, 0, 0};
	for (size_t i = 0; i < n; i++)
		recs[k++] = (struct zrec){names[i], storages[i].p, storages[i].len, 0, 0};
	if (version)
		recs[k++] = (struct zrec){"m/version", version, strlen(version), 0, 0};
	struct buf out = {0};
	struct zlayout lay;
	zip_build(&out, recs, k, false, &lay);
	const char *path = fixture_write(file, out.p, out.len);
	buf_free(&out);
	return path;
}

static void float_storage(struct buf *b, int n)
{
	for (int i = 0; i < n; i++) {
		float f = (float)i;
		buf_put(b, &f, 4);
	}
}

static int open_pt(const char *path, struct cb_pt_file **out, char *line, size_t size)
{
	struct cb_error err = CB_ERROR_INIT;
	*out = NULL;
	int rc = cb_pt_open(path, out, &err);
	line[0] = '\0';
	if (rc != CB_OK)
		cb_error_format(&err, line, size);
	return rc;
}

static void expect_refused(const char *path, const char *needle)
{
	struct cb_pt_file *f;
	char line[2048];
	int rc = open_pt(path, &f, line, sizeof line);
	CHECK(rc != CB_OK);
	CHECK_EQ_U64(cb_error_exit_status(rc), 1);
	CHECK_CONTAINS(line, needle);
	cb_pt_free(f);
}

static const struct cb_pt_tensor *find(const struct cb_pt_file *f, const char *name)
{
	for (size_t i = 0; f && i < f->n_tensors; i++)
		if (strcmp(f->tensors[i].name, name) == 0)
			return &f->tensors[i];
	return NULL;
}

/* ------------------------------------------------------------ tests */

static void test_linear(void)
{
	struct buf b = {0};
	struct zlayout lay;
	linear_archive(&b, &lay);
	const char *path = fixture_write("lin.pt", b.p, b.len);
	buf_free(&b);
	struct cb_pt_file *f;
	char line[2048];
	CHECK(open_pt(path, &f, line, sizeof line) == CB_OK);
	if (!f) {
		fprintf(stderr, "%s\n", line);
		return;
	}
	CHECK(!f->legacy);
	CHECK_STR_EQ(f->archive_prefix, "lin");
	CHECK_EQ_U64(f->n_tensors, 1);
	const struct cb_pt_tensor *t = find(f, "weight");
	CHECK(t && t->dtype == CB_DTYPE_F32 && t->rank == 2 && t->shape[0] == 1 &&
	      t->shape[1] == 3 && !t->stride && t->offset == 384 && t->nbytes == 12);
	CHECK_EQ_U64(f->n_other_leaves, 0);
	cb_pt_free(f);

	/* Through cb_ckpt_open, as inspect sees it, with the hash of 1, 2, 3. */
	struct cb_ckpt *ckpt = NULL;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_ckpt_open(path, CB_FORMAT_ANY, &ckpt, &err) == CB_OK);
	if (ckpt) {
		uint64_t h = 0;
		CHECK(ckpt->format == CB_FORMAT_PYTORCH && !ckpt->has_metadata);
		CHECK(cb_ckpt_hash(ckpt, &h, 1, &err) == CB_OK);
		CHECK_EQ_U64(h, XXH3_64bits(linear_data, sizeof linear_data));
		CHECK_EQ_U64(ckpt->files[0].size, 799);
		CHECK_EQ_U64(ckpt->total_bytes, 12);
	}
	cb_ckpt_free(ckpt);
}

/* base = arange(12.), view = base[2:8].view(2, 3), t = base.view(3, 4).t(),
 * row = base.view(3, 4)[1] (contiguous, offset 4). */
static void test_views_and_hashes(void)
{
	struct tspec base = {"FloatStorage", "0", 12, 0, 1, {12}, {1}};
	struct tspec view = {"FloatStorage", "0", 12, 2, 2, {2, 3}, {3, 1}};
	struct tspec tr = {"FloatStorage", "0", 12, 0, 2, {4, 3}, {1, 4}};
	struct tspec row = {"FloatStorage", "0", 12, 4, 1, {4}, {1}};
	struct buf pkl = {0}, st = {0};
	op(&pkl, 0x80);
	op(&pkl, 2);
	op(&pkl, '}');
	op(&pkl, '(');
	op_str(&pkl, "base");
	op_tensor(&pkl, &base);
	op_str(&pkl, "view");
	op_tensor(&pkl, &view);
	op_str(&pkl, "t");
	op_tensor(&pkl, &tr);
	op_str(&pkl, "row");
	op_tensor(&pkl, &row);
	op(&pkl, 'u');
	op(&pkl, '.');
	float_storage(&st, 12);
	const char *path = write_pt("views.pt", &pkl, &st, 1, "3\n");
	struct cb_ckpt *ckpt = NULL;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_ckpt_open(path, CB_FORMAT_ANY, &ckpt, &err) == CB_OK);
	if (!ckpt) {
		buf_free(&pkl);
		buf_free(&st);
		return;
	}
	uint64_t h[4];
	CHECK(cb_ckpt_hash(ckpt, h, 2, &err) == CB_OK);
	/* sorted: base, row, t, view */
	const float *s = (const float *)st.p;
	float want_t[12], want_view[6];
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 3; j++)
			want_t[i * 3 + j] = s[i + 4 * j];
	memcpy(want_view, s + 2, sizeof want_view);
	CHECK_STR_EQ(ckpt->tensors[0].name, "base");
	CHECK_EQ_U64(h[0], XXH3_64bits(s, 48));
	CHECK_STR_EQ(ckpt->tensors[1].name, "row");
	CHECK(ckpt->tensors[1].stride == NULL); /* contiguous, so hashed in place */
	CHECK_EQ_U64(ckpt->tensors[1].offset, ckpt->tensors[0].offset + 16);
	CHECK_EQ_U64(h[1], XXH3_64bits(s + 4, 16));
	CHECK_STR_EQ(ckpt->tensors[2].name, "t");
	CHECK(ckpt->tensors[2].stride != NULL);
	CHECK_EQ_U64(ckpt->tensors[2].storage_nbytes, 48);
	CHECK_EQ_U64(h[2], XXH3_64bits(want_t, sizeof want_t));
	CHECK_STR_EQ(ckpt->tensors[3].name, "view");
	CHECK_EQ_U64(ckpt->tensors[3].storage_offset, 2);
	CHECK_EQ_U64(h[3], XXH3_64bits(want_view, sizeof want_view));
	CHECK_EQ_U64(ckpt->total_bytes, 48 + 16 + 48 + 24);
	cb_ckpt_free(ckpt);
	buf_free(&pkl);
	buf_free(&st);
}

/* {"model": {"0": {"weight": t}}, "optimizer": {"state": {0: {"exp_avg": t,
 *  "step": 5}}, "param_groups": [{"lr": 0.1, "params": [0]}]}, "epoch": 3,
 *  "list": [t, (t,)]} */
static void test_names(void)
{
	struct tspec t = {"FloatStorage", "0", 4, 0, 1, {4}, {1}};
	struct buf p = {0}, st = {0};
	op(&p, 0x80);
	op(&p, 2);
	op(&p, '}');
	op(&p, '(');
	op_str(&p, "model");
	op(&p, '}');
	op_str(&p, "0");
	op(&p, '}');
	op_str(&p, "weight");
	op_tensor(&p, &t);
	op(&p, 's');
	op(&p, 's');
	op_str(&p, "optimizer");
	op(&p, '}');
	op(&p, '(');
	op_str(&p, "state");
	op(&p, '}');
	op_int(&p, 0);
	op(&p, '}');
	op(&p, '(');
	op_str(&p, "exp_avg");
	op_tensor(&p, &t);
	op_str(&p, "step");
	op_int(&p, 5);
	op(&p, 'u');
	op(&p, 's');
	op_str(&p, "param_groups");
	op(&p, ']');
	op(&p, '}');
	op(&p, '(');
	op_str(&p, "lr");
	op(&p, 'G');
	buf_put(&p, "\x3f\xb9\x99\x99\x99\x99\x99\x9a", 8);
	op_str(&p, "params");
	op(&p, ']');
	op_int(&p, 0);
	op(&p, 'a');
	op(&p, 'u');
	op(&p, 'a');
	op(&p, 'u');
	op_str(&p, "epoch");
	op_int(&p, 3);
	op_str(&p, "list");
	op(&p, ']');
	op(&p, '(');
	op_tensor(&p, &t);
	op_tensor(&p, &t);
	op(&p, 0x85);
	op(&p, 'e');
	op(&p, 'u');
	op(&p, '.');
	float_storage(&st, 4);
	const char *path = write_pt("names.pt", &p, &st, 1, "3\n");
	struct cb_pt_file *f;
	char line[2048];
	CHECK(open_pt(path, &f, line, sizeof line) == CB_OK);
	if (f) {
		CHECK_EQ_U64(f->n_tensors, 4);
		CHECK(find(f, "model.0.weight") && find(f, "optimizer.state.0.exp_avg") &&
		      find(f, "list.0") && find(f, "list.1.0"));
		CHECK_EQ_U64(f->n_other_leaves, 4); /* step, lr, params.0, epoch */
		CHECK_EQ_U64(f->n_storages, 1);
		CHECK(find(f, "list.0")->storage == find(f, "model.0.weight")->storage);
	} else {
		fprintf(stderr, "%s\n", line);
	}
	cb_pt_free(f);
	buf_free(&p);
	buf_free(&st);
}

static void test_archive_refusals(void)
{
	struct tspec t = {"FloatStorage", "0", 4, 0, 1, {4}, {1}};
	struct buf p = {0}, st = {0};
	state_dict(&p, "w", &t);
	float_storage(&st, 3); /* 12 bytes, the pickle says 16 */
	expect_refused(write_pt("short.pt", &p, &st, 1, "3\n"),
		       "the record holds 12 bytes but the pickle says the storage has 16");
	expect_refused(write_pt("short.pt", &p, &st, 1, "3\n"), "record \"m/data/0\"");
	buf_free(&st);
	float_storage(&st, 5); /* longer than claimed is refused too */
	expect_refused(write_pt("long.pt", &p, &st, 1, "3\n"), "holds 20 bytes");
	expect_refused(write_pt("none.pt", &p, &st, 0, "3\n"),
		       "refers to storage \"0\", which has no record");
	buf_free(&st);
	float_storage(&st, 4);
	expect_refused(write_pt("nover.pt", &p, &st, 1, NULL), "no \"version\" record");
	expect_refused(write_pt("v99.pt", &p, &st, 1, "99\n"), "version 99 is not supported");
	expect_refused(write_pt("vx.pt", &p, &st, 1, "3x"), "not a decimal number");

	/* TorchScript archives, byteorder, no data.pkl. */
	struct zrec ts[] = {
		{"m/data.pkl", p.p, p.len, 0, 0},
		{"m/constants.pkl", "\x80\x02).", 4, 0, 0},
		{"m/version", "3\n", 2, 0, 0},
	};
	struct buf z = {0};
	struct zlayout lay;
	zip_build(&z, ts, 3, false, &lay);
	expect_refused(fixture_write("ts.pt", z.p, z.len), "a TorchScript archive");
	buf_free(&z);
	struct zrec big[] = {
		{"m/data.pkl", p.p, p.len, 0, 0},
		{"m/byteorder", "big", 3, 0, 0},
		{"m/data/0", st.p, st.len, 0, 0},
		{"m/version", "3\n", 2, 0, 0},
	};
	zip_build(&z, big, 4, false, &lay);
	expect_refused(fixture_write("big.pt", z.p, z.len), "big-endian checkpoint");
	buf_free(&z);
	struct zrec nopkl[] = {{"m/version", "3\n", 2, 0, 0}};
	zip_build(&z, nopkl, 1, false, &lay);
	expect_refused(fixture_write("nopkl.pt", z.p, z.len), "no data.pkl record");
	buf_free(&z);

	/* A forbidden global inside a real archive: named, nothing read. */
	struct buf evil = {0};
	op(&evil, 0x80);
	op(&evil, 2);
	op_global(&evil, "posix", "system");
	op_str(&evil, "touch pwned");
	op(&evil, 0x85);
	op(&evil, 'R');
	op(&evil, '.');
	expect_refused(write_pt("evil.pt", &evil, &st, 1, "3\n"),
		       "refused global posix.system: not in the weights-only allowlist "
		       "(nothing is imported or run) (m/data.pkl byte 2)");
	buf_free(&evil);
	buf_free(&p);
	buf_free(&st);
}

static void test_old_formats(void)
{
	uint8_t tar[1024] = "storages";
	memcpy(tar + 257,
	       "ustar\0"
	       "00",
	       8);
	expect_refused(fixture_write("old.tar.pt", tar, sizeof tar),
		       "a tar-format PyTorch checkpoint");
	expect_refused(fixture_write("preview.pt", "PYTORCH1\0\0\0\0", 12), "PYTORCH1");
	expect_refused(fixture_write("text.pt", "hello world", 11),
		       "neither a zip archive nor a pickle");
	expect_refused(fixture_write("empty.pt", "", 0), "neither a zip archive nor a pickle");
	/* A pickle that is not torch's: the magic number is missing. */
	expect_refused(fixture_write("plain.pkl", "\x80\x02K\x05.", 5), "legacy magic number");
}

/* The legacy stream: magic, protocol, sys_info, object, keys, storages. */
static void legacy_file(struct buf *out, int64_t count, const char *listed_key, bool truncate)
{
	buf_put(out, "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);
	buf_put(out, "\x80\x02M\xe9\x03.", 6);
	op(out, 0x80);
	op(out, 2);
	op(out, '}');
	op(out, '(');
	op_str(out, "protocol_version");
	op_int(out, 1001);
	op_str(out, "little_endian");
	op(out, 0x88);
	op(out, 'u');
	op(out, '.');
	/* {"a": view of storage 140 (6 floats), "b": the same storage} */
	op(out, 0x80);
	op(out, 2);
	op(out, '}');
	op(out, '(');
	for (int k = 0; k < 2; k++) {
		op_str(out, k ? "b" : "a");
		op_global(out, "torch._utils", "_rebuild_tensor_v2");
		op(out, '(');
		op(out, '(');
		op_str(out, "storage");
		op_global(out, "torch", "FloatStorage");
		op_str(out, "140");
		op_str(out, "cpu");
		op_int(out, 6);
		op(out, 'N');
		op(out, 't');
		op(out, 'Q');
		op_int(out, k ? 0 : 3);
		op_int_tuple(out, (const int64_t[]){k ? 6 : 3}, 1);
		op_int_tuple(out, (const int64_t[]){1}, 1);
		op(out, 0x89);
		op(out, '}');
		op(out, 't');
		op(out, 'R');
	}
	op(out, 'u');
	op(out, '.');
	op(out, 0x80);
	op(out, 2);
	op(out, ']');
	op_str(out, listed_key);
	op(out, 'a');
	op(out, '.');
	buf_le(out, (uint64_t)count, 8);
	float f[6] = {0, 1, 2, 3, 4, 5};
	buf_put(out, f, truncate ? 20 : sizeof f);
}

static void test_legacy(void)
{
	struct buf b = {0};
	legacy_file(&b, 6, "140", false);
	const char *path = fixture_write("legacy.pt", b.p, b.len);
	struct cb_pt_file *f;
	char line[2048];
	CHECK(open_pt(path, &f, line, sizeof line) == CB_OK);
	if (f) {
		CHECK(f->legacy);
		CHECK_EQ_U64(f->n_tensors, 2);
		CHECK_EQ_U64(f->n_storages, 1);
		CHECK_EQ_U64(f->storages[0].offset, b.len - 24);
		const struct cb_pt_tensor *a = find(f, "a");
		CHECK(a && a->offset == b.len - 24 + 12 && a->nbytes == 12 && !a->stride);
	} else {
		fprintf(stderr, "%s\n", line);
	}
	cb_pt_free(f);
	struct cb_ckpt *ckpt = NULL;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_ckpt_open(path, CB_FORMAT_ANY, &ckpt, &err) == CB_OK);
	if (ckpt) {
		uint64_t h[2];
		float want[3] = {3, 4, 5};
		CHECK(cb_ckpt_hash(ckpt, h, 1, &err) == CB_OK);
		CHECK_EQ_U64(h[0], XXH3_64bits(want, sizeof want));
	}
	cb_ckpt_free(ckpt);
	buf_free(&b);

	legacy_file(&b, 7, "140", false);
	expect_refused(fixture_write("l1.pt", b.p, b.len),
		       "storage \"140\" holds 7 elements but the pickle says 6");
	buf_free(&b);
	legacy_file(&b, 6, "141", false);
	expect_refused(fixture_write("l2.pt", b.p, b.len),
		       "storage \"141\" is listed but no tensor refers to it");
	buf_free(&b);
	legacy_file(&b, 6, "140", true);
	expect_refused(fixture_write("l3.pt", b.p, b.len), "runs past the end of the file");
	buf_free(&b);
	/* Cut inside the object pickle: refused, not read past. */
	legacy_file(&b, 6, "140", false);
	expect_refused(fixture_write("l4.pt", b.p, 100), "pickle byte");
	buf_free(&b);
}

static void test_nesting_and_duplicates(void)
{
	struct buf p = {0}, st = {0};
	/* 300 nested lists */
	op(&p, 0x80);
	op(&p, 2);
	for (int k = 0; k < 300; k++)
		op(&p, ']');
	for (int k = 0; k < 299; k++)
		op(&p, 'a');
	op(&p, '.');
	expect_refused(write_pt("deep.pt", &p, &st, 0, "3\n"), "nest deeper than 256 levels");
	buf_free(&p);
	/* a list that holds itself */
	op(&p, 0x80);
	op(&p, 2);
	op(&p, ']');
	op(&p, 'q');
	buf_u8(&p, 0);
	op(&p, 'h');
	buf_u8(&p, 0);
	op(&p, 'a');
	op(&p, '.');
	expect_refused(write_pt("cycle.pt", &p, &st, 0, "3\n"), "nest deeper than 256 levels");
	buf_free(&p);
	/* {"a.b": t, "a": {"b": t}} */
	struct tspec t = {"FloatStorage", "0", 1, 0, 0, {0}, {0}};
	op(&p, 0x80);
	op(&p, 2);
	op(&p, '}');
	op_str(&p, "a.b");
	op_tensor(&p, &t);
	op(&p, 's');
	op_str(&p, "a");
	op(&p, '}');
	op_str(&p, "b");
	op_tensor(&p, &t);
	op(&p, 's');
	op(&p, 's');
	op(&p, '.');
	float_storage(&st, 1);
	expect_refused(write_pt("dup.pt", &p, &st, 1, "3\n"),
		       "two tensors have this name (duplicate keys) (tensor \"a.b\")");
	buf_free(&p);
	buf_free(&st);
}

/* pytorch_model-0000K-of-00002.bin + pytorch_model.bin.index.json */
static void test_sharded(void)
{
	struct tspec t = {"FloatStorage", "0", 4, 0, 2, {2, 2}, {2, 1}};
	struct buf p = {0}, st = {0};
	float_storage(&st, 4);
	state_dict(&p, "a.weight", &t);
	write_pt("pytorch_model-00001-of-00002.bin", &p, &st, 1, "3\n");
	buf_free(&p);
	state_dict(&p, "b.weight", &t);
	write_pt("pytorch_model-00002-of-00002.bin", &p, &st, 1, "3\n");
	buf_free(&p);
	const char *index = "{\"metadata\": {\"total_size\": 32}, \"weight_map\": {"
			    "\"a.weight\": \"pytorch_model-00001-of-00002.bin\", "
			    "\"b.weight\": \"pytorch_model-00002-of-00002.bin\"}}";
	fixture_write("pytorch_model.bin.index.json", index, strlen(index));
	struct cb_ckpt *ckpt = NULL;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_ckpt_open(fixture_dir, CB_FORMAT_PYTORCH, &ckpt, &err) == CB_OK);
	if (ckpt) {
		CHECK(ckpt->sharded && ckpt->n_files == 2 && ckpt->n_tensors == 2);
		CHECK_STR_EQ(ckpt->tensors[1].name, "b.weight");
		CHECK_EQ_U64(ckpt->tensors[1].file, 1);
		uint64_t h[2];
		CHECK(cb_ckpt_hash(ckpt, h, 2, &err) == CB_OK);
		CHECK_EQ_U64(h[0], XXH3_64bits(st.p, 16));
		CHECK_EQ_U64(h[1], h[0]);
	} else {
		char line[2048];
		cb_error_format(&err, line, sizeof line);
		fprintf(stderr, "%s\n", line);
	}
	cb_ckpt_free(ckpt);
	buf_free(&st);
}

int main(void)
{
	fixture_mkdir();
	test_linear();
	test_views_and_hashes();
	test_names();
	test_archive_refusals();
	test_old_formats();
	test_legacy();
	test_nesting_and_duplicates();
	test_sharded();
	fixture_cleanup();
	return check_finish("test_pt");
}
