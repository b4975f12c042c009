/* bench/sysinfo's --bind: parsing node:N and core:LIST, refusing the rest,
 * and binding this process to CPU 0 for real. */
#include <sched.h>
#include <stdbool.h>

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

	static const char *const bad[] = {"", "node:", "node:x", "node:1x", "core:", "core:3-1",
					  "core:1,", "core:1;2", "core:1024", "socket:0", "core:-1"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cb_error_clear(&err);
		CHECK(cb_bind_parse(bad[i], &b, &err) == CB_EUSAGE);
		CHECK(err.msg[0] != '\0');
	}
}

static void test_apply(void)
{
	struct cb_bind b;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_bind_parse("core:0", &b, &err) == CB_OK);
	CHECK(cb_bind_apply(&b, &err) == CB_OK);
	cpu_set_t set;
	CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
	CHECK(CPU_COUNT(&set) == 1 && CPU_ISSET(0, &set));

	/* A CPU that does not exist is the user's mistake, said as such. */
	CHECK(cb_bind_parse("core:1023", &b, &err) == CB_OK);
	CHECK(cb_bind_apply(&b, &err) == CB_EUSAGE);
	CHECK_CONTAINS(err.msg, "1023");

	cb_error_clear(&err);
	CHECK(cb_bind_parse("node:0", &b, &err) == CB_OK);
	int rc = cb_bind_apply(&b, &err);
	/* Node 0 exists everywhere; without hwloc it is refused, clearly. */
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
