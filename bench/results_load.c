#include "results_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

static int check_cell(const char *path, size_t index, json_t *cell, struct cb_error *err)
{
	static const char *const text_keys[] = {"loader", "dataset", "cache", "device", "status"};
	char where[64];
	snprintf(where, sizeof where, "cell %zu", index);
	if (!json_is_object(cell))
		return CB_FAIL(err, CB_EFORMAT, path, where, "a cell must be an object");
	for (size_t k = 0; k < sizeof text_keys / sizeof text_keys[0]; k++)
		if (!json_is_string(json_object_get(cell, text_keys[k])))
			return CB_FAIL(err, CB_EFORMAT, path, where, "a cell needs a \"%s\" string",
				       text_keys[k]);
	if (!json_is_array(json_object_get(cell, "trials")))
		return CB_FAIL(err, CB_EFORMAT, path, where, "a cell needs a \"trials\" array");
	return CB_OK;
}

int cb_results_load(const char *path, json_t **doc_out, struct cb_error *err)
{
	*doc_out = NULL;
	char *text;
	size_t len;
	int rc = cb_read_small_file(path, CB_RESULTS_MAX_BYTES, &text, &len, err);
	if (rc != CB_OK)
		return rc;
	json_error_t jerr;
	json_t *doc = json_loadb(text, len, 0, &jerr);
	free(text);
	if (!doc) {
		char where[64];
		snprintf(where, sizeof where, "line %d", jerr.line);
		return CB_FAIL(err, CB_EFORMAT, path, where, "not a JSON document: %s", jerr.text);
	}
	json_t *schema = json_object_get(doc, "schema");
	json_t *cells = json_object_get(doc, "cells");
	if (!json_is_string(schema) || strcmp(json_string_value(schema), CB_RESULTS_SCHEMA) != 0)
		rc = CB_FAIL(err, CB_EFORMAT, path, NULL,
			     "not a ckptbench results file (schema \"%s\" expected)",
			     CB_RESULTS_SCHEMA);
	else if (!json_is_array(cells))
		rc = CB_FAIL(err, CB_EFORMAT, path, NULL, "a results file needs a \"cells\" array");
	for (size_t i = 0; rc == CB_OK && i < json_array_size(cells); i++)
		rc = check_cell(path, i, json_array_get(cells, i), err);
	if (rc != CB_OK) {
		json_decref(doc);
		return rc;
	}
	*doc_out = doc;
	return CB_OK;
}
