/* Fuzz target: `ckptbench convert IN OUT` through the CLI's own entry point
 * (bench/cli/cmd_convert.c): the input is a file named model.pt, the output a
 * file of the other format (the first byte's low bit picks .safetensors or
 * .pt). Whatever the input, a refusal must leave no output behind, and an
 * accepted output must open again as a valid checkpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ckpt.h"
#include "cli.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *in = cb_fuzz_file("model.pt", data + 1, size - 1);
	char in_path[4200], out_path[4200];
	snprintf(in_path, sizeof in_path, "%s", in);
	snprintf(out_path, sizeof out_path, "%s/out.%s", cb_fuzz_dir(),
		 data[0] & 1 ? "pt" : "safetensors");
	char *argv[] = {"convert", in_path, out_path, NULL};
	int status = cb_cmd_convert(3, argv);
	fflush(stdout);
	if (status != 0) {
		/* Refused: nothing may be left under the output's name. */
		if (access(out_path, F_OK) == 0)
			__builtin_trap();
		return 0;
	}
	struct cb_error err = CB_ERROR_INIT;
	struct cb_ckpt *ckpt = NULL;
	if (cb_ckpt_open(out_path, CB_FORMAT_ANY, &ckpt, &err) != CB_OK) {
		cb_error_print(&err);
		__builtin_trap();
	}
	cb_ckpt_free(ckpt);
	unlink(out_path);
	return 0;
}
