/* The restricted unpickler; see unpickle.h for what it accepts and why.
 * The format's rules: docs/datasets-and-method.md §4.2-§4.3. */
#include "unpickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "utf8.h"

/* ------------------------------------------------------------ arena */

/* Every value of a parse lives in one arena, freed at once: the value graph
 * may share nodes and even hold cycles (a list appended to itself), so no
 * per-node ownership would be simpler or safer. The arena is bounded so a
 * small pickle cannot make the reader take unbounded memory.
 *
 * Chunks grow geometrically and come straight from mmap; the large ones ask
 * for transparent huge pages. Parsing a big state dict is dominated by first
 * touches of fresh memory (page faults), and a 2 MiB page takes one fault
 * where 4 KiB pages take 512. A pickle big enough to need one starts with
 * a huge-page chunk (ARENA_HUGE_FROM), instead of faulting in the small
 * chunks page by page first; the value tree takes several times the
 * pickle's bytes. */
#define ARENA_FIRST_CHUNK (64u << 10)
#define ARENA_HUGE_FROM (256u << 10) /* pickle bytes */
#define ARENA_MAX_CHUNK (8u << 20)
#define ARENA_HUGE_CHUNK (2u << 20)
#define ARENA_BASE_LIMIT (64ull << 20)
#define ARENA_PER_INPUT_BYTE 64u

struct chunk {
	struct chunk *next;
	size_t cap, used; /* cap: bytes of data[] */
	_Alignas(16) unsigned char data[];
};

struct arena {
	struct chunk *head;
	uint64_t total, limit;
	size_t next_chunk;
	bool over_limit;
};

static struct chunk *chunk_map(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	if (bytes >= ARENA_HUGE_CHUNK)
		(void)madvise(p, bytes, MADV_HUGEPAGE); /* a hint; fine to fail */
#endif
	struct chunk *c = p;
	c->cap = bytes - sizeof *c;
	c->used = 0;
	return c;
}

static void *arena_alloc(struct arena *a, size_t size)
{
	if (size > SIZE_MAX / 2)
		return NULL;
	size = (size + 15) & ~(size_t)15;
	if (!a->head || a->head->cap - a->head->used < size) {
		size_t bytes = a->next_chunk ? a->next_chunk : ARENA_FIRST_CHUNK;
		while (bytes - sizeof(struct chunk) < size)
			bytes *= 2;
		if (a->total + bytes > a->limit) {
			a->over_limit = true;
			return NULL;
		}
		struct chunk *c = chunk_map(bytes);
		if (!c)
			return NULL;
		c->next = a->head;
		a->head = c;
		a->total += bytes;
		if (bytes < ARENA_MAX_CHUNK)
			a->next_chunk = bytes * 2;
	}
	void *p = a->head->data + a->head->used;
	a->head->used += size;
	return p;
}

static void arena_free(struct arena *a)
{
	if (!a)
		return;
	for (struct chunk *c = a->head, *next; c; c = next) {
		next = c->next;
		munmap(c, c->cap + sizeof *c);
	}
	free(a);
}

/* A lazily zeroed table of `*bytes` bytes (rounded up to whole huge pages
 * when big, which *bytes then says, for munmap): anonymous memory reads as
 * zero until written, so a sparse table costs only the pages it touches,
 * and MAP_NORESERVE reserves no swap for the rest. NULL when it fails. */
static void *zero_map(size_t *bytes)
{
	size_t size = *bytes;
	if (size >= ARENA_HUGE_CHUNK)
		size = (size + ARENA_HUGE_CHUNK - 1) & ~(size_t)(ARENA_HUGE_CHUNK - 1);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	if (size >= ARENA_HUGE_CHUNK)
		(void)madvise(p, size, MADV_HUGEPAGE); /* a hint; fine to fail */
#endif
	*bytes = size;
	return p;
}

/* ------------------------------------------------------------ torch dtypes */

/* Every dtype torch can save, with its storage class where it has one (the
 * frozen `_dtype_to_storage_type_map`) and its safetensors name where one
 * exists. CB_DTYPE_INVALID: torch has it, safetensors does not (a tensor of
 * it is refused, not dropped). */
struct torch_dtype {
	const char *name;
	const char *storage; /* "<X>Storage", or NULL for the v3-only dtypes */
	enum cb_dtype st;
	unsigned elsize;
};

static const struct torch_dtype torch_dtypes[] = {
	{"float64", "DoubleStorage", CB_DTYPE_F64, 8},
	{"float32", "FloatStorage", CB_DTYPE_F32, 4},
	{"float16", "HalfStorage", CB_DTYPE_F16, 2},
	{"bfloat16", "BFloat16Storage", CB_DTYPE_BF16, 2},
	{"int64", "LongStorage", CB_DTYPE_I64, 8},
	{"int32", "IntStorage", CB_DTYPE_I32, 4},
	{"int16", "ShortStorage", CB_DTYPE_I16, 2},
	{"int8", "CharStorage", CB_DTYPE_I8, 1},
	{"uint8", "ByteStorage", CB_DTYPE_U8, 1},
	{"bool", "BoolStorage", CB_DTYPE_BOOL, 1},
	{"complex64", "ComplexFloatStorage", CB_DTYPE_C64, 8},
	{"complex128", "ComplexDoubleStorage", CB_DTYPE_INVALID, 16},
	{"qint8", "QInt8Storage", CB_DTYPE_INVALID, 1},
	{"quint8", "QUInt8Storage", CB_DTYPE_INVALID, 1},
	{"qint32", "QInt32Storage", CB_DTYPE_INVALID, 4},
	{"quint4x2", "QUInt4x2Storage", CB_DTYPE_INVALID, 1},
	{"quint2x4", "QUInt2x4Storage", CB_DTYPE_INVALID, 1},
	{"complex32", NULL, CB_DTYPE_INVALID, 4},
	{"float8_e5m2", NULL, CB_DTYPE_F8_E5M2, 1},
	{"float8_e4m3fn", NULL, CB_DTYPE_F8_E4M3, 1},
	{"float8_e5m2fnuz", NULL, CB_DTYPE_F8_E5M2FNUZ, 1},
	{"float8_e4m3fnuz", NULL, CB_DTYPE_F8_E4M3FNUZ, 1},
	{"float8_e8m0fnu", NULL, CB_DTYPE_F8_E8M0, 1},
	/* Two 4-bit values per byte along the last dimension: safetensors' F4
	 * counts them singly, so the shapes would differ. */
	{"float4_e2m1fn_x2", NULL, CB_DTYPE_INVALID, 1},
	{"uint16", NULL, CB_DTYPE_U16, 2},
	{"uint32", NULL, CB_DTYPE_U32, 4},
	{"uint64", NULL, CB_DTYPE_U64, 8},
	{"bits8", NULL, CB_DTYPE_INVALID, 1},
	{"bits16", NULL, CB_DTYPE_INVALID, 2},
	{"bits1x8", NULL, CB_DTYPE_INVALID, 1},
	{"bits2x4", NULL, CB_DTYPE_INVALID, 1},
	{"bits4x2", NULL, CB_DTYPE_INVALID, 1},
};
#define N_TORCH_DTYPES (sizeof torch_dtypes / sizeof torch_dtypes[0])

/* By the name pointer that a storage or tensor took from the table. */
static int dtype_index_of(const char *name)
{
	for (size_t k = 0; k < N_TORCH_DTYPES; k++)
		if (name == torch_dtypes[k].name)
			return (int)k;
	return -1;
}

/* ------------------------------------------------------------ the allowlist */

enum gkind {
	G_ORDERED_DICT,
	G_COUNTER,
	G_SET,
	G_COMPLEX,
	G_BYTEARRAY,
	G_ENCODE,
	G_SIZE,
	G_DEVICE,
	G_TENSOR,
	G_PARAMETER,
	G_REBUILD_V2,
	G_REBUILD_V3,
	G_REBUILD_OLD,
	G_REBUILD_PARAMETER,
	G_REBUILD_PARAMETER_STATE,
	G_REBUILD_FROM_TYPE,
	G_STORAGE,     /* arg: index into torch_dtypes, or -1 for UntypedStorage */
	G_DTYPE,       /* arg: index into torch_dtypes */
	G_INERT,       /* a constant that nothing may call (tensor classes, qschemes) */
	G_UNSUPPORTED, /* allowed by torch's weights-only unpickler, not by this reader */
};

struct global_def {
	const char *module, *name;
	enum gkind kind;
	const char *why; /* G_UNSUPPORTED: what it is */
};

/* torch/_weights_only_unpickler.py::_get_allowed_globals, less the entries
 * that are generated from torch_dtypes below. Nothing else resolves. */
