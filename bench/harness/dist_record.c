/* The parts of many ranks that need no MPI (see dist.h): which files a
 * rank and a node take, the node's memory sampler, the trial's combined
 * record and the cell's rank figures (docs/results-schema.md). */
#include "dist.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "docjson.h"
#include "sampler.h"
#include "stats.h"

/* ------------------------------------------------------------ files */

size_t cb_dist_rank_files(enum cb_dist_mode mode, size_t n_files, int rank, int size,
			  size_t *idx_out)
{
	size_t n = 0;
	for (size_t i = 0; i < n_files; i++)
		if (mode != CB_DIST_FILES || (int)(i % (size_t)size) == rank)
			idx_out[n++] = i;
	return n;
}

size_t cb_dist_node_files(enum cb_dist_mode mode, size_t n_files, const int *node_of, int size,
			  int node, int nodes, bool reorder, bool cold, bool *want)
{
	/* With --reorder a warm cell's leader warms what the node before it
	 * will read, so that no node finds its own files in its own cache
	 * (IOR's -C); a cold one evicts its own as always. */
	int reads = reorder && !cold && nodes > 0 ? (node - 1 + nodes) % nodes : node;
	size_t n = 0;
	for (size_t i = 0; i < n_files; i++) {
		want[i] = mode != CB_DIST_FILES;
		for (int r = 0; !want[i] && r < size; r++)
			want[i] = node_of[r] == reads && (int)(i % (size_t)size) == r;
		n += want[i];
	}
	return n;
}

/* ---------------------------------------------------------- sampler */

/* At most this many processes under the node's ranks are followed. */
#define MAX_MEMBERS 256
/* The process list is read again every this many samples once every rank
 * has a child (children's children, a peer's Python, appear late). */
#define RESCAN_EVERY 10

struct cb_node_sampler {
	pthread_t thread;
	atomic_bool stop;
	pid_t *roots;
	size_t n_roots;
	char **paths;
	size_t n_paths;
	uint64_t files_bytes;
	unsigned interval_ms;
	pid_t members[MAX_MEMBERS];
	size_t n_members;
	struct cb_node_figures fig;
	uint64_t avail_start, avail_min;
};

static bool read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return true;
}

static bool is_member(const struct cb_node_sampler *s, pid_t pid)
{
	for (size_t i = 0; i < s->n_roots; i++)
		if (s->roots[i] == pid)
			return true;
	for (size_t i = 0; i < s->n_members; i++)
		if (s->members[i] == pid)
			return true;
	return false;
}

/* The processes whose parent is a rank of the node or one of those: the
 * trials' children and what they started. pids rise with age, so one pass
 * in /proc's order finds a child after its parent nearly always; the next
 * scan finds the rest. */
static void scan(struct cb_node_sampler *s)
{
	DIR *dir = opendir("/proc");
	if (!dir)
		return;
	s->n_members = 0;
	for (struct dirent *e; (e = readdir(dir)) && s->n_members < MAX_MEMBERS;) {
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		char path[300], text[512];
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		if (!read_small(path, text, sizeof text))
			continue;
		/* The parent is the second field after the command's ')'. */
		const char *close = strrchr(text, ')');
		int ppid;
		if (!close || sscanf(close + 1, " %*c %d", &ppid) != 1)
			continue;
		pid_t pid = (pid_t)atoi(e->d_name);
		if (is_member(s, (pid_t)ppid) && !is_member(s, pid))
			s->members[s->n_members++] = pid;
	}
	closedir(dir);
}

static uint64_t mem_available(void)
{
	char text[4096];
	return read_small("/proc/meminfo", text, sizeof text)
		       ? cb_status_field(text, "MemAvailable")
		       : 0;
}

