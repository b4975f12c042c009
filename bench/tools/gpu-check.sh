#!/bin/bash
# The device check: one script for a GPU machine, run from the
# repository root with $OUT set; finishes within CB_GPU_CHECK_BUDGET seconds
# (default 450, under 8 minutes) and leaves in $OUT, as it goes (a timeout
# still returns what was done):
#   gpu-check.log         everything it printed
#   machine.txt           nvidia-smi, the binary's ldd, python/torch versions
#   sysinfo.json loaders.txt (the calibration is in each results file)
#   results-1g.json (+ .csv, table)   every available GPU loader, 1 GiB F16
#   results-8g.json       safetensors-gpu, -naive and safetensors-format GPU
#                         peers, 8 GiB BF16, cold
#   results-8g-warm.json  the same warm, with safetensors-gpu's paths and
#                         thread counts side by side (pipeline, register)
#   results-alloc-tensor.json         safetensors-gpu alloc=tensor, 1 GiB
#   results-pipeline.json mode=pipeline, when the default ran cuFile
#   summary.md            the tables, the targets, the compat checks
#   compat.txt            newer torch/safetensors files vs ckptbench
#   all.tar.gz            every file above but the log (the device tool
#                         brings back only a few files); summary.md and
#                         gpu-check.log are also left beside it
#
# The binary: $CKPTBENCH_BIN, else build-gpu-static/ckptbench (made by
# bench/tools/gpu-build.sh on the build machine and carried here), else a build
# here (needs meson, ninja and the libraries), else it stops.
#
#   bench/tools/gpu-check.sh [--small] [--no-gpu]
#     --small   64 MiB and 128 MiB datasets instead of 1 GiB and 8 GiB
#     --no-gpu  skip the GPU cells (what happens by itself when no GPU
#               loader is available); runs safetensors-read instead, so the
#               script's path is exercised end to end on a machine without one
set -u
START=$(date +%s)
BUDGET=${CB_GPU_CHECK_BUDGET:-450}
SMALL=0
NOGPU=0
for a in "$@"; do
	case $a in
	--small) SMALL=1 ;;
	--no-gpu) NOGPU=1 ;;
	*) echo "usage: bench/tools/gpu-check.sh [--small] [--no-gpu]" >&2; exit 2 ;;
	esac
done
cd "$(dirname "$0")/../.." || exit 3
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-check-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu-check.log") 2>&1
exec 3>&1 # progress lines, whatever a step's stdout is redirected to
SUMMARY=$OUT/summary.md
: > "$SUMMARY"

elapsed() { echo $(($(date +%s) - START)); }
left() { echo $((BUDGET - $(elapsed))); }
say() { echo "[gpu-check $(elapsed)s] $*" >&3; }
note() { echo "$*" >> "$SUMMARY"; }

# step NAME NEED_S CMD...: runs CMD under a timeout of what is left of the
# budget, when at least NEED_S seconds are left; records the outcome.
step() {
	local name=$1 need=$2
	shift 2
	local l
	l=$(left)
	if [ "$l" -lt "$need" ]; then
		say "SKIP $name: ${l}s left, it needs ~${need}s"
		note "- $name: skipped, ${l}s of the budget left"
		return 124
	fi
	say "BEGIN $name (${l}s left)"
	timeout --kill-after=5 "$((l - 5))" "$@"
	local rc=$?
	say "END $name: exit $rc"
	note "- $name: exit $rc$([ $rc -eq 124 ] && echo ' (out of time)')"
	return $rc
}

# --- the binary ----------------------------------------------------------------
BIN=${CKPTBENCH_BIN:-$ROOT/build-gpu-static/ckptbench}
[ -f "$BIN" ] && chmod +x "$BIN" 2>/dev/null
if ! "$BIN" --version >/dev/null 2>&1; then
	say "no working $BIN; building here"
	if command -v meson >/dev/null && command -v ninja >/dev/null; then
		(meson setup build-gpu-check -Dcuda=auto -Dtorch=disabled >/dev/null &&
			ninja -C build-gpu-check ckptbench >/dev/null) || true
		BIN=$ROOT/build-gpu-check/ckptbench
	fi
