/* safetensors-read: loading straight into the model (docs/loaders.md).
 *
 * Stands for a framework that builds the model first and then reads each
 * tensor's bytes from the file into the tensor's own memory (the path of
 * fastsafetensors-style and "load into an allocated model" loaders):
 *   init  allocate every tensor and write its pages, as an initialiser
 *         (zeros, random init) would, on the reader threads;
 *   read  parse the header(s), then read each tensor into place: large
 *         tensors split into chunks shared by worker threads (pread), or
 *         queued on an io_uring; files in index order, each advised
 *         POSIX_FADV_SEQUENTIAL.
 * No copy phase: with buffered reads the bytes land where they stay.
 *
 * O_DIRECT (option `direct`) bypasses the page cache. Its offsets, lengths
 * and buffers must be block aligned, and a safetensors data section starts
 * wherever the header ends, so a direct read covers the aligned blocks
 * around a chunk: straight into place where the destination and the file
 * offset share their alignment, through a bounce buffer for the unaligned
 * edges and everywhere else. A filesystem that refuses O_DIRECT (tmpfs)
 * gets buffered reads; io_uring that cannot be set up (old kernel, seccomp,
 * built without liburing) gets the pread threads. The mode that really ran
 * is reported through CB_LOADER_CTL_MODE.
 *
 * What it deliberately does not do: keep a thread pool or buffers across
 * loads (every trial is one load), register buffers with io_uring, or
 * allocate the model in one arena (a framework allocates per tensor).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cb_config.h"
#include "ckpt.h"
#include "fileio.h"
#include "host.h"
#include "loader.h"

#if CB_HAVE_URING
#include <liburing.h>
#endif

#define MAX_THREADS 64
#define DIRECT_ALIGN ((uint64_t)4096) /* covers every logical block size */

struct st_read_opts {
	uint64_t threads; /* 0: one per online CPU, at most 16 */
	uint64_t chunk;   /* bytes each read moves at most */
	bool direct;      /* O_DIRECT where the filesystem allows */
	bool uring;       /* io_uring instead of pread threads */
	uint64_t qd;      /* io_uring queue depth */
	bool thp;         /* ask for transparent huge pages for the model */
	bool shares;      /* each thread a contiguous share of the file, not a queue */
};

static const struct cb_loader_opt st_read_opts[] = {
	{"threads", CB_OPT_U64, offsetof(struct st_read_opts, threads), 0, MAX_THREADS, "0",
	 "reader (and initialiser) threads (0: one per CPU, at most 16)"},
	{"chunk", CB_OPT_U64, offsetof(struct st_read_opts, chunk), 64 << 10, 1 << 30, "4M",
	 "bytes per read; larger tensors are split into chunks shared by the threads"},
	{"direct", CB_OPT_BOOL, offsetof(struct st_read_opts, direct), 0, 0, "0",
	 "O_DIRECT reads (bypass the page cache); buffered where the filesystem refuses"},
	{"uring", CB_OPT_BOOL, offsetof(struct st_read_opts, uring), 0, 0, "0",
	 "io_uring instead of pread threads; pread where io_uring is unavailable"},
	{"qd", CB_OPT_U64, offsetof(struct st_read_opts, qd), 1, 256, "8",
	 "io_uring queue depth (reads in flight)"},
	{"thp", CB_OPT_BOOL, offsetof(struct st_read_opts, thp), 0, 0, "1",
	 "transparent huge pages for the model's large tensors (madvise)"},
	{"shares", CB_OPT_BOOL, offsetof(struct st_read_opts, shares), 0, 0, "1",
	 "each thread reads one contiguous share of the chunks (0: one shared queue)"},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

/* One read of a chunk of a tensor into its place. */
struct chunk {
	uint32_t file;
	uint64_t offset;
	char *dest;
	size_t len;
};

struct st_read;

/* One reader thread; its bounce buffer is only there with O_DIRECT. */
struct worker {
	struct st_read *s;
	uint8_t *bounce;
	size_t bounce_len;
	size_t first, end; /* its share of the chunks, [first, end), with shares */
	/* With shares: its own buffered descriptor per file, opened on first
	 * use, so each thread's run of the file has its own read-ahead state
	 * (threads sharing one open file look like random access to the
	 * kernel's read-ahead, which then shrinks its window). */
	int *own_fds;
};

/* Private state, allocated zeroed by the harness; everything in it is owned
 * here and freed by st_read_close, whatever state a failure left it in. */
struct st_read {
	struct cb_host_model model;
	struct cb_ckpt *ckpt;
	int *fds;  /* buffered, one per checkpoint file; -1 when closed */
	int *dfds; /* O_DIRECT, or -1 where refused or not asked for */
	size_t n_fds;
	struct chunk *chunks; /* in file order, then offset order */
	size_t n_chunks;
	atomic_size_t next;          /* the next chunk to read (one shared queue) */
	bool shares;                 /* workers read their own [first, end) instead */
	atomic_int failed;           /* set by the first failing worker */
	atomic_int direct_fallbacks; /* direct reads refused mid-load (EINVAL) */
	pthread_mutex_t err_lock;
	bool lock_ready;
	struct cb_error *err; /* the load's error struct, under err_lock */
	struct worker workers[MAX_THREADS];
	unsigned n_workers;
	size_t direct_files; /* files opened with O_DIRECT */
	char uring_note[96]; /* why io_uring did not run, when asked for */
	bool uring_ran;
};

static int st_read_open(const struct cb_loader *self, void *priv, const struct cb_load_ctx *ctx,
			struct cb_error *err)
{
	(void)self;
	struct st_read *s = priv;
	const struct st_read_opts *o = ctx->opts;
	if (pthread_mutex_init(&s->err_lock, NULL) != 0)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "cannot create a mutex");
	s->lock_ready = true;
	s->n_workers = cb_host_threads(o->threads);
	if (o->uring)
		s->n_workers = (unsigned)(o->qd > MAX_THREADS ? MAX_THREADS : o->qd);
	/* Bounce buffers are setup, like a thread pool: made and touched here,
	 * before the baseline, one per reader thread or io_uring slot. */
	for (unsigned i = 0; o->direct && i < s->n_workers; i++) {
		size_t len = (size_t)o->chunk + 2 * DIRECT_ALIGN;
		void *p =
			mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory for bounce buffers");
		memset(p, 0, len);
		s->workers[i] = (struct worker){.s = s, .bounce = p, .bounce_len = len};
	}
	for (unsigned i = 0; i < s->n_workers; i++)
		s->workers[i].s = s;
	return CB_OK;
}

