/* Reading the zip directory of a torch.save checkpoint; see ptzip.h for why
 * it is hand-written and what it accepts. Layout facts: APPNOTE.TXT and
 * docs/datasets-and-method.md §4.1. */
#include "ptzip.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"

#define EOCD_SIZE 22u
#define EOCD_MAX_COMMENT 65535u
#define LOCATOR_SIZE 20u
#define ZIP64_EOCD_SIZE 56u
#define CD_ENTRY_SIZE 46u
#define LOCAL_HEADER_SIZE 30u

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_ZIP64_EOCD 0x06064b50u
#define SIG_ZIP64_LOCATOR 0x07064b50u

#define FLAG_ENCRYPTED 0x0001u
#define FLAG_STRONG_ENCRYPTION 0x0040u
#define METHOD_STORED 0u
#define METHOD_AES 99u
#define EXTRA_ZIP64 0x0001u

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void byte_where(char *buf, size_t size, uint64_t offset)
{
	snprintf(buf, size, "byte %llu", (unsigned long long)offset);
}

static void record_where(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "record \"%.200s\"", name);
}

/* ------------------------------------------------------------ end records */

/* What the end records say about the central directory. */
struct cd_location {
	uint64_t entries;
	uint64_t offset;
	uint64_t size;
	uint64_t end_limit; /* the directory must end at or before this byte */
};

/* Finds the end-of-central-directory record: the last "PK\5\6" whose
 * comment length reaches exactly to the end of the file. */
static int find_eocd(int fd, const char *path, uint64_t file_size, uint8_t eocd[EOCD_SIZE],
		     uint64_t *pos_out, struct cb_error *err)
{
	uint64_t span = EOCD_SIZE + EOCD_MAX_COMMENT;
	size_t len = (size_t)(file_size < span ? file_size : span);
	uint64_t base = file_size - len;
	uint8_t *tail = malloc(len);
	if (!tail)
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	int rc = cb_pread_full(fd, tail, len, base, path, err);
	if (rc != CB_OK) {
		free(tail);
		return rc;
	}
	for (size_t p = len - EOCD_SIZE + 1; p-- > 0;) {
		if (le32(tail + p) != SIG_EOCD)
			continue;
		if (p + EOCD_SIZE + le16(tail + p + 20) != len)
			continue;
		memcpy(eocd, tail + p, EOCD_SIZE);
		*pos_out = base + p;
		free(tail);
		return CB_OK;
	}
	free(tail);
	return CB_FAIL(err, CB_EFORMAT, path, NULL,
		       "not a zip archive: no end-of-central-directory record at the end");
}

/* A 16- or 32-bit field of the classic end record must equal the ZIP64
 * value unless it is saturated (then the ZIP64 record holds the truth). */
static int check_agrees(uint64_t classic, uint64_t saturated, uint64_t zip64, const char *what,
			const char *path, const char *where, struct cb_error *err)
{
	if (classic == saturated || classic == zip64)
		return CB_OK;
	return CB_FAIL(err, CB_EFORMAT, path, where,
		       "the ZIP64 end record disagrees with the end record about the %s "
		       "(%llu vs %llu)",
		       what, (unsigned long long)zip64, (unsigned long long)classic);
}

