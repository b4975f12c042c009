#!/bin/sh
# ci-check.sh [BASE_REV]: the loader-performance check any CI system can call.
#
# Builds ckptbench at BASE_REV (default: $CKPTBENCH_BASE_REF, else origin/main)
# in a temporary git worktree and at the current checkout, then runs
#   ckptbench ab --base BASE --head HEAD --preset ci
# (trials interleaved on the same datasets and cache states) and exits like
# `ckptbench compare`: 0 no regression, 1 a regression, 2 not comparable,
# 3 or more a build or run failure. Files land in $CKPTBENCH_CI_OUT (default
# results/ci-ab): base.json, head.json, compare.json and compare.md, the last
# ready to post as a pull-request comment.
#
# BASE_REV must already have `run --preset ci` (any commit since it exists).
# Extra arguments after BASE_REV go to ab (e.g. --threshold 0.15, --repeat 20,
# --metric instructions where the runner allows perf_event_open).
set -eu

root=$(git rev-parse --show-toplevel)
cd "$root"
base_rev=${1:-${CKPTBENCH_BASE_REF:-origin/main}}
[ $# -gt 0 ] && shift
out=${CKPTBENCH_CI_OUT:-results/ci-ab}
work=$(mktemp -d "${TMPDIR:-/tmp}/ckptbench-ci.XXXXXX")

cleanup() {
	git worktree remove --force "$work/base" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

build() { # build SOURCE_DIR BUILD_DIR
	meson setup "$2" "$1" >"$2.log" 2>&1 ||
		{ cat "$2.log" >&2; exit 3; }
	ninja -C "$2" ckptbench >>"$2.log" 2>&1 || { tail -50 "$2.log" >&2; exit 3; }
}

echo "ci-check: building base ($base_rev) and head ($(git rev-parse --short HEAD))" >&2
git worktree add --detach "$work/base" "$base_rev" >/dev/null 2>&1 ||
	{ echo "ci-check: cannot check out $base_rev" >&2; exit 3; }
build "$work/base" "$work/base-build"
build "$root" "$work/head-build"

status=0
"$work/head-build/ckptbench" ab --base "$work/base-build/ckptbench" \
	--head "$work/head-build/ckptbench" --preset ci -o "$out" --force "$@" || status=$?
echo "ci-check: exit $status; Markdown for the pull request: $out/compare.md" >&2
exit "$status"
