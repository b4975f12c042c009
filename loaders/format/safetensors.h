/* safetensors: a hardened reader and a reference-exact writer.
 *
 * Layout: u64le N | N bytes of UTF-8 JSON | data buffer (to end of file).
 * The rules are those of the reference implementation (huggingface/safetensors
 * `tensor.rs`), with these deliberate differences, each refused with its own
 * message where the reference would accept or give a misleading error:
 *   - duplicate keys are refused (the reference keeps the last one);
 *   - names holding NUL (\u0000) are refused (we hand names out as C strings);
 *   - JSON nesting deeper than CB_ST_MAX_DEPTH, ranks above CB_ST_MAX_RANK,
 *     names longer than CB_ST_MAX_NAME and more than CB_ST_MAX_TENSORS tensors
 *     are refused as resource limits;
 *   - integers above 2^63-1 in shapes are refused as out of range (the JSON
 *     library stores int64; such a dimension can only occur in a zero-element
 *     tensor, since any other overflows the byte size anyway).
 * Unknown fields inside a tensor entry are ignored, as the reference does.
 *
 * Only the header is read here: the data is the loaders' business.
 */
#ifndef CB_SAFETENSORS_H
#define CB_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "error.h"

#define CB_ST_MAX_HEADER 100000000u /* decimal, equality allowed */
#define CB_ST_MAX_DEPTH 64          /* JSON nesting; the schema needs 3 */
#define CB_ST_MAX_RANK 64
#define CB_ST_MAX_NAME 65536 /* bytes of one tensor name */
#define CB_ST_MAX_TENSORS 10000000u

/* A string pair of `__metadata__`, in file order. */
struct cb_kv {
	const char *key;
	const char *value;
};

struct cb_st_tensor {
	const char *name; /* NUL-terminated, valid UTF-8, owned by the file */
	enum cb_dtype dtype;
	uint32_t rank;         /* 0 for a scalar */
	const uint64_t *shape; /* rank entries, owned by the file */
	uint64_t numel;        /* product of shape (1 for a scalar) */
	uint64_t begin, end;   /* data_offsets, relative to the data buffer */
};

/* A parsed, validated header. Immutable after parsing: safe to share
 * between threads for reading. */
struct cb_st_file {
	char *label; /* the path, for messages */
	uint64_t file_size;
	uint64_t header_len; /* N */
	uint64_t data_start; /* 8 + N: not necessarily aligned */
	size_t n_tensors;
	struct cb_st_tensor *tensors; /* sorted by (begin, end, name) */
	bool has_metadata;            /* a `__metadata__` key was present */
	size_t n_meta;
	struct cb_kv *meta; /* in file order */
	/* private */
	char *strings; /* names, keys and values */
	uint64_t *shapes;
	uint32_t *index; /* open-addressing table of tensor slots */
	size_t index_mask;
};

/* Opens `path`, reads the 8-byte length and the header with pread (never the
 * data) and validates everything, including that the tensors tile the data
 * buffer up to the end of the file. On success *out is the caller's, to free
 * with cb_st_free. */
CB_NODISCARD int cb_st_open(const char *path, struct cb_st_file **out, struct cb_error *err);

/* The same checks on a whole file held in memory (tests, fuzzing). `label`
 * names it in messages. */
CB_NODISCARD int cb_st_parse_buffer(const char *label, const void *buf, size_t len,
				    struct cb_st_file **out, struct cb_error *err);

/* The same checks on a header alone: `json` holds the N bytes after the
 * length field of a file of `file_size` bytes. */
CB_NODISCARD int cb_st_parse_header(const char *label, const void *json, uint64_t n,
				    uint64_t file_size, struct cb_st_file **out,
				    struct cb_error *err);

void cb_st_free(struct cb_st_file *file);

/* O(1) average lookup by name; NULL when absent. */
const struct cb_st_tensor *cb_st_find(const struct cb_st_file *file, const char *name);

/* Bytes of the data buffer (file_size - data_start). */
uint64_t cb_st_data_size(const struct cb_st_file *file);

/* ------------------------------------------------------------------ writer */

/* A tensor to write: its bytes are supplied later, in layout order. */
struct cb_st_spec {
	const char *name;
	enum cb_dtype dtype;
	uint32_t rank;
	const uint64_t *shape;
};

/* Where everything goes, computed before any byte is written so that data
 * can be written in parallel at known offsets. Arrays indexed like the specs
 * unless said otherwise. */
struct cb_st_layout {
	size_t n;
	size_t *order;      /* order[k]: the spec written k-th */
	uint64_t *nbytes;   /* bytes of each spec */
	uint64_t *offset;   /* absolute file offset of each spec's bytes */
	uint8_t *header;    /* length field + JSON + space padding */
	size_t header_size; /* multiple of 8: the data starts aligned */
	uint64_t file_size;
};

/* Orders the tensors as the reference writer does (dtype descending in enum
 * order, then name byte-wise), packs them, and serialises the header exactly
 * as serde_json would (compact, `__metadata__` first, spaces up to a multiple
 * of 8). Refuses duplicate names, the name `__metadata__`, empty or invalid
 * dtypes, sub-byte tensors that are not whole bytes, size overflow and a
 * header over 100,000,000 bytes. `meta` may be NULL (no `__metadata__` key)
 * or point to n_meta pairs (possibly zero: an empty object). On success the
 * caller frees *out with cb_st_layout_free. */
CB_NODISCARD int cb_st_layout_build(const struct cb_st_spec *specs, size_t n,
				    const struct cb_kv *meta, size_t n_meta,
				    struct cb_st_layout *out, struct cb_error *err);
void cb_st_layout_free(struct cb_st_layout *layout);

/* Writes a whole file from tensors in memory (data[i] holds spec i's bytes),
 * through a temporary file in the same directory renamed over `path`
 * (fsync'd first when `durable`). Nothing is left under either name on
 * failure. */
CB_NODISCARD int cb_st_write_file(const char *path, const struct cb_st_spec *specs,
				  const void *const *data, size_t n, const struct cb_kv *meta,
				  size_t n_meta, bool durable, struct cb_error *err);

#endif