static int read_zip64_end(int fd, const char *path, uint64_t eocd_pos, const uint8_t *eocd,
			  struct cd_location *loc, struct cb_error *err)
{
	uint8_t locator[LOCATOR_SIZE], rec[ZIP64_EOCD_SIZE];
	char where[64];
	uint64_t locator_pos = eocd_pos - LOCATOR_SIZE;
	byte_where(where, sizeof where, locator_pos);
	int rc = cb_pread_full(fd, locator, sizeof locator, locator_pos, path, err);
	if (rc != CB_OK)
		return rc;
	uint64_t z_pos = le64(locator + 8);
	if (le32(locator + 4) != 0 || le32(locator + 16) > 1)
		return CB_FAIL(err, CB_EUNSUPPORTED, path, where,
			       "multi-disk (spanned) zip archives are not supported");
	if (z_pos > locator_pos || locator_pos - z_pos < ZIP64_EOCD_SIZE)
		return CB_FAIL(err, CB_EFORMAT, path, where,
			       "the ZIP64 locator points to byte %llu, where no ZIP64 end record "
			       "fits before the locator",
			       (unsigned long long)z_pos);
	byte_where(where, sizeof where, z_pos);
	if ((rc = cb_pread_full(fd, rec, sizeof rec, z_pos, path, err)) != CB_OK)
		return rc;
	if (le32(rec) != SIG_ZIP64_EOCD)
		return CB_FAIL(err, CB_EFORMAT, path, where,
			       "the ZIP64 locator does not point to a ZIP64 end record");
	if (le64(rec + 4) < ZIP64_EOCD_SIZE - 12)
		return CB_FAIL(err, CB_EFORMAT, path, where,
			       "the ZIP64 end record is shorter than 56 bytes");
	if (le32(rec + 16) != 0 || le32(rec + 20) != 0 || le64(rec + 24) != le64(rec + 32))
		return CB_FAIL(err, CB_EUNSUPPORTED, path, where,
			       "multi-disk (spanned) zip archives are not supported");
	loc->entries = le64(rec + 32);
	loc->size = le64(rec + 40);
	loc->offset = le64(rec + 48);
	loc->end_limit = z_pos;
	if ((rc = check_agrees(le16(eocd + 10), 0xFFFFu, loc->entries, "number of records", path,
			       where, err)) != CB_OK ||
	    (rc = check_agrees(le32(eocd + 12), 0xFFFFFFFFu, loc->size, "central directory size",
			       path, where, err)) != CB_OK ||
	    (rc = check_agrees(le32(eocd + 16), 0xFFFFFFFFu, loc->offset,
			       "central directory offset", path, where, err)) != CB_OK)
		return rc;
	return CB_OK;
}

static int locate_central_directory(int fd, const char *path, uint64_t file_size,
				    struct cd_location *loc, struct cb_error *err)
{
	uint8_t eocd[EOCD_SIZE] = {0}, sig[4];
	uint64_t eocd_pos = 0;
	char where[64];
	int rc = find_eocd(fd, path, file_size, eocd, &eocd_pos, err);
	if (rc != CB_OK)
		return rc;
	byte_where(where, sizeof where, eocd_pos);
	if (le16(eocd + 4) != 0 || le16(eocd + 6) != 0 || le16(eocd + 8) != le16(eocd + 10))
		return CB_FAIL(err, CB_EUNSUPPORTED, path, where,
			       "multi-disk (spanned) zip archives are not supported");
	bool has_locator = false;
	if (eocd_pos >= LOCATOR_SIZE) {
		rc = cb_pread_full(fd, sig, sizeof sig, eocd_pos - LOCATOR_SIZE, path, err);
		if (rc != CB_OK)
			return rc;
		has_locator = le32(sig) == SIG_ZIP64_LOCATOR;
	}
	if (has_locator)
		return read_zip64_end(fd, path, eocd_pos, eocd, loc, err);
	loc->entries = le16(eocd + 10);
	loc->size = le32(eocd + 12);
	loc->offset = le32(eocd + 16);
	loc->end_limit = eocd_pos;
	if (loc->size == 0xFFFFFFFFu || loc->offset == 0xFFFFFFFFu)
		return CB_FAIL(err, CB_EFORMAT, path, where,
			       "the end record defers to a ZIP64 end record, and there is none");
	return CB_OK;
}

