/* Fuzz target: the restricted unpickler. The first byte picks the mode
 * (zip data.pkl or legacy persistent ids), the rest is the pickle. An
 * accepted pickle has its value tree walked, so that a bad pointer in it
 * shows under ASan. */
#include <stdbool.h>

#include "fuzz.h"
#include "unpickle.h"

/* Visits every value reachable from v (bounded: the tree may share nodes
 * through the memo, so the count of visits is capped, not the depth alone). */
static void walk(const struct cb_pk_value *v, unsigned depth, size_t *budget)
{
	if (!v || depth > CB_PK_MAX_DEPTH + 8 || *budget == 0)
		return;
	(*budget)--;
	switch (v->type) {
	case CB_PK_TUPLE:
	case CB_PK_LIST:
	case CB_PK_SET:
		for (size_t i = 0; i < v->u.seq.n; i++)
			walk(v->u.seq.items[i], depth + 1, budget);
		break;
	case CB_PK_DICT:
		for (size_t i = 0; i < 2 * v->u.dict.n; i++)
			walk(v->u.dict.kv[i], depth + 1, budget);
		break;
	case CB_PK_TENSOR:
		/* Reading every dimension: a shape or stride array shorter than
		 * its rank shows under ASan. (Whether the view fits its storage
		 * is the inspect target's to find: hashing gathers it.) */
		for (uint32_t d = 0; d < v->u.tensor->rank; d++)
			if (v->u.tensor->stride[d] < 0)
				__builtin_trap();
		break;
	case CB_PK_STR:
	case CB_PK_BYTES:
		if (v->u.str.len && !v->u.str.s)
			__builtin_trap();
		break;
	default: break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool truncated = false;
	struct cb_pk_options opt = {.path = "fuzz.pkl",
				    .label = "data.pkl",
				    .legacy = data[0] & 1,
				    .truncated_out = &truncated};
	struct cb_error err = CB_ERROR_INIT;
	struct cb_pickle *p = NULL;
	if (cb_unpickle(data + 1, size - 1, &opt, &p, &err) != CB_OK) {
		if (err.code == CB_OK || !err.msg[0])
			__builtin_trap();
		return 0;
	}
	if (p->consumed > size - 1)
		__builtin_trap();
	size_t budget = 1u << 20;
	walk(p->root, 0, &budget);
	cb_pickle_free(p);
	return 0;
}
