/* The differential check of our PyTorch reader against libtorch's own:
 * for each FILE, torch::jit::pickle_load (through the ATen shim) and our zip
 * reader and unpickler (cb_ckpt_open) must see the same tensors: names,
 * dtypes, shapes, strides, storage offsets and the bytes of each tensor as
 * torch sees it (row-major, after contiguous()).
 *
 *   test_aten_diff [--perturb ours|libtorch] FILE...
 *
 * One line per file: "agree N tensors", "libtorch cannot read it: MSG"
 * (docs/datasets-and-method.md §4.5: not a failure), or what differs.
 * Exit 0 when no file differs, 1 otherwise. --perturb flips one byte of
 * the first non-empty tensor on one side, test-only, to show the check
 * notices (tests/compat/test_libtorch_diff.sh expects it to fail).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cb_aten.h"
#include "ckpt.h"
#include "tensor_gather.h"

enum perturb { PERTURB_NONE, PERTURB_OURS, PERTURB_LIBTORCH };

/* libtorch's view of one tensor. */
struct theirs {
	char *name;
	struct cb_aten_desc d;
	int64_t sizes[CB_ATEN_MAX_RANK], strides[CB_ATEN_MAX_RANK];
	unsigned char *bytes; /* contiguous copy */
	size_t nbytes;
};

struct collected {
	struct theirs *t;
	size_t n, cap;
};

/* pickle_load's callback: describe the tensor and copy it contiguous. */
static int collect(void *cookie, const char *name, const struct cb_aten_tensor *t,
		   struct cb_error *err)
{
	struct collected *c = cookie;
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		struct theirs *grown = realloc(c->t, c->cap * sizeof *grown);
		if (!grown)
			return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		c->t = grown;
	}
	struct theirs *x = &c->t[c->n];
	memset(x, 0, sizeof *x);
	int rc = cb_aten_describe(t, &x->d, err);
	if (rc != CB_OK)
		return rc;
	if (x->d.dtype < 0)
		return CB_FAIL(err, CB_EUNSUPPORTED, NULL, name, "a dtype we cannot name");
	memcpy(x->sizes, x->d.sizes, x->d.rank * sizeof *x->sizes);
	memcpy(x->strides, x->d.strides, x->d.rank * sizeof *x->strides);
	x->nbytes = (size_t)x->d.numel * x->d.element_size;
	x->bytes = malloc(x->nbytes ? x->nbytes : 1);
	x->name = strdup(name);
	c->n++;
	if (!x->bytes || !x->name)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	struct cb_aten_tensor *dst = NULL;
	void *data = NULL;
	rc = cb_aten_empty(x->d.dtype, x->d.rank, x->sizes, NULL, CB_ATEN_CPU, 0, 0, &dst, err);
	if (rc == CB_OK)
		rc = cb_aten_copy(dst, t, 0, err);
	if (rc == CB_OK)
		rc = cb_aten_data_ptr(dst, &data, err);
	if (rc == CB_OK && x->nbytes)
		memcpy(x->bytes, data, x->nbytes);
	cb_aten_free(dst);
	return rc;
}

static void collected_free(struct collected *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->t[i].name);
		free(c->t[i].bytes);
	}
	free(c->t);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct theirs *)a)->name, ((const struct theirs *)b)->name);
}

/* Our bytes, streamed and compared with theirs as they come. */
struct cmp_sink {
	const unsigned char *want;
	size_t len, at;
	int flip_first; /* perturb ours: flip the first byte we see */
	int differs;
};

static int compare_chunk(void *ctx, const void *buf, size_t len, struct cb_error *err)
{
	struct cmp_sink *s = ctx;
	(void)err;
	unsigned char tmp[1];
	const unsigned char *p = buf;
	if (s->at + len > s->len) {
		s->differs = 1;
		return CB_OK;
	}
	if (s->flip_first && len) { /* test-only: our first byte, flipped */
		tmp[0] = (unsigned char)(p[0] ^ 0x5a);
		if (memcmp(tmp, s->want + s->at, 1) != 0 ||
		    memcmp(p + 1, s->want + s->at + 1, len - 1) != 0)
			s->differs = 1;
		s->flip_first = 0;
	} else if (memcmp(p, s->want + s->at, len) != 0) {
		s->differs = 1;
	}
	s->at += len;
	return CB_OK;
}

static void contiguous_strides(uint32_t rank, const uint64_t *shape, int64_t *out)
{
	uint64_t s = 1;
	for (uint32_t d = rank; d-- > 0;) {
		out[d] = (int64_t)s;
		s *= shape[d] ? shape[d] : 1;
	}
}

