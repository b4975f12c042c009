/* The parts of a partial-load run (`run --select`, `--tp`;
 * docs/partial-loads.md): for each dataset, one part per (split, rank),
 * each written as a part file (part_file.h) that every trial of its cells
 * is given.
 *
 * Everything that reads the checkpoint for a part happens here, when the
 * run is planned, outside every timed region: the plan (slice.h), and the
 * expected hashes of its slices (cb_slice_hashes, cached beside the
 * manifest). A selection that matches nothing, a split that does not
 * divide a dimension, a rank out of range: CB_EUSAGE, so `run` exits 2
 * before any trial.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"
#include "dist.h"
#include "fileio.h"
#include "manifest.h"
#include "part_file.h"
#include "run_plan.h"
#include "slice.h"

/* The format whose files the expected hashes are read from: the manifest
 * is the same for both, so either will do; safetensors reads fastest. */
static enum cb_format hash_format(const struct cb_plan_dataset *d)
{
	return d->files[CB_FORMAT_SAFETENSORS].present ? CB_FORMAT_SAFETENSORS : CB_FORMAT_PYTORCH;
}

static const char *base_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* The cells' "selection" object: the patterns, the split, the rank, and
 * the rules file's name (its name only: a path would differ between
 * machines and split one cell in two). */
static json_t *selection_json(const char *select, const struct cb_selection *sel, unsigned tp,
			      unsigned rank, const struct cb_tp_rules *rules)
{
	json_t *patterns = json_null();
	if (sel) {
		patterns = json_array();
		for (size_t i = 0; patterns && i < cb_selection_count(sel); i++)
			json_array_append_new(patterns, json_string(cb_selection_pattern(sel, i)));
	}
	(void)select;
	return json_pack("{s:o*,s:I,s:I,s:s?}", "select", patterns, "tp", (json_int_t)tp, "rank",
			 (json_int_t)rank, "rules",
			 rules && tp > 1 ? base_of(cb_tp_rules_source(rules)) : NULL);
}

/* The bytes of the file pages the part's runs lie in, each page counted
 * once: what storage must read at the least, since it reads pages. A row
 * split's runs shorter than a page (a slice of each row of a weight) cover
 * every page of the tensor. From the format whose hashes are read. */
static int page_bytes(const struct cb_plan_dataset *d, const struct cb_manifest *m,
		      const struct cb_slice_plan *plan, uint64_t *out, struct cb_error *err)
{
	struct cb_ckpt *ckpt = NULL;
	int rc = cb_ckpt_open(d->path, hash_format(d), &ckpt, err);
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), total = 0;
	for (size_t i = 0; rc == CB_OK && i < plan->n; i++) {
		const struct cb_slice_tensor *s = &plan->tensors[i];
		const struct cb_ckpt_tensor *t = cb_ckpt_find(ckpt, m->tensors[s->index].name);
		if (!t) {
			rc = CB_FAIL(err, CB_EMISMATCH, d->path, m->tensors[s->index].name,
				     "the checkpoint lacks a tensor of the manifest");
			break;
		}
		/* Runs are in ascending order: a page already counted is the one
		 * the previous run ended in. */
		uint64_t counted_end = 0;
		for (uint64_t k = 0; k < s->n_runs && s->run_len; k++) {
			uint64_t lo = (t->offset + s->first + k * s->stride) / page * page;
			uint64_t hi =
				(t->offset + s->first + k * s->stride + s->run_len + page - 1) /
				page * page;
			if (lo < counted_end)
				lo = counted_end;
			if (hi > lo)
				total += hi - lo;
			counted_end = hi > counted_end ? hi : counted_end;
		}
	}
	cb_ckpt_free(ckpt);
	*out = total;
	return rc;
}

