/* Storage profiles: parsing, the tools run on their behalf, copying the
 * datasets in, entering the throttling cgroup, the results' object
 * (storage.h). The profiles themselves are in storage_tmpfs.c,
 * storage_throttled.c and storage_sshfs.c; their state and teardown in
 * storage_state.c. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"
#include "numparse.h"
#include "storage_impl.h"

/* ------------------------------------------------------------ profiles */

/* The named presets (docs/storage.md): what each stands for, as a rate. */
static const struct {
	const char *name;
	uint64_t rate_bps, iops;
} presets[] = {
	/* Devices' rates as their makers quote them, in decimal MB/s. */
	{"sata-ssd", 550000000ull, 0},        /* a SATA SSD's sequential read */
	{"cloud-volume", 125000000ull, 3000}, /* a gp3-like volume's baseline */
	{"nvme", 0, 0},                       /* the image on this disk, unthrottled */
};

/* "RATE[,IOPS]" of throttled:...; false on anything else. */
static bool parse_rate(const char *text, uint64_t *rate, uint64_t *iops)
{
	char buf[64];
	if (snprintf(buf, sizeof buf, "%s", text) >= (int)sizeof buf)
		return false;
	char *comma = strchr(buf, ',');
	*iops = 0;
	if (comma) {
		*comma = '\0';
		if (!cb_parse_u64(comma + 1, iops) || *iops == 0)
			return false;
	}
	return cb_parse_size(buf, rate) && *rate > 0;
}

int cb_storage_parse(const char *text, struct cb_storage_profile **out, struct cb_error *err)
{
	struct cb_storage_profile p = {.kind = CB_STORAGE_LOCAL};
	if (snprintf(p.name, sizeof p.name, "%s", text) >= (int)sizeof p.name)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "storage profile \"%.40s...\" too long",
			       text);
	bool known = true;
	if (strcmp(text, "local") == 0)
		p.kind = CB_STORAGE_LOCAL;
	else if (strcmp(text, "tmpfs") == 0)
		p.kind = CB_STORAGE_TMPFS;
	else if (strcmp(text, "sshfs") == 0)
		p.kind = CB_STORAGE_SSHFS;
	else if (strcmp(text, "nfs") == 0)
		p.kind = CB_STORAGE_NFS;
	else if (strncmp(text, "throttled:", 10) == 0) {
		p.kind = CB_STORAGE_LOOP;
		if (!parse_rate(text + 10, &p.rate_bps, &p.iops))
			return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
				       "bad storage profile \"%s\": throttled takes RATE[,IOPS] "
				       "(RATE like 550M, in bytes/s; IOPS an integer)",
				       text);
	} else {
		known = false;
		for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
			if (strcmp(text, presets[i].name) == 0) {
				p.kind = CB_STORAGE_LOOP;
				p.rate_bps = presets[i].rate_bps;
				p.iops = presets[i].iops;
				known = true;
			}
	}
	if (!known)
		return CB_FAIL(
			err, CB_EUSAGE, NULL, NULL,
			"unknown storage profile \"%s\" (local, tmpfs, throttled:RATE[,IOPS], "
			"sata-ssd, cloud-volume, nvme, sshfs, nfs)",
			text);
	*out = malloc(sizeof **out);
	if (!*out)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	**out = p;
	return CB_OK;
}

void cb_storage_profile_free(struct cb_storage_profile *p)
{
	free(p);
}

const char *cb_storage_profile_name(const struct cb_storage_profile *p)
{
	return p->name;
}

/* --------------------------------------------------------------- tools */

int cb_st_find_tool(const char *name, const char *package, char *path, size_t size,
		    struct cb_error *err)
{
	const char *env = getenv("PATH");
	char dirs[4096];
	snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/sbin:/usr/bin:/bin", env ? env : "");
	char *save = NULL;
	for (char *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		if (!*dir)
			continue;
		if (snprintf(path, size, "%s/%s", dir, name) < (int)size && access(path, X_OK) == 0)
			return CB_OK;
	}
	return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL, "%s not installed: apt-get install %s",
		       name, package);
}

/* The last non-empty line of a text, trimmed, in place. */
static const char *last_line(char *text)
{
	size_t len = strlen(text);
	while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
		text[--len] = '\0';
	char *nl = strrchr(text, '\n');
	return nl ? nl + 1 : text;
}

