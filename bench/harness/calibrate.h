/* The machine's ceilings: what the storage and memory can do at best, so
 * every cell can be given as a fraction of the relevant one
 * (docs/datasets-and-method.md §5.4).
 *
 * GB/s here are 1e9 bytes per second. Each figure is the median of 5 passes
 * (3 for the informative ones); the reads' best passes are kept too.
 */
#ifndef CB_CALIBRATE_H
#define CB_CALIBRATE_H

#include <jansson.h>
#include <stdint.h>

#include "error.h"

struct cb_calibration {
	/* The read ceilings: the file read into memory of its size, by one
	 * thread and by one per CPU (at most 16), the faster method's median. */
	double cold_read_gbps;        /* preads after eviction, page cache path */
	double cold_read_direct_gbps; /* O_DIRECT, one thread, reused buffer */
	double warm_read_gbps;        /* preads of a fully cached file */
	/* memcpy figures are bytes copied per second (the memory traffic is
	 * twice that), with buffers far beyond the last-level caches. */
	double memcpy_gbps;         /* one thread */
	double memcpy_all_gbps;     /* one thread per online CPU, summed */
	double h2d_gbps;            /* pinned host to device (with a GPU) */
	double cold_read_best_gbps; /* the fastest cold and warm passes */
	double warm_read_best_gbps;
	/* One thread reading into one small reused buffer, as fio does: the
	 * buffer stays in the caches, so these measure the page cache's
	 * copy-out, not a load (informative). */
	double cold_read_reused_gbps;
	double warm_read_reused_gbps;
	/* NAN when not measured. */
	uint64_t file_bytes;   /* size of the scratch file used */
	uint64_t memcpy_bytes; /* size of each memcpy buffer */
	char note[256];        /* why something is NAN; may be empty */
};

/* The scratch file's size when neither an option nor CKPTBENCH_CALIBRATE_SIZE
 * says otherwise. */
#define CB_CALIBRATE_DEFAULT_SIZE (UINT64_C(1) << 30)

/* Measures the ceilings for the filesystem holding data_dir, with a scratch
 * file of `size` bytes (0: CKPTBENCH_CALIBRATE_SIZE from the environment,
 * else CB_CALIBRATE_DEFAULT_SIZE). The file is created in data_dir and
 * removed before returning, on success and failure alike. */
int cb_calibrate_sized(const char *data_dir, uint64_t size, struct cb_calibration *out,
		       struct cb_error *err);

/* cb_calibrate_sized(data_dir, 0, out, err). */
int cb_calibrate(const char *data_dir, struct cb_calibration *out, struct cb_error *err);

/* A read ceiling matched to one file size: the cold and warm reads of a
 * scratch file of that size, as cb_calibration's (the informative figures
 * left out). Reading a file has costs that do not shrink with it (the
 * first reads' latency, read-ahead ramping up, threads and opens), so a
 * 256 MiB load is held against a 256 MiB read, not a 1 GiB one. */
struct cb_read_ceiling {
	uint64_t file_bytes;
	double cold_read_gbps, warm_read_gbps;
	double cold_read_best_gbps, warm_read_best_gbps;
	char note[256];
};

/* Measures the read ceiling for files of `size` bytes (rounded up to 1 MiB)
 * in data_dir; the scratch file is removed on success and failure alike. */
int cb_calibrate_reads(const char *data_dir, uint64_t size, struct cb_read_ceiling *out,
		       struct cb_error *err);

/* The ceilings' own read, for the reads `run` makes of the datasets' files
 * between its trials (the paired ceilings, run_ceiling.c). */

/* A read destination of len bytes: anonymous, huge pages asked for, every
 * page written first so no read pays a first touch. munmap(p, len) frees
 * it; NULL when the memory is not there. */
unsigned char *cb_read_buffer(size_t len);

/* One timed read of files[0..n) in order, each into its place in dest
 * (dest_len bytes; CB_ELIMIT when the files do not fit), each file by
 * `threads` threads in contiguous shares with large preads: the read
 * engine's (engine/read_engine.h), whose cb_engine_threads(0) is the N of
 * the N-thread read. *bytes_out is the bytes read, *seconds_out the sum of
 * the files' read times. The cache state is the caller's to prepare. */
int cb_read_files(const char *const *paths, size_t n, unsigned threads, unsigned char *dest,
		  size_t dest_len, uint64_t *bytes_out, double *seconds_out, struct cb_error *err);

/* {"file_bytes", "cold_read_gbps", "warm_read_gbps", "cold_read_best_gbps",
 * "warm_read_best_gbps", "note"}; new reference, NULL on allocation failure. */
json_t *cb_read_ceiling_json(const struct cb_read_ceiling *c);

/* The "calibration" object of a results file (docs/results-schema.md): cold_read_gbps,
 * cold_read_direct_gbps, warm_read_gbps, memcpy_gbps, memcpy_all_gbps,
 * h2d_gbps (null where NAN), plus cold_read_best_gbps, warm_read_best_gbps,
 * cold_read_reused_gbps, warm_read_reused_gbps, file_bytes, memcpy_bytes and note. New reference; the
 * caller owns it. NULL on allocation failure. */
json_t *cb_calibration_json(const struct cb_calibration *cal);

#endif
