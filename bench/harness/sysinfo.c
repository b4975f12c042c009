/* The machine description of a results file, and --bind. Topology from
 * hwloc when built with it, else from /proc and sysfs (sysinfo.h). */
#include "sysinfo.h"
#include "cuda/gpu_info.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cb_config.h"

#if CB_HAVE_HWLOC
#include <hwloc.h>
#endif

/* --- small readers ------------------------------------------------------ */

/* Reads the first line of a (sysfs or proc) file into buf without its
 * newline. False when the file cannot be read or is empty. */
static bool read_line(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool ok = fgets(buf, (int)size, f) != NULL;
	fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = '\0';
	return ok && buf[0];
}

/* The value after "key<spaces>:" in a "key : value" file such as
 * /proc/cpuinfo or /etc/os-release style files with sep '='. */
static bool find_keyed(const char *path, const char *key, char sep, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	char line[1024];
	size_t klen = strlen(key);
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		if (strncmp(line, key, klen) != 0)
			continue;
		char *p = line + klen;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != sep)
			continue;
		p++;
		while (*p == ' ' || *p == '"')
			p++;
		p[strcspn(p, "\"\n")] = '\0';
		snprintf(buf, size, "%s", p);
		found = buf[0] != '\0';
	}
	fclose(f);
	return found;
}

static json_t *string_or_null(bool ok, const char *s)
{
	return ok ? json_string(s) : json_null();
}

/* --- the topology --------------------------------------------------------- */

struct topo_counts {
	int packages, cores, pus, numa_nodes; /* -1: unknown */
	json_t *caches;                       /* [{level, type, size_bytes, count}] */
};

/* Adds one cache instance to the list, merging with an equal entry. */
static void add_cache(json_t *caches, int level, const char *type, long long size)
{
	size_t i;
	json_t *c;
	json_array_foreach(caches, i, c)
	{
		if (json_integer_value(json_object_get(c, "level")) == level &&
		    strcmp(json_string_value(json_object_get(c, "type")), type) == 0 &&
		    json_integer_value(json_object_get(c, "size_bytes")) == size) {
			json_int_t n = json_integer_value(json_object_get(c, "count"));
			json_object_set_new(c, "count", json_integer(n + 1));
			return;
		}
	}
	json_array_append_new(caches, json_pack("{s:i, s:s, s:I, s:i}", "level", level, "type",
						type, "size_bytes", (json_int_t)size, "count", 1));
}

#if CB_HAVE_HWLOC
static const char *hwloc_cache_kind(hwloc_obj_cache_type_t t)
{
	switch (t) {
	case HWLOC_OBJ_CACHE_DATA: return "data";
	case HWLOC_OBJ_CACHE_INSTRUCTION: return "instruction";
	default: return "unified";
	}
}

static bool topology_hwloc(struct topo_counts *tc)
{
	hwloc_topology_t topo;
	if (hwloc_topology_init(&topo) != 0)
		return false;
	if (hwloc_topology_load(topo) != 0) {
		hwloc_topology_destroy(topo);
		return false;
	}
	tc->packages = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
	tc->cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
	tc->pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
	tc->numa_nodes = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
	for (int t = HWLOC_OBJ_L1CACHE; t <= HWLOC_OBJ_L3ICACHE; t++) {
		if (!hwloc_obj_type_is_cache((hwloc_obj_type_t)t))
			continue;
		hwloc_obj_t obj = NULL;
		while ((obj = hwloc_get_next_obj_by_type(topo, (hwloc_obj_type_t)t, obj)))
			add_cache(tc->caches, (int)obj->attr->cache.depth,
				  hwloc_cache_kind(obj->attr->cache.type),
				  (long long)obj->attr->cache.size);
	}
	hwloc_topology_destroy(topo);
	return true;
}
#endif

/* The N of a "cpuN" directory entry, or -1 for any other entry. */
static long cpu_number(const char *name)
{
	if (strncmp(name, "cpu", 3) != 0 || !isdigit((unsigned char)name[3]))
		return -1;
	char *end;
	long n = strtol(name + 3, &end, 10);
	return *end == '\0' && n >= 0 && n < INT_MAX ? n : -1;
}