/* One part of dataset d: its plan, hashes and part file. */
static int make_part(const struct cb_run *run, struct cb_plan_dataset *d,
		     const struct cb_manifest *m, const struct cb_selection *sel,
		     const struct cb_tp_rules *rules, unsigned tp, unsigned rank,
		     struct cb_plan_part *out, struct cb_error *err)
{
	struct cb_slice_plan plan;
	int rc = cb_slice_plan_build(m, sel, tp > 1 ? rules : NULL, tp, rank, &plan, err);
	if (rc != CB_OK)
		return rc;
	uint64_t *hashes = calloc(plan.n ? plan.n : 1, sizeof *hashes);
	char cache[4096], path[4200];
	if (!hashes)
		rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	else if (!cb_slice_cache_path(d->manifest, &plan, cache, sizeof cache))
		rc = CB_FAIL(err, CB_ELIMIT, d->manifest, NULL, "path too long");
	if (rc == CB_OK) {
		if (run->cfg->progress)
			fprintf(stderr, "hashing the slices of %s, split %u, rank %u ...\n",
				d->name, tp, rank);
		rc = cb_slice_hashes(d->path, hash_format(d), d->manifest, m, &plan, hashes, err);
	}
	if (rc == CB_OK) {
		/* Beside the hash cache, named after it: "<key>.part.json". */
		size_t len = strlen(cache);
		snprintf(path, sizeof path, "%.*s.part.json", (int)(len > 5 ? len - 5 : len),
			 cache);
		rc = cb_part_file_write(path, m, &plan, hashes, sel ? cb_selection_text(sel) : NULL,
					tp > 1 ? base_of(cb_tp_rules_source(rules)) : NULL, err);
	}
	uint64_t pages = 0;
	if (rc == CB_OK)
		rc = page_bytes(d, m, &plan, &pages, err);
	if (rc == CB_OK) {
		*out = (struct cb_plan_part){
			.asked_page_bytes = pages,
			.tp = tp,
			.rank = rank,
			.path = strdup(path),
			.selection = selection_json(NULL, sel, tp, rank, rules),
			.asked_bytes = plan.asked_bytes,
			.unmatched = plan.n_unmatched,
		};
		if (!out->path || !out->selection)
			rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	free(hashes);
	cb_slice_plan_free(&plan);
	return rc;
}

/* The (split, rank) pairs asked: every rank of each split, or rank R of
 * each; a split of 1 without a selection is the whole model, which needs no
 * part (its cells are the plain ones). */
static int dataset_parts(const struct cb_run *run, struct cb_plan_dataset *d,
			 const struct cb_selection *sel, struct cb_error *err)
{
	const struct cb_run_config *cfg = run->cfg;
	struct cb_manifest *m = NULL;
	struct cb_tp_rules *rules = NULL;
	int rc = cb_manifest_read(d->manifest, &m, err);
	bool split = false;
	for (size_t i = 0; i < cfg->n_tp; i++)
		split |= cfg->tp[i] > 1;
	if (rc == CB_OK && split)
		rc = cfg->tp_rules ? cb_tp_rules_load(cfg->tp_rules, &rules, err)
				   : cb_tp_rules_default(cb_slice_manifest_preset(m), &rules, err);
	size_t total = 0;
	for (size_t i = 0; i < cfg->n_tp; i++)
		total += cfg->tp_rank >= 0 ? 1 : cfg->tp[i];
	d->parts = calloc(total ? total : 1, sizeof *d->parts);
	if (rc == CB_OK && !d->parts)
		rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; rc == CB_OK && i < cfg->n_tp; i++) {
		unsigned tp = cfg->tp[i];
		if (tp == 1 && !sel) {
			d->whole_too = true;
			continue;
		}
		/* A split of 1 has rank 0 alone, whatever :R says of the others. */
		if (tp > 1 && cfg->tp_rank >= 0 && (unsigned)cfg->tp_rank >= tp) {
			rc = CB_FAIL(err, CB_EUSAGE, NULL, NULL,
				     "--tp: rank %d is out of range for a split of %u (0 to %u)",
				     cfg->tp_rank, tp, tp - 1);
			break;
		}
		unsigned first = cfg->tp_rank >= 0 && tp > 1 ? (unsigned)cfg->tp_rank : 0;
		unsigned last = cfg->tp_rank >= 0 ? first + 1 : tp;
		for (unsigned r = first; rc == CB_OK && r < last; r++)
			rc = make_part(run, d, m, sel, rules, tp, r, &d->parts[d->n_parts++], err);
	}
	cb_tp_rules_free(rules);
	cb_manifest_free(m);
	return rc;
}

