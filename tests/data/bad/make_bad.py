#!/usr/bin/env python3
"""Makes the malformed-file corpus (tests/data/bad/): small hostile or broken
checkpoints, one broken rule each. The files are committed; this script is
how they were made (python3, no torch needed).

usage: make_bad.py [DIR]     (default: this script's directory)

Names say the format: st-* safetensors, zip-* the .pt zip container, pk-*
the pickle inside a valid zip, legacy-* the pre-1.6 stream, other-* files
that are no checkpoint at all. What ckptbench must say about each is in
EXPECTED (file, exit status, message substring), which the test
tests/cli/test_bad.sh checks."""
import json
import os
import struct
import sys
import zlib

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


# ------------------------------------------------------------ safetensors

def st(header, data=b"", n=None):
    """A safetensors file: u64le N, the header bytes, the data."""
    if not isinstance(header, bytes):
        header = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(header) if n is None else n) + header + data


def t(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


GOOD = {"a": t("F32", [2], 0, 8)}


def safetensors_files():
    write("st-empty.safetensors", b"")
    write("st-short-length.safetensors", b"\x10\x00\x00")
    write("st-header-too-large.safetensors", st(b"{}", n=100000001))
    write("st-header-past-eof.safetensors", st(b'{"a":1}', n=1000))
    # 99,999,999 is under the limit: the reader must not allocate it first.
    write("st-header-claims-99mb.safetensors", st(b'{"a":1}', n=99999999))
    write("st-length-overflow.safetensors", st(b"{}", n=0xFFFFFFFFFFFFFFFF))
    write("st-header-empty.safetensors", st(b""))
    write("st-bad-utf8.safetensors", st(b'{"\xff":' + b'{"dtype":"F32","shape":[2],'
                                        b'"data_offsets":[0,8]}}', b"\0" * 8))
    write("st-utf8-surrogate.safetensors", st(b'{"\xed\xa0\x80":{"dtype":"F32","shape":[2],'
                                              b'"data_offsets":[0,8]}}', b"\0" * 8))
    write("st-not-json.safetensors", st(b'{"a":'))
    write("st-not-object.safetensors", st(b"[]"))
    write("st-trailing-garbage.safetensors", st(b"{} x"))
    write("st-trailing-nul.safetensors", st(b"{}\0"))
    write("st-duplicate-key.safetensors",
          st(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
             b'"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', b"\0" * 8))
    write("st-nul-in-name.safetensors", st({"a\0b": t("F32", [2], 0, 8)}, b"\0" * 8))
    write("st-unknown-dtype.safetensors", st({"a": t("F17", [2], 0, 8)}, b"\0" * 8))
    write("st-dtype-not-string.safetensors",
          st({"a": {"dtype": 4, "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8))
    write("st-missing-dtype.safetensors",
          st({"a": {"shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8))
    write("st-missing-shape.safetensors",
          st({"a": {"dtype": "F32", "data_offsets": [0, 8]}}, b"\0" * 8))
    write("st-missing-offsets.safetensors", st({"a": {"dtype": "F32", "shape": [2]}}, b"\0" * 8))
    write("st-shape-negative.safetensors", st({"a": t("F32", [-2], 0, 8)}, b"\0" * 8))
    write("st-shape-fraction.safetensors", st({"a": t("F32", [1.5], 0, 8)}, b"\0" * 8))
    write("st-shape-not-array.safetensors",
          st({"a": {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]}}, b"\0" * 8))
    write("st-shape-2e64.safetensors",
          st(b'{"a":{"dtype":"F32","shape":[18446744073709551616,0],"data_offsets":[0,0]}}'))
    write("st-offsets-three.safetensors",
          st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 8]}}, b"\0" * 8))
    write("st-offsets-reversed.safetensors", st({"a": t("F32", [2], 8, 0)}, b"\0" * 8))
    write("st-offsets-gap.safetensors",
          st({"a": t("F32", [1], 0, 4), "b": t("F32", [1], 8, 12)}, b"\0" * 12))
    write("st-offsets-overlap.safetensors",
          st({"a": t("F32", [2], 0, 8), "b": t("F32", [2], 4, 12)}, b"\0" * 12))
    write("st-offsets-not-at-zero.safetensors", st({"a": t("F32", [2], 4, 12)}, b"\0" * 12))
    write("st-size-mismatch.safetensors", st({"a": t("F32", [3], 0, 8)}, b"\0" * 8))
    write("st-numel-overflow.safetensors",
          st({"a": t("F32", [1 << 32, 1 << 32, 16], 0, 8)}, b"\0" * 8))
    write("st-subbyte-misaligned.safetensors", st({"a": t("F4", [3], 0, 2)}, b"\0" * 2))
    write("st-trailing-bytes.safetensors", st(GOOD, b"\0" * 12))
    write("st-missing-bytes.safetensors", st(GOOD, b"\0" * 4))
    write("st-metadata-not-string.safetensors",
          st({"__metadata__": {"k": 1}, **GOOD}, b"\0" * 8))
    write("st-metadata-null.safetensors", st({"__metadata__": None, **GOOD}, b"\0" * 8))
    write("st-tensor-not-object.safetensors", st({"a": 5}))
    write("st-rank-65.safetensors", st({"a": t("U8", [1] * 65, 0, 1)}, b"\0"))
    write("st-name-too-long.safetensors", st({"n" * 65537: t("U8", [1], 0, 1)}, b"\0"))
    deep = b"[" * 100 + b"]" * 100
    write("st-json-too-deep.safetensors",
          st(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":' + deep + b"}}", b"\0"))
    write("st-git-lfs-pointer.safetensors",
          b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 1\n")
    write("st-html-page.safetensors", b"<!DOCTYPE html><html><body>404</body></html>\n")


# ------------------------------------------------------------ pickles

def pint(n):
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if 0 <= n < 65536:
        return b"M" + struct.pack("<H", n)
    if -(1 << 31) <= n < (1 << 31):
        return b"J" + struct.pack("<i", n)
    nb = (n.bit_length() + 8) // 8
    return b"\x8a" + bytes([nb]) + n.to_bytes(nb, "little", signed=True)


def pstr(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def glob(mod, name):
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"


def tup(*items):
    return b"(" + b"".join(items) + b"t"


def odict():
    return glob("collections", "OrderedDict") + b")R"


def tensor(key="0", cls="FloatStorage", numel=2, offset=0, shape=(2,), stride=(1,)):
    """A _rebuild_tensor_v2 call on storage `key`, as torch pickles it."""
    pid = tup(pstr("storage"), glob("torch", cls), pstr(key), pstr("cpu"), pint(numel))
    return (glob("torch._utils", "_rebuild_tensor_v2") +
            tup(pid + b"Q", pint(offset), tup(*map(pint, shape)), tup(*map(pint, stride)),
                b"\x89", odict()) + b"R")


def state_dict(*entries):
    """An OrderedDict of name -> pickled value, then STOP."""
    body = b"".join(pstr(k) + v + b"s" for k, v in entries)
    return b"\x80\x02" + odict() + body + b"."


# ------------------------------------------------------------ zip

def zip_bytes(records, method=0, flags=0, fix=None):
    """A zip of stored records (name, data) laid out plainly; `fix` may edit
    the central-directory entries (a list of dicts) before they are written."""
    out, cd = bytearray(), []
    for name, data in records:
        nb = name.encode()
        crc = zlib.crc32(data)
        e = {"name": nb, "off": len(out), "crc": crc, "csize": len(data), "usize": len(data),
             "method": method, "flags": flags, "extra": b"", "disk": 0}
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, 0, 0, crc,
                           len(data), len(data), len(nb), 0) + nb + data
        cd.append(e)
    if fix:
        fix(cd)
    cd_off = len(out)
    for e in cd:
        out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, e["flags"], e["method"],
                           0, 0, e["crc"], e["csize"], e["usize"], len(e["name"]),
                           len(e["extra"]), 0, e["disk"], 0, 0, e["off"]) + e["name"] + e["extra"]
    cd_size = len(out) - cd_off
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(cd), len(cd), cd_size, cd_off, 0)
    return bytes(out)


F32x2 = struct.pack("<2f", 1.0, 2.0)


def pt(pkl, storages=(("0", F32x2),), extra=()):
    recs = [("archive/data.pkl", pkl)] + [("archive/data/" + k, v) for k, v in storages]
    recs += [("archive/version", b"3\n")] + list(extra)
    return zip_bytes(recs)


GOOD_PKL = state_dict(("w", tensor()))


def zip64_end(base, zip64_eocd_off, entries, cd_size, cd_off):
    """base (a zip without its end record) plus ZIP64 end record, locator and
    an end record whose fields say 'see ZIP64'."""
    z64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, entries, entries,
                      cd_size, cd_off)
    loc = struct.pack("<IIQI", 0x07064B50, 0, zip64_eocd_off, 1)
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                       0xFFFFFFFF, 0)
    return base + z64 + loc + eocd


def zip_files():
    good = pt(GOOD_PKL)
    write("zip-truncated-half.pt", good[: len(good) // 2])
    write("zip-truncated-end-record.pt", good[:-10])
    cd_off = struct.unpack("<I", good[-6:-2])[0]
    write("zip-truncated-central-dir.pt", good[: cd_off + 20] + good[-22:])
    flip = bytearray(good)
    flip[cd_off] ^= 0x01  # the first central-directory signature
    write("zip-bitflip-cd-signature.pt", bytes(flip))
    flip = bytearray(good)
    flip[-6] ^= 0x40  # the end record's central-directory offset
    write("zip-bitflip-cd-offset.pt", bytes(flip))
    flip = bytearray(good)
    flip[-10] ^= 0x01  # the end record's central-directory entry count
    write("zip-bitflip-entry-count.pt", bytes(flip))

    def overlap(cd):  # data/0's data runs on over the next local header
        cd[1]["csize"] = cd[1]["usize"] = cd[1]["csize"] + 20
    write("zip-records-overlap.pt", zip_bytes([("archive/data.pkl", GOOD_PKL),
                                                ("archive/data/0", F32x2),
                                                ("archive/version", b"3\n")], fix=overlap))

    def out_of_file(cd):
        cd[1]["csize"] = cd[1]["usize"] = 1 << 30
    write("zip-record-out-of-file.pt", zip_bytes([("archive/data.pkl", GOOD_PKL),
                                                   ("archive/data/0", F32x2),
                                                   ("archive/version", b"3\n")], fix=out_of_file))

    def header_out(cd):
        cd[1]["off"] = 1 << 31
    write("zip-local-header-out-of-file.pt",
          zip_bytes([("archive/data.pkl", GOOD_PKL), ("archive/data/0", F32x2),
                     ("archive/version", b"3\n")], fix=header_out))
    write("zip-compressed.pt", zip_bytes([("archive/data.pkl", GOOD_PKL),
                                          ("archive/data/0", F32x2),
                                          ("archive/version", b"3\n")], method=8))
    write("zip-encrypted.pt", zip_bytes([("archive/data.pkl", GOOD_PKL),
                                         ("archive/data/0", F32x2),
                                         ("archive/version", b"3\n")], flags=1))

    def multidisk(cd):
        cd[0]["disk"] = 3
    write("zip-other-disk.pt", zip_bytes([("archive/data.pkl", GOOD_PKL),
                                          ("archive/data/0", F32x2),
                                          ("archive/version", b"3\n")], fix=multidisk))

    write("zip-duplicate-names.pt", zip_bytes([("archive/data.pkl", GOOD_PKL),
                                               ("archive/data/0", F32x2),
                                               ("archive/data/0", F32x2),
                                               ("archive/version", b"3\n")]))

    def size_lie(cd):  # a ZIP64 extra field that claims 2^62 bytes
        cd[1]["csize"] = cd[1]["usize"] = 0xFFFFFFFF
        cd[1]["extra"] = struct.pack("<HHQQ", 1, 16, 1 << 62, 1 << 62)
    write("zip64-extra-size-lies.pt", zip_bytes([("archive/data.pkl", GOOD_PKL),
                                                 ("archive/data/0", F32x2),
                                                 ("archive/version", b"3\n")], fix=size_lie))

    def offset_lie(cd):  # a ZIP64 extra field whose offset is past the end
        cd[1]["off"] = 0xFFFFFFFF
        cd[1]["extra"] = struct.pack("<HHQ", 1, 8, 1 << 40)
    write("zip64-extra-offset-lies.pt",
          zip_bytes([("archive/data.pkl", GOOD_PKL), ("archive/data/0", F32x2),
                     ("archive/version", b"3\n")], fix=offset_lie))
    base = good[:cd_off] + good[cd_off:-22]
    cd_size = len(good) - 22 - cd_off
    write("zip64-locator-lies.pt", zip64_end(base, 1 << 40, 3, cd_size, cd_off))
    write("zip64-cd-offset-lies.pt", zip64_end(base, len(base), 3, cd_size, 1 << 40))
    write("zip64-cd-size-lies.pt", zip64_end(base, len(base), 3, 400 << 20, cd_off))
    write("zip64-entry-count-lies.pt", zip64_end(base, len(base), 1 << 40, cd_size, cd_off))
    write("zip-no-data-pkl.pt", zip_bytes([("archive/data/0", F32x2),
                                           ("archive/version", b"3\n")]))
    write("zip-torchscript.pt", pt(GOOD_PKL, extra=[("archive/constants.pkl", b"\x80\x02).")]))
    write("zip-version-99.pt", zip_bytes([("archive/data.pkl", GOOD_PKL),
                                          ("archive/data/0", F32x2),
                                          ("archive/version", b"99\n")]))
    write("zip-big-endian.pt", pt(GOOD_PKL, extra=[("archive/byteorder", b"big")]))
    write("zip-storage-missing.pt", pt(state_dict(("w", tensor(key="1")))))
    # The record holds 8 bytes, the pickle says 1000 elements (CVE-2026-24747).
    write("zip-numel-disagrees.pt", pt(state_dict(("w", tensor(numel=1000)))))
    write("zip-numel-smaller-than-record.pt", pt(state_dict(("w", tensor(numel=1,
                                                                          shape=(1,))))))


def pickle_files():
    def evil(name, mod, fn):
        pkl = b"\x80\x02" + glob(mod, fn) + pstr("touch /tmp/ckptbench-pwned") + b"\x85R."
        write(name, pt(pkl))
    evil("pk-os-system.pt", "os", "system")
    evil("pk-posix-system.pt", "posix", "system")
    evil("pk-nt-system.pt", "nt", "system")
    evil("pk-subprocess-popen.pt", "subprocess", "Popen")
    evil("pk-builtins-eval.pt", "builtins", "eval")
    evil("pk-builtins-exec.pt", "builtins", "exec")
    evil("pk-builtin-getattr.pt", "__builtin__", "getattr")
    evil("pk-torch-jit-load.pt", "torch.jit", "load")
    evil("pk-torch-jit-unsafe.pt", "torch.jit._script", "RecursiveScriptModule")
    # protocol 4: the global named by STACK_GLOBAL from two strings
    write("pk-stack-global-os.pt",
          pt(b"\x80\x04" + b"\x8c\x02os\x8c\x06system\x93" + pstr("id") + b"\x85R."))
    # a forbidden global hidden after a valid tensor
    write("pk-late-eval.pt",
          pt(b"\x80\x02" + odict() + pstr("w") + tensor() + b"s" + pstr("x") +
             glob("builtins", "eval") + pstr("1") + b"\x85Rs."))
    write("pk-deep-nesting.pt", pt(b"\x80\x02" + b"]" * 5000 + b"a" * 4999 + b"."))
    write("pk-mark-depth.pt", pt(b"\x80\x02" + b"(" * 1000 + b")" + b"t" * 1000 + b"."))
    write("pk-memo-get-unset.pt", pt(b"\x80\x02" + b"h\x07."))
    write("pk-memo-huge-index.pt", pt(b"\x80\x02N" + b"r" + struct.pack("<I", 0xFFFFFFF0) + b"."))
    write("pk-memo-get-huge.pt", pt(b"\x80\x02" + b"j" + struct.pack("<I", 0x7FFFFFFF) + b"."))
    write("pk-long1-huge.pt", pt(state_dict(("w", tensor(shape=(1 << 2000,), stride=(1,))))))
    write("pk-long4.pt", pt(b"\x80\x02\x8b" + struct.pack("<I", 0x7FFFFFFF) + b"\x01."))
    write("pk-unicode-past-end.pt", pt(b"\x80\x02X" + struct.pack("<I", 0xFFFFFFFF) + b"ab."))
    write("pk-shape-negative.pt", pt(state_dict(("w", tensor(shape=(-2,))))))
    write("pk-shape-overflow.pt", pt(state_dict(("w", tensor(shape=(1 << 32, 1 << 32, 16),
                                                             stride=(1, 1, 1))))))
    write("pk-stride-past-storage.pt", pt(state_dict(("w", tensor(shape=(2,), stride=(5,))))))
    write("pk-stride-negative.pt", pt(state_dict(("w", tensor(shape=(2,), stride=(-1,))))))
    write("pk-offset-past-storage.pt", pt(state_dict(("w", tensor(offset=7)))))
    write("pk-rank-65.pt", pt(state_dict(("w", tensor(shape=(1,) * 65, stride=(1,) * 65)))))
    write("pk-stack-underflow.pt", pt(b"\x80\x02R."))
    write("pk-no-stop.pt", pt(b"\x80\x02" + odict()))
    write("pk-unknown-opcode.pt", pt(b"\x80\x02\xff."))
    write("pk-inst-opcode.pt", pt(b"\x80\x02(ios\nsystem\n."))
    write("pk-persid-not-storage.pt",
          pt(b"\x80\x02" + tup(pstr("module"), pstr("x")) + b"Q."))
    write("pk-reduce-not-callable.pt", pt(b"\x80\x02" + pint(3) + b")R."))
    write("pk-qint-storage.pt", pt(state_dict(("w", tensor(cls="QInt8Storage")))))


# ------------------------------------------------------------ legacy

def legacy(obj_pkl, storages):
    """The pre-1.6 stream: magic, protocol, sys_info, object, keys, storages."""
    magic = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."
    proto = b"\x80\x02M\xe9\x03."
    sysinfo = b"\x80\x02}(" + pstr("protocol_version") + pint(1001) + pstr(
        "little_endian") + b"\x88" + pstr("type_sizes") + b"}(" + pstr("short") + pint(2) + pstr(
        "int") + pint(4) + pstr("long") + pint(4) + b"uu."
    keys = b"\x80\x02](" + b"".join(pstr(k) for k, _ in storages) + b"e."
    body = b"".join(struct.pack("<Q", len(d) // 4) + d for _, d in storages)
    return magic + proto + sysinfo + obj_pkl + keys + body


def legacy_tensor(key="0", numel=2):
    pid = tup(pstr("storage"), glob("torch", "FloatStorage"), pstr(key), pstr("cpu"),
              pint(numel), b"N")
    return (glob("torch._utils", "_rebuild_tensor_v2") +
            tup(pid + b"Q", pint(0), tup(pint(2)), tup(pint(1)), b"\x89", odict()) + b"R")


def legacy_files():
    good = legacy(state_dict(("w", legacy_tensor())), [("0", F32x2)])
    write("legacy-cut-in-storage.pt", good[:-3])
    write("legacy-cut-in-keys.pt", good[:-20])
    write("legacy-cut-in-pickle.pt", good[:60])
    write("legacy-os-system.pt", legacy(b"\x80\x02" + glob("os", "system") + pstr("id") +
                                        b"\x85R.", []))
    write("legacy-bad-magic.pt", b"\x80\x02\x8a\x0a" + b"\x00" * 10 + b"." + good[15:])
    write("legacy-storage-count-lies.pt",
          good[:-16] + struct.pack("<Q", 1 << 40) + F32x2)
    write("other-tar.pt", b"model/" + b"\0" * 251 + b"ustar\x0000" + b"\0" * 243)
    write("other-pytorch1.pt", b"PYTORCH1" + b"\0" * 32)
    # Text under a torch name: refused as PyTorch, not misread as a
    # safetensors header length.
    write("other-text.pt", b"hello, this is not a checkpoint\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    safetensors_files()
    zip_files()
    pickle_files()
    legacy_files()


if __name__ == "__main__":
    main()