/* A set of distinct strings (package ids, "pkg:core" pairs, cache sharing
 * lists), small enough for a linear search. */
struct strset {
	char **items;
	size_t n;
};

static void strset_add(struct strset *s, const char *text)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->items[i], text) == 0)
			return;
	char **grown = realloc(s->items, (s->n + 1) * sizeof *grown);
	char *copy = strdup(text);
	if (!grown || !copy) {
		free(copy);
		s->items = grown ? grown : s->items;
		return; /* a count one short is the worst outcome */
	}
	s->items = grown;
	s->items[s->n++] = copy;
}

static void strset_free(struct strset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->items[i]);
	free(s->items);
}

static void sysfs_cpu_caches(long cpu, struct strset *seen, json_t *caches)
{
	for (int idx = 0; idx < 16; idx++) {
		char base[128], path[192], level[16], type[32], size[32], shared[256];
		snprintf(base, sizeof base, "/sys/devices/system/cpu/cpu%ld/cache/index%d", cpu,
			 idx);
		snprintf(path, sizeof path, "%s/level", base);
		if (!read_line(path, level, sizeof level))
			return;
		snprintf(path, sizeof path, "%s/type", base);
		bool ok = read_line(path, type, sizeof type);
		snprintf(path, sizeof path, "%s/size", base);
		ok = ok && read_line(path, size, sizeof size);
		snprintf(path, sizeof path, "%s/shared_cpu_list", base);
		ok = ok && read_line(path, shared, sizeof shared);
		if (!ok)
			continue;
		/* One instance per distinct set of sharing CPUs. */
		char key[320];
		snprintf(key, sizeof key, "%s/%s/%s", level, type, shared);
		size_t before = seen->n;
		strset_add(seen, key);
		if (seen->n == before)
			continue;
		char *end;
		long long bytes = strtoll(size, &end, 10);
		bytes *= *end == 'K' ? 1024 : *end == 'M' ? 1024 * 1024 : 1;
		const char *kind = strcmp(type, "Data") == 0          ? "data"
				   : strcmp(type, "Instruction") == 0 ? "instruction"
								      : "unified";
		add_cache(caches, atoi(level), kind, bytes);
	}
}

static int count_numa_nodes(void)
{
	DIR *d = opendir("/sys/devices/system/node");
	if (!d)
		return 1; /* no NUMA support in the kernel: one node */
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += strncmp(e->d_name, "node", 4) == 0 && isdigit((unsigned char)e->d_name[4]);
	closedir(d);
	return n ? n : 1;
}

static bool topology_sysfs(struct topo_counts *tc)
{
	DIR *d = opendir("/sys/devices/system/cpu");
	if (!d)
		return false;
	struct strset packages = {0}, cores = {0}, caches = {0};
	int pus = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		long cpu = cpu_number(e->d_name);
		if (cpu < 0)
			continue;
		char path[192], pkg[32], core[32], key[80];
		snprintf(path, sizeof path,
			 "/sys/devices/system/cpu/cpu%ld/topology/physical_package_id", cpu);
		if (!read_line(path, pkg, sizeof pkg))
			continue; /* offline CPUs have no topology */
		snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%ld/topology/core_id", cpu);
		if (!read_line(path, core, sizeof core))
			continue;
		pus++;
		strset_add(&packages, pkg);
		snprintf(key, sizeof key, "%s:%s", pkg, core);
		strset_add(&cores, key);
		sysfs_cpu_caches(cpu, &caches, tc->caches);
	}
	closedir(d);
	tc->packages = (int)packages.n;
	tc->cores = (int)cores.n;
	tc->pus = pus;
	tc->numa_nodes = count_numa_nodes();
	strset_free(&packages);
	strset_free(&cores);
	strset_free(&caches);
	return pus > 0;
}

static json_t *count_or_null(int n)
{
	return n > 0 ? json_integer(n) : json_null();
}

