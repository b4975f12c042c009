/* The state-dict pickler: torch's golden bytes, memoization, batching,
 * integer encodings, the torch 2.x dtypes, and what it refuses. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pickle_write.h"

/* torch 1.13: torch.save(nn.Linear(3, 1, bias=False).state_dict(), f),
 * data.pkl (reference notes, section 2.2). */
static const uint8_t golden_linear[229] = {
	0x80, 0x02, 0x63, 0x63, 0x6f, 0x6c, 0x6c, 0x65, 0x63, 0x74, 0x69, 0x6f, 0x6e, 0x73, 0x0a,
	0x4f, 0x72, 0x64, 0x65, 0x72, 0x65, 0x64, 0x44, 0x69, 0x63, 0x74, 0x0a, 0x71, 0x00, 0x29,
	0x52, 0x71, 0x01, 0x58, 0x06, 0x00, 0x00, 0x00, 0x77, 0x65, 0x69, 0x67, 0x68, 0x74, 0x71,
	0x02, 0x63, 0x74, 0x6f, 0x72, 0x63, 0x68, 0x2e, 0x5f, 0x75, 0x74, 0x69, 0x6c, 0x73, 0x0a,
	0x5f, 0x72, 0x65, 0x62, 0x75, 0x69, 0x6c, 0x64, 0x5f, 0x74, 0x65, 0x6e, 0x73, 0x6f, 0x72,
	0x5f, 0x76, 0x32, 0x0a, 0x71, 0x03, 0x28, 0x28, 0x58, 0x07, 0x00, 0x00, 0x00, 0x73, 0x74,
	0x6f, 0x72, 0x61, 0x67, 0x65, 0x71, 0x04, 0x63, 0x74, 0x6f, 0x72, 0x63, 0x68, 0x0a, 0x46,
	0x6c, 0x6f, 0x61, 0x74, 0x53, 0x74, 0x6f, 0x72, 0x61, 0x67, 0x65, 0x0a, 0x71, 0x05, 0x58,
	0x01, 0x00, 0x00, 0x00, 0x30, 0x71, 0x06, 0x58, 0x03, 0x00, 0x00, 0x00, 0x63, 0x70, 0x75,
	0x71, 0x07, 0x4b, 0x03, 0x74, 0x71, 0x08, 0x51, 0x4b, 0x00, 0x4b, 0x01, 0x4b, 0x03, 0x86,
	0x71, 0x09, 0x4b, 0x03, 0x4b, 0x01, 0x86, 0x71, 0x0a, 0x89, 0x68, 0x00, 0x29, 0x52, 0x71,
	0x0b, 0x74, 0x71, 0x0c, 0x52, 0x71, 0x0d, 0x73, 0x7d, 0x71, 0x0e, 0x58, 0x09, 0x00, 0x00,
	0x00, 0x5f, 0x6d, 0x65, 0x74, 0x61, 0x64, 0x61, 0x74, 0x61, 0x71, 0x0f, 0x68, 0x00, 0x29,
	0x52, 0x71, 0x10, 0x58, 0x00, 0x00, 0x00, 0x00, 0x71, 0x11, 0x7d, 0x71, 0x12, 0x58, 0x07,
	0x00, 0x00, 0x00, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x71, 0x13, 0x4b, 0x01, 0x73,
	0x73, 0x73, 0x62, 0x2e,
};

/* Opcode counts of a pickle, walked with the operand sizes of the opcodes
 * the writer may emit; false when the stream holds anything else or does not
 * end with STOP exactly at its last byte. */
