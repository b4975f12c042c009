/* bench/cache: after eviction a 64 MiB file on a real disk is (almost) not
 * in the page cache, after warming it is all there, and both residency
 * methods (cachestat and mmap + mincore) agree. Exit 77 (skip) where the
 * filesystem keeps files in memory by nature (tmpfs, ramfs). */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <math.h>
#include <stdbool.h>
#include <sys/vfs.h>

#include "cache.h"
#include "check.h"
#include "fileio.h"
#include "testfs.h"

#define FILE_BYTES (64u << 20)
#define CHUNK (1u << 20)

static bool write_file(const char *path, size_t bytes)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return false;
	unsigned char *buf = malloc(CHUNK);
	bool ok = buf != NULL;
	for (size_t off = 0; ok && off < bytes; off += CHUNK) {
		for (size_t i = 0; i < CHUNK; i++)
			buf[i] = (unsigned char)(i * 31 + off / CHUNK);
		ok = pwrite(fd, buf, CHUNK, (off_t)off) == (ssize_t)CHUNK;
	}
	free(buf);
	/* The file is left dirty on purpose: eviction must cope with that. */
	return close(fd) == 0 && ok;
}

static double residency(const char *const *paths, size_t n)
{
	struct cb_error err = CB_ERROR_INIT;
	double f = -1;
	CHECK(cb_cache_residency(paths, n, &f, &err) == CB_OK);
	CHECK(f >= 0 && f <= 1);
	return f;
}

static void read_first_half(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	/* Random access: no readahead beyond what is asked. */
	posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
	unsigned char *buf = malloc(CHUNK);
	for (size_t off = 0; buf && off < FILE_BYTES / 2; off += CHUNK)
		CHECK(pread(fd, buf, CHUNK, (off_t)off) == (ssize_t)CHUNK);
	free(buf);
	close(fd);
}

/* The whole cycle, with whichever residency method the environment picks. */
static void cycle(const char *const *paths, const char *method)
{
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_cache_evict(paths, 2, false, &err) == CB_OK);
	double cold = residency(paths, 2);
	fprintf(stderr, "%s: after evict %.4f\n", method, cold);
	CHECK(cold < 0.05);

	CHECK(cb_cache_warm(paths, 2, &err) == CB_OK);
	double warm = residency(paths, 2);
	fprintf(stderr, "%s: after warm %.4f\n", method, warm);
	CHECK(warm > 0.99);

	/* Half of one of the two files: a quarter of all their bytes. */
	CHECK(cb_cache_evict(paths, 2, false, &err) == CB_OK);
	read_first_half(paths[0]);
	double quarter = residency(paths, 2);
	fprintf(stderr, "%s: after reading half of one file %.4f\n", method, quarter);
	CHECK(quarter > 0.24 && quarter < 0.30);
	CHECK(cb_cache_evict(paths, 2, false, &err) == CB_OK);
	CHECK(err.code == CB_OK);
}

static void test_errors(const char *dir)
{
	char *missing = cb_path_join(dir, "missing");
	char *empty = cb_path_join(dir, "empty");
	const char *const bad[1] = {missing};
	const char *const none[1] = {empty};
	struct cb_error err = CB_ERROR_INIT;
	double f = -1;
	CHECK(cb_cache_residency(bad, 1, &f, &err) == CB_ENOTFOUND);
	CHECK_CONTAINS(err.path, "missing");
	cb_error_clear(&err);
	CHECK(cb_cache_evict(bad, 1, false, &err) == CB_ENOTFOUND);
	cb_error_clear(&err);
	CHECK(cb_cache_warm(bad, 1, &err) == CB_ENOTFOUND);
	cb_error_clear(&err);
	CHECK(write_file(empty, 0));
	CHECK(cb_cache_residency(none, 1, &f, &err) == CB_OK);
	CHECK(f == 1.0); /* nothing to be missing */
	/* drop_caches stays false: as root it would empty the whole machine's
	 * page cache under every other process's feet. */
	CHECK(cb_cache_evict(none, 1, false, &err) == CB_OK);
	CHECK(cb_cache_warm(none, 1, &err) == CB_OK);
	free(missing);
	free(empty);
}

/* The bytes of a state's folios by size, as shares of all of them. */
static void folio_shares(const struct cb_cache_state *s, double out[CB_CACHE_FOLIO_ORDERS])
{
	double total = 0;
	for (unsigned k = 0; k < CB_CACHE_FOLIO_ORDERS; k++)
		total += out[k] = (double)s->folios[k] * (4096u << k);
	for (unsigned k = 0; k < CB_CACHE_FOLIO_ORDERS; k++)
		out[k] = total > 0 ? out[k] / total : 0;
}

