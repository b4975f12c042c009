/* The zip writer of torch checkpoints; the layout rules are those of
 * caffe2/serialize/inline_container.cc (getPadding) over miniz
 * (mz_zip_writer_add_mem_ex_v2, mz_zip_writer_finalize_archive), as the
 * reference notes describe them byte by byte. */
#include "ptzip_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fileio.h"

#define LOCAL_HEADER 30u
#define CENTRAL_HEADER 46u
#define ZIP64_EOCD 56u
#define ZIP64_LOCATOR 20u
#define EOCD 22u
#define FLAGS_DESCRIPTOR 0x0808u /* bit 3: sizes follow the data; bit 11: UTF-8 */
#define FLAGS_PLAIN 0x0800u      /* an empty record: no descriptor */
#define U32_SATURATED 0xFFFFFFFFu

static uint8_t *put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 4;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 8;
}

static bool has_zip64(const struct cb_ptzip_entry *e)
{
	return e->zip64_size || e->zip64_offset;
}

/* Bytes of the ZIP64 extra field (header included) an entry carries, the
 * same in its local header and its central-directory entry. */
static unsigned zip64_extra_len(const struct cb_ptzip_entry *e)
{
	if (!has_zip64(e))
		return 0;
	return 4 + (e->zip64_size ? 16u : 0u) + (e->zip64_offset ? 8u : 0u);
}

static unsigned descriptor_len(const struct cb_ptzip_entry *e)
{
	if (e->size == 0)
		return 0;
	return has_zip64(e) ? 24u : 16u;
}

static uint32_t saturate(const struct cb_ptzip_writer *w, uint64_t v)
{
	return v >= w->zip64_at ? U32_SATURATED : (uint32_t)v;
}

int cb_ptzip_writer_init(struct cb_ptzip_writer *w, const char *prefix, struct cb_error *err)
{
	memset(w, 0, sizeof *w);
	w->zip64_at = CB_PTZIP_ZIP64_AT;
	if (!*prefix || strchr(prefix, '/'))
		return CB_FAIL(err, CB_EINTERNAL, NULL, NULL,
			       "zip archive name \"%s\" is empty or holds '/'", prefix);
	w->prefix = strdup(prefix);
	if (!w->prefix)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	return CB_OK;
}

void cb_ptzip_writer_free(struct cb_ptzip_writer *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->entries[i].name);
	free(w->entries);
	free(w->prefix);
	memset(w, 0, sizeof *w);
}

static int grow(struct cb_ptzip_writer *w, struct cb_error *err)
{
	if (w->n < w->cap)
		return CB_OK;
	size_t cap = w->cap ? w->cap * 2 : 16;
	struct cb_ptzip_entry *e = realloc(w->entries, cap * sizeof *e);
	if (!e)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	w->entries = e;
	w->cap = cap;
	return CB_OK;
}

int cb_ptzip_writer_add(struct cb_ptzip_writer *w, const char *rel, uint64_t size,
			size_t *index_out, struct cb_error *err)
{
	int rc = grow(w, err);
	if (rc != CB_OK)
		return rc;
	struct cb_ptzip_entry e = {.size = size, .header_offset = w->cursor};
	if (asprintf(&e.name, "%s/%s", w->prefix, rel) < 0)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	size_t name_len = strlen(e.name);
	if (name_len > 0xFFFF) {
		free(e.name);
		return CB_FAIL(err, CB_ELIMIT, NULL, rel, "zip record name over 65535 bytes");
	}
	e.zip64_size = size >= w->zip64_at;
	e.zip64_offset = w->cursor >= w->zip64_at;
	/* torch's getPadding: the data starts after the fixed header, the name,
	 * the ZIP64 extra and the FB field's own 4-byte header; the FB field's
	 * payload of 'Z's pads that to the alignment. */
	uint64_t start, next;
	bool overflow = __builtin_add_overflow(
		w->cursor, LOCAL_HEADER + name_len + 4 + zip64_extra_len(&e), &start);
	uint64_t pad = (CB_PTZIP_ALIGNMENT - start % CB_PTZIP_ALIGNMENT) % CB_PTZIP_ALIGNMENT;
	e.extra_len = (uint16_t)(zip64_extra_len(&e) + 4 + pad);
	e.data_offset = start + pad;
	overflow = overflow || __builtin_add_overflow(e.data_offset, size, &next) ||
		   __builtin_add_overflow(next, descriptor_len(&e), &next) ||
		   next > (uint64_t)INT64_MAX;
	if (overflow) {
		free(e.name);
		return CB_FAIL(err, CB_ELIMIT, NULL, rel, "zip archive over 2^63 bytes");
	}
	w->cursor = next;
	w->entries[w->n] = e;
	if (index_out)
		*index_out = w->n;
	w->n++;
	return CB_OK;
}

