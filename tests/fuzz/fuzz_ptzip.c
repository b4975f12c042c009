/* Fuzz target: the zip directory reader of .pt checkpoints (end records,
 * ZIP64 locator and fields, central directory, local headers), on a memfd so
 * that no disk is touched. Accepted archives have each record's extent
 * re-checked against the file and small records read back. */
#include <sys/mman.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz.h"
#include "ptzip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	if (fd < 0 && (fd = memfd_create("fuzz.pt", MFD_CLOEXEC)) < 0)
		abort();
	/* The same fd each time: truncate, then write the input. */
	if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	struct cb_error err = CB_ERROR_INIT;
	struct cb_ptzip *zip = NULL;
	if (cb_ptzip_open_fd(fd, "fuzz.pt", size, &zip, &err) != CB_OK) {
		if (err.code == CB_OK || !err.msg[0])
			__builtin_trap();
		return 0;
	}
	for (size_t i = 0; i < zip->n_records; i++) {
		const struct cb_ptzip_record *r = &zip->records[i];
		if (r->data_offset > size || r->size > size - r->data_offset ||
		    cb_ptzip_find(zip, r->rel) != r)
			__builtin_trap();
		uint8_t *buf = NULL;
		struct cb_error rerr = CB_ERROR_INIT;
		if (cb_ptzip_read(fd, zip, r, 4096, &buf, &rerr) == CB_OK)
			free(buf);
	}
	cb_ptzip_free(zip);
	return 0;
}
