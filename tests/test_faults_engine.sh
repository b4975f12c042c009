#!/bin/bash
# The read engine's faults end to end (loaders/engine/fault.h). ckptbench-faults
# is ckptbench with the fault injection compiled in; CKPTBENCH_FAULT reaches
# every trial child, and CKPTBENCH_FAULT_LOG says whether the fault fired.
# For every CPU loader that reads through the engine (safetensors-read, its
# io_uring and O_DIRECT variants, pickle's record reads, and
# libtorch-safetensors and libtorch-pickle where the module's faults build
# exists), at every read a small model takes, and then one past
# the last:
#   eio          the trial is an error whose message names the file and what
#                failed ("pread: Input/output error")
#   short, eintr retried: the trial is ok and verified
# and every allocation the engine makes failing: an error saying so. Never a
# crash; in a sanitizer build never a leak (ASan's reports go to files this
# test reads).
set -u
bin=${CKPTBENCH_FAULTS:?run through meson test}
scratch=${CKPTBENCH_SCRATCH:?}
mkdir -p "$scratch"
out=$(mktemp -d "$scratch/faults.XXXXXX")
trap 'rm -rf "$out"' EXIT
py=/usr/bin/python3

fail() { echo "FAIL: $*" >&2; exit 1; }

# Four tensors in two shards: a handful of reads, per thread descriptors of
# two files.
ds=$("$bin" gen --no-sync --quiet --preset few-large --size 1M --shards 2 -o "$out/data" |
	sed -n 's/: .*//p')
[ -n "$ds" ] || fail "gen"

loaders="safetensors-read safetensors-read:uring=1:qd=3 safetensors-read:direct=1:chunk=64K"
loaders="$loaders safetensors-read:threads=3:shares=0:chunk=64K pickle pickle:threads=1"
# The whole file in one buffer; and a partial load's reads (slice runs, and
# spans through the readers' scratch), written LOADER+RUN-OPTION=VALUE.
loaders="$loaders safetensors-eager safetensors-read+--tp=2:1 pickle+--tp=2:0"
if [ -n "${CKPTBENCH_TORCH_FAULTS_MODULE:-}" ]; then
	export CKPTBENCH_TORCH_MODULE=$CKPTBENCH_TORCH_FAULTS_MODULE
	loaders="$loaders libtorch-safetensors libtorch-pickle"
else
	echo "note: no libtorch: libtorch-safetensors not tested"
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$out/asan"

# One trial of $1 with CKPTBENCH_FAULT=$2; prints how many faults fired, then
# the outcome and message.
trial() {
	rm -f "$out/log" "$out/r.json" "$out/r.csv"
	local loader=${1%%+*} extra=()
	[ "$loader" = "$1" ] || extra=("${1#*+}")
	extra=("${extra[@]/=/ }")
	# shellcheck disable=SC2068 # the option and its value as two words
	CKPTBENCH_FAULT=$2 CKPTBENCH_FAULT_LOG=$out/log \
		"$bin" run --datasets "$ds" --no-calibrate --quiet --warmup 0 --repeat 1 \
		--cache warm --loaders "$loader" ${extra[@]} -o "$out/r.json" >/dev/null \
		2>"$out/stderr"
	if ls "$out"/asan.* >/dev/null 2>&1; then
		cat "$out"/asan.* >&2
		fail "$1 with $2: the sanitizer reported"
	fi
	[ -f "$out/log" ] && wc -l <"$out/log" || echo 0
	$py - "$out/r.json" <<'PY' || fail "$1 with $2: no trial recorded"
import json, sys
doc = json.load(open(sys.argv[1]))
t = [t for c in doc["cells"] for t in c.get("trials", [])]
assert len(t) == 1, t
print(t[0]["outcome"], t[0].get("verified"), t[0].get("message") or "")
PY
}

runs=0
for l in $loaders; do
	for kind in eio short eintr alloc; do
		n=1
		while :; do
			[ $kind = alloc ] && spec=alloc:$n || spec=read:$n:$kind
			res=$(trial "$l" "$spec") || exit 1
			runs=$((runs + 1))
			fired=$(echo "$res" | sed -n 1p)
			read -r outcome verified message <<<"$(echo "$res" | sed -n 2p)"
			if [ "$fired" = 0 ]; then
				# past the last read or allocation: a clean load
				[ "$outcome $verified" = "ok True" ] ||
					fail "$l, $spec (did not fire): $outcome $message"
				[ $n -gt 1 ] || fail "$l: $kind never fired"
				break
			fi
			case $kind in
			eio)
				[ "$outcome" = error ] || fail "$l, $spec: $outcome, want error"
				case $message in
				*/model*.safetensors:*pread:\ Input/output\ error* | \
				*/pytorch_model*.bin:*pread:\ Input/output\ error* | \
				*/model*.safetensors:*io_uring\ read:\ Input/output\ error*) ;;
				*) fail "$l, $spec: the message names no file or failure: $message" ;;
				esac ;;
			short | eintr)
				[ "$outcome $verified" = "ok True" ] ||
					fail "$l, $spec: $outcome $message, want a verified load" ;;
			alloc)
				[ "$outcome" = error ] || fail "$l, $spec: $outcome, want error"
				case $message in
				*"no memory"* | *"out of memory"*) ;;
				*) fail "$l, $spec: $message" ;;
				esac ;;
			esac
			n=$((n + 1))
			[ $n -le 500 ] || fail "$l: $kind fires beyond 500"
		done
		echo "ok: $l, $kind at points 1..$((n - 1))"
	done
done
echo "ok: faults of the read engine, $runs runs"
