/* What the Python peers' descriptors share (peer_torch_load.c,
 * peer_torch_load_mmap.c, peer_safetensors_py.c): their program and their
 * availability probe. The peers themselves are loaders/peers/peer.py.
 */
#ifndef CB_PEER_PYTHON_H
#define CB_PEER_PYTHON_H

#include "loader.h"

/* The program every Python peer runs: a shell wrapper choosing the Python
 * ($CKPTBENCH_PYTHON, else python3 in PATH or /usr/bin/python3, whichever
 * has torch). A bare name, found where ckptbench's peers are
 * (cb_loader_peer_path: the source tree's loaders/peers/ from a build
 * directory, libexecdir/ckptbench/peers beside an installed binary, or
 * $CKPTBENCH_PEERS). */
#define CB_PEER_PYTHON "python-peer"

/* The probe of a Python peer: runs `python-peer --probe` once per process
 * (it answers for every peer, without importing torch) and keeps the answer.
 * 0 when `self` can run here; else CB_EUNAVAILABLE with the reason in err
 * ("torch 1.13 has no mmap=True", "python3 module safetensors not installed").
 * Not thread-safe: the harness probes from one thread. */
int cb_peer_python_probe(const struct cb_loader *self, struct cb_error *err);

/* The options every Python peer takes, and their struct: all strings, since
 * the peer parses them (the harness passes the text as given). */
struct cb_peer_python_opts {
	const char *init;         /* torch-load, safetensors-py: zeros|uniform|empty */
	const char *weights_only; /* torch-load: default|true|false */
	const char *touch;        /* torch-load-mmap: 1|0 */
	uint64_t threads;         /* torch.set_num_threads; 0: torch's default */
};

/* torch-load's options (peer_torch_load.c), shared with torch-load-gpu,
 * which runs the same host path before its .to(). */
extern const struct cb_loader_opt cb_peer_torch_load_opts[];

#endif
