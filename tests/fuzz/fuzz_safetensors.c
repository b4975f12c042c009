/* Fuzz target: the safetensors header parser and validator on a whole file
 * held in memory (length field, JSON, every rule, the data tiling). When a
 * header is accepted, everything it hands out is read back, so that a
 * pointer or count the validator got wrong shows up under ASan. */
#include <string.h>

#include "fuzz.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cb_error err = CB_ERROR_INIT;
	struct cb_st_file *f = NULL;
	if (cb_st_parse_buffer("fuzz.safetensors", data, size, &f, &err) != CB_OK) {
		/* A refusal must say something. */
		if (err.code == CB_OK || !err.msg[0])
			__builtin_trap();
		return 0;
	}
	uint64_t data_size = cb_st_data_size(f);
	for (size_t i = 0; i < f->n_tensors; i++) {
		const struct cb_st_tensor *t = &f->tensors[i];
		if (t->begin > t->end || t->end > data_size || cb_dtype_bits(t->dtype) == 0)
			__builtin_trap();
		uint64_t numel = 1;
		for (uint32_t d = 0; d < t->rank; d++)
			numel *= t->shape[d];
		if (numel != t->numel || cb_st_find(f, t->name) != t)
			__builtin_trap();
	}
	for (size_t i = 0; i < f->n_meta; i++)
		if (strlen(f->meta[i].key) > size || strlen(f->meta[i].value) > size)
			__builtin_trap();
	cb_st_free(f);
	return 0;
}
