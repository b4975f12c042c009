/* Record order as torch >= 2.1 writes it (torch/serialization.py _save and
 * PyTorchStreamWriter::writeEndOfFile): data.pkl, byteorder, the storages in
 * key order (torch >= 2.7 orders them numerically, which keeps them in pickle
 * order: sequential for a reader), version last. */
#include "pt_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"

static const char byteorder_text[] = "little";
static const char version_text[] = "3\n";

void cb_pt_layout_free(struct cb_pt_layout *layout)
{
	cb_ptzip_writer_free(&layout->zip);
	free(layout->pickle);
	free(layout->storage_entry);
	free(layout->storage_nbytes);
	memset(layout, 0, sizeof *layout);
}

static int plan_records(struct cb_pt_layout *l, const struct cb_pkl_storage *storages,
			bool byteorder, struct cb_error *err)
{
	int rc = cb_ptzip_writer_add(&l->zip, "data.pkl", l->pickle_len, &l->pickle_entry, err);
	if (rc == CB_OK && byteorder)
		rc = cb_ptzip_writer_add(&l->zip, "byteorder", strlen(byteorder_text),
					 &l->byteorder_entry, err);
	for (size_t k = 0; rc == CB_OK && k < l->n_storages; k++) {
		char rel[32];
		snprintf(rel, sizeof rel, "data/%zu", k);
		/* validated by the pickler: no overflow, at most 2^63 */
		(void)cb_dtype_nbytes(storages[k].dtype, storages[k].numel, &l->storage_nbytes[k],
				      NULL);
		rc = cb_ptzip_writer_add(&l->zip, rel, l->storage_nbytes[k], &l->storage_entry[k],
					 err);
	}
	if (rc == CB_OK)
		rc = cb_ptzip_writer_add(&l->zip, "version", strlen(version_text),
					 &l->version_entry, err);
	return rc;
}

int cb_pt_layout_build(const char *final_path, const struct cb_pkl_tensor *tensors, size_t n,
		       const struct cb_pkl_storage *storages, size_t n_storages,
		       const struct cb_pt_options *opts, struct cb_pt_layout *out,
		       struct cb_error *err)
{
	static const struct cb_pt_options defaults = {0};
	if (!opts)
		opts = &defaults;
	memset(out, 0, sizeof *out);
	out->byteorder_entry = SIZE_MAX;
	int rc = cb_pkl_write_state_dict(tensors, n, storages, n_storages, opts->modules,
					 opts->n_modules, &out->pickle, &out->pickle_len, err);
	if (rc != CB_OK) {
		cb_error_set_path(err, final_path);
		return rc;
	}
	char prefix[256];
	cb_ptzip_prefix_for_path(final_path, prefix, sizeof prefix);
	if ((rc = cb_ptzip_writer_init(&out->zip, prefix, err)) != CB_OK)
		goto fail;
	if (opts->zip64_at)
		out->zip.zip64_at = opts->zip64_at;
	out->n_storages = n_storages;
	out->storage_entry = calloc(n_storages ? n_storages : 1, sizeof *out->storage_entry);
	out->storage_nbytes = calloc(n_storages ? n_storages : 1, sizeof *out->storage_nbytes);
	if (!out->storage_entry || !out->storage_nbytes) {
		rc = CB_FAIL(err, CB_ENOMEM, final_path, NULL, "out of memory");
		goto fail;
	}
	if ((rc = plan_records(out, storages, !opts->no_byteorder, err)) != CB_OK)
		goto fail;
	return CB_OK;
fail:
	cb_error_set_path(err, final_path);
	cb_pt_layout_free(out);
	return rc;
}

uint64_t cb_pt_storage_offset(const struct cb_pt_layout *layout, size_t k)
{
	return layout->zip.entries[layout->storage_entry[k]].data_offset;
}

uint64_t cb_pt_file_size(const struct cb_pt_layout *layout)
{
	return cb_ptzip_writer_file_size(&layout->zip);
}

int cb_pt_write_head(struct cb_pt_layout *l, int fd, const char *path, struct cb_error *err)
{
	/* Sized first: storages may then be written in any order, and a sparse
	 * gap is never left at the end. */
	if (ftruncate(fd, (off_t)cb_pt_file_size(l)) != 0)
		return CB_FAIL_ERRNO(err, errno, path, "cannot size the file");
	int rc = cb_ptzip_writer_write_headers(&l->zip, fd, path, err);
	if (rc == CB_OK)
		rc = cb_ptzip_writer_put(&l->zip, l->pickle_entry, fd, l->pickle, path, err);
	if (rc == CB_OK && l->byteorder_entry != SIZE_MAX)
		rc = cb_ptzip_writer_put(&l->zip, l->byteorder_entry, fd, byteorder_text, path,
					 err);
	if (rc == CB_OK)
		rc = cb_ptzip_writer_put(&l->zip, l->version_entry, fd, version_text, path, err);
	return rc;
}

void cb_pt_set_storage_crc(struct cb_pt_layout *layout, size_t k, uint32_t crc)
{
	layout->zip.entries[layout->storage_entry[k]].crc32 = crc;
}

int cb_pt_write_tail(const struct cb_pt_layout *layout, int fd, const char *path,
		     struct cb_error *err)
{
	return cb_ptzip_writer_write_trailer(&layout->zip, fd, path, err);
}

int cb_pt_write_file(const char *path, const struct cb_pkl_tensor *tensors, size_t n,
		     const struct cb_pkl_storage *storages, const void *const *data,
		     size_t n_storages, const struct cb_pt_options *opts, bool durable,
		     struct cb_error *err)
{
	struct cb_pt_layout layout;
	int rc = cb_pt_layout_build(path, tensors, n, storages, n_storages, opts, &layout, err);
	if (rc != CB_OK)
		return rc;
	struct cb_atomic_file file;
	if ((rc = cb_atomic_open(&file, path, err)) != CB_OK) {
		cb_pt_layout_free(&layout);
		return rc;
	}
	rc = cb_pt_write_head(&layout, file.fd, path, err);
	for (size_t k = 0; rc == CB_OK && k < n_storages; k++) {
		size_t entry = layout.storage_entry[k];
		rc = cb_ptzip_writer_put(&layout.zip, entry, file.fd, data[k], path, err);
	}
	if (rc == CB_OK)
		rc = cb_pt_write_tail(&layout, file.fd, path, err);
	if (rc == CB_OK)
		rc = cb_atomic_commit(&file, durable, err);
	cb_atomic_abort(&file);
	cb_pt_layout_free(&layout);
	return rc;
}
