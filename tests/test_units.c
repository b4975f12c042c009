/* Pure functions: the dtype table, UTF-8 validation, size parsing, the
 * model presets and the value generator. No files, no timing. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cli.h"
#include "dtype.h"
#include "presets.h"
#include "utf8.h"
#include "values.h"

/* ------------------------------------------------------------- dtypes */

static void test_dtypes(void)
{
	/* The reference's declaration order, names and bit widths. */
	static const struct {
		const char *name;
		unsigned bits;
		bool is_float;
	} table[CB_DTYPE_COUNT] = {
		{"BOOL", 8, false},       {"F4", 4, true},          {"F6_E2M3", 6, true},
		{"F6_E3M2", 6, true},     {"U8", 8, false},         {"I8", 8, false},
		{"F8_E5M2", 8, true},     {"F8_E4M3", 8, true},     {"F8_E8M0", 8, true},
		{"F8_E4M3FNUZ", 8, true}, {"F8_E5M2FNUZ", 8, true}, {"I16", 16, false},
		{"U16", 16, false},       {"F16", 16, true},        {"BF16", 16, true},
		{"I32", 32, false},       {"U32", 32, false},       {"F32", 32, true},
		{"C64", 64, true},        {"F64", 64, true},        {"I64", 64, false},
		{"U64", 64, false},
	};
	CHECK_EQ_U64(CB_DTYPE_COUNT, 22);
	for (int d = 0; d < CB_DTYPE_COUNT; d++) {
		enum cb_dtype dt = (enum cb_dtype)d;
		CHECK_STR_EQ(cb_dtype_name(dt), table[d].name);
		CHECK_EQ_U64(cb_dtype_bits(dt), table[d].bits);
		CHECK(cb_dtype_is_float(dt) == table[d].is_float);
		CHECK(cb_dtype_is_subbyte(dt) == (table[d].bits < 8));
		CHECK(cb_dtype_from_name(table[d].name, strlen(table[d].name)) == dt);
	}
	CHECK_STR_EQ(cb_dtype_name(CB_DTYPE_INVALID), "?");
	CHECK_STR_EQ(cb_dtype_name((enum cb_dtype)CB_DTYPE_COUNT), "?");
	CHECK_EQ_U64(cb_dtype_bits(CB_DTYPE_INVALID), 0);
	CHECK(!cb_dtype_is_subbyte(CB_DTYPE_INVALID) && !cb_dtype_is_float(CB_DTYPE_INVALID));

	/* Lookup is exact: case, length and prefixes matter. */
	static const char *const unknown[] = {"f32",       "F3",      "F322", "BFloat16", "",
					      "F8_E4M3FN", "float32", " F32", "F32 "};
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
		CHECK(cb_dtype_from_name(unknown[i], strlen(unknown[i])) == CB_DTYPE_INVALID);
	CHECK(cb_dtype_from_name("F32x", 3) == CB_DTYPE_F32); /* only len bytes count */
	CHECK(cb_dtype_from_name("F8_E4M3FNUZ", 7) == CB_DTYPE_F8_E4M3);
	CHECK(cb_dtype_from_name("F\0", 2) == CB_DTYPE_INVALID);

	/* nbytes: whole bytes, misalignment and overflow told apart. */
	uint64_t nbytes = 0;
	bool misaligned = true;
	CHECK(cb_dtype_nbytes(CB_DTYPE_F32, 6, &nbytes, &misaligned) && nbytes == 24 &&
	      !misaligned);
	CHECK(cb_dtype_nbytes(CB_DTYPE_F32, 0, &nbytes, NULL) && nbytes == 0);
	CHECK(cb_dtype_nbytes(CB_DTYPE_F4, 2, &nbytes, NULL) && nbytes == 1);
	CHECK(cb_dtype_nbytes(CB_DTYPE_F4, 6, &nbytes, NULL) && nbytes == 3);
	CHECK(!cb_dtype_nbytes(CB_DTYPE_F4, 3, &nbytes, &misaligned) && misaligned);
	CHECK(cb_dtype_nbytes(CB_DTYPE_F6_E2M3, 4, &nbytes, NULL) && nbytes == 3);
	CHECK(!cb_dtype_nbytes(CB_DTYPE_F6_E3M2, 1, &nbytes, &misaligned) && misaligned);
	CHECK(!cb_dtype_nbytes(CB_DTYPE_F6_E3M2, 2, &nbytes, &misaligned) && misaligned);
	CHECK(cb_dtype_nbytes(CB_DTYPE_U8, UINT64_MAX / 8, &nbytes, NULL) &&
	      nbytes == UINT64_MAX / 8);
	CHECK(!cb_dtype_nbytes(CB_DTYPE_U8, UINT64_MAX / 8 + 1, &nbytes, &misaligned) &&
	      !misaligned);
	CHECK(!cb_dtype_nbytes(CB_DTYPE_F64, UINT64_MAX / 64 + 1, &nbytes, &misaligned) &&
	      !misaligned);
	CHECK(cb_dtype_nbytes(CB_DTYPE_F64, UINT64_MAX / 64, &nbytes, NULL) &&
	      nbytes == UINT64_MAX / 64 * 8);
	CHECK(!cb_dtype_nbytes(CB_DTYPE_INVALID, 1, &nbytes, &misaligned) && !misaligned);
}