static int open_files(struct st_read *s, bool direct, struct cb_error *err)
{
	size_t n = s->ckpt->n_files;
	s->fds = malloc(n * sizeof *s->fds);
	s->dfds = malloc(n * sizeof *s->dfds);
	if (!s->fds || !s->dfds)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	s->n_fds = n;
	for (size_t i = 0; i < n; i++)
		s->fds[i] = s->dfds[i] = -1;
	for (size_t i = 0; i < n; i++) {
		const char *path = s->ckpt->files[i].path;
		s->fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (s->fds[i] < 0)
			return CB_FAIL_ERRNO(err, errno, path, "open");
		/* The kernel reads ahead more, and drops pages behind sooner. */
		(void)posix_fadvise(s->fds[i], 0, 0, POSIX_FADV_SEQUENTIAL);
		if (direct) {
			/* EINVAL: the filesystem has no O_DIRECT (tmpfs); buffered
			 * reads then, and the mode says so. */
			s->dfds[i] = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
			s->direct_files += s->dfds[i] >= 0;
		}
	}
	return CB_OK;
}

static int by_place(const void *a, const void *b)
{
	const struct chunk *x = a, *y = b;
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Splits every tensor into chunks of at most `chunk` bytes, then orders
 * them as they lie in the files, files in index order. */
static int plan_chunks(struct st_read *s, const struct cb_manifest *arch, uint64_t chunk,
		       struct cb_error *err)
{
	size_t total = 0;
	for (size_t i = 0; i < arch->n_tensors; i++)
		if (__builtin_add_overflow(total, arch->tensors[i].nbytes / chunk + 1, &total))
			return CB_FAIL(err, CB_ELIMIT, NULL, NULL, "too many chunks");
	s->chunks = calloc(total ? total : 1, sizeof *s->chunks);
	if (!s->chunks)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < arch->n_tensors; i++) {
		const struct cb_manifest_tensor *want = &arch->tensors[i];
		const struct cb_ckpt_tensor *have = cb_ckpt_find(s->ckpt, want->name);
		int rc = cb_host_match(want, have, false, s->ckpt->path, err);
		if (rc != CB_OK)
			return rc;
		for (uint64_t done = 0; done < want->nbytes; done += chunk) {
			uint64_t left = want->nbytes - done;
			s->chunks[s->n_chunks++] = (struct chunk){
				.file = have->file,
				.offset = have->offset + done,
				.dest = (char *)s->model.data[i] + done,
				.len = (size_t)(left < chunk ? left : chunk),
			};
		}
	}
	qsort(s->chunks, s->n_chunks, sizeof *s->chunks, by_place);
	return CB_OK;
}

