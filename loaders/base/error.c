#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void copy_bounded(char *dst, size_t size, const char *src)
{
	if (!src) {
		dst[0] = '\0';
		return;
	}
	snprintf(dst, size, "%s", src);
}

int cb_error_set(struct cb_error *err, enum cb_errcode code, const char *src, const char *path,
		 const char *where, const char *fmt, ...)
{
	if (!err || err->code != CB_OK)
		return code;
	err->code = code;
	err->src = src;
	copy_bounded(err->path, sizeof err->path, path);
	copy_bounded(err->where, sizeof err->where, where);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return code;
}

int cb_error_errno(struct cb_error *err, int errnum, const char *src, const char *path,
		   const char *what)
{
	enum cb_errcode code = CB_EIO;
	if (errnum == ENOMEM)
		code = CB_ENOMEM;
	else if (errnum == ENOENT || errnum == ENOTDIR)
		code = CB_ENOTFOUND;
	return cb_error_set(err, code, src, path, NULL, "%s: %s", what, strerror(errnum));
}

void cb_error_set_path(struct cb_error *err, const char *path)
{
	if (err && err->code != CB_OK && err->path[0] == '\0' && path)
		copy_bounded(err->path, sizeof err->path, path);
}

void cb_error_clear(struct cb_error *err)
{
	if (err)
		memset(err, 0, sizeof *err);
}

struct code_info {
	int code;
	const char *name;
	int status;
	const char *msg;
};

static const struct code_info code_table[] = {
#define CB_X_INFO(name, status, msg) {CB_E##name, #name, status, msg},
	CB_ERRORS(CB_X_INFO)
#undef CB_X_INFO
};

static const struct code_info *lookup(int code)
{
	for (size_t i = 0; i < sizeof code_table / sizeof code_table[0]; i++)
		if (code_table[i].code == code)
			return &code_table[i];
	return NULL;
}

const char *cb_error_name(int code)
{
	if (code == CB_OK)
		return "OK";
	const struct code_info *info = lookup(code);
	return info ? info->name : "UNKNOWN";
}

const char *cb_error_default_message(int code)
{
	if (code == CB_OK)
		return "success";
	const struct code_info *info = lookup(code);
	return info ? info->msg : "unknown error";
}

int cb_error_exit_status(int code)
{
	if (code == CB_OK)
		return 0;
	const struct code_info *info = lookup(code);
	return info ? info->status : 4;
}

void cb_error_format(const struct cb_error *err, char *buf, size_t size)
{
	const char *msg = err->msg[0] ? err->msg : cb_error_default_message(err->code);
	int n = snprintf(buf, size, "%s%s%s", err->path, err->path[0] ? ": " : "", msg);
	if (n >= 0 && (size_t)n < size && err->where[0])
		snprintf(buf + n, size - (size_t)n, " (%s)", err->where);
	/* One line, whatever a message quoted from a file held. */
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

void cb_error_print(const struct cb_error *err)
{
	char line[2048];
	cb_error_format(err, line, sizeof line);
	if (getenv("CKPTBENCH_DEBUG") && err->src)
		fprintf(stderr, "ckptbench: %s [%s %s]\n", line, cb_error_name(err->code),
			err->src);
	else
		fprintf(stderr, "ckptbench: %s\n", line);
}
