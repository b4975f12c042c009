#!/usr/bin/env bash
# ckptbench compare on the hand-made results files of tests/data/compare/
# (make.py there says what each holds): verdicts, exit statuses, warnings
# first, the three formats, the metrics.
. "$(dirname "$0")/lib.sh"
d=$CKPTBENCH_SOURCE/tests/data/compare
cmp() { "$CKPTBENCH" compare "$@"; }

# row LOADER VERDICT_PATTERN: the text row of LOADER ends in the verdict
row() {
	grep -E "^$1 .*  $2\$" "$CB_TMP/out" >/dev/null && pass ||
		fail "row $1 should end in '$2': $(grep "^$1 " "$CB_TMP/out")"
}

# A file against itself, and against the same code's other trials: quiet.
expect_status 0 cmp "$d/base.json" "$d/base.json"
row safetensors-read '~'
expect_status 0 cmp "$d/base.json" "$d/head-same.json"
row safetensors-read '~'
row pickle '~'
row safetensors-mmap '~'
row pickle-gpu not-compared
grep -q "skipped in base: no GPU visible" "$CB_TMP/out" && pass || fail "skip reason"
grep -q "^0 regressions" "$CB_TMP/out" && pass || fail "summary line"

# 20% slower, 20% faster, +100 MiB peak RSS at the same speed.
expect_status 1 cmp "$d/base.json" "$d/head-slow.json"
row safetensors-read REGRESSION
row pickle improvement
row safetensors-mmap '~, peak RSS REGRESSION \+100.0 MiB'
grep -E "^safetensors-read .* \+19\.8% \[\+17\.8%, \+22\.1%\]  <0\.001 " "$CB_TMP/out" \
	>/dev/null && pass || fail "change and p of the slow cell"
# the threshold is the smallest change that counts; memory still regresses
expect_status 1 cmp --threshold 25% "$d/base.json" "$d/head-slow.json"
row safetensors-read '~'
# the same files the other way round: the slowdown is an improvement
expect_status 1 cmp "$d/head-slow.json" "$d/base.json"
row safetensors-read improvement
row safetensors-mmap '~, peak RSS improvement -100.0 MiB'

# Under 5 trials: said, not hidden, and no regression for it.
expect_status 0 cmp "$d/base.json" "$d/head-few.json"
row safetensors-read too-few-trials
grep -q "10 base and 3 head values; the test needs 5 a side" "$CB_TMP/out" && pass ||
	fail "too few trials note"

# A cell that only fails in head counts as a regression.
expect_status 1 cmp "$d/base.json" "$d/head-failed.json"
row safetensors-read FAILED
grep -q "no successful trial in head" "$CB_TMP/out" && pass || fail "failure note"

# Another machine and calibration: warnings, first.
expect_status 0 cmp "$d/base.json" "$d/head-other-machine.json"
head -1 "$CB_TMP/out" | grep -q '^warning: different machines (hostname "bench-vm" vs "ci-runner"' &&
	pass || fail "machine warning first: $(head -1 "$CB_TMP/out")"
sed -n 2p "$CB_TMP/out" | grep -q '^warning: different calibration: cold_read_gbps' && pass ||
	fail "calibration warning"

# Cannot compare: exit 2 with one line.
expect_status 2 cmp "$d/base.json" "$d/head-disjoint.json" && expect_stderr_line "no cell in common"
expect_status 2 cmp "$d/base.json" "$d/not-results.json" &&
	expect_stderr_line "not-results.json: not a ckptbench results file"
expect_status 2 cmp "$d/base.json" "$CB_TMP/missing.json" && expect_stderr_line "missing.json"
expect_status 2 cmp "$d/base.json"
expect_status 2 cmp --format html "$d/base.json" "$d/base.json"
expect_status 2 cmp --metric cycles "$d/base.json" "$d/base.json"
expect_status 2 cmp --alpha 1.5 "$d/base.json" "$d/base.json"
expect_status 0 cmp --help

