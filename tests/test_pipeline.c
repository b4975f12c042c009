/* The GPU loader's staged pipeline without a GPU (loaders/cuda/pipeline.h):
 * the planner's chunks, and runs through the host copy engine (copies
 * deferred until a slot is waited on, as a DMA would be) checked byte for
 * byte: chunks across tensor boundaries, ring reuse, short reads, EINTR,
 * failures in the middle, a file that ends early; the same with the map
 * source (chunks mapped and pinned instead of read), its pin rules checked
 * by a wrapping engine. Also: the cuFile and NVML
 * wrappers fail cleanly when their library is absent or not the right one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "cuda/dynlib.h"
#include "cuda/pipeline.h"

#define K4 4096u

static char dir[] = "/tmp/cb-test-pipeline-XXXXXX";

/* A file of `size` pseudo-random bytes; its contents in *bytes. */
static int make_file(const char *name, size_t size, unsigned seed, unsigned char **bytes)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	unsigned char *b = malloc(size ? size : 1);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < size; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		b[i] = (unsigned char)x;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, b, size) != (ssize_t)size)
		abort();
	*bytes = b;
	return fd;
}

/* The fake reader: at most `max` bytes a call, EINTR every `eintr`th call,
 * EIO from byte `fail_at` on (of file `fail_fd`). */
struct fake {
	size_t max;
	unsigned eintr;
	int fail_fd;
	uint64_t fail_at;
	atomic_uint calls;
};

static ssize_t fake_pread(void *ctx, int fd, void *buf, size_t len, uint64_t off)
{
	struct fake *f = ctx;
	unsigned n = atomic_fetch_add(&f->calls, 1);
	if (f->eintr && n % f->eintr == 1) {
		errno = EINTR;
		return -1;
	}
	if (fd == f->fail_fd && off + len > f->fail_at) {
		errno = EIO;
		return -1;
	}
	if (f->max && len > f->max)
		len = f->max;
	return pread(fd, buf, len, (off_t)off);
}

struct scenario {
	struct cb_pipe_range ranges[16];
	size_t n;
	unsigned char *want[16]; /* expected bytes per range */
};

/* Tensors of two files: back to back, with gaps, unaligned, empty, larger
 * than a chunk, listed out of file order. */
static void build(struct scenario *sc, unsigned char *f0, unsigned char *f1)
{
	static const struct {
		uint32_t file;
		uint64_t off, len;
	} t[] = {
		{0, 8 + 1000, 5000},      /* unaligned start, crosses a 4 KiB line */
		{0, 8, 1000},             /* right before it, listed after */
		{0, 6008, 70000},         /* larger than the small chunks */
		{0, 76008, 0},            /* empty */
		{0, 76008, 3},            /* tiny, back to back */
		{0, 76011 + 9000, 12345}, /* after a gap wider than the alignment */
		{1, 100, 40000},
		{1, 40100, 4096},
		{1, 44196 + 100, 200000}, /* small gap: joins the chunk */
	};
	sc->n = sizeof t / sizeof t[0];
	for (size_t i = 0; i < sc->n; i++) {
		sc->ranges[i] = (struct cb_pipe_range){t[i].file, t[i].off, t[i].len,
						       calloc(1, t[i].len ? t[i].len : 1)};
		sc->want[i] = (t[i].file ? f1 : f0) + t[i].off;
	}
}

static void reset(struct scenario *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		memset(sc->ranges[i].dst, 0, sc->ranges[i].len ? sc->ranges[i].len : 1);
}

static bool exact(const struct scenario *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		if (memcmp(sc->ranges[i].dst, sc->want[i], sc->ranges[i].len) != 0)
			return false;
	return true;
}

