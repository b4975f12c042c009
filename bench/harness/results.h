/* The results file of a run (docs/results-schema.md, schema "ckptbench/1") and its
 * CSV mirror (one row per trial, warm-ups included and marked).
 *
 * The document lives in memory as a jansson tree that `run` fills in; each
 * cb_results_write replaces both files atomically, so a reader (or a run
 * interrupted at any point) always finds complete, valid files holding
 * every trial finished by the last write.
 */
#ifndef CB_RESULTS_H
#define CB_RESULTS_H

#include <jansson.h>
#include <stdbool.h>

#include "docjson.h" /* CB_RESULTS_SCHEMA, CB_CEILING_EXCEEDED */
#include "error.h"

struct cb_results {
	char *path;     /* the .json file; owned */
	char *csv_path; /* beside it, .csv; owned */
	json_t *root;   /* the document; owned */
	json_t *cells;  /* borrowed from root */
};

/* Starts a document for `path`: schema, tool, timestamp, empty cells.
 * Refuses (CB_EUSAGE) when the file exists and `force` is false; creates
 * the parent directory. Nothing is written until cb_results_write. */
int cb_results_open(struct cb_results *r, const char *path, bool force, struct cb_error *err);

/* Sets a top-level key ("machine", "calibration", "config", ...); steals
 * the reference. */
void cb_results_set(struct cb_results *r, const char *key, json_t *value);

/* Appends an empty cell object and returns it (borrowed). NULL on ENOMEM. */
json_t *cb_results_add_cell(struct cb_results *r);

/* Recomputes cell["summary"] from cell["trials"] (the ok ones): times,
 * GB/s from model_bytes, the fraction of the ceiling for the cell's cache
 * state taken from `calibration` (may be NULL), the peak-over-model ratios,
 * outlier flags and the first-run warning. */
void cb_results_summarize(json_t *cell, const json_t *calibration);

/* Writes the JSON and the CSV, each atomically. */
int cb_results_write(struct cb_results *r, struct cb_error *err);

void cb_results_free(struct cb_results *r);

#endif