static const struct global_def globals[] = {
	{"collections", "OrderedDict", G_ORDERED_DICT, NULL},
	{"collections", "Counter", G_COUNTER, NULL},
	{"builtins", "set", G_SET, NULL},
	{"builtins", "complex", G_COMPLEX, NULL},
	{"builtins", "bytearray", G_BYTEARRAY, NULL},
	{"_codecs", "encode", G_ENCODE, NULL},
	{"torch", "Size", G_SIZE, NULL},
	{"torch", "device", G_DEVICE, NULL},
	{"torch", "Tensor", G_TENSOR, NULL},
	{"torch._tensor", "Tensor", G_TENSOR, NULL},
	{"torch.nn.parameter", "Parameter", G_PARAMETER, NULL},
	{"torch._utils", "_rebuild_tensor_v2", G_REBUILD_V2, NULL},
	{"torch._utils", "_rebuild_tensor_v3", G_REBUILD_V3, NULL},
	{"torch._utils", "_rebuild_tensor", G_REBUILD_OLD, NULL},
	{"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, NULL},
	{"torch._utils", "_rebuild_parameter_with_state", G_REBUILD_PARAMETER_STATE, NULL},
	{"torch._tensor", "_rebuild_from_type_v2", G_REBUILD_FROM_TYPE, NULL},
	{"torch", "UntypedStorage", G_STORAGE, NULL},
	{"torch.storage", "UntypedStorage", G_STORAGE, NULL},
	{"torch", "per_tensor_affine", G_INERT, NULL},
	{"torch", "per_tensor_symmetric", G_INERT, NULL},
	{"torch", "per_channel_affine", G_INERT, NULL},
	{"torch", "per_channel_symmetric", G_INERT, NULL},
	{"torch", "per_channel_affine_float_qparams", G_INERT, NULL},
	{"torch.storage", "TypedStorage", G_UNSUPPORTED, "a pickled TypedStorage class"},
	{"torch._utils", "_rebuild_qtensor", G_UNSUPPORTED, "quantized tensors"},
	{"torch._utils", "_rebuild_sparse_tensor", G_UNSUPPORTED, "sparse tensors"},
	{"torch.serialization", "_get_layout", G_UNSUPPORTED, "sparse tensor layouts"},
	{"torch._utils", "_rebuild_meta_tensor_no_storage", G_UNSUPPORTED, "meta tensors"},
	{"torch._utils", "_rebuild_nested_tensor", G_UNSUPPORTED, "nested tensors"},
	{"torch._utils", "_rebuild_wrapper_subclass", G_UNSUPPORTED, "tensor subclasses"},
	{"torch._utils", "_rebuild_device_tensor_from_numpy", G_UNSUPPORTED,
	 "device tensors saved as numpy arrays"},
	{"torch._utils", "_rebuild_device_tensor_from_cpu_tensor", G_UNSUPPORTED,
	 "device tensors saved as CPU tensors"},
};

/* A resolved global: the table entry's kind plus its dtype argument. */
struct resolved_global {
	enum gkind kind;
	int arg;
	const char *why;
};

static bool is_storage_module(const char *module)
{
	return strcmp(module, "torch") == 0 || strcmp(module, "torch.cuda") == 0;
}

/* The tensor classes (torch.FloatTensor, torch.cuda.HalfTensor, ...):
 * "<X>Tensor" where "<X>Storage" is a storage class. */
static bool is_tensor_class(const char *name)
{
	size_t len = strlen(name);
	if (len <= 6 || strcmp(name + len - 6, "Tensor") != 0)
		return false;
	for (size_t k = 0; k < N_TORCH_DTYPES; k++) {
		const char *s = torch_dtypes[k].storage;
		if (s && strlen(s) == len + 1 && strncmp(s, name, len - 6) == 0)
			return true;
	}
	return false;
}

static bool is_subbyte_int(const char *name)
{
	const char *digit = strncmp(name, "uint", 4) == 0  ? name + 4
			    : strncmp(name, "int", 3) == 0 ? name + 3
							   : NULL;
	return digit && digit[0] >= '1' && digit[0] <= '7' && digit[1] == '\0';
}

static bool resolve_global(const char *module, const char *name, struct resolved_global *out)
{
	/* Python 2 names, as protocol-2 pickles write them (fix_imports). */
	if (strcmp(module, "__builtin__") == 0)
		module = "builtins";
	for (size_t k = 0; k < sizeof globals / sizeof globals[0]; k++) {
		if (strcmp(globals[k].module, module) == 0 && strcmp(globals[k].name, name) == 0) {
			*out = (struct resolved_global){globals[k].kind, -1, globals[k].why};
			return true;
		}
	}
	for (size_t k = 0; k < N_TORCH_DTYPES; k++) {
		if (strcmp(module, "torch") == 0 && strcmp(torch_dtypes[k].name, name) == 0) {
			*out = (struct resolved_global){G_DTYPE, (int)k, NULL};
			return true;
		}
		if (is_storage_module(module) && torch_dtypes[k].storage &&
		    strcmp(torch_dtypes[k].storage, name) == 0) {
			*out = (struct resolved_global){G_STORAGE, (int)k, NULL};
			return true;
		}
	}
	if (is_storage_module(module) && is_tensor_class(name)) {
		*out = (struct resolved_global){G_INERT, -1, NULL};
		return true;
	}
	/* The sub-byte integer dtypes (torch.uint1..7, int1..7) are allowed as
	 * values; no storage or tensor of them can be saved. */
	if (strcmp(module, "torch") == 0 && is_subbyte_int(name)) {
		*out = (struct resolved_global){G_INERT, -1, NULL};
		return true;
	}
	return false;
}

/* ------------------------------------------------------------ storage keys */

/* Persistent-id key -> storage, so every id naming a key yields the same
 * storage (shared weights stay shared). torch's keys are the decimals
 * 0, 1, 2, ...: a key that spells a number below index_limit in that form
 * (no sign, no leading zero) is looked up by its value in by_index, a
 * zero_map made at the first such key; any other key goes through an open
 * addressing table hashed with FNV-1a. Which of the two a key goes to
 * depends on the key alone, so one key always finds one storage. */
struct storage_table {
	struct cb_pk_storage **slots;
	size_t cap, n;
	struct cb_pk_storage **by_index;
	size_t index_limit, index_bytes;
};

/* The key's value when torch could have written it as an index below
 * `limit`; false for anything else. */
static bool key_index(const char *key, size_t limit, size_t *out)
{
	if (*key < '0' || *key > '9' || (key[0] == '0' && key[1] != '\0'))
		return false;
	size_t v = 0;
	for (; *key; key++) {
		if (*key < '0' || *key > '9')
			return false;
		v = v * 10 + (size_t)(*key - '0');
		if (v >= limit) /* limit < SIZE_MAX / 10: cannot overflow first */
			return false;
	}
	*out = v;
	return true;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

static struct cb_pk_storage **table_slot(struct storage_table *t, const char *key)
{
	size_t i = (size_t)fnv1a(key) & (t->cap - 1);
	while (t->slots[i] && strcmp(t->slots[i]->key, key) != 0)
		i = (i + 1) & (t->cap - 1);
	return &t->slots[i];
}

static bool table_grow(struct storage_table *t)
{
	size_t cap = t->cap ? t->cap * 2 : 64;
	struct cb_pk_storage **old = t->slots;
	size_t old_cap = t->cap;
	t->slots = calloc(cap, sizeof *t->slots);
	if (!t->slots) {
		t->slots = old;
		return false;
	}
	t->cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i])
			*table_slot(t, old[i]->key) = old[i];
	free(old);
	return true;
}

static void table_free(struct storage_table *t)
{
	if (t) {
		free(t->slots);
		if (t->by_index)
			munmap(t->by_index, t->index_bytes);
	}
	free(t);
}

/* ------------------------------------------------------------ the machine */

struct vm {
	const uint8_t *buf;
	size_t len, pos, op_pos;
	const struct cb_pk_options *opt;
	struct cb_error *err;
	struct cb_pickle *out;
	struct arena *arena;
	struct storage_table *table;
	size_t storages_cap;
	struct cb_pk_value **stack;
	size_t sp, stack_cap;
	size_t marks[CB_PK_MAX_MARKS];
	size_t n_marks;
	/* The memo is one lazily zeroed mapping of memo_limit slots, made at
	 * the first PUT: untouched slots cost no memory, and a PUT needs no
	 * growth (growing by realloc + memset touched every page twice). */
	struct cb_pk_value **memo;
	size_t memo_bytes, memo_count, memo_limit;
	/* Shared immutable values: None, True, False, the empty tuple and the
	 * ints -1..255 (most of a state dict's sizes, strides and offsets). */
	struct cb_pk_value *none, *yes, *no, *empty_tuple;
	struct cb_pk_value *small_ints; /* SMALL_INT_MIN.. */
};

