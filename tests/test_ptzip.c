/* The zip directory reader: torch's layout read exactly (the 799-byte
 * nn.Linear file, ZIP64 extras, foreign directory entries), and every kind
 * of broken archive refused with its rule and exit status 1, never a crash:
 * truncated, bit-flipped, overlapping, out-of-file, compressed, encrypted,
 * lying ZIP64 records, names outside the prefix. */
#include <stdint.h>

#include "check.h"
#include "pt_fixture.h"
#include "ptzip.h"

/* Opens `data` as a file; returns the error code (the archive is freed). */
static int open_bytes(const uint8_t *data, size_t len, struct cb_error *err)
{
	const char *path = fixture_write("z.pt", data, len);
	struct cb_ptzip *zip = NULL;
	cb_error_clear(err);
	int rc = cb_ptzip_open(path, &zip, err);
	cb_ptzip_free(zip);
	return rc;
}

/* The archive is refused, with status 1 and the message naming the rule. */
static void expect_refused(const uint8_t *data, size_t len, const char *needle)
{
	struct cb_error err = CB_ERROR_INIT;
	int rc = open_bytes(data, len, &err);
	char line[2048];
	cb_error_format(&err, line, sizeof line);
	CHECK(rc != CB_OK);
	CHECK_EQ_U64(cb_error_exit_status(rc), 1);
	CHECK_CONTAINS(line, needle);
}

static void test_linear_layout(void)
{
	struct buf b = {0};
	struct zlayout lay;
	linear_archive(&b, &lay);
	/* The offsets torch 1.13 wrote (docs/datasets-and-method.md §4.1). */
	CHECK_EQ_U64(b.len, 799);
	CHECK_EQ_U64(lay.data[0], 64);
	CHECK_EQ_U64(lay.header[1], 309);
	CHECK_EQ_U64(lay.data[1], 384);
	CHECK_EQ_U64(lay.data[2], 512);
	CHECK_EQ_U64(lay.cd, 530);
	CHECK_EQ_U64(lay.z64, 701);
	CHECK_EQ_U64(lay.eocd, 777);

	const char *path = fixture_write("lin.pt", b.p, b.len);
	struct cb_ptzip *zip = NULL;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_ptzip_open(path, &zip, &err) == CB_OK);
	if (!zip) {
		buf_free(&b);
		return;
	}
	CHECK_STR_EQ(zip->prefix, "lin");
	CHECK_EQ_U64(zip->n_records, 3);
	const struct cb_ptzip_record *r = cb_ptzip_find(zip, "data/0");
	CHECK(r != NULL);
	if (r) {
		CHECK_EQ_U64(r->data_offset, 384);
		CHECK_EQ_U64(r->size, 12);
		CHECK_EQ_U64(r->header_offset, 309);
		CHECK_STR_EQ(r->name, "lin/data/0");
	}
	r = cb_ptzip_find(zip, "data.pkl");
	CHECK(r && r->data_offset == 64 && r->size == 229);
	CHECK(cb_ptzip_find(zip, "version") != NULL);
	CHECK(cb_ptzip_find(zip, "lin/version") == NULL);
	CHECK(cb_ptzip_find(zip, "data") == NULL);
	cb_ptzip_free(zip);
	buf_free(&b);
}

static void test_zip64_extras_and_directories(void)
{
	const struct zrec recs[] = {
		{"archive/", "", 0, 0, 0},
		{"archive/data.pkl", "\x80\x02N.", 4, 0, 0},
		{"archive/data/", "", 0, 0, 0},
		{"archive/data/0", "abcdefgh", 8, 0, 0},
	};
	struct buf b = {0};
	struct zlayout lay;
	zip_build(&b, recs, 4, true, &lay);
	const char *path = fixture_write("z64.pt", b.p, b.len);
	struct cb_ptzip *zip = NULL;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_ptzip_open(path, &zip, &err) == CB_OK);
	if (zip) {
		CHECK_STR_EQ(zip->prefix, "archive");
		CHECK_EQ_U64(zip->n_records, 2); /* directory entries skipped */
		const struct cb_ptzip_record *r = cb_ptzip_find(zip, "data/0");
		CHECK(r && r->size == 8 && r->data_offset == lay.data[3]);
		CHECK(r && r->data_offset % 64 == 0);
	}
	cb_ptzip_free(zip);
	buf_free(&b);
}

