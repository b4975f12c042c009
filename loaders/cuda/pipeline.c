/* The staged copy pipeline: planner, runner and the host copy engine (see
 * pipeline.h for the contract). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pipeline.h"

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
	if (cfg->threads < 1 || cfg->threads > CB_ENGINE_MAX_THREADS || cfg->slots_per_thread < 1 ||
	    cfg->slots_per_thread > MAX_DEPTH || !cfg->slot_bytes ||
	    cfg->slot_bytes % CB_PIPE_ALIGN || cfg->slot_bytes > SIZE_MAX)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
			       "pipeline needs 1 to %d threads, 1 to %d slots each, and slots "
			       "a multiple of %llu bytes",
			       CB_ENGINE_MAX_THREADS, MAX_DEPTH, (unsigned long long)CB_PIPE_ALIGN);
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

/* One run: the plan's chunks read by the read engine (read_engine.h: its
 * threads, its shared queue, its reads with their retries and the first
 * error), each handed to this ring: a worker's chunk goes to its next slot,
 * waited on first if still busy, and its pieces are queued on the copy
 * engine. With the map source the read engine reads nothing and the chunk
 * is mapped here instead. */
/* The map source: a slot's current mapping, pinned or not. */
struct mapping {
	void *addr;
	size_t len;
	bool pinned;
};

/* One reader's ring: its slots are [worker * depth, (worker + 1) * depth). */
struct ring_worker {
	size_t turn;   /* chunks this worker has taken */
	unsigned slot; /* the slot of its current chunk */
	bool busy[MAX_DEPTH];
	struct mapping maps[MAX_DEPTH];
};

struct run {
	struct cb_pipe *pipe;
	const struct cb_pipe_plan *plan;
	struct cb_engine engine;
	atomic_uint_fast64_t mapped, reuses;
	struct ring_worker workers[CB_ENGINE_MAX_THREADS];
};

/* Maps a chunk's range read-only and has the engine pin it. A chunk whose
 * bytes lie past the end of its file is refused before anything is mapped:
 * touching such a page would be SIGBUS, not an error. */
