/* What a CI job needs from `run`: the fixed "ci" preset (run's --preset,
 * docs/cli.md, one more name). `ckptbench run --preset ci` and
 * `ckptbench ab --base A --head B --preset ci` run the same small matrix on
 * every commit, so their results files compare cell for cell. */
#ifndef CB_CI_H
#define CB_CI_H

struct cb_run_config;

#define CB_CI_PRESET "ci"

/* Turns --preset ci into the matrix: every C CPU loader of ckptbench's own
 * (not the peers nor the libtorch module's loaders, which measure an
 * installed library; --loaders still chooses others), llama-shaped models of 64 MiB
 * and 256 MiB (generated where missing), cold and warm, 10 repeats after
 * 1 warm-up (run's defaults; --repeat, --warmup, --sizes, --cache and
 * --device given on the command line still win), and no calibration: the
 * verdicts do not use the ceilings, and measuring them takes longer than
 * the matrix on a small machine. Returns 0, or 3 when out of memory. */
int cb_run_apply_ci_preset(struct cb_run_config *cfg);

#endif
