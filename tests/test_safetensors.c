/* The safetensors reader and writer against the reference implementation's
 * own test vectors (docs/datasets-and-method.md §3.5: tensor.rs and
 * the Python test_simple.py), then one malformed buffer per rule the reader
 * enforces, the oddities it must accept, every dtype through a real file,
 * and the writer's refusals and file handling.
 *
 * Buffers are built in memory and parsed with cb_st_parse_buffer, so a
 * failing case names the exact bytes; files go to a private temp dir.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "safetensors.h"
#include "testfs.h"

/* ------------------------------------------------------------ helpers */

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A file in memory: the length field says `n`, then `header_len` bytes of
 * header, then `data_len` bytes (copied from `data`, zeros when NULL). The
 * caller frees. `n` may lie about header_len to build broken files. */
static uint8_t *raw_file(uint64_t n, const void *header, size_t header_len, const void *data,
			 size_t data_len, size_t *len_out)
{
	size_t len = 8 + header_len + data_len;
	uint8_t *buf = calloc(1, len ? len : 1);
	if (!buf)
		abort();
	put_le64(buf, n);
	memcpy(buf + 8, header, header_len);
	if (data)
		memcpy(buf + 8 + header_len, data, data_len);
	*len_out = len;
	return buf;
}

/* The usual case: an honest length field over a text header. */
static uint8_t *json_file(const char *json, size_t data_len, size_t *len_out)
{
	return raw_file(strlen(json), json, strlen(json), NULL, data_len, len_out);
}

static void print_error(const struct cb_error *err)
{
	char line[2048];
	cb_error_format(err, line, sizeof line);
	fprintf(stderr, "    error: %s [%s]\n", line, cb_error_name(err->code));
}

/* Parses a buffer that must be accepted; returns the file (caller frees)
 * or NULL after counting a failure. */
static struct cb_st_file *parse_ok(const char *what, const uint8_t *buf, size_t len)
{
	struct cb_error err = CB_ERROR_INIT;
	struct cb_st_file *file = NULL;
	int rc = cb_st_parse_buffer(what, buf, len, &file, &err);
	CHECK(rc == CB_OK);
	if (rc != CB_OK) {
		fprintf(stderr, "  case \"%s\" was refused\n", what);
		print_error(&err);
	}
	return file;
}

/* Parses a buffer that must be refused with `code`, exit status 1, a message
 * holding `needle` (the rule's name) and, when given, exactly `where`. */
static void parse_refused(const char *what, const uint8_t *buf, size_t len, int code,
			  const char *needle, const char *where)
{
	struct cb_error err = CB_ERROR_INIT;
	struct cb_st_file *file = NULL;
	int before = check_failures;
	int rc = cb_st_parse_buffer(what, buf, len, &file, &err);
	CHECK(rc == code);
	CHECK(err.code == code);
	CHECK(file == NULL);
	CHECK_EQ_U64(cb_error_exit_status(rc), 1);
	CHECK_CONTAINS(err.msg, needle);
	CHECK_STR_EQ(err.path, what); /* the one-line message names the input */
	if (where)
		CHECK_STR_EQ(err.where, where);
	if (check_failures != before) {
		fprintf(stderr, "  in case \"%s\"\n", what);
		print_error(&err);
	}
	cb_st_free(file);
}

static void refused_json(const char *what, const char *json, size_t data_len, int code,
			 const char *needle, const char *where)
{
	size_t len;
	uint8_t *buf = json_file(json, data_len, &len);
	parse_refused(what, buf, len, code, needle, where);
	free(buf);
}

static struct cb_st_file *ok_json(const char *what, const char *json, size_t data_len)
{
	size_t len;
	uint8_t *buf = json_file(json, data_len, &len);
	struct cb_st_file *file = parse_ok(what, buf, len);
	free(buf);
	return file;
}

static void accepted_json(const char *what, const char *json, size_t data_len)
{
	cb_st_free(ok_json(what, json, data_len));
}

/* The whole file a layout describes, built in memory: header, then each
 * spec's bytes at its offset. NULL (error in *err) when the layout fails. */
static uint8_t *write_mem(const struct cb_st_spec *specs, const void *const *data, size_t n,
			  const struct cb_kv *meta, size_t n_meta, size_t *len_out,
			  struct cb_error *err)
{
	struct cb_st_layout layout;
	if (cb_st_layout_build(specs, n, meta, n_meta, &layout, err) != CB_OK)
		return NULL;
	uint8_t *buf = calloc(1, (size_t)layout.file_size);
	if (!buf)
		abort();
	memcpy(buf, layout.header, layout.header_size);
	for (size_t i = 0; i < n; i++)
		if (layout.nbytes[i])
			memcpy(buf + layout.offset[i], data[i], (size_t)layout.nbytes[i]);
	*len_out = (size_t)layout.file_size;
	cb_st_layout_free(&layout);
	return buf;
}

static void print_bytes(const char *label, const uint8_t *p, size_t len)
{
	fprintf(stderr, "    %s (%zu bytes): ", label, len);
	for (size_t i = 0; i < len; i++)
		fprintf(stderr, p[i] >= 0x20 && p[i] < 0x7f ? "%c" : "\\x%02x", p[i]);
	fprintf(stderr, "\n");
}

/* The writer's output must be u64le(n) ‖ json ‖ spaces up to n ‖ data. */
static void check_written(const char *what, const uint8_t *got, size_t got_len, uint64_t n,
			  const char *json, const void *data, size_t data_len)
{
	size_t json_len = strlen(json);
	CHECK(json_len <= n);
	if (json_len > n)
		return;
	size_t len = 8 + (size_t)n + data_len;
	uint8_t *want = malloc(len);
	if (!want)
		abort();
	put_le64(want, n);
	memcpy(want + 8, json, json_len);
	memset(want + 8 + json_len, ' ', (size_t)n - json_len);
	if (data_len)
		memcpy(want + 8 + n, data, data_len);
	bool same = got && got_len == len && memcmp(got, want, len) == 0;
	CHECK(same);
	if (!same) {
		fprintf(stderr, "  writer vector \"%s\" differs\n", what);
		print_bytes("want", want, len);
		if (got)
			print_bytes("got ", got, got_len);
	}
	free(want);
}

static uint8_t *write_ok(const char *what, const struct cb_st_spec *specs, const void *const *data,
			 size_t n, const struct cb_kv *meta, size_t n_meta, size_t *len_out)
{
	struct cb_error err = CB_ERROR_INIT;
	uint8_t *buf = write_mem(specs, data, n, meta, n_meta, len_out, &err);
	CHECK(buf != NULL);
	if (!buf) {
		fprintf(stderr, "  writer case \"%s\" was refused\n", what);
		print_error(&err);
	}
	return buf;
}

