/* The staged copy pipeline of safetensors-gpu: file bytes to destinations
 * through a small ring of staging buffers (docs/datasets-and-method.md §5.6).
 *
 * Two halves, so the scheduling can be tested without a GPU:
 *   the planner  turns tensor byte ranges into read chunks: one pread each,
 *                aligned for O_DIRECT, at most one slot long, spanning tensor
 *                boundaries where tensors lie back to back in the file, each
 *                chunk scattered into "pieces" (one per tensor part);
 *   the runner   has the read engine (engine/read_engine.h: its threads,
 *                queue, reads and first error) read chunks into each
 *                reader's own slots, a consumer of the engine that hands
 *                each piece to a copy engine, which may copy
 *                asynchronously: a slot is refilled only after the engine
 *                says its copies are done (fence, then wait).
 * The CUDA engine (cuda_engine.c) is cudaHostAlloc slots, cudaMemcpyAsync on
 * a stream per slot and an event per slot; the host engine (below) is
 * aligned_alloc slots and memcpy deferred until wait(), so a runner that
 * reused a slot too early would be caught by byte-exact tests.
 *
 * The runner has a second source, `map`: no staging buffers at all. Each
 * chunk's file range is mapped (read-only, shared: the page cache itself),
 * the engine pins it (cudaHostRegister, read-only), the pieces are copied
 * straight from the mapping, and once the slot is waited on the range is
 * unpinned and unmapped. A warm load then crosses memory once (the DMA),
 * not three times (page cache to slot, slot to the link). The host engine
 * pins nothing, and its deferred copies read the mapping at wait(): a
 * runner that unmapped too early would crash the tests.
 *
 * Nothing here needs CUDA; it is compiled in every build.
 */
#ifndef CB_PIPELINE_H
#define CB_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine/read_engine.h"
#include "error.h"

/* Reads are aligned to this (O_DIRECT's usual logical block, and a page). */
#define CB_PIPE_ALIGN UINT64_C(4096)

/* One tensor's bytes: `len` bytes at `offset` of file `file` go to `dst`
 * (a device or a host pointer; only the engine dereferences it). */
struct cb_pipe_range {
	uint32_t file;
	uint64_t offset;
	uint64_t len;
	void *dst;
};

/* An open file of the checkpoint. The caller owns fd. */
struct cb_pipe_file {
	int fd;
	const char *path; /* for messages */
};

/* Part of a chunk that goes to one destination. */
struct cb_pipe_piece {
	uint64_t buf_off; /* where it starts in the chunk's buffer */
	uint64_t len;
	void *dst;
};

/* One pread: `len` bytes (aligned) at `offset` (aligned); the first `need`
 * bytes must arrive, the rest may lie past the end of the file. */
struct cb_pipe_chunk {
	uint32_t file;
	uint64_t offset, len, need;
	size_t first_piece, n_pieces;
};

struct cb_pipe_plan {
	struct cb_pipe_chunk *chunks;
	size_t n_chunks;
	struct cb_pipe_piece *pieces;
	size_t n_pieces;
	uint64_t chunk_bytes; /* the slot size the plan was made for */
	uint64_t read_bytes;  /* sum of chunk lengths (>= the tensors' bytes) */
};

/* Plans `n` ranges (any order; empty ones are skipped) into chunks of at most
 * `chunk_bytes` (a multiple of CB_PIPE_ALIGN). A range that starts within
 * CB_PIPE_ALIGN after the previous one's end in the same file joins its
 * chunk. On success *out is the caller's, to free with cb_pipe_plan_free. */
CB_NODISCARD int cb_pipe_plan_make(const struct cb_pipe_range *ranges, size_t n,
				   uint64_t chunk_bytes, struct cb_pipe_plan *out,
				   struct cb_error *err);
void cb_pipe_plan_free(struct cb_pipe_plan *plan);

/* What moves bytes from a staging slot to destinations. Each slot is used
 * by one thread at a time; ops on different slots may run concurrently. */
