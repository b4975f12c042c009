/* The dataset generator: a preset's tensors, filled with weight-like values,
 * written as a checkpoint with a manifest beside it.
 *
 * A dataset is a directory DIR/<preset>-<size>-<dtype>-s<seed>/ holding
 * model.safetensors (or model-0000K-of-0000N.safetensors shards and
 * model.safetensors.index.json) and manifest.json, the `inspect --json`
 * document of the model. The manifest is written last: a directory without
 * one is an unfinished dataset.
 */
#ifndef CB_GEN_H
#define CB_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include "dtype.h"
#include "error.h"

struct cb_gen_options {
	const char *preset;  /* "llama" by default */
	uint64_t size;       /* bytes; 0 = the preset's default */
	enum cb_dtype dtype; /* CB_DTYPE_INVALID = the preset's default */
	unsigned shards;     /* 0 or 1 = one file */
	uint64_t seed;       /* default 1 */
	const char *out_dir; /* the parent of the dataset directory */
	bool safetensors;    /* formats to write */
	bool pytorch;
	bool force;       /* regenerate an existing dataset */
	bool no_sync;     /* skip fsync: faster, not crash-safe */
	bool progress;    /* a progress line on stderr */
	unsigned threads; /* 0 = one per CPU */
};

void cb_gen_default_options(struct cb_gen_options *opts);

/* Where datasets live: $CKPTBENCH_DATA when set and not empty, else
 * datasets/data (relative to the working directory). The one default that
 * gen writes to and run, calibrate and sysinfo look at. Borrowed; never
 * NULL. */
const char *cb_data_dir(void);

struct cb_gen_result {
	char name[128]; /* the dataset's directory name */
	char *dir;      /* its path; freed by cb_gen_result_free */
	uint64_t model_bytes;
	uint64_t written_bytes; /* all files */
	size_t n_tensors;
	double seconds;      /* generating and writing, fsync included */
	double sync_seconds; /* of which fsync */
	bool existed;        /* nothing was done: it was there already */
	char description[160];
};

/* The dataset name for these options (no I/O). */
CB_NODISCARD int cb_gen_dataset_name(const struct cb_gen_options *opts, char *out, size_t size,
				     struct cb_error *err);

CB_NODISCARD int cb_gen_dataset(const struct cb_gen_options *opts, struct cb_gen_result *out,
				struct cb_error *err);

void cb_gen_result_free(struct cb_gen_result *result);

/* "256M", "1G", "1.5G": the size in K/M/G (powers of 1024) with at most
 * three significant digits. */
void cb_format_size_label(uint64_t bytes, char *out, size_t size);

#endif
