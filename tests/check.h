/* A minimal check library for the C test programs: each CHECK counts, a
 * failure prints where and what, and check_finish() turns the tally into
 * the exit status meson reads (0 pass, 1 fail). One program per module. */
#ifndef CB_CHECK_H
#define CB_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures, check_count;

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		check_count++;                                                                   \
		if (!(cond)) {                                                                   \
			check_failures++;                                                        \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                                \
	} while (0)

#define CHECK_EQ_U64(a, b)                                                                      \
	do {                                                                                    \
		uint64_t check_a_ = (uint64_t)(a), check_b_ = (uint64_t)(b);                    \
		check_count++;                                                                  \
		if (check_a_ != check_b_) {                                                     \
			check_failures++;                                                       \
			fprintf(stderr, "%s:%d: %s == %s failed: %" PRIu64 " != %" PRIu64 "\n", \
				__FILE__, __LINE__, #a, #b, check_a_, check_b_);                \
		}                                                                               \
	} while (0)

#define CHECK_STR_EQ(a, b)                                                                      \
	do {                                                                                    \
		const char *check_a_ = (a), *check_b_ = (b);                                    \
		check_count++;                                                                  \
		if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {                \
			check_failures++;                                                       \
			fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, \
				__LINE__, #a, #b, check_a_ ? check_a_ : "(null)",               \
				check_b_ ? check_b_ : "(null)");                                \
		}                                                                               \
	} while (0)

/* The text contains the substring. */
#define CHECK_CONTAINS(text, needle)                                                         \
	do {                                                                                 \
		const char *check_t_ = (text), *check_n_ = (needle);                         \
		check_count++;                                                               \
		if (!check_t_ || !strstr(check_t_, check_n_)) {                              \
			check_failures++;                                                    \
			fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, \
				__LINE__, check_t_ ? check_t_ : "(null)", check_n_);         \
		}                                                                            \
	} while (0)

static inline int check_finish(const char *program)
{
	fprintf(stderr, "%s: %d checks, %d failed\n", program, check_count, check_failures);
	return check_failures ? 1 : 0;
}

#endif