/* ------------------------------------------------------------ O_DIRECT */

/* Reads [off, off + len) of the O_DIRECT `dfd` into dest through the
 * bounce buffer: aligned blocks around the range, only the range copied.
 * The last block may run past the end of the file (a short read). */
static int bounce_read(struct worker *w, int dfd, const char *path, char *dest, uint64_t off,
		       uint64_t len, struct cb_error *err)
{
	uint64_t end = off + len;
	uint64_t pos = off & ~(DIRECT_ALIGN - 1);
	while (pos < end) {
		uint64_t span = (end - pos + DIRECT_ALIGN - 1) & ~(DIRECT_ALIGN - 1);
		if (span > w->bounce_len)
			span = w->bounce_len & ~(DIRECT_ALIGN - 1);
		ssize_t got = pread(dfd, w->bounce, (size_t)span, (off_t)pos);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return errno == EINVAL ? CB_EUNSUPPORTED
					       : CB_FAIL_ERRNO(err, errno, path, "O_DIRECT read");
		if (got == 0)
			return CB_FAIL(err, CB_EFORMAT, path, NULL, "file ends at byte %llu",
				       (unsigned long long)pos);
		uint64_t from = pos > off ? pos : off;
		uint64_t to = pos + (uint64_t)got < end ? pos + (uint64_t)got : end;
		if (to > from)
			memcpy(dest + (from - off), w->bounce + (from - pos), (size_t)(to - from));
		if (to >= end)
			break;
		/* A short read that ends off a block boundary is the end of the
		 * file, and bytes of the range are still missing. */
		if ((uint64_t)got % DIRECT_ALIGN)
			return CB_FAIL(err, CB_EFORMAT, path, NULL, "file ends at byte %llu",
				       (unsigned long long)(pos + (uint64_t)got));
		pos += (uint64_t)got;
	}
	return CB_OK;
}

/* A chunk with O_DIRECT: the aligned middle straight into place when the
 * destination shares the file offset's alignment, the rest bounced. */
static int direct_read(struct worker *w, int dfd, const char *path, const struct chunk *c,
		       struct cb_error *err)
{
	uint64_t off = c->offset, end = off + c->len;
	uint64_t mid_a = (off + DIRECT_ALIGN - 1) & ~(DIRECT_ALIGN - 1);
	uint64_t mid_b = end & ~(DIRECT_ALIGN - 1);
	bool in_place = (((uintptr_t)c->dest - off) & (DIRECT_ALIGN - 1)) == 0 && mid_b > mid_a;
	if (!in_place)
		return bounce_read(w, dfd, path, c->dest, off, c->len, err);
	int rc = mid_a > off ? bounce_read(w, dfd, path, c->dest, off, mid_a - off, err) : CB_OK;
	if (rc == CB_OK)
		rc = cb_pread_full(dfd, c->dest + (mid_a - off), (size_t)(mid_b - mid_a), mid_a,
				   path, err);
	if (rc == CB_OK && end > mid_b)
		rc = bounce_read(w, dfd, path, c->dest + (mid_b - off), mid_b, end - mid_b, err);
	return rc;
}

/* --------------------------------------------------------------- pread */

static int read_chunk(struct worker *w, const struct chunk *c, struct cb_error *err)
{
	struct st_read *s = w->s;
	const char *path = s->ckpt->files[c->file].path;
	int dfd = s->dfds[c->file];
	if (dfd >= 0 && w->bounce) {
		int rc = direct_read(w, dfd, path, c, err);
		if (rc != CB_EUNSUPPORTED)
			return rc;
		/* The filesystem took O_DIRECT at open but refuses the read. */
		atomic_fetch_add(&s->direct_fallbacks, 1);
	}
	int fd = s->fds[c->file];
	if (s->shares && w->own_fds) {
		if (w->own_fds[c->file] < 0) {
			w->own_fds[c->file] = open(path, O_RDONLY | O_CLOEXEC);
			if (w->own_fds[c->file] < 0)
				return CB_FAIL_ERRNO(err, errno, path, "open");
			(void)posix_fadvise(w->own_fds[c->file], 0, 0, POSIX_FADV_SEQUENTIAL);
		}
		fd = w->own_fds[c->file];
	}
	return cb_pread_full(fd, c->dest, c->len, c->offset, path, err);
}

