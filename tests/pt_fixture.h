/* Test fixtures for the PyTorch readers: a zip builder that lays records out
 * as torch's miniz writer does (FB-padded local headers so data is 64-byte
 * aligned, data descriptors, ZIP64 end record + locator + end record), with
 * knobs to break it; a growable byte buffer; temp-dir helpers; and the
 * 229-byte data.pkl of torch 1.13's nn.Linear(3, 1, bias=False) example.
 * Header-only: each test program includes it once. */
#ifndef CB_PT_FIXTURE_H
#define CB_PT_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static inline void buf_put(struct buf *b, const void *data, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			abort();
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
}

static inline void buf_u8(struct buf *b, unsigned v)
{
	uint8_t x = (uint8_t)v;
	buf_put(b, &x, 1);
}

static inline void buf_le(struct buf *b, uint64_t v, int n)
{
	for (int k = 0; k < n; k++) /* n may exceed 8: zero bytes then */
		buf_u8(b, k < 8 ? (unsigned)(v >> (8 * k)) & 0xFF : 0);
}

static inline void buf_str(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

static inline void buf_free(struct buf *b)
{
	free(b->p);
	*b = (struct buf){0};
}

static inline void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int k = 0; k < n; k++)
		p[k] = (uint8_t)(v >> (8 * k));
}

/* ------------------------------------------------------------ zip */

struct zrec {
	const char *name;
	const void *data;
	size_t len;
	uint16_t method; /* written into both headers (0 = stored) */
	uint16_t flags;  /* extra flag bits (1 = encrypted) */
};

struct zlayout {
	size_t header[16], data[16], cd_entry[16];
	size_t cd, cd_size, z64, locator, eocd;
};

/* Builds an archive of `n` (<= 16) records. zip64_extra: the central
 * directory saturates sizes and offsets and carries them in ZIP64 extras. */
static inline void zip_build(struct buf *out, const struct zrec *recs, size_t n, bool zip64_extra,
			     struct zlayout *lay)
{
	memset(lay, 0, sizeof *lay);
	for (size_t i = 0; i < n; i++) {
		const struct zrec *r = &recs[i];
		size_t name_len = strlen(r->name);
		size_t start = out->len + 30 + name_len + 4;
		size_t pad = (64 - start % 64) % 64;
		lay->header[i] = out->len;
		buf_le(out, 0x04034b50, 4);
		buf_le(out, 0, 2);
		buf_le(out, (r->len ? 0x0808 : 0x0800) | r->flags, 2);
		buf_le(out, r->method, 2);
		buf_le(out, 0, 4);  /* time, date */
		buf_le(out, 0, 12); /* crc, sizes: in the descriptor */
		buf_le(out, name_len, 2);
		buf_le(out, 4 + pad, 2);
		buf_str(out, r->name);
		buf_str(out, "FB");
		buf_le(out, pad, 2);
		for (size_t k = 0; k < pad; k++)
			buf_u8(out, 'Z');
		lay->data[i] = out->len;
		buf_put(out, r->data, r->len);
		if (r->len) {
			buf_le(out, 0x08074b50, 4);
			buf_le(out, crc32(0, r->data, (uInt)r->len), 4);
			buf_le(out, r->len, 4);
			buf_le(out, r->len, 4);
		}
	}
	lay->cd = out->len;
	for (size_t i = 0; i < n; i++) {
		const struct zrec *r = &recs[i];
		lay->cd_entry[i] = out->len;
		buf_le(out, 0x02014b50, 4);
		buf_le(out, 0, 4); /* made by, needed */
		buf_le(out, (r->len ? 0x0808 : 0x0800) | r->flags, 2);
		buf_le(out, r->method, 2);
		buf_le(out, 0, 4);
		buf_le(out, crc32(0, r->data, (uInt)r->len), 4);
		buf_le(out, zip64_extra ? 0xFFFFFFFFu : r->len, 4);
		buf_le(out, zip64_extra ? 0xFFFFFFFFu : r->len, 4);
		buf_le(out, strlen(r->name), 2);
		buf_le(out, zip64_extra ? 28 : 0, 2);
		buf_le(out, 0, 2); /* comment */
		buf_le(out, 0, 2); /* disk */
		buf_le(out, 0, 2); /* internal attributes */
		buf_le(out, 0, 4); /* external attributes */
		buf_le(out, zip64_extra ? 0xFFFFFFFFu : lay->header[i], 4);
		buf_str(out, r->name);
		if (zip64_extra) {
			buf_le(out, 1, 2);
			buf_le(out, 24, 2);
			buf_le(out, r->len, 8);
			buf_le(out, r->len, 8);
			buf_le(out, lay->header[i], 8);
		}
	}
	lay->cd_size = out->len - lay->cd;
	lay->z64 = out->len;
	buf_le(out, 0x06064b50, 4);
	buf_le(out, 44, 8);
	buf_le(out, 0x031e, 2);
	buf_le(out, 0x2d, 2);
	buf_le(out, 0, 8); /* disks */
	buf_le(out, n, 8);
	buf_le(out, n, 8);
	buf_le(out, lay->cd_size, 8);
	buf_le(out, lay->cd, 8);
	lay->locator = out->len;
	buf_le(out, 0x07064b50, 4);
	buf_le(out, 0, 4);
	buf_le(out, lay->z64, 8);
	buf_le(out, 1, 4);
	lay->eocd = out->len;
	buf_le(out, 0x06054b50, 4);
	buf_le(out, 0, 4);
	buf_le(out, n, 2);
	buf_le(out, n, 2);
	buf_le(out, lay->cd_size, 4);
	buf_le(out, lay->cd, 4);
	buf_le(out, 0, 2);
}

