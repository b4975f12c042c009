#!/usr/bin/env bash
# ckptbench ab end to end, and run --preset ci: a build against itself finds
# no regression; against a build whose safetensors-read is slowed on purpose
# (ckptbench-slowable with CKPTBENCH_TEST_SLOWDOWN, tests/slowdown.c: test
# builds only) the regression is caught and ab exits 1.
. "$(dirname "$0")/lib.sh"
: "${CKPTBENCH_SLOWABLE:?run through meson test}"
export CKPTBENCH_DATA=$CB_TMP/data
# the ci preset's matrix cut to one loader on a 16 MiB model, warm only: the
# plumbing, quickly (the whole preset runs every CPU loader, Python peers too)
matrix=(--preset ci --sizes 16M --cache warm --loaders safetensors-read --repeat 8)

# run --preset ci: CPU loaders, llama-shaped, no calibration, 10 repeats.
expect_status 0 "$CKPTBENCH" run --preset ci --sizes 16M --cache warm --loaders safetensors-read \
	--quiet -o "$CB_TMP/ci.json"
"$PY" - "$CB_TMP/ci.json" <<'PYEOF' && pass || fail "run --preset ci results"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["calibration"] is None, d["calibration"]
cells = [c for c in d["cells"] if c["status"] == "ok"]
assert cells and all(c["device"] == "cpu" and c["dataset"] == "llama-16M-F16-s1" for c in cells)
assert all(len(c["trials"]) == 10 for c in cells)
assert any(c["loader"] == "safetensors-read" for c in cells)
PYEOF

# A/A: the same build twice, interleaved.
expect_status 0 "$CKPTBENCH" ab --base "$CKPTBENCH" --head "$CKPTBENCH" "${matrix[@]}" \
	-o "$CB_TMP/aa"
grep -q "REGRESSION" "$CB_TMP/out" && fail "A/A found a regression: $(cat "$CB_TMP/out")" || pass
grep -q "^0 regressions" "$CB_TMP/out" && pass || fail "A/A summary"
for f in base.json head.json compare.json compare.md; do
	[ -s "$CB_TMP/aa/$f" ] && pass || fail "ab wrote no $f"
done
[ -d "$CB_TMP/aa/rounds" ] && fail "rounds left behind" || pass
"$PY" - "$CB_TMP/aa" <<'PYEOF' && pass || fail "ab files"
import json, sys
base = json.load(open(sys.argv[1] + "/base.json"))
cmp = json.load(open(sys.argv[1] + "/compare.json"))
assert base["schema"] == "ckptbench/1" and base["config"]["ab"]["side"] == "base"
read = [c for c in base["cells"] if c["loader"] == "safetensors-read"][0]
assert len(read["trials"]) == 8 and read["summary"]["n"] == 8
assert cmp["schema"] == "ckptbench-compare/1"
assert all(c["verdict"] != "regression" for c in cmp["cells"])
PYEOF

# A build slowed on purpose: each safetensors-read load takes three times as
# long. 12 rounds, not 8: a 16 MiB load takes milliseconds, and on a VM a
# few base trials caught by the host's hiccups can outlast the slowed head's
# and hide it from the rank test at 8 (seen once in 40 runs of this check).
cat >"$CB_TMP/slow.sh" <<EOF
#!/bin/sh
CKPTBENCH_TEST_SLOWDOWN=safetensors-read=2.0 exec "$CKPTBENCH_SLOWABLE" "\$@"
EOF
chmod +x "$CB_TMP/slow.sh"
expect_status 1 "$CKPTBENCH" ab --base "$CKPTBENCH_SLOWABLE" --head "$CB_TMP/slow.sh" \
	"${matrix[@]}" --repeat 12 -o "$CB_TMP/slow"
grep -E "^safetensors-read .*REGRESSION$" "$CB_TMP/out" >/dev/null && pass ||
	fail "slowdown not caught: $(cat "$CB_TMP/out")"
grep -q "^| safetensors-read | .* | \*\*regression\*\* |$" "$CB_TMP/slow/compare.md" && pass ||
	fail "compare.md row"

# Usage errors.
expect_status 2 "$CKPTBENCH" ab --base "$CKPTBENCH"
expect_status 2 "$CKPTBENCH" ab --base "$CKPTBENCH" --head "$CKPTBENCH" --repeat 0
expect_status 0 "$CKPTBENCH" ab --help
finish
