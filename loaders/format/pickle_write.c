/* The protocol-2 pickler for state dicts. Opcode choices follow CPython's
 * Pickler (save_long, save_tuple, save_global, save_reduce, _batch_setitems)
 * for exactly the objects torch.save hands it. */
#include "pickle_write.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OP_PROTO 0x80
#define OP_STOP '.'
#define OP_GLOBAL 'c'
#define OP_BINPERSID 'Q'
#define OP_REDUCE 'R'
#define OP_BUILD 'b'
#define OP_MARK '('
#define OP_TUPLE 't'
#define OP_TUPLE1 0x85
#define OP_EMPTY_TUPLE ')'
#define OP_EMPTY_DICT '}'
#define OP_SETITEM 's'
#define OP_SETITEMS 'u'
#define OP_NEWFALSE 0x89
#define OP_BININT 'J'
#define OP_BININT1 'K'
#define OP_BININT2 'M'
#define OP_LONG1 0x8a
#define OP_BINUNICODE 'X'
#define OP_BINPUT 'q'
#define OP_LONG_BINPUT 'r'
#define OP_BINGET 'h'
#define OP_LONG_BINGET 'j'

#define BATCH 1000 /* pickle's _BATCHSIZE */
#define NO_MEMO UINT32_MAX
#define MAX_GLOBALS 64 /* distinct globals one state dict can need */

/* torch's names per dtype: the typed storage class (torch/storage.py
 * _dtype_to_storage_type_map) or, for dtypes added later, the dtype that
 * _rebuild_tensor_v3 takes (torch/storage.py _new_dtypes). */
static const struct {
	enum cb_dtype dtype;
	const char *storage_class;
	const char *v3_dtype;
} torch_names[] = {
	{CB_DTYPE_F64, "DoubleStorage", NULL},
	{CB_DTYPE_F32, "FloatStorage", NULL},
	{CB_DTYPE_F16, "HalfStorage", NULL},
	{CB_DTYPE_BF16, "BFloat16Storage", NULL},
	{CB_DTYPE_I64, "LongStorage", NULL},
	{CB_DTYPE_I32, "IntStorage", NULL},
	{CB_DTYPE_I16, "ShortStorage", NULL},
	{CB_DTYPE_I8, "CharStorage", NULL},
	{CB_DTYPE_U8, "ByteStorage", NULL},
	{CB_DTYPE_BOOL, "BoolStorage", NULL},
	{CB_DTYPE_C64, "ComplexFloatStorage", NULL},
	{CB_DTYPE_F8_E5M2, NULL, "float8_e5m2"},
	{CB_DTYPE_F8_E4M3, NULL, "float8_e4m3fn"},
	{CB_DTYPE_F8_E5M2FNUZ, NULL, "float8_e5m2fnuz"},
	{CB_DTYPE_F8_E4M3FNUZ, NULL, "float8_e4m3fnuz"},
	{CB_DTYPE_F8_E8M0, NULL, "float8_e8m0fnu"},
	{CB_DTYPE_U16, NULL, "uint16"},
	{CB_DTYPE_U32, NULL, "uint32"},
	{CB_DTYPE_U64, NULL, "uint64"},
};

const char *cb_pkl_storage_class(enum cb_dtype dtype)
{
	for (size_t i = 0; i < sizeof torch_names / sizeof torch_names[0]; i++)
		if (torch_names[i].dtype == dtype)
			return torch_names[i].storage_class;
	return NULL;
}

const char *cb_pkl_v3_dtype(enum cb_dtype dtype)
{
	for (size_t i = 0; i < sizeof torch_names / sizeof torch_names[0]; i++)
		if (torch_names[i].dtype == dtype)
			return torch_names[i].v3_dtype;
	return NULL;
}

int cb_pkl_check_dtype(enum cb_dtype dtype, const char *what, const char *path,
		       struct cb_error *err)
{
	if (cb_pkl_storage_class(dtype) || cb_pkl_v3_dtype(dtype))
		return CB_OK;
	char where[300];
	snprintf(where, sizeof where, "tensor \"%.200s\"", what ? what : "");
	return CB_FAIL(err, CB_EUNSUPPORTED, path, what ? where : NULL,
		       "dtype %s has no PyTorch equivalent that torch.save can write",
		       cb_dtype_name(dtype));
}

/* ------------------------------------------------------------ the pickler */

struct pk {
	uint8_t *buf;
	size_t len, cap;
	bool nomem;
	uint32_t memo; /* next memo index */
	size_t n_globals;
	struct memo_global {
		const char *module, *name;
		uint32_t memo;
	} globals[MAX_GLOBALS];
	uint32_t *key_memo; /* per storage: its key string's memo */
	uint32_t str_storage, str_cpu, str_version;
	uint32_t od_class; /* collections.OrderedDict */
};

