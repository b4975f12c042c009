/* Whole-buffer pread/pwrite and files written atomically.
 *
 * Everything ckptbench writes (datasets, manifests, results, converted
 * checkpoints) goes through cb_atomic_*: a temporary file beside the final
 * name, renamed over it only when complete, so a reader never sees a
 * half-written file and a failure leaves nothing behind.
 */
#ifndef CB_FILEIO_H
#define CB_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Reads exactly `len` bytes at `offset`, retrying short reads and EINTR.
 * A file that ends early is CB_EFORMAT ("file ends at byte X"). */
CB_NODISCARD int cb_pread_full(int fd, void *buf, size_t len, uint64_t offset, const char *path,
			       struct cb_error *err);

/* Writes exactly `len` bytes at `offset`. */
CB_NODISCARD int cb_pwrite_full(int fd, const void *buf, size_t len, uint64_t offset,
				const char *path, struct cb_error *err);

struct cb_atomic_file {
	int fd;           /* -1 when not open */
	char *final_path; /* owned */
	char *tmp_path;   /* owned; "<final>.tmp.XXXXXX" */
};

/* Creates the temporary file (mode 0644 less the umask) beside `path`. */
CB_NODISCARD int cb_atomic_open(struct cb_atomic_file *file, const char *path,
				struct cb_error *err);

/* Optionally fsyncs, closes and renames over the final name (then fsyncs the
 * directory when durable). The struct is released either way; on failure the
 * temporary file is removed. */
CB_NODISCARD int cb_atomic_commit(struct cb_atomic_file *file, bool durable, struct cb_error *err);

/* Closes and removes the temporary file. Safe on a struct that failed to
 * open or was already committed. */
void cb_atomic_abort(struct cb_atomic_file *file);

/* Reads a whole (small) file into a NUL-terminated malloc'd buffer; refuses
 * files over `max_size` with CB_ELIMIT. The caller frees *buf_out. */
CB_NODISCARD int cb_read_small_file(const char *path, size_t max_size, char **buf_out,
				    size_t *len_out, struct cb_error *err);

/* Writes `len` bytes as the whole content of `path`, atomically. */
CB_NODISCARD int cb_write_small_file(const char *path, const void *buf, size_t len,
				     struct cb_error *err);

/* Joins a directory and a name with one '/'; malloc'd, NULL on ENOMEM. */
char *cb_path_join(const char *dir, const char *name);

/* Creates a directory and its parents (mode 0755); existing ones are fine. */
CB_NODISCARD int cb_mkdir_p(const char *path, struct cb_error *err);

#endif
