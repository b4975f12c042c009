/* safetensors-py-gpu: the real `safetensors.torch.load_file(p,
 * device="cuda:N")`, run as a peer (loaders/peers/torch_paths.py): the
 * library's own way onto the GPU, against which safetensors-gpu (and its
 * plain twin safetensors-gpu-naive) are measured. By default the returned
 * dict of device tensors is the model, as safetensors-gpu makes one;
 * into=model builds M() on the device first and load_state_dict's into it
 * (what safetensors' load_model(model, p, device=...) does: device peak
 * about 2x). The CUDA context is made in setup, before the baseline; the
 * load ends with torch.cuda.synchronize(). Unavailable (with the reasons)
 * where the Python package is missing or torch has no GPU.
 */
#include <stddef.h>
#include <stdint.h>

#include "peer_python.h"

/* Its own options struct: `into` is this peer's alone, and the shared
 * cb_peer_python_opts is the CPU peers'. The harness passes every value to
 * the peer as text; the struct only gives the options their slots. */
struct st_py_gpu_opts {
	const char *into; /* dict|model */
	const char *init; /* zeros|uniform|empty, for into=model */
	uint64_t threads; /* torch.set_num_threads; 0: torch's default */
};

static const struct cb_loader_opt safetensors_py_gpu_opts[] = {
	{"into", CB_OPT_STRING, offsetof(struct st_py_gpu_opts, into), 0, 0, "dict",
	 "dict: load_file's dict of device tensors is the model; model: M() on the device, "
	 "then load_file + load_state_dict (safetensors' load_model; device peak ~2x)"},
	{"init", CB_OPT_STRING, offsetof(struct st_py_gpu_opts, init), 0, 0, "zeros",
	 "into=model: what M() does to its memory: zeros, uniform (random init), empty"},
	{"threads", CB_OPT_U64, offsetof(struct st_py_gpu_opts, threads), 0, 1024, "0",
	 "torch.set_num_threads (0: torch's default)"},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

const struct cb_loader cb_loader_peer_safetensors_py_gpu = {
	.abi = CB_LOADER_ABI,
	.name = "safetensors-py-gpu",
	.summary = "the real safetensors.torch.load_file(device=\"cuda:N\") (Python package): "
		   "device 1x",
	.format = CB_FORMAT_SAFETENSORS,
	.device = CB_DEVICE_CUDA,
	.caps = CB_CAP_DEVICE_MEM | CB_CAP_PEER,
	.opts = safetensors_py_gpu_opts,
	.opts_size = sizeof(struct st_py_gpu_opts),
	.peer = CB_PEER_PYTHON,
	.probe = cb_peer_python_probe,
};
