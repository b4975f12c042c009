#include "cli.h"

#include <stdarg.h>
#include <stdio.h>

int cb_fail(const struct cb_error *err)
{
	cb_error_print(err);
	return cb_error_exit_status(err->code);
}

int cb_usage_error(const char *command, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "ckptbench %s: ", command);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (see ckptbench %s --help)\n", command);
	va_end(ap);
	return 2;
}
