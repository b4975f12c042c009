/* Fault injection for tests, the SQLite way: in a test build the read
 * engine (read_engine.h) and the allocators that ask can be made to fail
 * at a chosen point, so every error path is walked on purpose.
 *
 * The hooks are called in every build; their bodies are compiled only with
 * -DCB_FAULT_INJECTION, which no shipped binary has: elsewhere they do
 * nothing (a read proceeds, an allocation is not refused). A test binary
 * gets the real ones by compiling this file with the define into itself
 * (tests/meson.build), which keeps the library's copy from being linked.
 *
 * In a test build the environment arms it, read once per process:
 *   CKPTBENCH_FAULT=read:N:eio     the Nth read (1-based) fails with EIO
 *   CKPTBENCH_FAULT=read:N:short   the Nth read returns fewer bytes than
 *                                  asked (half; whole blocks for O_DIRECT)
 *   CKPTBENCH_FAULT=read:N:eintr   the Nth read is interrupted (EINTR)
 *   CKPTBENCH_FAULT=read:N:einval  the Nth read is refused (EINVAL), as a
 *                                  filesystem refuses an O_DIRECT read
 *   CKPTBENCH_FAULT=alloc:N        the Nth allocation that asks fails
 *   CKPTBENCH_FAULT_LOG=PATH       a line ("read 3 eio") is appended to
 *                                  PATH each time a fault fires
 * A "read" is one pread(2) the engine makes, or one io_uring completion;
 * an "allocation" is one the engine makes (its plan, descriptors, bounce
 * buffers) or one an allocator makes that calls cb_fault_alloc.
 */
#ifndef CB_FAULT_H
#define CB_FAULT_H

#include <stdbool.h>
#include <stdint.h>

enum cb_fault {
	CB_FAULT_NONE = 0,
	CB_FAULT_EIO,
	CB_FAULT_SHORT,
	CB_FAULT_EINTR,
	CB_FAULT_EINVAL,
};

/* Called before each read: what to do to it (CB_FAULT_NONE: nothing). */
enum cb_fault cb_fault_read(void);

/* Called before each allocation: true when it must fail. */
bool cb_fault_alloc(void);

/* Test builds: arms the injection from `spec` (the syntax of
 * CKPTBENCH_FAULT; NULL or "" disarms), counters reset. False when the
 * spec is malformed, and always false in other builds. */
bool cb_fault_arm(const char *spec);

/* Test builds: the faults fired, and the reads and allocations counted,
 * since arming (or since the environment armed it). 0 elsewhere. */
unsigned cb_fault_fired(void);
uint64_t cb_fault_reads(void);
uint64_t cb_fault_allocs(void);

#endif
