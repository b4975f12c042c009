/* ckptbench plot: results files to charts. The data files come from
 * plotdata.c; the charts from gnuplot running the templates in plots/
 * (found through resources.h, in the source tree or the install), one
 * process per chart, so a template can be run the same way by hand. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "fileio.h"
#include "plotdata.h"
#include "resources.h"
#include "results_model.h"

extern char **environ;

static const char plot_help[] =
	"usage: ckptbench plot [-o DIR] [--data-only] RESULTS.json...\n"
	"\n"
	"Draws the charts of one or more results files, each as PNG and SVG:\n"
	"  memory      peak RSS above baseline per model size, anonymous and file-backed,\n"
	"              against the 1x and 2x model-size lines (the memory-doubling chart)\n"
	"  time        load time against model size, cold and warm, 95% CI error bars\n"
	"  throughput  GB/s against model size with the calibrated ceilings\n"
	"  timeline    RSS and VRAM during one load per loader (runs made with --timeline)\n"
	"  vram        peak VRAM against model size (when GPU cells exist)\n"
	"  compare     base against head per cell, from `ckptbench compare --format json`\n"
	"Cells from several files are merged; a cell in two files is taken from the\n"
	"later one. Failed and skipped cells are marked on the charts.\n"
	"\n"
	"  -o DIR       where the charts go (default: RESULTS-charts/ beside the first file);\n"
	"               the data gnuplot read goes to DIR/data/\n"
	"  --data-only  write the data files only; no gnuplot needed\n"
	"\n"
	"Needs gnuplot with the pngcairo terminal (Debian: gnuplot-nox). The templates\n"
	"are the source tree's plots/ (installed: PREFIX/share/ckptbench/plots/;\n"
	"$CKPTBENCH_PLOTS names another directory). Each also runs alone:\n"
	"  gnuplot -c plots/memory.gp DIR/data OUTBASE\n";

/* ------------------------------------------------------------ finding things */

static bool is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The program's path in PATH, as execvp would find it; malloc'd or NULL. */
static char *find_in_path(const char *prog)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		return NULL;
	char *copy = strdup(path);
	char *found = NULL;
	for (char *save = NULL, *dir = copy ? strtok_r(copy, ":", &save) : NULL; dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		char *cand = cb_path_join(*dir ? dir : ".", prog);
		if (cand && is_file(cand) && access(cand, X_OK) == 0)
			found = cand;
		else
			free(cand);
	}
	free(copy);
	return found;
}

/* ------------------------------------------------------------ gnuplot */

/* Runs `gnuplot -c TEMPLATE DATA OUTBASE`; on failure the last line gnuplot
 * printed becomes the error. */
