/* torch-load: the real `model = M(); model.load_state_dict(torch.load(p))`
 * in Debian's python3-torch, run as a peer (loaders/peers/torch_paths.py).
 * The model is allocated and initialised (1x), torch.load reads every
 * storage into fresh memory (another 1x), load_state_dict copies, the loaded
 * dict is dropped: the memory-doubling as torch itself does it.
 */
#include <stddef.h>

#include "peer_python.h"

const struct cb_loader_opt cb_peer_torch_load_opts[] = {
	{"init", CB_OPT_STRING, offsetof(struct cb_peer_python_opts, init), 0, 0, "zeros",
	 "what M() does to its memory: zeros (pages touched), uniform (random init), empty"},
	{"weights-only", CB_OPT_STRING, offsetof(struct cb_peer_python_opts, weights_only), 0, 0,
	 "default", "torch.load's weights_only: default (the library's own), true or false"},
	{"threads", CB_OPT_U64, offsetof(struct cb_peer_python_opts, threads), 0, 1024, "0",
	 "torch.set_num_threads (0: torch's default)"},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

const struct cb_loader cb_loader_peer_torch_load = {
	.abi = CB_LOADER_ABI,
	.name = "torch-load",
	.summary = "the real torch.load + load_state_dict (python3-torch): model 1x + loaded 1x",
	.format = CB_FORMAT_PYTORCH,
	.device = CB_DEVICE_CPU,
	.caps = CB_CAP_HOST_MEM | CB_CAP_PEER | CB_CAP_PARTIAL,
	.opts = cb_peer_torch_load_opts,
	.opts_size = sizeof(struct cb_peer_python_opts),
	.peer = CB_PEER_PYTHON,
	.probe = cb_peer_python_probe,
};
