/* Comparing two results files (docs/results-schema.md): the engine behind
 * `ckptbench compare` and `ckptbench ab`.
 *
 * The comparison is built once as a JSON document; the text and Markdown
 * renderings are read from it, and `--format json` prints it as is, so all
 * three say the same thing. The document (schema "ckptbench-compare/1";
 * consumers ignore keys they do not know, as with results files):
 *
 * {"schema": "ckptbench-compare/1",
 *  "base": {"path", "commit", "timestamp"},   "head": {...the same},
 *  "metric": "wall" | "instructions" | "user+sys",
 *  "unit": "s" | "instructions",
 *  "alpha": 0.05, "threshold": 0.10,          the verdict's parameters
 *  "memory_allowance": {"fraction": 0.05, "bytes": 33554432},
 *  "min_trials": 5,
 *  "warnings": ["different machines: ...", ...],   to be shown first
 *  "cells": [
 *   {"loader", "dataset", "cache", "device",  the cell's key, "loader" its
 *                                    label (results_model.h) where cells
 *                                    differ only by their options
 *    "base": {"median", "ci95": [lo, hi], "n", "trials"},   median and CI of
 *    "head": {...the same},          the metric over the n ok trials with a
 *                                    value (of "trials"); null when n is 0;
 *                                    with n < 6 the CI is [min, max]
 *    "ratio": 1.15, "ratio_ci95": [1.12, 1.19],  head/base, Hodges-Lehmann
 *                                    with its Moses 95% interval; null when
 *                                    either side has no value
 *    "ratio_of_medians": 1.16,
 *    "u": 12.0, "p": 0.0012, "exact": true,  the two-sided U test (U of base)
 *    "verdict": "regression" | "improvement" | "~" | "too-few-trials"
 *               | "failed" | "not-compared",
 *    "note": "...",                  why, for the last three (else "")
 *    "memory": {"peak_rss_bytes": {"base", "head", "change_bytes", "verdict"},
 *               "peak_vram_bytes": {...} (only when both sides have it)},
 *    "regression": true}],           time, memory or failure: counts for exit 1
 *  "unmatched": [{"loader", "dataset", "cache", "device", "only_in": "base"|"head"}],
 *  "summary": {"regressions", "improvements", "unchanged", "too_few",
 *              "not_compared", "memory_regressions"}}
 *
 * Cells are paired by their key (results_model.h: loader, options,
 * dataset, cache, device); a base cell whose key head lacks is paired with
 * the one head cell that differs from it only by its options, when there
 * is exactly one such cell on each side, and a warning says how the
 * options differ.
 *
 * "failed": the head has no successful trial where the base has some (a
 * crash, wrong bytes, OOM...); it counts as a regression. "memory.*.verdict"
 * is "regression", "improvement" or "~" by max(5%, 32 MiB) of the base.
 */
#ifndef CB_COMPARE_H
#define CB_COMPARE_H

#include <jansson.h>
#include <stdio.h>

#include "error.h"

#define CB_COMPARE_SCHEMA "ckptbench-compare/1"

struct cb_compare_opts {
	double alpha;       /* default CB_VERDICT_ALPHA */
	double threshold;   /* default CB_VERDICT_THRESHOLD */
	const char *metric; /* "wall" (default), "instructions", "user+sys" */
};

/* Defaults for the above. */
void cb_compare_default_opts(struct cb_compare_opts *o);

/* True for a metric name compare knows. */
int cb_compare_metric_known(const char *metric);

/* Loads both files and builds the comparison document. On success
 * *doc_out is a new reference the caller releases with json_decref. On
 * failure (a file unreadable or not a results file, no cell in common)
 * err says why; callers exit 2 for any failure here: the files cannot be
 * compared. */
CB_NODISCARD int cb_compare_files(const char *base_path, const char *head_path,
				  const struct cb_compare_opts *o, json_t **doc_out,
				  struct cb_error *err);

/* Writes the document as "text", "md" or "json" to out. */
void cb_compare_print(const json_t *doc, const char *format, FILE *out);

/* 1 when the document holds a regression (time, memory or failure), else 0. */
int cb_compare_exit_status(const json_t *doc);

#endif