static const uint64_t shape_1_2_3[] = {1, 2, 3};
static const uint64_t shape_1_2[] = {1, 2};
static const uint64_t shape_1_1_2_3[] = {1, 1, 2, 3};
static const uint64_t shape_2_2[] = {2, 2};
static const uint64_t shape_1_3[] = {1, 3};

/* ------------------------------------------------- reference writer vectors */

static void test_writer_vectors(void)
{
	/* tensor.rs test_serialization: F32 0..5 as [1,2,3]. */
	float values[6] = {0, 1, 2, 3, 4, 5};
	const void *data[2] = {values, values};
	struct cb_st_spec attn = {"attn.0", CB_DTYPE_F32, 3, shape_1_2_3};
	size_t len;
	uint8_t *out = write_ok("test_serialization", &attn, data, 1, NULL, 0, &len);
	check_written("test_serialization", out, len, 64,
		      "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}",
		      values, sizeof values);
	if (out) {
		struct cb_st_file *f = parse_ok("test_serialization read back", out, len);
		CHECK(f && f->n_tensors == 1 && f->tensors[0].numel == 6 &&
		      f->tensors[0].end == 24 && f->data_start == 72);
		cb_st_free(f);
	}
	free(out);

	/* test_serialization_fp4: F4 [1,2] is one byte. */
	uint8_t fp4_byte = 0;
	const void *fp4_data[1] = {&fp4_byte};
	struct cb_st_spec fp4 = {"attn.0", CB_DTYPE_F4, 2, shape_1_2};
	out = write_ok("test_serialization_fp4", &fp4, fp4_data, 1, NULL, 0, &len);
	check_written("test_serialization_fp4", out, len, 64,
		      "{\"attn.0\":{\"dtype\":\"F4\",\"shape\":[1,2],\"data_offsets\":[0,1]}}",
		      &fp4_byte, 1);
	if (out)
		cb_st_free(parse_ok("test_serialization_fp4 read back", out, len));
	free(out);

	/* test_serialization_forced_alignement: a 65-byte JSON needs 7 spaces
	 * so that the data starts on a multiple of 8. */
	struct cb_st_spec attn0 = {"attn0", CB_DTYPE_F32, 4, shape_1_1_2_3};
	const char *json65 =
		"{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}";
	CHECK_EQ_U64(strlen(json65), 65);
	out = write_ok("test_serialization_forced_alignement", &attn0, data, 1, NULL, 0, &len);
	check_written("test_serialization_forced_alignement", out, len, 72, json65, values,
		      sizeof values);
	if (out) {
		struct cb_st_file *f = parse_ok("forced alignment read back", out, len);
		CHECK(f && f->data_start % 8 == 0 && f->data_start == 80);
		cb_st_free(f);
	}
	free(out);

	/* test_empty: no tensors, with and without metadata. */
	out = write_ok("test_empty", NULL, NULL, 0, NULL, 0, &len);
	check_written("test_empty", out, len, 8, "{}", NULL, 0);
	CHECK_EQ_U64(len, 16);
	if (out) {
		struct cb_st_file *f = parse_ok("test_empty read back", out, len);
		CHECK(f && f->n_tensors == 0 && !f->has_metadata);
		cb_st_free(f);
	}
	free(out);
	const struct cb_kv framework = {"framework", "pt"};
	out = write_ok("test_empty with metadata", NULL, NULL, 0, &framework, 1, &len);
	check_written("test_empty with metadata", out, len, 40,
		      "{\"__metadata__\":{\"framework\":\"pt\"}}", NULL, 0);
	if (out) {
		struct cb_st_file *f = parse_ok("test_empty with metadata read back", out, len);
		CHECK(f && f->has_metadata && f->n_meta == 1);
		if (f && f->n_meta == 1) {
			CHECK_STR_EQ(f->meta[0].key, "framework");
			CHECK_STR_EQ(f->meta[0].value, "pt");
		}
		cb_st_free(f);
	}
	free(out);
	/* An empty metadata object is written as one, not dropped. */
	out = write_ok("empty metadata object", NULL, NULL, 0, &framework, 0, &len);
	check_written("empty metadata object", out, len, 24, "{\"__metadata__\":{}}", NULL, 0);
	free(out);

	/* Python test_simple: numpy I32 zeros [2,2] → N=64. */
	int32_t zeros[4] = {0, 0, 0, 0};
	const void *zdata[2] = {zeros, zeros};
	struct cb_st_spec test = {"test", CB_DTYPE_I32, 2, shape_2_2};
	out = write_ok("test_simple I32", &test, zdata, 1, NULL, 0, &len);
	check_written("test_simple I32", out, len, 64,
		      "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
		      zeros, sizeof zeros);
	free(out);
	out = write_ok("test_simple metadata", &test, zdata, 1, &framework, 1, &len);
	check_written("test_simple metadata", out, len, 96,
		      "{\"__metadata__\":{\"framework\":\"pt\"},\"test\":{\"dtype\":\"I32\","
		      "\"shape\":[2,2],\"data_offsets\":[0,16]}}",
		      zeros, sizeof zeros);
	free(out);

	/* Python test_simple: I32 + F16 come out I32 first whatever the
	 * order they are given in, N=128. */
	uint16_t halves[4] = {0, 0, 0, 0};
	uint8_t both[24] = {0};
	const char *json_two =
		"{\"test1\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
		"\"test2\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[16,24]}}";
	struct cb_st_spec two[2] = {{"test1", CB_DTYPE_I32, 2, shape_2_2},
				    {"test2", CB_DTYPE_F16, 2, shape_2_2}};
	const void *two_data[2] = {zeros, halves};
	out = write_ok("I32+F16", two, two_data, 2, NULL, 0, &len);
	check_written("I32+F16", out, len, 128, json_two, both, sizeof both);
	free(out);
	struct cb_st_spec two_reversed[2] = {two[1], two[0]};
	const void *reversed_data[2] = {halves, zeros};
	out = write_ok("F16+I32", two_reversed, reversed_data, 2, NULL, 0, &len);
	check_written("F16+I32 (same bytes)", out, len, 128, json_two, both, sizeof both);
	free(out);
}

/* ------------------------------------------------- reference reader vectors */

