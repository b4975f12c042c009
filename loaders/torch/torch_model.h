/* What the libtorch loaders share (inside the module only): the model as
 * ATen tensors, verification fetches from the GPU, and the checkpoint's
 * files opened as the read engine opens them (engine/read_engine.h, which
 * does their reads).
 */
#ifndef CB_TORCH_MODEL_H
#define CB_TORCH_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cb_aten.h"
#include "ckpt.h"
#include "loader.h"

/* The model: one ATen tensor per architecture tensor, on one device. */
struct cb_torch_model {
	size_t n;
	struct cb_aten_tensor **t; /* owned; entries may be NULL after a failure */
	int32_t device_kind;       /* CB_ATEN_CPU or CB_ATEN_CUDA */
	int32_t device_index;
	bool arena; /* its host storages are cb_aten's huge-page arena */
};

/* M(): every architecture tensor created by at::empty on the device; on the
 * host zeroed by ATen's zero_ (parallel), as an initialiser touches them, and
 * with `thp` every storage carved from one huge-page arena mapped for the
 * model (cb_aten_host_huge_pages), the layout safetensors-read's model has. Sets each
 * model->tensors[i].data and location. Free with cb_torch_model_free, also
 * after a failure. */
int cb_torch_model_init(struct cb_torch_model *m, const struct cb_manifest *arch,
			int32_t device_kind, int32_t device_index, bool thp, struct cb_model *model,
			struct cb_error *err);

/* The same without the initialiser: at::empty only, nothing written, as a
 * model built on the meta device and materialised empty (from_pretrained
 * with safetensors) before each tensor is read straight into place. */
int cb_torch_model_empty(struct cb_torch_model *m, const struct cb_manifest *arch,
			 int32_t device_kind, int32_t device_index, bool thp,
			 struct cb_model *model, struct cb_error *err);

/* The `thp` option of a load, false where the loader has no options. */
bool cb_torch_opt_thp(const struct cb_load_ctx *ctx);

void cb_torch_model_free(struct cb_torch_model *m);

/* CB_LOADER_CTL_FETCH for a model on a GPU: copies tensor `f->index` into
 * the harness's host buffer through ATen (a from_blob over the buffer). */
int cb_torch_model_fetch(struct cb_torch_model *m, const struct cb_manifest *arch,
			 struct cb_loader_fetch *f, struct cb_error *err);

/* The architecture tensor's shape as ATen takes it; false when a dimension
 * does not fit int64 or the rank is too large. */
bool cb_torch_shape(uint32_t rank, const uint64_t *shape, int64_t out[CB_ATEN_MAX_RANK]);

/* Contiguous row-major strides of a shape (elements). */
void cb_torch_contiguous_strides(uint32_t rank, const int64_t *shape,
				 int64_t out[CB_ATEN_MAX_RANK]);

/* Opens every file of the checkpoint read-only, advised sequential
 * (cb_engine_open_file); fds_out[i] is -1 until opened. The caller closes
 * and frees them (cb_torch_close_files). */
int cb_torch_open_files(const struct cb_ckpt *ckpt, int **fds_out, struct cb_error *err);
void cb_torch_close_files(int *fds, size_t n);

#endif
