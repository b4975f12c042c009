/* The staged copy pipeline: planner, runner and the host copy engine (see
 * pipeline.h for the contract). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline.h"

#define MAX_THREADS 64
#define MAX_DEPTH 16

/* --- the planner ------------------------------------------------------- */

static int cmp_range(const void *a, const void *b)
{
	const struct cb_pipe_range *x = *(const struct cb_pipe_range *const *)a;
	const struct cb_pipe_range *y = *(const struct cb_pipe_range *const *)b;
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	return (x->offset > y->offset) - (x->offset < y->offset);
}

static uint64_t align_down(uint64_t v)
{
	return v & ~(CB_PIPE_ALIGN - 1);
}

/* Planning state: the chunk being filled. */
struct planner {
	struct cb_pipe_plan *plan;
	uint64_t chunk_bytes;
	bool open;    /* a chunk is being filled */
	uint64_t end; /* the end of the bytes it must hold */
};

static void close_chunk(struct planner *p)
{
	if (!p->open)
		return;
	struct cb_pipe_chunk *c = &p->plan->chunks[p->plan->n_chunks - 1];
	c->need = p->end - c->offset;
	/* Round the read up to the alignment; it never passes the window. */
	c->len = (c->need + CB_PIPE_ALIGN - 1) & ~(CB_PIPE_ALIGN - 1);
	p->plan->read_bytes += c->len;
	p->open = false;
}

static void open_chunk(struct planner *p, uint32_t file, uint64_t offset)
{
	close_chunk(p);
	struct cb_pipe_chunk *c = &p->plan->chunks[p->plan->n_chunks++];
	*c = (struct cb_pipe_chunk){
		.file = file, .offset = align_down(offset), .first_piece = p->plan->n_pieces};
	p->end = offset;
	p->open = true;
}

/* Adds one range, splitting it at chunk windows. */
static void plan_range(struct planner *p, const struct cb_pipe_range *r)
{
	uint64_t off = r->offset, left = r->len;
	char *dst = r->dst;
	while (left) {
		struct cb_pipe_chunk *c = p->open ? &p->plan->chunks[p->plan->n_chunks - 1] : NULL;
		/* Join the open chunk when the bytes start inside its window
		 * and at most one alignment unit after what it holds. */
		bool join = c && c->file == r->file && off >= c->offset &&
			    off < c->offset + p->chunk_bytes && off <= p->end + CB_PIPE_ALIGN;
		if (!join) {
			open_chunk(p, r->file, off);
			c = &p->plan->chunks[p->plan->n_chunks - 1];
		}
		uint64_t window_end = c->offset + p->chunk_bytes;
		uint64_t take = window_end - off < left ? window_end - off : left;
		p->plan->pieces[p->plan->n_pieces++] =
			(struct cb_pipe_piece){.buf_off = off - c->offset, .len = take, .dst = dst};
		c->n_pieces++;
		if (off + take > p->end)
			p->end = off + take;
		off += take;
		dst += take;
		left -= take;
	}
}

int cb_pipe_plan_make(const struct cb_pipe_range *ranges, size_t n, uint64_t chunk_bytes,
		      struct cb_pipe_plan *out, struct cb_error *err)
{
	*out = (struct cb_pipe_plan){.chunk_bytes = chunk_bytes};
	if (!chunk_bytes || chunk_bytes % CB_PIPE_ALIGN)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
			       "the chunk size must be a positive multiple of %llu bytes",
			       (unsigned long long)CB_PIPE_ALIGN);
	/* Bound the tables: each range yields at most len/chunk + 2 pieces,
	 * and there are never more chunks than pieces. */
	size_t most = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t end;
		if (__builtin_add_overflow(ranges[i].offset, ranges[i].len, &end) ||
		    __builtin_add_overflow(most, ranges[i].len / chunk_bytes + 2, &most))
			return CB_FAIL(err, CB_ELIMIT, NULL, NULL, "byte ranges out of bounds");
	}
	const struct cb_pipe_range **order = malloc((n ? n : 1) * sizeof *order);
	out->chunks = calloc(most ? most : 1, sizeof *out->chunks);
	out->pieces = calloc(most ? most : 1, sizeof *out->pieces);
	if (!order || !out->chunks || !out->pieces) {
		free(order);
		cb_pipe_plan_free(out);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory planning reads");
	}
	for (size_t i = 0; i < n; i++)
		order[i] = &ranges[i];
	/* File order: adjacent tensors merge into one read, and reads walk
	 * each file forwards (readahead, disk locality). */
	qsort(order, n, sizeof *order, cmp_range);
	struct planner p = {.plan = out, .chunk_bytes = chunk_bytes};
	for (size_t i = 0; i < n; i++)
		if (order[i]->len)
			plan_range(&p, order[i]);
	close_chunk(&p);
	free(order);
	return CB_OK;
}

