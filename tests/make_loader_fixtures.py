#!/usr/bin/python3
"""Fixtures for tests/test_cpu_loaders.sh that `ckptbench gen` does not make.

usage: make_loader_fixtures.py safetensors DIR   DIR/model.safetensors: 0-dim
           scalars, empty tensors, several dtypes, and a header whose length
           leaves the data section unaligned (no padding)
       make_loader_fixtures.py torch DIR         DIR/model.pt with torch.save
           (Debian's python3-torch): tied weights, a transposed view, a
           narrowed view with a storage offset, a 0-dim and an empty tensor,
           bf16; exits 77 when torch is not installed
Standard library only for the first; the second needs torch."""
import json
import os
import struct
import sys


def safetensors(out_dir):
    tensors = [  # name, dtype, shape, element bytes
        ("a.scalar_f32", "F32", [], 4),
        ("b.scalar_i64", "I64", [], 8),
        ("c.empty_f16", "F16", [0, 7], 2),
        ("d.empty_1d", "U8", [0], 1),
        ("e.odd_u8", "U8", [3, 5], 1),
        ("f.bf16", "BF16", [33, 17], 2),
        ("g.f64", "F64", [9], 8),
        ("h.bool", "BOOL", [11], 1),
    ]
    header, blobs, off = {}, [], 0
    for i, (name, dtype, shape, esize) in enumerate(tensors):
        n = esize
        for d in shape:
            n *= d
        blob = bytes((i * 37 + k * 11 + 3) % 256 for k in range(n))
        if dtype == "BOOL":
            blob = bytes(b & 1 for b in blob)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + n]}
        blobs.append(blob)
        off += n
    text = json.dumps(header, separators=(",", ":")).encode()
    if (8 + len(text)) % 8 == 0:  # keep the data start off any alignment
        text += b" "
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def torch_file(out_dir):
    try:
        import torch
    except ImportError:
        print("SKIP: no torch", file=sys.stderr)
        sys.exit(77)
    torch.manual_seed(5)
    emb = torch.randn(64, 48)
    base = torch.randn(40, 30)
    sd = {
        "embed.weight": emb,
        "lm_head.weight": emb,             # tied: one storage, two names
        "proj.weight_t": base.t(),         # strided view
        "proj.rows": base[5:25],           # storage offset, contiguous
        "proj.cols": base[:, 3:11],        # offset and strided
        "scale": torch.tensor(2.5),        # 0-dim
        "empty": torch.empty(0, 4),
        "half.weight": torch.randn(16, 16).to(torch.bfloat16),
        "ints": torch.arange(100, dtype=torch.int64),
    }
    os.makedirs(out_dir, exist_ok=True)
    torch.save(sd, os.path.join(out_dir, "model.pt"))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("safetensors", "torch"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    (safetensors if sys.argv[1] == "safetensors" else torch_file)(sys.argv[2])


if __name__ == "__main__":
    main()