struct op_counts {
	size_t n[256];
	uint32_t max_memo;
};

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool walk(const uint8_t *p, size_t len, struct op_counts *c)
{
	memset(c, 0, sizeof *c);
	size_t i = 0;
	while (i < len) {
		uint8_t o = p[i++];
		c->n[o]++;
		switch (o) {
		case 0x80:
		case 'K':
		case 'h': i += 1; break;
		case 'q':
			if (i < len && p[i] > c->max_memo)
				c->max_memo = p[i];
			i += 1;
			break;
		case 'M': i += 2; break;
		case 'J':
		case 'j': i += 4; break;
		case 'r':
			if (i + 4 <= len && le32(p + i) > c->max_memo)
				c->max_memo = le32(p + i);
			i += 4;
			break;
		case 0x8a:
			if (i >= len)
				return false;
			i += 1 + p[i];
			break;
		case 'X':
			if (i + 4 > len)
				return false;
			i += 4 + le32(p + i);
			break;
		case 'c':
			for (int lines = 0; lines < 2; lines++) {
				while (i < len && p[i] != '\n')
					i++;
				i++;
			}
			break;
		case '.': return i == len;
		case '(':
		case ')':
		case '}':
		case 'R':
		case 'b':
		case 't':
		case 0x85:
		case 0x86:
		case 0x87:
		case 's':
		case 'u':
		case 'Q':
		case 0x89: break;
		default: return false;
		}
	}
	return false;
}

static bool contains(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return true;
	return false;
}

static size_t count_of(const uint8_t *hay, size_t n, const char *needle)
{
	size_t m = strlen(needle), count = 0;
	for (size_t i = 0; i + m <= n; i++)
		count += memcmp(hay + i, needle, m) == 0;
	return count;
}

static void test_golden_linear(void)
{
	static const uint64_t shape[] = {1, 3};
	struct cb_pkl_storage storage = {CB_DTYPE_F32, 3};
	struct cb_pkl_tensor t = {.name = "weight", .storage = 0, .rank = 2, .shape = shape};
	struct cb_pkl_module_version meta = {"", 1};
	uint8_t *out;
	size_t len;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_pkl_write_state_dict(&t, 1, &storage, 1, &meta, 1, &out, &len, &err) == CB_OK);
	CHECK_EQ_U64(len, sizeof golden_linear);
	CHECK(len == sizeof golden_linear && memcmp(out, golden_linear, len) == 0);
	for (size_t i = 0; i < len && i < sizeof golden_linear; i++)
		if (out[i] != golden_linear[i]) {
			fprintf(stderr, "first difference at byte %zu: %02x != %02x\n", i, out[i],
				golden_linear[i]);
			break;
		}
	free(out);
}

/* Tied weights: the second tensor names the same key, through the memo. */
static void test_shared_storage_memo(void)
{
	static const uint64_t shape[] = {4, 2};
	static const uint64_t view_shape[] = {2, 3};
	static const int64_t view_stride[] = {3, 1};
	struct cb_pkl_storage storages[] = {{CB_DTYPE_F32, 8}, {CB_DTYPE_F16, 8}};
	struct cb_pkl_tensor t[] = {
		{.name = "emb.weight", .storage = 0, .rank = 2, .shape = shape},
		{.name = "head.weight", .storage = 0, .rank = 2, .shape = shape},
		{.name = "view",
		 .storage = 0,
		 .storage_offset = 2,
		 .rank = 2,
		 .shape = view_shape,
		 .stride = view_stride},
		{.name = "other", .storage = 1, .rank = 2, .shape = shape},
	};
	uint8_t *out;
	size_t len;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_pkl_write_state_dict(t, 4, storages, 2, NULL, 0, &out, &len, &err) == CB_OK);
	struct op_counts c;
	CHECK(walk(out, len, &c));
	CHECK_EQ_U64(count_of(out, len, "storage"), 1);
	CHECK_EQ_U64(count_of(out, len, "FloatStorage"), 1);
	CHECK_EQ_U64(count_of(out, len, "HalfStorage"), 1);
	CHECK_EQ_U64(count_of(out, len, "_rebuild_tensor_v2"), 1);
	CHECK_EQ_U64(count_of(out, len, "cpu"), 1);
	CHECK(contains(out, len,
		       "X\x01\x00\x00\x00"
		       "0",
		       6));
	CHECK(contains(out, len,
		       "X\x01\x00\x00\x00"
		       "1",
		       6));
	CHECK_EQ_U64(c.n['Q'], 4);
	CHECK_EQ_U64(c.n['u'], 1); /* 4 items: one MARK ... SETITEMS batch */
	CHECK_EQ_U64(c.n['s'], 0);
	CHECK_EQ_U64(c.n['b'], 0); /* no _metadata: no BUILD */
	/* the view: offset 2, size (2, 3), stride (3, 1) */
	CHECK(contains(out, len, "QK\x02K\x02K\x03\x86", 8));
	free(out);
}

