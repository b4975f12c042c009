#!/usr/bin/python3
"""Makes checkpoints with the real torch (Debian's python3-torch) in DIR and
writes DIR/cases.json: for each file, either what torch itself reports
(tensor names as key paths joined with '.', safetensors dtype names, shapes,
byte counts, XXH3-64 of t.contiguous()'s bytes) or that ckptbench must
refuse it (exit status 1, a message substring, and for the malicious
pickles a side-effect file that must not appear).

usage: make_torch_files.py DIR
Run with /usr/bin/python3 (Debian's, which has torch and xxhash)."""
import collections
import io
import json
import os
import sys

import torch
import torch.nn as nn
import xxhash

DTYPES = {
    torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8", torch.int16: "I16",
    torch.int32: "I32", torch.int64: "I64", torch.float16: "F16",
    torch.bfloat16: "BF16", torch.float32: "F32", torch.float64: "F64",
    torch.complex64: "C64",
}

# torch 1.13's data.pkl of nn.Linear(3, 1, bias=False) with weight [[1, 2, 3]]
# (docs/datasets-and-method.md §4.2): 229 bytes.
LINEAR_PKL = bytes.fromhex(
    "80026363 6f6c6c65 6374696f 6e730a4f 72646572 65644469 63740a71 00295271"
    "01580600 00007765 69676874 71026374 6f726368 2e5f7574 696c730a 5f726562"
    "75696c64 5f74656e 736f725f 76320a71 03282858 07000000 73746f72 61676571"
    "0463746f 7263680a 466c6f61 7453746f 72616765 0a710558 01000000 30710658"
    "03000000 63707571 074b0374 7108514b 004b014b 03867109 4b034b01 86710a89"
    "68002952 710b7471 0c52710d 737d710e 58090000 005f6d65 74616461 7461710f"
    "68002952 71105800 00000071 117d7112 58070000 00766572 73696f6e 71134b01"
    "73737362 2e".replace(" ", ""))


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def expected(obj):
    """What torch sees: every tensor under its key path."""
    out = []

    def walk(v, path):
        if isinstance(v, torch.Tensor):
            out.append({"name": ".".join(path), "dtype": DTYPES[v.dtype],
                        "shape": list(v.shape),
                        "nbytes": v.numel() * v.element_size(),
                        "xxh3": xxhash.xxh3_64_hexdigest(tensor_bytes(v))})
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(x, path + [str(k)])
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                walk(x, path + [str(i)])

    walk(obj, [])
    return sorted(out, key=lambda t: t["name"].encode())


class Evil:
    """Pickles as a call to os.system: torch.load without weights_only runs it."""

    def __init__(self, side_effect):
        self.side_effect = side_effect

    def __reduce__(self):
        return (os.system, ("touch " + self.side_effect,))