CB_PRINTF(3, 4)
static int vm_fail(struct vm *vm, int code, const char *fmt, ...)
{
	char msg[600], where[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	const char *label = vm->opt->label;
	snprintf(where, sizeof where, "%s%sbyte %llu", label ? label : "", label ? " " : "",
		 (unsigned long long)(vm->opt->base_offset + vm->op_pos));
	return cb_error_set(vm->err, code, CB_HERE, vm->opt->path, where, "%s", msg);
}

static int vm_nomem(struct vm *vm)
{
	if (vm->arena->over_limit)
		return vm_fail(vm, CB_ELIMIT,
			       "the pickle's objects need more than %llu bytes of memory",
			       (unsigned long long)vm->arena->limit);
	return vm_fail(vm, CB_ENOMEM, "out of memory");
}

static struct cb_pk_value *new_value(struct vm *vm, enum cb_pk_type type)
{
	struct cb_pk_value *v = arena_alloc(vm->arena, sizeof *v);
	if (v) {
		memset(v, 0, sizeof *v);
		v->type = type;
	}
	return v;
}

const char *cb_pk_type_name(const struct cb_pk_value *v)
{
	static const char *const names[] = {
		[CB_PK_NONE] = "None",     [CB_PK_BOOL] = "bool",       [CB_PK_INT] = "int",
		[CB_PK_BIGINT] = "int",    [CB_PK_FLOAT] = "float",     [CB_PK_COMPLEX] = "complex",
		[CB_PK_STR] = "str",       [CB_PK_BYTES] = "bytes",     [CB_PK_TUPLE] = "tuple",
		[CB_PK_LIST] = "list",     [CB_PK_DICT] = "dict",       [CB_PK_SET] = "set",
		[CB_PK_TENSOR] = "Tensor", [CB_PK_STORAGE] = "storage", [CB_PK_GLOBAL] = "global",
		[CB_PK_DEVICE] = "device",
	};
	if (v->type == CB_PK_GLOBAL)
		return v->u.global.qualname;
	return v->type <= CB_PK_DEVICE ? names[v->type] : "?";
}

/* --- reading operands */

static int need(struct vm *vm, size_t n)
{
	if (vm->len - vm->pos >= n)
		return CB_OK;
	if (vm->opt->truncated_out)
		*vm->opt->truncated_out = true;
	return vm_fail(vm, CB_EFORMAT, "the pickle ends inside an opcode (before STOP)");
}

static uint64_t read_le(struct vm *vm, size_t n)
{
	uint64_t v = 0;
	for (size_t k = 0; k < n; k++)
		v |= (uint64_t)vm->buf[vm->pos + k] << (8 * k);
	vm->pos += n;
	return v;
}

/* --- the stack; values below the innermost MARK are out of reach, as in
 * CPython's unpickler */

static size_t fence(const struct vm *vm)
{
	return vm->n_marks ? vm->marks[vm->n_marks - 1] : 0;
}

static int push(struct vm *vm, struct cb_pk_value *v)
{
	if (!v)
		return vm_nomem(vm);
	if (vm->sp == vm->stack_cap) {
		if (vm->stack_cap >= CB_PK_MAX_STACK)
			return vm_fail(vm, CB_ELIMIT, "the stack holds more than %u values",
				       CB_PK_MAX_STACK);
		size_t cap = vm->stack_cap ? vm->stack_cap * 2 : 64;
		struct cb_pk_value **s = realloc(vm->stack, cap * sizeof *s);
		if (!s)
			return vm_fail(vm, CB_ENOMEM, "out of memory");
		vm->stack = s;
		vm->stack_cap = cap;
	}
	vm->stack[vm->sp++] = v;
	return CB_OK;
}

static int need_stack(struct vm *vm, size_t n, const char *op)
{
	if (vm->sp - fence(vm) >= n)
		return CB_OK;
	return vm_fail(vm, CB_EFORMAT, "%s needs %zu value%s on the stack (stack underflow)", op, n,
		       n == 1 ? "" : "s");
}

static struct cb_pk_value *pop(struct vm *vm)
{
	return vm->stack[--vm->sp];
}

static int pop_mark(struct vm *vm, const char *op, size_t *mark_out)
{
	if (vm->n_marks == 0)
		return vm_fail(vm, CB_EFORMAT, "%s without a MARK", op);
	*mark_out = vm->marks[--vm->n_marks];
	return CB_OK;
}

/* --- containers */

static struct cb_pk_value *new_seq(struct vm *vm, enum cb_pk_type type,
				   struct cb_pk_value *const *items, size_t n)
{
	struct cb_pk_value *v = new_value(vm, type);
	if (!v)
		return NULL;
	if (n) {
		v->u.seq.items = arena_alloc(vm->arena, n * sizeof *items);
		if (!v->u.seq.items)
			return NULL;
		memcpy(v->u.seq.items, items, n * sizeof *items);
	}
	v->u.seq.n = v->u.seq.cap = n;
	return v;
}

/* Grows an item array to hold `extra` more, doubling (old arrays stay in
 * the arena until the parse is freed: bounded by 2x). */
static bool grow(struct vm *vm, struct cb_pk_value ***items, size_t *cap, size_t n, size_t extra)
{
	if (*cap - n >= extra)
		return true;
	size_t want = n + extra, new_cap = *cap ? *cap : 4;
	while (new_cap < want)
		new_cap *= 2;
	struct cb_pk_value **fresh = arena_alloc(vm->arena, new_cap * sizeof *fresh);
	if (!fresh)
		return false;
	if (n)
		memcpy(fresh, *items, n * sizeof *fresh);
	*items = fresh;
	*cap = new_cap;
	return true;
}

static int seq_extend(struct vm *vm, struct cb_pk_value *seq, struct cb_pk_value *const *items,
		      size_t n)
{
	/* APPENDS after an empty MARK adds nothing; the items array may still
	 * be NULL, and NULL + 0 is undefined (found by fuzz_unpickle). */
	if (n == 0)
		return CB_OK;
	if (!grow(vm, &seq->u.seq.items, &seq->u.seq.cap, seq->u.seq.n, n))
		return vm_nomem(vm);
	memcpy(seq->u.seq.items + seq->u.seq.n, items, n * sizeof *items);
	seq->u.seq.n += n;
	return CB_OK;
}

/* Duplicate keys are kept as given (Python would keep the last); the
 * checkpoint reader refuses two tensors of one name instead. */
static int dict_set(struct vm *vm, struct cb_pk_value *dict, struct cb_pk_value *const *kv,
		    size_t pairs)
{
	/* SETITEMS after an empty MARK: nothing to add, and kv may be NULL
	 * (NULL + 0 is undefined; found by fuzz_unpickle). */
	if (pairs == 0)
		return CB_OK;
	if (!grow(vm, &dict->u.dict.kv, &dict->u.dict.cap, 2 * dict->u.dict.n, 2 * pairs))
		return vm_nomem(vm);
	memcpy(dict->u.dict.kv + 2 * dict->u.dict.n, kv, 2 * pairs * sizeof *kv);
	dict->u.dict.n += pairs;
	return CB_OK;
}

/* --- opcodes: scalars and strings */

#define SMALL_INT_MIN (-1)
#define SMALL_INT_COUNT 257

static int op_int(struct vm *vm, int64_t value)
{
	if (value >= SMALL_INT_MIN && value < SMALL_INT_MIN + SMALL_INT_COUNT)
		return push(vm, &vm->small_ints[value - SMALL_INT_MIN]);
	struct cb_pk_value *v = new_value(vm, CB_PK_INT);
	if (v)
		v->u.i = value;
	return push(vm, v);
}

/* BININT (signed 32-bit), BININT1 and BININT2 (unsigned). */
static int op_fixed_int(struct vm *vm, size_t n)
{
	int rc = need(vm, n);
	if (rc != CB_OK)
		return rc;
	uint64_t raw = read_le(vm, n);
	return op_int(vm, n == 4 ? (int64_t)(int32_t)(uint32_t)raw : (int64_t)raw);
}

static int op_long1(struct vm *vm)
{
	int rc = need(vm, 1);
	if (rc != CB_OK)
		return rc;
	size_t n = vm->buf[vm->pos++];
	if ((rc = need(vm, n)) != CB_OK)
		return rc;
	if (n <= 8) {
		uint64_t raw = read_le(vm, n);
		if (n > 0 && n < 8 && (raw >> (8 * n - 1)) & 1)
			raw |= ~(uint64_t)0 << (8 * n); /* sign-extend */
		return op_int(vm, (int64_t)raw);
	}
	/* Wider than 64 bits: kept as bytes; such an int can never be a size. */
	struct cb_pk_value *v = new_value(vm, CB_PK_BIGINT);
	char *bytes = v ? arena_alloc(vm->arena, n) : NULL;
	if (!bytes)
		return vm_nomem(vm);
	memcpy(bytes, vm->buf + vm->pos, n);
	vm->pos += n;
	v->u.str.s = bytes;
	v->u.str.len = n;
	return push(vm, v);
}

static int op_binfloat(struct vm *vm)
{
	int rc = need(vm, 8);
	if (rc != CB_OK)
		return rc;
	uint64_t raw = 0;
	for (int k = 0; k < 8; k++) /* big-endian, unlike every other operand */
		raw = raw << 8 | vm->buf[vm->pos++];
	struct cb_pk_value *v = new_value(vm, CB_PK_FLOAT);
	if (v)
		memcpy(&v->u.f, &raw, sizeof raw);
	return push(vm, v);
}

/* A string or bytes operand of `len_bytes` little-endian length bytes. */
static int op_string(struct vm *vm, size_t len_bytes, enum cb_pk_type type)
{
	int rc = need(vm, len_bytes);
	if (rc != CB_OK)
		return rc;
	uint64_t n = read_le(vm, len_bytes);
	if (n > vm->len - vm->pos) {
		if (vm->opt->truncated_out)
			*vm->opt->truncated_out = true;
		return vm_fail(vm, CB_EFORMAT,
			       "a string of %llu bytes runs past the end of the pickle",
			       (unsigned long long)n);
	}
	const uint8_t *s = vm->buf + vm->pos;
	uint64_t bad = 0;
	if (type == CB_PK_STR && !cb_utf8_valid(s, (size_t)n, &bad))
		return vm_fail(vm, CB_EFORMAT, "a string is not valid UTF-8 (at its byte %llu)",
			       (unsigned long long)bad);
	struct cb_pk_value *v = new_value(vm, type);
	char *copy = v ? arena_alloc(vm->arena, (size_t)n + 1) : NULL;
	if (!copy)
		return vm_nomem(vm);
	memcpy(copy, s, (size_t)n);
	copy[n] = '\0';
	vm->pos += (size_t)n;
	v->u.str.s = copy;
	v->u.str.len = (size_t)n;
	return push(vm, v);
}

/* --- memo */

/* Maps the memo (zero_map: slots read as NULL until written; a big memo
 * gets huge pages, since first touches of fresh pages dominate parsing). */
static int memo_map(struct vm *vm)
{
	size_t bytes = vm->memo_limit * sizeof *vm->memo;
	if (!(vm->memo = zero_map(&bytes)))
		return vm_fail(vm, CB_ENOMEM, "out of memory");
	vm->memo_bytes = bytes;
	return CB_OK;
}

static int memo_put(struct vm *vm, uint64_t index)
{
	int rc = need_stack(vm, 1, "PUT");
	if (rc != CB_OK)
		return rc;
	if (index >= vm->memo_limit)
		return vm_fail(vm, CB_ELIMIT, "memo index %llu is over the limit of %zu",
			       (unsigned long long)index, vm->memo_limit);
	if (!vm->memo && (rc = memo_map(vm)) != CB_OK)
		return rc;
	if (!vm->memo[index])
		vm->memo_count++;
	vm->memo[index] = vm->stack[vm->sp - 1];
	return CB_OK;
}

static int memo_get(struct vm *vm, uint64_t index)
{
	if (!vm->memo || index >= vm->memo_limit || !vm->memo[index])
		return vm_fail(vm, CB_EFORMAT, "memo entry %llu is read before it is written",
			       (unsigned long long)index);
	return push(vm, vm->memo[index]);
}

static int op_memo(struct vm *vm, size_t n, int (*fn)(struct vm *, uint64_t))
{
	int rc = need(vm, n);
	return rc != CB_OK ? rc : fn(vm, read_le(vm, n));
}

/* --- GLOBAL */

static void printable(char *dst, size_t size, const char *src)
{
	size_t k = 0;
	for (; src[k] && k + 1 < size; k++)
		dst[k] = src[k] >= 0x20 && src[k] < 0x7f ? src[k] : '?';
	dst[k] = '\0';
}

static int push_global(struct vm *vm, const char *module, const char *name)
{
	struct resolved_global g;
	char m[CB_PK_MAX_GLOBAL_NAME + 1], n[CB_PK_MAX_GLOBAL_NAME + 1];
	printable(m, sizeof m, module);
	printable(n, sizeof n, name);
	if (!resolve_global(module, name, &g))
		return vm_fail(vm, CB_EUNSAFE,
			       "refused global %s.%s: not in the weights-only allowlist "
			       "(nothing is imported or run)",
			       m, n);
	if (g.kind == G_UNSUPPORTED)
		return vm_fail(vm, CB_EUNSUPPORTED, "%s.%s: %s are not supported", m, n, g.why);
	struct cb_pk_value *v = new_value(vm, CB_PK_GLOBAL);
	char *qualname = v ? arena_alloc(vm->arena, strlen(m) + strlen(n) + 2) : NULL;
	if (!qualname)
		return vm_nomem(vm);
	sprintf(qualname, "%s.%s", m, n);
	v->u.global.qualname = qualname;
	v->u.global.kind = (int)g.kind;
	v->u.global.arg = g.arg;
	return push(vm, v);
}

/* Reads one "text\n" line of a GLOBAL operand, bounded. */
static int global_line(struct vm *vm, char *out)
{
	size_t avail = vm->len - vm->pos;
	size_t scan = avail < CB_PK_MAX_GLOBAL_NAME + 1 ? avail : CB_PK_MAX_GLOBAL_NAME + 1;
	const uint8_t *nl = memchr(vm->buf + vm->pos, '\n', scan);
	if (!nl) {
		if (avail <= CB_PK_MAX_GLOBAL_NAME)
			return need(vm, avail + 1);
		return vm_fail(vm, CB_ELIMIT, "a GLOBAL name is longer than %u bytes",
			       CB_PK_MAX_GLOBAL_NAME);
	}
	size_t n = (size_t)(nl - (vm->buf + vm->pos));
	memcpy(out, vm->buf + vm->pos, n);
	out[n] = '\0';
	if (memchr(out, '\0', n))
		return vm_fail(vm, CB_EFORMAT, "a GLOBAL name holds a NUL byte");
	vm->pos += n + 1;
	return CB_OK;
}

static int op_global(struct vm *vm)
{
	char module[CB_PK_MAX_GLOBAL_NAME + 1], name[CB_PK_MAX_GLOBAL_NAME + 1];
	int rc = global_line(vm, module);
	if (rc == CB_OK)
		rc = global_line(vm, name);
	return rc != CB_OK ? rc : push_global(vm, module, name);
}

static int op_stack_global(struct vm *vm)
{
	int rc = need_stack(vm, 2, "STACK_GLOBAL");
	if (rc != CB_OK)
		return rc;
	struct cb_pk_value *name = pop(vm), *module = pop(vm);
	if (name->type != CB_PK_STR || module->type != CB_PK_STR)
		return vm_fail(vm, CB_EFORMAT, "STACK_GLOBAL needs two strings");
	if (module->u.str.len > CB_PK_MAX_GLOBAL_NAME || name->u.str.len > CB_PK_MAX_GLOBAL_NAME)
		return vm_fail(vm, CB_ELIMIT, "a GLOBAL name is longer than %u bytes",
			       CB_PK_MAX_GLOBAL_NAME);
	return push_global(vm, module->u.str.s, name->u.str.s);
}

/* ------------------------------------------------------------ storages */

static int str_or_int_key(struct vm *vm, const struct cb_pk_value *v, const char **out)
{
	if (v->type == CB_PK_STR) {
		*out = v->u.str.s;
		return CB_OK;
	}
	if (v->type != CB_PK_INT)
		return vm_fail(vm, CB_EFORMAT, "a storage key is a %s, not a str",
			       cb_pk_type_name(v));
	char *s = arena_alloc(vm->arena, 24);
	if (!s)
		return vm_nomem(vm);
	snprintf(s, 24, "%lld", (long long)v->u.i);
	*out = s;
	return CB_OK;
}

static int add_storage(struct vm *vm, const char *key, struct cb_pk_storage **out, bool *created)
{
	*created = false;
	struct storage_table *t = vm->table;
	struct cb_pk_storage **slot;
	size_t index;
	bool hashed = !key_index(key, t->index_limit, &index);
	if (!hashed) {
		if (!t->by_index) {
			t->index_bytes = t->index_limit * sizeof *t->by_index;
			if (!(t->by_index = zero_map(&t->index_bytes)))
				return vm_fail(vm, CB_ENOMEM, "out of memory");
		}
		slot = &t->by_index[index];
	} else {
		if ((t->n + 1) * 2 > t->cap && !table_grow(t))
			return vm_fail(vm, CB_ENOMEM, "out of memory");
		slot = table_slot(t, key);
	}
	if (*slot) {
		*out = *slot;
		return CB_OK;
	}
	struct cb_pickle *p = vm->out;
	if (p->n_storages == vm->storages_cap) {
		size_t cap = vm->storages_cap ? vm->storages_cap * 2 : 16;
		struct cb_pk_storage **s = realloc(p->storages, cap * sizeof *s);
		if (!s)
			return vm_fail(vm, CB_ENOMEM, "out of memory");
		p->storages = s;
		vm->storages_cap = cap;
	}
	struct cb_pk_storage *st = arena_alloc(vm->arena, sizeof *st);
	if (!st)
		return vm_nomem(vm);
	*st = (struct cb_pk_storage){
		.key = key, .dtype = CB_DTYPE_INVALID, .elsize = 1, .index = p->n_storages};
	p->storages[p->n_storages++] = st;
	*slot = st;
	t->n += hashed; /* the hash table's load */
	*out = st;
	*created = true;
	return CB_OK;
}

/* Fixes a storage's element type; a key viewed as two types is refused
 * (torch.save refuses to write one). */
static int storage_set_dtype(struct vm *vm, struct cb_pk_storage *st, int dtype_index)
{
	const struct torch_dtype *td = &torch_dtypes[dtype_index];
	if (st->torch_dtype && st->torch_dtype != td->name)
		return vm_fail(vm, CB_EFORMAT, "storage \"%.100s\" is viewed as both %s and %s",
			       st->key, st->torch_dtype, td->name);
	if (st->torch_dtype)
		return CB_OK;
	if (st->nbytes % td->elsize != 0)
		return vm_fail(vm, CB_EFORMAT,
			       "storage \"%.100s\" of %llu bytes is not a whole number of %s "
			       "elements",
			       st->key, (unsigned long long)st->nbytes, td->name);
	st->torch_dtype = td->name;
	st->dtype = td->st;
	st->elsize = td->elsize;
	return CB_OK;
}

/* ('storage', storage_type, key, location, numel[, view_metadata]) */
static int persistent_load(struct vm *vm, const struct cb_pk_value *pid, struct cb_pk_value **out)
{
	size_t want = vm->opt->legacy ? 6 : 5;
	if (pid->type != CB_PK_TUPLE || pid->u.seq.n == 0)
		return vm_fail(vm, CB_EFORMAT, "a persistent id is a %s, not a tuple",
			       cb_pk_type_name(pid));
	struct cb_pk_value *const *f = pid->u.seq.items;
	if (f[0]->type == CB_PK_STR && strcmp(f[0]->u.str.s, "module") == 0)
		return vm_fail(vm, CB_EUNSAFE,
			       "a pickled module class with its source code (persistent id "
			       "'module') is refused");
	if (f[0]->type != CB_PK_STR || strcmp(f[0]->u.str.s, "storage") != 0)
		return vm_fail(vm, CB_EFORMAT, "a persistent id is not a ('storage', ...) tuple");
	if (pid->u.seq.n != want)
		return vm_fail(vm, CB_EFORMAT, "a storage persistent id has %zu fields, not %zu",
			       pid->u.seq.n, want);
	if (f[1]->type != CB_PK_GLOBAL || f[1]->u.global.kind != G_STORAGE)
		return vm_fail(vm, CB_EFORMAT, "a persistent id names %s, not a storage class",
			       cb_pk_type_name(f[1]));
	if (f[3]->type != CB_PK_STR && f[3]->type != CB_PK_BYTES)
		return vm_fail(vm, CB_EFORMAT, "a storage location is a %s, not a str",
			       cb_pk_type_name(f[3]));
	if (f[4]->type != CB_PK_INT || f[4]->u.i < 0)
		return vm_fail(vm, CB_EFORMAT, "a storage size is not a non-negative 64-bit int");
	const char *key = NULL;
	int rc = str_or_int_key(vm, f[2], &key);
	if (rc != CB_OK)
		return rc;
	int dtype_index = f[1]->u.global.arg; /* -1: UntypedStorage, numel in bytes */
	uint64_t numel = (uint64_t)f[4]->u.i, nbytes = numel;
	if (dtype_index >= 0 &&
	    __builtin_mul_overflow(numel, (uint64_t)torch_dtypes[dtype_index].elsize, &nbytes))
		return vm_fail(vm, CB_EFORMAT, "storage \"%.100s\": %llu elements overflow 64 bits",
			       key, (unsigned long long)numel);
	struct cb_pk_storage *st = NULL;
	bool fresh;
	if ((rc = add_storage(vm, key, &st, &fresh)) != CB_OK)
		return rc;
	if (fresh) {
		st->numel = numel;
		st->nbytes = nbytes;
	} else if (st->nbytes != nbytes) {
		return vm_fail(vm, CB_EFORMAT,
			       "persistent ids disagree about the size of storage \"%.100s\" "
			       "(%llu vs %llu bytes)",
			       key, (unsigned long long)st->nbytes, (unsigned long long)nbytes);
	}
	if (dtype_index >= 0 && (rc = storage_set_dtype(vm, st, dtype_index)) != CB_OK)
		return rc;
	struct cb_pk_value *v = new_value(vm, CB_PK_STORAGE);
	if (!v)
		return vm_nomem(vm);
	v->u.storage.storage = st;
	v->u.storage.numel = numel;
	v->u.storage.typed = dtype_index >= 0;
	if (vm->opt->legacy && f[5]->type != CB_PK_NONE) {
		/* A legacy storage view: (view_key, offset, size) in elements. */
		const struct cb_pk_value *m = f[5];
		uint64_t end;
		if (m->type != CB_PK_TUPLE || m->u.seq.n != 3 ||
		    m->u.seq.items[1]->type != CB_PK_INT || m->u.seq.items[1]->u.i < 0 ||
		    m->u.seq.items[2]->type != CB_PK_INT || m->u.seq.items[2]->u.i < 0)
			return vm_fail(vm, CB_EFORMAT, "malformed storage view metadata");
		v->u.storage.offset = (uint64_t)m->u.seq.items[1]->u.i;
		v->u.storage.numel = (uint64_t)m->u.seq.items[2]->u.i;
		if (__builtin_add_overflow(v->u.storage.offset, v->u.storage.numel, &end) ||
		    end > numel)
			return vm_fail(vm, CB_EFORMAT,
				       "a view of storage \"%.100s\" runs past its %llu elements",
				       key, (unsigned long long)numel);
	}
	*out = v;
	return CB_OK;
}

static int op_binpersid(struct vm *vm)
{
	int rc = need_stack(vm, 1, "BINPERSID");
	if (rc != CB_OK)
		return rc;
	struct cb_pk_value *v = NULL;
	if ((rc = persistent_load(vm, pop(vm), &v)) != CB_OK)
		return rc;
	return push(vm, v);
}

/* ------------------------------------------------------------ tensors */

static int size_arg(struct vm *vm, const struct cb_pk_value *v, const char *what, uint64_t *out)
{
	if (v->type != CB_PK_INT)
		return vm_fail(vm, CB_EFORMAT, "a tensor's %s is a %s, not a 64-bit int", what,
			       cb_pk_type_name(v));
	if (v->u.i < 0)
		return vm_fail(vm, CB_EFORMAT, "a tensor's %s is negative (%lld)", what,
			       (long long)v->u.i);
	*out = (uint64_t)v->u.i;
	return CB_OK;
}

static int dims_arg(struct vm *vm, const struct cb_pk_value *v, const char *what, uint32_t *rank,
		    uint64_t **out)
{
	if (v->type != CB_PK_TUPLE)
		return vm_fail(vm, CB_EFORMAT, "a tensor's %s is a %s, not a tuple", what,
			       cb_pk_type_name(v));
	if (v->u.seq.n > CB_PK_MAX_RANK)
		return vm_fail(vm, CB_ELIMIT, "a tensor has %zu dimensions, over the limit of %u",
			       v->u.seq.n, CB_PK_MAX_RANK);
	*rank = (uint32_t)v->u.seq.n;
	*out = arena_alloc(vm->arena, (v->u.seq.n ? v->u.seq.n : 1) * sizeof **out);
	if (!*out)
		return vm_nomem(vm);
	for (size_t d = 0; d < v->u.seq.n; d++) {
		int rc = size_arg(vm, v->u.seq.items[d], what, &(*out)[d]);
		if (rc != CB_OK)
			return rc;
	}
	return CB_OK;
}

/* The view must lie inside its storage: offset + Σ (size_d - 1)·stride_d <
 * elements, in checked 64-bit arithmetic (CVE-2026-24747's lesson). */
static int check_extent(struct vm *vm, const struct cb_pk_tensor *t, uint64_t offset,
			uint64_t elements)
{
	uint64_t last = offset;
	bool overflow = false;
	if (t->numel == 0) {
		if (offset <= elements)
			return CB_OK;
	} else {
		for (uint32_t d = 0; d < t->rank && !overflow; d++) {
			uint64_t step;
			overflow = __builtin_mul_overflow(t->shape[d] - 1, (uint64_t)t->stride[d],
							  &step) ||
				   __builtin_add_overflow(last, step, &last);
		}
		if (!overflow && last < elements)
			return CB_OK;
	}
	return vm_fail(vm, CB_EFORMAT,
		       "a tensor view (offset %llu, %u dims) reaches past the %llu elements of "
		       "storage \"%.100s\"",
		       (unsigned long long)offset, t->rank, (unsigned long long)elements,
		       t->storage->key);
}

/* storage (a STORAGE value), offset, size, stride -> a tensor value of
 * torch dtype `dtype_index`. */
static int make_tensor(struct vm *vm, const struct cb_pk_value *sv, int dtype_index,
		       struct cb_pk_value *const *args, bool requires_grad,
		       struct cb_pk_value **out)
{
	const struct torch_dtype *td = &torch_dtypes[dtype_index];
	if (td->st == CB_DTYPE_INVALID)
		return vm_fail(vm, CB_EUNSUPPORTED,
			       "a tensor of dtype torch.%s: safetensors has no such dtype, so "
			       "ckptbench cannot represent it",
			       td->name);
	struct cb_pk_tensor *t = arena_alloc(vm->arena, sizeof *t);
	struct cb_pk_value *v = new_value(vm, CB_PK_TENSOR);
	if (!t || !v)
		return vm_nomem(vm);
	*t = (struct cb_pk_tensor){.storage = sv->u.storage.storage,
				   .dtype = td->st,
				   .torch_dtype = td->name,
				   .elsize = td->elsize,
				   .requires_grad = requires_grad};
	uint64_t offset = 0, *shape = NULL, *stride = NULL;
	uint32_t stride_rank = 0;
	int rc = storage_set_dtype(vm, t->storage, dtype_index);
	if (rc == CB_OK)
		rc = size_arg(vm, args[1], "storage offset", &offset);
	if (rc == CB_OK)
		rc = dims_arg(vm, args[2], "size", &t->rank, &shape);
	if (rc == CB_OK)
		rc = dims_arg(vm, args[3], "stride", &stride_rank, &stride);
	if (rc != CB_OK)
		return rc;
	if (stride_rank != t->rank)
		return vm_fail(vm, CB_EFORMAT, "a tensor has %u sizes but %u strides", t->rank,
			       stride_rank);
	t->numel = 1;
	for (uint32_t d = 0; d < t->rank; d++) {
		if (__builtin_mul_overflow(t->numel, shape[d], &t->numel))
			return vm_fail(vm, CB_EFORMAT,
				       "a tensor's element count overflows 64 bits");
		if (stride[d] > (uint64_t)INT64_MAX)
			return vm_fail(vm, CB_EFORMAT, "a tensor's stride overflows");
	}
	uint64_t nbytes;
	if (__builtin_mul_overflow(t->numel, (uint64_t)td->elsize, &nbytes))
		return vm_fail(vm, CB_EFORMAT, "a tensor's byte size overflows 64 bits");
	t->shape = shape;
	t->stride = (const int64_t *)stride; /* all checked <= INT64_MAX */
	/* Untyped storages count bytes; their elements are bytes / elsize. */
	uint64_t elements =
		sv->u.storage.typed ? sv->u.storage.numel : sv->u.storage.numel / td->elsize;
	if ((rc = check_extent(vm, t, offset, elements)) != CB_OK)
		return rc;
	t->storage_offset = sv->u.storage.offset + offset; /* both within the record */
	v->u.tensor = t;
	vm->out->n_tensors++;
	*out = v;
	return CB_OK;
}

static int need_storage(struct vm *vm, const struct cb_pk_value *v, bool typed, const char *fn)
{
	if (v->type != CB_PK_STORAGE)
		return vm_fail(vm, CB_EFORMAT, "%s's first argument is a %s, not a storage", fn,
			       cb_pk_type_name(v));
	if (v->u.storage.typed != typed)
		return vm_fail(vm, CB_EFORMAT, "%s needs %s storage", fn,
			       typed ? "a typed" : "an untyped");
	return CB_OK;
}

/* Only an empty metadata dict is accepted: a lazily conjugated or negated
 * tensor's stored bytes are not what torch shows. */
static int check_tensor_metadata(struct vm *vm, const struct cb_pk_value *m)
{
	if (m->type != CB_PK_DICT)
		return vm_fail(vm, CB_EFORMAT, "tensor metadata is a %s, not a dict",
			       cb_pk_type_name(m));
	for (size_t i = 0; i < m->u.dict.n; i++) {
		const struct cb_pk_value *val = m->u.dict.kv[2 * i + 1];
		if (val->type == CB_PK_BOOL && !val->u.b)
			continue;
		return vm_fail(vm, CB_EUNSUPPORTED,
			       "a tensor with a lazy conjugate or negative bit is not supported");
	}
	return CB_OK;
}

static int bool_arg(struct vm *vm, const struct cb_pk_value *v, bool *out)
{
	if (v->type != CB_PK_BOOL)
		return vm_fail(vm, CB_EFORMAT, "requires_grad is a %s, not a bool",
			       cb_pk_type_name(v));
	*out = v->u.b;
	return CB_OK;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])
 * _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype[, metadata])
 * _rebuild_tensor(storage, offset, size, stride) */
