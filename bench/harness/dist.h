/* Many ranks: `run --mpi` as one rank of an MPI job (docs/mpi.md).
 *
 * Every rank runs the same matrix in the same order (the order seed is
 * rank 0's); per trial the node leaders (local rank 0 of each node, or of
 * each --node-groups block) put the cache in its state, every rank starts
 * its trial child at one gate, and the ranks' records are gathered to rank
 * 0, the only rank that writes the results file.
 *
 * dist.c is the only file that includes <mpi.h>; in a build without MPI it
 * is a stub whose cb_dist_start fails with CB_EUNAVAILABLE, and
 * cb_dist_available() says so first (the CLI prints how to get MPI).
 * dist_record.c holds what needs no MPI: the node's memory sampler, the
 * trial's combined record and the cell's rank figures.
 *
 * Ownership: struct cb_dist is made by cb_dist_start and freed by
 * cb_dist_end; MPI is called from the thread that called cb_dist_start
 * only (the node sampler's thread never calls it). */
#ifndef CB_DIST_H
#define CB_DIST_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* How the checkpoint is shared out (--dist). */
enum cb_dist_mode {
	CB_DIST_REPLICATE, /* every rank loads the whole model */
	CB_DIST_TP,        /* rank r of N loads its tensor-parallel slice: --tp N:r */
	CB_DIST_FILES,     /* the files handed out round-robin: --shards i,j,... */
};

const char *cb_dist_mode_name(enum cb_dist_mode m);
/* 0, or -1 when `text` names no mode. */
int cb_dist_mode_parse(const char *text, enum cb_dist_mode *out);

/* Whether this build has MPI (cb_config.h CB_HAVE_MPI). */
bool cb_dist_available(void);

/* What to do to get MPI, one line without a newline. */
#define CB_DIST_HOWTO                                                                       \
	"this ckptbench was built without MPI: apt-get install openmpi-bin libopenmpi-dev " \
	"and rebuild (meson setup --reconfigure BUILD -Dmpi=enabled; ninja -C BUILD)"

struct cb_dist;

/* Where this rank is. `node` is the node's index (0 .. nodes-1, in the
 * order of the nodes' lowest ranks); `gpus_visible` counts the GPUs this
 * process may use (CUDA_VISIBLE_DEVICES, else /proc/driver/nvidia/gpus; 0
 * without any): a GPU loader's trial takes the one of its local rank
 * modulo that (run.c). */
struct cb_dist_where {
	int rank, size;
	int local_rank, local_size;
	int node, nodes;
	int gpus_visible;
	char host[256];
};

/* Gate flags, OR-ed over every rank's arrival and handed back to all. */
enum {
	CB_GATE_STOP = 1u << 0,        /* a rank was interrupted or failed: stop the run */
	CB_GATE_UNSUPPORTED = 1u << 1, /* the trial came back unsupported (run.c) */
	CB_GATE_ROOT_OK = 1u << 2,     /* rank 0's step succeeded */
	CB_GATE_CALIBRATED = 1u << 3,  /* rank 0 holds a calibration (paired reads wanted) */
};

/* Starts MPI and finds this rank's place: node communicator
 * (MPI_COMM_TYPE_SHARED, or `node_groups` contiguous blocks when nonzero),
 * the clock offset to rank 0 (MPI ping-pong on CLOCK_REALTIME), every
 * rank's pid and host (for the watchdog's messages), and broadcasts rank
 * 0's *order_seed. Once MPI is up, *out is set even when it fails, so the
 * caller knows the rank (only rank 0 reports) and ends it with
 * cb_dist_end. */
int cb_dist_start(unsigned node_groups, uint64_t *order_seed, struct cb_dist **out,
		  struct cb_error *err);

/* Ends MPI: MPI_Finalize when `clean`; otherwise nothing (a stopped run has
 * requests in flight that would hang Finalize, and mpirun is taking the job
 * down anyway). Frees d. */
void cb_dist_end(struct cb_dist *d, bool clean);

const struct cb_dist_where *cb_dist_where(const struct cb_dist *d);

/* Every rank's node index (size entries). */
const int *cb_dist_node_of(const struct cb_dist *d);

/* The pids of the ranks of this rank's node (local_size entries); only a
 * node leader has them, NULL elsewhere. */
const pid_t *cb_dist_node_pids(const struct cb_dist *d);

/* CLOCK_REALTIME on rank 0's clock, in seconds, for a CLOCK_MONOTONIC time
 * of this rank's machine: the common clock of the ranks' starts and ends. */
double cb_dist_common_time(const struct cb_dist *d, double mono_s);

/* A gate: every rank arrives (with *flags) and waits until every rank has
 * arrived; then *flags is the OR of every rank's. `deadline_s` (seconds
 * from now) is the watchdog: when it passes on rank 0 with ranks missing,
 * the abort hook runs and MPI_Abort ends the job; other ranks wait twice
 * as long, so that rank 0's message is the one seen. Waiting ranks sleep
 * a millisecond between polls, so as not to take a CPU from loads still
 * running; the ranks' common start is cb_dist_start_at's, not a gate's.
 * When the stop flag (cb_dist_set_stop) becomes nonzero while waiting,
 * it returns CB_OK at once with CB_GATE_STOP set, and on rank 0
 * cb_dist_missing says who had not arrived. */
int cb_dist_gate(struct cb_dist *d, const char *what, double deadline_s, unsigned *flags,
		 struct cb_error *err);

