/* The read engine (read_engine.h): plans, threads, descriptors, O_DIRECT,
 * io_uring, and the first error. */
#include "read_engine.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../host.h" /* cb_host_match */
#include "cb_config.h"
#include "fault.h"

#if CB_HAVE_URING
#include <liburing.h>
#endif

#define ALIGN CB_ENGINE_DIRECT_ALIGN
#define MAX_WORKERS CB_ENGINE_MAX_THREADS
/* A bounce buffer's size when no chunk size bounds the reads. */
#define DEFAULT_BOUNCE (UINT64_C(4) << 20)
/* The most one io_uring read asks for (its length is 32 bits). */
#define URING_MAX_READ (UINT64_C(1) << 30)

struct run;

/* One reader: a thread, or with io_uring one read in flight. */
struct cb_engine_worker {
	struct cb_engine *e;
	struct run *run;
	unsigned index;
	uint8_t *bounce; /* O_DIRECT only: aligned edges and misaligned chunks */
	size_t bounce_len;
	/* With shares, every worker but the first: its own buffered descriptor
	 * of each file, opened on first use and kept until cb_engine_close. */
	int *own;
	size_t first, end;     /* its share of the chunks, [first, end) */
	uint64_t reads, bytes; /* this run's */
};

/* One cb_engine_run. */
struct run {
	struct cb_engine *e;
	const struct cb_engine_consumer *consumer;
	struct cb_read_chunk *chunks; /* in file order, then offset order */
	size_t n;
	atomic_size_t next;  /* the shared queue's next chunk */
	atomic_int failed;   /* set with the first error: the others stop */
	atomic_uint refused; /* chunks read buffered after O_DIRECT refused */
	pthread_mutex_t lock;
	int rc;               /* the first error's code, under lock */
	struct cb_error *err; /* the caller's, under lock */
};

/* Every allocation the engine makes goes through these, so a test build
 * can refuse any one of them (fault.h). */
static void *eng_calloc(size_t n, size_t size)
{
	return cb_fault_alloc() ? NULL : calloc(n ? n : 1, size);
}

unsigned cb_engine_threads(uint64_t opt)
{
	if (opt)
		return opt > MAX_WORKERS ? MAX_WORKERS : (unsigned)opt;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	/* Up to 16: on a 16-CPU GPU server a reader per CPU beat half as many
	 * (results/reference/gpu-h100-tuned has the runs). */
	return cpus < 1                        ? 1
	       : cpus > CB_DEFAULT_THREADS_MAX ? CB_DEFAULT_THREADS_MAX
					       : (unsigned)cpus;
}

int cb_engine_open_file(const char *path, bool direct, int *fd_out, struct cb_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | (direct ? O_DIRECT : 0));
	*fd_out = fd;
	if (fd < 0)
		return CB_FAIL_ERRNO(err, errno, path, direct ? "open with O_DIRECT" : "open");
	/* The kernel reads ahead more, and drops pages behind sooner. */
	if (!direct)
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return CB_OK;
}

/* A partial load's files (cfg.exact): no read-ahead past what is asked. */
static void advise_exact(const struct cb_engine *e, int fd)
{
	if (e->cfg.exact)
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
}

/* ------------------------------------------------------------- set-up */

