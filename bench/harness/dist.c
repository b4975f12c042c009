/* Many ranks under MPI (see dist.h; docs/mpi.md). The only file that
 * includes <mpi.h>; without MPI in the build, the stubs at the end. */
#include "cb_config.h"
#include "dist.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cb_dist_mode_name(enum cb_dist_mode m)
{
	switch (m) {
	case CB_DIST_REPLICATE: return "replicate";
	case CB_DIST_TP: return "tp";
	case CB_DIST_FILES: return "files";
	}
	return "?";
}

int cb_dist_mode_parse(const char *text, enum cb_dist_mode *out)
{
	static const enum cb_dist_mode all[] = {CB_DIST_REPLICATE, CB_DIST_TP, CB_DIST_FILES};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		if (strcmp(text, cb_dist_mode_name(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	return -1;
}

bool cb_dist_available(void)
{
	return CB_HAVE_MPI;
}

#if CB_HAVE_MPI

#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "sampler.h"

/* Message tags of the gates and the clock's ping-pong; collectives use
 * their own matching, so these only need to differ from each other. */
#define TAG_ARRIVE 7101
#define TAG_RELEASE 7102
#define TAG_PING 7103
/* Ping-pong rounds per rank: the offset is taken from the fastest. */
#define PING_ROUNDS 16

/* What rank 0 knows of every rank, for the watchdog's messages. */
struct rank_info {
	int32_t pid;
	int32_t node;
	char host[64];
};

struct cb_dist {
	struct cb_dist_where w;
	MPI_Comm node_comm;
	int *node_of;          /* size entries */
	pid_t *node_pids;      /* the leader's: its node's ranks' pids */
	struct rank_info *all; /* rank 0's: every rank */
	double offset;         /* rank 0's CLOCK_REALTIME minus this rank's */
	double start_mono;     /* the last common start on CLOCK_MONOTONIC; 0: none */
	uint64_t seq;          /* gates passed, the same on every rank */
	char missing[2048];
	cb_dist_abort_fn *abort_fn;
	void *abort_ctx;
	volatile sig_atomic_t *stop; /* run.c's signal flag; NULL: none */
};

static double realtime_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* GPUs this process may use: CUDA_VISIBLE_DEVICES's entries where it is
 * set, else the driver's list; asking the CUDA runtime would make a
 * context in every rank's parent, which holds device memory the trials
 * then lack. */
static int gpus_visible(void)
{
	const char *v = getenv("CUDA_VISIBLE_DEVICES");
	int n = 0;
	if (v) {
		for (const char *p = v; *p;) {
			size_t len = strcspn(p, ",");
			n += len > 0;
			p += len + (p[len] == ',');
		}
		return n;
	}
	DIR *dir = opendir("/proc/driver/nvidia/gpus");
	if (!dir)
		return 0;
	for (struct dirent *e; (e = readdir(dir));)
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
}

/* The offset of rank 0's CLOCK_REALTIME to this rank's, by ping-pong: the
 * round with the shortest round trip bounds the error by half of it, so
 * ranks on machines whose clocks NTP has not aligned still share one. */
static void measure_offset(struct cb_dist *d)
{
	int rank = d->w.rank;
	if (rank == 0) {
		for (int r = 1; r < d->w.size; r++)
			for (int i = 0; i < PING_ROUNDS; i++) {
				double t1, t0;
				MPI_Recv(&t1, 1, MPI_DOUBLE, r, TAG_PING, MPI_COMM_WORLD,
					 MPI_STATUS_IGNORE);
				t0 = realtime_now();
				MPI_Send(&t0, 1, MPI_DOUBLE, r, TAG_PING, MPI_COMM_WORLD);
			}
		d->offset = 0;
		return;
	}
	double best_rtt = INFINITY;
	for (int i = 0; i < PING_ROUNDS; i++) {
		double t1 = realtime_now(), t0, t2;
		MPI_Send(&t1, 1, MPI_DOUBLE, 0, TAG_PING, MPI_COMM_WORLD);
		MPI_Recv(&t0, 1, MPI_DOUBLE, 0, TAG_PING, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
		t2 = realtime_now();
		if (t2 - t1 < best_rtt) {
			best_rtt = t2 - t1;
			d->offset = t0 - (t1 + t2) / 2;
		}
	}
}

/* The node communicator, the node index of every rank and the leaders'
 * pid lists. Pseudo-nodes (--node-groups K) are contiguous blocks of
 * ranks, so that K groups on one machine take the paths K machines would. */
static int find_nodes(struct cb_dist *d, unsigned groups, struct cb_error *err)
{
	int rank = d->w.rank, size = d->w.size;
	if (groups)
		MPI_Comm_split(MPI_COMM_WORLD, (int)((long long)rank * groups / size), rank,
			       &d->node_comm);
	else
		MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL,
				    &d->node_comm);
	MPI_Comm_rank(d->node_comm, &d->w.local_rank);
	MPI_Comm_size(d->node_comm, &d->w.local_size);
	/* The leaders, in the order of their world ranks, number the nodes. */
	MPI_Comm leaders;
	MPI_Comm_split(MPI_COMM_WORLD, d->w.local_rank == 0 ? 0 : MPI_UNDEFINED, rank, &leaders);
	int node = 0, nodes = 0;
	if (leaders != MPI_COMM_NULL) {
		MPI_Comm_rank(leaders, &node);
		MPI_Comm_size(leaders, &nodes);
		MPI_Comm_free(&leaders);
	}
	MPI_Bcast(&node, 1, MPI_INT, 0, d->node_comm);
	MPI_Bcast(&nodes, 1, MPI_INT, 0, MPI_COMM_WORLD); /* rank 0 is a leader */
	d->w.node = node;
	d->w.nodes = nodes;
	d->node_of = calloc((size_t)size, sizeof *d->node_of);
	int32_t pid = (int32_t)getpid();
	int32_t *pids = calloc((size_t)d->w.local_size, sizeof *pids);
	if (!d->node_of || !pids) {
		free(pids);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	MPI_Allgather(&node, 1, MPI_INT, d->node_of, 1, MPI_INT, MPI_COMM_WORLD);
	MPI_Gather(&pid, 1, MPI_INT32_T, pids, 1, MPI_INT32_T, 0, d->node_comm);
	if (d->w.local_rank == 0) {
		d->node_pids = calloc((size_t)d->w.local_size, sizeof *d->node_pids);
		for (int i = 0; d->node_pids && i < d->w.local_size; i++)
			d->node_pids[i] = (pid_t)pids[i];
	}
	free(pids);
	if (d->w.local_rank == 0 && !d->node_pids)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	struct rank_info me = {.pid = pid, .node = node};
	/* a longer name is cut: it only labels the watchdog's messages */
	snprintf(me.host, sizeof me.host, "%.63s", d->w.host);
	if (rank == 0 && !(d->all = calloc((size_t)size, sizeof *d->all)))
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	MPI_Gather(&me, (int)sizeof me, MPI_BYTE, d->all, (int)sizeof me, MPI_BYTE, 0,
		   MPI_COMM_WORLD);
	return CB_OK;
}

int cb_dist_start(unsigned node_groups, uint64_t *order_seed, struct cb_dist **out,
		  struct cb_error *err)
{
	*out = NULL;
	int provided;
	/* FUNNELED: a node leader has its memory sampler's thread, which never
	 * calls MPI. */
	if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
		return CB_FAIL(err, CB_EENV, NULL, NULL, "MPI_Init_thread failed");
	struct cb_dist *d = calloc(1, sizeof *d);
	if (!d)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	MPI_Comm_rank(MPI_COMM_WORLD, &d->w.rank);
	MPI_Comm_size(MPI_COMM_WORLD, &d->w.size);
	if (gethostname(d->w.host, sizeof d->w.host - 1) != 0)
		snprintf(d->w.host, sizeof d->w.host, "?");
	/* From here on *out is set even on failure, so that the caller knows
	 * this rank's place (only rank 0 reports) and ends MPI. */
	*out = d;
	if (node_groups > (unsigned)d->w.size)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
			       "--node-groups %u is more than the %d ranks", node_groups,
			       d->w.size);
	int rc = find_nodes(d, node_groups, err);
	if (rc != CB_OK)
		return rc;
	d->w.gpus_visible = gpus_visible();
	measure_offset(d);
	MPI_Bcast(order_seed, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
	return CB_OK;
}

void cb_dist_end(struct cb_dist *d, bool clean)
{
	if (clean) {
		if (d && d->node_comm != MPI_COMM_NULL && d->node_comm)
			MPI_Comm_free(&d->node_comm);
		MPI_Finalize();
	}
	if (!d)
		return;
	free(d->node_of);
	free(d->node_pids);
	free(d->all);
	free(d);
}

const struct cb_dist_where *cb_dist_where(const struct cb_dist *d)
{
	return &d->w;
}

const int *cb_dist_node_of(const struct cb_dist *d)
{
	return d->node_of;
}

const pid_t *cb_dist_node_pids(const struct cb_dist *d)
{
	return d->node_pids;
}

double cb_dist_common_time(const struct cb_dist *d, double mono_s)
{
	return mono_s + (realtime_now() - cb_mono_now()) + d->offset;
}

void cb_dist_on_abort(struct cb_dist *d, cb_dist_abort_fn *fn, void *ctx)
{
	d->abort_fn = fn;
	d->abort_ctx = ctx;
}

const char *cb_dist_missing(const struct cb_dist *d)
{
	return d->missing;
}

const char *cb_dist_find_lost(struct cb_dist *d)
{
	if (d->w.rank != 0 || *d->missing)
		return d->missing;
	char host[64];
	snprintf(host, sizeof host, "%.63s", d->w.host);
	size_t len = 0;
	for (int r = 1; r < d->w.size; r++) {
		if (strcmp(d->all[r].host, host) != 0 || cb_process_alive((pid_t)d->all[r].pid) ||
		    len + 128 >= sizeof d->missing)
			continue;
		len += (size_t)snprintf(d->missing + len, sizeof d->missing - len,
					"%srank %d (pid %d on %s)", len ? ", " : "", r,
					(int)d->all[r].pid, d->all[r].host);
	}
	return d->missing;
}

enum wait_end { WAIT_DONE, WAIT_STOPPED, WAIT_EXPIRED, WAIT_LOST };

/* Rank 0: true when a rank of this machine is gone (d->missing names it):
 * with rq, at a gate whose rq[r - 1] is rank r's arrival, one that has not
 * arrived; without, any. */
static bool arrival_lost(struct cb_dist *d, MPI_Request *rq)
{
	char host[64];
	snprintf(host, sizeof host, "%.63s", d->w.host);
	size_t len = 0;
	d->missing[0] = '\0';
	for (int r = 1; r < d->w.size; r++) {
		int done = rq && rq[r - 1] == MPI_REQUEST_NULL;
		if (rq && !done)
			MPI_Test(&rq[r - 1], &done, MPI_STATUS_IGNORE);
		if (done || strcmp(d->all[r].host, host) != 0 ||
		    cb_process_alive((pid_t)d->all[r].pid) || len + 128 >= sizeof d->missing)
			continue;
		len += (size_t)snprintf(d->missing + len, sizeof d->missing - len,
					"%srank %d (pid %d on %s)", len ? ", " : "", r,
					(int)d->all[r].pid, d->all[r].host);
	}
	return len > 0;
}

/* Polls the requests until all complete, *stop is set or the deadline
 * passes. Ranks that wait long (for a slower rank's load) sleep a
 * millisecond between polls, so as not to take a CPU from the loads still
 * running. With `lost` (rank 0 only) it also looks, every 50 ms, for a
 * rank of this machine that died (at a gate, one not arrived): mpirun sends the others SIGTERM about
 * a second after a rank's death and SIGKILL milliseconds after that, too
 * soon to say anything; seen here, rank 0 has the time. */
enum watch { WATCH_NONE, WATCH_ARRIVALS, WATCH_ALL };

static enum wait_end wait_all(struct cb_dist *d, MPI_Request *rq, int n, double deadline_s,
			      volatile sig_atomic_t *stop, enum watch lost)
{
	lost = d->w.rank == 0 ? lost : WATCH_NONE;
	double now = cb_mono_now(), until = now + deadline_s, look = now + 0.05;
	for (;;) {
		int done = 0;
		MPI_Testall(n, rq, &done, MPI_STATUSES_IGNORE);
		if (done)
			return WAIT_DONE;
		if (stop && *stop)
			return WAIT_STOPPED;
		now = cb_mono_now();
		if (now > until)
			return WAIT_EXPIRED;
		if (lost && now > look) {
			if (arrival_lost(d, lost == WATCH_ARRIVALS ? rq : NULL))
				return WAIT_LOST;
			look = now + 0.05;
		}
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
}

/* Rank 0: which of the arrivals rq[r - 1] have not come, as text. */
static void note_missing(struct cb_dist *d, MPI_Request *rq)
{
	size_t len = 0;
	d->missing[0] = '\0';
	for (int r = 1; r < d->w.size; r++) {
		int done = 0;
		if (rq[r - 1] != MPI_REQUEST_NULL)
			MPI_Test(&rq[r - 1], &done, MPI_STATUS_IGNORE);
		else
			done = 1;
		if (done || len + 128 >= sizeof d->missing)
			continue;
		len += (size_t)snprintf(d->missing + len, sizeof d->missing - len,
					"%srank %d (pid %d on %s)", len ? ", " : "", r,
					(int)d->all[r].pid, d->all[r].host);
	}
}

/* The watchdog's end: say it once, let rank 0 keep what it has, stop the
 * job. MPI_Abort does not return. `deadline_s` 0: a rank died. */
static void expire(struct cb_dist *d, const char *what, double deadline_s)
{
	char why[2400];
	if (d->w.rank == 0 && deadline_s == 0)
		snprintf(why, sizeof why,
			 "%s died (its process is gone) while rank 0 waited for it at \"%s\"; "
			 "ending the job",
			 d->missing, what);
	else if (d->w.rank == 0)
		snprintf(why, sizeof why,
			 "%s did not reach \"%s\" within %.0f s (a hung or dead rank); "
			 "ending the job",
			 *d->missing ? d->missing : "a rank", what, deadline_s);
	else
		snprintf(why, sizeof why,
			 "rank %d: rank 0 did not pass \"%s\" within %.0f s; ending the job",
			 d->w.rank, what, deadline_s);
	if (d->w.rank == 0 && d->abort_fn)
		d->abort_fn(d->abort_ctx, why);
	fprintf(stderr, "ckptbench run: %s\n", why);
	fflush(stderr);
	MPI_Abort(MPI_COMM_WORLD, 3);
	_exit(3);
}

void cb_dist_set_stop(struct cb_dist *d, volatile sig_atomic_t *stop)
{
	d->stop = stop;
}

int cb_dist_gate(struct cb_dist *d, const char *what, double deadline_s, unsigned *flags,
		 struct cb_error *err)
{
	volatile sig_atomic_t *stop = d->stop;
	uint64_t seq = ++d->seq;
	int size = d->w.size;
	if (size == 1)
		return CB_OK;
	if (d->w.rank != 0) {
		uint64_t msg[2] = {seq, *flags}, back[2] = {0, 0};
		MPI_Request rq[2];
		MPI_Isend(msg, 2, MPI_UINT64_T, 0, TAG_ARRIVE, MPI_COMM_WORLD, &rq[0]);
		MPI_Irecv(back, 2, MPI_UINT64_T, 0, TAG_RELEASE, MPI_COMM_WORLD, &rq[1]);
		/* Twice rank 0's wait: its message, which names the missing
		 * rank, should be the one the user sees. */
		enum wait_end e = wait_all(d, rq, 2, 2 * deadline_s + 30, stop, WATCH_NONE);
		if (e == WAIT_EXPIRED)
			expire(d, what, 2 * deadline_s + 30);
		if (e == WAIT_STOPPED) {
			*flags |= CB_GATE_STOP;
			return CB_OK;
		}
		if (back[0] != seq)
			return CB_FAIL(err, CB_EINTERNAL, NULL, what,
				       "ranks out of step: gate %llu, rank 0 at %llu",
				       (unsigned long long)seq, (unsigned long long)back[0]);
		*flags = (unsigned)back[1];
		return CB_OK;
	}
	uint64_t(*in)[2] = calloc((size_t)size, sizeof *in);
	MPI_Request *rq = calloc((size_t)size, sizeof *rq);
	if (!in || !rq) {
		free(in);
		free(rq);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	for (int r = 1; r < size; r++)
		MPI_Irecv(in[r], 2, MPI_UINT64_T, r, TAG_ARRIVE, MPI_COMM_WORLD, &rq[r - 1]);
	enum wait_end e = wait_all(d, rq, size - 1, deadline_s, stop, WATCH_ARRIVALS);
	int rc = CB_OK;
	if (e == WAIT_LOST)
		expire(d, what, 0);
	if (e != WAIT_DONE)
		note_missing(d, rq);
	if (e == WAIT_EXPIRED)
		expire(d, what, deadline_s);
	if (e == WAIT_STOPPED) {
		*flags |= CB_GATE_STOP;
	} else {
		d->missing[0] = '\0';
		unsigned all = *flags;
		for (int r = 1; r < size; r++) {
			if (in[r][0] != seq && rc == CB_OK)
				rc = CB_FAIL(err, CB_EINTERNAL, NULL, what,
					     "ranks out of step: rank %d at gate %llu, not %llu", r,
					     (unsigned long long)in[r][0], (unsigned long long)seq);
			all |= (unsigned)in[r][1];
		}
		uint64_t back[2] = {seq, all};
		for (int r = 1; r < size; r++)
			MPI_Isend(back, 2, MPI_UINT64_T, r, TAG_RELEASE, MPI_COMM_WORLD,
				  &rq[r - 1]);
		if (wait_all(d, rq, size - 1, deadline_s, NULL, WATCH_NONE) == WAIT_EXPIRED)
			expire(d, what, deadline_s);
		*flags = all;
	}
	free(in);
	free(rq);
	return rc;
}

int cb_dist_start_at(struct cb_dist *d, double lead_s, double deadline_s, struct cb_error *err)
{
	double at = d->w.rank == 0 ? realtime_now() + lead_s : 0;
	int rc = cb_dist_share(d, &at, sizeof at, deadline_s, err);
	if (rc != CB_OK)
		return rc;
	/* rank 0's time on this rank's CLOCK_MONOTONIC, which no clock step
	 * moves while it sleeps */
	double mono = at - d->offset - (realtime_now() - cb_mono_now());
	d->start_mono = mono;
	struct timespec ts = {(time_t)mono, (long)((mono - floor(mono)) * 1e9)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
	return CB_OK;
}

double cb_dist_start_mono(const struct cb_dist *d, double ahead_s)
{
	return d->start_mono > 0 ? d->start_mono + ahead_s : 0;
}

int cb_dist_gather(struct cb_dist *d, const char *text, double deadline_s, char ***texts_out,
		   struct cb_error *err)
{
	int size = d->w.size, root = d->w.rank == 0;
	int len = (int)strlen(text);
	int *lens = root ? calloc((size_t)size, sizeof *lens) : NULL;
	int *at = root ? calloc((size_t)size, sizeof *at) : NULL;
	*texts_out = NULL;
	if (root && (!lens || !at)) {
		free(lens);
		free(at);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	MPI_Request rq;
	MPI_Igather(&len, 1, MPI_INT, lens, 1, MPI_INT, 0, MPI_COMM_WORLD, &rq);
	enum wait_end e = wait_all(d, &rq, 1, deadline_s, d->stop, WATCH_ALL);
	if (e == WAIT_EXPIRED || e == WAIT_LOST)
		expire(d, "the records' lengths", e == WAIT_LOST ? 0 : deadline_s);
	if (e == WAIT_STOPPED) {
		free(lens);
		free(at);
		return CB_OK;
	}
	size_t total = 0;
	for (int r = 0; root && r < size; r++) {
		at[r] = (int)total;
		total += (size_t)lens[r];
	}
	char *all = root ? malloc(total + 1) : NULL;
	if (root && !all) {
		free(lens);
		free(at);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	MPI_Igatherv(text, len, MPI_CHAR, all, lens, at, MPI_CHAR, 0, MPI_COMM_WORLD, &rq);
	e = wait_all(d, &rq, 1, deadline_s, d->stop, WATCH_ALL);
	if (e == WAIT_EXPIRED || e == WAIT_LOST)
		expire(d, "the records", e == WAIT_LOST ? 0 : deadline_s);
	int rc = CB_OK;
	if (root && e == WAIT_DONE) {
		char **texts = calloc((size_t)size, sizeof *texts);
		for (int r = 0; texts && r < size; r++)
			texts[r] = strndup(all + at[r], (size_t)lens[r]);
		for (int r = 0; texts && r < size; r++)
			if (!texts[r])
				rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		if (!texts)
			rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		*texts_out = texts;
	}
	free(all);
	free(lens);
	free(at);
	return rc;
}

int cb_dist_share(struct cb_dist *d, void *buf, size_t len, double deadline_s, struct cb_error *err)
{
	MPI_Request rq;
	/* Into a copy: a stopped broadcast leaves the caller's bytes alone. */
	void *copy = malloc(len ? len : 1);
	if (!copy)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	memcpy(copy, buf, len);
	MPI_Ibcast(copy, (int)len, MPI_BYTE, 0, MPI_COMM_WORLD, &rq);
	enum wait_end e = wait_all(d, &rq, 1, deadline_s, d->stop, WATCH_ALL);
	if (e == WAIT_EXPIRED || e == WAIT_LOST)
		expire(d, "a broadcast from rank 0", e == WAIT_LOST ? 0 : deadline_s);
	if (e == WAIT_DONE)
		memcpy(buf, copy, len);
	/* a stopped one is left in flight, with its buffer: the job ends */
	if (e == WAIT_DONE)
		free(copy);
	return CB_OK;
}

#else /* !CB_HAVE_MPI: run --mpi and --ranks say how to get MPI first */

struct cb_dist {
	struct cb_dist_where w;
};

int cb_dist_start(unsigned node_groups, uint64_t *order_seed, struct cb_dist **out,
		  struct cb_error *err)
{
	(void)node_groups, (void)order_seed;
	*out = NULL;
	return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL, "%s", CB_DIST_HOWTO);
}

void cb_dist_end(struct cb_dist *d, bool clean)
{
	(void)clean;
	free(d);
}

const struct cb_dist_where *cb_dist_where(const struct cb_dist *d)
{
	return &d->w;
}

const int *cb_dist_node_of(const struct cb_dist *d)
{
	(void)d;
	return NULL;
}

const pid_t *cb_dist_node_pids(const struct cb_dist *d)
{
	(void)d;
	return NULL;
}

double cb_dist_common_time(const struct cb_dist *d, double mono_s)
{
	(void)d;
	return mono_s;
}

void cb_dist_on_abort(struct cb_dist *d, cb_dist_abort_fn *fn, void *ctx)
{
	(void)d, (void)fn, (void)ctx;
}

const char *cb_dist_missing(const struct cb_dist *d)
{
	(void)d;
	return "";
}

const char *cb_dist_find_lost(struct cb_dist *d)
{
	(void)d;
	return "";
}

void cb_dist_set_stop(struct cb_dist *d, volatile sig_atomic_t *stop)
{
	(void)d, (void)stop;
}

int cb_dist_gate(struct cb_dist *d, const char *what, double deadline_s, unsigned *flags,
		 struct cb_error *err)
{
	(void)d, (void)what, (void)deadline_s, (void)flags, (void)err;
	return CB_OK;
}

int cb_dist_start_at(struct cb_dist *d, double lead_s, double deadline_s, struct cb_error *err)
{
	(void)d, (void)lead_s, (void)deadline_s, (void)err;
	return CB_OK;
}

double cb_dist_start_mono(const struct cb_dist *d, double ahead_s)
{
	(void)d, (void)ahead_s;
	return 0;
}

int cb_dist_gather(struct cb_dist *d, const char *text, double deadline_s, char ***texts_out,
		   struct cb_error *err)
{
	(void)d, (void)text, (void)deadline_s;
	*texts_out = NULL;
	return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL, "%s", CB_DIST_HOWTO);
}

int cb_dist_share(struct cb_dist *d, void *buf, size_t len, double deadline_s, struct cb_error *err)
{
	(void)d, (void)buf, (void)len, (void)deadline_s, (void)err;
	return CB_OK;
}

#endif
