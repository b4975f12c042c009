/* A trial: one load in a fresh process (`run` execs `ckptbench trial`,
 * whose options bench/cli/cmd_trial.c reads into a cb_trial_config).
 *
 * Setup (binding, the architecture, the loader's open) comes first, then the
 * baseline: VmRSS with the high-water mark reset through /proc/self/clear_refs.
 * The load alone is timed, phase by phase, with CLOCK_MONOTONIC; VmHWM and
 * the RSS split are read right after it. Verification (XXH3 of every tensor
 * against the manifest) runs after the timed region. The report is one JSON
 * line on the report descriptor (docs/peer-protocol.md gives its keys).
 * Exit status: 0 ok, 1 wrong bytes or a loader error, 2 usage, 3 unsupported.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "trial.h"
#include "loader.h"
#include "manifest.h"
#include "part_file.h"
#include "sampler.h"
#include "sysinfo.h"
#include "perfcount.h"

#define MAX_SPANS 64

/* The harness's phase clock: time per phase plus the spans for timelines. */
struct phase_clock {
	struct cb_phase_sink sink; /* first: the loader sees only this */
	enum cb_phase current;
	double since;
	double total[CB_PHASE_COUNT];
	struct {
		enum cb_phase phase;
		double start, end;
	} spans[MAX_SPANS];
	size_t n_spans;
};

static void clock_enter(struct cb_phase_sink *sink, enum cb_phase phase)
{
	struct phase_clock *c = (struct phase_clock *)sink;
	double now = cb_mono_now();
	if (c->current != CB_PHASE_NONE) {
		c->total[c->current] += now - c->since;
		if (c->n_spans < MAX_SPANS) {
			c->spans[c->n_spans].phase = c->current;
			c->spans[c->n_spans].start = c->since;
			c->spans[c->n_spans].end = now;
			c->n_spans++;
		}
	}
	c->current = phase >= 0 && phase < CB_PHASE_COUNT ? phase : CB_PHASE_NONE;
	c->since = now;
}

struct memory_snapshot {
	uint64_t rss, hwm, anon, file, shmem;
};

static struct memory_snapshot read_memory(void)
{
	struct memory_snapshot m = {0};
	char text[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return m;
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return m;
	text[n] = '\0';
	m.rss = cb_status_field(text, "VmRSS");
	m.hwm = cb_status_field(text, "VmHWM");
	m.anon = cb_status_field(text, "RssAnon");
	m.file = cb_status_field(text, "RssFile");
	m.shmem = cb_status_field(text, "RssShmem");
	return m;
}

/* Resets VmHWM to the current RSS ("5", Linux 4.0+); false where refused. */
static bool reset_hwm(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = write(fd, "5", 1) == 1;
	close(fd);
	return ok;
}

struct trial {
	const char *loader_name, *path, *manifest_path, *bind_spec, *device, *part_path;
	double start_at; /* --start-at, CLOCK_MONOTONIC; 0: none */
	int report_fd;
	const char *const *opts;
	size_t n_opts;
	cb_trial_hook *after_load;
	const struct cb_loader *loader;
	struct cb_manifest *arch; /* the whole model's */
	/* A partial load (--part): the plan, its expected hashes, and the
	 * part's architecture the loader and the model see (its tensor table
	 * owned here, its names and shapes borrowed from arch and plan). */
	struct cb_slice_plan plan;
	uint64_t *part_hashes;
	struct cb_manifest part_arch;
	bool partial;
	void *opts_struct, *priv;
	bool opened;
	struct cb_model model;
	struct phase_clock clock;
	json_t *report;
};

/* Options: defaults, then each KEY=VALUE (values point into argv). */
static int set_options(struct trial *t, struct cb_error *err)
{
	const struct cb_loader *l = t->loader;
	t->opts_struct = calloc(1, l->opts_size ? l->opts_size : 1);
	if (!t->opts_struct)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	int rc = cb_loader_opts_defaults(l, t->opts_struct, err);
	for (size_t i = 0; rc == CB_OK && i < t->n_opts; i++) {
		char key[64];
		const char *eq = strchr(t->opts[i], '=');
		snprintf(key, sizeof key, "%.*s", (int)(eq - t->opts[i]), t->opts[i]);
		const struct cb_loader_opt *o = cb_loader_opt_find(l, key);
		if (!o)
			return CB_FAIL(err, CB_EUSAGE, NULL, l->name, "loader has no option \"%s\"",
				       key);
		rc = cb_loader_opt_set(l, o, t->opts_struct, eq + 1, err);
	}
	return rc;
}

static int device_index(const char *device)
{
	if (!device || strncmp(device, "cuda:", 5) != 0)
		return 0;
	return atoi(device + 5);
}

/* The architecture the loader fills: the part's, or the whole model's. */
static const struct cb_manifest *loaded_arch(const struct trial *t)
{
	return t->partial ? &t->part_arch : t->arch;
}

/* A partial load: the part file read against the whole manifest, and the
 * part's architecture made from it (each tensor with its slice's shape and
 * bytes), which is what the model allocates. */
static int setup_part(struct trial *t, struct cb_error *err)
{
	if (!(t->loader->caps & CB_CAP_PARTIAL))
		return CB_FAIL(err, CB_EUNSUPPORTED, NULL, t->loader->name,
			       "loader cannot load a part of the model");
	int rc = cb_part_file_read(t->part_path, t->arch, &t->plan, &t->part_hashes, err);
	if (rc != CB_OK)
		return rc;
	t->partial = true;
	struct cb_manifest *pa = &t->part_arch;
	pa->format = t->arch->format;
	pa->n_tensors = t->plan.n;
	pa->tensors = calloc(t->plan.n ? t->plan.n : 1, sizeof *pa->tensors);
	if (!pa->tensors)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < t->plan.n; i++) {
		const struct cb_slice_tensor *s = &t->plan.tensors[i];
		const struct cb_manifest_tensor *whole = &t->arch->tensors[s->index];
		pa->tensors[i] = (struct cb_manifest_tensor){
			.name = whole->name,
			.dtype = whole->dtype,
			.rank = s->rank,
			.shape = s->shape,
			.nbytes = s->nbytes,
			.xxh3 = t->part_hashes[i],
			.has_hash = true,
		};
		pa->total_bytes += s->nbytes;
	}
	json_object_set_new(t->report, "asked_bytes", json_integer((json_int_t)pa->total_bytes));
	return CB_OK;
}