int cb_engine_setup(struct cb_engine *e, const struct cb_engine_config *cfg, struct cb_error *err)
{
	*e = (struct cb_engine){.cfg = *cfg};
	e->cfg.threads = cb_engine_threads(cfg->threads);
	unsigned n = e->cfg.threads;
	e->report.shares = !cfg->queue;
	e->report.direct_asked = cfg->direct;
	if (cfg->uring) {
#if CB_HAVE_URING
		unsigned qd = cfg->qd ? cfg->qd : n;
		n = qd > MAX_WORKERS ? MAX_WORKERS : qd;
		e->cfg.qd = n;
#else
		snprintf(e->report.uring_note, sizeof e->report.uring_note,
			 "built without liburing");
		e->cfg.uring = false;
#endif
	}
	e->workers = eng_calloc(n, sizeof *e->workers);
	if (!e->workers)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory for %u readers", n);
	e->n_workers = n;
	e->report.workers = n;
	/* Bounce buffers are set-up, like a thread pool: made and touched
	 * here, one per reader thread or io_uring slot. */
	size_t len = (size_t)(cfg->chunk ? cfg->chunk : DEFAULT_BOUNCE) + 2 * ALIGN;
	for (unsigned i = 0; i < n; i++) {
		struct cb_engine_worker *w = &e->workers[i];
		w->index = i;
		if (!cfg->direct)
			continue;
		void *p = cb_fault_alloc() ? MAP_FAILED
					   : mmap(NULL, len, PROT_READ | PROT_WRITE,
						  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return CB_FAIL(err, CB_ENOMEM, NULL, NULL,
				       "no memory for O_DIRECT bounce buffers");
		memset(p, 0, len);
		w->bounce = p;
		w->bounce_len = len;
	}
	return CB_OK;
}

/* The file table for n files; with `own`, each worker's own descriptors
 * too (shares only: the queue's readers share the set's). */
static int files_alloc(struct cb_engine *e, size_t n, bool own, struct cb_error *err)
{
	cb_engine_close(e);
	e->report.files = e->report.direct_files = 0;
	e->files = eng_calloc(n, sizeof *e->files);
	if (!e->files)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory for the file table");
	e->n_files = n;
	e->report.files = n;
	for (size_t i = 0; i < n; i++)
		e->files[i].fd = e->files[i].dfd = -1;
	for (unsigned w = 1; own && !e->cfg.queue && w < e->n_workers; w++) {
		int *fds = eng_calloc(n, sizeof *fds);
		if (!fds)
			return CB_FAIL(err, CB_ENOMEM, NULL, NULL,
				       "no memory for the readers' descriptors");
		for (size_t i = 0; i < n; i++)
			fds[i] = -1;
		e->workers[w].own = fds;
	}
	return CB_OK;
}

static int file_size(struct cb_engine_file *f, struct cb_error *err)
{
	struct stat st;
	if (fstat(f->fd, &st) != 0)
		return CB_FAIL_ERRNO(err, errno, f->path, "stat");
	f->size = (uint64_t)st.st_size;
	return CB_OK;
}

int cb_engine_open(struct cb_engine *e, const char *const *paths, size_t n, struct cb_error *err)
{
	int rc = files_alloc(e, n, true, err);
	for (size_t i = 0; rc == CB_OK && i < n; i++) {
		struct cb_engine_file *f = &e->files[i];
		f->path = paths[i];
		f->owned = true;
		rc = cb_engine_open_file(f->path, false, &f->fd, err);
		if (rc == CB_OK)
			advise_exact(e, f->fd);
		if (rc == CB_OK)
			rc = file_size(f, err);
		/* Refused (tmpfs before Linux 6.6): buffered reads of this file,
		 * and the report says so. */
		struct cb_error refused = CB_ERROR_INIT;
		if (rc == CB_OK && e->cfg.direct &&
		    cb_engine_open_file(f->path, true, &f->dfd, &refused) == CB_OK)
			e->report.direct_files++;
	}
	return rc;
}

int cb_engine_adopt(struct cb_engine *e, const int *fds, const char *const *paths, size_t n,
		    struct cb_error *err)
{
	int rc = files_alloc(e, n, false, err);
	for (size_t i = 0; rc == CB_OK && i < n; i++) {
		e->files[i].path = paths[i];
		e->files[i].fd = fds[i];
		rc = file_size(&e->files[i], err);
	}
	return rc;
}

void cb_engine_close(struct cb_engine *e)
{
	for (size_t i = 0; i < e->n_files; i++) {
		struct cb_engine_file *f = &e->files[i];
		if (f->owned && f->fd >= 0)
			close(f->fd);
		if (f->dfd >= 0)
			close(f->dfd);
	}
	for (unsigned w = 0; w < e->n_workers; w++) {
		int *own = e->workers[w].own;
		for (size_t i = 0; own && i < e->n_files; i++)
			if (own[i] >= 0)
				close(own[i]);
		free(own);
		e->workers[w].own = NULL;
	}
	free(e->files);
	e->files = NULL;
	e->n_files = 0;
}

void cb_engine_teardown(struct cb_engine *e)
{
	cb_engine_close(e);
	for (unsigned w = 0; w < e->n_workers; w++)
		if (e->workers[w].bounce)
			munmap(e->workers[w].bounce, e->workers[w].bounce_len);
	free(e->workers);
	e->workers = NULL;
	e->n_workers = 0;
}

/* --------------------------------------------------------------- plan */

static int by_place(const void *a, const void *b)
{
	const struct cb_read_chunk *x = a, *y = b;
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x->item < y->item ? -1 : x->item > y->item;
}

/* Every item split into chunks of at most cfg.chunk bytes (empty ones
 * dropped), ordered as they lie in the files, files in index order. */
static int plan(struct run *r, const struct cb_read_item *items, size_t n, struct cb_error *err)
{
	const struct cb_engine *e = r->e;
	uint64_t chunk = e->cfg.chunk;
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t len = items[i].len;
		uint64_t count = !len ? 0 : chunk ? (len - 1) / chunk + 1 : 1;
		if (items[i].file >= e->n_files)
			return CB_FAIL(err, CB_EINTERNAL, NULL, NULL,
				       "a read names file %u of a set of %zu", items[i].file,
				       e->n_files);
		if (count > SIZE_MAX || __builtin_add_overflow(total, (size_t)count, &total))
			return CB_FAIL(err, CB_ELIMIT, NULL, NULL, "too many reads to plan");
	}
	r->chunks = eng_calloc(total, sizeof *r->chunks);
	if (!r->chunks)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory for the read plan");
	for (size_t i = 0; i < n; i++) {
		const struct cb_read_item *it = &items[i];
		uint64_t need = it->need ? it->need : it->len;
		for (uint64_t done = 0; done < it->len;) {
			uint64_t len = it->len - done;
			if (chunk && len > chunk)
				len = chunk;
			uint64_t still = need > done ? need - done : 0;
			r->chunks[r->n++] = (struct cb_read_chunk){
				.item = i,
				.item_off = done,
				.file = it->file,
				.offset = it->offset + done,
				.len = len,
				.need = still < len ? still : len,
				.dest = it->dest ? (char *)it->dest + done : NULL,
			};
			done += len;
		}
	}
	qsort(r->chunks, r->n, sizeof *r->chunks, by_place);
	return CB_OK;
}

