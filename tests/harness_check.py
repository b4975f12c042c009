#!/usr/bin/python3
"""Checks for tests/test_harness.sh: the results file against docs/results-schema.md
(schema ckptbench/1) and the figures each part of the test expects.

usage: harness_check.py memory|outcomes|cache|interrupt|loaders FILE [ARGS]
Exits 1 with the reason on the first failed check.
"""
import json
import math
import os
import sys

MIB = 1 << 20
OUTCOMES = {"ok", "wrong-bytes", "crash", "timeout", "oom", "over-mem-limit",
            "unsupported", "error"}
TRIAL_KEYS = {
    "outcome": str, "message": str, "wall_s": (float, int, type(None)),
    "phases": (dict, type(None)), "baseline_rss_bytes": int, "peak_rss_bytes": int,
    "peak_anon_bytes": int, "peak_file_bytes": int, "peak_vram_bytes": (int, type(None)),
    "major_faults": int, "minor_faults": int, "read_bytes": (int, type(None)),
    "user_s": (float, int), "sys_s": (float, int),
    "residency_before": (float, int, type(None)), "verified": bool,
}
SUMMARY_KEYS = ["n", "median_s", "min_s", "max_s", "mean_s", "stddev_s", "mad_s", "ci95_s",
                "gbps", "ceiling", "ceiling_fraction", "peak_rss_over_model",
                "peak_anon_over_model", "peak_file_over_model", "peak_vram_over_model",
                "init_median_s", "load_median_s", "load_gbps", "load_ceiling_fraction"]


def check_load_figures(cell):
    """load_median_s is the median of wall_s less the init phase, over the
    ok trials, and load_gbps the model's bytes over it."""
    ok = [t for t in cell["trials"] if t["outcome"] == "ok" and t["wall_s"] is not None]
    if not ok:
        return
    loads = sorted(t["wall_s"] - ((t["phases"] or {}).get("init") or 0) for t in ok)
    mid = len(loads) // 2
    want = loads[mid] if len(loads) % 2 else (loads[mid - 1] + loads[mid]) / 2
    got = cell["summary"]["load_median_s"]
    if got is None or abs(got - want) > 1e-6 * max(1.0, want):
        fail("%s: load_median_s %r, want %r" % (cell["loader"], got, want))
    gbps = cell["summary"]["load_gbps"]
    if abs(gbps - cell["model_bytes"] / want / 1e9) > 1e-6 * gbps:
        fail("%s: load_gbps %r does not match load_median_s" % (cell["loader"], gbps))


