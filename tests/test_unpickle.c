/* The restricted unpickler: torch's own data.pkl decoded exactly, the values
 * checkpoints hold, and hand-built hostile pickles refused with their rule,
 * the opcode's byte offset and exit status 1, never a crash: forbidden
 * globals (named, at the GLOBAL), opcodes outside the weights-only set,
 * MARK/memo abuse, huge LONG1, bad shapes and strides, storages claimed
 * with two types or sizes, container ops on the wrong type (CVE-2026-24747). */
#include <math.h>
#include <stdint.h>

#include "check.h"
#include "pt_fixture.h"
#include "unpickle.h"

/* ------------------------------------------------------------ parsing */

struct parsed {
	int rc;
	struct cb_pickle *p;
	char line[2048];
	bool truncated;
};

static void parse(const uint8_t *data, size_t len, bool legacy, struct parsed *out)
{
	struct cb_error err = CB_ERROR_INIT;
	struct cb_pk_options opt = {.path = "t.pkl",
				    .label = "data.pkl",
				    .legacy = legacy,
				    .truncated_out = &out->truncated};
	out->p = NULL;
	out->rc = cb_unpickle(data, len, &opt, &out->p, &err);
	out->line[0] = '\0';
	if (out->rc != CB_OK)
		cb_error_format(&err, out->line, sizeof out->line);
}

/* Refused with status 1 and a message containing both substrings. */
static void expect_refused(const struct buf *b, const char *needle, const char *where)
{
	struct parsed r;
	parse(b->p, b->len, false, &r);
	CHECK(r.rc != CB_OK);
	CHECK_EQ_U64(cb_error_exit_status(r.rc), 1);
	CHECK_CONTAINS(r.line, needle);
	if (where)
		CHECK_CONTAINS(r.line, where);
	cb_pickle_free(r.p);
}

static const struct cb_pk_value *dict_get(const struct cb_pk_value *d, const char *key)
{
	for (size_t i = 0; d && d->type == CB_PK_DICT && i < d->u.dict.n; i++)
		if (d->u.dict.kv[2 * i]->type == CB_PK_STR &&
		    strcmp(d->u.dict.kv[2 * i]->u.str.s, key) == 0)
			return d->u.dict.kv[2 * i + 1];
	return NULL;
}

/* ------------------------------------------------------------ tests */

static void test_linear_golden(void)
{
	struct parsed r;
	parse(linear_pkl, sizeof linear_pkl, false, &r);
	CHECK(r.rc == CB_OK);
	if (r.rc != CB_OK) {
		fprintf(stderr, "%s\n", r.line);
		return;
	}
	CHECK_EQ_U64(r.p->consumed, 229);
	CHECK_EQ_U64(r.p->n_tensors, 1);
	CHECK_EQ_U64(r.p->n_storages, 1);
	const struct cb_pk_value *root = r.p->root;
	CHECK(root->type == CB_PK_DICT && root->ordered && root->u.dict.n == 1);
	const struct cb_pk_value *w = dict_get(root, "weight");
	CHECK(w && w->type == CB_PK_TENSOR);
	if (w && w->type == CB_PK_TENSOR) {
		const struct cb_pk_tensor *t = w->u.tensor;
		CHECK(t->dtype == CB_DTYPE_F32);
		CHECK_STR_EQ(t->torch_dtype, "float32");
		CHECK_EQ_U64(t->rank, 2);
		CHECK(t->shape[0] == 1 && t->shape[1] == 3);
		CHECK(t->stride[0] == 3 && t->stride[1] == 1);
		CHECK_EQ_U64(t->numel, 3);
		CHECK_EQ_U64(t->storage_offset, 0);
		CHECK(!t->requires_grad && !t->parameter);
		CHECK_STR_EQ(t->storage->key, "0");
		CHECK_EQ_U64(t->storage->numel, 3);
		CHECK_EQ_U64(t->storage->nbytes, 12);
	}
	cb_pickle_free(r.p);
}

