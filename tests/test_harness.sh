#!/bin/bash
# The harness's own correctness, with the test-only loaders of
# ckptbench-test. One part per meson test:
#   memory     K bytes anonymous is reported as K; a mapped, touched file
#              shows as file-backed
#   outcomes   crash, timeout, over-mem-limit, wrong bytes each recorded as
#              such while the matrix goes on; run exits 1 for wrong bytes
#   cache      a cold trial reads the file from the device, a warm one not
#   interrupt  SIGINT kills the running child and leaves a valid results
#              file with every finished trial
#   loaders    `loaders --json` and option errors
#   order      each round's trials in an order shuffled from --seed (the
#              same seed, the same order), or fixed with --fixed-order
#   ceilings   the paired reads of the dataset's own files between the
#              trials, the cells held against them; with --sized-ceilings
#              read ceilings matched to the dataset's size instead; neither
#              with --one-ceiling
# Datasets live under the build directory (a real disk, not tmpfs), in
# CKPTBENCH_SCRATCH.
set -u
part=${1:?usage: test_harness.sh memory|outcomes|cache|interrupt|loaders|ceilings|order}
bin=${CKPTBENCH_TEST:?CKPTBENCH_TEST unset}
scratch=${CKPTBENCH_SCRATCH:?CKPTBENCH_SCRATCH unset}
check=${CKPTBENCH_SOURCE:?}/tests/harness_check.py
py=/usr/bin/python3
out=$(mktemp -d "$scratch/out.XXXXXX" 2>/dev/null || { mkdir -p "$scratch" && mktemp -d "$scratch/out.XXXXXX"; })
trap 'rm -rf "$out"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# One 32 MiB dataset, made once and shared by every part (gen keeps it).
dspath=$("$bin" gen --preset few-large --size 32M -o "$scratch/data" --quiet | sed -n 's/: .*//p')
[ -n "$dspath" ] || fail "cannot generate the test dataset"
[ -f "$dspath/manifest.json" ] || fail "dataset has no manifest"

run() { "$bin" run --datasets "$dspath" --no-calibrate --quiet --warmup 0 "$@"; }

case $part in
ceilings)
	# A 64 MiB main calibration file against the 32 MiB dataset; the paired
	# reads of the dataset itself by default, cold and warm.
	for mode in paired sized one; do
		flag=; cache=warm
		case $mode in
		paired) cache=cold,warm ;;
		sized) flag=--sized-ceilings ;;
		one) flag=--one-ceiling ;;
		esac
		CKPTBENCH_CALIBRATE_SIZE=64M "$bin" run --datasets "$dspath" --quiet --warmup 1 \
			--loaders safetensors-read --cache $cache --repeat 2 $flag -o "$out/c-$mode.json" \
			>/dev/null || fail "run ($mode) exited $?"
		$py "$check" ceilings "$out/c-$mode.json" $mode || fail "ceilings ($mode)"
	done
	;;
memory)
	run --loaders test-anon:bytes=48M,test-mapfile --cache warm --repeat 3 \
		-o "$out/mem.json" >/dev/null || fail "run exited $?"
	$py "$check" memory "$out/mem.json" $((48 << 20)) || fail "memory figures"
	;;
outcomes)
	run --loaders test-crash,test-sleep,test-hog:bytes=2G,test-wrongbyte,safetensors-read \
		--cache warm --repeat 1 --timeout 3 --mem-limit 160M -o "$out/o.json" >/dev/null
	status=$?
	[ $status -eq 1 ] || fail "run exited $status, want 1 (a trial loaded wrong bytes)"
	$py "$check" outcomes "$out/o.json" || fail "outcomes"
	# Garbage on the report pipe is an error outcome saying so, never a crash
	# of run, never passed through; the results file stays valid.
	run --loaders test-garbage:kind=text,test-garbage:kind=array,test-garbage:kind=outcome \
		--cache warm --repeat 1 -o "$out/g.json" >/dev/null
	$py "$check" garbage "$out/g.json" || fail "garbage reports"
	# A loader that cannot read the checkpoint is tried once, not once per
	# trial and cache state.
	run --loaders test-unsupported,safetensors-read --cache cold,warm --repeat 2 \
		-o "$out/u.json" >/dev/null || fail "run with an unsupported loader exited $?"
	$py "$check" unsupported "$out/u.json" || fail "unsupported loader"
	;;
