/* Numbers and sizes from text (numparse.h). */
#include "numparse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool cb_parse_u64(const char *text, uint64_t *out)
{
	if (!text || !isdigit((unsigned char)text[0]))
		return false;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

bool cb_parse_size(const char *text, uint64_t *bytes_out)
{
	if (!text || !(isdigit((unsigned char)text[0]) || text[0] == '.'))
		return false;
	char *end;
	errno = 0;
	double value = strtod(text, &end);
	/* strtod also takes hex ("0x10") and exponents ("1e3"): only plain
	 * decimals are sizes. */
	if (errno || end == text || end != text + strspn(text, "0123456789.") || !isfinite(value) ||
	    value < 0)
		return false;
	double scale = 1;
	switch (*end) {
	case 'K':
	case 'k':
		scale = 1024.0;
		end++;
		break;
	case 'M':
	case 'm':
		scale = 1024.0 * 1024;
		end++;
		break;
	case 'G':
	case 'g':
		scale = 1024.0 * 1024 * 1024;
		end++;
		break;
	case 'T':
	case 't':
		scale = 1024.0 * 1024 * 1024 * 1024;
		end++;
		break;
	default: break;
	}
	/* "MiB"-style spellings: the 'i' only after a unit letter, and then
	 * only with its 'B' ("12iB" and "1Gi" are not sizes). */
	if (scale > 1 && end[0] == 'i' && end[1] == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end != '\0')
		return false;
	double bytes = value * scale;
	if (bytes >= 18446744073709551615.0 || bytes != floor(bytes))
		return false;
	*bytes_out = (uint64_t)bytes;
	return true;
}
