/* torch-load-gpu: the real classic path ending on the GPU, run as a peer
 * (loaders/peers/torch_paths.py) in Debian's python3-torch or the Python of
 * $CKPTBENCH_PYTHON:
 *
 *     model = M(); model.load_state_dict(torch.load(p, map_location="cpu"))
 *     model.to("cuda:N")
 *
 * with the phases of our pickle-gpu (init, read, copy, to_device), so the
 * two can be held side by side: host peak about 2x, device 1x. The CUDA
 * context is made in the peer's setup, before the baseline; the load ends
 * with torch.cuda.synchronize(). Unavailable (with the reason) where torch
 * is a CPU-only build or sees no GPU.
 */
#include <stddef.h>

#include "peer_python.h"

const struct cb_loader cb_loader_peer_torch_load_gpu = {
	.abi = CB_LOADER_ABI,
	.name = "torch-load-gpu",
	.summary = "the real torch.load + load_state_dict, then model.to(cuda) (python3-torch): "
		   "host 2x, device 1x",
	.format = CB_FORMAT_PYTORCH,
	.device = CB_DEVICE_CUDA,
	/* the host model is built and loaded first, as in pickle-gpu */
	.caps = CB_CAP_DEVICE_MEM | CB_CAP_HOST_MEM | CB_CAP_PEER,
	.opts = cb_peer_torch_load_opts, /* the same host path before .to() */
	.opts_size = sizeof(struct cb_peer_python_opts),
	.peer = CB_PEER_PYTHON,
	.probe = cb_peer_python_probe,
};
