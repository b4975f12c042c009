/* The zip writer and the .pt writer: torch 1.13's own nn.Linear file
 * reproduced byte for byte where the reference gives the bytes, 64-byte
 * alignment and CRC-32 of every record, ZIP64 fields (forced by a lowered
 * threshold, and for real in a sparse file over 4 GiB), archive names. */
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "fileio.h"
#include "pt_write.h"
#include "ptzip_write.h"

static char tmpdir[] = "/tmp/test_ptzip_write.XXXXXX";

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	char *buf = NULL;
	struct cb_error err = CB_ERROR_INIT;
	if (cb_read_small_file(path, 1 << 24, &buf, len, &err) != CB_OK)
		return NULL;
	return (uint8_t *)buf;
}

/* Walks the central directory through the end records as a reader would,
 * and checks each record: local header name and flags, data 64-aligned,
 * CRC-32 of the data equal to the directory's and the descriptor's. */
static size_t check_archive(const uint8_t *f, size_t len, const char *prefix)
{
	CHECK(len >= 98);
	const uint8_t *eocd = f + len - 22;
	CHECK_EQ_U64(rd32(eocd), 0x06054b50);
	const uint8_t *loc = eocd - 20;
	CHECK_EQ_U64(rd32(loc), 0x07064b50);
	uint64_t z64 = rd64(loc + 8);
	CHECK_EQ_U64(z64, len - 98);
	const uint8_t *ze = f + z64;
	CHECK_EQ_U64(rd32(ze), 0x06064b50);
	uint64_t n = rd64(ze + 32), cd_size = rd64(ze + 40), cd_off = rd64(ze + 48);
	CHECK_EQ_U64(cd_off + cd_size, z64);
	const uint8_t *p = f + cd_off;
	for (uint64_t i = 0; i < n; i++) {
		CHECK_EQ_U64(rd32(p), 0x02014b50);
		uint32_t crc = rd32(p + 16);
		uint64_t size = rd32(p + 24), lho = rd32(p + 42);
		uint16_t name_len = rd16(p + 28), extra_len = rd16(p + 30);
		const uint8_t *x = p + 46 + name_len;
		if (extra_len) {
			CHECK_EQ_U64(rd16(x), 1);
			x += 4;
			if (size == 0xFFFFFFFF) {
				size = rd64(x);
				CHECK_EQ_U64(rd64(x + 8), size);
				x += 16;
			}
			if (lho == 0xFFFFFFFF)
				lho = rd64(x);
		}
		CHECK(strncmp((const char *)p + 46, prefix, strlen(prefix)) == 0);
		const uint8_t *lh = f + lho;
		CHECK_EQ_U64(rd32(lh), 0x04034b50);
		CHECK_EQ_U64(rd16(lh + 6), size ? 0x0808 : 0x0800);
		CHECK(memcmp(lh + 30, p + 46, name_len) == 0);
		uint64_t data = lho + 30 + rd16(lh + 26) + rd16(lh + 28);
		CHECK_EQ_U64(data % 64, 0);
		if (data + size <= len) {
			CHECK_EQ_U64(crc32(0, f + data, (uInt)size), crc);
			if (size) {
				CHECK_EQ_U64(rd32(f + data + size), 0x08074b50);
				CHECK_EQ_U64(rd32(f + data + size + 4), crc);
			}
		}
		p += 46 + name_len + extra_len + rd16(p + 32);
	}
	CHECK(p == f + z64);
	return (size_t)n;
}

static char *tmp_path(const char *name)
{
	return cb_path_join(tmpdir, name);
}

/* torch 1.13: torch.save(nn.Linear(3, 1, bias=False).state_dict(), "lin.pt")
 * with weight [[1, 2, 3]]: 799 bytes, laid out as the reference records. */
