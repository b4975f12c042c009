/* A trial's record from what the child reported and the parent measured,
 * and each cell's status (see run_plan.h). */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cache.h"
#include "docjson.h"
#include "run_plan.h"

/* A cold trial may start with this much of the files cached, a warm one
 * with this much missing, before it is flagged. */
#define CACHE_TOLERANCE 0.05
/* A cold trial should fetch about all the bytes from storage. */
#define COLD_READ_FRACTION 0.9

static json_t *u64_json(uint64_t v)
{
	return json_integer((json_int_t)v);
}

struct peaks {
	uint64_t anon, file, rss;
};

/* Peaks over the samples taken in [from, to] (seconds since the fork). */
static struct peaks sampled_peaks(const struct cb_child_run *ch, double from, double to)
{
	struct peaks p = {0, 0, 0};
	for (size_t i = 0; i < ch->n_samples; i++) {
		const struct cb_sample *s = &ch->samples[i];
		if (s->t_s < from || s->t_s > to)
			continue;
		uint64_t file = s->file_bytes + s->shmem_bytes;
		p.anon = s->anon_bytes > p.anon ? s->anon_bytes : p.anon;
		p.file = file > p.file ? file : p.file;
		p.rss = s->anon_bytes + file > p.rss ? s->anon_bytes + file : p.rss;
	}
	return p;
}

static uint64_t max_u64(uint64_t a, double b)
{
	return isfinite(b) && b > (double)a ? (uint64_t)b : a;
}

/* Peak memory: the sampler's maxima over the load, raised to what the child
 * saw itself right after it (VmHWM is exact for the total). */
static void set_peaks(json_t *t, const json_t *rep, const struct cb_child_run *ch)
{
	double from = cb_json_num(rep, "load_start_mono") - ch->start_mono;
	double to = cb_json_num(rep, "load_end_mono") - ch->start_mono;
	if (!isfinite(from) || !isfinite(to)) /* no report: the whole life */
		from = 0, to = INFINITY;
	struct peaks p = sampled_peaks(ch, from, to);
	p.anon = max_u64(p.anon, cb_json_num(rep, "after_anon_bytes"));
	p.file = max_u64(p.file, cb_json_num(rep, "after_file_bytes"));
	p.rss = max_u64(max_u64(p.rss, cb_json_num(rep, "vmhwm_bytes")),
			cb_json_num(rep, "after_rss_bytes"));
	json_object_set_new(t, "peak_rss_bytes", u64_json(p.rss));
	json_object_set_new(t, "peak_anon_bytes", u64_json(p.anon));
	json_object_set_new(t, "peak_file_bytes", u64_json(p.file));
	json_t *vram = json_object_get(rep, "peak_vram_bytes");
	json_object_set_new(t, "peak_vram_bytes", vram ? json_incref(vram) : json_null());
}

/* The child's report, if it is one: a JSON object whose outcome is one of
 * the results file's (docs/results-schema.md, cells[].trials[]). Anything
 * else on the pipe (garbage, another JSON value, an outcome we do not know)
 * is not passed through to the results: the trial becomes an "error" saying
 * what came instead. */
static json_t *parse_report(const char *text, char *problem, size_t size)
{
	static const char *const outcomes[] = {"ok",  "wrong-bytes",    "crash",       "timeout",
					       "oom", "over-mem-limit", "unsupported", "error"};
	problem[0] = '\0';
	if (!text)
		return NULL;
	json_error_t jerr;
	json_t *rep = json_loads(text, 0, &jerr);
	if (!rep) {
		snprintf(problem, size, "not JSON (%s at byte %d)", jerr.text, jerr.position);
		return NULL;
	}
	const char *outcome = json_string_value(json_object_get(rep, "outcome"));
	bool known = false;
	for (size_t i = 0; outcome && i < sizeof outcomes / sizeof outcomes[0]; i++)
		known = known || strcmp(outcome, outcomes[i]) == 0;
	if (!json_is_object(rep))
		snprintf(problem, size, "a JSON value that is not an object");
	else if (!known)
		snprintf(problem, size, "no known \"outcome\" (%.64s)", outcome ? outcome : "none");
	if (problem[0]) {
		json_decref(rep);
		return NULL;
	}
	return rep;
}

