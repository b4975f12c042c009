/* cuFile and NVML through dlopen (see dynlib.h). */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dynlib.h"

/* dlopen with the environment's override; CB_EUNAVAILABLE on failure. */
static int open_lib(void **lib, const char *env, const char *def, struct cb_error *err)
{
	const char *name = getenv(env);
	if (!name || !*name)
		name = def;
	*lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (!*lib) {
		const char *why = dlerror();
		return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL, "cannot load %s (%s): %s", name,
			       env, why ? why : "dlopen failed");
	}
	return CB_OK;
}

/* dlsym into a function pointer (POSIX allows the conversion). */
static int sym(void *lib, const char *name, void *fn_slot, bool required, struct cb_error *err)
{
	void *p = dlsym(lib, name);
	memcpy(fn_slot, &p, sizeof p);
	if (!p && required)
		return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL, "the library has no %s", name);
	return CB_OK;
}

/* --- cuFile ------------------------------------------------------------- */

int cb_cufile_fail(struct cb_error *err, const char *path, const char *what, CUfileError_t e)
{
	return CB_FAIL(err, CB_EIO, path, NULL, "%s: cuFile error %d (CUDA error %d)", what, e.err,
		       e.cu_err);
}

int cb_cufile_open(struct cb_cufile *cf, struct cb_error *err)
{
	*cf = (struct cb_cufile){0};
	int rc = open_lib(&cf->lib, "CKPTBENCH_CUFILE_LIB", "libcufile.so.0", err);
	if (rc != CB_OK)
		return rc;
	rc = sym(cf->lib, "cuFileDriverOpen", &cf->driver_open_fn, true, err);
	/* cufile.h maps cuFileDriverClose to the reference-counted _v2. */
	if (rc == CB_OK)
		rc = sym(cf->lib, "cuFileDriverClose_v2", &cf->driver_close, false, err);
	if (rc == CB_OK && !cf->driver_close)
		rc = sym(cf->lib, "cuFileDriverClose", &cf->driver_close, true, err);
	if (rc == CB_OK)
		rc = sym(cf->lib, "cuFileHandleRegister", &cf->handle_register, true, err);
	if (rc == CB_OK)
		rc = sym(cf->lib, "cuFileHandleDeregister", &cf->handle_deregister, true, err);
	if (rc == CB_OK)
		rc = sym(cf->lib, "cuFileBufRegister", &cf->buf_register, true, err);
	if (rc == CB_OK)
		rc = sym(cf->lib, "cuFileBufDeregister", &cf->buf_deregister, true, err);
	if (rc == CB_OK)
		rc = sym(cf->lib, "cuFileRead", &cf->read, true, err);
	if (rc != CB_OK)
		return rc;
	CUfileError_t e = cf->driver_open_fn();
	if (e.err != CU_FILE_SUCCESS)
		return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL,
			       "cuFileDriverOpen: cuFile error %d (CUDA error %d)", e.err,
			       e.cu_err);
	cf->driver_open = true;
	return CB_OK;
}

void cb_cufile_close(struct cb_cufile *cf)
{
	if (cf->driver_open)
		(void)cf->driver_close();
	if (cf->lib)
		dlclose(cf->lib);
	*cf = (struct cb_cufile){0};
}

static bool env_true(const char *name)
{
	const char *v = getenv(name);
	return v && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

const char *cb_cufile_mode(void)
{
	if (env_true("CUFILE_FORCE_COMPAT_MODE"))
		return "compatibility mode (CUFILE_FORCE_COMPAT_MODE)";
	if (access("/proc/driver/nvidia-fs", F_OK) == 0)
		return "GPUDirect (nvidia-fs loaded)";
	if (env_true("CUFILE_USE_PCIP2PDMA"))
		return "GPUDirect (PCIe P2PDMA)";
	return "compatibility mode (no nvidia-fs)";
}

/* --- NVML --------------------------------------------------------------- */

int cb_nvml_open(struct cb_nvml *nv, struct cb_error *err)
{
	*nv = (struct cb_nvml){0};
	int rc = open_lib(&nv->lib, "CKPTBENCH_NVML_LIB", "libnvidia-ml.so.1", err);
	cb_nvmlInit_fn init = NULL;
	if (rc == CB_OK)
		rc = sym(nv->lib, "nvmlInit_v2", &init, true, err);
	if (rc == CB_OK)
		rc = sym(nv->lib, "nvmlShutdown", &nv->shutdown, true, err);
	if (rc == CB_OK)
		rc = sym(nv->lib, "nvmlErrorString", &nv->error_string, true, err);
	if (rc == CB_OK)
		rc = sym(nv->lib, "nvmlDeviceGetCount_v2", &nv->device_count, true, err);
	if (rc == CB_OK)
		rc = sym(nv->lib, "nvmlDeviceGetHandleByIndex_v2", &nv->by_index, true, err);
	if (rc == CB_OK)
		rc = sym(nv->lib, "nvmlDeviceGetHandleByPciBusId_v2", &nv->by_bus_id, true, err);
	if (rc == CB_OK)
		rc = sym(nv->lib, "nvmlDeviceGetMemoryInfo", &nv->memory_info, true, err);
	if (rc == CB_OK)
		rc = sym(nv->lib, "nvmlDeviceGetName", &nv->name, true, err);
	if (rc == CB_OK)
		rc = sym(nv->lib, "nvmlSystemGetDriverVersion", &nv->driver_version, true, err);
	if (rc != CB_OK)
		return rc;
	(void)sym(nv->lib, "nvmlDeviceGetCurrPcieLinkGeneration", &nv->pcie_gen, false, NULL);
	(void)sym(nv->lib, "nvmlDeviceGetCurrPcieLinkWidth", &nv->pcie_width, false, NULL);
	(void)sym(nv->lib, "nvmlDeviceGetMaxPcieLinkGeneration", &nv->pcie_max_gen, false, NULL);
	(void)sym(nv->lib, "nvmlDeviceGetMaxPcieLinkWidth", &nv->pcie_max_width, false, NULL);
	nvmlReturn_t r = init();
	if (r != NVML_SUCCESS)
		return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL, "nvmlInit: %s",
			       nv->error_string(r));
	nv->inited = true;
	return CB_OK;
}

void cb_nvml_close(struct cb_nvml *nv)
{
	if (nv->inited)
		(void)nv->shutdown();
	if (nv->lib)
		dlclose(nv->lib);
	*nv = (struct cb_nvml){0};
}

bool cb_nvml_used(const struct cb_nvml *nv, nvmlDevice_t dev, uint64_t *used)
{
	nvmlMemory_t m;
	if (!nv->inited || !dev || nv->memory_info(dev, &m) != NVML_SUCCESS)
		return false;
	*used = m.used;
	return true;
}
