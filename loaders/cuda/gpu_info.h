/* The machine's GPUs for sysinfo and calibrate (bench/), in every build:
 * with CUDA they come from the runtime, with NVML (when libnvidia-ml loads)
 * also the driver, the memory and the PCIe link; without either, none.
 */
#ifndef CB_GPU_INFO_H
#define CB_GPU_INFO_H

#include <jansson.h>
#include <stddef.h>

/* The "gpus" list of sysinfo: one object per CUDA device (NVML's devices
 * when CUDA is not built in): index, name, bus_id, memory_bytes,
 * compute_capability, driver_version, pcie {gen, width, max_gen, max_width}
 * (null where unknown), local_cpus. A new array, the caller's (empty, never
 * NULL unless out of memory). `note` gets why it is empty or partial. */
json_t *cb_gpu_list_json(char *note, size_t note_size);

/* Pinned host-to-device bandwidth of device 0 in GB/s (1e9 bytes/s): the
 * best of 5 cudaMemcpyAsync of a 256 MiB cudaHostAlloc buffer into device
 * memory (buffers below the size where large pinned buffers lose rate,
 * docs/datasets-and-method.md §5.4). The context is reset afterwards, so
 * the caller holds no device memory. NAN when there is no GPU or no CUDA in
 * this build (note empty: nothing to measure), or with the reason in `note`
 * when the measurement failed. */
double cb_gpu_h2d_gbps(char *note, size_t note_size);

#endif
