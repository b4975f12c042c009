#!/bin/bash
# bench/tools/gpu-check.sh, the device check, end to end without a GPU (--no-gpu
# --small): every step runs (datasets, the 1g / 8g-warm / 8g / cpu runs, the
# compat step, the summary), the GPU cells are skipped with their reasons,
# the CPU loader's cells are real, and everything is packed in all.tar.gz
# with only the summary and the log beside it. Timings are not checked.
. "$(dirname "$0")/cli/lib.sh"
T=$CB_TMP
SRC=${CKPTBENCH_SOURCE:?run through meson test}
if expect_status 0 env OUT="$T/gc-out" CB_GPU_CHECK_DATA="$T/data" CKPTBENCH_BIN="$CKPTBENCH" \
	CB_GPU_CHECK_BUDGET=400 bash "$SRC/bench/tools/gpu-check.sh" --no-gpu --small; then
	left=$(cd "$T/gc-out" && ls | sort | paste -sd' ')
	[ "$left" = "all.tar.gz gpu-check.log summary.md" ] && pass ||
		fail "what gpu-check.sh left in \$OUT: $left"
	mkdir "$T/all" && tar -xzf "$T/gc-out/all.tar.gz" -C "$T/all" && pass || fail "all.tar.gz unreadable"
	for f in results-1g.json results-8g-warm.json results-8g.json results-cpu.json \
		machine.txt loaders.json table-1g.txt compat.txt; do
		[ -s "$T/all/$f" ] && pass || fail "all.tar.gz lacks $f"
	done
	$PY - "$T/all" <<'PYEOF' && pass || fail "gpu-check results: see above"
import json, os, sys
d = sys.argv[1]
r = json.load(open(os.path.join(d, "results-1g.json")))
cells = {(c["loader"], c["cache"]): c for c in r["cells"]}
gpu = [c for c in r["cells"] if c["loader"].startswith("safetensors-gpu")]
assert gpu and all(c["status"] == "skipped" and c["reason"] for c in gpu), gpu
ok = cells[("safetensors-read", "warm")]
assert ok["status"] == "ok" and all(t["verified"] for t in ok["trials"]), ok
assert r.get("calibration", {}).get("warm_read_gbps"), "no calibration in results-1g.json"
cpu = json.load(open(os.path.join(d, "results-cpu.json")))
assert {c["loader"] for c in cpu["cells"] if c["status"] == "ok"} == \
    {"safetensors-read", "safetensors-mmap", "pickle", "pickle-mmap"}, cpu["cells"]
PYEOF
	grep -q '^## targets$' "$T/gc-out/summary.md" && grep -q 'calibration: h2d' "$T/gc-out/summary.md" &&
		pass || fail "summary.md has no targets section"
	grep -q 'done in [0-9]*s' "$T/gc-out/gpu-check.log" && pass || fail "gpu-check.log does not end"
fi
finish