fi
if ! "$BIN" --version >/dev/null 2>&1; then
	say "FATAL: no ckptbench binary (carry build-gpu-static, or install meson, ninja, libjansson-dev, libxxhash-dev, zlib1g-dev)"
	note "FATAL: no ckptbench binary"
	exit 3
fi
say "binary: $BIN ($("$BIN" --version 2>&1 | head -1))"

# --- the machine -----------------------------------------------------------------
PY=${CB_GPU_CHECK_PYTHON:-$(command -v python3 || true)}
{
	echo "== date"; date -u
	echo "== binary"; echo "$BIN"; ldd "$BIN" 2>&1
	echo "== nvidia-smi"; nvidia-smi 2>&1 | head -40
	echo "== nvidia-smi -q (memory, PCIe)"
	nvidia-smi -q 2>/dev/null | grep -A3 -E 'PCIe Generation|Link Width|FB Memory Usage' | head -40
	echo "== nvidia-fs"; ls /proc/driver/nvidia-fs 2>&1 | head -3
	echo "== libcufile"; ldconfig -p 2>/dev/null | grep -E 'cufile|nvidia-ml' || echo "(not in ldconfig)"
	echo "== cpus / memory"; nproc; free -g
	echo "== python"
	if [ -n "$PY" ]; then
		"$PY" -c 'import sys; print(sys.version)'
		"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -1
		"$PY" -c 'import safetensors; print("safetensors", safetensors.__version__)' 2>&1 | tail -1
		"$PY" -c 'import xxhash; print("xxhash", xxhash.VERSION)' 2>&1 | tail -1
	else
		echo "no python3"
	fi
} > "$OUT/machine.txt" 2>&1
"$BIN" sysinfo --json > "$OUT/sysinfo.json" 2>&1
"$BIN" loaders > "$OUT/loaders.txt" 2>&1
"$BIN" loaders --json > "$OUT/loaders.json" 2>&1

# Available GPU loaders, from the listing ("NAME FORMAT DEVICE available").
gpu_loaders() { awk '$3 == "cuda" && $4 == "available" {print $1}' "$OUT/loaders.txt"; }
GPU_ALL=$(gpu_loaders | paste -sd, -)
# The GPU peers (real torch / safetensors): named in the runs whether or not
# available, so a cell says why when they cannot run; last, after ours.
GPU_PEERS=torch-load-gpu,safetensors-py-gpu
GPU_RUN=$(gpu_loaders | grep -v -x -E "${GPU_PEERS//,/|}" | paste -sd, -)
GPU_RUN=${GPU_RUN:+$GPU_RUN,}$GPU_PEERS
# Other safetensors GPU loaders for the 8g run (safetensors-py-gpu among
# them), less the two that run names itself.
GPU_ST=$(awk '$2 == "safetensors" && $3 == "cuda" && $4 == "available" {print $1}' "$OUT/loaders.txt" |
	grep -v -E '^(libtorch|safetensors-gpu$|safetensors-gpu-naive$)' | paste -sd, -)
if [ "$NOGPU" = 1 ] || ! gpu_loaders | grep -qx safetensors-gpu; then
	NOGPU=1
	SMALL=1
	why=$(awk '$1 == "why" {sub(/^ *why not: */, ""); print; exit}' "$OUT/loaders.txt")
	say "no GPU mode: safetensors-gpu is not available here (${why:-by --no-gpu}); GPU cells will be skipped"
fi

note "# ckptbench device check"
note ""
note "machine: $(hostname), $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1 || echo 'no nvidia-smi')"
note "binary: $BIN; GPU loaders available: ${GPU_ALL:-none}; no-GPU mode: $NOGPU"
note ""
note "## steps"