static int check_cd_bounds(const char *path, const struct cd_location *loc, struct cb_error *err)
{
	uint64_t end, min_size;
	if (loc->entries == 0)
		return CB_FAIL(err, CB_EFORMAT, path, NULL, "the zip archive has no records");
	if (loc->entries > CB_PTZIP_MAX_RECORDS)
		return CB_FAIL(err, CB_ELIMIT, path, NULL,
			       "the zip archive claims %llu records, over the limit of %u",
			       (unsigned long long)loc->entries, CB_PTZIP_MAX_RECORDS);
	if (loc->size > CB_PTZIP_MAX_CD_BYTES)
		return CB_FAIL(err, CB_ELIMIT, path, NULL,
			       "the central directory is %llu bytes, over the limit of %llu",
			       (unsigned long long)loc->size,
			       (unsigned long long)CB_PTZIP_MAX_CD_BYTES);
	if (__builtin_mul_overflow(loc->entries, (uint64_t)CD_ENTRY_SIZE, &min_size) ||
	    min_size > loc->size)
		return CB_FAIL(err, CB_EFORMAT, path, NULL,
			       "the end record claims %llu records, more than a central directory "
			       "of %llu bytes can hold",
			       (unsigned long long)loc->entries, (unsigned long long)loc->size);
	if (__builtin_add_overflow(loc->offset, loc->size, &end) || end > loc->end_limit)
		return CB_FAIL(err, CB_EFORMAT, path, NULL,
			       "the central directory (bytes %llu..+%llu) runs past the end "
			       "records at byte %llu",
			       (unsigned long long)loc->offset, (unsigned long long)loc->size,
			       (unsigned long long)loc->end_limit);
	return CB_OK;
}

/* ------------------------------------------------------------ central directory */

/* One central-directory entry, with ZIP64 values resolved. */
struct cd_entry {
	uint16_t flags, method, name_len;
	uint32_t crc32;
	uint64_t csize, usize, header_offset;
	const uint8_t *name;
	size_t entry_len;
};

/* Replaces the saturated 32-bit fields by their ZIP64 extra values, which
 * come in the fixed order usize, csize, header offset. */
static int apply_zip64_extra(const uint8_t *extra, size_t len, struct cd_entry *e, const char *path,
			     uint64_t entry_offset, struct cb_error *err)
{
	char where[64];
#define EXTRA_FAIL(...)                                 \
	(byte_where(where, sizeof where, entry_offset), \
	 CB_FAIL(err, CB_EFORMAT, path, where, __VA_ARGS__))
	uint64_t *fields[3] = {&e->usize, &e->csize, &e->header_offset};
	size_t p = 0;
	bool found = false;
	while (p + 4 <= len) {
		uint16_t id = le16(extra + p), size = le16(extra + p + 2);
		if (size > len - p - 4)
			return EXTRA_FAIL("an extra field runs past its entry");
		if (id == EXTRA_ZIP64 && !found) {
			found = true;
			size_t q = 0;
			for (int k = 0; k < 3; k++) {
				if (*fields[k] != 0xFFFFFFFFu)
					continue;
				if (q + 8 > size)
					return EXTRA_FAIL("the ZIP64 extra field is too short for "
							  "the saturated sizes");
				*fields[k] = le64(extra + p + 4 + q);
				q += 8;
			}
		}
		p += 4u + size;
	}
	for (int k = 0; k < 3; k++)
		if (*fields[k] == 0xFFFFFFFFu && !found)
			return EXTRA_FAIL("a size or offset defers to a ZIP64 extra field, and "
					  "there is none");
	return CB_OK;
#undef EXTRA_FAIL
}

/* The error of an entry that parse_cd_entry refused, named by its byte;
 * formatted only on failure (snprintf per entry was a tenth of a parse). */
#define CD_FAIL(code, ...)                                 \
	(byte_where(where, sizeof where, cd_offset + pos), \
	 CB_FAIL(err, code, path, where, __VA_ARGS__))

static int parse_cd_entry(const uint8_t *cd, uint64_t cd_size, uint64_t pos, uint64_t cd_offset,
			  struct cd_entry *e, const char *path, struct cb_error *err)
{
	char where[64];
	if (cd_size - pos < CD_ENTRY_SIZE || le32(cd + pos) != SIG_CENTRAL)
		return CD_FAIL(CB_EFORMAT, "expected a central-directory entry (PK\\1\\2)");
	const uint8_t *p = cd + pos;
	e->flags = le16(p + 8);
	e->method = le16(p + 10);
	e->crc32 = le32(p + 16);
	e->csize = le32(p + 20);
	e->usize = le32(p + 24);
	e->name_len = le16(p + 28);
	uint16_t extra_len = le16(p + 30), comment_len = le16(p + 32), disk = le16(p + 34);
	e->header_offset = le32(p + 42);
	e->name = p + CD_ENTRY_SIZE;
	e->entry_len = CD_ENTRY_SIZE + (size_t)e->name_len + extra_len + comment_len;
	if (e->entry_len > cd_size - pos)
		return CD_FAIL(CB_EFORMAT,
			       "a central-directory entry runs past the directory's end");
	if (e->name_len == 0 || memchr(e->name, '\0', e->name_len))
		return CD_FAIL(CB_EFORMAT, "a record name is empty or holds a NUL byte");
	if (disk != 0 && disk != 0xFFFFu)
		return CD_FAIL(CB_EUNSUPPORTED,
			       "multi-disk (spanned) zip archives are not supported");
	return apply_zip64_extra(e->name + e->name_len, extra_len, e, path, cd_offset + pos, err);
}
#undef CD_FAIL