def median(v):
    v = sorted(x for x in v if x is not None)
    if not v:
        return None
    k = len(v)
    return v[k // 2] if k % 2 else (v[k // 2 - 1] + v[k // 2]) / 2


def paired_entry(cell, cal):
    for e in cal.get("paired_reads") or []:
        if (e["dataset"], e["format"], e["cache"]) == \
                (cell["dataset"], cell["format"], cell["cache"]):
            return e
    return None


def check_paired_entry(e):
    """read_gbps is the faster method's median, read_best_gbps the fastest
    pass."""
    meds = [m for m in (median(e["one_thread_gbps"]), median(e["all_threads_gbps"]))
            if m is not None]
    passes = [x for x in e["one_thread_gbps"] + e["all_threads_gbps"] if x is not None]
    want = max(meds) if meds else None
    if (want is None) != (e["read_gbps"] is None) or \
            (want is not None and abs(e["read_gbps"] / want - 1) > 1e-6):
        fail("paired read %s/%s/%s: read_gbps %r, want the faster median %r"
             % (e["dataset"], e["format"], e["cache"], e["read_gbps"], want))
    if passes and abs(e["read_best_gbps"] / max(passes) - 1) > 1e-6:
        fail("paired read %s: read_best_gbps %r is not the fastest pass"
             % (e["dataset"], e["read_best_gbps"]))


def check_methods(cell, entry):
    """The cell's ceiling_method is the best median among the methods that
    bound it: the read methods, and map for a zero-copy loader (map alone
    when warm); returns that median."""
    s = cell["summary"]
    zero_copy = cell["loader"] in ("test-mapfile", "safetensors-mmap", "pickle-mmap",
                                   "torch-load-mmap")
    warm = cell["cache"] == "warm"
    meds = {m: median(v) for m, v in entry["methods"].items() if median(v) is not None}
    if entry["methods"].get("pread-1") != entry["one_thread_gbps"]:
        fail("paired read: methods pread-1 %r is not one_thread_gbps %r"
             % (entry["methods"].get("pread-1"), entry["one_thread_gbps"]))
    bounding = {m: v for m, v in meds.items()
                if (zero_copy if m == "map" else not (zero_copy and warm))}
    if not bounding:
        fail("%s %s: no method bounds it: %r" % (cell["loader"], cell["cache"], meds))
        return None
    best = max(bounding, key=bounding.get)
    if s.get("ceiling_method") != best:
        fail("%s %s: ceiling_method %r, want the best %r of %r"
             % (cell["loader"], cell["cache"], s.get("ceiling_method"), best, bounding))
    return bounding[best]


def check_ceiling(cell, cal):
    """The cell is held against the paired read of its own files where the
    run made one, else the read ceiling measured nearest its model's size
    (by ratio): the calibration's own file, or one of "by_size"; its
    load_ceiling_fraction is load_gbps over that ceiling."""
    s = cell["summary"]
    if not isinstance(cal, dict) or s.get("load_gbps") is None:
        return
    key = s["ceiling"]
    model = cell["model_bytes"]
    entry = paired_entry(cell, cal)
    if entry is not None:
        check_paired_entry(entry)
    if entry is not None and entry["read_gbps"]:
        cap = entry["read_gbps"]
        # With the ceiling methods (run_ceiling.c), the best median among
        # the methods that bound the cell: the reads, and map for a
        # zero-copy loader (alone when warm); "methods" holds every pass.
        if entry.get("methods"):
            cap = check_methods(cell, entry)
        if s.get("ceiling_source") != "paired" or cap is None or \
                abs(s.get("ceiling_gbps") / cap - 1) > 1e-6 \
                or s.get("ceiling_file_bytes") != entry["file_bytes"]:
            fail("%s %s: held against %r %r (%r bytes), not its paired read %r"
                 % (cell["loader"], cell["dataset"], s.get("ceiling_source"),
                    s.get("ceiling_gbps"), s.get("ceiling_file_bytes"), cap))
        if abs(s["load_ceiling_fraction"] * cap / s["load_gbps"] - 1) > 1e-6:
            fail("%s %s: load_ceiling_fraction %r is not load_gbps over %r"
                 % (cell["loader"], cell["dataset"], s["load_ceiling_fraction"], cap))
        # Above 105% of its ceiling a cell is marked, not trusted.
        if s.get("ceiling_exceeded") is not (s["load_ceiling_fraction"] > 1.05):
            fail("%s %s: ceiling_exceeded %r with load_ceiling_fraction %r"
                 % (cell["loader"], cell["dataset"], s.get("ceiling_exceeded"),
                    s["load_ceiling_fraction"]))
        # The fastest load against the fastest paired read.
        loads = [t["wall_s"] - ((t.get("phases") or {}).get("init") or 0)
                 for t in cell["trials"] if t["outcome"] == "ok"]
        fastest = entry["read_best_gbps"]
        if entry.get("methods") and s.get("ceiling_method"):  # the method's fastest pass
            fastest = max(x for x in entry["methods"][s["ceiling_method"]] if x is not None)
        want = model / min(loads) / 1e9 / fastest
        if abs(s["best_load_ceiling_fraction"] / want - 1) > 1e-6:
            fail("%s %s: best_load_ceiling_fraction %r, want %r"
                 % (cell["loader"], cell["dataset"], s["best_load_ceiling_fraction"], want))
        return
    options = [(cal.get("file_bytes"), cal.get(key))] + \
        [(e["file_bytes"], e[key]) for e in cal.get("by_size") or [] if e.get(key) is not None]
    size, cap = min((o for o in options if o[0]), key=lambda o: abs(math.log(o[0] / model)))
    if s.get("ceiling_file_bytes") != size:
        fail("%s %s: ceiling_file_bytes %r, want the nearest size %r"
             % (cell["loader"], cell["dataset"], s.get("ceiling_file_bytes"), size))
    if cap and abs(s["load_ceiling_fraction"] * cap / s["load_gbps"] - 1) > 1e-6:
        fail("%s %s: load_ceiling_fraction %r is not load_gbps over %r"
             % (cell["loader"], cell["dataset"], s["load_ceiling_fraction"], cap))


def fail(msg):
    print("harness_check: " + msg, file=sys.stderr)
    sys.exit(1)


def validate(doc):
    """The contract of docs/results-schema.md; unknown keys are allowed."""
    if doc.get("schema") != "ckptbench/1":
        fail("schema is %r" % doc.get("schema"))
    for key in ("tool", "timestamp", "machine", "calibration", "config", "cells"):
        if key not in doc:
            fail("top-level key %r missing" % key)
    for cell in doc["cells"]:
        for key, kind in (("loader", str), ("dataset", str), ("format", str),
                          ("model_bytes", int), ("cache", str), ("device", str),
                          ("status", str), ("options", dict), ("trials", list),
                          ("summary", dict)):
            if not isinstance(cell.get(key), kind):
                fail("cell key %r is %r" % (key, cell.get(key)))
        if cell["status"] not in ("ok", "skipped", "failed"):
            fail("cell status %r" % cell["status"])
        if cell["cache"] not in ("cold", "warm"):
            fail("cell cache %r" % cell["cache"])
        for key in SUMMARY_KEYS:
            if key not in cell["summary"]:
                fail("summary key %r missing" % key)
        check_load_figures(cell)
        check_ceiling(cell, doc["calibration"])
        for trial in cell["trials"] + cell.get("warmup", []):
            for key, kind in TRIAL_KEYS.items():
                if not isinstance(trial.get(key), kind):
                    fail("trial key %r is %r" % (key, trial.get(key)))
            if trial["outcome"] not in OUTCOMES:
                fail("trial outcome %r" % trial["outcome"])


def load(path):
    with open(path) as f:
        doc = json.load(f)
    validate(doc)
    return doc


def cell_of(doc, loader, cache=None):
    for cell in doc["cells"]:
        if cell["loader"] == loader and (cache is None or cell["cache"] == cache):
            return cell
    fail("no cell for %s %s" % (loader, cache or ""))


def memory(doc, k):
    anon = cell_of(doc, "test-anon")
    if anon["status"] != "ok":
        fail("test-anon cell: %s" % anon.get("reason"))
    for t in anon["trials"]:
        grew = t["peak_anon_bytes"] - t["baseline_anon_bytes"]
        # A few hundred KiB of slack: the loader's tables, the kernel's
        # accounting; nothing near a whole model.
        if abs(grew - k) > 1 * MIB:
            fail("test-anon: anonymous growth %d, want %d +- 1 MiB" % (grew, k))
        if t["peak_file_bytes"] - t["baseline_file_bytes"] > 4 * MIB:
            fail("test-anon touched no file page, yet file-backed grew by %d"
                 % (t["peak_file_bytes"] - t["baseline_file_bytes"]))
    mapped = cell_of(doc, "test-mapfile")
    if mapped["status"] != "ok":
        fail("test-mapfile cell: %s" % mapped.get("reason"))
    model = mapped["model_bytes"]
    for t in mapped["trials"]:
        grew_file = t["peak_file_bytes"] - t["baseline_file_bytes"]
        grew_anon = t["peak_anon_bytes"] - t["baseline_anon_bytes"]
        if not model * 0.98 <= grew_file <= model + 4 * MIB:
            fail("test-mapfile: file-backed growth %d for a %d-byte model"
                 % (grew_file, model))
        if grew_anon > 2 * MIB:
            fail("test-mapfile: anonymous growth %d, want about 0" % grew_anon)
    ratio = mapped["summary"]["peak_file_over_model"]
    if not 0.98 <= ratio <= 1.2:
        fail("test-mapfile: peak_file_over_model %r" % ratio)


def outcomes(doc):
    want = {"test-crash": "crash", "test-sleep": "timeout", "test-hog": "over-mem-limit",
            "test-wrongbyte": "wrong-bytes", "safetensors-read": "ok"}
    for loader, outcome in want.items():
        cell = cell_of(doc, loader)
        got = [t["outcome"] for t in cell["trials"]]
        if got != [outcome]:
            fail("%s: outcomes %r, want [%r]" % (loader, got, outcome))
        t = cell["trials"][0]
        if outcome == "ok":
            if cell["status"] != "ok" or not t["verified"]:
                fail("safetensors-read did not verify")
        else:
            if cell["status"] != "failed" or not cell.get("reason") or not t["message"]:
                fail("%s: a failed cell needs status failed, a reason and a message"
                     % loader)
            if t["verified"]:
                fail("%s: verified despite %s" % (loader, outcome))
    wrong = cell_of(doc, "test-wrongbyte")["trials"][0]["message"]
    if "XXH3" not in wrong:
        fail("wrong-bytes message does not name the hash: %r" % wrong)


def garbage(doc):
    cells = [c for c in doc["cells"] if c["loader"] == "test-garbage"]
    if len(cells) != 3:
        fail("want 3 test-garbage cells, got %d" % len(cells))
    for cell in cells:
        t = cell["trials"][0]
        if t["outcome"] != "error" or "malformed report" not in t["message"]:
            fail("garbage report: outcome %r, message %r" % (t["outcome"], t["message"]))
        if t["verified"] or cell["status"] != "failed":
            fail("a garbage report must fail its cell")


def unsupported(doc):
    """An unsupported trial ends its cell and the same loader's cell with
    the other cache state: both skipped with the reason, one trial run."""
    cold = cell_of(doc, "test-unsupported", "cold")
    warm = cell_of(doc, "test-unsupported", "warm")
    ran = cold["warmup"] + cold["trials"]
    if len(ran) != 1 or ran[0]["outcome"] != "unsupported":
        fail("unsupported: want one unsupported trial, got %r"
             % [t["outcome"] for t in ran])
    if warm["warmup"] or warm["trials"]:
        fail("unsupported: the warm cell ran after the cold one could not")
    for cell in (cold, warm):
        if cell["status"] != "skipped" or "no such file" not in (cell["reason"] or ""):
            fail("unsupported: cell %s is %r: %r" % (cell["cache"], cell["status"],
                                                   cell["reason"]))
    if "not run" not in warm["reason"]:
        fail("unsupported: the warm cell's reason does not say it was not run")
    if cell_of(doc, "safetensors-read", "warm")["summary"]["n"] != 2:
        fail("unsupported: the other loader's cells must run in full")


def cache(doc):
    cold = cell_of(doc, "safetensors-read", "cold")
    warm = cell_of(doc, "safetensors-read", "warm")
    model = cold["model_bytes"]
    for t in cold["trials"]:
        if t["residency_before"] > 0.05:
            fail("cold trial began %.0f%% resident" % (100 * t["residency_before"]))
        if t["read_bytes"] is None or t["read_bytes"] < 0.9 * model:
            fail("cold trial read %r bytes from the device for a %d-byte model"
                 % (t["read_bytes"], model))
    for t in warm["trials"]:
        if t["residency_before"] < 0.95:
            fail("warm trial began %.0f%% resident" % (100 * t["residency_before"]))
        if t["read_bytes"] is None or t["read_bytes"] > 0.1 * model:
            fail("warm trial read %r bytes from the device" % t["read_bytes"])


def interrupt(doc):
    if doc.get("interrupted") is not True:
        fail("an interrupted run must say so")
    done = cell_of(doc, "safetensors-read")
    if len(done["trials"]) < 1 or done["summary"]["n"] != len(done["trials"]):
        fail("finished safetensors-read trials are missing")
    sleeper = cell_of(doc, "test-sleep")
    if sleeper["trials"]:
        fail("the interrupted trial must be discarded, not recorded")


def loaders(path):
    with open(path) as f:
        doc = json.load(f)
    names = {}
    for entry in doc:
        for key, kind in (("name", str), ("format", str), ("device", str),
                          ("available", bool), ("options", list)):
            if not isinstance(entry.get(key), kind):
                fail("loaders entry key %r is %r" % (key, entry.get(key)))
        if "reason" not in entry:
            fail("loaders entry lacks reason")
        for opt in entry["options"]:
            for key in ("name", "type", "default", "help"):
                if key not in opt:
                    fail("option of %s lacks %r" % (entry["name"], key))
        names[entry["name"]] = entry
    for name in ("safetensors-read", "test-anon", "test-crash"):
        if name not in names:
            fail("loader %s not listed" % name)
    if not names["safetensors-read"]["available"]:
        fail("safetensors-read unavailable: %s" % names["safetensors-read"]["reason"])


def paired(doc):
    """The default: the dataset's own files read by one thread and by all at
    the start of every measured round of each (dataset, cache) block, as
    many figures as rounds, and each cell held against them (validate
    checked the figures and the choice); no scratch files of the dataset's
    size."""
    cal = doc["calibration"]
    if cal.get("by_size"):
        fail("paired ceilings also measured by_size %r" % cal["by_size"])
    if doc["config"].get("ceilings") != "paired":
        fail("config.ceilings is %r" % doc["config"].get("ceilings"))
    repeat = doc["config"]["repeat"]
    for state in ("cold", "warm"):
        cell = cell_of(doc, "safetensors-read", state)
        e = paired_entry(cell, cal)
        if e is None:
            fail("no paired read for the %s cell" % state)
        if len(e["one_thread_gbps"]) != repeat:
            fail("%d one-thread passes for %d rounds" % (len(e["one_thread_gbps"]), repeat))
        if len(e["all_threads_gbps"]) != (repeat if e["threads"] > 1 else 0):
            fail("%d all-thread passes for %d rounds of %d threads"
                 % (len(e["all_threads_gbps"]), repeat, e["threads"]))
        path = cell["dataset_path"]
        if os.path.isdir(path):
            path = os.path.join(path, "model.safetensors")
        size = os.path.getsize(path)
        if e["file_bytes"] != size:
            fail("the paired read covered %d bytes, the file has %d" % (e["file_bytes"], size))
        if not (isinstance(e["read_gbps"], float) and e["read_gbps"] > 0):
            fail("the %s paired read is %r (%s)" % (state, e["read_gbps"], e.get("note")))
        if cell["summary"]["ceiling_source"] != "paired":
            fail("the %s cell was held against %r" % (state, cell["summary"]["ceiling_source"]))


def ceilings(doc, mode):
    """With sized ceilings, the calibration has one read ceiling at the
    dataset's size (the main file being twice as large) and the cells use it
    (validate checked that the nearest was taken); with --one-ceiling,
    none."""
    if mode == "paired":
        paired(doc)
        return
    by_size = doc["calibration"].get("by_size")
    if doc["calibration"].get("paired_reads"):
        fail("--%s-ceiling(s) still made paired reads" % mode)
    if mode == "one":
        if by_size:
            fail("--one-ceiling still measured %r" % by_size)
        return
    cell = cell_of(doc, "safetensors-read", "warm")
    if not by_size or len(by_size) != 1:
        fail("by_size is %r, want one entry" % by_size)
    entry = by_size[0]
    if abs(entry["file_bytes"] - cell["model_bytes"]) > (1 << 20):
        fail("by_size's file (%d bytes) is not the dataset's size (%d)"
             % (entry["file_bytes"], cell["model_bytes"]))
    for key in ("cold_read_gbps", "warm_read_gbps"):
        if not (isinstance(entry.get(key), float) and entry[key] > 0):
            fail("by_size %s is %r" % (key, entry.get(key)))
    if cell["summary"]["ceiling_file_bytes"] != entry["file_bytes"]:
        fail("the cell was held against the %r-byte ceiling, not the matched one"
             % cell["summary"]["ceiling_file_bytes"])


def run_order(doc):
    """The loaders of each round in the order they ran (by run_seq)."""
    trials = sorted((t["run_seq"], c["loader"] + ":" + json.dumps(c["options"], sort_keys=True))
                    for c in doc["cells"] for t in c["warmup"] + c["trials"])
    seqs = [s for s, _ in trials]
    if seqs != list(range(len(seqs))):
        fail("run_seq is %r, want 0..%d" % (seqs, len(seqs) - 1))
    per_round = len(doc["cells"])
    names = [n for _, n in trials]
    return [names[i:i + per_round] for i in range(0, len(names), per_round)]


def order(a, b, fixed):
    """Same seed, same order; the rounds not all alike (seed 42 shuffles
    these three loaders differently across its 6 rounds); each round a
    permutation of the cells; --fixed-order: the cells' own order."""
    for doc in (a, b):
        if doc["config"]["order"] != "shuffled" or doc["config"]["order_seed"] != "42":
            fail("config order %r seed %r" % (doc["config"]["order"], doc["config"]["order_seed"]))
    ra, rb = run_order(a), run_order(b)
    if ra != rb:
        fail("seed 42 gave two orders: %r and %r" % (ra, rb))
    if all(r == ra[0] for r in ra):
        fail("every round ran in the same order: %r" % ra[0])
    if any(sorted(r) != sorted(ra[0]) for r in ra):
        fail("a round is not one trial of each cell: %r" % ra)
    if fixed["config"]["order"] != "fixed":
        fail("--fixed-order recorded order %r" % fixed["config"]["order"])
    cells = [c["loader"] + ":" + json.dumps(c["options"], sort_keys=True) for c in fixed["cells"]]
    for r in run_order(fixed):
        if r != cells:
            fail("--fixed-order ran %r, not %r" % (r, cells))


def main():
    part, path = sys.argv[1], sys.argv[2]
    if part == "loaders":
        loaders(path)
        return
    doc = load(path)
    if part == "order":
        order(doc, load(sys.argv[3]), load(sys.argv[4]))
        return
    if part == "memory":
        memory(doc, int(sys.argv[3]))
    elif part == "outcomes":
        outcomes(doc)
    elif part == "garbage":
        garbage(doc)
    elif part == "unsupported":
        unsupported(doc)
    elif part == "cache":
        cache(doc)
    elif part == "interrupt":
        interrupt(doc)
    elif part == "ceilings":
        ceilings(doc, sys.argv[3])
    else:
        fail("unknown part " + part)


main()