int cb_engine_model_items(const struct cb_ckpt *ckpt, const struct cb_manifest *arch,
			  const struct cb_model *model, bool views_ok,
			  struct cb_read_item **items_out, struct cb_error *err)
{
	struct cb_read_item *items = eng_calloc(arch->n_tensors, sizeof *items);
	*items_out = items;
	if (!items)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory for the read plan");
	for (size_t i = 0; i < arch->n_tensors; i++) {
		const struct cb_manifest_tensor *want = &arch->tensors[i];
		const struct cb_ckpt_tensor *have = cb_ckpt_find(ckpt, want->name);
		int rc = cb_host_match(want, have, views_ok, ckpt->path, err);
		if (rc != CB_OK)
			return rc;
		items[i] = (struct cb_read_item){
			.file = have->file,
			.offset = have->offset,
			.len = want->nbytes,
			.dest = model->tensors[i].data,
		};
	}
	return CB_OK;
}

/* Contiguous shares of about equal bytes, one per worker, in file order:
 * each thread then reads one run of the file front to back, rather than
 * every other chunk. */
static void split_shares(struct run *r, unsigned n)
{
	uint64_t total = 0, done = 0;
	for (size_t k = 0; k < r->n; k++)
		total += r->chunks[k].len;
	size_t k = 0;
	for (unsigned w = 0; w < n; w++) {
		/* The bytes up to the end of share w; the last takes the rest. */
		uint64_t goal = w + 1 == n ? total : total / n * (w + 1);
		r->e->workers[w].first = k;
		while (k < r->n && (done < goal || w + 1 == n))
			done += r->chunks[k++].len;
		r->e->workers[w].end = k;
	}
}

