/* safetensors-read: loading straight into the model (DESIGN.md §4).
 *
 * Stands for a framework that builds the model first and then reads each
 * tensor's bytes from the file into the tensor's own memory:
 *   init  allocate every tensor and touch its pages, as an initialiser
 *         (zeros, random init) would;
 *   read  parse the header(s), then pread each tensor into place, large
 *         reads split into chunks shared by worker threads.
 * No copy phase: the bytes land where they stay.
 *
 * What it deliberately does not do (yet; the full-speed issue adds them):
 * io_uring, O_DIRECT, huge pages, reuse of a thread pool across loads.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"
#include "fileio.h"
#include "loader.h"

#define MAX_THREADS 64

struct st_read_opts {
	uint64_t threads;   /* 0: one per online CPU, at most 8 */
	uint64_t chunk_mib; /* bytes each pread moves at most */
};

static const struct cb_loader_opt st_read_opts[] = {
	{"threads", CB_OPT_U64, offsetof(struct st_read_opts, threads), 0, MAX_THREADS, "0",
	 "reader threads (0: one per CPU, at most 8)"},
	{"chunk-mib", CB_OPT_U64, offsetof(struct st_read_opts, chunk_mib), 1, 1024, "16",
	 "MiB per pread; larger tensors are split into chunks shared by the threads"},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

/* One pread of a chunk of a tensor. */
struct chunk {
	int fd;
	uint64_t offset;
	char *dest;
	size_t len;
	const char *path;
};

/* Private state, allocated zeroed by the harness; everything in it is owned
 * here and freed by st_read_close, whatever state a failure left it in. */
struct st_read {
	struct cb_ckpt *ckpt;
	void **buffers;       /* one per architecture tensor */
	size_t n_buffers;
	int *fds;             /* one per checkpoint file, -1 when closed */
	size_t n_fds;
	struct chunk *chunks;
	size_t n_chunks;
	atomic_size_t next;   /* the next chunk to read */
	atomic_int failed;    /* set by the first failing worker */
	pthread_mutex_t err_lock;
	bool lock_ready;
	struct cb_error *err; /* the load's error struct, under err_lock */
};

static int st_read_open(void *priv, const struct cb_load_ctx *ctx, struct cb_error *err)
{
	struct st_read *s = priv;
	(void)ctx;
	if (pthread_mutex_init(&s->err_lock, NULL) != 0)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "cannot create a mutex");
	s->lock_ready = true;
	return CB_OK;
}

/* The init phase: the empty model, every page touched. */
static int alloc_model(struct st_read *s, const struct cb_manifest *arch, struct cb_model *model,
		       struct cb_error *err)
{
	s->buffers = calloc(arch->n_tensors ? arch->n_tensors : 1, sizeof *s->buffers);
	if (!s->buffers)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "cannot allocate the model's table");
	s->n_buffers = arch->n_tensors;
	for (size_t i = 0; i < arch->n_tensors; i++) {
		uint64_t nbytes = arch->tensors[i].nbytes;
		if (nbytes > SIZE_MAX)
			return CB_FAIL(err, CB_ELIMIT, NULL, arch->tensors[i].name,
				       "tensor larger than the address space");
		/* malloc(0) may return NULL; one byte keeps "NULL = failed" true. */
		s->buffers[i] = malloc(nbytes ? (size_t)nbytes : 1);
		if (!s->buffers[i])
			return CB_FAIL(err, CB_ENOMEM, NULL, arch->tensors[i].name,
				       "cannot allocate %llu bytes", (unsigned long long)nbytes);
		memset(s->buffers[i], 0, (size_t)nbytes);
		model->tensors[i].data = s->buffers[i];
		model->tensors[i].location = CB_LOC_HOST;
	}
	return CB_OK;
}

/* The checkpoint must hold the architecture's tensors, each of the same
 * dtype and shape (load_state_dict's strict check). */
static int match_tensor(const struct cb_manifest_tensor *want, const struct cb_ckpt_tensor *have,
			const char *path, struct cb_error *err)
{
	if (!have)
		return CB_FAIL(err, CB_EMISMATCH, path, want->name,
			       "the checkpoint lacks a tensor of the model");
	bool same = have->dtype == want->dtype && have->rank == want->rank &&
		    have->nbytes == want->nbytes && !have->stride;
	for (uint32_t d = 0; same && d < want->rank; d++)
		same = have->shape[d] == want->shape[d];
	if (!same)
		return CB_FAIL(err, CB_EMISMATCH, path, want->name,
			       "the checkpoint's tensor differs in dtype or shape from the model");
	return CB_OK;
}

static int open_files(struct st_read *s, struct cb_error *err)
{
	s->fds = malloc(s->ckpt->n_files * sizeof *s->fds);
	if (!s->fds)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	s->n_fds = s->ckpt->n_files;
	for (size_t i = 0; i < s->n_fds; i++)
		s->fds[i] = -1;
	for (size_t i = 0; i < s->n_fds; i++) {
		s->fds[i] = open(s->ckpt->files[i].path, O_RDONLY | O_CLOEXEC);
		if (s->fds[i] < 0)
			return CB_FAIL_ERRNO(err, errno, s->ckpt->files[i].path, "open");
	}
	return CB_OK;
}

