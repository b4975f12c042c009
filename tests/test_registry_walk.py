#!/usr/bin/env python3
"""Every loader in the registry through every check this machine can run.

The list of loaders is the registry's own (`ckptbench-test loaders --json`):
every shipped loader and the skeleton of tests/loaders/skeleton.c, so a loader
added later is walked without anyone adding its name here. The harness's own
test loaders (named test-*) are fixtures that crash, hang or lie on purpose and
have their own tests (tests/test_harness.sh).

For each loader:
  - options: each is well formed (a known type, a default, a help line); an
    unknown option is a usage error (exit 2) naming it;
  - probe: available, or unavailable with a reason; a run records an
    unavailable loader as a skipped cell with that same reason;
  - load: an available loader loads a small model of each format it reads,
    cold and warm, every tensor verified byte for byte (outcome ok,
    verified true);
  - memory class: a loader whose tensors are views into mapped files
    (zero_copy) adds well under the model's size of anonymous memory; any
    other loader whose tensors end in host memory holds at least the model
    in anonymous memory at its peak (loaders ending on a GPU are held to
    their classes by bench/tools/gpu-check.sh, on a machine with one).
"""
import json
import os
import subprocess
import sys
import tempfile

CKPTBENCH = os.environ.get("CKPTBENCH_TEST")
if not CKPTBENCH or not os.access(CKPTBENCH, os.X_OK):
    print("CKPTBENCH_TEST is not an executable: run through meson test", file=sys.stderr)
    sys.exit(77)

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def run(*args, check=True):
    p = subprocess.run([CKPTBENCH, *args], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr[-800:]))
    return p


loaders = [l for l in json.loads(run("loaders", "--json").stdout)
           if not l["name"].startswith("test-")]
names = [l["name"] for l in loaders]
if "skeleton" not in names:
    fail("the skeleton loader is not in the test registry")

for l in loaders:
    n = l["name"]
    if l["format"] not in ("safetensors", "pytorch"):
        fail("%s: format %r" % (n, l["format"]))
    if l["device"] not in ("cpu", "cuda"):
        fail("%s: device %r" % (n, l["device"]))
    if l["available"] != (l["reason"] is None) or (l["reason"] is not None and not l["reason"]):
        fail("%s: available %r with reason %r" % (n, l["available"], l["reason"]))
    for o in l["options"]:
        if o["type"] not in ("bool", "u64", "string") or not o["help"]:
            fail("%s: option %r is not well formed" % (n, o))
    caps = set(l.get("caps") or [])
    if not caps & {"host_mem", "device_mem"}:
        fail("%s: caps %r say neither where the tensors end" % (n, sorted(caps)))
    if ("device_mem" in caps) != (l["device"] == "cuda"):
        fail("%s: a %s loader with caps %r" % (n, l["device"], sorted(caps)))
    p = run("run", "--loaders", n + ":no-such-option=1", "--datasets", "/nonexistent",
            "--no-calibrate", "--quiet", check=False)
    if p.returncode != 2 or "no-such-option" not in p.stderr:
        fail("%s: an unknown option should be a usage error naming it: exit %d, %s"
             % (n, p.returncode, p.stderr.strip()[-300:]))

scratch = os.environ.get("CKPTBENCH_SCRATCH")
if scratch:
    os.makedirs(scratch, exist_ok=True)  # the first harness test to run makes it
with tempfile.TemporaryDirectory(prefix="ckptbench-walk.", dir=scratch) as tmp:
    run("gen", "--preset", "llama", "--size", "32M", "--dtype", "F16",
        "--formats", "safetensors,pytorch", "--no-sync", "--quiet", "-o", tmp)
    data = os.path.join(tmp, "llama-32M-F16-s1")
    out = os.path.join(tmp, "walk.json")
    run("run", "--loaders", ",".join(names), "--datasets", data, "--cache", "cold,warm",
        "--repeat", "1", "--warmup", "0", "--no-calibrate", "--quiet", "--force", "-o", out)
    doc = json.load(open(out))
    by_loader = {}
    for c in doc["cells"]:
        by_loader.setdefault(c["loader"], []).append(c)
    for l in loaders:
        n = l["name"]
        cells = by_loader.get(n, [])
        if sorted(c["cache"] for c in cells) != ["cold", "warm"]:
            fail("%s: cells %r" % (n, [c["cache"] for c in cells]))
            continue
        caps = set(l.get("caps") or [])
        for c in cells:
            where = "%s %s" % (n, c["cache"])
            if not l["available"]:
                if c["status"] != "skipped" or c["reason"] != l["reason"]:
                    fail("%s: unavailable (%s) but recorded %s: %s"
                         % (where, l["reason"], c["status"], c["reason"]))
                continue
            if c["status"] == "skipped" and (c["reason"] or "").startswith("unsupported"):
                continue  # a loader that cannot read this checkpoint says so
            trials = c["trials"]
            if c["status"] != "ok" or len(trials) != 1 or trials[0]["outcome"] != "ok" \
                    or trials[0].get("verified") is not True:
                fail("%s: %s, trials %r, reason %s" % (where, c["status"],
                     [(t["outcome"], t.get("message")) for t in trials], c["reason"]))
                continue
            anon = c["summary"].get("peak_anon_over_model")
            if anon is None or "host_mem" not in caps or "device_mem" in caps:
                continue
            if "zero_copy" in caps and anon > 0.5:
                fail("%s: zero-copy but %.2f x the model in anonymous memory" % (where, anon))
            if "zero_copy" not in caps and anon < 0.9:
                fail("%s: holds the model in host memory but only %.2f x of it is anonymous"
                     % (where, anon))
        print("%-32s %s" % (n, "ok" if l["available"] else "skipped: " + l["reason"]))

print("test_registry_walk: %d loaders, %d failures" % (len(loaders), len(failures)),
      file=sys.stderr)
sys.exit(1 if failures else 0)