int cb_plan_parts_build(struct cb_run *run, struct cb_error *err)
{
	const struct cb_run_config *cfg = run->cfg;
	if (!cfg->select && cfg->n_tp == 0) {
		for (size_t d = 0; d < run->plan.n_datasets; d++)
			run->plan.datasets[d].whole_too = true;
		return CB_OK;
	}
	struct cb_selection *sel = NULL;
	int rc = cfg->select ? cb_selection_parse(cfg->select, &sel, err) : CB_OK;
	for (size_t d = 0; rc == CB_OK && d < run->plan.n_datasets; d++) {
		struct cb_plan_dataset *ds = &run->plan.datasets[d];
		if (cfg->n_tp == 0) { /* a selection alone: one part, no split */
			struct cb_manifest *m = NULL;
			ds->parts = calloc(1, sizeof *ds->parts);
			rc = ds->parts ? cb_manifest_read(ds->manifest, &m, err)
				       : CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
			if (rc == CB_OK)
				rc = make_part(run, ds, m, sel, NULL, 1, 0, &ds->parts[0], err);
			ds->n_parts = rc == CB_OK;
			cb_manifest_free(m);
		} else {
			rc = dataset_parts(run, ds, sel, err);
		}
	}
	cb_selection_free(sel);
	return rc;
}

void cb_plan_parts_free(struct cb_plan_dataset *d)
{
	for (int f = 0; f < 3; f++) {
		free(d->rank_part[f].path);
		json_decref(d->rank_part[f].selection);
		d->rank_part[f] = (struct cb_plan_part){0};
	}
	for (size_t i = 0; i < d->n_parts; i++) {
		free(d->parts[i].path);
		json_decref(d->parts[i].selection);
	}
	free(d->parts);
	d->parts = NULL;
	d->n_parts = 0;
}

/* ------------------------------------------------------------ ranks' parts */

/* A part of whole tensors: those of `ckpt` that lie in the files marked in
 * `mine` (the files a rank of --dist files loads), their hashes the
 * manifest's own. */
static int files_plan(const struct cb_manifest *m, const struct cb_ckpt *ckpt, const bool *mine,
		      struct cb_slice_plan *plan, uint64_t **hashes, struct cb_error *err)
{
	*plan = (struct cb_slice_plan){.tp = 1};
	plan->tensors = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *plan->tensors);
	*hashes = calloc(m->n_tensors ? m->n_tensors : 1, sizeof **hashes);
	if (!plan->tensors || !*hashes)
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	for (size_t i = 0; i < m->n_tensors; i++) {
		const struct cb_manifest_tensor *t = &m->tensors[i];
		const struct cb_ckpt_tensor *have = cb_ckpt_find(ckpt, t->name);
		if (!have || t->rank > CB_SLICE_MAX_RANK || !t->has_hash)
			return CB_FAIL(err, CB_EMISMATCH, ckpt->path, t->name,
				       "the checkpoint and its manifest disagree on this tensor");
		if (!mine[have->file])
			continue;
		struct cb_slice_tensor *s = &plan->tensors[plan->n];
		*s = (struct cb_slice_tensor){
			.index = i,
			.name = t->name,
			.role = CB_SPLIT_WHOLE,
			.rank = t->rank,
			.nbytes = t->nbytes,
			.run_len = t->nbytes,
			.stride = t->nbytes,
			.n_runs = t->nbytes ? 1 : 0,
		};
		for (uint32_t d = 0; d < t->rank; d++)
			s->shape[d] = t->shape[d];
		(*hashes)[plan->n++] = t->xxh3;
		plan->asked_bytes += t->nbytes;
	}
	return CB_OK;
}