# --- the datasets ------------------------------------------------------------------
DATA=${CB_GPU_CHECK_DATA:-$ROOT/datasets/data/gpu-check}
mkdir -p "$DATA"
export CKPTBENCH_DATA=$DATA
say "data on $(df -T "$DATA" | awk 'NR == 2 {print $2, $1}')"
if [ "$SMALL" = 1 ]; then S1=64M; S8=128M; CAL=256M; else S1=1G; S8=8G; CAL=1G; fi
D1=llama-$S1-F16-s1
D8=llama-$S8-BF16-s1
DC=llama-16M-F16-s1
if [ "$SMALL" = 1 ]; then S2=32M; else S2=256M; fi
D2=llama-$S2-F16-s1
step "gen $D1" 20 "$BIN" gen --preset llama --size "$S1" --dtype F16 --no-sync -o "$DATA" --quiet
step "gen $D8" 40 "$BIN" gen --preset llama --size "$S8" --dtype BF16 --formats safetensors \
	--no-sync -o "$DATA" --quiet
step "gen $DC" 10 "$BIN" gen --preset llama --size 16M --dtype F16 --no-sync -o "$DATA" --quiet
step "gen $D2" 10 "$BIN" gen --preset llama --size "$S2" --dtype F16 --no-sync -o "$DATA" \
	--quiet
sync # the datasets on disk before anything is timed cold

# --- calibration: by each run, into its results file (disk, memcpy, pinned H2D)
export CKPTBENCH_CALIBRATE_SIZE=$CAL

# --- the runs --------------------------------------------------------------------------
# run NAME LOADERS DATASET CACHES NEED_S [more run options]
run() {
	local name=$1 loaders=$2 ds=$3 caches=$4 need=$5
	shift 5
	[ -n "$loaders" ] || { note "- $name: no loaders"; return 0; }
	step "run $name" "$need" "$BIN" run --loaders "$loaders" --datasets "$ds" --cache "$caches" \
		--repeat 3 --warmup 1 --timeout 120 --quiet -o "$OUT/results-$name.json" --force \
		"$@" > "$OUT/table-$name.txt"
	cat "$OUT/table-$name.txt"
}
if [ "$NOGPU" = 1 ]; then
	# The same steps, the GPU cells skipped (with the reason), plus a CPU
	# loader so that results, tables and the summary are really made.
	run 1g "safetensors-gpu,safetensors-gpu-naive,pickle-gpu,$GPU_PEERS,safetensors-read" "$D1" cold,warm 30
	run 8g-warm "safetensors-gpu,safetensors-gpu:mode=register,safetensors-gpu-naive,safetensors-py-gpu,safetensors-read" "$D8" warm 30 --no-calibrate --warmup 0
	run 8g "safetensors-gpu,safetensors-gpu-naive,safetensors-read" "$D8" cold 30 --no-calibrate --warmup 0 --repeat 2
else
	# The fast path's variants, side by side on the same files: the pinned
	# pipeline's slot size and thread count around the defaults (16 threads
	# x 2 slots x 4 MiB), and the register path (no host copy).
	VARIANTS=safetensors-gpu:chunk-mib=2,safetensors-gpu:mode=register
	VARIANTS8=$VARIANTS,safetensors-gpu:chunk-mib=8,safetensors-gpu:threads=8:chunk-mib=16
	run 1g "$GPU_RUN,$VARIANTS" "$D1" cold,warm 120
	run 8g-warm "safetensors-gpu,$VARIANTS8,safetensors-gpu-naive${GPU_ST:+,$GPU_ST}" "$D8" warm 100 \
		--no-calibrate --warmup 0
	run 8g "safetensors-gpu,safetensors-gpu-naive${GPU_ST:+,$GPU_ST}" "$D8" cold 60 \
		--no-calibrate --warmup 0 --repeat 2
	run alloc-tensor "safetensors-gpu:alloc=tensor" "$D1" warm 25 --no-calibrate
	# With cuFile here, the default may have taken it: the pipeline too.
	if grep -q 'cufile: ' "$OUT/results-1g.json" 2>/dev/null; then
		run pipeline "safetensors-gpu:mode=pipeline" "$D1" warm,cold 40 --no-calibrate
	fi
fi

