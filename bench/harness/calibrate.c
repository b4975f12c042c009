/* The machine's ceilings: storage reads cold, direct and warm, and memcpy
 * on one and on all CPUs. Every figure is the median of CAL_RUNS passes:
 * the cells it is held against are medians of their trials, and a median
 * set against a best would charge the machine's noise to the loader. The
 * best pass of each read is kept beside it (cold_read_best_gbps,
 * warm_read_best_gbps), so the stricter comparison can still be made.
 *
 * The read ceilings read the file into memory of its size, as loading
 * must (see struct read_dest), by one thread and by one per CPU, and take
 * the faster; the classic reads into one small reused buffer are kept as
 * cold/warm_read_reused_gbps. Every read is the read engine's
 * (engine/read_engine.h), the loaders' own: the same thread policy,
 * shares, descriptors and hints, so a ceiling and a load differ in what
 * the loader does, not in how the bytes are read. */
#include "calibrate.h"
#include "cuda/gpu_info.h"
#include "engine/read_engine.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "fileio.h"
#include "numparse.h"
#include "stats.h"
#include "sysinfo.h"

#define CAL_RUNS 5

/* Passes of the classic reused-buffer reads, which are only informative. */
#define CLASSIC_RUNS 3

/* Large preads, as a loader reading a tensor into place would issue. */
#define READ_CHUNK (8u << 20)

/* O_DIRECT needs buffers, offsets and lengths aligned to the device's
 * logical block; 4 KiB is safe on every common device. */
#define DIRECT_ALIGN 4096u

/* The scratch file is made a whole number of MiB, at least one. */
#define SIZE_QUANTUM (UINT64_C(1) << 20)

/* memcpy buffers: at least this, and at least MEMCPY_LLC_FACTOR times the
 * machine's last-level caches (some report hundreds of MiB), but at most an
 * eighth of the machine's memory per buffer. */
#define MEMCPY_BYTES (UINT64_C(512) << 20)
#define MEMCPY_LLC_FACTOR 2

/* Cold reads are trusted only if at most this much was cached before. */
#define COLD_MAX_RESIDENT 0.05

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void add_note(struct cb_calibration *cal, const char *fmt, ...) CB_PRINTF(2, 3);

static void add_note(struct cb_calibration *cal, const char *fmt, ...)
{
	size_t used = strlen(cal->note);
	if (used && used + 2 < sizeof cal->note) {
		strcpy(cal->note + used, "; ");
		used += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cal->note + used, sizeof cal->note - used, fmt, ap);
	va_end(ap);
}

/* Fills buf with bytes no filesystem can compress or deduplicate away. */
static void fill_pattern(unsigned char *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15u + 1;
	for (size_t i = 0; i + 8 <= len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf + i, &x, 8);
	}
}

/* Creates the scratch file of `size` bytes in dir; *path_out is malloc'd
 * and names a file the caller must unlink. */
static int write_scratch(const char *dir, uint64_t size, unsigned char *buf, char **path_out,
			 struct cb_error *err)
{
	*path_out = cb_path_join(dir, ".ckptbench-calibrate.XXXXXX");
	if (!*path_out)
		return CB_FAIL(err, CB_ENOMEM, dir, NULL, "no memory for the scratch file's name");
	int fd = mkostemp(*path_out, O_CLOEXEC);
	if (fd < 0) {
		int rc = CB_FAIL_ERRNO(err, errno, dir, "cannot create the calibration file");
		free(*path_out);
		*path_out = NULL;
		return rc;
	}
	int rc = CB_OK;
	for (uint64_t off = 0; off < size && rc == CB_OK; off += READ_CHUNK) {
		size_t len = (size_t)(size - off < READ_CHUNK ? size - off : READ_CHUNK);
		fill_pattern(buf, len, off / READ_CHUNK);
		rc = cb_pwrite_full(fd, buf, len, off, *path_out, err);
	}
	if (rc == CB_OK && fdatasync(fd) != 0)
		rc = CB_FAIL_ERRNO(err, errno, *path_out, "fdatasync failed");
	close(fd);
	return rc;
}

