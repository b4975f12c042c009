/* The module's two exported symbols (torch_module.h); everything else in
 * ckptbench-torch.so is built with hidden visibility. */
#include "cb_aten.h"
#include "torch_loaders.h"

#define CB_EXPORT __attribute__((visibility("default")))

int cb_torch_probe_gpu(struct cb_error *err)
{
	int n = 0;
	if (cb_aten_cuda_device_count(&n, err) != CB_OK)
		return CB_EUNAVAILABLE;
	if (n == 0)
		return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL,
			       "libtorch %s sees no CUDA device (a CPU-only build, or no GPU)",
			       cb_aten_version());
	return CB_OK;
}

static const struct cb_torch_hooks *const hooks[] = {
	&cb_torch_safetensors, &cb_torch_safetensors_mmap, &cb_torch_pickle,
	&cb_torch_pickle_load, &cb_torch_safetensors_gpu,  &cb_torch_safetensors_mmap_gpu,
	&cb_torch_pickle_gpu,  &cb_torch_pickle_load_gpu,
};

/* Declared here only: nothing in the module uses them, ckptbench dlsyms. */
CB_EXPORT extern const unsigned cb_torch_module_abi;
CB_EXPORT extern const struct cb_torch_module cb_torch_module;

CB_EXPORT const unsigned cb_torch_module_abi = CB_TORCH_MODULE_ABI;

CB_EXPORT const struct cb_torch_module cb_torch_module = {
	.abi = CB_TORCH_MODULE_ABI,
	.loader_abi = CB_LOADER_ABI,
	.libtorch_version = cb_aten_version,
	.n_loaders = sizeof hooks / sizeof hooks[0],
	.loaders = hooks,
};