static void add_topology(json_t *o)
{
	struct topo_counts tc = {-1, -1, -1, -1, json_array()};
	const char *source = "sysfs";
	bool ok = false;
#if CB_HAVE_HWLOC
	ok = topology_hwloc(&tc);
	source = "hwloc";
#endif
	if (!ok) {
		json_array_clear(tc.caches);
		ok = topology_sysfs(&tc);
		source = "sysfs";
	}
	json_object_set_new(o, "topology_source", string_or_null(ok, source));
	json_object_set_new(o, "packages", count_or_null(tc.packages));
	json_object_set_new(o, "cores", count_or_null(tc.cores));
	json_object_set_new(o, "pus", count_or_null(tc.pus));
	json_object_set_new(o, "numa_nodes", count_or_null(tc.numa_nodes));
	json_object_set_new(o, "caches", tc.caches);
}

uint64_t cb_sysinfo_llc_bytes(void)
{
	json_t *o = json_object();
	if (!o)
		return 0;
	add_topology(o);
	json_int_t level = 0, total = 0;
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(o, "caches"), i, c)
	{
		json_int_t l = json_integer_value(json_object_get(c, "level"));
		json_int_t bytes = json_integer_value(json_object_get(c, "size_bytes")) *
				   json_integer_value(json_object_get(c, "count"));
		total = l > level ? bytes : l == level ? total + bytes : total;
		level = l > level ? l : level;
	}
	json_decref(o);
	return total > 0 ? (uint64_t)total : 0;
}

/* --- the rest of the machine ---------------------------------------------- */

static json_t *cpu_model(void)
{
	char buf[256];
	if (find_keyed("/proc/cpuinfo", "model name", ':', buf, sizeof buf))
		return json_string(buf);
	/* aarch64 names no model in cpuinfo; the implementer and part do. */
	char impl[32], part[32];
	if (find_keyed("/proc/cpuinfo", "CPU implementer", ':', impl, sizeof impl) &&
	    find_keyed("/proc/cpuinfo", "CPU part", ':', part, sizeof part)) {
		char both[96];
		snprintf(both, sizeof both, "implementer %s part %s", impl, part);
		return json_string(both);
	}
	return json_null();
}

static json_t *meminfo_bytes(const char *key)
{
	char buf[64];
	if (!find_keyed("/proc/meminfo", key, ':', buf, sizeof buf))
		return json_null();
	return json_integer((json_int_t)strtoll(buf, NULL, 10) * 1024); /* kB */
}

/* The bracketed choice in "always [madvise] never". */
static json_t *bracketed(const char *path)
{
	char buf[256];
	if (!read_line(path, buf, sizeof buf))
		return json_null();
	char *open = strchr(buf, '['), *close = open ? strchr(open, ']') : NULL;
	if (!open || !close)
		return json_string(buf);
	*close = '\0';
	return json_string(open + 1);
}

static json_t *line_or_null(const char *path)
{
	char buf[256];
	return read_line(path, buf, sizeof buf) ? json_string(buf) : json_null();
}

/* --- the filesystem under the data directory ------------------------------ */

/* The nearest existing directory at or above path (a data directory that
 * `gen` has not made yet still lives on its parent's filesystem). */
static bool nearest_existing(const char *path, struct stat *st, char real[PATH_MAX])
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof buf, "%s", path);
	for (;;) {
		if (stat(buf, st) == 0 && realpath(buf, real))
			return true;
		if (strcmp(buf, "/") == 0 || strcmp(buf, ".") == 0)
			return false;
		char *slash = strrchr(buf, '/');
		if (!slash)
			strcpy(buf, ".");
		else if (slash == buf)
			buf[1] = '\0';
		else
			*slash = '\0';
	}
}

/* From /proc/self/mountinfo, the mount of device dev whose mount point is
 * the longest prefix of real: its filesystem type and source. */
