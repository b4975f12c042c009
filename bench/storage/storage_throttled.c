/* The throttled profiles (throttled:RATE[,IOPS], sata-ssd, cloud-volume,
 * nvme): a disk of a given speed made of this machine's own.
 *
 * A sparse image file on the data directory's disk, attached to a loop
 * device, formatted ext4 and mounted, the datasets copied in; then a blkio
 * cgroup (v1 blkio.throttle.read_bps_device / read_iops_device, or v2
 * io.max) limits the reads of the loop device by the processes in it
 * (cb_storage_enter puts the run there, and its trials inherit it).
 *
 * The loop device reads its backing file with direct I/O (losetup
 * --direct-io=on): otherwise the image's pages, cached under the loop,
 * would serve a "cold" read that the trial's eviction (of the ext4 file's
 * pages, above the loop) cannot reach. The ext4 file itself is buffered,
 * as on a real disk, so page-cache semantics are those of a disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "storage_impl.h"

/* Makes the cgroup that throttles reads of device `dev` and records it. */
static int make_throttle(const struct cb_storage_profile *p, struct cb_storage_mount *m, dev_t dev,
			 struct cb_error *err)
{
	char root[PATH_MAX], path[PATH_MAX + 64], text[128];
	int version;
	if (!cb_st_blkio_root(root, sizeof root, &version))
		return CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL,
			       "no blkio cgroup controller here (neither cgroup v1 "
			       "blkio nor cgroup v2 io is mounted)");
	if (snprintf(m->cgroup_dir, sizeof m->cgroup_dir, "%s/ckptbench-%s", root, m->id) >=
	    (int)sizeof m->cgroup_dir)
		return CB_FAIL(err, CB_EENV, root, NULL, "the cgroup hierarchy's path is too long");
	m->cgroup_version = version;
	int rc = cb_st_state_add(m, "cgroup", m->cgroup_dir, err);
	if (rc != CB_OK)
		return rc;
	if (version == 2) {
		/* A child of the root gets the io controller only once the
		 * root hands it down. */
		snprintf(path, sizeof path, "%s/cgroup.subtree_control", root);
		rc = cb_st_write_text(path, "+io", err);
	}
	if (rc == CB_OK && mkdir(m->cgroup_dir, 0755) != 0)
		rc = CB_FAIL_ERRNO(err, errno, m->cgroup_dir, "make the throttling cgroup");
	unsigned maj = major(dev), min = minor(dev);
	if (rc == CB_OK && version == 1) {
		if (p->rate_bps) {
			snprintf(path, sizeof path, "%s/blkio.throttle.read_bps_device",
				 m->cgroup_dir);
			snprintf(text, sizeof text, "%u:%u %llu", maj, min,
				 (unsigned long long)p->rate_bps);
			rc = cb_st_write_text(path, text, err);
		}
		if (rc == CB_OK && p->iops) {
			snprintf(path, sizeof path, "%s/blkio.throttle.read_iops_device",
				 m->cgroup_dir);
			snprintf(text, sizeof text, "%u:%u %llu", maj, min,
				 (unsigned long long)p->iops);
			rc = cb_st_write_text(path, text, err);
		}
	} else if (rc == CB_OK) {
		char rbps[40] = "", riops[40] = "";
		if (p->rate_bps)
			snprintf(rbps, sizeof rbps, " rbps=%llu", (unsigned long long)p->rate_bps);
		if (p->iops)
			snprintf(riops, sizeof riops, " riops=%llu", (unsigned long long)p->iops);
		snprintf(path, sizeof path, "%s/io.max", m->cgroup_dir);
		snprintf(text, sizeof text, "%u:%u%s%s", maj, min, rbps, riops);
		rc = cb_st_write_text(path, text, err);
	}
	return rc;
}

/* Whether the loop device reads its backing file with direct I/O. */
static bool loop_dio(const char *dev)
{
	const char *name = strrchr(dev, '/');
	char path[PATH_MAX], text[8] = "";
	snprintf(path, sizeof path, "/sys/block/%s/loop/dio", name ? name + 1 : dev);
	FILE *f = fopen(path, "re");
	if (f) {
		if (!fgets(text, sizeof text, f))
			text[0] = '\0';
		fclose(f);
	}
	return text[0] == '1';
}

