/* Partial loads (loaders/format/slice.h, selection.h, tp_rules.h):
 *   - every preset, generated small, split for TP 1, 2, 4 and 8 with its
 *     shipped rules: every rank's slices placed back together are the whole
 *     tensor byte for byte (replicated ones equal on every rank), and
 *     cb_slice_hashes agrees with XXH3 of cb_slice_extract, first computed,
 *     then from the cache; a size TP does not divide is refused, naming
 *     vLLM;
 *   - a real torch.save file with tied weights and a transposed view, split
 *     in two by a rules file of the test's;
 *   - the refusals, each CB_EUSAGE in one line;
 *   - what a selection selects.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "check.h"
#include "ckpt.h"
#include "fileio.h"
#include "gen.h"
#include "manifest.h"
#include "slice.h"
#include "tensor_gather.h"
#include "tensor_hash.h"
#include "testfs.h"

static char *tmp_root;

static void print_error(const struct cb_error *err)
{
	char line[2048];
	cb_error_format(err, line, sizeof line);
	fprintf(stderr, "    error: %s [%s]\n", line, cb_error_name(err->code));
}

/* The error's one line, as the user would read it (without "ckptbench: "). */
static const char *error_line(const struct cb_error *err)
{
	static char line[2048];
	cb_error_format(err, line, sizeof line);
	return line;
}

/* A refusal as these tests want every one: CB_EUSAGE, one line, naming
 * `needle`. */
static void check_usage(int rc, const struct cb_error *err, const char *needle)
{
	CHECK(rc == CB_EUSAGE);
	CHECK(err->code == CB_EUSAGE);
	CHECK(strchr(error_line(err), '\n') == NULL);
	CHECK_CONTAINS(error_line(err), needle);
	if (rc != CB_EUSAGE || !strstr(error_line(err), needle))
		print_error(err);
}

static char *path_join(const char *dir, const char *name)
{
	char *p = cb_path_join(dir, name);
	if (!p)
		abort();
	return p;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		abort();
}

/* ------------------------------------------------------------ reading */

struct grow {
	uint8_t *p;
	size_t len;
};

static int append_sink(void *ctx, const void *buf, size_t len, struct cb_error *err)
{
	(void)err;
	struct grow *g = ctx;
	memcpy(g->p + g->len, buf, len);
	g->len += len;
	return CB_OK;
}

/* A tensor's logical bytes, row-major (a view gathered), malloc'd. */
static uint8_t *read_logical(const struct cb_ckpt *ck, const struct cb_ckpt_tensor *t)
{
	static uint8_t chunk[1 << 20];
	struct grow g = {malloc(t->nbytes ? t->nbytes : 1), 0};
	FILE *f = fopen(cb_ckpt_tensor_path(ck, t), "rb");
	struct cb_error err = CB_ERROR_INIT;
	if (!g.p || !f)
		abort();
	int rc = cb_tensor_stream(fileno(f), cb_ckpt_tensor_path(ck, t), t, chunk, sizeof chunk,
				  append_sink, &g, &err);
	fclose(f);
	CHECK(rc == CB_OK && g.len == t->nbytes);
	if (rc != CB_OK)
		print_error(&err);
	return g.p;
}

/* ------------------------------------------------------------ round trips */

/* The bytes of a slice's logical shape equal its nbytes. */
static void check_shape(const struct cb_manifest_tensor *mt, const struct cb_slice_tensor *s)
{
	uint64_t numel = 1, bytes = 0;
	for (uint32_t d = 0; d < s->rank; d++)
		numel *= s->shape[d];
	CHECK(s->rank == mt->rank);
	CHECK(cb_dtype_nbytes(mt->dtype, numel, &bytes, NULL));
	CHECK_EQ_U64(bytes, s->nbytes);
}

/* Every rank's plan of one TP size against the checkpoint's bytes: placed
 * together they are the whole tensor; a replicated tensor is whole on every
 * rank; the hashes (computed, then cached) are XXH3 of the extracts. */
