#!/usr/bin/env bash
# inspect and convert under valgrind memcheck: every fixture, every seed of
# the fuzz corpus that is a whole checkpoint (gen and torch.save files) and
# every malformed file, with no invalid read or write, no use of undefined
# values and no leak (definite, indirect or possible). One valgrind run
# covers many files (inspect takes several PATHs), so the whole costs
# seconds, not minutes. Skipped (77) where valgrind is not installed.
. "$(dirname "$0")/lib.sh"
command -v valgrind >/dev/null 2>&1 || { echo "valgrind not installed: skipped"; exit 77; }
if ldd "$CKPTBENCH" 2>/dev/null | grep -q libasan; then
	echo "a sanitizer build: valgrind does not run it; skipped"
	exit 77
fi
src=$CKPTBENCH_SOURCE
vg() {
	valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=all \
		--errors-for-leak-kinds=definite,indirect,possible --track-origins=yes \
		"$@"
}

# expect_vg WANT LABEL CMD...: the status says the input's verdict; 99 (or
# any other) is valgrind finding something, whose report is shown.
expect_vg() {
	local want=$1 label=$2
	shift 2
	vg "$@" >"$CB_TMP/out" 2>"$CB_TMP/err"
	local got=$?
	if [ "$got" -eq "$want" ]; then
		pass
	else
		fail "$label: exit $got under valgrind, wanted $want"
		grep '^==' "$CB_TMP/err" | head -40 >&2
	fi
}

good=()
for f in "$CKPTBENCH_FIXTURES"/safetensors-official/*.safetensors \
	"$CKPTBENCH_FIXTURES"/safetensors-official/sharded "$src"/tests/fuzz/corpus/inspect/*; do
	case $f in *abuse_attempt*) continue ;; esac
	good+=("$f")
done
expect_vg 0 "inspect of ${#good[@]} fixtures and seeds" "$CKPTBENCH" inspect "${good[@]}"
expect_vg 1 "inspect of the abuse fixture" "$CKPTBENCH" inspect \
	"$CKPTBENCH_FIXTURES"/safetensors-official/bad_syoyo_abuse_attempt_1.safetensors

bad=()
for f in "$src"/tests/data/bad/*; do
	case $(basename "$f") in EXPECTED | make_bad.py | README*) continue ;; esac
	bad+=("$f")
done
expect_vg 1 "inspect of ${#bad[@]} malformed files" "$CKPTBENCH" inspect "${bad[@]}"
expect_vg 1 "inspect --json --no-hash of the malformed files" "$CKPTBENCH" inspect --json \
	--no-hash "${bad[@]}"

# convert both ways: a real write path, temp file and rename included.
expect_vg 0 "convert .safetensors -> .pt" "$CKPTBENCH" convert \
	"$CKPTBENCH_FIXTURES/safetensors-official/jl_model.safetensors" "$CB_TMP/a.pt"
expect_vg 0 "convert .pt -> .safetensors" "$CKPTBENCH" convert "$CB_TMP/a.pt" \
	"$CB_TMP/b.safetensors"
expect_vg 0 "convert a sharded directory" "$CKPTBENCH" convert \
	"$CKPTBENCH_FIXTURES/safetensors-official/sharded" "$CB_TMP/sharded-pt"
for f in "$src"/tests/data/bad/pk-os-system.pt "$src"/tests/data/bad/zip64-locator-lies.pt \
	"$src"/tests/data/bad/legacy-cut-in-storage.pt "$src"/tests/data/bad/st-offsets-gap.safetensors; do
	expect_vg 1 "convert $(basename "$f")" "$CKPTBENCH" convert "$f" "$CB_TMP/x.safetensors"
done
finish
