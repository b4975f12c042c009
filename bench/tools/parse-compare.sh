#!/usr/bin/env bash
# parse-compare.sh [--tensors N] [--repeat N] [--keep DIR]: our .pt parse
# against torch.load's, measured on the same real torch.save file.
#
# Why: "our parse of a 20,000-tensor pickle is at least 10x faster than
# torch's" is a claim about this machine and the real torch, so it is
# measured here rather than asserted by a timed unit test. The script
#   1. writes, with Debian's torch (/usr/bin/python3; the python3 on PATH may
#      be another one without torch), a state dict of N small tensors of
#      mixed shapes and dtypes (as a model's many small parameters) with
#      torch.save;
#   2. times torch.load of it in one Python process after `import torch`,
#      warm cache, one warm-up then --repeat runs, median: the default
#      torch.load and torch.load(weights_only=True) (the restricted
#      unpickler, closest to ours);
#   3. runs ckptbench-parsebench on the same file: the same warm, in-process
#      repetitions of what the pickle loader does before reading tensor data;
#   4. prints a table and, last, one line
#      parse-compare: ours X ms, torch.load Y ms (weights_only Z ms): R.Rx
#      where R is torch.load's median over ours (the faster torch mode, so
#      the harder comparison for us).
# What differs, so the figures are read fairly: torch.load also reads each
# storage's bytes (N tiny records here, a few bytes each) and builds Python
# tensor objects; ours stops at the storage records, as the pickle loader
# does before its read phase.
#
# Exit status: 0 when it ran, whether or not 10x was reached (it reports,
# it does not judge); 2 usage error; 3 no torch importable by
# /usr/bin/python3; 1 any other failure. CKPTBENCH_BUILD is the build
# directory (default build, relative to the repository root);
# CKPTBENCH_PARSEBENCH overrides the program's path.
set -euo pipefail

usage() {
	echo "usage: bench/tools/parse-compare.sh [--tensors N] [--repeat N] [--keep DIR]" >&2
	exit 2
}

