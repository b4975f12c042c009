/* Strict UTF-8 validation, as Rust's str::from_utf8 applies it: no overlong
 * forms, no surrogates, nothing above U+10FFFF. */
#ifndef CB_UTF8_H
#define CB_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when `len` bytes are valid UTF-8; otherwise *bad_at_out (may be NULL)
 * is the offset of the first byte of the offending sequence. */
bool cb_utf8_valid(const uint8_t *s, size_t len, uint64_t *bad_at_out);

#endif
