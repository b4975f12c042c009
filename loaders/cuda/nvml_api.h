/* The part of NVIDIA's NVML C API that ckptbench uses, declared from its
 * documented ABI (nvml.h, "NVML API Reference Guide") so that neither the
 * header nor the library is needed to build: libnvidia-ml.so.1 comes with
 * the driver and is opened at run time (nvml.h in this directory).
 */
#ifndef CB_NVML_API_H
#define CB_NVML_API_H

/* nvmlReturn_t; 0 is NVML_SUCCESS. */
typedef int nvmlReturn_t;
#define NVML_SUCCESS 0

typedef struct nvmlDevice_st *nvmlDevice_t;

/* nvmlMemory_t (v1): bytes. */
typedef struct nvmlMemory_st {
	unsigned long long total;
	unsigned long long free;
	unsigned long long used;
} nvmlMemory_t;

typedef nvmlReturn_t (*cb_nvmlInit_fn)(void); /* nvmlInit_v2 */
typedef nvmlReturn_t (*cb_nvmlShutdown_fn)(void);
typedef const char *(*cb_nvmlErrorString_fn)(nvmlReturn_t result);
typedef nvmlReturn_t (*cb_nvmlDeviceGetCount_fn)(unsigned int *count); /* _v2 */
typedef nvmlReturn_t (*cb_nvmlDeviceGetHandleByIndex_fn)(unsigned int index,
							 nvmlDevice_t *device); /* _v2 */
typedef nvmlReturn_t (*cb_nvmlDeviceGetHandleByPciBusId_fn)(const char *bus_id,
							    nvmlDevice_t *device); /* _v2 */
typedef nvmlReturn_t (*cb_nvmlDeviceGetMemoryInfo_fn)(nvmlDevice_t device, nvmlMemory_t *memory);
typedef nvmlReturn_t (*cb_nvmlDeviceGetName_fn)(nvmlDevice_t device, char *name,
						unsigned int length);
typedef nvmlReturn_t (*cb_nvmlSystemGetDriverVersion_fn)(char *version, unsigned int length);
/* nvmlDeviceGet{Curr,Max}PcieLink{Generation,Width} */
typedef nvmlReturn_t (*cb_nvmlDeviceGetUint_fn)(nvmlDevice_t device, unsigned int *value);

#endif