static void mount_of(dev_t dev, const char *real, json_t *o)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return;
	char line[4096], best_fs[64] = "", best_src[512] = "", best_mnt[PATH_MAX] = "";
	size_t best_len = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned maj, min;
		char mnt[PATH_MAX], fs[64], src[512];
		char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %u:%u %*s %4095s", &maj, &min, mnt) != 3 ||
		    sscanf(dash + 3, "%63s %511s", fs, src) != 2)
			continue;
		size_t len = strlen(mnt);
		bool under = strncmp(real, mnt, len) == 0 &&
			     (real[len] == '/' || real[len] == '\0' || len == 1);
		if (makedev(maj, min) != dev || !under || len < best_len)
			continue;
		best_len = len;
		snprintf(best_fs, sizeof best_fs, "%s", fs);
		snprintf(best_src, sizeof best_src, "%s", src);
		snprintf(best_mnt, sizeof best_mnt, "%s", mnt);
	}
	fclose(f);
	json_object_set_new(o, "fs_type", string_or_null(best_fs[0], best_fs));
	json_object_set_new(o, "source", string_or_null(best_src[0], best_src));
	json_object_set_new(o, "mount_point", string_or_null(best_mnt[0], best_mnt));
}

/* The whole disk under dev via /sys/dev/block (a partition's parent), its
 * name, rotational flag and model. */
static void block_device(dev_t dev, json_t *o)
{
	char link[64], real[PATH_MAX], path[PATH_MAX + 32], buf[64];
	snprintf(link, sizeof link, "/sys/dev/block/%u:%u", major(dev), minor(dev));
	if (major(dev) == 0 || !realpath(link, real))
		return; /* tmpfs, overlay, NFS: no block device of its own */
	snprintf(path, sizeof path, "%s/partition", real);
	if (access(path, F_OK) == 0)
		*strrchr(real, '/') = '\0';
	json_object_set_new(o, "device", json_string(strrchr(real, '/') + 1));
	snprintf(path, sizeof path, "%s/queue/rotational", real);
	if (read_line(path, buf, sizeof buf))
		json_object_set_new(o, "rotational", json_boolean(strcmp(buf, "1") == 0));
	snprintf(path, sizeof path, "%s/device/model", real);
	if (read_line(path, buf, sizeof buf)) {
		size_t n = strlen(buf);
		while (n && buf[n - 1] == ' ')
			buf[--n] = '\0';
		json_object_set_new(o, "model", json_string(buf));
	}
}

static json_t *data_dir_json(const char *data_dir)
{
	json_t *o = json_pack("{s:s, s:n, s:n, s:n, s:n, s:n}", "path", data_dir, "fs_type",
			      "source", "mount_point", "device", "rotational");
	struct stat st;
	char real[PATH_MAX];
	if (!o || !nearest_existing(data_dir, &st, real))
		return o;
	mount_of(st.st_dev, real, o);
	block_device(st.st_dev, o);
	return o;
}

static json_t *os_name(void)
{
	char buf[256];
	return find_keyed("/etc/os-release", "PRETTY_NAME", '=', buf, sizeof buf) ? json_string(buf)
										  : json_null();
}

/* True where the CPU says it runs under a hypervisor (the x86 "hypervisor"
 * flag); JSON null where cpuinfo has no flags line (other architectures). */
static json_t *under_hypervisor(void)
{
	FILE *f = fopen("/proc/cpuinfo", "re");
	if (!f)
		return json_null();
	char *line = NULL;
	size_t cap = 0;
	json_t *out = json_null();
	while (getline(&line, &cap, f) > 0) {
		if (strncmp(line, "flags", 5) != 0 || !strchr(line, ':'))
			continue;
		/* The flags are space-separated words; the line ends in '\n'. */
		char *at = strstr(line, " hypervisor");
		out = json_boolean(at && (at[11] == ' ' || at[11] == '\n' || at[11] == '\0'));
		break;
	}
	free(line);
	fclose(f);
	return out;
}

/* The order of the free blocks the guest hands back to its hypervisor
 * (virtio-balloon free page reporting), or null where the kernel does
 * not report. Where it does, memory a process frees is returned to the
 * host soon after, and the next process's first touch of it is a host
 * fault too: fresh pages cost more than on bare metal. */
static json_t *free_page_reporting_order(void)
{
	char buf[32];
	char *end;
	if (!read_line("/sys/module/page_reporting/parameters/page_reporting_order", buf,
		       sizeof buf))
		return json_null();
	long order = strtol(buf, &end, 10);
	return end != buf && order >= 0 ? json_integer(order) : json_null();
}

