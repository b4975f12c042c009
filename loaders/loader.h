/* The loader interface: one `static const struct cb_loader` per loader file,
 * listed in one table (registry.c). The harness (bench/) drives a loader
 * through this vtable only and never names a particular loader.
 *
 * Life of a loader in a trial child (bench/harness/trial.c):
 *
 *     probe()                  can it run here? if not, why (nothing timed)
 *     priv = calloc(priv_size) the harness owns the private state
 *     open(self, priv, ctx)    setup that is not part of a load (thread
 *                              pools, a GPU context); never reads tensor data
 *     -- baseline RSS, high-water mark reset --
 *     load(priv, ctx, model)   TIMED: from nothing to every tensor resident at
 *                              its destination; reports phase boundaries
 *     -- harness verifies model against the manifest (not timed) --
 *     close(priv)              frees everything; safe after a failed open or
 *                              load (the SQLite rule)
 *
 * The vtable only grows by appending fields under a new CB_LOADER_ABI;
 * rarities go through control(), not new hooks.
 */
#ifndef CB_LOADER_H
#define CB_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"
#include "error.h"
#include "manifest.h"
#include "slice.h"

/* Bump when struct cb_loader or the structs it takes change incompatibly. */
#define CB_LOADER_ABI 3

/* The most threads a loader takes by default (one per online CPU up to
 * this), and the most the calibration reads with: a loader's figure and
 * the ceiling it is read against then come from the same number of
 * threads. (With a cap of 8 against a 16-thread ceiling, the 16-core H100
 * machine charged safetensors-read for threads it was not given.) */
#define CB_DEFAULT_THREADS_MAX 16

enum cb_device_kind {
	CB_DEVICE_CPU = 0,
	CB_DEVICE_CUDA,
};

/* "cpu", "cuda". */
const char *cb_device_kind_name(enum cb_device_kind kind);

/* What a loader does, for listings and for the harness's checks. */
enum cb_loader_cap {
	CB_CAP_HOST_MEM = 1u << 0,   /* tensors end in host memory */
	CB_CAP_DEVICE_MEM = 1u << 1, /* tensors end in GPU memory */
	CB_CAP_ZERO_COPY = 1u << 2,  /* tensors are views into mapped files */
	CB_CAP_THREADS = 1u << 3,    /* uses several threads */
	CB_CAP_O_DIRECT = 1u << 4,   /* can bypass the page cache */
	CB_CAP_PEER = 1u << 5,       /* an external program (docs/peer-protocol.md) */
	CB_CAP_MODULE = 1u << 6,     /* hooks in a module loaded at run time (libtorch) */
	CB_CAP_PARTIAL = 1u << 7,    /* can load a part of the model (ctx->slice) */
};

/* Phases of a load (the trials' "phases" in docs/results-schema.md). */
enum cb_phase {
	CB_PHASE_NONE = -1, /* between phases: time counts towards no phase */
	CB_PHASE_INIT = 0,  /* the empty model: allocation, initialisation */
	CB_PHASE_READ,      /* reading and parsing the checkpoint */
	CB_PHASE_COPY,      /* copying or assigning into the model */
	CB_PHASE_TO_DEVICE, /* moving the model to the device */
	CB_PHASE_COUNT,
};

/* "host_mem", "device_mem", "zero_copy", "threads", "o_direct", "peer",
 * "module", "partial" for one bit of enum cb_loader_cap; NULL for any other value. */
const char *cb_loader_cap_name(unsigned cap);

/* "init", "read", "copy", "to_device". */
const char *cb_phase_name(enum cb_phase phase);

/* How a loader reports phase boundaries. The harness provides it; a loader
 * calls cb_loader_phase(ctx, P) when phase P starts, which ends the one
 * before. Time in load() outside any phase still counts in wall time. A
 * phase may be entered several times; its times add up. */
struct cb_phase_sink {
	void (*enter)(struct cb_phase_sink *sink, enum cb_phase phase);
};

/* Options as data (fio's struct fio_option, stress-ng's opts). The harness
 * allocates a zeroed struct of `opts_size` bytes, stores each option's
 * default and then each value the user gave at `offset`, and passes it to
 * open() and load() as ctx->opts. */