cache)
	fs=$(stat -f -c %T "$dspath")
	case $fs in
	tmpfs|overlayfs|overlay|ramfs)
		echo "SKIP: $dspath is on $fs, which has no block I/O accounting"
		exit 77 ;;
	esac
	run --loaders safetensors-read --cache cold,warm --repeat 3 -o "$out/c.json" \
		>/dev/null || fail "run exited $?"
	$py "$check" cache "$out/c.json" || fail "cache states"
	;;
interrupt)
	# SIGINT (Ctrl-C) and SIGTERM (a CI runner's cancel) alike.
	for sig in INT TERM; do
		# Not through run(): $! must be ckptbench itself, not a subshell.
		# --fixed-order: the sleeping trial after a finished one, every round.
		"$bin" run --datasets "$dspath" --no-calibrate --quiet --warmup 0 --fixed-order \
			--loaders safetensors-read,test-sleep --cache warm --repeat 20 --timeout 120 \
			-o "$out/i-$sig.json" >/dev/null 2>"$out/stderr-$sig" &
		pid=$!
		# Wait for the first finished trial, then for the sleeping child.
		child=
		for _ in $(seq 1 300); do
			sleep 0.05
			if [ -s "$out/i-$sig.json" ] && grep -q '"outcome"' "$out/i-$sig.json"; then
				child=$(pgrep -P $pid | head -1)
				[ -n "$child" ] && tr '\0' ' ' <"/proc/$child/cmdline" 2>/dev/null |
					grep -q -- '--loader test-sleep' && break
				child=
			fi
		done
		[ -n "$child" ] || { kill -KILL $pid; fail "the sleeping trial never started"; }
		kill -$sig $pid
		wait $pid
		status=$?
		[ $status -eq 130 ] || fail "run stopped by SIG$sig exited $status, want 130"
		kill -0 "$child" 2>/dev/null && fail "the trial child $child survived SIG$sig"
		[ -s "$out/i-$sig.csv" ] || fail "no CSV beside the results"
		$py "$check" interrupt "$out/i-$sig.json" || fail "results after interrupt"
	done
	;;
order)
	# Each round in a random order from the seed, the same again with the
	# same seed; in the loaders' order with --fixed-order.
	loaders=test-anon:bytes=1M,test-mapfile,safetensors-read
	for name in a b; do
		run --loaders $loaders --cache warm --repeat 6 --seed 42 -o "$out/$name.json" \
			>/dev/null || fail "run ($name) exited $?"
	done
	run --loaders $loaders --cache warm --repeat 3 --fixed-order -o "$out/f.json" >/dev/null ||
		fail "run --fixed-order exited $?"
	$py "$check" order "$out/a.json" "$out/b.json" "$out/f.json" || fail "trial order"
	;;
loaders)
	"$bin" loaders --json >"$out/l.json" || fail "loaders --json exited $?"
	$py "$check" loaders "$out/l.json" || fail "loaders --json"
	"${CKPTBENCH:?}" loaders --json | grep -q '"test-' && fail "shipped binary lists test loaders"
	run --loaders safetensors-read:nosuch=1 --repeat 1 -o "$out/x.json" 2>/dev/null
	[ $? -eq 2 ] || fail "an unknown loader option is not a usage error"
	run --loaders safetensors-read --repeat 1 --cache warm -o "$out/y.json" >/dev/null \
		|| fail "run exited $?"
	run --loaders safetensors-read --repeat 1 --cache warm -o "$out/y.json" 2>/dev/null
	[ $? -eq 2 ] || fail "an existing results file was not refused"
	;;
*)
	fail "unknown part $part" ;;
esac
echo "ok: harness $part"