static int rebuild_tensor(struct vm *vm, int kind, const struct cb_pk_value *args,
			  struct cb_pk_value **out)
{
	static const char *const names[] = {[G_REBUILD_V2] = "_rebuild_tensor_v2",
					    [G_REBUILD_V3] = "_rebuild_tensor_v3",
					    [G_REBUILD_OLD] = "_rebuild_tensor"};
	size_t n = args->u.seq.n, min = kind == G_REBUILD_OLD ? 4 : kind == G_REBUILD_V2 ? 6 : 7;
	struct cb_pk_value *const *a = args->u.seq.items;
	if (n < min || n > (kind == G_REBUILD_OLD ? 4 : min + 1))
		return vm_fail(vm, CB_EFORMAT, "%s takes %zu arguments, not %zu", names[kind], min,
			       n);
	int rc = need_storage(vm, a[0], kind != G_REBUILD_V3, names[kind]);
	if (rc != CB_OK)
		return rc;
	bool requires_grad = false;
	if (kind != G_REBUILD_OLD && (rc = bool_arg(vm, a[4], &requires_grad)) != CB_OK)
		return rc;
	if (kind != G_REBUILD_OLD && a[5]->type != CB_PK_DICT)
		return vm_fail(vm, CB_EFORMAT, "backward hooks are a %s, not a dict",
			       cb_pk_type_name(a[5]));
	if (n == min + 1 && (rc = check_tensor_metadata(vm, a[min])) != CB_OK)
		return rc;
	int dtype_index;
	if (kind == G_REBUILD_V3) {
		if (a[6]->type != CB_PK_GLOBAL || a[6]->u.global.kind != G_DTYPE)
			return vm_fail(vm, CB_EFORMAT, "_rebuild_tensor_v3's dtype is a %s",
				       cb_pk_type_name(a[6]));
		dtype_index = a[6]->u.global.arg;
	} else {
		/* A typed storage: the persistent id fixed its dtype. */
		dtype_index = dtype_index_of(a[0]->u.storage.storage->torch_dtype);
		if (dtype_index < 0)
			return vm_fail(vm, CB_EINTERNAL, "a typed storage without a dtype");
	}
	return make_tensor(vm, a[0], dtype_index, a, requires_grad, out);
}

