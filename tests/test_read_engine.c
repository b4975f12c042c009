/* The read engine (loaders/engine/read_engine.h), byte for byte: plans of
 * items over two files (back to back, empty, unaligned, larger than a chunk,
 * up to the end of a file) read by every combination of threads, chunk
 * sizes, shares or queue, O_DIRECT and io_uring; consumer runs; the errors
 * (a bad file index, a file that ends early, a missing file); O_DIRECT on
 * tmpfs (refused before Linux 6.6, taken after); and, with the fault
 * injection compiled in (fault.h, CB_FAULT_INJECTION), every read of a
 * plan failing (EIO: an error naming the file, the byte and what failed),
 * returning short or interrupted (EINTR: retried, the bytes exact), refused
 * (EINVAL: O_DIRECT falls back to buffered), and every allocation failing
 * (CB_ENOMEM, nothing leaked: run it under ASan).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "engine/fault.h"
#include "engine/read_engine.h"

#define K4 4096u

static char dir[] = "/tmp/cb-test-engine-XXXXXX";

struct files {
	char path[2][300];
	const char *paths[2];
	unsigned char *bytes[2];
	size_t size[2];
};

static void make_file(struct files *f, int i, const char *in, size_t size, unsigned seed)
{
	snprintf(f->path[i], sizeof f->path[i], "%s/f%d", in, i);
	f->paths[i] = f->path[i];
	f->size[i] = size;
	f->bytes[i] = malloc(size);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t k = 0; k < size; k++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		f->bytes[i][k] = (unsigned char)x;
	}
	int fd = open(f->path[i], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, f->bytes[i], size) != (ssize_t)size)
		abort();
	close(fd);
}

static void drop_files(struct files *f)
{
	for (int i = 0; i < 2; i++) {
		unlink(f->path[i]);
		free(f->bytes[i]);
	}
}

/* The plan: tensors of both files, listed out of file order. Destinations
 * alternate between sharing the file offset's 4 KiB alignment (O_DIRECT
 * reads straight into place) and not (bounced). */
#define N_ITEMS 10
static const struct {
	uint32_t file;
	uint64_t offset, len;
} plan_spec[N_ITEMS] = {
	{1, 8192, 8192},    {0, 0, 1000},          {0, 1000, 5000},     {0, 7777, 0},
	{0, 10000, 200000}, {1, 3, 4096},          {1, 100000, 600000}, {0, 250000, 50001},
	{1, 1048576, 77},   {1, 1048653 - 10, 10},
};

struct plan {
	struct cb_read_item items[N_ITEMS];
	void *mem[N_ITEMS];
};

static void plan_make(struct plan *p)
{
	for (int i = 0; i < N_ITEMS; i++) {
		uint64_t len = plan_spec[i].len, off = plan_spec[i].offset;
		p->mem[i] = aligned_alloc(K4, (size_t)((len + 3 * K4 - 1) / K4 * K4));
		char *dest = (char *)p->mem[i] + (i % 2 ? off % K4 : (off + 1) % K4);
		p->items[i] = (struct cb_read_item){
			.file = plan_spec[i].file, .offset = off, .len = len, .dest = dest};
	}
}

static void plan_reset(struct plan *p)
{
	for (int i = 0; i < N_ITEMS; i++)
		memset(p->items[i].dest, 0, (size_t)p->items[i].len);
}

static bool plan_exact(const struct plan *p, const struct files *f)
{
	for (int i = 0; i < N_ITEMS; i++) {
		const struct cb_read_item *it = &p->items[i];
		if (memcmp(it->dest, f->bytes[it->file] + it->offset, (size_t)it->len) != 0)
			return false;
	}
	return true;
}

static void plan_free(struct plan *p)
{
	for (int i = 0; i < N_ITEMS; i++)
		free(p->mem[i]);
}

static size_t chunks_of(uint64_t chunk)
{
	size_t n = 0;
	for (int i = 0; i < N_ITEMS; i++)
		if (plan_spec[i].len)
			n += chunk ? (size_t)((plan_spec[i].len - 1) / chunk + 1) : 1;
	return n;
}

/* Set-up, open, read, teardown; the report and mode kept. */
static int read_once(const struct cb_engine_config *cfg, const struct files *f, struct plan *p,
		     struct cb_engine_report *report, char *mode, struct cb_error *err)
{
	struct cb_engine e = {0};
	plan_reset(p);
	int rc = cb_engine_setup(&e, cfg, err);
	if (rc == CB_OK)
		rc = cb_engine_open(&e, f->paths, 2, err);
	if (rc == CB_OK)
		rc = cb_engine_read(&e, p->items, N_ITEMS, err);
	if (report)
		*report = e.report;
	if (mode)
		cb_engine_describe(&e, mode, 256);
	cb_engine_teardown(&e);
	return rc;
}

