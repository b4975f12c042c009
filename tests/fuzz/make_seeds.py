#!/usr/bin/python3
"""Makes the committed seed corpora of the fuzz targets (tests/fuzz/corpus/).

usage: make_seeds.py CKPTBENCH

Seeds are small valid files of every kind the readers accept: the vendored
safetensors fixtures, `ckptbench gen` models in both formats (few-large and
many-small at 8 KiB), and, where Debian's python3-torch is importable, real
torch.save files (zip, legacy, protocol 4, views, tied weights, Parameters).
The unpickler's seeds are those files' pickles with the mode byte the target
reads first (0 zip data.pkl, 1 legacy); the convert seeds carry the byte that
picks the output format (0 .safetensors, 1 .pt). Run it again and commit the
result when the writers change; the malformed files of tests/data/bad/ are
replayed beside these anyway."""
import glob
import hashlib
import io
import os
import pickletools
import shutil
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def put(target, data, tag):
    """Stores data as corpus/TARGET/TAG-<sha1 prefix> (stable names)."""
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    name = "%s-%s" % (tag, hashlib.sha1(data).hexdigest()[:12])
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def pickles_of_legacy(data):
    """The pickles of a legacy torch.save stream, in order (found by walking
    opcodes, never by unpickling)."""
    out, pos = [], 0
    for _ in range(4):
        end = pos
        for op, _arg, at in pickletools.genops(io.BytesIO(data[pos:])):
            if op.name == "STOP":
                end = pos + at + 1
                break
        out.append(data[pos:end])
        pos = end
    return out


def torch_files(tmp):
    """Small real torch.save files; [] where torch is not installed."""
    script = r'''
import collections, sys, torch
d = sys.argv[1]
sd = collections.OrderedDict()
sd["w"] = torch.arange(6, dtype=torch.float32).reshape(2, 3)
sd["b"] = torch.ones(3, dtype=torch.float16)
base = torch.arange(12, dtype=torch.bfloat16)
sd["view"] = base[2:8].reshape(2, 3).t()
sd["tied"] = sd["w"]
sd["i"] = torch.tensor([1, 2], dtype=torch.int64)
sd["scalar"] = torch.tensor(3.5)
sd["empty"] = torch.zeros(0, 4)
sd["meta"] = {"step": 3, "name": "x", "lr": 0.1, "list": [1, (2, 3)]}
torch.save(sd, d + "/zip.pt")
torch.save(sd, d + "/legacy.pt", _use_new_zipfile_serialization=False)
torch.save(sd, d + "/proto4.pt", pickle_protocol=4)
torch.save(torch.nn.Linear(3, 1, bias=False).state_dict(), d + "/linear.pt")
torch.save({"p": torch.nn.Parameter(torch.ones(2))}, d + "/param.pt")
'''
    r = subprocess.run(["/usr/bin/python3", "-c", script, tmp], capture_output=True)
    if r.returncode != 0:
        print("make_seeds: no torch here; torch.save seeds skipped", file=sys.stderr)
        return []
    return sorted(glob.glob(os.path.join(tmp, "*.pt")))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    ckptbench = sys.argv[1]
    for t in ("safetensors", "ptzip", "unpickle", "inspect", "convert"):
        shutil.rmtree(os.path.join(HERE, "corpus", t), ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        for preset in ("few-large", "many-small"):
            subprocess.run([ckptbench, "gen", "--preset", preset, "--size", "8K",
                            "--formats", "safetensors,pytorch", "--quiet", "--no-sync",
                            "-o", tmp], check=True)
        st = sorted(glob.glob(os.path.join(ROOT, "tests/data/fixtures/**/*.safetensors"),
                              recursive=True))
        st += sorted(glob.glob(os.path.join(tmp, "*/*.safetensors")))
        pt = sorted(glob.glob(os.path.join(tmp, "*/*.pt"))) + torch_files(tmp)
        for path in st:
            data = open(path, "rb").read()
            tag = os.path.basename(path).split(".")[0]
            put("safetensors", data, tag)
            put("inspect", data, tag)
            put("convert", b"\x01" + data, tag)
        for path in pt:
            data = open(path, "rb").read()
            tag = os.path.basename(os.path.dirname(path)) + "-" + os.path.basename(path)
            tag = tag.replace(".", "_")
            put("inspect", data, tag)
            put("convert", b"\x00" + data, tag)
            if data[:4] == b"PK\x03\x04":
                put("ptzip", data, tag)
                with zipfile.ZipFile(path) as z:
                    for name in z.namelist():
                        if name.endswith("data.pkl"):
                            put("unpickle", b"\x00" + z.read(name), tag)
            else:
                for k, p in enumerate(pickles_of_legacy(data)):
                    put("unpickle", b"\x01" + p, "%s-%d" % (tag, k))


if __name__ == "__main__":
    main()