static void record_failure(struct st_read *s, const struct cb_error *local)
{
	atomic_store(&s->failed, 1);
	pthread_mutex_lock(&s->err_lock);
	if (s->err && s->err->code == CB_OK)
		*s->err = *local;
	pthread_mutex_unlock(&s->err_lock);
}

static void *reader(void *arg)
{
	struct worker *w = arg;
	struct st_read *s = w->s;
	struct cb_error local = CB_ERROR_INIT;
	for (size_t mine = w->first;; mine++) {
		size_t k = s->shares ? mine : atomic_fetch_add(&s->next, 1);
		if (k >= (s->shares ? w->end : s->n_chunks) || atomic_load(&s->failed))
			break;
		if (read_chunk(w, &s->chunks[k], &local) != CB_OK) {
			record_failure(s, &local);
			break;
		}
	}
	return NULL;
}

/* Contiguous shares of about equal bytes, one per worker, in file order:
 * each thread then reads one run of the file front to back, as the read
 * ceiling does (calibrate.c), rather than every other chunk. */
static void split_shares(struct st_read *s, unsigned n)
{
	uint64_t total = 0, done = 0;
	for (size_t k = 0; k < s->n_chunks; k++)
		total += s->chunks[k].len;
	size_t k = 0;
	for (unsigned w = 0; w < n; w++) {
		/* The bytes up to the end of share w; the last takes the rest. */
		uint64_t goal = w + 1 == n ? total : total / n * (w + 1);
		s->workers[w].first = k;
		while (k < s->n_chunks && (done < goal || w + 1 == n))
			done += s->chunks[k++].len;
		s->workers[w].end = k;
	}
}

/* Runs the chunk list on the workers, the calling thread as worker 0. */
static int read_threads(struct st_read *s, struct cb_error *err)
{
	pthread_t tids[MAX_THREADS];
	unsigned started = 0;
	atomic_store(&s->next, 0);
	if (s->shares)
		split_shares(s, s->n_workers);
	/* Worker 0 reads through the load's own descriptors; the others open
	 * their own (struct worker). Without the memory they share them. */
	for (unsigned w = 1; s->shares && w < s->n_workers; w++) {
		s->workers[w].own_fds = malloc(s->n_fds * sizeof *s->workers[w].own_fds);
		for (size_t f = 0; s->workers[w].own_fds && f < s->n_fds; f++)
			s->workers[w].own_fds[f] = -1;
	}
	while (started + 1 < s->n_workers && started + 1 < s->n_chunks &&
	       pthread_create(&tids[started], NULL, reader, &s->workers[started + 1]) == 0)
		started++; /* fewer threads still load correctly */
	reader(&s->workers[0]);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	/* Shares whose thread did not start: read here. */
	for (unsigned w = started + 1; s->shares && w < s->n_workers; w++)
		reader(&s->workers[w]);
	if (atomic_load(&s->failed))
		return err && err->code != CB_OK ? (int)err->code : CB_EIO;
	return CB_OK;
}

/* ------------------------------------------------------------ io_uring */

#if CB_HAVE_URING
/* One read in flight: a chunk, or what is left of it after a short read. */
struct slot {
	size_t chunk;
	uint64_t pos; /* file offset this read starts at */
	bool bounced; /* into the worker's bounce buffer (O_DIRECT) */
};

static void submit_slot(struct st_read *s, struct io_uring *ring, struct slot *sl, struct worker *w)
{
	const struct chunk *c = &s->chunks[sl->chunk];
	uint64_t end = c->offset + c->len;
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring); /* never NULL: one per slot */
	if (sl->bounced) {
		uint64_t span = (end - sl->pos + DIRECT_ALIGN - 1) & ~(DIRECT_ALIGN - 1);
		if (span > w->bounce_len)
			span = w->bounce_len & ~(DIRECT_ALIGN - 1);
		io_uring_prep_read(sqe, s->dfds[c->file], w->bounce, (unsigned)span, sl->pos);
	} else {
		io_uring_prep_read(sqe, s->fds[c->file], c->dest + (sl->pos - c->offset),
				   (unsigned)(end - sl->pos), sl->pos);
	}
	io_uring_sqe_set_data(sqe, sl);
}