/* The rules a record must meet before its bytes can be used in place.
 * The record's name is formatted into the error's place only on failure,
 * as in every per-record check below (formatting it for each of tens of
 * thousands of records was a tenth of a parse). */
static int check_entry(const struct cd_entry *e, const char *name, const char *path,
		       struct cb_error *err)
{
	char where[256];
	if ((e->flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) || e->method == METHOD_AES) {
		record_where(where, sizeof where, name);
		return CB_FAIL(err, CB_EUNSUPPORTED, path, where,
			       "the record is encrypted; checkpoints are never encrypted");
	}
	if (e->method != METHOD_STORED) {
		record_where(where, sizeof where, name);
		return CB_FAIL(err, CB_EUNSUPPORTED, path, where,
			       "the record is compressed (method %u); only stored records can be "
			       "read in place (re-save the checkpoint with torch.save)",
			       e->method);
	}
	if (e->csize != e->usize) {
		record_where(where, sizeof where, name);
		return CB_FAIL(err, CB_EFORMAT, path, where,
			       "a stored record's compressed size %llu differs from its size %llu",
			       (unsigned long long)e->csize, (unsigned long long)e->usize);
	}
	return CB_OK;
}

/* ------------------------------------------------------------ local headers */

/* The bytes a record's local header needs read: its fixed part and name,
 * which must lie in the records' area. */
static int header_extent(const char *path, const struct cb_ptzip_record *rec, uint64_t cd_offset,
			 uint64_t *end, struct cb_error *err)
{
	if (!__builtin_add_overflow(rec->header_offset, (uint64_t)LOCAL_HEADER_SIZE + rec->name_len,
				    end) &&
	    *end <= cd_offset)
		return CB_OK;
	char where[256];
	record_where(where, sizeof where, rec->name);
	return CB_FAIL(err, CB_EFORMAT, path, where,
		       "the local header at byte %llu lies outside the records' area",
		       (unsigned long long)rec->header_offset);
}

/* Finds the record's data from its local header `hdr` (already read): the
 * local name and extra lengths differ from the central directory's (torch
 * pads the local extra field so that data is 64-byte aligned). */
static int parse_local_header(const char *path, struct cb_ptzip_record *rec, const uint8_t *hdr,
			      uint64_t cd_offset, struct cb_error *err)
{
	char where[256];
#define LOCAL_FAIL(code, ...) \
	(record_where(where, sizeof where, rec->name), CB_FAIL(err, code, path, where, __VA_ARGS__))
	size_t name_len = rec->name_len;
	uint64_t end;
	if (le32(hdr) != SIG_LOCAL)
		return LOCAL_FAIL(CB_EFORMAT, "no local header (PK\\3\\4) at byte %llu",
				  (unsigned long long)rec->header_offset);
	uint16_t flags = le16(hdr + 6), method = le16(hdr + 8);
	if ((flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION)) || method != METHOD_STORED)
		return LOCAL_FAIL(CB_EUNSUPPORTED, "the local header says the record is %s",
				  method != METHOD_STORED ? "compressed" : "encrypted");
	uint16_t local_name = le16(hdr + 26), local_extra = le16(hdr + 28);
	if (local_name != name_len || memcmp(hdr + LOCAL_HEADER_SIZE, rec->name, name_len))
		return LOCAL_FAIL(CB_EFORMAT, "the local header names a different record");
	rec->data_offset = rec->header_offset + LOCAL_HEADER_SIZE + name_len + local_extra;
	if (__builtin_add_overflow(rec->data_offset, rec->size, &end) || end > cd_offset)
		return LOCAL_FAIL(CB_EFORMAT,
				  "the record's data (bytes %llu..+%llu) runs past the records' "
				  "area, which ends at byte %llu",
				  (unsigned long long)rec->data_offset,
				  (unsigned long long)rec->size, (unsigned long long)cd_offset);
	return CB_OK;
