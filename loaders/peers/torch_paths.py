"""The real-library load paths of the Python peers (peer.py is the protocol):

  torch-load       model = M(); model.load_state_dict(torch.load(p)): the model
                   allocated and initialised (1x), every storage read into fresh
                   memory by torch.load (another 1x), copied in, then freed:
                   peak about 2x, the memory-doubling as it happens in torch
  torch-load-mmap  M() on the meta device, torch.load(mmap=True,
                   weights_only=True) and load_state_dict(assign=True): the
                   parameters become views into the mapped file (torch >= 2.1)
  safetensors-py   model = M(); safetensors.torch.load_file(p) then
                   model.load_state_dict (what safetensors' load_model does)
  torch-load-gpu   torch-load (map_location="cpu"), then model.to("cuda:N"):
                   host peak about 2x, device 1x (our pickle-gpu's meaning)
  safetensors-py-gpu
                   load_file(p, device="cuda:N"): the dict of device tensors is
                   the model (into=dict, what safetensors-gpu makes); or M() on
                   the device first and load_state_dict (into=model: safetensors'
                   load_model(model, p, device=...), device peak about 2x)

The GPU peers create the CUDA context in setup, before the baseline, and end
the timed load with torch.cuda.synchronize(); their peak_vram_bytes is
torch.cuda.max_memory_allocated() since the baseline (their own allocations
through torch's caching allocator, not the context or the cache's slack).

`M()` is a module whose parameters have the manifest's names, dtypes and
shapes, as a model class knows them before any file is read. Sharded
checkpoints load shard by shard, as transformers does (load_state_dict with
strict=False per shard, the shard's tensors dropped before the next).
"""
import time

import torch
import xxhash

# Manifest (safetensors) dtype names to torch's attribute names; a dtype this
# torch lacks makes the trial unsupported, not wrong.
DTYPES = {
    "BOOL": "bool", "U8": "uint8", "I8": "int8", "I16": "int16", "U16": "uint16",
    "I32": "int32", "U32": "uint32", "I64": "int64", "U64": "uint64",
    "F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64",
    "C64": "complex64", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
    "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz",
}

# Options of each peer with their defaults (the descriptors in loaders/ declare
# the same names and defaults, for `ckptbench loaders`).
OPTIONS = {
    "torch-load": {"init": "zeros", "weights-only": "default", "threads": "0"},
    "torch-load-mmap": {"touch": "1", "threads": "0"},
    "safetensors-py": {"init": "zeros", "threads": "0"},
    "torch-load-gpu": {"init": "zeros", "weights-only": "default", "threads": "0"},
    "safetensors-py-gpu": {"into": "dict", "init": "zeros", "threads": "0"},
}

# The GPU peers and the CPU peer whose path each extends.
GPU_BASE = {"torch-load-gpu": "torch-load", "safetensors-py-gpu": "safetensors-py"}

# The values each text option takes.
CHOICES = {"init": ("zeros", "uniform", "empty"), "weights-only": ("default", "true", "false"),
           "touch": ("1", "0"), "into": ("dict", "model")}

PAGE = 4096


def _unsupported(msg):
    from peer import Unsupported  # the protocol's exception, one definition
    return Unsupported(msg)


def _torch_dtype(name):
    dtype = getattr(torch, DTYPES.get(name, ""), None)
    if not isinstance(dtype, torch.dtype):
        raise _unsupported(f"torch {torch.__version__} has no dtype for {name}")
    return dtype


def model_class(manifest):
    """A module class with a parameter per manifest tensor, nested by the dots
    of its name (model.layers.0.mlp.up_proj.weight), as a real model's are."""
    specs = [(t["name"], _torch_dtype(t["dtype"]), tuple(t["shape"]))
             for t in manifest["tensors"]]

    class M(torch.nn.Module):
        def __init__(self, init="zeros", device=None):
            super().__init__()
            for name, dtype, shape in specs:
                owner = self
                *path, leaf = name.split(".")
                for part in path:
                    child = owner._modules.get(part)
                    if child is None:
                        child = torch.nn.Module()
                        owner.add_module(part, child)
                    owner = child
                # requires_grad=False: integer and bool parameters exist too,
                # and the load runs under no_grad either way.
                data = torch.empty(shape, dtype=dtype, device=device)
                _initialise(data, init)
                owner.register_parameter(leaf, torch.nn.Parameter(data, requires_grad=False))

    M.names = frozenset(name for name, _, _ in specs)
    return M


