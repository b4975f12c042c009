/* The ATen shim: a C front over the few libtorch calls the libtorch loaders
 * need (docs/architecture.md; docs/datasets-and-method.md §4.6).
 *
 * C only: this header includes <stddef.h> and <stdint.h> and nothing of
 * libtorch, so C files compile against it without a C++ compiler; the one
 * C++ file behind it is cb_aten.cpp. Handles are opaque, distinct pointer
 * types (never void *): a `struct cb_aten_tensor *` owns one at::Tensor (a
 * reference to its storage), so freeing a handle frees the storage only when
 * no other handle or view shares it, exactly as at::Tensor does.
 *
 * The exception firewall: every entry catches std::exception and `...`,
 * copies the message into the caller's `struct cb_error` (error.h; may be
 * NULL) and returns a negative cb_errcode; no C++ exception ever reaches C.
 * libtorch's messages become one line ("libtorch: ..."), without the C++
 * backtrace c10::Error carries.
 *
 * Codes are the project's own, mapped inside: dtypes are `enum cb_dtype`
 * values (dtype.h) passed as int32_t so that this header needs no project
 * header; devices are CB_ATEN_CPU / CB_ATEN_CUDA, the values of
 * `enum cb_device_kind` (loader.h), with an index for CUDA.
 *
 * Names: `cb_aten_*`, never `aoti_torch_*`: libtorch >= 2.2 exports those and
 * ELF interposition would bind a same-named symbol to the wrong function.
 *
 * Thread-safety: as libtorch's: distinct tensors may be used from distinct
 * threads; one handle must not be freed while another thread uses it.
 */
#ifndef CB_ATEN_H
#define CB_ATEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct cb_error;       /* error.h */
struct cb_aten_tensor; /* one at::Tensor, owned by the handle */

/* Device kinds: the values of enum cb_device_kind (loader.h). */
#define CB_ATEN_CPU 0
#define CB_ATEN_CUDA 1

#define CB_ATEN_MAX_RANK 64

/* What cb_aten_describe reports. `sizes` and `strides` point into the
 * tensor and stay valid while its handle lives. */
struct cb_aten_desc {
	int32_t dtype;        /* enum cb_dtype; -1 for a dtype the project cannot name */
	int32_t device_kind;  /* CB_ATEN_CPU or CB_ATEN_CUDA (-1: any other) */
	int32_t device_index; /* -1 for the CPU */
	size_t rank;
	const int64_t *sizes;   /* rank entries */
	const int64_t *strides; /* rank entries, in elements */
	int64_t storage_offset; /* elements */
	int64_t numel;
	size_t element_size; /* bytes */
	int contiguous;      /* is_contiguous() */
};

/* The libtorch version this module was built against ("1.13.1"); static. */
const char *cb_aten_version(void);

/* CUDA devices libtorch can use: 0 with a CPU-only libtorch (Debian's) or
 * without a visible GPU. */
int cb_aten_cuda_device_count(int *count_out, struct cb_error *err);

/* Blocks until every queued CUDA operation on the device has finished
 * (after non_blocking copies); a no-op for the CPU. */
int cb_aten_synchronize(int32_t device_kind, int32_t device_index, struct cb_error *err);

/* A new uninitialised tensor (at::empty / at::empty_strided): `strides`
 * NULL for contiguous row-major; `pinned` non-zero for page-locked host
 * memory (CPU only; a CPU-only libtorch refuses it with its message).
 * On success *out is the caller's, to free with cb_aten_free. */
int cb_aten_empty(int32_t dtype, size_t rank, const int64_t *sizes, const int64_t *strides,
		  int32_t device_kind, int32_t device_index, int pinned,
		  struct cb_aten_tensor **out, struct cb_error *err);

/* With arena_bytes > 0: maps one arena of that many bytes (2 MiB-aligned,
 * MADV_HUGEPAGE) and carves from it every CPU storage ATen allocates until
 * called again with 0, which switches back to libtorch's own allocator (the
 * arena stays). Process-wide; for building one host model. */
int cb_aten_host_huge_pages(size_t arena_bytes, struct cb_error *err);

/* Unmaps the arena; only after every tensor carved from it is freed. */
void cb_aten_host_arena_release(void);