static void test_truncated_and_flipped(void)
{
	struct buf b = {0};
	struct zlayout lay;
	linear_archive(&b, &lay);
	/* Every truncation: refused (the end record is gone or points past
	 * the end), never a crash. */
	for (size_t len = 0; len < b.len; len++) {
		struct cb_error err = CB_ERROR_INIT;
		int rc = open_bytes(b.p, len, &err);
		CHECK(rc != CB_OK);
		CHECK_EQ_U64(cb_error_exit_status(rc), 1);
	}
	/* Every single-bit flip in the directory and end records: either still
	 * a valid archive (a flipped CRC) or refused with status 1. */
	uint8_t *copy = malloc(b.len);
	size_t refused = 0;
	for (size_t pos = lay.cd; pos < b.len; pos++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(copy, b.p, b.len);
			copy[pos] ^= (uint8_t)(1u << bit);
			struct cb_error err = CB_ERROR_INIT;
			int rc = open_bytes(copy, b.len, &err);
			CHECK(rc == CB_OK || cb_error_exit_status(rc) == 1);
			refused += rc != CB_OK;
		}
	}
	CHECK(refused > 500);
	free(copy);
	buf_free(&b);
}

static void test_refusals(void)
{
	struct buf b = {0};
	struct zlayout lay;

	/* Compressed (method 8) and encrypted records name the record. */
	struct zrec recs[] = {
		{"x/data.pkl", "\x80\x02N.", 4, 0, 0},
		{"x/data/0", "0123456789abcdef", 16, 8, 0},
	};
	zip_build(&b, recs, 2, false, &lay);
	expect_refused(b.p, b.len, "record \"x/data/0\"");
	expect_refused(b.p, b.len, "compressed (method 8)");
	buf_free(&b);
	recs[1].method = 0;
	recs[1].flags = 1;
	zip_build(&b, recs, 2, false, &lay);
	expect_refused(b.p, b.len, "encrypted");
	buf_free(&b);
	recs[1].flags = 0;

	/* A TorchScript archive is named as such, whatever else is wrong. */
	struct zrec script[] = {
		{"s/data.pkl", "\x80\x02N.", 4, 0, 0},
		{"s/code/__torch__/m.py", "def forward(self): ...", 22, 8, 0},
	};
	zip_build(&b, script, 2, false, &lay);
	expect_refused(b.p, b.len, "a TorchScript archive, not a torch.save checkpoint");
	buf_free(&b);

	/* Overlapping: the second entry points at the first local header. */
	struct zrec same[] = {
		{"x/a", "0123456789abcdef", 16, 0, 0},
		{"x/a", "0123456789abcdef", 16, 0, 0},
	};
	zip_build(&b, same, 2, false, &lay);
	put_le(b.p + lay.cd_entry[1] + 28, 3, 2); /* keep it parseable: rename */
	b.p[lay.cd_entry[1] + 46 + 2] = 'b';
	put_le(b.p + lay.cd_entry[1] + 42, lay.header[0], 4);
	expect_refused(b.p, b.len, "the local header names a different record");
	buf_free(&b);
	struct zrec overlap[] = {
		{"x/a", "0123456789abcdef0123456789abcdef", 32, 0, 0},
		{"x/b", "0123456789abcdef", 16, 0, 0},
	};
	zip_build(&b, overlap, 2, false, &lay);
	/* a's size grown so that its data runs into b's header */
	put_le(b.p + lay.cd_entry[0] + 20, 60, 4);
	put_le(b.p + lay.cd_entry[0] + 24, 60, 4);
	expect_refused(b.p, b.len, "overlaps record \"x/a\"");
	buf_free(&b);

	/* Out of file: a size that runs past the records' area. */
	zip_build(&b, recs, 2, false, &lay);
	put_le(b.p + lay.cd_entry[1] + 20, 1u << 30, 4);
	put_le(b.p + lay.cd_entry[1] + 24, 1u << 30, 4);
	expect_refused(b.p, b.len, "runs past the records' area");
	buf_free(&b);
	zip_build(&b, recs, 2, false, &lay);
	put_le(b.p + lay.cd_entry[1] + 42, 1u << 30, 4);
	expect_refused(b.p, b.len, "outside the records' area");
	buf_free(&b);

	/* Sizes that differ between compressed and uncompressed. */
	zip_build(&b, recs, 2, false, &lay);
	put_le(b.p + lay.cd_entry[1] + 20, 15, 4);
	expect_refused(b.p, b.len, "compressed size 15 differs");
	buf_free(&b);

	/* Names outside the prefix, duplicates, no prefix at all. */
	struct zrec outside[] = {
		{"x/data.pkl", "\x80\x02N.", 4, 0, 0},
		{"y/data/0", "01234567", 8, 0, 0},
	};
	zip_build(&b, outside, 2, false, &lay);
	expect_refused(b.p, b.len, "not under the archive prefix \"x/\"");
	buf_free(&b);
	struct zrec noprefix[] = {{"data.pkl", "\x80\x02N.", 4, 0, 0}};
	zip_build(&b, noprefix, 1, false, &lay);
	expect_refused(b.p, b.len, "not under an archive prefix");
	buf_free(&b);
	struct zrec dup[] = {
		{"x/data.pkl", "\x80\x02N.", 4, 0, 0},
		{"x/data.pkl", "\x80\x02N.", 4, 0, 0},
	};
	zip_build(&b, dup, 2, false, &lay);
	expect_refused(b.p, b.len, "two records have this name");
	buf_free(&b);
}