static void test_plan(const struct scenario *sc)
{
	struct cb_pipe_plan plan;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_pipe_plan_make(sc->ranges, sc->n, 3000, &plan, &err) == CB_EUSAGE);
	CHECK(cb_pipe_plan_make(sc->ranges, sc->n, 4 * K4, &plan, &err) == CB_OK);
	uint64_t pieces = 0, need = 0;
	for (size_t i = 0; i < plan.n_chunks; i++) {
		const struct cb_pipe_chunk *c = &plan.chunks[i];
		CHECK(c->offset % K4 == 0 && c->len % K4 == 0);
		CHECK(c->len <= 4 * K4 && c->need <= c->len && c->need > c->len - K4);
		for (size_t k = 0; k < c->n_pieces; k++) {
			const struct cb_pipe_piece *p = &plan.pieces[c->first_piece + k];
			CHECK(p->buf_off + p->len <= c->need);
			need += p->len;
		}
		pieces += c->n_pieces;
	}
	CHECK_EQ_U64(pieces, plan.n_pieces);
	uint64_t total = 0;
	for (size_t i = 0; i < sc->n; i++)
		total += sc->ranges[i].len;
	CHECK_EQ_U64(need, total);
	/* File 0's first three tensors are back to back: one chunk holds
	 * pieces of two tensors. */
	bool shared = false;
	for (size_t i = 0; i < plan.n_chunks; i++)
		shared |= plan.chunks[i].n_pieces > 1;
	CHECK(shared);
	/* The chunks walk each file forwards. */
	for (size_t i = 1; i < plan.n_chunks; i++)
		CHECK(plan.chunks[i].file > plan.chunks[i - 1].file ||
		      plan.chunks[i].offset >= plan.chunks[i - 1].offset + plan.chunks[i - 1].len);
	cb_pipe_plan_free(&plan);

	/* One big chunk: everything contiguous in a file is one read. */
	CHECK(cb_pipe_plan_make(sc->ranges, 3, 1024 * K4, &plan, &err) == CB_OK);
	CHECK_EQ_U64(plan.n_chunks, 1);
	CHECK_EQ_U64(plan.n_pieces, 3);
	CHECK_EQ_U64(plan.chunks[0].offset, 0);
	CHECK_EQ_U64(plan.chunks[0].need, 76008);
	cb_pipe_plan_free(&plan);
}

/* Plans the scenario for cfg's slot size, sets the pipe up on `eng`, runs
 * it once and tears it down; *pipe_out (if given) keeps its statistics. */
static int run_pipe(struct scenario *sc, const struct cb_pipe_file *files,
		    const struct cb_pipe_config *cfg, struct cb_copy_engine eng,
		    struct cb_pipe *pipe_out, struct cb_error *err)
{
	struct cb_pipe_plan plan;
	int rc = cb_pipe_plan_make(sc->ranges, sc->n, cfg->slot_bytes, &plan, err);
	if (rc != CB_OK)
		return rc;
	struct cb_pipe pipe;
	rc = cb_pipe_setup(&pipe, eng, cfg, err);
	if (rc == CB_OK)
		rc = cb_pipe_run(&pipe, &plan, files, 2, err);
	cb_pipe_teardown(&pipe);
	cb_pipe_plan_free(&plan);
	if (pipe_out)
		*pipe_out = pipe;
	return rc;
}

/* The read source through the host engine, reads faked when fk is given. */
static int run_once(struct scenario *sc, const struct cb_pipe_file *files, unsigned threads,
		    unsigned depth, uint64_t chunk, struct fake *fk, struct cb_pipe *pipe_out,
		    struct cb_error *err)
{
	struct cb_copy_engine eng;
	if (cb_host_engine_new((size_t)threads * depth, &eng, err) != CB_OK)
		abort();
	struct cb_pipe_config cfg = {.threads = threads,
				     .slots_per_thread = depth,
				     .slot_bytes = chunk,
				     .pread = fk ? fake_pread : NULL,
				     .pread_ctx = fk};
	int rc = run_pipe(sc, files, &cfg, eng, pipe_out, err);
	cb_host_engine_free(&eng);
	return rc;
}

/* The map source through the host engine, wrapped to check the rules a
 * CUDA engine relies on: each chunk is pinned once and unpinned once, only
 * after its slot's copies were waited on; copies read only from the slot's
 * pinned range. */
