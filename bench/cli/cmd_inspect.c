/* ckptbench inspect: what a checkpoint holds, as a table or as the JSON
 * document of docs/datasets-and-method.md §2. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "cli.h"
#include "manifest.h"
#include "tensor_hash.h"

static const char inspect_help[] =
	"usage: ckptbench inspect [--json] [--no-hash] [--threads N] [--verify M] PATH...\n"
	"\n"
	"Lists the tensors of each checkpoint: name, dtype, shape, bytes, offset and\n"
	"XXH3-64 of the tensor's bytes. PATH is a .safetensors file, a sharded model\n"
	"directory (Hugging Face layout with *.index.json), an index file, or a dataset\n"
	"directory made by `ckptbench gen`.\n"
	"\n"
	"  --json       one JSON object per PATH (JSON Lines), the cross-tool contract\n"
	"  --no-hash    do not read tensor data (headers only)\n"
	"  --threads N  hashing threads (default: one per CPU, at most 8)\n"
	"  --verify M   compare with the manifest M (a dataset's manifest.json, or a\n"
	"               saved `inspect --json` document): every tensor's name, dtype,\n"
	"               shape, size and hash must match; exit status 1 when not\n";

static void shape_text(const struct cb_ckpt_tensor *t, char *buf, size_t size)
{
	size_t used = (size_t)snprintf(buf, size, "[");
	for (uint32_t d = 0; d < t->rank && used < size; d++)
		used += (size_t)snprintf(buf + used, size - used, "%s%" PRIu64, d ? ", " : "",
					 t->shape[d]);
	if (used < size)
		snprintf(buf + used, size - used, "]");
}

static void print_table(const struct cb_ckpt *ckpt, const char *path, const uint64_t *hashes)
{
	size_t name_w = 4, shape_w = 5;
	char shape[512];
	for (size_t i = 0; i < ckpt->n_tensors; i++) {
		size_t len = strlen(ckpt->tensors[i].name);
		name_w = len > name_w ? len : name_w;
		shape_text(&ckpt->tensors[i], shape, sizeof shape);
		shape_w = strlen(shape) > shape_w ? strlen(shape) : shape_w;
	}
	printf("%s: %s, %zu tensor%s, %" PRIu64 " bytes in %zu file%s\n", path,
	       cb_format_name(ckpt->format), ckpt->n_tensors, ckpt->n_tensors == 1 ? "" : "s",
	       ckpt->total_bytes, ckpt->n_files, ckpt->n_files == 1 ? "" : "s");
	if (ckpt->has_metadata) {
		printf("metadata:");
		for (size_t i = 0; i < ckpt->n_meta; i++)
			printf(" %s=%s", ckpt->meta[i].key, ckpt->meta[i].value);
		printf("%s\n", ckpt->n_meta ? "" : " (empty)");
	}
	printf("%-*s  %-11s  %-*s  %14s  %14s%s%s\n", (int)name_w, "name", "dtype", (int)shape_w,
	       "shape", "bytes", "offset", ckpt->sharded ? "  file" : "", hashes ? "  xxh3" : "");
	for (size_t i = 0; i < ckpt->n_tensors; i++) {
		const struct cb_ckpt_tensor *t = &ckpt->tensors[i];
		shape_text(t, shape, sizeof shape);
		printf("%-*s  %-11s  %-*s  %14" PRIu64 "  %14" PRIu64, (int)name_w, t->name,
		       cb_dtype_name(t->dtype), (int)shape_w, shape, t->nbytes, t->offset);
		if (ckpt->sharded) {
			const char *file = strrchr(cb_ckpt_tensor_path(ckpt, t), '/');
			printf("  %s", file ? file + 1 : cb_ckpt_tensor_path(ckpt, t));
		}
		if (hashes) {
			char hex[17];
			cb_hash_hex(hashes[i], hex);
			printf("  %s", hex);
		}
		putchar('\n');
	}
	printf("total: %zu tensor%s, %" PRIu64 " bytes (%.1f MiB)\n", ckpt->n_tensors,
	       ckpt->n_tensors == 1 ? "" : "s", ckpt->total_bytes,
	       (double)ckpt->total_bytes / (1024.0 * 1024.0));
}

/* The first difference between what the file holds and the manifest. */
static int verify_against(const struct cb_ckpt *ckpt, const uint64_t *hashes,
			  const char *manifest_path, struct cb_error *err)
{
	struct cb_manifest *manifest;
	int rc = cb_manifest_read(manifest_path, &manifest, err);
	if (rc != CB_OK)
		return rc;
	char where[300];
	if (manifest->n_tensors != ckpt->n_tensors)
		rc = CB_FAIL(err, CB_EMISMATCH, ckpt->path, NULL, "%zu tensors, but %s lists %zu",
			     ckpt->n_tensors, manifest_path, manifest->n_tensors);
	for (size_t i = 0; rc == CB_OK && i < ckpt->n_tensors; i++) {
		const struct cb_ckpt_tensor *t = &ckpt->tensors[i];
		const struct cb_manifest_tensor *m = cb_manifest_find(manifest, t->name);
		snprintf(where, sizeof where, "tensor \"%.200s\"", t->name);
		bool same_shape = m && m->rank == t->rank &&
				  (t->rank == 0 ||
				   memcmp(m->shape, t->shape, t->rank * sizeof *t->shape) == 0);
		if (!m)
			rc = CB_FAIL(err, CB_EMISMATCH, ckpt->path, where, "not in %s",
				     manifest_path);
		else if (m->dtype != t->dtype || !same_shape || m->nbytes != t->nbytes)
			rc = CB_FAIL(err, CB_EMISMATCH, ckpt->path, where,
				     "dtype, shape or size differs from %s", manifest_path);
		else if (m->has_hash && m->xxh3 != hashes[i])
			rc = CB_FAIL(err, CB_EMISMATCH, ckpt->path, where,
				     "bytes differ from %s: xxh3 %016" PRIx64
				     ", expected %016" PRIx64,
				     manifest_path, hashes[i], m->xxh3);
	}
	cb_manifest_free(manifest);
	return rc;
}

