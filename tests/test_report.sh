#!/usr/bin/env bash
# ckptbench report: every number in the tables equals the results file's,
# failed and skipped cells are rows with their reason, the observations are
# computed from the data, the charts are embedded (Markdown links to files
# that exist; HTML with the SVGs inline and nothing external).
. "$(dirname "$0")/cli/lib.sh"
data=$CKPTBENCH_SOURCE/tests/data/results

md=$CB_TMP/w/report.md
expect_status 0 "$CKPTBENCH" report -o "$md" "$data/cpu-cold.json" "$data/cpu-warm.json"
grep -qx "$md" "$CB_TMP/out" && pass || fail "report path not printed"
"$PY" - "$md" "$data/cpu-cold.json" "$data/cpu-warm.json" <<'PYEOF' && pass || fail "report numbers"
import json, os, re, sys
md = open(sys.argv[1], encoding="utf-8").read()
cells = [c for p in sys.argv[2:] for c in json.load(open(p))["cells"]]
def size(b):
    for u in ("B", "KiB", "MiB", "GiB"):
        if b < 1024: return "%.3g %s" % (b, u)
        b /= 1024
    return "%.3g TiB" % b
tables = {}
for cache in ("cold", "warm"):
    sec = md.split("## Results: %s cache" % cache)[1].split("\n## ")[0]
    rows = [[x.strip() for x in l.strip("|").split(" | ")]
            for l in sec.splitlines()
            if l.startswith("| ") and not l.startswith(("| loader", "| ---"))]
    tables[cache] = {(r[0], r[1]): r for r in rows}
for c in cells:
    r = tables[c["cache"]].pop((c["loader"], c["dataset"]))
    assert r[2] == size(c["model_bytes"]), r
    if c["status"] != "ok":
        assert r[3] == "–" and r[8] == "%s: %s" % (c["status"], c["reason"]), r
        continue
    s = c["summary"]
    assert r[3] == "%.4g s" % s["median_s"], (r, s)
    assert r[4] == "%.4g – %.4g s" % tuple(s["ci95_s"]), r
    ceil = {"cold_read_gbps": "cold-read", "warm_read_gbps": "warm-read"}[s["ceiling"]]
    ceil += " of its files" if s.get("ceiling_source") == "paired" else ""
    if s.get("load_gbps") is not None:
        # The load after the model is built, the whole time in brackets.
        assert r[5] == "%.2f" % s["load_gbps"], r
        assert r[6] == "%.0f%% of %s (whole time: %.0f%%)" % (
            s["load_ceiling_fraction"] * 100, ceil, s["ceiling_fraction"] * 100), r
    else:   # a results file from before the load figures
        assert r[5] == "%.2f" % s["gbps"], r
        assert r[6] == "%.0f%% of %s" % (s["ceiling_fraction"] * 100, ceil), r
    assert r[7] == "%.2f× (anon %.2f×, file %.2f×)" % (
        s["peak_rss_over_model"], s["peak_anon_over_model"], s["peak_file_over_model"]), r
    assert r[8] == "ok (%d/%d trials)" % (len(c["trials"]), len(c["trials"])), r
assert not any(tables.values()), tables   # no row the files do not hold
# Calibration, as measured.
cal = json.load(open(sys.argv[2]))["calibration"]
assert "| cold read (from the disk) | %.2f |" % cal["cold_read_gbps"] in md
assert "| host to device (H2D) | not measured |" in md
# Observations: the memory sentence at the size most loaders reached.
obs = md.split("## Observations")[1].split("\n## ")[0]
ok = {(c["loader"], c["model_bytes"], c["cache"]): c["summary"] for c in cells if c["status"] == "ok"}
m = re.search(r"At 256 MiB \(cold cache\), (\S+) peaked at ([\d.]+)× the model's size", obs)
top = max((s["peak_rss_over_model"], l) for (l, b, k), s in ok.items() if b == 256 << 20 and k == "cold")
assert m and (m.group(1), float(m.group(2))) == (top[1], round(top[0], 2)), (m and m.groups(), top)
assert "safetensors-read at %.2f×" % ok[("safetensors-read", 256 << 20, "cold")]["peak_rss_over_model"] in obs
fast = min((s["median_s"], l) for (l, b, k), s in ok.items() if b == 256 << 20 and k == "warm")
assert "With a warm cache, at 256 MiB, %s was fastest (median %.4g s" % (fast[1], fast[0]) in obs, obs
assert "pickle failed at 1 GiB, warm cache: oom: killed by the kernel's OOM killer" in obs
assert "torch-load was skipped at 1 GiB, cold cache: needs 2x the model" in obs
# Machine from the results' machine.
assert "- CPU: AMD EPYC 7B13 (x86\\_64), 1 package(s), 2 cores" in md
# Charts linked, and there.
links = re.findall(r"\]\(([^)]+\.(?:png|svg))\)", md)
assert len(links) == 8, links
for l in links:
    assert os.path.getsize(os.path.join(os.path.dirname(sys.argv[1]), l)) > 1000, l
PYEOF

