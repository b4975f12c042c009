/* ckptbench calibrate: the machine's ceilings for the data filesystem. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "calibrate.h"
#include "cli.h"
#include "gen.h"

static const char calibrate_help[] =
	"usage: ckptbench calibrate [--json] [--dir DIR] [--size SIZE]\n"
	"\n"
	"Measures this machine's ceilings, each the median of 5 passes (GB/s = 1e9\n"
	"bytes/s). The read ceilings read a scratch file into memory of its size, as\n"
	"a loader must, in 8 MiB preads by one thread and by one per CPU (at most 16,\n"
	"the loaders' default), and take the faster: cold (after eviction from the\n"
	"page cache) and warm (cached). Also shown: each read's fastest pass; the\n"
	"classic single-thread reads into one reused 8 MiB buffer (fio-like: the\n"
	"buffer stays in the CPU caches, so they measure the page cache's copy-out,\n"
	"not a load), the same cold with O_DIRECT, and memcpy on one thread and on\n"
	"all CPUs. The scratch file is removed.\n"
	"\n"
	"  --json       one JSON object (the \"calibration\" of a results file)\n"
	"  --dir DIR    where the scratch file goes: the filesystem to measure\n"
	"               (default $CKPTBENCH_DATA or datasets/data)\n"
	"  --size SIZE  scratch file size, K/M/G suffixes (default\n"
	"               $CKPTBENCH_CALIBRATE_SIZE or 1G; larger is more faithful)\n";

static void print_figure(const char *label, double gbps)
{
	if (isfinite(gbps))
		printf("  %-24s %8.2f GB/s\n", label, gbps);
	else
		printf("  %-24s %8s\n", label, "n/a");
}

static void print_text(const char *dir, const struct cb_calibration *cal)
{
	printf("calibration of %s (scratch file %.0f MiB, memcpy buffers %.0f MiB, median of 5):\n",
	       dir, (double)cal->file_bytes / (1024.0 * 1024.0),
	       (double)cal->memcpy_bytes / (1024.0 * 1024.0));
	print_figure("cold read", cal->cold_read_gbps);
	print_figure("cold read, fastest pass", cal->cold_read_best_gbps);
	print_figure("cold read, reused buffer", cal->cold_read_reused_gbps);
	print_figure("cold read, O_DIRECT, reused", cal->cold_read_direct_gbps);
	print_figure("warm read", cal->warm_read_gbps);
	print_figure("warm read, fastest pass", cal->warm_read_best_gbps);
	print_figure("warm read, reused buffer", cal->warm_read_reused_gbps);
	print_figure("memcpy, one thread", cal->memcpy_gbps);
	print_figure("memcpy, all CPUs", cal->memcpy_all_gbps);
	print_figure("host to device", cal->h2d_gbps);
	if (cal->note[0])
		printf("note: %s\n", cal->note);
}

int cb_cmd_calibrate(int argc, char **argv)
{
	static const struct option options[] = {
		{"json", no_argument, NULL, 'j'},
		{"dir", required_argument, NULL, 'd'},
		{"size", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool json = false;
	const char *dir = cb_data_dir();
	uint64_t size = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'd': dir = optarg; break;
		case 's':
			if (!cb_parse_size(optarg, &size) || size == 0)
				return cb_usage_error("calibrate", "bad --size \"%s\"", optarg);
			break;
		case 'h': fputs(calibrate_help, stdout); return 0;
		default: return cb_usage_error("calibrate", "unknown option");
		}
	}
	if (optind < argc)
		return cb_usage_error("calibrate", "unexpected argument \"%s\"", argv[optind]);

	struct cb_error err = CB_ERROR_INIT;
	struct cb_calibration cal;
	if (cb_calibrate_sized(dir, size, &cal, &err) != CB_OK)
		return cb_fail(&err);
	if (!json) {
		print_text(dir, &cal);
		return 0;
	}
	json_t *o = cb_calibration_json(&cal);
	if (!o || json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) != 0) {
		json_decref(o);
		CB_FAIL(&err, CB_ENOMEM, NULL, NULL, "cannot write the calibration as JSON");
		return cb_fail(&err);
	}
	putchar('\n');
	json_decref(o);
	return 0;
}