struct cb_copy_engine_ops {
	const char *name;
	/* Called once on each reader thread before it touches a slot (a CUDA
	 * engine sets the current device). May be NULL. */
	int (*thread_init)(void *impl, struct cb_error *err);
	/* A staging buffer of `bytes` bytes, CB_PIPE_ALIGN-aligned, for slot
	 * `slot` (< the runner's slot count); freed with slot_fini. */
	int (*slot_init)(void *impl, size_t slot, size_t bytes, void **buf, struct cb_error *err);
	/* Queues a copy of `len` bytes from `src` (inside the slot's buffer) to
	 * `dst`. It may complete later: the slot's buffer stays untouched until
	 * wait() returns. */
	int (*copy)(void *impl, size_t slot, void *dst, const void *src, size_t len,
		    struct cb_error *err);
	/* After a chunk's copies are queued. May be NULL. */
	int (*fence)(void *impl, size_t slot, struct cb_error *err);
	/* Returns once every copy queued on the slot has finished. */
	int (*wait)(void *impl, size_t slot, struct cb_error *err);
	void (*slot_fini)(void *impl, size_t slot, void *buf);
	/* The map source only: makes [addr, addr + len) (a fresh read-only
	 * mapping of the file) a valid copy source for the slot, and undoes
	 * that after wait(). pin may be NULL (nothing to do); unpin is called
	 * only after a successful pin. */
	int (*pin)(void *impl, size_t slot, void *addr, size_t len, struct cb_error *err);
	void (*unpin)(void *impl, size_t slot, void *addr);
};

struct cb_copy_engine {
	const struct cb_copy_engine_ops *ops;
	void *impl;
};

/* pread(2) as the runner's read engine calls it; tests substitute short
 * reads and failures. Returns bytes read, 0 at the end of the file, -1
 * with errno. */
typedef cb_engine_pread_fn cb_pipe_pread_fn;

struct cb_pipe_config {
	unsigned threads;          /* reader threads, the calling one included (>= 1) */
	unsigned slots_per_thread; /* >= 1; 2 is double buffering */
	uint64_t slot_bytes;       /* a multiple of CB_PIPE_ALIGN */
	/* true: the map source (see above); slots get no buffers (slot_init
	 * is called with bytes 0), chunks are mapped instead of read, and
	 * pread is not used. Needs the page size to divide CB_PIPE_ALIGN. */
	bool map;
	/* false: each reader thread's slots are allocated on a thread of its
	 * own, in parallel (after on_thread, so on its NUMA node); true: all
	 * of them on the calling thread. */
	bool serial_setup;
	cb_pipe_pread_fn pread; /* NULL: pread(2) */
	void *pread_ctx;
	/* Called first on each reader thread (NUMA binding); may be NULL. */
	void (*on_thread)(void *ctx);
	void *thread_ctx;
};

/* The runner: slots allocated once (the "pinned allocation" of the GPU
 * loader, timed by the caller), then any number of runs. */
struct cb_pipe {
	struct cb_pipe_config cfg;
	struct cb_copy_engine engine;
	void **slots;
	size_t n_slots;
	/* Statistics of the last run. */
	uint64_t bytes_read;  /* bytes pread returned, or mapped */
	uint64_t preads;      /* pread calls (0 with the map source) */
	uint64_t slot_reuses; /* refills of a slot after a wait */
};

/* Allocates threads × slots_per_thread slots through the engine (buffers
 * of slot_bytes, or none with the map source), in parallel unless
 * cfg->serial_setup; the first error wins. On failure
 * the pipe is still safe to tear down. */
CB_NODISCARD int cb_pipe_setup(struct cb_pipe *pipe, struct cb_copy_engine engine,
			       const struct cb_pipe_config *cfg, struct cb_error *err);

/* Runs a plan made with chunk_bytes <= cfg.slot_bytes. Returns once every
 * read is done and every copy finished (also after a failure: no copy is
 * left in flight from a slot). The first error wins. */
CB_NODISCARD int cb_pipe_run(struct cb_pipe *pipe, const struct cb_pipe_plan *plan,
			     const struct cb_pipe_file *files, size_t n_files,
			     struct cb_error *err);

void cb_pipe_teardown(struct cb_pipe *pipe);

/* The host engine: memcpy, deferred until wait(), for `n_slots` slots.
 * *out is the caller's, to free with cb_host_engine_free after the pipe's
 * teardown. Used by the tests, and by anyone who wants the pipeline's
 * scheduling without a GPU. */
CB_NODISCARD int cb_host_engine_new(size_t n_slots, struct cb_copy_engine *out,
				    struct cb_error *err);
void cb_host_engine_free(struct cb_copy_engine *engine);

#endif
