#!/usr/bin/env bash
# ckptbench gen: determinism, layout, sharding, manifests and usage errors.
. "$(dirname "$0")/lib.sh"

gen() { "$CKPTBENCH" gen --quiet "$@"; }

# The same seed gives byte-identical files, whatever the thread count.
expect_status 0 gen --preset llama --size 4M --seed 7 --threads 1 -o "$CB_TMP/a"
expect_status 0 gen --preset llama --size 4M --seed 7 --threads 2 -o "$CB_TMP/b"
ds=llama-4M-F16-s7
if cmp -s "$CB_TMP/a/$ds/model.safetensors" "$CB_TMP/b/$ds/model.safetensors" &&
	cmp -s "$CB_TMP/a/$ds/manifest.json" "$CB_TMP/b/$ds/manifest.json"; then pass; else
	fail "same seed, different bytes"; fi

# Another seed gives other values.
expect_status 0 gen --preset llama --size 4M --seed 8 -o "$CB_TMP/a"
if cmp -s "$CB_TMP/a/$ds/model.safetensors" "$CB_TMP/a/llama-4M-F16-s8/model.safetensors"; then
	fail "seeds 7 and 8 gave the same bytes"; else pass; fi

# The manifest is the inspect --json document of the model.
expect_status 0 "$CKPTBENCH" inspect --json "$CB_TMP/a/$ds"
if "$PY" - "$CB_TMP/out" "$CB_TMP/a/$ds/manifest.json" <<'PYEOF'; then pass; else fail "inspect --json differs from the manifest"; fi
import json, sys
got = json.load(open(sys.argv[1]))
want = json.load(open(sys.argv[2]))
for key in ("format", "metadata", "tensors"):
    assert got[key] == want[key], key
assert all(len(t["xxh3"]) == 16 for t in got["tensors"])
assert want["dataset"]["model_bytes"] == sum(t["nbytes"] for t in want["tensors"])
PYEOF
expect_status 0 "$CKPTBENCH" inspect --verify "$CB_TMP/a/$ds/manifest.json" "$CB_TMP/a/$ds"

# Both formats by default, holding the same tensors: the .pt checks against
# the same manifest.
if [ -f "$CB_TMP/a/$ds/model.pt" ]; then pass; else fail "no model.pt by default"; fi
expect_status 0 "$CKPTBENCH" inspect --verify "$CB_TMP/a/$ds/manifest.json" "$CB_TMP/a/$ds/model.pt"
# A dtype torch has no storage for: safetensors only, said on stderr.
expect_status 0 gen --preset few-large --size 1M --dtype F4 -o "$CB_TMP/f4"
grep -q "no PyTorch storage type" "$CB_TMP/err" && pass || fail "no notice for F4"
[ -e "$CB_TMP/f4/few-large-1M-F4-s1/model.pt" ] && fail "model.pt written for F4" || pass
expect_status 1 gen --preset few-large --size 1M --dtype F4 --formats pytorch -o "$CB_TMP/f4b"

# Sharded: same tensors and bytes as the single file, in the HF layout.
expect_status 0 gen --preset llama --size 4M --seed 7 --shards 3 -o "$CB_TMP/a"
sh=$CB_TMP/a/llama-4M-F16-s7-x3
for f in model-00001-of-00003.safetensors model-00002-of-00003.safetensors \
	model-00003-of-00003.safetensors model.safetensors.index.json manifest.json; do
	if [ -f "$sh/$f" ]; then pass; else fail "sharded dataset lacks $f"; fi
done
expect_status 0 "$CKPTBENCH" inspect --verify "$CB_TMP/a/$ds/manifest.json" "$sh"

# Nothing temporary is left behind.
if ls "$CB_TMP/a"/*/*.tmp.* >/dev/null 2>&1; then fail "temporary files left"; else pass; fi

# An existing dataset is kept unless --force.
expect_status 0 gen --preset llama --size 4M --seed 7 -o "$CB_TMP/a"
grep -q "exists, kept" "$CB_TMP/out" && pass || fail "existing dataset not reported as kept"
expect_status 0 gen --preset llama --size 4M --seed 7 --force -o "$CB_TMP/a"
grep -q "tensors" "$CB_TMP/out" && pass || fail "--force did not make it again"

# Every preset, small; sizes land within 2%.
expect_status 0 gen --preset many-small --size 2M -o "$CB_TMP/p"
expect_status 0 gen --preset few-large --size 8M --dtype BF16 -o "$CB_TMP/p"
expect_status 0 gen --preset llama --size 3M --dtype F32 -o "$CB_TMP/p"
for m in "$CB_TMP"/p/*/manifest.json; do
	"$PY" - "$m" <<'PYEOF' && pass || fail "$m: size off by more than 2%"
import json, sys
m = json.load(open(sys.argv[1]))["dataset"]
want = {"2M": 2 << 20, "8M": 8 << 20, "3M": 3 << 20}[m["size"]]
assert abs(m["model_bytes"] - want) <= 0.02 * want, (m["model_bytes"], want)
PYEOF
done

# Usage errors exit 2 with one line.
expect_status 2 gen --preset gpt2 --size 1G -o "$CB_TMP/u"
expect_stderr_line "fixed size"
expect_status 2 gen --preset nosuch -o "$CB_TMP/u"
expect_status 2 gen --dtype F17 -o "$CB_TMP/u"
expect_status 2 gen --size 12Q -o "$CB_TMP/u"
expect_status 2 gen --shards 0 -o "$CB_TMP/u"
if [ -e "$CB_TMP/u" ]; then fail "a usage error wrote files"; else pass; fi

finish