/* A growing capture of one descriptor: the first size - 1 bytes kept, the
 * rest read and dropped so the writer never stalls. */
struct capture {
	int fd;
	char *buf;
	size_t size, len;
};

/* Reads both pipes to their ends at once (poll): a tool that fills one
 * while we wait on the other would stall otherwise. */
static void drain_both(struct capture *c)
{
	char sink[4096];
	for (;;) {
		struct pollfd fds[2];
		nfds_t n = 0;
		for (int i = 0; i < 2; i++)
			if (c[i].fd >= 0)
				fds[n++] = (struct pollfd){.fd = c[i].fd, .events = POLLIN};
		if (n == 0)
			break;
		if (poll(fds, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			struct capture *k = &c[i];
			bool ready = false;
			for (nfds_t j = 0; j < n; j++)
				ready = ready || (fds[j].fd == k->fd && fds[j].revents);
			if (k->fd < 0 || !ready)
				continue;
			bool keep = k->len + 1 < k->size;
			ssize_t got = read(k->fd, keep ? k->buf + k->len : sink,
					   keep ? k->size - 1 - k->len : sizeof sink);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				close(k->fd);
				k->fd = -1;
			} else if (keep) {
				k->len += (size_t)got;
			}
		}
	}
	for (int i = 0; i < 2; i++)
		c[i].buf[c[i].len] = '\0';
}

int cb_st_run_tool(const char *const *argv, char *out, size_t out_size, struct cb_error *err)
{
	/* stdout and stderr on separate pipes: stdout is the answer
	 * (losetup --show), stderr the reason of a failure. */
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) != 0)
		return CB_FAIL_ERRNO(err, errno, NULL, "make a pipe");
	if (pipe2(pe, O_CLOEXEC) != 0) {
		close(po[0]);
		close(po[1]);
		return CB_FAIL_ERRNO(err, errno, NULL, "make a pipe");
	}
	pid_t pid = fork();
	if (pid == 0) {
		int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 ||
		    dup2(po[1], STDOUT_FILENO) < 0 || dup2(pe[1], STDERR_FILENO) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int saved = errno;
	close(po[1]);
	close(pe[1]);
	char outbuf[4096], errbuf[4096];
	struct capture c[2] = {{po[0], outbuf, sizeof outbuf, 0},
			       {pe[0], errbuf, sizeof errbuf, 0}};
	if (pid > 0) {
		drain_both(c); /* closes both */
	} else {
		close(po[0]);
		close(pe[0]);
	}
	if (pid < 0)
		return CB_FAIL_ERRNO(err, saved, argv[0], "start a process");
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return CB_FAIL_ERRNO(err, errno, argv[0], "wait for a process");
	if (out && out_size)
		snprintf(out, out_size, "%s", last_line(outbuf));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return CB_OK;
	const char *why = last_line(errbuf);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && !*why)
		why = "could not be run";
	return CB_FAIL(
		err, CB_EENV, argv[0], NULL, "%s %s: %s", strrchr(argv[0], '/') + 1,
		argv[1] ? argv[1] : "",
		*why ? why
		     : (WIFEXITED(status) ? "failed without a message" : "killed by a signal"));
}

pid_t cb_st_spawn(const char *const *argv, const char *log_path)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (null_fd < 0 || log_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 ||
	    dup2(log_fd, STDOUT_FILENO) < 0 || dup2(log_fd, STDERR_FILENO) < 0 || setsid() < 0)
		_exit(127);
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

int cb_st_write_text(const char *path, const char *text, struct cb_error *err)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return CB_FAIL_ERRNO(err, errno, path, "open for writing");
	ssize_t n = write(fd, text, strlen(text));
	int saved = errno;
	close(fd);
	if (n != (ssize_t)strlen(text))
		return CB_FAIL(err, CB_EENV, path, NULL, "writing \"%s\": %s", text,
			       n < 0 ? strerror(saved) : "short write");
	return CB_OK;
}

int cb_st_need_root(const char *what, struct cb_error *err)
{
	if (geteuid() == 0)
		return CB_OK;
	return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL, "needs root (%s)", what);
}

/* ------------------------------------------------------------ datasets */

static uint64_t walk_total; /* nftw has no user pointer; one walk at a time */

