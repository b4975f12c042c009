/* Fault injection for tests (fault.h). Without CB_FAULT_INJECTION every
 * hook is a no-op; the same symbols exist either way, so a test binary that
 * compiles this file with the define replaces the library's copy whole. */
#include "fault.h"

#ifdef CB_FAULT_INJECTION

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What is armed: the Nth read gets `kind`, or the Nth allocation fails. */
static struct {
	enum cb_fault kind;
	uint64_t read_at, alloc_at; /* 0: not armed */
} armed;
static atomic_uint_fast64_t reads, allocs;
static atomic_uint fired;
static pthread_once_t from_env = PTHREAD_ONCE_INIT;

static const char *const kind_names[] = {
	[CB_FAULT_NONE] = "none",   [CB_FAULT_EIO] = "eio",       [CB_FAULT_SHORT] = "short",
	[CB_FAULT_EINTR] = "eintr", [CB_FAULT_EINVAL] = "einval",
};

static bool parse(const char *spec)
{
	armed.kind = CB_FAULT_NONE;
	armed.read_at = armed.alloc_at = 0;
	if (!spec || !*spec)
		return true;
	char kind[16] = "";
	unsigned long long n = 0;
	int used = 0;
	if (sscanf(spec, "alloc:%llu%n", &n, &used) == 1 && spec[used] == '\0' && n > 0) {
		armed.alloc_at = n;
		return true;
	}
	if (sscanf(spec, "read:%llu:%15[a-z]%n", &n, kind, &used) != 2 || spec[used] != '\0' ||
	    n == 0)
		return false;
	for (int k = CB_FAULT_EIO; k <= CB_FAULT_EINVAL; k++)
		if (strcmp(kind, kind_names[k]) == 0) {
			armed.kind = (enum cb_fault)k;
			armed.read_at = n;
			return true;
		}
	return false;
}

static void arm_from_env(void)
{
	const char *spec = getenv("CKPTBENCH_FAULT");
	if (!parse(spec))
		fprintf(stderr,
			"ckptbench: CKPTBENCH_FAULT=\"%s\" is not read:N:eio|short|eintr|einval "
			"or alloc:N; no fault armed\n",
			spec);
}

/* One line per fault to $CKPTBENCH_FAULT_LOG, so a test can tell that its
 * fault really fired in whichever process made the read. */
static void note(const char *what, uint64_t n, const char *kind)
{
	atomic_fetch_add(&fired, 1);
	const char *path = getenv("CKPTBENCH_FAULT_LOG");
	if (!path || !*path)
		return;
	char line[96];
	int len = snprintf(line, sizeof line, "%s %llu %s\n", what, (unsigned long long)n, kind);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, line, (size_t)len) != len) { /* a test log: nothing to do */
	}
	close(fd);
}

enum cb_fault cb_fault_read(void)
{
	pthread_once(&from_env, arm_from_env);
	uint64_t n = atomic_fetch_add(&reads, 1) + 1;
	if (!armed.read_at || n != armed.read_at)
		return CB_FAULT_NONE;
	note("read", n, kind_names[armed.kind]);
	return armed.kind;
}

bool cb_fault_alloc(void)
{
	pthread_once(&from_env, arm_from_env);
	uint64_t n = atomic_fetch_add(&allocs, 1) + 1;
	if (!armed.alloc_at || n != armed.alloc_at)
		return false;
	note("alloc", n, "enomem");
	return true;
}

bool cb_fault_arm(const char *spec)
{
	pthread_once(&from_env, arm_from_env); /* so it cannot overwrite this later */
	atomic_store(&reads, 0);
	atomic_store(&allocs, 0);
	atomic_store(&fired, 0);
	return parse(spec);
}

unsigned cb_fault_fired(void)
{
	return atomic_load(&fired);
}

uint64_t cb_fault_reads(void)
{
	return atomic_load(&reads);
}

uint64_t cb_fault_allocs(void)
{
	return atomic_load(&allocs);
}

#else /* shipped builds: no faults, nothing counted */

enum cb_fault cb_fault_read(void)
{
	return CB_FAULT_NONE;
}

bool cb_fault_alloc(void)
{
	return false;
}

bool cb_fault_arm(const char *spec)
{
	(void)spec;
	return false;
}

unsigned cb_fault_fired(void)
{
	return 0;
}

uint64_t cb_fault_reads(void)
{
	return 0;
}

uint64_t cb_fault_allocs(void)
{
	return 0;
}

#endif