/* Where a pass reads to, and how. A loader must write every byte of the
 * model to memory once, so the ceilings read the file into memory of the
 * file's size (`whole`: pre-faulted, huge pages as the loaders' models
 * have), one contiguous share per thread. The classic fio-like pass reads
 * into one reused READ_CHUNK buffer instead (`chunk`): that buffer stays in
 * the CPU's caches, so it measures the page cache's copy-out rather than a
 * load, and is kept as the *_reused_gbps figures (and for O_DIRECT). */
struct read_dest {
	unsigned char *whole; /* file-sized; NULL when it could not be had */
	unsigned char *chunk; /* READ_CHUNK bytes, DIRECT_ALIGN-aligned */
};

/* One pass over the `size`-byte file through the read engine: by `threads`
 * threads in contiguous shares of READ_CHUNK preads into `whole`, or by one
 * into the reused chunk when `reuse`; *seconds_out is the time of the
 * reads (the files opened before). O_DIRECT refused, at open or at a read,
 * is CB_EUNAVAILABLE with no message recorded, so the caller can record
 * NAN and go on. */
static int read_pass(const char *path, bool direct, const struct read_dest *dest, bool reuse,
		     unsigned threads, uint64_t size, double *seconds_out, struct cb_error *err)
{
	struct cb_engine engine = {0};
	struct cb_engine_config cfg = {.threads = reuse || threads < 1 ? 1 : threads,
				       .chunk = READ_CHUNK,
				       .direct = direct};
	size_t n = reuse ? (size_t)((size + READ_CHUNK - 1) / READ_CHUNK) : 1;
	struct cb_read_item *items = calloc(n ? n : 1, sizeof *items);
	int rc = items ? cb_engine_setup(&engine, &cfg, err)
		       : CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory for the read plan");
	if (rc == CB_OK)
		rc = cb_engine_open(&engine, &path, 1, err);
	if (rc == CB_OK && direct && engine.report.direct_files == 0)
		rc = CB_EUNAVAILABLE;
	for (size_t k = 0; rc == CB_OK && k < n; k++) {
		uint64_t off = reuse ? k * READ_CHUNK : 0;
		items[k] = (struct cb_read_item){
			.offset = off,
			.len = reuse ? (size - off < READ_CHUNK ? size - off : READ_CHUNK) : size,
			.dest = reuse ? dest->chunk : dest->whole,
		};
	}
	double t0 = now_s();
	if (rc == CB_OK)
		rc = cb_engine_read(&engine, items, n, err);
	*seconds_out = now_s() - t0;
	if (rc == CB_OK && direct && engine.report.direct_refused)
		rc = CB_EUNAVAILABLE; /* refused mid-file: recorded as not measured */
	cb_engine_teardown(&engine);
	free(items);
	return rc;
}

static double gbps(uint64_t bytes, double seconds)
{
	return seconds > 0 ? (double)bytes / seconds / 1e9 : NAN;
}

/* The median of the finite figures of v[0..n) (a pass whose threads could
 * not start is NAN); NAN when there are none. *best_out, when given, gets
 * the largest. */
static double median_pass(const double *v, size_t n, double *best_out)
{
	double finite[CAL_RUNS];
	size_t k = 0;
	for (size_t i = 0; i < n && k < CAL_RUNS; i++)
		if (isfinite(v[i]))
			finite[k++] = v[i];
	struct cb_stats st;
	cb_stats_compute(finite, k, &st);
	if (best_out)
		*best_out = st.max;
	return st.median;
}

/* How one series of passes is made. */
struct read_method {
	bool cold, direct, reuse;
	unsigned threads;
	int runs;
};

/* `runs` passes of one method: evicted before each when cold (and the
 * eviction checked), the file cached by the caller when warm. The median
 * goes to *median_out and the fastest pass to *best_out (either NAN when
 * not measured, with the reason in the note). */
