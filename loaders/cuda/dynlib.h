/* cuFile and NVML, opened at run time with dlopen (never linked), so one
 * binary runs with or without them and says why when they are missing.
 *
 *   CKPTBENCH_CUFILE_LIB   the cuFile library to open (default libcufile.so.0)
 *   CKPTBENCH_NVML_LIB     the NVML library to open (default libnvidia-ml.so.1)
 *
 * Each open either yields every function ckptbench needs or fails with
 * CB_EUNAVAILABLE naming the library and what was missing (dlerror). The
 * structs are the caller's; close them once, whatever open returned.
 * Not thread-safe to open or close; the functions themselves are (both
 * libraries document thread-safe APIs).
 */
#ifndef CB_DYNLIB_H
#define CB_DYNLIB_H

#include <stdbool.h>
#include <stdint.h>

#include "cufile_api.h"
#include "error.h"
#include "nvml_api.h"

struct cb_cufile {
	void *lib;
	bool driver_open;
	cb_cuFileDriverOpen_fn driver_open_fn;
	cb_cuFileDriverClose_fn driver_close;
	cb_cuFileHandleRegister_fn handle_register;
	cb_cuFileHandleDeregister_fn handle_deregister;
	cb_cuFileBufRegister_fn buf_register;
	cb_cuFileBufDeregister_fn buf_deregister;
	cb_cuFileRead_fn read;
};

/* Opens the library and its driver (cuFileDriverOpen: the costly part,
 * outside any timed region). CB_EUNAVAILABLE when either fails. */
int cb_cufile_open(struct cb_cufile *cf, struct cb_error *err);
void cb_cufile_close(struct cb_cufile *cf);

/* "cuFileRead: cuFile error 5011 (CUDA error 2)" and the like into err. */
int cb_cufile_fail(struct cb_error *err, const char *path, const char *what, CUfileError_t e);

/* How cuFile will move the bytes here: "GPUDirect" when the nvidia-fs
 * driver is loaded (/proc/driver/nvidia-fs) and compatibility mode is not
 * forced (CUFILE_FORCE_COMPAT_MODE), else "compatibility mode" (POSIX reads
 * into host memory, then a copy). */
const char *cb_cufile_mode(void);

struct cb_nvml {
	void *lib;
	bool inited;
	cb_nvmlShutdown_fn shutdown;
	cb_nvmlErrorString_fn error_string;
	cb_nvmlDeviceGetCount_fn device_count;
	cb_nvmlDeviceGetHandleByIndex_fn by_index;
	cb_nvmlDeviceGetHandleByPciBusId_fn by_bus_id;
	cb_nvmlDeviceGetMemoryInfo_fn memory_info;
	cb_nvmlDeviceGetName_fn name;
	cb_nvmlSystemGetDriverVersion_fn driver_version;
	/* Optional (NULL when the library lacks them). */
	cb_nvmlDeviceGetUint_fn pcie_gen, pcie_width, pcie_max_gen, pcie_max_width;
};

/* Opens the library and nvmlInit_v2. CB_EUNAVAILABLE when either fails. */
int cb_nvml_open(struct cb_nvml *nv, struct cb_error *err);
void cb_nvml_close(struct cb_nvml *nv);

/* Device memory in use (bytes), device-wide; false when NVML cannot say. */
bool cb_nvml_used(const struct cb_nvml *nv, nvmlDevice_t dev, uint64_t *used);

#endif
