#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cb_pread_full(int fd, void *buf, size_t len, uint64_t offset, const char *path,
		  struct cb_error *err)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t got = pread(fd, p, len, (off_t)offset);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return CB_FAIL_ERRNO(err, errno, path, "read failed");
		}
		if (got == 0) {
			char where[64];
			snprintf(where, sizeof where, "byte %llu", (unsigned long long)offset);
			return CB_FAIL(err, CB_EFORMAT, path, where,
				       "file ends early: %zu more bytes expected", len);
		}
		p += got;
		len -= (size_t)got;
		offset += (uint64_t)got;
	}
	return CB_OK;
}

int cb_pwrite_full(int fd, const void *buf, size_t len, uint64_t offset, const char *path,
		   struct cb_error *err)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t put = pwrite(fd, p, len, (off_t)offset);
		if (put < 0) {
			if (errno == EINTR)
				continue;
			return CB_FAIL_ERRNO(err, errno, path, "write failed");
		}
		p += put;
		len -= (size_t)put;
		offset += (uint64_t)put;
	}
	return CB_OK;
}

static void atomic_release(struct cb_atomic_file *file)
{
	free(file->final_path);
	free(file->tmp_path);
	file->final_path = file->tmp_path = NULL;
	file->fd = -1;
}

int cb_atomic_open(struct cb_atomic_file *file, const char *path, struct cb_error *err)
{
	file->fd = -1;
	file->final_path = strdup(path);
	if (asprintf(&file->tmp_path, "%s.tmp.XXXXXX", path) < 0)
		file->tmp_path = NULL;
	if (!file->final_path || !file->tmp_path) {
		atomic_release(file);
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	}
	file->fd = mkostemp(file->tmp_path, O_CLOEXEC);
	if (file->fd < 0) {
		int e = errno;
		atomic_release(file);
		return CB_FAIL_ERRNO(err, e, path, "cannot create a temporary file beside it");
	}
	/* mkstemp makes 0600; give the file the mode a plain creat() would. */
	mode_t mask = umask(0);
	umask(mask);
	if (fchmod(file->fd, 0644 & ~mask) != 0) {
		int e = errno;
		cb_atomic_abort(file);
		return CB_FAIL_ERRNO(err, e, path, "cannot set the mode of the temporary file");
	}
	return CB_OK;
}

static void fsync_parent_dir(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return;
	int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	free(copy);
}

int cb_atomic_commit(struct cb_atomic_file *file, bool durable, struct cb_error *err)
{
	if (file->fd < 0)
		return CB_FAIL(err, CB_EINTERNAL, NULL, NULL, "commit of a file that is not open");
	if (durable && fsync(file->fd) != 0) {
		int e = errno;
		char *path = strdup(file->final_path);
		cb_atomic_abort(file);
		CB_FAIL_ERRNO(err, e, path, "fsync failed");
		free(path);
		return CB_EIO;
	}
	int rc = close(file->fd);
	file->fd = -1;
	if (rc != 0 || rename(file->tmp_path, file->final_path) != 0) {
		int e = errno;
		unlink(file->tmp_path);
		CB_FAIL_ERRNO(err, e, file->final_path, "cannot put the file in place");
		atomic_release(file);
		return CB_EIO;
	}
	if (durable)
		fsync_parent_dir(file->final_path);
	atomic_release(file);
	return CB_OK;
}

void cb_atomic_abort(struct cb_atomic_file *file)
{
	if (file->fd >= 0)
		close(file->fd);
	if (file->tmp_path)
		unlink(file->tmp_path);
	atomic_release(file);
}

int cb_read_small_file(const char *path, size_t max_size, char **buf_out, size_t *len_out,
		       struct cb_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return CB_FAIL_ERRNO(err, errno, path, "cannot open");
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return CB_FAIL_ERRNO(err, e, path, "cannot stat");
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return CB_FAIL(err, CB_EFORMAT, path, NULL, "not a regular file");
	}
	if ((uint64_t)st.st_size > max_size) {
		close(fd);
		return CB_FAIL(err, CB_ELIMIT, path, NULL,
			       "file of %lld bytes is larger than the %zu allowed",
			       (long long)st.st_size, max_size);
	}
	size_t len = (size_t)st.st_size;
	char *buf = malloc(len + 1);
	if (!buf) {
		close(fd);
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	}
	int rc = cb_pread_full(fd, buf, len, 0, path, err);
	close(fd);
	if (rc != CB_OK) {
		free(buf);
		return rc;
	}
	buf[len] = '\0';
	*buf_out = buf;
	if (len_out)
		*len_out = len;
	return CB_OK;
}

int cb_write_small_file(const char *path, const void *buf, size_t len, struct cb_error *err)
{
	struct cb_atomic_file file;
	int rc = cb_atomic_open(&file, path, err);
	if (rc != CB_OK)
		return rc;
	rc = cb_pwrite_full(file.fd, buf, len, 0, path, err);
	if (rc != CB_OK) {
		cb_atomic_abort(&file);
		return rc;
	}
	return cb_atomic_commit(&file, true, err);
}

char *cb_path_join(const char *dir, const char *name)
{
	char *out;
	size_t dl = strlen(dir);
	bool slash = dl > 0 && dir[dl - 1] == '/';
	if (asprintf(&out, "%s%s%s", dir, slash || dl == 0 ? "" : "/", name) < 0)
		return NULL;
	return out;
}

int cb_mkdir_p(const char *path, struct cb_error *err)
{
	char *copy = strdup(path);
	if (!copy)
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	for (char *p = copy + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
			int e = errno;
			free(copy);
			return CB_FAIL_ERRNO(err, e, path, "cannot create directory");
		}
		*p = saved;
		if (saved == '\0')
			break;
	}
	free(copy);
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return CB_FAIL(err, CB_EIO, path, NULL, "exists and is not a directory");
	return CB_OK;
}