static void test_reader_vectors(void)
{
	/* test_deserialization: N=60, not a multiple of 8. */
	struct cb_st_file *f = ok_json(
		"test_deserialization N=60",
		"{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16);
	CHECK(f && f->header_len == 60 && f->data_start == 68 && f->n_tensors == 1);
	if (f && f->n_tensors == 1) {
		const struct cb_st_tensor *t = &f->tensors[0];
		CHECK_STR_EQ(t->name, "test");
		CHECK(t->dtype == CB_DTYPE_I32 && t->rank == 2 && t->shape[0] == 2 &&
		      t->shape[1] == 2 && t->numel == 4 && t->begin == 0 && t->end == 16);
		CHECK_EQ_U64(cb_st_data_size(f), 16);
	}
	cb_st_free(f);

	/* test_empty_shapes_allowed: N=56, a scalar. */
	const char *scalar = "{\"test\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]}}";
	CHECK_EQ_U64(strlen(scalar), 56);
	f = ok_json("test_empty_shapes_allowed N=56", scalar, 4);
	CHECK(f && f->n_tensors == 1 && f->tensors[0].rank == 0 && f->tensors[0].numel == 1);
	cb_st_free(f);

	/* test_zero_sized_tensor: [2,0] at [0, 0], no data at all. */
	const char *zero = "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,0],\"data_offsets\":[0, 0]}}";
	CHECK_EQ_U64(strlen(zero), 60);
	f = ok_json("test_zero_sized_tensor", zero, 0);
	CHECK(f && f->n_tensors == 1 && f->tensors[0].numel == 0 && f->tensors[0].end == 0);
	cb_st_free(f);

	/* Whitespace around the object, trailing and leading (since #686). */
	size_t len;
	uint8_t *buf = raw_file(6, "{}\r \t\n", 6, NULL, 0, &len);
	CHECK_EQ_U64(len, 14);
	f = parse_ok("test_whitespace_padded_header", buf, len);
	CHECK(f && f->n_tensors == 0);
	cb_st_free(f);
	free(buf);
	buf = raw_file(6, "\t\n{}\r ", 6, NULL, 0, &len);
	f = parse_ok("test_whitespace_leading_padded_header", buf, len);
	CHECK(f && f->n_tensors == 0);
	cb_st_free(f);
	free(buf);

	/* test_header_too_small: nothing at all, and 7 bytes. */
	parse_refused("test_header_too_small (empty)", (const uint8_t *)"", 0, CB_EFORMAT,
		      "header too small", "byte 0");
	parse_refused("7 bytes", (const uint8_t *)"\x01\0\0\0\0\0\0", 7, CB_EFORMAT,
		      "header too small", "byte 0");

	/* test_invalid_header_length: N=60 and nothing after it. */
	parse_refused("test_invalid_header_length", (const uint8_t *)"<\0\0\0\0\0\0\0", 8,
		      CB_EFORMAT, "invalid header length", "byte 0");

	/* test_header_too_large: the length field's top bytes are 0xff. The
	 * length's low byte is '<' but the rest is binary: no HTML hint. */
	const char *body = "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
	buf = raw_file(0xffffff000000003cull, body, strlen(body), NULL, 16, &len);
	parse_refused("test_header_too_large", buf, len, CB_EFORMAT, "header too large", "byte 0");
	{
		struct cb_error err = CB_ERROR_INIT;
		struct cb_st_file *g = NULL;
		CHECK(cb_st_parse_buffer("x", buf, len, &g, &err) == CB_EFORMAT);
		CHECK(strstr(err.msg, "HTML") == NULL);
	}
	free(buf);

	/* test_invalid_header_non_utf8 and test_invalid_header_not_json. */
	parse_refused("test_invalid_header_non_utf8", (const uint8_t *)"\x01\0\0\0\0\0\0\0\xff", 9,
		      CB_EFORMAT, "invalid UTF-8 in header", "byte 8");
	parse_refused("test_invalid_header_not_json", (const uint8_t *)"\x01\0\0\0\0\0\0\0{", 9,
		      CB_EFORMAT, "invalid JSON in header", NULL);

	/* test_invalid_info: the size rule is reported before the missing
	 * bytes ("invalid tensor info", not "incomplete metadata"). */
	refused_json("test_invalid_info",
		     "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0, 4]}}", 0,
		     CB_EFORMAT, "invalid tensor info", "tensor \"test\"");

	/* test_validation_overflow. [2, 2^63-1] overflows the bit count; our
	 * JSON layer refuses [2, 2^64-2] earlier as an out-of-range integer
	 * (documented departure); both are malformed files. */
	const char *over78 = "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,9223372036854775807],"
			     "\"data_offsets\":[0,16]}}";
	const char *over79 = "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,18446744073709551614],"
			     "\"data_offsets\":[0,16]}}";
	CHECK_EQ_U64(strlen(over78), 78);
	CHECK_EQ_U64(strlen(over79), 79);
	refused_json("test_validation_overflow N=78", over78, 0, CB_EFORMAT, "validation overflow",
		     "tensor \"test\"");
	refused_json("test_validation_overflow N=79", over79, 0, CB_EFORMAT, "integer out of range",
		     NULL);
	/* The element count alone overflowing 64 bits. */
	refused_json("element count overflow",
		     "{\"t\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],"
		     "\"data_offsets\":[0,16]}}",
		     16, CB_EFORMAT, "validation overflow", "tensor \"t\"");

	/* test_metadata_incomplete_buffer: trailing and missing bytes. */
	const char *good = "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
	const char *polyglot = "extra_bogus_data_for_polyglot_file";
	uint8_t data_plus[16 + 34] = {0};
	memcpy(data_plus + 16, polyglot, strlen(polyglot));
	buf = raw_file(strlen(good), good, strlen(good), data_plus, 16 + strlen(polyglot), &len);
	parse_refused("test_metadata_incomplete_buffer (trailing)", buf, len, CB_EFORMAT,
		      "trailing bytes after the last tensor", NULL);
	CHECK(memcmp(buf + len - 34, polyglot, 34) == 0);
	free(buf);
	buf = json_file(good, 14, &len);
	parse_refused("test_metadata_incomplete_buffer (missing 2)", buf, len, CB_EFORMAT,
		      "the file is cut short", NULL);
	free(buf);

	/* test_json_attack: ten tensors all claiming [0,16]. */
	char attack[1024];
	size_t used = (size_t)snprintf(attack, sizeof attack, "{");
	for (int i = 0; i < 10; i++)
		used += (size_t)snprintf(attack + used, sizeof attack - used,
					 "%s\"weight_%d\":{\"dtype\":\"F32\",\"shape\":[2,2],"
					 "\"data_offsets\":[0,16]}",
					 i ? "," : "", i);
	snprintf(attack + used, sizeof attack - used, "}");
	refused_json("test_json_attack", attack, 16, CB_EFORMAT, "overlaps the tensor before it",
		     NULL);
}

/* ------------------------------------------------------ one rule per case */

static void test_header_length_rules(void)
{
	/* "header too large" with a hint at what the file really is. */
	static const struct {
		const char *first8;
		const char *hint;
	} others[] = {
		{"PK\x03\x04\x14\0\0\0", "zip archive"},
		{"\x80\x02\x8a\x0al\xfc\x9c\x46", "Python pickle"},
		{"version ", "Git LFS pointer"},
		{"<!DOCTYP", "HTML"},
		{"hello wo", "text"},
	};
	for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
		uint8_t buf[64];
		memset(buf, 'x', sizeof buf);
		memcpy(buf, others[i].first8, 8);
		char what[64];
		snprintf(what, sizeof what, "not safetensors: %s", others[i].hint);
		parse_refused(what, buf, sizeof buf, CB_EFORMAT, "header too large", "byte 0");
		parse_refused(what, buf, sizeof buf, CB_EFORMAT, others[i].hint, "byte 0");
	}
	/* 100,000,000 exactly is allowed by the size rule (the file is then
	 * too short); one more is too large. */
	uint8_t buf[16] = {0};
	put_le64(buf, 100000000);
	parse_refused("N = 100,000,000", buf, sizeof buf, CB_EFORMAT, "invalid header length",
		      "byte 0");
	put_le64(buf, 100000001);
	parse_refused("N = 100,000,001", buf, sizeof buf, CB_EFORMAT, "header too large", "byte 0");
	/* The header runs past the end of the file (syoyo's abuse attempt 1). */
	uint8_t abuse[88];
	memset(abuse, ' ', sizeof abuse);
	put_le64(abuse, 1000);
	abuse[8] = '{';
	parse_refused("N=1000 in 88 bytes", abuse, sizeof abuse, CB_EFORMAT,
		      "invalid header length", "byte 0");
	/* N one byte past the end; N = size - 8 exactly is fine. */
	size_t len;
	uint8_t *f = raw_file(3, "{} ", 3, NULL, 0, &len);
	cb_st_free(parse_ok("header to the last byte", f, len));
	put_le64(f, 4);
	parse_refused("header one byte past the end", f, len, CB_EFORMAT, "invalid header length",
		      "byte 0");
	free(f);
	/* N = 0: an empty header is not JSON. */
	f = raw_file(0, "", 0, NULL, 0, &len);
	parse_refused("N=0", f, len, CB_EFORMAT, "invalid JSON in header", NULL);
	free(f);
}