int cb_st_up_loop(const struct cb_storage_profile *p, const char *data_dir,
		  const char *const *paths, size_t n, bool owned, struct cb_storage_mount *m,
		  struct cb_error *err)
{
	char losetup[PATH_MAX], mkfs[PATH_MAX], root[PATH_MAX], image[PATH_MAX], dev[64] = "";
	int version;
	bool throttled = p->rate_bps || p->iops;
	uint64_t bytes;
	/* Every reason not to first, before anything is made. */
	int rc = cb_st_need_root("loop device, mount, cgroup", err);
	if (rc == CB_OK && access("/dev/loop-control", R_OK | W_OK) != 0)
		rc = CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL,
			     "no loop devices here (/dev/loop-control: %s)", strerror(errno));
	if (rc == CB_OK && throttled && !cb_st_blkio_root(root, sizeof root, &version))
		rc = CB_FAIL(err, CB_EUNAVAILABLE, NULL, NULL,
			     "no blkio cgroup controller here (neither cgroup v1 "
			     "blkio nor cgroup v2 io is mounted)");
	if (rc == CB_OK)
		rc = cb_st_find_tool("losetup", "mount", losetup, sizeof losetup, err);
	if (rc == CB_OK)
		rc = cb_st_find_tool("mkfs.ext4", "e2fsprogs", mkfs, sizeof mkfs, err);
	if (rc == CB_OK)
		rc = cb_st_total_bytes(paths, n, &bytes, err);
	if (rc == CB_OK)
		rc = cb_st_state_create(p, owned, m, err);
	if (rc != CB_OK)
		return rc;

	/* The image: on the data directory's disk, which it stands in for;
	 * sparse, so only what is written takes room. ext4's metadata and
	 * journal take about 5% and 32 MiB more than the files. */
	snprintf(image, sizeof image, "%s/.ckptbench-%s.img", data_dir, m->id);
	uint64_t size = (bytes + bytes / 8 + (96u << 20)) & ~(uint64_t)((1u << 20) - 1);
	rc = cb_st_state_add(m, "image", image, err);
	int fd = rc == CB_OK ? open(image, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
	if (rc == CB_OK && (fd < 0 || ftruncate(fd, (off_t)size) != 0))
		rc = CB_FAIL_ERRNO(err, errno, image, "make the storage image");
	if (fd >= 0)
		close(fd);
	const char *attach[] = {losetup, "--find", "--show", "--direct-io=on", image, NULL};
	if (rc == CB_OK)
		rc = cb_st_run_tool(attach, dev, sizeof dev, err);
	if (rc == CB_OK)
		rc = cb_st_state_add(m, "loop", dev, err);
	/* Inode tables and journal written now, not lazily by a kernel thread
	 * during the trials. */
	const char *format[] = {
		mkfs, "-q", "-F", "-m", "0", "-E", "lazy_itable_init=0,lazy_journal_init=0",
		dev,  NULL};
	if (rc == CB_OK)
		rc = cb_st_run_tool(format, NULL, 0, err);
	if (rc == CB_OK)
		rc = cb_st_state_add(m, "mount", m->mount_point, err);
	if (rc == CB_OK && mkdir(m->mount_point, 0755) != 0)
		rc = CB_FAIL_ERRNO(err, errno, m->mount_point, "make the mount point");
	if (rc == CB_OK && mount(dev, m->mount_point, "ext4", MS_NOATIME, "") != 0)
		rc = CB_FAIL_ERRNO(err, errno, m->mount_point, "mount the image");
	if (rc == CB_OK)
		rc = cb_st_copy_in(m, data_dir, paths, n, err);
	struct stat st;
	if (rc == CB_OK && stat(dev, &st) != 0)
		rc = CB_FAIL_ERRNO(err, errno, dev, "stat the loop device");
	if (rc == CB_OK && throttled)
		rc = make_throttle(p, m, st.st_rdev, err);
	if (rc != CB_OK)
		return rc;
	snprintf(m->fstype, sizeof m->fstype, "ext4");
	snprintf(m->mount_options, sizeof m->mount_options, "noatime; loop direct-io=%s",
		 loop_dio(dev) ? "on" : "off");
	m->rate_bytes_per_s = p->rate_bps;
	m->iops = p->iops;
	snprintf(m->source, sizeof m->source, "%.40s (image %.400s, %llu MiB, sparse)", dev, image,
		 (unsigned long long)(size >> 20));
	if (throttled)
		snprintf(m->note, sizeof m->note, "reads throttled by the cgroup %s (cgroup v%d)",
			 m->cgroup_dir, m->cgroup_version);
	else
		snprintf(m->note, sizeof m->note,
			 "the image on the data directory's disk, "
			 "unthrottled");
	if (!loop_dio(dev))
		snprintf(m->note + strlen(m->note), sizeof m->note - strlen(m->note),
			 "; the loop device could not use direct I/O: the image's own pages "
			 "may serve cold reads");
	return CB_OK;
}