/* The part a rank of --dist files loads for format `fmt` of dataset d. */
static int files_part(const struct cb_run *run, struct cb_plan_dataset *d,
		      const struct cb_manifest *m, enum cb_format fmt, int rank, int size,
		      struct cb_plan_part *out, struct cb_error *err)
{
	struct cb_ckpt *ckpt = NULL;
	int rc = cb_ckpt_open(d->path, fmt, &ckpt, err);
	if (rc != CB_OK)
		return rc;
	bool *mine = calloc(ckpt->n_files ? ckpt->n_files : 1, sizeof *mine);
	size_t *idx = calloc(ckpt->n_files ? ckpt->n_files : 1, sizeof *idx);
	struct cb_slice_plan plan = {0};
	uint64_t *hashes = NULL;
	char path[4200];
	if (!mine || !idx)
		rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	size_t n = rc == CB_OK ? cb_dist_rank_files(run->cfg->dist, ckpt->n_files, rank, size, idx)
			       : 0;
	for (size_t i = 0; i < n; i++)
		mine[idx[i]] = true;
	if (rc == CB_OK)
		rc = files_plan(m, ckpt, mine, &plan, &hashes, err);
	if (rc == CB_OK) {
		char dir[4096];
		snprintf(dir, sizeof dir, "%s.slices", d->manifest);
		rc = cb_mkdir_p(dir, err);
		snprintf(path, sizeof path, "%s/files-%s-r%dof%d.part.json", dir,
			 cb_format_name(fmt), rank, size);
	}
	if (rc == CB_OK)
		rc = cb_part_file_write(path, m, &plan, hashes, NULL, NULL, err);
	if (rc == CB_OK) {
		*out = (struct cb_plan_part){
			.tp = 1, .path = strdup(path), .asked_bytes = plan.asked_bytes};
		if (!out->path)
			rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	free(hashes);
	free(mine);
	free(idx);
	cb_slice_plan_free(&plan);
	cb_ckpt_free(ckpt);
	return rc;
}

int cb_plan_rank_parts(struct cb_run *run, int rank, int size, struct cb_error *err)
{
	const struct cb_run_config *cfg = run->cfg;
	if (cfg->dist == CB_DIST_REPLICATE)
		return CB_OK;
	int rc = CB_OK;
	for (size_t i = 0; rc == CB_OK && i < run->plan.n_datasets; i++) {
		struct cb_plan_dataset *d = &run->plan.datasets[i];
		struct cb_manifest *m = NULL;
		struct cb_tp_rules *rules = NULL;
		rc = cb_manifest_read(d->manifest, &m, err);
		if (rc == CB_OK && cfg->dist == CB_DIST_TP && size > 1)
			rc = cfg->tp_rules ? cb_tp_rules_load(cfg->tp_rules, &rules, err)
					   : cb_tp_rules_default(cb_slice_manifest_preset(m),
								 &rules, err);
		for (int f = CB_FORMAT_SAFETENSORS; rc == CB_OK && f <= CB_FORMAT_PYTORCH; f++) {
			if (!d->files[f].present)
				continue;
			if (cfg->dist == CB_DIST_FILES)
				rc = files_part(run, d, m, (enum cb_format)f, rank, size,
						&d->rank_part[f], err);
			else /* the same part file for both: the second is the cache's */
				rc = make_part(run, d, m, NULL, rules, (unsigned)size,
					       (unsigned)rank, &d->rank_part[f], err);
		}
		cb_tp_rules_free(rules);
		cb_manifest_free(m);
	}
	return rc;
}
