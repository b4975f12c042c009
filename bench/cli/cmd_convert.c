/* ckptbench convert: safetensors <-> PyTorch checkpoints, shards too.
 *
 * Reads only through the format-agnostic checkpoint model (cb_ckpt_open) and
 * each tensor's logical bytes, so .pt -> safetensors is the safe conversion:
 * nothing is unpickled beyond the restricted reader, views are made
 * contiguous by gathering, and tensors sharing a storage are written once
 * each, as safetensors requires. Every output goes to a temporary file that
 * is renamed only when all of them are complete; a failure leaves nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h"
#include "cli.h"
#include "fileio.h"
#include "pt_write.h"
#include "ptzip_write.h"
#include "safetensors.h"
#include "shard_index.h"
#include "tensor_gather.h"

#define CHUNK (8u << 20)

static const char convert_help[] =
	"usage: ckptbench convert [--to safetensors|pytorch] IN OUT\n"
	"\n"
	"Converts a checkpoint between safetensors and PyTorch (.pt/.bin/.pth) files.\n"
	"IN is a file or a sharded model directory. OUT is a file (its extension\n"
	"says the format) or a directory, which gets the same shard split as IN and\n"
	"a Hugging Face index (model-0000K-of-0000N.safetensors or\n"
	"pytorch_model-0000K-of-0000N.bin); for a directory the format is the other\n"
	"one than IN's, unless --to says.\n"
	"\n"
	"Views are made contiguous; tensors sharing a storage are written once each;\n"
	"whatever is not a tensor is dropped with a notice. Outputs are written to\n"
	"temporary files and renamed when all are complete; the input is never\n"
	"overwritten.\n"
	"\n"
	"  --to F   output format where OUT's name does not say it\n";

static bool has_suffix(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static enum cb_format format_of_name(const char *name)
{
	if (has_suffix(name, ".safetensors"))
		return CB_FORMAT_SAFETENSORS;
	if (has_suffix(name, ".pt") || has_suffix(name, ".bin") || has_suffix(name, ".pth"))
		return CB_FORMAT_PYTORCH;
	return CB_FORMAT_ANY;
}

/* One output file: the input tensors it holds, and how it is being written. */
struct out_file {
	char *path;
	char *name; /* plain file name, for the index */
	size_t n;
	const struct cb_ckpt_tensor **tensors;
	struct cb_atomic_file file;
	bool committed;
};

struct convert {
	const struct cb_ckpt *in;
	int *fds; /* per input file */
	enum cb_format to;
	size_t n_out;
	struct out_file *out;
	uint8_t *chunk;
};

/* ------------------------------------------------------------ writing */

struct pwrite_sink {
	int fd;
	const char *path;
	uint64_t offset;
	uint32_t crc;
	bool want_crc;
};

static int pwrite_sink(void *ctx, const void *buf, size_t len, struct cb_error *err)
{
	struct pwrite_sink *s = ctx;
	if (s->want_crc)
		s->crc = cb_crc32_update(s->crc, buf, len);
	int rc = cb_pwrite_full(s->fd, buf, len, s->offset, s->path, err);
	s->offset += len;
	return rc;
}

static int copy_tensor(struct convert *cv, const struct cb_ckpt_tensor *t, struct pwrite_sink *sink,
		       struct cb_error *err)
{
	const char *in_path = cb_ckpt_tensor_path(cv->in, t);
	return cb_tensor_stream(cv->fds[t->file], in_path, t, cv->chunk, CHUNK, pwrite_sink, sink,
				err);
}