static int setup(struct trial *t, struct cb_error *err)
{
	if (t->bind_spec) {
		struct cb_bind bind;
		int rc = cb_bind_parse(t->bind_spec, &bind, err);
		if (rc == CB_OK)
			rc = cb_bind_apply(&bind, err);
		if (rc != CB_OK)
			return rc;
	}
	int rc = cb_manifest_read(t->manifest_path, &t->arch, err);
	if (rc != CB_OK)
		return rc;
	if (t->part_path && (rc = setup_part(t, err)) != CB_OK)
		return rc;
	rc = set_options(t, err);
	if (rc != CB_OK)
		return rc;
	const struct cb_manifest *arch = loaded_arch(t);
	t->model.n = arch->n_tensors;
	t->model.tensors = calloc(t->model.n ? t->model.n : 1, sizeof *t->model.tensors);
	t->priv = calloc(1, t->loader->priv_size ? t->loader->priv_size : 1);
	if (!t->model.tensors || !t->priv)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < t->model.n; i++) {
		t->model.tensors[i].name = arch->tensors[i].name;
		t->model.tensors[i].nbytes = arch->tensors[i].nbytes;
	}
	return CB_OK;
}

/* XXH3 of one model tensor, fetched from the device into `buf` (at least
 * the tensor's size) when it lives there. */
static int hash_tensor(struct trial *t, size_t i, void *buf, uint64_t *out, struct cb_error *err)
{
	const struct cb_model_tensor *mt = &t->model.tensors[i];
	if (mt->location == CB_LOC_HOST) {
		*out = XXH3_64bits(mt->data, (size_t)mt->nbytes);
		return CB_OK;
	}
	struct cb_loader_fetch fetch = {.index = i, .host_buf = buf, .nbytes = mt->nbytes};
	int rc = t->loader->control(t->priv, CB_LOADER_CTL_FETCH, &fetch, err);
	if (rc == CB_OK)
		*out = XXH3_64bits(buf, (size_t)mt->nbytes);
	return rc;
}

/* Every tensor against the manifest; the first mismatch is the message.
 * Device tensors are fetched through one host buffer, the size of the
 * largest: a fresh buffer per tensor would fault in the model's size of
 * new pages again, seconds per trial on a large model. */
static int verify(struct trial *t, size_t *bad_out, struct cb_error *err)
{
	*bad_out = 0;
	uint64_t largest = 0;
	for (size_t i = 0; i < t->model.n; i++)
		if (t->model.tensors[i].location != CB_LOC_HOST &&
		    t->model.tensors[i].nbytes > largest)
			largest = t->model.tensors[i].nbytes;
	void *buf = NULL;
	if (largest && !(buf = malloc((size_t)largest)))
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "no host memory to verify");
	int rc = CB_OK;
	for (size_t i = 0; i < t->model.n && rc == CB_OK; i++) {
		const struct cb_manifest_tensor *want = &loaded_arch(t)->tensors[i];
		const struct cb_model_tensor *mt = &t->model.tensors[i];
		if (!mt->data || mt->nbytes != want->nbytes) {
			if ((*bad_out)++ == 0)
				CB_FAIL(err, CB_EMISMATCH, t->path, want->name,
					"the loader left this tensor missing or of the wrong size");
			continue;
		}
		if (!want->has_hash)
			continue;
		uint64_t h = 0;
		rc = hash_tensor(t, i, buf, &h, err);
		if (rc == CB_OK && h != want->xxh3 && (*bad_out)++ == 0)
			CB_FAIL(err, CB_EMISMATCH, t->path, want->name,
				"loaded bytes have XXH3 %016llx, the manifest says %016llx",
				(unsigned long long)h, (unsigned long long)want->xxh3);
	}
	free(buf);
	if (rc != CB_OK)
		return rc;
	return *bad_out ? CB_EMISMATCH : CB_OK;
}