static void test_threads(void)
{
	unsigned all = cb_engine_threads(0);
	CHECK(all >= 1 && all <= CB_DEFAULT_THREADS_MAX);
	CHECK_EQ_U64(cb_engine_threads(5), 5);
	CHECK_EQ_U64(cb_engine_threads(100000), CB_ENGINE_MAX_THREADS);
}

/* Every combination, byte-exact, the plan's chunks counted. */
static void test_reads(const struct files *f, struct plan *p)
{
	static const unsigned threads[] = {1, 2, 3, 7};
	static const uint64_t chunks[] = {0, K4, 5000, 65536};
	for (int combo = 0; combo < 4 * 4 * 2 * 2 * 2; combo++) {
		struct cb_engine_config cfg = {
			.threads = threads[combo % 4],
			.chunk = chunks[combo / 4 % 4],
			.queue = combo / 16 % 2,
			.direct = combo / 32 % 2,
			.uring = combo / 64 % 2,
			.qd = 3,
		};
		struct cb_error err = CB_ERROR_INIT;
		struct cb_engine_report r;
		char mode[256];
		int rc = read_once(&cfg, f, p, &r, mode, &err);
		CHECK(rc == CB_OK);
		bool ok = rc == CB_OK && plan_exact(p, f);
		CHECK(ok);
		if (!ok)
			fprintf(stderr, "  threads %u chunk %llu queue %d direct %d uring %d: %s\n",
				cfg.threads, (unsigned long long)cfg.chunk, cfg.queue, cfg.direct,
				cfg.uring, err.msg);
		CHECK_EQ_U64(r.chunks, chunks_of(cfg.chunk));
		CHECK(r.reads >= r.chunks);
		CHECK_CONTAINS(mode, cfg.uring && r.uring ? "io_uring qd 3"
				     : cfg.queue          ? "shared queue"
							  : "contiguous shares");
		CHECK_CONTAINS(mode, cfg.direct ? "O_DIRECT" : "buffered");
	}
}

/* A consumer run: buffers of the consumer's, each chunk checked, every
 * worker started and finished once; a consumer's failure stops the run. */
struct consumer {
	const struct files *f;
	unsigned char *buf[CB_ENGINE_MAX_THREADS];
	atomic_uint started, finished, consumed, bad;
	unsigned fail_at; /* consume fails on this call (1-based); 0: never */
};

static int c_start(void *ctx, unsigned worker, struct cb_error *err)
{
	struct consumer *c = ctx;
	(void)worker, (void)err;
	atomic_fetch_add(&c->started, 1);
	return CB_OK;
}

static int c_buffer(void *ctx, unsigned worker, const struct cb_read_chunk *ch, void **buf,
		    struct cb_error *err)
{
	struct consumer *c = ctx;
	(void)ch, (void)err;
	*buf = c->buf[worker];
	return CB_OK;
}

static int c_consume(void *ctx, unsigned worker, const struct cb_read_chunk *ch, void *buf,
		     struct cb_error *err)
{
	struct consumer *c = ctx;
	(void)worker;
	unsigned n = atomic_fetch_add(&c->consumed, 1) + 1;
	if (c->fail_at && n == c->fail_at)
		return CB_FAIL(err, CB_EENV, NULL, NULL, "consumer refused");
	if (ch->dest || memcmp(buf, c->f->bytes[ch->file] + ch->offset, (size_t)ch->need) != 0)
		atomic_fetch_add(&c->bad, 1);
	return CB_OK;
}

static int c_finish(void *ctx, unsigned worker, int rc, struct cb_error *err)
{
	struct consumer *c = ctx;
	(void)worker, (void)rc, (void)err;
	atomic_fetch_add(&c->finished, 1);
	return CB_OK;
}