static int add_file_bytes(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (type == FTW_F && S_ISREG(st->st_mode))
		walk_total += (uint64_t)st->st_size;
	return 0;
}

int cb_st_total_bytes(const char *const *paths, size_t n, uint64_t *bytes, struct cb_error *err)
{
	walk_total = 0;
	for (size_t i = 0; i < n; i++)
		if (nftw(paths[i], add_file_bytes, 16, FTW_PHYS) != 0)
			return CB_FAIL_ERRNO(err, errno, paths[i], "walk the dataset");
	*bytes = walk_total;
	return CB_OK;
}

/* The absolute, symlink-free form of a path; NULL with errno. */
static char *absolute(const char *path)
{
	return realpath(path, NULL);
}

int cb_st_map_paths(struct cb_storage_mount *m, const char *data_dir, const char *const *paths,
		    size_t n, struct cb_error *err)
{
	char *dir = absolute(data_dir);
	if (!dir)
		return CB_FAIL_ERRNO(err, errno, data_dir, "resolve the data directory");
	m->dataset_paths = calloc(n ? n : 1, sizeof *m->dataset_paths);
	int rc = m->dataset_paths ? CB_OK : CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	size_t dlen = strcmp(dir, "/") == 0 ? 0 : strlen(dir);
	for (size_t i = 0; rc == CB_OK && i < n; i++) {
		char *abs = absolute(paths[i]);
		if (!abs) {
			rc = CB_FAIL_ERRNO(err, errno, paths[i], "resolve the dataset's path");
			break;
		}
		if (strncmp(abs, dir, dlen) != 0 || (abs[dlen] != '/' && abs[dlen] != '\0'))
			rc = CB_FAIL(err, CB_EUSAGE, paths[i], NULL,
				     "not under the data directory %s", dir);
		else if (asprintf(&m->dataset_paths[i], "%s%s", m->mount_point, abs + dlen) < 0)
			rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		else
			m->n_paths = i + 1;
		free(abs);
	}
	free(dir);
	return rc;
}

/* mkdir -p of the directories above `path`. */
static int make_parents(const char *path, struct cb_error *err)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return CB_FAIL_ERRNO(err, errno, buf, "make a directory");
		*p = '/';
	}
	return CB_OK;
}

int cb_st_copy_in(struct cb_storage_mount *m, const char *data_dir, const char *const *paths,
		  size_t n, struct cb_error *err)
{
	char cp[PATH_MAX];
	int rc = cb_st_find_tool("cp", "coreutils", cp, sizeof cp, err);
	if (rc == CB_OK)
		rc = cb_st_map_paths(m, data_dir, paths, n, err);
	for (size_t i = 0; rc == CB_OK && i < n; i++) {
		const char *dest = m->dataset_paths[i];
		struct stat st;
		if (lstat(dest, &st) == 0)
			continue; /* given twice, or inside one copied already */
		rc = make_parents(dest, err);
		/* -R copies a directory's files; the copy's bytes are what
		 * the loaders read, so nothing is linked back to the original. */
		const char *argv[] = {cp, "-R", "--", paths[i], dest, NULL};
		if (rc == CB_OK)
			rc = cb_st_run_tool(argv, NULL, 0, err);
	}
	if (rc == CB_OK) {
		/* On disk before the trials, so none of them pays for writeback. */
		int fd = open(m->mount_point, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || syncfs(fd) != 0)
			rc = CB_FAIL_ERRNO(err, errno, m->mount_point, "sync the copied datasets");
		if (fd >= 0)
			close(fd);
	}
	return rc;
}

char *cb_storage_common_dir(const char *const *paths, size_t n)
{
	char *common = NULL;
	for (size_t i = 0; i < n; i++) {
		char *abs = absolute(paths[i]);
		if (!abs)
			abs = strdup(paths[i]);
		if (!abs)
			goto fail;
		/* Each path's own directory: a dataset directory's parent, as a
		 * file's, so the dataset itself is a name under it. */
		char *slash = strrchr(abs, '/');
		if (slash && slash != abs)
			*slash = '\0';
		else if (slash)
			slash[1] = '\0';
		if (!common) {
			common = abs;
			continue;
		}
		size_t k = 0;
		while (common[k] && common[k] == abs[k])
			k++;
		/* Back to a whole component. */
		if (!(common[k] == '\0' && (abs[k] == '/' || abs[k] == '\0')))
			while (k > 0 && common[k] != '/')
				k--;
		common[k ? k : 1] = '\0';
		if (k == 0)
			common[0] = '/';
		free(abs);
	}
	return common ? common : strdup(".");
fail:
	free(common);
	return NULL;
}

