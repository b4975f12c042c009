#!/usr/bin/env bash
# Fuzzes each target with libFuzzer:
#
#   tests/fuzz/run.sh SECONDS [TARGET...]     every target (or those named)
#                                             for SECONDS each, one after another
#   tests/fuzz/run.sh --target NAME           one target for
#                                             $CKPTBENCH_FUZZ_SECONDS (60): the
#                                             meson suite `fuzz` calls this
#
# Targets: safetensors ptzip unpickle inspect convert (fuzz_NAME.c). The
# binaries come from $CKPTBENCH_FUZZ_BIN, or from build-fuzz/ (configured
# here with clang, ASan and UBSan when missing). Each run starts from the
# committed seeds (corpus/NAME) plus regressions/, in a scratch corpus
# directory, so the committed corpus only changes when someone copies new
# inputs in. A crash, leak, timeout or out-of-memory fails the run; its input
# is kept under $CKPTBENCH_FUZZ_ARTIFACTS (default build-fuzz/fuzz-artifacts)
# to be committed under regressions/ with its fix. Each target's last status
# line (executions, coverage, features, corpus) is printed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
all_targets="safetensors ptzip unpickle inspect convert"

usage() {
	echo "usage: tests/fuzz/run.sh SECONDS [TARGET...] | --target NAME" >&2
	exit 2
}

# Builds build-fuzz when no binary directory is given.
bin_dir() {
	if [ -n "${CKPTBENCH_FUZZ_BIN:-}" ]; then
		echo "$CKPTBENCH_FUZZ_BIN"
		return
	fi
	local dir="$root/build-fuzz"
	if [ ! -f "$dir/build.ninja" ]; then
		CC=clang meson setup "$dir" "$root" -Dfuzz=true -Db_sanitize=address,undefined \
			-Db_lundef=false -Dc_args=-fno-sanitize-recover=undefined >&2 || exit 3
	fi
	ninja -C "$dir" >&2 || exit 3
	echo "$dir/tests/fuzz"
}

# fuzz_one NAME SECONDS BIN: 0 when nothing was found.
fuzz_one() {
	local name=$1 seconds=$2 bin=$3
	local exe="$bin/fuzz_$name"
	[ -x "$exe" ] || { echo "fuzz: no $exe" >&2; return 3; }
	local artifacts=${CKPTBENCH_FUZZ_ARTIFACTS:-$root/build-fuzz/fuzz-artifacts}
	mkdir -p "$artifacts"
	local work log
	work=$(mktemp -d "${TMPDIR:-/tmp}/cbfuzz-corpus.XXXXXX")
	log=$(mktemp "${TMPDIR:-/tmp}/cbfuzz-log.XXXXXX")
	# Limits: 10 s per input (a hang), 2 GiB RSS, and no single allocation
	# over 512 MiB: an input of at most 64 KiB must never ask for that much.
	"$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-malloc_limit_mb=512 -max_len=65536 -print_final_stats=1 \
		-dict="$here/dict/$name.dict" -artifact_prefix="$artifacts/$name-" \
		"$work" "$here/corpus/$name" "$here/regressions" >"$log" 2>&1
	local rc=$?
	local status
	status=$(grep -E '^#[0-9]+' "$log" | tail -1)
	echo "fuzz_$name: ${seconds}s: ${status:-no status line}"
	grep -E '^stat::(number_of_executed_units|peak_rss_mb|new_units_added)' "$log" |
		sed "s/^/fuzz_$name: /"
	if [ $rc -ne 0 ]; then
		# The report: what failed and the input that did it.
		grep -E 'ERROR|SUMMARY|Test unit written|==[0-9]+==' "$log" | head -20
		echo "fuzz_$name: FAILED (exit $rc); full log: $log" >&2
	else
		rm -f "$log"
	fi
	rm -rf "$work"
	return $rc
}

[ $# -ge 1 ] || usage
if [ "$1" = "--target" ]; then
	[ $# -eq 2 ] || usage
	bin=$(bin_dir) || exit 3
	fuzz_one "$2" "${CKPTBENCH_FUZZ_SECONDS:-60}" "$bin"
	exit
fi
seconds=$1
shift
case $seconds in '' | *[!0-9]*) usage ;; esac
targets=${*:-$all_targets}
bin=$(bin_dir) || exit 3
worst=0
for name in $targets; do
	fuzz_one "$name" "$seconds" "$bin" || worst=1
done
exit $worst
