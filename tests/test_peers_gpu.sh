#!/bin/bash
# The GPU peers (torch-load-gpu, safetensors-py-gpu) where there is no GPU:
#   - `ckptbench loaders` (text and --json) lists both as cuda loaders, with
#     the reason the peers' own probe gives; on a machine whose torch is
#     CPU-only (Debian's) that reason says so, and safetensors-py-gpu's says
#     the package is missing where it is;
#   - `run --device cuda:0` records each as a skipped cell with that reason
#     and exits 0, as for every unavailable loader;
#   - `run --device cpu` skips them as GPU loaders even where the probe calls
#     them available (a stand-in Python makes it say so), and `--device
#     cuda:0` then runs the peer, which reports `unsupported` with a reason
#     (a skipped cell, exit 0), not a traceback;
#   - the Python side's device handling (tests/peers_gpu_check.py).
# Where the peers are available (a GPU and a CUDA torch), the unavailable
# checks are skipped; the rest still holds. Exit 77 without python3-torch.
set -u
PY=/usr/bin/python3
$PY -c 'import torch, xxhash' 2>/dev/null || { echo "no python3-torch/python3-xxhash: skipped"; exit 77; }
src=${CKPTBENCH_SOURCE:?run through meson test}
. "$src/tests/cli/lib.sh"
T=$CB_TMP
peers="torch-load-gpu safetensors-py-gpu"

# The reasons as the peers' probe gives them (empty: available).
"$src/loaders/peers/python-peer" --probe >"$T/probe" || fail "python-peer --probe exited $?"
reason() { awk -F'\t' -v n="$1" '$1 == n {print $2}' "$T/probe"; }
cpu_only=$($PY -c 'import torch; print(int(torch.version.cuda is None and torch.version.hip is None))')
have_st=$($PY -c 'import importlib.util as u; print(int(u.find_spec("safetensors") is not None))')

# --- the listing ----------------------------------------------------------------
if expect_status 0 "$CKPTBENCH" loaders --json; then
	$PY - "$T/out" "$T/probe" "$cpu_only" "$have_st" <<'PYEOF' && pass || fail "loaders --json: see above"
import json, sys
listing = {l["name"]: l for l in json.load(open(sys.argv[1]))}
probe = dict(line.rstrip("\n").split("\t", 1) for line in open(sys.argv[2]))
cpu_only, have_st = sys.argv[3] == "1", sys.argv[4] == "1"
for name, fmt in (("torch-load-gpu", "pytorch"), ("safetensors-py-gpu", "safetensors")):
    l = listing.get(name)
    assert l, f"{name} is not listed"
    assert l["device"] == "cuda" and l["format"] == fmt, l
    want = probe[name]
    assert l["available"] == (want == ""), (l, want)
    if want:
        assert l["reason"] == want, (l["reason"], want)
    if cpu_only:
        assert not l["available"] and "has no CUDA" in l["reason"], l
    if name == "safetensors-py-gpu" and not have_st:
        assert "python3 module safetensors not installed" in l["reason"], l
opts = {o["name"]: o["default"] for o in listing["safetensors-py-gpu"]["options"]}
assert opts == {"into": "dict", "init": "zeros", "threads": "0"}, opts
opts = {o["name"]: o["default"] for o in listing["torch-load-gpu"]["options"]}
assert opts == {"init": "zeros", "weights-only": "default", "threads": "0"}, opts
PYEOF
fi
if expect_status 0 "$CKPTBENCH" loaders; then
	for n in $peers; do
		if [ -n "$(reason "$n")" ]; then
			grep -A2 "^$n  *[a-z]*  *cuda  *unavailable" "$T/out" | grep -qF "why not: $(reason "$n")" &&
				pass || fail "loaders: $n should be an unavailable cuda loader saying why: $(grep -A2 "^$n " "$T/out")"
		else
			grep -q "^$n  *[a-z]*  *cuda  *available" "$T/out" && pass || fail "loaders: $n"
		fi
	done
fi

# --- run: skipped cells with the reason --------------------------------------------
"$CKPTBENCH" gen --preset llama --size 4M --formats safetensors,pytorch --no-sync \
	-o "$T" --quiet >/dev/null || fail "gen 4M"
d=$T/llama-4M-F16-s1
cells() { # loader status device |reason |trial outcomes
	$PY -c '
import json, sys
for c in json.load(open(sys.argv[1]))["cells"]:
    print(c["loader"], c["status"], c["device"], "|" + (c.get("reason") or ""),
          "|" + ",".join(t["outcome"] for t in c.get("trials") or []))' "$1"
}
run() { "$CKPTBENCH" run --loaders torch-load-gpu,safetensors-py-gpu --datasets "$d" \
	--cache warm --repeat 1 --warmup 0 --no-calibrate --quiet --force "$@"; }