struct pin_check {
	struct cb_copy_engine host;
	void *addr[64];
	size_t len[64];
	unsigned queued[64];
	atomic_uint tries, pins, unpins, bad;
	unsigned fail_pin_at; /* refuse this pin (1-based); 0: none */
};

static int pc_slot_init(void *impl, size_t slot, size_t bytes, void **buf, struct cb_error *err)
{
	struct pin_check *pc = impl;
	if (bytes != 0) /* the map source asks for no buffers */
		atomic_fetch_add(&pc->bad, 1);
	return pc->host.ops->slot_init(pc->host.impl, slot, bytes, buf, err);
}

static int pc_copy(void *impl, size_t slot, void *dst, const void *src, size_t len,
		   struct cb_error *err)
{
	struct pin_check *pc = impl;
	const char *a = pc->addr[slot];
	if (!a || (const char *)src < a || (const char *)src + len > a + pc->len[slot])
		atomic_fetch_add(&pc->bad, 1);
	pc->queued[slot]++;
	return pc->host.ops->copy(pc->host.impl, slot, dst, src, len, err);
}

static int pc_wait(void *impl, size_t slot, struct cb_error *err)
{
	struct pin_check *pc = impl;
	pc->queued[slot] = 0;
	return pc->host.ops->wait(pc->host.impl, slot, err);
}

static void pc_slot_fini(void *impl, size_t slot, void *buf)
{
	struct pin_check *pc = impl;
	pc->host.ops->slot_fini(pc->host.impl, slot, buf);
}

static int pc_pin(void *impl, size_t slot, void *addr, size_t len, struct cb_error *err)
{
	struct pin_check *pc = impl;
	unsigned n = atomic_fetch_add(&pc->tries, 1) + 1;
	if (pc->fail_pin_at && n == pc->fail_pin_at)
		return CB_FAIL(err, CB_EENV, NULL, NULL, "pin refused");
	if (pc->addr[slot] || ((uintptr_t)addr & (K4 - 1)))
		atomic_fetch_add(&pc->bad, 1);
	pc->addr[slot] = addr;
	pc->len[slot] = len;
	atomic_fetch_add(&pc->pins, 1);
	return CB_OK;
}

static void pc_unpin(void *impl, size_t slot, void *addr)
{
	struct pin_check *pc = impl;
	if (pc->queued[slot] || pc->addr[slot] != addr)
		atomic_fetch_add(&pc->bad, 1);
	pc->addr[slot] = NULL;
	atomic_fetch_add(&pc->unpins, 1);
}

static const struct cb_copy_engine_ops pin_check_ops = {
	.name = "pin-check",
	.slot_init = pc_slot_init,
	.copy = pc_copy,
	.wait = pc_wait,
	.slot_fini = pc_slot_fini,
	.pin = pc_pin,
	.unpin = pc_unpin,
};

/* The map source through the pin-checking host engine. */
static int map_once(struct scenario *sc, const struct cb_pipe_file *files, unsigned threads,
		    unsigned depth, uint64_t chunk, struct pin_check *pc, struct cb_pipe *pipe_out,
		    struct cb_error *err)
{
	if (cb_host_engine_new((size_t)threads * depth, &pc->host, err) != CB_OK)
		abort();
	struct cb_copy_engine eng = {.ops = &pin_check_ops, .impl = pc};
	struct cb_pipe_config cfg = {
		.threads = threads, .slots_per_thread = depth, .slot_bytes = chunk, .map = true};
	int rc = run_pipe(sc, files, &cfg, eng, pipe_out, err);
	cb_host_engine_free(&pc->host);
	return rc;
}

/* Every combination of threads, slots and chunk sizes, byte-exact; with
 * `map`, the map source with its pin rules checked too. */