static void test_linear_file(void)
{
	static const uint64_t shape[] = {1, 3};
	static const float weight[] = {1.0f, 2.0f, 3.0f};
	struct cb_pkl_storage storage = {CB_DTYPE_F32, 3};
	struct cb_pkl_tensor t = {.name = "weight", .storage = 0, .rank = 2, .shape = shape};
	struct cb_pkl_module_version meta = {"", 1};
	struct cb_pt_options opts = {.no_byteorder = true, .modules = &meta, .n_modules = 1};
	const void *data[] = {weight};
	char *path = tmp_path("lin.pt");
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_pt_write_file(path, &t, 1, &storage, data, 1, &opts, false, &err) == CB_OK);
	size_t len = 0;
	uint8_t *f = slurp(path, &len);
	CHECK(f != NULL);
	CHECK_EQ_U64(len, 799);
	if (!f || len != 799) {
		free(f);
		free(path);
		return;
	}
	static const uint8_t pkl_header[] = {0x50, 0x4b, 0x03, 0x04, 0, 0, 0x08, 0x08, 0,    0,
					     0,    0,    0,    0,    0, 0, 0,    0,    0,    0,
					     0,    0,    0,    0,    0, 0, 0x0c, 0,    0x16, 0};
	CHECK(memcmp(f, pkl_header, 30) == 0);
	CHECK(memcmp(f + 30, "lin/data.pkl", 12) == 0);
	CHECK(memcmp(f + 42, "FB\x12\x00ZZZZZZZZZZZZZZZZZZ", 22) == 0);
	CHECK(memcmp(f + 64,
		     "\x80\x02"
		     "ccollections\nOrderedDict\n",
		     27) == 0);
	static const uint8_t desc1[] = {0x50, 0x4b, 0x07, 0x08, 0x9b, 0x05, 0xb5, 0x7f,
					0xe5, 0,    0,    0,    0xe5, 0,    0,    0};
	CHECK(memcmp(f + 293, desc1, 16) == 0);
	static const uint8_t data_header[] = {0x50, 0x4b, 0x03, 0x04, 0, 0, 0x08, 0x08, 0,    0,
					      0,    0,    0,    0,    0, 0, 0,    0,    0,    0,
					      0,    0,    0,    0,    0, 0, 0x0a, 0,    0x23, 0};
	CHECK(memcmp(f + 309, data_header, 30) == 0);
	CHECK(memcmp(f + 339, "lin/data/0FB\x1f\x00", 14) == 0);
	static const uint8_t floats[] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40};
	CHECK(memcmp(f + 384, floats, 12) == 0);
	static const uint8_t desc2[] = {0x50, 0x4b, 0x07, 0x08, 0xb1, 0x96, 0x0e, 0xb2,
					0x0c, 0,    0,    0,    0x0c, 0,    0,    0};
	CHECK(memcmp(f + 396, desc2, 16) == 0);
	CHECK_EQ_U64(rd32(f + 412), 0x04034b50);
	CHECK_EQ_U64(rd16(f + 412 + 26), 11);
	CHECK_EQ_U64(rd16(f + 412 + 28), 59);
	CHECK(memcmp(f + 512, "3\n", 2) == 0);
	CHECK_EQ_U64(rd32(f + 530), 0x02014b50); /* central directory */
	CHECK_EQ_U64(rd32(f + 701), 0x06064b50); /* ZIP64 end record */
	static const uint8_t zip64_eocd[] = {0x50, 0x4b, 0x06, 0x06, 0x2c, 0,    0,    0,
					     0,    0,    0,    0,    0x1e, 0x03, 0x2d, 0};
	CHECK(memcmp(f + 701, zip64_eocd, 16) == 0);
	static const uint8_t locator[] = {0x50, 0x4b, 0x06, 0x07, 0, 0, 0, 0, 0xbd, 0x02,
					  0,    0,    0,    0,    0, 0, 1, 0, 0,    0};
	CHECK(memcmp(f + 757, locator, 20) == 0);
	static const uint8_t eocd[] = {0x50, 0x4b, 0x05, 0x06, 0, 0,    0,    0, 3, 0, 3,
				       0,    0xab, 0,    0,    0, 0x12, 0x02, 0, 0, 0, 0};
	CHECK(memcmp(f + 777, eocd, 22) == 0);
	CHECK_EQ_U64(check_archive(f, len, "lin/"), 3);
	free(f);
	free(path);
}

/* The default .pt: byteorder after data.pkl, storages in key order, version
 * last; every record aligned; empty storages carry no descriptor. */