static int measure(const char *path, uint64_t size, const struct read_dest *dest,
		   const struct read_method *m, struct cb_calibration *cal, double *median_out,
		   double *best_out, struct cb_error *err)
{
	const char *const paths[1] = {path};
	double passes[CAL_RUNS];
	*median_out = *best_out = NAN;
	if (!m->reuse && !dest->whole)
		return CB_OK; /* no file-sized buffer: noted where it failed */
	for (int run = 0; run < m->runs && run < CAL_RUNS; run++) {
		double resident = 0, seconds;
		int rc = CB_OK;
		if (m->cold) {
			rc = cb_cache_evict(paths, 1, false, err);
			if (rc == CB_OK)
				rc = cb_cache_residency(paths, 1, &resident, err);
			if (rc != CB_OK)
				return rc;
			if (!m->direct && resident > COLD_MAX_RESIDENT) {
				add_note(cal,
					 "eviction left %.0f%% of the file cached; cold reads "
					 "not measured",
					 resident * 100);
				return CB_OK;
			}
		}
		rc = read_pass(path, m->direct, dest, m->reuse, m->threads, size, &seconds, err);
		if (rc == CB_EUNAVAILABLE) {
			add_note(cal, "the filesystem refuses O_DIRECT; cold_read_direct_gbps "
				      "not measured");
			return CB_OK;
		}
		if (rc != CB_OK)
			return rc;
		passes[run] = gbps(size, seconds);
	}
	*median_out =
		median_pass(passes, (size_t)(m->runs < CAL_RUNS ? m->runs : CAL_RUNS), best_out);
	return CB_OK;
}

/* A read ceiling: the file read into `whole` by one thread and by one per
 * CPU, the faster method's median (the machine can do at least that), the
 * fastest whole pass as *best; then the classic reused-buffer figure. */
static int read_ceiling(const char *path, uint64_t size, const struct read_dest *dest, bool cold,
			struct cb_calibration *cal, double *ceiling, double *best, double *reused,
			struct cb_error *err)
{
	unsigned all = cb_engine_threads(0);
	struct read_method one = {cold, false, false, 1, CAL_RUNS};
	struct read_method every = {cold, false, false, all, CAL_RUNS};
	struct read_method classic = {cold, false, true, 1, CLASSIC_RUNS};
	double m1, b1, mn = NAN, bn = NAN, ignored;
	int rc = measure(path, size, dest, &one, cal, &m1, &b1, err);
	if (rc == CB_OK && all > 1)
		rc = measure(path, size, dest, &every, cal, &mn, &bn, err);
	if (rc == CB_OK && reused) /* NULL: the size-matched ceilings skip it */
		rc = measure(path, size, dest, &classic, cal, reused, &ignored, err);
	*ceiling = fmax(m1, mn); /* fmax ignores a NAN */
	*best = fmax(b1, bn);
	return rc;
}

/* The start line the copy threads wait at: they are all created before the
 * clock starts, and released together. */
enum copy_state { COPY_WAIT, COPY_GO, COPY_ABANDON };

struct copy_start {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum copy_state state;
};

struct copy_job {
	unsigned char *dst;
	const unsigned char *src;
	size_t len;
	struct copy_start *start; /* shared, owned by timed_copy */
};

static void *copy_thread(void *arg)
{
	struct copy_job *job = arg;
	pthread_mutex_lock(&job->start->mu);
	while (job->start->state == COPY_WAIT)
		pthread_cond_wait(&job->start->cv, &job->start->mu);
	enum copy_state state = job->start->state;
	pthread_mutex_unlock(&job->start->mu);
	if (state == COPY_GO)
		memcpy(job->dst, job->src, job->len);
	return NULL;
}

static void release(struct copy_start *start, enum copy_state state)
{
	pthread_mutex_lock(&start->mu);
	start->state = state;
	pthread_cond_broadcast(&start->cv);
	pthread_mutex_unlock(&start->mu);
}

static double timed_copy_one(unsigned char *dst, const unsigned char *src, size_t len)
{
	double t0 = now_s();
	memcpy(dst, src, len);
	double t = now_s() - t0;
	/* A read of the result keeps the copy from being elided. */
	volatile unsigned char sink = dst[len - 1];
	(void)sink;
	return t;
}

/* One timed copy of len bytes split over nthreads threads (1: the calling
 * thread alone). Returns the seconds, or NAN when threads cannot start. */
