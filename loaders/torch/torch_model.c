/* The libtorch loaders' shared parts (torch_model.h). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/read_engine.h"
#include "manifest.h"
#include "torch_model.h"
#include "torch_module.h"

bool cb_torch_shape(uint32_t rank, const uint64_t *shape, int64_t out[CB_ATEN_MAX_RANK])
{
	if (rank > CB_ATEN_MAX_RANK)
		return false;
	for (uint32_t d = 0; d < rank; d++) {
		if (shape[d] > INT64_MAX)
			return false;
		out[d] = (int64_t)shape[d];
	}
	return true;
}

void cb_torch_contiguous_strides(uint32_t rank, const int64_t *shape, int64_t out[CB_ATEN_MAX_RANK])
{
	int64_t s = 1;
	for (uint32_t d = rank; d-- > 0;) {
		out[d] = s;
		s *= shape[d] ? shape[d] : 1;
	}
}

bool cb_torch_opt_thp(const struct cb_load_ctx *ctx)
{
	const struct cb_torch_read_opts *o = ctx->opts;
	return o && o->thp;
}

static int create_tensors(struct cb_torch_model *m, const struct cb_manifest *arch,
			  int32_t device_kind, int32_t device_index, bool zero,
			  struct cb_model *model, struct cb_error *err)
{
	m->device_kind = device_kind;
	m->device_index = device_index;
	m->t = calloc(arch->n_tensors ? arch->n_tensors : 1, sizeof *m->t);
	if (!m->t)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "cannot allocate the model's table");
	m->n = arch->n_tensors;
	for (size_t i = 0; i < arch->n_tensors; i++) {
		const struct cb_manifest_tensor *a = &arch->tensors[i];
		int64_t shape[CB_ATEN_MAX_RANK];
		if (!cb_torch_shape(a->rank, a->shape, shape))
			return CB_FAIL(err, CB_ELIMIT, NULL, a->name, "shape beyond ATen's int64");
		int rc = cb_aten_empty(a->dtype, a->rank, shape, NULL, device_kind, device_index, 0,
				       &m->t[i], err);
		void *data = NULL;
		if (rc == CB_OK)
			rc = cb_aten_data_ptr(m->t[i], &data, err);
		if (rc != CB_OK) {
			if (err && !*err->where)
				snprintf(err->where, sizeof err->where, "%s", a->name);
			return rc;
		}
		/* An empty tensor's data_ptr may be NULL; the harness reads NULL as
		 * "not loaded", so give it the table's address (0 bytes are read). */
		if (!data)
			data = &m->t[i];
		if (rc == CB_OK && zero && device_kind == CB_ATEN_CPU)
			rc = cb_aten_zero(m->t[i], err);
		if (rc != CB_OK)
			return rc;
		model->tensors[i].data = data;
		model->tensors[i].location =
			device_kind == CB_ATEN_CPU ? CB_LOC_HOST : CB_LOC_DEVICE;
	}
	return CB_OK;
}

static int model_init(struct cb_torch_model *m, const struct cb_manifest *arch, int32_t device_kind,
		      int32_t device_index, bool thp, bool zero, struct cb_model *model,
		      struct cb_error *err)
{
	bool huge = thp && device_kind == CB_ATEN_CPU;
	size_t arena = 0; /* every storage 64-byte aligned, as c10 aligns */
	for (size_t i = 0; huge && i < arch->n_tensors; i++) {
		uint64_t n = (arch->tensors[i].nbytes + 63) & ~(uint64_t)63;
		if (n < arch->tensors[i].nbytes || n > SIZE_MAX - arena)
			return CB_FAIL(err, CB_ELIMIT, NULL, arch->tensors[i].name,
				       "the model is larger than the address space");
		arena += (size_t)(n ? n : 64);
	}
	int rc = huge ? cb_aten_host_huge_pages(arena, err) : CB_OK;
	if (rc == CB_OK)
		rc = create_tensors(m, arch, device_kind, device_index, zero, model, err);
	/* Only the model: the storages a load reads later are ATen's own. */
	struct cb_error ignored = CB_ERROR_INIT;
	if (huge)
		(void)cb_aten_host_huge_pages(0, rc == CB_OK ? err : &ignored);
	m->arena = huge;
	return rc;
}

int cb_torch_model_init(struct cb_torch_model *m, const struct cb_manifest *arch,
			int32_t device_kind, int32_t device_index, bool thp, struct cb_model *model,
			struct cb_error *err)
{
	return model_init(m, arch, device_kind, device_index, thp, true, model, err);
}

int cb_torch_model_empty(struct cb_torch_model *m, const struct cb_manifest *arch,
			 int32_t device_kind, int32_t device_index, bool thp,
			 struct cb_model *model, struct cb_error *err)
{
	return model_init(m, arch, device_kind, device_index, thp, false, model, err);
}

void cb_torch_model_free(struct cb_torch_model *m)
{
	for (size_t i = 0; i < m->n; i++)
		cb_aten_free(m->t[i]);
	/* The model's storages were the arena's; none is left now. */
	if (m->arena)
		cb_aten_host_arena_release();
	m->arena = false;
	free(m->t);
	m->t = NULL;
	m->n = 0;
}

int cb_torch_model_fetch(struct cb_torch_model *m, const struct cb_manifest *arch,
			 struct cb_loader_fetch *f, struct cb_error *err)
{
	if (f->index >= m->n || !m->t[f->index])
		return CB_FAIL(err, CB_EINTERNAL, NULL, NULL, "no such model tensor");
	const struct cb_manifest_tensor *a = &arch->tensors[f->index];
	int64_t shape[CB_ATEN_MAX_RANK];
	if (!cb_torch_shape(a->rank, a->shape, shape) || f->nbytes != a->nbytes)
		return CB_FAIL(err, CB_EINTERNAL, NULL, a->name, "fetch of the wrong size");
	struct cb_aten_tensor *host = NULL;
	int rc = cb_aten_from_blob(f->host_buf, a->dtype, a->rank, shape, NULL, CB_ATEN_CPU, 0,
				   &host, err);
	if (rc == CB_OK) /* same dtype and shape: a byte copy, no conversion */
		rc = cb_aten_copy(host, m->t[f->index], 0, err);
	cb_aten_free(host);
	return rc;
}

int cb_torch_open_files(const struct cb_ckpt *ckpt, int **fds_out, struct cb_error *err)
{
	int *fds = malloc((ckpt->n_files ? ckpt->n_files : 1) * sizeof *fds);
	*fds_out = fds;
	if (!fds)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < ckpt->n_files; i++)
		fds[i] = -1;
	int rc = CB_OK;
	for (size_t i = 0; rc == CB_OK && i < ckpt->n_files; i++)
		rc = cb_engine_open_file(ckpt->files[i].path, false, &fds[i], err);
	return rc;
}

void cb_torch_close_files(int *fds, size_t n)
{
	for (size_t i = 0; fds && i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
}
