#!/bin/sh
# The Python peers run the real torch (Debian's python3-torch) through
# `ckptbench run`: torch-load gives verified trials whose anonymous peak is
# about twice the model above the baseline (the memory-doubling of
# `M().load_state_dict(torch.load(p))`), loads sharded checkpoints, and gives
# the wrong-bytes outcome for a flipped data byte; a bad option is an error
# naming it; peers that cannot run here are listed with their reasons and
# recorded as skipped cells; without a usable Python every peer says why.
# Exit 77 (skipped) without python3-torch and python3-xxhash.
set -u
PY=/usr/bin/python3
$PY -c 'import torch, xxhash' 2>/dev/null || { echo "no python3-torch/python3-xxhash: skipped"; exit 77; }
. "$(dirname "$0")/../cli/lib.sh"
T=$CB_TMP

# Values of a results file: cell NAME CACHE KEY, trial fields, over one line.
cat >"$T/cells.py" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
for c in r["cells"]:
    s = c.get("summary") or {}
    trials = c.get("trials") or []
    outcomes = ",".join(t["outcome"] for t in trials) or "-"
    verified = all(t.get("verified") for t in trials) and bool(trials)
    phases = all(t["phases"][p] > 0 for t in trials for p in ("init", "read", "copy")) \
        if trials and c["status"] == "ok" else False
    modes = {t.get("mode", "") for t in trials}
    print(c["loader"], c["dataset"], c["cache"], c["status"], outcomes, verified, phases,
          "%.3f" % (s.get("peak_anon_over_model") or -1),
          "torch" if any(m.startswith("torch ") for m in modes) else "nomode",
          "|" + (c.get("reason") or "").replace(" ", "_"))
PYEOF

# --- listing: availability and reasons ---------------------------------------
torch_old=$($PY -c 'import re, torch; m = re.match(r"(\d+)\.(\d+)", torch.__version__); print(int((int(m[1]), int(m[2])) < (2, 1)))')
have_st=$($PY -c 'import importlib.util as u; print(int(u.find_spec("safetensors") is not None))')
if expect_status 0 "$CKPTBENCH" loaders; then
	grep -q '^torch-load  *pytorch  *cpu  *available' "$T/out" && pass ||
		fail "torch-load is not listed available: $(grep torch-load "$T/out")"
	if [ "$torch_old" = 1 ]; then
		grep -A2 '^torch-load-mmap' "$T/out" | grep -q 'why not: torch [0-9.]* has no mmap=True' &&
			pass || fail "torch-load-mmap should say torch has no mmap=True: $(grep -A2 '^torch-load-mmap' "$T/out")"
	fi
	if [ "$have_st" = 0 ]; then
		grep -A2 '^safetensors-py' "$T/out" | grep -q 'why not: python3 module safetensors not installed' &&
			pass || fail "safetensors-py should say the module is missing"
	fi
fi
# Without a Python every peer is unavailable, with a reason, not missing.
if expect_status 0 env CKPTBENCH_PYTHON=/nonexistent/python3 "$CKPTBENCH" loaders --json; then
	$PY - "$T/out" <<'PYEOF' && pass || fail "peers without a Python: $(cat "$T/out" | head -c 600)"
import json, sys
peers = {l["name"]: l for l in json.load(open(sys.argv[1]))
         if l["name"] in ("torch-load", "torch-load-mmap", "safetensors-py")}
assert len(peers) == 3, sorted(peers)
for l in peers.values():
    assert not l["available"] and "no usable python3" in l["reason"], l
PYEOF
fi

# Which Python: without CKPTBENCH_PYTHON, the first python3 in PATH that has
# torch (a venv), else Debian's. A logging python3 first in PATH is used when
# it finds torch, passed over when it does not.
mkdir -p "$T/venv-torch" "$T/venv-none"
cat >"$T/venv-torch/python3" <<EOF
#!/bin/sh
echo "\$*" >>"$T/venv-torch.log"
exec $PY "\$@"
EOF
cat >"$T/venv-none/python3" <<EOF
#!/bin/sh
echo "\$*" >>"$T/venv-none.log"
case "\$*" in *find_spec*) exit 1 ;; esac
exec $PY "\$@"
EOF
chmod +x "$T/venv-torch/python3" "$T/venv-none/python3"
if expect_status 0 env -u CKPTBENCH_PYTHON PATH="$T/venv-torch:$PATH" "$CKPTBENCH" loaders; then
	grep -q 'peer.py --probe' "$T/venv-torch.log" && pass ||
		fail "a python3 with torch first in PATH was not used: $(cat "$T/venv-torch.log" 2>&1)"