# A run held against paired ceilings (the dataset's own files read between
# the trials): the calibration lists each paired read, and the cells say
# their ceiling was their files'.
"$PY" - "$data/cpu-cold.json" "$CB_TMP/w/paired.json" <<'PYEOF' || fail "making the paired results"
import json, sys
doc = json.load(open(sys.argv[1]))
cell = next(c for c in doc["cells"] if c["loader"] == "safetensors-read" and c["status"] == "ok")
doc["calibration"]["paired_reads"] = [{
    "dataset": cell["dataset"], "format": "safetensors", "cache": "cold",
    "file_bytes": cell["model_bytes"] + 4096, "threads": 2, "one_thread_gbps": [3.25],
    "all_threads_gbps": [3.5], "read_gbps": 3.5, "read_best_gbps": 3.5, "note": None}]
cell["summary"]["ceiling_source"] = "paired"
cell["summary"].update(load_gbps=3.25, load_ceiling_fraction=0.9286,
                       best_load_ceiling_fraction=1.0571)
json.dump(doc, open(sys.argv[2], "w"))
PYEOF
expect_status 0 "$CKPTBENCH" report --no-charts -o "$CB_TMP/w/paired.md" "$CB_TMP/w/paired.json"
"$PY" - "$CB_TMP/w/paired.md" "$CB_TMP/w/paired.json" <<'PYEOF' && pass || fail "paired ceilings in the report"
import json, sys
md = open(sys.argv[1], encoding="utf-8").read()
doc = json.load(open(sys.argv[2]))
e = doc["calibration"]["paired_reads"][0]
assert "the paired ceilings" in md, md
assert "| cold read of %s (safetensors, " % e["dataset"] in md and "between the trials | 3.50 |" in md, md
cell = next(c for c in doc["cells"] if c["summary"] and c["summary"].get("ceiling_source") == "paired")
row = next(l for l in md.splitlines() if l.startswith("| safetensors-read | %s |" % cell["dataset"]))
assert "| 93% of cold-read of its files (whole time: " in row and "%; fastest: 106%) |" in row, row
assert "ceiling too low" not in md, md
PYEOF

# A cell above 105% of its ceiling is marked, and the table says how many.
"$PY" - "$CB_TMP/w/paired.json" "$CB_TMP/w/over.json" <<'PYEOF'
import json, sys
doc = json.load(open(sys.argv[1]))
cell = next(c for c in doc["cells"] if c["summary"] and c["summary"].get("ceiling_source") == "paired")
cell["summary"].update(load_gbps=4.2, load_ceiling_fraction=1.2, ceiling_exceeded=True)
json.dump(doc, open(sys.argv[2], "w"))
PYEOF
expect_status 0 "$CKPTBENCH" report --no-charts -o "$CB_TMP/w/over.md" "$CB_TMP/w/over.json"
"$PY" - "$CB_TMP/w/over.md" <<'PYEOF' && pass || fail "a cell above its ceiling in the report"
import sys
md = open(sys.argv[1], encoding="utf-8").read()
row = next(l for l in md.splitlines() if l.startswith("| safetensors-read |") and "120% of" in l)
assert "; ceiling too low) |" in row or "; ceiling too low |" in row, row
assert '1 cell(s) above 105% of their ceiling, marked "ceiling too low"' in md, md
PYEOF

# HTML: one page, the SVG charts inline, nothing fetched from elsewhere.
html=$CB_TMP/w/report.html
expect_status 0 "$CKPTBENCH" report --format html -o "$html" "$data/gpu.json"
"$PY" - "$html" <<'PYEOF' && pass || fail "HTML report"
import re, sys
h = open(sys.argv[1], encoding="utf-8").read()
assert h.startswith("<!DOCTYPE html>") and h.rstrip().endswith("</html>")
assert h.count("<svg") == 5, h.count("<svg")   # memory time throughput timeline vram
assert "<img" not in h and "src=" not in h and "<?xml" not in h
ids = re.findall(r"id=['\"]([^'\"]+)['\"]", h)
assert len(ids) == len(set(ids)), "ids repeat across charts"
assert "<td>safetensors-gpu</td>" in h and "<td>cuda:0</td>" in h
assert "peak VRAM above baseline: " in h
PYEOF

# Without gnuplot: a clear error, unless the charts are left out.
expect_status 3 env PATH=/nonexistent "$CKPTBENCH" report -o "$CB_TMP/n.md" "$data/cpu-cold.json"
expect_stderr_line "gnuplot: not found in PATH; install it (Debian: apt-get install gnuplot-nox)"
expect_status 0 env PATH=/nonexistent "$CKPTBENCH" report --no-charts -o "$CB_TMP/n.md" "$data/cpu-cold.json"
grep -q "## Charts" "$CB_TMP/n.md" && fail "--no-charts still has charts" || pass
expect_status 2 "$CKPTBENCH" report --format pdf "$data/cpu-cold.json"
expect_status 1 "$CKPTBENCH" report -o "$CB_TMP/x.md" "$CB_TMP/missing.json"
expect_stderr_line "missing.json"
finish
