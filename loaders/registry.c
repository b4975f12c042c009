/* The registry: one const table of every loader, shipped in every build
 * (a loader that is not built still has its descriptor, with a reason).
 *
 * The test binary (ckptbench-test) compiles this same file with
 * CB_TEST_REGISTRY defined, which appends the test-only loaders of
 * tests/loaders/; the shipped binary never contains them.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fileio.h"
#include "loader.h"
#include "resources.h"

/* X(c_name): every shipped loader, in listing order. (clang-format does not
 * settle on a layout for this list, so it is left as written.) */
/* clang-format off */
#define CB_LOADERS(X) \
	X(safetensors_read) X(safetensors_mmap) X(safetensors_eager) X(pickle) X(pickle_mmap) \
	X(safetensors_gpu) X(safetensors_gpu_naive) X(pickle_gpu) \
	X(peer_torch_load) X(peer_torch_load_mmap) X(peer_safetensors_py) \
	X(peer_torch_load_gpu) X(peer_safetensors_py_gpu) \
	X(libtorch_safetensors) X(libtorch_safetensors_mmap) X(libtorch_pickle) \
	X(libtorch_pickle_load) X(libtorch_safetensors_gpu) X(libtorch_safetensors_mmap_gpu) \
	X(libtorch_pickle_gpu) X(libtorch_pickle_load_gpu)
/* clang-format on */

#define CB_X_DECLARE(id) extern const struct cb_loader cb_loader_##id;
#define CB_X_ENTRY(id) &cb_loader_##id,
CB_LOADERS(CB_X_DECLARE)

#ifdef CB_TEST_REGISTRY
#include "test_loaders.h"
CB_TEST_LOADERS(CB_X_DECLARE)
#endif

static const struct cb_loader *const registry[] = {CB_LOADERS(CB_X_ENTRY)
#ifdef CB_TEST_REGISTRY
							   CB_TEST_LOADERS(CB_X_ENTRY)
#endif
};

const struct cb_loader *const *cb_loader_list(size_t *n_out)
{
	*n_out = sizeof registry / sizeof registry[0];
	return registry;
}

const struct cb_loader *cb_loader_find(const char *name)
{
	for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
		if (strcmp(registry[i]->name, name) == 0)
			return registry[i];
	return NULL;
}

const char *cb_device_kind_name(enum cb_device_kind kind)
{
	return kind == CB_DEVICE_CUDA ? "cuda" : "cpu";
}

const char *cb_phase_name(enum cb_phase phase)
{
	static const char *const names[CB_PHASE_COUNT] = {"init", "read", "copy", "to_device"};
	return phase >= 0 && phase < CB_PHASE_COUNT ? names[phase] : "none";
}

const char *cb_opt_type_name(enum cb_opt_type type)
{
	switch (type) {
	case CB_OPT_BOOL: return "bool";
	case CB_OPT_U64: return "u64";
	case CB_OPT_STRING: return "string";
	}
	return "?";
}

static bool name_ok(const char *name)
{
	if (!name || !*name)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
	return true;
}

/* The size an option's value takes in the options struct. */
static size_t opt_width(enum cb_opt_type type)
{
	switch (type) {
	case CB_OPT_BOOL: return sizeof(bool);
	case CB_OPT_U64: return sizeof(uint64_t);
	case CB_OPT_STRING: return sizeof(const char *);
	}
	return SIZE_MAX;
}

static int check_opts(const struct cb_loader *l, struct cb_error *err)
{
	for (const struct cb_loader_opt *o = l->opts; o && o->name; o++) {
		size_t end;
		if (!name_ok(o->name) || !o->help ||
		    __builtin_add_overflow(o->offset, opt_width(o->type), &end) ||
		    end > l->opts_size)
			return CB_FAIL(err, CB_EINTERNAL, NULL, l->name,
				       "loader option \"%s\" is not well formed (name, help, "
				       "offset within opts_size)",
				       o->name);
		if (o->type == CB_OPT_U64 && o->min > o->max)
			return CB_FAIL(err, CB_EINTERNAL, NULL, l->name,
				       "loader option \"%s\" has min above max", o->name);
	}
	return CB_OK;
}

int cb_loader_check(const struct cb_loader *l, struct cb_error *err)
{
	if (!l || !name_ok(l->name))
		return CB_FAIL(err, CB_EINTERNAL, NULL, NULL,
			       "a loader has no name or a name outside [a-z0-9-]");
	if (l->abi != CB_LOADER_ABI)
		return CB_FAIL(err, CB_EINTERNAL, NULL, l->name,
			       "loader built for ABI %u, the harness has ABI %u", l->abi,
			       CB_LOADER_ABI);
	if (!l->summary || (l->format != CB_FORMAT_SAFETENSORS && l->format != CB_FORMAT_PYTORCH))
		return CB_FAIL(err, CB_EINTERNAL, NULL, l->name,
			       "loader lacks a summary or a format (safetensors or pytorch)");
	bool stub = l->unavailable_reason != NULL;
	bool peer = (l->caps & CB_CAP_PEER) != 0;
	if (peer && !l->peer)
		return CB_FAIL(err, CB_EINTERNAL, NULL, l->name, "peer loader names no program");
	if (!stub && !peer && (!l->open || !l->load || !l->close))
		return CB_FAIL(err, CB_EINTERNAL, NULL, l->name,
			       "loader lacks a required hook (open, load, close)");
	if ((l->caps & CB_CAP_DEVICE_MEM) && !stub && !peer && !l->control)
		return CB_FAIL(
			err, CB_EINTERNAL, NULL, l->name,
			"a device loader needs control(CB_LOADER_CTL_FETCH) for verification");
	return check_opts(l, err);
}

