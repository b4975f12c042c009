/* The tmpfs profile: the datasets copied into a tmpfs mount of their size
 * (memory), the fastest storage a machine has; a cold state cannot be had
 * on it (its pages are the files), which the trials' residency shows. */
#include <errno.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "storage_impl.h"

int cb_st_up_tmpfs(const struct cb_storage_profile *p, const char *data_dir,
		   const char *const *paths, size_t n, bool owned, struct cb_storage_mount *m,
		   struct cb_error *err)
{
	uint64_t bytes;
	int rc = cb_st_need_root("mount", err);
	if (rc == CB_OK)
		rc = cb_st_total_bytes(paths, n, &bytes, err);
	if (rc == CB_OK)
		rc = cb_st_state_create(p, owned, m, err);
	if (rc == CB_OK)
		rc = cb_st_state_add(m, "mount", m->mount_point, err);
	if (rc != CB_OK)
		return rc;
	if (mkdir(m->mount_point, 0755) != 0)
		return CB_FAIL_ERRNO(err, errno, m->mount_point, "make the mount point");
	/* Room for the files plus 1/16 and 16 MiB: the copy's directories and
	 * rounding to pages, never the machine's half that tmpfs defaults to. */
	uint64_t size = bytes + bytes / 16 + (16u << 20);
	snprintf(m->mount_options, sizeof m->mount_options, "size=%llu,mode=0755",
		 (unsigned long long)size);
	if (mount("ckptbench", m->mount_point, "tmpfs", MS_NOATIME | MS_NODEV | MS_NOSUID,
		  m->mount_options) != 0)
		return CB_FAIL_ERRNO(err, errno, m->mount_point, "mount a tmpfs");
	snprintf(m->mount_options, sizeof m->mount_options, "noatime,nodev,nosuid,size=%llu",
		 (unsigned long long)size);
	snprintf(m->fstype, sizeof m->fstype, "tmpfs");
	snprintf(m->source, sizeof m->source, "tmpfs (memory), the datasets copied from %s",
		 data_dir);
	snprintf(m->note, sizeof m->note,
		 "the files are in memory: a cold state cannot be had (cold trials start cached)");
	return cb_st_copy_in(m, data_dir, paths, n, err);
}
