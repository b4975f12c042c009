#!/usr/bin/python3
"""The GPU peers' Python side (loaders/peers/peer.py, torch_paths.py) where
no GPU is needed, for tests/test_peers_gpu.sh.

usage: peers_gpu_check.py probe PEERS_DIR SCRATCH
       peers_gpu_check.py load PEERS_DIR DATASET

probe: the availability answer for each way a machine can lack a GPU,
  against a stand-in torch tree (its version.py says CUDA 12.1 or none),
  stand-in driver device nodes and a stand-in Python answering
  torch.cuda.is_available(); never imports torch. A separate process from
  `load`, since its stand-in torch must be the one find_spec sees.
load: with the real torch (CPU-only here): a GPU peer given --device cuda:0
  is unsupported with a reason, not a traceback; CPU and GPU peers refuse
  the other's device; the device index is checked against the count; and
  the whole protocol of both GPU peers runs with torch.cuda's calls stood
  in for (the "device" being the host), so phases, VRAM keys, verification
  of a dict model and the mode are checked end to end. safetensors (not
  installed here) is stood in for by a reader of the format in a few lines.
Exits 1 naming the first failed check."""
import importlib.machinery
import json
import os
import sys
import types


def fail(msg):
    print("peers_gpu_check: " + msg, file=sys.stderr)
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


# ------------------------------------------------------------------ probe

def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def probe(peers_dir, scratch):
    fake = os.path.join(scratch, "site")
    os.makedirs(os.path.join(fake, "torch"), exist_ok=True)
    write(os.path.join(fake, "torch", "__init__.py"), "raise ImportError('stand-in only')\n")
    sys.path.insert(0, fake)  # before peer's first find_spec("torch")
    sys.path.insert(1, peers_dir)
    import peer
    expect("torch" not in sys.modules, "the probe imported torch")

    def reset(version_py, nodes, answer):
        write(os.path.join(fake, "torch", "version.py"), version_py)
        node = os.path.join(scratch, "nvidia0")
        if nodes and not os.path.exists(node):
            write(node, "")
        if not nodes and os.path.exists(node):
            os.unlink(node)
        peer.GPU_NODES = (os.path.join(scratch, "nvidia[0-9]*"),)
        # The child asked for torch.cuda.is_available(): a shell script
        # standing in for the Python, answering as told.
        py = os.path.join(scratch, "python-stand-in")
        write(py, "#!/bin/sh\n" + answer + "\n", 0o755)
        peer.sys.executable = py
        peer.torch_build.cache_clear()
        peer.cuda_reason.cache_clear()

    cpu_only = "__version__ = '9.9.0'\ndebug = False\ncuda = None\nhip = None\n"
    cuda = ("from typing import Optional\n__version__ = '9.9.0+cu121'\n"
            "cuda: Optional[str] = '12.1'\nhip: Optional[str] = None\n")
    sees = "echo 1 1"
    cases = [
        # (version.py, device nodes, child's answer, peer, wanted reason or "")
        (cpu_only, True, sees, "torch-load-gpu",
         "has no CUDA (a CPU-only build: torch.version.cuda is None)"),
        (cuda, False, sees, "torch-load-gpu", "no GPU driver here"),
        (cuda, True, "echo 0 0", "torch-load-gpu",
         "(CUDA 12.1) sees no GPU (torch.cuda.is_available() is False)"),
        (cuda, True, "echo 'RuntimeError: driver wedged' >&2; exit 1", "torch-load-gpu",
         "failed: RuntimeError: driver wedged"),
        (cuda, True, sees, "torch-load-gpu", ""),
        (cuda, True, sees, "torch-load", ""),
        (cpu_only, True, sees, "torch-load", ""),  # CPU peers never ask
    ]
    for version_py, nodes, answer, name, want in cases:
        reset(version_py, nodes, answer)
        got = peer.unavailable_reason(name)
        label = f"{name} ({'CUDA' if 'cu121' in version_py else 'CPU'} build, nodes={nodes}, " \
                f"child `{answer}`)"
        if want:
            expect(want in got, f"{label}: reason {got!r}, wanted it to hold {want!r}")
        else:
            expect(got == "", f"{label}: unavailable: {got!r}")
    # Without ask_torch (what a trial does) the child is never run.
    reset(cuda, True, "echo 0 0")
    expect(peer.unavailable_reason("torch-load-gpu", ask_torch=False) == "",
           "ask_torch=False still asked the child")
    # Both reasons of safetensors-py-gpu at once, when both hold.
    reset(cpu_only, True, sees)
    if peer.importlib.util.find_spec("safetensors") is None:
        got = peer.unavailable_reason("safetensors-py-gpu")
        expect("safetensors not installed" in got and "has no CUDA" in got,
               f"safetensors-py-gpu should give both reasons: {got!r}")
    expect("torch" not in sys.modules, "the probe imported torch")
    # The listing names every peer, the GPU ones included.
    expect({"torch-load-gpu", "safetensors-py-gpu"} <= set(peer.PEERS),
           f"--probe does not list the GPU peers: {peer.PEERS}")