static void check_ranks(const char *ckpt_path, enum cb_format fmt, const char *manifest_path,
			const struct cb_manifest *m, const struct cb_slice_plan *plans, unsigned tp,
			const struct cb_ckpt *ck)
{
	uint64_t **hashes = calloc(tp, sizeof *hashes);
	if (!hashes)
		abort();
	for (unsigned r = 0; r < tp; r++) {
		struct cb_error err = CB_ERROR_INIT;
		hashes[r] = calloc(plans[r].n ? plans[r].n : 1, sizeof **hashes);
		char cache[4096];
		CHECK(cb_slice_cache_path(manifest_path, &plans[r], cache, sizeof cache));
		unlink(cache); /* a fresh computation first */
		int rc = cb_slice_hashes(ckpt_path, fmt, manifest_path, m, &plans[r], hashes[r],
					 &err);
		CHECK(rc == CB_OK);
		if (rc != CB_OK)
			print_error(&err);
		struct stat st;
		CHECK(stat(cache, &st) == 0 && st.st_size > 0);
		/* the second call takes them from the cache: equal */
		uint64_t *again = calloc(plans[r].n ? plans[r].n : 1, sizeof *again);
		rc = cb_slice_hashes(ckpt_path, fmt, manifest_path, m, &plans[r], again, &err);
		CHECK(rc == CB_OK);
		CHECK(memcmp(again, hashes[r], plans[r].n * sizeof *again) == 0);
		free(again);
	}
	for (size_t i = 0; i < plans[0].n; i++) {
		const struct cb_manifest_tensor *mt = &m->tensors[plans[0].tensors[i].index];
		const struct cb_ckpt_tensor *ct = cb_ckpt_find(ck, mt->name);
		CHECK(ct != NULL);
		if (!ct)
			continue;
		uint8_t *whole = read_logical(ck, ct);
		uint8_t *rebuilt = malloc(mt->nbytes ? mt->nbytes : 1);
		/* the complement: a byte no rank places differs from the whole */
		for (uint64_t b = 0; b < mt->nbytes; b++)
			rebuilt[b] = (uint8_t)~whole[b];
		uint64_t sum = 0;
		bool hashes_ok = true, replicas_ok = true, same_role = true;
		for (unsigned r = 0; r < tp; r++) {
			const struct cb_slice_tensor *s = &plans[r].tensors[i];
			same_role = same_role && s->index == plans[0].tensors[i].index &&
				    s->role == plans[0].tensors[i].role;
			check_shape(mt, s);
			uint8_t *part = malloc(s->nbytes ? s->nbytes : 1);
			cb_slice_extract(part, whole, s);
			hashes_ok = hashes_ok && XXH3_64bits(part, s->nbytes) == hashes[r][i];
			if (s->role == CB_SPLIT_REPLICATE || s->role == CB_SPLIT_WHOLE)
				replicas_ok = replicas_ok && s->nbytes == mt->nbytes &&
					      memcmp(part, whole, mt->nbytes) == 0;
			cb_slice_place(rebuilt, part, s);
			sum += s->nbytes;
			free(part);
		}
		const struct cb_slice_tensor *s0 = &plans[0].tensors[i];
		bool split = s0->role != CB_SPLIT_REPLICATE && s0->role != CB_SPLIT_WHOLE;
		CHECK(same_role);
		CHECK(hashes_ok);
		CHECK(replicas_ok);
		CHECK(memcmp(rebuilt, whole, mt->nbytes) == 0);
		/* a split's ranks do not overlap: their bytes add up to the whole */
		CHECK_EQ_U64(split ? sum : sum / tp, mt->nbytes);
		if (!hashes_ok || memcmp(rebuilt, whole, mt->nbytes) != 0)
			fprintf(stderr, "    tp %u: %s (%s dim %u)\n", tp, mt->name,
				cb_split_role_name(s0->role), s0->dim);
		free(whole);
		free(rebuilt);
	}
	for (unsigned r = 0; r < tp; r++)
		free(hashes[r]);
	free(hashes);
}

struct preset_case {
	const char *preset;
	uint64_t size;
	enum cb_dtype dtype;
	bool splits_at_8; /* every split dim divides by 8 (vocab padded) */
};

static char *gen_dataset(const char *preset, uint64_t size, enum cb_dtype dtype, bool pytorch)
{
	struct cb_gen_options o;
	cb_gen_default_options(&o);
	o.preset = preset;
	o.size = size;
	o.dtype = dtype;
	o.out_dir = tmp_root;
	o.safetensors = true;
	o.pytorch = pytorch;
	o.no_sync = true;
	struct cb_gen_result res;
	struct cb_error err = CB_ERROR_INIT;
	int rc = cb_gen_dataset(&o, &res, &err);
	CHECK(rc == CB_OK);
	if (rc != CB_OK) {
		print_error(&err);
		return NULL;
	}
	char *dir = strdup(res.dir);
	cb_gen_result_free(&res);
	return dir;
}

