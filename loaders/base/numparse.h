/* Numbers and sizes from text: the command line's and the harness's
 * (calibrate's and run's sizes, a trial's descriptor). */
#ifndef CB_NUMPARSE_H
#define CB_NUMPARSE_H

#include <stdbool.h>
#include <stdint.h>

/* Parses "512", "64K", "256M", "1G", "1.5G" (powers of 1024) into bytes.
 * False on anything else, or on overflow. */
bool cb_parse_size(const char *text, uint64_t *bytes_out);

/* Parses a non-negative decimal integer that fits in uint64_t. */
bool cb_parse_u64(const char *text, uint64_t *out);

#endif