# --- compatibility with the newer libraries found here ------------------------------------
compat() {
	[ -n "$PY" ] || { echo "no python3: compat skipped"; return 0; }
	"$PY" - "$BIN" "$DATA/$DC" "$OUT/compat-work" <<'PYEOF'
import json, os, struct, subprocess, sys
ckpt, ds, work = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(work, exist_ok=True)
try:
    import torch
except Exception as e:
    print("no torch here (%s): compat skipped" % e); sys.exit(0)
try:
    import xxhash
except Exception:
    xxhash = None
print("torch", torch.__version__, "xxhash", "yes" if xxhash else "no (bytes compared through convert)")
NAMES = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32", torch.float64: "F64",
         torch.int8: "I8", torch.uint8: "U8", torch.int16: "I16", torch.int32: "I32",
         torch.int64: "I64", torch.bool: "BOOL"}
for attr, n in [("float8_e4m3fn", "F8_E4M3"), ("float8_e5m2", "F8_E5M2"), ("uint16", "U16"),
                ("uint32", "U32"), ("uint64", "U64")]:
    if hasattr(torch, attr):
        NAMES[getattr(torch, attr)] = n
fails = 0
def raw(t):
    t = t.contiguous()
    return t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
def inspect(path):
    r = subprocess.run([ckpt, "inspect", "--json", path], capture_output=True, text=True)
    if r.returncode:
        return None, r.stderr.strip()
    return {t["name"]: t for t in json.loads(r.stdout)["tensors"]}, ""
def st_bytes(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n)); base = 8 + n
        out = {}
        for k, v in hdr.items():
            if k == "__metadata__": continue
            f.seek(base + v["data_offsets"][0]); out[k] = f.read(v["data_offsets"][1] - v["data_offsets"][0])
        return out
def check(label, path, tensors):
    global fails
    got, why = inspect(path)
    if got is None:
        print("FAIL %s: inspect refused: %s" % (label, why)); fails += 1; return
    conv = None
    if not xxhash:
        cpath = os.path.join(work, label + ".conv.safetensors")
        subprocess.run([ckpt, "convert", path, cpath], check=False, capture_output=True)
        conv = st_bytes(cpath) if os.path.exists(cpath) else {}
    bad = []
    for name, t in tensors.items():
        g = got.get(name)
        if g is None or g["dtype"] != NAMES.get(t.dtype) or g["shape"] != list(t.shape):
            bad.append("%s: %s vs %s %s" % (name, g and (g["dtype"], g["shape"]), NAMES.get(t.dtype), list(t.shape))); continue
        if xxhash:
            if g["xxh3"] != "%016x" % xxhash.xxh3_64_intdigest(raw(t)): bad.append(name + ": xxh3")
        elif conv.get(name) != raw(t):
            bad.append(name + ": bytes")
    print("%s %s: %d tensors%s" % ("ok  " if not bad else "FAIL", label, len(tensors), "; " + "; ".join(bad[:5]) if bad else ""))
    fails += bool(bad)
# 1. torch.save of this torch (2.x records: .format_version, byteorder,
#    float8 and uint16 through _rebuild_tensor_v3).
g = torch.Generator().manual_seed(0)
sd = {"f16": torch.randn(33, 17, generator=g).half(), "bf16": torch.randn(64, generator=g).bfloat16(),
      "f32.view": torch.randn(8, 10, generator=g)[:, 2:7], "i64": torch.arange(7)}
for attr in ("float8_e4m3fn", "float8_e5m2"):
    if hasattr(torch, attr): sd[attr] = torch.randn(5, 7, generator=g).to(getattr(torch, attr))
if hasattr(torch, "uint16"):
    try: sd["u16"] = torch.arange(0, 60000, 997, dtype=torch.int32).to(torch.uint16)
    except Exception as e: print("uint16 not constructible here:", e)
p = os.path.join(work, "torch2.pt"); torch.save(sd, p)
import zipfile
names = zipfile.ZipFile(p).namelist()
print("records:", ", ".join(sorted(n.split("/", 1)[1] for n in names if not n.split("/", 1)[1].startswith("data/"))))
check("torch.save", p, sd)
# 2. safetensors.torch.save_file.
try:
    from safetensors.torch import save_file, load_file
