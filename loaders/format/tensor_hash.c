#include "tensor_hash.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "fileio.h"
#include "tensor_gather.h"

#define CHUNK_BYTES (8u << 20)

void cb_hash_hex(uint64_t hash, char out[17])
{
	snprintf(out, 17, "%016llx", (unsigned long long)hash);
}

struct hash_job {
	const struct cb_ckpt *ckpt;
	uint64_t *hashes;
	int *fds;           /* one per file, shared read-only */
	atomic_size_t next; /* next tensor to take */
	atomic_int failed;  /* 0, or the first error's code */
	pthread_mutex_t err_lock;
	struct cb_error *err;
};

static void job_fail(struct hash_job *job, const struct cb_error *local)
{
	pthread_mutex_lock(&job->err_lock);
	if (job->err && job->err->code == CB_OK)
		*job->err = *local;
	pthread_mutex_unlock(&job->err_lock);
	/* The first code is kept even when the caller passed no error struct. */
	int none = 0;
	atomic_compare_exchange_strong(&job->failed, &none,
				       local->code != CB_OK ? (int)local->code : (int)CB_EIO);
}

static int hash_sink(void *ctx, const void *buf, size_t len, struct cb_error *err)
{
	(void)err;
	XXH3_64bits_update(ctx, buf, len);
	return CB_OK;
}

/* The tensor's logical bytes (a view gathered as torch's contiguous() would
 * lay it out), hashed as they stream past. */
static int hash_tensor(int fd, const char *path, const struct cb_ckpt_tensor *t, uint8_t *buf,
		       uint64_t *out, struct cb_error *err)
{
	XXH3_state_t state;
	XXH3_64bits_reset(&state);
	int rc = cb_tensor_stream(fd, path, t, buf, CHUNK_BYTES, hash_sink, &state, err);
	if (rc == CB_OK)
		*out = XXH3_64bits_digest(&state);
	return rc;
}

static void *hash_worker(void *arg)
{
	struct hash_job *job = arg;
	const struct cb_ckpt *ckpt = job->ckpt;
	uint8_t *buf = malloc(CHUNK_BYTES);
	struct cb_error local = CB_ERROR_INIT;
	if (!buf) {
		CB_FAIL(&local, CB_ENOMEM, ckpt->path, NULL, "out of memory");
		job_fail(job, &local);
		return NULL;
	}
	for (;;) {
		size_t i = atomic_fetch_add(&job->next, 1);
		if (i >= ckpt->n_tensors || atomic_load(&job->failed))
			break;
		const struct cb_ckpt_tensor *t = &ckpt->tensors[i];
		int fd = job->fds[t->file];
		const char *path = ckpt->files[t->file].path;
		int rc = hash_tensor(fd, path, t, buf, &job->hashes[i], &local);
		if (rc != CB_OK) {
			job_fail(job, &local);
			break;
		}
	}
	free(buf);
	return NULL;
}

int cb_ckpt_hash(const struct cb_ckpt *ckpt, uint64_t *hashes_out, unsigned threads,
		 struct cb_error *err)
{
	if (threads == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		threads = cpus > 0 ? (unsigned)cpus : 1;
		if (threads > 8)
			threads = 8;
	}
	if (threads > ckpt->n_tensors)
		threads = ckpt->n_tensors ? (unsigned)ckpt->n_tensors : 1;
	struct hash_job job = {.ckpt = ckpt, .hashes = hashes_out, .err = err};
	atomic_init(&job.next, 0);
	atomic_init(&job.failed, 0);
	pthread_mutex_init(&job.err_lock, NULL);
	job.fds = calloc(ckpt->n_files ? ckpt->n_files : 1, sizeof *job.fds);
	int rc = CB_OK;
	if (!job.fds) {
		rc = CB_FAIL(err, CB_ENOMEM, ckpt->path, NULL, "out of memory");
		goto out;
	}
	for (size_t f = 0; f < ckpt->n_files; f++)
		job.fds[f] = -1;
	for (size_t f = 0; f < ckpt->n_files; f++) {
		job.fds[f] = open(ckpt->files[f].path, O_RDONLY | O_CLOEXEC);
		if (job.fds[f] < 0) {
			rc = CB_FAIL_ERRNO(err, errno, ckpt->files[f].path, "cannot open");
			goto out;
		}
		(void)posix_fadvise(job.fds[f], 0, 0, POSIX_FADV_SEQUENTIAL);
	}
	pthread_t tids[8];
	unsigned started = 0;
	for (; started + 1 < threads && started < 7; started++)
		if (pthread_create(&tids[started], NULL, hash_worker, &job) != 0)
			break;
	hash_worker(&job); /* the calling thread works too */
	for (unsigned k = 0; k < started; k++)
		pthread_join(tids[k], NULL);
	if (atomic_load(&job.failed))
		rc = atomic_load(&job.failed);
out:
	if (job.fds)
		for (size_t f = 0; f < ckpt->n_files; f++)
			if (job.fds[f] >= 0)
				close(job.fds[f]);
	free(job.fds);
	pthread_mutex_destroy(&job.err_lock);
	return rc;
}
