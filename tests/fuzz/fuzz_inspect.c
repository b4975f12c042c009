/* Fuzz target: whole-file `inspect` as the CLI does it: the input becomes a
 * file named model.pt (the name lets the sniffer send pickle streams to the
 * legacy reader; zip and safetensors files are recognised by content), goes
 * through cb_ckpt_open, and every tensor of an accepted file is hashed
 * (the reads and strided gathers the bounds checks promise are safe). */
#include <stdlib.h>

#include "ckpt.h"
#include "fuzz.h"
#include "tensor_hash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = cb_fuzz_file("model.pt", data, size);
	struct cb_error err = CB_ERROR_INIT;
	struct cb_ckpt *ckpt = NULL;
	if (cb_ckpt_open(path, CB_FORMAT_ANY, &ckpt, &err) != CB_OK) {
		if (err.code == CB_OK || !err.msg[0])
			__builtin_trap();
		return 0;
	}
	/* Every tensor (and view's storage) lies inside its file. */
	for (size_t i = 0; i < ckpt->n_tensors; i++) {
		const struct cb_ckpt_tensor *t = &ckpt->tensors[i];
		uint64_t fsize = ckpt->files[t->file].size;
		if (!t->stride && (t->offset > fsize || t->nbytes > fsize - t->offset))
			__builtin_trap();
	}
	uint64_t *hashes = calloc(ckpt->n_tensors ? ckpt->n_tensors : 1, sizeof *hashes);
	if (!hashes)
		abort();
	struct cb_error herr = CB_ERROR_INIT;
	/* One thread: the same input always takes the same path. */
	if (cb_ckpt_hash(ckpt, hashes, 1, &herr) != CB_OK && !herr.msg[0])
		__builtin_trap();
	free(hashes);
	cb_ckpt_free(ckpt);
	return 0;
}
