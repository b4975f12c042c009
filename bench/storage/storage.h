/* Storage profiles: the datasets put on a real kind of storage for a run
 * (docs/storage.md).
 *
 *   local                 the data directory as it is (nothing set up);
 *   tmpfs                 a tmpfs mount sized to the datasets, copied in;
 *   throttled:RATE[,IOPS] an ext4 image on a loop device on the data
 *                         directory's disk, copied in, its reads throttled
 *                         by a blkio cgroup (presets: sata-ssd =
 *                         throttled:550M, cloud-volume =
 *                         throttled:125M,3000, nvme = the image unthrottled);
 *   sshfs                 the data directory through sshfs (FUSE) from an
 *                         sshd of our own on 127.0.0.1;
 *   nfs                   skipped where the kernel has no NFS server.
 *
 * Crash safety: every profile brought up has a state directory
 * (CB_STORAGE_STATE_ROOT/<id>/) whose state file lists each resource
 * (mount, image, loop device, cgroup) before it is created, so
 * cb_storage_down_all can undo anything recorded, however half-made. A run
 * starts a guardian process first (cb_storage_guardian_start) that undoes
 * the run's own profiles once the run is gone, even after SIGKILL.
 *
 * Layer: bench/storage uses loaders/base only; the harness and the CLI use
 * it. Everything here needs root except parsing; without it (or without
 * the kernel feature, device or tool) cb_storage_up says why with
 * CB_EUNAVAILABLE and nothing is left behind.
 *
 * Thread-safety: none; call from the run's main thread.
 */
#ifndef CB_STORAGE_H
#define CB_STORAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "error.h"

/* Where the profiles' state directories live (a tmpfs: a reboot empties it
 * together with the mounts it describes). */
#define CB_STORAGE_STATE_ROOT "/run/ckptbench/storage"

/* A parsed profile: "local", "tmpfs", "throttled:550M,3000", "sata-ssd",
 * "cloud-volume", "nvme", "sshfs", "nfs". Opaque; cb_storage_profile_free. */
struct cb_storage_profile;

/* A profile brought up (or that failed to come up: then only `profile`
 * and `note` are filled). Filled by cb_storage_up; the strings are
 * embedded, the dataset paths owned (cb_storage_down frees them). */
struct cb_storage_mount {
	char profile[64];          /* the profile as it is named ("sata-ssd", "throttled:100M") */
	char id[64];               /* the state directory's name; "" for local */
	char state_dir[256];       /* CB_STORAGE_STATE_ROOT/<id>; "" for local */
	char mount_point[320];     /* where the datasets are (STATE/mnt); "" for local */
	char fstype[32];           /* "tmpfs", "ext4", "fuse.sshfs"; the data dir's for local */
	char mount_options[512];   /* as mounted (sshfs: the -o options given) */
	uint64_t rate_bytes_per_s; /* read throttle; 0: none */
	uint64_t iops;             /* read IOPS throttle; 0: none */
	char source[512]; /* what backs it: "/dev/loop3 (image ...)", "root@127.0.0.1:DIR" */
	char note[768];   /* anything a reader of the results should know */
	/* The throttling cgroup ("" when none), its version (1: blkio, 2: io),
	 * and, while cb_storage_enter holds the caller in it, the cgroup the
	 * caller came from (cb_storage_leave goes back there). */
	char cgroup_dir[256];
	int cgroup_version;
	char cgroup_return[256];
	/* The datasets' bytes on this machine are also the source files
	 * (sshfs serves the originals): a cold state needs them evicted too. */
	bool serves_originals;
	char **dataset_paths; /* dataset_paths[i] is where paths[i] now is */
	size_t n_paths;
};

/* Parses a profile's text. CB_EUSAGE on anything else (bad rate, unknown
 * name). */
int cb_storage_parse(const char *text, struct cb_storage_profile **out, struct cb_error *err);
void cb_storage_profile_free(struct cb_storage_profile *p);
/* The name the profile is recorded under (the text as given). */
const char *cb_storage_profile_name(const struct cb_storage_profile *p);

/* Brings the profile up with the given datasets (each a directory or a file
 * under data_dir) made available on it; `out` says where each now is and how
 * the storage is made. The profile's resources belong to the calling process
 * when `owned` (a run: its guardian undoes them if it dies) and to nobody
 * otherwise (`storage up`: they stay until `storage down`).
 * CB_EUNAVAILABLE with the one-line reason where it cannot be had here (no
 * root, no /dev/fuse, no blkio controller, a tool missing): everything made
 * so far is undone, and out->profile, out->note say why. */
int cb_storage_up(const struct cb_storage_profile *p, const char *data_dir,
		  const char *const *paths, size_t n, bool owned, struct cb_storage_mount *out,
		  struct cb_error *err);

/* Puts the calling process into the profile's throttling cgroup, so that
 * the children it forks later are in it too; a no-op for a profile without
 * one. cb_storage_leave puts it back where it was. */
int cb_storage_enter(struct cb_storage_mount *m, struct cb_error *err);
int cb_storage_leave(struct cb_storage_mount *m, struct cb_error *err);

/* Undoes the profile (unmounts, detaches, removes the cgroup and the state
 * directory) and frees m->dataset_paths. Idempotent. */
int cb_storage_down(struct cb_storage_mount *m, struct cb_error *err);

/* Undoes every profile recorded in the state root but those of a process
 * still alive (a run in progress). `*n_down` (may be NULL) counts them. */
int cb_storage_down_all(size_t *n_down, struct cb_error *err);

/* Prints one line per profile recorded (id, profile, owner, mount point,
 * cgroup) on `out`; returns how many. */
size_t cb_storage_status(FILE *out);

/* The cell's "storage" object (docs/results-schema.md): {"profile",
 * "fstype", "mount_options", "rate_bytes_per_s", "iops", "source",
 * "mount_point", "note"}, null where not known. New reference. */
json_t *cb_storage_json(const struct cb_storage_mount *m);

/* Starts the guardian: a process of its own session that waits on a pipe
 * only this process holds the write end of; when the pipe says EOF (this
 * process exited, normally or killed), it undoes every profile this process
 * owns and exits. Call once, early, before any profile is brought up. */
int cb_storage_guardian_start(struct cb_error *err);

/* The deepest directory holding every path (each made absolute), for
 * cb_storage_up's data_dir. NULL on allocation failure. Caller frees. */
char *cb_storage_common_dir(const char *const *paths, size_t n);

#endif
