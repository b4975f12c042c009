/* The zip container of a torch.save checkpoint: a writer that lays records
 * out exactly as torch's PyTorchStreamWriter (miniz) does.
 *
 * Hand-written, like the reader (ptzip.h), because the layout is the point:
 * every record is stored (method 0) with its data starting at a multiple of
 * 64 bytes from the start of the file, which is what lets loaders mmap or
 * pread a storage straight into place. A general zip library neither aligns
 * records nor tells where their data went.
 *
 * What is written, per record: a local header with zero CRC and sizes and
 * flags 0x0808 (sizes in a data descriptor, UTF-8 name), or 0x0800 and no
 * descriptor for an empty record; a ZIP64 extra field when the record's size
 * or its header offset reaches 0xFFFFFFFF; torch's "FB" extra field padded
 * with 'Z' up to the alignment; the data; a 16-byte data descriptor (24 bytes
 * when the record has a ZIP64 extra). Then the central directory, and always
 * a ZIP64 end record, its locator and the classic end record, as torch writes
 * them even for tiny files. CRC-32 values are real (zlib's crc32()): torch
 * never checks them, but Python's zipfile and unzip do.
 *
 * Because every offset is known before any data exists, the writer is a plan:
 * add the records (names and sizes), then write the local headers, let the
 * caller put each record's bytes at its data_offset (in any order, from any
 * thread) and set its CRC, then write the trailer (descriptors, central
 * directory, end records).
 *
 * Thread-safety: a plan belongs to one thread; callers may write record data
 * concurrently with pwrite at the planned offsets.
 */
#ifndef CB_PTZIP_WRITE_H
#define CB_PTZIP_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define CB_PTZIP_ALIGNMENT 64u
#define CB_PTZIP_ZIP64_AT 0xFFFFFFFFull /* sizes and offsets from here need ZIP64 */

struct cb_ptzip_entry {
	char *name;             /* "<prefix>/<record>"; owned by the writer */
	uint64_t size;          /* data bytes */
	uint64_t header_offset; /* local header, from the start of the file */
	uint64_t data_offset;   /* a multiple of CB_PTZIP_ALIGNMENT */
	uint32_t crc32;         /* set by the caller before the trailer is written */
	uint16_t extra_len;     /* local extra field bytes (ZIP64 + FB) */
	bool zip64_size;        /* the size needs the ZIP64 extra */
	bool zip64_offset;      /* the header offset needs the ZIP64 extra */
};

struct cb_ptzip_writer {
	char *prefix; /* owned; the archive name, without '/' */
	size_t n, cap;
	struct cb_ptzip_entry *entries; /* in write order */
	uint64_t cursor;                /* where the next local header goes */
	/* Sizes and offsets at or above this need ZIP64. CB_PTZIP_ZIP64_AT
	 * unless a test lowers it to exercise the ZIP64 paths on small files. */
	uint64_t zip64_at;
};

/* Starts an empty plan for an archive named `prefix` (ASCII, no '/'; see
 * cb_ptzip_prefix_for_path). Free with cb_ptzip_writer_free. */
CB_NODISCARD int cb_ptzip_writer_init(struct cb_ptzip_writer *w, const char *prefix,
				      struct cb_error *err);

void cb_ptzip_writer_free(struct cb_ptzip_writer *w);

/* Plans record `prefix/rel` of `size` bytes after the records planned so far;
 * *index_out (may be NULL) gets its index in w->entries. Names must be unique
 * (ignoring case, as miniz looks them up); that is the caller's contract. */
CB_NODISCARD int cb_ptzip_writer_add(struct cb_ptzip_writer *w, const char *rel, uint64_t size,
				     size_t *index_out, struct cb_error *err);

/* Where the central directory starts and the size of the whole file, once
 * every record is planned. */
uint64_t cb_ptzip_writer_cd_offset(const struct cb_ptzip_writer *w);
uint64_t cb_ptzip_writer_file_size(const struct cb_ptzip_writer *w);

/* Writes every local header (name and extra fields included) at its planned
 * offset of `fd`. Record data is the caller's. */
CB_NODISCARD int cb_ptzip_writer_write_headers(const struct cb_ptzip_writer *w, int fd,
					       const char *path, struct cb_error *err);

/* Writes each record's data descriptor, the central directory and the end
 * records; every entry's crc32 must be set by then. */
CB_NODISCARD int cb_ptzip_writer_write_trailer(const struct cb_ptzip_writer *w, int fd,
					       const char *path, struct cb_error *err);

/* Writes a small record's bytes at its data offset and sets its CRC. */
CB_NODISCARD int cb_ptzip_writer_put(struct cb_ptzip_writer *w, size_t index, int fd,
				     const void *data, const char *path, struct cb_error *err);

/* The zip CRC-32 of `len` more bytes after `crc` (0 to start), via zlib. */
uint32_t cb_crc32_update(uint32_t crc, const void *data, uint64_t len);

/* The archive name torch derives from a file name: the base name without its
 * last extension ("/x/model.tar.pt" -> "model.tar"), or "archive" where that
 * is empty, not ASCII, or holds characters a zip name should not. Writes at
 * most size-1 bytes and a NUL. */
void cb_ptzip_prefix_for_path(const char *path, char *out, size_t size);

#endif