def _initialise(data, init):
    """What the model's constructor does to its memory: "zeros" touches every
    page as an initialiser does (the C loaders do the same), "uniform" is
    nn.Linear's kind of random init (slower, as real constructors are), and
    "empty" leaves the pages untouched until the copy faults them in."""
    if init == "empty" or data.device.type == "meta":
        return
    if init == "uniform" and (data.is_floating_point() or data.is_complex()):
        data.uniform_(-0.05, 0.05)
    else:
        data.zero_()


def _storage_bytes(t):
    """A uint8 tensor over the whole storage behind t (to touch its pages)."""
    storage = t.untyped_storage()
    return torch.empty(0, dtype=torch.uint8).set_(storage)


class Load:
    """A prepared load: run(clock) is the timed part and returns the model."""

    def __init__(self, name, manifest, files, opts, device, part=None):
        unknown = set(opts) - set(OPTIONS[name])
        if unknown:
            raise ValueError(f"{name} has no option {sorted(unknown)[0]}")
        self.name = name
        self.opts = dict(OPTIONS[name], **opts)
        for key, value in self.opts.items():
            if key in CHOICES and value not in CHOICES[key]:
                raise ValueError(f"option {key} takes {'|'.join(CHOICES[key])}, not {value!r}")
        self.files = files
        # A partial load (docs/partial-loads.md): name -> its part-file entry;
        # the manifest is then the part's (each tensor with its slice's shape).
        self.part = part
        if part is not None and name in GPU_BASE:
            raise _unsupported(f"{name} does not load a part of the model")
        self.base = GPU_BASE.get(name, name)
        self.gpu = name in GPU_BASE
        self.device = torch.device(device or ("cuda:0" if self.gpu else "cpu"))
        if self.gpu != (self.device.type == "cuda"):
            raise ValueError(f"{name} is a {'GPU' if self.gpu else 'CPU'} loader: "
                             f"--device {'cuda:N' if self.gpu else 'cpu'}, not {self.device}"
                             + ("" if self.gpu else f" (the GPU peers: {', '.join(GPU_BASE)})"))
        self.names = [t["name"] for t in manifest["tensors"]]
        self.M = model_class(manifest)
        threads = int(self.opts["threads"])
        if threads > 0:
            torch.set_num_threads(threads)
        self.context_s = None
        if self.gpu:
            self._open_device()
        self.mode = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
        if self.base == "torch-load":
            self.mode += f", init={self.opts['init']}, weights_only={self.opts['weights-only']}"
            if self.gpu:
                self.mode += f', map_location="cpu", then .to("{self.device}")'
        elif self.base == "torch-load-mmap":
            self.mode += ", meta model, assign=True, pages " + (
                "touched at a 4 KiB stride" if self.opts["touch"] == "1" else "not touched")
        else:
            import safetensors
            self.mode += f", safetensors {safetensors.__version__}, "
            if not self.gpu:
                self.mode += f"load_file + load_state_dict, init={self.opts['init']}"
            elif self.opts["into"] == "dict":
                self.mode += f'load_file(device="{self.device}") (its dict is the model)'
            else:
                self.mode += (f'M() on {self.device} + load_file(device="{self.device}") + '
                              f"load_state_dict, init={self.opts['init']}")
        if part is not None:
            self.mode += ", part: " + {
                "torch-load": "torch.load, narrow, load_state_dict (copy_)",
                "torch-load-mmap": "torch.load(mmap=True), narrow, clone",
                "safetensors-py": "safe_open(...).get_slice(name)[...]"}[self.base]
        if self.gpu:
            self.mode += (f", {torch.cuda.get_device_name(self.device)}, CUDA "
                          f"{torch.version.cuda or torch.version.hip}")

    def _open_device(self):
        """Setup of a GPU peer, before the baseline: the device checked, its
        CUDA context created (a first allocation and a synchronize: torch
        makes the context lazily, and it is not the load's cost)."""
        if not torch.cuda.is_available():
            raise _unsupported(f"torch {torch.__version__} sees no GPU "
                               "(torch.cuda.is_available() is False)")
        count = torch.cuda.device_count()
        index = self.device.index if self.device.index is not None else 0
        if index >= count:
            raise _unsupported(f"--device {self.device}: torch sees {count} GPU(s)")
        self.device = torch.device("cuda", index)
        torch.cuda.set_device(self.device)
        start = time.monotonic()
        torch.zeros(1, device=self.device)
        torch.cuda.synchronize(self.device)
        self.context_s = time.monotonic() - start

    def vram_baseline(self):
        """At the baseline: device bytes torch has allocated (None for a CPU
        peer), its peak statistics reset so the peak is the load's own."""
        if not self.gpu:
            return None
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        return torch.cuda.memory_allocated(self.device)

    def vram_report(self, baseline):
        """The report's VRAM keys (docs/peer-protocol.md), after the load.
        peak - baseline is the load's device growth, as for the C loaders."""
        peak = torch.cuda.max_memory_allocated(self.device)
        return {"peak_vram_bytes": peak, "baseline_vram_bytes": baseline,
                "vram_alloc_peak_bytes": peak, "cuda_context_s": self.context_s,
                "vram_source": "torch.cuda.max_memory_allocated (caching allocator)"}

    def run(self, clock):
        """The timed load; a GPU load ends with torch.cuda.synchronize(), so
        the clock stops when the copies have landed, not when they are queued."""
        with torch.no_grad():
            if self.name == "safetensors-py-gpu":
                model = self._safetensors_gpu(clock)
            elif self.base == "torch-load":
                model = self._classic(clock, self._torch_load)
            elif self.base == "safetensors-py" and self.part is not None:
                model = self._classic(clock, self._safetensors_slices)
            elif self.base == "safetensors-py":
                from safetensors.torch import load_file
                model = self._classic(clock, lambda f: load_file(f, device="cpu"))
            else:
                model = self._mmap(clock)
            if self.name == "torch-load-gpu":
                clock.enter("to_device")
                model.to(self.device)  # each parameter's host memory freed as it moves
            if self.gpu:
                torch.cuda.synchronize(self.device)
        return model

    def _safetensors_gpu(self, clock):
        """load_file(device=...) per file: safetensors reads and moves each
        tensor in one call, so the whole of it is the read phase. into=model:
        M() on the device first (init), then load_state_dict (copy)."""
        from safetensors.torch import load_file
        device = str(self.device)
        if self.opts["into"] == "model":
            return self._classic(clock, lambda f: load_file(f, device=device), self.device)
        model = {}
        for path in self.files:
            clock.enter("read")
            sd = load_file(path, device=device)
            unexpected = [n for n in sd if n not in self.M.names]
            if unexpected:
                raise ValueError(f"{path}: tensor {unexpected[0]} is not in the model")
            model.update(sd)
        self._check_complete(model.keys())
        return model

    def _narrow(self, sd, clone=False):
        """A partial load's tensors of one file's state dict: each selected
        tensor narrowed to its part (a view; with `clone`, copied out, as
        `t.narrow(...).clone()` does), the others dropped with the dict."""
        if self.part is None:
            return sd
        out = {}
        for name, t in sd.items():
            p = self.part.get(name)
            if p is None:
                continue
            if p["role"] in ("column", "row", "vocab"):
                t = t.narrow(p["dim"], p["start"], p["length"])
                if clone:
                    t = t.clone()
            out[name] = t
        return out

    def _safetensors_slices(self, path):
        """safe_open(...).get_slice(name)[...]: only each part's bytes read."""
        from safetensors import safe_open
        sd = {}
        with safe_open(path, framework="pt", device="cpu") as f:
            for name in f.keys():
                p = self.part.get(name)
                if p is None:
                    continue
                if p["role"] in ("column", "row", "vocab"):
                    index = (slice(None),) * p["dim"] + (slice(p["start"], p["start"] + p["length"]),)
                    sd[name] = f.get_slice(name)[index]
                else:
                    sd[name] = f.get_tensor(name)
        return sd

    def _torch_load(self, path):
        kwargs = {"map_location": "cpu"}
        if self.opts["weights-only"] != "default":
            kwargs["weights_only"] = self.opts["weights-only"] == "true"
        return torch.load(path, **kwargs)

    def _classic(self, clock, read, device=None):
        """M() (on `device`, else the host), then per file: read it whole,
        copy into the model, drop it."""
        clock.enter("init")
        model = self.M(self.opts["init"], device)
        loaded = set()
        for path in self.files:
            clock.enter("read")
            sd = read(path)
            clock.enter("copy")
            sd = self._narrow(sd) if read != self._safetensors_slices else sd
            self._load_state_dict(model, sd, path, loaded)
            del sd  # frees the loaded storages, inside the timed region
        self._check_complete(loaded)
        return model

    def _mmap(self, clock):
        """M() on meta, then per file: map it, assign its tensors, touch them."""
        clock.enter("init")
        with torch.device("meta"):
            model = self.M("empty")
        loaded = set()
        for path in self.files:
            clock.enter("read")
            sd = torch.load(path, mmap=True, weights_only=True, map_location="cpu")
            clock.enter("copy")
            sd = self._narrow(sd, clone=True)
            self._load_state_dict(model, sd, path, loaded, assign=True)
            if self.opts["touch"] == "1":
                # Every page resident inside the timed region, as for every
                # loader; one read per page, each storage once.
                seen = set()
                for t in sd.values():
                    if t.untyped_storage().data_ptr() not in seen:
                        seen.add(t.untyped_storage().data_ptr())
                        _storage_bytes(t)[::PAGE].sum()
            del sd
        self._check_complete(loaded)
        return model

    def _load_state_dict(self, model, sd, path, loaded, **kwargs):
        strict = len(self.files) == 1
        result = model.load_state_dict(sd, strict=strict, **kwargs)
        if result.unexpected_keys:
            raise ValueError(f"{path}: tensor {result.unexpected_keys[0]} is not in the model")
        loaded.update(sd.keys())

    def _check_complete(self, loaded):
        missing = [n for n in self.names if n not in loaded]
        if missing:
            raise ValueError(f"no file holds tensor {missing[0]} ({len(missing)} missing)")