static void test_runs(struct scenario *sc, const struct cb_pipe_file *files, bool map)
{
	static const unsigned threads[] = {1, 2, 4, 7};
	static const unsigned depths[] = {1, 2, 3};
	static const uint64_t chunks[] = {K4, 4 * K4, 16 * K4, 1024 * K4};
	for (size_t a = 0; a < 4; a++)
		for (size_t b = 0; b < 3; b++)
			for (size_t c = 0; c < 4; c++) {
				struct cb_error err = CB_ERROR_INIT;
				struct pin_check pc = {0};
				struct cb_pipe p;
				reset(sc);
				int rc = map ? map_once(sc, files, threads[a], depths[b], chunks[c],
							&pc, &p, &err)
					     : run_once(sc, files, threads[a], depths[b], chunks[c],
							NULL, &p, &err);
				CHECK(rc == CB_OK);
				if (!exact(sc) || rc != CB_OK)
					fprintf(stderr,
						"  %s: threads %u depth %u chunk %llu: %s\n",
						map ? "map" : "read", threads[a], depths[b],
						(unsigned long long)chunks[c], err.msg);
				CHECK(exact(sc));
				if (map) {
					CHECK(atomic_load(&pc.bad) == 0);
					CHECK(atomic_load(&pc.pins) > 0);
					CHECK(atomic_load(&pc.pins) == atomic_load(&pc.unpins));
					CHECK(p.preads == 0);
				} else if (chunks[c] == K4 && threads[a] == 1) {
					/* Small chunks through few slots: slots are refilled. */
					CHECK(p.slot_reuses > 0);
				}
			}
}

static void test_short_reads(struct scenario *sc, const struct cb_pipe_file *files)
{
	struct fake fk = {.max = 777, .eintr = 5, .fail_fd = -1};
	struct cb_error err = CB_ERROR_INIT;
	struct cb_pipe p;
	reset(sc);
	CHECK(run_once(sc, files, 3, 2, 4 * K4, &fk, &p, &err) == CB_OK);
	CHECK(exact(sc));
	CHECK(p.preads > 100); /* they really were short */
}

static void test_failures(struct scenario *sc, const struct cb_pipe_file *files, int fd1)
{
	/* EIO in the middle of file 1: the run stops, every thread joins,
	 * the first error names the file and the byte. */
	for (unsigned threads = 1; threads <= 4; threads *= 2) {
		struct fake fk = {.fail_fd = fd1, .fail_at = 60000};
		struct cb_error err = CB_ERROR_INIT;
		reset(sc);
		CHECK(run_once(sc, files, threads, 2, 4 * K4, &fk, NULL, &err) == CB_EIO);
		CHECK(strstr(err.path, "f1") != NULL);
		CHECK(strncmp(err.where, "byte ", 5) == 0);
		CHECK(strstr(err.msg, "Input/output error") != NULL);
	}
	/* A file that ends before its tensors do. */
	CHECK(ftruncate(fd1, 50000) == 0);
	struct cb_error err = CB_ERROR_INIT;
	CHECK(run_once(sc, files, 2, 2, 16 * K4, NULL, NULL, &err) == CB_EFORMAT);
	CHECK(strstr(err.msg, "ends before") != NULL);
	/* A plan larger than the slots is refused, not overrun. */
	struct cb_pipe_plan plan;
	struct cb_copy_engine eng;
	struct cb_pipe pipe;
	struct cb_pipe_config cfg = {.threads = 1, .slots_per_thread = 1, .slot_bytes = K4};
	CHECK(cb_pipe_plan_make(sc->ranges, sc->n, 2 * K4, &plan, &err) == CB_OK);
	CHECK(cb_host_engine_new(1, &eng, &err) == CB_OK);
	CHECK(cb_pipe_setup(&pipe, eng, &cfg, &err) == CB_OK);
	cb_error_clear(&err);
	CHECK(cb_pipe_run(&pipe, &plan, files, 2, &err) == CB_EINTERNAL);
	cb_pipe_teardown(&pipe);
	cb_host_engine_free(&eng);
	cb_pipe_plan_free(&plan);
	/* Bad configurations. */
	cfg.slots_per_thread = 0;
	CHECK(cb_host_engine_new(1, &eng, &err) == CB_OK);
	CHECK(cb_pipe_setup(&pipe, eng, &cfg, &err) == CB_EUSAGE);
	cb_pipe_teardown(&pipe);
	cb_host_engine_free(&eng);
}