/* A completion: copies bounced bytes into place; true when the chunk is
 * done, false when the slot was resubmitted for the rest. */
static int complete_slot(struct st_read *s, struct slot *sl, struct worker *w, int res, bool *done,
			 struct cb_error *err)
{
	const struct chunk *c = &s->chunks[sl->chunk];
	const char *path = s->ckpt->files[c->file].path;
	uint64_t end = c->offset + c->len;
	if (res == -EINVAL && sl->bounced) {
		/* O_DIRECT refused at read time: this chunk buffered */
		atomic_fetch_add(&s->direct_fallbacks, 1);
		*done = true;
		return cb_pread_full(s->fds[c->file], c->dest, c->len, c->offset, path, err);
	}
	if (res < 0)
		return CB_FAIL_ERRNO(err, -res, path, "io_uring read");
	if (res == 0)
		return CB_FAIL(err, CB_EFORMAT, path, NULL, "file ends at byte %llu",
			       (unsigned long long)sl->pos);
	uint64_t got = (uint64_t)res;
	if (sl->bounced) {
		uint64_t from = sl->pos > c->offset ? sl->pos : c->offset;
		uint64_t to = sl->pos + got < end ? sl->pos + got : end;
		if (to > from)
			memcpy(c->dest + (from - c->offset), w->bounce + (from - sl->pos),
			       (size_t)(to - from));
		if (to < end && got % DIRECT_ALIGN)
			return CB_FAIL(err, CB_EFORMAT, path, NULL, "file ends at byte %llu",
				       (unsigned long long)(sl->pos + got));
		sl->pos = to < end ? sl->pos + got : end;
	} else {
		sl->pos += got;
	}
	*done = sl->pos >= end;
	return CB_OK;
}

static int read_uring(struct st_read *s, unsigned qd, struct cb_error *err)
{
	struct io_uring ring;
	int rc = io_uring_queue_init(qd, &ring, 0);
	if (rc < 0) {
		snprintf(s->uring_note, sizeof s->uring_note, "io_uring refused (%s)",
			 strerror(-rc));
		return read_threads(s, err);
	}
	s->uring_ran = true;
	struct slot slots[MAX_THREADS];
	unsigned free_slots[MAX_THREADS], n_free = 0, inflight = 0;
	for (unsigned i = qd; i-- > 0;)
		free_slots[n_free++] = i;
	size_t next = 0;
	rc = CB_OK;
	while (rc == CB_OK && (next < s->n_chunks || inflight > 0)) {
		while (n_free > 0 && next < s->n_chunks) {
			unsigned k = free_slots[--n_free];
			const struct chunk *c = &s->chunks[next];
			bool direct = s->dfds[c->file] >= 0 && s->workers[k].bounce;
			slots[k] = (struct slot){
				.chunk = next++,
				.pos = direct ? c->offset & ~(DIRECT_ALIGN - 1) : c->offset,
				.bounced = direct,
			};
			submit_slot(s, &ring, &slots[k], &s->workers[k]);
			inflight++;
		}
		int sub = io_uring_submit_and_wait(&ring, 1);
		if (sub < 0 && sub != -EINTR) {
			rc = CB_FAIL_ERRNO(err, -sub, NULL, "io_uring submit");
			break;
		}
		struct io_uring_cqe *cqe;
		while (rc == CB_OK && io_uring_peek_cqe(&ring, &cqe) == 0) {
			struct slot *sl = io_uring_cqe_get_data(cqe);
			unsigned k = (unsigned)(sl - slots);
			bool done = false;
			rc = complete_slot(s, sl, &s->workers[k], cqe->res, &done, err);
			io_uring_cqe_seen(&ring, cqe);
			inflight--;
			if (rc == CB_OK && !done) {
				submit_slot(s, &ring, sl, &s->workers[k]);
				inflight++;
			} else if (rc == CB_OK) {
				free_slots[n_free++] = k;
			}
		}
	}
	/* On failure, reads still in flight write into the model: wait them
	 * out before the caller may free it. */
	while (inflight > 0) {
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&ring, &cqe) != 0)
			break;
		io_uring_cqe_seen(&ring, cqe);
		inflight--;
	}
	io_uring_queue_exit(&ring);
	return rc;
}
#endif

/* ---------------------------------------------------------------- load */

