#!/usr/bin/env bash
# ckptbench plot: every chart from the committed results files, PNGs of the
# promised size, SVGs naming each loader and the reference lines, failed
# and skipped cells marked, the templates usable alone, and a clear error
# when gnuplot is missing.
. "$(dirname "$0")/cli/lib.sh"
data=$CKPTBENCH_SOURCE/tests/data/results
plots=$CKPTBENCH_SOURCE/plots

# png_size FILE: "WIDTHxHEIGHT" from the IHDR chunk (bytes 16-23).
png_size() {
	"$PY" -c 'import struct,sys
b=open(sys.argv[1],"rb").read(24)
assert b[:8]==b"\x89PNG\r\n\x1a\n" and b[12:16]==b"IHDR", "not a PNG"
print("%dx%d" % struct.unpack(">II", b[16:24]))' "$1" 2>/dev/null
}

expect_png() { # FILE WxH
	local got
	got=$(png_size "$1")
	[ "$got" = "$2" ] && pass || fail "$1: PNG size '$got', wanted $2"
}

expect_in() { # FILE TEXT...
	local f=$1 t
	shift
	for t in "$@"; do
		grep -qF -- "$t" "$f" && pass || fail "$(basename "$f") lacks '$t'"
	done
}

# Two CPU runs (cold with --timeline, warm) merged.
out=$CB_TMP/cpu
expect_status 0 "$CKPTBENCH" plot -o "$out" "$data/cpu-cold.json" "$data/cpu-warm.json"
for c in memory time throughput timeline; do
	for ext in png svg; do
		grep -qx "$out/$c.$ext" "$CB_TMP/out" && pass || fail "$c.$ext not listed"
		[ -s "$out/$c.$ext" ] && pass || fail "$c.$ext not written"
	done
done
[ -e "$out/vram.png" ] && fail "vram chart without GPU cells" || pass
expect_png "$out/memory.png" 2000x1250
expect_png "$out/time.png" 2400x1250
expect_png "$out/throughput.png" 2400x1250
expect_png "$out/timeline.png" 2000x1560 # 360 + 300 per loader, 4 loaders
loaders=(safetensors-read safetensors-mmap pickle torch-load)
for c in memory time throughput timeline; do
	expect_in "$out/$c.svg" "${loaders[@]}" "AMD EPYC 7B13, 2 cores" "2026-11-26"
done
# The reference lines and the ceilings, labelled.
expect_in "$out/memory.svg" "(one copy)" "(the doubling)" "model size"
expect_in "$out/throughput.svg" "cold read 2.1 GB/s" "warm read 20.5 GB/s" "memcpy (1 thread) 9.8 GB/s"
# Failed and skipped cells are marked, not dropped.
expect_in "$out/memory.svg" "torch-load skipped"
expect_in "$out/time.svg" "pickle failed (oom)" "torch-load skipped"
expect_in "$out/throughput.svg" "pickle failed (oom)"
expect_in "$out/timeline.svg" "init" "read" "copy" "anonymous (private copy)" "file-backed (page cache)"
# The bars carry the figures of the results file.
expect_in "$out/memory.svg" "2.04×" "1.01×" "1.00×"
# Data files: pickle's bar at 1 GiB is the cell's summary.
"$PY" - "$data/cpu-cold.json" "$out/data/memory.dat" <<'PYEOF' && pass || fail "memory.dat figures"
import json, sys
doc = json.load(open(sys.argv[1]))
want = {(c["loader"], c["model_bytes"]): c["summary"]["peak_rss_over_model"]
        for c in doc["cells"] if c["status"] == "ok"}
blocks = [b for b in open(sys.argv[2]).read().split("\n\n\n")]
rows = [l.split() for b in blocks for l in b.splitlines() if l and not l.startswith("#")]
got = sorted(float(r[3]) for r in rows)
assert got == sorted(want.values()), (got, sorted(want.values()))
PYEOF

# Read ceilings measured at more than one file size (the last file's
# calibration is the one drawn): a curve, its points sorted by size; with
# one size (above), no curve.
grep -q 'read ceiling at each file size' "$CB_TMP/cpu/throughput.svg" &&
	fail "a curve of one ceiling was drawn" || pass
