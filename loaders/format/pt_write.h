/* Writing a state dict as a PyTorch checkpoint, the file torch.save(sd, path)
 * makes: a zip archive named after the file's stem holding data.pkl,
 * byteorder ("little"), data/0 ... data/N-1 (one record per storage, in key
 * order, each 64-byte aligned) and version ("3\n"), with ZIP64 wherever a
 * size or offset needs it (files over 4 GiB). torch 1.6 and later load it,
 * weights_only included; torch before 2.1 ignores the byteorder record.
 *
 * Like the zip writer it is a plan first, so that storages can be written in
 * parallel at known offsets: build the layout, write the head (headers and
 * the small records), write each storage's bytes at its offset and give its
 * CRC-32, then write the tail. cb_pt_write_file does all of it for storages
 * held in memory, through a temporary file renamed into place.
 */
#ifndef CB_PT_WRITE_H
#define CB_PT_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "pickle_write.h"
#include "ptzip_write.h"

struct cb_pt_options {
	bool no_byteorder; /* omit the byteorder record, as torch < 2.1 does */
	/* the state dict's _metadata; NULL for none */
	const struct cb_pkl_module_version *modules;
	size_t n_modules;
	uint64_t zip64_at; /* 0: the real threshold (tests lower it) */
};

struct cb_pt_layout {
	struct cb_ptzip_writer zip;
	uint8_t *pickle; /* data.pkl; owned */
	size_t pickle_len;
	size_t n_storages;
	size_t *storage_entry; /* per storage: its zip entry */
	uint64_t *storage_nbytes;
	size_t pickle_entry, byteorder_entry, version_entry; /* SIZE_MAX if absent */
};

/* Pickles the state dict and plans the archive for the file that will be
 * called `final_path` (its stem names the archive). `opts` may be NULL. On
 * success free the layout with cb_pt_layout_free. */
CB_NODISCARD int cb_pt_layout_build(const char *final_path, const struct cb_pkl_tensor *tensors,
				    size_t n, const struct cb_pkl_storage *storages,
				    size_t n_storages, const struct cb_pt_options *opts,
				    struct cb_pt_layout *out, struct cb_error *err);

void cb_pt_layout_free(struct cb_pt_layout *layout);

/* The file offset of storage k's first byte, and the whole file's size. */
uint64_t cb_pt_storage_offset(const struct cb_pt_layout *layout, size_t k);
uint64_t cb_pt_file_size(const struct cb_pt_layout *layout);

/* Sizes the file and writes every local header and the small records
 * (data.pkl, byteorder, version). */
CB_NODISCARD int cb_pt_write_head(struct cb_pt_layout *layout, int fd, const char *path,
				  struct cb_error *err);

/* The CRC-32 of storage k's bytes, once written. */
void cb_pt_set_storage_crc(struct cb_pt_layout *layout, size_t k, uint32_t crc);

/* Writes the data descriptors, the central directory and the end records. */
CB_NODISCARD int cb_pt_write_tail(const struct cb_pt_layout *layout, int fd, const char *path,
				  struct cb_error *err);

/* The whole file from storages in memory (data[k] holds storage k's bytes),
 * written to a temporary file beside `path` and renamed over it (fsync'd
 * first when `durable`); nothing is left behind on failure. */
CB_NODISCARD int cb_pt_write_file(const char *path, const struct cb_pkl_tensor *tensors, size_t n,
				  const struct cb_pkl_storage *storages, const void *const *data,
				  size_t n_storages, const struct cb_pt_options *opts, bool durable,
				  struct cb_error *err);

#endif