# ------------------------------------------------------------------- load

def stand_in_safetensors(torch):
    """A `safetensors` package whose torch.load_file reads the format with
    the standard library and torch (header, then each tensor's bytes), and
    moves the result to `device` as the real one does."""
    names = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32,
             "F64": torch.float64, "I64": torch.int64, "I32": torch.int32,
             "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}

    def load_file(path, device="cpu"):
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
            base = 8 + n
            out = {}
            for name, info in header.items():
                if name == "__metadata__":
                    continue
                lo, hi = info["data_offsets"]
                f.seek(base + lo)
                raw = bytearray(f.read(hi - lo))
                t = torch.frombuffer(raw, dtype=torch.uint8) if raw else \
                    torch.empty(0, dtype=torch.uint8)
                out[name] = t.view(names[info["dtype"]]).reshape(info["shape"]).to(device)
            return out

    pkg = types.ModuleType("safetensors")
    pkg.__version__ = "stand-in"
    # a spec, so the peer's find_spec("safetensors") finds it installed
    pkg.__spec__ = importlib.machinery.ModuleSpec("safetensors", None)
    sub = types.ModuleType("safetensors.torch")
    sub.load_file = load_file
    pkg.torch = sub
    sys.modules["safetensors"] = pkg
    sys.modules["safetensors.torch"] = sub