/* ------------------------------------------------------------ files */

static char fixture_dir[64];

static inline const char *fixture_mkdir(void)
{
	snprintf(fixture_dir, sizeof fixture_dir, "/tmp/cbpt-test-XXXXXX");
	if (!mkdtemp(fixture_dir))
		abort();
	return fixture_dir;
}

/* Writes a file in the fixture directory; returns its path (static). */
static inline const char *fixture_write(const char *name, const void *data, size_t len)
{
	static char path[256];
	snprintf(path, sizeof path, "%s/%s", fixture_dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
		abort();
	return path;
}

static inline void fixture_cleanup(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", fixture_dir);
	if (fixture_dir[0] && system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", fixture_dir);
}

/* ------------------------------------------------------------ building pickles */

static inline void op(struct buf *b, unsigned code)
{
	buf_u8(b, code);
}

static inline void op_str(struct buf *b, const char *s)
{
	op(b, 'X');
	buf_le(b, strlen(s), 4);
	buf_str(b, s);
}

static inline void op_global(struct buf *b, const char *module, const char *name)
{
	op(b, 'c');
	buf_str(b, module);
	buf_u8(b, '\n');
	buf_str(b, name);
	buf_u8(b, '\n');
}

/* An int as Python's pickler writes it. */
static inline void op_int(struct buf *b, int64_t v)
{
	if (v >= 0 && v < 256) {
		op(b, 'K');
		buf_u8(b, (unsigned)v);
	} else if (v >= INT32_MIN && v <= INT32_MAX) {
		op(b, 'J');
		buf_le(b, (uint64_t)v, 4);
	} else {
		op(b, 0x8a);
		buf_u8(b, 8);
		buf_le(b, (uint64_t)v, 8);
	}
}

static inline void op_int_tuple(struct buf *b, const int64_t *v, int n)
{
	op(b, '(');
	for (int k = 0; k < n; k++)
		op_int(b, v[k]);
	op(b, 't');
}

struct tspec {
	const char *storage_class; /* "FloatStorage", ... */
	const char *key;
	int64_t numel; /* of the storage */
	int64_t offset;
	int rank;
	int64_t size[4], stride[4];
};

/* _rebuild_tensor_v2((storage pid), offset, size, stride, False, OrderedDict()) */
static inline void op_tensor(struct buf *b, const struct tspec *t)
{
	op_global(b, "torch._utils", "_rebuild_tensor_v2");
	op(b, '(');
	op(b, '(');
	op_str(b, "storage");
	op_global(b, "torch", t->storage_class);
	op_str(b, t->key);
	op_str(b, "cpu");
	op_int(b, t->numel);
	op(b, 't');
	op(b, 'Q');
	op_int(b, t->offset);
	op_int_tuple(b, t->size, t->rank);
	op_int_tuple(b, t->stride, t->rank);
	op(b, 0x89);
	op_global(b, "collections", "OrderedDict");
	op(b, ')');
	op(b, 'R');
	op(b, 't');
	op(b, 'R');
}

/* {name: tensor} then STOP */
static inline void state_dict(struct buf *b, const char *name, const struct tspec *t)
{
	op(b, 0x80);
	op(b, 2);
	op(b, '}');
	op_str(b, name);
	op_tensor(b, t);
	op(b, 's');
	op(b, '.');
}

/* ------------------------------------------------------------ golden */

/* torch.save(nn.Linear(3, 1, bias=False).state_dict()) with weight
 * [[1, 2, 3]], torch 1.13: data.pkl (docs/datasets-and-method.md §4.2). */
static const uint8_t linear_pkl[229] = {
	0x80, 0x02, 0x63, 0x63, 0x6f, 0x6c, 0x6c, 0x65, 0x63, 0x74, 0x69, 0x6f, 0x6e, 0x73, 0x0a,
	0x4f, 0x72, 0x64, 0x65, 0x72, 0x65, 0x64, 0x44, 0x69, 0x63, 0x74, 0x0a, 0x71, 0x00, 0x29,
	0x52, 0x71, 0x01, 0x58, 0x06, 0x00, 0x00, 0x00, 0x77, 0x65, 0x69, 0x67, 0x68, 0x74, 0x71,
	0x02, 0x63, 0x74, 0x6f, 0x72, 0x63, 0x68, 0x2e, 0x5f, 0x75, 0x74, 0x69, 0x6c, 0x73, 0x0a,
	0x5f, 0x72, 0x65, 0x62, 0x75, 0x69, 0x6c, 0x64, 0x5f, 0x74, 0x65, 0x6e, 0x73, 0x6f, 0x72,
	0x5f, 0x76, 0x32, 0x0a, 0x71, 0x03, 0x28, 0x28, 0x58, 0x07, 0x00, 0x00, 0x00, 0x73, 0x74,
	0x6f, 0x72, 0x61, 0x67, 0x65, 0x71, 0x04, 0x63, 0x74, 0x6f, 0x72, 0x63, 0x68, 0x0a, 0x46,
	0x6c, 0x6f, 0x61, 0x74, 0x53, 0x74, 0x6f, 0x72, 0x61, 0x67, 0x65, 0x0a, 0x71, 0x05, 0x58,
	0x01, 0x00, 0x00, 0x00, 0x30, 0x71, 0x06, 0x58, 0x03, 0x00, 0x00, 0x00, 0x63, 0x70, 0x75,
	0x71, 0x07, 0x4b, 0x03, 0x74, 0x71, 0x08, 0x51, 0x4b, 0x00, 0x4b, 0x01, 0x4b, 0x03, 0x86,
	0x71, 0x09, 0x4b, 0x03, 0x4b, 0x01, 0x86, 0x71, 0x0a, 0x89, 0x68, 0x00, 0x29, 0x52, 0x71,
	0x0b, 0x74, 0x71, 0x0c, 0x52, 0x71, 0x0d, 0x73, 0x7d, 0x71, 0x0e, 0x58, 0x09, 0x00, 0x00,
	0x00, 0x5f, 0x6d, 0x65, 0x74, 0x61, 0x64, 0x61, 0x74, 0x61, 0x71, 0x0f, 0x68, 0x00, 0x29,
	0x52, 0x71, 0x10, 0x58, 0x00, 0x00, 0x00, 0x00, 0x71, 0x11, 0x7d, 0x71, 0x12, 0x58, 0x07,
	0x00, 0x00, 0x00, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x71, 0x13, 0x4b, 0x01, 0x73,
	0x73, 0x73, 0x62, 0x2e,
};

/* Its storage: 1.0, 2.0, 3.0 as little-endian float32. */
static const uint8_t linear_data[12] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40};

/* The whole lin.pt as torch 1.13 lays it out (799 bytes). */
static inline void linear_archive(struct buf *out, struct zlayout *lay)
{
	const struct zrec recs[] = {
		{"lin/data.pkl", linear_pkl, sizeof linear_pkl, 0, 0},
		{"lin/data/0", linear_data, sizeof linear_data, 0, 0},
		{"lin/version", "3\n", 2, 0, 0},
	};
	zip_build(out, recs, 3, false, lay);
}

#endif