/* The outcome when the child did not end with its own report. */
static void parent_outcome(json_t *t, const struct cb_run *run, const struct cb_child_run *ch,
			   bool has_report, const char *report_problem)
{
	char msg[1400];
	const char *outcome = NULL;
	int ws = ch->wait_status;
	if (ch->timed_out) {
		outcome = "timeout";
		snprintf(msg, sizeof msg, "killed after %.0f s (--timeout)", run->cfg->timeout_s);
	} else if (ch->over_limit) {
		outcome = "over-mem-limit";
		snprintf(msg, sizeof msg, "exceeded --mem-limit %llu bytes (%s)",
			 (unsigned long long)run->cfg->mem_limit,
			 ch->cgroup_limit ? "cgroup memory.max" : "sampler: RssAnon + RssShmem");
	} else if (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL) {
		outcome = "oom";
		snprintf(msg, sizeof msg,
			 "killed by SIGKILL, not by ckptbench: most likely the "
			 "kernel's OOM killer");
	} else if (WIFSIGNALED(ws)) {
		outcome = "crash";
		snprintf(msg, sizeof msg, "killed by signal %d (%s)", WTERMSIG(ws),
			 strsignal(WTERMSIG(ws)));
	} else if (!has_report && *report_problem) {
		outcome = "error";
		snprintf(msg, sizeof msg, "exited with status %d and a malformed report: %s",
			 WIFEXITED(ws) ? WEXITSTATUS(ws) : -1, report_problem);
	} else if (!has_report) {
		outcome = "error";
		snprintf(msg, sizeof msg, "exited with status %d without a report%s%s",
			 WIFEXITED(ws) ? WEXITSTATUS(ws) : -1, *ch->stderr_tail ? ": " : "",
			 ch->stderr_tail);
	}
	if (!outcome)
		return;
	json_object_set_new(t, "outcome", json_string(outcome));
	json_object_set_new(t, "message", json_string(msg));
	json_object_set_new(t, "verified", json_false());
}

/* Flags a cache state that is not what was asked, by residency or I/O. */
static void check_cache(json_t *t, const struct cb_plan_cell *cell, bool cold,
			const struct cb_child_run *ch, double residency)
{
	char warn[256] = "";
	double bytes = (double)cell->dataset->files[cell->loader->format].bytes;
	if (cold && residency > CACHE_TOLERANCE)
		snprintf(warn, sizeof warn, "cold trial began with %.1f%% of the files cached",
			 residency * 100);
	else if (!cold && residency < 1 - CACHE_TOLERANCE)
		snprintf(warn, sizeof warn, "warm trial began with only %.1f%% of the files cached",
			 residency * 100);
	else if (cold && ch->io_ok && (double)ch->read_bytes < COLD_READ_FRACTION * bytes)
		snprintf(warn, sizeof warn,
			 "cold trial read %llu of %.0f bytes from storage "
			 "(no block I/O accounting here, or the loader skipped data)",
			 (unsigned long long)ch->read_bytes, bytes);
	json_object_set_new(t, "cache_ok", json_boolean(!*warn));
	if (*warn)
		json_object_set_new(t, "cache_warning", json_string(warn));
}

static json_t *timeline_json(const json_t *rep, const struct cb_child_run *ch)
{
	json_t *ts = json_array(), *anon = json_array(), *file = json_array(), *ph = json_array();
	for (size_t i = 0; i < ch->n_samples; i++) {
		json_array_append_new(ts, json_real(ch->samples[i].t_s));
		json_array_append_new(anon, u64_json(ch->samples[i].anon_bytes));
		json_array_append_new(
			file, u64_json(ch->samples[i].file_bytes + ch->samples[i].shmem_bytes));
	}
	const json_t *spans = json_object_get(rep, "phase_spans");
	for (size_t i = 0; i < json_array_size(spans); i++) {
		const json_t *s = json_array_get(spans, i);
		json_array_append_new(
			ph, json_pack("{s:O,s:f,s:f}", "name", json_object_get(s, "name"),
				      "start_s", cb_json_num(s, "start_mono") - ch->start_mono,
				      "end_s", cb_json_num(s, "end_mono") - ch->start_mono));
	}
	return json_pack("{s:o,s:o,s:o,s:n,s:o}", "t_s", ts, "anon_bytes", anon, "file_bytes", file,
			 "vram_bytes", "phases", ph);
}

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

