#!/bin/sh
# Differential check: every .pt file torch::jit::pickle_load can
# read (Debian's libtorch, through the ATen shim) holds exactly the tensors
# our reader finds: names, dtypes, shapes, strides, storage offsets, bytes.
# The files are real torch.save output (make_torch_files.py) and ckptbench
# gen output; for those libtorch cannot read, its reason is listed. Then the
# check must fail when either side is perturbed (test_aten_diff --perturb),
# and the libtorch loaders must load a generated model (or, for
# libtorch-pickle-load on gen's OrderedDict, be reported unsupported).
# Exit 77 (skipped) only when this build has no libtorch.
set -eu
[ -n "${CKPTBENCH_ATEN_DIFF:-}" ] || { echo "built without libtorch: skipped"; exit 77; }
: "${CKPTBENCH:?}" "${CKPTBENCH_SOURCE:?}"
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# real torch.save files: every case torch itself reads back, except the
# sharded directory (its shards are listed one by one below)
$PY -c 'import torch' 2>/dev/null || fail "python3-torch is needed to make the torch.save files"
mkdir "$T/torch"
$PY "$CKPTBENCH_SOURCE/tests/compat/make_torch_files.py" "$T/torch" >/dev/null
$PY - "$T/torch" > "$T/files" <<'PYEOF'
import json, os, sys
root = sys.argv[1]
for case in json.load(open(os.path.join(root, "cases.json"))):
    path = os.path.join(root, case["file"])
    if "tensors" in case and os.path.isfile(path):
        print(path)
    elif os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            if name.endswith(".bin"):
                print(os.path.join(path, name))
PYEOF
# generated files: a small model in one file and in two shards
"$CKPTBENCH" gen --preset llama --size 2M --dtype F32 --formats pytorch -o "$T/gen" --quiet
"$CKPTBENCH" gen --preset llama --size 2M --dtype BF16 --formats pytorch --shards 2 \
	-o "$T/gen" --quiet
find "$T/gen" -name '*.pt' -o -name '*.bin' | sort >> "$T/files"
n_files=$(wc -l < "$T/files")

# shellcheck disable=SC2046
"$CKPTBENCH_ATEN_DIFF" $(cat "$T/files") > "$T/out" || { cat "$T/out"; fail "libtorch and our reader disagree"; }
cat "$T/out"
agree=$(grep -c ': agree, ' "$T/out" || true)
cannot=$(grep -c ': libtorch cannot read it: ' "$T/out" || true)
[ "$((agree + cannot))" -eq "$n_files" ] || fail "$n_files files, $agree agree, $cannot unreadable"
# the files torch 1.13's own reader handles (dicts of >= 2 tensors, views,
# dtypes, shapes, the training checkpoint with a plain state dict...)
[ "$agree" -ge 5 ] || fail "only $agree files compared; the check is vacuous"
grep -q 'views.pt: agree' "$T/out" || fail "views.pt (strides, offsets) not compared"
grep -q 'Expected GenericDict but got None' "$T/out" || fail "OrderedDict reason not listed"

# a perturbed side must be noticed
compared=$(grep ': agree, ' "$T/out" | sed 's/: agree, .*//')
for side in ours libtorch; do
	# shellcheck disable=SC2086
	if "$CKPTBENCH_ATEN_DIFF" --perturb $side $compared > "$T/perturbed"; then
		fail "a byte flipped on the $side side went unnoticed"
	fi
	[ "$(grep -c 'bytes differs' "$T/perturbed")" -eq "$agree" ] ||
		fail "--perturb $side: not every compared file differed"
done
echo "$agree files agree, $cannot unreadable by libtorch, perturbations on both sides caught"

# the module's loaders end to end on a generated model
ds=$(find "$T/gen" -maxdepth 1 -type d -name 'llama-*F32*')
# 16M: some tensors of 2 MiB or more, which thp=1 (the default) puts in
# 2 MiB-aligned huge-page storages; thp=0 leaves them to libtorch's allocator.
"$CKPTBENCH" gen --preset llama --size 16M --dtype F32 -o "$T/both" --quiet
ds=$(find "$T/both" -mindepth 1 -maxdepth 1 -type d)
"$CKPTBENCH" loaders | grep -q '^libtorch-pickle-load .*available' || fail "module did not load"
for v in libtorch-safetensors libtorch-safetensors:thp=0 libtorch-safetensors-mmap \
	libtorch-pickle libtorch-pickle:thp=0 libtorch-pickle-load; do
	l=${v%%:*}
	opt=
	[ "$v" = "$l" ] || opt="--opt ${v#*:}"
	status=0
	# shellcheck disable=SC2086
	"$CKPTBENCH" trial --loader $l $opt --path "$ds" --manifest "$ds/manifest.json" \
		--report-fd 1 > "$T/rep" || status=$?
	case $l in
	libtorch-pickle-load)
		# gen writes an OrderedDict state dict, as torch.save does: 1.13 cannot
		[ $status -eq 3 ] && grep -q '"outcome":"unsupported"' "$T/rep" &&
			grep -q 'Expected GenericDict' "$T/rep" || fail "$l: $(cat "$T/rep")" ;;
	*)
		[ $status -eq 0 ] && grep -q '"verified":true' "$T/rep" || fail "$v: $(cat "$T/rep")" ;;
	esac
done
echo "libtorch loaders: 5 verified (thp on and off), libtorch-pickle-load unsupported as expected"
