/* Which tensors a partial load takes (`run --select PATTERNS`), and the
 * name globs that the tensor-parallel rules files share
 * (docs/partial-loads.md).
 *
 * A selection is a comma-separated list of patterns; a tensor is selected
 * when any pattern matches its name. There is no whitespace trimming: a
 * space is a character of the pattern.
 *
 * Pattern syntax, matched byte by byte against the whole name:
 *   - `*` any string, dots included (fnmatch(3) without FNM_PATHNAME or
 *     FNM_PERIOD); `?` any one byte; `[...]` a bracket expression exactly as
 *     fnmatch(3) reads it (`[!...]`, `[^...]`, ranges `a-z`, classes
 *     `[:digit:]`; a `]` first in the set is a member); `\c` the byte c;
 *   - a range component: where a component of the pattern (the text between
 *     two dots, or before the first or after the last) is exactly `N-M`
 *     with N and M decimal, it matches a run of one or more decimal digits
 *     in the name whose value lies in [N, M] (leading zeros allowed in the
 *     name: `07` is 7);
 *   - everything else is itself.
 * A plain pattern, one with no `*`, `?`, `[` or `\` (range components are
 * allowed), names a sequence of dotted components: it matches every name
 * that holds that sequence as whole components anywhere (`lm_head` matches
 * `lm_head.weight`; `layers.0-7` matches `model.layers.3.mlp.up_proj.weight`
 * but not `model.layers.12.mlp.up_proj.weight` nor `xlayers.3.w`). A
 * pattern with glob characters matches the whole name only
 * (`model.layers.0-7.*`, `*.mlp.*`).
 *
 * Refused, CB_EUSAGE with one line: an empty selection or an empty pattern
 * (`a,,b`, a trailing comma), a range with N > M or a number over 2^64 - 1,
 * a `[` with no closing `]`, a trailing lone `\`.
 */
#ifndef CB_SELECTION_H
#define CB_SELECTION_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* ------------------------------------------------------------ globs */

/* One compiled pattern (the syntax above). Shared by the selection and the
 * rules files (tp_rules.h), which always match whole names. */
struct cb_glob;

/* Compiles `len` bytes of `text` (no NUL needed). `what` names the pattern
 * in messages ("selection", "rules file x.rules line 3"). On success *out
 * is the caller's, to free with cb_glob_free. */
CB_NODISCARD int cb_glob_compile(const char *text, size_t len, const char *what,
				 struct cb_glob **out, struct cb_error *err);

/* Whether the whole of `name` matches. */
bool cb_glob_match(const struct cb_glob *glob, const char *name);

/* Whether `name` holds the pattern as a run of whole dotted components (the
 * plain-pattern rule above; for a glob pattern it is this too, and
 * cb_selection_match applies it to plain patterns only). */
bool cb_glob_match_components(const struct cb_glob *glob, const char *name);

/* True when the pattern has no `*`, `?`, `[` or `\`. */
bool cb_glob_is_plain(const struct cb_glob *glob);

void cb_glob_free(struct cb_glob *glob);

/* ------------------------------------------------------------ selections */

struct cb_selection;

/* Parses a selection. On success *out is the caller's, to free with
 * cb_selection_free; it does not borrow `text`. */
CB_NODISCARD int cb_selection_parse(const char *text, struct cb_selection **out,
				    struct cb_error *err);

/* Whether any pattern selects `name`. */
bool cb_selection_match(const struct cb_selection *sel, const char *name);

/* The text it was parsed from (for messages and the plan's key). */
const char *cb_selection_text(const struct cb_selection *sel);

/* Its patterns, one by one: how many, the text of pattern i, and whether
 * pattern i alone selects `name` (so that a caller can say which pattern of
 * a list matches nothing). */
size_t cb_selection_count(const struct cb_selection *sel);
const char *cb_selection_pattern(const struct cb_selection *sel, size_t i);
bool cb_selection_match_one(const struct cb_selection *sel, size_t i, const char *name);

void cb_selection_free(struct cb_selection *sel);

#endif
