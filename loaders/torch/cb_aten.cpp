// The ATen shim behind cb_aten.h: the only C++ in ckptbench.
//
// Every exported body runs inside CB_ATEN_TRY / CB_ATEN_CATCH, which turn a
// c10::Error (libtorch's own), std::bad_alloc, any other std::exception and
// anything else thrown into a negative cb_errcode plus a one-line message in
// the caller's struct cb_error. Nothing here allocates memory that C must
// free except through cb_aten_free.
//
// Headers: the narrow ATen ones rather than <torch/torch.h>, which takes
// minutes to compile on a small machine.
#include <ATen/core/Tensor.h>
#include <c10/core/CPUAllocator.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_strided.h>
#include <ATen/ops/from_blob.h>
#include <c10/util/Exception.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

extern "C" {
#include "dtype.h"
#include "error.h"
#include "loader.h"
}

#include "cb_aten.h"

static_assert(CB_ATEN_CPU == CB_DEVICE_CPU && CB_ATEN_CUDA == CB_DEVICE_CUDA,
	      "cb_aten.h's device codes are enum cb_device_kind's");

// The handle: one at::Tensor. A struct, not a typedef of at::Tensor, so the
// C side's pointer type stays distinct and opaque.
struct cb_aten_tensor {
	at::Tensor t;
};