/* A common start: rank 0 picks a time lead_s ahead on its clock and
 * shares it; every rank sleeps until then on its own clock (the offset
 * applied) and returns. Sleeping to a time, not leaving a gate, puts the
 * ranks' starts within the timer's slack even where ranks outnumber CPUs
 * (a spinning gate's exits then wait on the scheduler's time slices). */
int cb_dist_start_at(struct cb_dist *d, double lead_s, double deadline_s, struct cb_error *err);

/* A common time `ahead_s` after the last common start, on this rank's
 * CLOCK_MONOTONIC (what the ranks' trial children are told to start their
 * loads at: `ckptbench trial --start-at`); 0 before any common start. */
double cb_dist_start_mono(const struct cb_dist *d, double ahead_s);

/* The ranks that had not arrived at the last gate rank 0 waited at, as
 * text ("rank 2 (pid 1234 on host)"); "" when none. */
const char *cb_dist_missing(const struct cb_dist *d);

/* On rank 0 after a stop: the ranks that had not arrived at the gate it
 * waited at, or when it was not waiting at one (it was running its own
 * trial), the ranks on its machine whose process is gone; "" when none is
 * known (a rank of another machine is not looked at). */
const char *cb_dist_find_lost(struct cb_dist *d);

/* The flag every wait of the job polls besides its deadline (run.c's
 * SIGINT/SIGTERM flag): once it is set, a wait returns at once, so that
 * rank 0 has its second between mpirun's SIGTERM and its SIGKILL to write
 * the results. */
void cb_dist_set_stop(struct cb_dist *d, volatile sig_atomic_t *stop);

/* Gathers each rank's text to rank 0 (MPI_Igatherv, with the watchdog's
 * deadline). On rank 0, *texts_out gets size strings (owned; free each and
 * the array); NULL elsewhere, and everywhere when the stop flag was set
 * while waiting (the caller looks at its flag). */
int cb_dist_gather(struct cb_dist *d, const char *text, double deadline_s, char ***texts_out,
		   struct cb_error *err);

/* Broadcasts len bytes from rank 0 (with the watchdog's deadline); the
 * bytes are left as they were when the stop flag was set while waiting. */
int cb_dist_share(struct cb_dist *d, void *buf, size_t len, double deadline_s,
		  struct cb_error *err);

/* Run by rank 0 when a gate's deadline passes, before MPI_Abort: record the
 * error and write the results. `why` names the gate and the missing ranks. */
typedef void cb_dist_abort_fn(void *ctx, const char *why);
void cb_dist_on_abort(struct cb_dist *d, cb_dist_abort_fn *fn, void *ctx);

/* ------------------------------------------------- without MPI (dist_record.c) */

/* The files (indexes into a format's file list of n_files) that `rank`
 * of `size` loads in `mode`: every file, or in files mode those whose
 * index is rank modulo size. *n_out may be 0 (more ranks than files). */
size_t cb_dist_rank_files(enum cb_dist_mode mode, size_t n_files, int rank, int size,
			  size_t *idx_out);

/* The files node `node` prepares in a cell: the union of the files of the
 * ranks on node `node` (or with `reorder` and a warm cell, on node
 * node - 1: node k reads the files node k + 1 warmed). */
size_t cb_dist_node_files(enum cb_dist_mode mode, size_t n_files, const int *node_of, int size,
			  int node, int nodes, bool reorder, bool cold, bool *want);

/* The node's memory through a trial, sampled by its leader in a thread:
 * the sum of RssAnon of every process under the node's ranks (the trial
 * children and theirs), the page-cache residency of the checkpoint's files
 * (cb_cache_residency), and MemAvailable's drop from the start. */
struct cb_node_figures {
	uint64_t peak_anon_bytes;
	uint64_t peak_file_bytes;         /* resident bytes of the files, at most */
	uint64_t memavailable_drop_bytes; /* start minus the lowest seen */
	size_t samples;
	bool valid;            /* at least one sample */
	size_t prepared_files; /* the files the leader put in the cache state (run.c) */
};

struct cb_node_sampler;

/* Starts sampling every interval_ms (never 0) until stopped. Copies what
 * it is given. NULL when the thread cannot be started. */
struct cb_node_sampler *cb_node_sampler_start(const pid_t *roots, size_t n_roots,
					      const char *const *paths, size_t n_paths,
					      uint64_t files_bytes, unsigned interval_ms);
/* Stops the thread, fills *out, frees s. */
void cb_node_sampler_stop(struct cb_node_sampler *s, struct cb_node_figures *out);

/* A rank's entry for the gather, as JSON text (owned): where it ran, the
 * bytes it loaded, its spawn, load start and end on the common clock, its
 * trial record (stolen) and, from a node leader, its node's figures
 * (NULL elsewhere). */
char *cb_dist_entry_text(const struct cb_dist_where *w, const char *device, double bytes,
			 double spawn, double start, double end, json_t *record,
			 const struct cb_node_figures *node);

/* On rank 0: the trial's record from every rank's entry text (size of
 * them): the record of the first rank that failed, else of the slowest
 * rank (the one whose load bounds the trial), with "ranks" (per rank and
 * per node) and the aggregate figures added (docs/results-schema.md).
 * NULL when an entry is not JSON. New reference. */
json_t *cb_dist_combine(char *const *texts, size_t n, double model_bytes);

/* Adds the rank figures to a cell's summary `s` (results.c calls it for a
 * cell that has "ranks"): their medians over the ok trials, and the cell's
 * ranks.per_rank. */
void cb_dist_summarize(json_t *cell, json_t *s);

/* A cell's "ranks" object before any trial. New reference. */
json_t *cb_dist_cell_json(const struct cb_dist_where *w, enum cb_dist_mode mode);

#endif
