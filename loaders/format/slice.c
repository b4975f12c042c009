/* Partial loads: a plan of byte runs per selected tensor, copying runs in
 * and out of whole tensors, and the slices' expected hashes with their
 * cache (slice.h).
 */
#include "slice.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "fileio.h"
#include "tensor_gather.h"
#include "tensor_hash.h"

/* Reads of the checkpoint go through one buffer of this size. */
#define CHUNK_BYTES (8u << 20)
/* The manifest bound of manifest.c, and a cache file's (70 bytes or so a
 * tensor: far below for any real model). */
#define MANIFEST_MAX_BYTES (1u << 30)
#define CACHE_MAX_BYTES (256u << 20)
/* Bumped when the cache file's meaning changes: older files are recomputed. */
#define CACHE_VERSION 1

/* ------------------------------------------------------------ manifest */

/* The manifest's "dataset" object (gen's), or NULL. The manifest keeps its
 * parsed document in `root`, private to the format layer this file is in. */
static json_t *dataset_info(const struct cb_manifest *m)
{
	return json_object_get(m->root, "dataset");
}

const char *cb_slice_manifest_preset(const struct cb_manifest *m)
{
	return json_string_value(json_object_get(dataset_info(m), "preset"));
}

/* What messages call the dataset: gen's name for it, else the model's path. */
static const char *dataset_label(const struct cb_manifest *m)
{
	const char *name = json_string_value(json_object_get(dataset_info(m), "name"));
	if (name)
		return name;
	const char *path = json_string_value(json_object_get(m->root, "path"));
	return path ? path : "the manifest";
}

/* ------------------------------------------------------------ geometry */

/* The product of dims[from, to) into *out; false on overflow. */
static bool dims_product(const uint64_t *dims, uint32_t from, uint32_t to, uint64_t *out)
{
	uint64_t p = 1;
	for (uint32_t d = from; d < to; d++)
		if (__builtin_mul_overflow(p, dims[d], &p))
			return false;
	*out = p;
	return true;
}

/* The bytes of `numel` elements of t's dtype: CB_EUNSUPPORTED when they are
 * not a whole number of bytes (a sub-byte slice off a byte boundary). */
static int elems_to_bytes(const struct cb_manifest_tensor *t, uint64_t numel, uint64_t *out,
			  struct cb_error *err)
{
	bool misaligned = false;
	if (cb_dtype_nbytes(t->dtype, numel, out, &misaligned))
		return CB_OK;
	if (misaligned)
		return CB_FAIL(err, CB_EUNSUPPORTED, NULL, t->name,
			       "a slice of this %s tensor would not start and end on byte "
			       "boundaries",
			       cb_dtype_name(t->dtype));
	return CB_FAIL(err, CB_EFORMAT, NULL, t->name, "the tensor's size overflows 64 bits");
}

/* The whole of a scalar: one run of its bytes (none when it has none). */
static void geometry_scalar(const struct cb_manifest_tensor *t, struct cb_slice_tensor *s)
{
	s->first = 0;
	s->run_len = t->nbytes;
	s->n_runs = t->nbytes ? 1 : 0;
	s->stride = s->run_len;
	s->nbytes = t->nbytes;
}

/* The runs of rows [lo, hi) of dim `dim` (t->rank >= 1, dim < t->rank,
 * lo <= hi <= shape[dim]): one run per index of the dims before `dim`. */
static int geometry(const struct cb_manifest_tensor *t, unsigned dim, uint64_t lo, uint64_t hi,
		    struct cb_slice_tensor *s, struct cb_error *err)
{
	uint64_t outer, inner, row_elems, run_elems, first_elems;
	if (!dims_product(t->shape, 0, dim, &outer) ||
	    !dims_product(t->shape, dim + 1, t->rank, &inner) ||
	    __builtin_mul_overflow(t->shape[dim], inner, &row_elems) ||
	    __builtin_mul_overflow(hi - lo, inner, &run_elems) ||
	    __builtin_mul_overflow(lo, inner, &first_elems))
		return CB_FAIL(err, CB_EFORMAT, NULL, t->name,
			       "the tensor's size overflows 64 bits");
	uint64_t stride, run_len, first;
	int rc;
	if ((rc = elems_to_bytes(t, row_elems, &stride, err)) != CB_OK ||
	    (rc = elems_to_bytes(t, run_elems, &run_len, err)) != CB_OK ||
	    (rc = elems_to_bytes(t, first_elems, &first, err)) != CB_OK)
		return rc;
	memcpy(s->shape, t->shape, t->rank * sizeof *t->shape);
	s->shape[dim] = hi - lo;
	s->first = first;
	if (run_len == 0 || outer == 0) {
		s->run_len = s->stride = s->n_runs = s->nbytes = 0;
		return CB_OK;
	}
	if (run_len == stride) {
		/* the runs tile the tensor (lo == 0, hi == the dim): one run */
		if (__builtin_mul_overflow(run_len, outer, &run_len))
			return CB_FAIL(err, CB_EFORMAT, NULL, t->name,
				       "the tensor's size overflows 64 bits");
		outer = 1;
	}
	s->run_len = run_len;
	s->n_runs = outer;
	s->stride = outer == 1 ? run_len : stride;
	if (__builtin_mul_overflow(run_len, outer, &s->nbytes))
		return CB_FAIL(err, CB_EFORMAT, NULL, t->name,
			       "the tensor's size overflows 64 bits");
	return CB_OK;
}

