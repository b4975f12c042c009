/* The contract between ckptbench and its libtorch module.
 *
 * The libtorch loaders and the ATen shim are built into a shared module
 * (ckptbench-torch.so, meson's shared_module) that ckptbench dlopens at run
 * time, so the binary itself never links libtorch and runs where libtorch is
 * not installed (docs/architecture.md). The registry still lists every
 * libtorch loader in every build: their descriptors live in the binary
 * (loaders/libtorch.c) and forward each hook to the module's.
 *
 * The module exports exactly two symbols: `cb_torch_module_abi`, checked
 * before anything else is touched, and `cb_torch_module`, the hook table.
 * Everything else in it is hidden.
 *
 * Shared by both sides, so it holds the options structs too: the harness
 * fills them from the binary's option tables, the module reads them.
 */
#ifndef CB_TORCH_MODULE_H
#define CB_TORCH_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loader.h"

/* Bump when anything below, or CB_LOADER_ABI, changes incompatibly. */
#define CB_TORCH_MODULE_ABI 1

/* The module's file name, and the environment variable that names another
 * file to load instead of looking for it. */
#define CB_TORCH_MODULE_FILE "ckptbench-torch.so"
#define CB_TORCH_MODULE_ENV "CKPTBENCH_TORCH_MODULE"

/* One loader's hooks in the module, under the name of its descriptor in
 * the binary. The stub allocates `priv_size` zeroed bytes for open(). */
struct cb_torch_hooks {
	const char *name;
	size_t priv_size;
	/* NULL: available wherever the module loads. */
	int (*probe)(struct cb_error *err);
	int (*open)(void *priv, const struct cb_load_ctx *ctx, struct cb_error *err);
	int (*load)(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
		    struct cb_error *err);
	void (*close)(void *priv);
	int (*control)(void *priv, int op, void *arg, struct cb_error *err);
};

struct cb_torch_module {
	unsigned abi;                          /* CB_TORCH_MODULE_ABI */
	unsigned loader_abi;                   /* CB_LOADER_ABI */
	const char *(*libtorch_version)(void); /* "1.13.1" */
	size_t n_loaders;
	const struct cb_torch_hooks *const *loaders; /* n_loaders of them */
};

/* Options of the libtorch loaders: libtorch-safetensors(-gpu) take all of
 * them, as safetensors-read's; the other CPU loaders only `thp` (the table in
 * loaders/libtorch.c points into the same struct, so every hook reads its
 * options one way). */
struct cb_torch_read_opts {
	uint64_t threads;   /* 0: one per online CPU, at most 16 */
	uint64_t chunk_mib; /* bytes per pread (and per pinned staging buffer) */
	bool thp;           /* host model: transparent huge pages, as safetensors-read */
};

#endif