/* -------------------------------------------------------------- cgroup */

bool cb_st_blkio_root(char *dir, size_t size, int *version)
{
	/* cgroup v1 with blkio mounted wins: there a v2 hierarchy, if any,
	 * cannot have the io controller (one controller, one hierarchy). */
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	char line[4096], v2[PATH_MAX] = "";
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		char mnt[PATH_MAX], *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		char fstype[64], super[1024] = "";
		if (sscanf(dash + 3, "%63s %*s %1023s", fstype, super) < 1)
			continue;
		if (strcmp(fstype, "cgroup") == 0 &&
		    (strstr(super, ",blkio") || strncmp(super, "blkio", 5) == 0)) {
			snprintf(dir, size, "%s", mnt);
			*version = 1;
			found = true;
		} else if (strcmp(fstype, "cgroup2") == 0 && !*v2) {
			snprintf(v2, sizeof v2, "%s", mnt);
		}
	}
	fclose(f);
	if (found || !*v2)
		return found;
	char path[PATH_MAX + 32], text[512] = "";
	snprintf(path, sizeof path, "%s/cgroup.controllers", v2);
	f = fopen(path, "re");
	if (!f)
		return false;
	bool has_io = fgets(text, sizeof text, f) &&
		      (strstr(text, "io ") || strstr(text, "io\n") || strcmp(text, "io") == 0);
	fclose(f);
	if (has_io) {
		snprintf(dir, size, "%s", v2);
		*version = 2;
	}
	return has_io;
}

/* The calling process's cgroup in the hierarchy of the mount's version
 * (from /proc/self/cgroup), as a directory under that hierarchy's root. */
static bool own_cgroup(const struct cb_storage_mount *m, char *out, size_t size)
{
	char root[PATH_MAX];
	int version;
	if (!cb_st_blkio_root(root, sizeof root, &version))
		return false;
	FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return false;
	char line[4096];
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		const char *controllers = c1 + 1, *rel = c2 + 1;
		bool match = m->cgroup_version == 2 ? strcmp(line, "0") == 0
						    : strstr(controllers, "blkio") != NULL;
		if (match)
			found = snprintf(out, size, "%s%s", root,
					 strcmp(rel, "/") == 0 ? "" : rel) < (int)size;
	}
	fclose(f);
	return found;
}

static int move_self(const char *cgroup_dir, struct cb_error *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/cgroup.procs", cgroup_dir);
	char pid[24];
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	return cb_st_write_text(path, pid, err);
}

int cb_storage_enter(struct cb_storage_mount *m, struct cb_error *err)
{
	if (!*m->cgroup_dir)
		return CB_OK;
	if (!own_cgroup(m, m->cgroup_return, sizeof m->cgroup_return))
		return CB_FAIL(err, CB_EENV, "/proc/self/cgroup", NULL,
			       "cannot tell this process's blkio cgroup");
	return move_self(m->cgroup_dir, err);
}

int cb_storage_leave(struct cb_storage_mount *m, struct cb_error *err)
{
	if (!*m->cgroup_dir || !*m->cgroup_return)
		return CB_OK;
	int rc = move_self(m->cgroup_return, err);
	if (rc == CB_OK)
		m->cgroup_return[0] = '\0';
	return rc;
}

/* ------------------------------------------------------------ up, down */

/* The local profile: the datasets where they are, on whatever the data
 * directory is. */
static int up_local(const char *data_dir, const char *const *paths, size_t n,
		    struct cb_storage_mount *m, struct cb_error *err)
{
	m->dataset_paths = calloc(n ? n : 1, sizeof *m->dataset_paths);
	if (!m->dataset_paths)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (!(m->dataset_paths[i] = strdup(paths[i])))
			return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		m->n_paths = i + 1;
	}
	struct statfs sf;
	static const struct {
		unsigned long magic;
		const char *name;
	} kinds[] = {{0xEF53, "ext4"},       {0x01021994, "tmpfs"}, {0x58465342, "xfs"},
		     {0x9123683E, "btrfs"},  {0x65735546, "fuse"},  {0x6969, "nfs"},
		     {0x794c7630, "overlay"}};
	if (statfs(data_dir, &sf) == 0)
		for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
			if ((unsigned long)sf.f_type == kinds[i].magic)
				snprintf(m->fstype, sizeof m->fstype, "%s", kinds[i].name);
	snprintf(m->source, sizeof m->source, "%s", data_dir);
	snprintf(m->note, sizeof m->note, "the data directory as it is");
	return CB_OK;
}

