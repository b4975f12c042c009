/* The GPU loaders' shared session (see gpu.h). CUDA builds only. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gpu.h"

#define WATCH_PERIOD_NS 2000000L /* 2 ms: short loads still get samples */
#define FETCH_CHUNK (UINT64_C(64) << 20)

double cb_gpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int cb_cuda_fail(struct cb_error *err, cudaError_t rc, const char *where, const char *what)
{
	enum cb_errcode code = rc == cudaErrorMemoryAllocation ? CB_ENOMEM : CB_EENV;
	return CB_FAIL(err, code, NULL, where, "%s: %s (%s)", what, cudaGetErrorName(rc),
		       cudaGetErrorString(rc));
}

int cb_gpu_probe(const struct cb_loader *self, struct cb_error *err)
{
	(void)self;
	int n = 0;
	cudaError_t rc = cudaGetDeviceCount(&n);
	if (rc != cudaSuccess)
		return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL, "no CUDA device: %s (%s)",
			       cudaGetErrorName(rc), cudaGetErrorString(rc));
	if (n < 1)
		return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL, "no CUDA device: none visible");
	return CB_OK;
}

/* --- the tracked allocator -------------------------------------------------- */

int cb_dev_malloc(struct cb_dev_alloc *a, void **ptr, uint64_t bytes, struct cb_error *err)
{
	*ptr = NULL;
	/* cudaMalloc(0) yields NULL; one byte keeps "NULL = failed" true. */
	size_t n = bytes ? (size_t)bytes : 1;
	cudaError_t rc = cudaMalloc(ptr, n);
	if (rc != cudaSuccess) {
		char where[64];
		snprintf(where, sizeof where, "%llu bytes", (unsigned long long)n);
		return cb_cuda_fail(err, rc, where, "cudaMalloc");
	}
	uint64_t live = atomic_fetch_add(&a->live, n) + n;
	uint64_t peak = atomic_load(&a->peak);
	while (live > peak && !atomic_compare_exchange_weak(&a->peak, &peak, live))
		;
	return CB_OK;
}

void cb_dev_free(struct cb_dev_alloc *a, void *ptr, uint64_t bytes)
{
	if (!ptr)
		return;
	cudaFree(ptr);
	atomic_fetch_sub(&a->live, bytes ? bytes : 1);
}

/* --- the session ------------------------------------------------------------- */

/* Device memory in use now: NVML (no CUDA call, no lock shared with the
 * loader) or cudaMemGetInfo (the calling thread's device must be set). */
static bool device_used(struct cb_gpu *g, uint64_t *used)
{
	if (g->nvdev)
		return cb_nvml_used(&g->nvml, g->nvdev, used);
	size_t free_b = 0, total = 0;
	if (cudaMemGetInfo(&free_b, &total) != cudaSuccess)
		return false;
	*used = total - free_b;
	return true;
}

static void *watch_main(void *arg)
{
	struct cb_gpu *g = arg;
	if (!g->nvdev)
		cudaSetDevice(g->device);
	const struct timespec period = {0, WATCH_PERIOD_NS};
	while (!atomic_load(&g->stop)) {
		uint64_t used, peak = atomic_load(&g->device_peak);
		if (device_used(g, &used))
			while (used > peak &&
			       !atomic_compare_exchange_weak(&g->device_peak, &peak, used))
				;
		nanosleep(&period, NULL);
	}
	return NULL;
}

/* "0-15,32-47" into a CPU set; false when nothing parsed. */
static bool parse_cpulist(const char *s, cpu_set_t *set)
{
	CPU_ZERO(set);
	bool any = false;
	while (*s && *s != '\n') {
		char *end;
		unsigned long a = strtoul(s, &end, 10), b = a;
		if (end == s)
			return false;
		if (*end == '-')
			b = strtoul(end + 1, &end, 10);
		for (unsigned long c = a; c <= b && c < CPU_SETSIZE; c++)
			CPU_SET(c, set), any = true;
		s = *end == ',' ? end + 1 : end;
	}
	return any;
}

/* The GPU's NUMA-local CPUs, from the PCI device's sysfs entry (what hwloc
 * reads too; the kernel's own answer). */
static void local_cpus(struct cb_gpu *g)
{
	char path[128], text[1024];
	snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/local_cpulist", g->bus_id);
	FILE *f = *g->bus_id ? fopen(path, "r") : NULL;
	if (!f)
		return;
	if (fgets(text, sizeof text, f))
		g->have_local_cpus = parse_cpulist(text, &g->local_cpus);
	fclose(f);
}

static void open_nvml(struct cb_gpu *g)
{
	struct cb_error e = CB_ERROR_INIT;
	if (cb_nvml_open(&g->nvml, &e) != CB_OK) {
		snprintf(g->nvml_note, sizeof g->nvml_note, "%.150s", e.msg);
		cb_nvml_close(&g->nvml);
		return;
	}
	/* CUDA and NVML number devices differently; the bus id is the same. */
	if (!*g->bus_id || g->nvml.by_bus_id(g->bus_id, &g->nvdev) != NVML_SUCCESS) {
		snprintf(g->nvml_note, sizeof g->nvml_note, "NVML has no device %s", g->bus_id);
		g->nvdev = NULL;
	}
}