static int write_safetensors(struct convert *cv, struct out_file *o, struct cb_error *err)
{
	static const struct cb_kv pt_meta[] = {{"format", "pt"}};
	struct cb_st_spec *specs = calloc(o->n ? o->n : 1, sizeof *specs);
	if (!specs)
		return CB_FAIL(err, CB_ENOMEM, o->path, NULL, "out of memory");
	for (size_t i = 0; i < o->n; i++)
		specs[i] = (struct cb_st_spec){o->tensors[i]->name, o->tensors[i]->dtype,
					       o->tensors[i]->rank, o->tensors[i]->shape};
	/* safetensors' own metadata is kept; a .pt gets what Hugging Face's
	 * converter writes. */
	const struct cb_kv *meta = pt_meta;
	size_t n_meta = 1;
	if (cv->in->format == CB_FORMAT_SAFETENSORS) {
		meta = cv->in->has_metadata ? cv->in->meta : NULL;
		n_meta = cv->in->n_meta;
	}
	struct cb_st_layout layout;
	int rc = cb_st_layout_build(specs, o->n, meta, n_meta, &layout, err);
	free(specs);
	if (rc != CB_OK)
		return rc;
	rc = cb_pwrite_full(o->file.fd, layout.header, layout.header_size, 0, o->path, err);
	if (rc == CB_OK && ftruncate(o->file.fd, (off_t)layout.file_size) != 0)
		rc = CB_FAIL_ERRNO(err, errno, o->path, "cannot size the file");
	for (size_t k = 0; rc == CB_OK && k < o->n; k++) {
		size_t i = layout.order[k];
		struct pwrite_sink sink = {o->file.fd, o->path, layout.offset[i], 0, false};
		rc = copy_tensor(cv, o->tensors[i], &sink, err);
	}
	cb_st_layout_free(&layout);
	return rc;
}

