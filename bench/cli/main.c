/* ckptbench: the command table. Each subcommand lives in its own file and
 * returns the process exit status (docs/cli.md, "Exit statuses"). */
#include <stdio.h>
#include <string.h>

#include "cb_commit.h"
#include "cb_config.h"
#include "cli.h"

static const struct cb_command commands[] = {
	{"ab", "two builds, trials interleaved, compared: what a CI job runs", cb_cmd_ab, false},
	{"calibrate", "measure this machine's read and memcpy ceilings", cb_cmd_calibrate, false},
	{"compare", "two results files side by side: regressions, improvements", cb_cmd_compare,
	 false},
	{"convert", "safetensors <-> PyTorch checkpoints, shards too", cb_cmd_convert, false},
	{"gen", "make synthetic datasets in real architectures' shapes", cb_cmd_gen, false},
	{"inspect", "list a checkpoint's tensors, with XXH3 of their bytes", cb_cmd_inspect, false},
	{"loaders", "list the loaders: available here or why not, and options", cb_cmd_loaders,
	 false},
	{"plot", "charts from results files (gnuplot): memory, time, throughput", cb_cmd_plot,
	 false},
	{"report", "a Markdown or HTML write-up of results files, charts included", cb_cmd_report,
	 false},
	{"run", "benchmark loaders on datasets, one process per trial", cb_cmd_run, false},
	{"storage", "put the datasets on tmpfs, a throttled disk or sshfs (root)", cb_cmd_storage,
	 false},
	{"sysinfo", "describe this machine: CPU, memory, caches, filesystem", cb_cmd_sysinfo,
	 false},
	{"trial", "one load in this process (run's child)", cb_cmd_trial, true},
};

static void print_help(FILE *out)
{
	fprintf(out, "usage: ckptbench COMMAND [OPTIONS]\n\n"
		     "Measures how model checkpoints load: safetensors against PyTorch pickles.\n\n"
		     "commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!commands[i].hidden)
			fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
		"\n'ckptbench COMMAND --help' tells more. Exit status: 0 success, 1 bad input\n"
		"or result, 2 usage error, 3 environment error, 4 internal error.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		print_help(stderr);
		return 2;
	}
	const char *name = argv[1];
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
		print_help(stdout);
		return 0;
	}
	if (strcmp(name, "--version") == 0) {
		printf("ckptbench %s (%s)\n", CB_VERSION, CB_COMMIT);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, name) == 0)
			return commands[i].main(argc - 1, argv + 1);
	fprintf(stderr, "ckptbench: unknown command \"%s\" (see ckptbench --help)\n", name);
	return 2;
}
