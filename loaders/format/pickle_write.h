/* The data.pkl of a state dict, written byte for byte as torch.save writes
 * it (protocol 2, CPython's pickler with torch's persistent_id).
 *
 * The object is an OrderedDict of name -> tensor, items in the given order,
 * in batches of at most 1000 (MARK ... SETITEMS; a batch of one is SETITEM).
 * Each tensor is `torch._utils._rebuild_tensor_v2(storage, storage_offset,
 * size, stride, False, OrderedDict())` whose storage is the persistent id
 * ('storage', torch.<Name>Storage, key, 'cpu', numel). Dtypes torch added
 * after the typed storages (float8, uint16/32/64) are written the way torch
 * >= 2.2/2.3 writes them: `_rebuild_tensor_v3` with an untyped storage (numel
 * counted in bytes) and the dtype as a trailing argument; only torch >= 2.2
 * (2.3 for the unsigned types) loads those. Memoization is CPython's: every
 * global, string, non-empty tuple and reduced object is memoized (BINPUT, or
 * LONG_BINPUT from index 256), and a repeated global, 'storage', 'cpu',
 * storage key or 'version' is a BINGET, so the output equals torch's.
 *
 * Storage keys are "0", "1", ... in order of first use, as torch numbers
 * them; callers number storages that way (the writer checks).
 */
#ifndef CB_PICKLE_WRITE_H
#define CB_PICKLE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "error.h"

struct cb_pkl_storage {
	enum cb_dtype dtype;
	uint64_t numel; /* elements of dtype in the whole storage */
};

struct cb_pkl_tensor {
	const char *name;        /* the state-dict key */
	uint32_t storage;        /* index into the storages */
	uint64_t storage_offset; /* elements */
	uint32_t rank;
	const uint64_t *shape; /* rank entries */
	const int64_t *stride; /* rank entries; NULL: contiguous row-major */
};

/* One entry of the state dict's `_metadata` (module path -> {'version': N}),
 * as nn.Module.state_dict() records it. */
struct cb_pkl_module_version {
	const char *module; /* "", "fc", "encoder.0", ... */
	long version;
};

/* torch's storage class for a dtype ("FloatStorage"), or NULL where torch
 * has none and the dtype goes through _rebuild_tensor_v3 or not at all. */
const char *cb_pkl_storage_class(enum cb_dtype dtype);

/* The torch dtype name of a dtype written through _rebuild_tensor_v3
 * ("float8_e4m3fn"), or NULL. */
const char *cb_pkl_v3_dtype(enum cb_dtype dtype);

/* CB_OK if torch has a dtype for `dtype`; else CB_EUNSUPPORTED naming the
 * dtype and `what` (a tensor name) for the message. */
CB_NODISCARD int cb_pkl_check_dtype(enum cb_dtype dtype, const char *what, const char *path,
				    struct cb_error *err);

/* Pickles the state dict. Every view must lie within its storage; storages
 * must be first used in index order and with one dtype. `modules` may be NULL
 * (a plain OrderedDict with no `_metadata`, as torch.save(OrderedDict(...))
 * writes). On success *out (malloc'd, the caller frees it) holds *len_out
 * bytes. */
CB_NODISCARD int cb_pkl_write_state_dict(const struct cb_pkl_tensor *tensors, size_t n,
					 const struct cb_pkl_storage *storages, size_t n_storages,
					 const struct cb_pkl_module_version *modules,
					 size_t n_modules, uint8_t **out, size_t *len_out,
					 struct cb_error *err);

#endif