static void test_truncated_and_flipped(void)
{
	for (size_t len = 0; len < sizeof linear_pkl; len++) {
		struct parsed r;
		parse(linear_pkl, len, false, &r);
		CHECK(r.rc != CB_OK && cb_error_exit_status(r.rc) == 1);
		CHECK(r.truncated);
		cb_pickle_free(r.p);
	}
	uint8_t copy[sizeof linear_pkl];
	size_t refused = 0;
	for (size_t pos = 0; pos < sizeof copy; pos++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(copy, linear_pkl, sizeof copy);
			copy[pos] ^= (uint8_t)(1u << bit);
			struct parsed r;
			parse(copy, sizeof copy, false, &r);
			CHECK(r.rc == CB_OK || cb_error_exit_status(r.rc) == 1);
			refused += r.rc != CB_OK;
			cb_pickle_free(r.p);
		}
	}
	CHECK(refused > 1000);
}

static void test_forbidden_globals(void)
{
	static const char *const bad[][2] = {
		{"os", "system"},
		{"posix", "system"},
		{"nt", "system"},
		{"builtins", "eval"},
		{"__builtin__", "eval"},
		{"builtins", "exec"},
		{"builtins", "getattr"},
		{"subprocess", "Popen"},
		{"subprocess", "check_output"},
		{"torch.jit", "load"},
		{"torch.jit._pickle", "build_tensor_from_id"},
		{"torch", "load"},
		{"sys", "modules"},
		{"collections", "namedtuple"},
		{"torch._utils", "_rebuild_tensor_v9"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct buf b = {0};
		op(&b, 0x80);
		op(&b, 2);
		op_global(&b, bad[i][0], bad[i][1]);
		op_str(&b, "touch /tmp/pwned");
		op(&b, 0x85);
		op(&b, 'R');
		op(&b, '.');
		char needle[128];
		snprintf(needle, sizeof needle, "refused global %s.%s", bad[i][0], bad[i][1]);
		/* Refused at the GLOBAL itself (byte 2), before anything else. */
		expect_refused(&b, needle, "(data.pkl byte 2)");
		buf_free(&b);
	}
	/* The same through protocol 4's STACK_GLOBAL. */
	struct buf b = {0};
	op(&b, 0x80);
	op(&b, 4);
	op(&b, 0x95);
	buf_le(&b, 30, 8);
	op(&b, 0x8c);
	buf_u8(&b, 2);
	buf_str(&b, "os");
	op(&b, 0x8c);
	buf_u8(&b, 6);
	buf_str(&b, "system");
	op(&b, 0x93);
	op(&b, '.');
	expect_refused(&b, "refused global os.system", "byte 23");
	buf_free(&b);
	/* Allowed by torch, but not a tensor this reader represents. */
	op(&b, 0x80);
	op(&b, 2);
	op_global(&b, "torch._utils", "_rebuild_qtensor");
	op(&b, '.');
	expect_refused(&b, "quantized tensors are not supported", "byte 2");
	buf_free(&b);
}

static void test_forbidden_opcodes(void)
{
	/* INST, OBJ, PERSID (text), GET, INT, STRING, EXT1, POP, DUP, LONG4. */
	static const uint8_t ops[] = {'i', 'o', 'P', 'g', 'I', 'S', 0x82, '0', '2', 0x8b};
	for (size_t i = 0; i < sizeof ops; i++) {
		struct buf b = {0};
		op(&b, 0x80);
		op(&b, 2);
		op(&b, 'N');
		op(&b, ops[i]);
		op(&b, '.');
		char needle[64];
		snprintf(needle, sizeof needle, "opcode 0x%02x is not allowed", ops[i]);
		expect_refused(&b, needle, "byte 3");
		buf_free(&b);
	}
	struct buf b = {0};
	op(&b, 0x80);
	op(&b, 6);
	expect_refused(&b, "protocol 6", "byte 0");
	buf_free(&b);
}

static void test_limits(void)
{
	struct buf b = {0};
	/* MARK depth. */
	op(&b, 0x80);
	op(&b, 2);
	for (int k = 0; k < 300; k++)
		op(&b, '(');
	expect_refused(&b, "more than 256 nested MARKs", "byte 258");
	buf_free(&b);
	/* Memo: reading an unset slot, writing a huge index. */
	op(&b, 0x80);
	op(&b, 2);
	op(&b, 'h');
	buf_u8(&b, 5);
	expect_refused(&b, "memo entry 5 is read before it is written", "byte 2");
	buf_free(&b);
	op(&b, 0x80);
	op(&b, 2);
	op(&b, 'N');
	op(&b, 'r');
	buf_le(&b, 0xFFFFFFFFu, 4);
	op(&b, '.');
	expect_refused(&b, "memo index 4294967295 is over the limit", "byte 3");
	buf_free(&b);
	/* Stack underflow; values below a MARK are out of reach. */
	op(&b, 0x80);
	op(&b, 2);
	op(&b, 'R');
	expect_refused(&b, "stack underflow", "byte 2");
	buf_free(&b);
	op(&b, 0x80);
	op(&b, 2);
	op(&b, ']');
	op(&b, '(');
	op(&b, 'N');
	op(&b, 'a');
	expect_refused(&b, "APPEND needs 2 values", "byte 5");
	buf_free(&b);
	/* Strings: past the end (truncation), not UTF-8. */
	op(&b, 0x80);
	op(&b, 2);
	op(&b, 'X');
	buf_le(&b, 0xFFFFFFFFu, 4);
	expect_refused(&b, "runs past the end of the pickle", "byte 2");
	buf_free(&b);
	op(&b, 0x80);
	op(&b, 2);
	op(&b, 'X');
	buf_le(&b, 2, 4);
	buf_str(&b, "\xc3\x28");
	op(&b, '.');
	expect_refused(&b, "not valid UTF-8", "byte 2");
	buf_free(&b);
	/* A GLOBAL line with no end. */
	op(&b, 0x80);
	op(&b, 2);
	op(&b, 'c');
	for (int k = 0; k < 400; k++)
		buf_u8(&b, 'a');
	buf_u8(&b, '\n');
	expect_refused(&b, "longer than 256 bytes", "byte 2");
	buf_free(&b);
	/* STOP with nothing to return. */
	op(&b, 0x80);
	op(&b, 2);
	op(&b, '.');
	expect_refused(&b, "STOP with an empty stack", "byte 2");
	buf_free(&b);
}

/* A state dict whose only tensor is `t`, expected refused. */
static void expect_tensor_refused(const struct tspec *t, const char *needle)
{
	struct buf b = {0};
	state_dict(&b, "w", t);
	expect_refused(&b, needle, "data.pkl byte");
	buf_free(&b);
}

static void test_bad_tensors(void)
{
	struct tspec ok = {"FloatStorage", "0", 6, 0, 2, {2, 3}, {3, 1}};
	struct buf b = {0};
	state_dict(&b, "w", &ok);
	struct parsed r;
	parse(b.p, b.len, false, &r);
	CHECK(r.rc == CB_OK);
	cb_pickle_free(r.p);
	buf_free(&b);

	struct tspec t = ok;
	t.size[0] = -1;
	expect_tensor_refused(&t, "size is negative (-1)");
	t = ok;
	t.stride[1] = -1;
	expect_tensor_refused(&t, "stride is negative");
	t = ok;
	t.offset = -3;
	expect_tensor_refused(&t, "storage offset is negative");
	t = ok;
	t.numel = -1;
	expect_tensor_refused(&t, "storage size is not a non-negative");
	t = ok;
	t.size[0] = INT64_C(1) << 62;
	t.size[1] = INT64_C(1) << 62;
	expect_tensor_refused(&t, "element count overflows");
	t = ok;
	t.rank = 1;
	t.size[0] = INT64_C(1) << 62;
	t.stride[0] = 1;
	expect_tensor_refused(&t, "byte size overflows");
	/* Views reaching past their storage (6 elements). */
	t = ok;
	t.stride[1] = 2; /* last element at 3 + 4 = 7 */
	expect_tensor_refused(&t, "reaches past the 6 elements of storage \"0\"");
	t = ok;
	t.offset = 1;
	expect_tensor_refused(&t, "reaches past the 6 elements");
	t = ok;
	t.stride[0] = INT64_MAX;
	expect_tensor_refused(&t, "reaches past");
	t = ok;
	t.numel = 5;
	expect_tensor_refused(&t, "reaches past the 5 elements");
	t = ok;
	t.size[0] = 0;
	t.offset = 7; /* empty, but the offset is still past the storage */
	expect_tensor_refused(&t, "reaches past");
	/* Types no safetensors dtype holds. */
	t = ok;
	t.storage_class = "ComplexDoubleStorage";
	expect_tensor_refused(&t, "dtype torch.complex128: safetensors has no such dtype");
	t = ok;
	t.storage_class = "QInt8Storage";
	expect_tensor_refused(&t, "torch.qint8");
	/* Too many dimensions. */
	op(&b, 0x80);
	op(&b, 2);
	op_global(&b, "torch._utils", "_rebuild_tensor_v2");
	op(&b, '(');
	op(&b, '(');
	op_str(&b, "storage");
	op_global(&b, "torch", "FloatStorage");
	op_str(&b, "0");
	op_str(&b, "cpu");
	op_int(&b, 1);
	op(&b, 't');
	op(&b, 'Q');
	op_int(&b, 0);
	for (int tuple = 0; tuple < 2; tuple++) { /* 70 sizes, 70 strides */
		op(&b, '(');
		for (int k = 0; k < 70; k++)
			op_int(&b, 1);
		op(&b, 't');
	}
	op(&b, 0x89);
	op(&b, '}');
	op(&b, 't');
	op(&b, 'R');
	op(&b, '.');
	expect_refused(&b, "70 dimensions, over the limit of 64", NULL);
	buf_free(&b);
}

/* Two ids for one key: the same dtype and size, else refused. */
static void test_shared_storages(void)
{
	struct tspec a = {"FloatStorage", "0", 12, 0, 1, {12}, {1}};
	struct tspec v = {"FloatStorage", "0", 12, 2, 2, {2, 3}, {3, 1}};
	struct buf b = {0};
	op(&b, 0x80);
	op(&b, 2);
	op(&b, '}');
	op(&b, '(');
	op_str(&b, "base");
	op_tensor(&b, &a);
	op_str(&b, "view");
	op_tensor(&b, &v);
	op(&b, 'u');
	op(&b, '.');
	struct parsed r;
	parse(b.p, b.len, false, &r);
	CHECK(r.rc == CB_OK);
	if (r.rc == CB_OK) {
		CHECK_EQ_U64(r.p->n_storages, 1);
		CHECK_EQ_U64(r.p->n_tensors, 2);
		const struct cb_pk_value *x = dict_get(r.p->root, "base");
		const struct cb_pk_value *y = dict_get(r.p->root, "view");
		CHECK(x && y && x->u.tensor->storage == y->u.tensor->storage);
		CHECK(y && y->u.tensor->storage_offset == 2);
	}
	cb_pickle_free(r.p);
	buf_free(&b);

	v.storage_class = "LongStorage";
	v.numel = 6; /* same bytes, another type */
	op(&b, 0x80);
	op(&b, 2);
	op(&b, '}');
	op(&b, '(');
	op_str(&b, "base");
	op_tensor(&b, &a);
	op_str(&b, "view");
	op_tensor(&b, &v);
	op(&b, 'u');
	op(&b, '.');
	expect_refused(&b, "storage \"0\" is viewed as both float32 and int64", NULL);
	buf_free(&b);
	v.storage_class = "FloatStorage";
	v.numel = 13;
	op(&b, 0x80);
	op(&b, 2);
	op(&b, ']');
	op(&b, '(');
	op_tensor(&b, &a);
	op_tensor(&b, &v);
	op(&b, 'e');
	op(&b, '.');
	expect_refused(&b, "persistent ids disagree about the size of storage \"0\"", NULL);
	buf_free(&b);
}

static void test_wrong_containers(void)
{
	struct buf b = {0};
	/* SETITEM on a list (the heap-corruption half of CVE-2026-24747). */
	op(&b, 0x80);
	op(&b, 2);
	op(&b, ']');
	op_int(&b, 0);
	op_int(&b, 1);
	op(&b, 's');
	expect_refused(&b, "SETITEM on a list (only dicts)", "byte 7");
	buf_free(&b);
	op(&b, 0x80);
	op(&b, 2);
	op(&b, '}');
	op_int(&b, 1);
	op(&b, 'a');
	expect_refused(&b, "APPEND on a dict (only lists)", NULL);
	buf_free(&b);
	op(&b, 0x80);
	op(&b, 2);
	op(&b, ']');
	op(&b, '}');
	op(&b, 'b');
	expect_refused(&b, "BUILD on a list is not allowed", NULL);
	buf_free(&b);
	op(&b, 0x80);
	op(&b, 2);
	op(&b, '}');
	op(&b, '}');
	op(&b, 'b');
	expect_refused(&b, "BUILD on a dict is not allowed", NULL);
	buf_free(&b);
	struct tspec t = {"FloatStorage", "0", 3, 0, 1, {3}, {1}};
	op(&b, 0x80);
	op(&b, 2);
	op_tensor(&b, &t);
	op(&b, '}');
	op(&b, 'b');
	expect_refused(&b, "BUILD on a tensor", NULL);
	buf_free(&b);
	/* SETITEM on a tensor: the exact CVE gadget. */
	op(&b, 0x80);
	op(&b, 2);
	op_tensor(&b, &t);
	op_int(&b, 100000);
	op_int(&b, 7);
	op(&b, 's');
	expect_refused(&b, "SETITEM on a Tensor (only dicts)", NULL);
	buf_free(&b);
	/* Calling what is not callable. */
	op(&b, 0x80);
	op(&b, 2);
	op_global(&b, "torch", "float32");
	op(&b, ')');
	op(&b, 'R');
	expect_refused(&b, "torch.float32 may not be called", NULL);
	buf_free(&b);
	op(&b, 0x80);
	op(&b, 2);
	op_str(&b, "eval");
	op(&b, ')');
	op(&b, 'R');
	expect_refused(&b, "REDUCE calls a str, which is not callable", NULL);
	buf_free(&b);
	op(&b, 0x80);
	op(&b, 2);
	op_global(&b, "torch", "FloatStorage");
	op(&b, ')');
	op(&b, 0x81);
	expect_refused(&b, "NEWOBJ of torch.FloatStorage is not allowed", NULL);
	buf_free(&b);
	/* A pickled module class with source (legacy full-model saves). */
	op(&b, 0x80);
	op(&b, 2);
	op(&b, '(');
	op_str(&b, "module");
	op_str(&b, "M");
	op_str(&b, "m.py");
	op_str(&b, "import os; os.system('x')");
	op(&b, 't');
	op(&b, 'Q');
	expect_refused(&b, "persistent id 'module') is refused", NULL);
	buf_free(&b);
}

static void test_values(void)
{
	struct buf b = {0};
	op(&b, 0x80);
	op(&b, 2);
	op(&b, '}');
	op(&b, '(');
	op_str(&b, "f");
	op(&b, 'G');
	buf_put(&b, "\x3f\xf8\x00\x00\x00\x00\x00\x00", 8); /* 1.5, big-endian */
	op_str(&b, "big");
	op(&b, 0x8a);
	buf_u8(&b, 6);
	buf_put(&b, "\x00\x00\x00\x00\x00\x01", 6); /* 2**40 */
	op_str(&b, "neg");
	op(&b, 0x8a);
	buf_u8(&b, 1);
	buf_u8(&b, 0xff); /* -1 */
	op_str(&b, "wide");
	op(&b, 0x8a);
	buf_u8(&b, 20);
	for (int k = 0; k < 20; k++)
		buf_u8(&b, 0x11);
	op_str(&b, "i");
	op(&b, 'J');
	buf_le(&b, (uint64_t)-5, 4);
	op_str(&b, "bytes");
	op_global(&b, "_codecs", "encode");
	op_str(&b, "\x01\xc3\xbf"); /* U+0001 U+00FF */
	op_str(&b, "latin1");
	op(&b, 0x86);
	op(&b, 'R');
	op_str(&b, "c");
	op_global(&b, "__builtin__", "complex");
	op(&b, 'G');
	buf_put(&b, "\x40\x00\x00\x00\x00\x00\x00\x00", 8);
	op(&b, 'G');
	buf_put(&b, "\xbf\xf0\x00\x00\x00\x00\x00\x00", 8);
	op(&b, 0x86);
	op(&b, 'R');
	op_str(&b, "set");
	op_global(&b, "__builtin__", "set");
	op(&b, ']');
	op_int(&b, 3);
	op(&b, 'a');
	op(&b, 0x85);
	op(&b, 'R');
	op_str(&b, "dev");
	op_global(&b, "torch", "device");
	op_str(&b, "cuda");
	op_int(&b, 0);
	op(&b, 0x86);
	op(&b, 'R');
	op_str(&b, "none");
	op(&b, 'N');
	op_str(&b, "yes");
	op(&b, 0x88);
	op_str(&b, "od");
	op_global(&b, "collections", "OrderedDict");
	op(&b, ')');
	op(&b, 'R');
	op(&b, 'q');
	buf_u8(&b, 0);
	op_str(&b, "again");
	op(&b, 'h');
	buf_u8(&b, 0);
	op(&b, 'u');
	op(&b, '.');
	struct parsed r;
	parse(b.p, b.len, false, &r);
	CHECK(r.rc == CB_OK);
	if (r.rc != CB_OK) {
		fprintf(stderr, "%s\n", r.line);
		buf_free(&b);
		return;
	}
	const struct cb_pk_value *root = r.p->root, *v;
	CHECK((v = dict_get(root, "f")) && v->type == CB_PK_FLOAT && v->u.f == 1.5);
	CHECK((v = dict_get(root, "big")) && v->type == CB_PK_INT && v->u.i == INT64_C(1) << 40);
	CHECK((v = dict_get(root, "neg")) && v->type == CB_PK_INT && v->u.i == -1);
	CHECK((v = dict_get(root, "wide")) && v->type == CB_PK_BIGINT && v->u.str.len == 20);
	CHECK((v = dict_get(root, "i")) && v->type == CB_PK_INT && v->u.i == -5);
	CHECK((v = dict_get(root, "bytes")) && v->type == CB_PK_BYTES && v->u.str.len == 2 &&
	      memcmp(v->u.str.s, "\x01\xff", 2) == 0);
	CHECK((v = dict_get(root, "c")) && v->type == CB_PK_COMPLEX && v->u.c.re == 2.0 &&
	      v->u.c.im == -1.0);
	CHECK((v = dict_get(root, "set")) && v->type == CB_PK_SET && v->u.seq.n == 1);
	CHECK((v = dict_get(root, "dev")) && v->type == CB_PK_DEVICE);
	CHECK((v = dict_get(root, "none")) && v->type == CB_PK_NONE);
	CHECK((v = dict_get(root, "yes")) && v->type == CB_PK_BOOL && v->u.b);
	CHECK(dict_get(root, "od") && dict_get(root, "od") == dict_get(root, "again"));
	cb_pickle_free(r.p);
	buf_free(&b);
}

/* _rebuild_tensor_v3 on an UntypedStorage (float8), and Parameters. */
static void test_v3_and_parameters(void)
{
	struct buf b = {0};
	op(&b, 0x80);
	op(&b, 2);
	op(&b, '}');
	op(&b, '(');
	op_str(&b, "f8");
	op_global(&b, "torch._utils", "_rebuild_tensor_v3");
	op(&b, '(');
	op(&b, '(');
	op_str(&b, "storage");
	op_global(&b, "torch", "UntypedStorage");
	op_str(&b, "0");
	op_str(&b, "cpu");
	op_int(&b, 8);
	op(&b, 't');
	op(&b, 'Q');
	op_int(&b, 0);
	op_int_tuple(&b, (const int64_t[]){2, 4}, 2);
	op_int_tuple(&b, (const int64_t[]){4, 1}, 2);
	op(&b, 0x89);
	op(&b, '}');
	op_global(&b, "torch", "float8_e4m3fn");
	op(&b, 't');
	op(&b, 'R');
	op_str(&b, "p");
	op_global(&b, "torch._utils", "_rebuild_parameter");
	struct tspec t = {"HalfStorage", "1", 4, 0, 1, {4}, {1}};
	op_tensor(&b, &t);
	op(&b, 0x88);
	op(&b, '}');
	op(&b, 0x87);
	op(&b, 'R');
	op(&b, 'u');
	op(&b, '.');
	struct parsed r;
	parse(b.p, b.len, false, &r);
	CHECK(r.rc == CB_OK);
	if (r.rc == CB_OK) {
		const struct cb_pk_value *f8 = dict_get(r.p->root, "f8");
		const struct cb_pk_value *p = dict_get(r.p->root, "p");
		CHECK(f8 && f8->type == CB_PK_TENSOR && f8->u.tensor->dtype == CB_DTYPE_F8_E4M3);
		CHECK(f8 && f8->u.tensor->storage->nbytes == 8);
		CHECK(p && p->type == CB_PK_TENSOR && p->u.tensor->parameter &&
		      p->u.tensor->requires_grad && p->u.tensor->dtype == CB_DTYPE_F16);
	} else {
		fprintf(stderr, "%s\n", r.line);
	}
	cb_pickle_free(r.p);
	buf_free(&b);
}

/* The legacy format's 6-field ids, with a storage view (offset, size). */
static void test_legacy_ids(void)
{
	struct buf b = {0};
	op(&b, 0x80);
	op(&b, 2);
	op_global(&b, "torch._utils", "_rebuild_tensor_v2");
	op(&b, '(');
	op(&b, '(');
	op_str(&b, "storage");
	op_global(&b, "torch", "FloatStorage");
	op_str(&b, "94000");
	op_str(&b, "cpu");
	op_int(&b, 10);
	op_str(&b, "94004");
	op_int(&b, 4);
	op_int(&b, 6);
	op(&b, 0x87);
	op(&b, 't');
	op(&b, 'Q');
	op_int(&b, 1);
	op_int_tuple(&b, (const int64_t[]){5}, 1);
	op_int_tuple(&b, (const int64_t[]){1}, 1);
	op(&b, 0x89);
	op(&b, '}');
	op(&b, 't');
	op(&b, 'R');
	op(&b, '.');
	struct parsed r;
	parse(b.p, b.len, true, &r);
	CHECK(r.rc == CB_OK);
	if (r.rc == CB_OK && r.p->root->type == CB_PK_TENSOR) {
		/* view offset 4 + tensor offset 1, inside the 10-element root */
		CHECK_EQ_U64(r.p->root->u.tensor->storage_offset, 5);
		CHECK_STR_EQ(r.p->root->u.tensor->storage->key, "94000");
	}
	cb_pickle_free(r.p);
	/* The same bytes as a zip-format pickle: the id has a field too many. */
	parse(b.p, b.len, false, &r);
	CHECK(r.rc != CB_OK);
	CHECK_CONTAINS(r.line, "has 6 fields, not 5");
	cb_pickle_free(r.p);
	buf_free(&b);
}

int main(void)
{
	test_linear_golden();
	test_truncated_and_flipped();
	test_forbidden_globals();
	test_forbidden_opcodes();
	test_limits();
	test_bad_tensors();
	test_shared_storages();
	test_wrong_containers();
	test_values();
	test_v3_and_parameters();
	test_legacy_ids();
	return check_finish("test_unpickle");
}