enum cb_opt_type {
	CB_OPT_BOOL,   /* bool; "0"/"1"/"true"/"false"/"yes"/"no" */
	CB_OPT_U64,    /* uint64_t within [min, max]; K/M/G suffixes allowed */
	CB_OPT_STRING, /* const char *, owned by the harness for the trial */
};

struct cb_loader_opt {
	const char *name; /* NULL ends the list */
	enum cb_opt_type type;
	size_t offset;     /* into the loader's options struct */
	uint64_t min, max; /* CB_OPT_U64 only */
	const char *def;   /* default, as text (as the user would write it) */
	const char *help;
};

/* "bool", "u64", "string". */
const char *cb_opt_type_name(enum cb_opt_type type);

/* Where a tensor of the model lives. */
enum cb_tensor_location {
	CB_LOC_HOST = 0,
	CB_LOC_DEVICE,
};

/* One tensor of the model as the loader leaves it. `name` points at the
 * architecture's name (ctx->arch); `data` and its memory are the loader's
 * until close(). */
struct cb_model_tensor {
	const char *name;
	void *data; /* host pointer, or device pointer */
	uint64_t nbytes;
	enum cb_tensor_location location;
};

/* The model a load fills. The harness sizes `tensors` to the architecture
 * (n == ctx->arch->n_tensors, names and nbytes preset in the same order);
 * the loader sets data and location for each, and may only leave a tensor's
 * data NULL if it failed (then the trial verifies as wrong bytes). */
struct cb_model {
	size_t n;
	struct cb_model_tensor *tensors;
};

/* What open() and load() are given. All of it stays valid until close(). */
struct cb_load_ctx {
	const char *path;      /* the checkpoint: file, sharded dir, dataset dir */
	enum cb_format format; /* which of the dataset's formats to load */
	/* The model's architecture: names, dtypes, shapes, in name order, as a
	 * framework's model class knows them before any file is read (this is
	 * what `M()` allocates). Hashes are the harness's; loaders must not use
	 * them. */
	const struct cb_manifest *arch;
	const void *opts;             /* the loader's options struct, filled */
	int device_index;             /* for CB_DEVICE_CUDA; 0 otherwise */
	struct cb_phase_sink *phases; /* never NULL */
	/* A partial load (docs/partial-loads.md): NULL for the whole model.
	 * Otherwise `arch` is the part's architecture (the selected tensors,
	 * each with its slice's shape and bytes, which is what the model
	 * allocates), `whole` the whole model's, and slice->tensors[i] says
	 * which bytes of the checkpoint's tensor whole->tensors[slice->
	 * tensors[i].index] arch->tensors[i] is. Only loaders with
	 * CB_CAP_PARTIAL are given one. */
	const struct cb_slice_plan *slice;
	const struct cb_manifest *whole; /* == arch when slice is NULL */
};

static inline void cb_loader_phase(const struct cb_load_ctx *ctx, enum cb_phase phase)
{
	ctx->phases->enter(ctx->phases, phase);
}

/* The size of CB_LOADER_CTL_MODE's buffer, terminator included. */
#define CB_LOADER_MODE_MAX 256

/* control() operations. Unknown ones return CB_EUNSUPPORTED. */
enum cb_loader_ctl {
	/* arg: struct cb_loader_fetch *. Copies a device tensor's bytes to a
	 * host buffer so the harness can verify it (required for loaders with
	 * CB_CAP_DEVICE_MEM). */
	CB_LOADER_CTL_FETCH = 1,
	/* arg: char[CB_LOADER_MODE_MAX]. A line about the mode that really ran
	 * (e.g. "cuFile compat mode"), recorded as the trial's "mode". */
	CB_LOADER_CTL_MODE = 2,
	/* arg: struct cb_loader_vram *. A device loader's memory figures,
	 * asked once right after load(); it ends the loader's VRAM watch. */
	CB_LOADER_CTL_VRAM = 3,
};

/* Device memory around one load (docs/datasets-and-method.md §5.5). Bytes; 0 when
 * unknown. */