/* --------------------------------------------------------------- UTF-8 */

static bool utf8(const char *s, size_t len, uint64_t *bad_at)
{
	*bad_at = UINT64_MAX;
	return cb_utf8_valid((const uint8_t *)s, len, bad_at);
}

static void test_utf8(void)
{
	static const struct {
		const char *bytes;
		size_t len;
	} valid[] = {
		{"", 0},
		{"plain ascii", 11},
		{"\x00\x7f", 2},                 /* NUL is valid UTF-8 */
		{"\xc2\x80", 2},                 /* U+0080, smallest 2-byte */
		{"\xdf\xbf", 2},                 /* U+07FF */
		{"\xe0\xa0\x80", 3},             /* U+0800, smallest 3-byte */
		{"\xed\x9f\xbf", 3},             /* U+D7FF, just below surrogates */
		{"\xee\x80\x80", 3},             /* U+E000, just above */
		{"\xef\xbf\xbf", 3},             /* U+FFFF */
		{"\xf0\x90\x80\x80", 4},         /* U+10000, smallest 4-byte */
		{"\xf4\x8f\xbf\xbf", 4},         /* U+10FFFF, the last */
		{"\xe6\x9d\x83\xe9\x87\x8d", 6}, /* CJK */
	};
	uint64_t bad_at;
	for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		CHECK(utf8(valid[i].bytes, valid[i].len, &bad_at));
		CHECK_EQ_U64(bad_at, UINT64_MAX); /* untouched on success */
	}
	static const struct {
		const char *bytes;
		size_t len;
		uint64_t at;
	} invalid[] = {
		{"\x80", 1, 0}, /* lone continuation */
		{"ab\xbf", 3, 2},
		{"\xc0\x80", 2, 0},         /* overlong NUL */
		{"\xc1\xbf", 2, 0},         /* overlong U+007F */
		{"\xe0\x9f\xbf", 3, 0},     /* overlong U+07FF */
		{"\xf0\x8f\xbf\xbf", 4, 0}, /* overlong U+FFFF */
		{"\xed\xa0\x80", 3, 0},     /* U+D800 */
		{"x\xed\xbf\xbf", 4, 1},    /* U+DFFF */
		{"\xf4\x90\x80\x80", 4, 0}, /* U+110000 */
		{"\xf5\x80\x80\x80", 4, 0},
		{"\xff", 1, 0},
		{"\xfe", 1, 0},
		{"abc\xe2\x82", 5, 3}, /* cut at the end */
		{"\xe2\x82x", 3, 0},   /* cut by an ASCII byte */
		{"\xf0\x9f\x98", 3, 0},
		{"\xc3", 1, 0},
		{"ok\xc3\xa9\xc3", 5, 4}, /* bad after a good one */
	};
	for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		bool ok = utf8(invalid[i].bytes, invalid[i].len, &bad_at);
		CHECK(!ok);
		CHECK_EQ_U64(bad_at, invalid[i].at);
	}
	CHECK(!cb_utf8_valid((const uint8_t *)"\xff", 1, NULL)); /* NULL bad_at is fine */
}