static void test_default_layout(void)
{
	static const uint64_t shape[] = {5};
	static const uint64_t empty_shape[] = {0};
	static const uint16_t half[5] = {1, 2, 3, 4, 5};
	static const int64_t longs[5] = {-1, 0, 1, 2, 3};
	struct cb_pkl_storage s[] = {{CB_DTYPE_F16, 5}, {CB_DTYPE_I64, 5}, {CB_DTYPE_F32, 0}};
	struct cb_pkl_tensor t[] = {
		{.name = "a", .storage = 0, .rank = 1, .shape = shape},
		{.name = "b", .storage = 1, .rank = 1, .shape = shape},
		{.name = "tied", .storage = 0, .rank = 1, .shape = shape},
		{.name = "empty", .storage = 2, .rank = 1, .shape = empty_shape},
	};
	const void *data[] = {half, longs, NULL};
	char *path = tmp_path("model.tar.bin");
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_pt_write_file(path, t, 4, s, data, 3, NULL, true, &err) == CB_OK);
	size_t len = 0;
	uint8_t *f = slurp(path, &len);
	CHECK(f != NULL);
	if (f) {
		CHECK_EQ_U64(check_archive(f, len, "model.tar/"), 6);
		CHECK(memcmp(f + 30, "model.tar/data.pkl", 18) == 0);
		CHECK(memmem(f, len, "model.tar/byteorder", 19) != NULL);
		const uint8_t *bo = memmem(f, len, "little", 6);
		const uint8_t *d2 = memmem(f, len, "model.tar/data/2", 16);
		const uint8_t *ver = memmem(f, len, "model.tar/version", 17);
		CHECK(bo && d2 && ver && bo < d2 && d2 < ver);
		/* data/2 is empty: flags 0x0800, and the next header follows its
		 * (aligned) data offset directly */
		if (d2)
			CHECK_EQ_U64(rd16(d2 - 30 + 6), 0x0800);
	}
	free(f);
	/* nothing but the file itself is left in the directory */
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		CHECK(strstr(e->d_name, ".tmp.") == NULL);
	if (d)
		closedir(d);
	free(path);
}

/* A lowered threshold forces ZIP64 on small records and offsets: the local
 * extra before FB, 24-byte descriptors, saturated directory fields. */
static void test_forced_zip64(void)
{
	static const uint64_t shape[] = {100};
	static uint8_t bytes[3][100];
	for (int k = 0; k < 3; k++)
		memset(bytes[k], 'a' + k, sizeof bytes[k]);
	struct cb_pkl_storage s[] = {{CB_DTYPE_U8, 100}, {CB_DTYPE_U8, 100}, {CB_DTYPE_U8, 100}};
	struct cb_pkl_tensor t[] = {
		{.name = "x", .storage = 0, .rank = 1, .shape = shape},
		{.name = "y", .storage = 1, .rank = 1, .shape = shape},
		{.name = "z", .storage = 2, .rank = 1, .shape = shape},
	};
	const void *data[] = {bytes[0], bytes[1], bytes[2]};
	struct cb_pt_options opts = {.zip64_at = 90};
	char *path = tmp_path("z64.pt");
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_pt_write_file(path, t, 3, s, data, 3, &opts, false, &err) == CB_OK);
	size_t len = 0;
	uint8_t *f = slurp(path, &len);
	CHECK(f != NULL);
	if (f) {
		CHECK_EQ_U64(check_archive(f, len, "z64/"), 6);
		/* data.pkl (over 90 bytes) at offset 0: a size-only ZIP64 extra */
		const uint8_t *x = f + 30 + 12; /* after "z64/data.pkl" */
		CHECK_EQ_U64(rd16(x), 1);
		CHECK_EQ_U64(rd16(x + 2), 16);
		uint64_t pkl_size = rd64(x + 4);
		CHECK(pkl_size > 90);
		CHECK_EQ_U64(rd64(x + 12), 0); /* compressed size: 0 locally */
		CHECK(memcmp(x + 20, "FB", 2) == 0);
		uint64_t pkl_data = 30 + 12 + rd16(f + 28);
		CHECK_EQ_U64(pkl_data, 128);
		/* its descriptor has 8-byte sizes */
		CHECK_EQ_U64(rd32(f + pkl_data + pkl_size), 0x08074b50);
		CHECK_EQ_U64(rd64(f + pkl_data + pkl_size + 8), pkl_size);
		CHECK_EQ_U64(rd64(f + pkl_data + pkl_size + 16), pkl_size);
		/* the end record saturates what does not fit the threshold */
		const uint8_t *eocd = f + len - 22;
		CHECK_EQ_U64(rd32(eocd + 12), 0xFFFFFFFF);
		CHECK_EQ_U64(rd32(eocd + 16), 0xFFFFFFFF);
		/* the version record (2 bytes, header past 90): offset-only extra */
		const uint8_t *ver = memmem(f, len, "z64/version", 11);
		CHECK(ver != NULL);
		if (ver) {
			CHECK_EQ_U64(rd16(ver + 11), 1);
			CHECK_EQ_U64(rd16(ver + 13), 8);
			CHECK_EQ_U64(rd64(ver + 15), (uint64_t)(ver - 30 - f));
		}
	}
	free(f);
	free(path);
}

