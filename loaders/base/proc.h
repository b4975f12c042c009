/* Other processes, as /proc shows them: what the harness's watchers ask
 * (a storage profile's owner, a rank of an MPI job on this machine). */
#ifndef CB_PROC_H
#define CB_PROC_H

#include <stdbool.h>
#include <sys/types.h>

/* Reads a small file (a /proc or /sys one) into buf, NUL-terminated: at
 * most size - 1 bytes. Returns the bytes read; -1 when it cannot be opened
 * or read, or is empty. */
ssize_t cb_read_text(const char *path, char *buf, size_t size);

/* True while process `pid` exists and is not a zombie (exited, not yet
 * reaped): a zombie's work is over, whatever its parent does next. */
bool cb_process_alive(pid_t pid);

#endif