static uint64_t cd_size(const struct cb_ptzip_writer *w)
{
	uint64_t total = 0;
	for (size_t i = 0; i < w->n; i++)
		total += CENTRAL_HEADER + strlen(w->entries[i].name) +
			 zip64_extra_len(&w->entries[i]);
	return total;
}

uint64_t cb_ptzip_writer_cd_offset(const struct cb_ptzip_writer *w)
{
	return w->cursor;
}

uint64_t cb_ptzip_writer_file_size(const struct cb_ptzip_writer *w)
{
	return w->cursor + cd_size(w) + ZIP64_EOCD + ZIP64_LOCATOR + EOCD;
}

/* The ZIP64 extra field: sizes only when they need it, then the offset. The
 * local copy holds a compressed size of 0, as miniz writes it before the
 * data (readers take sizes from the central directory). */
static uint8_t *put_zip64_extra(uint8_t *p, const struct cb_ptzip_entry *e, bool central)
{
	if (!has_zip64(e))
		return p;
	p = put16(p, 0x0001);
	p = put16(p, (uint16_t)(zip64_extra_len(e) - 4));
	if (e->zip64_size) {
		p = put64(p, e->size);
		p = put64(p, central ? e->size : 0);
	}
	if (e->zip64_offset)
		p = put64(p, e->header_offset);
	return p;
}

static int write_local_header(const struct cb_ptzip_entry *e, int fd, const char *path,
			      struct cb_error *err)
{
	size_t name_len = strlen(e->name);
	size_t len = LOCAL_HEADER + name_len + e->extra_len;
	uint8_t *buf = malloc(len);
	if (!buf)
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	uint8_t *p = put32(buf, 0x04034b50);
	p = put16(p, 0); /* version needed */
	p = put16(p, e->size ? FLAGS_DESCRIPTOR : FLAGS_PLAIN);
	p = put16(p, 0); /* stored */
	p = put32(p, 0); /* time, date */
	p = put32(p, 0); /* CRC: in the descriptor */
	p = put32(p, 0); /* sizes: likewise */
	p = put32(p, 0);
	p = put16(p, (uint16_t)name_len);
	p = put16(p, e->extra_len);
	memcpy(p, e->name, name_len);
	p = put_zip64_extra(p + name_len, e, false);
	size_t pad = e->extra_len - zip64_extra_len(e) - 4;
	p[0] = 'F';
	p[1] = 'B';
	p = put16(p + 2, (uint16_t)pad);
	memset(p, 'Z', pad);
	int rc = cb_pwrite_full(fd, buf, len, e->header_offset, path, err);
	free(buf);
	return rc;
}

int cb_ptzip_writer_write_headers(const struct cb_ptzip_writer *w, int fd, const char *path,
				  struct cb_error *err)
{
	for (size_t i = 0; i < w->n; i++) {
		int rc = write_local_header(&w->entries[i], fd, path, err);
		if (rc != CB_OK)
			return rc;
	}
	return CB_OK;
}

static int write_descriptor(const struct cb_ptzip_entry *e, int fd, const char *path,
			    struct cb_error *err)
{
	uint8_t buf[24], *p = put32(buf, 0x08074b50);
	p = put32(p, e->crc32);
	if (has_zip64(e)) {
		p = put64(p, e->size);
		p = put64(p, e->size);
	} else {
		p = put32(p, (uint32_t)e->size);
		p = put32(p, (uint32_t)e->size);
	}
	return cb_pwrite_full(fd, buf, (size_t)(p - buf), e->data_offset + e->size, path, err);
}

static uint8_t *put_central_entry(uint8_t *p, const struct cb_ptzip_entry *e)
{
	size_t name_len = strlen(e->name);
	p = put32(p, 0x02014b50);
	p = put16(p, 0); /* made by */
	p = put16(p, 0); /* version needed */
	p = put16(p, e->size ? FLAGS_DESCRIPTOR : FLAGS_PLAIN);
	p = put16(p, 0); /* stored */
	p = put32(p, 0); /* time, date */
	p = put32(p, e->crc32);
	p = put32(p, e->zip64_size ? U32_SATURATED : (uint32_t)e->size);
	p = put32(p, e->zip64_size ? U32_SATURATED : (uint32_t)e->size);
	p = put16(p, (uint16_t)name_len);
	p = put16(p, (uint16_t)zip64_extra_len(e));
	p = put16(p, 0); /* comment */
	p = put16(p, 0); /* disk */
	p = put16(p, 0); /* internal attributes */
	p = put32(p, 0); /* external attributes */
	p = put32(p, e->zip64_offset ? U32_SATURATED : (uint32_t)e->header_offset);
	memcpy(p, e->name, name_len);
	return put_zip64_extra(p + name_len, e, true);
}