int cb_loader_available(const struct cb_loader *l, struct cb_error *err)
{
	int rc = cb_loader_check(l, err);
	if (rc != CB_OK)
		return rc;
	if (l->unavailable_reason)
		return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL, "%s", l->unavailable_reason);
	return l->probe ? l->probe(l, err) : CB_OK;
}

const char *cb_loader_cap_name(unsigned cap)
{
	switch (cap) {
	case CB_CAP_HOST_MEM: return "host_mem";
	case CB_CAP_DEVICE_MEM: return "device_mem";
	case CB_CAP_ZERO_COPY: return "zero_copy";
	case CB_CAP_THREADS: return "threads";
	case CB_CAP_O_DIRECT: return "o_direct";
	case CB_CAP_PEER: return "peer";
	case CB_CAP_MODULE: return "module";
	case CB_CAP_PARTIAL: return "partial";
	default: return NULL;
	}
}

/* The first executable PROG in $PATH, or NULL. */
static char *search_path(const char *prog)
{
	const char *path = getenv("PATH");
	char *copy = path ? strdup(path) : NULL;
	char *found = NULL;
	for (char *save, *dir = copy ? strtok_r(copy, ":", &save) : NULL; dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		char *cand = cb_path_join(dir, prog);
		if (cand && access(cand, X_OK) == 0)
			found = cand;
		else
			free(cand);
	}
	free(copy);
	return found;
}

char *cb_loader_peer_path(const struct cb_loader *l, struct cb_error *err)
{
	const char *prog = l->peer;
	if (!prog)
		return CB_FAIL(err, CB_EINTERNAL, l->name, NULL, "not a peer loader"), NULL;
	if (strchr(prog, '/')) {
		if (access(prog, X_OK) == 0)
			return strdup(prog);
		CB_FAIL_ERRNO(err, errno, prog, "peer program not usable");
		return NULL;
	}
	char path[PATH_MAX];
	struct cb_error shipped = CB_ERROR_INIT;
	if (cb_resource_find(CB_RES_PEERS, prog, path, sizeof path, &shipped) == CB_OK &&
	    access(path, X_OK) == 0)
		return strdup(path);
	char *found = search_path(prog);
	if (!found)
		CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL, "%s; not in PATH either", shipped.msg);
	return found;
}

const struct cb_loader_opt *cb_loader_opt_find(const struct cb_loader *l, const char *name)
{
	for (const struct cb_loader_opt *o = l->opts; o && o->name; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

static bool parse_bool(const char *text, bool *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(text, yes[i]) == 0)
			return *out = true, true;
		if (strcasecmp(text, no[i]) == 0)
			return *out = false, true;
	}
	return false;
}

/* Decimal with an optional K/M/G suffix (powers of 1024). */
static bool parse_u64(const char *text, uint64_t *out)
{
	if (!text || *text < '0' || *text > '9')
		return false;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno)
		return false;
	unsigned shift = 0;
	switch (*end) {
	case 'K':
	case 'k':
		shift = 10;
		end++;
		break;
	case 'M':
	case 'm':
		shift = 20;
		end++;
		break;
	case 'G':
	case 'g':
		shift = 30;
		end++;
		break;
	default: break;
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return false;
	*out = (uint64_t)v << shift;
	return true;
}

int cb_loader_opt_set(const struct cb_loader *l, const struct cb_loader_opt *o, void *opts,
		      const char *value, struct cb_error *err)
{
	char *slot = (char *)opts + o->offset;
	bool b;
	uint64_t u;
	switch (o->type) {
	case CB_OPT_BOOL:
		if (!parse_bool(value, &b))
			break;
		memcpy(slot, &b, sizeof b);
		return CB_OK;
	case CB_OPT_U64:
		if (!parse_u64(value, &u) || u < o->min || u > o->max)
			break;
		memcpy(slot, &u, sizeof u);
		return CB_OK;
	case CB_OPT_STRING: memcpy(slot, &value, sizeof value); return CB_OK;
	}
	if (o->type == CB_OPT_U64)
		return CB_FAIL(err, CB_EUSAGE, NULL, l->name,
			       "option %s takes an integer from %llu to %llu, not \"%s\"", o->name,
			       (unsigned long long)o->min, (unsigned long long)o->max, value);
	return CB_FAIL(err, CB_EUSAGE, NULL, l->name, "option %s takes %s, not \"%s\"", o->name,
		       cb_opt_type_name(o->type), value);
}

int cb_loader_opts_defaults(const struct cb_loader *l, void *opts, struct cb_error *err)
{
	for (const struct cb_loader_opt *o = l->opts; o && o->name; o++)
		if (o->def && cb_loader_opt_set(l, o, opts, o->def, err) != CB_OK)
			return err ? (int)err->code : CB_EUSAGE;
	return CB_OK;
}