static int geometry_whole(const struct cb_manifest_tensor *t, struct cb_slice_tensor *s,
			  struct cb_error *err)
{
	if (t->rank == 0) {
		geometry_scalar(t, s);
		return CB_OK;
	}
	return geometry(t, 0, 0, t->shape[0], s, err);
}

/* One selected tensor's entry: its role from the rules (when tp > 1) and
 * the part of it that `rank` takes. */
static int plan_tensor(const struct cb_manifest *m, size_t index, const struct cb_tp_rules *rules,
		       unsigned tp, unsigned rank, struct cb_slice_tensor *s, struct cb_error *err)
{
	const struct cb_manifest_tensor *t = &m->tensors[index];
	memset(s, 0, sizeof *s);
	s->index = index;
	s->name = t->name;
	s->rank = t->rank;
	if (t->rank > CB_SLICE_MAX_RANK)
		return CB_FAIL(err, CB_EUNSUPPORTED, NULL, t->name,
			       "a tensor of %u dims (a partial load takes at most %d)", t->rank,
			       CB_SLICE_MAX_RANK);
	/* the manifest is a file: its nbytes is checked, not believed */
	uint64_t numel, nbytes;
	if (!dims_product(t->shape, 0, t->rank, &numel) ||
	    !cb_dtype_nbytes(t->dtype, numel, &nbytes, NULL) || nbytes != t->nbytes)
		return CB_FAIL(err, CB_EFORMAT, NULL, t->name,
			       "the manifest's nbytes disagrees with the tensor's shape and dtype");
	enum cb_split_role role = CB_SPLIT_WHOLE;
	unsigned dim = 0;
	if (tp > 1) {
		if (!cb_tp_rules_lookup(rules, t->name, &role, &dim, &s->rule_line)) {
			role = CB_SPLIT_REPLICATE;
			s->unmatched = true;
		}
	}
	s->role = role;
	if (role == CB_SPLIT_WHOLE || role == CB_SPLIT_REPLICATE)
		return geometry_whole(t, s, err);
	s->dim = dim;
	if (dim >= t->rank)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
			       "%s line %u splits %s on dim %u, but tensor %s has %u dim%s",
			       cb_tp_rules_source(rules), s->rule_line, cb_split_role_name(role),
			       dim, t->name, t->rank, t->rank == 1 ? "" : "s");
	uint64_t size = t->shape[dim], lo, hi;
	if (role == CB_SPLIT_VOCAB) {
		/* vLLM pads the vocabulary to a multiple of tp: every rank's
		 * share is ceil(size / tp) rows, clamped to the real ones */
		uint64_t share = size / tp + (size % tp != 0);
		if (__builtin_mul_overflow((uint64_t)rank, share, &lo) || lo > size)
			lo = size;
		hi = share > size - lo ? size : lo + share;
	} else {
		if (size % tp != 0)
			return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
				       "tensor %s: dim %u of size %llu does not divide by the TP "
				       "size %u for a %s split (%s line %u); vLLM refuses such a "
				       "size too",
				       t->name, dim, (unsigned long long)size, tp,
				       cb_split_role_name(role), cb_tp_rules_source(rules),
				       s->rule_line);
		uint64_t share = size / tp;
		lo = rank * share; /* rank < tp, so below size */
		hi = lo + share;
	}
	return geometry(t, dim, lo, hi, s, err);
}