/* --------------------------------------------------------- size parsing */

static void test_parse_size(void)
{
	static const struct {
		const char *text;
		uint64_t bytes;
	} good[] = {
		{"512", 512},         {"0", 0},
		{"64K", 64ull << 10}, {"256M", 256ull << 20},
		{"1G", 1ull << 30},   {"1.5G", 3ull << 29},
		{"64G", 64ull << 30}, {"2T", 2ull << 40},
		{"1k", 1024},         {"1GiB", 1ull << 30},
		{"1MB", 1ull << 20},  {"1.25K", 1280},
		{".5K", 512},
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		uint64_t got = 12345;
		bool ok = cb_parse_size(good[i].text, &got);
		CHECK(ok);
		CHECK_EQ_U64(got, good[i].bytes);
		if (!ok)
			fprintf(stderr, "  refused \"%s\"\n", good[i].text);
	}
	static const char *const bad[] = {"",
					  "-1",
					  "1X",
					  "1e400",
					  "G",
					  "1GG",
					  "1 G",
					  " 1G",
					  "nan",
					  "inf",
					  "1.5",
					  "0.1K",
					  "16777216T",
					  "99999999999999999999",
					  "18446744073709551616",
					  "1Gi",
					  "1iB",
					  "12iB",
					  "0x10",
					  "1e3",
					  "1G ",
					  "1.G5",
					  NULL};
	for (size_t i = 0; bad[i]; i++) {
		uint64_t got = 12345;
		bool ok = cb_parse_size(bad[i], &got);
		CHECK(!ok);
		CHECK_EQ_U64(got, 12345); /* untouched on refusal */
		if (ok)
			fprintf(stderr, "  accepted \"%s\" as %llu\n", bad[i],
				(unsigned long long)got);
	}
	CHECK(!cb_parse_size(NULL, &(uint64_t){0}));

	uint64_t v = 0;
	CHECK(cb_parse_u64("18446744073709551615", &v) && v == UINT64_MAX);
	CHECK(!cb_parse_u64("18446744073709551616", &v));
	CHECK(!cb_parse_u64("-1", &v) && !cb_parse_u64("", &v) && !cb_parse_u64("1x", &v));
}

/* ------------------------------------------------------------ presets */

static uint64_t numel_of(const struct cb_preset_tensor *t)
{
	uint64_t n = 1;
	for (uint32_t d = 0; d < t->rank; d++)
		n *= t->shape[d];
	return n;
}

