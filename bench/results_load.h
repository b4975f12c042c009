/* Reading results files (docs/results-schema.md) for the stages that consume them:
 * plot, report, compare. The document is handed out as jansson objects;
 * consumers ignore keys they do not know. */
#ifndef CB_RESULTS_LOAD_H
#define CB_RESULTS_LOAD_H

#include <jansson.h>

#include "error.h"

#define CB_RESULTS_SCHEMA "ckptbench/1"
#define CB_RESULTS_MAX_BYTES (1u << 30)

/* Loads `path` and checks the schema tag and the shape the contract
 * promises ("cells" an array of objects, each with loader, dataset, cache,
 * device, status and trials). On success *doc_out is a new reference the
 * caller releases with json_decref. */
CB_NODISCARD int cb_results_load(const char *path, json_t **doc_out, struct cb_error *err);

#endif