#undef LOCAL_FAIL
}

static int compare_by_header(const void *a, const void *b)
{
	const struct cb_ptzip_record *x = a, *y = b;
	return x->header_offset < y->header_offset ? -1 : x->header_offset > y->header_offset;
}

/* Reads every local header, in file order, taking neighbours that lie
 * within HEADER_WINDOW bytes in one pread: a state dict of small tensors
 * has thousands of headers a few hundred bytes apart, while the headers of
 * big tensors are each read alone (nothing of their data is read). Leaves
 * the records in file order, which check_overlaps relies on. */
#define HEADER_WINDOW (64u << 10)

static int read_local_headers(int fd, struct cb_ptzip *zip, uint64_t cd_offset,
			      struct cb_error *err)
{
	/* torch writes the directory in file order: then sorting is skipped
	 * (a merge sort still compares n log n / 2 times on sorted input). */
	bool in_order = true;
	for (size_t i = 1; i < zip->n_records && in_order; i++)
		in_order = zip->records[i - 1].header_offset <= zip->records[i].header_offset;
	if (!in_order)
		qsort(zip->records, zip->n_records, sizeof *zip->records, compare_by_header);
	uint8_t *buf = malloc(HEADER_WINDOW + LOCAL_HEADER_SIZE + 65536);
	if (!buf)
		return CB_FAIL(err, CB_ENOMEM, zip->path, NULL, "out of memory");
	int rc = CB_OK;
	for (size_t i = 0, j; i < zip->n_records && rc == CB_OK; i = j) {
		uint64_t start = zip->records[i].header_offset, end = start, rec_end;
		for (j = i; j < zip->n_records; j++) {
			if ((rc = header_extent(zip->path, &zip->records[j], cd_offset, &rec_end,
						err)) != CB_OK)
				break;
			if (j > i && rec_end - start > HEADER_WINDOW)
				break;
			end = rec_end > end ? rec_end : end;
		}
		if (rc == CB_OK)
			rc = cb_pread_full(fd, buf, (size_t)(end - start), start, zip->path, err);
		for (size_t k = i; k < j && rc == CB_OK; k++)
			rc = parse_local_header(zip->path, &zip->records[k],
						buf + (zip->records[k].header_offset - start),
						cd_offset, err);
	}
	free(buf);
	return rc;
}

static int compare_by_rel(const void *a, const void *b)
{
	const struct cb_ptzip_record *x = a, *y = b;
	return strcmp(x->rel, y->rel);
}

/* Records must not share bytes: a record's header and data end before the
 * next record's header starts. (Two names for one storage would let a
 * crafted file alias tensors that torch would never alias.) The records
 * arrive in file order (read_local_headers) and leave sorted by name. */
static int check_overlaps(struct cb_ptzip *zip, struct cb_error *err)
{
	for (size_t i = 1; i < zip->n_records; i++) {
		const struct cb_ptzip_record *a = &zip->records[i - 1], *b = &zip->records[i];
		if (a->data_offset + a->size > b->header_offset) {
			char where[256];
			record_where(where, sizeof where, b->name);
			return CB_FAIL(err, CB_EFORMAT, zip->path, where,
				       "the record overlaps record \"%.200s\" (bytes %llu..%llu)",
				       a->name, (unsigned long long)a->header_offset,
				       (unsigned long long)(a->data_offset + a->size));
		}
	}
	qsort(zip->records, zip->n_records, sizeof *zip->records, compare_by_rel);
	for (size_t i = 1; i < zip->n_records; i++) {
		if (strcmp(zip->records[i - 1].rel, zip->records[i].rel) == 0) {
			char where[256];
			record_where(where, sizeof where, zip->records[i].name);
			return CB_FAIL(err, CB_EFORMAT, zip->path, where,
				       "two records have this name");
		}
	}
	return CB_OK;
}

