/* Reading a partial load's slices with the read engine (slice_read.h). */
#include "slice_read.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../host.h"

/* A span: n_runs runs of run_len bytes, stride bytes apart, read as one
 * item from the first run's start to the last run's end; the runs go one
 * after another to `dest`. n_runs 0: the item is one run read into place. */
struct cb_slice_span {
	char *dest;
	uint64_t run_len, stride, n_runs;
};

/* Appends an item (and its span entry), growing both arrays together. */
static int push_item(struct cb_slice_read *sr, size_t *cap, const struct cb_read_item *item,
		     const struct cb_slice_span *span, struct cb_error *err)
{
	if (sr->n_items == *cap) {
		size_t want = *cap ? *cap * 2 : 64;
		struct cb_read_item *items = realloc(sr->items, want * sizeof *items);
		if (items)
			sr->items = items;
		struct cb_slice_span *spans = realloc(sr->spans, want * sizeof *spans);
		if (spans)
			sr->spans = spans;
		if (!items || !spans)
			return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory for the read plan");
		*cap = want;
	}
	sr->items[sr->n_items] = *item;
	sr->spans[sr->n_items] = *span;
	sr->n_items++;
	return CB_OK;
}

/* The reads of one slice tensor, its data in file `file` at `base`. */
static int plan_tensor(struct cb_slice_read *sr, size_t *cap, uint64_t gap_max, uint32_t file,
		       uint64_t base, const struct cb_slice_tensor *s, char *dest,
		       struct cb_error *err)
{
	sr->runs += s->n_runs;
	if (s->n_runs == 0 || s->run_len == 0)
		return CB_OK;
	uint64_t gap = s->stride - s->run_len; /* slice.h: stride >= run_len */
	/* How many runs one span may hold: within CB_SLICE_SPAN_MAX. */
	uint64_t per_span = 1;
	if (s->n_runs > 1 && gap < gap_max && s->run_len <= CB_SLICE_SPAN_MAX)
		per_span = (CB_SLICE_SPAN_MAX - s->run_len) / s->stride + 1;
	for (uint64_t k = 0; k < s->n_runs;) {
		uint64_t n = s->n_runs - k < per_span ? s->n_runs - k : per_span;
		uint64_t off = base + s->first + k * s->stride;
		if (n == 1) { /* a run straight into its place */
			struct cb_read_item item = {.file = file,
						    .offset = off,
						    .len = s->run_len,
						    .dest = dest + k * s->run_len};
			int rc = push_item(sr, cap, &item, &(struct cb_slice_span){0}, err);
			if (rc != CB_OK)
				return rc;
		} else {
			uint64_t len = (n - 1) * s->stride + s->run_len;
			struct cb_read_item item = {.file = file, .offset = off, .len = len};
			int rc = push_item(sr, cap, &item,
					   &(struct cb_slice_span){dest + k * s->run_len,
								   s->run_len, s->stride, n},
					   err);
			if (rc != CB_OK)
				return rc;
			sr->coalesced_runs += n;
			sr->span_bytes += len;
		}
		k += n;
	}
	return CB_OK;
}

int cb_slice_read_plan(const struct cb_ckpt *ckpt, const struct cb_manifest *whole,
		       const struct cb_slice_plan *slice, const struct cb_model *model,
		       uint64_t gap_max, struct cb_slice_read *out, struct cb_error *err)
{
	*out = (struct cb_slice_read){.model = model};
	size_t cap = 0;
	for (size_t i = 0; i < slice->n; i++) {
		const struct cb_slice_tensor *s = &slice->tensors[i];
		const struct cb_manifest_tensor *want = &whole->tensors[s->index];
		const struct cb_ckpt_tensor *have = cb_ckpt_find(ckpt, want->name);
		int rc = cb_host_match(want, have, false, ckpt->path, err);
		if (rc == CB_OK)
			rc = plan_tensor(out, &cap, gap_max, have->file, have->offset, s,
					 model->tensors[i].data, err);
		if (rc != CB_OK)
			return rc;
	}
	return CB_OK;
}

/* The engine's consumer: a plain run's chunk lands in place; a span's goes
 * to the reader's scratch, whose runs are then copied into place. */
