/* The scratch files of the fuzz targets that go through a path (whole-file
 * inspect and convert): one directory per process under $TMPDIR, removed at
 * exit, so that parallel fuzzing jobs and test runs never share a file. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static char fuzz_dir[4096];

/* Removes the directory and what the targets left in it (they only leave
 * plain files, one level deep). */
static void remove_dir(void)
{
	char cmd[4200];
	if (!fuzz_dir[0])
		return;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir);
}

const char *cb_fuzz_dir(void)
{
	if (fuzz_dir[0])
		return fuzz_dir;
	const char *tmp = getenv("TMPDIR");
	snprintf(fuzz_dir, sizeof fuzz_dir, "%s/cbfuzz.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(fuzz_dir)) {
		perror("fuzz: mkdtemp");
		abort();
	}
	atexit(remove_dir);
	return fuzz_dir;
}

const char *cb_fuzz_file(const char *name, const uint8_t *data, size_t size)
{
	static char path[4200];
	snprintf(path, sizeof path, "%s/%s", cb_fuzz_dir(), name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		perror("fuzz: open");
		abort();
	}
	size_t done = 0;
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);
		if (n <= 0) {
			perror("fuzz: write");
			abort();
		}
		done += (size_t)n;
	}
	close(fd);
	return path;
}