/* Compares one tensor; prints and returns 1 when it differs. */
static int compare_tensor(const char *path, int fd, const struct cb_ckpt_tensor *o,
			  const struct theirs *x, int flip, unsigned char *chunk, size_t chunk_size)
{
	int64_t want_strides[CB_ATEN_MAX_RANK];
	const char *what = NULL;
	if ((int32_t)o->dtype != x->d.dtype)
		what = "dtype";
	else if (o->rank != x->d.rank)
		what = "rank";
	for (uint32_t d = 0; !what && d < o->rank; d++)
		if ((int64_t)o->shape[d] != x->sizes[d])
			what = "shape";
	if (!what) {
		if (o->stride)
			memcpy(want_strides, o->stride, o->rank * sizeof *want_strides);
		else
			contiguous_strides(o->rank, o->shape, want_strides);
		/* A stride of a dimension of size 0 or 1 never addresses anything;
		 * torch itself does not keep them stable. */
		for (uint32_t d = 0; !what && d < o->rank; d++)
			if (want_strides[d] != x->strides[d] && o->shape[d] > 1)
				what = "strides";
		if (!what && (int64_t)o->storage_offset != x->d.storage_offset)
			what = "storage offset";
		if (!what && o->nbytes != x->nbytes)
			what = "byte count";
	}
	if (!what) {
		struct cmp_sink sink = {.want = x->bytes, .len = x->nbytes, .flip_first = flip};
		struct cb_error err = CB_ERROR_INIT;
		if (cb_tensor_stream(fd, path, o, chunk, chunk_size, compare_chunk, &sink, &err) !=
		    CB_OK) {
			printf("%s: %s: our bytes unreadable: %s\n", path, o->name, err.msg);
			return 1;
		}
		if (sink.differs || sink.at != x->nbytes)
			what = "bytes";
	}
	if (what)
		printf("%s: %s: %s differs between libtorch and our reader\n", path, o->name, what);
	return what != NULL;
}

/* 0 agree or not comparable, 1 differs or broke. */
static int check_file(const char *path, enum perturb perturb)
{
	struct collected c = {0};
	struct cb_error err = CB_ERROR_INIT;
	int rc = cb_aten_pickle_load_file(path, collect, &c, NULL, &err);
	if (rc == CB_EUNSUPPORTED) {
		printf("%s: libtorch cannot read it: %s\n", path, err.msg);
		collected_free(&c);
		return 0;
	}
	if (rc != CB_OK) {
		printf("%s: libtorch failed: %s\n", path, err.msg);
		collected_free(&c);
		return 1;
	}
	if (perturb == PERTURB_LIBTORCH)
		for (size_t i = 0; i < c.n; i++)
			if (c.t[i].nbytes) {
				c.t[i].bytes[0] ^= 0x5a;
				break;
			}
	qsort(c.t, c.n, sizeof *c.t, by_name);
	struct cb_ckpt *ck = NULL;
	if (cb_ckpt_open(path, CB_FORMAT_PYTORCH, &ck, &err) != CB_OK) {
		printf("%s: our reader refused what libtorch read: %s\n", path, err.msg);
		collected_free(&c);
		return 1;
	}
	int bad = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t chunk_size = 1 << 20;
	unsigned char *chunk = malloc(chunk_size);
	if (fd < 0 || !chunk) {
		printf("%s: cannot open or allocate\n", path);
		bad = 1;
	} else if (ck->n_tensors != c.n) {
		printf("%s: libtorch sees %zu tensors, our reader %zu\n", path, c.n, ck->n_tensors);
		bad = 1;
	}
	int flip = perturb == PERTURB_OURS;
	for (size_t i = 0; !bad && i < c.n; i++) {
		const struct cb_ckpt_tensor *o = &ck->tensors[i];
		if (strcmp(o->name, c.t[i].name) != 0) {
			printf("%s: names differ: libtorch %s, ours %s\n", path, c.t[i].name,
			       o->name);
			bad = 1;
			break;
		}
		bad |= compare_tensor(path, fd, o, &c.t[i], flip && o->nbytes, chunk, chunk_size);
		if (o->nbytes)
			flip = 0;
	}
	if (!bad)
		printf("%s: agree, %zu tensors\n", path, c.n);
	free(chunk);
	if (fd >= 0)
		close(fd);
	cb_ckpt_free(ck);
	collected_free(&c);
	return bad;
}

int main(int argc, char **argv)
{
	enum perturb perturb = PERTURB_NONE;
	int i = 1;
	if (argc > 2 && strcmp(argv[1], "--perturb") == 0) {
		perturb = strcmp(argv[2], "ours") == 0 ? PERTURB_OURS : PERTURB_LIBTORCH;
		i = 3;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: test_aten_diff [--perturb ours|libtorch] FILE...\n");
		return 2;
	}
	int bad = 0;
	for (; i < argc; i++)
		bad |= check_file(argv[i], perturb);
	return bad;
}