static double timed_copy(unsigned char *dst, const unsigned char *src, size_t len,
			 unsigned nthreads)
{
	if (nthreads == 1)
		return timed_copy_one(dst, src, len);
	pthread_t *tids = calloc(nthreads, sizeof *tids);
	struct copy_job *jobs = calloc(nthreads, sizeof *jobs);
	struct copy_start start = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, COPY_WAIT};
	unsigned started = 0;
	/* Slices of whole cache lines; the last takes the remainder. */
	size_t slice = len / nthreads / 64 * 64;
	for (unsigned i = 0; tids && jobs && i < nthreads; i++) {
		size_t off = slice * i;
		jobs[i] = (struct copy_job){dst + off, src + off,
					    i + 1 == nthreads ? len - off : slice, &start};
		if (pthread_create(&tids[i], NULL, copy_thread, &jobs[i]) != 0)
			break;
		started++;
	}
	double t0 = now_s();
	release(&start, started == nthreads ? COPY_GO : COPY_ABANDON);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	double t = started == nthreads ? now_s() - t0 : NAN;
	free(tids);
	free(jobs);
	return t;
}

static uint64_t memcpy_bytes(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	uint64_t cap = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page / 8 : MEMCPY_BYTES;
	uint64_t want = MEMCPY_LLC_FACTOR * cb_sysinfo_llc_bytes();
	want = want > MEMCPY_BYTES ? want : MEMCPY_BYTES;
	want = want < cap ? want : cap;
	return want / SIZE_QUANTUM * SIZE_QUANTUM;
}

/* memcpy bandwidth in bytes copied per second (each byte is read once and
 * written once, so the memory traffic is twice the figure). */
static int memcpy_ceilings(struct cb_calibration *cal, struct cb_error *err)
{
	size_t len = (size_t)memcpy_bytes();
	cal->memcpy_bytes = len;
	unsigned char *src = malloc(len), *dst = malloc(len);
	if (!src || !dst) {
		free(src);
		free(dst);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory for two %zu-byte buffers",
			       len);
	}
	/* Touch every page first so page faults are not part of the copy. */
	memset(src, 0x5a, len);
	memset(dst, 0, len);
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned all = online > 0 ? (unsigned)online : 1;
	double one[CAL_RUNS], every[CAL_RUNS];
	for (int run = 0; run < CAL_RUNS; run++) {
		one[run] = gbps(len, timed_copy(dst, src, len, 1));
		every[run] = gbps(len, timed_copy(dst, src, len, all));
	}
	cal->memcpy_gbps = median_pass(one, CAL_RUNS, NULL);
	cal->memcpy_all_gbps = median_pass(every, CAL_RUNS, NULL);
	free(src);
	free(dst);
	return CB_OK;
}

static int size_from_env(uint64_t *size_out, struct cb_error *err)
{
	const char *text = getenv("CKPTBENCH_CALIBRATE_SIZE");
	*size_out = CB_CALIBRATE_DEFAULT_SIZE;
	if (!text || !*text)
		return CB_OK;
	if (!cb_parse_size(text, size_out) || *size_out == 0)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
			       "CKPTBENCH_CALIBRATE_SIZE=\"%s\" is not a size like 64M", text);
	return CB_OK;
}

/* The file-sized destination of the ceiling passes: mapped, huge pages
 * asked for and every page written first, so no pass pays a first touch
 * (the loaders' models are built before they read, too). NULL, with a
 * note, where the memory is not there. */
unsigned char *cb_read_buffer(size_t len)
{
	void *p = mmap(NULL, len ? len : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);
	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, len, MADV_HUGEPAGE); /* a hint */
	memset(p, 0, len);
	return p;
}

static unsigned char *whole_buffer(size_t len, struct cb_calibration *cal)
{
	unsigned char *p = cb_read_buffer(len);
	if (!p)
		add_note(cal, "no memory for a file-sized read buffer; read ceilings not measured");
	return p;
}