#define CB_TORCH_AT_LEAST(major, minor)   \
	(TORCH_VERSION_MAJOR > (major) || \
	 (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace
{

// Records libtorch's message as one line: c10::Error's text may span lines.
// Must not throw: it runs inside catch blocks, so no std::string here.
int fail(struct cb_error *err, enum cb_errcode code, const char *what) noexcept
{
	char line[700];
	std::snprintf(line, sizeof line, "%s", what ? what : "");
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	size_t len = std::strlen(line);
	while (len && line[len - 1] == ' ')
		line[--len] = '\0';
	return cb_error_set(err, code, CB_HERE, nullptr, nullptr, "libtorch: %s", line);
}

// The project's dtypes that ATen has, both ways. Newer ATen dtypes only
// where the libtorch in use has them.
struct dtype_map {
	enum cb_dtype cb;
	at::ScalarType at;
};

const dtype_map dtypes[] = {
	{CB_DTYPE_BOOL, at::kBool},
	{CB_DTYPE_U8, at::kByte},
	{CB_DTYPE_I8, at::kChar},
	{CB_DTYPE_I16, at::kShort},
	{CB_DTYPE_I32, at::kInt},
	{CB_DTYPE_I64, at::kLong},
	{CB_DTYPE_F16, at::kHalf},
	{CB_DTYPE_BF16, at::kBFloat16},
	{CB_DTYPE_F32, at::kFloat},
	{CB_DTYPE_F64, at::kDouble},
	{CB_DTYPE_C64, at::kComplexFloat},
#if CB_TORCH_AT_LEAST(2, 1)
	{CB_DTYPE_F8_E4M3, at::ScalarType::Float8_e4m3fn},
	{CB_DTYPE_F8_E5M2, at::ScalarType::Float8_e5m2},
#endif
#if CB_TORCH_AT_LEAST(2, 2)
	{CB_DTYPE_F8_E4M3FNUZ, at::ScalarType::Float8_e4m3fnuz},
	{CB_DTYPE_F8_E5M2FNUZ, at::ScalarType::Float8_e5m2fnuz},
#endif
#if CB_TORCH_AT_LEAST(2, 3)
	{CB_DTYPE_U16, at::ScalarType::UInt16},
	{CB_DTYPE_U32, at::ScalarType::UInt32},
	{CB_DTYPE_U64, at::ScalarType::UInt64},
#endif
};

bool to_scalar_type(int32_t dtype, at::ScalarType *out)
{
	for (const auto &m : dtypes)
		if (m.cb == dtype) {
			*out = m.at;
			return true;
		}
	return false;
}

int32_t from_scalar_type(at::ScalarType st)
{
	for (const auto &m : dtypes)
		if (m.at == st)
			return m.cb;
	return -1;
}

// A device from the project's codes; false for an unknown kind.
bool to_device(int32_t kind, int32_t index, at::Device *out)
{
	if (kind == CB_ATEN_CPU) {
		*out = at::Device(at::kCPU);
		return true;
	}
	if (kind == CB_ATEN_CUDA && index >= 0 && index < 128) {
		*out = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
		return true;
	}
	return false;
}

int bad_arg(struct cb_error *err, const char *what)
{
	return cb_error_set(err, CB_EUSAGE, CB_HERE, nullptr, nullptr, "ATen shim: %s", what);
}

// A new handle owning `t`; throws std::bad_alloc like any allocation here.
struct cb_aten_tensor *wrap(at::Tensor t)
{
	return new cb_aten_tensor{std::move(t)};
}

// The host model's storages in huge pages. While switched on, every CPU
// storage ATen allocates is carved (64-byte aligned, as c10 aligns) from one
// arena mapped for the whole model, 2 MiB-aligned and advised
// MADV_HUGEPAGE: the layout safetensors-read's model has (its per-tensor
// mappings merge into one), so the pair compares the code, not the pages.
// Per-storage huge pages (PyTorch 2.x's THP_MEM_ALLOC_ENABLE=1) were tried
// first: each storage's tail stays in small pages, which on the development
// VM made reading into the model twice as slow, and rounding every storage
// up to 2 MiB cost 12-15% more memory. Everything else, everything past the
// arena, and everything while off goes to the allocator that was there.
class HugePageAllocator final : public c10::Allocator
{
      public:
	explicit HugePageAllocator(c10::Allocator *base) : base_(base)
	{
	}

	c10::DataPtr allocate(size_t n) const override
	{
		if (on.load(std::memory_order_relaxed) && arena_) {
			size_t need = (n + kAlign - 1) & ~(kAlign - 1);
			if (need <= cap_ - used_) {
				void *p = arena_ + used_;
				used_ += need;
				return {p, p, &keep, c10::Device(c10::DeviceType::CPU)};
			}
		}
		return base_->allocate(n);
	}

#if CB_TORCH_AT_LEAST(2, 3)
	void copy_data(void *dest, const void *src, std::size_t count) const override
	{
		std::memcpy(dest, src, count);
	}
#endif

	// Maps an arena of at least `bytes`; false when the memory is not there
	// (the storages then come from c10 as usual).
	bool map_arena(size_t bytes)
	{
		release();
		size_t len = (bytes + kHuge - 1) & ~(kHuge - 1);
		void *p = len ? mmap(nullptr, len, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
			      : MAP_FAILED;
		if (p == MAP_FAILED)
			return false;
		(void)madvise(p, len, MADV_HUGEPAGE); // a hint: refused changes nothing
		arena_ = static_cast<char *>(p);
		cap_ = len;
		used_ = 0;
		return true;
	}

	// Only once every storage carved from the arena is gone.
	void release()
	{
		if (arena_)
			munmap(arena_, cap_);
		arena_ = nullptr;
		cap_ = used_ = 0;
	}

	std::atomic<bool> on{false};

      private:
	static void keep(void *)
	{
	} // the arena owns the memory
	static constexpr size_t kHuge = size_t{2} << 20;
	static constexpr size_t kAlign = 64;
	c10::Allocator *base_; // c10's, never freed
	// Used by the one thread that builds the model, while `on`.
	char *arena_ = nullptr;
	size_t cap_ = 0;
	mutable size_t used_ = 0;
};

// c10 keeps a raw pointer to the CPU allocator for the life of the process,
// so ours is installed once and never freed: the one piece of state here
// that outlives a call. Priority 1 outranks c10's default.
HugePageAllocator *huge_allocator()
{
	static HugePageAllocator *installed = nullptr;
	if (!installed) {
		installed = new HugePageAllocator(c10::GetCPUAllocator());
		c10::SetCPUAllocator(installed, 1);
	}
	return installed;
}

} // namespace

// The firewall around every body. `code` is what a libtorch exception means
// for this entry (CB_EUNSUPPORTED for "libtorch cannot read this file").
#define CB_ATEN_TRY try {
#define CB_ATEN_CATCH(err, code)                                        \
	}                                                               \
	catch (const c10::Error &e)                                     \
	{                                                               \
		return fail((err), (code), e.what_without_backtrace()); \
	}                                                               \
	catch (const std::bad_alloc &)                                  \
	{                                                               \
		return fail((err), CB_ENOMEM, "out of memory");         \
	}                                                               \
	catch (const std::exception &e)                                 \
	{                                                               \
		return fail((err), (code), e.what());                   \
	}                                                               \
	catch (...)                                                     \
	{                                                               \
		return fail((err), (code), "unknown C++ exception");    \
	}

extern "C" {

const char *cb_aten_version(void)
{
	return TORCH_VERSION;
}

int cb_aten_cuda_device_count(int *count_out, struct cb_error *err)
{
	CB_ATEN_TRY
	*count_out = static_cast<int>(torch::cuda::device_count());
	return CB_OK;
	CB_ATEN_CATCH(err, CB_EENV)
}

int cb_aten_synchronize(int32_t device_kind, int32_t device_index, struct cb_error *err)
{
	CB_ATEN_TRY
	if (device_kind == CB_ATEN_CUDA)
		torch::cuda::synchronize(device_index);
	return CB_OK;
	CB_ATEN_CATCH(err, CB_EENV)
}

/* What cb_aten_empty and cb_aten_from_blob both check first: our dtype and
 * device codes mapped to ATen's, and the rank within bounds. */
static int resolve_layout(int32_t dtype, int32_t device_kind, int32_t device_index, size_t rank,
			  at::ScalarType *st, at::Device *dev, struct cb_error *err)
{
	if (!to_scalar_type(dtype, st))
		return cb_error_set(err, CB_EUNSUPPORTED, CB_HERE, nullptr, nullptr,
				    "libtorch %s has no dtype %s", TORCH_VERSION,
				    cb_dtype_name(static_cast<enum cb_dtype>(dtype)));
	if (!to_device(device_kind, device_index, dev) || rank > CB_ATEN_MAX_RANK)
		return bad_arg(err, "bad device or rank");
	return CB_OK;
}

int cb_aten_empty(int32_t dtype, size_t rank, const int64_t *sizes, const int64_t *strides,
		  int32_t device_kind, int32_t device_index, int pinned,
		  struct cb_aten_tensor **out, struct cb_error *err)
{
	*out = nullptr;
	at::ScalarType st;
	at::Device dev(at::kCPU);
	if (int rc = resolve_layout(dtype, device_kind, device_index, rank, &st, &dev, err))
		return rc;
	CB_ATEN_TRY
	auto opts = at::TensorOptions().dtype(st).device(dev).pinned_memory(pinned != 0);
	at::IntArrayRef size_ref(sizes, rank);
	at::Tensor t = strides ? at::empty_strided(size_ref, at::IntArrayRef(strides, rank), opts)
			       : at::empty(size_ref, opts);
	*out = wrap(std::move(t));
	return CB_OK;
	CB_ATEN_CATCH(err, CB_EENV)
}

int cb_aten_host_huge_pages(size_t arena_bytes, struct cb_error *err)
{
	CB_ATEN_TRY
	HugePageAllocator *a = huge_allocator();
	if (arena_bytes && !a->map_arena(arena_bytes))
		return cb_error_set(err, CB_ENOMEM, CB_HERE, nullptr, nullptr,
				    "cannot map %zu bytes for the model", arena_bytes);
	a->on.store(arena_bytes != 0, std::memory_order_relaxed);
	return CB_OK;
	CB_ATEN_CATCH(err, CB_EENV)
}

void cb_aten_host_arena_release(void)
{
	try {
		huge_allocator()->release();
	} catch (...) {
		// installing the allocator can only fail before any arena exists
	}
}

int cb_aten_zero(struct cb_aten_tensor *t, struct cb_error *err)
{
	if (!t)
		return bad_arg(err, "no tensor");
	CB_ATEN_TRY
	t->t.zero_();
	return CB_OK;
	CB_ATEN_CATCH(err, CB_EENV)
}

int cb_aten_from_blob(void *data, int32_t dtype, size_t rank, const int64_t *sizes,
		      const int64_t *strides, int32_t device_kind, int32_t device_index,
		      struct cb_aten_tensor **out, struct cb_error *err)
{
	*out = nullptr;
	at::ScalarType st;
	at::Device dev(at::kCPU);
	if (int rc = resolve_layout(dtype, device_kind, device_index, rank, &st, &dev, err))
		return rc;
	CB_ATEN_TRY
	auto opts = at::TensorOptions().dtype(st).device(dev);
	at::IntArrayRef size_ref(sizes, rank);
	// No deleter: the memory stays the caller's (a mapping, a buffer).
	at::Tensor t = strides ? at::from_blob(data, size_ref, at::IntArrayRef(strides, rank), opts)
			       : at::from_blob(data, size_ref, opts);
	*out = wrap(std::move(t));
	return CB_OK;
	CB_ATEN_CATCH(err, CB_EENV)
}

int cb_aten_as_strided(const struct cb_aten_tensor *base, size_t rank, const int64_t *sizes,
		       const int64_t *strides, int64_t storage_offset, struct cb_aten_tensor **out,
		       struct cb_error *err)
{
	*out = nullptr;
	if (!base || rank > CB_ATEN_MAX_RANK)
		return bad_arg(err, "no tensor, or rank too large");
	CB_ATEN_TRY
	*out = wrap(base->t.as_strided(at::IntArrayRef(sizes, rank), at::IntArrayRef(strides, rank),
				       storage_offset));
	return CB_OK;
	CB_ATEN_CATCH(err, CB_EFORMAT)
}

int cb_aten_share(const struct cb_aten_tensor *t, struct cb_aten_tensor **out, struct cb_error *err)
{
	*out = nullptr;
	if (!t)
		return bad_arg(err, "no tensor");
	CB_ATEN_TRY
	*out = wrap(t->t);
	return CB_OK;
	CB_ATEN_CATCH(err, CB_EINTERNAL)
}

int cb_aten_copy(struct cb_aten_tensor *dst, const struct cb_aten_tensor *src, int non_blocking,
		 struct cb_error *err)
{
	if (!dst || !src)
		return bad_arg(err, "no tensor");
	CB_ATEN_TRY
	dst->t.copy_(src->t, non_blocking != 0);
	return CB_OK;
	CB_ATEN_CATCH(err, CB_EENV)
}

int cb_aten_to(const struct cb_aten_tensor *src, int32_t device_kind, int32_t device_index,
	       int non_blocking, struct cb_aten_tensor **out, struct cb_error *err)
{
	*out = nullptr;
	at::Device dev(at::kCPU);
	if (!src || !to_device(device_kind, device_index, &dev))
		return bad_arg(err, "no tensor, or a bad device");
	CB_ATEN_TRY
	*out = wrap(src->t.to(dev, src->t.scalar_type(), non_blocking != 0));
	return CB_OK;
	CB_ATEN_CATCH(err, CB_EENV)
}

int cb_aten_data_ptr(const struct cb_aten_tensor *t, void **out, struct cb_error *err)
{
	*out = nullptr;
	if (!t)
		return bad_arg(err, "no tensor");
	CB_ATEN_TRY
	*out = t->t.data_ptr();
	return CB_OK;
	CB_ATEN_CATCH(err, CB_EINTERNAL)
}

int cb_aten_describe(const struct cb_aten_tensor *t, struct cb_aten_desc *out, struct cb_error *err)
{
	std::memset(out, 0, sizeof *out);
	if (!t)
		return bad_arg(err, "no tensor");
	CB_ATEN_TRY
	const at::Tensor &x = t->t;
	out->dtype = from_scalar_type(x.scalar_type());
	at::Device dev = x.device();
	out->device_kind = dev.is_cpu() ? CB_ATEN_CPU : dev.is_cuda() ? CB_ATEN_CUDA : -1;
	out->device_index = dev.has_index() ? dev.index() : -1;
	out->rank = static_cast<size_t>(x.dim());
	out->sizes = x.sizes().data();
	out->strides = x.strides().data();
	out->storage_offset = x.storage_offset();
	out->numel = x.numel();
	out->element_size = static_cast<size_t>(x.element_size());
	out->contiguous = x.is_contiguous();
	return CB_OK;
	CB_ATEN_CATCH(err, CB_EINTERNAL)
}

void cb_aten_free(struct cb_aten_tensor *t)
{
	// ~Tensor only drops a reference; it does not throw.
	delete t;
}

} // extern "C"

namespace
{

// A dict key as Python's str() would print it, for the key path.
std::string key_text(const c10::IValue &k)
{
	if (k.isString())
		return k.toStringRef();
	if (k.isInt())
		return std::to_string(k.toInt());
	if (k.isBool())
		return k.toBool() ? "True" : "False";
	return "?";
}

std::string join(const std::string &path, const std::string &key)
{
	return path.empty() ? key : path + "." + key;
}

// Walks the loaded value as docs/datasets-and-method.md §2 names tensors;
// non-tensor leaves are skipped. A non-zero return from fn ends the walk.
int walk(const c10::IValue &v, const std::string &path, cb_aten_tensor_fn fn, void *cookie,
	 struct cb_error *err)
{
	int rc = CB_OK;
	if (v.isTensor()) {
		// Borrowed: a handle on the stack's copy of the tensor, for the call.
		cb_aten_tensor h{v.toTensor()};
		return fn(cookie, path.c_str(), &h, err);
	}
	if (v.isGenericDict()) {
		for (const auto &kv : v.toGenericDict())
			if ((rc = walk(kv.value(), join(path, key_text(kv.key())), fn, cookie,
				       err)) != CB_OK)
				return rc;
	} else if (v.isList()) {
		auto items = v.toListRef();
		for (size_t i = 0; i < items.size(); i++)
			if ((rc = walk(items[i], join(path, std::to_string(i)), fn, cookie, err)) !=
			    CB_OK)
				return rc;
	} else if (v.isTuple()) {
		const auto &items = v.toTupleRef().elements();
		for (size_t i = 0; i < items.size(); i++)
			if ((rc = walk(items[i], join(path, std::to_string(i)), fn, cookie, err)) !=
			    CB_OK)
				return rc;
	}
	return rc;
}

// The whole file into a vector, as a C++ program hands it to pickle_load.
int read_file(const char *path, std::vector<char> *out, struct cb_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cb_error_errno(err, errno, CB_HERE, path, "open");
	struct stat st;
	int rc = CB_OK;
	if (fstat(fd, &st) != 0)
		rc = cb_error_errno(err, errno, CB_HERE, path, "fstat");
	else
		out->resize(static_cast<size_t>(st.st_size));
	for (size_t done = 0; rc == CB_OK && done < out->size();) {
		ssize_t n = read(fd, out->data() + done, out->size() - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			rc = n < 0 ? cb_error_errno(err, errno, CB_HERE, path, "read")
				   : cb_error_set(err, CB_EIO, CB_HERE, path, nullptr,
						  "file shrank while read");
		else
			done += static_cast<size_t>(n);
	}
	close(fd);
	return rc;
}

} // namespace

extern "C" int cb_aten_pickle_load_file(const char *path, cb_aten_tensor_fn fn, void *cookie,
					uint64_t *bytes_out, struct cb_error *err)
{
	CB_ATEN_TRY
	c10::IValue value;
	{
		std::vector<char> bytes;
		int rc = read_file(path, &bytes, err);
		if (rc != CB_OK)
			return rc;
		if (bytes_out)
			*bytes_out = bytes.size();
		try {
			value = torch::jit::pickle_load(bytes);
		} catch (const c10::Error &e) {
			// What libtorch cannot read is unsupported, not broken.
			fail(err, CB_EUNSUPPORTED, e.what_without_backtrace());
			cb_error_set_path(err, path);
			return CB_EUNSUPPORTED;
		}
	} // the file's bytes go here; the storages are copies
	return walk(value, std::string(), fn, cookie, err);
	CB_ATEN_CATCH(err, CB_EUNSUPPORTED)
}
