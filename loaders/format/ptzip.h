/* The zip container of a torch.save checkpoint (PyTorch >= 1.6): a reader.
 *
 * Hand-written rather than taken from a zip library because the loaders need
 * each record's raw file offset, to pread or mmap a storage straight into
 * place; general zip libraries hide it behind an extraction API, and they
 * accept far more than a checkpoint ever holds (compression, encryption,
 * spanning), which is attack surface here.
 *
 * What is accepted is what torch writes (and what foreign zip tools write
 * when they re-pack a checkpoint without compressing it): the central
 * directory only (local headers of torch's records carry zero sizes), the
 * ZIP64 end record, locator and extra fields, stored (method 0) records.
 * Compressed, encrypted, overlapping and out-of-file records are refused
 * with a one-line error naming the record. A TorchScript archive (a
 * `constants.pkl` or `code/` record) is refused as unsafe before anything
 * else, as torch.load(weights_only=True) refuses it (CVE-2025-32434).
 * Every count, length and offset read from the file is bounded and checked
 * with overflow-checked arithmetic.
 *
 * Record names: torch writes `<prefix>/<record>` for every record, with the
 * prefix taken from the first central-directory entry (the file's stem, or
 * "archive"); records are looked up by the part after the prefix.
 *
 * Thread-safety: an opened archive is immutable and may be shared.
 */
#ifndef CB_PTZIP_H
#define CB_PTZIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define CB_PTZIP_MAX_RECORDS (1u << 22)      /* central-directory entries */
#define CB_PTZIP_MAX_CD_BYTES (512ull << 20) /* central directory size */

struct cb_ptzip_record {
	const char *name;       /* full name, "<prefix>/<record>"; owned by the archive */
	const char *rel;        /* the part after "<prefix>/" (points into name) */
	size_t name_len;        /* strlen(name) */
	uint64_t header_offset; /* local header, from the start of the file */
	uint64_t data_offset;   /* first data byte: header + 30 + local name + local extra */
	uint64_t size;          /* bytes (stored, so compressed == uncompressed) */
	uint32_t crc32;         /* as the central directory says; never trusted */
};

struct cb_ptzip {
	char *path; /* owned */
	uint64_t file_size;
	char *prefix;      /* owned; without the '/' */
	size_t prefix_len; /* strlen(prefix) */
	size_t n_records;
	struct cb_ptzip_record *records; /* sorted by rel, byte-wise; no duplicates */
	uint64_t cd_offset, cd_size;     /* the central directory */
	char *names;                     /* owned; storage of every record name */
	uint32_t *data_index;            /* owned; private to cb_ptzip_find_data */
};

/* Reads the directory of the zip archive `path` (already open as `fd`, of
 * `file_size` bytes). Reads only the end records, the central directory and
 * each record's local header, never record data. On success *out is the
 * caller's, to free with cb_ptzip_free; `fd` stays the caller's. */
CB_NODISCARD int cb_ptzip_open_fd(int fd, const char *path, uint64_t file_size,
				  struct cb_ptzip **out, struct cb_error *err);

/* Opens `path` and reads its directory (see cb_ptzip_open_fd). */
CB_NODISCARD int cb_ptzip_open(const char *path, struct cb_ptzip **out, struct cb_error *err);

/* The record named `prefix/rel`, by binary search; NULL when absent. */
const struct cb_ptzip_record *cb_ptzip_find(const struct cb_ptzip *zip, const char *rel);

/* The record of storage `key`, "prefix/data/<key>": what
 * cb_ptzip_find(zip, "data/<key>") finds, without building that name (for
 * torch's keys, the decimals 0..n-1, by an index). NULL when absent. */
const struct cb_ptzip_record *cb_ptzip_find_data(const struct cb_ptzip *zip, const char *key);

/* Reads a whole record into a malloc'd buffer (NUL-terminated for
 * convenience; the terminator is not counted). Records over `max_size`
 * bytes are refused with CB_ELIMIT. The caller frees *buf_out. */
CB_NODISCARD int cb_ptzip_read(int fd, const struct cb_ptzip *zip,
			       const struct cb_ptzip_record *rec, size_t max_size,
			       uint8_t **buf_out, struct cb_error *err);

void cb_ptzip_free(struct cb_ptzip *zip);

/* malloc for a big array or buffer that will be written whole: asks the
 * kernel for huge pages (a page fault per 2 MiB instead of per 4 KiB).
 * Free it with free(). */
void *cb_bulk_malloc(size_t size);

#endif
