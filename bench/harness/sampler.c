/* The parent's side of one trial (see sampler.h). */
#include "sampler.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

/* The report is one JSON line; anything longer is a broken child. */
#define REPORT_MAX (4u << 20)

double cb_mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t cb_status_field(const char *text, const char *key)
{
	size_t klen = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, klen) != 0 || p[klen] != ':')
			continue;
		unsigned long long v = strtoull(p + klen + 1, NULL, 10);
		return (uint64_t)v * 1024; /* the kernel writes kB = KiB */
	}
	return 0;
}

/* ---------------------------------------------------------------- cgroup */

/* A cgroup v2 group for one child, when this process may make one. */
struct cgroup {
	char dir[512];
	char procs[600];
	bool ready;
};

/* Our own cgroup v2 directory: the cgroup2 mount + the "0::" path. */
static bool own_cgroup_dir(char *out, size_t size)
{
	char mount[256] = "", line[1024], rel[512] = "";
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	while (fgets(line, sizeof line, f)) {
		char *dash = strstr(line, " - cgroup2 ");
		char mp[256];
		if (dash && sscanf(line, "%*s %*s %*s %*s %255s", mp) == 1) {
			snprintf(mount, sizeof mount, "%s", mp);
			break;
		}
	}
	fclose(f);
	f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return false;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "0::", 3) == 0 && sscanf(line + 3, "%511s", rel) == 1)
			break;
	fclose(f);
	if (!*mount || !*rel)
		return false;
	return snprintf(out, size, "%s%s", mount, strcmp(rel, "/") == 0 ? "" : rel) < (int)size;
}

static bool write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text);
}

/* Makes a group with memory.max = limit under our own cgroup when the
 * memory controller is delegated to its children; false otherwise (the
 * sampler then enforces the limit). */
static bool cgroup_create(struct cgroup *cg, uint64_t limit)
{
	char base[400], path[700], text[256] = "";
	if (!own_cgroup_dir(base, sizeof base))
		return false;
	snprintf(path, sizeof path, "%s/cgroup.subtree_control", base);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool has_memory = fgets(text, sizeof text, f) && strstr(text, "memory");
	fclose(f);
	if (!has_memory)
		return false;
	static unsigned serial; /* names only; never shared between runs at once */
	snprintf(cg->dir, sizeof cg->dir, "%s/ckptbench-%d-%u", base, (int)getpid(), serial++);
	if (mkdir(cg->dir, 0755) != 0)
		return false;
	snprintf(path, sizeof path, "%s/memory.max", cg->dir);
	snprintf(text, sizeof text, "%llu", (unsigned long long)limit);
	if (!write_text(path, text)) {
		rmdir(cg->dir);
		return false;
	}
	snprintf(path, sizeof path, "%s/memory.swap.max", cg->dir);
	write_text(path, "0"); /* absent without swap accounting; fine */
	snprintf(cg->procs, sizeof cg->procs, "%s/cgroup.procs", cg->dir);
	cg->ready = true;
	return true;
}

/* True when the group's OOM killer acted (memory.events "oom_kill N"). */
static bool cgroup_oom_killed(const struct cgroup *cg)
{
	char path[700], text[1024];
	snprintf(path, sizeof path, "%s/memory.events", cg->dir);
	if (cb_read_text(path, text, sizeof text) < 0)
		return false;
	const char *p = strstr(text, "oom_kill ");
	return p && strtoull(p + 9, NULL, 10) > 0;
}

/* ----------------------------------------------------------------- child */

/* In the forked child, before exec: join the group, wire the descriptors.
 * Only async-signal-safe calls; any failure exits 127. */
static void child_exec(const struct cb_child_run *run, const struct cgroup *cg, int report_w,
		       int err_w)
{
	/* A trial does not outlive the harness that measures it: a harness
	 * killed outright (SIGKILL, a rank of an MPI job mpirun ends) takes
	 * its trial with it, rather than leaving a load running unwatched. */
	pid_t parent = getppid();
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(127);
	if (cg->ready) {
		int fd = open(cg->procs, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1)
			_exit(127);
		close(fd);
	}
	int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0)
		_exit(127);
	if (dup2(err_w, STDERR_FILENO) < 0)
		_exit(127);
	if (report_w == CB_REPORT_FD) /* dup2 onto itself keeps O_CLOEXEC */
		fcntl(report_w, F_SETFD, 0);
	else if (dup2(report_w, CB_REPORT_FD) < 0)
		_exit(127);
	execv(run->argv[0], run->argv);
	_exit(127);
}

/* ---------------------------------------------------------------- parent */

struct watch {
	struct cb_child_run *run;
	pid_t pid;
	int status_fd; /* /proc/PID/status, kept open */
	int report_r, err_r, pidfd;
	char *report;
	size_t report_len;
	bool report_done;
	size_t cap_samples;
	uint64_t peak_unreclaimable;
};