/* t.zero_(): ATen's fill, parallel over its intra-op threads (OpenMP), as
 * a module's initialiser writes its parameters. */
int cb_aten_zero(struct cb_aten_tensor *t, struct cb_error *err);

/* A tensor over memory it does not own (at::from_blob with no deleter):
 * `data` (host or device memory, per device_kind) must outlive the handle
 * and every view or share of it. `strides` NULL for contiguous. *out is the
 * caller's (cb_aten_free). */
int cb_aten_from_blob(void *data, int32_t dtype, size_t rank, const int64_t *sizes,
		      const int64_t *strides, int32_t device_kind, int32_t device_index,
		      struct cb_aten_tensor **out, struct cb_error *err);

/* A view of `base`'s storage (Tensor::as_strided), as torch's
 * _rebuild_tensor_v2 makes one: sizes, strides and offset in elements of
 * base's dtype, checked by ATen against the storage. *out is the caller's;
 * the storage lives while any handle on it does. */
int cb_aten_as_strided(const struct cb_aten_tensor *base, size_t rank, const int64_t *sizes,
		       const int64_t *strides, int64_t storage_offset, struct cb_aten_tensor **out,
		       struct cb_error *err);

/* Another handle on the same tensor (shares its storage; at::Tensor's copy).
 * *out is the caller's. */
int cb_aten_share(const struct cb_aten_tensor *t, struct cb_aten_tensor **out,
		  struct cb_error *err);

/* dst.copy_(src, non_blocking): shapes must broadcast, dtypes convert as
 * ATen converts them, devices may differ. With non_blocking between pinned
 * host memory and a GPU the copy may still run when this returns: call
 * cb_aten_synchronize before reading dst or reusing src. */
int cb_aten_copy(struct cb_aten_tensor *dst, const struct cb_aten_tensor *src, int non_blocking,
		 struct cb_error *err);

/* src.to(device, non_blocking): a new tensor on the device, or another
 * handle on src when it is there already (as Tensor::to). *out is the
 * caller's. */
int cb_aten_to(const struct cb_aten_tensor *src, int32_t device_kind, int32_t device_index,
	       int non_blocking, struct cb_aten_tensor **out, struct cb_error *err);

/* Tensor::data_ptr(): the address of element 0 (storage offset applied);
 * host or device memory; valid while the storage lives. */
int cb_aten_data_ptr(const struct cb_aten_tensor *t, void **out, struct cb_error *err);

/* Sizes, strides, dtype, device and the rest (see struct cb_aten_desc). */
int cb_aten_describe(const struct cb_aten_tensor *t, struct cb_aten_desc *out,
		     struct cb_error *err);

/* Frees the handle (NULL is fine). Never fails, never throws. */
void cb_aten_free(struct cb_aten_tensor *t);

/* Receives one tensor of a loaded pickle: `name` is its key path
 * (docs/datasets-and-method.md §2: keys of nested dicts, lists and tuples
 * joined with '.'), `t` is borrowed for the call (cb_aten_share to keep
 * it). A non-zero return stops the walk and is returned by
 * cb_aten_pickle_load_file. */
typedef int (*cb_aten_tensor_fn)(void *cookie, const char *name, const struct cb_aten_tensor *t,
				 struct cb_error *err);

/* What torch::pickle_load does with a torch.save file, as a C++ program
 * would run it: the whole file read into a std::vector<char>, then
 * torch::jit::pickle_load, whose storages are copies out of that vector;
 * then every tensor of the result handed to `fn` in pickle order (dict
 * insertion order). The vector is freed before `fn` is first called.
 *
 * CB_EUNSUPPORTED with libtorch's own message where libtorch cannot read the
 * file (OrderedDict state dicts, one-key dicts, short LONG1 integers and
 * nn.Parameter on 1.13: docs/datasets-and-method.md §4.5). Not for untrusted
 * files: libtorch checks far less than our reader (unpickle.h).
 *
 * `bytes_out` (may be NULL) receives the file's size. */
int cb_aten_pickle_load_file(const char *path, cb_aten_tensor_fn fn, void *cookie,
			     uint64_t *bytes_out, struct cb_error *err);

#ifdef __cplusplus
}
#endif

#endif
