/* test-anon: exactly `bytes` of anonymous memory, every page touched, held
 * until close; the model itself is views into a mapping it never touches,
 * so the anonymous peak above baseline should be `bytes` and no more. */
#include <string.h>
#include <sys/mman.h>

#include "test_loaders.h"

struct anon_opts {
	uint64_t bytes;
};

struct anon {
	struct cb_test_map map;
	void *block;
	size_t len;
};

static const struct cb_loader_opt anon_opts[] = {
	{"bytes", CB_OPT_U64, offsetof(struct anon_opts, bytes), 1, UINT64_C(1) << 40, "64M",
	 "anonymous bytes to allocate and touch"},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

static int anon_open(const struct cb_loader *self, void *priv, const struct cb_load_ctx *ctx,
		     struct cb_error *err)
{
	(void)self;
	(void)priv, (void)ctx, (void)err;
	return CB_OK;
}

static int anon_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
		     struct cb_error *err)
{
	struct anon *a = priv;
	const struct anon_opts *o = ctx->opts;
	cb_loader_phase(ctx, CB_PHASE_INIT);
	/* mmap, not malloc: no allocator slack, exactly these pages. */
	a->block = mmap(NULL, (size_t)o->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	if (a->block == MAP_FAILED) {
		a->block = NULL;
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "cannot map %llu bytes",
			       (unsigned long long)o->bytes);
	}
	a->len = (size_t)o->bytes;
	memset(a->block, 0x5a, a->len);
	return cb_test_map_model(&a->map, ctx, model, 0, err);
}

static void anon_close(void *priv)
{
	struct anon *a = priv;
	if (a->block)
		munmap(a->block, a->len);
	cb_test_map_free(&a->map);
}

const struct cb_loader cb_loader_test_anon = {
	.abi = CB_LOADER_ABI,
	.name = "test-anon",
	.summary = "test: allocate and touch exactly :bytes anonymous, model as untouched views",
	.format = CB_FORMAT_SAFETENSORS,
	.device = CB_DEVICE_CPU,
	.caps = CB_CAP_HOST_MEM,
	.opts = anon_opts,
	.opts_size = sizeof(struct anon_opts),
	.priv_size = sizeof(struct anon),
	.open = anon_open,
	.load = anon_load,
	.close = anon_close,
};
