/* The test loaders' shared part: the model as views into mapped files. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "test_loaders.h"

static int map_files(struct cb_test_map *m, unsigned flags, struct cb_error *err)
{
	m->n = m->ckpt->n_files;
	m->maps = calloc(m->n, sizeof *m->maps);
	m->lens = calloc(m->n, sizeof *m->lens);
	if (!m->maps || !m->lens)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < m->n; i++) {
		const struct cb_ckpt_file *f = &m->ckpt->files[i];
		int fd = open(f->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return CB_FAIL_ERRNO(err, errno, f->path, "open");
		bool priv = flags & CB_TEST_MAP_PRIVATE;
		void *p = f->size ? mmap(NULL, f->size, PROT_READ | (priv ? PROT_WRITE : 0),
					 priv ? MAP_PRIVATE : MAP_SHARED, fd, 0)
				  : NULL;
		int e = errno;
		close(fd);
		if (p == MAP_FAILED)
			return CB_FAIL_ERRNO(err, e, f->path, "mmap");
		m->maps[i] = p;
		m->lens[i] = f->size;
	}
	return CB_OK;
}

int cb_test_map_model(struct cb_test_map *m, const struct cb_load_ctx *ctx, struct cb_model *model,
		      unsigned flags, struct cb_error *err)
{
	cb_loader_phase(ctx, CB_PHASE_READ);
	int rc = cb_ckpt_open(ctx->path, CB_FORMAT_SAFETENSORS, &m->ckpt, err);
	if (rc == CB_OK)
		rc = map_files(m, flags, err);
	for (size_t i = 0; rc == CB_OK && i < model->n; i++) {
		const struct cb_ckpt_tensor *t = cb_ckpt_find(m->ckpt, model->tensors[i].name);
		if (!t || t->nbytes != model->tensors[i].nbytes)
			return CB_FAIL(err, CB_EMISMATCH, ctx->path, model->tensors[i].name,
				       "the checkpoint lacks this tensor or has another size");
		model->tensors[i].data = (char *)m->maps[t->file] + t->offset;
		model->tensors[i].location = CB_LOC_HOST;
	}
	if (rc == CB_OK && (flags & CB_TEST_MAP_TOUCH)) {
		long page = sysconf(_SC_PAGESIZE);
		volatile unsigned char sink = 0;
		for (size_t i = 0; i < m->n; i++)
			for (size_t off = 0; off < m->lens[i]; off += (size_t)page)
				sink ^= ((const unsigned char *)m->maps[i])[off];
		(void)sink;
	}
	cb_loader_phase(ctx, CB_PHASE_NONE);
	return rc;
}

void cb_test_map_free(struct cb_test_map *m)
{
	for (size_t i = 0; m->maps && i < m->n; i++)
		if (m->maps[i])
			munmap(m->maps[i], m->lens[i]);
	free(m->maps);
	free(m->lens);
	cb_ckpt_free(m->ckpt);
	memset(m, 0, sizeof *m);
}