def prepare(name, manifest, files, opts, device, part=None):
    return Load(name, manifest, files, opts, device, part)


def tensor_xxh3(t):
    """XXH3-64 (seed 0) of the tensor's bytes in C order, as in the manifest."""
    flat = t.detach().cpu().contiguous().reshape(-1)
    raw = flat.view(torch.uint8) if flat.numel() else flat.new_empty(0, dtype=torch.uint8)
    return xxhash.xxh3_64_hexdigest(raw.numpy())


def verify(model, manifest):
    """(number of tensors that differ from the manifest, the first's message).
    model: a module, or a dict of tensors (load_file's); device tensors are
    copied back to the host to be hashed (tensor_xxh3)."""
    params = model if isinstance(model, dict) else model.state_dict(keep_vars=True)
    bad, first = 0, ""
    for want in manifest["tensors"]:
        t = params.get(want["name"])
        if t is None:
            why = "missing from the model"
        elif t.dtype != _torch_dtype(want["dtype"]) or list(t.shape) != want["shape"]:
            why = f"is {t.dtype} {list(t.shape)}, the manifest says {want['dtype']} {want['shape']}"
        elif "xxh3" in want and tensor_xxh3(t) != want["xxh3"]:
            why = f"loaded bytes have XXH3 {tensor_xxh3(t)}, the manifest says {want['xxh3']}"
        else:
            continue
        bad += 1
        first = first or f"{want['name']}: {why}"
    return bad, first