static void test_preset(const struct preset_case *c)
{
	fprintf(stderr, "preset %s\n", c->preset);
	char *dir = gen_dataset(c->preset, c->size, c->dtype, false);
	if (!dir)
		return;
	char *manifest_path = path_join(dir, "manifest.json");
	struct cb_error err = CB_ERROR_INIT;
	struct cb_manifest *m = NULL;
	struct cb_tp_rules *rules = NULL;
	struct cb_ckpt *ck = NULL;
	CHECK(cb_manifest_read(manifest_path, &m, &err) == CB_OK);
	CHECK_STR_EQ(cb_slice_manifest_preset(m), c->preset);
	CHECK(cb_tp_rules_default(cb_slice_manifest_preset(m), &rules, &err) == CB_OK);
	CHECK(cb_ckpt_open(dir, CB_FORMAT_SAFETENSORS, &ck, &err) == CB_OK);
	if (!m || !rules || !ck) {
		print_error(&err);
		goto out;
	}
	char want[64];
	snprintf(want, sizeof want, "/%s.rules", c->preset);
	CHECK_CONTAINS(cb_tp_rules_source(rules), want);
	static const unsigned tps[] = {1, 2, 4, 8};
	for (size_t k = 0; k < 4; k++) {
		unsigned tp = tps[k];
		struct cb_slice_plan plans[8];
		unsigned built = 0;
		int rc = CB_OK;
		for (; built < tp; built++) {
			cb_error_clear(&err);
			rc = cb_slice_plan_build(m, NULL, tp > 1 ? rules : NULL, tp, built,
						 &plans[built], &err);
			if (rc != CB_OK)
				break;
		}
		if (rc != CB_OK) {
			/* only a preset whose sizes do not divide may refuse */
			CHECK(!c->splits_at_8);
			check_usage(rc, &err, "vLLM refuses such a size too");
			fprintf(stderr, "  tp %u refused: %s\n", tp, error_line(&err));
		} else {
			CHECK_EQ_U64(plans[0].n, m->n_tensors);
			CHECK_EQ_U64(plans[0].n_unmatched, 0);
			CHECK(plans[0].tp == tp && plans[tp - 1].rank == tp - 1);
			CHECK(tp == 1 || strcmp(plans[0].key, plans[1].key) != 0);
			check_ranks(dir, CB_FORMAT_SAFETENSORS, manifest_path, m, plans, tp, ck);
		}
		for (unsigned r = 0; r < built; r++)
			cb_slice_plan_free(&plans[r]);
	}
out:
	cb_ckpt_free(ck);
	cb_tp_rules_free(rules);
	cb_manifest_free(m);
	free(manifest_path);
	free(dir);
}

/* The vocabulary padding on gpt2: 50257 rows over 8 ranks of 6283 (the
 * last 6276); and hf-names.rules splits the llama, gpt2 and many-small
 * presets as their own files do. */
static void test_vocab_and_hf_names(void)
{
	fprintf(stderr, "vocab padding, hf-names.rules\n");
	struct cb_error err = CB_ERROR_INIT;
	struct cb_tp_rules *hf = NULL, *own = NULL;
	CHECK(cb_tp_rules_default(NULL, &hf, &err) == CB_OK);
	CHECK(hf && strstr(cb_tp_rules_source(hf), "/hf-names.rules"));
	static const struct {
		const char *preset;
		uint64_t size;
		enum cb_dtype dtype;
		unsigned tp;
	} cases[] = {
		{"gpt2", 0, CB_DTYPE_F4, 8},
		{"llama", 1 << 20, CB_DTYPE_F16, 8},
		{"many-small", 1 << 20, CB_DTYPE_F16, 2},
	};
	for (size_t p = 0; p < sizeof cases / sizeof cases[0] && hf; p++) {
		bool gpt2 = strcmp(cases[p].preset, "gpt2") == 0;
		char *dir = gen_dataset(cases[p].preset, cases[p].size, cases[p].dtype, false);
		if (!dir)
			continue;
		char *manifest_path = path_join(dir, "manifest.json");
		struct cb_manifest *m = NULL;
		CHECK(cb_manifest_read(manifest_path, &m, &err) == CB_OK);
		CHECK(cb_tp_rules_default(cases[p].preset, &own, &err) == CB_OK);
		for (unsigned r = 0; m && own && r < cases[p].tp; r++) {
			struct cb_slice_plan a, b;
			CHECK(cb_slice_plan_build(m, NULL, hf, cases[p].tp, r, &a, &err) == CB_OK);
			CHECK(cb_slice_plan_build(m, NULL, own, cases[p].tp, r, &b, &err) == CB_OK);
			if (err.code)
				break;
			CHECK_EQ_U64(a.n_unmatched, 0);
			bool same = a.n == b.n && a.asked_bytes == b.asked_bytes;
			for (size_t i = 0; same && i < a.n; i++)
				same = a.tensors[i].role == b.tensors[i].role &&
				       a.tensors[i].dim == b.tensors[i].dim &&
				       a.tensors[i].first == b.tensors[i].first &&
				       a.tensors[i].nbytes == b.tensors[i].nbytes;
			CHECK(same);
			/* the same slices, but not the same rules file: not the same key */
			CHECK(strcmp(a.key, b.key) != 0);
			if (gpt2) {
				const struct cb_manifest_tensor *wte =
					cb_manifest_find(m, "wte.weight");
				const struct cb_slice_tensor *s = NULL;
				for (size_t i = 0; i < b.n; i++)
					if (b.tensors[i].index == (size_t)(wte - m->tensors))
						s = &b.tensors[i];
				CHECK(s && s->role == CB_SPLIT_VOCAB && s->n_runs == 1);
				CHECK(s && s->shape[0] == (r < 7 ? 6283u : 50257u - 7 * 6283u));
				/* 768 F4 elements a row: 384 bytes */
				CHECK(s && s->first == (uint64_t)r * 6283 * 384);
			}
			cb_slice_plan_free(&a);
			cb_slice_plan_free(&b);
		}
		if (err.code)
			print_error(&err);
		cb_error_clear(&err);
		cb_tp_rules_free(own);
		own = NULL;
		cb_manifest_free(m);
		free(manifest_path);
		free(dir);
	}
	cb_tp_rules_free(hf);
}

