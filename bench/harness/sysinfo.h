/* What machine a result came from, and binding trials to part of it.
 *
 * The topology comes from hwloc when the build has it (CB_HAVE_HWLOC), else
 * from /proc/cpuinfo and sysfs; the "topology_source" key says which.
 */
#ifndef CB_SYSINFO_H
#define CB_SYSINFO_H

#include <jansson.h>
#include <stdint.h>

#include "error.h"

/* The machine description ("machine" in the results file): cpu_model,
 * topology_source ("hwloc" | "sysfs"), packages, cores, pus, numa_nodes,
 * caches [{level, type, size_bytes, count}], memory_bytes, kernel, os,
 * hostname, thp, data_dir {path, fs_type, device, rotational}, gpus [].
 * Unknown values are null. data_dir may be NULL (no "data_dir" object then).
 * New reference; the caller owns it. NULL only on allocation failure. */
json_t *cb_sysinfo_json(const char *data_dir);

/* The total size of the last-level caches (the highest cache level, size
 * times instances), from the same topology source; 0 when unknown. */
uint64_t cb_sysinfo_llc_bytes(void);

/* At most this many CPUs can be named in --bind core:LIST. */
#define CB_BIND_MAX_CPUS 1024

enum cb_bind_kind {
	CB_BIND_NONE = 0, /* no binding (the zeroed struct) */
	CB_BIND_NODE,     /* the CPUs and memory of one NUMA node */
	CB_BIND_CORES,    /* a set of CPUs; memory is left to first touch */
};

struct cb_bind {
	enum cb_bind_kind kind;
	unsigned node; /* CB_BIND_NODE: the node's OS index */
	/* CB_BIND_CORES: the CPUs by Linux number (as taskset -c and
	 * /sys/devices/system/cpu/cpuN name them), one bit each. */
	uint64_t cpus[CB_BIND_MAX_CPUS / 64];
	char spec[128]; /* the text it came from, for results and messages */
};

/* Parses "none", "node:N" or "core:LIST" where LIST is "0-3,8,10-11".
 * CB_EUSAGE on anything else, an empty set, or a CPU >= CB_BIND_MAX_CPUS. */
int cb_bind_parse(const char *spec, struct cb_bind *out, struct cb_error *err);

/* Binds the calling process (all its threads to come, and its memory for
 * node binding). With hwloc: hwloc_set_cpubind + hwloc_set_membind (bind
 * policy). Without hwloc: sched_setaffinity for cores; node binding is
 * CB_EUNAVAILABLE ("built without hwloc"), since binding the CPUs alone
 * would leave memory placement unsaid. A node or CPU that does not exist is CB_EUSAGE. Call it in
 * the trial child, before it allocates the model. */
int cb_bind_apply(const struct cb_bind *bind, struct cb_error *err);

#endif