/* -------------------------------------------------------------- reads */

/* A short read's length: half, and for O_DIRECT whole blocks. */
static size_t shortened(size_t len, bool direct)
{
	if (!direct)
		return len > 1 ? len / 2 : len;
	size_t half = (size_t)((len / 2) & ~(ALIGN - 1));
	return half ? half : len;
}

/* Every pread the engine makes. */
static ssize_t eng_pread(struct cb_engine_worker *w, int fd, void *buf, size_t len, uint64_t offset,
			 bool direct)
{
	const struct cb_engine_config *cfg = &w->e->cfg;
	w->reads++;
	switch (cb_fault_read()) {
	case CB_FAULT_NONE: break;
	case CB_FAULT_EIO: errno = EIO; return -1;
	case CB_FAULT_EINTR: errno = EINTR; return -1;
	case CB_FAULT_EINVAL: errno = EINVAL; return -1;
	case CB_FAULT_SHORT: len = shortened(len, direct); break;
	}
	ssize_t got = cfg->pread ? cfg->pread(cfg->pread_ctx, fd, buf, len, offset)
				 : pread(fd, buf, len, (off_t)offset);
	if (got > 0)
		w->bytes += (uint64_t)got;
	return got;
}

/* A failed read: "PATH: pread: Input/output error (byte N)". */
static int read_failed(struct cb_error *err, int errnum, const char *path, const char *what,
		       uint64_t at)
{
	bool fresh = err && err->code == CB_OK;
	int rc = CB_FAIL_ERRNO(err, errnum, path, what);
	if (fresh)
		snprintf(err->where, sizeof err->where, "byte %llu", (unsigned long long)at);
	return rc;
}

static int ends_early(struct cb_error *err, const char *path, uint64_t at, uint64_t missing)
{
	char where[64];
	snprintf(where, sizeof where, "byte %llu", (unsigned long long)at);
	return CB_FAIL(err, CB_EFORMAT, path, where,
		       "the file ends before the tensor data does (%llu more bytes expected)",
		       (unsigned long long)missing);
}

/* Reads [offset, offset + len) into buf until its first `need` bytes are
 * in, retrying EINTR and short reads. With `direct` (an O_DIRECT descriptor,
 * everything aligned) EINVAL, the filesystem refusing the read, is
 * CB_EUNSUPPORTED with no message, and a short read off a block boundary
 * is the end of the file. */
static int read_full(struct cb_engine_worker *w, int fd, const char *path, char *buf, uint64_t len,
		     uint64_t need, uint64_t offset, bool direct, struct cb_error *err)
{
	for (uint64_t got = 0; got < need;) {
		ssize_t n = eng_pread(w, fd, buf + got, (size_t)(len - got), offset + got, direct);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && direct && errno == EINVAL)
			return CB_EUNSUPPORTED;
		if (n < 0)
			return read_failed(err, errno, path, direct ? "O_DIRECT pread" : "pread",
					   offset + got);
		if (n == 0 || (direct && (uint64_t)n % ALIGN && got + (uint64_t)n < need))
			return ends_early(err, path, offset + got + (uint64_t)n,
					  need - got - (uint64_t)n);
		got += (uint64_t)n;
	}
	return CB_OK;
}

/* O_DIRECT: reads [off, off + len) of `dfd` into dest through the bounce
 * buffer, aligned blocks around the range, only the range copied. The last
 * block may run past the end of the file (a short read). EINVAL, the
 * filesystem refusing the read, is CB_EUNSUPPORTED with no message. */
