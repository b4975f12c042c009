/* One cell's verdict; see verdict.h for the rule. */
#include "verdict.h"

#include <math.h>
#include <string.h>

int cb_verdict_time(const double *base, size_t n1, const double *head, size_t n2, double alpha,
		    double threshold, struct cb_time_verdict *out, struct cb_error *err)
{
	memset(out, 0, sizeof *out);
	out->verdict = CB_VERDICT_TOO_FEW;
	out->mw.p = NAN;
	out->ratio.ratio = out->ratio.lo = out->ratio.hi = out->ratio.of_medians = NAN;
	if (n1 == 0 || n2 == 0)
		return CB_OK;
	int rc = cb_mannwhitney(base, n1, head, n2, &out->mw, err);
	if (rc == CB_OK)
		rc = cb_ratio_estimate(base, n1, head, n2, &out->ratio, err);
	if (rc != CB_OK)
		return rc;
	if (n1 < CB_VERDICT_MIN_TRIALS || n2 < CB_VERDICT_MIN_TRIALS)
		return CB_OK;
	out->verdict = CB_VERDICT_SAME;
	/* A NaN ratio (a value <= 0) compares false both ways: `~`. */
	if (!(out->mw.p < alpha))
		return CB_OK;
	if (out->ratio.ratio > 1.0 + threshold)
		out->verdict = CB_VERDICT_REGRESSION;
	else if (out->ratio.ratio < 1.0 / (1.0 + threshold))
		out->verdict = CB_VERDICT_IMPROVEMENT;
	return CB_OK;
}

double cb_verdict_memory_allowance(double base_bytes)
{
	return fmax(CB_VERDICT_MEM_FRACTION * base_bytes, CB_VERDICT_MEM_BYTES);
}

enum cb_verdict cb_verdict_memory(double base_bytes, double head_bytes)
{
	double allowance = cb_verdict_memory_allowance(base_bytes);
	if (head_bytes - base_bytes > allowance)
		return CB_VERDICT_REGRESSION;
	if (base_bytes - head_bytes > allowance)
		return CB_VERDICT_IMPROVEMENT;
	return CB_VERDICT_SAME;
}

const char *cb_verdict_name(enum cb_verdict v)
{
	switch (v) {
	case CB_VERDICT_SAME: return "~";
	case CB_VERDICT_REGRESSION: return "regression";
	case CB_VERDICT_IMPROVEMENT: return "improvement";
	case CB_VERDICT_TOO_FEW: return "too-few-trials";
	}
	return "?";
}
