/* The hook tables of the module's loaders (one file each family) and what
 * they share; module.c lists them for ckptbench. */
#ifndef CB_TORCH_LOADERS_H
#define CB_TORCH_LOADERS_H

#include "torch_module.h"

extern const struct cb_torch_hooks cb_torch_safetensors;
extern const struct cb_torch_hooks cb_torch_safetensors_mmap;
extern const struct cb_torch_hooks cb_torch_pickle;
extern const struct cb_torch_hooks cb_torch_pickle_load;
extern const struct cb_torch_hooks cb_torch_safetensors_gpu;
extern const struct cb_torch_hooks cb_torch_safetensors_mmap_gpu;
extern const struct cb_torch_hooks cb_torch_pickle_gpu;
extern const struct cb_torch_hooks cb_torch_pickle_load_gpu;

/* The GPU loaders' probe: CB_EUNAVAILABLE unless libtorch sees a CUDA
 * device (Debian's libtorch is CPU-only). */
int cb_torch_probe_gpu(struct cb_error *err);

#endif
