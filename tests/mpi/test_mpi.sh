#!/bin/bash
# run --mpi and --ranks (docs/mpi.md) with 4 ranks on this machine, on small
# models (32 MiB), with the test-only loaders of ckptbench-test:
#   replicate  every rank loads the whole model, cold and warm: every trial
#              verified on every rank, 4x the model loaded in all, and rank 0
#              the only writer (the output directory holds the .json and the
#              .csv and nothing else)
#   files/tp   the ranks' bytes add up to the model (files), or to at least
#              it with each rank a quarter of the split weights (tp), every
#              slice verified, the Python peer's too
#   memory     the node's sampled figures against the ranks' own (see
#              mpi_check.py), with a timed-out trial on every rank
#   groups     --node-groups 2: two leaders, two nodes' figures
#   crash      a loader that crashes is that trial's outcome; the run goes on
#   kill       kill -9 of one rank mid-run: mpirun fails, rank 0 names the
#              rank, the results file so far is valid JSON
#   hang       one rank stopped (SIGSTOP): the watchdog ends the job instead
#              of every rank waiting for ever
#   ranks      run --ranks 2, without typing mpirun
# Skipped (77) in a build without MPI or where mpirun is missing.
set -u
bin=${CKPTBENCH:?CKPTBENCH unset}
tbin=${CKPTBENCH_TEST:?CKPTBENCH_TEST unset}
scratch=${CKPTBENCH_SCRATCH:?CKPTBENCH_SCRATCH unset}
check=${CKPTBENCH_SOURCE:?}/tests/mpi/mpi_check.py
py=/usr/bin/python3

if [ "${CKPTBENCH_MPI:-0}" != 1 ]; then
	echo "SKIP: built without MPI (apt-get install openmpi-bin libopenmpi-dev, then reconfigure)"
	exit 77
fi
command -v mpirun >/dev/null || { echo "SKIP: mpirun not found (apt-get install openmpi-bin)"; exit 77; }

mkdir -p "$scratch"
work=$(mktemp -d "$scratch/mpi.XXXXXX")
bg=
cleanup() {
	[ -n "$bg" ] && kill -CONT $bg 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# mpirun refuses root without this, and more ranks than cores without that.
mpi=(mpirun --oversubscribe -np 4)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)

# 32 MiB in one file, and in four (the files mode needs a file per rank).
one=$("$bin" gen --preset few-large --size 32M -o "$scratch/data" --quiet | sed -n 's/: .*//p')
four=$("$bin" gen --preset llama --size 32M --shards 4 -o "$scratch/data" --quiet | sed -n 's/: .*//p')
[ -d "$one" ] && [ -d "$four" ] || fail "cannot generate the test datasets"

run() { "${mpi[@]}" "$@" --no-calibrate --quiet --warmup 0; }

# The pid of rank R's ckptbench process (Open MPI puts the rank in its
# environment).
rank_pid() {
	local p r
	for p in $(pgrep -f "ckptbench-test run --mpi"); do
		r=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
		[ "$r" = "$1" ] && { echo "$p"; return 0; }
	done
	return 1
}

# A long run in the background, once its first trials are in the results
# (mid-run), for the kill and the hang.
start_long() {
	"${mpi[@]}" "$tbin" run --mpi --datasets "$one" --loaders safetensors-read --cache warm \
		--repeat 200 --warmup 0 --no-calibrate --quiet "$@" >"$work/long.out" 2>&1 &
	bg=$!
	for _ in $(seq 300); do
		n=$(grep -c '"outcome"' "$work/long.json" 2>/dev/null)
		[ "${n:-0}" -ge 2 ] && rank_pid 2 >/dev/null && return 0
		sleep 0.1
	done
	fail "the long run did not start"
}

# --- replicate, and rank 0 the only writer
mkdir "$work/rep"
run "$tbin" run --mpi --datasets "$one" --loaders safetensors-read,pickle --cache cold,warm \
	--repeat 2 -o "$work/rep/r.json" >"$work/rep.out" 2>&1 || { cat "$work/rep.out"; fail "replicate run exited $?"; }
$py "$check" replicate "$work/rep/r.json" 4 || fail "replicate"
[ "$(ls -A "$work/rep" | sort | tr '\n' ' ')" = "r.csv r.json " ] ||
	fail "the output directory holds more than the results: $(ls -A "$work/rep")"
grep -q "many ranks:" "$work/rep.out" || fail "run's table has no many-ranks block"

# --- files and tp: each rank's share as a part file
for mode in files tp; do
	run "$tbin" run --mpi --dist $mode --datasets "$four" \
		--loaders safetensors-read,pickle-mmap,torch-load --cache warm --repeat 1 \
		-o "$work/$mode.json" >"$work/$mode.out" 2>&1 ||
		{ cat "$work/$mode.out"; fail "--dist $mode exited $?"; }
	$py "$check" $mode "$work/$mode.json" 4 || fail "--dist $mode"
done

# --- memory, and a trial that times out on every rank
run "$tbin" run --mpi --datasets "$one" --loaders test-hog:bytes=48M,test-mapfile \
	--cache warm --repeat 1 --timeout 2 -o "$work/mem.json" >/dev/null 2>&1 || fail "memory run exited $?"
$py "$check" memory "$work/mem.json" || fail "memory"

# --- two pseudo-nodes
run "$tbin" run --mpi --node-groups 2 --datasets "$one" --loaders safetensors-read \
	--cache cold,warm --repeat 1 -o "$work/groups.json" >/dev/null 2>&1 || fail "--node-groups 2 exited $?"
$py "$check" groups "$work/groups.json" 2 || fail "--node-groups 2"

# --- a crashing loader
run "$tbin" run --mpi --datasets "$one" --loaders test-crash,safetensors-read --cache warm \
	--repeat 1 --fixed-order -o "$work/crash.json" >/dev/null 2>&1 || fail "crash run exited $?"
$py "$check" crash "$work/crash.json" || fail "crash"

# --- a rank killed
start_long -o "$work/long.json"
kill -9 "$(rank_pid 2)"
wait $bg
status=$?
bg=
[ $status -ne 0 ] || fail "mpirun exited 0 after a rank was killed"
grep -q "rank 2 .*died" "$work/long.out" || { cat "$work/long.out"; fail "rank 0 did not name the dead rank"; }
$py "$check" lost "$work/long.json" 2 || fail "results after a killed rank"

# --- a rank hung: the watchdog (--timeout 2: about 13 s) ends the job
rm -f "$work/long.json"
start_long -o "$work/long.json" --timeout 2
hung=$(rank_pid 1)
kill -STOP "$hung"
started=$(date +%s)
wait $bg
status=$?
bg=
kill -CONT "$hung" 2>/dev/null
[ $status -ne 0 ] || fail "mpirun exited 0 with a rank stopped"
[ $(($(date +%s) - started)) -lt 60 ] || fail "the watchdog took over a minute"
grep -q 'rank 1 .*did not reach' "$work/long.out" || { cat "$work/long.out"; fail "rank 0 did not name the hung rank"; }
$py "$check" lost "$work/long.json" 1 || fail "results after a hung rank"

# --- --ranks: mpirun run for the user
"$tbin" run --ranks 2 --datasets "$one" --loaders safetensors-read --cache warm --repeat 1 \
	--warmup 0 --no-calibrate --quiet -o "$work/ranks.json" >/dev/null 2>&1 || fail "--ranks 2 exited $?"
$py "$check" ranks "$work/ranks.json" 2 || fail "--ranks 2"

echo "ok"