static int compare_name_ptrs(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names unique, and total_bytes the sum of the shapes' bytes. */
static void check_spec_consistent(const char *what, const struct cb_model_spec *spec)
{
	int before = check_failures;
	const char **names = calloc(spec->n ? spec->n : 1, sizeof *names);
	if (!names)
		abort();
	uint64_t total = 0;
	for (size_t i = 0; i < spec->n; i++) {
		names[i] = spec->tensors[i].name;
		total += numel_of(&spec->tensors[i]) * cb_dtype_bits(spec->dtype) / 8;
		CHECK(spec->tensors[i].rank >= 1 && spec->tensors[i].rank <= CB_PRESET_MAX_RANK);
	}
	qsort(names, spec->n, sizeof *names, compare_name_ptrs);
	size_t dups = 0;
	for (size_t i = 1; i < spec->n; i++)
		dups += strcmp(names[i - 1], names[i]) == 0;
	CHECK_EQ_U64(dups, 0);
	CHECK_EQ_U64(spec->total_bytes, total);
	CHECK(spec->description[0] != '\0');
	free(names);
	if (check_failures != before)
		fprintf(stderr, "  in preset %s\n", what);
}

static bool within(uint64_t got, uint64_t target, double fraction)
{
	return fabs((double)got - (double)target) <= fraction * (double)target;
}

static const struct cb_preset_tensor *find_tensor(const struct cb_model_spec *spec,
						  const char *name)
{
	for (size_t i = 0; i < spec->n; i++)
		if (strcmp(spec->tensors[i].name, name) == 0)
			return &spec->tensors[i];
	return NULL;
}

static bool has_shape(const struct cb_model_spec *spec, const char *name, uint32_t rank,
		      uint64_t d0, uint64_t d1, uint64_t d2, uint64_t d3)
{
	const struct cb_preset_tensor *t = find_tensor(spec, name);
	uint64_t want[4] = {d0, d1, d2, d3};
	if (!t || t->rank != rank) {
		fprintf(stderr, "  gpt2: %s missing or of rank %u\n", name, t ? t->rank : 0);
		return false;
	}
	for (uint32_t d = 0; d < rank; d++)
		if (t->shape[d] != want[d])
			return false;
	return true;
}

static void test_gpt2(void)
{
	struct cb_model_spec spec;
	struct cb_error err = CB_ERROR_INIT;
	CHECK(cb_preset_fixed_size("gpt2"));
	CHECK(cb_preset_default_dtype("gpt2") == CB_DTYPE_F32);
	if (cb_preset_build("gpt2", 0, CB_DTYPE_F32, &spec, &err) != CB_OK) {
		CHECK(false);
		return;
	}
	check_spec_consistent("gpt2", &spec);
	/* GPT-2 small's 124,439,808 parameters plus twelve 1M-element masks,
	 * in F32, as its published model.safetensors holds them. */
	CHECK_EQ_U64(spec.total_bytes, 548090880);
	CHECK_EQ_U64(spec.total_bytes / 4 - 12 * 1024 * 1024, 124439808);
	CHECK_EQ_U64(spec.n, 2 + 12 * 13 + 2);
	CHECK(has_shape(&spec, "wte.weight", 2, 50257, 768, 0, 0));
	CHECK(has_shape(&spec, "wpe.weight", 2, 1024, 768, 0, 0));
	for (int l = 0; l < 12; l++) {
		char name[64];
		snprintf(name, sizeof name, "h.%d.attn.c_attn.weight", l);
		CHECK(has_shape(&spec, name, 2, 768, 2304, 0, 0));
		snprintf(name, sizeof name, "h.%d.attn.c_attn.bias", l);
		CHECK(has_shape(&spec, name, 1, 2304, 0, 0, 0));
		snprintf(name, sizeof name, "h.%d.attn.bias", l);
		CHECK(has_shape(&spec, name, 4, 1, 1, 1024, 1024));
		snprintf(name, sizeof name, "h.%d.attn.c_proj.weight", l);
		CHECK(has_shape(&spec, name, 2, 768, 768, 0, 0));
		snprintf(name, sizeof name, "h.%d.mlp.c_fc.weight", l);
		CHECK(has_shape(&spec, name, 2, 768, 3072, 0, 0));
		snprintf(name, sizeof name, "h.%d.mlp.c_proj.weight", l);
		CHECK(has_shape(&spec, name, 2, 3072, 768, 0, 0));
		snprintf(name, sizeof name, "h.%d.ln_1.weight", l);
		CHECK(has_shape(&spec, name, 1, 768, 0, 0, 0));
		snprintf(name, sizeof name, "h.%d.ln_2.bias", l);
		CHECK(has_shape(&spec, name, 1, 768, 0, 0, 0));
	}
	CHECK(has_shape(&spec, "ln_f.weight", 1, 768, 0, 0, 0));
	CHECK(has_shape(&spec, "ln_f.bias", 1, 768, 0, 0, 0));
	CHECK(find_tensor(&spec, "lm_head.weight") == NULL); /* tied to wte, not stored */
	CHECK(find_tensor(&spec, "h.12.ln_1.weight") == NULL);
	cb_model_spec_free(&spec);

	/* The size argument does not change a fixed preset; the dtype does. */
	if (cb_preset_build("gpt2", 1ull << 20, CB_DTYPE_F16, &spec, &err) == CB_OK) {
		CHECK_EQ_U64(spec.total_bytes, 548090880 / 2);
		cb_model_spec_free(&spec);
	} else {
		CHECK(false);
	}
}

static void test_scalable_presets(void)
{
	static const enum cb_dtype dtypes[] = {CB_DTYPE_F16, CB_DTYPE_BF16, CB_DTYPE_F32};
	struct cb_error err = CB_ERROR_INIT;
	/* llama: 1M .. 64G, powers of two. */
	for (size_t k = 0; k < 3; k++)
		for (uint64_t size = 1ull << 20; size <= 64ull << 30; size <<= 1) {
			struct cb_model_spec spec;
			char what[64];
			snprintf(what, sizeof what, "llama %lluM %s",
				 (unsigned long long)(size >> 20), cb_dtype_name(dtypes[k]));
			cb_error_clear(&err);
			int rc = cb_preset_build("llama", size, dtypes[k], &spec, &err);
			CHECK(rc == CB_OK);
			if (rc != CB_OK) {
				fprintf(stderr, "  %s refused: %s\n", what, err.msg);
				continue;
			}
			CHECK(within(spec.total_bytes, size, 0.02));
			if (!within(spec.total_bytes, size, 0.02))
				fprintf(stderr, "  %s: %llu bytes\n", what,
					(unsigned long long)spec.total_bytes);
			check_spec_consistent(what, &spec);
			CHECK(find_tensor(&spec, "model.embed_tokens.weight") != NULL);
			CHECK(find_tensor(&spec, "model.layers.0.self_attn.q_proj.weight") != NULL);
			CHECK(find_tensor(&spec, "model.layers.0.mlp.down_proj.weight") != NULL);
			CHECK(find_tensor(&spec, "model.norm.weight") != NULL);
			CHECK(find_tensor(&spec, "lm_head.weight") != NULL);
			cb_model_spec_free(&spec);
		}

	/* many-small: per-tensor costs dominate. */
	struct cb_model_spec spec;
	cb_error_clear(&err);
	if (cb_preset_build("many-small", 64ull << 20, CB_DTYPE_F16, &spec, &err) == CB_OK) {
		CHECK(spec.n >= 10000);
		CHECK(within(spec.total_bytes, 64ull << 20, 0.02));
		check_spec_consistent("many-small 64M", &spec);
		cb_model_spec_free(&spec);
	} else {
		CHECK(false);
	}

	/* few-large: four tensors near the target. */
	static const uint64_t sizes[] = {1ull << 20, 256ull << 20, 1ull << 30, 16ull << 30};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		for (size_t k = 0; k < 3; k++) {
			cb_error_clear(&err);
			if (cb_preset_build("few-large", sizes[i], dtypes[k], &spec, &err) !=
			    CB_OK) {
				CHECK(false);
				continue;
			}
			CHECK_EQ_U64(spec.n, 4);
			CHECK(within(spec.total_bytes, sizes[i], 0.02));
			check_spec_consistent("few-large", &spec);
			cb_model_spec_free(&spec);
		}

	/* Every listed preset builds; an unknown one is a usage error. */
	for (const char *const *name = cb_preset_names(); *name; name++) {
		uint64_t size = cb_preset_default_size(*name);
		CHECK(cb_preset_fixed_size(*name) ? size == 0 : size > 0);
		cb_error_clear(&err);
		CHECK(cb_preset_build(*name, size, cb_preset_default_dtype(*name), &spec, &err) ==
		      CB_OK);
		if (err.code == CB_OK)
			cb_model_spec_free(&spec);
	}
	cb_error_clear(&err);
	CHECK(cb_preset_build("bert", 1ull << 20, CB_DTYPE_F16, &spec, &err) == CB_EUSAGE);
	CHECK_CONTAINS(err.msg, "unknown preset");
	cb_error_clear(&err);
	CHECK(cb_preset_build("llama", 1ull << 20, CB_DTYPE_INVALID, &spec, &err) == CB_EUSAGE);
}

/* ------------------------------------------------------------- values */

static float f16_to_float(uint16_t h)
{
	int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
	float sign = (h & 0x8000) ? -1.0f : 1.0f;
	if (exp == 0)
		return sign * ldexpf((float)mant, -24);
	if (exp == 31)
		return mant ? NAN : sign * INFINITY;
	return sign * ldexpf((float)(mant | 0x400), exp - 25);
}

static void test_half_encoders(void)
{
	CHECK_EQ_U64(cb_float_to_f16(1.0f), 0x3c00);
	CHECK_EQ_U64(cb_float_to_f16(-2.0f), 0xc000);
	CHECK_EQ_U64(cb_float_to_f16(0.0f), 0x0000);
	CHECK_EQ_U64(cb_float_to_f16(-0.0f), 0x8000);
	CHECK_EQ_U64(cb_float_to_f16(0.5f), 0x3800);
	CHECK_EQ_U64(cb_float_to_f16(65504.0f), 0x7bff);   /* the largest finite */
	CHECK_EQ_U64(cb_float_to_f16(0x1p-14f), 0x0400);   /* smallest normal */
	CHECK_EQ_U64(cb_float_to_f16(0x1p-24f), 0x0001);   /* smallest subnormal */
	CHECK_EQ_U64(cb_float_to_f16(0x3ffp-24f), 0x03ff); /* largest subnormal */
	/* Round to nearest, ties to even. */
	CHECK_EQ_U64(cb_float_to_f16(1.0f + 0x1p-11f), 0x3c00);            /* tie, down to even */
	CHECK_EQ_U64(cb_float_to_f16(1.0f + 0x3p-11f), 0x3c02);            /* tie, up to even */
	CHECK_EQ_U64(cb_float_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01); /* above the tie */
	CHECK_EQ_U64(cb_float_to_f16(0x1p-25f), 0x0000);                   /* subnormal tie, even */
	CHECK_EQ_U64(cb_float_to_f16(0x3p-25f), 0x0002);                   /* subnormal tie, up */
	CHECK_EQ_U64(cb_float_to_f16(0x1.8p-25f), 0x0001);                 /* above half the step */
	CHECK_EQ_U64(cb_float_to_f16(0x1p-26f), 0x0000);                   /* underflow */
	CHECK_EQ_U64(cb_float_to_f16(0x7ffp-25f), 0x0400);                 /* rounds into normal */
	CHECK_EQ_U64(cb_float_to_f16(65520.0f), 0x7c00);                   /* rounds to infinity */
	CHECK_EQ_U64(cb_float_to_f16(-65504.0f), 0xfbff);
	/* Every finite half survives a round trip through float. */
	size_t exact = 0, finite = 0;
	for (uint32_t h = 0; h < 0x10000; h++) {
		float f = f16_to_float((uint16_t)h);
		if (!isfinite(f))
			continue;
		finite++;
		exact += cb_float_to_f16(f) == h;
	}
	CHECK_EQ_U64(exact, finite);

	CHECK_EQ_U64(cb_float_to_bf16(1.0f), 0x3f80);
	CHECK_EQ_U64(cb_float_to_bf16(-2.0f), 0xc000);
	CHECK_EQ_U64(cb_float_to_bf16(0.0f), 0x0000);
	CHECK_EQ_U64(cb_float_to_bf16(-0.0f), 0x8000);
	CHECK_EQ_U64(cb_float_to_bf16(0x1p-133f), 0x0001);      /* smallest subnormal */
	CHECK_EQ_U64(cb_float_to_bf16(0x1.fep127f), 0x7f7f);    /* the largest finite */
	CHECK_EQ_U64(cb_float_to_bf16(1.0f + 0x1p-8f), 0x3f80); /* tie, down to even */
	CHECK_EQ_U64(cb_float_to_bf16(1.0f + 0x3p-8f), 0x3f82); /* tie, up to even */
	CHECK_EQ_U64(cb_float_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
	CHECK_EQ_U64(cb_float_to_bf16(3.140625f), 0x4049);
	CHECK_EQ_U64(cb_float_to_bf16(INFINITY), 0x7f80);
}

static void test_values(void)
{
	enum { N = 1 << 20 };
	static struct cb_value_table table;
	cb_value_table_init(&table, CB_DTYPE_F16);
	CHECK_EQ_U64(table.esize, 2);
	uint16_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
	uint16_t *c = malloc(N * sizeof *c), *d = malloc(N * sizeof *d);
	if (!a || !b || !c || !d)
		abort();
	uint64_t sa = cb_value_stream_seed(1, "model.layers.0.mlp.up_proj.weight");
	uint64_t sb = cb_value_stream_seed(1, "model.layers.0.mlp.up_proj.weight");
	uint64_t sc = cb_value_stream_seed(1, "model.layers.1.mlp.up_proj.weight");
	uint64_t sd = cb_value_stream_seed(2, "model.layers.0.mlp.up_proj.weight");
	CHECK(sa == sb && sa != sc && sa != sd);
	cb_values_fill(&table, &sa, a, N * sizeof *a);
	cb_values_fill(&table, &sb, b, N * sizeof *b);
	cb_values_fill(&table, &sc, c, N * sizeof *c);
	cb_values_fill(&table, &sd, d, N * sizeof *d);
	CHECK(memcmp(a, b, N * sizeof *a) == 0); /* same seed, same name: same bytes */
	CHECK(memcmp(a, c, N * sizeof *a) != 0); /* another name */
	CHECK(memcmp(a, d, N * sizeof *a) != 0); /* another seed */
	CHECK(sa == sb);                         /* streams advanced alike */

	double sum = 0, sum2 = 0;
	size_t nonfinite = 0, zeros = 0;
	uint16_t first = a[0];
	bool all_equal = true;
	for (size_t i = 0; i < N; i++) {
		float v = f16_to_float(a[i]);
		if (!isfinite(v)) {
			nonfinite++;
			continue;
		}
		zeros += v == 0.0f;
		all_equal = all_equal && a[i] == first;
		sum += v;
		sum2 += (double)v * v;
	}
	double mean = sum / N, sd_ = sqrt(sum2 / N - mean * mean);
	CHECK_EQ_U64(nonfinite, 0);
	CHECK(!all_equal);
	CHECK(fabs(mean) < 0.001);
	CHECK(fabs(sd_ - 0.02) < 0.001);
	CHECK(zeros < N / 100); /* weights, not zeros */
	if (fabs(mean) >= 0.001 || fabs(sd_ - 0.02) >= 0.001)
		fprintf(stderr, "  F16 values: mean %g, sd %g\n", mean, sd_);

	/* BF16 and F32 tables have the same distribution. */
	static struct cb_value_table t32;
	cb_value_table_init(&t32, CB_DTYPE_F32);
	float *f = malloc(N * sizeof *f);
	if (!f)
		abort();
	uint64_t s = cb_value_stream_seed(7, "w");
	cb_values_fill(&t32, &s, f, N * sizeof *f);
	sum = sum2 = 0;
	for (size_t i = 0; i < N; i++) {
		sum += f[i];
		sum2 += (double)f[i] * f[i];
	}
	mean = sum / N;
	sd_ = sqrt(sum2 / N - mean * mean);
	CHECK(fabs(mean) < 0.001 && fabs(sd_ - 0.02) < 0.001);
	free(f);

	/* Every dtype's table fills whole elements without touching the bytes
	 * after the buffer. */
	for (int dt = 0; dt < CB_DTYPE_COUNT; dt++) {
		static struct cb_value_table t;
		cb_value_table_init(&t, (enum cb_dtype)dt);
		unsigned bits = cb_dtype_bits((enum cb_dtype)dt);
		CHECK_EQ_U64(t.esize, bits >= 8 ? bits / 8 : 0);
		uint8_t buf[8 * 13 + 8];
		memset(buf, 0xa5, sizeof buf);
		uint64_t st = cb_value_stream_seed(3, "x");
		size_t len = 8 * 13; /* 13 elements of the widest type */
		cb_values_fill(&t, &st, buf, len);
		bool guard = true;
		for (size_t i = len; i < sizeof buf; i++)
			guard = guard && buf[i] == 0xa5;
		CHECK(guard);
	}
	free(a);
	free(b);
	free(c);
	free(d);
}

int main(void)
{
	test_dtypes();
	test_utf8();
	test_parse_size();
	test_gpt2();
	test_scalable_presets();
	test_half_encoders();
	test_values();
	return check_finish("test_units");
}
