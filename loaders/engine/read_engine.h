/* The read engine: the one way ckptbench reads checkpoint bytes in
 * parallel, shared by the loaders (safetensors-read, libtorch-safetensors,
 * safetensors-gpu through loaders/cuda/pipeline.c) and the calibration's
 * read ceilings (bench/harness/calibrate.c, bench/harness/run_ceiling.c).
 *
 * A caller says WHAT to read and WHERE: items (a file of the set, an
 * offset, a length, a destination), or, for a consumer such as the GPU
 * pipeline's pinned ring, items whose bytes the engine hands over chunk by
 * chunk. The engine says HOW:
 *   threads    one policy (cb_engine_threads) and one cap
 *              (CB_ENGINE_MAX_THREADS); the calling thread is worker 0, and
 *              threads that cannot start leave their work to it;
 *   split      items larger than the chunk size are split into chunks, all
 *              ordered as they lie in the files (file index, then offset);
 *              each thread reads one contiguous share of about equal bytes
 *              (so each walks one run of a file front to back, as the
 *              kernel's read-ahead likes), or all take from one queue;
 *   files      opened once, read-only, advised POSIX_FADV_SEQUENTIAL
 *              (cb_engine_open_file: the one open + fadvise); with shares
 *              every thread but the first reads through its own descriptor
 *              of each file, opened once on first use (threads sharing one
 *              open file look like random access to read-ahead);
 *   O_DIRECT   where asked and the filesystem allows: the aligned middle
 *              of a chunk straight into place when the destination shares
 *              the file offset's alignment, the rest through a per-worker
 *              bounce buffer; a filesystem that refuses O_DIRECT at open or
 *              at read time gets buffered reads, counted;
 *   io_uring   where built (CB_HAVE_URING) and asked: qd reads in flight
 *              from the calling thread; pread threads where it cannot be
 *              set up, with the reason kept;
 *   errors     EINTR and short reads retried; a file that ends early, or a
 *              read that fails, stops the run: the first error wins, naming
 *              the file, the byte and what failed ("pread: Input/output
 *              error"), and every thread is joined before returning.
 * It records what it decided (struct cb_engine_report) and says it in words
 * (cb_engine_describe), for a loader's CB_LOADER_CTL_MODE.
 *
 * Test builds can make its reads and allocations fail (fault.h).
 *
 * Life: cb_engine_setup (threads, bounce buffers: set-up, before a trial's
 * baseline), cb_engine_open or cb_engine_adopt (the files), any number of
 * cb_engine_read / cb_engine_run, cb_engine_teardown (always; safe after any
 * failure, and on a zeroed struct).
 */
#ifndef CB_READ_ENGINE_H
#define CB_READ_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "../loader.h" /* CB_DEFAULT_THREADS_MAX */

/* The most threads (or io_uring reads in flight) any reader runs: the cap
 * of every `threads` option. */
#define CB_ENGINE_MAX_THREADS 64

/* O_DIRECT's alignment of offsets, lengths and buffers: covers every
 * common logical block size. */
#define CB_ENGINE_DIRECT_ALIGN UINT64_C(4096)

/* The thread policy: `opt` when non-zero (at most CB_ENGINE_MAX_THREADS),
 * else one per online CPU, at most CB_DEFAULT_THREADS_MAX. */
unsigned cb_engine_threads(uint64_t opt);

/* Opens `path` read-only (close-on-exec): buffered, advised
 * POSIX_FADV_SEQUENTIAL (the kernel reads ahead more and drops pages behind
 * sooner), or with `direct` O_DIRECT ("open with O_DIRECT: Invalid
 * argument" where the filesystem refuses it). */
CB_NODISCARD int cb_engine_open_file(const char *path, bool direct, int *fd_out,
				     struct cb_error *err);

/* pread(2) as the engine calls it; tests substitute short reads and
 * failures. Returns bytes read, 0 at the end of the file, -1 with errno. */
typedef ssize_t (*cb_engine_pread_fn)(void *ctx, int fd, void *buf, size_t len, uint64_t offset);

struct cb_engine_config {
	unsigned threads; /* readers, the calling thread included; 0: cb_engine_threads(0) */
	uint64_t chunk;   /* items longer than this are split; 0: never */
	bool queue;       /* one shared queue instead of a contiguous share each */
	bool direct;      /* O_DIRECT where the filesystem allows */
	bool uring;       /* io_uring (read runs only) where built and allowed */
	unsigned qd;      /* io_uring reads in flight (0: `threads`) */
	/* Read no more than asked: files advised POSIX_FADV_RANDOM instead of
	 * SEQUENTIAL, so the kernel's read-ahead does not run past what a
	 * partial load asks for (its bytes read from storage are a result). */
	bool exact;
	cb_engine_pread_fn pread; /* NULL: pread(2) */
	void *pread_ctx;
};

/* One file of the set. */
struct cb_engine_file {
	const char *path; /* borrowed from the caller */
	int fd;           /* buffered (or the caller's); -1 when not open */
	int dfd;          /* O_DIRECT; -1 where not asked for or refused */
	uint64_t size;    /* at open */
	bool owned;       /* fd opened (and closed) here */
};

