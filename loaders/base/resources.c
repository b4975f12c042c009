/* The files ckptbench needs beside its binary, found from the binary's own
 * path: the build tree's when it runs from its build directory, the install
 * prefix's otherwise (resources.h says why and in which order; the install
 * layout is docs/install.md's).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cb_config.h"
#include "resources.h"

static const struct {
	const char *what;      /* for messages */
	const char *env;       /* a directory overriding the rest; NULL: none */
	const char *hint;      /* the override, for messages */
	const char *build;     /* in the build directory's source or build tree */
	const char *installed; /* relative to the installed binary's directory,
				  or absolute (an option outside the prefix) */
} resources[] = {
	[CB_RES_PLOTS] = {"gnuplot templates", "CKPTBENCH_PLOTS", "set CKPTBENCH_PLOTS",
			  CB_SOURCE_ROOT "/plots", CB_REL_PLOTS_DIR},
	[CB_RES_PEERS] = {"peer programs", "CKPTBENCH_PEERS", "set CKPTBENCH_PEERS",
			  CB_SOURCE_ROOT "/loaders/peers", CB_REL_PEERS_DIR},
	[CB_RES_MODULE] = {"libtorch module", NULL, "set CKPTBENCH_TORCH_MODULE to the file",
			   CB_BUILD_ROOT "/loaders/torch", CB_REL_MODULE_DIR},
	[CB_RES_TP_RULES] = {"tensor-parallel rules", "CKPTBENCH_TP_RULES",
			     "set CKPTBENCH_TP_RULES or give --tp-rules",
			     CB_SOURCE_ROOT "/datasets/tp-rules", CB_REL_TP_RULES_DIR},
};

/* The running binary's directory (the kernel resolves symbolic links);
 * false when /proc/self/exe cannot be read. */
static bool exe_dir(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);
	if (n <= 0 || buf[0] != '/')
		return false;
	buf[n] = '\0';
	*strrchr(buf, '/') = '\0';
	if (!*buf)
		snprintf(buf, size, "/");
	return true;
}

/* Whether `dir` is the build directory this binary was built in, or under
 * it (the test programs are in tests/). Compared by real path, so a build
 * directory reached through a symbolic link still counts; a build
 * directory that is gone does not. */
static bool in_build_tree(const char *dir)
{
	char root[PATH_MAX];
	if (!realpath(CB_BUILD_ROOT, root))
		return false;
	size_t n = strlen(root);
	if (n == 1) /* "/" */
		return true;
	return strncmp(dir, root, n) == 0 && (dir[n] == '\0' || dir[n] == '/');
}

/* dir joined with rel, each leading "../" of rel taking off a component of
 * dir, so that messages show /opt/cb/share/... rather than
 * /opt/cb/bin/../share/...; rel absolute is taken as it is. */
static void join_rel(const char *dir, const char *rel, char *out, size_t size)
{
	if (rel[0] == '/') {
		snprintf(out, size, "%s", rel);
		return;
	}
	char base[PATH_MAX];
	snprintf(base, sizeof base, "%s", dir);
	while (strncmp(rel, "../", 3) == 0 || strcmp(rel, "..") == 0) {
		char *slash = strrchr(base, '/');
		if (slash)
			slash[slash == base ? 1 : 0] = '\0';
		rel += rel[2] ? 3 : 2;
	}
	size_t len = strlen(base);
	int n = snprintf(out, size, "%s%s%s", base, len && base[len - 1] == '/' ? "" : "/", rel);
	if (n < 0 || (size_t)n >= size)
		out[0] = '\0'; /* too long to exist */
}

static bool is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int cb_resource_find(enum cb_resource res, const char *file, char *path, size_t size,
		     struct cb_error *err)
{
	if (size)
		path[0] = '\0';
	if ((size_t)res >= sizeof resources / sizeof resources[0] || size == 0)
		return CB_FAIL(err, CB_EINTERNAL, NULL, NULL, "no resource %d", (int)res);
	const char *what = resources[res].what;
	const char *env = resources[res].env ? getenv(resources[res].env) : NULL;
	char cand[2][PATH_MAX];
	size_t n = 0;
	if (env && *env) {
		snprintf(cand[n++], sizeof cand[0], "%s", env);
	} else {
		char dir[PATH_MAX];
		if (!exe_dir(dir, sizeof dir))
			return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL,
				       "%s not found: /proc/self/exe unreadable, so no place to "
				       "look for %s (%s)",
				       what, file, resources[res].hint);
		if (in_build_tree(dir))
			snprintf(cand[n++], sizeof cand[0], "%s", resources[res].build);
		join_rel(dir, resources[res].installed, cand[n++], sizeof cand[0]);
	}
	for (size_t i = 0; i < n; i++) {
		if (!*cand[i])
			continue;
		int len = snprintf(path, size, "%s/%s", cand[i], file);
		if (len > 0 && (size_t)len < size && is_file(path))
			return CB_OK;
	}
	path[0] = '\0';
	if (env && *env)
		return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL,
			       "%s not found: no %s in $%s (%.300s)", what, file,
			       resources[res].env, env);
	if (n == 1)
		return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL,
			       "%s not found: no %s in %.300s (%s)", what, file, cand[0],
			       resources[res].hint);
	return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL,
		       "%s not found: no %s in %.300s or %.300s (%s)", what, file, cand[0], cand[1],
		       resources[res].hint);
}