/* A refused pin stops the run; every pin made is undone. */
static void test_refused_pin(struct scenario *sc, const struct cb_pipe_file *files)
{
	struct cb_error err = CB_ERROR_INIT;
	struct pin_check pc = {.fail_pin_at = 3};
	CHECK(map_once(sc, files, 2, 2, K4, &pc, NULL, &err) == CB_EENV);
	CHECK(strstr(err.msg, "pin refused") != NULL);
	CHECK(atomic_load(&pc.pins) == atomic_load(&pc.unpins));
	CHECK(atomic_load(&pc.bad) == 0);
}

/* After test_failures cut f1 short: the map source refuses the chunk past
 * the end (no SIGBUS), naming the file. */
static void test_map_short_file(struct scenario *sc, const struct cb_pipe_file *files)
{
	struct cb_error err = CB_ERROR_INIT;
	struct pin_check pc = {0};
	CHECK(map_once(sc, files, 2, 2, 16 * K4, &pc, NULL, &err) == CB_EFORMAT);
	CHECK(strstr(err.msg, "ends before") != NULL);
	CHECK(strstr(err.path, "f1") != NULL);
	CHECK(atomic_load(&pc.pins) == atomic_load(&pc.unpins));
}

static void test_dynlib(void)
{
	struct cb_error err = CB_ERROR_INIT;
	struct cb_nvml nv;
	struct cb_cufile cf;
	setenv("CKPTBENCH_NVML_LIB", "/nonexistent/libnvidia-ml.so.1", 1);
	CHECK(cb_nvml_open(&nv, &err) == CB_EUNAVAILABLE);
	CHECK(strstr(err.msg, "cannot load /nonexistent/libnvidia-ml.so.1") != NULL);
	cb_nvml_close(&nv);
	/* A library that loads but is not NVML. */
	cb_error_clear(&err);
	setenv("CKPTBENCH_NVML_LIB", "libz.so.1", 1);
	CHECK(cb_nvml_open(&nv, &err) == CB_EUNAVAILABLE);
	CHECK(strstr(err.msg, "no nvmlInit_v2") != NULL);
	cb_nvml_close(&nv);
	CHECK(!cb_nvml_used(&nv, NULL, &(uint64_t){0}));
	cb_error_clear(&err);
	setenv("CKPTBENCH_CUFILE_LIB", "/nonexistent/libcufile.so.0", 1);
	CHECK(cb_cufile_open(&cf, &err) == CB_EUNAVAILABLE);
	CHECK(strstr(err.msg, "CKPTBENCH_CUFILE_LIB") != NULL);
	cb_cufile_close(&cf);
	cb_error_clear(&err);
	setenv("CKPTBENCH_CUFILE_LIB", "libz.so.1", 1);
	CHECK(cb_cufile_open(&cf, &err) == CB_EUNAVAILABLE);
	CHECK(strstr(err.msg, "no cuFileDriverOpen") != NULL);
	cb_cufile_close(&cf);
	setenv("CUFILE_FORCE_COMPAT_MODE", "true", 1);
	CHECK(strstr(cb_cufile_mode(), "compatibility") != NULL);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	unsigned char *b0, *b1;
	int fd0 = make_file("f0", 120000, 1, &b0);
	int fd1 = make_file("f1", 300000, 2, &b1);
	char p0[256], p1[256];
	snprintf(p0, sizeof p0, "%s/f0", dir);
	snprintf(p1, sizeof p1, "%s/f1", dir);
	struct cb_pipe_file files[2] = {{fd0, p0}, {fd1, p1}};
	struct scenario sc;
	build(&sc, b0, b1);
	test_plan(&sc);
	test_runs(&sc, files, false);
	test_runs(&sc, files, true);
	test_refused_pin(&sc, files);
	test_short_reads(&sc, files);
	test_failures(&sc, files, fd1);
	test_map_short_file(&sc, files);
	test_dynlib();
	for (size_t i = 0; i < sc.n; i++)
		free(sc.ranges[i].dst);
	close(fd0);
	close(fd1);
	unlink(p0);
	unlink(p1);
	rmdir(dir);
	free(b0);
	free(b1);
	return check_finish("test_pipeline");
}