/* The plan's key: what it was built from, hashed (slice.h). */
static void plan_key(struct cb_slice_plan *p, const struct cb_selection *sel,
		     const struct cb_tp_rules *rules)
{
	static const char tag[] = "ckptbench slice plan 1";
	XXH3_state_t state;
	XXH3_64bits_reset(&state);
	XXH3_64bits_update(&state, tag, sizeof tag);
	unsigned char has_selection = sel != NULL;
	XXH3_64bits_update(&state, &has_selection, 1);
	if (sel) {
		const char *text = cb_selection_text(sel);
		XXH3_64bits_update(&state, text, strlen(text) + 1);
	}
	/* rules only matter when they split */
	uint64_t rules_hash = p->tp > 1 ? cb_tp_rules_hash(rules) : 0;
	XXH3_64bits_update(&state, &rules_hash, sizeof rules_hash);
	XXH3_64bits_update(&state, &p->tp, sizeof p->tp);
	XXH3_64bits_update(&state, &p->rank, sizeof p->rank);
	snprintf(p->key, sizeof p->key, "tp%u-r%u-%016llx", p->tp, p->rank,
		 (unsigned long long)XXH3_64bits_digest(&state));
}

void cb_slice_plan_free(struct cb_slice_plan *p)
{
	if (!p)
		return;
	free(p->tensors);
	memset(p, 0, sizeof *p);
}

int cb_slice_plan_build(const struct cb_manifest *m, const struct cb_selection *sel,
			const struct cb_tp_rules *rules, unsigned tp, unsigned rank,
			struct cb_slice_plan *out, struct cb_error *err)
{
	memset(out, 0, sizeof *out);
	if (tp == 0)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL, "a TP size of 0: it is at least 1");
	if (rank >= tp)
		return CB_FAIL(err, CB_EUSAGE, NULL, NULL,
			       "rank %u of TP size %u: the ranks are 0 to %u", rank, tp, tp - 1);
	if (tp > 1 && !rules)
		return CB_FAIL(err, CB_EINTERNAL, NULL, NULL, "a TP size of %u with no split rules",
			       tp);
	size_t n_patterns = sel ? cb_selection_count(sel) : 0;
	bool *pattern_hit = calloc(n_patterns ? n_patterns : 1, sizeof *pattern_hit);
	struct cb_slice_tensor *tensors = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *tensors);
	if (!pattern_hit || !tensors) {
		free(pattern_hit);
		free(tensors);
		return CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
	}
	struct cb_slice_plan p = {.tensors = tensors, .tp = tp, .rank = rank};
	int rc = CB_OK;
	for (size_t i = 0; i < m->n_tensors && rc == CB_OK; i++) {
		if (sel) {
			/* every pattern is tried, so that each one's use is known */
			bool selected = false;
			for (size_t k = 0; k < n_patterns; k++)
				if (cb_selection_match_one(sel, k, m->tensors[i].name))
					selected = pattern_hit[k] = true;
			if (!selected)
				continue;
		}
		struct cb_slice_tensor *s = &tensors[p.n];
		rc = plan_tensor(m, i, rules, tp, rank, s, err);
		if (rc != CB_OK)
			break;
		p.n_unmatched += s->unmatched;
		if (__builtin_add_overflow(p.asked_bytes, s->nbytes, &p.asked_bytes))
			rc = CB_FAIL(err, CB_EFORMAT, NULL, NULL,
				     "the selected tensors' sizes overflow 64 bits");
		p.n++;
	}
	for (size_t k = 0; k < n_patterns && rc == CB_OK; k++) {
		if (pattern_hit[k])
			continue;
		if (n_patterns == 1)
			rc = CB_FAIL(err, CB_EUSAGE, NULL, NULL,
				     "selection \"%s\" matches no tensor of %s",
				     cb_selection_text(sel), dataset_label(m));
		else
			rc = CB_FAIL(err, CB_EUSAGE, NULL, NULL,
				     "selection \"%s\": its pattern \"%s\" matches no tensor of %s",
				     cb_selection_text(sel), cb_selection_pattern(sel, k),
				     dataset_label(m));
	}
	free(pattern_hit);
	if (rc != CB_OK) {
		free(tensors);
		return rc;
	}
	plan_key(&p, sel, rules);
	*out = p;
	return CB_OK;
}

/* ------------------------------------------------------------ copying */

void cb_slice_extract(void *dst, const void *whole_tensor, const struct cb_slice_tensor *s)
{
	uint8_t *out = dst;
	const uint8_t *in = (const uint8_t *)whole_tensor + s->first;
	for (uint64_t k = 0; k < s->n_runs; k++)
		memcpy(out + k * s->run_len, in + k * s->stride, s->run_len);
}