/* A real ZIP64 file over 4 GiB, sparse: one 5 GiB storage is never written,
 * only sized; the headers and trailer around it are checked. */
static void test_sparse_over_4g(void)
{
	const uint64_t big = UINT64_C(5) << 30;
	uint64_t shape[] = {big};
	struct cb_pkl_storage s = {CB_DTYPE_U8, big};
	struct cb_pkl_tensor t = {.name = "huge", .storage = 0, .rank = 1, .shape = shape};
	char *path = tmp_path("huge.pt");
	struct cb_pt_layout layout;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_pt_layout_build(path, &t, 1, &s, 1, NULL, &layout, &err) == CB_OK);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	CHECK(cb_pt_write_head(&layout, fd, path, &err) == CB_OK);
	/* CRC-32 of 5 GiB of zeros: the CRC of 1 MiB of zeros combined */
	static const uint8_t zeros[1 << 20];
	uLong crc_mib = crc32(0, zeros, sizeof zeros), crc = 0;
	for (int i = 0; i < 5 * 1024; i++)
		crc = crc32_combine(crc, crc_mib, sizeof zeros);
	cb_pt_set_storage_crc(&layout, 0, (uint32_t)crc);
	CHECK(cb_pt_write_tail(&layout, fd, path, &err) == CB_OK);
	uint64_t size = cb_pt_file_size(&layout);
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && (uint64_t)st.st_size == size);
	uint64_t data = cb_pt_storage_offset(&layout, 0);
	CHECK_EQ_U64(data % 64, 0);
	/* the storage's local header: size >= 0xFFFFFFFF, so a ZIP64 extra
	 * with its size and compressed size 0, then FB */
	const struct cb_ptzip_entry *e = &layout.zip.entries[layout.storage_entry[0]];
	CHECK(e->zip64_size && !e->zip64_offset);
	uint8_t hdr[128];
	struct cb_error rerr = CB_ERROR_INIT;
	CHECK(cb_pread_full(fd, hdr, sizeof hdr, e->header_offset, path, &rerr) == CB_OK);
	size_t name_len = strlen("huge/data/0");
	CHECK_EQ_U64(rd16(hdr + 30 + name_len), 1);
	CHECK_EQ_U64(rd16(hdr + 30 + name_len + 2), 16);
	CHECK_EQ_U64(rd64(hdr + 30 + name_len + 4), big);
	CHECK_EQ_U64(rd64(hdr + 30 + name_len + 12), 0);
	CHECK(memcmp(hdr + 30 + name_len + 20, "FB", 2) == 0);
	/* its 24-byte descriptor */
	uint8_t desc[24];
	CHECK(cb_pread_full(fd, desc, 24, data + big, path, &rerr) == CB_OK);
	CHECK_EQ_U64(rd32(desc), 0x08074b50);
	CHECK_EQ_U64(rd32(desc + 4), (uint32_t)crc);
	CHECK_EQ_U64(rd64(desc + 8), big);
	CHECK_EQ_U64(rd64(desc + 16), big);
	/* the version record starts past 4 GiB: an offset-only extra */
	const struct cb_ptzip_entry *v = &layout.zip.entries[layout.version_entry];
	CHECK(v->zip64_offset && !v->zip64_size);
	CHECK_EQ_U64(v->header_offset, data + big + 24);
	/* the trailer: read it whole and walk it (record data beyond the
	 * buffer is not CRC-checked there) */
	uint64_t cd = cb_ptzip_writer_cd_offset(&layout.zip);
	size_t tail_len = (size_t)(size - cd);
	uint8_t *tail = malloc(tail_len);
	CHECK(cb_pread_full(fd, tail, tail_len, cd, path, &rerr) == CB_OK);
	const uint8_t *eocd = tail + tail_len - 22;
	CHECK_EQ_U64(rd32(eocd), 0x06054b50);
	CHECK_EQ_U64(rd32(eocd + 16), 0xFFFFFFFF);    /* cd offset > 4 GiB */
	CHECK_EQ_U64(rd64(eocd - 20 + 8), size - 98); /* locator -> ZIP64 EOCD */
	CHECK_EQ_U64(rd64(tail + tail_len - 98 + 48), cd);
	/* central entry of data/0: sizes saturated, the ZIP64 extra holds them */
	const uint8_t *p = tail;
	bool found = false;
	for (int i = 0; i < 4; i++) {
		uint16_t nl = rd16(p + 28), xl = rd16(p + 30);
		if (nl == name_len && memcmp(p + 46, "huge/data/0", nl) == 0) {
			found = true;
			CHECK_EQ_U64(rd32(p + 20), 0xFFFFFFFF);
			CHECK_EQ_U64(rd32(p + 24), 0xFFFFFFFF);
			CHECK_EQ_U64(xl, 20);
			CHECK_EQ_U64(rd64(p + 46 + nl + 4), big);
			CHECK_EQ_U64(rd64(p + 46 + nl + 12), big);
		}
		if (nl == 12 && memcmp(p + 46, "huge/version", nl) == 0) {
			CHECK_EQ_U64(rd32(p + 42), 0xFFFFFFFF);
			CHECK_EQ_U64(xl, 12);
			CHECK_EQ_U64(rd64(p + 46 + nl + 4), v->header_offset);
		}
		p += 46 + nl + xl;
	}
	CHECK(found);
	free(tail);
	close(fd);
	unlink(path);
	cb_pt_layout_free(&layout);
	free(path);
}