/* Whether the running kernel has an NFS server (nfsd registers the "nfsd"
 * filesystem when loaded or built in). */
static bool kernel_has_nfsd(void)
{
	FILE *f = fopen("/proc/filesystems", "re");
	if (!f)
		return false;
	char line[256];
	bool found = false;
	while (!found && fgets(line, sizeof line, f))
		found = strstr(line, "\tnfsd\n") != NULL;
	fclose(f);
	return found;
}

int cb_storage_up(const struct cb_storage_profile *p, const char *data_dir,
		  const char *const *paths, size_t n, bool owned, struct cb_storage_mount *out,
		  struct cb_error *err)
{
	memset(out, 0, sizeof *out);
	snprintf(out->profile, sizeof out->profile, "%s", p->name);
	int rc;
	switch (p->kind) {
	case CB_STORAGE_LOCAL: rc = up_local(data_dir, paths, n, out, err); break;
	case CB_STORAGE_TMPFS: rc = cb_st_up_tmpfs(p, data_dir, paths, n, owned, out, err); break;
	case CB_STORAGE_LOOP: rc = cb_st_up_loop(p, data_dir, paths, n, owned, out, err); break;
	case CB_STORAGE_SSHFS: rc = cb_st_up_sshfs(p, data_dir, paths, n, owned, out, err); break;
	case CB_STORAGE_NFS:
	default:
		/* An NFS server of our own is the only faithful nfs profile;
		 * none is set up yet even where the kernel has one. */
		rc = CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL,
			     kernel_has_nfsd() ? "not implemented (needs an NFS "
						 "server export of our own)"
					       : "this kernel has no NFS server (no "
						 "nfsd in /proc/filesystems)");
	}
	if (rc != CB_OK) {
		/* Nothing of a failed profile stays: undo what it recorded. */
		struct cb_error ignored = CB_ERROR_INIT;
		char why[sizeof err->msg];
		snprintf(why, sizeof why, "%s", err ? err->msg : "not available here");
		cb_storage_down(out, &ignored);
		snprintf(out->profile, sizeof out->profile, "%s", p->name);
		snprintf(out->note, sizeof out->note, "%s", why);
	}
	return rc;
}

static void free_paths(struct cb_storage_mount *m)
{
	for (size_t i = 0; i < m->n_paths; i++)
		free(m->dataset_paths[i]);
	free(m->dataset_paths);
	m->dataset_paths = NULL;
	m->n_paths = 0;
}

int cb_storage_down(struct cb_storage_mount *m, struct cb_error *err)
{
	struct cb_error ignored = CB_ERROR_INIT;
	cb_storage_leave(m, &ignored); /* a cgroup with us in it cannot go */
	free_paths(m);
	int rc = *m->state_dir ? cb_st_teardown(m->state_dir, false, err) : CB_OK;
	if (rc == CB_OK)
		m->state_dir[0] = m->cgroup_dir[0] = m->mount_point[0] = '\0';
	return rc;
}

/* ---------------------------------------------------------------- json */

static json_t *str_or_null(const char *s)
{
	return *s ? json_string(s) : json_null();
}

static json_t *u64_or_null(uint64_t v)
{
	return v ? json_integer((json_int_t)v) : json_null();
}

json_t *cb_storage_json(const struct cb_storage_mount *m)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "profile", json_string(m->profile));
	json_object_set_new(o, "fstype", str_or_null(m->fstype));
	json_object_set_new(o, "mount_options", str_or_null(m->mount_options));
	json_object_set_new(o, "rate_bytes_per_s", u64_or_null(m->rate_bytes_per_s));
	json_object_set_new(o, "iops", u64_or_null(m->iops));
	json_object_set_new(o, "source", str_or_null(m->source));
	json_object_set_new(o, "mount_point", str_or_null(m->mount_point));
	json_object_set_new(o, "note", str_or_null(m->note));
	return o;
}