void cb_slice_place(void *whole_tensor, const void *slice, const struct cb_slice_tensor *s)
{
	uint8_t *out = (uint8_t *)whole_tensor + s->first;
	const uint8_t *in = slice;
	for (uint64_t k = 0; k < s->n_runs; k++)
		memcpy(out + k * s->stride, in + k * s->run_len, s->run_len);
}

/* ------------------------------------------------------------ hashing */

/* Hashes the bytes of a slice's runs out of a stream of the tensor's
 * logical bytes that starts at byte `pos`; optionally the whole stream too. */
struct run_filter {
	const struct cb_slice_tensor *s;
	uint64_t pos; /* the tensor byte the next streamed byte is */
	bool track_whole;
	XXH3_state_t slice, whole;
};

static void filter_feed(struct run_filter *f, const uint8_t *p, size_t len)
{
	const struct cb_slice_tensor *s = f->s;
	if (f->track_whole)
		XXH3_64bits_update(&f->whole, p, len);
	while (len) {
		uint64_t take;
		if (f->pos < s->first) {
			take = s->first - f->pos; /* before the first run */
		} else {
			uint64_t rel = f->pos - s->first, k = rel / s->stride;
			if (k >= s->n_runs) {
				f->pos += len; /* past the last run */
				return;
			}
			uint64_t off = rel - k * s->stride;
			if (off < s->run_len) {
				take = s->run_len - off;
				if (take > len)
					take = len;
				XXH3_64bits_update(&f->slice, p, (size_t)take);
			} else {
				take = s->stride - off; /* the gap to the next run */
			}
		}
		if (take > len)
			take = len;
		p += take;
		len -= (size_t)take;
		f->pos += take;
	}
}

static int filter_sink(void *ctx, const void *buf, size_t len, struct cb_error *err)
{
	(void)err;
	filter_feed(ctx, buf, len);
	return CB_OK;
}

/* The checkpoint's tensor must be the manifest's. */
static int same_tensor(const struct cb_ckpt *ck, const struct cb_manifest_tensor *mt,
		       const struct cb_ckpt_tensor **out, struct cb_error *err)
{
	const struct cb_ckpt_tensor *ct = cb_ckpt_find(ck, mt->name);
	if (!ct)
		return CB_FAIL(err, CB_EMISMATCH, ck->path, mt->name,
			       "the checkpoint has no tensor of this name, which the manifest has");
	bool same = ct->dtype == mt->dtype && ct->rank == mt->rank && ct->nbytes == mt->nbytes;
	for (uint32_t d = 0; same && d < ct->rank; d++)
		same = ct->shape[d] == mt->shape[d];
	if (!same)
		return CB_FAIL(err, CB_EMISMATCH, ck->path, mt->name,
			       "the checkpoint's tensor differs from the manifest's in dtype or "
			       "shape");
	*out = ct;
	return CB_OK;
}

/* One slice's hash, from the checkpoint's bytes (slice.h says which). */
static int hash_slice(int fd, const char *path, const struct cb_ckpt_tensor *ct,
		      const struct cb_manifest_tensor *mt, const struct cb_slice_tensor *s,
		      uint8_t *chunk, uint64_t *out, struct cb_error *err)
{
	struct run_filter f = {.s = s};
	XXH3_64bits_reset(&f.slice);
	XXH3_64bits_reset(&f.whole);
	if (s->n_runs == 0) {
		*out = XXH3_64bits_digest(&f.slice);
		return CB_OK;
	}
	int rc = CB_OK;
	if (!ct->stride) {
		/* contiguous: only the span of the runs; within the tensor's
		 * bytes, which cb_ckpt_open bounds-checked, so no overflow */
		uint64_t span = (s->n_runs - 1) * s->stride + s->run_len;
		f.pos = s->first;
		f.track_whole = s->first == 0 && span == ct->nbytes;
		for (uint64_t done = 0; done < span && rc == CB_OK;) {
			size_t len =
				span - done < CHUNK_BYTES ? (size_t)(span - done) : CHUNK_BYTES;
			rc = cb_pread_full(fd, chunk, len, ct->offset + s->first + done, path, err);
			if (rc == CB_OK)
				filter_feed(&f, chunk, len);
			done += len;
		}
	} else {
		/* a strided view: gathered whole, as torch's contiguous() */
		f.track_whole = true;
		rc = cb_tensor_stream(fd, path, ct, chunk, CHUNK_BYTES, filter_sink, &f, err);
	}
	if (rc != CB_OK)
		return rc;
	if (f.track_whole && mt->has_hash && XXH3_64bits_digest(&f.whole) != mt->xxh3)
		return CB_FAIL(err, CB_EMISMATCH, path, mt->name,
			       "the tensor's bytes do not hash to the manifest's xxh3");
	*out = XXH3_64bits_digest(&f.slice);
	return CB_OK;
}

