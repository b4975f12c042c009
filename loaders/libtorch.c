/* The libtorch loaders' descriptors: listed in every build, run from a
 * module (loaders/torch/torch_module.h).
 *
 * Each descriptor here is complete as data (name, format, device, options)
 * so that listings, plans and option parsing never need libtorch; its hooks
 * forward to the same-named hooks of ckptbench-torch.so, dlopened the first
 * time any of them runs. Without the module they say why:
 *   "not built: ..."               this build had no libtorch (CB_HAVE_TORCH 0)
 *   "libtorch module not found: ..." built, but the module (or libtorch) does
 *                                  not load here
 *
 * Where the module is looked for: the file named by $CKPTBENCH_TORCH_MODULE
 * (then nothing else); else, through resources.h, the build tree's
 * loaders/torch/ for a binary run from its build directory, then
 * libdir/ckptbench relative to the installed binary.
 */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cb_config.h"
#include "loader.h"
#include "engine/read_engine.h"
#include "resources.h"
#include "torch/torch_module.h"

static const struct cb_loader_opt read_opts[] = {
	{"threads", CB_OPT_U64, offsetof(struct cb_torch_read_opts, threads), 0,
	 CB_ENGINE_MAX_THREADS, "0", "reader threads (0: one per CPU, at most 16)"},
	{"chunk-mib", CB_OPT_U64, offsetof(struct cb_torch_read_opts, chunk_mib), 1, 1024, "16",
	 "MiB per pread (and per pinned staging buffer on a GPU)"},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

/* The host model's page size, for the CPU loaders. Default on, as for
 * safetensors-read and pickle, so that each pair compares ATen with plain
 * memory and not 4 KiB pages with 2 MiB ones (torch_model.h); thp=0 is what
 * libtorch does by itself. */
#define THP_HELP \
	"host model in huge pages: at::empty's storages carved from one MADV_HUGEPAGE arena"

static const struct cb_loader_opt cpu_read_opts[] = {
	{"threads", CB_OPT_U64, offsetof(struct cb_torch_read_opts, threads), 0,
	 CB_ENGINE_MAX_THREADS, "0", "reader threads (0: one per CPU, at most 16)"},
	{"chunk-mib", CB_OPT_U64, offsetof(struct cb_torch_read_opts, chunk_mib), 1, 1024, "16",
	 "MiB per pread"},
	{"thp", CB_OPT_BOOL, offsetof(struct cb_torch_read_opts, thp), 0, 0, "1", THP_HELP},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

static const struct cb_loader_opt model_opts[] = {
	{"thp", CB_OPT_BOOL, offsetof(struct cb_torch_read_opts, thp), 0, 0, "1", THP_HELP},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

#if CB_HAVE_TORCH
#define NOT_BUILT NULL
#else
#define NOT_BUILT \
	"not built: no libtorch at configure time (install libtorch-dev, or -Dlibtorch_dir=DIR)"
#endif

/* The loaded module, once per process: a dlopen'd library is process-wide
 * by nature, so this is the one piece of global state of the loaders. Never
 * dlclosed (libtorch registers atexit handlers and thread pools). */
static const struct cb_torch_module *module;
static char module_error[768];

/* Tries one file; true when it loaded and passed the ABI checks, else
 * module_error says why. */
static bool try_module(const char *path)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(module_error, sizeof module_error, "libtorch module not found: %s",
			 dlerror());
		return false;
	}
	const unsigned *abi = dlsym(h, "cb_torch_module_abi");
	const struct cb_torch_module *m = dlsym(h, "cb_torch_module");
	if (!abi || !m || *abi != CB_TORCH_MODULE_ABI || m->abi != CB_TORCH_MODULE_ABI ||
	    m->loader_abi != CB_LOADER_ABI) {
		snprintf(module_error, sizeof module_error,
			 "libtorch module not found: %s is not a ckptbench-torch module of ABI %u "
			 "(loader ABI %u)",
			 path, CB_TORCH_MODULE_ABI, CB_LOADER_ABI);
		dlclose(h);
		return false;
	}
	module = m;
	return true;
}

/* Finds and loads the module; module_error says why not. */
static void module_load(void)
{
	const char *env = getenv(CB_TORCH_MODULE_ENV);
	if (env && *env) {
		if (access(env, F_OK) == 0)
			try_module(env);
		else
			snprintf(module_error, sizeof module_error,
				 "libtorch module not found: $%s names %.300s: no such file",
				 CB_TORCH_MODULE_ENV, env);
		return;
	}
	char path[PATH_MAX];
	struct cb_error why = CB_ERROR_INIT;
	if (cb_resource_find(CB_RES_MODULE, CB_TORCH_MODULE_FILE, path, sizeof path, &why) == CB_OK)
		try_module(path);
	else
		snprintf(module_error, sizeof module_error, "%s", why.msg);
}

/* The module, loaded at the first call; after a failure, the same error
 * every time (module_error, a whole message). */
static const struct cb_torch_module *module_get(struct cb_error *err)
{
	if (!module && !*module_error)
		module_load();
	if (module)
		return module;
	CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL, "%s", module_error);
	return NULL;
}