static int sample(struct watch *w, double now, struct cb_error *err)
{
	char text[4096];
	if (w->status_fd < 0)
		return CB_OK;
	ssize_t n = pread(w->status_fd, text, sizeof text - 1, 0);
	if (n <= 0)
		return CB_OK; /* exiting: nothing more to see */
	text[n] = '\0';
	struct cb_child_run *run = w->run;
	if (run->n_samples == w->cap_samples) {
		size_t cap = w->cap_samples ? w->cap_samples * 2 : 1024;
		struct cb_sample *more = realloc(run->samples, cap * sizeof *more);
		if (!more)
			return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory for samples");
		run->samples = more;
		w->cap_samples = cap;
	}
	struct cb_sample *s = &run->samples[run->n_samples++];
	*s = (struct cb_sample){
		.t_s = now - run->start_mono,
		.anon_bytes = cb_status_field(text, "RssAnon"),
		.file_bytes = cb_status_field(text, "RssFile"),
		.shmem_bytes = cb_status_field(text, "RssShmem"),
	};
	uint64_t hard = s->anon_bytes + s->shmem_bytes;
	if (hard > w->peak_unreclaimable)
		w->peak_unreclaimable = hard;
	return CB_OK;
}

/* Reads what a pipe has; false once it is at EOF. */
static bool drain_report(struct watch *w)
{
	char buf[65536];
	ssize_t n = read(w->report_r, buf, sizeof buf);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false;
	if (w->report_done || w->report_len + (size_t)n > REPORT_MAX)
		return true; /* only the first line counts */
	char *more = realloc(w->report, w->report_len + (size_t)n + 1);
	if (!more)
		return true;
	w->report = more;
	memcpy(w->report + w->report_len, buf, (size_t)n);
	w->report_len += (size_t)n;
	w->report[w->report_len] = '\0';
	w->report_done = memchr(w->report, '\n', w->report_len) != NULL;
	return true;
}

/* Keeps the last bytes of the child's stderr. */
static bool drain_stderr(struct watch *w)
{
	char buf[4096];
	ssize_t n = read(w->err_r, buf, sizeof buf);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false;
	char *tail = w->run->stderr_tail;
	size_t cap = sizeof w->run->stderr_tail - 1, have = strlen(tail), add = (size_t)n;
	if (add >= cap) {
		memcpy(tail, buf + add - cap, cap);
		tail[cap] = '\0';
		return true;
	}
	if (have + add > cap) {
		memmove(tail, tail + (have + add - cap), cap - add);
		have = cap - add;
	}
	memcpy(tail + have, buf, add);
	tail[have + add] = '\0';
	return true;
}

static bool child_exited(pid_t pid)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	/* WNOWAIT: leave the zombie, so /proc/PID/io can still be read. */
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
		return errno == ECHILD;
	return si.si_pid == pid;
}