static int run_gnuplot(const char *gnuplot, const char *tpl, const char *data, const char *outbase,
		       struct cb_error *err)
{
	int fds[2];
	if (pipe(fds) != 0)
		return CB_FAIL_ERRNO(err, errno, NULL, "pipe");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDERR_FILENO);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	posix_spawn_file_actions_addclose(&fa, fds[1]);
	char *argv[] = {(char *)"gnuplot", (char *)"-c",    (char *)tpl,
			(char *)data,      (char *)outbase, NULL};
	pid_t pid;
	int spawn_rc = posix_spawn(&pid, gnuplot, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (spawn_rc != 0) {
		close(fds[0]);
		return CB_FAIL_ERRNO(err, spawn_rc, gnuplot, "cannot start gnuplot");
	}
	/* Read everything before waiting, so a chatty gnuplot cannot block on
	 * a full pipe; keep the tail, where its error is. */
	char out[4096] = "";
	size_t used = 0;
	char chunk[1024];
	ssize_t got;
	while ((got = read(fds[0], chunk, sizeof chunk)) > 0 || (got < 0 && errno == EINTR)) {
		if (got < 0)
			continue;
		if (used + (size_t)got >= sizeof out) {
			size_t drop = used + (size_t)got - (sizeof out - 1);
			drop = drop > used ? used : drop;
			memmove(out, out + drop, used - drop);
			used -= drop;
		}
		size_t take =
			(size_t)got < sizeof out - 1 - used ? (size_t)got : sizeof out - 1 - used;
		memcpy(out + used, chunk + (size_t)got - take, take);
		used += take;
		out[used] = '\0';
	}
	close(fds[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return CB_OK;
	while (used && (out[used - 1] == '\n' || out[used - 1] == ' '))
		out[--used] = '\0';
	char *last = strrchr(out, '\n');
	return CB_FAIL(err, CB_EENV, tpl, NULL, "gnuplot failed: %.300s",
		       used ? (last ? last + 1 : out) : "no message");
}

int cb_plot_render(const char *data_dir, const char *out_dir, unsigned charts, struct cb_error *err)
{
	char *gnuplot = find_in_path("gnuplot");
	if (!gnuplot)
		return CB_FAIL(
			err, CB_EUNAVAILABLE, "gnuplot", NULL,
			"not found in PATH; install it (Debian: apt-get install gnuplot-nox)");
	int rc = CB_OK;
	for (int c = 0; rc == CB_OK && c < CB_CHART_COUNT; c++) {
		if (!(charts & (1u << c)))
			continue;
		/* the template, from the source tree or the install
		 * (resources.h); $CKPTBENCH_PLOTS overrides both */
		char name[64], tpl[PATH_MAX], base[PATH_MAX], file[PATH_MAX + 8];
		snprintf(name, sizeof name, "%s.gp", cb_chart_name(c));
		snprintf(base, sizeof base, "%s/%s", out_dir, cb_chart_name(c));
		rc = cb_resource_find(CB_RES_PLOTS, name, tpl, sizeof tpl, err);
		if (rc != CB_OK)
			break;
		rc = run_gnuplot(gnuplot, tpl, data_dir, base, err);
		for (int k = 0; rc == CB_OK && k < 2; k++) {
			snprintf(file, sizeof file, "%s.%s", base, k ? "svg" : "png");
			if (!is_file(file))
				rc = CB_FAIL(err, CB_EINTERNAL, tpl, NULL, "gnuplot wrote no %s",
					     file);
		}
	}
	free(gnuplot);
	return rc;
}

/* ------------------------------------------------------------ the command */

/* RESULTS.json -> RESULTS-charts beside it. */
static char *default_dir(const char *first)
{
	size_t len = strlen(first);
	if (len > 5 && strcmp(first + len - 5, ".json") == 0)
		len -= 5;
	char *dir = malloc(len + sizeof "-charts");
	if (dir)
		snprintf(dir, len + sizeof "-charts", "%.*s-charts", (int)len, first);
	return dir;
}

struct plot_inputs {
	struct cb_results_file **files; /* results files */
	size_t n;
	json_t *compare; /* at most one comparison document */
	const char *compare_path;
};

static void inputs_free(struct plot_inputs *in)
{
	for (size_t i = 0; i < in->n; i++)
		cb_results_file_free(in->files[i]);
	json_decref(in->compare);
	free(in->files);
}

/* Sorts the files into results files (read into the results model) and a
 * comparison. */
static int load_inputs(char **files, size_t n, struct plot_inputs *in, struct cb_error *err)
{
	memset(in, 0, sizeof *in);
	in->files = calloc(n, sizeof *in->files);
	if (!in->files)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *peek = json_load_file(files[i], 0, NULL);
		if (peek && cb_plotdata_is_compare(peek)) {
			if (in->compare) {
				json_decref(peek);
				return CB_FAIL(err, CB_EUSAGE, files[i], NULL,
					       "one comparison per plot (%s is another)",
					       in->compare_path);
			}
			in->compare = peek;
			in->compare_path = files[i];
			continue;
		}
		/* A results file, once read; anything else says what it is not
		 * (or why it cannot be read) through the loader. */
		int rc = peek ? cb_results_file_from_json(peek, files[i], &in->files[in->n], err)
			      : cb_results_file_load(files[i], &in->files[in->n], err);
		json_decref(peek);
		if (rc != CB_OK)
			return rc;
		in->n++;
	}
	return CB_OK;
}

static void print_outputs(const char *dir, unsigned charts)
{
	for (int c = 0; c < CB_CHART_COUNT; c++)
		if (charts & (1u << c))
			printf("%s/%s.png\n%s/%s.svg\n", dir, cb_chart_name(c), dir,
			       cb_chart_name(c));
}

int cb_plot_draw(const struct cb_plotset *set, const json_t *compare, const char *compare_path,
		 const char *dir, bool data_only, unsigned *charts_out, struct cb_error *err)
{
	*charts_out = 0;
	char *data = cb_path_join(dir, "data");
	int rc =
		data ? cb_mkdir_p(data, err) : CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	unsigned charts = 0;
	if (rc == CB_OK && set)
		rc = cb_plotdata_write(set, data, &charts, err);
	if (rc == CB_OK && compare) {
		rc = cb_plotdata_write_compare(compare, compare_path, data, err);
		charts |= 1u << CB_CHART_COMPARE;
	}
	if (rc == CB_OK && !data_only)
		rc = cb_plot_render(data, dir, charts, err);
	free(data);
	*charts_out = charts;
	return rc;
}

int cb_plot_make(char **files, size_t n_files, const char *dir, bool data_only,
		 unsigned *charts_out, struct cb_error *err)
{
	*charts_out = 0;
	struct plot_inputs in;
	int rc = load_inputs(files, n_files, &in, err);
	struct cb_plotset set;
	bool built = false;
	if (rc == CB_OK && in.n)
		built = (rc = cb_plotset_build((const struct cb_results_file *const *)in.files,
					       in.n, &set, err)) == CB_OK;
	if (rc == CB_OK)
		rc = cb_plot_draw(built ? &set : NULL, in.compare, in.compare_path, dir, data_only,
				  charts_out, err);
	if (built)
		cb_plotset_free(&set);
	inputs_free(&in);
	return rc;
}

int cb_cmd_plot(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"output", required_argument, NULL, 'o'},
		{"data-only", no_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = NULL;
	bool data_only = false;
	int opt;
	while ((opt = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'o': dir = optarg; break;
		case 'd': data_only = true; break;
		case 'h': fputs(plot_help, stdout); return 0;
		default: return cb_usage_error("plot", "unknown option");
		}
	}
	if (optind >= argc)
		return cb_usage_error("plot", "no results file given");
	char *owned = dir ? NULL : default_dir(argv[optind]);
	if (!dir && !owned) {
		fprintf(stderr, "ckptbench: out of memory\n");
		return 3;
	}
	const char *out = dir ? dir : owned;
	struct cb_error err = CB_ERROR_INIT;
	unsigned charts;
	int rc =
		cb_plot_make(argv + optind, (size_t)(argc - optind), out, data_only, &charts, &err);
	if (rc == CB_OK && !data_only)
		print_outputs(out, charts);
	if (rc == CB_OK && data_only)
		printf("%s/data\n", out);
	free(owned);
	return rc == CB_OK ? 0 : cb_fail(&err);
}