/* ------------------------------------------------------------ storage index */

/* A storage key as torch writes it: the decimal of an index below `max`,
 * without sign or leading zeros (so that one key has one spelling). */
static bool canonical_index(const char *s, size_t max, size_t *out)
{
	if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] != '\0'))
		return false;
	size_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (size_t)(*s - '0');
		if (v >= max) /* max <= CB_PK_MAX_RECORDS: no overflow before this */
			return false;
	}
	*out = v;
	return true;
}

/* data_index[k] is the position (in the records, sorted by name) of the
 * record "data/<k>", or UINT32_MAX: storage lookups by torch's keys
 * "0".."n-1" then need neither a formatted name nor a binary search.
 * Names are unique (check_overlaps), so each slot is written at most once. */
static int index_storages(struct cb_ptzip *zip, struct cb_error *err)
{
	size_t n = zip->n_records;
	zip->data_index = cb_bulk_malloc((n ? n : 1) * sizeof *zip->data_index);
	if (!zip->data_index)
		return CB_FAIL(err, CB_ENOMEM, zip->path, NULL, "out of memory");
	memset(zip->data_index, 0xFF, n * sizeof *zip->data_index);
	for (size_t i = 0; i < n; i++) {
		size_t k;
		const char *rel = zip->records[i].rel;
		if (strncmp(rel, "data/", 5) == 0 && canonical_index(rel + 5, n, &k))
			zip->data_index[k] = (uint32_t)i;
	}
	return CB_OK;
}

/* ------------------------------------------------------------ the archive */

/* The prefix is the first entry's name up to its first '/' (as torch's
 * PyTorchStreamReader takes it); every other entry must live under it. */
static int take_prefix(struct cb_ptzip *zip, const char *first, struct cb_error *err)
{
	const char *slash = strchr(first, '/');
	if (!slash || slash == first) {
		char where[256];
		record_where(where, sizeof where, first);
		return CB_FAIL(err, CB_EFORMAT, zip->path, where,
			       "the first record is not under an archive prefix (\"<name>/...\"), "
			       "so this is not a torch.save archive");
	}
	zip->prefix = strndup(first, (size_t)(slash - first));
	if (!zip->prefix)
		return CB_FAIL(err, CB_ENOMEM, zip->path, NULL, "out of memory");
	zip->prefix_len = (size_t)(slash - first);
	return CB_OK;
}

/* The part of `name` after "<prefix>/", or NULL when it is not under it. */
static const char *under_prefix(const struct cb_ptzip *zip, const char *name)
{
	size_t plen = zip->prefix_len;
	return strncmp(name, zip->prefix, plen) == 0 && name[plen] == '/' ? name + plen + 1 : NULL;
}

/* Adds one entry (already checked) as a record; directory entries that
 * foreign zip tools add ("prefix/", "prefix/data/") are skipped. */
static int add_record(struct cb_ptzip *zip, const struct cd_entry *e, char *name,
		      struct cb_error *err)
{
	const char *rel = under_prefix(zip, name);
	char where[256];
	if (!rel) {
		record_where(where, sizeof where, name);
		return CB_FAIL(err, CB_EFORMAT, zip->path, where,
			       "the record is not under the archive prefix \"%.200s/\"",
			       zip->prefix);
	}
	if (name[e->name_len - 1] == '/') {
		if (e->usize == 0)
			return CB_OK;
		record_where(where, sizeof where, name);
		return CB_FAIL(err, CB_EFORMAT, zip->path, where, "a directory entry holds data");
	}
	zip->records[zip->n_records++] = (struct cb_ptzip_record){
		.name = name,
		.rel = rel,
		.name_len = e->name_len,
		.header_offset = e->header_offset,
		.size = e->usize,
		.crc32 = e->crc32,
	};
	return CB_OK;
}

/* torch.load(weights_only=True) refuses TorchScript archives, whose loading
 * runs the code they carry (CVE-2025-32434); they are recognised by name
 * before any record is judged, so the refusal says what the file is. */