/* The warm state is one state (cache.h, cb_cache_warm): a copy written
 * afresh by cp and read (held in the folios the writes left) and the
 * original after a cold cycle are both evicted and read the harness's way
 * once warmed; the state recorded says every byte is resident, and where
 * the kernel tells folio sizes (root: pagemap's page frames, kpageflags)
 * the folios counted cover the file; without it the state says why they
 * are unknown. */
static void test_warm_state(const char *dir, const char *a)
{
	char *copy = cb_path_join(dir, "copy.bin");
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "cp '%s' '%s' && cat '%s' >/dev/null", a, copy, copy);
	CHECK(system(cmd) == 0);
	const char *const orig[1] = {a}, *const fresh[1] = {copy};
	struct cb_error err = CB_ERROR_INIT;
	struct cb_cache_state before, s_orig, s_copy;
	CHECK(cb_cache_state(fresh, 1, &before, &err) == CB_OK);
	CHECK(cb_cache_evict(orig, 1, false, &err) == CB_OK); /* a cold cycle */
	read_first_half(a);
	CHECK(cb_cache_warm(orig, 1, &err) == CB_OK);
	CHECK(cb_cache_last_state() != NULL);
	s_orig = *cb_cache_last_state();
	CHECK(cb_cache_warm(fresh, 1, &err) == CB_OK);
	s_copy = *cb_cache_last_state();
	CHECK(s_orig.resident > 0.99 && s_copy.resident > 0.99);
	CHECK_STR_EQ(s_orig.method, s_copy.method);
	if (!s_orig.folios_known) {
		fprintf(stderr, "folio sizes unknown here: %s\n", s_orig.note);
		CHECK(*s_orig.note);
	} else {
		double x[CB_CACHE_FOLIO_ORDERS], y[CB_CACHE_FOLIO_ORDERS];
		double z[CB_CACHE_FOLIO_ORDERS], dist = 0, moved = 0;
		folio_shares(&s_orig, x);
		folio_shares(&s_copy, y);
		folio_shares(&before, z);
		for (unsigned k = 0; k < CB_CACHE_FOLIO_ORDERS; k++) {
			fprintf(stderr,
				"folios of %5u KiB: copy as cp left it %.3f, warmed %.3f, "
				"original warmed %.3f\n",
				4u << k, z[k], y[k], x[k]);
			dist += fabs(x[k] - y[k]);
			moved += fabs(z[k] - y[k]);
		}
		/* Informative: which folio sizes readahead gets is not fully
		 * the harness's to decide (a large folio's allocation may fail
		 * on a busy machine and fall back to small ones), so the two
		 * states are printed, and their outcome, the faults a mapping
		 * takes, is what tests/test_warm_state.sh asserts. */
		fprintf(stderr, "warm states %.3f apart (the copy moved %.3f)\n", dist, moved);
		CHECK_STR_EQ(s_orig.method, "pagemap+kpageflags");
		/* The folios counted hold every byte of the file. */
		double bytes = 0;
		for (unsigned k = 0; k < CB_CACHE_FOLIO_ORDERS; k++)
			bytes += (double)s_copy.folios[k] * (4096u << k);
		CHECK(bytes >= FILE_BYTES && bytes < FILE_BYTES * 1.01);
	}
	CHECK(cb_cache_evict(fresh, 1, false, &err) == CB_OK);
	unlink(copy);
	free(copy);
}

int main(void)
{
	char *dir = testfs_mkdtemp("cache");
	if (!dir)
		return 1;
	struct statfs fs;
	if (statfs(dir, &fs) == 0 && (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC)) {
		fprintf(stderr, "test_cache: %s is in memory by nature; skipped\n", dir);
		testfs_remove_tree(dir);
		free(dir);
		return 77;
	}
	char *a = cb_path_join(dir, "a.bin"), *b = cb_path_join(dir, "b.bin");
	CHECK(write_file(a, FILE_BYTES) && write_file(b, FILE_BYTES));
	const char *const paths[2] = {a, b};

	fprintf(stderr, "residency method here: %s\n", cb_cache_residency_method());
	cycle(paths, cb_cache_residency_method());
	setenv("CKPTBENCH_RESIDENCY", "mincore", 1);
	CHECK_STR_EQ(cb_cache_residency_method(), "mincore");
	cycle(paths, "mincore");
	unsetenv("CKPTBENCH_RESIDENCY");
	test_warm_state(dir, a);
	test_errors(dir);

	free(a);
	free(b);
	testfs_remove_tree(dir);
	free(dir);
	return check_finish("test_cache");
}