def main():
    out = sys.argv[1]
    cases = []

    def save(name, obj, legacy=False, **kw):
        path = os.path.join(out, name)
        torch.save(obj, path, _use_new_zipfile_serialization=not legacy, **kw)
        # torch reads it back with the same tensors (plain torch.load: 1.13's
        # weights-only unpickler lacks BINFLOAT, and these files are ours)
        back = torch.load(path)
        assert expected(back) == expected(obj), name
        cases.append({"file": name, "tensors": expected(obj)})
        return path

    def refuse(name, needle, side_effect=None):
        cases.append({"file": name, "refuse": needle, "side_effect": side_effect})

    torch.manual_seed(0)

    # real modules' state dicts
    mlp = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4))
    conv = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.LayerNorm([8, 6, 6]))
    enc = nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32)
    lstm = nn.LSTM(8, 12, num_layers=2)
    for name, module in [("mlp", mlp), ("conv", conv), ("encoder", enc), ("lstm", lstm)]:
        save(name + ".pt", module.state_dict())
        save(name + "_legacy.pt", module.state_dict(), legacy=True)

    # tied weights: one storage under two names
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.head = nn.Linear(4, 10, bias=False)
            self.head.weight = self.embed.weight

    save("tied.pt", Tied().state_dict())
    save("tied_legacy.pt", Tied().state_dict(), legacy=True)

    # views with offsets and strides into one storage
    base = torch.arange(48, dtype=torch.float32)
    grid = base.view(6, 8)
    views = {"base": base, "slice": base[2:14].view(3, 4), "t": grid.t(),
             "every_other": base[::2], "cols": grid[:, 1:3], "row": grid[3],
             "expanded": torch.arange(3.0).expand(4, 3),
             "channels_last": torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last),
             "narrow_t": grid[1:5, 2:7].t()}
    save("views.pt", views)
    save("views_legacy.pt", views, legacy=True)

    # every dtype torch 1.13 saves that safetensors can name
    dtypes = {}
    for dtype in DTYPES:
        if dtype == torch.bool:
            dtypes["bool"] = torch.rand(5, 3) > 0.5
        elif dtype.is_floating_point or dtype.is_complex:
            dtypes[str(dtype)[6:]] = torch.randn(5, 3).to(dtype)
        else:
            info = torch.iinfo(dtype)
            dtypes[str(dtype)[6:]] = torch.randint(max(info.min, -1000), min(info.max, 1000),
                                                   (5, 3), dtype=dtype)
    save("dtypes.pt", dtypes)
    save("dtypes_legacy.pt", dtypes, legacy=True)
    # and those it cannot: refused by name, not dropped
    torch.save({"c": torch.randn(3, dtype=torch.complex128)}, os.path.join(out, "c128.pt"))
    refuse("c128.pt", "torch.complex128")
    q = torch.quantize_per_tensor(torch.randn(4), 0.1, 0, torch.qint8)
    torch.save({"q": q}, os.path.join(out, "qint8.pt"))
    refuse("qint8.pt", "quantized tensors")

    # 0-dim and empty tensors
    save("shapes.pt", {"scalar": torch.tensor(3.5), "int_scalar": torch.tensor(7),
                       "empty": torch.empty(0), "empty2": torch.empty(0, 4),
                       "empty3": torch.zeros(2, 0, 3), "one": torch.ones(1, 1, 1)})
    save("shapes_legacy.pt", {"scalar": torch.tensor(3.5), "empty": torch.empty(0)},
         legacy=True)

    # nn.Parameter (_rebuild_parameter)
    save("params.pt", {"p": nn.Parameter(torch.randn(3, 2)),
                       "frozen": nn.Parameter(torch.randn(2), requires_grad=False)})
    save("params_list.pt", list(mlp.parameters()))

    # a training checkpoint: model, optimizer state, plain values
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 5,
            "step": 2 ** 40, "loss": 0.125, "name": "run-\u00e9", "flags": [True, None],
            "config": {"betas": (0.9, 0.999), "dims": [4, 8, 2]},
            "rng": torch.get_rng_state(), "history": [torch.ones(2), (torch.zeros(1),)],
            "by_int": {3: torch.ones(3), 10: torch.zeros(1)},
            "ordered": collections.OrderedDict([("z", torch.ones(1)), ("a", torch.ones(2))])}
    save("training.pt", ckpt)
    save("training_legacy.pt", ckpt, legacy=True)
    save("training_proto4.pt", ckpt, pickle_protocol=4)

    # thousands of tensors
    many = collections.OrderedDict((f"layers.{i}.weight", torch.randn(4)) for i in range(5000))
    save("many.pt", many)
    save("many_legacy.pt", many, legacy=True)

    # saved to a stream: the archive prefix is "archive"
    buf = io.BytesIO()
    torch.save(mlp.state_dict(), buf)
    with open(os.path.join(out, "stream.pt"), "wb") as f:
        f.write(buf.getvalue())
    cases.append({"file": "stream.pt", "tensors": expected(mlp.state_dict())})

    # a sharded pytorch_model-*.bin directory with its index
    shard_dir = os.path.join(out, "sharded")
    os.mkdir(shard_dir)
    sd = enc.state_dict()
    names = list(sd)
    halves = [names[: len(names) // 2], names[len(names) // 2:]]
    weight_map = {}
    for k, part in enumerate(halves):
        fname = f"pytorch_model-0000{k + 1}-of-00002.bin"
        torch.save({n: sd[n] for n in part}, os.path.join(shard_dir, fname))
        weight_map.update({n: fname for n in part})
    total = sum(t.numel() * t.element_size() for t in sd.values())
    with open(os.path.join(shard_dir, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f)
    cases.append({"file": "sharded", "tensors": expected(sd)})

    # the golden nn.Linear: torch writes exactly the reference's 229 bytes
    lin = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 2.0, 3.0]]))
    path = save("lin.pt", lin.state_dict())
    import zipfile
    with zipfile.ZipFile(path) as z:
        assert z.read("lin/data.pkl") == LINEAR_PKL, "torch's nn.Linear pickle changed"
    assert os.path.getsize(path) == 799, os.path.getsize(path)

    # malicious pickles: would run a command under plain torch.load
    for name, legacy in [("evil.pt", False), ("evil_legacy.pt", True)]:
        side = os.path.join(out, name + ".pwned")
        torch.save({"w": torch.ones(2), "x": Evil(side)}, os.path.join(out, name),
                   _use_new_zipfile_serialization=not legacy)
        refuse(name, "refused global posix.system", side)
    # a TorchScript archive passed off as a checkpoint
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), os.path.join(out, "script.pt"))
    refuse("script.pt", "TorchScript archive")

    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(cases, f)
    print(f"made {len(cases)} cases in {out}")


if __name__ == "__main__":
    main()