static int span_buffer(void *ctx, unsigned worker, const struct cb_read_chunk *c, void **buf,
		       struct cb_error *err)
{
	struct cb_slice_read *sr = ctx;
	(void)err;
	*buf = sr->spans[c->item].n_runs ? (void *)sr->scratch[worker] : (void *)c->dest;
	return CB_OK;
}

static int span_consume(void *ctx, unsigned worker, const struct cb_read_chunk *c, void *buf,
			struct cb_error *err)
{
	struct cb_slice_read *sr = ctx;
	(void)worker, (void)err;
	const struct cb_slice_span *sp = &sr->spans[c->item];
	if (!sp->n_runs)
		return CB_OK;
	/* The chunk holds span bytes [lo, hi); run k is [k * stride, k *
	 * stride + run_len). Copy each run's part within the chunk. */
	uint64_t lo = c->item_off, hi = c->item_off + c->len;
	const uint8_t *src = buf;
	for (uint64_t k = lo / sp->stride; k < sp->n_runs && k * sp->stride < hi; k++) {
		uint64_t a = k * sp->stride, b = a + sp->run_len;
		if (a < lo)
			a = lo;
		if (b > hi)
			b = hi;
		if (a < b)
			memcpy(sp->dest + k * sp->run_len + (a - k * sp->stride), src + (a - lo),
			       (size_t)(b - a));
	}
	return CB_OK;
}

/* Every read asked of the kernel at once, before the first is made: a
 * slice of each row is thousands of small reads, and made one after the
 * other each would wait for the device in turn (the files are advised
 * POSIX_FADV_RANDOM: no read-ahead to hide it). POSIX_FADV_WILLNEED
 * starts each range's read and returns, so the device gets them all
 * queued and the reads then find their pages, or wait for them to land.
 * It reads exactly the ranges' pages. Not for O_DIRECT, which bypasses
 * the page cache the advice fills. */
static void prefetch(const struct cb_engine *e, struct cb_slice_read *sr)
{
	if (e->cfg.direct)
		return;
	for (size_t i = 0; i < sr->n_items; i++) {
		const struct cb_read_item *it = &sr->items[i];
		if (it->file < e->n_files && e->files[it->file].fd >= 0 &&
		    posix_fadvise(e->files[it->file].fd, (off_t)it->offset, (off_t)it->len,
				  POSIX_FADV_WILLNEED) == 0)
			sr->prefetched++;
	}
}

int cb_slice_read_run(struct cb_engine *e, struct cb_slice_read *sr, struct cb_error *err)
{
	prefetch(e, sr);
	if (!sr->coalesced_runs) /* every run straight into place */
		return cb_engine_read(e, sr->items, sr->n_items, err);
	/* The scratch is part of the load (its memory counts), one per
	 * reader; a span is never longer than one. */
	sr->scratch = calloc(e->n_workers, sizeof *sr->scratch);
	if (!sr->scratch)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory for the readers' scratch");
	sr->n_scratch = e->n_workers;
	for (unsigned w = 0; w < e->n_workers; w++) {
		void *p = mmap(NULL, CB_SLICE_SPAN_MAX, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return CB_FAIL(err, CB_ENOMEM, NULL, NULL,
				       "no memory for the readers' scratch");
		sr->scratch[w] = p;
	}
	struct cb_engine_consumer consumer = {
		.ctx = sr,
		.buffer = span_buffer,
		.consume = span_consume,
	};
	return cb_engine_run(e, sr->items, sr->n_items, &consumer, err);
}

static double mib(uint64_t b)
{
	return (double)b / (1 << 20);
}

void cb_slice_read_describe(const struct cb_slice_read *sr, char *out, size_t size)
{
	snprintf(out, size,
		 "%llu slice runs in %zu reads (%llu runs coalesced, %.1f MiB of spans; %zu "
		 "asked ahead with WILLNEED)",
		 (unsigned long long)sr->runs, sr->n_items, (unsigned long long)sr->coalesced_runs,
		 mib(sr->span_bytes), sr->prefetched);
}

void cb_slice_read_free(struct cb_slice_read *sr)
{
	for (unsigned w = 0; w < sr->n_scratch; w++)
		if (sr->scratch[w])
			munmap(sr->scratch[w], CB_SLICE_SPAN_MAX);
	free(sr->scratch);
	free(sr->items);
	free(sr->spans);
	*sr = (struct cb_slice_read){0};
}
