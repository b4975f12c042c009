/* safetensors-py: the real `safetensors.torch.load_file` then
 * model.load_state_dict (what safetensors' load_model does) into a model
 * built first, run as a peer (loaders/peers/torch_paths.py). Unavailable
 * where the Python package is missing (Debian has none).
 */
#include <stddef.h>

#include "peer_python.h"

static const struct cb_loader_opt safetensors_py_opts[] = {
	{"init", CB_OPT_STRING, offsetof(struct cb_peer_python_opts, init), 0, 0, "zeros",
	 "what M() does to its memory: zeros (pages touched), uniform (random init), empty"},
	{"threads", CB_OPT_U64, offsetof(struct cb_peer_python_opts, threads), 0, 1024, "0",
	 "torch.set_num_threads (0: torch's default)"},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

const struct cb_loader cb_loader_peer_safetensors_py = {
	.abi = CB_LOADER_ABI,
	.name = "safetensors-py",
	.summary = "the real safetensors.torch.load_file + load_state_dict (Python package)",
	.format = CB_FORMAT_SAFETENSORS,
	.device = CB_DEVICE_CPU,
	.caps = CB_CAP_HOST_MEM | CB_CAP_PEER | CB_CAP_PARTIAL,
	.opts = safetensors_py_opts,
	.opts_size = sizeof(struct cb_peer_python_opts),
	.peer = CB_PEER_PYTHON,
	.probe = cb_peer_python_probe,
};