/* ZIP64 end record, its locator and the classic end record: always all
 * three, as torch's writer (MZ_ZIP_FLAG_WRITE_ZIP64) does. */
static uint8_t *put_end_records(uint8_t *p, const struct cb_ptzip_writer *w, uint64_t cd_offset,
				uint64_t cd_bytes)
{
	uint64_t zip64_eocd = cd_offset + cd_bytes;
	uint16_t count16 = w->n >= 0xFFFF ? 0xFFFF : (uint16_t)w->n;
	p = put32(p, 0x06064b50);
	p = put64(p, ZIP64_EOCD - 12); /* size of the rest of the record */
	p = put16(p, 0x031E);          /* made by: Unix, 3.0 */
	p = put16(p, 0x002D);          /* needed: 4.5 (ZIP64) */
	p = put32(p, 0);
	p = put32(p, 0);
	p = put64(p, w->n);
	p = put64(p, w->n);
	p = put64(p, cd_bytes);
	p = put64(p, cd_offset);
	p = put32(p, 0x07064b50);
	p = put32(p, 0);
	p = put64(p, zip64_eocd);
	p = put32(p, 1);
	p = put32(p, 0x06054b50);
	p = put16(p, 0);
	p = put16(p, 0);
	p = put16(p, count16);
	p = put16(p, count16);
	p = put32(p, saturate(w, cd_bytes));
	p = put32(p, saturate(w, cd_offset));
	return put16(p, 0); /* comment */
}

int cb_ptzip_writer_write_trailer(const struct cb_ptzip_writer *w, int fd, const char *path,
				  struct cb_error *err)
{
	for (size_t i = 0; i < w->n; i++) {
		if (descriptor_len(&w->entries[i]) == 0)
			continue;
		int rc = write_descriptor(&w->entries[i], fd, path, err);
		if (rc != CB_OK)
			return rc;
	}
	uint64_t cd_offset = w->cursor, cd_bytes = cd_size(w);
	uint64_t total = cd_bytes + ZIP64_EOCD + ZIP64_LOCATOR + EOCD;
	if (total > SIZE_MAX)
		return CB_FAIL(err, CB_ELIMIT, path, NULL, "zip central directory too large");
	uint8_t *buf = malloc((size_t)total);
	if (!buf)
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	uint8_t *p = buf;
	for (size_t i = 0; i < w->n; i++)
		p = put_central_entry(p, &w->entries[i]);
	p = put_end_records(p, w, cd_offset, cd_bytes);
	int rc = cb_pwrite_full(fd, buf, (size_t)(p - buf), cd_offset, path, err);
	free(buf);
	return rc;
}

void cb_ptzip_prefix_for_path(const char *path, char *out, size_t size)
{
	const char *base = path;
	for (const char *p = path; *p; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	const char *dot = strrchr(base, '.');
	size_t len = dot ? (size_t)(dot - base) : strlen(base);
	bool plain = len > 0 && len < size;
	for (size_t i = 0; plain && i < len; i++)
		plain = base[i] >= 0x20 && base[i] < 0x7F;
	if (!plain) {
		snprintf(out, size, "archive");
		return;
	}
	memcpy(out, base, len);
	out[len] = '\0';
}

/* zlib's crc32() takes a uInt length: feed it in pieces. */
uint32_t cb_crc32_update(uint32_t crc, const void *data, uint64_t len)
{
	const Bytef *p = data;
	uLong c = crc;
	while (len > 0) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
		c = crc32(c, p, n);
		p += n;
		len -= n;
	}
	return (uint32_t)c;
}

int cb_ptzip_writer_put(struct cb_ptzip_writer *w, size_t index, int fd, const void *data,
			const char *path, struct cb_error *err)
{
	struct cb_ptzip_entry *e = &w->entries[index];
	if (e->size > SIZE_MAX)
		return CB_FAIL(err, CB_ELIMIT, path, e->name, "record too large to write at once");
	e->crc32 = cb_crc32_update(0, data, e->size);
	return cb_pwrite_full(fd, data, (size_t)e->size, e->data_offset, path, err);
}