static void test_utf8_rules(void)
{
	/* The bad sequence sits in a tensor name: 8 (length) + 2 (`{"`) + 1. */
	static const struct {
		const char *what;
		const char *seq;
		size_t seq_len;
	} bad[] = {
		{"overlong 2-byte", "\xc0\xaf", 2},         {"overlong 3-byte", "\xe0\x80\xaf", 3},
		{"overlong 4-byte", "\xf0\x80\x80\xaf", 4}, {"surrogate U+D800", "\xed\xa0\x80", 3},
		{"above U+10FFFF", "\xf4\x90\x80\x80", 4},  {"F5 lead byte", "\xf5\x80\x80\x80", 4},
		{"truncated sequence", "\xe2\x82", 2},      {"lone continuation", "\x80", 1},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char json[128];
		size_t n = 0;
		memcpy(json, "{\"a", 3);
		n = 3;
		memcpy(json + n, bad[i].seq, bad[i].seq_len);
		n += bad[i].seq_len;
		const char *rest = "\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
		memcpy(json + n, rest, strlen(rest));
		n += strlen(rest);
		size_t len;
		uint8_t *buf = raw_file(n, json, n, NULL, 1, &len);
		parse_refused(bad[i].what, buf, len, CB_EFORMAT, "invalid UTF-8 in header",
			      "byte 11");
		free(buf);
	}
	/* A sequence cut by the end of the header itself. */
	size_t len;
	uint8_t *buf = raw_file(4, "{}\xe2\x82", 4, NULL, 0, &len);
	parse_refused("truncated at the end of the header", buf, len, CB_EFORMAT,
		      "invalid UTF-8 in header", "byte 10");
	free(buf);
}

static void test_json_rules(void)
{
	refused_json("not JSON", "{\"a\":}", 0, CB_EFORMAT, "invalid JSON in header", NULL);
	size_t len;
	uint8_t *buf = raw_file(8, "{}\0\0\0\0\0\0", 8, NULL, 0, &len);
	parse_refused("NUL padding", buf, len, CB_EFORMAT,
		      "invalid JSON in header: a NUL byte (headers are padded with spaces",
		      "byte 10");
	free(buf);
	refused_json("UTF-8 BOM", "\xef\xbb\xbf{}", 0, CB_EFORMAT, "invalid JSON in header", NULL);
	refused_json("top level array", "[]", 0, CB_EFORMAT, "the top level must be an object",
		     NULL);
	refused_json("top level string", "\"x\"", 0, CB_EFORMAT, "invalid JSON in header", NULL);
	refused_json("form feed padding", "{}\f", 0, CB_EFORMAT, "invalid JSON in header", NULL);

	refused_json("__metadata__ null", "{\"__metadata__\":null}", 0, CB_EFORMAT,
		     "__metadata__ must be an object of strings, not null", "key \"__metadata__\"");
	refused_json("__metadata__ array", "{\"__metadata__\":[]}", 0, CB_EFORMAT,
		     "__metadata__ must be an object of strings", "key \"__metadata__\"");
	refused_json("__metadata__ string", "{\"__metadata__\":\"pt\"}", 0, CB_EFORMAT,
		     "__metadata__ must be an object of strings", "key \"__metadata__\"");
	refused_json("__metadata__ int value", "{\"__metadata__\":{\"version\":2}}", 0, CB_EFORMAT,
		     "__metadata__ value of \"version\" is not a string", "key \"__metadata__\"");
	refused_json("__metadata__ null value", "{\"__metadata__\":{\"a\":null}}", 0, CB_EFORMAT,
		     "is not a string", "key \"__metadata__\"");

	const char *entry = "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}";
	char json[512];
	snprintf(json, sizeof json, "{\"a\":%s,\"a\":%s}", entry, entry);
	refused_json("duplicate tensor key", json, 1, CB_EFORMAT, "duplicate key in header", NULL);
	refused_json("duplicate __metadata__",
		     "{\"__metadata__\":{},\"__metadata__\":{\"a\":\"b\"}}", 0, CB_EFORMAT,
		     "duplicate key in header", NULL);
	refused_json("duplicate field in an entry",
		     "{\"a\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],"
		     "\"data_offsets\":[0,1]}}",
		     1, CB_EFORMAT, "duplicate key in header", NULL);
	snprintf(json, sizeof json, "{\"a\\u0000b\":%s}", entry);
	refused_json("NUL in a name", json, 1, CB_EFORMAT, "NUL (\\u0000) in a string is refused",
		     NULL);
	refused_json("lone surrogate escape",
		     "{\"\\ud800\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
		     CB_EFORMAT, "invalid JSON in header", NULL);
}