tensors=20000 repeat=20 keep=
while [ $# -gt 0 ]; do
	case $1 in
	--tensors) [ $# -ge 2 ] || usage; tensors=$2; shift 2 ;;
	--repeat) [ $# -ge 2 ] || usage; repeat=$2; shift 2 ;;
	--keep) [ $# -ge 2 ] || usage; keep=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) usage ;;
	esac
done
[[ $tensors =~ ^[1-9][0-9]*$ ]] || { echo "parse-compare: --tensors takes a positive integer" >&2; exit 2; }
[[ $repeat =~ ^[1-9][0-9]*$ ]] || { echo "parse-compare: --repeat takes a positive integer" >&2; exit 2; }

# --keep DIR is taken relative to where the script was called from.
[ -z "$keep" ] || keep=$(mkdir -p "$keep" && cd "$keep" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${CKPTBENCH_BUILD:-build}
parsebench=${CKPTBENCH_PARSEBENCH:-$build/bench/tools/ckptbench-parsebench}
PY=/usr/bin/python3

if ! "$PY" -c 'import torch' 2>/dev/null; then
	echo "parse-compare: torch is not importable by $PY (Debian's python3-torch): nothing measured" >&2
	exit 3
fi
[ -x "$parsebench" ] || {
	echo "parse-compare: $parsebench: not built (ninja -C $build bench/tools/ckptbench-parsebench)" >&2
	exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/ckptbench-parse.XXXXXX")
trap 'rm -rf "$work"' EXIT
dir=${keep:-$work}
ckpt=$dir/parse-$tensors.pt

# 1. The checkpoint: a repeating group of parameters of a transformer block
# (square and rectangular weights, biases, norms in F32, an I64 counter),
# named layers.<block>.<param>, seeded so every run writes the same file.
"$PY" - "$tensors" "$ckpt" <<'PYEOF'
import sys
import torch

n, path = int(sys.argv[1]), sys.argv[2]
torch.manual_seed(0)
group = [("attn.weight", (8, 8), torch.float16), ("attn.bias", (8,), torch.float16),
         ("mlp.weight", (4, 16), torch.bfloat16), ("norm.weight", (4,), torch.float32),
         ("num_batches_tracked", (), torch.int64)]
sd = {}
for i in range(n):
    name, shape, dtype = group[i % len(group)]
    t = torch.randn(shape).to(dtype) if dtype.is_floating_point else torch.zeros(shape, dtype=dtype)
    sd[f"layers.{i // len(group)}.{name}"] = t
torch.save(sd, path)
PYEOF

# 2. torch.load, both modes, in one process: import cost excluded, a warm-up
# first (page cache, allocator), `del` inside the timed region so each run
# also pays for freeing its result, as ours does.
"$PY" - "$ckpt" "$repeat" >"$work/torch.json" <<'PYEOF'
import inspect
import json
import statistics
import sys
import time
import torch

path, repeat = sys.argv[1], int(sys.argv[2])

def bench(**kw):
    sd = torch.load(path, **kw)
    n = len(sd)
    del sd
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sd = torch.load(path, **kw)
        del sd
        times.append(time.perf_counter() - t0)
    return {"tensors": n, "median_s": statistics.median(times), "min_s": min(times)}

out = {"torch": torch.__version__, "default": bench(), "weights_only": None}
if "weights_only" in inspect.signature(torch.load).parameters:
    out["weights_only"] = bench(weights_only=True)
print(json.dumps(out))
PYEOF

# 3. Ours on the same file, now certainly in the page cache.
"$parsebench" --repeat "$repeat" "$ckpt" >"$work/ours.json"

# 4. The table and the last line.
"$PY" - "$work/ours.json" "$work/torch.json" "$tensors" "$ckpt" "$(nproc)" <<'PYEOF'
import json
import os
import platform
import sys

ours = json.load(open(sys.argv[1]))
torch = json.load(open(sys.argv[2]))
want, path, cpus = int(sys.argv[3]), sys.argv[4], sys.argv[5]
for who, n in (("ckptbench-parsebench", ours["tensors"]), ("torch.load", torch["default"]["tensors"])):
    if n != want:
        sys.exit(f"parse-compare: {who} found {n} tensors in {path}, not {want}")

def ms(s):
    return f"{s * 1e3:.1f} ms"

cpu = platform.processor() or platform.machine()
try:
    with open("/proc/cpuinfo") as f:
        cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
except (OSError, StopIteration):
    pass
print(f"parse-compare: {want} tensors ({os.path.getsize(path) / 2**20:.1f} MiB), "
      f"{ours['repeat']} runs each after a warm-up, warm cache; torch {torch['torch']}, "
      f"{cpus} CPUs ({cpu})")
rows = [("ours (ckptbench-parsebench)", ours, None),
        ("torch.load", torch["default"], torch["default"]["median_s"] / ours["median_s"])]
wo = torch["weights_only"]
if wo:
    rows.append(("torch.load(weights_only=True)", wo, wo["median_s"] / ours["median_s"]))
print(f"  {'':31} {'median':>10} {'min':>10} {'torch/ours':>11}")
for name, r, ratio in rows:
    print(f"  {name:31} {ms(r['median_s']):>10} {ms(r['min_s']):>10} "
          f"{'' if ratio is None else f'{ratio:.1f}x':>11}")
met = [f"{name} {ratio:.1f}x: {'met' if ratio >= 10 else 'MISSED'}"
       for name, _, ratio in rows[1:]]
print("  10x target: " + "; ".join(met))
wo_text = f"weights_only {ms(wo['median_s'])}" if wo else "weights_only not supported"
print(f"parse-compare: ours {ms(ours['median_s'])}, torch.load {ms(torch['default']['median_s'])} "
      f"({wo_text}): {rows[1][2]:.1f}x")
PYEOF
