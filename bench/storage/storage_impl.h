/* What the files of bench/storage/ share and nobody else sees: the profile's
 * insides, the tools run on its behalf, the state directory (storage.h). */
#ifndef CB_STORAGE_IMPL_H
#define CB_STORAGE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "storage.h"

enum cb_storage_kind {
	CB_STORAGE_LOCAL,
	CB_STORAGE_TMPFS,
	CB_STORAGE_LOOP, /* throttled:..., sata-ssd, cloud-volume, nvme */
	CB_STORAGE_SSHFS,
	CB_STORAGE_NFS,
};

struct cb_storage_profile {
	enum cb_storage_kind kind;
	char name[64];     /* as given */
	uint64_t rate_bps; /* loop: read throttle in bytes/s; 0: none */
	uint64_t iops;     /* loop: read IOPS throttle; 0: none */
};

/* ---- tools (storage.c) */

/* The full path of a system tool, looked for in $PATH and then the sbin
 * directories (root's tools are there, and a user's PATH may lack them).
 * CB_EUNAVAILABLE "NAME not installed: apt-get install PACKAGE" when absent. */
int cb_st_find_tool(const char *name, const char *package, char *path, size_t size,
		    struct cb_error *err);

/* Runs argv (argv[0] a full path) with stdin from /dev/null, never through
 * a shell, and waits for it. Its stdout goes to `out` (may be NULL: thrown
 * away), NUL-terminated and trimmed. A status other than 0 is CB_EENV
 * naming the tool and the last line it wrote on stderr. */
int cb_st_run_tool(const char *const *argv, char *out, size_t out_size, struct cb_error *err);

/* Starts argv in a session of its own (so a Ctrl-C to the run's process
 * group does not reach it: the profile's teardown stops it), stdout and
 * stderr to log_path. The child's pid, or -1 with errno. */
pid_t cb_st_spawn(const char *const *argv, const char *log_path);

/* Writes text to an existing file (cgroup and sysfs files). */
int cb_st_write_text(const char *path, const char *text, struct cb_error *err);

/* CB_EUNAVAILABLE unless the effective user is root: `what` needs it. */
int cb_st_need_root(const char *what, struct cb_error *err);

/* ---- datasets (storage.c) */

/* The bytes of the regular files of every path (directories walked). */
int cb_st_total_bytes(const char *const *paths, size_t n, uint64_t *bytes, struct cb_error *err);

/* m->dataset_paths[i] = m->mount_point + (paths[i] relative to data_dir).
 * CB_EUSAGE when a path is not under data_dir. */
int cb_st_map_paths(struct cb_storage_mount *m, const char *data_dir, const char *const *paths,
		    size_t n, struct cb_error *err);

/* Copies each path (a file or a directory, with `cp -R`) to its place
 * under the mount point (cb_st_map_paths), then syncs the filesystem. */
int cb_st_copy_in(struct cb_storage_mount *m, const char *data_dir, const char *const *paths,
		  size_t n, struct cb_error *err);

/* ---- state (storage_state.c) */

/* Makes the profile's state directory (mode 0700) and its state file with
 * the profile and its owner (this process when `owned`, else 0), and fills
 * m->id, m->state_dir and m->mount_point (STATE/mnt, not made yet). */
int cb_st_state_create(const struct cb_storage_profile *p, bool owned, struct cb_storage_mount *m,
		       struct cb_error *err);

/* Appends "KEY VALUE" to the state file. Called before the resource is
 * made: teardown tolerates a resource recorded but never made. */
int cb_st_state_add(const struct cb_storage_mount *m, const char *key, const char *value,
		    struct cb_error *err);

/* Undoes what the state directory records, then removes it. With
 * kill_users, processes that still use a mount are killed first (the
 * guardian: they are a dead run's trial children); without, a busy mount is
 * detached lazily and its loop device freed when the last user goes. */
int cb_st_teardown(const char *state_dir, bool kill_users, struct cb_error *err);

/* ---- the profiles */
int cb_st_up_tmpfs(const struct cb_storage_profile *p, const char *data_dir,
		   const char *const *paths, size_t n, bool owned, struct cb_storage_mount *m,
		   struct cb_error *err);
int cb_st_up_loop(const struct cb_storage_profile *p, const char *data_dir,
		  const char *const *paths, size_t n, bool owned, struct cb_storage_mount *m,
		  struct cb_error *err);
int cb_st_up_sshfs(const struct cb_storage_profile *p, const char *data_dir,
		   const char *const *paths, size_t n, bool owned, struct cb_storage_mount *m,
		   struct cb_error *err);

/* The blkio (v1) or io (v2) hierarchy's root directory and its version;
 * false when neither controller is there. */
bool cb_st_blkio_root(char *dir, size_t size, int *version);

#endif
