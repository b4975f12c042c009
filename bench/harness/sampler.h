/* The parent's side of one trial: start the child, watch it, reap it.
 *
 * cb_child_run forks and execs argv with the report pipe on fd
 * CB_REPORT_FD, then, until the child exits, samples its RssAnon, RssFile
 * and RssShmem from /proc/PID/status every `interval_ms`, collects its
 * report line and the tail of its stderr, enforces the timeout and the
 * memory limit, and finally reads /proc/PID/io (before reaping, while the
 * zombie still holds its counters) and reaps it with wait4 for its rusage.
 *
 * The memory limit uses a cgroup v2 child group with memory.max when this
 * process's cgroup delegates the memory controller; otherwise the sampler
 * kills the child (SIGKILL) once RssAnon + RssShmem exceeds the limit
 * (file-backed pages are reclaimable, so they do not count, just as the
 * kernel would reclaim them under memory.max).
 *
 * Single-threaded; not async-signal-safe; one run at a time per struct.
 */
#ifndef CB_SAMPLER_H
#define CB_SAMPLER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#include "error.h"

/* The child's report descriptor (docs/peer-protocol.md). */
#define CB_REPORT_FD 3

struct cb_sample {
	double t_s;          /* seconds since the fork */
	uint64_t anon_bytes; /* RssAnon */
	uint64_t file_bytes; /* RssFile */
	uint64_t shmem_bytes;
};

struct cb_child_run {
	/* in */
	char *const *argv;           /* argv[0] is the program's path */
	double timeout_s;            /* 0: none */
	uint64_t mem_limit;          /* bytes; 0: none */
	unsigned interval_ms;        /* 0: no sampling */
	volatile sig_atomic_t *stop; /* nonzero: kill the child and return */

	/* out (cb_child_run_free releases them) */
	double start_mono;  /* CLOCK_MONOTONIC seconds at the fork */
	double elapsed_s;   /* fork to exit */
	double watch_cpu_s; /* CPU time this process spent watching
				      * (sampling, polling): the sampler's cost */
	int wait_status;    /* from wait4 */
	struct rusage rusage;
	bool timed_out, over_limit, interrupted;
	bool cgroup_limit;         /* the limit was a cgroup's memory.max */
	bool io_ok;                /* /proc/PID/io was read */
	uint64_t read_bytes;       /* its read_bytes: fetched from storage */
	uint64_t rchar;            /* bytes through read-like calls */
	struct cb_sample *samples; /* in time order */
	size_t n_samples;
	char *report;           /* the report line without "\n"; NULL if none */
	char stderr_tail[1024]; /* the end of what it wrote on stderr */
};

/* Runs the child to its end (or kills it). CB_OK whenever the child ran,
 * whatever its outcome; an error only when it could not be started or
 * watched (fork, pipe, memory). */
int cb_child_run(struct cb_child_run *run, struct cb_error *err);

void cb_child_run_free(struct cb_child_run *run);

/* CLOCK_MONOTONIC in seconds. */
double cb_mono_now(void);

/* Reads "Key:   N kB" fields from a /proc/.../status text; 0 when absent. */
uint64_t cb_status_field(const char *status_text, const char *key);

#endif