# Other metrics: instructions (+20% in the slow cell only), CPU time.
expect_status 1 cmp --metric instructions "$d/base.json" "$d/head-slow.json"
row safetensors-read REGRESSION
row pickle '~'
grep -q "^safetensors-read .* 50.0M ±0% (n=10)  60.0M ±0% (n=10) " "$CB_TMP/out" && pass ||
	fail "instruction counts shown"
# where no trial counted instructions (no PMU, perf_event_open refused):
# said once, first, and no verdict rather than a wrong one
"$PY" - "$d/base.json" "$CB_TMP/noinstr.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["cells"]:
    for t in c["trials"]:
        t["instructions"] = None
json.dump(d, open(sys.argv[2], "w"))
PYEOF
expect_status 0 cmp --metric instructions "$CB_TMP/noinstr.json" "$CB_TMP/noinstr.json"
head -1 "$CB_TMP/out" | grep -q "^warning: no cell has instructions values on both sides" && pass ||
	fail "no-instructions warning: $(head -1 "$CB_TMP/out")"
row safetensors-read too-few-trials
expect_status 1 cmp --metric user+sys "$d/base.json" "$d/head-slow.json"
row safetensors-read REGRESSION

# Markdown for a pull request: a title, a table, bold regressions.
expect_status 1 cmp --format md "$d/base.json" "$d/head-slow.json"
grep -q "^### ckptbench compare: regression found" "$CB_TMP/out" && pass || fail "md title"
grep -q "^| safetensors-read | llama-64M-F16-s1 | cold | cpu | .* | \*\*regression\*\* |$" \
	"$CB_TMP/out" && pass || fail "md row"
grep -q "^| --- | --- |" "$CB_TMP/out" && pass || fail "md table rule"
expect_status 0 cmp --format md "$d/base.json" "$d/head-other-machine.json"
head -1 "$CB_TMP/out" | grep -q "^> \*\*Warning:\*\* different machines" && pass ||
	fail "md warning first"
grep -q "warning: different machines" "$CB_TMP/err" && pass || fail "md warning on stderr"

# JSON: the ckptbench-compare/1 document the compare chart reads.
expect_status 1 cmp --format json "$d/base.json" "$d/head-slow.json"
"$PY" - "$CB_TMP/out" <<'PYEOF' && pass || fail "JSON document"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["schema"] == "ckptbench-compare/1"
assert d["base"]["commit"] == "aaaaaaaaaaaa" and d["head"]["commit"] == "cccccccccccc"
assert d["alpha"] == 0.05 and d["threshold"] == 0.1 and d["metric"] == "wall"
cells = {c["loader"]: c for c in d["cells"]}
r = cells["safetensors-read"]
assert r["verdict"] == "regression" and r["regression"] is True
assert r["base"]["n"] == 10 and r["head"]["n"] == 10 and r["exact"] is True
# complete separation of 10 against 10: U = 0, p = 2 / C(20, 10)
assert r["u"] == 0 and abs(r["p"] - 2 / 184756) < 1e-12
lo, hi = r["ratio_ci95"]
assert lo < r["ratio"] < hi and abs(r["ratio"] - 1.2) < 0.01
assert cells["pickle"]["verdict"] == "improvement" and cells["pickle"]["regression"] is False
m = cells["safetensors-mmap"]
assert m["verdict"] == "~" and m["regression"] is True
assert m["memory"]["peak_rss_bytes"]["verdict"] == "regression"
assert m["memory"]["peak_rss_bytes"]["change_bytes"] == 100 * 1024 * 1024
assert cells["pickle-gpu"]["verdict"] == "not-compared" and cells["pickle-gpu"]["p"] is None
assert d["summary"]["regressions"] == 1 and d["summary"]["memory_regressions"] == 1
assert d["unmatched"] == [] and d["warnings"] == []
PYEOF

# -o writes the chosen format to a file.
expect_status 0 cmp --format json -o "$CB_TMP/c.json" "$d/base.json" "$d/head-same.json"
"$PY" -c 'import json,sys; assert json.load(open(sys.argv[1]))["summary"]["unchanged"] == 3' \
	"$CB_TMP/c.json" && pass || fail "-o FILE"
finish
