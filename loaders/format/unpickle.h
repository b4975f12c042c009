/* A restricted unpickler for the data.pkl of PyTorch checkpoints.
 *
 * It accepts what torch.load(weights_only=True) accepts and never imports or
 * runs anything: a GLOBAL resolves only through a fixed allowlist (the
 * collections, rebuild functions, storage classes, dtypes and plain builtins
 * that checkpoints hold), so `os.system`, `posix.system`, `builtins.eval`,
 * `subprocess.*` or anything of `torch.jit` is refused, with the global named,
 * at the opcode that names it (before any tensor data is read: this reader
 * never reads data at all). Objects are built as an inert value tree.
 *
 * Opcodes: everything torch's protocol-2 pickles use (PROTO, GLOBAL,
 * BINPERSID, REDUCE, BUILD, NEWOBJ, MARK, TUPLE/TUPLE1-3, EMPTY_*, APPEND(S),
 * SETITEM(S), NONE, NEWTRUE/NEWFALSE, BININT/BININT1/BININT2, LONG1 of any
 * width, BINFLOAT, BINUNICODE, SHORT_BINSTRING, (LONG_)BINPUT/(LONG_)BINGET)
 * plus the harmless protocol-4 framing ones (FRAME, MEMOIZE,
 * SHORT_BINUNICODE, BINUNICODE8, STACK_GLOBAL, SHORT_BINBYTES, BINBYTES,
 * EMPTY_SET, ADDITEMS) so that `pickle_protocol=4` saves read too.
 *
 * Tensors (`_rebuild_tensor_v2/_v3`, `_rebuild_tensor`, `_rebuild_parameter`,
 * `_rebuild_from_type_v2`) become cb_pk_tensor values: storage, dtype, shape,
 * stride, storage offset, requires_grad. Persistent ids with the same key
 * resolve to the same cb_pk_storage, so tied weights and views stay shared.
 * Every view's extent is checked against its storage's element count with
 * overflow-checked arithmetic; the caller must still check that each storage
 * record holds exactly cb_pk_storage.nbytes bytes (CVE-2026-24747).
 *
 * Limits: memo entries, stack depth, MARK depth, ranks and the memory the
 * value tree may take are bounded (CB_PK_MAX_*). Errors are one line with
 * the byte offset of the failing opcode: "<label> byte N".
 *
 * Thread-safety: a parse uses only its own state; parses may run in parallel.
 */
#ifndef CB_UNPICKLE_H
#define CB_UNPICKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "error.h"

#define CB_PK_MAX_STACK (1u << 20) /* values on the stack */
#define CB_PK_MAX_MARKS 256u       /* open MARKs */
#define CB_PK_MAX_MEMO (1u << 24)  /* memo index (also < the pickle's size) */
#define CB_PK_MAX_RANK 64u         /* tensor dimensions */
#define CB_PK_MAX_GLOBAL_NAME 256u /* bytes of a GLOBAL's module or name */
#define CB_PK_MAX_DEPTH 256u       /* container nesting, for walkers */

enum cb_pk_type {
	CB_PK_NONE,
	CB_PK_BOOL,
	CB_PK_INT,    /* fits in int64 */
	CB_PK_BIGINT, /* a LONG1 wider than 8 bytes: raw little-endian bytes */
	CB_PK_FLOAT,
	CB_PK_COMPLEX,
	CB_PK_STR, /* valid UTF-8, NUL-terminated */
	CB_PK_BYTES,
	CB_PK_TUPLE, /* also torch.Size */
	CB_PK_LIST,
	CB_PK_DICT, /* dict, OrderedDict, Counter */
	CB_PK_SET,
	CB_PK_TENSOR,
	CB_PK_STORAGE, /* a storage object (the result of BINPERSID) */
	CB_PK_GLOBAL,  /* an allowlisted class, function or constant (a dtype...) */
	CB_PK_DEVICE,  /* torch.device; .u.str is its type string */
};

/* One storage record: "data/<key>" in a zip checkpoint, or the storage of
 * that key in the legacy format. Shared by every tensor that views it. */
struct cb_pk_storage {
	const char *key;         /* NUL-terminated */
	uint64_t numel;          /* as the persistent id says: elements of its type
				  * (bytes for an UntypedStorage) */
	uint64_t nbytes;         /* numel × element size: what the record must hold */
	enum cb_dtype dtype;     /* CB_DTYPE_INVALID until a tensor or a typed id fixes it */
	const char *torch_dtype; /* "float32", ... ; NULL while untyped */
	unsigned elsize;         /* bytes per element of torch_dtype; 1 while untyped */
	size_t index;            /* order of first appearance */
};

/* A tensor: a view of `storage`. Offsets count elements of `dtype` from the
 * start of the storage record. shape/stride hold `rank` entries. */
struct cb_pk_tensor {
	struct cb_pk_storage *storage;
	enum cb_dtype dtype;
	const char *torch_dtype;
	unsigned elsize;
	uint32_t rank;
	const uint64_t *shape;
	const int64_t *stride; /* all >= 0 */
	uint64_t storage_offset;
	uint64_t numel;
	bool requires_grad;
	bool parameter; /* built through nn.Parameter */
};

struct cb_pk_value {
	enum cb_pk_type type;
	bool ordered; /* DICT: an OrderedDict (BUILD is allowed on it) */
	union {
		bool b;
		int64_t i;
		double f;
		struct {
			double re, im;
		} c;
		struct {
			const char *s;
			size_t len;
		} str; /* STR, BYTES, BIGINT, DEVICE */
		struct {
			struct cb_pk_value **items;
			size_t n, cap;
		} seq; /* TUPLE, LIST, SET */
		struct {
			struct cb_pk_value **kv;
			size_t n, cap;
		} dict; /* kv[2i] key, kv[2i+1] value */
		struct cb_pk_tensor *tensor;
		struct {
			struct cb_pk_storage *storage;
			uint64_t offset; /* elements into the record (legacy storage views) */
			uint64_t numel;  /* elements this storage object spans */
			bool typed;
		} storage;
		struct {
			const char *qualname;
			int kind;
			int arg;
		} global;
	} u;
};

struct cb_pk_options {
	const char *path;     /* for errors; may be NULL */
	const char *label;    /* what is parsed, e.g. "archive/data.pkl"; may be NULL */
	uint64_t base_offset; /* added to byte offsets in errors */
	bool legacy;          /* persistent ids are the legacy 6-tuples */
	bool *truncated_out;  /* may be NULL: set when the input ended before STOP */
};

/* The result of one parse. Everything it points to is owned by it. */
struct cb_pickle {
	struct cb_pk_value *root;
	size_t consumed; /* bytes up to and including STOP */
	size_t n_storages;
	struct cb_pk_storage **storages; /* in order of first appearance */
	size_t n_tensors;
	void *arena;         /* private */
	void *storage_table; /* private */
};

/* Parses one pickle from `buf` (`len` bytes; it stops at STOP and says how
 * much it consumed). `buf` is not referenced after the call. On success
 * *out is the caller's, to free with cb_pickle_free. */
CB_NODISCARD int cb_unpickle(const uint8_t *buf, size_t len, const struct cb_pk_options *opt,
			     struct cb_pickle **out, struct cb_error *err);

/* Allocates `size` bytes that live as long as the pickle (for names built
 * from its keys); NULL when out of memory. */
void *cb_pickle_alloc(struct cb_pickle *pickle, size_t size);

void cb_pickle_free(struct cb_pickle *pickle);

/* Python's name for a value's type ("dict", "Tensor", ...), for messages. */
const char *cb_pk_type_name(const struct cb_pk_value *value);

#endif