static int st_read_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
			struct cb_error *err)
{
	struct st_read *s = priv;
	const struct st_read_opts *o = ctx->opts;
	s->err = err;
	cb_loader_phase(ctx, CB_PHASE_INIT);
	int rc = cb_host_model_alloc(&s->model, ctx->arch, model, true, o->thp,
				     cb_host_threads(o->threads), err);
	if (rc != CB_OK)
		return rc;
	cb_loader_phase(ctx, CB_PHASE_READ);
	rc = cb_ckpt_open(ctx->path, CB_FORMAT_SAFETENSORS, &s->ckpt, err);
	if (rc == CB_OK)
		rc = open_files(s, o->direct, err);
	if (rc == CB_OK)
		rc = plan_chunks(s, ctx->arch, o->chunk, err);
	s->shares = o->shares;
	if (rc == CB_OK && o->uring) {
#if CB_HAVE_URING
		rc = read_uring(s, s->n_workers, err);
#else
		snprintf(s->uring_note, sizeof s->uring_note, "built without liburing");
		s->n_workers = cb_host_threads(o->threads);
		rc = read_threads(s, err);
#endif
	} else if (rc == CB_OK) {
		rc = read_threads(s, err);
	}
	cb_loader_phase(ctx, CB_PHASE_NONE);
	s->err = NULL;
	return rc;
}

/* The mode line: how the reads really went. */
static void describe(const struct st_read *s, char *out, size_t size)
{
	char io[160], direct[96];
	if (s->uring_ran)
		snprintf(io, sizeof io, "io_uring qd %u", s->n_workers);
	else
		snprintf(io, sizeof io, "pread x%u threads (%s)%s%s%s", s->n_workers,
			 s->shares ? "contiguous shares" : "shared queue",
			 *s->uring_note ? " (" : "", s->uring_note,
			 *s->uring_note ? ": pread instead)" : "");
	bool asked = s->workers[0].bounce != NULL;
	int fallbacks = atomic_load(&s->direct_fallbacks);
	if (!asked)
		snprintf(direct, sizeof direct, "buffered");
	else if (s->direct_files == 0)
		snprintf(direct, sizeof direct, "buffered (O_DIRECT refused by the filesystem)");
	else if (fallbacks)
		snprintf(direct, sizeof direct, "O_DIRECT, %d chunks buffered (read refused)",
			 fallbacks);
	else
		snprintf(direct, sizeof direct, "O_DIRECT on %zu of %zu files", s->direct_files,
			 s->n_fds);
	snprintf(out, size, "%.120s, %.80s, fadvise sequential, %zu chunks", io, direct,
		 s->n_chunks);
}

static int st_read_control(void *priv, int op, void *arg, struct cb_error *err)
{
	(void)err;
	if (op != CB_LOADER_CTL_MODE)
		return CB_EUNSUPPORTED;
	describe(priv, arg, 256);
	return CB_OK;
}

static void st_read_close(void *priv)
{
	struct st_read *s = priv;
	cb_host_model_free(&s->model);
	for (size_t i = 0; i < s->n_fds; i++) {
		if (s->fds[i] >= 0)
			close(s->fds[i]);
		if (s->dfds[i] >= 0)
			close(s->dfds[i]);
	}
	free(s->fds);
	free(s->dfds);
	free(s->chunks);
	for (unsigned i = 0; i < MAX_THREADS; i++) {
		if (s->workers[i].bounce)
			munmap(s->workers[i].bounce, s->workers[i].bounce_len);
		for (size_t f = 0; s->workers[i].own_fds && f < s->n_fds; f++)
			if (s->workers[i].own_fds[f] >= 0)
				close(s->workers[i].own_fds[f]);
		free(s->workers[i].own_fds);
	}
	cb_ckpt_free(s->ckpt);
	if (s->lock_ready)
		pthread_mutex_destroy(&s->err_lock);
}

const struct cb_loader cb_loader_safetensors_read = {
	.abi = CB_LOADER_ABI,
	.name = "safetensors-read",
	.summary = "allocate the model, then read each tensor into place "
		   "(pread threads or io_uring, optional O_DIRECT)",
	.format = CB_FORMAT_SAFETENSORS,
	.device = CB_DEVICE_CPU,
	.caps = CB_CAP_HOST_MEM | CB_CAP_THREADS | CB_CAP_O_DIRECT,
	.opts = st_read_opts,
	.opts_size = sizeof(struct st_read_opts),
	.priv_size = sizeof(struct st_read),
	.open = st_read_open,
	.load = st_read_load,
	.close = st_read_close,
	.control = st_read_control,
};
