/* Name patterns: the globs of `--select` and of the rules files, compiled to
 * tokens once and matched without recursion (selection.h has the syntax).
 */
#include "selection.h"

#include <fnmatch.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum glob_op {
	OP_BYTE,  /* one given byte */
	OP_ANY,   /* `?`: any one byte */
	OP_STAR,  /* `*`: any string, dots included */
	OP_SET,   /* `[...]`: one byte the bracket expression accepts */
	OP_RANGE, /* `N-M` component: a run of digits whose value is in [lo, hi] */
};

struct glob_token {
	enum glob_op op;
	unsigned char byte; /* OP_BYTE */
	char *set;          /* OP_SET: the expression with its brackets, NUL-ended; owned */
	uint64_t lo, hi;    /* OP_RANGE */
};

struct cb_glob {
	size_t n;
	struct glob_token *tokens; /* owned; each token's set owned too */
	bool plain;                /* no `*`, `?`, `[`, `\` */
};

void cb_glob_free(struct cb_glob *glob)
{
	if (!glob)
		return;
	for (size_t i = 0; i < glob->n; i++)
		free(glob->tokens[i].set);
	free(glob->tokens);
	free(glob);
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Decimal digits [s, s + len) into *out; false on overflow of 64 bits. */
static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++)
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
			return false;
	*out = v;
	return true;
}

/* Whether the component [s, s + len) is exactly digits, '-', digits; the
 * position of the '-' in *dash. */