void cb_pipe_plan_free(struct cb_pipe_plan *plan)
{
	free(plan->chunks);
	free(plan->pieces);
	plan->chunks = NULL;
	plan->pieces = NULL;
	plan->n_chunks = plan->n_pieces = 0;
}

/* --- the runner ------------------------------------------------------------ */

/* One reader thread's share of the setup: its own slots, allocated on the
 * thread (and so the NUMA node) that will use them. */
struct setup_group {
	struct cb_pipe *pipe;
	unsigned thread;
	int rc;
	struct cb_error err;
};

static void *setup_group_main(void *arg)
{
	struct setup_group *g = arg;
	struct cb_pipe *p = g->pipe;
	unsigned depth = p->cfg.slots_per_thread;
	if (p->cfg.on_thread)
		p->cfg.on_thread(p->cfg.thread_ctx);
	g->rc = CB_OK;
	for (unsigned k = 0; k < depth && g->rc == CB_OK; k++) {
		size_t i = (size_t)g->thread * depth + k;
		g->rc = p->engine.ops->slot_init(p->engine.impl, i,
						 p->cfg.map ? 0 : (size_t)p->cfg.slot_bytes,
						 &p->slots[i], &g->err);
	}
	return NULL;
}

int cb_pipe_setup(struct cb_pipe *pipe, struct cb_copy_engine engine,
		  const struct cb_pipe_config *cfg, struct cb_error *err)
{
	*pipe = (struct cb_pipe){.cfg = *cfg, .engine = engine};
	if (cfg->threads < 1 || cfg->threads > MAX_THREADS || cfg->slots_per_thread < 1 ||
	    cfg->slots_per_thread > MAX_DEPTH || !cfg->slot_bytes ||
	    cfg->slot_bytes % CB_PIPE_ALIGN || cfg->slot_bytes > SIZE_MAX)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
			       "pipeline needs 1 to %d threads, 1 to %d slots each, and slots "
			       "a multiple of %llu bytes",
			       MAX_THREADS, MAX_DEPTH, (unsigned long long)CB_PIPE_ALIGN);
	/* Chunks start at CB_PIPE_ALIGN boundaries; mmap needs page ones. */
	long page = sysconf(_SC_PAGESIZE);
	if (cfg->map && (page <= 0 || CB_PIPE_ALIGN % (uint64_t)page))
		return CB_FAIL(
			err, CB_EUNAVAILABLE, NULL, NULL,
			"mapping chunks needs pages of at most %llu bytes (this kernel's are %ld)",
			(unsigned long long)CB_PIPE_ALIGN, page);
	size_t n = (size_t)cfg->threads * cfg->slots_per_thread;
	pipe->slots = calloc(n, sizeof *pipe->slots);
	struct setup_group *groups = calloc(cfg->threads, sizeof *groups);
	pthread_t *tids = calloc(cfg->threads, sizeof *tids);
	bool *started = calloc(cfg->threads, sizeof *started);
	if (!pipe->slots || !groups || !tids || !started) {
		free(groups);
		free(tids);
		free(started);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	/* Counted first: every slot is handed to slot_fini at teardown, made
	 * or not (its buffer then NULL); a half-made slot is the engine's to
	 * undo. */
	pipe->n_slots = n;
	/* Page-locking is most of the cost (zeroed pages, pinned one by one),
	 * so each reader thread's slots are made on a thread of their own, in
	 * parallel, unless the caller asks for one thread. A group whose
	 * thread cannot start is made here. */
	for (unsigned t = 0; t < cfg->threads; t++) {
		groups[t] = (struct setup_group){.pipe = pipe, .thread = t, .err = CB_ERROR_INIT};
		if (!cfg->serial_setup && t > 0)
			started[t] =
				pthread_create(&tids[t], NULL, setup_group_main, &groups[t]) == 0;
	}
	for (unsigned t = 0; t < cfg->threads; t++)
		if (!started[t])
			setup_group_main(&groups[t]);
	int rc = CB_OK;
	for (unsigned t = 0; t < cfg->threads; t++) {
		if (started[t])
			pthread_join(tids[t], NULL);
		if (rc == CB_OK && groups[t].rc != CB_OK) {
			rc = groups[t].rc;
			if (err)
				*err = groups[t].err;
		}
	}
	free(started);
	free(groups);
	free(tids);
	return rc;
}

