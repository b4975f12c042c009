/* The profiles' state directories, their teardown, and the guardian
 * (storage.h, "Crash safety").
 *
 * A state directory CB_STORAGE_STATE_ROOT/<id>/ holds a state file of
 * "KEY VALUE" lines, appended before each resource is made:
 *   profile NAME     the profile as given
 *   owner PID        the run that owns it; 0: `storage up`, nobody
 *   image PATH       a loop image file (its loop devices are found from it)
 *   loop DEV         the loop device attached to it (informative)
 *   mount DIR        a mount point
 *   cgroup DIR       a throttling cgroup
 * and whatever files the profile keeps (sshd's keys and configuration).
 * Every process the profiles start names a path inside the state
 * directory on its command line (sshd its configuration, sshfs its mount
 * point), so teardown finds them there, with no pid file to trust.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/loop.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "storage_impl.h"

/* ----------------------------------------------------------- the state */

static int make_dirs(const char *path, mode_t mode, struct cb_error *err)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof buf, "%s/", path);
	for (char *p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return CB_FAIL_ERRNO(err, errno, buf, "make a directory");
		*p = '/';
	}
	return CB_OK;
}

int cb_st_state_create(const struct cb_storage_profile *p, bool owned, struct cb_storage_mount *m,
		       struct cb_error *err)
{
	static const char *const kinds[] = {
		[CB_STORAGE_LOCAL] = "local", [CB_STORAGE_TMPFS] = "tmpfs",
		[CB_STORAGE_LOOP] = "loop",   [CB_STORAGE_SSHFS] = "sshfs",
		[CB_STORAGE_NFS] = "nfs",
	};
	/* 0700: the sshfs profile keeps a private key there. */
	int rc = make_dirs(CB_STORAGE_STATE_ROOT, 0700, err);
	if (rc != CB_OK)
		return rc;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	for (unsigned attempt = 0;; attempt++) {
		snprintf(m->id, sizeof m->id, "%s-%d-%lx%u", kinds[p->kind], (int)getpid(),
			 (unsigned long)ts.tv_nsec & 0xfffff, attempt);
		snprintf(m->state_dir, sizeof m->state_dir, "%s/%s", CB_STORAGE_STATE_ROOT, m->id);
		if (mkdir(m->state_dir, 0700) == 0)
			break;
		if (errno != EEXIST || attempt > 100) {
			int saved = errno;
			m->state_dir[0] = '\0';
			return CB_FAIL_ERRNO(err, saved, CB_STORAGE_STATE_ROOT,
					     "make a profile's state directory");
		}
	}
	snprintf(m->mount_point, sizeof m->mount_point, "%s/mnt", m->state_dir);
	char owner[24];
	snprintf(owner, sizeof owner, "%d", owned ? (int)getpid() : 0);
	rc = cb_st_state_add(m, "profile", p->name, err);
	if (rc == CB_OK)
		rc = cb_st_state_add(m, "owner", owner, err);
	return rc;
}

int cb_st_state_add(const struct cb_storage_mount *m, const char *key, const char *value,
		    struct cb_error *err)
{
	char path[PATH_MAX], line[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/state", m->state_dir);
	int len = snprintf(line, sizeof line, "%s %s\n", key, value);
	/* O_APPEND, one write per line: a line is whole or absent, whenever
	 * this process dies. No fsync: the state dies with the machine's
	 * mounts at a reboot (/run). */
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return CB_FAIL_ERRNO(err, errno, path, "open the state file");
	ssize_t n = write(fd, line, (size_t)len);
	int saved = errno;
	close(fd);
	if (n != len)
		return CB_FAIL_ERRNO(err, n < 0 ? saved : EIO, path, "write the state file");
	return CB_OK;
}

/* The state file's lines, in order. */
struct state {
	char profile[64];
	long owner;
	char lines[64][PATH_MAX / 4];
	char keys[64][16];
	size_t n;
};

static bool state_read(const char *dir, struct state *s)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/state", dir);
	memset(s, 0, sizeof *s);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	char line[PATH_MAX + 64];
	while (s->n < 64 && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		char *sp = strchr(line, ' ');
		if (!sp)
			continue;
		*sp = '\0';
		if (strcmp(line, "profile") == 0)
			snprintf(s->profile, sizeof s->profile, "%s", sp + 1);
		else if (strcmp(line, "owner") == 0)
			s->owner = strtol(sp + 1, NULL, 10);
		snprintf(s->keys[s->n], sizeof s->keys[s->n], "%.15s", line);
		snprintf(s->lines[s->n], sizeof s->lines[s->n], "%s", sp + 1);
		s->n++;
	}
	fclose(f);
	return true;
}

