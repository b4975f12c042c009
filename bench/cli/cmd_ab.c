/* ckptbench ab: the same matrix with two builds of ckptbench, trials
 * interleaved, then compared. What a CI job runs: build main, build the
 * branch, `ckptbench ab --base main/ckptbench --head branch/ckptbench`.
 *
 * How the trials interleave: each round runs every cell once with the base
 * binary (`BASE run ... --repeat 1`) and then once with the head binary, on
 * the same datasets and cache states (each `run` prepares the cache before
 * every trial, as always); rounds repeat N times: base, head, base, head...
 * Drift on the machine (a noisy neighbour, thermal state, the page cache of
 * other work) thus hits both builds alike. Each binary runs its own `run`,
 * so a build is measured entirely by its own code; the rounds' results files
 * are merged per side (trials appended cell by cell, summaries recomputed)
 * into DIR/base.json and DIR/head.json, which `compare` reads as usual.
 * The cost: one `run` start per round and side (well under a second).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "compare.h"
#include "results.h"
#include "results_model.h"

static const char ab_help[] =
	"usage: ckptbench ab --base BIN --head BIN [-o DIR] [--repeat N] [--warmup N]\n"
	"                    [--threshold X] [--alpha A] [--metric M] [--format F]\n"
	"                    [--force] [run options]\n"
	"\n"
	"Runs the same matrix with two ckptbench binaries, trials interleaved (a round\n"
	"of every cell with BASE, then with HEAD, N rounds), writes DIR/base.json,\n"
	"DIR/head.json, DIR/compare.json and DIR/compare.md, prints the comparison and\n"
	"exits like `ckptbench compare`: 0 no regression, 1 a regression, 2 the runs\n"
	"cannot be compared or a usage error, 3 a run failed.\n"
	"\n"
	"  --base BIN, --head BIN  the two ckptbench executables (paths or names in PATH)\n"
	"  -o DIR          where the files go (default results/ab-<time>)\n"
	"  --repeat N      rounds, i.e. measured trials per cell and side (default 10)\n"
	"  --warmup N      warm-up trials per cell and side, in the first round (default 1)\n"
	"  --threshold, --alpha, --metric, --format: as for `ckptbench compare`\n"
	"  --force         overwrite files already in DIR\n"
	"\n"
	"Any other option goes to both binaries' `run` (e.g. --preset ci, --loaders,\n"
	"--datasets, --cache). The ceilings are not measured (--no-calibrate): both\n"
	"builds run on the same machine at the same time.\n";

struct ab_args {
	const char *bin[2]; /* base, head */
	const char *dir;
	struct cb_compare_opts o;
	const char *format;
	unsigned repeat, warmup;
	bool force;
	const char **pass; /* run options, borrowed from argv */
	size_t n_pass;
};

static const char *const side_name[2] = {"base", "head"};

