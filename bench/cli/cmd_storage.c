/* ckptbench storage: bring a storage profile up by hand, list what is up,
 * take everything down (bench/storage/storage.h, docs/storage.md). */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fileio.h"
#include "gen.h"
#include "storage.h"

static const char storage_help[] =
	"usage: ckptbench storage up PROFILE [--datasets D,..]\n"
	"       ckptbench storage down\n"
	"       ckptbench storage status\n"
	"\n"
	"Puts the datasets on a kind of storage made on this machine (root), as\n"
	"`run --storage` does for a run, and leaves it up until `storage down`.\n"
	"\n"
	"  up PROFILE      local, tmpfs, throttled:RATE[,IOPS] (RATE like 550M, in\n"
	"                  bytes/s), sata-ssd, cloud-volume, nvme, sshfs, nfs; prints\n"
	"                  where each dataset is (and the cgroup whose processes are\n"
	"                  throttled)\n"
	"  --datasets D    dataset names (under $CKPTBENCH_DATA or datasets/data) or\n"
	"                  paths (default: every dataset of the data directory)\n"
	"  down            undoes every profile brought up, and any a crashed run\n"
	"                  left (mounts, loop devices, cgroups, sshd); not those of a\n"
	"                  run still going\n"
	"  status          one line per profile up\n";

/* Every dataset of the data directory: its entries but hidden ones (a
 * throttled profile's image lies there too, hidden). */
static int all_datasets(const char *dir, char ***paths, size_t *n)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char **more = realloc(*paths, (*n + 1) * sizeof *more);
		if (!more)
			break;
		*paths = more;
		if (((*paths)[*n] = cb_path_join(dir, e->d_name)) != NULL)
			++*n;
	}
	closedir(d);
	return 0;
}

/* --datasets' names and paths, as run takes them. */
static int named_datasets(const char *list, char ***paths, size_t *n)
{
	char *copy = strdup(list);
	for (char *save, *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok;
	     tok = strtok_r(NULL, ",", &save)) {
		struct stat st;
		char **more = realloc(*paths, (*n + 1) * sizeof *more);
		if (!more)
			break;
		*paths = more;
		char *path = stat(tok, &st) == 0 ? strdup(tok) : cb_path_join(cb_data_dir(), tok);
		if (!path || stat(path, &st) != 0) {
			free(path);
			free(copy);
			return cb_usage_error("storage",
					      "no dataset \"%s\" (not a path, nor in %s)", tok,
					      cb_data_dir());
		}
		(*paths)[(*n)++] = path;
	}
	free(copy);
	return 0;
}

static int storage_up(const char *text, const char *datasets)
{
	struct cb_error err = CB_ERROR_INIT;
	struct cb_storage_profile *p = NULL;
	if (cb_storage_parse(text, &p, &err) != CB_OK)
		return cb_usage_error("storage", "%s", err.msg);
	char **paths = NULL;
	size_t n = 0;
	int status = datasets ? named_datasets(datasets, &paths, &n)
			      : (all_datasets(cb_data_dir(), &paths, &n) == 0
					 ? 0
					 : cb_usage_error("storage", "no data directory %s",
							  cb_data_dir()));
	if (status == 0 && n == 0)
		status = cb_usage_error("storage", "no datasets in %s", cb_data_dir());
	char *data_dir = status == 0 ? cb_storage_common_dir((const char *const *)paths, n) : NULL;
	struct cb_storage_mount m;
	if (status == 0 && !data_dir)
		status = cb_fail(&(struct cb_error){.code = CB_ENOMEM, .msg = "out of memory"});
	if (status == 0 &&
	    cb_storage_up(p, data_dir, (const char *const *)paths, n, false, &m, &err) != CB_OK)
		status = cb_fail(&err);
	if (status == 0) {
		printf("storage %s up%s%s\n", m.profile, *m.id ? ": " : "", m.id);
		for (size_t i = 0; i < m.n_paths; i++)
			printf("  %s\n", m.dataset_paths[i]);
		if (*m.cgroup_dir)
			printf("  throttled for the processes in %s (echo $$ > %s/cgroup.procs)\n",
			       m.cgroup_dir, m.cgroup_dir);
		printf("  %s: %s\n", m.fstype, m.source);
		if (*m.id)
			printf("`ckptbench storage down` takes it down\n");
		/* The profile stays up: only its memory here is freed. */
		for (size_t i = 0; i < m.n_paths; i++)
			free(m.dataset_paths[i]);
		free(m.dataset_paths);
	}
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	free(data_dir);
	cb_storage_profile_free(p);
	return status;
}

int cb_cmd_storage(int argc, char **argv)
{
	static const struct option options[] = {
		{"datasets", required_argument, NULL, 'D'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *datasets = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case 'D': datasets = optarg; break;
		case 'h': fputs(storage_help, stdout); return 0;
		default: return cb_usage_error("storage", "unknown option");
		}
	}
	const char *verb = optind < argc ? argv[optind] : NULL;
	int left = argc - optind;
	if (verb && strcmp(verb, "up") == 0 && left == 2)
		return storage_up(argv[optind + 1], datasets);
	if (verb && strcmp(verb, "down") == 0 && left == 1 && !datasets) {
		struct cb_error err = CB_ERROR_INIT;
		size_t n = 0;
		if (cb_storage_down_all(&n, &err) != CB_OK)
			return cb_fail(&err);
		printf("%zu storage profile(s) taken down\n", n);
		return 0;
	}
	if (verb && strcmp(verb, "status") == 0 && left == 1 && !datasets) {
		if (cb_storage_status(stdout) == 0)
			printf("no storage profile is up\n");
		return 0;
	}
	return cb_usage_error("storage", "takes up PROFILE, down or status");
}
