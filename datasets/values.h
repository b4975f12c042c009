/* Weight-like values for generated tensors: deterministic, fast, and shaped
 * like trained weights (a normal distribution with sigma 0.02, quantised to
 * 4096 levels), never zeros.
 *
 * Each tensor draws from its own splitmix64 stream seeded from the dataset
 * seed and the tensor's name, so a tensor's bytes do not depend on which
 * thread made it or on what else the model holds.
 */
#ifndef CB_VALUES_H
#define CB_VALUES_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

#define CB_VALUE_LEVELS 4096

/* Encoded values for one dtype: CB_VALUE_LEVELS entries of `esize` bytes.
 * Immutable after cb_value_table_init: share it between threads. */
struct cb_value_table {
	enum cb_dtype dtype;
	unsigned esize; /* bytes per element; 0 for sub-byte types */
	/* entry i at byte i × esize; aligned for any element type */
	_Alignas(8) uint8_t levels[CB_VALUE_LEVELS * 8];
};

void cb_value_table_init(struct cb_value_table *table, enum cb_dtype dtype);

/* The stream state of one tensor. */
uint64_t cb_value_stream_seed(uint64_t dataset_seed, const char *tensor_name);

/* Fills `len` bytes (a whole number of elements, except for sub-byte types
 * whose bytes are random packed codes) and advances *state. */
void cb_values_fill(const struct cb_value_table *table, uint64_t *state, void *buf, size_t len);

/* Half and bfloat16 encodings of a float, round to nearest even. */
uint16_t cb_float_to_f16(float value);
uint16_t cb_float_to_bf16(float value);

#endif
