#!/bin/sh
# Files written by the real torch.save (Debian's python3-torch, made at test
# time by make_torch_files.py) are read by `ckptbench inspect --json` with
# exactly the names, dtypes, shapes, byte counts and XXH3 (of t.contiguous())
# that torch reports: real modules, tied weights, views with offsets and
# strides, every dtype, 0-dim and empty tensors, Parameters, training
# checkpoints, thousands of tensors, the legacy format, a sharded directory,
# and the golden nn.Linear file. Malicious pickles, TorchScript archives and
# tensors with no safetensors dtype are refused with exit status 1 and a
# one-line message, and the command a malicious pickle carries never runs.
# Exit 77 (skipped) without Debian's python3-torch and python3-xxhash.
set -eu
PY=/usr/bin/python3
$PY -c 'import torch, xxhash' 2>/dev/null || { echo "no python3-torch/python3-xxhash: skipped"; exit 77; }
: "${CKPTBENCH:?}" "${CKPTBENCH_SOURCE:?}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

$PY "$CKPTBENCH_SOURCE/tests/compat/make_torch_files.py" "$T" >/dev/null

cat > "$T/check.py" <<'PYEOF'
import json, os, subprocess, sys
ckptbench, root = sys.argv[1], sys.argv[2]
cases = json.load(open(os.path.join(root, "cases.json")))
failed = 0
for case in cases:
    path = os.path.join(root, case["file"])
    r = subprocess.run([ckptbench, "inspect", "--json", path], capture_output=True, text=True)
    if "refuse" in case:
        lines = r.stderr.strip().splitlines()
        ok = (r.returncode == 1 and len(lines) == 1 and case["refuse"] in lines[0]
              and lines[0].startswith("ckptbench: " + path + ": "))
        if case.get("side_effect") and os.path.exists(case["side_effect"]):
            ok = False
            print(f"{case['file']}: THE COMMAND RAN", file=sys.stderr)
        if not ok:
            failed += 1
            print(f"{case['file']}: expected refusal '{case['refuse']}' with status 1, got "
                  f"{r.returncode}: {r.stderr.strip()}", file=sys.stderr)
        continue
    if r.returncode != 0:
        failed += 1
        print(f"{case['file']}: exit {r.returncode}: {r.stderr.strip()}", file=sys.stderr)
        continue
    doc = json.loads(r.stdout)
    assert doc["format"] == "pytorch" and doc["metadata"] is None, case["file"]
    got = [{k: t[k] for k in ("name", "dtype", "shape", "nbytes", "xxh3")}
           for t in doc["tensors"]]
    want = case["tensors"]
    if got != want:
        failed += 1
        wn = {t["name"]: t for t in want}
        gn = {t["name"]: t for t in got}
        diff = [n for n in sorted(set(wn) | set(gn)) if wn.get(n) != gn.get(n)]
        print(f"{case['file']}: {len(diff)} tensors differ, e.g. "
              f"torch {wn.get(diff[0])} vs ckptbench {gn.get(diff[0])}", file=sys.stderr)
print(f"{len(cases) - failed}/{len(cases)} cases agree with torch")
sys.exit(1 if failed else 0)
PYEOF
$PY "$T/check.py" "$CKPTBENCH" "$T"