except Exception as e:
    save_file = load_file = None; print("no safetensors package (%s)" % e)
if save_file:
    st = {k: v.contiguous() for k, v in sd.items() if k != "u16" or hasattr(torch, "uint16")}
    try:
        p2 = os.path.join(work, "st.safetensors"); save_file(st, p2); check("safetensors.save_file", p2, st)
    except Exception as e:
        print("FAIL safetensors.save_file: %s" % e); fails += 1
# 3. ckptbench's files load in them, with the manifest's names, dtypes, shapes
#    (and XXH3 when xxhash is here; else the two libraries' bytes agree).
man = {t["name"]: t for t in json.load(open(os.path.join(ds, "manifest.json")))["tensors"]}
loaded = {}
try:
    loaded["torch.load"] = torch.load(os.path.join(ds, "model.pt"), weights_only=True, map_location="cpu")
except Exception as e:
    print("FAIL torch.load of ckptbench's model.pt: %s" % e); fails += 1
if load_file:
    try: loaded["safetensors.load_file"] = load_file(os.path.join(ds, "model.safetensors"))
    except Exception as e: print("FAIL load_file of ckptbench's file: %s" % e); fails += 1
for lib, d in loaded.items():
    bad = [k for k, m in man.items() if k not in d or NAMES.get(d[k].dtype) != m["dtype"] or list(d[k].shape) != m["shape"]
           or (xxhash and "%016x" % xxhash.xxh3_64_intdigest(raw(d[k])) != m["xxh3"])]
    print("%s %s reads ckptbench's file: %d tensors%s" % ("ok  " if not bad and len(d) == len(man) else "FAIL", lib, len(d), "; bad: " + ", ".join(bad[:5]) if bad else ""))
    fails += bool(bad) or len(d) != len(man)
if len(loaded) == 2:
    a, b = loaded.values()
    same = all(torch.equal(a[k], b[k]) for k in man)
    print("%s torch.load and load_file agree on every tensor" % ("ok  " if same else "FAIL")); fails += not same
sys.exit(1 if fails else 0)
PYEOF
}
export -f compat
export BIN PY DATA DC OUT
step compat 20 bash -c compat > "$OUT/compat.txt" 2>&1
cat "$OUT/compat.txt"
rm -rf "$OUT/compat-work"

# --- the CPU loaders on this machine, with what time is left ---------------------------
# The CPU loaders measured on a second machine (many cores, no memory
# balloon): its own calibration, the C loaders only (no libtorch module or
# Python torch is carried here).
run cpu "safetensors-read,safetensors-mmap,pickle,pickle-mmap" "$D2,$D1" cold,warm 90 \
	--device cpu --warmup 0

