#!/usr/bin/env bash
# Builds ckptbench and runs every test through meson: the whole suite in the
# normal build, then the unit and format suites and the read engine's fault
# injection again under AddressSanitizer and UBSan. Ends with one line
# "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")"
. scripts/deps.sh

# shellcheck disable=SC2086
cb_ensure_packages $CB_BUILD_PACKAGES $CB_TEST_PACKAGES $CB_RUN_PACKAGES

passed=0 failed=0 skipped=0

# Adds a meson test log's results to the tally.
tally() {
	local log=$1/meson-logs/testlog.json
	[ -f "$log" ] || return 0
	local ok fail skip
	ok=$(grep -c '"result": "\(OK\|EXPECTEDFAIL\)"' "$log")
	fail=$(grep -c '"result": "\(FAIL\|ERROR\|TIMEOUT\|UNEXPECTEDPASS\)"' "$log")
	skip=$(grep -c '"result": "SKIP"' "$log")
	passed=$((passed + ok)) failed=$((failed + fail)) skipped=$((skipped + skip))
}

run_suites() {
	local dir=$1
	shift
	rm -f "$dir/meson-logs/testlog.json"
	meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" || true
	tally "$dir"
}

if cb_build build; then
	run_suites build
else
	echo "ckptbench: the build failed" >&2
	failed=$((failed + 1))
fi

# The same code with sanitizers: memory errors and undefined behaviour in the
# parsers fail the run even when the results happen to be right. This build
# and the clang one below treat every warning at the project's level as an
# error (-Dwerror=true); the shared build/ only shows them, so a newer
# compiler's new warning never stops a user's ./run.sh.
if cb_build build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
	-Dc_args=-fno-sanitize-recover=undefined; then
	run_suites build-asan --suite unit --suite format
	# Every read and allocation of the loaders failing, under the sanitizers:
	# no crash, no leak, whatever fails.
	run_suites build-asan faults_engine
else
	echo "ckptbench: the sanitizer build failed" >&2
	failed=$((failed + 1))
fi

# Fuzzing (tests/fuzz/): in CI (CI=true), or when CKPTBENCH_FUZZ_SECONDS asks
# for it, every target fuzzes that long (60 s in CI) in a clang build with
# libFuzzer, ASan and UBSan, two at a time; each is a test of the suite fuzz
# that fails on a crash, leak, hang or runaway allocation. Locally the
# corpus is still replayed by the format suite above; tests/fuzz/run.sh
# SECONDS fuzzes by hand.
if [ "${CI:-}" = true ] || [ -n "${CKPTBENCH_FUZZ_SECONDS:-}" ]; then
	export CKPTBENCH_FUZZ_SECONDS=${CKPTBENCH_FUZZ_SECONDS:-60}
	# Without CUDA: the CPU-only side of loaders/cuda/ gets its -Werror
	# build here, the CUDA side in build-asan where the toolkit is.
	if CC=clang CXX=clang++ cb_build build-fuzz -Dwerror=true -Dfuzz=true -Dcuda=disabled \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-sanitize-recover=undefined; then
		run_suites build-fuzz --suite fuzz
	else
		echo "ckptbench: the fuzzing build failed" >&2
		failed=$((failed + 1))
	fi
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
