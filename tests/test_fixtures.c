/* Files written by other projects with the official safetensors library
 * (tests/data/fixtures/safetensors-official/, see its README) opened as
 * models with cb_ckpt_open and hashed with cb_ckpt_hash: each must load
 * with the tensors it is known to hold, the sharded copy must equal the
 * single file, and the `bad_` file must be refused.
 *
 * The XXH3 values are also checked against Debian's python3-xxhash through
 * tests/xxh3_of_ranges.py, when that module is installed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "ckpt.h"
#include "tensor_hash.h"

#define PYTHON "/usr/bin/python3"

static const char *fixtures_dir; /* $CKPTBENCH_FIXTURES/safetensors-official */
static const char *source_dir;   /* $CKPTBENCH_SOURCE */

static char *fixture(const char *name)
{
	char *path = NULL;
	if (asprintf(&path, "%s/%s", fixtures_dir, name) < 0)
		abort();
	return path;
}

static void print_error(const char *what, const struct cb_error *err)
{
	char line[2048];
	cb_error_format(err, line, sizeof line);
	fprintf(stderr, "  %s: %s [%s]\n", what, line, cb_error_name(err->code));
}

/* A checkpoint and its hashes; the caller frees both. */
struct opened {
	struct cb_ckpt *ckpt;
	uint64_t *hashes;
};

static bool open_and_hash(const char *path, struct opened *out)
{
	struct cb_error err = CB_ERROR_INIT;
	memset(out, 0, sizeof *out);
	int rc = cb_ckpt_open(path, CB_FORMAT_ANY, &out->ckpt, &err);
	CHECK(rc == CB_OK);
	if (rc != CB_OK) {
		print_error(path, &err);
		return false;
	}
	out->hashes = calloc(out->ckpt->n_tensors + 1, sizeof *out->hashes);
	if (!out->hashes)
		abort();
	rc = cb_ckpt_hash(out->ckpt, out->hashes, 0, &err);
	CHECK(rc == CB_OK);
	if (rc != CB_OK) {
		print_error(path, &err);
		return false;
	}
	return true;
}

static void closed(struct opened *o)
{
	cb_ckpt_free(o->ckpt);
	free(o->hashes);
	memset(o, 0, sizeof *o);
}

static bool shape_is(const struct cb_ckpt_tensor *t, uint32_t rank, const uint64_t *dims)
{
	if (t->rank != rank)
		return false;
	for (uint32_t d = 0; d < rank; d++)
		if (t->shape[d] != dims[d])
			return false;
	return true;
}

/* The SafeTensors.jl model: every torch dtype it covers × three shapes,
 * named <torch dtype>_3, _35, _357. */
static const struct {
	const char *prefix;
	enum cb_dtype dtype;
} jl_dtypes[] = {
	{"int64", CB_DTYPE_I64},
	{"float64", CB_DTYPE_F64},
	{"float32", CB_DTYPE_F32},
	{"int32", CB_DTYPE_I32},
	{"bfloat16", CB_DTYPE_BF16},
	{"float16", CB_DTYPE_F16},
	{"int16", CB_DTYPE_I16},
	{"float8_e4m3fn", CB_DTYPE_F8_E4M3},
	{"float8_e5m2", CB_DTYPE_F8_E5M2},
	{"int8", CB_DTYPE_I8},
	{"uint8", CB_DTYPE_U8},
	{"bool", CB_DTYPE_BOOL},
};

static void check_jl_tensors(const char *what, const struct cb_ckpt *ckpt)
{
	static const uint64_t dims[] = {3, 5, 7};
	static const char *const suffixes[] = {"_3", "_35", "_357"};
	int before = check_failures;
	CHECK_EQ_U64(ckpt->n_tensors, 36);
	uint64_t total = 0;
	for (size_t i = 0; i < sizeof jl_dtypes / sizeof jl_dtypes[0]; i++)
		for (uint32_t rank = 1; rank <= 3; rank++) {
			char name[64];
			snprintf(name, sizeof name, "%s%s", jl_dtypes[i].prefix,
				 suffixes[rank - 1]);
			const struct cb_ckpt_tensor *t = cb_ckpt_find(ckpt, name);
			CHECK(t != NULL);
			if (!t) {
				fprintf(stderr, "  %s: no tensor %s\n", what, name);
				continue;
			}
			CHECK(t->dtype == jl_dtypes[i].dtype);
			CHECK(shape_is(t, rank, dims));
			uint64_t numel = rank == 1 ? 3 : rank == 2 ? 15 : 105;
			CHECK_EQ_U64(t->numel, numel);
			CHECK_EQ_U64(t->nbytes, numel * cb_dtype_bits(t->dtype) / 8);
			total += t->nbytes;
		}
	CHECK_EQ_U64(ckpt->total_bytes, total);
	CHECK_EQ_U64(total, 4305); /* the index's total_size */
	for (size_t i = 1; i < ckpt->n_tensors; i++)
		CHECK(strcmp(ckpt->tensors[i - 1].name, ckpt->tensors[i].name) < 0);
	if (check_failures != before)
		fprintf(stderr, "  in %s\n", what);
}

