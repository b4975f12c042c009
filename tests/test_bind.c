/* bench/sysinfo's --bind: parsing node:N and core:LIST, refusing the rest,
 * and binding this process for real to a CPU it is allowed to run on (a
 * container's or a Slurm job's cpuset need not hold CPU 0). */
#include <dirent.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cb_config.h"
#include "check.h"
#include "sysinfo.h"

static bool has(const struct cb_bind *b, unsigned cpu)
{
	return (b->cpus[cpu / 64] >> (cpu % 64)) & 1;
}

static void test_parse(void)
{
	struct cb_bind b;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_bind_parse("node:1", &b, &err) == CB_OK);
	CHECK(b.kind == CB_BIND_NODE && b.node == 1);
	CHECK_STR_EQ(b.spec, "node:1");

	CHECK(cb_bind_parse("core:0-3,8,70-71", &b, &err) == CB_OK);
	CHECK(b.kind == CB_BIND_CORES);
	unsigned n = 0;
	for (unsigned c = 0; c < CB_BIND_MAX_CPUS; c++)
		n += has(&b, c);
	CHECK_EQ_U64(n, 7);
	CHECK(has(&b, 0) && has(&b, 3) && has(&b, 8) && has(&b, 70) && has(&b, 71));
	CHECK(!has(&b, 4) && !has(&b, 69));

	CHECK(cb_bind_parse("none", &b, &err) == CB_OK);
	CHECK(b.kind == CB_BIND_NONE);

	static const char *const bad[] = {"",          "node:",    "node:x",  "node:1x",
					  "core:",     "core:3-1", "core:1,", "core:1;2",
					  "core:1024", "socket:0", "core:-1"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cb_error_clear(&err);
		CHECK(cb_bind_parse(bad[i], &b, &err) == CB_EUSAGE);
		CHECK(err.msg[0] != '\0');
	}
}

/* The lowest CPU in this process's affinity mask. */
static int first_allowed_cpu(void)
{
	cpu_set_t set;
	CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set))
			return cpu;
	return -1;
}

/* The NUMA node that holds a CPU, from sysfs (a nodeN link in its
 * directory); 0 where the kernel has no NUMA support to say otherwise. */
static int node_of_cpu(int cpu)
{
	char dir_path[64];
	snprintf(dir_path, sizeof dir_path, "/sys/devices/system/cpu/cpu%d", cpu);
	DIR *dir = opendir(dir_path);
	int node = 0;
	struct dirent *e;
	while (dir && (e = readdir(dir)) != NULL)
		if (strncmp(e->d_name, "node", 4) == 0 && sscanf(e->d_name + 4, "%d", &node) == 1)
			break;
	if (dir)
		closedir(dir);
	return node;
}

static void test_apply(void)
{
	struct cb_bind b;
	struct cb_error err = CB_ERROR_INIT;
	int cpu = first_allowed_cpu();
	CHECK(cpu >= 0);
	int node = node_of_cpu(cpu);
	char spec[32];
	snprintf(spec, sizeof spec, "core:%d", cpu);
	CHECK(cb_bind_parse(spec, &b, &err) == CB_OK);
	CHECK(cb_bind_apply(&b, &err) == CB_OK);
	cpu_set_t set;
	CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
	CHECK(CPU_COUNT(&set) == 1 && CPU_ISSET(cpu, &set));

	/* A CPU that does not exist is the user's mistake, said as such. */
	CHECK(cb_bind_parse("core:1023", &b, &err) == CB_OK);
	CHECK(cb_bind_apply(&b, &err) == CB_EUSAGE);
	CHECK_CONTAINS(err.msg, "1023");

	cb_error_clear(&err);
	snprintf(spec, sizeof spec, "node:%d", node);
	CHECK(cb_bind_parse(spec, &b, &err) == CB_OK);
	int rc = cb_bind_apply(&b, &err);
	/* The node of a CPU we may use; without hwloc it is refused, clearly. */
	CHECK(CB_HAVE_HWLOC ? rc == CB_OK : rc == CB_EUNAVAILABLE);
	cb_error_clear(&err);
	CHECK(cb_bind_parse("node:999", &b, &err) == CB_OK);
	rc = cb_bind_apply(&b, &err);
	CHECK(CB_HAVE_HWLOC ? rc == CB_EUSAGE : rc == CB_EUNAVAILABLE);
}

int main(void)
{
	test_parse();
	test_apply();
	return check_finish("test_bind");
}
