/* Model presets: the tensor names and shapes of real architectures, scaled
 * to a requested size. Pure description; no bytes are made here. */
#ifndef CB_PRESETS_H
#define CB_PRESETS_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "error.h"

#define CB_PRESET_MAX_RANK 4

struct cb_preset_tensor {
	char *name; /* owned by the model spec */
	uint32_t rank;
	uint64_t shape[CB_PRESET_MAX_RANK];
};

struct cb_model_spec {
	char preset[32];
	enum cb_dtype dtype;
	size_t n;
	struct cb_preset_tensor *tensors; /* in architecture order */
	uint64_t total_bytes;             /* sum of the tensors' bytes */
	char description[160];            /* e.g. "hidden 1024, 12 layers, ..." */
};

/* NULL-terminated list of preset names. */
const char *const *cb_preset_names(void);

/* True when the preset has a size of its own (gpt2) and ignores --size. */
int cb_preset_fixed_size(const char *preset);

/* The size a preset gets without --size, in bytes (0 for fixed-size ones). */
uint64_t cb_preset_default_size(const char *preset);

/* The dtype a preset gets without --dtype. */
enum cb_dtype cb_preset_default_dtype(const char *preset);

/* Builds the tensor list of `preset` at `target_bytes` (ignored for fixed
 * presets) in `dtype`. Scalable presets land within 2% of the target. The
 * caller frees with cb_model_spec_free. */
CB_NODISCARD int cb_preset_build(const char *preset, uint64_t target_bytes, enum cb_dtype dtype,
				 struct cb_model_spec *out, struct cb_error *err);

void cb_model_spec_free(struct cb_model_spec *spec);

#endif