static void test_jl_models(void)
{
	struct opened plain, meta, sharded;
	char *p1 = fixture("jl_model.safetensors");
	char *p2 = fixture("jl_model.with_metadata.safetensors");
	char *p3 = fixture("sharded");
	bool ok1 = open_and_hash(p1, &plain);
	bool ok2 = open_and_hash(p2, &meta);
	bool ok3 = open_and_hash(p3, &sharded);
	if (ok1) {
		check_jl_tensors("jl_model", plain.ckpt);
		CHECK(!plain.ckpt->sharded && plain.ckpt->n_files == 1);
		CHECK(!plain.ckpt->has_metadata && plain.ckpt->n_meta == 0);
	}
	if (ok2) {
		check_jl_tensors("jl_model.with_metadata", meta.ckpt);
		CHECK(meta.ckpt->has_metadata && meta.ckpt->n_meta == 2);
		if (meta.ckpt->n_meta == 2) {
			CHECK_STR_EQ(meta.ckpt->meta[0].key, "test");
			CHECK_STR_EQ(meta.ckpt->meta[0].value, "metadata");
			CHECK_STR_EQ(meta.ckpt->meta[1].key, "version");
			CHECK_STR_EQ(meta.ckpt->meta[1].value, "2.2");
		}
	}
	if (ok3) {
		check_jl_tensors("sharded", sharded.ckpt);
		CHECK(sharded.ckpt->sharded && sharded.ckpt->n_files == 6);
		CHECK(sharded.ckpt->has_metadata && sharded.ckpt->n_meta == 1);
		if (sharded.ckpt->n_meta == 1) {
			CHECK_STR_EQ(sharded.ckpt->meta[0].key, "format");
			CHECK_STR_EQ(sharded.ckpt->meta[0].value, "pt");
		}
		/* Files in index order: model-00001 .. model-00006. */
		for (size_t i = 0; i < sharded.ckpt->n_files; i++) {
			char suffix[64];
			snprintf(suffix, sizeof suffix, "/model-%05zu-of-00006.safetensors", i + 1);
			CHECK_CONTAINS(sharded.ckpt->files[i].path, suffix);
		}
		const struct cb_ckpt_tensor *t = cb_ckpt_find(sharded.ckpt, "float32_357");
		CHECK(t && strstr(cb_ckpt_tensor_path(sharded.ckpt, t), "model-00002-of-00006"));
	}
	/* The same 36 tensors, byte for byte, in all three. */
	for (size_t i = 0; ok1 && i < plain.ckpt->n_tensors; i++) {
		const struct cb_ckpt_tensor *a = &plain.ckpt->tensors[i];
		const struct opened *others[2] = {ok2 ? &meta : NULL, ok3 ? &sharded : NULL};
		for (int k = 0; k < 2; k++) {
			if (!others[k] || others[k]->ckpt->n_tensors != plain.ckpt->n_tensors)
				continue;
			const struct cb_ckpt_tensor *b = &others[k]->ckpt->tensors[i];
			CHECK_STR_EQ(a->name, b->name);
			CHECK(a->dtype == b->dtype && a->rank == b->rank &&
			      memcmp(a->shape, b->shape, a->rank * sizeof *a->shape) == 0);
			CHECK_EQ_U64(plain.hashes[i], others[k]->hashes[i]);
		}
	}
	/* The hash of an empty input is XXH3's constant: no tensor here is
	 * empty, so a hash equal to it means nothing was read. */
	for (size_t i = 0; ok1 && i < plain.ckpt->n_tensors; i++)
		CHECK(plain.hashes[i] != 0x2d06800538d394c2ull);
	if (ok1)
		closed(&plain);
	if (ok2)
		closed(&meta);
	if (ok3)
		closed(&sharded);
	free(p1);
	free(p2);
	free(p3);
}