# --- the summary --------------------------------------------------------------------
summarize() {
	note ""
	note "## tables"
	for t in "$OUT"/table-*.txt; do
		[ -f "$t" ] || continue
		note ""
		note "### $(basename "$t" .txt)"
		note '```'
		cat "$t" >> "$SUMMARY"
		note '```'
	done
	note ""
	note "## compat"
	note '```'
	cat "$OUT/compat.txt" >> "$SUMMARY" 2>/dev/null
	note '```'
	[ -n "$PY" ] || return 0
	note ""
	note "## targets"
	"$PY" - "$OUT" >> "$SUMMARY" 2>&1 <<'PYEOF'
import glob, json, os, sys
out = sys.argv[1]
# Cells are labelled by loader and the options that differ from its
# defaults, as the run's table names them.
defaults = {}
try:
    for l in json.load(open(os.path.join(out, "loaders.json"))):
        defaults[l["name"]] = {o["name"]: str(o["default"]).lower() for o in l.get("options") or []}
except Exception:
    pass
def norm(v):
    v = str(v).lower()
    return {"true": "1", "false": "0"}.get(v, v)
def label(c):
    d = defaults.get(c["loader"], {})
    extra = ["%s=%s" % (k, v if not isinstance(v, bool) else int(v))
             for k, v in sorted((c.get("options") or {}).items()) if norm(v) != norm(d.get(k, v))]
    return ":".join([c["loader"]] + extra)
cells, cal = {}, {}
for f in sorted(glob.glob(os.path.join(out, "results-*.json"))):
    try: d = json.load(open(f))
    except Exception as e: print("- %s unreadable: %s" % (os.path.basename(f), e)); continue
    cal = d.get("calibration") or cal
    run = os.path.basename(f)[len("results-"):-len(".json")]
    for c in d.get("cells", []):
        lab = label(c) + ("" if run in ("1g", "8g", "8g-warm") else "@" + run)
        cells[(lab, c["dataset"], c["cache"])] = c
def summ(l, ds, cache):
    c = cells.get((l, ds, cache)); return (c or {}).get("summary") or {}, c
h2d = cal.get("h2d_gbps"); cold = cal.get("cold_read_gbps")
print("- calibration: h2d %s GB/s, cold read %s GB/s (O_DIRECT %s), warm read %s GB/s"
      % (h2d, cold, cal.get("cold_read_direct_gbps"), cal.get("warm_read_gbps")))
print("- whole: model bytes / median wall (init included: cudaMalloc, pinned ring); load: / (median - init)")
for (l, ds, cache), c in sorted(cells.items()):
    if not l.startswith("safetensors-gpu") or "naive" in l: continue
    s, _ = summ(l, ds, cache)
    m = s.get("median_s")
    if not m: print("- %s %s %s: %s %s" % (l, ds, cache, c.get("status"), c.get("reason") or "")); continue
    whole = c["model_bytes"] / m / 1e9
    load = s.get("load_gbps")
    ceil = h2d if cache == "warm" else (min(h2d, cold) if h2d and cold else None)
    pct = lambda g: "%.0f%%" % (g / ceil * 100) if ceil and g else "?"
    trials = [t for t in c.get("trials", []) if t.get("outcome") == "ok"]
    vram = max([t.get("vram_alloc_peak_bytes") or 0 for t in trials] or [0])
    pinned = max([t.get("pinned_bytes") or 0 for t in trials] or [0])
    rss = max([(t.get("peak_rss_bytes") or 0) - (t.get("baseline_rss_bytes") or 0) for t in trials] or [0])
    modes = sorted({t.get("mode", "?") for t in trials})
    print("- %s %s %s: whole %.2f GB/s = %s, load %s GB/s = %s of the ceiling %s (target >= 80%%); "
          "VRAM alloc peak %.4f x model (target <= 1.01); host RSS growth %.0f MiB vs pinned %.0f MiB + 64; mode: %s"
          % (l, ds, cache, whole, pct(whole), "%.2f" % load if load else "?", pct(load), ceil,
             vram / c["model_bytes"], rss / 2**20, pinned / 2**20, "; ".join(modes)))
for (l, ds, cache) in sorted(cells):
    if not l.startswith("safetensors-gpu") or "naive" in l or cache != "warm": continue
    m = summ(l, ds, cache)[0].get("median_s")
    for other in ("safetensors-gpu-naive", "safetensors-py-gpu", "safetensors-py"):
        mo = summ(other, ds, cache)[0].get("median_s")
        if m and mo:
            print("- %s warm: %s %.2fx faster than %s (target >= 3x)" % (ds, l, mo / m, other))
PYEOF
}
summarize
# One archive of everything but the log (still being written), then only
# it, the summary and the log left.
packed=$(cd "$OUT" && find . -maxdepth 1 -type f ! -name gpu-check.log ! -name 'all.tar.gz*' |
	sort)
if [ -n "$packed" ] && (cd "$OUT" && tar -czf all.tar.gz.part $packed); then
	mv "$OUT/all.tar.gz.part" "$OUT/all.tar.gz"
	(cd "$OUT" && rm -f $(echo "$packed" | grep -v -x ./summary.md))
else
	rm -f "$OUT/all.tar.gz.part"
fi
say "done in $(elapsed)s; results in $OUT"