static void read_io(struct cb_child_run *run, pid_t pid)
{
	char path[64], text[1024];
	snprintf(path, sizeof path, "/proc/%d/io", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return;
	text[n] = '\0';
	const char *rb = strstr(text, "read_bytes:"), *rc = strstr(text, "rchar:");
	if (!rb)
		return;
	run->read_bytes = strtoull(rb + 11, NULL, 10);
	run->rchar = rc ? strtoull(rc + 6, NULL, 10) : 0;
	run->io_ok = true;
}

/* The time poll may sleep: up to the next sample, the deadline, or long. */
static int poll_timeout_ms(const struct watch *w, double now, double next_sample)
{
	double wait = 0.25; /* a pidfd or a signal wakes us earlier */
	if (w->pidfd < 0)
		wait = 0.005;
	if (w->run->interval_ms && next_sample - now < wait)
		wait = next_sample - now;
	if (w->run->timeout_s > 0) {
		double left = w->run->start_mono + w->run->timeout_s - now;
		wait = left < wait ? left : wait;
	}
	return wait <= 0 ? 0 : (int)(wait * 1000.0) + 1;
}

static void kill_child(struct watch *w, bool *flag)
{
	*flag = true;
	kill(w->pid, SIGKILL);
}

/* Watches until the child exits, sampling and enforcing limits. */
static int watch_child(struct watch *w, struct cb_error *err)
{
	struct cb_child_run *run = w->run;
	bool report_open = true, err_open = true,
	     sampler_limit = run->mem_limit && !run->cgroup_limit;
	double next_sample = run->start_mono;
	bool exit_seen = false;
	for (;;) {
		double now = cb_mono_now();
		if (run->interval_ms && now >= next_sample) {
			int rc = sample(w, now, err);
			if (rc != CB_OK)
				return rc;
			next_sample = now + run->interval_ms * 1e-3;
		}
		if (sampler_limit && !run->over_limit && w->peak_unreclaimable > run->mem_limit)
			kill_child(w, &run->over_limit);
		if (run->timeout_s > 0 && !run->timed_out && now - run->start_mono > run->timeout_s)
			kill_child(w, &run->timed_out);
		if (run->stop && *run->stop && !run->interrupted)
			kill_child(w, &run->interrupted);
		/* With a pidfd, poll says when the child exits; without one, ask. */
		if ((w->pidfd < 0 || exit_seen) && child_exited(w->pid))
			break;
		struct pollfd fds[3] = {
			{w->report_r, POLLIN, 0}, {w->err_r, POLLIN, 0}, {w->pidfd, POLLIN, 0}};
		fds[0].fd = report_open ? w->report_r : -1;
		fds[1].fd = err_open ? w->err_r : -1;
		if (poll(fds, 3, poll_timeout_ms(w, cb_mono_now(), next_sample)) > 0) {
			if (fds[0].revents)
				report_open = drain_report(w);
			if (fds[1].revents)
				err_open = drain_stderr(w);
			exit_seen = exit_seen || fds[2].revents;
		}
	}
	/* The child is gone; what it wrote is still in the pipes. */
	while (report_open && (report_open = drain_report(w)))
		;
	while (err_open && (err_open = drain_stderr(w)))
		;
	return CB_OK;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int start_child(struct watch *w, const struct cgroup *cg, struct cb_error *err)
{
	int rp[2], ep[2];
	if (pipe2(rp, O_CLOEXEC) != 0)
		return CB_FAIL_ERRNO(err, errno, NULL, "pipe");
	if (pipe2(ep, O_CLOEXEC) != 0) {
		close(rp[0]), close(rp[1]);
		return CB_FAIL_ERRNO(err, errno, NULL, "pipe");
	}
	fflush(NULL);
	w->run->start_mono = cb_mono_now();
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(rp[0]), close(rp[1]), close(ep[0]), close(ep[1]);
		return CB_FAIL_ERRNO(err, e, NULL, "fork");
	}
	if (pid == 0)
		child_exec(w->run, cg, rp[1], ep[1]);
	close(rp[1]), close(ep[1]);
	w->pid = pid;
	w->report_r = rp[0];
	w->err_r = ep[0];
	fcntl(rp[0], F_SETFL, O_NONBLOCK);
	fcntl(ep[0], F_SETFL, O_NONBLOCK);
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	w->status_fd = open(path, O_RDONLY | O_CLOEXEC);
#ifdef SYS_pidfd_open
	w->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
	return CB_OK;
}

/* This thread's time on a CPU. /proc/thread-self/schedstat counts it in
 * nanoseconds as the scheduler does; rusage is sampled at timer ticks, and a
 * process that wakes on timers, as the sampler does, is charged whole ticks
 * out of proportion. */
static double cpu_seconds(void)
{
	char text[128];
	int fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, text, sizeof text - 1);
	if (fd >= 0)
		close(fd);
	if (n > 0) {
		text[n] = '\0';
		return (double)strtoull(text, NULL, 10) * 1e-9;
	}
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

int cb_child_run(struct cb_child_run *run, struct cb_error *err)
{
	struct watch w = {.run = run, .status_fd = -1, .report_r = -1, .err_r = -1, .pidfd = -1};
	struct cgroup cg = {.ready = false};
	run->samples = NULL;
	run->n_samples = 0;
	run->report = NULL;
	run->stderr_tail[0] = '\0';
	run->timed_out = run->over_limit = run->interrupted = run->io_ok = false;
	run->read_bytes = run->rchar = 0;
	run->cgroup_limit = run->mem_limit && cgroup_create(&cg, run->mem_limit);
	int rc = start_child(&w, &cg, err);
	if (rc == CB_OK) {
		double cpu = cpu_seconds();
		rc = watch_child(&w, err);
		run->watch_cpu_s = cpu_seconds() - cpu;
		if (rc != CB_OK)
			kill(w.pid, SIGKILL);
		read_io(run, w.pid);
		while (wait4(w.pid, &run->wait_status, 0, &run->rusage) < 0 && errno == EINTR)
			;
		run->elapsed_s = cb_mono_now() - run->start_mono;
	}
	if (cg.ready) {
		run->over_limit = run->over_limit || cgroup_oom_killed(&cg);
		rmdir(cg.dir);
	}
	close_fd(&w.status_fd), close_fd(&w.report_r), close_fd(&w.err_r), close_fd(&w.pidfd);
	if (w.report) {
		char *nl = strchr(w.report, '\n');
		if (nl)
			*nl = '\0';
	}
	run->report = w.report;
	return rc;
}

void cb_child_run_free(struct cb_child_run *run)
{
	free(run->samples);
	free(run->report);
	run->samples = NULL;
	run->report = NULL;
	run->n_samples = 0;
}