/* Splits every tensor into chunks of at most `chunk` bytes. */
static int plan_chunks(struct st_read *s, const struct cb_manifest *arch, uint64_t chunk,
		       struct cb_error *err)
{
	size_t total = 0;
	for (size_t i = 0; i < arch->n_tensors; i++) {
		uint64_t n = arch->tensors[i].nbytes / chunk + 1;
		if (__builtin_add_overflow(total, n, &total))
			return CB_FAIL(err, CB_ELIMIT, NULL, NULL, "too many chunks");
	}
	s->chunks = calloc(total ? total : 1, sizeof *s->chunks);
	if (!s->chunks)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < arch->n_tensors; i++) {
		const struct cb_manifest_tensor *want = &arch->tensors[i];
		const struct cb_ckpt_tensor *have = cb_ckpt_find(s->ckpt, want->name);
		int rc = match_tensor(want, have, s->ckpt->path, err);
		if (rc != CB_OK)
			return rc;
		for (uint64_t done = 0; done < want->nbytes; done += chunk) {
			uint64_t left = want->nbytes - done;
			s->chunks[s->n_chunks++] = (struct chunk){
				.fd = s->fds[have->file],
				.offset = have->offset + done,
				.dest = (char *)s->buffers[i] + done,
				.len = (size_t)(left < chunk ? left : chunk),
				.path = cb_ckpt_tensor_path(s->ckpt, have),
			};
		}
	}
	return CB_OK;
}

static void *reader(void *arg)
{
	struct st_read *s = arg;
	struct cb_error local = CB_ERROR_INIT;
	for (;;) {
		size_t k = atomic_fetch_add(&s->next, 1);
		if (k >= s->n_chunks || atomic_load(&s->failed))
			break;
		const struct chunk *c = &s->chunks[k];
		if (cb_pread_full(c->fd, c->dest, c->len, c->offset, c->path, &local) != CB_OK) {
			atomic_store(&s->failed, 1);
			pthread_mutex_lock(&s->err_lock);
			if (s->err && s->err->code == CB_OK)
				*s->err = local;
			pthread_mutex_unlock(&s->err_lock);
			break;
		}
	}
	return NULL;
}

static unsigned thread_count(const struct st_read_opts *o)
{
	if (o->threads)
		return (unsigned)o->threads;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	return cpus < 1 ? 1 : cpus > 8 ? 8 : (unsigned)cpus;
}

/* Runs the chunk list on `n` threads, the calling one included. */
static int read_chunks(struct st_read *s, unsigned n, struct cb_error *err)
{
	pthread_t tids[MAX_THREADS];
	unsigned started = 0;
	s->err = err;
	atomic_store(&s->next, 0);
	for (; started + 1 < n && started + 1 < s->n_chunks; started++)
		if (pthread_create(&tids[started], NULL, reader, s) != 0)
			break; /* fewer threads still load correctly */
	reader(s);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	s->err = NULL;
	if (atomic_load(&s->failed))
		return err && err->code != CB_OK ? (int)err->code : CB_EIO;
	return CB_OK;
}

static int st_read_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
			struct cb_error *err)
{
	struct st_read *s = priv;
	const struct st_read_opts *o = ctx->opts;
	cb_loader_phase(ctx, CB_PHASE_INIT);
	int rc = alloc_model(s, ctx->arch, model, err);
	if (rc != CB_OK)
		return rc;
	cb_loader_phase(ctx, CB_PHASE_READ);
	rc = cb_ckpt_open(ctx->path, CB_FORMAT_SAFETENSORS, &s->ckpt, err);
	if (rc == CB_OK)
		rc = open_files(s, err);
	if (rc == CB_OK)
		rc = plan_chunks(s, ctx->arch, o->chunk_mib << 20, err);
	if (rc == CB_OK)
		rc = read_chunks(s, thread_count(o), err);
	cb_loader_phase(ctx, CB_PHASE_NONE);
	return rc;
}

static void st_read_close(void *priv)
{
	struct st_read *s = priv;
	for (size_t i = 0; i < s->n_buffers; i++)
		free(s->buffers[i]);
	free(s->buffers);
	for (size_t i = 0; i < s->n_fds; i++)
		if (s->fds[i] >= 0)
			close(s->fds[i]);
	free(s->fds);
	free(s->chunks);
	cb_ckpt_free(s->ckpt);
	if (s->lock_ready)
		pthread_mutex_destroy(&s->err_lock);
}

const struct cb_loader cb_loader_safetensors_read = {
	.abi = CB_LOADER_ABI,
	.name = "safetensors-read",
	.summary = "allocate the model, then pread each tensor into place (threads)",
	.format = CB_FORMAT_SAFETENSORS,
	.device = CB_DEVICE_CPU,
	.caps = CB_CAP_HOST_MEM | CB_CAP_THREADS,
	.opts = st_read_opts,
	.opts_size = sizeof(struct st_read_opts),
	.priv_size = sizeof(struct st_read),
	.open = st_read_open,
	.load = st_read_load,
	.close = st_read_close,
};
