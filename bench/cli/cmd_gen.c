/* ckptbench gen: synthetic datasets in the shapes of real architectures. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "gen.h"
#include "pickle_write.h"
#include "presets.h"

static const char gen_help[] =
	"usage: ckptbench gen [--preset gpt2|llama|many-small|few-large] [--size SIZE]\n"
	"                     [--dtype DTYPE] [--formats safetensors,pytorch] [--shards N]\n"
	"                     [--seed S] [-o DIR] [--force] [--threads N] [--quiet]\n"
	"\n"
	"Writes DIR/<preset>-<size>-<dtype>-s<seed>/ with the model and manifest.json\n"
	"(the `inspect --json` document of the model, hashes included).\n"
	"\n"
	"  --preset P    gpt2: GPT-2 small, exact names and shapes (fixed size)\n"
	"                llama: Llama-style decoder scaled to SIZE within 2% (default)\n"
	"                many-small: tens of thousands of small tensors (LoRA-like)\n"
	"                few-large: four huge tensors\n"
	"  --size SIZE   model bytes, K/M/G suffixes in powers of 1024 (default 256M;\n"
	"                64M for many-small)\n"
	"  --dtype D     any safetensors dtype name (default F16; F32 for gpt2)\n"
	"  --formats L   formats to write (default safetensors,pytorch; a dtype that\n"
	"                torch has no storage for gets safetensors only)\n"
	"  --shards N    Hugging Face sharded layout in N files (-xN in the name)\n"
	"  --seed S      values seed (default 1); the same seed gives identical bytes\n"
	"  -o DIR        parent directory (default $CKPTBENCH_DATA or datasets/data)\n"
	"  --force       make it again even if it exists\n"
	"  --no-sync     skip fsync before the rename (faster; a crash may then leave\n"
	"                a dataset whose files are not on disk yet)\n"
	"  --threads N   writer threads (default one per CPU)\n"
	"  --quiet       no progress line\n";

static int parse_formats(const char *list, struct cb_gen_options *opts)
{
	opts->safetensors = opts->pytorch = false;
	char copy[256];
	snprintf(copy, sizeof copy, "%s", list);
	for (char *save, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "safetensors") == 0)
			opts->safetensors = true;
		else if (strcmp(tok, "pytorch") == 0 || strcmp(tok, "pt") == 0)
			opts->pytorch = true;
		else
			return cb_usage_error("gen", "unknown format \"%s\"", tok);
	}
	return 0;
}

int cb_cmd_gen(int argc, char **argv)
{
	static const struct option options[] = {
		{"preset", required_argument, NULL, 'p'},
		{"size", required_argument, NULL, 's'},
		{"dtype", required_argument, NULL, 'd'},
		{"formats", required_argument, NULL, 'f'},
		{"shards", required_argument, NULL, 'S'},
		{"seed", required_argument, NULL, 'r'},
		{"force", no_argument, NULL, 'F'},
		{"no-sync", no_argument, NULL, 'N'},
		{"threads", required_argument, NULL, 't'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct cb_gen_options opts;
	cb_gen_default_options(&opts);
	opts.progress = isatty(STDERR_FILENO);
	bool size_given = false, formats_given = false;
	uint64_t value;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
		switch (c) {
		case 'p': opts.preset = optarg; break;
		case 's':
			if (!cb_parse_size(optarg, &opts.size) || opts.size == 0)
				return cb_usage_error("gen", "bad --size \"%s\"", optarg);
			size_given = true;
			break;
		case 'd':
			opts.dtype = cb_dtype_from_name(optarg, strlen(optarg));
			if (opts.dtype == CB_DTYPE_INVALID)
				return cb_usage_error("gen", "unknown dtype \"%s\"", optarg);
			break;
		case 'f':
			if (parse_formats(optarg, &opts) != 0)
				return 2;
			formats_given = true;
			break;
		case 'S':
			if (!cb_parse_u64(optarg, &value) || value < 1 || value > 99999)
				return cb_usage_error("gen", "--shards takes 1 to 99999");
			opts.shards = (unsigned)value;
			break;
		case 'r':
			if (!cb_parse_u64(optarg, &opts.seed))
				return cb_usage_error("gen", "bad --seed \"%s\"", optarg);
			break;
		case 'o': opts.out_dir = optarg; break;
		case 'F': opts.force = true; break;
		case 'N': opts.no_sync = true; break;
		case 't':
			if (!cb_parse_u64(optarg, &value) || value > 16)
				return cb_usage_error("gen", "--threads takes 0 to 16");
			opts.threads = (unsigned)value;
			break;
		case 'q': opts.progress = false; break;
		case 'h': fputs(gen_help, stdout); return 0;
		default: return cb_usage_error("gen", "unknown option");
		}
	}
	if (optind < argc)
		return cb_usage_error("gen", "unexpected argument \"%s\"", argv[optind]);
	bool known = false;
	for (const char *const *p = cb_preset_names(); *p; p++)
		known = known || strcmp(*p, opts.preset) == 0;
	if (!known)
		return cb_usage_error("gen", "unknown preset \"%s\"", opts.preset);
	if (size_given && cb_preset_fixed_size(opts.preset))
		return cb_usage_error("gen", "%s has a fixed size; drop --size", opts.preset);

	struct cb_error err = CB_ERROR_INIT;
	/* By default both formats, unless torch cannot hold the dtype: then the
	 * dataset is safetensors only, and we say so. Asked for explicitly, the
	 * refusal stands. */
	enum cb_dtype dtype =
		opts.dtype == CB_DTYPE_INVALID ? cb_preset_default_dtype(opts.preset) : opts.dtype;
	if (!formats_given && cb_pkl_check_dtype(dtype, NULL, NULL, NULL) != CB_OK) {
		opts.pytorch = false;
		fprintf(stderr,
			"ckptbench gen: %s has no PyTorch storage type; writing safetensors "
			"only\n",
			cb_dtype_name(dtype));
	}
	struct cb_gen_result result;
	if (cb_gen_dataset(&opts, &result, &err) != CB_OK) {
		cb_gen_result_free(&result);
		return cb_fail(&err);
	}
	if (result.existed)
		printf("%s: exists, kept (--force makes it again)\n", result.dir);
	else
		printf("%s: %zu tensors, %" PRIu64 " bytes, %.2f s (%.2f GB/s; %.2f s of it fsync)"
		       " - %s\n",
		       result.dir, result.n_tensors, result.model_bytes, result.seconds,
		       result.seconds > 0 ? (double)result.written_bytes / result.seconds / 1e9 : 0,
		       result.sync_seconds, result.description);
	cb_gen_result_free(&result);
	return 0;
}