static bool is_torchscript(const struct cb_ptzip *zip, const char *name)
{
	const char *rel = under_prefix(zip, name);
	return rel && (strcmp(rel, "constants.pkl") == 0 || strncmp(rel, "code/", 5) == 0);
}

static int refuse_torchscript(const struct cb_ptzip *zip, const char *name, struct cb_error *err)
{
	char where[256];
	record_where(where, sizeof where, name);
	return CB_FAIL(err, CB_EUNSAFE, zip->path, where,
		       "a TorchScript archive, not a torch.save checkpoint: refused "
		       "(loading one runs the code it carries)");
}

/* Two passes over the directory, keeping the order in which problems are
 * reported: first every entry's layout (and the first TorchScript name,
 * refused only once every entry parsed), then each entry's rules, in
 * order. The second pass parses the entries again rather than keeping
 * them: parsing is cheap, and an array of them was as big as the
 * directory, all of it fresh memory to fault in. */
static int parse_directory(int fd, struct cb_ptzip *zip, const uint8_t *cd,
			   const struct cd_location *loc, struct cb_error *err)
{
	size_t n = (size_t)loc->entries;
	zip->records = cb_bulk_malloc(n * sizeof *zip->records);
	/* Names and their NULs fit in the directory's own size. */
	zip->names = cb_bulk_malloc((size_t)loc->size + 1);
	if (!zip->records || !zip->names)
		return CB_FAIL(err, CB_ENOMEM, zip->path, NULL, "out of memory");
	const char *torchscript = NULL;
	size_t names_used = 0;
	uint64_t pos = 0;
	struct cd_entry e;
	int rc = CB_OK;
	for (size_t i = 0; i < n && rc == CB_OK; i++) {
		if ((rc = parse_cd_entry(cd, loc->size, pos, loc->offset, &e, zip->path, err)) !=
		    CB_OK)
			break;
		char *name = zip->names + names_used;
		memcpy(name, e.name, e.name_len);
		name[e.name_len] = '\0';
		names_used += (size_t)e.name_len + 1;
		pos += e.entry_len;
		if (i == 0)
			rc = take_prefix(zip, name, err);
		if (rc == CB_OK && !torchscript && is_torchscript(zip, name))
			torchscript = name;
	}
	if (rc == CB_OK && torchscript)
		rc = refuse_torchscript(zip, torchscript, err);
	names_used = 0;
	pos = 0;
	for (size_t i = 0; i < n && rc == CB_OK; i++) {
		/* Parsed without error in the first pass, so again now. */
		if ((rc = parse_cd_entry(cd, loc->size, pos, loc->offset, &e, zip->path, err)) !=
		    CB_OK)
			break;
		char *name = zip->names + names_used;
		names_used += (size_t)e.name_len + 1;
		pos += e.entry_len;
		if ((rc = check_entry(&e, name, zip->path, err)) == CB_OK)
			rc = add_record(zip, &e, name, err);
	}
	if (rc == CB_OK)
		rc = read_local_headers(fd, zip, loc->offset, err);
	if (rc == CB_OK)
		rc = check_overlaps(zip, err);
	return rc != CB_OK ? rc : index_storages(zip, err);
}

void cb_ptzip_free(struct cb_ptzip *zip)
{
	if (!zip)
		return;
	free(zip->path);
	free(zip->prefix);
	free(zip->records);
	free(zip->names);
	free(zip->data_index);
	free(zip);
}

int cb_ptzip_open_fd(int fd, const char *path, uint64_t file_size, struct cb_ptzip **out,
		     struct cb_error *err)
{
	*out = NULL;
	if (file_size < EOCD_SIZE)
		return CB_FAIL(err, CB_EFORMAT, path, NULL,
			       "the file is %llu bytes, too short to be a zip archive",
			       (unsigned long long)file_size);
	struct cb_ptzip *zip = calloc(1, sizeof *zip);
	if (!zip || !(zip->path = strdup(path))) {
		cb_ptzip_free(zip);
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	}
	zip->file_size = file_size;
	struct cd_location loc = {0};
	uint8_t *cd = NULL;
	int rc = locate_central_directory(fd, path, file_size, &loc, err);
	if (rc == CB_OK)
		rc = check_cd_bounds(path, &loc, err);
	if (rc == CB_OK && !(cd = cb_bulk_malloc((size_t)loc.size)))
		rc = CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	if (rc == CB_OK)
		rc = cb_pread_full(fd, cd, (size_t)loc.size, loc.offset, path, err);
	if (rc == CB_OK) {
		zip->cd_offset = loc.offset;
		zip->cd_size = loc.size;
		rc = parse_directory(fd, zip, cd, &loc, err);
	}
	free(cd);
	if (rc != CB_OK) {
		cb_ptzip_free(zip);
		return rc;
	}
	*out = zip;
	return CB_OK;
}