static void test_entry_rules(void)
{
	static const struct {
		const char *what, *json, *needle;
	} cases[] = {
		{"entry not an object", "{\"t\":[\"U8\",[1],[0,1]]}",
		 "a tensor entry must be an object"},
		{"missing dtype", "{\"t\":{\"shape\":[1],\"data_offsets\":[0,1]}}",
		 "missing field \"dtype\""},
		{"missing shape", "{\"t\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}",
		 "missing field \"shape\""},
		{"missing data_offsets", "{\"t\":{\"dtype\":\"U8\",\"shape\":[1]}}",
		 "missing field \"data_offsets\""},
		{"dtype not a string", "{\"t\":{\"dtype\":8,\"shape\":[1],\"data_offsets\":[0,1]}}",
		 "\"dtype\" must be a string"},
		{"dtype null", "{\"t\":{\"dtype\":null,\"shape\":[1],\"data_offsets\":[0,1]}}",
		 "\"dtype\" must be a string"},
		{"unknown dtype",
		 "{\"t\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,1]}}",
		 "unknown dtype \"F128\""},
		{"lower-case dtype",
		 "{\"t\":{\"dtype\":\"u8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
		 "unknown dtype \"u8\""},
		{"shape not an array",
		 "{\"t\":{\"dtype\":\"U8\",\"shape\":1,\"data_offsets\":[0,1]}}",
		 "\"shape\" must be an array of non-negative integers"},
		{"negative dim", "{\"t\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}",
		 "\"shape\" must be an array of non-negative integers"},
		{"float dim 1.0",
		 "{\"t\":{\"dtype\":\"U8\",\"shape\":[1.0],\"data_offsets\":[0,1]}}",
		 "\"shape\" must be an array of non-negative integers"},
		{"exponent dim 1e0",
		 "{\"t\":{\"dtype\":\"U8\",\"shape\":[1e0],\"data_offsets\":[0,1]}}",
		 "\"shape\" must be an array of non-negative integers"},
		{"string dim",
		 "{\"t\":{\"dtype\":\"U8\",\"shape\":[\"1\"],\"data_offsets\":[0,1]}}",
		 "\"shape\" must be an array of non-negative integers"},
		{"data_offsets of 1",
		 "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1]}}",
		 "\"data_offsets\" must be an array of two non-negative integers"},
		{"data_offsets of 3",
		 "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,1]}}",
		 "\"data_offsets\" must be an array of two non-negative integers"},
		{"negative offset",
		 "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}",
		 "\"data_offsets\" must be an array of two non-negative integers"},
		{"float offset",
		 "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1.0]}}",
		 "\"data_offsets\" must be an array of two non-negative integers"},
		{"data_offsets object",
		 "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":{\"0\":1}}}",
		 "\"data_offsets\" must be an array of two non-negative integers"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		refused_json(cases[i].what, cases[i].json, 1, CB_EFORMAT, cases[i].needle,
			     "tensor \"t\"");
}

static void test_tiling_rules(void)
{
	refused_json("end before begin",
		     "{\"t\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 0,
		     CB_EFORMAT, "end before they begin", "tensor \"t\"");
	refused_json("hole",
		     "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
		     "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[6,10]}}",
		     10, CB_EFORMAT, "a hole in the data buffer", "tensor \"b\"");
	refused_json("overlap",
		     "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
		     "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}",
		     6, CB_EFORMAT, "overlaps the tensor before it", "tensor \"b\"");
	refused_json("first not at 0",
		     "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}", 6,
		     CB_EFORMAT, "the first tensor must begin at 0", "tensor \"a\"");
	refused_json("zero-size inside another",
		     "{\"a\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]},"
		     "\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[5,5]}}",
		     16, CB_EFORMAT, "overlaps the tensor before it", "tensor \"z\"");
	accepted_json("zero-size at the seam",
		      "{\"a\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]},"
		      "\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[16,16]}}",
		      16);
	refused_json("trailing bytes",
		     "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 5,
		     CB_EFORMAT, "incomplete metadata", NULL);
	refused_json("missing bytes",
		     "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 3,
		     CB_EFORMAT, "the file is cut short", NULL);
	refused_json("no tensors but data", "{}", 1, CB_EFORMAT, "trailing bytes", NULL);
	refused_json("size mismatch",
		     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
		     CB_EFORMAT, "invalid tensor info: F32 of shape [2] needs 8 bytes",
		     "tensor \"a\"");

	/* Sub-byte types: the whole tensor must be whole bytes, rows need not. */
	refused_json("F4 [3]", "{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2,
		     CB_EFORMAT, "misaligned slice", "tensor \"a\"");
	refused_json("F4 []", "{\"a\":{\"dtype\":\"F4\",\"shape\":[],\"data_offsets\":[0,1]}}", 1,
		     CB_EFORMAT, "misaligned slice", "tensor \"a\"");
	struct cb_st_file *f = ok_json(
		"F4 [2,3]", "{\"a\":{\"dtype\":\"F4\",\"shape\":[2,3],\"data_offsets\":[0,3]}}", 3);
	CHECK(f && f->n_tensors == 1 && f->tensors[0].numel == 6);
	cb_st_free(f);
	accepted_json("F6_E2M3 [4]",
		      "{\"a\":{\"dtype\":\"F6_E2M3\",\"shape\":[4],\"data_offsets\":[0,3]}}", 3);
	accepted_json("F6_E3M2 [2,4]",
		      "{\"a\":{\"dtype\":\"F6_E3M2\",\"shape\":[2,4],\"data_offsets\":[0,6]}}", 6);
	refused_json("F6_E3M2 [3]",
		     "{\"a\":{\"dtype\":\"F6_E3M2\",\"shape\":[3],\"data_offsets\":[0,3]}}", 3,
		     CB_EFORMAT, "misaligned slice", "tensor \"a\"");
	refused_json("F6_E2M3 []",
		     "{\"a\":{\"dtype\":\"F6_E2M3\",\"shape\":[],\"data_offsets\":[0,1]}}", 1,
		     CB_EFORMAT, "misaligned slice", "tensor \"a\"");
	refused_json("F6_E2M3 [4] wrong size",
		     "{\"a\":{\"dtype\":\"F6_E2M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4,
		     CB_EFORMAT, "invalid tensor info", "tensor \"a\"");
	/* Precedence within one tensor: offsets before alignment. */
	refused_json("offset before alignment",
		     "{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[1,3]}}", 3,
		     CB_EFORMAT, "invalid offset", "tensor \"a\"");
}

static void test_limits(void)
{
	/* Depth: the root and the entry are 2 levels; 62 nested arrays in an
	 * unknown field make 64 (accepted), 63 make 65 (refused where the
	 * 65th level opens). */
	for (int nest = 62; nest <= 63; nest++) {
		char json[512];
		const char *head =
			"{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":";
		size_t n = (size_t)snprintf(json, sizeof json, "%s", head);
		size_t first_bracket = n;
		for (int i = 0; i < nest; i++)
			json[n++] = '[';
		for (int i = 0; i < nest; i++)
			json[n++] = ']';
		snprintf(json + n, sizeof json - n, "}}");
		if (nest == 62) {
			accepted_json("depth 64", json, 1);
			continue;
		}
		char where[32];
		snprintf(where, sizeof where, "byte %zu", 8 + first_bracket + 62);
		refused_json("depth 65", json, 1, CB_ELIMIT, "JSON nesting deeper than 64 levels",
			     where);
	}
	/* Brackets inside strings are not nesting. */
	char deep_name[256];
	memset(deep_name, 0, sizeof deep_name);
	snprintf(deep_name, sizeof deep_name, "{\"");
	memset(deep_name + 2, '[', 100);
	snprintf(deep_name + 102, sizeof deep_name - 102,
		 "\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}");
	accepted_json("brackets in a name", deep_name, 1);

	/* Rank: 64 accepted, 65 refused. */
	for (int rank = CB_ST_MAX_RANK; rank <= CB_ST_MAX_RANK + 1; rank++) {
		char json[1024];
		size_t n =
			(size_t)snprintf(json, sizeof json, "{\"t\":{\"dtype\":\"U8\",\"shape\":[");
		for (int d = 0; d < rank; d++)
			n += (size_t)snprintf(json + n, sizeof json - n, "%s1", d ? "," : "");
		snprintf(json + n, sizeof json - n, "],\"data_offsets\":[0,1]}}");
		if (rank == CB_ST_MAX_RANK)
			accepted_json("rank 64", json, 1);
		else
			refused_json("rank 65", json, 1, CB_ELIMIT,
				     "rank 65 is above the limit of 64", "tensor \"t\"");
	}

	/* Names: CB_ST_MAX_NAME bytes accepted, one more refused. */
	for (size_t name_len = CB_ST_MAX_NAME; name_len <= CB_ST_MAX_NAME + 1; name_len++) {
		const char *rest = "\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
		char *json = malloc(name_len + 128);
		if (!json)
			abort();
		json[0] = '{';
		json[1] = '"';
		memset(json + 2, 'n', name_len);
		strcpy(json + 2 + name_len, rest);
		if (name_len == CB_ST_MAX_NAME)
			accepted_json("name of CB_ST_MAX_NAME bytes", json, 1);
		else
			refused_json("name over CB_ST_MAX_NAME", json, 1, CB_ELIMIT,
				     "a tensor name of 65537 bytes is above the limit", NULL);
		free(json);
	}
}

/* ------------------------------------------------------ accepted oddities */

static void test_oddities(void)
{
	struct cb_st_file *f = ok_json(
		"unknown fields",
		"{\"t\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2],\"quant\":{\"a\":[1,"
		"2.5,null,true]},\"note\":\"x\"}}",
		2);
	CHECK(f && f->n_tensors == 1 && f->tensors[0].end == 2);
	cb_st_free(f);

	/* Escapes, a tab, CJK (raw and escaped) and the empty name, listed in
	 * reverse of their data order. */
	const char *json =
		"{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[4,5]},"
		"\"\\u6743\\u91cd\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[3,4]},"
		"\"\xe6\x9d\x83\xe9\x87\x8d.bias\":{\"dtype\":\"U8\",\"shape\":[1],\"data_"
		"offsets\":[2,3]},"
		"\"tab\\there\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]},"
		"\"q\\\"b\\\\s\\/n\\n\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
		"\"__metadata__\":{\"k\\u00e9y\":\"v\\nal\"}}";
	f = ok_json("odd names", json, 5);
	static const char *const by_offset[] = {"q\"b\\s/n\n", "tab\there",
						"\xe6\x9d\x83\xe9\x87\x8d.bias",
						"\xe6\x9d\x83\xe9\x87\x8d", ""};
	CHECK(f && f->n_tensors == 5);
	for (size_t i = 0; f && i < f->n_tensors && i < 5; i++) {
		CHECK_STR_EQ(f->tensors[i].name, by_offset[i]);
		CHECK_EQ_U64(f->tensors[i].begin, i);
		const struct cb_st_tensor *t = cb_st_find(f, by_offset[i]);
		CHECK(t == &f->tensors[i]);
	}
	if (f) {
		CHECK(f->has_metadata && f->n_meta == 1);
		if (f->n_meta == 1) {
			CHECK_STR_EQ(f->meta[0].key, "k\xc3\xa9y");
			CHECK_STR_EQ(f->meta[0].value, "v\nal");
		}
		CHECK(cb_st_find(f, "tab") == NULL);
	}
	cb_st_free(f);

	/* Many entries in scrambled JSON order come back sorted by offset. */
	char big[8192];
	/* Sizes 0, 2, 4 bytes in turn: zero-size tensors in the mix. */
	int begin[50], size[50];
	int cursor = 0;
	for (int i = 0; i < 50; i++) {
		size[i] = 2 * (i % 3);
		begin[i] = cursor;
		cursor += size[i];
	}
	size_t n = (size_t)snprintf(big, sizeof big, "{");
	for (int k = 0; k < 50; k++) {
		int i = (k * 17) % 50; /* 17 is prime to 50: a permutation */
		n += (size_t)snprintf(big + n, sizeof big - n,
				      "%s\"z%02d\":{\"dtype\":\"I16\",\"shape\":[%d],"
				      "\"data_offsets\":[%d,%d]}",
				      k ? "," : "", 49 - i, i % 3, begin[i], begin[i] + size[i]);
	}
	snprintf(big + n, sizeof big - n, "}");
	f = ok_json("scrambled order", big, (size_t)cursor);
	CHECK(f && f->n_tensors == 50);
	for (size_t i = 0; f && i < f->n_tensors; i++) {
		char name[8];
		snprintf(name, sizeof name, "z%02zu", 49 - i);
		CHECK_STR_EQ(f->tensors[i].name, name);
		CHECK_EQ_U64(f->tensors[i].begin, begin[i]);
		if (i > 0)
			CHECK(f->tensors[i - 1].begin <= f->tensors[i].begin &&
			      f->tensors[i - 1].end <= f->tensors[i].end);
	}
	cb_st_free(f);
}

/* cb_st_find over 10,000 tensors, every name found, absent ones not. */
static void test_find(void)
{
	enum { N = 10000 };
	struct cb_st_spec *specs = calloc(N, sizeof *specs);
	char(*names)[32] = calloc(N, sizeof *names);
	uint64_t *shapes = calloc(N, sizeof *shapes);
	const void **data = calloc(N, sizeof *data);
	static const uint8_t bytes[8] = {0};
	if (!specs || !names || !shapes || !data)
		abort();
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof names[i], "layers.%d.w%d", i / 7, i % 7);
		shapes[i] = 1 + (uint64_t)(i % 5);
		specs[i] = (struct cb_st_spec){names[i], i % 2 ? CB_DTYPE_U8 : CB_DTYPE_I8, 1,
					       &shapes[i]};
		data[i] = bytes;
	}
	size_t len;
	uint8_t *buf = write_ok("10,000 tensors", specs, data, N, NULL, 0, &len);
	struct cb_st_file *f = buf ? parse_ok("10,000 tensors", buf, len) : NULL;
	CHECK(f && f->n_tensors == N);
	int found = 0, right = 0;
	for (int i = 0; f && i < N; i++) {
		const struct cb_st_tensor *t = cb_st_find(f, names[i]);
		found += t != NULL;
		right += t && strcmp(t->name, names[i]) == 0 && t->dtype == specs[i].dtype &&
			 t->rank == 1 && t->shape[0] == shapes[i];
	}
	CHECK_EQ_U64(found, N);
	CHECK_EQ_U64(right, N);
	if (f) {
		static const char *const absent[] = {
			"layers.1428.w5", "layers.0.w",   "",           "layers",
			"__metadata__",   "layers.0.w00", "Layers.0.w0"};
		for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
			CHECK(cb_st_find(f, absent[i]) == NULL);
		CHECK(cb_st_find(f, "layers.1428.w3") != NULL); /* the last one */
	}
	cb_st_free(f);
	free(buf);
	free(specs);
	free(names);
	free(shapes);
	free(data);
}

/* ------------------------------------------------------------- writer */

static void writer_refused(const char *what, const struct cb_st_spec *specs, size_t n,
			   const struct cb_kv *meta, size_t n_meta, int code, const char *needle)
{
	struct cb_st_layout layout;
	struct cb_error err = CB_ERROR_INIT;
	int before = check_failures;
	int rc = cb_st_layout_build(specs, n, meta, n_meta, &layout, &err);
	CHECK(rc == code);
	CHECK(err.code == code);
	CHECK_CONTAINS(err.msg, needle);
	if (check_failures != before) {
		fprintf(stderr, "  in writer case \"%s\"\n", what);
		print_error(&err);
	}
	if (rc == CB_OK)
		cb_st_layout_free(&layout);
}

static void test_writer_rules(void)
{
	static const uint64_t four[] = {4};
	struct cb_st_spec reserved = {"__metadata__", CB_DTYPE_U8, 1, four};
	writer_refused("__metadata__ as a name", &reserved, 1, NULL, 0, CB_EUSAGE,
		       "reserved for the metadata");
	struct cb_st_spec dup[3] = {{"a", CB_DTYPE_U8, 1, four},
				    {"b", CB_DTYPE_U8, 1, four},
				    {"a", CB_DTYPE_F32, 1, four}};
	writer_refused("duplicate names", dup, 3, NULL, 0, CB_EUSAGE, "duplicate tensor name");
	struct cb_st_spec fp4 = {"attn.0", CB_DTYPE_F4, 2, shape_1_3};
	writer_refused("F4 [1,3]", &fp4, 1, NULL, 0, CB_EUSAGE, "misaligned slice");
	struct cb_st_spec bad_name = {"w\xff", CB_DTYPE_U8, 1, four};
	writer_refused("invalid UTF-8 name", &bad_name, 1, NULL, 0, CB_EUSAGE, "not valid UTF-8");
	struct cb_st_spec bad_dtype = {"w", (enum cb_dtype)CB_DTYPE_COUNT, 1, four};
	writer_refused("invalid dtype", &bad_dtype, 1, NULL, 0, CB_EUSAGE, "invalid dtype");
	static const uint64_t huge[] = {UINT64_MAX / 2, 4};
	struct cb_st_spec overflow = {"w", CB_DTYPE_U8, 2, huge};
	writer_refused("element count overflow", &overflow, 1, NULL, 0, CB_EUSAGE,
		       "validation overflow");
	const struct cb_kv dup_meta[2] = {{"k", "1"}, {"k", "2"}};
	writer_refused("duplicate metadata key", NULL, 0, dup_meta, 2, CB_EUSAGE,
		       "duplicate metadata key");

	/* test_invalid_header_size_serialization: a 100,000,000-byte value. */
	char *value = malloc(100000001);
	if (!value)
		abort();
	memset(value, 'a', 100000000);
	value[100000000] = '\0';
	const struct cb_kv big = {"x", value};
	writer_refused("header over 100,000,000 bytes", NULL, 0, &big, 1, CB_ELIMIT,
		       "header too large");
	free(value);

	/* Order: dtype descending in enum order, then names byte-wise. */
	struct cb_st_spec mix[7] = {
		{"b", CB_DTYPE_F16, 1, four},         {"a", CB_DTYPE_F16, 1, four},
		{"z", CB_DTYPE_BOOL, 1, four},        {"c", CB_DTYPE_F32, 1, four},
		{"A", CB_DTYPE_F16, 1, four},         {"\xc3\xa9", CB_DTYPE_F16, 1, four},
		{"m", CB_DTYPE_F8_E4M3FNUZ, 1, four},
	};
	static const char *const expected[] = {"c", "A", "a", "b", "\xc3\xa9", "m", "z"};
	struct cb_st_layout layout;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_st_layout_build(mix, 7, NULL, 0, &layout, &err) == CB_OK);
	if (err.code == CB_OK) {
		uint64_t cursor = layout.header_size;
		for (size_t k = 0; k < 7; k++) {
			size_t i = layout.order[k];
			CHECK_STR_EQ(mix[i].name, expected[k]);
			CHECK_EQ_U64(layout.offset[i], cursor); /* packed, no gaps */
			cursor += layout.nbytes[i];
		}
		CHECK_EQ_U64(layout.file_size, cursor);
		cb_st_layout_free(&layout);
	}

	/* The header is spaces-padded to a multiple of 8 whatever its length,
	 * with fewer than 8 spaces, and the JSON itself ends with '}'. */
	for (size_t name_len = 1; name_len <= 24; name_len++) {
		char name[32];
		memset(name, 'w', name_len);
		name[name_len] = '\0';
		struct cb_st_spec one = {name, CB_DTYPE_U8, 1, four};
		struct cb_error e = CB_ERROR_INIT;
		if (cb_st_layout_build(&one, 1, NULL, 0, &layout, &e) != CB_OK) {
			CHECK(false);
			continue;
		}
		CHECK(layout.header_size % 8 == 0);
		size_t end = layout.header_size;
		size_t spaces = 0;
		while (end > 8 && layout.header[end - 1] == ' ') {
			end--;
			spaces++;
		}
		CHECK(spaces < 8 && layout.header[end - 1] == '}');
		uint64_t n = 0;
		for (int b = 7; b >= 0; b--)
			n = (n << 8) | layout.header[b];
		CHECK_EQ_U64(n, layout.header_size - 8);
		cb_st_layout_free(&layout);
	}
}

