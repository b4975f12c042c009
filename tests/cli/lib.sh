# Shared by the CLI tests: a temp dir removed on exit, and checks that count.
# Each test script sources this, runs its checks and ends with `finish`.
set -u
: "${CKPTBENCH:?run through meson test}"
CB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ckptbench-test.XXXXXX")
trap 'rm -rf "$CB_TMP"' EXIT
cb_checks=0 cb_failures=0
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

fail() {
	cb_failures=$((cb_failures + 1))
	echo "FAIL: $*" >&2
}

pass() {
	cb_checks=$((cb_checks + 1))
}

# expect_status N CMD...: runs CMD, keeps its stdout/stderr in $CB_TMP/out,
# $CB_TMP/err and checks the exit status.
expect_status() {
	local want=$1
	shift
	"$@" >"$CB_TMP/out" 2>"$CB_TMP/err"
	local got=$?
	cb_checks=$((cb_checks + 1))
	if [ "$got" -ne "$want" ]; then
		fail "exit $got, wanted $want: $* -- $(tail -c 500 "$CB_TMP/err")"
		return 1
	fi
	return 0
}

# expect_stderr_line PATTERN: stderr is exactly one line matching PATTERN.
expect_stderr_line() {
	cb_checks=$((cb_checks + 1))
	local lines
	lines=$(wc -l <"$CB_TMP/err")
	if [ "$lines" -ne 1 ] || ! grep -q -- "$1" "$CB_TMP/err"; then
		fail "stderr should be one line matching '$1', got: $(cat "$CB_TMP/err")"
	fi
}

finish() {
	echo "$(basename "$0"): $cb_checks checks, $cb_failures failed" >&2
	[ "$cb_failures" -eq 0 ]
}
