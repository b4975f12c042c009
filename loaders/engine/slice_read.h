/* Reading a partial load's slices with the read engine: the read plan of a
 * safetensors checkpoint when only part of each tensor is wanted
 * (docs/partial-loads.md).
 *
 * A slice is runs of bytes at a fixed stride within its tensor
 * (slice.h): one run for a split on the first dimension, one per row for a
 * split on a later one. Each run could be its own read, straight into
 * place. Where the gap between runs is small, separate reads cost a call
 * each and still bring the gap's pages in (storage is read in pages), so
 * runs closer than CB_SLICE_GAP_MAX are coalesced: one read of the span
 * into a per-reader scratch buffer, from which the runs are copied into
 * place. Every read is asked of the kernel ahead (POSIX_FADV_WILLNEED), so
 * the device has them all queued, not one small read at a time. The
 * engine's threads, chunking, O_DIRECT and errors apply as to
 * any read; the files are read with cfg.exact (no read-ahead past the
 * slices), which the caller sets. What was decided is counted and said
 * (cb_slice_read_describe).
 */
#ifndef CB_SLICE_READ_H
#define CB_SLICE_READ_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"
#include "error.h"
#include "read_engine.h"
#include "slice.h"

/* Runs less than this far apart are read as one span, by default. A gap
 * shorter than a page holds no page the runs on either side do not touch,
 * so up to a page a span costs nothing; beyond, it reads pages no run
 * needs, and saves a read for each run. Which is cheaper is the device's
 * affair: a read costs the device a fixed time (1 / its IOPS) and a byte
 * 1 / its bandwidth, so a gap is worth reading whole up to about
 * bandwidth / IOPS bytes: 30 KiB at 100,000 IOPS and 3 GB/s, typical of an
 * NVMe drive. Half of that is the default; a loader may choose (0: every
 * run its own read, reading only the runs' pages). */
#define CB_SLICE_GAP_MAX (UINT64_C(16) << 10)

/* A coalesced span is at most this long, which is the size of each
 * reader's scratch buffer: the scratch is memory the load holds beside the
 * slice, kept small against it. */
#define CB_SLICE_SPAN_MAX (UINT64_C(1) << 20)

struct cb_slice_span; /* private */

/* The plan; everything in it is owned here (cb_slice_read_free). */
struct cb_slice_read {
	struct cb_read_item *items; /* one per read: a run into place, or a span */
	size_t n_items;
	struct cb_slice_span *spans; /* per item; .n_runs 0 for a run read into place */
	uint8_t **scratch;           /* one CB_SLICE_SPAN_MAX buffer per reader, when spans */
	unsigned n_scratch;
	const struct cb_model *model;
	/* What was decided. */
	uint64_t runs;           /* runs of the slices */
	uint64_t coalesced_runs; /* of them read within a span */
	uint64_t span_bytes;     /* bytes the spans read, gaps included */
	size_t prefetched;       /* reads asked of the kernel ahead (POSIX_FADV_WILLNEED) */
};

/* Checks every tensor of the part against the checkpoint as
 * load_state_dict(strict=True) checks the whole one (cb_host_match on
 * ctx->whole's tensor), then plans the reads of slice->tensors[i] into
 * model->tensors[i].data (the slice's bytes, runs one after another).
 * Runs less than gap_max bytes apart are read as one span
 * (CB_SLICE_GAP_MAX says why). Safetensors only (contiguous tensors).
 * Free with cb_slice_read_free,
 * also after a failure. */
CB_NODISCARD int cb_slice_read_plan(const struct cb_ckpt *ckpt, const struct cb_manifest *whole,
				    const struct cb_slice_plan *slice, const struct cb_model *model,
				    uint64_t gap_max, struct cb_slice_read *out,
				    struct cb_error *err);

/* Reads the plan with engine e (set up, its files opened in the
 * checkpoint's order): plain runs straight into place, spans through each
 * reader's scratch. */
CB_NODISCARD int cb_slice_read_run(struct cb_engine *e, struct cb_slice_read *sr,
				   struct cb_error *err);

/* "412 runs in 96 reads (340 runs coalesced, 1.3 MiB of gaps read)". */
void cb_slice_read_describe(const struct cb_slice_read *sr, char *out, size_t size);

void cb_slice_read_free(struct cb_slice_read *sr);

#endif