/* One storage per tensor, contiguous, in name order. */
static int write_pytorch(struct convert *cv, struct out_file *o, struct cb_error *err)
{
	struct cb_pkl_tensor *pt = calloc(o->n ? o->n : 1, sizeof *pt);
	struct cb_pkl_storage *st = calloc(o->n ? o->n : 1, sizeof *st);
	struct cb_pt_layout layout = {0};
	int rc = CB_OK;
	if (!pt || !st) {
		rc = CB_FAIL(err, CB_ENOMEM, o->path, NULL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < o->n; i++) {
		const struct cb_ckpt_tensor *t = o->tensors[i];
		pt[i] = (struct cb_pkl_tensor){.name = t->name,
					       .storage = (uint32_t)i,
					       .rank = t->rank,
					       .shape = t->shape};
		st[i] = (struct cb_pkl_storage){t->dtype, t->numel};
	}
	if ((rc = cb_pt_layout_build(o->path, pt, o->n, st, o->n, NULL, &layout, err)) != CB_OK)
		goto out;
	rc = cb_pt_write_head(&layout, o->file.fd, o->path, err);
	for (size_t i = 0; rc == CB_OK && i < o->n; i++) {
		struct pwrite_sink sink = {o->file.fd, o->path, cb_pt_storage_offset(&layout, i), 0,
					   true};
		rc = copy_tensor(cv, o->tensors[i], &sink, err);
		cb_pt_set_storage_crc(&layout, i, sink.crc);
	}
	if (rc == CB_OK)
		rc = cb_pt_write_tail(&layout, o->file.fd, o->path, err);
out:
	cb_pt_layout_free(&layout);
	free(pt);
	free(st);
	return rc;
}

/* ------------------------------------------------------------ planning */

static void free_outputs(struct convert *cv)
{
	for (size_t k = 0; cv->out && k < cv->n_out; k++) {
		cb_atomic_abort(&cv->out[k].file);
		free(cv->out[k].path);
		free(cv->out[k].name);
		free(cv->out[k].tensors);
	}
	free(cv->out);
}

static char *output_name(enum cb_format to, size_t k, size_t n)
{
	char *name = NULL;
	if (n == 1)
		name = strdup(to == CB_FORMAT_SAFETENSORS ? "model.safetensors"
							  : "pytorch_model.bin");
	else if (asprintf(&name,
			  to == CB_FORMAT_SAFETENSORS ? "model-%05zu-of-%05zu.safetensors"
						      : "pytorch_model-%05zu-of-%05zu.bin",
			  k + 1, n) < 0)
		name = NULL;
	return name;
}

/* The outputs: one file, or in a directory one per input file. */
static int plan_outputs(struct convert *cv, const char *out, bool dir, struct cb_error *err)
{
	const struct cb_ckpt *in = cv->in;
	cv->n_out = dir ? in->n_files : 1;
	cv->out = calloc(cv->n_out ? cv->n_out : 1, sizeof *cv->out);
	if (!cv->out)
		return CB_FAIL(err, CB_ENOMEM, out, NULL, "out of memory");
	for (size_t k = 0; k < cv->n_out; k++) {
		struct out_file *o = &cv->out[k];
		o->file.fd = -1;
		o->name = dir ? output_name(cv->to, k, cv->n_out) : strdup(out);
		o->path = dir && o->name ? cb_path_join(out, o->name)
					 : (o->name ? strdup(out) : NULL);
		o->tensors = calloc(in->n_tensors ? in->n_tensors : 1, sizeof *o->tensors);
		if (!o->name || !o->path || !o->tensors)
			return CB_FAIL(err, CB_ENOMEM, out, NULL, "out of memory");
	}
	for (size_t i = 0; i < in->n_tensors; i++) {
		struct out_file *o = &cv->out[dir ? in->tensors[i].file : 0];
		o->tensors[o->n++] = &in->tensors[i];
	}
	return CB_OK;
}

/* Refuses outputs that are input files, and dtypes the output cannot hold,
 * before anything is written. */
static int check_outputs(const struct convert *cv, struct cb_error *err)
{
	for (size_t k = 0; k < cv->n_out; k++) {
		struct stat so, si;
		if (stat(cv->out[k].path, &so) != 0)
			continue;
		for (size_t f = 0; f < cv->in->n_files; f++)
			if (stat(cv->in->files[f].path, &si) == 0 && so.st_dev == si.st_dev &&
			    so.st_ino == si.st_ino)
				return CB_FAIL(err, CB_EUSAGE, cv->out[k].path, NULL,
					       "is an input file: refusing to overwrite it");
	}
	for (size_t i = 0; cv->to == CB_FORMAT_PYTORCH && i < cv->in->n_tensors; i++) {
		const struct cb_ckpt_tensor *t = &cv->in->tensors[i];
		int rc = cb_pkl_check_dtype(t->dtype, t->name, cv->in->path, err);
		if (rc != CB_OK)
			return rc;
	}
	return CB_OK;
}

static int write_index(const struct convert *cv, const char *dir, struct cb_error *err)
{
	const char **names = calloc(cv->in->n_tensors + 1, sizeof *names);
	uint32_t *file_of = calloc(cv->in->n_tensors + 1, sizeof *file_of);
	const char **shard_names = calloc(cv->n_out, sizeof *shard_names);
	char *path =
		cb_path_join(dir, cv->to == CB_FORMAT_SAFETENSORS ? "model.safetensors.index.json"
								  : "pytorch_model.bin.index.json");
	int rc;
	if (!names || !file_of || !shard_names || !path) {
		rc = CB_FAIL(err, CB_ENOMEM, dir, NULL, "out of memory");
		goto out;
	}
	size_t n = 0;
	for (size_t k = 0; k < cv->n_out; k++) {
		shard_names[k] = cv->out[k].name;
		for (size_t j = 0; j < cv->out[k].n; j++) {
			names[n] = cv->out[k].tensors[j]->name;
			file_of[n++] = (uint32_t)k;
		}
	}
	rc = cb_shard_index_write(path, cv->in->total_bytes, names, file_of, n, shard_names, err);
out:
	free(names);
	free(file_of);
	free(shard_names);
	free(path);
	return rc;
}

/* Writes every output to its temporary file, then renames them all; on a
 * failure the renamed ones are removed again. */
static int write_outputs(struct convert *cv, const char *out, bool dir, struct cb_error *err)
{
	int rc = CB_OK;
	for (size_t k = 0; rc == CB_OK && k < cv->n_out; k++) {
		struct out_file *o = &cv->out[k];
		if ((rc = cb_atomic_open(&o->file, o->path, err)) != CB_OK)
			break;
		rc = cv->to == CB_FORMAT_SAFETENSORS ? write_safetensors(cv, o, err)
						     : write_pytorch(cv, o, err);
	}
	for (size_t k = 0; rc == CB_OK && k < cv->n_out; k++)
		if ((rc = cb_atomic_commit(&cv->out[k].file, true, err)) == CB_OK)
			cv->out[k].committed = true;
	if (rc == CB_OK && dir && cv->n_out > 1)
		rc = write_index(cv, out, err);
	for (size_t k = 0; rc != CB_OK && k < cv->n_out; k++)
		if (cv->out[k].committed)
			unlink(cv->out[k].path);
	return rc;
}

static int open_inputs(struct convert *cv, struct cb_error *err)
{
	cv->fds = calloc(cv->in->n_files ? cv->in->n_files : 1, sizeof *cv->fds);
	if (!cv->fds)
		return CB_FAIL(err, CB_ENOMEM, cv->in->path, NULL, "out of memory");
	for (size_t f = 0; f < cv->in->n_files; f++)
		cv->fds[f] = -1;
	for (size_t f = 0; f < cv->in->n_files; f++) {
		cv->fds[f] = open(cv->in->files[f].path, O_RDONLY | O_CLOEXEC);
		if (cv->fds[f] < 0)
			return CB_FAIL_ERRNO(err, errno, cv->in->files[f].path, "cannot open");
	}
	return CB_OK;
}

static void notices(const struct convert *cv)
{
	if (cv->to == CB_FORMAT_PYTORCH && cv->in->has_metadata && cv->in->n_meta > 0)
		fprintf(stderr,
			"ckptbench convert: notice: %s: the %zu __metadata__ entries are "
			"dropped (a PyTorch state dict has no place for them)\n",
			cv->in->path, cv->in->n_meta);
}

static int convert(const char *in_path, const char *out, enum cb_format to, struct cb_error *err)
{
	struct convert cv = {.to = to};
	struct cb_ckpt *in = NULL;
	int rc = cb_ckpt_open(in_path, CB_FORMAT_ANY, &in, err);
	if (rc != CB_OK)
		return rc;
	cv.in = in;
	struct stat st;
	bool dir = (stat(out, &st) == 0 && S_ISDIR(st.st_mode)) || has_suffix(out, "/") ||
		   (format_of_name(out) == CB_FORMAT_ANY && in->n_files > 1);
	if (!dir && to == CB_FORMAT_ANY)
		cv.to = format_of_name(out);
	if (cv.to == CB_FORMAT_ANY)
		cv.to = in->format == CB_FORMAT_SAFETENSORS ? CB_FORMAT_PYTORCH
							    : CB_FORMAT_SAFETENSORS;
	cv.chunk = malloc(CHUNK);
	if (!cv.chunk)
		rc = CB_FAIL(err, CB_ENOMEM, out, NULL, "out of memory");
	if (rc == CB_OK && dir)
		rc = cb_mkdir_p(out, err);
	if (rc == CB_OK)
		rc = plan_outputs(&cv, out, dir, err);
	if (rc == CB_OK)
		rc = check_outputs(&cv, err);
	if (rc == CB_OK)
		rc = open_inputs(&cv, err);
	if (rc == CB_OK)
		rc = write_outputs(&cv, out, dir, err);
	if (rc == CB_OK) {
		notices(&cv);
		printf("%s: %zu tensors, %" PRIu64 " bytes, %s in %zu file%s\n", out, in->n_tensors,
		       in->total_bytes, cb_format_name(cv.to), cv.n_out, cv.n_out == 1 ? "" : "s");
	}
	for (size_t f = 0; cv.fds && f < in->n_files; f++)
		if (cv.fds[f] >= 0)
			close(cv.fds[f]);
	free(cv.fds);
	free_outputs(&cv);
	free(cv.chunk);
	cb_ckpt_free(in);
	return rc;
}

int cb_cmd_convert(int argc, char **argv)
{
	static const struct option options[] = {
		{"to", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	enum cb_format to = CB_FORMAT_ANY;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case 't':
			if (strcmp(optarg, "safetensors") == 0)
				to = CB_FORMAT_SAFETENSORS;
			else if (strcmp(optarg, "pytorch") == 0 || strcmp(optarg, "pt") == 0)
				to = CB_FORMAT_PYTORCH;
			else
				return cb_usage_error("convert", "unknown format \"%s\"", optarg);
			break;
		case 'h': fputs(convert_help, stdout); return 0;
		default: return cb_usage_error("convert", "unknown option");
		}
	}
	if (argc - optind != 2)
		return cb_usage_error("convert", "takes IN and OUT");
	const char *out = argv[optind + 1];
	enum cb_format named = format_of_name(out);
	if (to != CB_FORMAT_ANY && named != CB_FORMAT_ANY && named != to)
		return cb_usage_error("convert", "--to %s contradicts the name \"%s\"",
				      cb_format_name(to), out);
	struct cb_error err = CB_ERROR_INIT;
	if (convert(argv[optind], out, to, &err) != CB_OK)
		return cb_fail(&err);
	return 0;
}
