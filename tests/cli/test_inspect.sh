#!/usr/bin/env bash
# ckptbench inspect: fixtures, errors as one line with the right status, the
# text and JSON forms, --verify.
. "$(dirname "$0")/lib.sh"
fx=$CKPTBENCH_FIXTURES/safetensors-official

for f in jl_model.safetensors jl_model.with_metadata.safetensors jl_model.numpy.safetensors \
	mlverse_hello.safetensors syoyo_model.safetensors sharded; do
	expect_status 0 "$CKPTBENCH" inspect "$fx/$f"
	grep -q "^total: " "$CB_TMP/out" && pass || fail "$f: no totals line"
done

# JSON Lines: one document per PATH, tensors sorted by name.
expect_status 0 "$CKPTBENCH" inspect --json "$fx/mlverse_hello.safetensors" "$fx/sharded"
[ "$(wc -l <"$CB_TMP/out")" -eq 2 ] && pass || fail "two paths should give two lines"
"$PY" - "$CB_TMP/out" <<'PYEOF' && pass || fail "JSON Lines content"
import json, sys
docs = [json.loads(line) for line in open(sys.argv[1])]
hello, sharded = docs
assert hello["format"] == "safetensors" and hello["metadata"] is None
assert [t["name"] for t in hello["tensors"]] == ["hello", "world"]
assert hello["tensors"][0] == {"name": "hello", "dtype": "F32", "shape": [10, 10],
                               "nbytes": 400, "xxh3": hello["tensors"][0]["xxh3"]}
names = [t["name"] for t in sharded["tensors"]]
assert names == sorted(names, key=lambda s: s.encode()) and len(names) == 36
assert sharded["metadata"] == {"format": "pt"}
PYEOF
expect_status 0 "$CKPTBENCH" inspect --json --no-hash "$fx/syoyo_model.safetensors"
grep -q xxh3 "$CB_TMP/out" && fail "--no-hash still hashed" || pass

# The sharded fixture is the same model as jl_model.safetensors.
"$CKPTBENCH" inspect --json "$fx/jl_model.safetensors" >"$CB_TMP/one.json"
"$CKPTBENCH" inspect --json "$fx/sharded" >"$CB_TMP/many.json"
"$PY" - "$CB_TMP/one.json" "$CB_TMP/many.json" <<'PYEOF' && pass || fail "sharded != single"
import json, sys
a, b = (json.load(open(p))["tensors"] for p in sys.argv[1:])
assert a == b
PYEOF

# Bad input: exit 1, one line naming the file and the rule, nothing on stdout.
expect_status 1 "$CKPTBENCH" inspect --json "$fx/bad_syoyo_abuse_attempt_1.safetensors"
expect_stderr_line "^ckptbench: .*bad_syoyo_abuse_attempt_1.safetensors: invalid header length"
[ -s "$CB_TMP/out" ] && fail "output for a refused file" || pass
expect_status 1 "$CKPTBENCH" inspect "$CB_TMP/does-not-exist.safetensors"
expect_stderr_line "does-not-exist.safetensors: cannot open"
mkdir -p "$CB_TMP/empty"
expect_status 1 "$CKPTBENCH" inspect "$CB_TMP/empty"
expect_stderr_line "no .*checkpoint here"
printf 'version https://git-lfs.github.com/spec/v1\noid sha256:00\n' >"$CB_TMP/lfs.safetensors"
expect_status 1 "$CKPTBENCH" inspect "$CB_TMP/lfs.safetensors"
expect_stderr_line "Git LFS pointer"
head -c 5000 "$fx/jl_model.safetensors" >"$CB_TMP/cut.safetensors"
expect_status 1 "$CKPTBENCH" inspect "$CB_TMP/cut.safetensors"
expect_stderr_line "incomplete metadata"
# A good path after a bad one is still inspected; the status is the worst.
expect_status 1 "$CKPTBENCH" inspect --no-hash "$CB_TMP/cut.safetensors" "$fx/syoyo_model.safetensors"
grep -q "weight2" "$CB_TMP/out" && pass || fail "later paths skipped after an error"

# --verify catches a changed byte and names the tensor.
cp "$fx/mlverse_hello.safetensors" "$CB_TMP/hello.safetensors"
"$CKPTBENCH" inspect --json "$CB_TMP/hello.safetensors" >"$CB_TMP/hello.json"
expect_status 0 "$CKPTBENCH" inspect --verify "$CB_TMP/hello.json" "$CB_TMP/hello.safetensors"
printf '\x01' | dd of="$CB_TMP/hello.safetensors" bs=1 seek=700 conv=notrunc 2>/dev/null
expect_status 1 "$CKPTBENCH" inspect --verify "$CB_TMP/hello.json" "$CB_TMP/hello.safetensors"
expect_stderr_line 'bytes differ.*(tensor "world")$'

# Usage errors exit 2.
expect_status 2 "$CKPTBENCH" inspect
expect_status 2 "$CKPTBENCH" inspect --bogus "$fx/sharded"
expect_status 2 "$CKPTBENCH" nosuchcommand
expect_status 0 "$CKPTBENCH" inspect --help
expect_status 0 "$CKPTBENCH" --help

finish