void cb_pipe_teardown(struct cb_pipe *pipe)
{
	for (size_t i = 0; i < pipe->n_slots; i++)
		pipe->engine.ops->slot_fini(pipe->engine.impl, i, pipe->slots[i]);
	free(pipe->slots);
	pipe->slots = NULL;
	pipe->n_slots = 0;
}

/* One run's shared state. */
struct run {
	struct cb_pipe *pipe;
	const struct cb_pipe_plan *plan;
	const struct cb_pipe_file *files;
	size_t n_files;
	uint64_t *file_sizes; /* the map source: each file's size, checked before mapping */
	atomic_size_t next;
	atomic_int failed;
	atomic_uint_fast64_t bytes_read, preads, reuses;
	pthread_mutex_t lock;
	struct cb_error *err; /* under lock; the first error wins */
};

struct worker {
	struct run *run;
	unsigned index;
};

static void record_error(struct run *r, const struct cb_error *e)
{
	atomic_store(&r->failed, 1);
	pthread_mutex_lock(&r->lock);
	if (r->err && r->err->code == CB_OK)
		*r->err = *e;
	pthread_mutex_unlock(&r->lock);
}

static ssize_t default_pread(void *ctx, int fd, void *buf, size_t len, uint64_t offset)
{
	(void)ctx;
	return pread(fd, buf, len, (off_t)offset);
}

/* Reads a chunk, retrying short reads, until its `need` bytes are in. */
static int read_chunk(struct run *r, const struct cb_pipe_chunk *c, char *buf, struct cb_error *err)
{
	const struct cb_pipe_config *cfg = &r->pipe->cfg;
	cb_pipe_pread_fn rd = cfg->pread ? cfg->pread : default_pread;
	if (c->file >= r->n_files)
		return CB_FAIL(err, CB_EINTERNAL, NULL, NULL, "chunk names file %u of %zu", c->file,
			       r->n_files);
	const struct cb_pipe_file *f = &r->files[c->file];
	uint64_t got = 0;
	while (got < c->need) {
		ssize_t n = rd(cfg->pread_ctx, f->fd, buf + got, (size_t)(c->len - got),
			       c->offset + got);
		atomic_fetch_add(&r->preads, 1);
		if (n < 0 && errno == EINTR)
			continue;
		char where[64];
		snprintf(where, sizeof where, "byte %llu", (unsigned long long)(c->offset + got));
		if (n < 0)
			return CB_FAIL(err, CB_EIO, f->path, where, "read failed: %s",
				       strerror(errno));
		if (n == 0)
			return CB_FAIL(err, CB_EFORMAT, f->path, where,
				       "the file ends before the tensor data does");
		got += (uint64_t)n;
		atomic_fetch_add(&r->bytes_read, (uint64_t)n);
	}
	return CB_OK;
}

/* The map source: a slot's current mapping, pinned or not. */
struct mapping {
	void *addr;
	size_t len;
	bool pinned;
};

/* Maps a chunk's range read-only and has the engine pin it. A chunk whose
 * bytes lie past the end of its file is refused before anything is mapped:
 * touching such a page would be SIGBUS, not an error. */
static int map_chunk(struct run *r, size_t slot, const struct cb_pipe_chunk *c, struct mapping *m,
		     struct cb_error *err)
{
	const struct cb_copy_engine_ops *ops = r->pipe->engine.ops;
	if (c->file >= r->n_files)
		return CB_FAIL(err, CB_EINTERNAL, NULL, NULL, "chunk names file %u of %zu", c->file,
			       r->n_files);
	const struct cb_pipe_file *f = &r->files[c->file];
	uint64_t size = r->file_sizes[c->file];
	if (c->offset > size || c->need > size - c->offset) {
		char where[64];
		snprintf(where, sizeof where, "byte %llu", (unsigned long long)size);
		return CB_FAIL(err, CB_EFORMAT, f->path, where,
			       "the file ends before the tensor data does");
	}
	void *addr = mmap(NULL, (size_t)c->len, PROT_READ, MAP_SHARED, f->fd, (off_t)c->offset);
	if (addr == MAP_FAILED)
		return CB_FAIL_ERRNO(err, errno, f->path, "mmap of a chunk");
	*m = (struct mapping){.addr = addr, .len = (size_t)c->len};
	atomic_fetch_add(&r->bytes_read, c->need);
	if (ops->pin) {
		int rc = ops->pin(r->pipe->engine.impl, slot, addr, (size_t)c->len, err);
		if (rc != CB_OK)
			return rc;
		m->pinned = true;
	}
	return CB_OK;
}

