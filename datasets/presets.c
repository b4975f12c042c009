/* Preset architectures. gpt2 is GPT-2 small exactly as its published
 * model.safetensors holds it (the attention masks `h.N.attn.bias` included,
 * tied lm_head omitted: 548 MB in F32). llama is a Llama-2-style decoder
 * whose width, depth and MLP size are searched to land on a byte size. */
#include "presets.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const preset_names[] = {"gpt2", "llama", "many-small", "few-large", NULL};

const char *const *cb_preset_names(void)
{
	return preset_names;
}

int cb_preset_fixed_size(const char *preset)
{
	return strcmp(preset, "gpt2") == 0;
}

uint64_t cb_preset_default_size(const char *preset)
{
	if (strcmp(preset, "gpt2") == 0)
		return 0;
	if (strcmp(preset, "many-small") == 0)
		return 64ull << 20;
	return 256ull << 20;
}

enum cb_dtype cb_preset_default_dtype(const char *preset)
{
	return strcmp(preset, "gpt2") == 0 ? CB_DTYPE_F32 : CB_DTYPE_F16;
}

void cb_model_spec_free(struct cb_model_spec *spec)
{
	for (size_t i = 0; i < spec->n; i++)
		free(spec->tensors[i].name);
	free(spec->tensors);
	memset(spec, 0, sizeof *spec);
}

/* A builder that grows the tensor list; the first failure sticks. */
struct builder {
	struct cb_model_spec *spec;
	size_t cap;
	bool failed;
};

static void add(struct builder *b, uint64_t d0, uint64_t d1, uint64_t d2, uint64_t d3,
		uint32_t rank, const char *fmt, ...) CB_PRINTF(7, 8);

static void add(struct builder *b, uint64_t d0, uint64_t d1, uint64_t d2, uint64_t d3,
		uint32_t rank, const char *fmt, ...)
{
	if (b->failed)
		return;
	struct cb_model_spec *spec = b->spec;
	if (spec->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		void *grown = realloc(spec->tensors, cap * sizeof *spec->tensors);
		if (!grown) {
			b->failed = true;
			return;
		}
		spec->tensors = grown;
		b->cap = cap;
	}
	struct cb_preset_tensor *t = &spec->tensors[spec->n];
	va_list ap;
	va_start(ap, fmt);
	int len = vasprintf(&t->name, fmt, ap);
	va_end(ap);
	if (len < 0) {
		b->failed = true;
		return;
	}
	t->rank = rank;
	uint64_t dims[4] = {d0, d1, d2, d3};
	memcpy(t->shape, dims, sizeof dims);
	spec->n++;
}

#define ADD1(b, a, ...) add(b, a, 0, 0, 0, 1, __VA_ARGS__)
#define ADD2(b, a, c, ...) add(b, a, c, 0, 0, 2, __VA_ARGS__)

static void build_gpt2(struct builder *b)
{
	const uint64_t vocab = 50257, context = 1024, width = 768, layers = 12;
	ADD2(b, vocab, width, "wte.weight");
	ADD2(b, context, width, "wpe.weight");
	for (uint64_t l = 0; l < layers; l++) {
		ADD1(b, width, "h.%llu.ln_1.weight", (unsigned long long)l);
		ADD1(b, width, "h.%llu.ln_1.bias", (unsigned long long)l);
		add(b, 1, 1, context, context, 4, "h.%llu.attn.bias", (unsigned long long)l);
		ADD2(b, width, 3 * width, "h.%llu.attn.c_attn.weight", (unsigned long long)l);
		ADD1(b, 3 * width, "h.%llu.attn.c_attn.bias", (unsigned long long)l);
		ADD2(b, width, width, "h.%llu.attn.c_proj.weight", (unsigned long long)l);
		ADD1(b, width, "h.%llu.attn.c_proj.bias", (unsigned long long)l);
		ADD1(b, width, "h.%llu.ln_2.weight", (unsigned long long)l);
		ADD1(b, width, "h.%llu.ln_2.bias", (unsigned long long)l);
		ADD2(b, width, 4 * width, "h.%llu.mlp.c_fc.weight", (unsigned long long)l);
		ADD1(b, 4 * width, "h.%llu.mlp.c_fc.bias", (unsigned long long)l);
		ADD2(b, 4 * width, width, "h.%llu.mlp.c_proj.weight", (unsigned long long)l);
		ADD1(b, width, "h.%llu.mlp.c_proj.bias", (unsigned long long)l);
	}
	ADD1(b, width, "ln_f.weight");
	ADD1(b, width, "ln_f.bias");
	snprintf(b->spec->description, sizeof b->spec->description,
		 "GPT-2 small: 12 layers, width 768, vocab 50257, context 1024");
}

