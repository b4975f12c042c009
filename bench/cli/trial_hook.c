/* The hook `trial` calls after its load (cli.h, trial.h): none in the
 * shipped binary. A test binary that wants one (ckptbench-slowable) links
 * its own definition of cb_trial_after_load (tests/slowdown.c) as an
 * object ahead of libcbcli.a, so the linker never pulls this file there. */
#include "cli.h"

#include <stddef.h>

cb_trial_hook *const cb_trial_after_load = NULL;