/* 1001 items: a batch of 1000 (MARK ... SETITEMS), then one SETITEM; the
 * memo passes 255, so LONG_BINPUT/LONG_BINGET appear. */
static void test_batches_and_long_memo(void)
{
	enum { N = 1001 };
	static const uint64_t shape[] = {1};
	struct cb_pkl_storage *s = calloc(N, sizeof *s);
	struct cb_pkl_tensor *t = calloc(N, sizeof *t);
	char(*names)[16] = calloc(N, sizeof *names);
	for (size_t i = 0; i < N; i++) {
		s[i] = (struct cb_pkl_storage){CB_DTYPE_I64, 1};
		snprintf(names[i], sizeof names[i], "t%zu", i);
		/* the last one shares storage 999, whose key is memoized past 255 */
		t[i] = (struct cb_pkl_tensor){.name = names[i],
					      .storage = (uint32_t)(i < N - 1 ? i : N - 2),
					      .rank = 1,
					      .shape = shape};
	}
	uint8_t *out;
	size_t len;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_pkl_write_state_dict(t, N, s, N - 1, NULL, 0, &out, &len, &err) == CB_OK);
	struct op_counts c;
	CHECK(walk(out, len, &c));
	CHECK_EQ_U64(c.n['u'], 1);
	CHECK_EQ_U64(c.n['s'], 1);
	CHECK(c.n['r'] > 0);
	CHECK(c.n['j'] > 0);
	CHECK_EQ_U64(c.n['Q'], N);
	CHECK(c.max_memo > 1000 * 5);
	CHECK(contains(out, len,
		       "X\x03\x00\x00\x00"
		       "999",
		       8));
	CHECK(!contains(out, len,
			"X\x04\x00\x00\x00"
			"1000",
			9));
	free(out);
	free(s);
	free(t);
	free(names);
}

/* save_long: BININT1, BININT2, BININT, then LONG1 of the shortest width. */
static void test_integers(void)
{
	static const uint64_t shape[] = {300, 70000};
	static const uint64_t big[] = {UINT64_C(1) << 31};
	struct cb_pkl_storage s[] = {{CB_DTYPE_U8, 300 * 70000},
				     {CB_DTYPE_BOOL, UINT64_C(1) << 31}};
	struct cb_pkl_tensor t[] = {
		{.name = "a", .storage = 0, .rank = 2, .shape = shape},
		{.name = "b", .storage = 1, .rank = 1, .shape = big},
	};
	uint8_t *out;
	size_t len;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_pkl_write_state_dict(t, 2, s, 2, NULL, 0, &out, &len, &err) == CB_OK);
	CHECK(contains(out, len, "ctorch\nByteStorage\n", 19));
	CHECK(contains(out, len, "ctorch\nBoolStorage\n", 19));
	/* numel 21,000,000 as BININT; size (300, 70000) as BININT2, BININT */
	CHECK(contains(out, len, "J\x40\x6f\x40\x01t", 6));
	CHECK(contains(out, len, "M\x2c\x01J\x70\x11\x01\x00\x86", 9));
	/* stride (70000, 1) */
	CHECK(contains(out, len, "J\x70\x11\x01\x00K\x01\x86", 8));
	/* 2^31: LONG1 of 5 bytes, in the pid and in the size */
	CHECK_EQ_U64(count_of(out, len, "\x8a\x05\x00\x00\x00\x80\x00"), 2);
	free(out);
}

static void test_scalar_and_empty(void)
{
	static const uint64_t empty_shape[] = {0, 3};
	struct cb_pkl_storage s[] = {{CB_DTYPE_I64, 1}, {CB_DTYPE_F32, 0}};
	struct cb_pkl_tensor t[] = {
		{.name = "num_batches_tracked", .storage = 0, .rank = 0},
		{.name = "empty", .storage = 1, .rank = 2, .shape = empty_shape},
	};
	uint8_t *out;
	size_t len;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_pkl_write_state_dict(t, 2, s, 2, NULL, 0, &out, &len, &err) == CB_OK);
	/* 0-dim: offset 0, size (), stride (), requires_grad False */
	CHECK(contains(out, len, "QK\x00))\x89", 6));
	/* empty: numel 0 storage; size (0, 3), stride (3, 1) */
	CHECK(contains(out, len, "K\x00K\x03\x86", 5));
	CHECK(contains(out, len, "K\x03K\x01\x86", 5));
	free(out);
}