static int compute_hashes(const char *ckpt_path, enum cb_format fmt, const struct cb_manifest *m,
			  const struct cb_slice_plan *plan, uint64_t *hashes_out,
			  struct cb_error *err)
{
	struct cb_ckpt *ck;
	int rc = cb_ckpt_open(ckpt_path, fmt, &ck, err);
	if (rc != CB_OK)
		return rc;
	/* one descriptor per file, opened when a tensor first needs it */
	int *fds = malloc((ck->n_files ? ck->n_files : 1) * sizeof *fds);
	uint8_t *chunk = malloc(CHUNK_BYTES);
	if (!fds || !chunk) {
		rc = CB_FAIL(err, CB_ENOMEM, NULL, NULL, "out of memory");
		goto out;
	}
	for (size_t k = 0; k < ck->n_files; k++)
		fds[k] = -1;
	for (size_t i = 0; i < plan->n && rc == CB_OK; i++) {
		const struct cb_slice_tensor *s = &plan->tensors[i];
		const struct cb_manifest_tensor *mt = &m->tensors[s->index];
		const struct cb_ckpt_tensor *ct = NULL;
		if ((rc = same_tensor(ck, mt, &ct, err)) != CB_OK)
			break;
		const char *path = cb_ckpt_tensor_path(ck, ct);
		if (fds[ct->file] < 0) {
			fds[ct->file] = open(path, O_RDONLY | O_CLOEXEC);
			if (fds[ct->file] < 0) {
				rc = CB_FAIL_ERRNO(err, errno, path, "cannot open");
				break;
			}
			(void)posix_fadvise(fds[ct->file], 0, 0, POSIX_FADV_SEQUENTIAL);
		}
		rc = hash_slice(fds[ct->file], path, ct, mt, s, chunk, &hashes_out[i], err);
	}
out:
	if (fds)
		for (size_t k = 0; k < ck->n_files; k++)
			if (fds[k] >= 0)
				close(fds[k]);
	free(fds);
	free(chunk);
	cb_ckpt_free(ck);
	return rc;
}

/* ------------------------------------------------------------ the cache */

/* What the cache's hashes depend on besides the manifest: every entry's
 * name, role and runs, in order. */
static uint64_t plan_digest(const struct cb_slice_plan *p)
{
	XXH3_state_t state;
	XXH3_64bits_reset(&state);
	XXH3_64bits_update(&state, p->key, strlen(p->key) + 1);
	for (size_t i = 0; i < p->n; i++) {
		const struct cb_slice_tensor *s = &p->tensors[i];
		uint64_t fields[] = {(uint64_t)s->role, s->dim,    s->first,
				     s->run_len,        s->stride, s->n_runs};
		XXH3_64bits_update(&state, s->name, strlen(s->name) + 1);
		XXH3_64bits_update(&state, fields, sizeof fields);
	}
	return XXH3_64bits_digest(&state);
}

bool cb_slice_cache_path(const char *manifest_path, const struct cb_slice_plan *plan, char *out,
			 size_t size)
{
	int n = snprintf(out, size, "%s.slices/%s.json", manifest_path, plan->key);
	return n > 0 && (size_t)n < size;
}