static int copy_tensor(struct vm *vm, const struct cb_pk_value *src, bool parameter,
		       const bool *requires_grad, struct cb_pk_value **out)
{
	if (src->type != CB_PK_TENSOR)
		return vm_fail(vm, CB_EFORMAT, "a Parameter wraps a %s, not a tensor",
			       cb_pk_type_name(src));
	struct cb_pk_tensor *t = arena_alloc(vm->arena, sizeof *t);
	struct cb_pk_value *v = new_value(vm, CB_PK_TENSOR);
	if (!t || !v)
		return vm_nomem(vm);
	*t = *src->u.tensor;
	t->parameter = t->parameter || parameter;
	if (requires_grad)
		t->requires_grad = *requires_grad;
	v->u.tensor = t;
	*out = v;
	return CB_OK;
}

/* ------------------------------------------------------------ calls */

static bool is_global(const struct cb_pk_value *v, enum gkind kind)
{
	return v->type == CB_PK_GLOBAL && v->u.global.kind == (int)kind;
}

/* bytes from a str whose code points are all < 256 (latin-1), or the
 * str's own UTF-8 bytes. */
static int encode_bytes(struct vm *vm, const struct cb_pk_value *s, const char *encoding,
			struct cb_pk_value **out)
{
	bool latin1 = strcmp(encoding, "latin1") == 0 || strcmp(encoding, "latin-1") == 0 ||
		      strcmp(encoding, "iso-8859-1") == 0;
	if (!latin1 && strcmp(encoding, "utf-8") != 0 && strcmp(encoding, "utf8") != 0)
		return vm_fail(vm, CB_EUNSUPPORTED, "_codecs.encode to \"%.40s\" is not supported",
			       encoding);
	struct cb_pk_value *v = new_value(vm, CB_PK_BYTES);
	uint8_t *b = v ? arena_alloc(vm->arena, s->u.str.len + 1) : NULL;
	if (!b)
		return vm_nomem(vm);
	size_t n = 0;
	const uint8_t *p = (const uint8_t *)s->u.str.s, *end = p + s->u.str.len;
	while (p < end) {
		if (!latin1 || *p < 0x80) {
			b[n++] = *p++;
		} else if ((*p & 0xE0) == 0xC0 && (*p & 0x1F) <= 3) {
			b[n++] = (uint8_t)((*p & 0x1F) << 6 | (p[1] & 0x3F));
			p += 2;
		} else {
			return vm_fail(vm, CB_EFORMAT,
				       "_codecs.encode(..., 'latin1') of a character above U+00FF");
		}
	}
	v->u.str.s = (const char *)b;
	v->u.str.len = n;
	*out = v;
	return CB_OK;
}