struct llama_shape {
	uint64_t vocab, hidden, layers, intermediate;
};

static uint64_t llama_params(const struct llama_shape *s)
{
	uint64_t h = s->hidden;
	return 2 * s->vocab * h + s->layers * (4 * h * h + 3 * h * s->intermediate + 2 * h) + h;
}

/* Searches width, depth and MLP size for a plausible decoder (depth near
 * width/128 as in Llama 2, MLP near 8/3 of the width, vocab 32000 unless the
 * model is too small for it) whose size is within 2% of the target. */
static bool llama_fit(uint64_t target_params, struct llama_shape *best)
{
	static const uint64_t vocabs[] = {32000, 8192, 1024};
	static const uint64_t widths[] = {64,   128,  256,  384,  512,  768,  1024, 1536,
					  2048, 2560, 3072, 4096, 5120, 6144, 8192};
	double best_score = INFINITY;
	for (size_t v = 0; v < sizeof vocabs / sizeof vocabs[0]; v++)
		for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++)
			for (uint64_t layers = 1; layers <= 128; layers++) {
				uint64_t h = widths[w];
				struct llama_shape s = {vocabs[v], h, layers, 0};
				uint64_t fixed = llama_params(&s);
				if (fixed >= target_params)
					break;
				uint64_t rest = target_params - fixed;
				uint64_t inter = (rest / (3 * h * layers) + 16) / 32 * 32;
				if (inter < h || inter > 4 * h)
					continue;
				s.intermediate = inter;
				double got = (double)llama_params(&s);
				double error =
					fabs(got - (double)target_params) / (double)target_params;
				if (error > 0.02)
					continue;
				double score =
					fabs(log2((double)layers / ((double)h / 128.0))) +
					2.0 * fabs(log2((double)inter / (8.0 * (double)h / 3.0))) +
					(v > 0 ? 3.0 : 0.0) + 10.0 * error;
				if (score < best_score) {
					best_score = score;
					*best = s;
				}
			}
	return best_score < INFINITY;
}

static void build_llama(struct builder *b, const struct llama_shape *s)
{
	uint64_t h = s->hidden, im = s->intermediate;
	ADD2(b, s->vocab, h, "model.embed_tokens.weight");
	for (uint64_t l = 0; l < s->layers; l++) {
		unsigned long long n = (unsigned long long)l;
		ADD2(b, h, h, "model.layers.%llu.self_attn.q_proj.weight", n);
		ADD2(b, h, h, "model.layers.%llu.self_attn.k_proj.weight", n);
		ADD2(b, h, h, "model.layers.%llu.self_attn.v_proj.weight", n);
		ADD2(b, h, h, "model.layers.%llu.self_attn.o_proj.weight", n);
		ADD2(b, im, h, "model.layers.%llu.mlp.gate_proj.weight", n);
		ADD2(b, im, h, "model.layers.%llu.mlp.up_proj.weight", n);
		ADD2(b, h, im, "model.layers.%llu.mlp.down_proj.weight", n);
		ADD1(b, h, "model.layers.%llu.input_layernorm.weight", n);
		ADD1(b, h, "model.layers.%llu.post_attention_layernorm.weight", n);
	}
	ADD1(b, h, "model.norm.weight");
	ADD2(b, s->vocab, h, "lm_head.weight");
	snprintf(b->spec->description, sizeof b->spec->description,
		 "Llama-style: hidden %llu, %llu layers, intermediate %llu, vocab %llu",
		 (unsigned long long)h, (unsigned long long)s->layers, (unsigned long long)im,
		 (unsigned long long)s->vocab);
}

