/* pickle's host half, `model = M(); model.load_state_dict(torch.load(p))`
 * (pickle.c says how, phase by phase), shared with pickle-gpu, which is the
 * same path followed by `model.to("cuda")`: one implementation, so the two
 * cannot drift apart. Both loaders take its options table.
 */
#ifndef CB_PICKLE_HOST_H
#define CB_PICKLE_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"
#include "engine/read_engine.h"
#include "error.h"
#include "host.h"
#include "loader.h"
#include "storage_records.h"

struct cb_pickle_opts {
	uint64_t threads; /* initialiser and copy threads */
	bool thp;
};

/* Its options, "threads" and "thp", over struct cb_pickle_opts. */
extern const struct cb_loader_opt cb_pickle_opts[];

/* One load_state_dict copy: architecture tensor -> its record. */
struct cb_pickle_copy {
	size_t tensor; /* index into the architecture */
	const struct cb_ckpt_tensor *src;
	size_t record; /* index into records */
};

/* The state, zeroed before the load; cb_pickle_host_free frees it whatever
 * failed. After a load the model's tensors are in `model` (host memory). */
struct cb_pickle_host {
	struct cb_engine engine; /* the records' reader: one thread, as torch.load */
	struct cb_host_model model;
	struct cb_ckpt *ckpt;
	struct cb_storage_record *records; /* sorted by (file, start), one per record */
	void **bufs;                       /* per record: its buffer while its file is loaded */
	size_t n_records;
	struct cb_pickle_copy *copies; /* grouped by file */
	size_t n_copies;
	struct cb_model *dest;
	const struct cb_slice_plan *slice; /* a partial load's: narrow, then copy_ */
	size_t copy_from;                  /* the slice of copies[] being run */
	uint64_t strided;                  /* views gathered rather than memcpy'd */
};

/* Set-up (a loader's open(), not timed): the reader. */
CB_NODISCARD int cb_pickle_host_open(struct cb_pickle_host *s, struct cb_error *err);

/* M(), torch.load and load_state_dict: phases init, read and copy entered;
 * returns in the copy phase with every tensor of `model` in host memory and
 * the loaded storages freed. */
CB_NODISCARD int cb_pickle_host_load(struct cb_pickle_host *s, const struct cb_load_ctx *ctx,
				     const struct cb_pickle_opts *o, struct cb_model *model,
				     struct cb_error *err);

/* "N records read into fresh buffers, ..." for the loader's mode. */
void cb_pickle_host_mode(const struct cb_pickle_host *s, char *buf, size_t len);

void cb_pickle_host_free(struct cb_pickle_host *s);

#endif