static int bounce_read(struct cb_engine_worker *w, int dfd, const char *path, char *dest,
		       uint64_t off, uint64_t len, struct cb_error *err)
{
	uint64_t end = off + len;
	uint64_t pos = off & ~(ALIGN - 1);
	while (pos < end) {
		uint64_t span = (end - pos + ALIGN - 1) & ~(ALIGN - 1);
		if (span > w->bounce_len)
			span = w->bounce_len & ~(ALIGN - 1);
		ssize_t got = eng_pread(w, dfd, w->bounce, (size_t)span, pos, true);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return errno == EINVAL
				       ? CB_EUNSUPPORTED
				       : read_failed(err, errno, path, "O_DIRECT pread", pos);
		if (got == 0)
			return ends_early(err, path, pos, end - pos);
		uint64_t from = pos > off ? pos : off;
		uint64_t to = pos + (uint64_t)got < end ? pos + (uint64_t)got : end;
		if (to > from)
			memcpy(dest + (from - off), w->bounce + (from - pos), (size_t)(to - from));
		if (to >= end)
			break;
		/* A short read that ends off a block boundary is the end of the
		 * file, and bytes of the range are still missing. */
		if ((uint64_t)got % ALIGN)
			return ends_early(err, path, pos + (uint64_t)got,
					  end - pos - (uint64_t)got);
		pos += (uint64_t)got;
	}
	return CB_OK;
}

/* A chunk with O_DIRECT: the aligned middle straight into place when the
 * destination shares the file offset's alignment, the rest bounced. */
static int direct_read(struct cb_engine_worker *w, int dfd, const char *path,
		       const struct cb_read_chunk *c, char *dest, struct cb_error *err)
{
	uint64_t off = c->offset, end = off + c->len;
	uint64_t mid_a = (off + ALIGN - 1) & ~(ALIGN - 1);
	uint64_t mid_b = end & ~(ALIGN - 1);
	bool in_place = (((uintptr_t)dest - off) & (ALIGN - 1)) == 0 && mid_b > mid_a;
	if (!in_place)
		return bounce_read(w, dfd, path, dest, off, c->len, err);
	int rc = mid_a > off ? bounce_read(w, dfd, path, dest, off, mid_a - off, err) : CB_OK;
	if (rc == CB_OK)
		rc = read_full(w, dfd, path, dest + (mid_a - off), mid_b - mid_a, mid_b - mid_a,
			       mid_a, true, err);
	if (rc == CB_OK && end > mid_b)
		rc = bounce_read(w, dfd, path, dest + (mid_b - off), mid_b, end - mid_b, err);
	return rc;
}

static int read_chunk(struct cb_engine_worker *w, const struct cb_read_chunk *c, char *dest,
		      struct cb_error *err)
{
	const struct cb_engine_file *f = &w->e->files[c->file];
	if (f->dfd >= 0 && w->bounce) {
		int rc = direct_read(w, f->dfd, f->path, c, dest, err);
		if (rc != CB_EUNSUPPORTED)
			return rc;
		/* The filesystem took O_DIRECT at open but refuses the read:
		 * this chunk buffered. */
		atomic_fetch_add(&w->run->refused, 1);
	}
	int fd = f->fd;
	if (w->own) {
		if (w->own[c->file] < 0) {
			int rc = cb_engine_open_file(f->path, false, &w->own[c->file], err);
			if (rc == CB_OK)
				advise_exact(w->e, w->own[c->file]);
			if (rc != CB_OK)
				return rc;
		}
		fd = w->own[c->file];
	}
	return read_full(w, fd, f->path, dest, c->len, c->need, c->offset, false, err);
}

/* ------------------------------------------------------------ threads */

static void record_failure(struct run *r, int rc, const struct cb_error *local)
{
	atomic_store(&r->failed, 1);
	pthread_mutex_lock(&r->lock);
	if (r->rc == CB_OK) {
		r->rc = rc;
		if (r->err && r->err->code == CB_OK) {
			*r->err = *local;
			if (local->code == CB_OK)
				CB_FAIL(r->err, rc, NULL, NULL, "a reader failed");
		}
	}
	pthread_mutex_unlock(&r->lock);
}

