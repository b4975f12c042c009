/* Tensor-parallel rules files: parsed strictly, line by line, into a list
 * of (glob, role, dim) looked up first match first (tp_rules.h).
 */
#include "tp_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "fileio.h"
#include "resources.h"
#include "selection.h"

/* A rules file is a page of text; anything larger is not one. */
#define RULES_MAX_BYTES (1u << 20)
#define FALLBACK_RULES "hf-names.rules"

struct tp_rule {
	struct cb_glob *glob; /* owned */
	enum cb_split_role role;
	unsigned dim;
	unsigned line;
};

struct cb_tp_rules {
	char *source; /* owned */
	uint64_t hash;
	size_t n;
	struct tp_rule *rules; /* owned, file order */
};

const char *cb_split_role_name(enum cb_split_role role)
{
	switch (role) {
	case CB_SPLIT_WHOLE: return "whole";
	case CB_SPLIT_REPLICATE: return "replicate";
	case CB_SPLIT_COLUMN: return "column";
	case CB_SPLIT_ROW: return "row";
	case CB_SPLIT_VOCAB: return "vocab";
	}
	return "?";
}

void cb_tp_rules_free(struct cb_tp_rules *rules)
{
	if (!rules)
		return;
	for (size_t i = 0; i < rules->n; i++)
		cb_glob_free(rules->rules[i].glob);
	free(rules->rules);
	free(rules->source);
	free(rules);
}

const char *cb_tp_rules_source(const struct cb_tp_rules *rules)
{
	return rules->source;
}

uint64_t cb_tp_rules_hash(const struct cb_tp_rules *rules)
{
	return rules->hash;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Splits the line [s, end) into at most `max` fields at blanks, stopping at
 * a comment; the number of fields, or max + 1 when there are more. */
static size_t split_fields(const char *s, const char *end, const char **field, size_t *flen,
			   size_t max)
{
	size_t n = 0;
	while (s < end) {
		while (s < end && is_blank(*s))
			s++;
		if (s == end || *s == '#')
			break;
		const char *f = s;
		while (s < end && !is_blank(*s))
			s++;
		if (n == max)
			return max + 1;
		field[n] = f;
		flen[n] = (size_t)(s - f);
		n++;
	}
	return n;
}

static bool field_is(const char *f, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(f, word, len) == 0;
}

/* One non-empty line into *rule; `where` is "FILE line N" for messages. */
static int parse_line(const char *s, const char *end, const char *source, unsigned line,
		      struct tp_rule *rule, bool *empty, struct cb_error *err)
{
	const char *field[3];
	size_t flen[3];
	size_t n = split_fields(s, end, field, flen, 3);
	*empty = n == 0;
	if (n == 0)
		return CB_OK;
	char what[600];
	snprintf(what, sizeof what, "%.500s line %u", source, line);
	if (n == 1 || n > 3)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
			       "%s: a rule is GLOB ROLE [DIM], %s fields here", what,
			       n == 1 ? "one field" : "more than three");
	if (field_is(field[1], flen[1], "replicate"))
		rule->role = CB_SPLIT_REPLICATE;
	else if (field_is(field[1], flen[1], "column"))
		rule->role = CB_SPLIT_COLUMN;
	else if (field_is(field[1], flen[1], "row"))
		rule->role = CB_SPLIT_ROW;
	else if (field_is(field[1], flen[1], "vocab"))
		rule->role = CB_SPLIT_VOCAB;
	else
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
			       "%s: unknown role \"%.*s\" (column, row, vocab or replicate)", what,
			       (int)flen[1], field[1]);
	if (rule->role == CB_SPLIT_REPLICATE && n == 3)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "%s: replicate takes no DIM", what);
	if (rule->role != CB_SPLIT_REPLICATE) {
		if (n != 3)
			return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "%s: %.*s needs a DIM", what,
				       (int)flen[1], field[1]);
		/* at most two digits: CB_TP_RULES_MAX_DIM bounds it below 100 */
		unsigned dim = 0;
		bool ok = flen[2] >= 1 && flen[2] <= 2;
		for (size_t k = 0; ok && k < flen[2]; k++) {
			ok = field[2][k] >= '0' && field[2][k] <= '9';
			dim = dim * 10 + (unsigned)(field[2][k] - '0');
		}
		if (!ok || dim >= CB_TP_RULES_MAX_DIM)
			return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
				       "%s: DIM \"%.*s\" is not a number below %d", what,
				       (int)flen[2], field[2], CB_TP_RULES_MAX_DIM);
		rule->dim = dim;
	}
	rule->line = line;
	return cb_glob_compile(field[0], flen[0], what, &rule->glob, err);
}

