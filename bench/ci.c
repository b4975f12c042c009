/* The "ci" preset of run; see ci.h. */
#include "ci.h"

#include "run_plan.h"

int cb_run_apply_ci_preset(struct cb_run_config *cfg)
{
	cfg->preset = "llama";
	if (cfg->sizes.n == 0 && (cb_strlist_add(&cfg->sizes, "64M") != 0 ||
				  cb_strlist_add(&cfg->sizes, "256M") != 0))
		return 3;
	if (!cfg->device)
		cfg->device = "cpu";
	cfg->calibrate = false;
	return 0;
}