json_t *cb_sysinfo_json(const char *data_dir)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	struct utsname u;
	bool have_uname = uname(&u) == 0;
	json_object_set_new(o, "hostname", string_or_null(have_uname, u.nodename));
	json_object_set_new(o, "cpu_model", cpu_model());
	json_object_set_new(o, "arch", string_or_null(have_uname, u.machine));
	add_topology(o);
	json_object_set_new(o, "memory_bytes", meminfo_bytes("MemTotal"));
	json_object_set_new(o, "memory_available_bytes", meminfo_bytes("MemAvailable"));
	json_object_set_new(o, "kernel", string_or_null(have_uname, u.release));
	json_object_set_new(o, "kernel_version", string_or_null(have_uname, u.version));
	json_object_set_new(o, "os", os_name());
	json_object_set_new(o, "thp", bracketed("/sys/kernel/mm/transparent_hugepage/enabled"));
	json_object_set_new(o, "hypervisor", under_hypervisor());
	json_object_set_new(o, "free_page_reporting_order", free_page_reporting_order());
	json_object_set_new(o, "cpu_governor",
			    line_or_null("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"));
	if (data_dir)
		json_object_set_new(o, "data_dir", data_dir_json(data_dir));
	char gpu_note[256];
	json_object_set_new(o, "gpus", cb_gpu_list_json(gpu_note, sizeof gpu_note));
	if (*gpu_note)
		json_object_set_new(o, "gpus_note", json_string(gpu_note));
	return o;
}

/* --- binding ---------------------------------------------------------------- */

static bool parse_uint(const char **p, unsigned long *out)
{
	if (!isdigit((unsigned char)**p))
		return false;
	char *end;
	errno = 0;
	*out = strtoul(*p, &end, 10);
	*p = end;
	return errno == 0;
}

static void set_cpu(struct cb_bind *b, unsigned long cpu)
{
	b->cpus[cpu / 64] |= UINT64_C(1) << (cpu % 64);
}

static bool has_cpu(const struct cb_bind *b, unsigned cpu)
{
	return (b->cpus[cpu / 64] >> (cpu % 64)) & 1;
}

/* "0-3,8,10-11" into the bit set. */
static int parse_cpu_list(const char *list, struct cb_bind *out, struct cb_error *err)
{
	const char *p = list;
	for (;;) {
		unsigned long lo, hi;
		if (!parse_uint(&p, &lo))
			return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
				       "--bind core:LIST wants CPU numbers like 0-3,8, not \"%s\"",
				       list);
		hi = lo;
		if (*p == '-') {
			p++;
			if (!parse_uint(&p, &hi) || hi < lo)
				return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
					       "--bind core:%s: bad range", list);
		}
		if (hi >= CB_BIND_MAX_CPUS)
			return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
				       "--bind core:%s: CPU %lu is beyond %d", list, hi,
				       CB_BIND_MAX_CPUS - 1);
		for (unsigned long c = lo; c <= hi; c++)
			set_cpu(out, c);
		if (*p == '\0')
			return CB_OK;
		if (*p++ != ',')
			return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
				       "--bind core:%s: unexpected \"%s\"", list, p - 1);
	}
}

int cb_bind_parse(const char *spec, struct cb_bind *out, struct cb_error *err)
{
	memset(out, 0, sizeof *out);
	if (strlen(spec) >= sizeof out->spec)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "--bind value too long");
	snprintf(out->spec, sizeof out->spec, "%s", spec);
	if (strcmp(spec, "none") == 0)
		return CB_OK;
	if (strncmp(spec, "node:", 5) == 0) {
		const char *p = spec + 5;
		unsigned long node;
		if (!parse_uint(&p, &node) || *p || node > UINT_MAX)
			return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
				       "--bind node:N wants a node number, not \"%s\"", spec + 5);
		out->kind = CB_BIND_NODE;
		out->node = (unsigned)node;
		return CB_OK;
	}
	if (strncmp(spec, "core:", 5) == 0) {
		out->kind = CB_BIND_CORES;
		return parse_cpu_list(spec + 5, out, err);
	}
	return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
		       "--bind takes node:N or core:LIST (like core:0-3,8), not \"%s\"", spec);
}

/* A CPU exists when sysfs lists it and it is online (cpu0 has no "online"
 * file on most machines and is always online). */
