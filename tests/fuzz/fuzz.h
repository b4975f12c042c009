/* What every fuzz target shares: the libFuzzer entry point's prototype (the
 * targets are built both with -fsanitize=fuzzer and, with replay.c as their
 * main, by gcc for the ordinary test suites), and a private temporary
 * directory for the targets that need a file with a name.
 */
#ifndef CB_FUZZ_H
#define CB_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes `size` bytes to DIR/name, DIR being one temporary directory per
 * process (removed at exit), and returns the path (static storage, valid
 * until the next call with the same name). Aborts on an I/O error: a
 * fuzzing run cannot go on without its scratch space. */
const char *cb_fuzz_file(const char *name, const uint8_t *data, size_t size);

/* The process's temporary directory (created on first use). */
const char *cb_fuzz_dir(void);

#endif
