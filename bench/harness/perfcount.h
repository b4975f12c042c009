/* Instructions retired by this process, from perf_event_open: the figure
 * `compare --metric instructions` uses, far less noisy than wall time for
 * CPU-bound cells. Counted in the trial child around the timed load only
 * (user and kernel where the perf_event_paranoid level allows, else user
 * only), so setup and verification stay out, as they do for wall_s.
 *
 * Where perf_event_open is not allowed (a container without
 * CAP_PERFMON, paranoid level 3, no PMU in a VM) the counter is simply
 * absent: the trial records "instructions": null. */
#ifndef CB_PERFCOUNT_H
#define CB_PERFCOUNT_H

#include <stdbool.h>
#include <stdint.h>

struct cb_perfcount {
	int fd; /* -1 when counting is not possible here */
};

/* Opens a disabled counter of this process's instructions; fd -1 (no
 * error) when the kernel refuses. */
void cb_perfcount_open(struct cb_perfcount *pc);

/* Zeroes and enables the counter (no-op with fd -1). */
void cb_perfcount_start(struct cb_perfcount *pc);

/* Disables it and reads the count; false when there is none, or when the
 * counter was multiplexed and never ran. Scaled for multiplexing. */
bool cb_perfcount_stop(struct cb_perfcount *pc, uint64_t *instructions_out);

void cb_perfcount_close(struct cb_perfcount *pc);

#endif