static int do_chunk(struct cb_engine_worker *w, const struct cb_read_chunk *c, struct cb_error *err)
{
	const struct cb_engine_consumer *k = w->run->consumer;
	if (!k)
		return read_chunk(w, c, c->dest, err);
	void *buf = c->dest;
	int rc = k->buffer ? k->buffer(k->ctx, w->index, c, &buf, err) : CB_OK;
	if (rc == CB_OK && buf)
		rc = read_chunk(w, c, buf, err);
	return rc == CB_OK ? k->consume(k->ctx, w->index, c, buf, err) : rc;
}

static void *worker_main(void *arg)
{
	struct cb_engine_worker *w = arg;
	struct run *r = w->run;
	const struct cb_engine_consumer *k = r->consumer;
	bool shares = !r->e->cfg.queue;
	struct cb_error local = CB_ERROR_INIT;
	int rc = k && k->start ? k->start(k->ctx, w->index, &local) : CB_OK;
	for (size_t mine = w->first; rc == CB_OK; mine++) {
		size_t i = shares ? mine : atomic_fetch_add(&r->next, 1);
		if (i >= (shares ? w->end : r->n) || atomic_load(&r->failed))
			break;
		rc = do_chunk(w, &r->chunks[i], &local);
	}
	if (k && k->finish) {
		struct cb_error late = CB_ERROR_INIT;
		int rc2 = k->finish(k->ctx, w->index, rc, rc == CB_OK ? &local : &late);
		if (rc == CB_OK)
			rc = rc2;
	}
	if (rc != CB_OK)
		record_failure(r, rc, &local);
	return NULL;
}

/* The chunks on n workers, the calling thread as worker 0. */
static void run_threads(struct run *r, unsigned n)
{
	struct cb_engine *e = r->e;
	if (!e->cfg.queue)
		split_shares(r, n);
	pthread_t tids[MAX_WORKERS];
	unsigned started = 0;
	/* Fewer threads still read everything: creation failures are not
	 * errors. */
	while (started + 1 < n &&
	       pthread_create(&tids[started], NULL, worker_main, &e->workers[started + 1]) == 0)
		started++;
	worker_main(&e->workers[0]);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	/* Shares whose thread did not start: read here. */
	for (unsigned w = started + 1; !e->cfg.queue && w < n; w++)
		worker_main(&e->workers[w]);
}

/* ----------------------------------------------------------- io_uring */

#if CB_HAVE_URING
/* One read in flight: a chunk, or what is left of it after a short read. */
struct slot {
	size_t chunk;
	uint64_t pos; /* file offset this read starts at */
	bool bounced; /* into the slot's bounce buffer (O_DIRECT) */
};

static void submit_slot(struct run *r, struct io_uring *ring, struct slot *sl,
			struct cb_engine_worker *w)
{
	const struct cb_read_chunk *c = &r->chunks[sl->chunk];
	const struct cb_engine_file *f = &r->e->files[c->file];
	uint64_t end = c->offset + c->len;
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring); /* never NULL: one per slot */
	w->reads++;
	if (sl->bounced) {
		uint64_t span = (end - sl->pos + ALIGN - 1) & ~(ALIGN - 1);
		if (span > w->bounce_len)
			span = w->bounce_len & ~(ALIGN - 1);
		io_uring_prep_read(sqe, f->dfd, w->bounce, (unsigned)span, sl->pos);
	} else {
		uint64_t want = end - sl->pos < URING_MAX_READ ? end - sl->pos : URING_MAX_READ;
		io_uring_prep_read(sqe, f->fd, c->dest + (sl->pos - c->offset), (unsigned)want,
				   sl->pos);
	}
	io_uring_sqe_set_data(sqe, sl);
}

/* A completion as the fault injection leaves it (fault.h). */
static int faulted(int res, bool bounced)
{
	switch (cb_fault_read()) {
	case CB_FAULT_NONE: break;
	case CB_FAULT_EIO: return -EIO;
	case CB_FAULT_EINTR: return -EINTR;
	case CB_FAULT_EINVAL: return -EINVAL;
	case CB_FAULT_SHORT: return res > 0 ? (int)shortened((size_t)res, bounced) : res;
	}
	return res;
}

/* A completion: copies bounced bytes into place; *done when the chunk is
 * in, else the slot is to be resubmitted for the rest. */
