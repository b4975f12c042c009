/* The JSON documents ckptbench writes and reads: the results schema's name
 * and the lookups every reader needs. In the base so that the writer of the
 * run's document (bench/harness/results.c) and the readers of finished files
 * (bench/results/) share them without either including the other. */
#ifndef CB_DOCJSON_H
#define CB_DOCJSON_H

#include <jansson.h>
#include <stddef.h>

#define CB_RESULTS_SCHEMA "ckptbench/1"

/* A load above this share of its ceiling says the ceiling is too low for
 * the cell (another way of reading beats it, or mapping pages is not
 * reading them), not that the loader beat the storage: the writer marks
 * such a cell (summary.ceiling_exceeded) and the readers say so. */
#define CB_CEILING_EXCEEDED 1.05

/* The lookups every reader of a ckptbench document needs (results files;
 * the compare document in compare_print.c and plotdata.c; the harness's
 * trial reports): o[key] as a number, NaN when o is not an object, the key
 * is absent or its value is not a number; o[key] as a string, "" likewise
 * (borrowed from o); arr[i] as a number, NaN when arr is not an array, i is
 * past its end or the entry is not a number. o and arr may be NULL. Pure;
 * safe from any thread. */
double cb_json_num(const json_t *o, const char *key);
const char *cb_json_str(const json_t *o, const char *key);
double cb_json_at(const json_t *arr, size_t i);

#endif