int cb_gpu_open(struct cb_gpu *g, int device_index, struct cb_error *err)
{
	g->device = device_index;
	int rc = cb_gpu_probe(NULL, err);
	if (rc != CB_OK)
		return rc;
	/* The bus id needs no context; NVML can then see the memory in use
	 * before the context exists. */
	if (cudaDeviceGetPCIBusId(g->bus_id, sizeof g->bus_id, device_index) == cudaSuccess)
		for (char *p = g->bus_id; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	else
		g->bus_id[0] = '\0';
	open_nvml(g);
	local_cpus(g);
	uint64_t before = 0, after = 0;
	bool have_before = g->nvdev && device_used(g, &before);
	double t0 = cb_gpu_now();
	CB_CUDA_TRY(err, cudaSetDevice(device_index));
	CB_CUDA_TRY(err, cudaFree(NULL)); /* creates the primary context */
	g->context_s = cb_gpu_now() - t0;
	if (device_used(g, &after)) {
		/* Without NVML the figure is all memory in use: the context on
		 * an otherwise idle GPU (the source says so). */
		g->context_bytes =
			have_before && after > before ? after - before : (have_before ? 0 : after);
		g->baseline = after;
		g->device_known = true;
	}
	atomic_store(&g->device_peak, g->baseline);
	atomic_store(&g->stop, false);
	if (g->device_known && pthread_create(&g->watcher, NULL, watch_main, g) == 0)
		g->watching = true;
	return CB_OK;
}

static void stop_watch(struct cb_gpu *g)
{
	if (!g->watching)
		return;
	atomic_store(&g->stop, true);
	pthread_join(g->watcher, NULL);
	g->watching = false;
	uint64_t used, peak = atomic_load(&g->device_peak);
	if (device_used(g, &used) && used > peak) /* the last word, after the load */
		atomic_store(&g->device_peak, used);
}

void cb_gpu_vram(struct cb_gpu *g, struct cb_loader_vram *out)
{
	stop_watch(g);
	*out = (struct cb_loader_vram){0};
	out->alloc_peak_bytes = atomic_load(&g->alloc.peak);
	out->context_bytes = g->context_bytes;
	out->context_s = g->context_s;
	out->pinned_bytes = g->pinned_bytes;
	out->pinned_alloc_s = g->pinned_alloc_s;
	if (g->device_known) {
		out->device_baseline_bytes = g->baseline;
		uint64_t peak = atomic_load(&g->device_peak);
		uint64_t floor = g->baseline + out->alloc_peak_bytes;
		out->device_peak_bytes = peak > floor ? peak : floor;
	}
	snprintf(out->source, sizeof out->source, "%s",
		 !g->device_known ? "allocator only"
		 : g->nvdev       ? "nvml, 2 ms samples"
				  : "cudaMemGetInfo, 2 ms samples (context: all in use)");
}

void cb_gpu_close(struct cb_gpu *g)
{
	stop_watch(g);
	cb_nvml_close(&g->nvml);
	g->nvdev = NULL;
}

int cb_gpu_fetch(struct cb_gpu *g, const void *dev, void *host, uint64_t bytes,
		 struct cb_error *err)
{
	(void)g;
	/* The harness's thread may not have the loader's device current. */
	CB_CUDA_TRY(err, cudaSetDevice(g->device));
	for (uint64_t done = 0; done < bytes; done += FETCH_CHUNK) {
		uint64_t n = bytes - done < FETCH_CHUNK ? bytes - done : FETCH_CHUNK;
		CB_CUDA_TRY(err, cudaMemcpy((char *)host + done, (const char *)dev + done,
					    (size_t)n, cudaMemcpyDeviceToHost));
	}
	return CB_OK;
}

int cb_gpu_control(struct cb_gpu *g, const struct cb_model *model, const char *mode, int op,
		   void *arg, struct cb_error *err)
{
	if (op == CB_LOADER_CTL_FETCH) {
		struct cb_loader_fetch *f = arg;
		if (!model || f->index >= model->n || !model->tensors[f->index].data ||
		    f->nbytes > model->tensors[f->index].nbytes)
			return CB_FAIL(err, CB_EINTERNAL, NULL, NULL,
				       "fetch of tensor %zu: no such "
				       "tensor on the device",
				       f->index);
		const struct cb_model_tensor *t = &model->tensors[f->index];
		if (t->location == CB_LOC_HOST) {
			memcpy(f->host_buf, t->data, (size_t)f->nbytes);
			return CB_OK;
		}
		return cb_gpu_fetch(g, t->data, f->host_buf, f->nbytes, err);
	}
	if (op == CB_LOADER_CTL_VRAM) {
		cb_gpu_vram(g, arg);
		return CB_OK;
	}
	if (op == CB_LOADER_CTL_MODE) {
		snprintf(arg, CB_LOADER_MODE_MAX, "%s", mode ? mode : "");
		return CB_OK;
	}
	return CB_FAIL(err, CB_EUNSUPPORTED, NULL, NULL, "control %d", op);
}

void cb_gpu_bind_thread(void *ctx)
{
	struct cb_gpu *g = ctx;
	if (g && g->have_local_cpus)
		(void)pthread_setaffinity_np(pthread_self(), sizeof g->local_cpus, &g->local_cpus);
}