static int complete_slot(struct run *r, struct slot *sl, struct cb_engine_worker *w, int res,
			 bool *done, struct cb_error *err)
{
	const struct cb_read_chunk *c = &r->chunks[sl->chunk];
	const struct cb_engine_file *f = &r->e->files[c->file];
	uint64_t end = c->offset + c->len;
	*done = false;
	if (res == -EINVAL && sl->bounced) {
		/* O_DIRECT refused at read time: this chunk buffered */
		atomic_fetch_add(&r->refused, 1);
		*done = true;
		return read_full(w, f->fd, f->path, c->dest, c->len, c->len, c->offset, false, err);
	}
	if (res == -EINTR || res == -EAGAIN)
		return CB_OK; /* the same read again */
	if (res < 0)
		return read_failed(err, -res, f->path, "io_uring read", sl->pos);
	if (res == 0)
		return ends_early(err, f->path, sl->pos, end - sl->pos);
	uint64_t got = (uint64_t)res;
	w->bytes += got;
	if (sl->bounced) {
		uint64_t from = sl->pos > c->offset ? sl->pos : c->offset;
		uint64_t to = sl->pos + got < end ? sl->pos + got : end;
		if (to > from)
			memcpy(c->dest + (from - c->offset), w->bounce + (from - sl->pos),
			       (size_t)(to - from));
		if (to < end && got % ALIGN)
			return ends_early(err, f->path, sl->pos + got, end - sl->pos - got);
		sl->pos = to < end ? sl->pos + got : end;
	} else {
		sl->pos += got;
	}
	*done = sl->pos >= end;
	return CB_OK;
}

/* The chunks through one io_uring, a read in flight per worker slot;
 * pread threads when the ring cannot be set up. */
static void run_uring(struct run *r)
{
	struct cb_engine *e = r->e;
	unsigned qd = e->n_workers;
	struct io_uring ring;
	int rc = io_uring_queue_init(qd, &ring, 0);
	if (rc < 0) {
		snprintf(e->report.uring_note, sizeof e->report.uring_note, "io_uring refused (%s)",
			 strerror(-rc));
		run_threads(r, qd < r->n ? qd : (unsigned)(r->n ? r->n : 1));
		return;
	}
	e->report.uring = true;
	struct cb_error local = CB_ERROR_INIT;
	struct slot slots[MAX_WORKERS];
	unsigned free_slots[MAX_WORKERS], n_free = 0, inflight = 0;
	for (unsigned i = qd; i-- > 0;)
		free_slots[n_free++] = i;
	size_t next = 0;
	rc = CB_OK;
	while (rc == CB_OK && (next < r->n || inflight > 0)) {
		while (n_free > 0 && next < r->n) {
			unsigned k = free_slots[--n_free];
			const struct cb_read_chunk *c = &r->chunks[next];
			bool direct = e->files[c->file].dfd >= 0 && e->workers[k].bounce;
			slots[k] = (struct slot){
				.chunk = next++,
				.pos = direct ? c->offset & ~(ALIGN - 1) : c->offset,
				.bounced = direct,
			};
			submit_slot(r, &ring, &slots[k], &e->workers[k]);
			inflight++;
		}
		int sub = io_uring_submit_and_wait(&ring, 1);
		if (sub < 0 && sub != -EINTR) {
			rc = CB_FAIL_ERRNO(&local, -sub, NULL, "io_uring submit");
			break;
		}
		struct io_uring_cqe *cqe;
		while (rc == CB_OK && io_uring_peek_cqe(&ring, &cqe) == 0) {
			struct slot *sl = io_uring_cqe_get_data(cqe);
			unsigned k = (unsigned)(sl - slots);
			bool done = false;
			rc = complete_slot(r, sl, &e->workers[k], faulted(cqe->res, sl->bounced),
					   &done, &local);
			io_uring_cqe_seen(&ring, cqe);
			inflight--;
			if (rc == CB_OK && !done) {
				submit_slot(r, &ring, sl, &e->workers[k]);
				inflight++;
			} else if (rc == CB_OK) {
				free_slots[n_free++] = k;
			}
		}
	}
	/* On failure, reads still in flight (or prepared, not yet submitted)
	 * write into the destination: wait them out before the caller may
	 * free it. */
	while (inflight > 0) {
		int sub = io_uring_submit_and_wait(&ring, 1);
		if (sub < 0 && sub != -EINTR)
			break;
		struct io_uring_cqe *cqe;
		while (inflight > 0 && io_uring_peek_cqe(&ring, &cqe) == 0) {
			io_uring_cqe_seen(&ring, cqe);
			inflight--;
		}
	}
	io_uring_queue_exit(&ring);
	if (rc != CB_OK)
		record_failure(r, rc, &local);
}
#endif

