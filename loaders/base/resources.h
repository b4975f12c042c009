/* Where the files ckptbench needs beside its binary are: the gnuplot
 * templates (plots/), the peer programs (loaders/peers/), the libtorch
 * module (ckptbench-torch.so) and the tensor-parallel rules files
 * (datasets/tp-rules/).
 *
 * Why one module: the binary must work in two places, and every user of
 * these files must agree on which. Run from its build directory (ckptbench
 * itself, the test programs under tests/), it takes the templates and the
 * peers from its source tree and the module from the build tree. Installed
 * (`meson install`, docs/install.md), it takes each from a directory
 * relative to its own: the prefix can be moved, and an installed binary
 * never touches the source tree it was built from. The relative paths come
 * from the directory options at configure time (cb_config.h).
 *
 * Lookup of FILE in a resource, first hit wins:
 *   1. the directory named by the resource's environment variable, when set
 *      and not empty: then nothing else (CKPTBENCH_PLOTS, CKPTBENCH_PEERS,
 *      CKPTBENCH_TP_RULES; the module has its own file override,
 *      CKPTBENCH_TORCH_MODULE, in loaders/libtorch.c);
 *   2. when the binary (/proc/self/exe) lies inside the build directory it
 *      was built in: the source tree's plots/, loaders/peers/ or
 *      datasets/tp-rules/, or the build tree's loaders/torch/;
 *   3. relative to the binary's directory, as installed:
 *      ../share/ckptbench/plots, ../libexec/ckptbench/peers,
 *      ../<libdir>/ckptbench, ../share/ckptbench/tp-rules (for the default
 *      directory options).
 * Stateless and thread-safe; costs a readlink and a few stat calls.
 */
#ifndef CB_RESOURCES_H
#define CB_RESOURCES_H

#include <stddef.h>

#include "error.h"

enum cb_resource {
	CB_RES_PLOTS,    /* the gnuplot templates (*.gp) */
	CB_RES_PEERS,    /* the peer programs (python-peer, peer.py, ...) */
	CB_RES_MODULE,   /* the libtorch module (ckptbench-torch.so) */
	CB_RES_TP_RULES, /* the tensor-parallel rules files (*.rules) */
};

/* Finds `file` (a plain name) of resource `res` and writes its path into
 * path[size]. CB_OK; else CB_EUNAVAILABLE, with `path` empty and a one-line
 * message naming the file and every directory looked in ("gnuplot template
 * not found in /src/plots or /opt/cb/share/ckptbench/plots (set
 * CKPTBENCH_PLOTS)"). */
int cb_resource_find(enum cb_resource res, const char *file, char *path, size_t size,
		     struct cb_error *err);

#endif