/* The keys of the results file's contract first (docs/results-schema.md), in a fixed
 * order, then the extras. */
json_t *cb_trial_record(const struct cb_run *run, const struct cb_plan_cell *cell, bool cold,
			const struct cb_child_run *ch, double residency,
			const struct cb_error *cache_err)
{
	char report_problem[300];
	json_t *rep = parse_report(ch->report, report_problem, sizeof report_problem);
	json_t *t = json_object();
	json_t *outcome = json_object_get(rep, "outcome");
	json_object_set_new(t, "outcome",
			    json_is_string(outcome) ? json_incref(outcome) : json_string("error"));
	json_t *msg = json_object_get(rep, "message");
	json_object_set_new(t, "message", json_is_string(msg) ? json_incref(msg) : json_string(""));
	json_object_set_new(t, "wall_s",
			    isfinite(cb_json_num(rep, "wall_s"))
				    ? json_real(cb_json_num(rep, "wall_s"))
				    : json_null());
	json_t *phases = json_object_get(rep, "phases");
	json_object_set_new(t, "phases", phases ? json_incref(phases) : json_null());
	json_object_set_new(t, "baseline_rss_bytes",
			    u64_json(max_u64(0, cb_json_num(rep, "baseline_rss_bytes"))));
	set_peaks(t, rep, ch);
	const struct rusage *ru = &ch->rusage;
	json_object_set_new(t, "major_faults", u64_json((uint64_t)ru->ru_majflt));
	json_object_set_new(t, "minor_faults", u64_json((uint64_t)ru->ru_minflt));
	json_object_set_new(t, "read_bytes", ch->io_ok ? u64_json(ch->read_bytes) : json_null());
	json_object_set_new(t, "user_s", json_real(tv_s(ru->ru_utime)));
	json_object_set_new(t, "sys_s", json_real(tv_s(ru->ru_stime)));
	json_object_set_new(t, "residency_before",
			    isfinite(residency) ? json_real(residency) : json_null());
	json_object_set_new(t, "verified",
			    json_boolean(json_is_true(json_object_get(rep, "verified"))));
	/* Extras: the rest of the evidence. */
	json_object_set_new(t, "baseline_anon_bytes",
			    u64_json(max_u64(0, cb_json_num(rep, "baseline_anon_bytes"))));
	json_object_set_new(t, "baseline_file_bytes",
			    u64_json(max_u64(0, cb_json_num(rep, "baseline_file_bytes"))));
	json_object_set_new(t, "process_s", json_real(ch->elapsed_s));
	json_object_set_new(t, "inblock_bytes", u64_json((uint64_t)ru->ru_inblock * 512));
	json_object_set_new(t, "wait4_maxrss_bytes", u64_json((uint64_t)ru->ru_maxrss * 1024));
	json_object_set_new(t, "rchar", ch->io_ok ? u64_json(ch->rchar) : json_null());
	json_object_set_new(t, "samples", u64_json(ch->n_samples));
	json_object_set_new(t, "sampler_cpu_s", json_real(ch->watch_cpu_s));
	/* the load's instructions (bench/harness/perfcount.h), for compare --metric */
	json_t *instr = json_object_get(rep, "instructions");
	json_object_set_new(t, "instructions",
			    json_is_integer(instr) ? json_incref(instr) : json_null());
	json_t *mode = json_object_get(rep, "mode");
	if (json_is_string(mode))
		json_object_set(t, "mode", mode);
	/* A GPU loader's extras (trial.c report_vram); absent elsewhere. */
	static const char *const gpu_keys[] = {"baseline_vram_bytes", "vram_alloc_peak_bytes",
					       "vram_context_bytes",  "cuda_context_s",
					       "pinned_bytes",        "pinned_alloc_s",
					       "vram_source"};
	for (size_t k = 0; k < sizeof gpu_keys / sizeof gpu_keys[0]; k++) {
		json_t *v = json_object_get(rep, gpu_keys[k]);
		if (v)
			json_object_set(t, gpu_keys[k], v);
	}
	parent_outcome(t, run, ch, rep != NULL, report_problem);
	check_cache(t, cell, cold, ch, residency);
	if (cache_err) {
		char text[1600];
		cb_error_format(cache_err, text, sizeof text);
		json_object_set_new(t, "cache_ok", json_false());
		json_object_set_new(t, "cache_warning", json_string(text));
	}
	if (run->cfg->timeline)
		json_object_set_new(t, "timeline", timeline_json(rep, ch));
	/* Where in the run this trial came (0 first, warm-ups counted): the
	 * order the rounds were shuffled into, for whoever wants to look for
	 * order effects. */
	json_object_set_new(t, "run_seq", json_integer((json_int_t)run->done));
	/* The page cache's state the trial began in, as the preparation just
	 * before it left and measured it (cache.h: the resident share and the
	 * folio sizes holding the files); null when preparing it failed. */
	json_object_set_new(t, "cache_state",
			    cb_cache_state_json(cache_err ? NULL : cb_cache_last_state()));
	json_decref(rep);
	return t;
}