int cb_read_files(const char *const *paths, size_t n, unsigned threads, unsigned char *dest,
		  size_t dest_len, uint64_t *bytes_out, double *seconds_out, struct cb_error *err)
{
	*bytes_out = 0;
	*seconds_out = 0;
	struct cb_engine engine = {0};
	struct cb_engine_config cfg = {.threads = threads ? threads : 1, .chunk = READ_CHUNK};
	int rc = cb_engine_setup(&engine, &cfg, err);
	if (rc == CB_OK)
		rc = cb_engine_open(&engine, paths, n, err);
	for (size_t i = 0; rc == CB_OK && i < n; i++) {
		uint64_t end;
		if (__builtin_add_overflow(*bytes_out, engine.files[i].size, &end) ||
		    end > dest_len) {
			rc = CB_FAIL(err, CB_ELIMIT, paths[i], NULL,
				     "the files are larger than the %zu-byte read buffer",
				     dest_len);
			break;
		}
		struct cb_read_item whole = {.file = (uint32_t)i,
					     .len = engine.files[i].size,
					     .dest = dest + *bytes_out};
		double t0 = now_s();
		rc = cb_engine_read(&engine, &whole, 1, err);
		*seconds_out += now_s() - t0;
		*bytes_out = end;
	}
	cb_engine_teardown(&engine);
	return rc;
}

/* The read ceilings for a scratch file of `size` bytes. `full`: also the
 * informative figures (the classic reused-buffer reads, O_DIRECT). */
static int storage_ceilings(const char *data_dir, uint64_t size, bool full,
			    struct cb_calibration *cal, struct cb_error *err)
{
	struct read_dest dest = {NULL, NULL};
	void *chunk = NULL;
	if (size > SIZE_MAX || posix_memalign(&chunk, DIRECT_ALIGN, READ_CHUNK) != 0)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory for the read buffer");
	dest.chunk = chunk;
	char *path = NULL;
	int rc = cb_mkdir_p(data_dir, err);
	if (rc == CB_OK)
		rc = write_scratch(data_dir, size, dest.chunk, &path, err);
	if (rc == CB_OK)
		dest.whole = whole_buffer((size_t)size, cal);
	if (rc == CB_OK)
		rc = read_ceiling(path, size, &dest, true, cal, &cal->cold_read_gbps,
				  &cal->cold_read_best_gbps,
				  full ? &cal->cold_read_reused_gbps : NULL, err);
	if (rc == CB_OK && full) {
		struct read_method direct = {true, true, true, 1, CLASSIC_RUNS};
		double ignored;
		rc = measure(path, size, &dest, &direct, cal, &cal->cold_read_direct_gbps, &ignored,
			     err);
	}
	if (rc == CB_OK) {
		const char *const paths[1] = {path};
		double resident = 0;
		rc = cb_cache_warm(paths, 1, err);
		if (rc == CB_OK)
			rc = cb_cache_residency(paths, 1, &resident, err);
		if (rc == CB_OK && resident < 1.0 - COLD_MAX_RESIDENT)
			add_note(cal, "only %.0f%% of the file stayed cached for the warm read",
				 resident * 100);
	}
	if (rc == CB_OK)
		rc = read_ceiling(path, size, &dest, false, cal, &cal->warm_read_gbps,
				  &cal->warm_read_best_gbps,
				  full ? &cal->warm_read_reused_gbps : NULL, err);
	if (path) {
		/* Leave nothing cached or on disk behind. */
		const char *const paths[1] = {path};
		struct cb_error ignored = CB_ERROR_INIT;
		(void)cb_cache_evict(paths, 1, false, &ignored);
		unlink(path);
	}
	if (dest.whole)
		munmap(dest.whole, (size_t)size);
	free(path);
	free(chunk);
	return rc;
}

/* Every figure NAN (not measured), no file, no note. */
static struct cb_calibration unmeasured(void)
{
	return (struct cb_calibration){NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, 0, 0, ""};
}