static int inspect_one(const char *path, bool json, bool hash, unsigned threads, const char *verify)
{
	struct cb_error err = CB_ERROR_INIT;
	struct cb_ckpt *ckpt;
	if (cb_ckpt_open(path, CB_FORMAT_ANY, &ckpt, &err) != CB_OK)
		return cb_fail(&err);
	uint64_t *hashes = NULL;
	if (hash) {
		hashes = calloc(ckpt->n_tensors ? ckpt->n_tensors : 1, sizeof *hashes);
		if (!hashes)
			CB_FAIL(&err, CB_ENOMEM, path, NULL, "out of memory");
		else if (cb_ckpt_hash(ckpt, hashes, threads, &err) != CB_OK) {
			free(hashes);
			hashes = NULL;
		}
		if (err.code != CB_OK) {
			cb_ckpt_free(ckpt);
			return cb_fail(&err);
		}
	}
	int status = 0;
	if (verify) {
		if (verify_against(ckpt, hashes, verify, &err) != CB_OK)
			status = cb_fail(&err);
		else
			printf("%s: %zu tensors match %s\n", path, ckpt->n_tensors, verify);
	} else if (json) {
		json_t *doc = cb_manifest_build(ckpt, path, hashes);
		if (!doc || json_dumpf(doc, stdout, JSON_COMPACT) != 0) {
			CB_FAIL(&err, CB_ENOMEM, path, NULL, "cannot write the JSON document");
			status = cb_fail(&err);
		} else {
			putchar('\n');
		}
		json_decref(doc);
	} else {
		print_table(ckpt, path, hashes);
	}
	free(hashes);
	cb_ckpt_free(ckpt);
	return status;
}

int cb_cmd_inspect(int argc, char **argv)
{
	static const struct option options[] = {
		{"json", no_argument, NULL, 'j'},          {"no-hash", no_argument, NULL, 'n'},
		{"threads", required_argument, NULL, 't'}, {"verify", required_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	bool json = false, hash = true;
	uint64_t threads = 0;
	const char *verify = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'n': hash = false; break;
		case 't':
			if (!cb_parse_u64(optarg, &threads) || threads > 64)
				return cb_usage_error("inspect", "--threads takes 0 to 64");
			break;
		case 'v': verify = optarg; break;
		case 'h': fputs(inspect_help, stdout); return 0;
		default: return cb_usage_error("inspect", "unknown option");
		}
	}
	if (optind >= argc)
		return cb_usage_error("inspect", "no PATH given");
	if (verify && !hash)
		return cb_usage_error("inspect", "--verify needs the hashes; drop --no-hash");
	int worst = 0;
	for (int i = optind; i < argc; i++) {
		int status = inspect_one(argv[i], json, hash, (unsigned)threads, verify);
		fflush(stdout);
		if (status > worst)
			worst = status;
	}
	return worst;
}