/* ---------------------------------------------------------------- cells */

/* True when every warm-up and measured trial's outcome is "unsupported". */
static bool cells_all_unsupported(const json_t *cell)
{
	static const char *const lists[] = {"warmup", "trials"};
	for (size_t k = 0; k < 2; k++) {
		const json_t *trials = json_object_get(cell, lists[k]);
		for (size_t i = 0; i < json_array_size(trials); i++) {
			const char *o = json_string_value(
				json_object_get(json_array_get(trials, i), "outcome"));
			if (!o || strcmp(o, "unsupported") != 0)
				return false;
		}
	}
	return true;
}

void cb_plan_cell_update(struct cb_run *run, struct cb_plan_cell *cell)
{
	static const char *const lists[] = {"warmup", "trials"};
	size_t bad = 0, all = 0;
	char reason[1600] = "";
	for (size_t k = 0; k < 2; k++) {
		const json_t *trials = json_object_get(cell->json, lists[k]);
		for (size_t i = 0; i < json_array_size(trials); i++, all++) {
			const json_t *t = json_array_get(trials, i);
			const char *o = json_string_value(json_object_get(t, "outcome"));
			if (o && strcmp(o, "ok") == 0)
				continue;
			if (bad++ == 0)
				snprintf(reason, sizeof reason, "%s: %s", o ? o : "?",
					 json_string_value(json_object_get(t, "message")));
		}
	}
	json_object_set_new(cell->json, "status", json_string(bad ? "failed" : "ok"));
	/* Every trial "unsupported" (the loader cannot read this checkpoint at
	 * all, trial.c): the cell is skipped with that reason, not failed. */
	if (bad && cells_all_unsupported(cell->json)) {
		json_object_set_new(cell->json, "status", json_string("skipped"));
		json_object_set_new(cell->json, "reason", json_string(reason));
		cb_results_summarize(cell->json, run->calibration);
		return;
	}
	if (bad) {
		char text[1700];
		snprintf(text, sizeof text, "%zu of %zu trials failed; first %s", bad, all, reason);
		json_object_set_new(cell->json, "reason", json_string(text));
	}
	cb_results_summarize(cell->json, run->calibration);
}

void cb_plan_mark_interrupted(struct cb_run *run)
{
	json_object_set_new(run->results.root, "interrupted", json_true());
	for (size_t i = 0; i < run->plan.n_cells; i++) {
		const struct cb_plan_cell *c = &run->plan.cells[i];
		if (!c->skipped &&
		    json_array_size(json_object_get(c->json, "trials")) < run->cfg->repeat)
			json_object_set_new(c->json, "incomplete", json_true());
	}
}
