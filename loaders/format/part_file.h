/* The part file: what one trial of a partial load is told to load, the one
 * document the harness hands to `ckptbench trial` and to a peer program
 * alike (`--part FILE`; docs/partial-loads.md, docs/peer-protocol.md).
 *
 * The harness builds the plan (slice.h) and the expected hashes of its
 * slices once, outside every timed region, and writes them here; a trial
 * reads them back rather than building the plan again, so a C loader and a
 * Python peer load exactly the same bytes and are checked against the same
 * hashes. Schema "ckptbench-part/1", one JSON object:
 *
 *   {"schema": "ckptbench-part/1",
 *    "selection": {"select": [PATTERN...] or null, "tp": N, "rank": R,
 *                  "rules": FILE name or null},
 *    "asked_bytes": B, "unmatched": [NAME...],
 *    "tensors": [{"name", "role", "dim", "start", "length", "shape": [...],
 *                 "nbytes", "first", "run_len", "stride", "n_runs",
 *                 "xxh3": "16 hex digits"}]}
 *
 * A tensor's part is rows [start, start + length) of its dim `dim`
 * (`tensor.narrow(dim, start, length)`), whole for the roles "whole" and
 * "replicate" (dim 0, start 0, length the dim's size); first, run_len,
 * stride and n_runs are the same part as byte runs of the whole tensor
 * (slice.h). The reader trusts nothing: every figure is bounded against
 * the manifest's tensor with overflow-checked arithmetic.
 */
#ifndef CB_PART_FILE_H
#define CB_PART_FILE_H

#include <stdint.h>

#include "error.h"
#include "manifest.h"
#include "slice.h"

/* Writes `plan` with hashes[i] for plan->tensors[i] to `path`, atomically.
 * `select` is the selection's text or NULL; `rules` the rules file's name
 * or NULL. */
CB_NODISCARD int cb_part_file_write(const char *path, const struct cb_manifest *m,
				    const struct cb_slice_plan *plan, const uint64_t *hashes,
				    const char *select, const char *rules, struct cb_error *err);

/* Reads a part file against the whole model's manifest: *plan_out (free
 * with cb_slice_plan_free) and *hashes_out (malloc'd, plan order; the
 * caller frees). CB_EFORMAT naming the file and the tensor for anything
 * that does not fit the manifest. */
CB_NODISCARD int cb_part_file_read(const char *path, const struct cb_manifest *m,
				   struct cb_slice_plan *plan_out, uint64_t **hashes_out,
				   struct cb_error *err);

#endif