/* Reads a tensor's bytes with pread at its offset. malloc'd. */
static uint8_t *tensor_bytes(const struct cb_ckpt *ckpt, const struct cb_ckpt_tensor *t)
{
	uint8_t *buf = malloc(t->nbytes ? (size_t)t->nbytes : 1);
	int fd = open(cb_ckpt_tensor_path(ckpt, t), O_RDONLY);
	if (!buf || fd < 0)
		abort();
	CHECK(pread(fd, buf, (size_t)t->nbytes, (off_t)t->offset) == (ssize_t)t->nbytes);
	close(fd);
	return buf;
}

static void test_mlverse(void)
{
	struct opened o;
	char *path = fixture("mlverse_hello.safetensors");
	if (open_and_hash(path, &o)) {
		static const uint64_t hello[] = {10, 10}, world[] = {5, 10};
		CHECK_EQ_U64(o.ckpt->n_tensors, 2);
		const struct cb_ckpt_tensor *h = cb_ckpt_find(o.ckpt, "hello");
		const struct cb_ckpt_tensor *w = cb_ckpt_find(o.ckpt, "world");
		CHECK(h && h->dtype == CB_DTYPE_F32 && shape_is(h, 2, hello));
		CHECK(w && w->dtype == CB_DTYPE_F32 && shape_is(w, 2, world));
		/* hello is torch_ones, world torch_zeros (the file says so; the
		 * "all 1.0" once written in the fixtures README was wrong). */
		const struct cb_ckpt_tensor *both[2] = {h, w};
		const float want[2] = {1.0f, 0.0f};
		for (int k = 0; k < 2; k++) {
			if (!both[k])
				continue;
			uint8_t *bytes = tensor_bytes(o.ckpt, both[k]);
			size_t equal = 0;
			for (uint64_t i = 0; i < both[k]->numel; i++) {
				float v;
				memcpy(&v, bytes + 4 * i, 4);
				equal += v == want[k];
			}
			CHECK_EQ_U64(equal, both[k]->numel);
			free(bytes);
		}
		CHECK(o.hashes[0] != o.hashes[1]);
		closed(&o);
	}
	free(path);
}

static void test_syoyo(void)
{
	struct opened o;
	char *path = fixture("syoyo_model.safetensors");
	if (open_and_hash(path, &o)) {
		static const uint64_t s8[] = {8, 8}, s16[] = {16, 16};
		CHECK_EQ_U64(o.ckpt->n_tensors, 2);
		const struct cb_ckpt_tensor *a = cb_ckpt_find(o.ckpt, "weight1");
		const struct cb_ckpt_tensor *b = cb_ckpt_find(o.ckpt, "weight2");
		CHECK(a && a->dtype == CB_DTYPE_F64 && shape_is(a, 2, s8) && a->nbytes == 512);
		CHECK(b && b->dtype == CB_DTYPE_F64 && shape_is(b, 2, s16) && b->nbytes == 2048);
		CHECK(a && a->offset == 8 + 136);
		closed(&o);
	}
	free(path);
}

static void test_bad(void)
{
	char *path = fixture("bad_syoyo_abuse_attempt_1.safetensors");
	struct cb_ckpt *ckpt = NULL;
	struct cb_error err = CB_ERROR_INIT;
	int rc = cb_ckpt_open(path, CB_FORMAT_ANY, &ckpt, &err);
	CHECK(rc == CB_EFORMAT && ckpt == NULL);
	CHECK_EQ_U64(cb_error_exit_status(rc), 1);
	CHECK_CONTAINS(err.msg, "invalid header length");
	CHECK_STR_EQ(err.path, path);
	cb_ckpt_free(ckpt);
	free(path);
}

/* Every file of the directory: the bad_ ones refused, the rest load. */
static void test_every_file(void)
{
	DIR *d = opendir(fixtures_dir);
	CHECK(d != NULL);
	if (!d)
		return;
	struct dirent *e;
	size_t good = 0, bad = 0;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 12 || strcmp(e->d_name + len - 12, ".safetensors") != 0)
			continue;
		char *path = fixture(e->d_name);
		if (strncmp(e->d_name, "bad_", 4) == 0) {
			struct cb_ckpt *ckpt = NULL;
			struct cb_error err = CB_ERROR_INIT;
			CHECK(cb_ckpt_open(path, CB_FORMAT_ANY, &ckpt, &err) == CB_EFORMAT);
			cb_ckpt_free(ckpt);
			bad++;
		} else {
			struct opened o;
			if (open_and_hash(path, &o)) {
				CHECK(o.ckpt->n_tensors > 0);
				closed(&o);
			}
			good++;
		}
		free(path);
	}
	closedir(d);
	CHECK_EQ_U64(good, 5);
	CHECK_EQ_U64(bad, 1);
}

/* ---------------------------------------------- against python3-xxhash */

