/* ckptbench-parsebench: how long our code takes to parse a .pt file.
 *
 * Why it exists: a claim such as "our parse of a 20,000-tensor pickle is 10x
 * faster than torch's" must be measured on a real torch.save file against
 * the real torch.load, on the machine at hand, not asserted by a timed unit
 * test (which would be flaky on a loaded CI runner and prove nothing about
 * torch). bench/tools/parse-compare.sh writes such a file with torch, times
 * torch.load on it and runs this program on the same file.
 *
 * What is timed is what the `pickle` loader does before it reads a tensor
 * byte (loaders/pickle.c): cb_ckpt_open(path, CB_FORMAT_PYTORCH), i.e. open
 * the zip, read its central directory, run data.pkl through the restricted
 * unpickler and resolve every tensor's storage record (offset, size, dtype,
 * shape, strides) with its checks, then cb_ckpt_free. The loader's own
 * sorting of those records (plan_records, static in pickle.c) is not
 * included; it is one qsort of n small structs.
 *
 * Every repetition runs in this one process with the file in the page cache
 * (one untimed warm-up first), as torch.load's repetitions do in the one
 * Python process of parse-compare.sh: both sides are measured warm.
 *
 * Output: one JSON line {"file", "tensors", "repeat", "median_s", "min_s"}.
 * Errors: one line on stderr (error.h's `ckptbench: PATH: what (where)`)
 * and the exit status of docs/cli.md.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ckpt.h"
#include "cli.h"
#include "stats.h"

#define PROG "ckptbench-parsebench"
#define DEFAULT_REPEAT 20
#define MAX_REPEAT 100000 /* bounds the times array; far beyond any useful run */

static const char parsebench_help[] =
	"usage: " PROG " [--repeat N] FILE.pt\n"
	"\n"
	"Times what the pickle loader does before reading tensor data: open the zip,\n"
	"read its directory, unpickle data.pkl and resolve every tensor's storage\n"
	"record, then free it. N timed runs (default 20) after one warm-up, in one\n"
	"process. Prints one JSON line: file, tensors, repeat, median_s, min_s.\n";

static int usage_error(const char *msg)
{
	fprintf(stderr, PROG ": %s (see " PROG " --help)\n", msg);
	return 2;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One parse: open, resolve, free. *seconds is the wall time of all three;
 * *n_tensors what the file holds. */
static int parse_once(const char *path, double *seconds, size_t *n_tensors, struct cb_error *err)
{
	double t0 = now_s();
	struct cb_ckpt *ckpt;
	int rc = cb_ckpt_open(path, CB_FORMAT_PYTORCH, &ckpt, err);
	if (rc != CB_OK)
		return rc;
	*n_tensors = ckpt->n_tensors;
	cb_ckpt_free(ckpt);
	*seconds = now_s() - t0;
	return CB_OK;
}

static int print_result(const char *path, size_t n_tensors, const double *times, size_t repeat,
			struct cb_error *err)
{
	struct cb_stats st;
	cb_stats_compute(times, repeat, &st);
	/* jansson escapes the path, whatever bytes it holds. */
	json_t *doc = json_pack("{s:s, s:I, s:I, s:f, s:f}", "file", path, "tensors",
				(json_int_t)n_tensors, "repeat", (json_int_t)repeat, "median_s",
				st.median, "min_s", st.min);
	int rc = CB_OK;
	if (!doc || json_dumpf(doc, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6)) != 0 ||
	    putchar('\n') == EOF || fflush(stdout) != 0)
		rc = CB_FAIL(err, CB_EIO, path, NULL, "cannot write the result");
	json_decref(doc);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"repeat", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t repeat = DEFAULT_REPEAT;
	int c;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (!cb_parse_u64(optarg, &repeat) || repeat < 1 || repeat > MAX_REPEAT)
				return usage_error("--repeat takes 1 to " CB_STR(MAX_REPEAT));
			break;
		case 'h': fputs(parsebench_help, stdout); return 0;
		default: return usage_error("unknown option");
		}
	}
	if (argc - optind != 1)
		return usage_error("takes exactly one FILE.pt");
	const char *path = argv[optind];

	struct cb_error err = CB_ERROR_INIT;
	double *times = calloc((size_t)repeat, sizeof *times);
	if (!times) {
		CB_FAIL(&err, CB_ENOMEM, path, NULL, "out of memory");
		return cb_fail(&err);
	}
	/* The warm-up brings the file into the page cache and the allocator to
	 * its steady state; it is also where a bad file is refused. */
	double warmup;
	size_t n_tensors = 0;
	int rc = parse_once(path, &warmup, &n_tensors, &err);
	for (size_t i = 0; rc == CB_OK && i < (size_t)repeat; i++)
		rc = parse_once(path, &times[i], &n_tensors, &err);
	if (rc == CB_OK)
		rc = print_result(path, n_tensors, times, (size_t)repeat, &err);
	free(times);
	if (rc == CB_OK)
		return 0;
	cb_error_set_path(&err, path);
	return cb_fail(&err);
}
