/* Element types, named as safetensors names them (docs/datasets-and-method.md §2).
 *
 * The enum order is the safetensors reference's `Dtype` declaration order,
 * which its writer sorts by (descending); keep it that way. Sub-byte types
 * (F4, F6_*) count logical elements in shapes; their bytes are opaque packed
 * data that ckptbench never reinterprets.
 */
#ifndef CB_DTYPE_H
#define CB_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* X(enum suffix, safetensors name, bits per element, is a float type) */
#define CB_DTYPES(X)                           \
	X(BOOL, "BOOL", 8, false)              \
	X(F4, "F4", 4, true)                   \
	X(F6_E2M3, "F6_E2M3", 6, true)         \
	X(F6_E3M2, "F6_E3M2", 6, true)         \
	X(U8, "U8", 8, false)                  \
	X(I8, "I8", 8, false)                  \
	X(F8_E5M2, "F8_E5M2", 8, true)         \
	X(F8_E4M3, "F8_E4M3", 8, true)         \
	X(F8_E8M0, "F8_E8M0", 8, true)         \
	X(F8_E4M3FNUZ, "F8_E4M3FNUZ", 8, true) \
	X(F8_E5M2FNUZ, "F8_E5M2FNUZ", 8, true) \
	X(I16, "I16", 16, false)               \
	X(U16, "U16", 16, false)               \
	X(F16, "F16", 16, true)                \
	X(BF16, "BF16", 16, true)              \
	X(I32, "I32", 32, false)               \
	X(U32, "U32", 32, false)               \
	X(F32, "F32", 32, true)                \
	X(C64, "C64", 64, true)                \
	X(F64, "F64", 64, true)                \
	X(I64, "I64", 64, false)               \
	X(U64, "U64", 64, false)

enum cb_dtype {
#define CB_X_DTYPE(id, name, bits, is_float) CB_DTYPE_##id,
	CB_DTYPES(CB_X_DTYPE)
#undef CB_X_DTYPE
		CB_DTYPE_COUNT,
	CB_DTYPE_INVALID = -1
};

/* The safetensors name, e.g. "BF16"; "?" for an invalid value. Static. */
const char *cb_dtype_name(enum cb_dtype dtype);

/* Bits per element (4, 6, 8, 16, 32 or 64); 0 for an invalid value. */
unsigned cb_dtype_bits(enum cb_dtype dtype);

/* True for F4, F6_E2M3, F6_E3M2. */
bool cb_dtype_is_subbyte(enum cb_dtype dtype);

bool cb_dtype_is_float(enum cb_dtype dtype);

/* Exact, case-sensitive lookup of a name of `len` bytes; CB_DTYPE_INVALID
 * when unknown. */
enum cb_dtype cb_dtype_from_name(const char *name, size_t len);

/* Bytes of a tensor of `numel` elements, checked: false when numel × bits
 * overflows 64 bits or is not a whole number of bytes. *misaligned_out
 * (may be NULL) tells the two apart. */
bool cb_dtype_nbytes(enum cb_dtype dtype, uint64_t numel, uint64_t *nbytes_out,
		     bool *misaligned_out);

#endif