/* The same plan read from the PyTorch file of a dataset gives the
 * safetensors file's hashes. */
static void test_pytorch_dataset(void)
{
	fprintf(stderr, "llama as pytorch\n");
	char *dir = gen_dataset("llama", 2 << 20, CB_DTYPE_BF16, true);
	if (!dir)
		return;
	char *manifest_path = path_join(dir, "manifest.json");
	struct cb_error err = CB_ERROR_INIT;
	struct cb_manifest *m = NULL;
	struct cb_tp_rules *rules = NULL;
	struct cb_slice_plan plan = {0};
	struct cb_selection *sel = NULL;
	CHECK(cb_manifest_read(manifest_path, &m, &err) == CB_OK);
	CHECK(cb_tp_rules_default("llama", &rules, &err) == CB_OK);
	CHECK(cb_selection_parse("layers.0-1,lm_head,embed_tokens", &sel, &err) == CB_OK);
	CHECK(m && rules && sel && cb_slice_plan_build(m, sel, rules, 4, 3, &plan, &err) == CB_OK);
	uint64_t *st = calloc(plan.n + 1, 8), *pt = calloc(plan.n + 1, 8);
	char cache[4096];
	CHECK(cb_slice_cache_path(manifest_path, &plan, cache, sizeof cache));
	CHECK(cb_slice_hashes(dir, CB_FORMAT_SAFETENSORS, manifest_path, m, &plan, st, &err) ==
	      CB_OK);
	unlink(cache); /* else the PyTorch call would read the cache */
	CHECK(cb_slice_hashes(dir, CB_FORMAT_PYTORCH, manifest_path, m, &plan, pt, &err) == CB_OK);
	CHECK(plan.n == 2 * 9 + 2 && memcmp(st, pt, plan.n * 8) == 0);
	/* a damaged cache is recomputed and rewritten, never believed */
	write_text(cache, "{\"version\": 1}\n");
	memset(pt, 0, plan.n * 8);
	CHECK(cb_slice_hashes(dir, CB_FORMAT_SAFETENSORS, manifest_path, m, &plan, pt, &err) ==
	      CB_OK);
	CHECK(memcmp(st, pt, plan.n * 8) == 0);
	char *text = NULL;
	size_t len = 0;
	CHECK(cb_read_small_file(cache, 1 << 20, &text, &len, &err) == CB_OK);
	CHECK(text && strstr(text, plan.key) != NULL);
	if (err.code)
		print_error(&err);
	free(text);
	free(st);
	free(pt);
	cb_slice_plan_free(&plan);
	cb_selection_free(sel);
	cb_tp_rules_free(rules);
	cb_manifest_free(m);
	free(manifest_path);
	free(dir);
}

/* ------------------------------------------------------------ torch.save */

/* Writes the manifest of a checkpoint file, hashes included, as inspect
 * --json would. */