/* Runs argv (no shell: paths may hold anything) and returns its stdout,
 * malloc'd and NUL-terminated; NULL when it fails or exits non-zero. */
static char *run_capture(char *const argv[])
{
	int fds[2];
	if (pipe(fds) != 0)
		return NULL;
	pid_t pid = fork();
	if (pid < 0)
		return NULL;
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	size_t cap = 4096, len = 0;
	char *out = malloc(cap);
	ssize_t got;
	while (out && (got = read(fds[0], out + len, cap - len - 1)) > 0) {
		len += (size_t)got;
		if (cap - len < 2) {
			char *grown = realloc(out, cap *= 2);
			if (!grown)
				free(out);
			out = grown;
		}
	}
	close(fds[0]);
	int status;
	waitpid(pid, &status, 0);
	if (!out || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		free(out);
		return NULL;
	}
	out[len] = '\0';
	return out;
}

static bool python_has_xxhash(void)
{
	if (access(PYTHON, X_OK) != 0)
		return false;
	char *argv[] = {PYTHON, "-c", "import xxhash", NULL};
	char *out = run_capture(argv);
	free(out);
	return out != NULL;
}

/* Each tensor's hash equals python-xxhash's over the same byte range. */
static size_t compare_with_python(const char *script, const char *path)
{
	struct opened o;
	if (!open_and_hash(path, &o))
		return 0;
	size_t n_files = o.ckpt->n_files, compared = 0;
	for (size_t f = 0; f < n_files; f++) {
		size_t n = o.ckpt->n_tensors;
		char **argv = calloc(n + 4, sizeof *argv);
		size_t *which = calloc(n + 1, sizeof *which);
		if (!argv || !which)
			abort();
		size_t argc = 0, k = 0;
		argv[argc++] = PYTHON;
		argv[argc++] = (char *)script;
		argv[argc++] = o.ckpt->files[f].path;
		for (size_t i = 0; i < n; i++) {
			const struct cb_ckpt_tensor *t = &o.ckpt->tensors[i];
			if (t->file != f)
				continue;
			if (asprintf(&argv[argc++], "%llu:%llu", (unsigned long long)t->offset,
				     (unsigned long long)t->nbytes) < 0)
				abort();
			which[k++] = i;
		}
		char *out = run_capture(argv);
		CHECK(out != NULL);
		char *line = out, *next;
		for (size_t j = 0; out && j < k; j++, line = next) {
			next = strchr(line, '\n');
			CHECK(next != NULL);
			if (!next)
				break;
			*next++ = '\0';
			char hex[17];
			cb_hash_hex(o.hashes[which[j]], hex);
			CHECK_STR_EQ(hex, line);
			compared++;
		}
		free(out);
		for (size_t a = 3; a < argc; a++)
			free(argv[a]);
		free(argv);
		free(which);
	}
	closed(&o);
	return compared;
}

static void test_python_xxh3(void)
{
	if (!python_has_xxhash()) {
		fprintf(stderr, "test_fixtures: " PYTHON " has no xxhash module "
				"(python3-xxhash): the XXH3 cross-check is skipped\n");
		return;
	}
	char *script = NULL;
	if (asprintf(&script, "%s/tests/xxh3_of_ranges.py", source_dir) < 0)
		abort();
	static const char *const names[] = {
		"jl_model.safetensors",       "jl_model.with_metadata.safetensors",
		"jl_model.numpy.safetensors", "mlverse_hello.safetensors",
		"syoyo_model.safetensors",    "sharded"};
	size_t compared = 0;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char *path = fixture(names[i]);
		compared += compare_with_python(script, path);
		free(path);
	}
	CHECK_EQ_U64(compared, 36 * 3 + 27 + 2 + 2);
	fprintf(stderr, "test_fixtures: %zu tensor hashes match python3-xxhash\n", compared);
	free(script);
}

int main(void)
{
	const char *root = getenv("CKPTBENCH_FIXTURES");
	source_dir = getenv("CKPTBENCH_SOURCE");
	if (!root || !source_dir) {
		fprintf(stderr, "test_fixtures: CKPTBENCH_FIXTURES and CKPTBENCH_SOURCE must be "
				"set (meson test sets them)\n");
		return 1;
	}
	char *dir = NULL;
	if (asprintf(&dir, "%s/safetensors-official", root) < 0)
		abort();
	fixtures_dir = dir;
	test_jl_models();
	test_mlverse();
	test_syoyo();
	test_bad();
	test_every_file();
	test_python_xxh3();
	free(dir);
	return check_finish("test_fixtures");
}