/* LoRA-adapter-like: rank-8 A/B pairs on every projection of many layers,
 * so the per-tensor costs (header, lookups, small reads) dominate. */
static void build_many_small(struct builder *b, uint64_t target_elems)
{
	static const char *const modules[] = {
		"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
		"mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
	const uint64_t rank = 8, per_layer = 2 * 7;
	/* about 1024 elements per tensor, at least one layer, at most 5000 */
	uint64_t layers = target_elems / (per_layer * 1024);
	if (layers < 1)
		layers = 1;
	if (layers > 5000)
		layers = 5000;
	uint64_t width =
		(target_elems + layers * per_layer * rank / 2) / (layers * per_layer * rank);
	if (width < 1)
		width = 1;
	for (uint64_t l = 0; l < layers; l++)
		for (size_t m = 0; m < 7; m++) {
			unsigned long long n = (unsigned long long)l;
			ADD2(b, rank, width, "base_model.model.model.layers.%llu.%s.lora_A.weight",
			     n, modules[m]);
			ADD2(b, width, rank, "base_model.model.model.layers.%llu.%s.lora_B.weight",
			     n, modules[m]);
		}
	snprintf(b->spec->description, sizeof b->spec->description,
		 "LoRA-like adapters: %llu layers x 7 projections x (A, B), rank 8, width %llu",
		 (unsigned long long)layers, (unsigned long long)width);
}

static void build_few_large(struct builder *b, uint64_t target_elems)
{
	const uint64_t count = 4;
	uint64_t cols = 4096;
	while (cols > 1 && target_elems / count < cols * 16)
		cols /= 2;
	uint64_t rows = (target_elems / count + cols / 2) / cols;
	if (rows < 1)
		rows = 1;
	for (uint64_t i = 0; i < count; i++)
		ADD2(b, rows, cols, "layers.%llu.weight", (unsigned long long)i);
	snprintf(b->spec->description, sizeof b->spec->description, "4 tensors of [%llu, %llu]",
		 (unsigned long long)rows, (unsigned long long)cols);
}

static uint64_t tensor_bytes(const struct cb_preset_tensor *t, enum cb_dtype dtype)
{
	uint64_t numel = 1;
	for (uint32_t d = 0; d < t->rank; d++)
		numel *= t->shape[d];
	return numel * cb_dtype_bits(dtype) / 8;
}

int cb_preset_build(const char *preset, uint64_t target_bytes, enum cb_dtype dtype,
		    struct cb_model_spec *out, struct cb_error *err)
{
	memset(out, 0, sizeof *out);
	snprintf(out->preset, sizeof out->preset, "%s", preset);
	out->dtype = dtype;
	struct builder b = {.spec = out};
	uint64_t bits = cb_dtype_bits(dtype);
	if (bits == 0)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "invalid dtype");
	uint64_t target_elems = target_bytes / bits * 8;
	if (strcmp(preset, "gpt2") == 0) {
		build_gpt2(&b);
	} else if (strcmp(preset, "llama") == 0) {
		struct llama_shape shape = {0};
		if (!llama_fit(target_elems, &shape))
			return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
				       "no Llama-style shape lands within 2%% of %llu bytes; "
				       "ask for at least 1M",
				       (unsigned long long)target_bytes);
		build_llama(&b, &shape);
	} else if (strcmp(preset, "many-small") == 0) {
		build_many_small(&b, target_elems);
	} else if (strcmp(preset, "few-large") == 0) {
		build_few_large(&b, target_elems);
	} else {
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
			       "unknown preset \"%s\" (gpt2, llama, many-small, few-large)",
			       preset);
	}
	if (b.failed) {
		cb_model_spec_free(out);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	for (size_t i = 0; i < out->n; i++)
		out->total_bytes += tensor_bytes(&out->tensors[i], dtype);
	return CB_OK;
}