static int number_arg(struct vm *vm, const struct cb_pk_value *v, double *out)
{
	if (v->type == CB_PK_FLOAT)
		*out = v->u.f;
	else if (v->type == CB_PK_INT)
		*out = (double)v->u.i;
	else
		return vm_fail(vm, CB_EFORMAT, "complex() of a %s", cb_pk_type_name(v));
	return CB_OK;
}

/* OrderedDict(), Counter(), their copies of a dict or of (key, value) pairs. */
static int call_dict(struct vm *vm, bool ordered, const struct cb_pk_value *args,
		     struct cb_pk_value **out)
{
	struct cb_pk_value *d = new_value(vm, CB_PK_DICT);
	if (!d)
		return vm_nomem(vm);
	d->ordered = ordered;
	*out = d;
	if (args->u.seq.n == 0)
		return CB_OK;
	const struct cb_pk_value *src = args->u.seq.items[0];
	if (args->u.seq.n == 1 && src->type == CB_PK_DICT)
		return dict_set(vm, d, src->u.dict.kv, src->u.dict.n);
	if (args->u.seq.n != 1 || (src->type != CB_PK_LIST && src->type != CB_PK_TUPLE))
		return vm_fail(vm, CB_EFORMAT, "a dict built from unexpected arguments");
	for (size_t i = 0; i < src->u.seq.n; i++) {
		const struct cb_pk_value *pair = src->u.seq.items[i];
		if (pair->type != CB_PK_TUPLE || pair->u.seq.n != 2)
			return vm_fail(vm, CB_EFORMAT, "a dict built from a non-pair");
		int rc = dict_set(vm, d, pair->u.seq.items, 1);
		if (rc != CB_OK)
			return rc;
	}
	return CB_OK;
}

static int call_set(struct vm *vm, const struct cb_pk_value *args, struct cb_pk_value **out)
{
	struct cb_pk_value *s = new_seq(vm, CB_PK_SET, NULL, 0);
	if (!s)
		return vm_nomem(vm);
	*out = s;
	if (args->u.seq.n == 0)
		return CB_OK;
	const struct cb_pk_value *src = args->u.seq.items[0];
	if (args->u.seq.n != 1 ||
	    (src->type != CB_PK_LIST && src->type != CB_PK_TUPLE && src->type != CB_PK_SET))
		return vm_fail(vm, CB_EFORMAT, "set() of unexpected arguments");
	return seq_extend(vm, s, src->u.seq.items, src->u.seq.n);
}

