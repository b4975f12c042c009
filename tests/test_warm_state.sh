#!/bin/bash
# The warm cache is one defined state (bench/harness/cache.h, cb_cache_warm;
# docs/datasets-and-method.md §5.3): a dataset copied afresh with `cp` and
# then read (its pages in the small folios the writes left) and the same
# bytes after cold cycles end up alike once the harness has prepared them
# warm. Both run through `ckptbench run --cache warm` with the mapping
# loader that faults pages in as they come (safetensors-mmap:populate-read=0,
# whose cost follows the folios), and the trials must agree:
#   - the recorded cache_state: every byte resident; the folio sizes
#     (folio_kib, where the kernel tells them) printed side by side (which
#     sizes readahead gets is not all the harness's: a large folio may fail
#     to allocate on a busy machine);
#   - the faults each trial took (major + minor, from wait4): within 25%;
#     timings on a shared 2-core VM are too noisy to assert on, so they are
#     printed, and the faults (a real outcome of the state) are asserted.
# Exit 77 where the scratch directory is in memory by nature (tmpfs).
set -u
bin=${CKPTBENCH:?CKPTBENCH unset}
scratch=${CKPTBENCH_SCRATCH:?CKPTBENCH_SCRATCH unset}
mkdir -p "$scratch"
out=$(mktemp -d "$scratch/warm.XXXXXX")
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

case $(stat -f -c %T "$out") in
tmpfs | ramfs) echo "SKIP: $out is in memory by nature"; exit 77 ;;
esac

orig=$("$bin" gen --preset llama --size 128M --dtype F16 --formats safetensors --quiet \
	-o "$out/data" | sed -n 's/: .*//p')
[ -n "$orig" ] && [ -f "$orig/manifest.json" ] || fail "cannot generate the dataset"
# The copy: written by cp, then read once (the issue's small folios).
copy=$out/copy-of-$(basename "$orig")
mkdir -p "$copy" && cp "$orig"/* "$copy"/ && cat "$copy"/* >/dev/null || fail "cp"
# The original through cold cycles first: evicted and read by cold trials.
"$bin" run --datasets "$orig" --loaders safetensors-read --cache cold --repeat 2 --warmup 0 \
	--no-calibrate --quiet -o "$out/cold.json" >/dev/null || fail "cold cycles exited $?"
"$bin" run --datasets "$orig,$copy" --loaders safetensors-mmap:populate-read=0 --cache warm \
	--repeat 3 --warmup 0 --no-calibrate --quiet -o "$out/warm.json" >/dev/null ||
	fail "warm run exited $?"

/usr/bin/python3 - "$out/warm.json" <<'PYEOF' || fail "the two warm states differ"
import json, statistics, sys
doc = json.load(open(sys.argv[1]))
cells = [c for c in doc["cells"] if c["cache"] == "warm"]
assert len(cells) == 2, [c["dataset"] for c in cells]
ok = True
folios, faults, walls = [], [], []
for c in cells:
    ts = c["trials"]
    assert ts and all(t["outcome"] == "ok" for t in ts), [(t["outcome"], t["message"]) for t in ts]
    st = [t["cache_state"] for t in ts]
    for s in st:
        if s is None or s["resident"] < 0.99:
            print("FAIL: %s: cache_state %r" % (c["dataset"], s)); ok = False
    known = [s for s in st if s and s["folio_kib"] is not None]
    # bytes per folio size, as shares of the cached bytes
    def shares(s):
        b = {k: int(k) * v for k, v in s["folio_kib"].items()}
        total = sum(b.values()) or 1
        return {k: v / total for k, v in b.items()}
    folios.append(shares(known[0]) if known else None)
    faults.append(statistics.median(t["major_faults"] + t["minor_faults"] for t in ts))
    walls.append(statistics.median(t["wall_s"] for t in ts))
    print("%-40s folios %s, faults %d, wall %.4f s (%s)" % (
        c["dataset"], known[0]["folio_kib"] if known else "unknown: " + str(st[0]["note"]),
        faults[-1], walls[-1], st[0]["method"]))
if folios[0] is not None and folios[1] is not None:
    keys = set(folios[0]) | set(folios[1])
    dist = sum(abs(folios[0].get(k, 0) - folios[1].get(k, 0)) for k in keys)
    # Informative: readahead's large folios can fail to allocate on a busy
    # machine, so the sizes are printed; the faults below are asserted.
    print("folio share distance %.3f (0: the same sizes)" % dist)
lo, hi = sorted(faults)
if hi > 1.25 * lo:
    print("FAIL: faults %d vs %d: more than 25%% apart" % (lo, hi)); ok = False
print("wall medians %.4f and %.4f s (ratio %.2f; informative)" % (walls[0], walls[1],
      max(walls) / min(walls)))
sys.exit(0 if ok else 1)
PYEOF
echo "ok: warm state"
