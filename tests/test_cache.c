/* bench/cache: after eviction a 64 MiB file on a real disk is (almost) not
 * in the page cache, after warming it is all there, and both residency
 * methods (cachestat and mmap + mincore) agree. Exit 77 (skip) where the
 * filesystem keeps files in memory by nature (tmpfs, ramfs). */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
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
	test_errors(dir);

	free(a);
	free(b);
	testfs_remove_tree(dir);
	free(dir);
	return check_finish("test_cache");
}