static const struct cb_torch_hooks *hooks_get(const char *name, struct cb_error *err)
{
	const struct cb_torch_module *m = module_get(err);
	for (size_t i = 0; m && i < m->n_loaders; i++)
		if (strcmp(m->loaders[i]->name, name) == 0)
			return m->loaders[i];
	if (m)
		CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL,
			"libtorch module not found: the module has no loader %s", name);
	return NULL;
}

/* The stub's private state: the module's hooks and their private state. */
struct stub {
	const struct cb_torch_hooks *hooks;
	void *priv;
};

static int stub_probe(const struct cb_loader *self, struct cb_error *err)
{
	const struct cb_torch_hooks *h = hooks_get(self->name, err);
	if (!h)
		return CB_EUNAVAILABLE;
	return h->probe ? h->probe(err) : CB_OK;
}

static int stub_open(const struct cb_loader *self, void *priv, const struct cb_load_ctx *ctx,
		     struct cb_error *err)
{
	struct stub *s = priv;
	const struct cb_torch_hooks *h = hooks_get(self->name, err);
	if (!h)
		return CB_EUNAVAILABLE;
	s->priv = calloc(1, h->priv_size ? h->priv_size : 1);
	if (!s->priv)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	s->hooks = h; /* from here on close() must run the module's close */
	return h->open(s->priv, ctx, err);
}

static int stub_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
		     struct cb_error *err)
{
	struct stub *s = priv;
	return s->hooks->load(s->priv, ctx, model, err);
}

static void stub_close(void *priv)
{
	struct stub *s = priv;
	if (s->hooks)
		s->hooks->close(s->priv);
	free(s->priv);
}

static int stub_control(void *priv, int op, void *arg, struct cb_error *err)
{
	struct stub *s = priv;
	if (!s->hooks || !s->hooks->control)
		return CB_EUNSUPPORTED;
	return s->hooks->control(s->priv, op, arg, err);
}

/* One descriptor per libtorch loader, all with the same stub hooks. */
#define CB_TORCH_LOADER(id, lname, fmt, dev, capbits, options, optsize, text) \
	const struct cb_loader cb_loader_##id = {                             \
		.abi = CB_LOADER_ABI,                                         \
		.name = lname,                                                \
		.summary = text,                                              \
		.format = fmt,                                                \
		.device = dev,                                                \
		.caps = (capbits) | CB_CAP_MODULE,                            \
		.opts = options,                                              \
		.opts_size = optsize,                                         \
		.priv_size = sizeof(struct stub),                             \
		.unavailable_reason = NOT_BUILT,                              \
		.probe = stub_probe,                                          \
		.open = stub_open,                                            \
		.load = stub_load,                                            \
		.close = stub_close,                                          \
		.control = stub_control,                                      \
	};

#define ST CB_FORMAT_SAFETENSORS
#define PT CB_FORMAT_PYTORCH
#define CPU CB_DEVICE_CPU
#define GPU CB_DEVICE_CUDA
#define HOST CB_CAP_HOST_MEM
#define DEVMEM CB_CAP_DEVICE_MEM
#define RO_SIZE sizeof(struct cb_torch_read_opts)

CB_TORCH_LOADER(libtorch_safetensors, "libtorch-safetensors", ST, CPU,
		HOST | CB_CAP_THREADS | CB_CAP_PARTIAL, cpu_read_opts, RO_SIZE,
		"ATen model (at::empty), each tensor pread into its data_ptr (threads)")
CB_TORCH_LOADER(libtorch_safetensors_mmap, "libtorch-safetensors-mmap", ST, CPU, HOST, model_opts,
		RO_SIZE,
		"ATen model, the file mapped and wrapped by from_blob, copy_ into the model")
CB_TORCH_LOADER(libtorch_pickle, "libtorch-pickle", PT, CPU, HOST, model_opts, RO_SIZE,
		"ATen model; our unpickler finds the records, storages read into ATen "
		"tensors, as_strided views copy_'d in (load_state_dict: ~2x peak)")
CB_TORCH_LOADER(libtorch_pickle_load, "libtorch-pickle-load", PT, CPU, HOST, model_opts, RO_SIZE,
		"torch::pickle_load of the whole file, then copy_ into the ATen model")
CB_TORCH_LOADER(
	libtorch_safetensors_gpu, "libtorch-safetensors-gpu", ST, GPU, DEVMEM, read_opts, RO_SIZE,
	"ATen model on cuda; pread into pinned staging, non_blocking copy_ (double-buffered)")
CB_TORCH_LOADER(libtorch_safetensors_mmap_gpu, "libtorch-safetensors-mmap-gpu", ST, GPU, DEVMEM,
		NULL, 0, "ATen model on cuda, copy_ from from_blob over the mapping (pageable)")
CB_TORCH_LOADER(libtorch_pickle_gpu, "libtorch-pickle-gpu", PT, GPU, DEVMEM, NULL, 0,
		"libtorch-pickle on the CPU, then .to(cuda) of every tensor")
CB_TORCH_LOADER(libtorch_pickle_load_gpu, "libtorch-pickle-load-gpu", PT, GPU, DEVMEM, NULL, 0,
		"torch::pickle_load, then copy_ into the ATen model on cuda")