static int write_manifest(const char *model, const char *manifest_path)
{
	struct cb_error err = CB_ERROR_INIT;
	struct cb_ckpt *ck;
	if (cb_ckpt_open(model, CB_FORMAT_ANY, &ck, &err) != CB_OK) {
		print_error(&err);
		return -1;
	}
	uint64_t *h = calloc(ck->n_tensors + 1, sizeof *h);
	int rc = cb_ckpt_hash(ck, h, 1, &err);
	json_t *doc = rc == CB_OK ? cb_manifest_build(ck, model, h) : NULL;
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	if (text)
		write_text(manifest_path, text);
	free(text);
	json_decref(doc);
	free(h);
	cb_ckpt_free(ck);
	return text ? 0 : -1;
}

static void test_torch_save(void)
{
	fprintf(stderr, "torch.save, tied weights and a view\n");
	if (system("/usr/bin/python3 -c 'import torch' 2>/dev/null") != 0) {
		fprintf(stderr, "  skipped: /usr/bin/python3 has no torch (python3-torch)\n");
		return;
	}
	char *model = path_join(tmp_root, "tied.pt");
	char *manifest_path = path_join(tmp_root, "tied.manifest.json");
	char *rules_path = path_join(tmp_root, "tied.rules");
	/* embed and lm_head share one storage (tied); proj_t is proj's
	 * transpose, a strided view of proj's storage; vocab 11 is odd */
	char cmd[2048];
	snprintf(cmd, sizeof cmd,
		 "/usr/bin/python3 -c 'import torch\n"
		 "torch.manual_seed(0)\n"
		 "e = torch.randn(11, 6)\n"
		 "w = torch.randn(8, 6)\n"
		 "sd = {\"embed.weight\": e, \"lm_head.weight\": e, \"proj.weight\": w,\n"
		 "      \"proj_t.weight\": w.t(), \"down.weight\": torch.randn(6, 8),\n"
		 "      \"norm.weight\": torch.ones(6), \"other\": torch.randn(3)}\n"
		 "torch.save(sd, \"%s\")'",
		 model);
	CHECK(system(cmd) == 0);
	write_text(rules_path, "# the test's rules\n"
			       "embed.weight    vocab 0\n"
			       "lm_head.weight  vocab 0\n"
			       "proj.weight     column 0\n"
			       "proj_t.weight   column 1   # a strided view, split on dim 1\n"
			       "down.weight     row 1\n"
			       "norm.weight     replicate\n");
	CHECK(write_manifest(model, manifest_path) == 0);
	struct cb_error err = CB_ERROR_INIT;
	struct cb_manifest *m = NULL;
	struct cb_tp_rules *rules = NULL;
	struct cb_ckpt *ck = NULL;
	struct cb_slice_plan plans[2] = {{0}};
	CHECK(cb_manifest_read(manifest_path, &m, &err) == CB_OK);
	CHECK(cb_tp_rules_load(rules_path, &rules, &err) == CB_OK);
	CHECK(cb_ckpt_open(model, CB_FORMAT_PYTORCH, &ck, &err) == CB_OK);
	if (!m || !rules || !ck) {
		print_error(&err);
		goto out;
	}
	const struct cb_ckpt_tensor *view = cb_ckpt_find(ck, "proj_t.weight");
	const struct cb_ckpt_tensor *e = cb_ckpt_find(ck, "embed.weight");
	const struct cb_ckpt_tensor *head = cb_ckpt_find(ck, "lm_head.weight");
	CHECK(view && view->stride != NULL);           /* really a view */
	CHECK(e && head && e->offset == head->offset); /* really tied */
	CHECK(cb_slice_plan_build(m, NULL, rules, 2, 0, &plans[0], &err) == CB_OK);
	CHECK(cb_slice_plan_build(m, NULL, rules, 2, 1, &plans[1], &err) == CB_OK);
	if (err.code) {
		print_error(&err);
		goto out;
	}
	CHECK_EQ_U64(plans[0].n_unmatched, 1);
	for (size_t i = 0; i < plans[0].n; i++)
		if (plans[0].tensors[i].unmatched)
			CHECK_STR_EQ(plans[0].tensors[i].name, "other");
	/* vocab 11 over 2: rows 0-5 and 6-10 */
	for (size_t i = 0; i < plans[1].n; i++)
		if (strcmp(plans[1].tensors[i].name, "embed.weight") == 0)
			CHECK(plans[1].tensors[i].shape[0] == 5 &&
			      plans[1].tensors[i].first == 6 * 6 * 4);
	check_ranks(model, CB_FORMAT_PYTORCH, manifest_path, m, plans, 2, ck);
out:
	cb_slice_plan_free(&plans[0]);
	cb_slice_plan_free(&plans[1]);
	cb_ckpt_free(ck);
	cb_tp_rules_free(rules);
	cb_manifest_free(m);
	free(model);
	free(manifest_path);
	free(rules_path);
}

