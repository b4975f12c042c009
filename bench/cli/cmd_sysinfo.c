/* ckptbench sysinfo: the machine description a results file carries. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gen.h"
#include "sysinfo.h"

static const char sysinfo_help[] =
	"usage: ckptbench sysinfo [--json] [--dir DIR]\n"
	"\n"
	"Describes this machine: CPU model and topology (hwloc when built with it,\n"
	"else /proc and sysfs), caches, memory, kernel, OS, transparent huge pages,\n"
	"the filesystem and block device under the data directory, and GPUs.\n"
	"\n"
	"  --json     one JSON object (the \"machine\" of a results file)\n"
	"  --dir DIR  the data directory to describe (default $CKPTBENCH_DATA or\n"
	"             datasets/data)\n";

/* "48 KiB", "32 MiB", "23.4 GiB": sizes in the largest unit that fits. */
static void size_text(json_int_t bytes, char *buf, size_t size)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)bytes;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, v == (double)(long long)v ? "%.0f %s" : "%.1f %s", v, units[u]);
}

/* One value as text; keys ending in _bytes are shown as sizes. */
static void value_text(const char *key, const json_t *v, char *buf, size_t size)
{
	size_t klen = strlen(key);
	bool bytes = klen > 6 && strcmp(key + klen - 6, "_bytes") == 0;
	if (json_is_string(v))
		snprintf(buf, size, "%s", json_string_value(v));
	else if (json_is_integer(v) && bytes)
		size_text(json_integer_value(v), buf, size);
	else if (json_is_integer(v))
		snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, size, "%s", json_is_true(v) ? "yes" : "no");
	else if (json_is_null(v))
		snprintf(buf, size, "unknown");
	else
		snprintf(buf, size, "...");
}

static void print_caches(const json_t *caches)
{
	size_t i;
	const json_t *c;
	printf("  %-22s ", "caches");
	json_array_foreach(caches, i, c)
	{
		char sz[32];
		const char *type = json_string_value(json_object_get(c, "type"));
		size_text(json_integer_value(json_object_get(c, "size_bytes")), sz, sizeof sz);
		printf("%sL%" JSON_INTEGER_FORMAT "%s %s x %" JSON_INTEGER_FORMAT, i ? ", " : "",
		       json_integer_value(json_object_get(c, "level")),
		       type && strcmp(type, "data") == 0          ? "d"
		       : type && strcmp(type, "instruction") == 0 ? "i"
								  : "",
		       sz, json_integer_value(json_object_get(c, "count")));
	}
	printf("%s\n", json_array_size(caches) ? "" : "unknown");
}

static void print_object(const json_t *o, int indent)
{
	const char *key;
	const json_t *v;
	char buf[512];
	json_object_foreach((json_t *)o, key, v)
	{
		if (strcmp(key, "caches") == 0 && json_is_array(v)) {
			print_caches(v);
		} else if (json_is_object(v)) {
			printf("%*s%s:\n", indent, "", key);
			print_object(v, indent + 2);
		} else if (json_is_array(v)) {
			printf("%*s%-*s %s\n", indent, "", 24 - indent, key,
			       json_array_size(v) ? "(see --json)" : "none");
		} else {
			value_text(key, v, buf, sizeof buf);
			printf("%*s%-*s %s\n", indent, "", 24 - indent, key, buf);
		}
	}
}

int cb_cmd_sysinfo(int argc, char **argv)
{
	static const struct option options[] = {
		{"json", no_argument, NULL, 'j'},
		{"dir", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool json = false;
	const char *dir = cb_data_dir();
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'd': dir = optarg; break;
		case 'h': fputs(sysinfo_help, stdout); return 0;
		default: return cb_usage_error("sysinfo", "unknown option");
		}
	}
	if (optind < argc)
		return cb_usage_error("sysinfo", "unexpected argument \"%s\"", argv[optind]);
	json_t *o = cb_sysinfo_json(dir);
	if (!o) {
		struct cb_error err = CB_ERROR_INIT;
		CB_FAIL(&err, CB_ENOMEM, NULL, NULL, "no memory for the machine description");
		return cb_fail(&err);
	}
	if (json) {
		json_dumpf(o, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		printf("machine:\n");
		print_object(o, 2);
	}
	json_decref(o);
	return 0;
}