static void test_prefix(void)
{
	char out[64];
	cb_ptzip_prefix_for_path("/x/model.tar.pt", out, sizeof out);
	CHECK_STR_EQ(out, "model.tar");
	cb_ptzip_prefix_for_path("pytorch_model-00001-of-00002.bin", out, sizeof out);
	CHECK_STR_EQ(out, "pytorch_model-00001-of-00002");
	cb_ptzip_prefix_for_path("dir/ckpt", out, sizeof out);
	CHECK_STR_EQ(out, "ckpt");
	cb_ptzip_prefix_for_path("dir/.pt", out, sizeof out);
	CHECK_STR_EQ(out, "archive");
	cb_ptzip_prefix_for_path("mod\xc3\xa8le.pt", out, sizeof out);
	CHECK_STR_EQ(out, "archive");
}

/* A failed write leaves nothing: a dtype torch cannot hold is refused before
 * any file exists. */
static void test_failure_leaves_nothing(void)
{
	static const uint64_t shape[] = {4};
	static const uint8_t bytes[2] = {0};
	struct cb_pkl_storage s = {CB_DTYPE_F4, 4};
	struct cb_pkl_tensor t = {.name = "w", .storage = 0, .rank = 1, .shape = shape};
	const void *data[] = {bytes};
	char *path = tmp_path("f4.pt");
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_pt_write_file(path, &t, 1, &s, data, 1, NULL, false, &err) == CB_EUNSUPPORTED);
	CHECK_CONTAINS(err.msg, "F4");
	CHECK_CONTAINS(err.path, "f4.pt");
	CHECK(access(path, F_OK) != 0);
	free(path);
}

static void remove_tree(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *p = tmp_path(e->d_name);
		unlink(p);
		free(p);
	}
	if (d)
		closedir(d);
	rmdir(tmpdir);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_linear_file();
	test_default_layout();
	test_forced_zip64();
	test_sparse_over_4g();
	test_prefix();
	test_failure_leaves_nothing();
	remove_tree();
	return check_finish("test_ptzip_write");
}
