/* test-mapfile: the model as views into the mapped file, every page read
 * inside the load, so the peak shows as file-backed (RssFile), not anon. */
#include "test_loaders.h"

static int mapfile_open(const struct cb_loader *self, void *priv, const struct cb_load_ctx *ctx,
			struct cb_error *err)
{
	(void)self;
	(void)priv, (void)ctx, (void)err;
	return CB_OK;
}

static int mapfile_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
			struct cb_error *err)
{
	return cb_test_map_model(priv, ctx, model, CB_TEST_MAP_TOUCH, err);
}

static void mapfile_close(void *priv)
{
	cb_test_map_free(priv);
}

const struct cb_loader cb_loader_test_mapfile = {
	.abi = CB_LOADER_ABI,
	.name = "test-mapfile",
	.summary = "test: map the file shared and touch every page (file-backed memory)",
	.format = CB_FORMAT_SAFETENSORS,
	.device = CB_DEVICE_CPU,
	.caps = CB_CAP_HOST_MEM | CB_CAP_ZERO_COPY,
	.opts_size = 0,
	.priv_size = sizeof(struct cb_test_map),
	.open = mapfile_open,
	.load = mapfile_load,
	.close = mapfile_close,
};