/* Every dtype written to a real file, read back with cb_st_open. */
static void test_all_dtypes_roundtrip(const char *dir)
{
	static const uint64_t eight[] = {8};
	struct cb_st_spec specs[CB_DTYPE_COUNT];
	char names[CB_DTYPE_COUNT][32];
	uint8_t bytes[CB_DTYPE_COUNT][64];
	const void *data[CB_DTYPE_COUNT];
	/* Listed in ascending enum order: the writer must reverse it. */
	for (int d = 0; d < CB_DTYPE_COUNT; d++) {
		snprintf(names[d], sizeof names[d], "t.%s", cb_dtype_name((enum cb_dtype)d));
		specs[d] = (struct cb_st_spec){names[d], (enum cb_dtype)d, 1, eight};
		for (int k = 0; k < 64; k++)
			bytes[d][k] = (uint8_t)(d * 31 + k * 7 + 1);
		data[d] = bytes[d];
	}
	char *path = NULL;
	if (asprintf(&path, "%s/all_dtypes.safetensors", dir) < 0)
		abort();
	struct cb_error err = CB_ERROR_INIT;
	const struct cb_kv meta = {"format", "pt"};
	int rc = cb_st_write_file(path, specs, data, CB_DTYPE_COUNT, &meta, 1, true, &err);
	CHECK(rc == CB_OK);
	if (rc != CB_OK)
		print_error(&err);
	char listing[1024];
	testfs_listing(dir, listing, sizeof listing);
	CHECK_STR_EQ(listing, "all_dtypes.safetensors"); /* no temporary file left */

	struct cb_st_file *f = NULL;
	rc = cb_st_open(path, &f, &err);
	CHECK(rc == CB_OK);
	if (rc != CB_OK)
		print_error(&err);
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK(f && f->n_tensors == CB_DTYPE_COUNT && f->data_start % 8 == 0);
	for (size_t i = 0; f && fd >= 0 && i < f->n_tensors; i++) {
		const struct cb_st_tensor *t = &f->tensors[i];
		/* By offset = write order: strictly descending enum order. */
		enum cb_dtype d = (enum cb_dtype)(CB_DTYPE_COUNT - 1 - (int)i);
		CHECK(t->dtype == d);
		CHECK_STR_EQ(t->name, names[d]);
		uint64_t want_bytes = 8 * cb_dtype_bits(d) / 8;
		CHECK_EQ_U64(t->end - t->begin, want_bytes);
		CHECK(t->rank == 1 && t->shape[0] == 8 && t->numel == 8);
		/* Each tensor starts aligned to its element size. */
		uint64_t esize = cb_dtype_bits(d) >= 8 ? cb_dtype_bits(d) / 8 : 1;
		CHECK((f->data_start + t->begin) % esize == 0);
		uint8_t got[64];
		CHECK(pread(fd, got, (size_t)want_bytes, (off_t)(f->data_start + t->begin)) ==
		      (ssize_t)want_bytes);
		CHECK(memcmp(got, bytes[d], (size_t)want_bytes) == 0);
		CHECK(cb_st_find(f, names[d]) == t);
	}
	if (f) {
		CHECK(f->n_meta == 1 && strcmp(f->meta[0].value, "pt") == 0);
		/* 8 elements: 4 bytes of F4, 6 of each F6, the rest whole types. */
		CHECK(cb_st_find(f, "t.F4") &&
		      cb_st_find(f, "t.F4")->end - cb_st_find(f, "t.F4")->begin == 4);
		CHECK(cb_st_find(f, "t.F6_E3M2") &&
		      cb_st_find(f, "t.F6_E3M2")->end - cb_st_find(f, "t.F6_E3M2")->begin == 6);
	}
	if (fd >= 0)
		close(fd);
	cb_st_free(f);
	unlink(path);
	free(path);
}

