#!/usr/bin/python3
"""Checks for tests/test_cpu_loaders.sh on a `ckptbench run` results file.

usage: cpu_loaders_check.py exact FILE LOADER...
       cpu_loaders_check.py memory FILE
       cpu_loaders_check.py fallback FILE
exact: every cell of each LOADER is ok with every trial verified, or skipped
  only because the dataset lacks that loader's format; each loader ran on
  at least one dataset.
memory: the memory class of each CPU loader on its 256 MiB model, from the
  harness's own figures (peak minus baseline over the model's bytes).
fallback: O_DIRECT and io_uring runs on tmpfs loaded, verified, and said in
  their mode how the reads really went (the modes are printed).
Exits 1 with the reason on the first failed check."""
import json
import sys

MIB = 1 << 20


def fail(msg):
    print("cpu_loaders_check: " + msg, file=sys.stderr)
    sys.exit(1)


def cells(doc, loader):
    return [c for c in doc["cells"] if c["loader"] == loader]


def exact(doc, loaders):
    for name in loaders:
        ran = 0
        for c in cells(doc, name):
            where = "%s on %s (%s)" % (name, c["dataset"], c["cache"])
            if c["status"] == "skipped":
                if "has no %s checkpoint" % c["format"] not in (c.get("reason") or ""):
                    fail("%s skipped: %s" % (where, c.get("reason")))
                continue
            if c["status"] != "ok" or not c["trials"]:
                fail("%s: status %s, %s" % (where, c["status"], c.get("reason")))
            for t in c["trials"]:
                if t["outcome"] != "ok" or not t["verified"]:
                    fail("%s: %s %s" % (where, t["outcome"], t.get("message")))
            ran += 1
        if ran == 0:
            fail("%s verified no dataset" % name)


def ratios(cell, key):
    """(peak - baseline) / model per trial, from the harness's figures."""
    base = {"anon": "baseline_anon_bytes", "file": "baseline_file_bytes"}[key]
    return [(t["peak_%s_bytes" % key] - t[base]) / cell["model_bytes"] for t in cell["trials"]]


def memory(doc):
    def one(loader):
        cs = [c for c in cells(doc, loader) if c["status"] == "ok"]
        if len(cs) != 1:
            fail("want one ok cell of %s, have %d" % (loader, len(cs)))
        return cs[0]

    read, mmap, pickle, pmmap = (one(n) for n in
                                 ("safetensors-read", "safetensors-mmap", "pickle",
                                  "pickle-mmap"))
    model = read["model_bytes"]
    if model < 200 * MIB:
        fail("the model is %d bytes, want about 256 MiB" % model)
    slack = 32 * MIB / model
    for r in ratios(read, "anon"):  # 1x: the model, nothing else
        if not 0.95 <= r <= 1.05 + slack:
            fail("safetensors-read anonymous peak %.3fx the model, want ~1x" % r)
    for cell in (mmap, pmmap):  # zero-copy: no anonymous memory, ~1x file
        for r in ratios(cell, "anon"):
            if r > slack:
                fail("%s anonymous peak %.3fx the model, want <= 32 MiB" % (cell["loader"], r))
        for r in ratios(cell, "file"):
            if not 0.9 <= r <= 1.1:
                fail("%s file-backed peak %.3fx the model, want ~1x" % (cell["loader"], r))
    for r in ratios(pickle, "anon"):  # the doubling, where it belongs
        if not 1.9 <= r <= 2.1:
            fail("pickle anonymous peak %.3fx the model, want 1.9-2.1x" % r)
    s = pickle["summary"]["peak_anon_over_model"]
    if not 1.9 <= s <= 2.1:
        fail("pickle's summary peak_anon_over_model is %r" % s)
    # safetensors.load(open(f).read()): the model and the whole file, 2x
    for r in ratios(one("safetensors-eager"), "anon"):
        if not 1.9 <= r <= 2.1 + slack:
            fail("safetensors-eager anonymous peak %.3fx the model, want ~2x" % r)


def fallback(doc):
    modes = []
    for c in cells(doc, "safetensors-read"):
        if c["status"] != "ok":
            fail("safetensors-read %s: %s" % (c["options"], c.get("reason")))
        for t in c["trials"]:
            if t["outcome"] != "ok" or not t["verified"]:
                fail("safetensors-read %s: %s %s" % (c["options"], t["outcome"],
                                                       t.get("message")))
            mode = t.get("mode") or ""
            # tmpfs takes O_DIRECT from Linux 6.6 and refuses it before
            if c["options"].get("direct") and not ("O_DIRECT refused" in mode or
                                                   "O_DIRECT on" in mode):
                fail("O_DIRECT on tmpfs, but the mode says %r" % mode)
            if not c["options"].get("direct") and "buffered" not in mode:
                fail("buffered reads, but the mode says %r" % mode)
            if c["options"].get("uring") and "io_uring" not in mode:
                fail("io_uring asked for, but the mode says %r" % mode)
            modes.append(mode)
    print("\n".join(modes))
    if len(modes) < 3:
        fail("want three fallback runs, have %d" % len(modes))


def main():
    if len(sys.argv) < 3:
        fail(__doc__)
    with open(sys.argv[2]) as f:
        doc = json.load(f)
    part = sys.argv[1]
    if part == "exact":
        exact(doc, sys.argv[3:])
    elif part == "memory":
        memory(doc)
    elif part == "fallback":
        fallback(doc)
    else:
        fail("unknown part " + part)


if __name__ == "__main__":
    main()
