/* Other processes, as /proc shows them (proc.h). */
#include "proc.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

ssize_t cb_read_text(const char *path, char *buf, size_t size)
{
	if (size == 0)
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return n;
}

bool cb_process_alive(pid_t pid)
{
	char path[64], text[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (cb_read_text(path, text, sizeof text) < 0)
		return false;
	/* "PID (COMM) STATE ...": COMM may hold spaces and parentheses, so
	 * the state is after the last ')'. */
	const char *paren = strrchr(text, ')');
	return !(paren && paren[1] == ' ' && paren[2] == 'Z');
}