int cb_tp_rules_parse(const char *text, size_t len, const char *source, struct cb_tp_rules **out,
		      struct cb_error *err)
{
	*out = NULL;
	if (len > RULES_MAX_BYTES)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "%s: a rules file over 1 MiB is not one",
			       source);
	if (memchr(text, '\0', len))
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "%s: a NUL byte; a rules file is text",
			       source);
	size_t lines = 1;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	struct cb_tp_rules *r = calloc(1, sizeof *r);
	if (!r)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	r->source = strdup(source);
	r->rules = calloc(lines, sizeof *r->rules);
	if (!r->source || !r->rules) {
		cb_tp_rules_free(r);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	r->hash = XXH3_64bits(text, len);
	const char *s = text, *end = text + len;
	/* the 1 MiB bound keeps the line count far below UINT_MAX */
	for (unsigned line = 1; s < end; line++) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *eol = nl ? nl : end;
		bool empty;
		int rc = parse_line(s, eol, source, line, &r->rules[r->n], &empty, err);
		if (rc != CB_OK) {
			cb_tp_rules_free(r);
			return rc;
		}
		r->n += !empty;
		s = nl ? nl + 1 : end;
	}
	*out = r;
	return CB_OK;
}

int cb_tp_rules_load(const char *path, struct cb_tp_rules **out, struct cb_error *err)
{
	*out = NULL;
	char *text;
	size_t len;
	int rc = cb_read_small_file(path, RULES_MAX_BYTES, &text, &len, err);
	if (rc == CB_ELIMIT) {
		/* a file too big for rules is the user's mistake, not a limit */
		cb_error_clear(err);
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "%s: a rules file over 1 MiB is not one",
			       path);
	}
	if (rc != CB_OK)
		return rc;
	rc = cb_tp_rules_parse(text, len, path, out, err);
	free(text);
	return rc;
}

int cb_tp_rules_default(const char *preset_or_null, struct cb_tp_rules **out, struct cb_error *err)
{
	*out = NULL;
	char path[4096];
	if (preset_or_null) {
		/* the name becomes a file name: nothing that could leave the
		 * rules directory */
		size_t len = strlen(preset_or_null);
		bool ok = len > 0 && len <= 64;
		for (size_t i = 0; ok && i < len; i++) {
			char c = preset_or_null[i];
			ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '-' || c == '_';
		}
		if (!ok)
			return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
				       "preset name \"%.100s\" is not a name of a rules file",
				       preset_or_null);
		char file[80];
		snprintf(file, sizeof file, "%s.rules", preset_or_null);
		/* a preset without a file of its own falls back to the
		 * Hugging Face names, so this error is only a probe */
		struct cb_error probe = CB_ERROR_INIT;
		if (cb_resource_find(CB_RES_TP_RULES, file, path, sizeof path, &probe) == CB_OK)
			return cb_tp_rules_load(path, out, err);
	}
	int rc = cb_resource_find(CB_RES_TP_RULES, FALLBACK_RULES, path, sizeof path, err);
	if (rc != CB_OK)
		return rc;
	return cb_tp_rules_load(path, out, err);
}

bool cb_tp_rules_lookup(const struct cb_tp_rules *rules, const char *name, enum cb_split_role *role,
			unsigned *dim, unsigned *line)
{
	for (size_t i = 0; i < rules->n; i++)
		if (cb_glob_match(rules->rules[i].glob, name)) {
			*role = rules->rules[i].role;
			*dim = rules->rules[i].dim;
			*line = rules->rules[i].line;
			return true;
		}
	return false;
}