/* cb_st_write_file leaves nothing behind when it fails: before writing
 * (a refused layout), and after (the rename onto a directory fails). */
static void test_write_file_failures(const char *dir)
{
	static const uint64_t four[] = {4};
	static const uint8_t bytes[4] = {1, 2, 3, 4};
	const void *data[1] = {bytes};
	char *path = NULL, *blocker = NULL;
	if (asprintf(&path, "%s/refused.safetensors", dir) < 0 ||
	    asprintf(&blocker, "%s/is_a_dir.safetensors", dir) < 0)
		abort();
	struct cb_st_spec reserved = {"__metadata__", CB_DTYPE_U8, 1, four};
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_st_write_file(path, &reserved, data, 1, NULL, 0, false, &err) == CB_EUSAGE);
	CHECK_STR_EQ(err.path, path);
	char listing[1024];
	testfs_listing(dir, listing, sizeof listing);
	CHECK_STR_EQ(listing, "");

	CHECK(mkdir(blocker, 0755) == 0);
	struct cb_st_spec ok = {"w", CB_DTYPE_U8, 1, four};
	cb_error_clear(&err);
	CHECK(cb_st_write_file(blocker, &ok, data, 1, NULL, 0, false, &err) != CB_OK);
	CHECK_EQ_U64(cb_error_exit_status(err.code), 3);
	testfs_listing(dir, listing, sizeof listing);
	CHECK_STR_EQ(listing, "is_a_dir.safetensors");
	rmdir(blocker);

	/* Success over an existing file replaces it, still with no leftovers. */
	cb_error_clear(&err);
	CHECK(cb_st_write_file(path, &ok, data, 1, NULL, 0, false, &err) == CB_OK);
	CHECK(cb_st_write_file(path, &ok, data, 1, NULL, 0, true, &err) == CB_OK);
	testfs_listing(dir, listing, sizeof listing);
	CHECK_STR_EQ(listing, "refused.safetensors");
	unlink(path);
	free(path);
	free(blocker);
}

int main(void)
{
	test_writer_vectors();
	test_reader_vectors();
	test_header_length_rules();
	test_utf8_rules();
	test_json_rules();
	test_entry_rules();
	test_tiling_rules();
	test_limits();
	test_oddities();
	test_find();
	test_writer_rules();
	char *dir = testfs_mkdtemp("st");
	CHECK(dir != NULL);
	if (dir) {
		test_all_dtypes_roundtrip(dir);
		test_write_file_failures(dir);
		testfs_remove_tree(dir);
		free(dir);
	}
	return check_finish("test_safetensors");
}
