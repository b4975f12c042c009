/* The test-only loaders, appended to the registry of the ckptbench-test
 * binary (loaders/registry.c compiled with CB_TEST_REGISTRY). They exist to
 * check the harness: what it measures and how it records failures. The
 * shipped binary never contains them. */
#ifndef CB_TEST_LOADERS_H
#define CB_TEST_LOADERS_H

#include "loader.h"

#define CB_TEST_LOADERS(X)  \
	X(test_anon)        \
	X(test_mapfile)     \
	X(test_crash)       \
	X(test_sleep)       \
	X(test_hog)         \
	X(test_wrongbyte)   \
	X(test_garbage)     \
	X(test_unsupported) \
	X(skeleton)

/* Shared by the test loaders: the checkpoint mapped, each model tensor a
 * view into the mapping. CB_TEST_MAP_TOUCH reads one byte per page inside
 * the load; CB_TEST_MAP_PRIVATE maps copy-on-write, so a loader may change
 * its bytes without touching the file. */
enum { CB_TEST_MAP_TOUCH = 1, CB_TEST_MAP_PRIVATE = 2 };
struct cb_test_map {
	struct cb_ckpt *ckpt;
	void **maps;
	size_t *lens;
	size_t n;
};

int cb_test_map_model(struct cb_test_map *m, const struct cb_load_ctx *ctx, struct cb_model *model,
		      unsigned flags, struct cb_error *err);
void cb_test_map_free(struct cb_test_map *m);

#endif
