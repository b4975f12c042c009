"""ckptbench's Python peers: the real torch.load and safetensors paths run as
external loaders, speaking the protocol of docs/peer-protocol.md.

    python-peer --format F --loader NAME --path CKPT --manifest FILE
                --report-fd N [--opt KEY=VALUE]... [--device cuda:N] [--bind SPEC]
    python-peer --probe      one line per peer: NAME<TAB>REASON (empty: available)

The loads themselves are in torch_paths.py; this file is the protocol around
them: setup, baseline, phase clock, memory, verification and the report.
Only the standard library here, so that --probe never imports torch (which
takes seconds) and a missing torch is a reason, not a traceback. The one
exception is the GPU peers' last question, whether torch sees a GPU: asked
of torch itself, in a child process, and only where torch is a CUDA build
and a GPU driver's device nodes exist (so never on a machine without a GPU).
"""
import argparse
import ast
import functools
import glob
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import time

# torch_paths raises this module's exceptions through `import peer`; run as a
# script this module is __main__, so it is registered under its name too, or
# that import would make a second copy with different exception classes.
sys.modules.setdefault("peer", sys.modules[__name__])

# The peers that end on the GPU (the GPU loaders, docs/loaders.md): each is
# the CPU peer it is named after, plus the device (--device cuda:N from the
# harness).
GPU_PEERS = ("torch-load-gpu", "safetensors-py-gpu")

# The peers this program serves, in the order `--probe` lists them.
PEERS = ("torch-load", "torch-load-mmap", "safetensors-py") + GPU_PEERS

# Seconds the probe waits for a child asking torch whether it sees a GPU
# (import torch with CUDA takes a few; a wedged driver must not hang listing).
CUDA_ASK_TIMEOUT_S = 60

# Exit statuses of the protocol.
EXIT_OK, EXIT_FAILED, EXIT_UNSUPPORTED = 0, 1, 3


class Unsupported(Exception):
    """The load cannot run here (a module or a torch feature is missing)."""


class LoadError(Exception):
    """The load failed; the message names what and where."""


@functools.lru_cache(maxsize=None)
def torch_build():
    """torch/version.py's constants (__version__, cuda, hip) read as source,
    not imported (importing it imports torch whole: seconds). {} where torch
    or the file is missing; a value that is not a literal is left out."""
    spec = importlib.util.find_spec("torch")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            with open(os.path.join(folder, "version.py")) as f:
                tree = ast.parse(f.read())
        except (OSError, SyntaxError, ValueError):
            continue
        build = {}
        for node in tree.body:
            # `cuda: Optional[str] = '12.1'` in newer torch, `cuda = None` in older
            target = node.targets[0] if isinstance(node, ast.Assign) and \
                len(node.targets) == 1 else getattr(node, "target", None)
            if isinstance(target, ast.Name) and getattr(node, "value", None) is not None:
                try:
                    build[target.id] = ast.literal_eval(node.value)
                except (ValueError, TypeError, SyntaxError):  # not a literal
                    pass
        return build
    return {}


def torch_version_text():
    """The installed torch's version as it names itself, or None."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        text = torch_build().get("__version__")
        return text if isinstance(text, str) else None


def torch_version():
    """(major, minor) of the installed torch, or None, without importing it:
    the package metadata, else torch/version.py read as text."""
    text = torch_version_text()
    if text is None:
        return None
    parts = text.split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return None


# Device nodes of a GPU driver torch can use: NVIDIA's, ROCm's (torch.cuda on
# a HIP build), WSL's. None of them: no GPU here, whatever torch is.
GPU_NODES = ("/dev/nvidia[0-9]*", "/dev/kfd", "/dev/dxg")


@functools.lru_cache(maxsize=None)
def cuda_reason(ask_torch):
    """Why torch cannot put tensors on a GPU here, or "". The cheap answers
    first (a CPU-only build, no driver device nodes); then, with ask_torch,
    torch.cuda.is_available() in a child process, so that a crash or a hang
    in the driver is a reason, not a dead probe. Without ask_torch a trial
    asks torch in its own process (torch_paths)."""
    build = torch_build()
    version = torch_version_text() or "(version unknown)"
    if build and build.get("cuda") is None and build.get("hip") is None:
        return f"torch {version} has no CUDA (a CPU-only build: torch.version.cuda is None)"
    if not any(glob.glob(pattern) for pattern in GPU_NODES):
        return f"no GPU driver here (no {', '.join(GPU_NODES)}), so no CUDA for torch {version}"
    if not ask_torch:
        return ""
    code = "import torch; print(int(torch.cuda.is_available()), torch.cuda.device_count())"
    try:
        child = subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=CUDA_ASK_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"asking torch {version} for a GPU failed: {e}"
    answer = child.stdout.split()
    if child.returncode != 0 or len(answer) != 2:
        tail = (child.stderr.strip().splitlines() or ["no output"])[-1]
        return f"asking torch {version} for a GPU failed: {tail[:300]}"
    if answer[0] != "1":
        return (f"torch {version} (CUDA {build.get('cuda') or build.get('hip')}) sees no GPU "
                "(torch.cuda.is_available() is False)")
    return ""


def unavailable_reason(name, ask_torch=True):
    """Why peer `name` cannot run here, or "" when it can. Cheap: modules are
    looked up (find_spec), not imported; a broken install shows in a trial.
    A GPU peer gives every reason that holds ("; "-joined), so that one fix
    does not just reveal the next. ask_torch: see cuda_reason."""
    for module in ("torch", "xxhash", "numpy"):
        if importlib.util.find_spec(module) is None:
            return f"python3 module {module} not installed"
    base = name[:-len("-gpu")] if name in GPU_PEERS else name
    reasons = []
    if base == "torch-load-mmap":
        v = torch_version()
        if v is None:
            return "torch's version is unknown; torch.load(mmap=True) needs torch >= 2.1"
        if v < (2, 1):
            return f"torch {v[0]}.{v[1]} has no mmap=True (needs torch >= 2.1)"
    if base == "safetensors-py" and importlib.util.find_spec("safetensors") is None:
        reasons.append("python3 module safetensors not installed")
    if name in GPU_PEERS:
        reasons.append(cuda_reason(ask_torch))
    return "; ".join(r for r in reasons if r)


# ----------------------------------------------------------------- memory

def read_status():
    """VmRSS, VmHWM, RssAnon, RssFile, RssShmem of this process, in bytes."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                fields[key] = int(rest.split()[0]) * 1024
    return fields