static void test_lying_end_records(void)
{
	struct buf b = {0};
	struct zlayout lay;
	linear_archive(&b, &lay);
	uint8_t *c = malloc(b.len);

	/* ZIP64 record count disagrees with the classic one. */
	memcpy(c, b.p, b.len);
	put_le(c + lay.z64 + 24, 4, 8);
	put_le(c + lay.z64 + 32, 4, 8);
	expect_refused(c, b.len, "disagrees with the end record about the number of records");
	/* A huge claimed count, saturated in the classic record. */
	memcpy(c, b.p, b.len);
	put_le(c + lay.z64 + 24, 1ull << 40, 8);
	put_le(c + lay.z64 + 32, 1ull << 40, 8);
	put_le(c + lay.eocd + 8, 0xFFFF, 2);
	put_le(c + lay.eocd + 10, 0xFFFF, 2);
	expect_refused(c, b.len, "over the limit");
	/* More records than the directory's size can hold. */
	memcpy(c, b.p, b.len);
	put_le(c + lay.z64 + 24, 1000, 8);
	put_le(c + lay.z64 + 32, 1000, 8);
	put_le(c + lay.eocd + 8, 0xFFFF, 2);
	put_le(c + lay.eocd + 10, 0xFFFF, 2);
	expect_refused(c, b.len, "more than a central directory");
	/* Directory offset past the end, saturated classic field. */
	memcpy(c, b.p, b.len);
	put_le(c + lay.z64 + 48, 1ull << 62, 8);
	put_le(c + lay.eocd + 16, 0xFFFFFFFFu, 4);
	expect_refused(c, b.len, "runs past the end records");
	/* Locator pointing nowhere useful. */
	memcpy(c, b.p, b.len);
	put_le(c + lay.locator + 8, 5, 8);
	expect_refused(c, b.len, "does not point to a ZIP64 end record");
	memcpy(c, b.p, b.len);
	put_le(c + lay.locator + 8, 1ull << 63, 8);
	expect_refused(c, b.len, "no ZIP64 end record fits");
	/* Multi-disk archives. */
	memcpy(c, b.p, b.len);
	put_le(c + lay.eocd + 4, 1, 2);
	expect_refused(c, b.len, "multi-disk");
	/* No end record at all. */
	memcpy(c, b.p, b.len);
	c[lay.eocd] = 'X';
	expect_refused(c, b.len, "no end-of-central-directory record");
	/* Classic end record deferring to a ZIP64 record that is absent. */
	memcpy(c, b.p, b.len);
	put_le(c + lay.eocd + 16, 0xFFFFFFFFu, 4);
	c[lay.locator] = 'X';
	expect_refused(c, b.len, "defers to a ZIP64 end record");
	/* A ZIP64 extra field missing for a saturated size. */
	memcpy(c, b.p, b.len);
	put_le(c + lay.cd_entry[1] + 24, 0xFFFFFFFFu, 4);
	put_le(c + lay.cd_entry[1] + 20, 0xFFFFFFFFu, 4);
	expect_refused(c, b.len, "defers to a ZIP64 extra field");
	free(c);
	buf_free(&b);
}

int main(void)
{
	fixture_mkdir();
	test_linear_layout();
	test_zip64_extras_and_directories();
	test_truncated_and_flipped();
	test_refusals();
	test_lying_end_records();
	fixture_cleanup();
	return check_finish("test_ptzip");
}