def load(peers_dir, dataset):
    sys.path.insert(0, peers_dir)
    import peer
    import torch
    import torch_paths
    manifest_path = os.path.join(dataset, "manifest.json")
    with open(manifest_path) as f:
        manifest = json.load(f)
    pt = peer.checkpoint_files(dataset, "pytorch")

    def raises(kind, text, *args):
        try:
            torch_paths.prepare(*args)
        except kind as e:
            expect(text in str(e), f"prepare{args[:1] + args[3:]}: {e!r}, wanted {text!r}")
            return
        except Exception as e:  # noqa: BLE001 - any other is the failure
            fail(f"prepare{args[:1] + args[3:]} raised {e!r}, wanted {kind.__name__}")
        fail(f"prepare{args[:1] + args[3:]} did not refuse ({text!r})")

    # The real torch here: a GPU peer is unsupported with a reason.
    if not torch.cuda.is_available():
        raises(peer.Unsupported, "sees no GPU (torch.cuda.is_available() is False)",
               "torch-load-gpu", manifest, pt, {}, "cuda:0")
        # Through the protocol: a report line and exit 3, no traceback.
        r, w = os.pipe()
        status = peer.main(["--format", "pytorch", "--loader", "torch-load-gpu", "--path",
                            dataset, "--manifest", manifest_path, "--report-fd", str(w),
                            "--device", "cuda:0"])
        os.close(w)
        with os.fdopen(r) as f:
            report = json.loads(f.readline())
        expect(status == 3 and report["outcome"] == "unsupported" and report["message"],
               f"torch-load-gpu on cuda:0 here: exit {status}, {report}")
    # Each kind of peer refuses the other's device; bad options name themselves.
    raises(ValueError, "is a GPU loader: --device cuda:N, not cpu",
           "torch-load-gpu", manifest, pt, {}, "cpu")
    raises(ValueError, "is a CPU loader: --device cpu, not cuda:0",
           "torch-load", manifest, pt, {}, "cuda:0")
    raises(ValueError, "option into takes dict|model, not 'bogus'",
           "safetensors-py-gpu", manifest, pt, {"into": "bogus"}, "cuda:0")
    raises(ValueError, "has no option touch",
           "torch-load-gpu", manifest, pt, {"touch": "1"}, "cuda:0")

    # torch.cuda stood in for; the "device" is the host.
    calls = []
    peak = {"now": 0}
    stub = {
        "is_available": lambda: True,
        "device_count": lambda: 2,
        "set_device": lambda d: calls.append(("set_device", str(d))),
        "synchronize": lambda d=None: calls.append(("synchronize",)),
        "reset_peak_memory_stats": lambda d=None: calls.append(("reset",)),
        "memory_allocated": lambda d=None: 1000,
        "max_memory_allocated": lambda d=None: 1000 + peak["now"],
        "get_device_name": lambda d=None: "Stand-in GPU",
    }
    for key, fn in stub.items():
        setattr(torch.cuda, key, fn)
    raises(peer.Unsupported, "--device cuda:5: torch sees 2 GPU(s)",
           "torch-load-gpu", manifest, pt, {}, "cuda:5")

    def open_on_host(self):
        """_open_device without a device: the real one allocates on it."""
        calls.append(("context",))
        self.context_s = 0.001
        self.device = torch.device("cpu")  # what `cuda:1` becomes here

    torch_paths.Load._open_device = open_on_host
    peer.cuda_reason = lambda ask_torch=True: ""  # the cheap check would say CPU-only
    model_bytes = sum(t["nbytes"] for t in manifest["tensors"])
    peak["now"] = model_bytes
    stand_in_safetensors(torch)
    runs = [("torch-load-gpu", "pytorch", [], ("init", "read", "copy", "to_device")),
            ("safetensors-py-gpu", "safetensors", [], ("read",)),
            ("safetensors-py-gpu", "safetensors", ["--opt", "into=model"],
             ("init", "read", "copy"))]
    for name, fmt, extra, phases in runs:
        calls.clear()
        r, w = os.pipe()
        status = peer.main(["--format", fmt, "--loader", name, "--path", dataset,
                            "--manifest", manifest_path, "--report-fd", str(w),
                            "--device", "cuda:1"] + extra)
        os.close(w)
        with os.fdopen(r) as f:
            report = json.loads(f.readline())
        label = f"{name} {' '.join(extra)}"
        expect(status == 0 and report["outcome"] == "ok" and report["verified"],
               f"{label}: exit {status}, {report.get('outcome')}: {report.get('message')}")
        entered = [p for p in report["phases"] if report["phases"][p] > 0]
        expect(tuple(entered) == phases, f"{label}: phases {entered}, wanted {phases}")
        expect(report["peak_vram_bytes"] == 1000 + model_bytes and
               report["baseline_vram_bytes"] == 1000 and
               report["vram_alloc_peak_bytes"] == report["peak_vram_bytes"] and
               report["cuda_context_s"] == 0.001 and
               "max_memory_allocated" in report["vram_source"],
               f"{label}: VRAM keys {report}")
        # Context before the peak reset (setup, not load); the last call of
        # the load a synchronize, then none (verification is not timed).
        order = [c[0] for c in calls]
        expect(order[:1] == ["context"] and "reset" in order and
               order.index("reset") > order.index("context") and order[-1] == "synchronize",
               f"{label}: torch.cuda calls in order {order}")
        expect("Stand-in GPU" in report["mode"], f"{label}: mode {report['mode']!r}")
        print(f"{label}: {report['mode']}")


def main(argv):
    if len(argv) == 4 and argv[1] == "probe":
        probe(argv[2], argv[3])
    elif len(argv) == 4 and argv[1] == "load":
        load(argv[2], argv[3])
    else:
        fail(__doc__.split("\n\n")[1])
    print(f"peers_gpu_check {argv[1]}: ok")


if __name__ == "__main__":
    main(sys.argv)