def reset_hwm():
    """Resets VmHWM to the current RSS (Linux 4.0+); False where refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ------------------------------------------------------------ phase clock

class PhaseClock:
    """Seconds per phase and the spans, as bench/harness/trial.c keeps them; enter(P)
    ends the phase before, enter(None) ends the last."""

    NAMES = ("init", "read", "copy", "to_device")

    def __init__(self):
        self.total = dict.fromkeys(self.NAMES, 0.0)
        self.spans = []
        self.current = None
        self.since = 0.0

    def enter(self, phase):
        now = time.monotonic()
        if self.current is not None:
            self.total[self.current] += now - self.since
            self.spans.append({"name": self.current, "start_mono": self.since,
                               "end_mono": now})
        self.current = phase
        self.since = now


# --------------------------------------------------------------- the files

def checkpoint_files(path, fmt):
    """The checkpoint's files in load order: the file itself, the dataset's
    single model file, or the shards of a Hugging Face index (sorted, as
    transformers loads them)."""
    if os.path.isfile(path):
        return [path]
    single = {"pytorch": ["model.pt", "pytorch_model.bin"],
              "safetensors": ["model.safetensors"]}[fmt]
    for name in single:
        if os.path.isfile(os.path.join(path, name)):
            return [os.path.join(path, name)]
    index = {"pytorch": "pytorch_model.bin.index.json",
             "safetensors": "model.safetensors.index.json"}[fmt]
    candidates = [os.path.join(path, index)] + sorted(
        os.path.join(path, n) for n in os.listdir(path)
        if n.endswith(".index.json") and (n.endswith(".safetensors.index.json")
                                          == (fmt == "safetensors")))
    for cand in candidates:
        if os.path.isfile(cand):
            with open(cand) as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
            return [os.path.join(os.path.dirname(cand), s) for s in shards]
    raise LoadError(f"{path}: no {fmt} checkpoint (file, dataset or sharded directory)")


# ------------------------------------------------------------------ report

def parse_args(argv):
    p = argparse.ArgumentParser(prog="python-peer", add_help=True)
    p.add_argument("--probe", action="store_true")
    p.add_argument("--format", choices=("safetensors", "pytorch"))
    p.add_argument("--loader", choices=PEERS)
    p.add_argument("--path")
    p.add_argument("--manifest")
    p.add_argument("--report-fd", type=int, default=3)
    p.add_argument("--opt", action="append", default=[])
    # None: the peer's own default (cpu, or cuda:0 for a GPU peer)
    p.add_argument("--device")
    p.add_argument("--bind")
    p.add_argument("--part")
    p.add_argument("--start-at", type=float, default=0.0)
    args = p.parse_args(argv)
    if not args.probe and not (args.format and args.loader and args.path and args.manifest):
        p.error("needs --format, --loader, --path and --manifest (or --probe)")
    opts = {}
    for kv in args.opt:
        key, eq, value = kv.partition("=")
        if not eq:
            p.error(f"--opt takes KEY=VALUE, not {kv!r}")
        opts[key] = value
    args.opts = opts
    return args


def apply_bind(spec):
    """--bind core:LIST is applied with sched_setaffinity; node:N needs libnuma,
    which Python lacks, so it is only said in the mode line."""
    if not spec:
        return ""
    if spec.startswith("core:"):
        cores = set()
        for part in spec[5:].split(","):
            lo, _, hi = part.partition("-")
            cores.update(range(int(lo), int(hi or lo) + 1))
        os.sched_setaffinity(0, cores)
        return f"; bound to {spec}"
    return f"; --bind {spec} ignored (no NUMA binding from Python)"


def write_report(fd, report):
    line = (json.dumps(report, separators=(",", ":")) + "\n").encode()
    while line:
        n = os.write(fd, line)
        line = line[n:]


def part_manifest(manifest, path):
    """A partial load (--part, docs/partial-loads.md): the part's manifest
    (each selected tensor with its slice's shape and the slice's XXH3, which
    is what the model allocates and what is verified) and the part's entries
    by name."""
    with open(path) as f:
        doc = json.load(f)
    if doc.get("schema") != "ckptbench-part/1":
        raise ValueError(f"{path}: not a ckptbench-part/1 document")
    whole = {t["name"]: t for t in manifest["tensors"]}
    tensors, part = [], {}
    for e in doc["tensors"]:
        if e["name"] not in whole:
            raise ValueError(f"{path}: part names {e['name']}, which the manifest lacks")
        tensors.append({"name": e["name"], "dtype": whole[e["name"]]["dtype"],
                        "shape": e["shape"], "xxh3": e["xxh3"]})
        part[e["name"]] = e
    return dict(manifest, tensors=tensors), part


def run(args):
    """One trial; returns (report, exit status)."""
    report = {"outcome": "error", "message": "", "verified": False}
    try:
        mode = apply_bind(args.bind)
        # The cheap checks only: a GPU peer asks torch itself, in-process,
        # when the load is prepared (torch_paths), not in a second child.
        reason = unavailable_reason(args.loader, ask_torch=False)
        if reason:
            raise Unsupported(reason)
        # Setup, not timed: the imports (torch's take seconds), the manifest
        # (the architecture a model class knows) and the load's plan.
        import torch_paths
        with open(args.manifest) as f:
            manifest = json.load(f)
        part = None
        if args.part:
            manifest, part = part_manifest(manifest, args.part)
            report["asked_bytes"] = sum(t["nbytes"] for t in part.values())
        files = checkpoint_files(args.path, args.format)
        load = torch_paths.prepare(args.loader, manifest, files, args.opts, args.device, part)
        report["mode"] = load.mode + mode
        # The baseline: after the imports and setup (a GPU peer's CUDA
        # context included), high-water marks reset.
        clock = PhaseClock()
        hwm_reset = reset_hwm()
        base = read_status()
        vram_base = load.vram_baseline()
        # Under MPI every rank's load starts at one time (CLOCK_MONOTONIC).
        if args.start_at > 0:
            time.sleep(max(0.0, args.start_at - time.monotonic()))
        start = time.monotonic()
        model = load.run(clock)
        clock.enter(None)
        end = time.monotonic()
        after = read_status()
        report.update({
            "wall_s": end - start, "load_start_mono": start, "load_end_mono": end,
            "phases": clock.total, "phase_spans": clock.spans,
            "baseline_rss_bytes": base["VmRSS"], "baseline_anon_bytes": base["RssAnon"],
            "baseline_file_bytes": base["RssFile"] + base.get("RssShmem", 0),
            "hwm_reset": hwm_reset,
            "after_rss_bytes": after["VmRSS"], "after_anon_bytes": after["RssAnon"],
            "after_file_bytes": after["RssFile"] + after.get("RssShmem", 0),
        })
        if hwm_reset:  # else VmHWM includes the imports and means little
            report["vmhwm_bytes"] = after["VmHWM"]
        if vram_base is not None:
            report.update(load.vram_report(vram_base))
        # Verification, outside the timed region.
        bad, first = torch_paths.verify(model, manifest)
        report["verified"] = bad == 0
        if bad:
            report.update({"outcome": "wrong-bytes", "message": first, "wrong_tensors": bad})
            return report, EXIT_FAILED
        report["outcome"] = "ok"
        return report, EXIT_OK
    except Unsupported as e:
        report.update({"outcome": "unsupported", "message": str(e)})
        return report, EXIT_UNSUPPORTED
    except Exception as e:  # the library's own errors: one line, with the type
        text = " ".join(str(e).split())
        report.update({"outcome": "error",
                       "message": f"{args.path}: {type(e).__name__}: {text}"[:1000]})
        return report, EXIT_FAILED


def main(argv):
    args = parse_args(argv)
    if args.probe:
        for name in PEERS:
            print(f"{name}\t{unavailable_reason(name)}")
        return EXIT_OK
    report, status = run(args)
    write_report(args.report_fd, report)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
