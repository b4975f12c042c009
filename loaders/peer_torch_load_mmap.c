/* torch-load-mmap: the real `torch.load(p, mmap=True, weights_only=True)`
 * with load_state_dict(assign=True) into a model built on the meta device,
 * run as a peer (loaders/peers/torch_paths.py): the parameters are views
 * into the mapped file, every page touched inside the timed region. Needs
 * torch >= 2.1; the probe says so where torch is older.
 */
#include <stddef.h>

#include "peer_python.h"

static const struct cb_loader_opt torch_load_mmap_opts[] = {
	{"touch", CB_OPT_STRING, offsetof(struct cb_peer_python_opts, touch), 0, 0, "1",
	 "1: read a byte of every page inside the timed region, as every loader makes its "
	 "tensors resident; 0: leave them to fault in later"},
	{"threads", CB_OPT_U64, offsetof(struct cb_peer_python_opts, threads), 0, 1024, "0",
	 "torch.set_num_threads (0: torch's default)"},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

const struct cb_loader cb_loader_peer_torch_load_mmap = {
	.abi = CB_LOADER_ABI,
	.name = "torch-load-mmap",
	.summary = "the real torch.load(mmap=True) + load_state_dict(assign=True) (torch >= 2.1)",
	.format = CB_FORMAT_PYTORCH,
	.device = CB_DEVICE_CPU,
	.caps = CB_CAP_HOST_MEM | CB_CAP_ZERO_COPY | CB_CAP_PEER | CB_CAP_PARTIAL,
	.opts = torch_load_mmap_opts,
	.opts_size = sizeof(struct cb_peer_python_opts),
	.peer = CB_PEER_PYTHON,
	.probe = cb_peer_python_probe,
};
