/* The "ci" preset of run; see ci.h. */
#include "ci.h"

#include <stdbool.h>

#include "loader.h"
#include "run_plan.h"

int cb_run_apply_ci_preset(struct cb_run_config *cfg)
{
	cfg->preset = "llama";
	if (cfg->sizes.n == 0 &&
	    (cb_strlist_add(&cfg->sizes, "64M") != 0 || cb_strlist_add(&cfg->sizes, "256M") != 0))
		return 3;
	if (!cfg->device)
		cfg->device = "cpu";
	/* ckptbench's own C CPU loaders: not the peers nor the libtorch module's
	 * loaders, which measure an installed library (importing torch or
	 * loading libtorch in every trial takes the matrix from under two
	 * minutes to over eight on the development VM); --loaders adds them. */
	size_t n;
	const struct cb_loader *const *all = cb_loader_list(&n);
	bool choose = cfg->loader_specs.n == 0; /* --loaders still wins */
	for (size_t i = 0; choose && i < n; i++)
		if (all[i]->device == CB_DEVICE_CPU &&
		    !(all[i]->caps & (CB_CAP_PEER | CB_CAP_MODULE)) &&
		    cb_strlist_add(&cfg->loader_specs, all[i]->name) != 0)
			return 3;
	cfg->calibrate = false;
	return 0;
}