"$PY" - "$data/cpu-warm.json" "$CB_TMP/sized.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["calibration"]["by_size"] = [
    {"file_bytes": 512 << 20, "cold_read_gbps": 1.7, "warm_read_gbps": 15.5},
    {"file_bytes": 64 << 20, "cold_read_gbps": 1.1, "warm_read_gbps": 9.25}]
json.dump(d, open(sys.argv[2], "w"))
PYEOF
out=$CB_TMP/sized
expect_status 0 "$CKPTBENCH" plot -o "$out" "$data/cpu-cold.json" "$CB_TMP/sized.json"
expect_in "$out/throughput.svg" "read ceiling at each file size"
"$PY" - "$out/data/throughput-ceil-warm.dat" <<'PYEOF' && pass || fail "the warm ceiling curve: $(cat "$out/data/throughput-ceil-warm.dat")"
import sys
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("#")]
want = [[64 << 20, 9.25], [512 << 20, 15.5]]  # this file's calibration has no file_bytes
assert len(rows) == 2, rows
for (b, g), (wb, wg) in zip(rows, want):
    assert wb is None or int(float(b)) == wb, rows
    assert abs(float(g) - wg) < 1e-6, rows
PYEOF

# Paired ceilings (the datasets' own files read during the run) are the
# curve where the run made them: the safetensors files' reads in the
# panel's cache state, not the pytorch files', the scratch files' or the
# other cache state's.
"$PY" - "$CB_TMP/sized.json" "$CB_TMP/paired.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
def e(fmt, cache, size, gbps):
    return {"dataset": "d%d" % size, "format": fmt, "cache": cache, "file_bytes": size,
            "threads": 2, "one_thread_gbps": [gbps], "all_threads_gbps": [],
            "read_gbps": gbps, "read_best_gbps": gbps, "note": None}
d["calibration"]["paired_reads"] = [
    e("safetensors", "warm", 300 << 20, 12.5), e("pytorch", "warm", 301 << 20, 2.0),
    e("safetensors", "cold", 300 << 20, 3.0), e("safetensors", "warm", 100 << 20, 8.0)]
json.dump(d, open(sys.argv[2], "w"))
PYEOF
out=$CB_TMP/paired
expect_status 0 "$CKPTBENCH" plot -o "$out" "$data/cpu-cold.json" "$CB_TMP/paired.json"
"$PY" - "$out/data/throughput-ceil-warm.dat" <<'PYEOF' && pass || fail "the paired ceiling curve: $(cat "$out/data/throughput-ceil-warm.dat")"
import sys
rows = [[float(x) for x in l.split()] for l in open(sys.argv[1]) if not l.startswith("#")]
assert rows == [[100 << 20, 8.0], [300 << 20, 12.5]], rows
PYEOF

# A GPU run: the VRAM chart, and VRAM in the timeline.
out=$CB_TMP/gpu
expect_status 0 "$CKPTBENCH" plot -o "$out" "$data/gpu.json"
expect_png "$out/vram.png" 2000x1250
expect_png "$out/timeline.png" 2000x1260
expect_in "$out/vram.svg" safetensors-gpu safetensors-gpu-naive pickle-gpu "model size"
expect_in "$out/timeline.svg" VRAM
expect_in "$out/throughput.svg" "host to device 24.6 GB/s"

# Colours are keyed by loader name: the same in both runs.
"$PY" - "$CB_TMP/cpu/data/series.gp" "$CB_TMP/gpu/data/series.gp" <<'PYEOF' && pass || fail "colours differ between runs"
import shlex, sys
def colours(p):
    v = dict(l.split(" = ", 1) for l in open(p) if " = " in l)
    return dict(zip(shlex.split(v["LOADERS"])[0].split(), shlex.split(v["COLORS"])[0].split()))
a, b = colours(sys.argv[1]), colours(sys.argv[2])
assert a["pickle"] == "#D55E00" and a["safetensors-read"] == "#0072B2", a
assert len(set(a.values())) == len(a) and len(set(b.values())) == len(b)
PYEOF