static void sample(struct cb_node_sampler *s, size_t round)
{
	if (s->n_members < s->n_roots || round % RESCAN_EVERY == 0)
		scan(s);
	uint64_t anon = 0;
	for (size_t i = 0; i < s->n_members; i++) {
		char path[64], text[4096];
		snprintf(path, sizeof path, "/proc/%d/status", (int)s->members[i]);
		if (read_small(path, text, sizeof text))
			anon += cb_status_field(text, "RssAnon");
	}
	double resident = NAN;
	struct cb_error ignored = CB_ERROR_INIT;
	if (s->n_paths && cb_cache_residency((const char *const *)s->paths, s->n_paths, &resident,
					     &ignored) != CB_OK)
		resident = NAN;
	uint64_t file = isfinite(resident) ? (uint64_t)(resident * (double)s->files_bytes) : 0;
	uint64_t avail = mem_available();
	struct cb_node_figures *f = &s->fig;
	f->peak_anon_bytes = anon > f->peak_anon_bytes ? anon : f->peak_anon_bytes;
	f->peak_file_bytes = file > f->peak_file_bytes ? file : f->peak_file_bytes;
	if (avail && avail < s->avail_min)
		s->avail_min = avail;
	f->samples++;
}

static void *sampler_main(void *arg)
{
	struct cb_node_sampler *s = arg;
	for (size_t round = 0; !atomic_load(&s->stop); round++) {
		sample(s, round);
		struct timespec ts = {(time_t)(s->interval_ms / 1000),
				      (long)(s->interval_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	sample(s, 0); /* the state at the end counts too */
	return NULL;
}

static void sampler_free(struct cb_node_sampler *s)
{
	for (size_t i = 0; i < s->n_paths; i++)
		free(s->paths[i]);
	free(s->paths);
	free(s->roots);
	free(s);
}

struct cb_node_sampler *cb_node_sampler_start(const pid_t *roots, size_t n_roots,
					      const char *const *paths, size_t n_paths,
					      uint64_t files_bytes, unsigned interval_ms)
{
	struct cb_node_sampler *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->roots = calloc(n_roots ? n_roots : 1, sizeof *s->roots);
	s->paths = calloc(n_paths ? n_paths : 1, sizeof *s->paths);
	if (!s->roots || !s->paths) {
		sampler_free(s);
		return NULL;
	}
	memcpy(s->roots, roots, n_roots * sizeof *roots);
	s->n_roots = n_roots;
	for (size_t i = 0; i < n_paths; i++) {
		if (!(s->paths[i] = strdup(paths[i]))) {
			sampler_free(s);
			return NULL;
		}
		s->n_paths++;
	}
	s->files_bytes = files_bytes;
	s->interval_ms = interval_ms ? interval_ms : 10;
	/* The baseline is taken here, before any trial child exists. */
	s->avail_start = s->avail_min = mem_available();
	atomic_init(&s->stop, false);
	if (pthread_create(&s->thread, NULL, sampler_main, s) != 0) {
		sampler_free(s);
		return NULL;
	}
	return s;
}

void cb_node_sampler_stop(struct cb_node_sampler *s, struct cb_node_figures *out)
{
	memset(out, 0, sizeof *out);
	if (!s)
		return;
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	*out = s->fig;
	out->memavailable_drop_bytes =
		s->avail_start > s->avail_min ? s->avail_start - s->avail_min : 0;
	out->valid = s->fig.samples > 0 && s->avail_start > 0;
	sampler_free(s);
}

/* ---------------------------------------------------------- records */

static json_t *num_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

char *cb_dist_entry_text(const struct cb_dist_where *w, const char *device, double bytes,
			 double spawn, double start, double end, json_t *record,
			 const struct cb_node_figures *node)
{
	json_t *e = json_pack("{s:i,s:s,s:i,s:i,s:s}", "rank", w->rank, "host", w->host,
			      "local_rank", w->local_rank, "node", w->node, "device", device);
	if (!e) {
		json_decref(record);
		return NULL;
	}
	json_object_set_new(e, "bytes", num_or_null(bytes));
	json_object_set_new(e, "spawn", num_or_null(spawn));
	json_object_set_new(e, "start", num_or_null(start));
	json_object_set_new(e, "end", num_or_null(end));
	json_object_set_new(e, "record", record ? record : json_null());
	if (node && node->valid)
		json_object_set_new(e, "node_figures",
				    json_pack("{s:I,s:I,s:I,s:I,s:I}", "peak_anon_bytes",
					      (json_int_t)node->peak_anon_bytes, "peak_file_bytes",
					      (json_int_t)node->peak_file_bytes,
					      "memavailable_drop_bytes",
					      (json_int_t)node->memavailable_drop_bytes, "samples",
					      (json_int_t)node->samples, "prepared_files",
					      (json_int_t)node->prepared_files));
	/* JSON_REAL_PRECISION(17): the common clock's seconds since 1970
	 * need every digit for their milliseconds. */
	char *text = json_dumps(e, JSON_COMPACT | JSON_REAL_PRECISION(17));
	json_decref(e);
	return text;
}

static bool outcome_ok(const json_t *record)
{
	const char *o = json_string_value(json_object_get(record, "outcome"));
	return o && strcmp(o, "ok") == 0;
}

/* The per-rank row of a trial (docs/results-schema.md,
 * cells[].trials[].ranks.per_rank[]); `t0` is the first start. */
static json_t *rank_row(const json_t *e, double t0)
{
	const json_t *rec = json_object_get(e, "record");
	double bytes = cb_json_num(e, "bytes"), wall = cb_json_num(rec, "wall_s");
	json_t *row = json_pack("{s:O,s:O,s:O,s:O,s:O}", "rank", json_object_get(e, "rank"), "host",
				json_object_get(e, "host"), "local_rank",
				json_object_get(e, "local_rank"), "node",
				json_object_get(e, "node"), "device", json_object_get(e, "device"));
	const json_t *o = json_object_get(rec, "outcome");
	json_object_set_new(row, "outcome",
			    json_is_string(o) ? json_incref((json_t *)o) : json_string("error"));
	json_object_set_new(row, "bytes", num_or_null(bytes));
	json_object_set_new(row, "wall_s", num_or_null(wall));
	json_object_set_new(row, "gbps", num_or_null(wall > 0 ? bytes / wall / 1e9 : NAN));
	json_object_set_new(row, "spawn_s", num_or_null(cb_json_num(e, "spawn") - t0));
	json_object_set_new(row, "start_s", num_or_null(cb_json_num(e, "start") - t0));
	json_object_set_new(row, "end_s", num_or_null(cb_json_num(e, "end") - t0));
	static const char *const copied[] = {"peak_anon_bytes", "peak_file_bytes",  "major_faults",
					     "peak_vram_bytes", "residency_before", "read_bytes"};
	for (size_t k = 0; k < sizeof copied / sizeof copied[0]; k++) {
		json_t *v = json_object_get(rec, copied[k]);
		json_object_set_new(row, copied[k], v ? json_incref(v) : json_null());
	}
	return row;
}

json_t *cb_dist_combine(char *const *texts, size_t n, double model_bytes)
{
	json_t **e = calloc(n ? n : 1, sizeof *e);
	if (!e)
		return NULL;
	bool bad = false;
	for (size_t i = 0; i < n; i++) {
		e[i] = json_loads(texts[i], 0, NULL);
		bad = bad || !json_is_object(json_object_get(e[i], "record"));
	}
	json_t *out = NULL;
	if (bad)
		goto done;
	/* The trial's own keys: the first failed rank's record (its outcome
	 * is the trial's), else the slowest rank's (its load bounds the
	 * trial), so that they come from one process. */
	size_t base = 0, failed = n;
	double slowest = -1;
	for (size_t i = 0; i < n; i++) {
		const json_t *rec = json_object_get(e[i], "record");
		if (!outcome_ok(rec) && failed == n)
			failed = i;
		double wall = cb_json_num(rec, "wall_s");
		if (isfinite(wall) && wall > slowest) {
			slowest = wall;
			base = i;
		}
	}
	bool all_ok = failed == n;
	if (!all_ok)
		base = failed;
	out = json_deep_copy(json_object_get(e[base], "record"));
	if (!all_ok) {
		char msg[1600];
		snprintf(msg, sizeof msg, "rank %d: %s", (int)cb_json_num(e[base], "rank"),
			 json_string_value(json_object_get(out, "message")));
		json_object_set_new(out, "message", json_string(msg));
	}
	double t0 = INFINITY, t1 = -INFINITY, first_end = INFINITY, last_start = -INFINITY;
	double spawn0 = INFINITY, spawn1 = -INFINITY, bytes = 0, read = 0;
	bool bytes_known = true, read_known = true;
	for (size_t i = 0; i < n; i++) {
		double s = cb_json_num(e[i], "start"), f = cb_json_num(e[i], "end");
		double sp = cb_json_num(e[i], "spawn"), b = cb_json_num(e[i], "bytes");
		t0 = isfinite(s) && s < t0 ? s : t0;
		last_start = isfinite(s) && s > last_start ? s : last_start;
		t1 = isfinite(f) && f > t1 ? f : t1;
		first_end = isfinite(f) && f < first_end ? f : first_end;
		spawn0 = isfinite(sp) && sp < spawn0 ? sp : spawn0;
		spawn1 = isfinite(sp) && sp > spawn1 ? sp : spawn1;
		bytes_known = bytes_known && isfinite(b);
		bytes += isfinite(b) ? b : 0;
		double rb = cb_json_num(json_object_get(e[i], "record"), "read_bytes");
		read_known = read_known && isfinite(rb);
		read += isfinite(rb) ? rb : 0;
	}
	json_t *rows = json_array(), *nodes = json_array();
	double node_anon = NAN, node_file = NAN, node_avail = NAN;
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(rows, rank_row(e[i], t0));
		const json_t *nf = json_object_get(e[i], "node_figures");
		if (!nf)
			continue;
		json_t *row = json_pack("{s:O,s:O,s:O}", "node", json_object_get(e[i], "node"),
					"host", json_object_get(e[i], "host"), "leader_rank",
					json_object_get(e[i], "rank"));
		json_object_update(row, (json_t *)nf);
		json_array_append_new(nodes, row);
		/* The worst node speaks for the trial. */
		double a = cb_json_num(nf, "peak_anon_bytes") / model_bytes;
		double f = cb_json_num(nf, "peak_file_bytes") / model_bytes;
		double m = cb_json_num(nf, "memavailable_drop_bytes") / model_bytes;
		node_anon = isfinite(a) && !(a <= node_anon) ? a : node_anon;
		node_file = isfinite(f) && !(f <= node_file) ? f : node_file;
		node_avail = isfinite(m) && !(m <= node_avail) ? m : node_avail;
	}
	json_object_set_new(out, "ranks", json_pack("{s:o,s:o}", "per_rank", rows, "nodes", nodes));
	/* IOR's figures over the window from the first start to the last
	 * end; only where every rank loaded (a failed rank has no window). */
	double window = t1 - t0;
	bool timed = all_ok && isfinite(window) && window > 0;
	json_object_set_new(out, "aggregate_gbps",
			    num_or_null(timed && bytes_known ? bytes / window / 1e9 : NAN));
	json_object_set_new(out, "effective_gbps",
			    num_or_null(timed ? model_bytes / window / 1e9 : NAN));
	json_object_set_new(out, "first_done_s", num_or_null(timed ? first_end - t0 : NAN));
	json_object_set_new(out, "last_done_s", num_or_null(timed ? window : NAN));
	json_object_set_new(out, "start_skew_s", num_or_null(timed ? last_start - t0 : NAN));
	json_object_set_new(out, "spawn_skew_s", num_or_null(spawn1 - spawn0));
	/* What storage gave all the ranks together, over the model: ranks of
	 * one node share its page cache, so a page one rank read is a hit for
	 * the others, and with one copy of the model read this is 1 however
	 * each rank cut its share. */
	json_object_set_new(out, "ranks_read_bytes",
			    read_known ? json_integer((json_int_t)read) : json_null());
	json_object_set_new(out, "ranks_read_amplification",
			    num_or_null(read_known && model_bytes > 0 ? read / model_bytes : NAN));
	json_object_set_new(out, "node_anon_over_model", num_or_null(node_anon));
	json_object_set_new(out, "node_file_over_model", num_or_null(node_file));
	json_object_set_new(out, "node_memavailable_drop_over_model", num_or_null(node_avail));
done:
	for (size_t i = 0; i < n; i++)
		json_decref(e[i]);
	free(e);
	return out;
}

/* ---------------------------------------------------------- summary */

/* The ok measured trials of a cell (as results.c counts them). */
static size_t ok_trials(const json_t *cell, const json_t **ok, size_t cap)
{
	const json_t *trials = json_object_get(cell, "trials");
	size_t n = 0;
	for (size_t i = 0; i < json_array_size(trials) && n < cap; i++) {
		const json_t *t = json_array_get(trials, i);
		if (outcome_ok(t) && isfinite(cb_json_num(t, "wall_s")))
			ok[n++] = t;
	}
	return n;
}

static const char *const summary_keys[] = {
	"aggregate_gbps",
	"effective_gbps",
	"first_done_s",
	"last_done_s",
	"start_skew_s",
	"node_anon_over_model",
	"node_file_over_model",
	"node_memavailable_drop_over_model",
	"ranks_read_amplification",
};

static const char *const rank_figures[] = {"bytes",           "wall_s",          "gbps",
					   "peak_anon_bytes", "peak_file_bytes", "major_faults",
					   "peak_vram_bytes", "read_bytes"};

/* The per-rank medians over the ok trials: one row per rank, where it ran
 * taken from the first of them. */
static json_t *per_rank_medians(const json_t **ok, size_t n, double *v)
{
	json_t *rows = json_array();
	size_t ranks =
		n ? json_array_size(json_object_get(json_object_get(ok[0], "ranks"), "per_rank"))
		  : 0;
	for (size_t r = 0; r < ranks; r++) {
		const json_t *first = json_array_get(
			json_object_get(json_object_get(ok[0], "ranks"), "per_rank"), r);
		json_t *row = json_pack(
			"{s:O,s:O,s:O,s:O,s:O}", "rank", json_object_get(first, "rank"), "host",
			json_object_get(first, "host"), "local_rank",
			json_object_get(first, "local_rank"), "node",
			json_object_get(first, "node"), "device", json_object_get(first, "device"));
		for (size_t k = 0; k < sizeof rank_figures / sizeof rank_figures[0]; k++) {
			for (size_t i = 0; i < n; i++)
				v[i] = cb_json_num(
					json_array_get(
						json_object_get(json_object_get(ok[i], "ranks"),
								"per_rank"),
						r),
					rank_figures[k]);
			json_object_set_new(row, rank_figures[k],
					    num_or_null(cb_stats_median_finite(v, n)));
		}
		json_array_append_new(rows, row);
	}
	return rows;
}

void cb_dist_summarize(json_t *cell, json_t *s)
{
	enum { CAP = 4096 };
	const json_t **ok = calloc(CAP, sizeof *ok);
	double *v = calloc(CAP, sizeof *v);
	json_t *ranks = json_object_get(cell, "ranks");
	if (!ok || !v || !json_is_object(ranks)) {
		free(ok);
		free(v);
		return;
	}
	size_t n = ok_trials(cell, ok, CAP);
	for (size_t k = 0; k < sizeof summary_keys / sizeof summary_keys[0]; k++) {
		for (size_t i = 0; i < n; i++)
			v[i] = cb_json_num(ok[i], summary_keys[k]);
		json_object_set_new(s, summary_keys[k], num_or_null(cb_stats_median_finite(v, n)));
	}
	json_object_set_new(ranks, "per_rank", per_rank_medians(ok, n, v));
	free(ok);
	free(v);
}

json_t *cb_dist_cell_json(const struct cb_dist_where *w, enum cb_dist_mode mode)
{
	return json_pack("{s:i,s:i,s:s,s:[]}", "n", w->size, "nodes", w->nodes, "dist",
			 cb_dist_mode_name(mode), "per_rank");
}