int cb_calibrate_sized(const char *data_dir, uint64_t size, struct cb_calibration *out,
		       struct cb_error *err)
{
	*out = unmeasured();
	int rc = size ? CB_OK : size_from_env(&size, err);
	if (rc != CB_OK)
		return rc;
	if (size > UINT64_MAX - SIZE_QUANTUM)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "calibration size too large");
	out->file_bytes = (size + SIZE_QUANTUM - 1) / SIZE_QUANTUM * SIZE_QUANTUM;
	rc = storage_ceilings(data_dir, out->file_bytes, true, out, err);
	if (rc == CB_OK)
		rc = memcpy_ceilings(out, err);
	if (rc == CB_OK) {
		char note[128];
		out->h2d_gbps = cb_gpu_h2d_gbps(note, sizeof note);
		if (*note)
			add_note(out, "%s", note);
	}
	return rc;
}

static json_t *number_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

int cb_calibrate(const char *data_dir, struct cb_calibration *out, struct cb_error *err)
{
	return cb_calibrate_sized(data_dir, 0, out, err);
}

int cb_calibrate_reads(const char *data_dir, uint64_t size, struct cb_read_ceiling *out,
		       struct cb_error *err)
{
	struct cb_calibration cal = unmeasured();
	*out = (struct cb_read_ceiling){0, NAN, NAN, NAN, NAN, ""};
	if (!size || size > UINT64_MAX - SIZE_QUANTUM)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "calibration size out of range");
	out->file_bytes = (size + SIZE_QUANTUM - 1) / SIZE_QUANTUM * SIZE_QUANTUM;
	int rc = storage_ceilings(data_dir, out->file_bytes, false, &cal, err);
	out->cold_read_gbps = cal.cold_read_gbps;
	out->warm_read_gbps = cal.warm_read_gbps;
	out->cold_read_best_gbps = cal.cold_read_best_gbps;
	out->warm_read_best_gbps = cal.warm_read_best_gbps;
	snprintf(out->note, sizeof out->note, "%s", cal.note);
	return rc;
}

json_t *cb_read_ceiling_json(const struct cb_read_ceiling *c)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	int bad = 0;
	bad |= json_object_set_new(o, "file_bytes", json_integer((json_int_t)c->file_bytes));
	bad |= json_object_set_new(o, "cold_read_gbps", number_or_null(c->cold_read_gbps));
	bad |= json_object_set_new(o, "warm_read_gbps", number_or_null(c->warm_read_gbps));
	bad |= json_object_set_new(o, "cold_read_best_gbps",
				   number_or_null(c->cold_read_best_gbps));
	bad |= json_object_set_new(o, "warm_read_best_gbps",
				   number_or_null(c->warm_read_best_gbps));
	bad |= json_object_set_new(o, "note", c->note[0] ? json_string(c->note) : json_null());
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *cb_calibration_json(const struct cb_calibration *cal)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	int bad = 0;
	bad |= json_object_set_new(o, "cold_read_gbps", number_or_null(cal->cold_read_gbps));
	bad |= json_object_set_new(o, "cold_read_direct_gbps",
				   number_or_null(cal->cold_read_direct_gbps));
	bad |= json_object_set_new(o, "warm_read_gbps", number_or_null(cal->warm_read_gbps));
	bad |= json_object_set_new(o, "cold_read_best_gbps",
				   number_or_null(cal->cold_read_best_gbps));
	bad |= json_object_set_new(o, "warm_read_best_gbps",
				   number_or_null(cal->warm_read_best_gbps));
	bad |= json_object_set_new(o, "cold_read_reused_gbps",
				   number_or_null(cal->cold_read_reused_gbps));
	bad |= json_object_set_new(o, "warm_read_reused_gbps",
				   number_or_null(cal->warm_read_reused_gbps));
	bad |= json_object_set_new(o, "memcpy_gbps", number_or_null(cal->memcpy_gbps));
	bad |= json_object_set_new(o, "memcpy_all_gbps", number_or_null(cal->memcpy_all_gbps));
	bad |= json_object_set_new(o, "h2d_gbps", number_or_null(cal->h2d_gbps));
	bad |= json_object_set_new(o, "file_bytes", json_integer((json_int_t)cal->file_bytes));
	bad |= json_object_set_new(o, "memcpy_bytes", json_integer((json_int_t)cal->memcpy_bytes));
	bad |= json_object_set_new(o, "note", cal->note[0] ? json_string(cal->note) : json_null());
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}