# A comparison, as `compare --format json` writes it (on compare's own
# test files; exit 1: it finds the regression planted there).
expect_status 1 "$CKPTBENCH" compare --format json "$CKPTBENCH_SOURCE/tests/data/compare/base.json" \
	"$CKPTBENCH_SOURCE/tests/data/compare/head-slow.json"
cp "$CB_TMP/out" "$CB_TMP/cmp.json"
out=$CB_TMP/cmp
expect_status 0 "$CKPTBENCH" plot -o "$out" "$CB_TMP/cmp.json"
expect_png "$out/compare.png" 2000x1250
expect_in "$out/compare.svg" regression "safetensors-read llama-64M-F16-s1 cold" "load time (s)"
"$PY" - "$CB_TMP/cmp.json" "$out/data/compare.dat" <<'PYEOF' && pass || fail "compare.dat figures"
import json, sys
cells = json.load(open(sys.argv[1]))["cells"]
rows = [l.split() for l in open(sys.argv[2]) if not l.startswith("#")]
want = [c for c in cells if c.get("base", {}).get("median") is not None
        and c.get("head", {}).get("median") is not None]
assert len(rows) == len(want) > 0, (len(rows), len(want))
for r, c in zip(rows, want):
    assert float(r[1]) == c["base"]["median"] and float(r[4]) == c["head"]["median"], (r, c)
    assert r[8] == '"%s' % c["verdict"], r
PYEOF

# Each template runs alone on the data directory.
expect_status 0 gnuplot -c "$plots/memory.gp" "$CB_TMP/cpu/data" "$CB_TMP/alone"
expect_png "$CB_TMP/alone.png" 2000x1250
expect_status 2 gnuplot -c "$plots/memory.gp"

# gnuplot missing: one line naming the package, exit 3; --data-only still works.
expect_status 3 env PATH=/nonexistent "$CKPTBENCH" plot -o "$CB_TMP/nognu" "$data/cpu-cold.json"
expect_stderr_line "^ckptbench: gnuplot: not found in PATH; install it (Debian: apt-get install gnuplot-nox)$"
expect_status 0 env PATH=/nonexistent "$CKPTBENCH" plot --data-only -o "$CB_TMP/nognu" "$data/cpu-cold.json"
[ -s "$CB_TMP/nognu/data/memory.dat" ] && pass || fail "--data-only wrote no data"

# A loader skipped in every cell (say, a GPU loader on a CPU machine) is left
# out of the charts and counted in the subtitle, not marked cell by cell.
"$PY" - "$data/cpu-cold.json" "$CB_TMP/never.json" <<'PYEOF' && pass || fail "never-run input"
import copy, json, sys
doc = json.load(open(sys.argv[1]))
ghost = copy.deepcopy(doc["cells"][0])
ghost.update(loader="ghost-gpu", status="skipped", reason="no CUDA device", trials=[])
ghost.pop("summary", None)
doc["cells"].append(ghost)
json.dump(doc, open(sys.argv[2], "w"))
PYEOF
expect_status 0 "$CKPTBENCH" plot -o "$CB_TMP/never" "$CB_TMP/never.json"
expect_in "$CB_TMP/never/memory.svg" "1 loader not run here (see the report)"
grep -q "ghost-gpu" "$CB_TMP/never/memory.svg" && fail "a never-run loader was drawn" || pass

# A run with one cache state only: the other panel says so, nothing fails.
expect_status 0 "$CKPTBENCH" plot -o "$CB_TMP/coldonly" "$data/cpu-cold.json"
expect_in "$CB_TMP/coldonly/time.svg" "no warm-cache cells"

# Bad input and usage.
echo '{"schema": "something/9", "cells": []}' >"$CB_TMP/bad.json"
expect_status 1 "$CKPTBENCH" plot -o "$CB_TMP/x" "$CB_TMP/bad.json"
expect_stderr_line "bad.json: not a ckptbench results file"
expect_status 2 "$CKPTBENCH" plot
expect_status 0 "$CKPTBENCH" plot --help
finish