static int call_simple(struct vm *vm, int kind, const struct cb_pk_value *args,
		       struct cb_pk_value **out)
{
	size_t n = args->u.seq.n;
	struct cb_pk_value *const *a = args->u.seq.items;
	int rc;
	switch (kind) {
	case G_COMPLEX: {
		struct cb_pk_value *v = new_value(vm, CB_PK_COMPLEX);
		if (!v)
			return vm_nomem(vm);
		if (n < 1 || n > 2)
			return vm_fail(vm, CB_EFORMAT, "complex() takes 1 or 2 arguments");
		if ((rc = number_arg(vm, a[0], &v->u.c.re)) != CB_OK ||
		    (n == 2 && (rc = number_arg(vm, a[1], &v->u.c.im)) != CB_OK))
			return rc;
		*out = v;
		return CB_OK;
	}
	case G_ENCODE:
	case G_BYTEARRAY:
		if (kind == G_BYTEARRAY && n == 0)
			return (*out = new_value(vm, CB_PK_BYTES)) ? CB_OK : vm_nomem(vm);
		if (kind == G_BYTEARRAY && n == 1 && a[0]->type == CB_PK_BYTES) {
			*out = a[0];
			return CB_OK;
		}
		if (n < 1 || n > 2 || a[0]->type != CB_PK_STR ||
		    (n == 2 && a[1]->type != CB_PK_STR))
			return vm_fail(vm, CB_EFORMAT, "bytes built from unexpected arguments");
		return encode_bytes(vm, a[0], n == 2 ? a[1]->u.str.s : "utf-8", out);
	case G_SIZE:
		if (n != 1 || a[0]->type != CB_PK_TUPLE)
			return vm_fail(vm, CB_EFORMAT, "torch.Size of something not a tuple");
		*out = a[0]; /* a tuple subclass; tuples are immutable, so share it */
		return CB_OK;
	case G_DEVICE: {
		if (n < 1 || n > 2 || a[0]->type != CB_PK_STR)
			return vm_fail(vm, CB_EFORMAT, "torch.device of unexpected arguments");
		struct cb_pk_value *v = new_value(vm, CB_PK_DEVICE);
		if (!v)
			return vm_nomem(vm);
		v->u.str = a[0]->u.str;
		*out = v;
		return CB_OK;
	}
	default: return vm_fail(vm, CB_EINTERNAL, "unhandled call kind %d", kind);
	}
}

static int call_global(struct vm *vm, const struct cb_pk_value *fn, const struct cb_pk_value *args,
		       bool nested, struct cb_pk_value **out);

/* _rebuild_from_type_v2(func, type, args, state): func(*args), as `type`
 * (Tensor or Parameter); the state holds Python attributes, ignored. */
static int rebuild_from_type(struct vm *vm, const struct cb_pk_value *args,
			     struct cb_pk_value **out)
{
	struct cb_pk_value *const *a = args->u.seq.items;
	if (args->u.seq.n != 4 || a[0]->type != CB_PK_GLOBAL || a[2]->type != CB_PK_TUPLE)
		return vm_fail(vm, CB_EFORMAT, "_rebuild_from_type_v2 of unexpected arguments");
	bool parameter = is_global(a[1], G_PARAMETER);
	if (!parameter && !is_global(a[1], G_TENSOR))
		return vm_fail(vm, CB_EUNSUPPORTED,
			       "tensor subclass %s is not supported (only Tensor and Parameter)",
			       cb_pk_type_name(a[1]));
	struct cb_pk_value *inner = NULL;
	int rc = call_global(vm, a[0], a[2], true, &inner);
	if (rc != CB_OK)
		return rc;
	return copy_tensor(vm, inner, parameter, NULL, out);
}

/* _rebuild_parameter(tensor, requires_grad, hooks[, state]) */
static int rebuild_parameter(struct vm *vm, int kind, const struct cb_pk_value *args,
			     struct cb_pk_value **out)
{
	size_t want = kind == G_REBUILD_PARAMETER ? 3 : 4;
	if (args->u.seq.n != want)
		return vm_fail(vm, CB_EFORMAT, "_rebuild_parameter takes %zu arguments, not %zu",
			       want, args->u.seq.n);
	bool requires_grad;
	int rc = bool_arg(vm, args->u.seq.items[1], &requires_grad);
	if (rc != CB_OK)
		return rc;
	return copy_tensor(vm, args->u.seq.items[0], true, &requires_grad, out);
}

/* REDUCE: what an allowlisted callable does, computed without running
 * anything. `nested`: called from _rebuild_from_type_v2 (no recursion). */
static int call_global(struct vm *vm, const struct cb_pk_value *fn, const struct cb_pk_value *args,
		       bool nested, struct cb_pk_value **out)
{
	if (fn->type != CB_PK_GLOBAL)
		return vm_fail(vm, CB_EUNSAFE, "REDUCE calls a %s, which is not callable",
			       cb_pk_type_name(fn));
	if (args->type != CB_PK_TUPLE)
		return vm_fail(vm, CB_EFORMAT, "REDUCE arguments are a %s, not a tuple",
			       cb_pk_type_name(args));
	switch (fn->u.global.kind) {
	case G_ORDERED_DICT:
	case G_COUNTER: return call_dict(vm, fn->u.global.kind == G_ORDERED_DICT, args, out);
	case G_SET: return call_set(vm, args, out);
	case G_COMPLEX:
	case G_ENCODE:
	case G_BYTEARRAY:
	case G_SIZE:
	case G_DEVICE: return call_simple(vm, fn->u.global.kind, args, out);
	case G_REBUILD_V2:
	case G_REBUILD_V3:
	case G_REBUILD_OLD: return rebuild_tensor(vm, fn->u.global.kind, args, out);
	case G_REBUILD_PARAMETER:
	case G_REBUILD_PARAMETER_STATE: return rebuild_parameter(vm, fn->u.global.kind, args, out);
	case G_REBUILD_FROM_TYPE:
		if (!nested)
			return rebuild_from_type(vm, args, out);
		break;
	default: break;
	}
	return vm_fail(vm, CB_EUNSAFE, "%s may not be called while loading weights",
		       fn->u.global.qualname);
}

static int op_reduce(struct vm *vm)
{
	int rc = need_stack(vm, 2, "REDUCE");
	if (rc != CB_OK)
		return rc;
	struct cb_pk_value *args = pop(vm), *fn = pop(vm), *result = NULL;
	if ((rc = call_global(vm, fn, args, false, &result)) != CB_OK)
		return rc;
	return push(vm, result);
}

/* NEWOBJ: cls.__new__(cls, *args), for the few classes that pickle so. */
static int op_newobj(struct vm *vm)
{
	int rc = need_stack(vm, 2, "NEWOBJ");
	if (rc != CB_OK)
		return rc;
	struct cb_pk_value *args = pop(vm), *cls = pop(vm), *result = NULL;
	if (args->type != CB_PK_TUPLE)
		return vm_fail(vm, CB_EFORMAT, "NEWOBJ arguments are a %s, not a tuple",
			       cb_pk_type_name(args));
	if (is_global(cls, G_PARAMETER)) {
		/* Parameter(tensor[, requires_grad]) */
		bool requires_grad = true;
		size_t n = args->u.seq.n;
		if (n < 1 || n > 2)
			return vm_fail(vm, CB_EFORMAT, "Parameter() of %zu arguments", n);
		if (n == 2 && (rc = bool_arg(vm, args->u.seq.items[1], &requires_grad)) != CB_OK)
			return rc;
		rc = copy_tensor(vm, args->u.seq.items[0], true, &requires_grad, &result);
	} else if (is_global(cls, G_ORDERED_DICT) || is_global(cls, G_COUNTER) ||
		   is_global(cls, G_SET) || is_global(cls, G_SIZE)) {
		rc = call_global(vm, cls, args, false, &result);
	} else {
		return vm_fail(vm, CB_EUNSAFE, "NEWOBJ of %s is not allowed", cb_pk_type_name(cls));
	}
	return rc != CB_OK ? rc : push(vm, result);
}

/* BUILD: only the OrderedDict's instance state (`_metadata`), which a
 * reader of tensors ignores. */
static int op_build(struct vm *vm)
{
	int rc = need_stack(vm, 2, "BUILD");
	if (rc != CB_OK)
		return rc;
	struct cb_pk_value *state = pop(vm), *target = vm->stack[vm->sp - 1];
	if (target->type == CB_PK_TENSOR)
		return vm_fail(vm, CB_EUNSUPPORTED,
			       "BUILD on a tensor (a legacy Tensor.set_ pickle) is not supported");
	if (target->type != CB_PK_DICT || !target->ordered)
		return vm_fail(vm, CB_EUNSAFE, "BUILD on a %s is not allowed",
			       cb_pk_type_name(target));
	if (state->type != CB_PK_DICT && state->type != CB_PK_NONE && state->type != CB_PK_TUPLE)
		return vm_fail(vm, CB_EFORMAT, "an OrderedDict's state is a %s",
			       cb_pk_type_name(state));
	return CB_OK;
}

/* ------------------------------------------------------------ containers */

static int op_tuple_n(struct vm *vm, size_t n)
{
	int rc = need_stack(vm, n, "TUPLE");
	if (rc != CB_OK)
		return rc;
	vm->sp -= n;
	return push(vm, new_seq(vm, CB_PK_TUPLE, vm->stack + vm->sp, n));
}

