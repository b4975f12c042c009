/* File-system helpers for the test programs: a private temporary directory,
 * listing it, removing it. Header-only (static functions) so each test
 * program stays one source file; unused helpers cost nothing. */
#ifndef CB_TESTFS_H
#define CB_TESTFS_H

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fresh directory under $TMPDIR (or /tmp); malloc'd path, NULL on failure.
 * Generated data never goes into the source tree. */
static inline char *testfs_mkdtemp(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *path = NULL;
	if (!base || !base[0])
		base = "/tmp";
	if (asprintf(&path, "%s/ckptbench-%s-XXXXXX", base, tag) < 0)
		return NULL;
	if (!mkdtemp(path)) {
		perror("mkdtemp");
		free(path);
		return NULL;
	}
	return path;
}

static inline int testfs_remove_one(const char *path, const struct stat *st, int type,
				    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		return rmdir(path);
	return unlink(path);
}

/* rm -r of a directory this test made. */
static inline void testfs_remove_tree(const char *path)
{
	if (path)
		nftw(path, testfs_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The names in a directory (without . and ..), sorted, joined with '\n'
 * into `out`. Lets a test assert exactly what a directory holds. */
static inline int testfs_compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static inline void testfs_listing(const char *dir, char *out, size_t size)
{
	char *names[256];
	size_t n = 0;
	out[0] = '\0';
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) && n < 256)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof *names, testfs_compare_names);
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		if (names[i] && used < size)
			used += (size_t)snprintf(out + used, size - used, "%s%s", i ? "\n" : "",
						 names[i]);
		free(names[i]);
	}
}

/* Writes a small text file (test inputs such as hand-written indexes). */
static inline int testfs_write(const char *dir, const char *name, const char *text)
{
	char *path = NULL;
	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -1;
	FILE *f = fopen(path, "wb");
	free(path);
	if (!f)
		return -1;
	size_t len = strlen(text);
	int rc = fwrite(text, 1, len, f) == len ? 0 : -1;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

#endif
