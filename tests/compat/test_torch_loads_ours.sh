#!/bin/sh
# Files written by `ckptbench gen` and `ckptbench convert` load in the real
# torch.load(weights_only=True) with the names, dtypes, shapes and XXH3 of
# the manifest; their zip CRCs check; their data.pkl is byte for byte what
# torch.save writes for the state dict it loaded. With the .pt reader built
# in, .safetensors -> .pt -> .safetensors keeps every tensor's bytes.
# Exit 77 (skipped) without Debian's python3-torch and python3-xxhash.
set -eu
PY=/usr/bin/python3
$PY -c 'import torch, xxhash' 2>/dev/null || { echo "no python3-torch/python3-xxhash: skipped"; exit 77; }
: "${CKPTBENCH:?}"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

cat > "$T/check.py" <<'PYEOF'
import json, sys, zipfile, torch, xxhash
names = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32",
         torch.float64: "F64", torch.int8: "I8", torch.uint8: "U8", torch.int16: "I16",
         torch.int32: "I32", torch.int64: "I64", torch.bool: "BOOL", torch.complex64: "C64"}
manifest = json.load(open(sys.argv[1]))
want = {t["name"]: t for t in manifest["tensors"]}
got = {}
for path in sys.argv[2:]:
    z = zipfile.ZipFile(path)
    bad = z.testzip()
    assert bad is None, f"{path}: CRC-32 of {bad} is wrong"
    sd = torch.load(path, weights_only=True)
    assert not (set(sd) & set(got)), f"{path}: a tensor in two files"
    got.update(sd)
    # torch.save of what was loaded gives the same pickle
    torch.save(sd, sys.argv[1] + ".resave.pt")
    ours = z.read([n for n in z.namelist() if n.endswith("/data.pkl")][0])
    theirs = zipfile.ZipFile(sys.argv[1] + ".resave.pt").read("manifest.json.resave/data.pkl")
    assert ours == theirs, f"{path}: data.pkl differs from torch.save's"
    for info in z.infolist():
        assert info.compress_type == 0, f"{path}: {info.filename} is compressed"
assert set(got) == set(want), f"names differ: {sorted(set(got) ^ set(want))[:5]}"
for name, t in got.items():
    w = want[name]
    assert names[t.dtype] == w["dtype"], (name, t.dtype, w["dtype"])
    assert list(t.shape) == w["shape"], (name, list(t.shape), w["shape"])
    raw = t.contiguous().view(-1)
    if t.dtype == torch.bfloat16:
        raw = raw.view(torch.int16)
    data = raw.numpy().tobytes()
    assert xxhash.xxh3_64_hexdigest(data) == w["xxh3"], (name, "XXH3 differs")
print(f"ok: {len(got)} tensors in {len(sys.argv) - 2} file(s)")
PYEOF

for dtype in F16 BF16 F32 I64 C64; do
	"$CKPTBENCH" gen --preset llama --size 2M --dtype $dtype --formats safetensors,pytorch \
		-o "$T" --quiet >/dev/null
	d="$T/llama-2M-$dtype-s1"
	$PY "$T/check.py" "$d/manifest.json" "$d/model.pt"
done

# shards: the same split as the safetensors shards, with the HF index
"$CKPTBENCH" gen --preset llama --size 2M --shards 3 --formats safetensors,pytorch \
	-o "$T" --quiet >/dev/null
d="$T/llama-2M-F16-s1-x3"
$PY "$T/check.py" "$d/manifest.json" "$d"/pytorch_model-*.bin
$PY - "$d" <<'PYEOF'
import json, sys
d = sys.argv[1]
st = json.load(open(d + "/model.safetensors.index.json"))["weight_map"]
pt = json.load(open(d + "/pytorch_model.bin.index.json"))["weight_map"]
split = lambda m: {k: v.split("-")[1] for k, v in m.items()}
assert split(st) == split(pt), "the .bin shards split the tensors differently"
print("ok: same shard split")
PYEOF


# convert: safetensors -> .pt, a file and a sharded directory
d="$T/llama-2M-BF16-s1"
"$CKPTBENCH" convert "$d/model.safetensors" "$T/conv.pt" >/dev/null 2>&1
$PY "$T/check.py" "$d/manifest.json" "$T/conv.pt"
d="$T/llama-2M-F16-s1-x3"
"$CKPTBENCH" convert "$d/model.safetensors.index.json" "$T/conv-dir" >/dev/null 2>&1
$PY "$T/check.py" "$d/manifest.json" "$T/conv-dir"/pytorch_model-*.bin

# once the .pt reader is in: pytorch alone (its manifest read back from the
# .pt), and the round trip .safetensors -> .pt -> .safetensors
if "$CKPTBENCH" inspect --no-hash "$T/conv.pt" >/dev/null 2>&1; then
	"$CKPTBENCH" gen --preset gpt2 --formats pytorch -o "$T" --quiet >/dev/null
	$PY "$T/check.py" "$T/gpt2-523M-F32-s1/manifest.json" "$T/gpt2-523M-F32-s1/model.pt"
	rm -rf "$T/gpt2-523M-F32-s1"
	"$CKPTBENCH" convert "$T/conv.pt" "$T/back.safetensors" >/dev/null 2>&1
	"$CKPTBENCH" inspect --json "$T/llama-2M-BF16-s1/model.safetensors" |
		$PY -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["tensors"]))' >"$T/a"
	"$CKPTBENCH" inspect --json "$T/back.safetensors" |
		$PY -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["tensors"]))' >"$T/b"
	cmp "$T/a" "$T/b"
	echo "ok: round trip keeps every tensor"
else
	echo "no .pt reader in this build: pytorch-only gen and the round trip not checked"
fi