int cb_ptzip_open(const char *path, struct cb_ptzip **out, struct cb_error *err)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return CB_FAIL_ERRNO(err, errno, path, "cannot open");
	struct stat st;
	int rc = fstat(fd, &st) == 0 ? CB_OK : CB_FAIL_ERRNO(err, errno, path, "cannot stat");
	if (rc == CB_OK)
		rc = cb_ptzip_open_fd(fd, path, (uint64_t)st.st_size, out, err);
	close(fd);
	return rc;
}

const struct cb_ptzip_record *cb_ptzip_find(const struct cb_ptzip *zip, const char *rel)
{
	struct cb_ptzip_record key = {.rel = rel};
	return bsearch(&key, zip->records, zip->n_records, sizeof key, compare_by_rel);
}

/* "data/" + key against a record's rel, byte-wise, as strcmp would compare
 * the joined name. */
static int compare_data_key(const void *k, const void *r)
{
	const struct cb_ptzip_record *rec = r;
	int c = strncmp("data/", rec->rel, 5);
	return c ? c : strcmp(k, rec->rel + 5);
}

const struct cb_ptzip_record *cb_ptzip_find_data(const struct cb_ptzip *zip, const char *key)
{
	size_t k;
	if (canonical_index(key, zip->n_records, &k))
		return zip->data_index[k] == UINT32_MAX ? NULL : &zip->records[zip->data_index[k]];
	return bsearch(key, zip->records, zip->n_records, sizeof *zip->records, compare_data_key);
}

int cb_ptzip_read(int fd, const struct cb_ptzip *zip, const struct cb_ptzip_record *rec,
		  size_t max_size, uint8_t **buf_out, struct cb_error *err)
{
	*buf_out = NULL;
	if (rec->size > max_size) {
		char where[256];
		record_where(where, sizeof where, rec->name);
		return CB_FAIL(err, CB_ELIMIT, zip->path, where,
			       "the record is %llu bytes, over the limit of %zu",
			       (unsigned long long)rec->size, max_size);
	}
	uint8_t *buf = cb_bulk_malloc((size_t)rec->size + 1);
	if (!buf)
		return CB_FAIL(err, CB_ENOMEM, zip->path, NULL, "out of memory");
	int rc = cb_pread_full(fd, buf, (size_t)rec->size, rec->data_offset, zip->path, err);
	if (rc != CB_OK) {
		free(buf);
		return rc;
	}
	buf[rec->size] = '\0';
	*buf_out = buf;
	return CB_OK;
}

/* Rounds a big request up to whole huge pages, aligned to them, so that the
 * kernel can back it with transparent huge pages: filling a fresh buffer of
 * a few MiB otherwise takes a page fault per 4 KiB, and page faults were a
 * fifth of a parse. Below BULK_MIN the rounding would waste more than the
 * faults cost. The result is ordinary malloc memory: free() frees it. */
#define BULK_HUGE ((size_t)2 << 20)
#define BULK_MIN ((size_t)512 << 10)

void *cb_bulk_malloc(size_t size)
{
	if (size < BULK_MIN)
		return malloc(size ? size : 1);
	if (size > SIZE_MAX - BULK_HUGE)
		return NULL;
	size_t rounded = (size + BULK_HUGE - 1) & ~(BULK_HUGE - 1);
	void *p = NULL;
	if (posix_memalign(&p, BULK_HUGE, rounded) != 0)
		return NULL;
#ifdef MADV_HUGEPAGE
	(void)madvise(p, rounded, MADV_HUGEPAGE); /* a hint; fine to fail */
#endif
	return p;
}