static void test_consumer(const struct files *f)
{
	/* Items of whole 4 KiB blocks; the last runs past the end of file 1,
	 * only its `need` bytes there. */
	struct cb_read_item items[] = {
		{0, 0, 3 * K4, 0, NULL},
		{1, 2 * K4, 40 * K4, 0, NULL},
		{1, f->size[1] / K4 * K4, K4, f->size[1] % K4, NULL},
	};
	for (unsigned threads = 1; threads <= 4; threads++) {
		for (unsigned fail = 0; fail <= 2; fail += 2) {
			struct consumer c = {.f = f, .fail_at = fail};
			for (unsigned w = 0; w < threads; w++)
				c.buf[w] = malloc(8 * K4);
			struct cb_engine_consumer k = {.ctx = &c,
						       .start = c_start,
						       .buffer = c_buffer,
						       .consume = c_consume,
						       .finish = c_finish};
			struct cb_engine_config cfg = {
				.threads = threads, .chunk = 8 * K4, .queue = true};
			struct cb_engine e = {0};
			struct cb_error err = CB_ERROR_INIT;
			int rc = cb_engine_setup(&e, &cfg, &err);
			if (rc == CB_OK)
				rc = cb_engine_open(&e, f->paths, 2, &err);
			if (rc == CB_OK)
				rc = cb_engine_run(&e, items, 3, &k, &err);
			if (fail) {
				CHECK(rc == CB_EENV);
				CHECK_CONTAINS(err.msg, "consumer refused");
			} else {
				CHECK(rc == CB_OK);
				CHECK_EQ_U64(atomic_load(&c.consumed), 1 + 5 + 1);
			}
			CHECK_EQ_U64(atomic_load(&c.bad), 0);
			CHECK(atomic_load(&c.started) >= 1);
			CHECK_EQ_U64(atomic_load(&c.started), atomic_load(&c.finished));
			cb_engine_teardown(&e);
			for (unsigned w = 0; w < threads; w++)
				free(c.buf[w]);
		}
	}
}

static void test_errors(const struct files *f, struct plan *p)
{
	struct cb_engine_config cfg = {.threads = 2, .chunk = 65536};
	struct cb_engine e = {0};
	struct cb_error err = CB_ERROR_INIT;
	/* not set up */
	CHECK(cb_engine_read(&e, p->items, N_ITEMS, &err) == CB_EINTERNAL);
	cb_engine_teardown(&e);
	/* a file of no set */
	cb_error_clear(&err);
	CHECK(cb_engine_setup(&e, &cfg, &err) == CB_OK);
	CHECK(cb_engine_open(&e, f->paths, 1, &err) == CB_OK);
	CHECK(cb_engine_read(&e, p->items, N_ITEMS, &err) == CB_EINTERNAL);
	/* a file that ends before the item does: the file and the byte named */
	cb_error_clear(&err);
	struct cb_read_item past = {0, f->size[0] - 100, 1000, 0, p->items[6].dest};
	CHECK(cb_engine_read(&e, &past, 1, &err) == CB_EFORMAT);
	CHECK_CONTAINS(err.msg, "ends before");
	CHECK_CONTAINS(err.path, "f0");
	CHECK_CONTAINS(err.where, "byte ");
	/* a missing file */
	cb_error_clear(&err);
	const char *missing[1] = {"/nonexistent/cb-engine"};
	CHECK(cb_engine_open(&e, missing, 1, &err) == CB_ENOTFOUND);
	CHECK_CONTAINS(err.path, "/nonexistent/cb-engine");
	cb_engine_teardown(&e);
	cb_engine_teardown(&e); /* twice, and on a zeroed struct: harmless */
}

/* O_DIRECT on tmpfs: taken (Linux 6.6+) or refused, the bytes exact and
 * the mode saying which. */
static void test_tmpfs(void)
{
	char shm[] = "/dev/shm/cb-test-engine-XXXXXX";
	if (!mkdtemp(shm)) {
		fprintf(stderr, "no /dev/shm: O_DIRECT on tmpfs not tested\n");
		return;
	}
	struct files f;
	make_file(&f, 0, shm, 300001, 3);
	make_file(&f, 1, shm, 1048653, 4);
	struct plan p;
	plan_make(&p);
	for (int uring = 0; uring < 2; uring++) {
		struct cb_engine_config cfg = {
			.threads = 2, .chunk = 65536, .direct = true, .uring = uring};
		struct cb_error err = CB_ERROR_INIT;
		char mode[256];
		CHECK(read_once(&cfg, &f, &p, NULL, mode, &err) == CB_OK);
		CHECK(plan_exact(&p, &f));
		CHECK(strstr(mode, "O_DIRECT refused") || strstr(mode, "O_DIRECT on"));
	}
	plan_free(&p);
	drop_files(&f);
	rmdir(shm);
}

