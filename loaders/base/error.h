/* The one error vocabulary of ckptbench.
 *
 * Every fallible function takes `struct cb_error *err` as its last parameter
 * (it may be NULL when the caller does not care) and returns a negative
 * `enum cb_errcode` on failure, 0 (CB_OK) on success. The first error recorded
 * in a struct wins: later calls to cb_error_set on an already-set struct are
 * ignored, so the innermost, most precise message survives the unwinding.
 *
 * What the user sees is one line:   ckptbench: PATH: what is wrong (where)
 * `where` is a byte offset, a tensor name or a record name; it may be empty.
 *
 * Thread-safety: a struct cb_error belongs to one thread at a time.
 */
#ifndef CB_ERROR_H
#define CB_ERROR_H

#include <stddef.h>

/* X(NAME, exit status, default message).
 * Exit statuses (docs/cli.md): 1 the input or the result is bad,
 * 2 usage error, 3 environment (I/O, memory), 4 internal bug. */
#define CB_ERRORS(X)                                             \
	X(FORMAT, 1, "malformed file")                           \
	X(UNSAFE, 1, "unsafe content refused")                   \
	X(LIMIT, 1, "resource limit exceeded")                   \
	X(UNSUPPORTED, 1, "unsupported content")                 \
	X(NOTFOUND, 1, "no such file or entry")                  \
	X(MISMATCH, 1, "loaded bytes do not match the manifest") \
	X(REGRESSION, 1, "performance regression")               \
	X(USAGE, 2, "usage error")                               \
	X(IO, 3, "I/O error")                                    \
	X(NOMEM, 3, "out of memory")                             \
	X(ENV, 3, "environment error")                           \
	X(UNAVAILABLE, 3, "not available here")                  \
	X(INTERNAL, 4, "internal error")

enum cb_errcode {
	CB_OK = 0,
#define CB_X_ENUM(name, status, msg) CB_E##name,
	CB_E__FIRST = -1000,
	CB_ERRORS(CB_X_ENUM)
#undef CB_X_ENUM
};

struct cb_error {
	enum cb_errcode code; /* CB_OK while nothing went wrong */
	char path[512];       /* the file it is about; may be empty */
	char msg[768];        /* what is wrong, in words */
	char where[256];      /* byte offset, tensor or record; may be empty */
	const char *src;      /* __FILE__:__LINE__ that set it (for debugging) */
};

#define CB_ERROR_INIT \
	{             \
		0     \
	}

#if defined(__GNUC__)
#define CB_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define CB_NODISCARD __attribute__((warn_unused_result))
#else
#define CB_PRINTF(fmt, args)
#define CB_NODISCARD
#endif

#define CB_STR2(x) #x
#define CB_STR(x) CB_STR2(x)
#define CB_HERE __FILE__ ":" CB_STR(__LINE__)

/* Records an error unless one is already recorded. Returns `code`, so a
 * caller can write `return CB_FAIL(err, CB_EFORMAT, path, "byte 8", "...")`.
 * `path` and `where` may be NULL. */
int cb_error_set(struct cb_error *err, enum cb_errcode code, const char *src, const char *path,
		 const char *where, const char *fmt, ...) CB_PRINTF(6, 7);

#define CB_FAIL(err, code, path, where, ...) \
	cb_error_set((err), (code), CB_HERE, (path), (where), __VA_ARGS__)

/* Records an error from errno (ENOMEM maps to CB_ENOMEM, ENOENT to
 * CB_ENOTFOUND, the rest to CB_EIO); `what` says what was being done. */
int cb_error_errno(struct cb_error *err, int errnum, const char *src, const char *path,
		   const char *what);
#define CB_FAIL_ERRNO(err, errnum, path, what) \
	cb_error_errno((err), (errnum), CB_HERE, (path), (what))

/* Fills in the path if the error does not name one yet (callers that know
 * the file use it to annotate errors from lower layers that do not). */
void cb_error_set_path(struct cb_error *err, const char *path);

/* Forgets a recorded error (for callers that recover from one). */
void cb_error_clear(struct cb_error *err);

/* "FORMAT", "IO", ... and the default message for a code. */
const char *cb_error_name(int code);
const char *cb_error_default_message(int code);

/* The process exit status for a code (docs/cli.md). */
int cb_error_exit_status(int code);

/* Writes "ckptbench: PATH: msg (where)\n" to stderr. With the environment
 * variable CKPTBENCH_DEBUG set, the source location is appended. */
void cb_error_print(const struct cb_error *err);

/* Formats the same line without the "ckptbench: " prefix into buf. */
void cb_error_format(const struct cb_error *err, char *buf, size_t size);

#endif