static bool parse_hex64(const char *s, uint64_t *out)
{
	if (!s || strlen(s) != 16)
		return false;
	uint64_t v = 0;
	for (int i = 0; i < 16; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return true;
}

static bool json_hex_is(json_t *obj, const char *key, uint64_t want)
{
	uint64_t got;
	return parse_hex64(json_string_value(json_object_get(obj, key)), &got) && got == want;
}

/* The hashes from a cache file, when it is there and still holds for this
 * manifest and plan; false otherwise, whatever the reason (a missing,
 * stale or damaged cache is recomputed, never an error). */
static bool cache_read(const char *cache_path, uint64_t manifest_size, uint64_t manifest_hash,
		       const struct cb_slice_plan *plan, uint64_t *hashes_out)
{
	struct cb_error ignored = CB_ERROR_INIT;
	char *text;
	size_t len;
	if (cb_read_small_file(cache_path, CACHE_MAX_BYTES, &text, &len, &ignored) != CB_OK)
		return false;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	free(text);
	json_t *tensors = json_object_get(root, "tensors");
	json_t *version = json_object_get(root, "version");
	json_t *size = json_object_get(root, "manifest_bytes");
	const char *key = json_string_value(json_object_get(root, "key"));
	bool ok = json_is_integer(version) && json_integer_value(version) == CACHE_VERSION && key &&
		  strcmp(key, plan->key) == 0 && json_is_integer(size) &&
		  (uint64_t)json_integer_value(size) == manifest_size &&
		  json_hex_is(root, "manifest_xxh3", manifest_hash) &&
		  json_hex_is(root, "plan_xxh3", plan_digest(plan)) && json_is_array(tensors) &&
		  json_array_size(tensors) == plan->n;
	uint64_t *hashes = ok ? malloc((plan->n ? plan->n : 1) * sizeof *hashes) : NULL;
	ok = ok && hashes;
	for (size_t i = 0; ok && i < plan->n; i++) {
		json_t *t = json_array_get(tensors, i);
		const char *name = json_string_value(json_object_get(t, "name"));
		ok = name && strcmp(name, plan->tensors[i].name) == 0 &&
		     parse_hex64(json_string_value(json_object_get(t, "xxh3")), &hashes[i]);
	}
	if (ok)
		memcpy(hashes_out, hashes, plan->n * sizeof *hashes);
	free(hashes);
	json_decref(root);
	return ok;
}

/* Writes the cache file, atomically; false when it could not be (the
 * caller goes on without it). */
static bool cache_write(const char *cache_path, uint64_t manifest_size, uint64_t manifest_hash,
			const struct cb_slice_plan *plan, const uint64_t *hashes)
{
	struct cb_error ignored = CB_ERROR_INIT;
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", cache_path);
	char *slash = strrchr(dir, '/');
	if (!slash)
		return false;
	*slash = '\0'; /* the .slices directory */
	if (cb_mkdir_p(dir, &ignored) != CB_OK)
		return false;
	char hex_manifest[17], hex_plan[17], hex[17];
	cb_hash_hex(manifest_hash, hex_manifest);
	cb_hash_hex(plan_digest(plan), hex_plan);
	json_t *tensors = json_array();
	json_t *root = json_pack("{s:i, s:s, s:I, s:s, s:s, s:I, s:I, s:o}", "version",
				 CACHE_VERSION, "key", plan->key, "manifest_bytes",
				 (json_int_t)manifest_size, "manifest_xxh3", hex_manifest,
				 "plan_xxh3", hex_plan, "tp", (json_int_t)plan->tp, "rank",
				 (json_int_t)plan->rank, "tensors", json_incref(tensors));
	bool ok = root && tensors;
	for (size_t i = 0; ok && i < plan->n; i++) {
		cb_hash_hex(hashes[i], hex);
		ok = json_array_append_new(tensors,
					   json_pack("{s:s, s:s}", "name", plan->tensors[i].name,
						     "xxh3", hex)) == 0;
	}
	char *text = ok ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(tensors);
	json_decref(root);
	ok = text && cb_write_small_file(cache_path, text, strlen(text), &ignored) == CB_OK;
	free(text);
	return ok;
}

int cb_slice_hashes(const char *ckpt_path, enum cb_format fmt, const char *manifest_path,
		    const struct cb_manifest *m, const struct cb_slice_plan *plan,
		    uint64_t *hashes_out, struct cb_error *err)
{
	/* the manifest's own bytes say whether a cache is still its */
	char *text;
	size_t len;
	int rc = cb_read_small_file(manifest_path, MANIFEST_MAX_BYTES, &text, &len, err);
	if (rc != CB_OK)
		return rc;
	uint64_t manifest_hash = XXH3_64bits(text, len);
	free(text);
	char cache_path[PATH_MAX];
	bool cacheable = cb_slice_cache_path(manifest_path, plan, cache_path, sizeof cache_path);
	if (cacheable && cache_read(cache_path, len, manifest_hash, plan, hashes_out))
		return CB_OK;
	rc = compute_hashes(ckpt_path, fmt, m, plan, hashes_out, err);
	if (rc == CB_OK && cacheable)
		(void)cache_write(cache_path, len, manifest_hash, plan, hashes_out);
	return rc;
}