/* ---------------------------------------------------------------- run */

int cb_engine_run(struct cb_engine *e, const struct cb_read_item *items, size_t n,
		  const struct cb_engine_consumer *c, struct cb_error *err)
{
	if (!e->workers)
		return CB_FAIL(err, CB_EINTERNAL, NULL, NULL, "the read engine is not set up");
	struct run r = {.e = e, .consumer = c, .err = err};
	e->report.uring = false;
	e->report.chunks = 0;
	e->report.bytes = e->report.reads = 0;
	e->report.direct_refused = 0;
	int rc = plan(&r, items, n, err);
	e->report.chunks = r.n;
	if (rc == CB_OK && pthread_mutex_init(&r.lock, NULL) != 0)
		rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "cannot create a mutex");
	if (rc != CB_OK) {
		free(r.chunks);
		return rc;
	}
	for (unsigned w = 0; w < e->n_workers; w++) {
		e->workers[w].e = e;
		e->workers[w].run = &r;
		e->workers[w].reads = e->workers[w].bytes = 0;
		e->workers[w].first = e->workers[w].end = 0;
	}
	unsigned threads = e->n_workers < r.n ? e->n_workers : (unsigned)(r.n ? r.n : 1);
#if CB_HAVE_URING
	if (!c && e->cfg.uring)
		run_uring(&r);
	else
		run_threads(&r, threads);
#else
	run_threads(&r, threads);
#endif
	pthread_mutex_destroy(&r.lock);
	for (unsigned w = 0; w < e->n_workers; w++) {
		e->report.reads += e->workers[w].reads;
		e->report.bytes += e->workers[w].bytes;
		e->workers[w].run = NULL;
	}
	e->report.direct_refused = atomic_load(&r.refused);
	free(r.chunks);
	return atomic_load(&r.failed) ? (r.rc != CB_OK ? r.rc : CB_EIO) : CB_OK;
}

int cb_engine_read(struct cb_engine *e, const struct cb_read_item *items, size_t n,
		   struct cb_error *err)
{
	return cb_engine_run(e, items, n, NULL, err);
}

void cb_engine_describe(const struct cb_engine *e, char *out, size_t size)
{
	const struct cb_engine_report *r = &e->report;
	char io[160], direct[96];
	if (r->uring)
		snprintf(io, sizeof io, "io_uring qd %u", r->workers);
	else
		snprintf(io, sizeof io, "pread x%u threads (%s)%s%s%s", r->workers,
			 r->shares ? "contiguous shares" : "shared queue",
			 *r->uring_note ? " (" : "", r->uring_note,
			 *r->uring_note ? ": pread instead)" : "");
	if (!r->direct_asked)
		snprintf(direct, sizeof direct, "buffered");
	else if (r->direct_files == 0)
		snprintf(direct, sizeof direct, "buffered (O_DIRECT refused by the filesystem)");
	else if (r->direct_refused)
		snprintf(direct, sizeof direct, "O_DIRECT, %u chunks buffered (read refused)",
			 r->direct_refused);
	else
		snprintf(direct, sizeof direct, "O_DIRECT on %zu of %zu files", r->direct_files,
			 r->files);
	snprintf(out, size, "%.120s, %.80s, fadvise sequential, %zu chunks", io, direct, r->chunks);
}
