#include "values.h"

#include <math.h>
#include <string.h>
#include <xxhash.h>

static inline uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t cb_value_stream_seed(uint64_t dataset_seed, const char *tensor_name)
{
	uint64_t state = dataset_seed ^ XXH3_64bits(tensor_name, strlen(tensor_name));
	return splitmix64(&state);
}

/* Inverse normal CDF (Acklam's rational approximation, |error| < 1.2e-9). */
static double normal_quantile(double p)
{
	static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
				   -2.759285104469687e+02, 1.383577518672690e+02,
				   -3.066479806614716e+01, 2.506628277459239e+00};
	static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
				   -1.556989798598866e+02, 6.680131188771972e+01,
				   -1.328068155288572e+01};
	static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
				   -2.400758277161838e+00, -2.549732539343734e+00,
				   4.374664141464968e+00,  2.938163982698783e+00};
	static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
				   2.445134137142996e+00, 3.754408661907416e+00};
	if (p < 0.02425) {
		double q = sqrt(-2 * log(p));
		return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
		       ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
	}
	if (p > 1 - 0.02425)
		return -normal_quantile(1 - p);
	double q = p - 0.5, r = q * q;
	return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
	       (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

uint16_t cb_float_to_f16(float value)
{
	uint32_t x;
	memcpy(&x, &value, 4);
	uint32_t sign = (x >> 16) & 0x8000u;
	int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
	uint32_t mant = x & 0x7fffffu;
	if (exp >= 31)
		return (uint16_t)(sign | 0x7c00u); /* not reached for our values */
	if (exp <= 0) {
		if (exp < -10)
			return (uint16_t)sign;
		mant |= 0x800000u;
		uint32_t shift = (uint32_t)(14 - exp);
		uint32_t half = mant >> shift;
		uint32_t rest = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
		if (rest > mid || (rest == mid && (half & 1)))
			half++;
		return (uint16_t)(sign | half);
	}
	uint32_t half = ((uint32_t)exp << 10) | (mant >> 13);
	uint32_t rest = mant & 0x1fffu;
	if (rest > 0x1000u || (rest == 0x1000u && (half & 1)))
		half++;
	return (uint16_t)(sign | half);
}

uint16_t cb_float_to_bf16(float value)
{
	uint32_t x;
	memcpy(&x, &value, 4);
	x += 0x7fffu + ((x >> 16) & 1);
	return (uint16_t)(x >> 16);
}

/* A small float with `ebits` exponent and `mbits` mantissa bits, no
 * infinities; saturates at the largest finite code below 0x7f. Used for the
 * 8-bit float types, whose weights-like values are far from their limits. */
static uint8_t float_to_minifloat(float value, int ebits, int mbits, int bias)
{
	uint8_t sign = value < 0 ? 0x80 : 0;
	double mag = fabs((double)value);
	if (mag == 0)
		return sign;
	int e;
	double frac = frexp(mag, &e); /* mag = frac * 2^e, frac in [0.5, 1) */
	int exp_field = e - 1 + bias;
	double scaled;
	if (exp_field <= 0) { /* subnormal */
		scaled = ldexp(mag, bias - 1 + mbits);
		exp_field = 0;
	} else {
		scaled = (frac * 2 - 1) * (1 << mbits);
	}
	int mant = (int)nearbyint(scaled);
	if (mant >= (1 << mbits)) {
		mant -= 1 << mbits;
		exp_field++;
	}
	int code = (exp_field << mbits) | mant;
	int max_code = (1 << (ebits + mbits)) - 2;
	if (code > max_code)
		code = max_code;
	return (uint8_t)(sign | code);
}

void cb_value_table_init(struct cb_value_table *table, enum cb_dtype dtype)
{
	memset(table, 0, sizeof *table);
	table->dtype = dtype;
	unsigned bits = cb_dtype_bits(dtype);
	table->esize = bits >= 8 ? bits / 8 : 0;
	for (unsigned i = 0; i < CB_VALUE_LEVELS; i++) {
		double p = (i + 0.5) / CB_VALUE_LEVELS;
		double z = normal_quantile(p);
		float w = (float)(0.02 * z);
		uint8_t slot[8] = {0};
		int64_t small_int = (int64_t)i - CB_VALUE_LEVELS / 2;
		switch (dtype) {
		case CB_DTYPE_F32: memcpy(slot, &w, 4); break;
		case CB_DTYPE_F64: {
			double dw = 0.02 * z;
			memcpy(slot, &dw, 8);
			break;
		}
		case CB_DTYPE_C64: {
			float im = (float)(0.02 * normal_quantile(1 - p));
			memcpy(slot, &w, 4);
			memcpy(slot + 4, &im, 4);
			break;
		}
		case CB_DTYPE_F16: {
			uint16_t h = cb_float_to_f16(w);
			memcpy(slot, &h, 2);
			break;
		}
		case CB_DTYPE_BF16: {
			uint16_t h = cb_float_to_bf16(w);
			memcpy(slot, &h, 2);
			break;
		}
		case CB_DTYPE_F8_E4M3: slot[0] = float_to_minifloat(w * 16, 4, 3, 7); break;
		case CB_DTYPE_F8_E5M2: slot[0] = float_to_minifloat(w * 16, 5, 2, 15); break;
		case CB_DTYPE_F8_E4M3FNUZ: slot[0] = float_to_minifloat(w * 16, 4, 3, 8); break;
		case CB_DTYPE_F8_E5M2FNUZ: slot[0] = float_to_minifloat(w * 16, 5, 2, 16); break;
		case CB_DTYPE_F8_E8M0: slot[0] = (uint8_t)(120 + i % 8); break; /* scales 2^-7..1 */
		case CB_DTYPE_BOOL: slot[0] = (uint8_t)(i & 1); break;
		case CB_DTYPE_U8:
		case CB_DTYPE_U16:
		case CB_DTYPE_U32:
		case CB_DTYPE_U64: {
			uint64_t u = i;
			memcpy(slot, &u, table->esize); /* little-endian host */
			break;
		}
		default: /* signed integers; sub-byte types use raw bits */
			memcpy(slot, &small_int, table->esize ? table->esize : 1);
			if (table->esize == 1)
				slot[0] = (uint8_t)(int8_t)(small_int / 16);
			break;
		}
		if (table->esize)
			memcpy(&table->levels[i * table->esize], slot, table->esize);
	}
}

/* One loop per element size, so each is a tight table-lookup loop: 12 bits
 * of the stream pick one of the 4096 levels, five elements per 64-bit draw. */
#define FILL_LOOP(type)                                        \
	do {                                                   \
		type *out = buf;                               \
		const type *lut = (const type *)table->levels; \
		size_t n = len / sizeof(type), k = 0;          \
		while (k + 5 <= n) {                           \
			uint64_t r = splitmix64(state);        \
			out[k++] = lut[r & 4095];              \
			out[k++] = lut[(r >> 12) & 4095];      \
			out[k++] = lut[(r >> 24) & 4095];      \
			out[k++] = lut[(r >> 36) & 4095];      \
			out[k++] = lut[(r >> 48) & 4095];      \
		}                                              \
		uint64_t r = splitmix64(state);                \
		for (; k < n; k++, r >>= 12)                   \
			out[k] = lut[r & 4095];                \
	} while (0)

void cb_values_fill(const struct cb_value_table *table, uint64_t *state, void *buf, size_t len)
{
	switch (table->esize) {
	case 1: FILL_LOOP(uint8_t); break;
	case 2: FILL_LOOP(uint16_t); break;
	case 4: FILL_LOOP(uint32_t); break;
	case 8: FILL_LOOP(uint64_t); break;
	default: { /* sub-byte: packed random codes */
		uint8_t *out = buf;
		size_t k = 0;
		for (; k + 8 <= len; k += 8) {
			uint64_t r = splitmix64(state);
			memcpy(out + k, &r, 8);
		}
		uint64_t r = splitmix64(state);
		for (; k < len; k++, r >>= 8)
			out[k] = (uint8_t)r;
	}
	}
}