/* TUPLE, and the *S opcodes: the values since the innermost MARK. */
static int op_from_mark(struct vm *vm, uint8_t op)
{
	static const char *const names[] = {
		['t'] = "TUPLE", ['e'] = "APPENDS", ['u'] = "SETITEMS", [0x90] = "ADDITEMS"};
	size_t mark = 0;
	int rc = pop_mark(vm, names[op], &mark);
	if (rc != CB_OK)
		return rc;
	/* The stack is allocated on first push: after "(t" on an empty one it
	 * may still be NULL, and NULL + 0 is undefined (found by fuzz_unpickle). */
	size_t n = vm->sp - mark;
	struct cb_pk_value **items = n ? vm->stack + mark : NULL;
	vm->sp = mark;
	if (op == 't')
		return push(vm, new_seq(vm, CB_PK_TUPLE, items, n));
	if ((rc = need_stack(vm, 1, names[op])) != CB_OK)
		return rc;
	struct cb_pk_value *target = vm->stack[vm->sp - 1];
	if (op == 'u') {
		if (target->type != CB_PK_DICT)
			return vm_fail(vm, CB_EUNSAFE, "SETITEMS on a %s (only dicts)",
				       cb_pk_type_name(target));
		if (n % 2)
			return vm_fail(vm, CB_EFORMAT, "SETITEMS with an odd number of values");
		return dict_set(vm, target, items, n / 2);
	}
	enum cb_pk_type want = op == 'e' ? CB_PK_LIST : CB_PK_SET;
	if (target->type != want)
		return vm_fail(vm, CB_EUNSAFE, "%s on a %s (only %ss)", names[op],
			       cb_pk_type_name(target), want == CB_PK_LIST ? "list" : "set");
	return seq_extend(vm, target, items, n);
}

static int op_append(struct vm *vm)
{
	int rc = need_stack(vm, 2, "APPEND");
	if (rc != CB_OK)
		return rc;
	struct cb_pk_value *v = pop(vm), *target = vm->stack[vm->sp - 1];
	if (target->type != CB_PK_LIST)
		return vm_fail(vm, CB_EUNSAFE, "APPEND on a %s (only lists)",
			       cb_pk_type_name(target));
	return seq_extend(vm, target, &v, 1);
}

static int op_setitem(struct vm *vm)
{
	int rc = need_stack(vm, 3, "SETITEM");
	if (rc != CB_OK)
		return rc;
	vm->sp -= 2;
	struct cb_pk_value *target = vm->stack[vm->sp - 1];
	if (target->type != CB_PK_DICT)
		return vm_fail(vm, CB_EUNSAFE, "SETITEM on a %s (only dicts)",
			       cb_pk_type_name(target));
	return dict_set(vm, target, vm->stack + vm->sp, 1);
}

static int op_mark(struct vm *vm)
{
	if (vm->n_marks == CB_PK_MAX_MARKS)
		return vm_fail(vm, CB_ELIMIT, "more than %u nested MARKs", CB_PK_MAX_MARKS);
	vm->marks[vm->n_marks++] = vm->sp;
	return CB_OK;
}

/* ------------------------------------------------------------ dispatch */

static int step(struct vm *vm, uint8_t op)
{
	switch (op) {
	case 0x80: /* PROTO */ {
		int rc = need(vm, 1);
		if (rc == CB_OK && vm->buf[vm->pos] > 5)
			return vm_fail(vm, CB_EUNSUPPORTED, "pickle protocol %u is not supported",
				       vm->buf[vm->pos]);
		vm->pos += rc == CB_OK;
		return rc;
	}
	case 0x95: /* FRAME: a length hint only */ {
		int rc = need(vm, 8);
		if (rc == CB_OK)
			vm->pos += 8;
		return rc;
	}
	case 'c': return op_global(vm);
	case 0x93: return op_stack_global(vm);
	case 'Q': return op_binpersid(vm);
	case 'R': return op_reduce(vm);
	case 'b': return op_build(vm);
	case 0x81: return op_newobj(vm);
	case '(': return op_mark(vm);
	case 't':
	case 'e':
	case 'u':
	case 0x90: return op_from_mark(vm, op);
	case 0x85: return op_tuple_n(vm, 1);
	case 0x86: return op_tuple_n(vm, 2);
	case 0x87: return op_tuple_n(vm, 3);
	case ')': return push(vm, vm->empty_tuple);
	case ']': return push(vm, new_seq(vm, CB_PK_LIST, NULL, 0));
	case 0x8f: return push(vm, new_seq(vm, CB_PK_SET, NULL, 0));
	case '}': return push(vm, new_value(vm, CB_PK_DICT));
	case 'a': return op_append(vm);
	case 's': return op_setitem(vm);
	case 'N': return push(vm, vm->none);
	case 0x88: return push(vm, vm->yes);
	case 0x89: return push(vm, vm->no);
	case 'J': return op_fixed_int(vm, 4);
	case 'K': return op_fixed_int(vm, 1);
	case 'M': return op_fixed_int(vm, 2);
	case 0x8a: return op_long1(vm);
	case 'G': return op_binfloat(vm);
	case 'X': return op_string(vm, 4, CB_PK_STR);
	case 0x8c: return op_string(vm, 1, CB_PK_STR);
	case 0x8d: return op_string(vm, 8, CB_PK_STR);
	case 'U': return op_string(vm, 1, CB_PK_STR);
	case 'C': return op_string(vm, 1, CB_PK_BYTES);
	case 'B': return op_string(vm, 4, CB_PK_BYTES);
	case 'q': return op_memo(vm, 1, memo_put);
	case 'r': return op_memo(vm, 4, memo_put);
	case 0x94: return memo_put(vm, vm->memo_count);
	case 'h': return op_memo(vm, 1, memo_get);
	case 'j': return op_memo(vm, 4, memo_get);
	default:
		return vm_fail(vm, CB_EUNSAFE,
			       "opcode 0x%02x is not allowed in a weights-only pickle", op);
	}
}

static int run(struct vm *vm)
{
	while (vm->pos < vm->len) {
		vm->op_pos = vm->pos;
		uint8_t op = vm->buf[vm->pos++];
		if (op == '.') {
			if (vm->sp == 0 || vm->n_marks)
				return vm_fail(vm, CB_EFORMAT, "STOP with %s",
					       vm->sp ? "an open MARK" : "an empty stack");
			vm->out->root = vm->stack[vm->sp - 1];
			vm->out->consumed = vm->pos;
			return CB_OK;
		}
		int rc = step(vm, op);
		if (rc != CB_OK)
			return rc;
	}
	vm->op_pos = vm->pos;
	if (vm->opt->truncated_out)
		*vm->opt->truncated_out = true;
	return vm_fail(vm, CB_EFORMAT, "the pickle ends without a STOP opcode");
}

void cb_pickle_free(struct cb_pickle *pickle)
{
	if (!pickle)
		return;
	arena_free(pickle->arena);
	table_free(pickle->storage_table);
	free(pickle->storages);
	free(pickle);
}

void *cb_pickle_alloc(struct cb_pickle *pickle, size_t size)
{
	return arena_alloc(pickle->arena, size);
}

int cb_unpickle(const uint8_t *buf, size_t len, const struct cb_pk_options *opt,
		struct cb_pickle **out, struct cb_error *err)
{
	*out = NULL;
	if (opt->truncated_out)
		*opt->truncated_out = false;
	struct cb_pickle *p = calloc(1, sizeof *p);
	struct arena *arena = calloc(1, sizeof *arena);
	struct storage_table *table = calloc(1, sizeof *table);
	if (!p || !arena || !table) {
		free(p);
		free(arena);
		free(table);
		return CB_FAIL(err, CB_ENOMEM, opt->path, NULL, "out of memory");
	}
	arena->limit = ARENA_BASE_LIMIT + (uint64_t)len * ARENA_PER_INPUT_BYTE;
	if (len >= ARENA_HUGE_FROM)
		arena->next_chunk = ARENA_HUGE_CHUNK;
	p->arena = arena;
	p->storage_table = table;
	struct vm vm = {.buf = buf,
			.len = len,
			.opt = opt,
			.err = err,
			.out = p,
			.arena = arena,
			.table = table};
	/* Sequential memo indices never exceed the number of PUT opcodes. */
	vm.memo_limit = len < CB_PK_MAX_MEMO ? len + 1 : CB_PK_MAX_MEMO;
	/* Nor do torch's storage keys 0..n-1 the number of persistent ids. */
	table->index_limit = vm.memo_limit;
	int rc = CB_OK;
	vm.none = new_value(&vm, CB_PK_NONE);
	vm.yes = new_value(&vm, CB_PK_BOOL);
	vm.no = new_value(&vm, CB_PK_BOOL);
	vm.empty_tuple = new_value(&vm, CB_PK_TUPLE);
	vm.small_ints = arena_alloc(arena, SMALL_INT_COUNT * sizeof *vm.small_ints);
	if (!vm.none || !vm.yes || !vm.no || !vm.empty_tuple || !vm.small_ints) {
		rc = vm_nomem(&vm);
	} else {
		vm.yes->u.b = true;
		for (int k = 0; k < SMALL_INT_COUNT; k++)
			vm.small_ints[k] =
				(struct cb_pk_value){.type = CB_PK_INT, .u.i = k + SMALL_INT_MIN};
	}
	if (rc == CB_OK)
		rc = run(&vm);
	free(vm.stack);
	if (vm.memo)
		munmap(vm.memo, vm.memo_bytes);
	if (rc != CB_OK) {
		cb_pickle_free(p);
		return rc;
	}
	*out = p;
	return CB_OK;
}
