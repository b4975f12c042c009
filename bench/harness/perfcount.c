/* The instruction counter of perfcount.h. */
#include "perfcount.h"

#include <linux/perf_event.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int open_counter(bool exclude_kernel)
{
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.size = sizeof attr;
	attr.type = PERF_TYPE_HARDWARE;
	attr.config = PERF_COUNT_HW_INSTRUCTIONS;
	attr.disabled = 1;
	attr.exclude_kernel = exclude_kernel;
	attr.exclude_hv = 1;
	attr.inherit = 1; /* loader threads count too */
	attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
	return (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

void cb_perfcount_open(struct cb_perfcount *pc)
{
	/* kernel too where allowed (reads and page faults are the loaders'
	 * work); paranoid level 2 allows user space only */
	pc->fd = open_counter(false);
	if (pc->fd < 0)
		pc->fd = open_counter(true);
}

void cb_perfcount_start(struct cb_perfcount *pc)
{
	if (pc->fd < 0)
		return;
	ioctl(pc->fd, PERF_EVENT_IOC_RESET, 0);
	ioctl(pc->fd, PERF_EVENT_IOC_ENABLE, 0);
}

bool cb_perfcount_stop(struct cb_perfcount *pc, uint64_t *instructions_out)
{
	if (pc->fd < 0)
		return false;
	ioctl(pc->fd, PERF_EVENT_IOC_DISABLE, 0);
	uint64_t v[3]; /* value, time enabled, time running */
	if (read(pc->fd, v, sizeof v) != (ssize_t)sizeof v || v[2] == 0)
		return false;
	*instructions_out = v[2] == v[1] ? v[0] : (uint64_t)((double)v[0] * v[1] / v[2]);
	return true;
}

void cb_perfcount_close(struct cb_perfcount *pc)
{
	if (pc->fd >= 0)
		close(pc->fd);
	pc->fd = -1;
}