static bool is_range_component(const char *s, size_t len, size_t *dash)
{
	size_t i = 0;
	while (i < len && is_digit(s[i]))
		i++;
	if (i == 0 || i + 1 >= len || s[i] != '-')
		return false;
	*dash = i;
	for (i++; i < len; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

/* The end (one past the `]`) of the bracket expression opening at s[0],
 * read as glibc's fnmatch reads it: an optional `!` or `^`, a `]` first is a
 * member, `[:class:]`, `[.sym.]` and `[=eq=]` are skipped whole, `\` escapes
 * the next byte. 0 when it never closes. */
static size_t bracket_end(const char *s, size_t len)
{
	size_t p = 1;
	if (p < len && (s[p] == '!' || s[p] == '^'))
		p++;
	if (p < len && s[p] == ']')
		p++;
	while (p < len && s[p] != ']') {
		if (s[p] == '[' && p + 1 < len &&
		    (s[p + 1] == ':' || s[p + 1] == '.' || s[p + 1] == '=')) {
			char kind = s[p + 1];
			size_t q = p + 2;
			while (q + 1 < len && !(s[q] == kind && s[q + 1] == ']'))
				q++;
			if (q + 1 < len) {
				p = q + 2;
				continue;
			}
		}
		p += s[p] == '\\' && p + 1 < len ? 2 : 1;
	}
	return p < len ? p + 1 : 0;
}

int cb_glob_compile(const char *text, size_t len, const char *what, struct cb_glob **out,
		    struct cb_error *err)
{
	*out = NULL;
	if (len == 0)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "%s: an empty pattern", what);
	struct cb_glob *g = calloc(1, sizeof *g);
	/* every token takes at least one byte of the text */
	struct glob_token *tokens = g ? calloc(len, sizeof *tokens) : NULL;
	if (!tokens) {
		free(g);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	g->tokens = tokens;
	g->plain = true;
	int rc = CB_OK;
	bool component_start = true;
	size_t i = 0;
	while (i < len && rc == CB_OK) {
		struct glob_token *t = &tokens[g->n];
		if (component_start) {
			const char *dot = memchr(text + i, '.', len - i);
			size_t clen = dot ? (size_t)(dot - (text + i)) : len - i, dash;
			component_start = false;
			if (is_range_component(text + i, clen, &dash)) {
				t->op = OP_RANGE;
				if (!parse_u64(text + i, dash, &t->lo) ||
				    !parse_u64(text + i + dash + 1, clen - dash - 1, &t->hi))
					rc = CB_FAIL(err, CB_EUSAGE, NULL, NULL,
						     "%s \"%.*s\": the range %.*s has a number "
						     "over 2^64-1",
						     what, (int)len, text, (int)clen, text + i);
				else if (t->lo > t->hi)
					rc = CB_FAIL(err, CB_EUSAGE, NULL, NULL,
						     "%s \"%.*s\": the range %.*s is empty (%llu > "
						     "%llu)",
						     what, (int)len, text, (int)clen, text + i,
						     (unsigned long long)t->lo,
						     (unsigned long long)t->hi);
				g->n++;
				i += clen;
				continue;
			}
		}
		char c = text[i];
		if (c == '*') {
			g->plain = false;
			i++;
			/* `**` is `*`; one token keeps the matcher's backtracking simple */
			if (g->n && tokens[g->n - 1].op == OP_STAR)
				continue;
			t->op = OP_STAR;
		} else if (c == '?') {
			g->plain = false;
			t->op = OP_ANY;
			i++;
		} else if (c == '[') {
			g->plain = false;
			size_t end = bracket_end(text + i, len - i);
			if (end == 0) {
				rc = CB_FAIL(err, CB_EUSAGE, NULL, NULL,
					     "%s \"%.*s\": a [ with no closing ]", what, (int)len,
					     text);
				break;
			}
			t->op = OP_SET;
			t->set = strndup(text + i, end);
			if (!t->set) {
				rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
				break;
			}
			i += end;
		} else if (c == '\\') {
			g->plain = false;
			if (i + 1 == len) {
				rc = CB_FAIL(err, CB_EUSAGE, NULL, NULL,
					     "%s \"%.*s\": ends with a lone \\", what, (int)len,
					     text);
				break;
			}
			t->op = OP_BYTE;
			t->byte = (unsigned char)text[i + 1];
			i += 2; /* an escaped dot separates no components */
		} else {
			t->op = OP_BYTE;
			t->byte = (unsigned char)c;
			component_start = c == '.';
			i++;
		}
		g->n++;
	}
	if (rc != CB_OK) {
		cb_glob_free(g);
		return rc;
	}
	*out = g;
	return CB_OK;
}

/* How many bytes of `s` token `t` takes there; 0 when it does not match.
 * Never called for OP_STAR. */
static size_t token_match(const struct glob_token *t, const char *s)
{
	switch (t->op) {
	case OP_BYTE: return *s && (unsigned char)*s == t->byte ? 1 : 0;
	case OP_ANY: return *s ? 1 : 0;
	case OP_SET: {
		char one[2] = {*s, '\0'};
		return *s && fnmatch(t->set, one, 0) == 0 ? 1 : 0;
	}
	case OP_RANGE: {
		/* the whole run of digits: the next token is a '.' or the end,
		 * neither of which a digit can match, so a shorter run never
		 * leads to a match */
		size_t n = 0;
		uint64_t value = 0;
		bool over = false;
		while (is_digit(s[n])) {
			over = over || __builtin_mul_overflow(value, 10, &value) ||
			       __builtin_add_overflow(value, (uint64_t)(s[n] - '0'), &value);
			n++;
		}
		return n && !over && value >= t->lo && value <= t->hi ? n : 0;
	}
	case OP_STAR: break;
	}
	return 0;
}

/* The classic wildcard match with one backtracking point, the last `*`:
 * O(pattern × name). It is exact because every other token's end moves
 * forward with its start (a range always takes its whole run of digits), so
 * the earliest match of what follows a star is the best one. With
 * `dot_end`, the pattern may also end where the name has a '.'. */
static bool match_at(const struct cb_glob *g, const char *s, bool dot_end)
{
	size_t t = 0, star_t = SIZE_MAX;
	const char *p = s, *star_p = NULL;
	for (;;) {
		if (t == g->n) {
			if (*p == '\0' || (dot_end && *p == '.'))
				return true;
		} else if (g->tokens[t].op == OP_STAR) {
			star_t = t++;
			star_p = p;
			continue;
		} else {
			size_t used = token_match(&g->tokens[t], p);
			if (used) {
				p += used;
				t++;
				continue;
			}
		}
		if (star_t == SIZE_MAX || *star_p == '\0')
			return false;
		p = ++star_p;
		t = star_t + 1;
	}
}

bool cb_glob_match(const struct cb_glob *glob, const char *name)
{
	return match_at(glob, name, false);
}

bool cb_glob_match_components(const struct cb_glob *glob, const char *name)
{
	for (const char *s = name; *s; s++)
		if ((s == name || s[-1] == '.') && match_at(glob, s, true))
			return true;
	return false;
}

bool cb_glob_is_plain(const struct cb_glob *glob)
{
	return glob->plain;
}

/* ------------------------------------------------------------ selections */

struct cb_selection {
	char *text; /* owned copy of what was parsed */
	size_t n;
	char **patterns;        /* owned, NUL-ended copies */
	struct cb_glob **globs; /* owned */
};

void cb_selection_free(struct cb_selection *sel)
{
	if (!sel)
		return;
	for (size_t i = 0; i < sel->n; i++) {
		free(sel->patterns[i]);
		cb_glob_free(sel->globs[i]);
	}
	free(sel->patterns);
	free(sel->globs);
	free(sel->text);
	free(sel);
}

int cb_selection_parse(const char *text, struct cb_selection **out, struct cb_error *err)
{
	*out = NULL;
	if (!text || !*text)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "an empty selection");
	size_t commas = 0;
	for (const char *c = text; *c; c++)
		commas += *c == ',';
	struct cb_selection *sel = calloc(1, sizeof *sel);
	if (!sel)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	sel->text = strdup(text);
	sel->patterns = calloc(commas + 1, sizeof *sel->patterns);
	sel->globs = calloc(commas + 1, sizeof *sel->globs);
	if (!sel->text || !sel->patterns || !sel->globs) {
		cb_selection_free(sel);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	const char *start = text;
	for (;;) {
		const char *comma = strchr(start, ',');
		size_t len = comma ? (size_t)(comma - start) : strlen(start);
		if (len == 0) {
			cb_selection_free(sel);
			return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
				       "selection \"%s\": an empty pattern (two commas in a row, "
				       "or one at an end)",
				       text);
		}
		/* n counts the pairs fully made, so free() sees no half-made one */
		char *pattern = strndup(start, len);
		struct cb_glob *glob = NULL;
		int rc = pattern ? cb_glob_compile(start, len, "selection", &glob, err)
				 : CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		if (rc != CB_OK) {
			free(pattern);
			cb_selection_free(sel);
			return rc;
		}
		sel->patterns[sel->n] = pattern;
		sel->globs[sel->n] = glob;
		sel->n++;
		if (!comma)
			break;
		start = comma + 1;
	}
	*out = sel;
	return CB_OK;
}

bool cb_selection_match_one(const struct cb_selection *sel, size_t i, const char *name)
{
	const struct cb_glob *g = sel->globs[i];
	return g->plain ? cb_glob_match_components(g, name) : cb_glob_match(g, name);
}

bool cb_selection_match(const struct cb_selection *sel, const char *name)
{
	for (size_t i = 0; i < sel->n; i++)
		if (cb_selection_match_one(sel, i, name))
			return true;
	return false;
}

const char *cb_selection_text(const struct cb_selection *sel)
{
	return sel->text;
}

size_t cb_selection_count(const struct cb_selection *sel)
{
	return sel->n;
}

const char *cb_selection_pattern(const struct cb_selection *sel, size_t i)
{
	return sel->patterns[i];
}