/* After the slot's copies are done (or were never queued). */
static void unmap_chunk(struct run *r, size_t slot, struct mapping *m)
{
	if (!m->addr)
		return;
	if (m->pinned)
		r->pipe->engine.ops->unpin(r->pipe->engine.impl, slot, m->addr);
	munmap(m->addr, m->len);
	*m = (struct mapping){0};
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->run;
	struct cb_pipe *p = r->pipe;
	const struct cb_copy_engine_ops *ops = p->engine.ops;
	void *impl = p->engine.impl;
	unsigned depth = p->cfg.slots_per_thread;
	size_t base = (size_t)w->index * depth;
	bool busy[MAX_DEPTH] = {false};
	struct mapping maps[MAX_DEPTH] = {{0}};
	bool map = p->cfg.map;
	struct cb_error e = CB_ERROR_INIT;
	int rc = CB_OK;
	if (p->cfg.on_thread)
		p->cfg.on_thread(p->cfg.thread_ctx);
	if (ops->thread_init)
		rc = ops->thread_init(impl, &e);
	for (size_t turn = 0; rc == CB_OK; turn++) {
		size_t k = atomic_fetch_add(&r->next, 1);
		if (k >= r->plan->n_chunks || atomic_load(&r->failed))
			break;
		unsigned s = (unsigned)(turn % depth);
		/* The slot's previous copies must be done before it is refilled. */
		if (busy[s]) {
			rc = ops->wait(impl, base + s, &e);
			busy[s] = false;
			atomic_fetch_add(&r->reuses, 1);
			if (rc != CB_OK)
				break;
		}
		unmap_chunk(r, base + s, &maps[s]);
		const struct cb_pipe_chunk *c = &r->plan->chunks[k];
		char *buf = p->slots[base + s];
		if (map) {
			rc = map_chunk(r, base + s, c, &maps[s], &e);
			buf = maps[s].addr;
		} else {
			rc = read_chunk(r, c, buf, &e);
		}
		for (size_t i = 0; rc == CB_OK && i < c->n_pieces; i++) {
			const struct cb_pipe_piece *pc = &r->plan->pieces[c->first_piece + i];
			busy[s] = true;
			rc = ops->copy(impl, base + s, pc->dst, buf + pc->buf_off, (size_t)pc->len,
				       &e);
		}
		if (rc == CB_OK && busy[s] && ops->fence)
			rc = ops->fence(impl, base + s, &e);
	}
	/* Drain: no copy may still read a slot when the run returns. */
	for (unsigned s = 0; s < depth; s++) {
		if (busy[s]) {
			struct cb_error e2 = CB_ERROR_INIT;
			int rc2 = ops->wait(impl, base + s, &e2);
			if (rc == CB_OK && rc2 != CB_OK)
				rc = rc2, e = e2;
		}
		unmap_chunk(r, base + s, &maps[s]);
	}
	if (rc != CB_OK)
		record_error(r, &e);
	return NULL;
}