all_unavailable=1
for n in $peers; do [ -n "$(reason "$n")" ] || all_unavailable=0; done
if [ "$all_unavailable" = 1 ]; then
	if expect_status 0 run --device cuda:0 -o "$T/cuda.json"; then
		cells "$T/cuda.json" >"$T/cells"
		for n in $peers; do
			grep -qxF "$n skipped cuda:0 |$(reason "$n") |" "$T/cells" && pass ||
				fail "--device cuda:0: $n should be skipped with its reason: $(grep "^$n " "$T/cells")"
		done
	fi
	if expect_status 0 run --device cpu -o "$T/cpu.json"; then
		cells "$T/cpu.json" >"$T/cells"
		for n in $peers; do
			grep -qxF "$n skipped cuda |$(reason "$n") |" "$T/cells" && pass ||
				fail "--device cpu: $n should be skipped: $(grep "^$n " "$T/cells")"
		done
	fi
fi

# Under --device cpu a GPU loader's cell names only the device kind (cuda),
# whatever its kind, and a CPU loader's cell still runs on the CPU.
if expect_status 0 "$CKPTBENCH" run --loaders safetensors-gpu,safetensors-read --device cpu \
	--datasets "$d" --cache warm --repeat 1 --warmup 0 --no-calibrate --quiet --force \
	-o "$T/cpu-c.json"; then
	cells "$T/cpu-c.json" >"$T/cells"
	grep -q "^safetensors-gpu skipped cuda |" "$T/cells" && pass ||
		fail "--device cpu: safetensors-gpu: $(grep "^safetensors-gpu " "$T/cells")"
	grep -qxF "safetensors-read ok cpu | |ok" "$T/cells" && pass ||
		fail "--device cpu: safetensors-read: $(grep "^safetensors-read " "$T/cells")"
	# What ./run.sh does next: the report reads such a file.
	expect_status 0 "$CKPTBENCH" report -o "$T/cpu-c.md" "$T/cpu-c.json"
fi

# A Python whose probe calls every peer available: --device cpu skips the GPU
# peers as GPU loaders; on cuda:0 the peer itself runs and (here, with no
# GPU) reports unsupported, which the harness records as a skipped cell.
cat >"$T/python" <<EOF
#!/bin/sh
if [ "\${2:-}" = --probe ]; then $PY "\$1" --probe | cut -f1 | sed 's/\$/\t/'; exit 0; fi
exec $PY "\$@"
EOF
chmod +x "$T/python"
if expect_status 0 env CKPTBENCH_PYTHON="$T/python" "$CKPTBENCH" run --loaders \
	torch-load-gpu,safetensors-py-gpu --device cpu --datasets "$d" --cache warm --repeat 1 \
	--warmup 0 --no-calibrate --quiet --force -o "$T/cpu2.json"; then
	cells "$T/cpu2.json" >"$T/cells"
	for n in $peers; do
		grep -qxF "$n skipped cuda |a GPU loader, and --device is cpu |" "$T/cells" && pass ||
			fail "--device cpu, peers available: $n: $(grep "^$n " "$T/cells")"
	done
fi
if [ "$all_unavailable" = 1 ] &&
	expect_status 0 env CKPTBENCH_PYTHON="$T/python" "$CKPTBENCH" run --loaders \
		torch-load-gpu,safetensors-py-gpu --device cuda:0 --datasets "$d" --cache warm \
		--repeat 1 --warmup 0 --no-calibrate --quiet --force -o "$T/cuda2.json"; then
	cells "$T/cuda2.json" >"$T/cells"
	for n in $peers; do
		grep -qxF "$n skipped cuda:0 |unsupported: $(reason "$n") |unsupported" "$T/cells" &&
			pass || fail "peer run on cuda:0 here: $n: $(grep "^$n " "$T/cells")"
	done
	grep -q Traceback "$T/err" && fail "a traceback on stderr: $(head -c 600 "$T/err")"
fi

# --- the Python side ------------------------------------------------------------
mkdir "$T/probe-scratch"
$PY "$src/tests/peers_gpu_check.py" probe "$src/loaders/peers" "$T/probe-scratch" >"$T/py" 2>&1 &&
	pass || fail "peers_gpu_check.py probe: $(tail -c 800 "$T/py")"
$PY "$src/tests/peers_gpu_check.py" load "$src/loaders/peers" "$d" >"$T/py" 2>&1 &&
	pass || fail "peers_gpu_check.py load: $(tail -c 800 "$T/py")"

finish