/* ------------------------------------------------------------ processes */

/* Whether `path` is `dir` or inside it. */
static bool under(const char *path, const char *dir)
{
	size_t len = strlen(dir);
	return strncmp(path, dir, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

/* Whether the process names `dir` on its command line. */
static bool cmdline_names(pid_t pid, const char *dir)
{
	char path[64], text[8192];
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	ssize_t n = cb_read_text(path, text, sizeof text);
	if (n < 0)
		return false;
	for (ssize_t i = 0; i < n; i++) /* the arguments, NUL-separated */
		if (!text[i])
			text[i] = ' ';
	return strstr(text, dir) != NULL;
}

/* Whether the process has a file, its working directory, its root or a
 * mapping under `dir` (what fuser -m looks at). */
static bool uses_dir(pid_t pid, const char *dir)
{
	char path[96], target[PATH_MAX];
	static const char *const links[] = {"cwd", "root", "exe"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, links[i]);
		ssize_t n = readlink(path, target, sizeof target - 1);
		if (n > 0 && (target[n] = '\0', under(target, dir)) && strcmp(target, "/") != 0)
			return true;
	}
	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	bool found = false;
	for (struct dirent *e; d && !found && (e = readdir(d));) {
		char fd_path[400];
		snprintf(fd_path, sizeof fd_path, "%s/%s", path, e->d_name);
		ssize_t n = readlink(fd_path, target, sizeof target - 1);
		found = n > 0 && (target[n] = '\0', under(target, dir));
	}
	if (d)
		closedir(d);
	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	FILE *f = found ? NULL : fopen(path, "re");
	char line[PATH_MAX + 128];
	while (f && !found && fgets(line, sizeof line, f)) {
		char *slash = strchr(line, '/');
		if (slash) {
			slash[strcspn(slash, "\n")] = '\0';
			found = under(slash, dir);
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* Kills the processes (other than this one) that `dir` on their command
 * line or, with `users`, that use files under it: SIGTERM, up to 3 s, then
 * SIGKILL, and reaps the ones that are our children. */
static void kill_matching(const char *dir, bool users)
{
	pid_t victims[256];
	size_t n = 0;
	DIR *d = opendir("/proc");
	for (struct dirent *e; d && n < 256 && (e = readdir(d));) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 1 || pid == getpid())
			continue;
		if (cmdline_names((pid_t)pid, dir) || (users && uses_dir((pid_t)pid, dir)))
			victims[n++] = (pid_t)pid;
	}
	if (d)
		closedir(d);
	for (int round = 0; round < 2 && n; round++) {
		for (size_t i = 0; i < n; i++)
			kill(victims[i], round ? SIGKILL : SIGTERM);
		for (int wait_ms = 0; wait_ms < 3000; wait_ms += 20) {
			bool any = false;
			for (size_t i = 0; i < n; i++) {
				waitpid(victims[i], NULL, WNOHANG); /* ours: reap */
				any = any || cb_process_alive(victims[i]);
			}
			if (!any)
				return;
			nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
		}
	}
}

/* ------------------------------------------------------------- teardown */

/* Moves every task out of a cgroup (to the hierarchy's root), then removes
 * it; a cgroup with tasks cannot be removed. */
static int remove_cgroup(const char *dir, struct cb_error *err)
{
	struct stat st;
	if (stat(dir, &st) != 0)
		return CB_OK; /* recorded, never made, or gone */
	char root[PATH_MAX], procs[PATH_MAX + 16], dest[PATH_MAX + 16];
	int version;
	if (cb_st_blkio_root(root, sizeof root, &version)) {
		snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
		snprintf(dest, sizeof dest, "%s/cgroup.procs", root);
		for (int pass = 0; pass < 3; pass++) {
			FILE *f = fopen(procs, "re");
			char line[32];
			while (f && fgets(line, sizeof line, f)) {
				line[strcspn(line, "\n")] = '\0';
				struct cb_error ignored = CB_ERROR_INIT;
				cb_st_write_text(dest, line, &ignored);
			}
			if (f)
				fclose(f);
			if (rmdir(dir) == 0 || errno == ENOENT)
				return CB_OK;
		}
	}
	if (rmdir(dir) == 0 || errno == ENOENT)
		return CB_OK;
	return CB_FAIL_ERRNO(err, errno, dir, "remove the throttling cgroup");
}

/* Unmounts; a busy mount (a user still in it) is detached lazily: it is
 * gone from the namespace at once and freed when its last user leaves. */
static int unmount(const char *dir, struct cb_error *err)
{
	for (int attempt = 0; attempt < 10; attempt++) {
		if (umount2(dir, 0) == 0 || errno == EINVAL || errno == ENOENT)
			return CB_OK; /* EINVAL: not a mount point (never made) */
		if (errno != EBUSY)
			break;
		nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
	}
	if (errno == EBUSY && umount2(dir, MNT_DETACH) == 0)
		return CB_OK;
	return CB_FAIL_ERRNO(err, errno, dir, "unmount");
}

/* Detaches every loop device whose backing file is `image` (found in
 * sysfs, so a device attached but not yet recorded is found too). One
 * still in use (a lazily detached filesystem on it) is set to detach
 * itself when its last user closes it. */
static int detach_loops(const char *image, struct cb_error *err)
{
	DIR *d = opendir("/sys/block");
	int rc = CB_OK;
	for (struct dirent *e; d && (e = readdir(d));) {
		if (strncmp(e->d_name, "loop", 4) != 0)
			continue;
		char path[PATH_MAX], backing[PATH_MAX] = "";
		snprintf(path, sizeof path, "/sys/block/%s/loop/backing_file", e->d_name);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(backing, sizeof backing, f))
			backing[strcspn(backing, "\n")] = '\0';
		fclose(f);
		/* The kernel appends " (deleted)" once the image is unlinked. */
		if (strncmp(backing, image, strlen(image)) != 0 ||
		    (backing[strlen(image)] && strcmp(backing + strlen(image), " (deleted)") != 0))
			continue;
		snprintf(path, sizeof path, "/dev/%s", e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = CB_FAIL_ERRNO(err, errno, path, "open the loop device");
			continue;
		}
		bool done = false;
		for (int attempt = 0; !done && attempt < 20; attempt++) {
			done = ioctl(fd, LOOP_CLR_FD, 0) == 0 || errno == ENXIO;
			if (!done && errno == EBUSY)
				nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
			else if (!done)
				break;
		}
		struct loop_info64 info;
		if (!done && ioctl(fd, LOOP_GET_STATUS64, &info) == 0) {
			info.lo_flags |= LO_FLAGS_AUTOCLEAR;
			done = ioctl(fd, LOOP_SET_STATUS64, &info) == 0;
		}
		if (!done)
			rc = CB_FAIL_ERRNO(err, errno, path, "detach the loop device");
		close(fd);
	}
	if (d)
		closedir(d);
	return rc;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	/* A directory still mounted on is left: rmdir says EBUSY. */
	return (type == FTW_DP ? rmdir(path) : unlink(path)) == 0 || errno == ENOENT ? 0 : -1;
}

int cb_st_teardown(const char *state_dir, bool kill_users, struct cb_error *err)
{
	struct state *s = malloc(sizeof *s);
	if (!s)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	int rc = CB_OK;
	if (state_read(state_dir, s)) {
		/* Users first (a dead run's trials), then the throttle, the
		 * mounts (last made, first undone), the processes (sshfs,
		 * sshd: after the unmount, so no read is cut half-way), the
		 * loop devices and their images. Each step goes on after a
		 * failure: as much as can go, goes. */
		for (size_t i = s->n; kill_users && i-- > 0;)
			if (strcmp(s->keys[i], "mount") == 0)
				kill_matching(s->lines[i], true);
		for (size_t i = s->n; i-- > 0;)
			if (strcmp(s->keys[i], "cgroup") == 0 &&
			    remove_cgroup(s->lines[i], err) != CB_OK)
				rc = err->code;
		for (size_t i = s->n; i-- > 0;)
			if (strcmp(s->keys[i], "mount") == 0 && unmount(s->lines[i], err) != CB_OK)
				rc = err->code;
		kill_matching(state_dir, false);
		for (size_t i = s->n; i-- > 0;)
			if (strcmp(s->keys[i], "image") == 0) {
				if (detach_loops(s->lines[i], err) != CB_OK)
					rc = err->code;
				if (unlink(s->lines[i]) != 0 && errno != ENOENT)
					rc = CB_FAIL_ERRNO(err, errno, s->lines[i],
							   "remove the image");
			}
	}
	free(s);
	/* FTW_MOUNT: never into a filesystem still mounted under it. */
	if (rc == CB_OK &&
	    nftw(state_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0 &&
	    errno != ENOENT)
		rc = CB_FAIL_ERRNO(err, errno, state_dir, "remove the state directory");
	return rc;
}

/* -------------------------------------------------------- all, by owner */

static bool owner_alive(long owner)
{
	return owner > 0 && (kill((pid_t)owner, 0) == 0 || errno == EPERM) &&
	       cb_process_alive((pid_t)owner);
}

/* Tears down every state directory `want` says yes to. */
static int down_where(bool (*want)(const struct state *, long), long arg, size_t *n_down,
		      struct cb_error *err)
{
	if (n_down)
		*n_down = 0;
	DIR *d = opendir(CB_STORAGE_STATE_ROOT);
	if (!d)
		return errno == ENOENT ? CB_OK
				       : CB_FAIL_ERRNO(err, errno, CB_STORAGE_STATE_ROOT, "list");
	struct state *s = malloc(sizeof *s);
	int rc = s ? CB_OK : CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (struct dirent *e; s && (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char dir[PATH_MAX];
		snprintf(dir, sizeof dir, "%s/%s", CB_STORAGE_STATE_ROOT, e->d_name);
		bool readable = state_read(dir, s);
		if (readable && !want(s, arg))
			continue;
		/* An unreadable one is a profile that died before its first
		 * line: nothing was made; the directory goes. */
		if (cb_st_teardown(dir, arg > 0, err) != CB_OK)
			rc = err->code;
		else if (n_down)
			++*n_down;
	}
	free(s);
	closedir(d);
	return rc;
}

static bool not_in_use(const struct state *s, long arg)
{
	(void)arg;
	return !owner_alive(s->owner);
}

static bool owned_by(const struct state *s, long owner)
{
	return s->owner == owner;
}

int cb_storage_down_all(size_t *n_down, struct cb_error *err)
{
	return down_where(not_in_use, 0, n_down, err);
}

size_t cb_storage_status(FILE *out)
{
	DIR *d = opendir(CB_STORAGE_STATE_ROOT);
	size_t n = 0;
	struct state *s = malloc(sizeof *s);
	for (struct dirent *e; d && s && (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char dir[PATH_MAX];
		snprintf(dir, sizeof dir, "%s/%s", CB_STORAGE_STATE_ROOT, e->d_name);
		if (!state_read(dir, s))
			continue;
		n++;
		fprintf(out, "%s  %s  ", e->d_name, s->profile);
		if (s->owner == 0)
			fprintf(out, "up (storage up)");
		else
			fprintf(out, "run %ld%s", s->owner,
				owner_alive(s->owner) ? "" : " (gone: storage down removes it)");
		for (size_t i = 0; i < s->n; i++)
			if (strcmp(s->keys[i], "mount") == 0 || strcmp(s->keys[i], "loop") == 0 ||
			    strcmp(s->keys[i], "cgroup") == 0)
				fprintf(out, "  %s %s", s->keys[i], s->lines[i]);
		fputc('\n', out);
	}
	free(s);
	if (d)
		closedir(d);
	return n;
}

/* ------------------------------------------------------------- guardian */

int cb_storage_guardian_start(struct cb_error *err)
{
	/* The write end stays in this process alone (O_CLOEXEC: the trial
	 * children it execs do not keep it, so they cannot hold the
	 * guardian back after this process dies). */
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return CB_FAIL_ERRNO(err, errno, NULL, "make the guardian's pipe");
	pid_t owner = getpid();
	fflush(NULL); /* nothing buffered written twice */
	pid_t pid = fork();
	if (pid < 0) {
		int saved = errno;
		close(p[0]);
		close(p[1]);
		return CB_FAIL_ERRNO(err, saved, NULL, "start the storage guardian");
	}
	if (pid > 0) {
		close(p[0]);
		return CB_OK; /* p[1] is held until this process exits */
	}
	/* The guardian: its own session, so neither a Ctrl-C to the run's
	 * process group nor the terminal closing stops it before it has
	 * cleaned up; it ends by itself once the run is gone. */
	close(p[1]);
	setsid();
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_NAME, "ckptbench-guard");
	/* No descriptor of the run but the pipe and stderr (for a teardown
	 * that failed): a caller reading the run's stdout sees its end when
	 * the run ends, not when the guardian does. */
	int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd >= 0) {
		dup2(null_fd, STDIN_FILENO);
		dup2(null_fd, STDOUT_FILENO);
	}
	for (int fd = 3; fd < 1024; fd++)
		if (fd != p[0])
			close(fd);
	char byte;
	for (;;) {
		ssize_t n = read(p[0], &byte, 1);
		if (n == 0 || (n < 0 && errno != EINTR))
			break;
	}
	struct cb_error local = CB_ERROR_INIT;
	if (down_where(owned_by, (long)owner, NULL, &local) != CB_OK)
		cb_error_print(&local);
	_exit(local.code ? 3 : 0);
}