#ifdef CB_FAULT_INJECTION
/* Every read of each method failing, short, interrupted, refused. */
static void test_read_faults(const struct files *f, struct plan *p)
{
	static const struct cb_engine_config methods[] = {
		{.threads = 1, .chunk = 65536},
		{.threads = 3, .chunk = 65536, .queue = true},
		{.threads = 2, .chunk = 65536, .direct = true},
		{.threads = 2, .chunk = 65536, .uring = true, .qd = 4},
		{.threads = 2, .chunk = 65536, .uring = true, .qd = 4, .direct = true},
	};
	static const char *const kinds[] = {"eio", "short", "eintr", "einval"};
	for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
		const struct cb_engine_config *cfg = &methods[m];
		struct cb_error err = CB_ERROR_INIT;
		struct cb_engine_report r;
		CHECK(cb_fault_arm(""));
		CHECK(read_once(cfg, f, p, &r, NULL, &err) == CB_OK);
		uint64_t reads = cb_fault_reads();
		CHECK(reads >= r.chunks && reads > 0);
		bool direct = cfg->direct && r.direct_files > 0;
		for (uint64_t n = 1; n <= reads; n++) {
			for (int k = 0; k < 4; k++) {
				char spec[64];
				snprintf(spec, sizeof spec, "read:%llu:%s", (unsigned long long)n,
					 kinds[k]);
				CHECK(cb_fault_arm(spec));
				cb_error_clear(&err);
				int rc = read_once(cfg, f, p, &r, NULL, &err);
				CHECK_EQ_U64(cb_fault_fired(), 1);
				bool fails = k == 0 || (k == 3 && !direct);
				if (fails) {
					CHECK(rc == CB_EIO);
					CHECK(strstr(err.path, "/f0") || strstr(err.path, "/f1"));
					CHECK_CONTAINS(err.msg, k == 0 ? "Input/output error"
								       : "Invalid argument");
					CHECK_CONTAINS(err.msg, cfg->uring ? "read" : "pread");
					CHECK_CONTAINS(err.where, "byte ");
				} else {
					CHECK(rc == CB_OK);
					CHECK(plan_exact(p, f));
				}
				if (k == 3 && direct)
					CHECK_EQ_U64(r.direct_refused, 1);
				if (rc != CB_OK && !fails)
					fprintf(stderr, "  method %zu %s: %s\n", m, spec, err.msg);
			}
		}
	}
	CHECK(!cb_fault_arm("read:0:eio"));
	CHECK(!cb_fault_arm("read:3:sometimes"));
	CHECK(!cb_fault_arm("alloc:x"));
	CHECK(cb_fault_arm(NULL));
}

/* Every allocation of a whole read failing: CB_ENOMEM, nothing leaked. */
static void test_alloc_faults(const struct files *f, struct plan *p)
{
	static const struct cb_engine_config methods[] = {
		{.threads = 3, .chunk = 65536},
		{.threads = 2, .chunk = 65536, .direct = true, .uring = true, .qd = 2},
	};
	for (size_t m = 0; m < 2; m++) {
		struct cb_error err = CB_ERROR_INIT;
		CHECK(cb_fault_arm(""));
		CHECK(read_once(&methods[m], f, p, NULL, NULL, &err) == CB_OK);
		uint64_t allocs = cb_fault_allocs();
		CHECK(allocs >= 3); /* workers, files, plan at least */
		for (uint64_t n = 1; n <= allocs; n++) {
			char spec[32];
			snprintf(spec, sizeof spec, "alloc:%llu", (unsigned long long)n);
			CHECK(cb_fault_arm(spec));
			cb_error_clear(&err);
			CHECK(read_once(&methods[m], f, p, NULL, NULL, &err) == CB_ENOMEM);
			CHECK_CONTAINS(err.msg, "no memory");
			CHECK_EQ_U64(cb_fault_fired(), 1);
		}
	}
	CHECK(cb_fault_arm(NULL));
}
#endif

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	struct files f;
	make_file(&f, 0, dir, 300001, 1);
	make_file(&f, 1, dir, 1048653, 2);
	struct plan p;
	plan_make(&p);
	test_threads();
	test_reads(&f, &p);
	test_consumer(&f);
	test_errors(&f, &p);
	test_tmpfs();
#ifdef CB_FAULT_INJECTION
	test_read_faults(&f, &p);
	test_alloc_faults(&f, &p);
#else
	fprintf(stderr, "built without CB_FAULT_INJECTION: the faults are not tested\n");
#endif
	plan_free(&p);
	drop_files(&f);
	rmdir(dir);
	return check_finish("test_read_engine");
}
