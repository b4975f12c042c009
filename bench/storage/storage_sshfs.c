/* The sshfs profile: the data directory through sshfs (FUSE over SFTP),
 * from an sshd of our own on 127.0.0.1: a network filesystem's path (a
 * user-space daemon, encryption, a socket, FUSE's requests) with no
 * network or server outside the machine.
 *
 * Everything lives in the profile's state directory (mode 0700): a host
 * key and a user key made by ssh-keygen, authorized_keys, sshd_config,
 * sshd's log. sshd runs in the foreground (-D) as a child in a session of
 * its own, on a port found free just before (sshd cannot listen on port 0
 * and tell which it got, so: bind a socket to port 0, read its port, close
 * it, start sshd there, and try another port if sshd could not have it).
 * Both sshd and sshfs name a path in the state directory on their command
 * lines, which is how teardown finds them (storage_state.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storage_impl.h"

/* A TCP port on 127.0.0.1 free at this moment; 0 on failure. */
static unsigned free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	unsigned port = 0;
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static bool can_connect(unsigned port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static int write_file(const char *path, const char *text, struct cb_error *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return CB_FAIL_ERRNO(err, errno, path, "create");
	ssize_t n = write(fd, text, strlen(text));
	int saved = errno;
	close(fd);
	return n == (ssize_t)strlen(text) ? CB_OK : CB_FAIL_ERRNO(err, saved, path, "write");
}

/* ssh-keygen -t ed25519 without a passphrase into STATE/name. */
static int make_key(const char *keygen, const char *state, const char *name, struct cb_error *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", state, name);
	const char *argv[] = {keygen, "-q",        "-t", "ed25519", "-N", "",
			      "-C",   "ckptbench", "-f", path,      NULL};
	return cb_st_run_tool(argv, NULL, 0, err);
}

/* Starts sshd on a free port; *port gets it. Up to 5 ports are tried: one
 * found free may be taken by someone else before sshd binds it. */
static int start_sshd(const char *sshd, const struct cb_storage_mount *m, unsigned *port,
		      struct cb_error *err)
{
	char config[PATH_MAX], log[PATH_MAX], text[4096];
	snprintf(config, sizeof config, "%s/sshd_config", m->state_dir);
	snprintf(log, sizeof log, "%s/sshd.log", m->state_dir);
	for (int attempt = 0; attempt < 5; attempt++) {
		*port = free_port();
		if (!*port)
			return CB_FAIL_ERRNO(err, errno, NULL, "find a free port");
		/* Only this key, only from here, only root (the datasets'
		 * reader), no PAM; StrictModes off because the state
		 * directory's files are ours alone anyway. */
		snprintf(text, sizeof text,
			 "ListenAddress 127.0.0.1\n"
			 "Port %u\n"
			 "HostKey %s/host_key\n"
			 "AuthorizedKeysFile %s/authorized_keys\n"
			 "PidFile %s/sshd.pid\n"
			 "Subsystem sftp internal-sftp\n"
			 "PermitRootLogin prohibit-password\n"
			 "PasswordAuthentication no\n"
			 "KbdInteractiveAuthentication no\n"
			 "UsePAM no\n"
			 "StrictModes no\n"
			 "AllowUsers root\n",
			 *port, m->state_dir, m->state_dir, m->state_dir);
		int rc = write_file(config, text, err);
		if (rc != CB_OK)
			return rc;
		const char *argv[] = {sshd, "-D", "-e", "-f", config, NULL};
		pid_t pid = cb_st_spawn(argv, log);
		if (pid < 0)
			return CB_FAIL_ERRNO(err, errno, sshd, "start sshd");
		/* Up to 5 s for it to listen; an exit means it could not. */
		for (int ms = 0; ms < 5000; ms += 20) {
			if (can_connect(*port))
				return CB_OK;
			if (waitpid(pid, NULL, WNOHANG) == pid)
				break;
			nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
		}
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return CB_FAIL(err, CB_EENV, log, NULL, "sshd did not start (see its log)");
}

int cb_st_up_sshfs(const struct cb_storage_profile *p, const char *data_dir,
		   const char *const *paths, size_t n, bool owned, struct cb_storage_mount *m,
		   struct cb_error *err)
{
	char sshd[PATH_MAX], keygen[PATH_MAX], sshfs[PATH_MAX], dir[PATH_MAX];
	int rc = cb_st_need_root("FUSE mount, sshd logging in as root", err);
	if (rc == CB_OK)
		rc = cb_st_find_tool("sshd", "openssh-server", sshd, sizeof sshd, err);
	if (rc == CB_OK)
		rc = cb_st_find_tool("ssh-keygen", "openssh-client", keygen, sizeof keygen, err);
	if (rc == CB_OK)
		rc = cb_st_find_tool("sshfs", "sshfs", sshfs, sizeof sshfs, err);
	/* /dev/fuse as sshfs will open it: a container without the device,
	 * or with it denied by the devices cgroup, fails here. */
	int fuse = rc == CB_OK ? open("/dev/fuse", O_RDWR | O_CLOEXEC) : -1;
	if (rc == CB_OK && fuse < 0)
		rc = CB_FAIL(err, CB_EUNAVAILABLE, "/dev/fuse", NULL, "no FUSE here (%s)",
			     strerror(errno));
	if (fuse >= 0)
		close(fuse);
	if (rc == CB_OK && !realpath(data_dir, dir))
		rc = CB_FAIL_ERRNO(err, errno, data_dir, "resolve the data directory");
	if (rc == CB_OK)
		rc = cb_st_state_create(p, owned, m, err);
	if (rc == CB_OK)
		rc = make_key(keygen, m->state_dir, "host_key", err);
	if (rc == CB_OK)
		rc = make_key(keygen, m->state_dir, "user_key", err);
	char from[PATH_MAX], to[PATH_MAX];
	snprintf(from, sizeof from, "%s/user_key.pub", m->state_dir);
	snprintf(to, sizeof to, "%s/authorized_keys", m->state_dir);
	if (rc == CB_OK && rename(from, to) != 0)
		rc = CB_FAIL_ERRNO(err, errno, to, "install the user key");
	/* sshd refuses to start without its privilege separation directory,
	 * which the package's service would make at boot. */
	if (rc == CB_OK && mkdir("/run/sshd", 0755) != 0 && errno != EEXIST)
		rc = CB_FAIL_ERRNO(err, errno, "/run/sshd", "make sshd's directory");
	unsigned port = 0;
	if (rc == CB_OK)
		rc = start_sshd(sshd, m, &port, err);
	if (rc == CB_OK)
		rc = cb_st_state_add(m, "mount", m->mount_point, err);
	if (rc == CB_OK && mkdir(m->mount_point, 0755) != 0)
		rc = CB_FAIL_ERRNO(err, errno, m->mount_point, "make the mount point");
	if (rc != CB_OK)
		return rc;
	char port_text[16], identity[PATH_MAX + 16], remote[PATH_MAX + 32];
	snprintf(port_text, sizeof port_text, "%u", port);
	snprintf(identity, sizeof identity, "IdentityFile=%s/user_key", m->state_dir);
	snprintf(remote, sizeof remote, "root@127.0.0.1:%s", dir);
	/* BatchMode: a prompt would hang a run; no host key to check, as the
	 * host key was made a moment ago. sshfs returns once mounted and goes
	 * on in the background. */
	const char *argv[] = {sshfs,
			      "-p",
			      port_text,
			      "-o",
			      identity,
			      "-o",
			      "StrictHostKeyChecking=no",
			      "-o",
			      "UserKnownHostsFile=/dev/null",
			      "-o",
			      "BatchMode=yes",
			      "-o",
			      "ro",
			      remote,
			      m->mount_point,
			      NULL};
	rc = cb_st_run_tool(argv, NULL, 0, err);
	if (rc == CB_OK)
		rc = cb_st_map_paths(m, dir, paths, n, err);
	if (rc != CB_OK)
		return rc;
	snprintf(m->fstype, sizeof m->fstype, "fuse.sshfs");
	snprintf(m->mount_options, sizeof m->mount_options,
		 "-p %u -o IdentityFile=<state>/user_key -o StrictHostKeyChecking=no -o "
		 "UserKnownHostsFile=/dev/null -o BatchMode=yes -o ro",
		 port);
	snprintf(m->source, sizeof m->source, "root@127.0.0.1:%.400s (sshd of our own, port %u)",
		 dir, port);
	snprintf(m->note, sizeof m->note,
		 "served from this machine: a cold state evicts the served files too");
	m->serves_originals = true;
	return CB_OK;
}