int cb_pipe_run(struct cb_pipe *pipe, const struct cb_pipe_plan *plan,
		const struct cb_pipe_file *files, size_t n_files, struct cb_error *err)
{
	if (plan->chunk_bytes > pipe->cfg.slot_bytes || !pipe->slots ||
	    pipe->n_slots != (size_t)pipe->cfg.threads * pipe->cfg.slots_per_thread)
		return CB_FAIL(err, CB_EINTERNAL, NULL, NULL,
			       "the plan's chunks are larger than the slots, or no slots");
	if (pipe->cfg.map && !pipe->engine.ops->unpin && pipe->engine.ops->pin)
		return CB_FAIL(err, CB_EINTERNAL, NULL, NULL, "an engine that pins must unpin");
	struct run r = {.pipe = pipe, .plan = plan, .files = files, .n_files = n_files, .err = err};
	if (pipe->cfg.map) {
		r.file_sizes = calloc(n_files ? n_files : 1, sizeof *r.file_sizes);
		if (!r.file_sizes)
			return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		for (size_t i = 0; i < n_files; i++) {
			struct stat st;
			if (fstat(files[i].fd, &st) != 0) {
				int rc = CB_FAIL_ERRNO(err, errno, files[i].path, "stat");
				free(r.file_sizes);
				return rc;
			}
			r.file_sizes[i] = (uint64_t)st.st_size;
		}
	}
	if (pthread_mutex_init(&r.lock, NULL) != 0) {
		free(r.file_sizes);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "cannot create a mutex");
	}
	unsigned n = pipe->cfg.threads;
	if (n > plan->n_chunks)
		n = plan->n_chunks ? (unsigned)plan->n_chunks : 1;
	struct worker workers[MAX_THREADS];
	pthread_t tids[MAX_THREADS];
	unsigned started = 1;
	for (unsigned i = 0; i < n; i++)
		workers[i] = (struct worker){.run = &r, .index = i};
	/* Worker 0 is this thread; fewer threads still load correctly. */
	for (; started < n; started++)
		if (pthread_create(&tids[started], NULL, worker_main, &workers[started]) != 0)
			break;
	worker_main(&workers[0]);
	for (unsigned i = 1; i < started; i++)
		pthread_join(tids[i], NULL);
	pthread_mutex_destroy(&r.lock);
	free(r.file_sizes);
	pipe->bytes_read = atomic_load(&r.bytes_read);
	pipe->preads = atomic_load(&r.preads);
	pipe->slot_reuses = atomic_load(&r.reuses);
	if (atomic_load(&r.failed))
		return err && err->code != CB_OK ? (int)err->code : CB_EIO;
	return CB_OK;
}

/* --- the host engine ----------------------------------------------------- */

struct host_copy {
	void *dst;
	const void *src;
	size_t len;
};

/* Per slot: the copies queued since the last wait. */
struct host_slot {
	struct host_copy *q;
	size_t n, cap;
};

struct host_engine {
	struct host_slot *slots;
	size_t n_slots;
};

static int host_slot_init(void *impl, size_t slot, size_t bytes, void **buf, struct cb_error *err)
{
	struct host_engine *h = impl;
	if (slot >= h->n_slots)
		return CB_FAIL(err, CB_EINTERNAL, NULL, NULL, "host engine: slot %zu of %zu", slot,
			       h->n_slots);
	*buf = NULL;
	if (!bytes) /* the map source: no buffer */
		return CB_OK;
	*buf = aligned_alloc(CB_PIPE_ALIGN, bytes);
	if (!*buf)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "cannot allocate a %zu-byte slot",
			       bytes);
	/* Poison: bytes the runner forgot to read show up in tests. */
	memset(*buf, 0xA5, bytes);
	return CB_OK;
}

static int host_copy(void *impl, size_t slot, void *dst, const void *src, size_t len,
		     struct cb_error *err)
{
	struct host_slot *s = &((struct host_engine *)impl)->slots[slot];
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct host_copy *q = realloc(s->q, cap * sizeof *q);
		if (!q)
			return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		s->q = q, s->cap = cap;
	}
	s->q[s->n++] = (struct host_copy){dst, src, len};
	return CB_OK;
}

/* The deferred copies happen here, as an asynchronous DMA would finish
 * "some time before the event": reading the slot now. */
static int host_wait(void *impl, size_t slot, struct cb_error *err)
{
	struct host_slot *s = &((struct host_engine *)impl)->slots[slot];
	(void)err;
	for (size_t i = 0; i < s->n; i++)
		memcpy(s->q[i].dst, s->q[i].src, s->q[i].len);
	s->n = 0;
	return CB_OK;
}

static void host_slot_fini(void *impl, size_t slot, void *buf)
{
	(void)impl, (void)slot;
	free(buf);
}

static const struct cb_copy_engine_ops host_ops = {
	.name = "host",
	.slot_init = host_slot_init,
	.copy = host_copy,
	.wait = host_wait,
	.slot_fini = host_slot_fini,
};

int cb_host_engine_new(size_t n_slots, struct cb_copy_engine *out, struct cb_error *err)
{
	struct host_engine *h = calloc(1, sizeof *h);
	if (h)
		h->slots = calloc(n_slots ? n_slots : 1, sizeof *h->slots);
	if (!h || !h->slots) {
		free(h);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	h->n_slots = n_slots;
	*out = (struct cb_copy_engine){.ops = &host_ops, .impl = h};
	return CB_OK;
}

void cb_host_engine_free(struct cb_copy_engine *engine)
{
	struct host_engine *h = engine->impl;
	if (!h)
		return;
	for (size_t i = 0; i < h->n_slots; i++)
		free(h->slots[i].q);
	free(h->slots);
	free(h);
	engine->impl = NULL;
}