/* "--opt VALUE" or "--opt=VALUE" at argv[*i]: the value, advancing *i. */
static const char *option_value(const char *name, int argc, char **argv, int *i)
{
	size_t len = strlen(name);
	if (strncmp(argv[*i], name, len) != 0)
		return NULL;
	if (argv[*i][len] == '=')
		return argv[*i] + len + 1;
	if (argv[*i][len] != '\0' || *i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

static int parse_count(const char *opt, const char *text, unsigned max, unsigned *out)
{
	uint64_t v;
	if (!cb_parse_u64(text, &v) || v > max)
		return cb_usage_error("ab", "%s takes 0 to %u", opt, max);
	*out = (unsigned)v;
	return -1;
}

/* One of ab's own options at argv[*i]: -1 when handled, 0 when not ours, or
 * an exit status. */
static int own_option(struct ab_args *a, int argc, char **argv, int *i)
{
	const char *v;
	if ((v = option_value("--base", argc, argv, i)))
		a->bin[0] = v;
	else if ((v = option_value("--head", argc, argv, i)))
		a->bin[1] = v;
	else if ((v = option_value("-o", argc, argv, i)))
		a->dir = v;
	else if ((v = option_value("--repeat", argc, argv, i)))
		return parse_count("--repeat", v, 4000, &a->repeat);
	else if ((v = option_value("--warmup", argc, argv, i)))
		return parse_count("--warmup", v, 100, &a->warmup);
	else if ((v = option_value("--threshold", argc, argv, i)))
		a->o.threshold = strtod(v, NULL) / (v[strlen(v) - 1] == '%' ? 100 : 1);
	else if ((v = option_value("--alpha", argc, argv, i)))
		a->o.alpha = strtod(v, NULL);
	else if ((v = option_value("--metric", argc, argv, i)))
		a->o.metric = v;
	else if ((v = option_value("--format", argc, argv, i)))
		a->format = v;
	else if (strcmp(argv[*i], "--force") == 0)
		a->force = true;
	else
		return 0;
	return -1;
}

/* Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct ab_args *a)
{
	a->pass = calloc((size_t)argc + 1, sizeof *a->pass);
	if (!a->pass)
		return 3;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(ab_help, stdout);
			return 0;
		}
		int rc = own_option(a, argc, argv, &i);
		if (rc > 0)
			return rc;
		if (rc == 0)
			a->pass[a->n_pass++] = argv[i];
	}
	if (!a->bin[0] || !a->bin[1])
		return cb_usage_error("ab", "--base BIN and --head BIN are both needed");
	if (a->repeat == 0)
		return cb_usage_error("ab", "--repeat must be at least 1");
	if (!(a->o.threshold > 0 && a->o.threshold < 10) || !(a->o.alpha > 0 && a->o.alpha < 1))
		return cb_usage_error("ab", "bad --threshold or --alpha");
	if (!cb_compare_metric_known(a->o.metric))
		return cb_usage_error("ab", "--metric is wall, instructions or user+sys");
	if (strcmp(a->format, "text") && strcmp(a->format, "md") && strcmp(a->format, "json"))
		return cb_usage_error("ab", "--format is text, md or json");
	return -1;
}

/* ------------------------------------------------------------ rounds */

static char *path_in(const char *dir, const char *name)
{
	char *p;
	return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

static char *round_path(const char *dir, int side, unsigned round, const char *ext)
{
	char *p;
	return asprintf(&p, "%s/rounds/%s-%u.%s", dir, side_name[side], round, ext) < 0 ? NULL : p;
}

/* The child: `BIN run PASS... --repeat 1 --warmup W --no-calibrate --quiet
 * --force -o OUT`, its table to LOG. Never returns. */
static void exec_run(const struct ab_args *a, int side, unsigned warmup, const char *out,
		     const char *log)
{
	const char **argv = calloc(a->n_pass + 16, sizeof *argv);
	char warm[16];
	snprintf(warm, sizeof warm, "%u", warmup);
	if (!argv)
		_exit(3);
	size_t n = 0;
	argv[n++] = a->bin[side];
	argv[n++] = "run";
	for (size_t i = 0; i < a->n_pass; i++)
		argv[n++] = a->pass[i];
	const char *fixed[] = {"--repeat", "1",       "--warmup", warm, "--no-calibrate",
			       "--quiet",  "--force", "-o",       out};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		argv[n++] = fixed[i];
	FILE *f = freopen(log, "w", stdout);
	(void)f; /* without the log, the table goes to ab's stdout: harmless */
	execvp(argv[0], (char *const *)argv);
	fprintf(stderr, "ckptbench ab: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* One side's round; returns 0, or the exit status to stop with. */
static int run_round(const struct ab_args *a, int side, unsigned round)
{
	char *out = round_path(a->dir, side, round, "json");
	char *log = round_path(a->dir, side, round, "log");
	if (!out || !log) {
		free(out);
		free(log);
		return 3;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		exec_run(a, side, round == 0 ? a->warmup : 0, out, log);
	int status = 0;
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	free(out);
	free(log);
	if (pid < 0)
		return 3;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	/* 1: a trial loaded wrong bytes; the results still hold every trial */
	if (code == 0 || code == 1)
		return 0;
	fprintf(stderr, "ckptbench ab: %s run (round %u) exited with status %d\n", a->bin[side],
		round + 1, code);
	return code == 2 ? 2 : 3;
}

/* ------------------------------------------------------------ merging */

/* The merged document of one side: round 0's, copied, with the trials of
 * every later round appended cell by cell. Cells are matched by their key
 * (results_model.h), read from the rounds' models; `keys` runs parallel to
 * the merged document's cells and borrows from the models, which live
 * until the merge is written. */
struct merged {
	json_t *doc;
	const struct cb_cell_key **keys;
	size_t n;
};

/* Appends the trials of each cell of `round` to the same cell of the
 * merged document (a cell new in this round is taken whole). */
static int merge_cells(struct merged *m, const struct cb_results_file *round)
{
	json_t *cells = json_object_get(m->doc, "cells");
	for (size_t i = 0; i < round->n_cells; i++) {
		const struct cb_results_cell *rc = &round->cells[i];
		json_t *into = NULL;
		for (size_t j = 0; !into && j < m->n; j++)
			if (cb_cell_key_equal(m->keys[j], &rc->key, CB_KEY_ALL))
				into = json_array_get(cells, j);
		json_t *copy =
			json_deep_copy(into ? json_object_get(rc->json, "trials") : rc->json);
		if (!copy)
			return CB_ENOMEM;
		if (!into) {
			if (json_array_append_new(cells, copy) != 0)
				return CB_ENOMEM;
			m->keys[m->n++] = &rc->key;
			continue;
		}
		int bad = json_array_extend(json_object_get(into, "trials"), copy);
		json_decref(copy);
		if (bad)
			return CB_ENOMEM;
		/* a cell skipped in one round and not in another keeps "ok" */
		if (json_array_size(json_object_get(into, "trials")))
			json_object_set_new(into, "status", json_string("ok"));
	}
	return CB_OK;
}

/* Writes the document to path through a temporary file and a rename. */
static int write_doc(const json_t *doc, const char *path, struct cb_error *err)
{
	char *tmp;
	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	int rc = CB_OK;
	if (json_dump_file(doc, tmp, JSON_INDENT(1)) != 0 || rename(tmp, path) != 0)
		rc = CB_FAIL_ERRNO(err, errno, path, "cannot write the merged results");
	free(tmp);
	return rc;
}

/* Merges one side's rounds into DIR/SIDE.json. */
static int merge_side(const struct ab_args *a, int side, struct cb_error *err)
{
	struct cb_results_file **rounds = calloc(a->repeat, sizeof *rounds);
	struct merged m = {NULL, NULL, 0};
	int rc = rounds ? CB_OK : CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	size_t cells = 0;
	for (unsigned r = 0; rc == CB_OK && r < a->repeat; r++) {
		char *p = round_path(a->dir, side, r, "json");
		rc = p ? cb_results_file_load(p, &rounds[r], err)
		       : CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		free(p);
		cells += rc == CB_OK ? rounds[r]->n_cells : 0;
	}
	if (rc == CB_OK) {
		m.doc = json_deep_copy(rounds[0]->json);
		m.keys = calloc(cells + 1, sizeof *m.keys);
		if (!m.doc || !m.keys)
			rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	for (size_t i = 0; rc == CB_OK && i < rounds[0]->n_cells; i++)
		m.keys[m.n++] = &rounds[0]->cells[i].key;
	for (unsigned r = 1; rc == CB_OK && r < a->repeat; r++)
		if (merge_cells(&m, rounds[r]) != CB_OK)
			rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL,
				     "out of memory merging the rounds");
	if (rc == CB_OK) {
		json_t *doc = m.doc, *list = json_object_get(doc, "cells");
		for (size_t i = 0; i < json_array_size(list); i++)
			cb_results_summarize(json_array_get(list, i),
					     json_object_get(doc, "calibration"));
		json_t *config = json_object_get(doc, "config");
		json_object_set_new(config, "repeat", json_integer(a->repeat));
		json_object_set_new(config, "ab",
				    json_pack("{s:s, s:s, s:i}", "side", side_name[side], "binary",
					      a->bin[side], "rounds", (int)a->repeat));
		char *out = path_in(a->dir, side ? "head.json" : "base.json");
		rc = out ? write_doc(doc, out, err)
			 : CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		free(out);
	}
	json_decref(m.doc);
	free(m.keys);
	for (unsigned r = 0; rounds && r < a->repeat; r++)
		cb_results_file_free(rounds[r]);
	free(rounds);
	return rc;
}

/* Removes the rounds' files once merged (kept when anything failed). */
static void remove_rounds(const struct ab_args *a)
{
	static const char *const ext[] = {"json", "csv", "log"};
	for (int side = 0; side < 2; side++)
		for (unsigned r = 0; r < a->repeat; r++)
			for (int e = 0; e < 3; e++) {
				char *p = round_path(a->dir, side, r, ext[e]);
				if (p)
					unlink(p);
				free(p);
			}
	char *rounds = path_in(a->dir, "rounds");
	if (rounds)
		rmdir(rounds);
	free(rounds);
}

/* ------------------------------------------------------------ main */

static int prepare_dir(struct ab_args *a, char **owned)
{
	if (!a->dir) {
		char stamp[32];
		time_t now = time(NULL);
		struct tm tm;
		localtime_r(&now, &tm);
		strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
		if (asprintf(owned, "results/ab-%s", stamp) < 0)
			return 3;
		a->dir = *owned;
	}
	char *base = path_in(a->dir, "base.json"), *rounds = path_in(a->dir, "rounds");
	int rc = -1;
	if (!base || !rounds)
		rc = 3;
	else if (!a->force && access(base, F_OK) == 0)
		rc = cb_usage_error("ab", "%s exists (--force to overwrite)", base);
	else if ((*owned && mkdir("results", 0777) != 0 && errno != EEXIST) ||
		 (mkdir(a->dir, 0777) != 0 && errno != EEXIST) ||
		 (mkdir(rounds, 0777) != 0 && errno != EEXIST)) {
		fprintf(stderr, "ckptbench: %s: cannot create: %s\n", a->dir, strerror(errno));
		rc = 3;
	}
	free(base);
	free(rounds);
	return rc;
}

static int run_rounds(const struct ab_args *a)
{
	for (unsigned r = 0; r < a->repeat; r++)
		for (int side = 0; side < 2; side++) {
			fprintf(stderr, "ckptbench ab: round %u/%u: %s\n", r + 1, a->repeat,
				side_name[side]);
			int rc = run_round(a, side, r);
			if (rc)
				return rc;
		}
	return 0;
}

/* Compares the merged files, writes compare.json and compare.md beside
 * them, prints the chosen format; returns the exit status. */
static int compare_sides(const struct ab_args *a)
{
	char *files[4] = {path_in(a->dir, "base.json"), path_in(a->dir, "head.json"),
			  path_in(a->dir, "compare.json"), path_in(a->dir, "compare.md")};
	json_t *doc = NULL;
	struct cb_error err = CB_ERROR_INIT;
	int rc = 3;
	if (files[0] && files[1] && files[2] && files[3]) {
		rc = 2;
		if (cb_compare_files(files[0], files[1], &a->o, &doc, &err) != CB_OK)
			cb_error_print(&err);
		else
			rc = cb_compare_exit_status(doc);
	}
	for (int f = 2; doc && f < 4; f++) {
		FILE *out = fopen(files[f], "w");
		if (out) {
			cb_compare_print(doc, f == 2 ? "json" : "md", out);
			fclose(out);
		}
	}
	if (doc)
		cb_compare_print(doc, a->format, stdout);
	json_decref(doc);
	for (int f = 0; f < 4; f++)
		free(files[f]);
	return rc;
}

int cb_cmd_ab(int argc, char **argv)
{
	struct ab_args a = {.format = "text", .repeat = 10, .warmup = 1};
	cb_compare_default_opts(&a.o);
	char *owned_dir = NULL;
	int rc = parse_args(argc, argv, &a);
	if (rc < 0)
		rc = prepare_dir(&a, &owned_dir);
	if (rc >= 0) { /* --help, or a usage error */
		free(a.pass);
		free(owned_dir);
		return rc;
	}
	rc = run_rounds(&a);
	struct cb_error err = CB_ERROR_INIT;
	if (rc == 0 && (merge_side(&a, 0, &err) != CB_OK || merge_side(&a, 1, &err) != CB_OK)) {
		cb_error_print(&err); /* a round's file did not load */
		rc = 2;
	}
	if (rc == 0) {
		remove_rounds(&a);
		rc = compare_sides(&a);
		fprintf(stderr,
			"ckptbench ab: results in %s (base.json, head.json, compare.json, "
			"compare.md)\n",
			a.dir);
	}
	free(a.pass);
	free(owned_dir);
	return rc;
}
