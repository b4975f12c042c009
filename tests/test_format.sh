#!/usr/bin/env bash
# Every C and C++ file of the source tree is formatted as .clang-format says.
# clang-format's output changes between major versions, so the check uses
# the version the configuration is kept with (Debian 12's clang-format 14)
# and is skipped, saying so, where that version is missing.
set -u
: "${CKPTBENCH_SOURCE:?run through meson test}"
want_major=14
fmt=""
for cand in clang-format-$want_major clang-format; do
	command -v "$cand" >/dev/null 2>&1 || continue
	major=$("$cand" --version | sed -n 's/.*clang-format version \([0-9]*\).*/\1/p')
	if [ "$major" = "$want_major" ]; then
		fmt=$cand
		break
	fi
done
if [ -z "$fmt" ]; then
	echo "clang-format $want_major not found (Debian: apt-get install clang-format-$want_major)" >&2
	exit 77
fi

cd "$CKPTBENCH_SOURCE" || exit 1
if git rev-parse --git-dir >/dev/null 2>&1; then
	files=$(git ls-files -co --exclude-standard -- '*.c' '*.h' '*.cpp')
else
	files=$(find . -path ./build\* -prune -o \( -name '*.c' -o -name '*.h' -o -name '*.cpp' \) -print)
fi
bad=0
for f in $files; do
	[ -f "$f" ] || continue
	if ! "$fmt" --dry-run --Werror "$f" 2>/dev/null; then
		echo "not formatted: $f (run: $fmt -i $f)" >&2
		bad=$((bad + 1))
	fi
done
echo "test_format: $(echo "$files" | wc -w) files, $bad not formatted" >&2
[ "$bad" -eq 0 ]