fi
if expect_status 0 env -u CKPTBENCH_PYTHON PATH="$T/venv-none:$PATH" "$CKPTBENCH" loaders; then
	! grep -q 'peer.py' "$T/venv-none.log" && grep -q '^torch-load  *pytorch  *cpu  *available' "$T/out" &&
		pass || fail "a python3 without torch should be passed over for Debian's: $(cat "$T/venv-none.log")"
fi

# --- torch-load on a 128 MiB model: verified, memory doubled -------------------
"$CKPTBENCH" gen --preset llama --size 128M --dtype F16 --formats safetensors,pytorch \
	-o "$T" --quiet >/dev/null || fail "gen 128M"
d="$T/llama-128M-F16-s1"
if expect_status 0 "$CKPTBENCH" run --loaders torch-load,torch-load-mmap,safetensors-py \
	--datasets "$d" --cache warm --repeat 2 --warmup 0 --no-calibrate --quiet -o "$T/r.json"; then
	$PY "$T/cells.py" "$T/r.json" >"$T/cells"
	# loader dataset cache status outcomes verified phases anon torch |reason
	read -r l _ _ status outcomes verified phases anon mode _ <<EOF
$(grep '^torch-load ' "$T/cells")
EOF
	[ "$status $outcomes $verified $phases $mode" = "ok ok,ok True True torch" ] && pass ||
		fail "torch-load trials: $(grep '^torch-load ' "$T/cells")"
	# The memory-doubling: the model M() (1x) and torch.load's storages (1x)
	$PY -c "import sys; sys.exit(not 1.8 <= $anon <= 2.3)" && pass ||
		fail "torch-load peak anonymous memory is ${anon}x the model, not about 2x"
	for name in torch-load-mmap safetensors-py; do
		grep "^$name " "$T/cells" | grep -q ' skipped - .*|.\+' && pass ||
			fail "$name should be a skipped cell with a reason: $(grep "^$name " "$T/cells")"
	done
fi

# --- shards: transformers' per-shard load -------------------------------------
"$CKPTBENCH" gen --preset llama --size 4M --shards 3 --formats safetensors,pytorch \
	-o "$T" --quiet >/dev/null || fail "gen shards"
if expect_status 0 "$CKPTBENCH" run --loaders torch-load --datasets "$T/llama-4M-F16-s1-x3" \
	--cache warm --repeat 1 --warmup 0 --no-calibrate --quiet -o "$T/shards.json"; then
	$PY "$T/cells.py" "$T/shards.json" | grep -q '^torch-load .* ok ok True True ' && pass ||
		fail "torch-load on shards: $($PY "$T/cells.py" "$T/shards.json")"
fi

# --- a flipped data byte: wrong bytes, not ok --------------------------------
mkdir "$T/bad"
cp "$d/model.pt" "$d/manifest.json" "$T/bad/"
$PY - "$T/bad/model.pt" <<'PYEOF' || fail "could not tamper with model.pt"
import struct, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
rec = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
with open(sys.argv[1], "r+b") as f:
    f.seek(rec.header_offset)
    head = f.read(30)
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    at = rec.header_offset + 30 + name_len + extra_len + rec.file_size // 2
    f.seek(at)
    b = f.read(1)
    f.seek(at)
    f.write(bytes([b[0] ^ 0x5A]))
PYEOF
if expect_status 1 "$CKPTBENCH" run --loaders torch-load --datasets "$T/bad" --cache warm \
	--repeat 1 --warmup 0 --no-calibrate --quiet -o "$T/bad.json"; then
	$PY "$T/cells.py" "$T/bad.json" | grep -q '^torch-load .* failed wrong-bytes False ' && pass ||
		fail "tampered model.pt: $($PY "$T/cells.py" "$T/bad.json")"
fi

# --- a bad option value: an error that names it -------------------------------
"$CKPTBENCH" run --loaders torch-load:init=bogus --datasets "$T/llama-4M-F16-s1-x3" \
	--cache warm --repeat 1 --warmup 0 --no-calibrate --quiet -o "$T/opt.json" \
	>/dev/null 2>&1
$PY - "$T/opt.json" <<'PYEOF' && pass || fail "init=bogus: $(head -c 800 "$T/opt.json")"
import json, sys
t = json.load(open(sys.argv[1]))["cells"][0]["trials"][0]
assert t["outcome"] == "error" and "option init takes zeros|uniform|empty" in t["message"], t
PYEOF

finish