static void emit(struct pk *pk, const void *data, size_t n)
{
	if (pk->nomem)
		return;
	if (pk->len + n > pk->cap) {
		size_t cap = pk->cap ? pk->cap : 4096;
		while (cap < pk->len + n)
			cap *= 2;
		uint8_t *b = realloc(pk->buf, cap);
		if (!b) {
			pk->nomem = true;
			return;
		}
		pk->buf = b;
		pk->cap = cap;
	}
	memcpy(pk->buf + pk->len, data, n);
	pk->len += n;
}

static void op(struct pk *pk, uint8_t code)
{
	emit(pk, &code, 1);
}

static void op_u32(struct pk *pk, uint8_t code, uint32_t v)
{
	uint8_t b[5] = {code, (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			(uint8_t)(v >> 24)};
	emit(pk, b, 5);
}

/* Memoizes the object just built; returns its memo index. */
static uint32_t put(struct pk *pk)
{
	uint32_t i = pk->memo++;
	if (i < 256) {
		uint8_t b[2] = {OP_BINPUT, (uint8_t)i};
		emit(pk, b, 2);
	} else {
		op_u32(pk, OP_LONG_BINPUT, i);
	}
	return i;
}

static void get(struct pk *pk, uint32_t i)
{
	if (i < 256) {
		uint8_t b[2] = {OP_BINGET, (uint8_t)i};
		emit(pk, b, 2);
	} else {
		op_u32(pk, OP_LONG_BINGET, i);
	}
}

static uint32_t unicode(struct pk *pk, const char *s)
{
	size_t n = strlen(s);
	op_u32(pk, OP_BINUNICODE, (uint32_t)n);
	emit(pk, s, n);
	return put(pk);
}

/* A string torch hands the pickler as the same object every time. */
static void shared_str(struct pk *pk, uint32_t *slot, const char *s)
{
	if (*slot != NO_MEMO)
		get(pk, *slot);
	else
		*slot = unicode(pk, s);
}

static uint32_t global(struct pk *pk, const char *module, const char *name)
{
	for (size_t i = 0; i < pk->n_globals; i++)
		if (strcmp(pk->globals[i].module, module) == 0 &&
		    strcmp(pk->globals[i].name, name) == 0) {
			get(pk, pk->globals[i].memo);
			return pk->globals[i].memo;
		}
	op(pk, OP_GLOBAL);
	emit(pk, module, strlen(module));
	op(pk, '\n');
	emit(pk, name, strlen(name));
	op(pk, '\n');
	uint32_t m = put(pk);
	if (pk->n_globals < MAX_GLOBALS)
		pk->globals[pk->n_globals++] = (struct memo_global){module, name, m};
	return m;
}

/* save_long: BININT1/BININT2 for small non-negatives, BININT for int32,
 * else LONG1 with the shortest two's complement. */
static void integer(struct pk *pk, int64_t v)
{
	if (v >= 0 && v <= 0xFF) {
		uint8_t b[2] = {OP_BININT1, (uint8_t)v};
		emit(pk, b, 2);
	} else if (v >= 0 && v <= 0xFFFF) {
		uint8_t b[3] = {OP_BININT2, (uint8_t)v, (uint8_t)(v >> 8)};
		emit(pk, b, 3);
	} else if (v >= INT32_MIN && v <= INT32_MAX) {
		op_u32(pk, OP_BININT, (uint32_t)(int32_t)v);
	} else {
		uint8_t b[10] = {OP_LONG1, 0};
		unsigned n = 1;
		while (n < 8 &&
		       !(v >= -(INT64_C(1) << (8 * n - 1)) && v < (INT64_C(1) << (8 * n - 1))))
			n++;
		for (unsigned i = 0; i < n; i++)
			b[2 + i] = (uint8_t)((uint64_t)v >> (8 * i));
		b[1] = (uint8_t)n;
		emit(pk, b, 2 + n);
	}
}

/* save_tuple of ints: () unmemoized, TUPLE1-3 for short ones, else MARK. */
static void int_tuple(struct pk *pk, const int64_t *v, uint32_t n)
{
	if (n == 0) {
		op(pk, OP_EMPTY_TUPLE);
		return;
	}
	if (n > 3)
		op(pk, OP_MARK);
	for (uint32_t i = 0; i < n; i++)
		integer(pk, v[i]);
	op(pk, n > 3 ? OP_TUPLE : (uint8_t)(OP_TUPLE1 + n - 1));
	put(pk);
}

/* An empty OrderedDict(): the class, (), REDUCE. */
static void empty_ordered_dict(struct pk *pk)
{
	get(pk, pk->od_class);
	op(pk, OP_EMPTY_TUPLE);
	op(pk, OP_REDUCE);
	put(pk);
}

/* _batch_setitems: one item is k v SETITEM, more are MARK k v ... SETITEMS,
 * in batches of 1000. */
static void batched_items(struct pk *pk, size_t n, void (*item)(struct pk *, size_t, void *),
			  void *ctx)
{
	for (size_t first = 0; first < n; first += BATCH) {
		size_t count = n - first < BATCH ? n - first : BATCH;
		if (count > 1)
			op(pk, OP_MARK);
		for (size_t i = first; i < first + count; i++)
			item(pk, i, ctx);
		op(pk, count > 1 ? OP_SETITEMS : OP_SETITEM);
	}
}

struct sd_ctx {
	const struct cb_pkl_tensor *tensors;
	const struct cb_pkl_storage *storages;
	const struct cb_pkl_module_version *modules;
	int64_t *scratch; /* 2 × max rank */
	uint32_t next_key;
};

static void storage_key(struct pk *pk, uint32_t storage, uint32_t *next_key)
{
	if (pk->key_memo[storage] != NO_MEMO) {
		get(pk, pk->key_memo[storage]);
		return;
	}
	char key[16];
	snprintf(key, sizeof key, "%u", (*next_key)++);
	pk->key_memo[storage] = unicode(pk, key);
}

/* Tensor.__reduce_ex__ -> (_rebuild_tensor_v2 | _v3, args) */
static void tensor(struct pk *pk, const struct cb_pkl_tensor *t, struct sd_ctx *ctx)
{
	const struct cb_pkl_storage *s = &ctx->storages[t->storage];
	const char *klass = cb_pkl_storage_class(s->dtype);
	uint64_t esize = cb_dtype_bits(s->dtype) / 8;
	global(pk, "torch._utils", klass ? "_rebuild_tensor_v2" : "_rebuild_tensor_v3");
	op(pk, OP_MARK);
	/* the persistent id: ('storage', type, key, location, numel) */
	op(pk, OP_MARK);
	shared_str(pk, &pk->str_storage, "storage");
	if (klass)
		global(pk, "torch", klass);
	else
		global(pk, "torch.storage", "UntypedStorage");
	storage_key(pk, t->storage, &ctx->next_key);
	shared_str(pk, &pk->str_cpu, "cpu");
	integer(pk, (int64_t)(klass ? s->numel : s->numel * esize));
	op(pk, OP_TUPLE);
	put(pk);
	op(pk, OP_BINPERSID);
	integer(pk, (int64_t)t->storage_offset);
	int64_t *size = ctx->scratch, *stride = ctx->scratch + t->rank;
	int64_t step = 1;
	for (uint32_t d = t->rank; d-- > 0;) {
		size[d] = (int64_t)t->shape[d];
		/* torch's contiguous strides treat a zero size as one */
		stride[d] = t->stride ? t->stride[d] : step;
		step *= size[d] > 1 ? size[d] : 1;
	}
	int_tuple(pk, size, t->rank);
	int_tuple(pk, stride, t->rank);
	op(pk, OP_NEWFALSE);    /* requires_grad */
	empty_ordered_dict(pk); /* backward_hooks */
	if (!klass)
		global(pk, "torch", cb_pkl_v3_dtype(s->dtype));
	op(pk, OP_TUPLE);
	put(pk);
	op(pk, OP_REDUCE);
	put(pk);
}

static void sd_item(struct pk *pk, size_t i, void *arg)
{
	struct sd_ctx *ctx = arg;
	unicode(pk, ctx->tensors[i].name);
	tensor(pk, &ctx->tensors[i], ctx);
}

static void meta_item(struct pk *pk, size_t i, void *arg)
{
	const struct sd_ctx *ctx = arg;
	unicode(pk, ctx->modules[i].module);
	op(pk, OP_EMPTY_DICT);
	put(pk);
	shared_str(pk, &pk->str_version, "version");
	integer(pk, ctx->modules[i].version);
	op(pk, OP_SETITEM);
}

/* ------------------------------------------------------------ validation */

static int fail_tensor(struct cb_error *err, const char *name, const char *fmt, const char *detail)
{
	char where[300];
	snprintf(where, sizeof where, "tensor \"%.200s\"", name);
	return CB_FAIL(err, CB_EFORMAT, NULL, where, fmt, detail);
}

/* The last element a view reaches must lie in its storage. */
static int check_view(const struct cb_pkl_tensor *t, const struct cb_pkl_storage *s,
		      struct cb_error *err)
{
	uint64_t numel = 1, last = t->storage_offset, step = 1;
	bool overflow = false;
	for (uint32_t d = t->rank; d-- > 0;) {
		uint64_t dim = t->shape[d];
		if (dim > (uint64_t)INT64_MAX)
			return fail_tensor(err, t->name, "%s", "a dimension over 2^63");
		if (t->stride && t->stride[d] < 0)
			return fail_tensor(err, t->name, "%s", "a negative stride");
		uint64_t stride = t->stride ? (uint64_t)t->stride[d] : step;
		uint64_t reach;
		overflow = overflow || __builtin_mul_overflow(numel, dim, &numel);
		if (dim > 0) {
			overflow = overflow || __builtin_mul_overflow(dim - 1, stride, &reach) ||
				   __builtin_add_overflow(last, reach, &last);
		}
		overflow = overflow || __builtin_mul_overflow(step, dim > 1 ? dim : 1, &step);
	}
	if (overflow || last > (uint64_t)INT64_MAX)
		return fail_tensor(err, t->name, "%s", "its size or extent overflows 64 bits");
	if (numel > 0 && last >= s->numel)
		return fail_tensor(err, t->name, "%s",
				   "the view reaches past the end of its storage");
	return CB_OK;
}

static int validate(const struct cb_pkl_tensor *tensors, size_t n,
		    const struct cb_pkl_storage *storages, size_t n_storages, uint32_t *max_rank,
		    struct cb_error *err)
{
	uint64_t bytes;
	for (size_t k = 0; k < n_storages; k++) {
		int rc = cb_pkl_check_dtype(storages[k].dtype, NULL, NULL, err);
		if (rc != CB_OK)
			return rc;
		if (!cb_dtype_nbytes(storages[k].dtype, storages[k].numel, &bytes, NULL) ||
		    bytes > (uint64_t)INT64_MAX)
			return CB_FAIL(err, CB_EFORMAT, NULL, NULL, "storage %zu is too large", k);
	}
	uint64_t next = 0;
	*max_rank = 0;
	for (size_t i = 0; i < n; i++) {
		const struct cb_pkl_tensor *t = &tensors[i];
		if (t->storage >= n_storages || t->storage > next)
			return CB_FAIL(err, CB_EINTERNAL, NULL, NULL,
				       "tensor %zu names storage %u out of first-use order", i,
				       t->storage);
		if (t->storage == next)
			next++;
		int rc = check_view(t, &storages[t->storage], err);
		if (rc != CB_OK)
			return rc;
		if (t->rank > *max_rank)
			*max_rank = t->rank;
	}
	return CB_OK;
}

int cb_pkl_write_state_dict(const struct cb_pkl_tensor *tensors, size_t n,
			    const struct cb_pkl_storage *storages, size_t n_storages,
			    const struct cb_pkl_module_version *modules, size_t n_modules,
			    uint8_t **out, size_t *len_out, struct cb_error *err)
{
	*out = NULL;
	*len_out = 0;
	uint32_t max_rank = 0;
	int rc = validate(tensors, n, storages, n_storages, &max_rank, err);
	if (rc != CB_OK)
		return rc;
	struct pk pk = {.str_storage = NO_MEMO, .str_cpu = NO_MEMO, .str_version = NO_MEMO};
	struct sd_ctx ctx = {.tensors = tensors, .storages = storages, .modules = modules};
	pk.key_memo = malloc((n_storages ? n_storages : 1) * sizeof *pk.key_memo);
	ctx.scratch = malloc(2 * (max_rank ? max_rank : 1) * sizeof *ctx.scratch);
	if (!pk.key_memo || !ctx.scratch) {
		free(pk.key_memo);
		free(ctx.scratch);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	for (size_t k = 0; k < n_storages; k++)
		pk.key_memo[k] = NO_MEMO;
	uint8_t proto[2] = {OP_PROTO, 2};
	emit(&pk, proto, 2);
	/* OrderedDict.__reduce__: (cls, (), state, None, iter(items)) */
	pk.od_class = global(&pk, "collections", "OrderedDict");
	op(&pk, OP_EMPTY_TUPLE);
	op(&pk, OP_REDUCE);
	put(&pk);
	batched_items(&pk, n, sd_item, &ctx);
	if (modules) {
		/* state = {'_metadata': OrderedDict(module -> {'version': N})} */
		op(&pk, OP_EMPTY_DICT);
		put(&pk);
		unicode(&pk, "_metadata");
		empty_ordered_dict(&pk);
		batched_items(&pk, n_modules, meta_item, &ctx);
		op(&pk, OP_SETITEM);
		op(&pk, OP_BUILD);
	}
	op(&pk, OP_STOP);
	free(pk.key_memo);
	free(ctx.scratch);
	if (pk.nomem) {
		free(pk.buf);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	*out = pk.buf;
	*len_out = pk.len;
	return CB_OK;
}
