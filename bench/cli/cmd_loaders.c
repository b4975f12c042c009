/* ckptbench loaders: every loader of this build, whether it can run here
 * and why not, and its options (docs/cli.md gives the JSON form). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "loader.h"

static const char loaders_help[] =
	"usage: ckptbench loaders [--json]\n"
	"\n"
	"Lists every loader: the format it reads, where the model ends up, whether it\n"
	"can run on this machine (and if not, why), and its options, which `run` takes\n"
	"as --loaders NAME:KEY=VALUE:KEY=VALUE.\n"
	"\n"
	"  --json   [{name, format, device, available, reason, summary, options: [...],\n"
	"            caps: [host_mem|device_mem|zero_copy|threads|o_direct|peer|module]}]\n";

static json_t *loader_json(const struct cb_loader *l)
{
	struct cb_error why = CB_ERROR_INIT;
	bool ok = cb_loader_available(l, &why) == CB_OK;
	json_t *opts = json_array();
	for (const struct cb_loader_opt *o = l->opts; o && o->name; o++)
		json_array_append_new(opts, json_pack("{s:s,s:s,s:s?,s:s}", "name", o->name, "type",
						      cb_opt_type_name(o->type), "default", o->def,
						      "help", o->help));
	json_t *j =
		json_pack("{s:s,s:s,s:s,s:b}", "name", l->name, "format", cb_format_name(l->format),
			  "device", cb_device_kind_name(l->device), "available", ok);
	json_object_set_new(j, "reason", ok ? json_null() : json_string(why.msg));
	json_object_set_new(j, "summary", json_string(l->summary ? l->summary : ""));
	json_object_set_new(j, "options", opts);
	json_t *caps = json_array();
	for (unsigned bit = 1; bit; bit <<= 1)
		if ((l->caps & bit) && cb_loader_cap_name(bit))
			json_array_append_new(caps, json_string(cb_loader_cap_name(bit)));
	json_object_set_new(j, "caps", caps);
	return j;
}

static void print_text(const struct cb_loader *l)
{
	struct cb_error why = CB_ERROR_INIT;
	bool ok = cb_loader_available(l, &why) == CB_OK;
	printf("%-24s %-11s %-4s %s\n", l->name, cb_format_name(l->format),
	       cb_device_kind_name(l->device), ok ? "available" : "unavailable");
	printf("    %s\n", l->summary ? l->summary : "");
	if (!ok)
		printf("    why not: %s\n", why.msg);
	for (const struct cb_loader_opt *o = l->opts; o && o->name; o++)
		printf("    :%s=%s (%s, default %s)  %s\n", o->name,
		       o->type == CB_OPT_BOOL  ? "BOOL"
		       : o->type == CB_OPT_U64 ? "N"
					       : "TEXT",
		       cb_opt_type_name(o->type), o->def ? o->def : "none", o->help);
}

int cb_cmd_loaders(int argc, char **argv)
{
	static const struct option options[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': fputs(loaders_help, stdout); return 0;
		default: return cb_usage_error("loaders", "unknown option");
		}
	}
	if (optind < argc)
		return cb_usage_error("loaders", "unexpected argument \"%s\"", argv[optind]);
	size_t n;
	const struct cb_loader *const *all = cb_loader_list(&n);
	if (!json) {
		for (size_t i = 0; i < n; i++)
			print_text(all[i]);
		return 0;
	}
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, loader_json(all[i]));
	int rc = json_dumpf(list, stdout, JSON_INDENT(1)) == 0 ? 0 : 3;
	putchar('\n');
	json_decref(list);
	return rc;
}
