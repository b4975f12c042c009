/* The verdict of `ckptbench compare` for one cell: is the head slower,
 * faster, or not distinguishably different from the base? One function
 * decides, and both compare and the calibration test
 * (tests/test_verdict_calibration.c) call it, so the proven false-alarm and
 * detection rates are those of the command.
 *
 * Time (or instructions, or CPU time): a regression when the two-sided
 * Mann-Whitney U test gives p < alpha AND the estimated ratio head/base
 * (Hodges-Lehmann, see mannwhitney.h) exceeds 1 + threshold; an improvement
 * when p < alpha AND the ratio is below 1 / (1 + threshold), the same step
 * on the log scale (asv's --factor convention: 10% slower and "10% faster"
 * undo each other); `~` otherwise. With fewer than CB_VERDICT_MIN_TRIALS
 * values on either side there is no verdict (CB_VERDICT_TOO_FEW): the test
 * cannot reach a useful p there, and saying so beats a silent `~`.
 *
 * Memory (peak RSS, peak VRAM): nearly deterministic, so no test: a
 * regression when the median peak grows by more than max(5%, 32 MiB), an
 * improvement when it shrinks by as much.
 */
#ifndef CB_VERDICT_H
#define CB_VERDICT_H

#include <stddef.h>

#include "error.h"
#include "mannwhitney.h"

#define CB_VERDICT_MIN_TRIALS 5
#define CB_VERDICT_ALPHA 0.05
#define CB_VERDICT_THRESHOLD 0.10
#define CB_VERDICT_MEM_FRACTION 0.05
#define CB_VERDICT_MEM_BYTES (32.0 * 1024 * 1024)

enum cb_verdict {
	CB_VERDICT_SAME,        /* "~": no significant change beyond the threshold */
	CB_VERDICT_REGRESSION,  /* slower (or bigger) */
	CB_VERDICT_IMPROVEMENT, /* faster (or smaller) */
	CB_VERDICT_TOO_FEW,     /* under CB_VERDICT_MIN_TRIALS values on a side */
};

struct cb_time_verdict {
	enum cb_verdict verdict;
	struct cb_mw mw;       /* computed whenever both sides have a value */
	struct cb_ratio ratio; /* head/base with its 95% CI */
};

/* Decides for base[0..n1) against head[0..n2) (times or counts, larger is
 * worse). n1 or n2 of 0 gives CB_VERDICT_TOO_FEW with NaN ratio and p.
 * Errors only for lack of memory (CB_ENOMEM). */
CB_NODISCARD int cb_verdict_time(const double *base, size_t n1, const double *head, size_t n2,
				 double alpha, double threshold, struct cb_time_verdict *out,
				 struct cb_error *err);

/* Decides for median peaks in bytes (larger is worse). */
enum cb_verdict cb_verdict_memory(double base_bytes, double head_bytes);

/* The allowance above which a memory change counts: max(5%, 32 MiB). */
double cb_verdict_memory_allowance(double base_bytes);

/* "~", "regression", "improvement", "too-few-trials". */
const char *cb_verdict_name(enum cb_verdict v);

#endif
