#include "dtype.h"

#include <string.h>

struct dtype_info {
	const char *name;
	unsigned bits;
	bool is_float;
};

static const struct dtype_info dtype_table[CB_DTYPE_COUNT] = {
#define CB_X_INFO(id, name, bits, is_float) [CB_DTYPE_##id] = {name, bits, is_float},
	CB_DTYPES(CB_X_INFO)
#undef CB_X_INFO
};

static bool valid(enum cb_dtype dtype)
{
	return (int)dtype >= 0 && dtype < CB_DTYPE_COUNT;
}

const char *cb_dtype_name(enum cb_dtype dtype)
{
	return valid(dtype) ? dtype_table[dtype].name : "?";
}

unsigned cb_dtype_bits(enum cb_dtype dtype)
{
	return valid(dtype) ? dtype_table[dtype].bits : 0;
}

bool cb_dtype_is_subbyte(enum cb_dtype dtype)
{
	return valid(dtype) && dtype_table[dtype].bits < 8;
}

bool cb_dtype_is_float(enum cb_dtype dtype)
{
	return valid(dtype) && dtype_table[dtype].is_float;
}

enum cb_dtype cb_dtype_from_name(const char *name, size_t len)
{
	for (int i = 0; i < CB_DTYPE_COUNT; i++) {
		const char *candidate = dtype_table[i].name;
		if (strlen(candidate) == len && memcmp(candidate, name, len) == 0)
			return (enum cb_dtype)i;
	}
	return CB_DTYPE_INVALID;
}

bool cb_dtype_nbytes(enum cb_dtype dtype, uint64_t numel, uint64_t *nbytes_out,
		     bool *misaligned_out)
{
	uint64_t bits;
	if (misaligned_out)
		*misaligned_out = false;
	if (!valid(dtype) || __builtin_mul_overflow(numel, (uint64_t)cb_dtype_bits(dtype), &bits))
		return false;
	if (bits % 8 != 0) {
		if (misaligned_out)
			*misaligned_out = true;
		return false;
	}
	*nbytes_out = bits / 8;
	return true;
}
