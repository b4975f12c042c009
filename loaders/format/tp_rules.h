/* Tensor-parallel split rules: which tensors of a model split across ranks,
 * how and on which dim. The rules are data (the .rules files of datasets/tp-rules/,
 * docs/partial-loads.md), not code.
 *
 * A rules file is text, one rule a line, the first rule whose glob matches
 * the whole tensor name wins:
 *
 *     # comment (a '#' at the start of a line or after a blank)
 *     GLOB  ROLE  [DIM]
 *
 * GLOB is a pattern of selection.h's syntax (fnmatch(3) without
 * FNM_PATHNAME, plus `N-M` range components), always matched against the
 * whole name; ROLE is `column`, `row` or `vocab`, each followed by DIM (a
 * decimal below CB_TP_RULES_MAX_DIM), or `replicate` with no DIM. Fields are
 * separated by spaces or tabs. Anything else (an unknown role, a missing or
 * extra field, a bad glob, a file over 1 MiB or holding a NUL byte) is
 * refused with CB_EUSAGE naming the file and the line.
 */
#ifndef CB_TP_RULES_H
#define CB_TP_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* A DIM this large is no real tensor's; it bounds the parse. */
#define CB_TP_RULES_MAX_DIM 64

/* How a tensor is laid out across the ranks of a tensor-parallel load. */
enum cb_split_role {
	CB_SPLIT_WHOLE = 0, /* no tensor parallelism: the whole tensor */
	CB_SPLIT_REPLICATE, /* every rank holds the whole tensor */
	CB_SPLIT_COLUMN,    /* split evenly on `dim` (Megatron's column-parallel) */
	CB_SPLIT_ROW,       /* split evenly on `dim` (row-parallel: the input dim) */
	CB_SPLIT_VOCAB,     /* split on `dim` by vocabulary, padded as vLLM pads */
};

/* "whole", "replicate", "column", "row", "vocab". Static. */
const char *cb_split_role_name(enum cb_split_role role);

struct cb_tp_rules;

/* Reads and parses a rules file. On success *out is the caller's, to free
 * with cb_tp_rules_free. */
CB_NODISCARD int cb_tp_rules_load(const char *path, struct cb_tp_rules **out, struct cb_error *err);

/* Parses rules from memory; `source` names them in messages and is what
 * cb_tp_rules_source answers. */
CB_NODISCARD int cb_tp_rules_parse(const char *text, size_t len, const char *source,
				   struct cb_tp_rules **out, struct cb_error *err);

/* The shipped rules for a dataset, through resources.h (CB_RES_TP_RULES):
 * PRESET.rules when `preset_or_null` names a preset that has a file, else
 * hf-names.rules (Hugging Face names, which cover the llama and gpt2
 * presets too). A preset name of other than letters, digits, '-' and '_' is
 * CB_EUSAGE. */
CB_NODISCARD int cb_tp_rules_default(const char *preset_or_null, struct cb_tp_rules **out,
				     struct cb_error *err);

/* The file the rules came from (as given, or as found). */
const char *cb_tp_rules_source(const struct cb_tp_rules *rules);

/* XXH3-64 of the file's bytes: two rule sets with the same hash are the
 * same rules (the slice plan's key uses it). */
uint64_t cb_tp_rules_hash(const struct cb_tp_rules *rules);

/* The first rule matching the whole of `name`: its role, its dim (0 for
 * replicate) and its line number. False when no rule matches. */
bool cb_tp_rules_lookup(const struct cb_tp_rules *rules, const char *name, enum cb_split_role *role,
			unsigned *dim, unsigned *line);

void cb_tp_rules_free(struct cb_tp_rules *rules);

#endif