/* What to read: `len` bytes at `offset` of file `file` of the set into
 * `dest`. For a consumer run (cb_engine_run), `dest` may be NULL (the
 * consumer gives the buffer) and `need`, when not 0, is how many of the
 * bytes must arrive: the rest may lie past the end of the file (a read
 * rounded up to O_DIRECT's alignment). */
struct cb_read_item {
	uint32_t file;
	uint64_t offset, len, need;
	void *dest;
};

/* One read as the engine makes it: an item, or a chunk of one. */
struct cb_read_chunk {
	size_t item;       /* its item's index */
	uint64_t item_off; /* where in the item it starts */
	uint32_t file;
	uint64_t offset, len, need;
	char *dest; /* the item's dest + item_off; NULL when the item's was */
};

/* A consumer of chunks (the GPU pipeline's ring, cuFile, a staged copy).
 * Every hook gets the worker's index (< the configured threads); a worker's
 * hooks run on one thread at a time. Only `consume` is required. */
struct cb_engine_consumer {
	void *ctx;
	/* First on each worker (NUMA binding, a device to set). */
	int (*start)(void *ctx, unsigned worker, struct cb_error *err);
	/* The buffer chunk c is read into (c->len bytes, aligned as the
	 * caller's files need), e.g. a free staging slot. *buf NULL: the
	 * engine reads nothing and consume does its own I/O. NULL hook: the
	 * chunk's dest. */
	int (*buffer)(void *ctx, unsigned worker, const struct cb_read_chunk *c, void **buf,
		      struct cb_error *err);
	/* The chunk's bytes are in buf (its `need` bytes at least). */
	int (*consume)(void *ctx, unsigned worker, const struct cb_read_chunk *c, void *buf,
		       struct cb_error *err);
	/* Last on each worker that started, after a failure too (rc: its
	 * outcome so far): nothing may still use a buffer after it returns. */
	int (*finish)(void *ctx, unsigned worker, int rc, struct cb_error *err);
};

/* What the engine decided and did (the last run's figures). */
struct cb_engine_report {
	unsigned workers;        /* reader threads, or io_uring reads in flight */
	bool shares;             /* contiguous shares, not a shared queue */
	bool uring;              /* io_uring ran */
	char uring_note[96];     /* why io_uring did not run, when asked for */
	bool direct_asked;       /* O_DIRECT asked for */
	size_t files;            /* files in the set */
	size_t direct_files;     /* of them opened with O_DIRECT */
	unsigned direct_refused; /* chunks read buffered after O_DIRECT refused a read */
	size_t chunks;           /* reads planned */
	uint64_t bytes;          /* bytes the engine's reads returned */
	uint64_t reads;          /* read calls (retries included) */
};

struct cb_engine_worker; /* private */

/* The engine's state; the fields are its own, `report` excepted. */
struct cb_engine {
	struct cb_engine_config cfg;
	struct cb_engine_worker *workers;
	unsigned n_workers;
	struct cb_engine_file *files;
	size_t n_files;
	struct cb_engine_report report;
};

/* Threads decided, workers and (with cfg->direct) their bounce buffers made
 * and touched: set-up, before any file is read. */
CB_NODISCARD int cb_engine_setup(struct cb_engine *e, const struct cb_engine_config *cfg,
				 struct cb_error *err);

/* Opens the files the items will name (buffered, and O_DIRECT beside where
 * asked and allowed), in index order. */
CB_NODISCARD int cb_engine_open(struct cb_engine *e, const char *const *paths, size_t n,
				struct cb_error *err);

/* The same with the caller's open descriptors (kept the caller's, read as
 * they are: no O_DIRECT beside, no descriptor of each thread's own). */
CB_NODISCARD int cb_engine_adopt(struct cb_engine *e, const int *fds, const char *const *paths,
				 size_t n, struct cb_error *err);

/* The read plan of a model, for a loader that reads a safetensors
 * checkpoint straight into place: each architecture tensor found in `ckpt`
 * and checked as load_state_dict(strict=True) does (cb_host_match, a
 * strided view refused unless `views_ok`), its bytes one item into
 * model->tensors[i].data. *items_out (arch->n_tensors of them, for the
 * files in cb_host_open_ckpt_files' order) is malloc'd; the caller frees
 * it, also after a failure. */
CB_NODISCARD int cb_engine_model_items(const struct cb_ckpt *ckpt, const struct cb_manifest *arch,
				       const struct cb_model *model, bool views_ok,
				       struct cb_read_item **items_out, struct cb_error *err);

/* Reads every item into its dest. Returns once every thread is joined (no
 * read left in flight), after a failure too; the first error wins. */
CB_NODISCARD int cb_engine_read(struct cb_engine *e, const struct cb_read_item *items, size_t n,
				struct cb_error *err);

/* The same, each chunk handed to `c` (NULL: cb_engine_read). Always on
 * threads (io_uring serves plain reads only). */
CB_NODISCARD int cb_engine_run(struct cb_engine *e, const struct cb_read_item *items, size_t n,
			       const struct cb_engine_consumer *c, struct cb_error *err);

/* "pread x8 threads (contiguous shares), buffered, fadvise sequential,
 * 260 chunks" and the like: what the last run did. */
void cb_engine_describe(const struct cb_engine *e, char *out, size_t size);

/* Closes the files (the engine stays set up for another cb_engine_open). */
void cb_engine_close(struct cb_engine *e);

/* Frees everything. */
void cb_engine_teardown(struct cb_engine *e);

#endif