struct cb_loader_vram {
	uint64_t alloc_peak_bytes;      /* exact high-water of the loader's own
					 * cudaMallocs (its tracked allocator) */
	uint64_t device_baseline_bytes; /* in use on the device as the load began,
					 * the CUDA context included */
	uint64_t device_peak_bytes;     /* the most in use during the load: sampled,
					 * at least baseline + alloc_peak */
	uint64_t context_bytes;         /* the CUDA context's own share, measured
					 * once in open() */
	double context_s;               /* creating the context (in open(), untimed) */
	uint64_t pinned_bytes;          /* page-locked host staging of the load */
	double pinned_alloc_s;          /* allocating it (inside the load) */
	char source[64];                /* how the device figures were read */
};

struct cb_loader_fetch {
	size_t index;   /* into model->tensors */
	void *host_buf; /* nbytes of it */
	uint64_t nbytes;
};

struct cb_loader {
	unsigned abi;          /* CB_LOADER_ABI */
	const char *name;      /* "safetensors-read": [a-z0-9-]+ */
	const char *summary;   /* one line: the real-world path it stands for */
	enum cb_format format; /* the checkpoint format it reads */
	enum cb_device_kind device;
	unsigned caps;                    /* enum cb_loader_cap bits */
	const struct cb_loader_opt *opts; /* NULL-name terminated; may be NULL */
	size_t opts_size;                 /* bytes of the options struct */
	size_t priv_size;                 /* bytes of private state (zeroed) */
	/* Build-time unavailability ("built without CUDA (-Dcuda=disabled)").
	 * When set, no hook is ever called; the loader is listed and skipped. */
	const char *unavailable_reason;
	/* A peer program (CB_CAP_PEER): the harness execs it instead of the
	 * trial child, per docs/peer-protocol.md; the hooks below are unused.
	 * A path is used as given; a bare name is looked up among the peer
	 * programs that come with ckptbench (loaders/base/resources.h), then
	 * in PATH (cb_loader_peer_path). */
	const char *peer;

	/* Can it run here? 0 = yes; else CB_EUNAVAILABLE with the reason in
	 * err ("no GPU visible"). Cheap, no tensor data, may run in the parent.
	 * May be NULL (always available). */
	int (*probe)(const struct cb_loader *self, struct cb_error *err);
	int (*open)(const struct cb_loader *self, void *priv, const struct cb_load_ctx *ctx,
		    struct cb_error *err);
	int (*load)(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
		    struct cb_error *err);
	void (*close)(void *priv);
	/* The escape hatch; may be NULL. */
	int (*control)(void *priv, int op, void *arg, struct cb_error *err);
};

/* --- the registry (registry.c) ---------------------------------------- */

/* Every loader of this build, in listing order; *n_out gets the count. The
 * table is static and const. */
const struct cb_loader *const *cb_loader_list(size_t *n_out);

/* By name; NULL when there is none. */
const struct cb_loader *cb_loader_find(const char *name);

/* Checks a vtable as the registry accepts it: ABI, name, required hooks,
 * options. CB_EINTERNAL naming the loader when it is not well formed. */
int cb_loader_check(const struct cb_loader *loader, struct cb_error *err);

/* Whether the loader can run here: its build-time reason, else its probe.
 * 0 when it can; else the reason in err (CB_EUNAVAILABLE). */
int cb_loader_available(const struct cb_loader *loader, struct cb_error *err);

/* The program a peer loader runs (loader->peer resolved as its comment
 * says), as a string the caller frees; NULL with a one-line reason in err
 * (where it was looked for) when it is nowhere or not executable. */
char *cb_loader_peer_path(const struct cb_loader *loader, struct cb_error *err);

/* --- options ----------------------------------------------------------- */

/* Stores the text value of option `opt` into the options struct `opts`.
 * CB_EUSAGE naming the loader and option on a bad value. String values
 * point into `value`, which must outlive the struct. */
int cb_loader_opt_set(const struct cb_loader *loader, const struct cb_loader_opt *opt, void *opts,
		      const char *value, struct cb_error *err);

/* Finds an option by name; NULL when the loader has none such. */
const struct cb_loader_opt *cb_loader_opt_find(const struct cb_loader *loader, const char *name);

/* Fills a zeroed options struct with every default. */
int cb_loader_opts_defaults(const struct cb_loader *loader, void *opts, struct cb_error *err);

#endif