static bool cpu_online(unsigned cpu)
{
	char path[96], buf[8];
	snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%u", cpu);
	if (access(path, F_OK) != 0)
		return false;
	snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%u/online", cpu);
	return !read_line(path, buf, sizeof buf) || strcmp(buf, "0") != 0;
}

static int check_cpus(const struct cb_bind *bind, struct cb_error *err)
{
	for (unsigned c = 0; c < CB_BIND_MAX_CPUS; c++)
		if (has_cpu(bind, c) && !cpu_online(c))
			return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
				       "--bind %s: CPU %u does not exist or is offline", bind->spec,
				       c);
	return CB_OK;
}

#if CB_HAVE_HWLOC
static int hwloc_bind_node(hwloc_topology_t topo, const struct cb_bind *bind, struct cb_error *err)
{
	hwloc_obj_t node = hwloc_get_numanode_obj_by_os_index(topo, bind->node);
	if (!node)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "--bind %s: no NUMA node %u here",
			       bind->spec, bind->node);
	if (hwloc_set_cpubind(topo, node->cpuset, HWLOC_CPUBIND_PROCESS) != 0)
		return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL,
			       "--bind %s: binding the CPUs failed: %s", bind->spec,
			       strerror(errno));
	if (hwloc_set_membind(topo, node->nodeset, HWLOC_MEMBIND_BIND,
			      HWLOC_MEMBIND_PROCESS | HWLOC_MEMBIND_BYNODESET) == 0)
		return CB_OK;
	/* A kernel without NUMA support (ENOSYS) has one node, where all
	 * memory already is: nothing is left to bind. */
	int why = errno;
	if (why == ENOSYS && hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE) == 1)
		return CB_OK;
	return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL, "--bind %s: binding memory failed: %s",
		       bind->spec, strerror(why));
}

static int hwloc_bind_cores(hwloc_topology_t topo, const struct cb_bind *bind, struct cb_error *err)
{
	hwloc_bitmap_t set = hwloc_bitmap_alloc();
	if (!set)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no memory for a CPU set");
	for (unsigned c = 0; c < CB_BIND_MAX_CPUS; c++)
		if (has_cpu(bind, c))
			hwloc_bitmap_set(set, c);
	int rc = CB_OK;
	if (hwloc_set_cpubind(topo, set, HWLOC_CPUBIND_PROCESS) != 0)
		rc = CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL,
			     "--bind %s: binding the CPUs failed: %s", bind->spec, strerror(errno));
	hwloc_bitmap_free(set);
	return rc;
}

static int bind_apply_impl(const struct cb_bind *bind, struct cb_error *err)
{
	hwloc_topology_t topo;
	if (hwloc_topology_init(&topo) != 0 || hwloc_topology_load(topo) != 0)
		return CB_FAIL(err, CB_EENV, NULL, NULL, "hwloc cannot read the topology");
	int rc = bind->kind == CB_BIND_NODE ? hwloc_bind_node(topo, bind, err)
					    : hwloc_bind_cores(topo, bind, err);
	hwloc_topology_destroy(topo);
	return rc;
}
#else
static int bind_apply_impl(const struct cb_bind *bind, struct cb_error *err)
{
	if (bind->kind == CB_BIND_NODE)
		return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL,
			       "--bind %s: NUMA binding needs hwloc, and this ckptbench was "
			       "built without it",
			       bind->spec);
	cpu_set_t set;
	CPU_ZERO(&set);
	for (unsigned c = 0; c < CB_BIND_MAX_CPUS && c < CPU_SETSIZE; c++)
		if (has_cpu(bind, c))
			CPU_SET(c, &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0)
		return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL,
			       "--bind %s: sched_setaffinity failed: %s", bind->spec,
			       strerror(errno));
	return CB_OK;
}
#endif

int cb_bind_apply(const struct cb_bind *bind, struct cb_error *err)
{
	if (bind->kind == CB_BIND_NONE)
		return CB_OK;
	if (bind->kind == CB_BIND_CORES) {
		int rc = check_cpus(bind, err);
		if (rc != CB_OK)
			return rc;
	}
	return bind_apply_impl(bind, err);
}