static json_t *phases_json(const struct phase_clock *c)
{
	json_t *o = json_object();
	for (int p = 0; p < CB_PHASE_COUNT; p++)
		json_object_set_new(o, cb_phase_name(p), json_real(c->total[p]));
	return o;
}

static json_t *spans_json(const struct phase_clock *c)
{
	json_t *a = json_array();
	for (size_t i = 0; i < c->n_spans; i++)
		json_array_append_new(a, json_pack("{s:s,s:f,s:f}", "name",
						   cb_phase_name(c->spans[i].phase), "start_mono",
						   c->spans[i].start, "end_mono", c->spans[i].end));
	return a;
}

static void set_u64(json_t *o, const char *key, uint64_t v)
{
	json_object_set_new(o, key, json_integer((json_int_t)v));
}

static void report_error(struct trial *t, const char *outcome, const struct cb_error *err)
{
	char msg[1600];
	cb_error_format(err, msg, sizeof msg);
	json_object_set_new(t->report, "outcome", json_string(outcome));
	json_object_set_new(t->report, "message", json_string(msg));
}

static int write_report(struct trial *t)
{
	char *line = json_dumps(t->report, JSON_COMPACT | JSON_REAL_PRECISION(17));
	if (!line)
		return -1;
	size_t len = strlen(line), done = 0;
	line[len] = '\n'; /* replaces the NUL; the length is known */
	while (done < len + 1) {
		ssize_t n = write(t->report_fd, line + done, len + 1 - done);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	free(line);
	return done == len + 1 ? 0 : -1;
}

/* A device loader's VRAM figures (loader.h, CB_LOADER_CTL_VRAM): the
 * device-level peak and baseline as the results file wants them, the exact
 * allocator peak and the CUDA context's share beside them. */
static void report_vram(struct trial *t, json_t *r)
{
	struct cb_loader_vram v = {0};
	if (t->loader->control(t->priv, CB_LOADER_CTL_VRAM, &v, NULL) != CB_OK)
		return;
	if (v.device_peak_bytes) {
		set_u64(r, "peak_vram_bytes", v.device_peak_bytes);
		set_u64(r, "baseline_vram_bytes", v.device_baseline_bytes);
	}
	set_u64(r, "vram_alloc_peak_bytes", v.alloc_peak_bytes);
	set_u64(r, "vram_context_bytes", v.context_bytes);
	json_object_set_new(r, "cuda_context_s", json_real(v.context_s));
	set_u64(r, "pinned_bytes", v.pinned_bytes);
	json_object_set_new(r, "pinned_alloc_s", json_real(v.pinned_alloc_s));
	json_object_set_new(r, "vram_source", json_string(v.source));
}

/* Under MPI the ranks' loads start at one time (--start-at): the child
 * sleeps, set up and with its baseline taken, until then. A time already
 * past starts at once. */
static void wait_for_start(double at)
{
	if (!(at > 0))
		return;
	struct timespec ts = {(time_t)at, (long)((at - (double)(time_t)at) * 1e9)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* The timed load and what is measured around it. */
static int timed_load(struct trial *t, struct cb_error *err)
{
	const struct cb_loader *l = t->loader;
	struct cb_load_ctx ctx = {
		.path = t->path,
		.format = l->format,
		.arch = loaded_arch(t),
		.opts = t->opts_struct,
		.device_index = device_index(t->device),
		.phases = &t->clock.sink,
		.slice = t->partial ? &t->plan : NULL,
		.whole = t->arch,
	};
	t->clock = (struct phase_clock){.sink = {clock_enter}, .current = CB_PHASE_NONE};
	int rc = l->open(l, t->priv, &ctx, err);
	t->opened = true;
	if (rc != CB_OK)
		return rc;
	bool hwm_reset = reset_hwm();
	struct memory_snapshot base = read_memory();
	struct cb_perfcount pc; /* instructions of the load alone */
	cb_perfcount_open(&pc);
	wait_for_start(t->start_at);
	cb_perfcount_start(&pc);
	double start = cb_mono_now();
	rc = l->load(t->priv, &ctx, &t->model, err);
	if (t->after_load) /* ckptbench-slowable only: tests/slowdown.c */
		t->after_load(l->name, start);
	clock_enter(&t->clock.sink, CB_PHASE_NONE);
	double end = cb_mono_now();
	uint64_t instructions = 0;
	bool counted = cb_perfcount_stop(&pc, &instructions);
	cb_perfcount_close(&pc);
	struct memory_snapshot after = read_memory();
	json_t *r = t->report;
	json_object_set_new(r, "wall_s", json_real(end - start));
	json_object_set_new(r, "instructions",
			    counted ? json_integer((json_int_t)instructions) : json_null());
	json_object_set_new(r, "load_start_mono", json_real(start));
	json_object_set_new(r, "load_end_mono", json_real(end));
	json_object_set_new(r, "phases", phases_json(&t->clock));
	json_object_set_new(r, "phase_spans", spans_json(&t->clock));
	set_u64(r, "baseline_rss_bytes", base.rss);
	set_u64(r, "baseline_anon_bytes", base.anon);
	set_u64(r, "baseline_file_bytes", base.file + base.shmem);
	json_object_set_new(r, "hwm_reset", json_boolean(hwm_reset));
	if (hwm_reset) /* else VmHWM includes setup and means little */
		set_u64(r, "vmhwm_bytes", after.hwm);
	set_u64(r, "after_rss_bytes", after.rss);
	set_u64(r, "after_anon_bytes", after.anon);
	set_u64(r, "after_file_bytes", after.file + after.shmem);
	if (rc == CB_OK && (l->caps & CB_CAP_DEVICE_MEM))
		report_vram(t, r);
	char mode[CB_LOADER_MODE_MAX] = "";
	if (rc == CB_OK && l->control &&
	    l->control(t->priv, CB_LOADER_CTL_MODE, mode, NULL) == CB_OK && *mode)
		json_object_set_new(r, "mode", json_string(mode));
	return rc;
}

static int run_trial(struct trial *t)
{
	struct cb_error err = CB_ERROR_INIT;
	t->loader = cb_loader_find(t->loader_name);
	if (!t->loader) {
		CB_FAIL(&err, CB_EUSAGE, NULL, NULL, "no loader \"%s\"", t->loader_name);
		report_error(t, "error", &err);
		return 2;
	}
	if (cb_loader_available(t->loader, &err) != CB_OK || (t->loader->caps & CB_CAP_PEER)) {
		if (err.code == CB_OK)
			CB_FAIL(&err, CB_EUNAVAILABLE, NULL, NULL,
				"a peer runs as its own program");
		report_error(t, "unsupported", &err);
		return 3;
	}
	if (setup(t, &err) != CB_OK || timed_load(t, &err) != CB_OK) {
		/* A loader that cannot read this checkpoint at all (libtorch's own
		 * reader on an OrderedDict, ...) says CB_EUNSUPPORTED: an outcome
		 * of its own, not an error of the run. */
		bool unsupported = t->loader && err.code == CB_EUNSUPPORTED && t->opened;
		report_error(t, unsupported ? "unsupported" : "error", &err);
		return unsupported ? 3 : 1;
	}
	size_t bad = 0;
	int rc = verify(t, &bad, &err);
	json_object_set_new(t->report, "verified", json_boolean(rc == CB_OK));
	if (rc != CB_OK) {
		report_error(t, rc == CB_EMISMATCH ? "wrong-bytes" : "error", &err);
		set_u64(t->report, "wrong_tensors", bad);
		return 1;
	}
	json_object_set_new(t->report, "outcome", json_string("ok"));
	return 0;
}

static void trial_free(struct trial *t)
{
	if (t->opened)
		t->loader->close(t->priv);
	free(t->priv);
	free(t->opts_struct);
	free(t->model.tensors);
	free(t->part_arch.tensors);
	free(t->part_hashes);
	cb_slice_plan_free(&t->plan);
	cb_manifest_free(t->arch);
	json_decref(t->report);
}

int cb_trial_execute(const struct cb_trial_config *cfg)
{
	struct trial t = {
		.loader_name = cfg->loader,
		.path = cfg->path,
		.manifest_path = cfg->manifest,
		.bind_spec = cfg->bind,
		.part_path = cfg->part,
		.start_at = cfg->start_at,
		.device = cfg->device,
		.report_fd = cfg->report_fd,
		.opts = cfg->opts,
		.n_opts = cfg->n_opts,
		.after_load = cfg->after_load,
	};
	int status;
	t.report = json_object();
	if (!t.report)
		return 3;
	json_object_set_new(t.report, "verified", json_false());
	status = run_trial(&t);
	if (write_report(&t) != 0 && status == 0)
		status = 3;
	trial_free(&t);
	return status;
}
