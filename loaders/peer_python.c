/* The Python peers' probe: one run of `python-peer --probe` per process,
 * whose answer (a line per peer: NAME<TAB>REASON, empty when available) is
 * kept, so listing loaders or planning a run matrix costs one Python start,
 * not one per peer and cell.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "peer_python.h"

extern char **environ;

static struct {
	bool done;
	char answer[4096]; /* the probe's stdout */
	char failure[768]; /* why the probe itself did not run, or "" */
} probe_cache;

/* Runs the peer's program with --probe, stdout into probe_cache.answer. */
static void run_probe(const struct cb_loader *self)
{
	int pipefd[2];
	struct cb_error where = CB_ERROR_INIT;
	char *found = cb_loader_peer_path(self, &where);
	if (!found) {
		snprintf(probe_cache.failure, sizeof probe_cache.failure, "%s", where.msg);
		return;
	}
	char prog[PATH_MAX];
	snprintf(prog, sizeof prog, "%s", found);
	free(found);
	if (access(prog, X_OK) != 0) {
		snprintf(probe_cache.failure, sizeof probe_cache.failure,
			 "peer program %.300s not found (%s)", prog, strerror(errno));
		return;
	}
	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		snprintf(probe_cache.failure, sizeof probe_cache.failure, "pipe: %s",
			 strerror(errno));
		return;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	char *argv[] = {(char *)prog, (char *)"--probe", NULL};
	pid_t pid;
	int rc = posix_spawn(&pid, prog, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	size_t len = 0;
	while (rc == 0 && len < sizeof probe_cache.answer - 1) {
		ssize_t n = read(pipefd[0], probe_cache.answer + len,
				 sizeof probe_cache.answer - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	probe_cache.answer[len] = '\0';
	close(pipefd[0]);
	int status = 0;
	if (rc == 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	if (rc != 0)
		snprintf(probe_cache.failure, sizeof probe_cache.failure, "cannot run %.300s: %s",
			 prog, strerror(rc));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		/* 127: the wrapper found no Python to exec */
		snprintf(probe_cache.failure, sizeof probe_cache.failure,
			 "no usable python3 for the peers (%.300s --probe exited with %d; "
			 "set CKPTBENCH_PYTHON)",
			 prog, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

int cb_peer_python_probe(const struct cb_loader *self, struct cb_error *err)
{
	if (!probe_cache.done) {
		run_probe(self);
		probe_cache.done = true;
	}
	if (*probe_cache.failure)
		return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL, "%s", probe_cache.failure);
	size_t name_len = strlen(self->name);
	for (const char *line = probe_cache.answer; *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		if (len > name_len && strncmp(line, self->name, name_len) == 0 &&
		    line[name_len] == '\t') {
			const char *reason = line + name_len + 1;
			int reason_len = (int)(len - name_len - 1);
			if (reason_len == 0)
				return CB_OK;
			return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL, "%.*s", reason_len,
				       reason);
		}
		line += len + (end ? 1 : 0);
	}
	return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL, "%s --probe does not list %s", self->peer,
		       self->name);
}
