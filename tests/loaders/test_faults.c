/* Loaders that fail on purpose, one way each, so that every outcome the
 * harness records has a test:
 *   test-crash      dies of SIGSEGV in the middle of the load
 *   test-sleep      never finishes (the trial must end as a timeout)
 *   test-hog        allocates and touches :bytes, 1 MiB at a time, then
 *                   waits (with --mem-limit below that: over-mem-limit)
 *   test-wrongbyte  loads the model correctly, then changes one byte
 *   test-garbage    writes :kind of garbage where the report goes (fd 3,
 *                   the report pipe `run` gives every trial), then exits
 *                   before the real report: text (not JSON), array (JSON
 *                   but not an object), outcome (an unknown outcome)
 *   test-unsupported cannot read the checkpoint (CB_EUNSUPPORTED), as
 *                   libtorch-pickle-load cannot read an OrderedDict
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_loaders.h"

static int nop_open(const struct cb_loader *self, void *priv, const struct cb_load_ctx *ctx,
		    struct cb_error *err)
{
	(void)self;
	(void)priv, (void)ctx, (void)err;
	return CB_OK;
}

static void map_close(void *priv)
{
	cb_test_map_free(priv);
}

static int crash_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
		      struct cb_error *err)
{
	(void)priv, (void)model, (void)err;
	cb_loader_phase(ctx, CB_PHASE_READ);
	signal(SIGSEGV, SIG_DFL);
	raise(SIGSEGV);
	return CB_EINTERNAL; /* not reached */
}

static int sleep_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
		      struct cb_error *err)
{
	(void)priv, (void)model, (void)err;
	cb_loader_phase(ctx, CB_PHASE_READ);
	while (pause() == -1) /* pause only ever returns -1 */
		;
	return CB_EINTERNAL; /* not reached */
}

struct hog_opts {
	uint64_t bytes;
};

static const struct cb_loader_opt hog_opts[] = {
	{"bytes", CB_OPT_U64, offsetof(struct hog_opts, bytes), 1, UINT64_C(1) << 40, "1G",
	 "bytes to allocate and touch before waiting"},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

/* Never returns: the harness must kill it. The memory is never freed. */
static int hog_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
		    struct cb_error *err)
{
	const struct hog_opts *o = ctx->opts;
	(void)priv, (void)model;
	cb_loader_phase(ctx, CB_PHASE_INIT);
	for (uint64_t done = 0; done < o->bytes; done += 1u << 20) {
		char *chunk = malloc(1u << 20);
		if (!chunk)
			return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "malloc failed");
		memset(chunk, 1, 1u << 20);
		/* The chunk escapes, so the compiler cannot drop the allocation. */
		__asm__ volatile("" : : "r"(chunk) : "memory");
	}
	while (pause() == -1) /* pause only ever returns -1 */
		;
	return CB_EINTERNAL; /* not reached */
}

static int wrongbyte_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
			  struct cb_error *err)
{
	int rc = cb_test_map_model(priv, ctx, model, CB_TEST_MAP_PRIVATE, err);
	for (size_t i = 0; rc == CB_OK && i < model->n; i++)
		if (model->tensors[i].nbytes) {
			((unsigned char *)model->tensors[i].data)[model->tensors[i].nbytes / 2] ^=
				1;
			break;
		}
	return rc;
}

struct garbage_opts {
	const char *kind;
};

static const struct cb_loader_opt garbage_opts[] = {
	{"kind", CB_OPT_STRING, offsetof(struct garbage_opts, kind), 0, 0, "text",
	 "text, array or outcome"},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};

static int garbage_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
			struct cb_error *err)
{
	const struct garbage_opts *o = ctx->opts;
	(void)priv, (void)model, (void)err;
	const char *line = "\x01\xffthis is not a report\n";
	if (strcmp(o->kind, "array") == 0)
		line = "[1, 2, 3]\n";
	else if (strcmp(o->kind, "outcome") == 0)
		line = "{\"outcome\": \"splendid\", \"verified\": true}\n";
	ssize_t put = write(3, line, strlen(line));
	_exit(put < 0 ? 1 : 0);
}

static int unsupported_load(void *priv, const struct cb_load_ctx *ctx, struct cb_model *model,
			    struct cb_error *err)
{
	(void)priv, (void)model;
	return CB_FAIL(err, CB_EUNSUPPORTED, ctx->path, NULL, "this loader reads no such file");
}

#define TEST_LOADER(id, lname, text, load_fn, opt_table, opt_size) \
	const struct cb_loader cb_loader_##id = {                  \
		.abi = CB_LOADER_ABI,                              \
		.name = lname,                                     \
		.summary = text,                                   \
		.format = CB_FORMAT_SAFETENSORS,                   \
		.device = CB_DEVICE_CPU,                           \
		.caps = CB_CAP_HOST_MEM,                           \
		.opts = opt_table,                                 \
		.opts_size = opt_size,                             \
		.priv_size = sizeof(struct cb_test_map),           \
		.open = nop_open,                                  \
		.load = load_fn,                                   \
		.close = map_close,                                \
	};

TEST_LOADER(test_crash, "test-crash", "test: dies of SIGSEGV during the load", crash_load, NULL, 0)
TEST_LOADER(test_sleep, "test-sleep", "test: never finishes the load", sleep_load, NULL, 0)
TEST_LOADER(test_hog, "test-hog", "test: allocates :bytes then waits", hog_load, hog_opts,
	    sizeof(struct hog_opts))
TEST_LOADER(test_wrongbyte, "test-wrongbyte", "test: loads the model, then flips one bit",
	    wrongbyte_load, NULL, 0)
TEST_LOADER(test_garbage, "test-garbage", "test: writes garbage to the report pipe", garbage_load,
	    garbage_opts, sizeof(struct garbage_opts))
TEST_LOADER(test_unsupported, "test-unsupported", "test: cannot read the checkpoint",
	    unsupported_load, NULL, 0)