/* ------------------------------------------------------------ refusals */

/* A manifest by hand: "name dtype d0xd1..." entries. */
static struct cb_manifest *hand_manifest(const char *file, const char *json_tensors)
{
	char *path = path_join(tmp_root, file);
	char *text = NULL;
	if (asprintf(&text,
		     "{\"path\": \"hand\", \"format\": \"safetensors\", \"dataset\": "
		     "{\"name\": \"hand-made\"}, \"tensors\": [%s]}",
		     json_tensors) < 0)
		abort();
	write_text(path, text);
	struct cb_manifest *m = NULL;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_manifest_read(path, &m, &err) == CB_OK);
	free(text);
	free(path);
	return m;
}

static struct cb_tp_rules *rules_from(const char *text)
{
	struct cb_tp_rules *r = NULL;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_tp_rules_parse(text, strlen(text), "test.rules", &r, &err) == CB_OK);
	if (err.code)
		print_error(&err);
	return r;
}

static void test_refusals(void)
{
	fprintf(stderr, "refusals\n");
	struct cb_manifest *m = hand_manifest(
		"refuse.json",
		"{\"name\": \"a.weight\", \"dtype\": \"F32\", \"shape\": [6, 4], \"nbytes\": 96},"
		"{\"name\": \"b.weight\", \"dtype\": \"F4\", \"shape\": [2, 2], \"nbytes\": 2},"
		"{\"name\": \"n.weight\", \"dtype\": \"F32\", \"shape\": [4], \"nbytes\": 16}");
	struct cb_tp_rules *rules = rules_from("a.weight column 0\nb.weight column 1\n"
					       "n.weight row 1\n");
	struct cb_slice_plan plan;
	struct cb_error err = CB_ERROR_INIT;
	struct cb_selection *sel = NULL;
	if (!m || !rules)
		goto out;

	check_usage(cb_slice_plan_build(m, NULL, rules, 0, 0, &plan, &err), &err, "TP size of 0");
	cb_error_clear(&err);
	check_usage(cb_slice_plan_build(m, NULL, rules, 4, 4, &plan, &err), &err,
		    "rank 4 of TP size 4");
	cb_error_clear(&err);
	check_usage(cb_slice_plan_build(m, NULL, NULL, 1, 1, &plan, &err), &err, "rank 1");

	/* a.weight's dim 0 of 6 over 4 */
	CHECK(cb_selection_parse("a.weight", &sel, &err) == CB_OK);
	cb_error_clear(&err);
	check_usage(cb_slice_plan_build(m, sel, rules, 4, 0, &plan, &err), &err,
		    "tensor a.weight: dim 0 of size 6 does not divide by the TP size 4");
	CHECK_CONTAINS(error_line(&err), "vLLM refuses such a size too");
	cb_selection_free(sel);
	sel = NULL;

	/* a rule's dim the tensor lacks */
	CHECK(cb_selection_parse("n", &sel, &err) == CB_OK);
	cb_error_clear(&err);
	check_usage(cb_slice_plan_build(m, sel, rules, 2, 0, &plan, &err), &err,
		    "test.rules line 3 splits row on dim 1, but tensor n.weight has 1 dim");
	cb_selection_free(sel);
	sel = NULL;

	/* half a byte of F4 per rank: not refused as usage, but unsupported */
	CHECK(cb_selection_parse("b.weight", &sel, &err) == CB_OK);
	cb_error_clear(&err);
	CHECK(cb_slice_plan_build(m, sel, rules, 2, 0, &plan, &err) == CB_EUNSUPPORTED);
	CHECK_CONTAINS(error_line(&err), "byte boundaries");
	cb_selection_free(sel);
	sel = NULL;

	/* a selection that matches nothing, alone and in a list */
	CHECK(cb_selection_parse("nothing.here", &sel, &err) == CB_OK);
	cb_error_clear(&err);
	check_usage(cb_slice_plan_build(m, sel, NULL, 1, 0, &plan, &err), &err,
		    "selection \"nothing.here\" matches no tensor of hand-made");
	cb_selection_free(sel);
	sel = NULL;
	CHECK(cb_selection_parse("a.weight,zz*", &sel, &err) == CB_OK);
	cb_error_clear(&err);
	check_usage(cb_slice_plan_build(m, sel, NULL, 1, 0, &plan, &err), &err,
		    "its pattern \"zz*\" matches no tensor of hand-made");
	cb_selection_free(sel);
	sel = NULL;

	/* invalid patterns */
	static const struct {
		const char *text, *needle;
	} bad[] = {
		{"layers.7-3", "the range 7-3 is empty"},
		{"[abc", "a [ with no closing ]"},
		{"x.[abc", "a [ with no closing ]"},
		{"h.[[:digit:].x", "a [ with no closing ]"},
		{"", "an empty selection"},
		{"a,,b", "an empty pattern"},
		{"a,", "an empty pattern"},
		{"layers.99999999999999999999-1", "over 2^64-1"},
		{"a\\", "lone \\"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cb_error_clear(&err);
		check_usage(cb_selection_parse(bad[i].text, &sel, &err), &err, bad[i].needle);
		CHECK(sel == NULL);
	}

	/* rules files with a bad line: the file and the line are named */
	static const struct {
		const char *text, *needle;
	} bad_rules[] = {
		{"# ok\na.weight column 0\nb.weight diagonal 0\n", "line 3: unknown role"},
		{"a.weight column\n", "line 1: column needs a DIM"},
		{"\n\na.weight replicate 0\n", "line 3: replicate takes no DIM"},
		{"a.weight row x\n", "line 1: DIM \"x\""},
		{"a.weight row 64\n", "line 1: DIM \"64\""},
		{"a.weight\n", "line 1: a rule is GLOB ROLE [DIM]"},
		{"a.weight row 1 2\n", "more than three"},
		{"a.[weight row 1\n", "line 1 \"a.[weight\": a [ with no closing ]"},
	};
	char *rules_path = path_join(tmp_root, "bad.rules");
	for (size_t i = 0; i < sizeof bad_rules / sizeof bad_rules[0]; i++) {
		struct cb_tp_rules *r = NULL;
		write_text(rules_path, bad_rules[i].text);
		cb_error_clear(&err);
		check_usage(cb_tp_rules_load(rules_path, &r, &err), &err, bad_rules[i].needle);
		CHECK_CONTAINS(error_line(&err), rules_path);
		CHECK(r == NULL);
	}
	free(rules_path);
	struct cb_tp_rules *r = NULL;
	cb_error_clear(&err);
	check_usage(cb_tp_rules_default("../etc/x", &r, &err), &err, "not a name");
	/* a preset without a file of its own falls back to hf-names.rules */
	cb_error_clear(&err);
	CHECK(cb_tp_rules_default("no-such-preset", &r, &err) == CB_OK);
	CHECK(r && strstr(cb_tp_rules_source(r), "/hf-names.rules"));
	cb_tp_rules_free(r);
out:
	cb_selection_free(sel);
	cb_tp_rules_free(rules);
	cb_manifest_free(m);
}

/* ------------------------------------------------------------ selections */

static bool selects(const char *text, const char *name)
{
	struct cb_selection *sel = NULL;
	struct cb_error err = CB_ERROR_INIT;
	if (cb_selection_parse(text, &sel, &err) != CB_OK) {
		print_error(&err);
		return false;
	}
	bool hit = cb_selection_match(sel, name);
	cb_selection_free(sel);
	return hit;
}

/* The names of the llama dataset's plan for `text`, each checked by
 * `want`, and their count. */
static size_t plan_names(const struct cb_manifest *m, const char *text,
			 bool (*want)(const char *name))
{
	struct cb_selection *sel = NULL;
	struct cb_slice_plan plan;
	struct cb_error err = CB_ERROR_INIT;
	if (cb_selection_parse(text, &sel, &err) != CB_OK ||
	    cb_slice_plan_build(m, sel, NULL, 1, 0, &plan, &err) != CB_OK) {
		print_error(&err);
		cb_selection_free(sel);
		CHECK(false);
		return 0;
	}
	size_t wanted = 0;
	for (size_t i = 0; i < m->n_tensors; i++)
		wanted += want(m->tensors[i].name);
	bool all = true;
	for (size_t i = 0; i < plan.n; i++)
		all = all && want(plan.tensors[i].name) && plan.tensors[i].role == CB_SPLIT_WHOLE;
	CHECK(all);
	CHECK_EQ_U64(plan.n, wanted);
	CHECK(plan.key[0] != '\0');
	size_t n = plan.n;
	cb_slice_plan_free(&plan);
	cb_selection_free(sel);
	return n;
}

static bool in_layers_0_1(const char *name)
{
	return strncmp(name, "model.layers.0.", 15) == 0 ||
	       strncmp(name, "model.layers.1.", 15) == 0;
}

static bool is_lm_head(const char *name)
{
	return strcmp(name, "lm_head.weight") == 0;
}

static bool in_mlp(const char *name)
{
	return strstr(name, ".mlp.") != NULL;
}

static void test_selection(void)
{
	fprintf(stderr, "selection\n");
	/* ranges and plain patterns: whole components, anywhere */
	CHECK(selects("layers.0-7", "model.layers.3.mlp.up_proj.weight"));
	CHECK(selects("layers.0-7", "model.layers.07.mlp.up_proj.weight"));
	CHECK(!selects("layers.0-7", "model.layers.12.mlp.up_proj.weight"));
	CHECK(!selects("layers.0-7", "model.layers.8.mlp.up_proj.weight"));
	CHECK(!selects("layers.0-7", "model.xlayers.3.w"));
	CHECK(!selects("layers.0-7", "model.layers.3x.w"));
	CHECK(selects("layers.10-12", "layers.12"));
	CHECK(selects("lm_head", "lm_head.weight"));
	CHECK(!selects("lm_head", "model.lm_head_x.weight"));
	CHECK(selects("mlp.up_proj", "model.layers.3.mlp.up_proj.weight"));
	/* globs: the whole name, `*` across dots */
	CHECK(selects("model.layers.0-7.*", "model.layers.5.self_attn.q_proj.weight"));
	CHECK(!selects("model.layers.0-7.*", "x.model.layers.5.q"));
	CHECK(selects("*.mlp.*", "model.layers.5.mlp.down_proj.weight"));
	CHECK(!selects("*.mlp.*", "model.layers.5.mlpx.down_proj.weight"));
	CHECK(selects("*.self_attn.[qk]_proj.weight", "m.self_attn.k_proj.weight"));
	CHECK(!selects("*.self_attn.[qk]_proj.weight", "m.self_attn.v_proj.weight"));
	CHECK(selects("*.self_attn.[!qk]_proj.weight", "m.self_attn.v_proj.weight"));
	CHECK(selects("h.?.ln_1.*", "h.3.ln_1.bias"));
	CHECK(selects("h.[[:digit:]].ln_1.*", "h.3.ln_1.bias"));
	CHECK(!selects("h.[[:digit:]].ln_1.*", "h.x.ln_1.bias"));
	CHECK(!selects("h.?.ln_1.*", "h.11.ln_1.bias"));
	CHECK(selects("*.1-2.*", "a.b.2.c"));
	CHECK(selects("a\\*b", "a*b") && !selects("a\\*b", "axb"));
	CHECK(selects("x.*a*a*a*b", "x.aaaaaaaaaaaaaaaaab"));
	CHECK(!selects("x.*a*a*a*b", "x.aaaaaaaaaaaaaaaaaa"));
	CHECK(selects("zz,lm_head", "lm_head.weight"));

	/* on a llama dataset of 2 MiB: more than two layers */
	char *dir = gen_dataset("llama", 2 << 20, CB_DTYPE_F16, false);
	if (!dir)
		return;
	char *manifest_path = path_join(dir, "manifest.json");
	struct cb_manifest *m = NULL;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_manifest_read(manifest_path, &m, &err) == CB_OK);
	if (m) {
		CHECK_EQ_U64(plan_names(m, "layers.0-1", in_layers_0_1), 18);
		CHECK_EQ_U64(plan_names(m, "lm_head", is_lm_head), 1);
		CHECK(plan_names(m, "*.mlp.*", in_mlp) > 0);
		CHECK_EQ_U64(plan_names(m, "model.layers.0-1.*", in_layers_0_1), 18);
	}
	cb_manifest_free(m);
	free(manifest_path);
	free(dir);
}

int main(void)
{
	tmp_root = testfs_mkdtemp("slice");
	if (!tmp_root)
		return 1;
	test_selection();
	test_refusals();
	static const struct preset_case presets[] = {
		{"llama", 1 << 20, CB_DTYPE_F16, true},
		/* gpt2 has its fixed size; in F4 it is 68 MB */
		{"gpt2", 0, CB_DTYPE_F4, true},
		{"many-small", 1 << 20, CB_DTYPE_F16, false},
		{"few-large", 1 << 20, CB_DTYPE_F16, true},
	};
	for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
		test_preset(&presets[i]);
	test_vocab_and_hf_names();
	test_pytorch_dataset();
	test_torch_save();
	testfs_remove_tree(tmp_root);
	free(tmp_root);
	return check_finish("test_slice");
}