static int map_chunk(struct run *r, size_t slot, const struct cb_pipe_chunk *c, struct mapping *m,
		     struct cb_error *err)
{
	const struct cb_copy_engine_ops *ops = r->pipe->engine.ops;
	const struct cb_engine_file *f = &r->engine.files[c->file];
	if (c->offset > f->size || c->need > f->size - c->offset) {
		char where[64];
		snprintf(where, sizeof where, "byte %llu", (unsigned long long)f->size);
		return CB_FAIL(err, CB_EFORMAT, f->path, where,
			       "the file ends before the tensor data does");
	}
	void *addr = mmap(NULL, (size_t)c->len, PROT_READ, MAP_SHARED, f->fd, (off_t)c->offset);
	if (addr == MAP_FAILED)
		return CB_FAIL_ERRNO(err, errno, f->path, "mmap of a chunk");
	*m = (struct mapping){.addr = addr, .len = (size_t)c->len};
	atomic_fetch_add(&r->mapped, c->need);
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

/* The consumer's hooks (struct cb_engine_consumer). */
static int ring_start(void *ctx, unsigned worker, struct cb_error *err)
{
	struct run *r = ctx;
	const struct cb_pipe *p = r->pipe;
	(void)worker;
	if (p->cfg.on_thread)
		p->cfg.on_thread(p->cfg.thread_ctx);
	return p->engine.ops->thread_init ? p->engine.ops->thread_init(p->engine.impl, err) : CB_OK;
}

/* The worker's next slot, its previous copies waited out first: the
 * buffer the chunk is read into, or none with the map source. */
static int ring_buffer(void *ctx, unsigned worker, const struct cb_read_chunk *c, void **buf,
		       struct cb_error *err)
{
	struct run *r = ctx;
	const struct cb_pipe *p = r->pipe;
	struct ring_worker *w = &r->workers[worker];
	size_t base = (size_t)worker * p->cfg.slots_per_thread;
	unsigned s = (unsigned)(w->turn++ % p->cfg.slots_per_thread);
	(void)c;
	w->slot = s;
	if (w->busy[s]) {
		w->busy[s] = false;
		atomic_fetch_add(&r->reuses, 1);
		int rc = p->engine.ops->wait(p->engine.impl, base + s, err);
		if (rc != CB_OK)
			return rc;
	}
	unmap_chunk(r, base + s, &w->maps[s]);
	*buf = p->cfg.map ? NULL : p->slots[base + s];
	return CB_OK;
}

/* The chunk is in its slot (or is mapped now): its pieces copied out. */
static int ring_consume(void *ctx, unsigned worker, const struct cb_read_chunk *c, void *buf,
			struct cb_error *err)
{
	struct run *r = ctx;
	const struct cb_pipe *p = r->pipe;
	const struct cb_copy_engine_ops *ops = p->engine.ops;
	struct ring_worker *w = &r->workers[worker];
	size_t slot = (size_t)worker * p->cfg.slots_per_thread + w->slot;
	const struct cb_pipe_chunk *pc = &r->plan->chunks[c->item];
	int rc = CB_OK;
	if (p->cfg.map) {
		rc = map_chunk(r, slot, pc, &w->maps[w->slot], err);
		buf = w->maps[w->slot].addr;
	}
	for (size_t i = 0; rc == CB_OK && i < pc->n_pieces; i++) {
		const struct cb_pipe_piece *piece = &r->plan->pieces[pc->first_piece + i];
		w->busy[w->slot] = true;
		rc = ops->copy(p->engine.impl, slot, piece->dst, (char *)buf + piece->buf_off,
			       (size_t)piece->len, err);
	}
	if (rc == CB_OK && w->busy[w->slot] && ops->fence)
		rc = ops->fence(p->engine.impl, slot, err);
	return rc;
}

/* Drain: no copy may still read a slot when the run returns. */
static int ring_finish(void *ctx, unsigned worker, int rc, struct cb_error *err)
{
	struct run *r = ctx;
	const struct cb_pipe *p = r->pipe;
	struct ring_worker *w = &r->workers[worker];
	size_t base = (size_t)worker * p->cfg.slots_per_thread;
	int out = CB_OK;
	(void)rc;
	for (unsigned s = 0; s < p->cfg.slots_per_thread; s++) {
		if (w->busy[s]) {
			int rc2 = p->engine.ops->wait(p->engine.impl, base + s, err);
			w->busy[s] = false;
			if (out == CB_OK)
				out = rc2;
		}
		unmap_chunk(r, base + s, &w->maps[s]);
	}
	return out;
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
	struct run *r = calloc(1, sizeof *r);
	int *fds = calloc(n_files ? n_files : 1, sizeof *fds);
	const char **paths = calloc(n_files ? n_files : 1, sizeof *paths);
	struct cb_read_item *items = calloc(plan->n_chunks ? plan->n_chunks : 1, sizeof *items);
	int rc = r && fds && paths && items ? CB_OK
					    : CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; rc == CB_OK && i < n_files; i++) {
		fds[i] = files[i].fd;
		paths[i] = files[i].path;
	}
	for (size_t k = 0; rc == CB_OK && k < plan->n_chunks; k++) {
		const struct cb_pipe_chunk *c = &plan->chunks[k];
		items[k] = (struct cb_read_item){
			.file = c->file, .offset = c->offset, .len = c->len, .need = c->need};
	}
	/* The files as the caller opened them (O_DIRECT or not), one shared
	 * queue of the plan's chunks, each read whole (already slot-sized). */
	struct cb_engine_config cfg = {.threads = pipe->cfg.threads,
				       .queue = true,
				       .pread = pipe->cfg.pread,
				       .pread_ctx = pipe->cfg.pread_ctx};
	const struct cb_engine_consumer ring = {
		.ctx = r,
		.start = ring_start,
		.buffer = ring_buffer,
		.consume = ring_consume,
		.finish = ring_finish,
	};
	if (rc == CB_OK) {
		r->pipe = pipe;
		r->plan = plan;
		rc = cb_engine_setup(&r->engine, &cfg, err);
	}
	if (rc == CB_OK)
		rc = cb_engine_adopt(&r->engine, fds, paths, n_files, err);
	if (rc == CB_OK) {
		rc = cb_engine_run(&r->engine, items, plan->n_chunks, &ring, err);
		pipe->bytes_read = r->engine.report.bytes + atomic_load(&r->mapped);
		pipe->preads = r->engine.report.reads;
		pipe->slot_reuses = atomic_load(&r->reuses);
	}
	if (r)
		cb_engine_teardown(&r->engine);
	free(r);
	free(fds);
	free(paths);
	free(items);
	return rc;
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
