/* The machine's GPUs (see gpu_info.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cb_config.h"
#include "dynlib.h"
#include "gpu_info.h"

#if CB_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#define H2D_BYTES (UINT64_C(256) << 20)
#define H2D_TRIES 5

static json_t *uint_or_null(cb_nvmlDeviceGetUint_fn fn, nvmlDevice_t dev)
{
	unsigned v = 0;
	return fn && dev && fn(dev, &v) == NVML_SUCCESS ? json_integer(v) : json_null();
}

/* What NVML adds to a device object (name and memory too, when CUDA did
 * not give them). */
static void add_nvml(json_t *g, const struct cb_nvml *nv, nvmlDevice_t dev)
{
	char text[128];
	nvmlMemory_t m;
	if (!json_object_get(g, "name") && nv->name(dev, text, sizeof text) == NVML_SUCCESS)
		json_object_set_new(g, "name", json_string(text));
	if (nv->memory_info(dev, &m) == NVML_SUCCESS)
		json_object_set_new(g, "memory_bytes", json_integer((json_int_t)m.total));
	if (nv->driver_version(text, sizeof text) == NVML_SUCCESS)
		json_object_set_new(g, "driver_version", json_string(text));
	json_object_set_new(g, "pcie",
			    json_pack("{s:o,s:o,s:o,s:o}", "gen", uint_or_null(nv->pcie_gen, dev),
				      "width", uint_or_null(nv->pcie_width, dev), "max_gen",
				      uint_or_null(nv->pcie_max_gen, dev), "max_width",
				      uint_or_null(nv->pcie_max_width, dev)));
}

#if CB_HAVE_CUDA
/* Which CPUs sit near a GPU, from sysfs by its PCI bus id (CUDA gives the id). */
static void add_local_cpus(json_t *g, const char *bus_id)
{
	char path[128], text[512];
	snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/local_cpulist", bus_id);
	FILE *f = fopen(path, "r");
	if (f && fgets(text, sizeof text, f)) {
		text[strcspn(text, "\n")] = '\0';
		json_object_set_new(g, "local_cpus", json_string(text));
	}
	if (f)
		fclose(f);
}

static void cuda_devices(json_t *list, const struct cb_nvml *nv, char *note, size_t note_size)
{
	int n = 0;
	cudaError_t rc = cudaGetDeviceCount(&n);
	if (rc != cudaSuccess) {
		snprintf(note, note_size, "no CUDA device: %s", cudaGetErrorName(rc));
		return;
	}
	int driver = 0;
	cudaDriverGetVersion(&driver);
	for (int i = 0; i < n; i++) {
		struct cudaDeviceProp p;
		char bus[32] = "";
		json_t *g = json_pack("{s:i}", "index", i);
		if (cudaGetDeviceProperties(&p, i) == cudaSuccess) {
			json_object_set_new(g, "name", json_string(p.name));
			json_object_set_new(g, "memory_bytes",
					    json_integer((json_int_t)p.totalGlobalMem));
			char cc[16];
			snprintf(cc, sizeof cc, "%d.%d", p.major, p.minor);
			json_object_set_new(g, "compute_capability", json_string(cc));
		}
		if (cudaDeviceGetPCIBusId(bus, sizeof bus, i) == cudaSuccess) {
			for (char *c = bus; *c; c++)
				*c = (char)(*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
			json_object_set_new(g, "bus_id", json_string(bus));
			add_local_cpus(g, bus);
		}
		json_object_set_new(g, "cuda_driver_api", json_integer(driver));
		nvmlDevice_t dev = NULL;
		if (nv->inited && *bus && nv->by_bus_id(bus, &dev) == NVML_SUCCESS)
			add_nvml(g, nv, dev);
		json_array_append_new(list, g);
	}
}
#endif

static void nvml_devices(json_t *list, const struct cb_nvml *nv)
{
	unsigned n = 0;
	if (nv->device_count(&n) != NVML_SUCCESS)
		return;
	for (unsigned i = 0; i < n; i++) {
		nvmlDevice_t dev;
		if (nv->by_index(i, &dev) != NVML_SUCCESS)
			continue;
		json_t *g = json_pack("{s:i}", "index", (int)i);
		add_nvml(g, nv, dev);
		json_array_append_new(list, g);
	}
}

json_t *cb_gpu_list_json(char *note, size_t note_size)
{
	json_t *list = json_array();
	struct cb_nvml nv;
	struct cb_error e = CB_ERROR_INIT;
	*note = '\0';
	bool have_nvml = cb_nvml_open(&nv, &e) == CB_OK;
#if CB_HAVE_CUDA
	cuda_devices(list, &nv, note, note_size);
#else
	snprintf(note, note_size, "not built with CUDA");
	if (have_nvml)
		nvml_devices(list, &nv);
#endif
	(void)nvml_devices;
	if (!have_nvml && json_array_size(list)) {
		size_t used = strlen(note);
		snprintf(note + used, note_size - used, "%sNVML: %.120s", used ? "; " : "", e.msg);
	}
	cb_nvml_close(&nv);
	return list;
}

#if CB_HAVE_CUDA
static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double h2d_best(char *note, size_t note_size)
{
	void *host = NULL, *dev = NULL;
	cudaStream_t s = NULL;
	double best = NAN;
	cudaError_t rc = cudaSetDevice(0);
	if (rc == cudaSuccess)
		rc = cudaHostAlloc(&host, H2D_BYTES, cudaHostAllocDefault);
	if (rc == cudaSuccess)
		rc = cudaMalloc(&dev, H2D_BYTES);
	if (rc == cudaSuccess)
		rc = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
	if (rc == cudaSuccess)
		memset(host, 1, H2D_BYTES); /* pinned pages are resident; warm the TLB */
	for (int i = 0; rc == cudaSuccess && i <= H2D_TRIES; i++) {
		double t0 = now_s();
		rc = cudaMemcpyAsync(dev, host, H2D_BYTES, cudaMemcpyHostToDevice, s);
		if (rc == cudaSuccess)
			rc = cudaStreamSynchronize(s);
		double gbps = (double)H2D_BYTES / (now_s() - t0) / 1e9;
		if (rc == cudaSuccess && i > 0) /* the first copy warms up */
			best = isnan(best) || gbps > best ? gbps : best;
	}
	if (rc != cudaSuccess) {
		snprintf(note, note_size, "h2d: %s", cudaGetErrorName(rc));
		best = NAN;
	}
	if (s)
		cudaStreamDestroy(s);
	cudaFree(dev);
	cudaFreeHost(host);
	return best;
}
#endif

double cb_gpu_h2d_gbps(char *note, size_t note_size)
{
	*note = '\0';
#if CB_HAVE_CUDA
	int n = 0;
	cudaError_t rc = cudaGetDeviceCount(&n);
	if (rc != cudaSuccess || n < 1)
		return NAN; /* nothing to measure: not worth a note */
	double gbps = h2d_best(note, note_size);
	/* Leave no context behind: trials measure the device from a clean
	 * state, and this process forks them. */
	cudaDeviceReset();
	return gbps;
#else
	(void)note_size;
	return NAN;
#endif
}