/* float8 and the unsigned types: _rebuild_tensor_v3 over an untyped storage
 * whose numel counts bytes, with the dtype last, as torch >= 2.2 writes. */
static void test_v3_dtypes(void)
{
	static const uint64_t shape[] = {2, 2};
	struct cb_pkl_storage s[] = {{CB_DTYPE_F8_E4M3, 4}, {CB_DTYPE_U32, 4}};
	struct cb_pkl_tensor t[] = {
		{.name = "f8", .storage = 0, .rank = 2, .shape = shape},
		{.name = "u32", .storage = 1, .rank = 2, .shape = shape},
	};
	uint8_t *out;
	size_t len;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_pkl_write_state_dict(t, 2, s, 2, NULL, 0, &out, &len, &err) == CB_OK);
	CHECK_EQ_U64(count_of(out, len, "ctorch._utils\n_rebuild_tensor_v3\n"), 1);
	CHECK_EQ_U64(count_of(out, len, "ctorch.storage\nUntypedStorage\n"), 1);
	CHECK(contains(out, len, "ctorch\nfloat8_e4m3fn\n", 21));
	CHECK(contains(out, len, "ctorch\nuint32\n", 14));
	CHECK(contains(out, len, "K\x10tq", 4)); /* u32: 16 bytes in the pid */
	CHECK_STR_EQ(cb_pkl_v3_dtype(CB_DTYPE_F8_E5M2), "float8_e5m2");
	CHECK_STR_EQ(cb_pkl_storage_class(CB_DTYPE_BF16), "BFloat16Storage");
	CHECK_STR_EQ(cb_pkl_storage_class(CB_DTYPE_C64), "ComplexFloatStorage");
	free(out);
}

static void test_refusals(void)
{
	static const uint64_t shape[] = {4};
	static const int64_t stride[] = {2};
	uint8_t *out = NULL;
	size_t len;
	struct cb_error err = CB_ERROR_INIT;

	struct cb_pkl_storage f4 = {CB_DTYPE_F4, 4};
	struct cb_pkl_tensor t = {.name = "w", .storage = 0, .rank = 1, .shape = shape};
	CHECK(cb_pkl_write_state_dict(&t, 1, &f4, 1, NULL, 0, &out, &len, &err) == CB_EUNSUPPORTED);
	CHECK_CONTAINS(err.msg, "F4");
	CHECK(out == NULL);
	cb_error_clear(&err);
	CHECK(cb_pkl_check_dtype(CB_DTYPE_F6_E2M3, "x", "f.pt", &err) == CB_EUNSUPPORTED);
	CHECK_CONTAINS(err.msg, "F6_E2M3");
	CHECK_CONTAINS(err.where, "tensor \"x\"");
	cb_error_clear(&err);

	/* 4 elements with stride 2 reach element 6 of a 4-element storage */
	struct cb_pkl_storage small = {CB_DTYPE_F32, 4};
	struct cb_pkl_tensor view = {
		.name = "v", .storage = 0, .rank = 1, .shape = shape, .stride = stride};
	CHECK(cb_pkl_write_state_dict(&view, 1, &small, 1, NULL, 0, &out, &len, &err) ==
	      CB_EFORMAT);
	CHECK_CONTAINS(err.msg, "past the end of its storage");
	cb_error_clear(&err);

	/* storage 1 before storage 0 */
	struct cb_pkl_storage two[] = {{CB_DTYPE_F32, 4}, {CB_DTYPE_F32, 4}};
	struct cb_pkl_tensor late = {.name = "l", .storage = 1, .rank = 1, .shape = shape};
	CHECK(cb_pkl_write_state_dict(&late, 1, two, 2, NULL, 0, &out, &len, &err) != CB_OK);
	CHECK(out == NULL);
}

int main(void)
{
	test_golden_linear();
	test_shared_storage_memo();
	test_batches_and_long_memo();
	test_integers();
	test_scalar_and_empty();
	test_v3_dtypes();
	test_refusals();
	return check_finish("test_pickle_write");
}
