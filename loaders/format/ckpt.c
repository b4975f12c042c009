/* Opening a PATH as one model: finding the files, then reading each file's
 * header through its format's reader, then merging the tensor tables. */
#include "ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "pt.h"
#include "shard_index.h"

const char *cb_format_name(enum cb_format format)
{
	switch (format) {
	case CB_FORMAT_SAFETENSORS: return "safetensors";
	case CB_FORMAT_PYTORCH: return "pytorch";
	default: return "any";
	}
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static enum cb_format index_format(const char *name)
{
	if (has_suffix(name, ".safetensors.index.json"))
		return CB_FORMAT_SAFETENSORS;
	if (has_suffix(name, ".bin.index.json") || has_suffix(name, ".pt.index.json") ||
	    has_suffix(name, ".pth.index.json"))
		return CB_FORMAT_PYTORCH;
	return CB_FORMAT_ANY;
}

/* What a file's first bytes say it is. Anything not recognisably PyTorch is
 * handed to the safetensors reader, whose errors say what is wrong. */
static enum cb_format sniff_file(const char *path)
{
	uint8_t head[264] = {0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return CB_FORMAT_SAFETENSORS;
	ssize_t got = pread(fd, head, sizeof head, 0);
	close(fd);
	if (got >= 4 && memcmp(head, "PK\x03\x04", 4) == 0)
		return CB_FORMAT_PYTORCH;
	/* The oldest torch formats, so that the PyTorch reader names them. */
	if ((got >= 8 && memcmp(head, "PYTORCH1", 8) == 0) ||
	    (got >= 262 && memcmp(head + 257, "ustar", 5) == 0))
		return CB_FORMAT_PYTORCH;
	bool torch_name =
		has_suffix(path, ".pt") || has_suffix(path, ".bin") || has_suffix(path, ".pth");
	if (got >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5 &&
	    (torch_name || head[2] == 0x8a))
		return CB_FORMAT_PYTORCH;
	/* A torch file name on bytes that do not begin a safetensors header
	 * (length, then '{'): the PyTorch reader says what it is not, rather
	 * than the safetensors parser misreading text as a header length. */
	if (torch_name && !(got >= 9 && head[8] == '{'))
		return CB_FORMAT_PYTORCH;
	return CB_FORMAT_SAFETENSORS;
}

/* ------------------------------------------------------------ resolution */

/* The files a PATH stands for, and in which format. */
struct resolved {
	enum cb_format format;
	bool sharded;
	char *index_path;  /* when sharded */
	char *single_path; /* when not */
};

static void resolved_free(struct resolved *r)
{
	free(r->index_path);
	free(r->single_path);
}

static int pick_in_directory(const char *dir, enum cb_format want, struct resolved *out,
			     struct cb_error *err)
{
	static const struct {
		const char *name;
		enum cb_format format;
	} singles[] = {
		{"model.safetensors", CB_FORMAT_SAFETENSORS},
		{"model.pt", CB_FORMAT_PYTORCH},
		{"pytorch_model.bin", CB_FORMAT_PYTORCH},
	};
	DIR *d = opendir(dir);
	if (!d)
		return CB_FAIL_ERRNO(err, errno, dir, "cannot open directory");
	char *index[3] = {NULL, NULL, NULL}; /* by format */
	bool ambiguous[3] = {false, false, false};
	struct dirent *entry;
	while ((entry = readdir(d))) {
		enum cb_format f = index_format(entry->d_name);
		if (f == CB_FORMAT_ANY)
			continue;
		if (index[f])
			ambiguous[f] = true;
		else
			index[f] = strdup(entry->d_name);
	}
	closedir(d);
	int rc = CB_OK;
	enum cb_format order[2] = {CB_FORMAT_SAFETENSORS, CB_FORMAT_PYTORCH};
	if (want == CB_FORMAT_PYTORCH)
		order[0] = CB_FORMAT_PYTORCH, order[1] = CB_FORMAT_SAFETENSORS;
	for (int k = 0; k < (want == CB_FORMAT_ANY ? 2 : 1) && !out->format; k++) {
		enum cb_format f = order[k];
		if (index[f] && ambiguous[f]) {
			rc = CB_FAIL(err, CB_EUSAGE, dir, NULL,
				     "several %s index files: name the one to use",
				     cb_format_name(f));
			break;
		}
		if (index[f]) {
			out->format = f;
			out->sharded = true;
			out->index_path = cb_path_join(dir, index[f]);
			break;
		}
		for (size_t s = 0; s < sizeof singles / sizeof singles[0]; s++) {
			if (singles[s].format != f)
				continue;
			char *candidate = cb_path_join(dir, singles[s].name);
			if (candidate && access(candidate, F_OK) == 0) {
				out->format = f;
				out->single_path = candidate;
				break;
			}
			free(candidate);
		}
	}
	for (int f = 0; f < 3; f++)
		free(index[f]);
	if (rc == CB_OK && !out->format)
		rc = CB_FAIL(
			err, CB_ENOTFOUND, dir, NULL,
			"no %s checkpoint here (expected an *.index.json or model.safetensors, "
			"model.pt, pytorch_model.bin)",
			want == CB_FORMAT_ANY ? "" : cb_format_name(want));
	if (rc == CB_OK && !out->index_path && !out->single_path)
		rc = CB_FAIL(err, CB_ENOMEM, dir, NULL, "out of memory");
	return rc;
}

static int resolve(const char *path, enum cb_format want, struct resolved *out,
		   struct cb_error *err)
{
	memset(out, 0, sizeof *out);
	struct stat st;
	if (stat(path, &st) != 0)
		return CB_FAIL_ERRNO(err, errno, path, "cannot open");
	if (S_ISDIR(st.st_mode))
		return pick_in_directory(path, want, out, err);
	enum cb_format f = index_format(path);
	if (f != CB_FORMAT_ANY) {
		out->format = f;
		out->sharded = true;
		out->index_path = strdup(path);
	} else {
		out->format = sniff_file(path);
		out->single_path = strdup(path);
	}
	if (!out->index_path && !out->single_path)
		return CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	if (want != CB_FORMAT_ANY && want != out->format)
		return CB_FAIL(err, CB_EUSAGE, path, NULL, "is a %s checkpoint, not %s",
			       cb_format_name(out->format), cb_format_name(want));
	return CB_OK;
}

/* ------------------------------------------------------------ building */

void cb_ckpt_free(struct cb_ckpt *ckpt)
{
	if (!ckpt)
		return;
	for (size_t i = 0; i < ckpt->n_files; i++) {
		free(ckpt->files[i].path);
		if (ckpt->st_files)
			cb_st_free(ckpt->st_files[i]);
	}
	if (ckpt->free_private)
		ckpt->free_private(ckpt->format_private);
	free(ckpt->st_files);
	free(ckpt->files);
	free(ckpt->tensors);
	free(ckpt->path);
	free(ckpt);
}

static int compare_tensor_names(const void *a, const void *b)
{
	const struct cb_ckpt_tensor *x = a, *y = b;
	return strcmp(x->name, y->name);
}

const struct cb_ckpt_tensor *cb_ckpt_find(const struct cb_ckpt *ckpt, const char *name)
{
	struct cb_ckpt_tensor key = {.name = name};
	return bsearch(&key, ckpt->tensors, ckpt->n_tensors, sizeof key, compare_tensor_names);
}

static int add_files(struct cb_ckpt *ckpt, char **paths, size_t n, struct cb_error *err)
{
	ckpt->files = calloc(n ? n : 1, sizeof *ckpt->files);
	if (!ckpt->files)
		return CB_FAIL(err, CB_ENOMEM, ckpt->path, NULL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		ckpt->files[i].path = strdup(paths[i]);
		if (!ckpt->files[i].path)
			return CB_FAIL(err, CB_ENOMEM, ckpt->path, NULL, "out of memory");
		ckpt->n_files++;
	}
	return CB_OK;
}

/* Reads each safetensors header and flattens the tables into one. */
static int populate_safetensors(struct cb_ckpt *ckpt, struct cb_error *err)
{
	ckpt->st_files = calloc(ckpt->n_files, sizeof *ckpt->st_files);
	if (!ckpt->st_files)
		return CB_FAIL(err, CB_ENOMEM, ckpt->path, NULL, "out of memory");
	size_t total = 0;
	for (size_t i = 0; i < ckpt->n_files; i++) {
		int rc = cb_st_open(ckpt->files[i].path, &ckpt->st_files[i], err);
		if (rc != CB_OK)
			return rc;
		ckpt->files[i].size = ckpt->st_files[i]->file_size;
		total += ckpt->st_files[i]->n_tensors;
	}
	ckpt->tensors = calloc(total ? total : 1, sizeof *ckpt->tensors);
	if (!ckpt->tensors)
		return CB_FAIL(err, CB_ENOMEM, ckpt->path, NULL, "out of memory");
	for (size_t i = 0; i < ckpt->n_files; i++) {
		const struct cb_st_file *f = ckpt->st_files[i];
		for (size_t k = 0; k < f->n_tensors; k++) {
			const struct cb_st_tensor *src = &f->tensors[k];
			struct cb_ckpt_tensor *t = &ckpt->tensors[ckpt->n_tensors++];
			*t = (struct cb_ckpt_tensor){
				.name = src->name,
				.dtype = src->dtype,
				.rank = src->rank,
				.shape = src->shape,
				.numel = src->numel,
				.nbytes = src->end - src->begin,
				.file = (uint32_t)i,
				.offset = f->data_start + src->begin,
				.storage_nbytes = src->end - src->begin,
			};
			ckpt->total_bytes += t->nbytes;
		}
	}
	const struct cb_st_file *first = ckpt->n_files ? ckpt->st_files[0] : NULL;
	if (first) {
		ckpt->has_metadata = first->has_metadata;
		ckpt->n_meta = first->n_meta;
		ckpt->meta = first->meta;
	}
	return CB_OK;
}

static int check_unique_names(const struct cb_ckpt *ckpt, struct cb_error *err)
{
	for (size_t i = 1; i < ckpt->n_tensors; i++) {
		const struct cb_ckpt_tensor *a = &ckpt->tensors[i - 1], *b = &ckpt->tensors[i];
		if (strcmp(a->name, b->name) == 0) {
			char where[300];
			snprintf(where, sizeof where, "tensor \"%.200s\"", b->name);
			return CB_FAIL(err, CB_EFORMAT, ckpt->path, where,
				       "the tensor is in two shards: %s and %s",
				       ckpt->files[a->file].path, ckpt->files[b->file].path);
		}
	}
	return CB_OK;
}

int cb_ckpt_open(const char *path, enum cb_format want, struct cb_ckpt **out, struct cb_error *err)
{
	*out = NULL;
	struct resolved where;
	int rc = resolve(path, want, &where, err);
	struct cb_shard_index *index = NULL;
	struct cb_ckpt *ckpt = calloc(1, sizeof *ckpt);
	if (rc == CB_OK && (!ckpt || !(ckpt->path = strdup(path))))
		rc = CB_FAIL(err, CB_ENOMEM, path, NULL, "out of memory");
	if (rc != CB_OK)
		goto fail;
	ckpt->format = where.format;
	ckpt->sharded = where.sharded;
	if (where.sharded) {
		if ((rc = cb_shard_index_open(where.index_path, &index, err)) != CB_OK ||
		    (rc = add_files(ckpt, index->files, index->n_files, err)) != CB_OK)
			goto fail;
	} else if ((rc = add_files(ckpt, &where.single_path, 1, err)) != CB_OK) {
		goto fail;
	}
	if (ckpt->format == CB_FORMAT_PYTORCH)
		rc = cb_pt_populate(ckpt, err);
	else
		rc = populate_safetensors(ckpt, err);
	if (rc != CB_OK)
		goto fail;
	qsort(ckpt->tensors, ckpt->n_tensors, sizeof *ckpt->tensors, compare_tensor_names);
	if ((rc = check_unique_names(ckpt, err)) != CB_OK)
		goto fail;
	if (index && (rc = cb_shard_index_check(index, ckpt, err)) != CB_OK)
		goto fail;
	cb_shard_index_free(index);
	resolved_free(&where);
	*out = ckpt;
	return CB_OK;
fail:
	cb_shard_index_free(index);
	resolved_free(&where);
	cb_ckpt_free(ckpt);
	return rc;
}
